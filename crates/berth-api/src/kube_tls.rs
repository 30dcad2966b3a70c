//! The HTTPS listener of the environments' Kubernetes API (`kube_proxy`):
//! kubectl sends credentials only over TLS, so the kubeconfigs Berth hands
//! out name an `https://` server even when Berth's own pages are served
//! over plain HTTP (`make run`). With a configured certificate and key it
//! serves those; without, a certificate made at start, signed by a CA
//! made with it, which the kubeconfigs carry (kubeconfigs downloaded before
//! a restart then need downloading again).

use crate::state::AppState;
use axum::Router;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use std::sync::Arc;
use tokio::net::TcpListener;

/// Why the listener's certificate could not be had.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("reading the TLS certificate and key: {0}")]
    Pem(String),
    #[error("making a certificate: {0}")]
    Generate(#[from] rcgen::Error),
    #[error("the TLS certificate and key do not fit together: {0}")]
    Rustls(#[from] rustls::Error),
}

/// The listener's TLS configuration, and the PEM of the CA kubeconfigs must
/// trust (`None`: a configured certificate, trusted as the system's roots
/// trust it).
#[derive(Clone)]
pub struct KubeTls {
    pub config: Arc<rustls::ServerConfig>,
    pub ca_pem: Option<String>,
}

impl KubeTls {
    /// The configured certificate and key (`BERTH_TLS_CERT`, `BERTH_TLS_KEY`),
    /// served as `certificate` holds them now (it reloads them when the
    /// files change).
    pub fn from_files(
        certificate: Arc<crate::tls::ReloadingCertificate>,
    ) -> Result<Self, TlsError> {
        Ok(Self {
            config: crate::tls::server_config(certificate)?,
            ca_pem: None,
        })
    }

    /// A CA made now, and a certificate it signs for `names` (DNS names or
    /// IP addresses), valid for a year.
    pub fn generate(names: Vec<String>) -> Result<Self, TlsError> {
        let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new())?;
        ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "Berth kube proxy CA");
        let ca = rcgen::CertifiedIssuer::self_signed(ca_params, rcgen::KeyPair::generate()?)?;
        let key = rcgen::KeyPair::generate()?;
        let mut params = rcgen::CertificateParams::new(names)?;
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "Berth kube proxy");
        let now = time::OffsetDateTime::now_utc();
        params.not_before = now - time::Duration::hours(1);
        params.not_after = now + time::Duration::days(365);
        let leaf = params.signed_by(&key, &ca)?;
        let chain = vec![leaf.der().clone()];
        let key = PrivateKeyDer::try_from(key.serialize_der())
            .map_err(|e| TlsError::Pem(e.to_owned()))?;
        Ok(Self {
            config: server_config(chain, key)?,
            ca_pem: Some(ca.pem()),
        })
    }
}

fn server_config(
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
) -> Result<Arc<rustls::ServerConfig>, TlsError> {
    let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()?
    .with_no_client_auth()
    .with_single_cert(chain, key)?;
    // kubectl speaks HTTP/2 when offered, and falls back to HTTP/1.1 for
    // upgrades (exec, attach, port-forward).
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// The routes served over TLS: the environments' Kubernetes API only.
pub fn router(state: AppState) -> Router {
    crate::middleware::wrap(
        Router::new()
            .route(
                "/api/v1/environments/{name}/kube",
                axum::routing::any(crate::kube_proxy::proxy_root),
            )
            .route(
                "/api/v1/environments/{name}/kube/{*path}",
                axum::routing::any(crate::kube_proxy::proxy_path),
            )
            .with_state(state),
    )
}

/// Serves `router` over TLS on `listener` until `stop` completes; then
/// accepts no more connections (open requests end by revocation).
pub async fn serve(
    listener: TcpListener,
    tls: KubeTls,
    router: Router,
    stop: impl Future<Output = ()>,
) {
    let acceptor = tokio_rustls::TlsAcceptor::from(tls.config.clone());
    tokio::pin!(stop);
    loop {
        let (tcp, peer) = tokio::select! {
            accepted = crate::tls::accept(&listener, "kube") => accepted,
            () = &mut stop => return,
        };
        tokio::spawn(crate::tls::serve_connection(
            acceptor.clone(),
            tcp,
            peer,
            router.clone(),
            None,
        ));
    }
}
