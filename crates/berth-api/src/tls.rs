//! TLS termination for both listeners from a certificate and key in files
//! (`BERTH_TLS_CERT`, `BERTH_TLS_KEY`), reloaded when the files change so
//! that a renewal (cert-manager rewriting a mounted Secret) takes effect
//! without a restart, and the main listener's serving loop.
//!
//! The files are looked at once a second: two `stat` calls, read again only
//! when their size, modification time or inode changed (a Secret volume
//! swaps a symlink, which changes the inode). A new pair that does not
//! parse, or whose key is not the certificate's, is not served: the last
//! good pair stays, and the log says why.

use crate::kube_tls::TlsError;
use axum::Router;
use axum::extract::ConnectInfo;
use axum::http::{HeaderValue, header};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use std::net::SocketAddr;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, SystemTime};
use tokio::net::{TcpListener, TcpStream};
use tower::ServiceExt;
use tower_http::set_header::SetResponseHeaderLayer;

/// How often the certificate files are looked at.
const POLL: Duration = Duration::from_secs(1);

/// A client has this long to finish its TLS handshake, and then to send
/// each HTTP/1 request's headers, or its connection is closed: a client
/// that connects and stays silent (a slowloris) would otherwise hold a
/// connection and a task for ever. nginx's `client_header_timeout` is 60 s.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);

/// After a failed accept (out of file descriptors, say), the wait before
/// the next; `axum::serve` waits as long. Retried at once, such an accept
/// fails again at once: the loop spun and logged without end.
const ACCEPT_BACKOFF: Duration = Duration::from_secs(1);

/// The next connection on `listener` (`what` names it in the log).
pub(crate) async fn accept(listener: &TcpListener, what: &str) -> (TcpStream, SocketAddr) {
    loop {
        match listener.accept().await {
            Ok(accepted) => return accepted,
            Err(error) => {
                tracing::warn!(%error, listener = what, "accepting a connection failed; retrying in 1 s");
                tokio::time::sleep(ACCEPT_BACKOFF).await;
            }
        }
    }
}

/// Serves `router` on the TLS connection `tcp` from `peer` until it ends:
/// the handshake within [`HANDSHAKE_TIMEOUT`], each request's headers
/// within [`HEADER_READ_TIMEOUT`]. A client that fails either (a plain HTTP
/// request, an untrusted certificate, silence) only loses its own
/// connection. `watcher` lets a graceful shutdown wait for it.
pub(crate) async fn serve_connection(
    acceptor: tokio_rustls::TlsAcceptor,
    tcp: TcpStream,
    peer: SocketAddr,
    router: Router,
    watcher: Option<hyper_util::server::graceful::Watcher>,
) {
    let Ok(Ok(stream)) = tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await else {
        return;
    };
    let service = router.map_request(move |mut request: axum::extract::Request<_>| {
        request.extensions_mut().insert(ConnectInfo(peer));
        request
    });
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT);
    let connection = builder
        .serve_connection_with_upgrades(TokioIo::new(stream), TowerToHyperService::new(service));
    match watcher {
        Some(watcher) => {
            let _ = watcher.watch(connection).await;
        }
        None => {
            let _ = connection.await;
        }
    }
}

/// Browsers keep to HTTPS for two years, subdomains included, once they
/// have seen this over TLS.
pub const STRICT_TRANSPORT_SECURITY: &str = "max-age=63072000; includeSubDomains";

/// What identifies one version of a file without reading it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Stamp {
    len: u64,
    modified: Option<SystemTime>,
    inode: u64,
}

impl Stamp {
    fn of(path: &Path) -> Option<Self> {
        let metadata = std::fs::metadata(path).ok()?;
        Some(Self {
            len: metadata.len(),
            modified: metadata.modified().ok(),
            inode: metadata.ino(),
        })
    }
}

/// The certificate and key of `BERTH_TLS_CERT` and `BERTH_TLS_KEY`, as
/// rustls asks for them at each handshake: the last pair that loaded.
#[derive(Debug)]
pub struct ReloadingCertificate {
    cert: PathBuf,
    key: PathBuf,
    provider: Arc<CryptoProvider>,
    current: RwLock<Arc<CertifiedKey>>,
    /// The files' stamps when last read, good pair or not, so that a bad
    /// pair is reported once rather than every second.
    seen: Mutex<Option<(Stamp, Stamp)>>,
}

impl ReloadingCertificate {
    /// Loads the pair at `cert` (PEM chain, leaf first) and `key` (PEM
    /// private key). Errors name the file that could not be read or say
    /// that the key is not the certificate's.
    pub fn load(cert: &Path, key: &Path) -> Result<Arc<Self>, TlsError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let seen = Stamp::of(cert).zip(Stamp::of(key));
        let pair = certified_key(cert, key, &provider)?;
        Ok(Arc::new(Self {
            cert: cert.to_owned(),
            key: key.to_owned(),
            provider,
            current: RwLock::new(Arc::new(pair)),
            seen: Mutex::new(seen),
        }))
    }

    /// The end-entity certificate served now (DER).
    pub fn current_certificate(&self) -> CertificateDer<'static> {
        self.current_pair().cert[0].clone()
    }

    fn current_pair(&self) -> Arc<CertifiedKey> {
        self.current
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Reads the files again if they changed since last read; serves the
    /// new pair when it loads, else keeps the old one and logs why.
    /// Returns whether a new pair is served.
    pub fn reload_if_changed(&self) -> bool {
        let stamps = Stamp::of(&self.cert).zip(Stamp::of(&self.key));
        {
            let mut seen = self
                .seen
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if stamps.is_none() || *seen == stamps {
                // Missing files (between a delete and a write) are looked
                // at again on the next tick.
                return false;
            }
            *seen = stamps;
        }
        match certified_key(&self.cert, &self.key, &self.provider) {
            Ok(pair) => {
                *self
                    .current
                    .write()
                    .unwrap_or_else(std::sync::PoisonError::into_inner) = Arc::new(pair);
                tracing::info!(
                    cert = %self.cert.display(),
                    "TLS certificate and key changed: serving the new pair"
                );
                true
            }
            Err(e) => {
                tracing::warn!(
                    error = %e,
                    cert = %self.cert.display(),
                    key = %self.key.display(),
                    "TLS certificate or key changed but the new pair cannot be served; keeping the previous one"
                );
                false
            }
        }
    }

    /// Looks at the files every second, forever (abort the task to stop).
    pub async fn watch(self: Arc<Self>) {
        let mut every = tokio::time::interval(POLL);
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            every.tick().await;
            let this = self.clone();
            // Blocking file reads, small as they are, stay off the runtime.
            let _ = tokio::task::spawn_blocking(move || this.reload_if_changed()).await;
        }
    }
}

impl ResolvesServerCert for ReloadingCertificate {
    fn resolve(&self, _: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current_pair())
    }
}

fn certified_key(
    cert: &Path,
    key: &Path,
    provider: &CryptoProvider,
) -> Result<CertifiedKey, TlsError> {
    let read = |path: &Path| {
        std::fs::read(path).map_err(|e| TlsError::Pem(format!("{}: {e}", path.display())))
    };
    let (cert_pem, key_pem) = (read(cert)?, read(key)?);
    let chain = CertificateDer::pem_slice_iter(&cert_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsError::Pem(format!("{}: {e}", cert.display())))?;
    if chain.is_empty() {
        return Err(TlsError::Pem(format!(
            "{}: no PEM certificate in it",
            cert.display()
        )));
    }
    let key_der = PrivateKeyDer::from_pem_slice(&key_pem)
        .map_err(|e| TlsError::Pem(format!("{}: {e}", key.display())))?;
    Ok(CertifiedKey::from_der(chain, key_der, provider)?)
}

/// A server configuration answering with `certificate`'s current pair,
/// offering HTTP/2 and HTTP/1.1.
pub fn server_config(
    certificate: Arc<ReloadingCertificate>,
) -> Result<Arc<rustls::ServerConfig>, TlsError> {
    let mut config = rustls::ServerConfig::builder_with_provider(certificate.provider.clone())
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_cert_resolver(certificate);
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// Serves `router` over TLS on `listener`, every answer with
/// `Strict-Transport-Security`, until `stop` completes; then accepts no more
/// connections and waits for those open to finish their requests.
///
/// HSTS is sent by this listener only, never by the kube listener: that one
/// serves TLS even when Berth's pages are plain HTTP (`make run`), and a
/// browser that saw HSTS on `localhost:8443` would refuse
/// `http://localhost:8080` (HSTS is per host, not per port).
pub async fn serve(
    listener: TcpListener,
    config: Arc<rustls::ServerConfig>,
    router: Router,
    stop: impl Future<Output = ()>,
) {
    let router = router.layer(SetResponseHeaderLayer::overriding(
        header::STRICT_TRANSPORT_SECURITY,
        HeaderValue::from_static(STRICT_TRANSPORT_SECURITY),
    ));
    let acceptor = tokio_rustls::TlsAcceptor::from(config);
    let graceful = GracefulShutdown::new();
    tokio::pin!(stop);
    loop {
        let (tcp, peer) = tokio::select! {
            accepted = accept(&listener, "http") => accepted,
            () = &mut stop => break,
        };
        tokio::spawn(serve_connection(
            acceptor.clone(),
            tcp,
            peer,
            router.clone(),
            Some(graceful.watcher()),
        ));
    }
    drop(listener);
    graceful.shutdown().await;
}
