//! `berth serve`: store, auth and API wired together, served until SIGTERM.

use crate::config::Config;
use anyhow::Context;
use berth_api::{
    AppState, Cluster, EnvironmentMetrics, HttpMetrics, IntegrationSettings, KubeTls, Prometheus,
    ReloadingCertificate, Revocations, Settings,
};
use berth_auth::{Auth, AuthConfig, Secret};
use berth_controller::{AdmissionPolicies, ControllerOptions, Metrics as ControllerMetrics};
use berth_core::account::{Email, Password};
use berth_core::environment::ReservedNames;
use berth_store::Store;
use prometheus_client::registry::Registry;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

const DEFAULT_ADMIN_EMAIL: &str = "admin@berth.local";

/// Runs Berth until SIGTERM or Ctrl-C.
pub async fn run(config: Config) -> anyhow::Result<()> {
    tracing::info!(config = ?config, "starting berth");
    let server = Server::build(config).await?;
    tracing::info!("listening on {}", server.url());
    server.run_until(shutdown_signal()).await
}

/// A Berth bound to its address, not yet serving. Tests build one on port 0.
pub struct Server {
    listener: tokio::net::TcpListener,
    router: axum::Router,
    auth: Auth,
    cluster: Arc<Cluster>,
    /// Published with the policy, for the apiserver's check of Environments.
    reserved_names: ReservedNames,
    /// The per-environment series of `/metrics`, whose watches start with the server.
    environment_metrics: EnvironmentMetrics,
    /// The HTTPS listener of the environments' Kubernetes API.
    kube_listener: tokio::net::TcpListener,
    kube_tls: KubeTls,
    kube_router: axum::Router,
    /// With `BERTH_METRICS_LISTEN`: `/metrics` alone, plain HTTP.
    metrics: Option<(tokio::net::TcpListener, axum::Router)>,
    /// With `BERTH_TLS_CERT` and `BERTH_TLS_KEY`: the main listener's TLS
    /// configuration, and the pair both listeners serve, reloaded when the
    /// files change.
    tls: Option<(Arc<rustls::ServerConfig>, Arc<ReloadingCertificate>)>,
    /// Ends kubeconfigs' open requests: on revoked access, and at stop.
    revocations: Revocations,
    /// Present unless the controller runs elsewhere (`--no-controller`).
    controller: Option<(ControllerOptions, ControllerMetrics)>,
    /// Delivery to Splunk HEC, with `BERTH_SPLUNK_HEC_URL`.
    splunk: Option<crate::splunk::Splunk>,
    /// The Sentry client, with `BERTH_SENTRY_DSN`; stopped last, sending what is queued.
    reporting: Option<sentry::ClientInitGuard>,
}

impl Server {
    pub async fn build(config: Config) -> anyhow::Result<Self> {
        // First, so that the rest of the start is covered too.
        let reporting = config
            .sentry
            .as_ref()
            .map(crate::reporting::start)
            .transpose()?;
        let store = Store::connect(&config.database_url)
            .await
            .context("connecting to the store")?;
        // Set through the API, used when their variables are not.
        let keys = config.encryption_keys.as_ref();
        let reporting = match reporting {
            Some(reporting) => Some(reporting),
            None => crate::stored_secrets::read(&store, keys, berth_api::SENTRY_DSN_SECRET)
                .await?
                .map(|dsn| {
                    let environment = std::env::var("BERTH_SENTRY_ENVIRONMENT").ok();
                    crate::reporting::SentrySettings::new(Some(dsn), environment)
                })
                .transpose()?
                .flatten()
                .as_ref()
                .map(crate::reporting::start)
                .transpose()?,
        };
        let mut hec = config.splunk.clone();
        if let Some(hec) = hec.as_mut().filter(|hec| hec.token.is_empty()) {
            hec.token =
                crate::stored_secrets::read(&store, keys, berth_api::SPLUNK_HEC_TOKEN_SECRET)
                    .await?
                    .context(
                        "BERTH_SPLUNK_HEC_TOKEN: not set, and no token is stored \
                     (PUT /api/v1/admin/integrations); set one with BERTH_SPLUNK_HEC_URL",
                    )?;
        }
        let auth_config = AuthConfig {
            mailer: config.mailer.clone(),
            ..AuthConfig::default()
        };
        let auth = Auth::new(store, auth_config)?;
        let mut registry = Registry::default();
        // Before anything worth a warning happens (the first admin's, below),
        // so that Splunk gets it too.
        let splunk = hec
            .as_ref()
            .map(|hec| crate::splunk::Splunk::build(hec, auth.store().clone(), &mut registry))
            .transpose()?;
        bootstrap_admin(&auth, &config).await?;

        let http_metrics = HttpMetrics::register(&mut registry);
        let controller = (!config.no_controller).then(|| {
            let mut options = ControllerOptions::new(crate::replica_identity());
            options.build.ingress_domain = config.ingress_domain.clone();
            config.network.apply_to(&mut options);
            if config.no_install_admission_policies {
                options.admission_policies = AdmissionPolicies::Verify;
            }
            (options, ControllerMetrics::register(&mut registry))
        });
        let cluster = Arc::new(Cluster::new(config.kubeconfig.clone()));
        let environment_metrics = EnvironmentMetrics::register(&mut registry, cluster.clone());
        let revocations = Revocations::default();
        let kube_listener = tokio::net::TcpListener::bind(config.kube_listen)
            .await
            .with_context(|| format!("binding {} (BERTH_KUBE_LISTEN)", config.kube_listen))?;
        let certificate = config
            .tls
            .as_ref()
            .map(|(cert, key)| ReloadingCertificate::load(cert, key))
            .transpose()
            .context("BERTH_TLS_CERT and BERTH_TLS_KEY")?;
        let tls = certificate
            .map(|certificate| {
                berth_api::tls_server_config(certificate.clone()).map(|c| (c, certificate))
            })
            .transpose()?;
        let kube_tls = match &tls {
            Some((_, certificate)) => KubeTls::from_files(certificate.clone())?,
            None => KubeTls::generate(kube_names(
                config.kube_listen.ip(),
                [&config.public_url, &config.kube_public_url]
                    .into_iter()
                    .flatten(),
            ))?,
        };
        let state = AppState {
            auth: auth.clone(),
            cluster: cluster.clone(),
            settings: Arc::new(Settings {
                secure_cookies: config.secure_cookies(),
                kubeconfig_ttl: config.kubeconfig_ttl,
                reserved_names: config.network.reserved_names.clone(),
                ingress_domain: config.ingress_domain.clone(),
                kube_public_url: config.kube_public_url.clone(),
                kube_port: kube_listener.local_addr()?.port(),
                kube_ca_pem: kube_tls.ca_pem.clone(),
                splunk_outbox: splunk.is_some(),
                local_login: config.sso.local_login,
                metrics_listener: config.metrics_listen.is_some(),
                oidc: config
                    .sso
                    .oidc
                    .clone()
                    .map(berth_api::Oidc::new)
                    .transpose()
                    .context("BERTH_OIDC_ISSUER")?,
            }),
            http_metrics,
            registry: Arc::new(registry),
            prometheus: config
                .prometheus_url
                .as_deref()
                .map(Prometheus::new)
                .transpose()
                .map_err(anyhow::Error::msg)?,
            revocations: revocations.clone(),
            integrations: Arc::new(IntegrationSettings {
                keyring: config.encryption_keys.clone(),
                splunk_hec_token_in_environment: config
                    .splunk
                    .as_ref()
                    .is_some_and(|hec| !hec.token.is_empty()),
                sentry_dsn_in_environment: config.sentry.is_some(),
            }),
        };
        let listener = tokio::net::TcpListener::bind(config.listen)
            .await
            .with_context(|| format!("binding {}", config.listen))?;
        let metrics = match config.metrics_listen {
            Some(address) => Some((
                tokio::net::TcpListener::bind(address)
                    .await
                    .with_context(|| format!("binding {address} (BERTH_METRICS_LISTEN)"))?,
                berth_api::metrics_router(state.clone()),
            )),
            None => None,
        };
        Ok(Self {
            listener,
            kube_listener,
            kube_tls,
            tls,
            kube_router: berth_api::kube_router(state.clone()),
            metrics,
            router: berth_api::router(state),
            auth,
            cluster,
            reserved_names: config.network.reserved_names.clone(),
            environment_metrics,
            revocations,
            controller,
            splunk,
            reporting,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .expect("a bound listener has an address")
    }

    /// The address of the HTTPS listener of the environments' Kubernetes API.
    pub fn kube_local_addr(&self) -> SocketAddr {
        self.kube_listener
            .local_addr()
            .expect("a bound listener has an address")
    }

    /// The address of the metrics listener, with `BERTH_METRICS_LISTEN`.
    pub fn metrics_local_addr(&self) -> Option<SocketAddr> {
        self.metrics.as_ref().map(|(listener, _)| {
            listener
                .local_addr()
                .expect("a bound listener has an address")
        })
    }

    /// Where the main listener answers: `https://ADDR` under TLS, else
    /// `http://ADDR`.
    pub fn url(&self) -> String {
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        format!("{scheme}://{}", self.local_addr())
    }

    /// Serves until `shutdown` completes, then lets in-flight requests finish.
    pub async fn run_until(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let stopping = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
            let _ = rx.wait_for(|stop| *stop).await;
        };
        let sweeper = tokio::spawn(sweep(self.auth.clone()));
        let warm = tokio::spawn(connect_when_possible(self.cluster.clone()));
        let workloads = tokio::spawn(self.environment_metrics.watch());
        let revoking = self.revocations.watch(self.cluster.clone());
        let splunk = self
            .splunk
            .map(|splunk| splunk.spawn(self.cluster.clone(), stopped.clone()));
        tracing::info!(
            "kubernetes API of environments on https://{}",
            self.kube_listener.local_addr()?
        );
        let kube = tokio::spawn(berth_api::serve_kube(
            self.kube_listener,
            self.kube_tls,
            self.kube_router,
            stopping(stopped.clone()),
        ));
        let metrics = self.metrics.map(|(listener, router)| {
            if let Ok(address) = listener.local_addr() {
                tracing::info!("metrics on http://{address}/metrics");
            }
            let stop = stopping(stopped.clone());
            tokio::spawn(async move {
                axum::serve(listener, router)
                    .with_graceful_shutdown(stop)
                    .await
            })
        });
        let mend = tokio::spawn(berth_api::remove_disabled_identities_at_start(
            self.cluster.clone(),
            self.auth.store().clone(),
        ));
        let publish = tokio::spawn(berth_api::publish_policy_at_start(
            self.cluster.clone(),
            self.auth.store().clone(),
            self.reserved_names.clone(),
        ));
        let controller = self.controller.map(|(options, metrics)| {
            let shutdown = stopping(stopped.clone());
            tokio::spawn(run_controller(
                self.cluster.clone(),
                options,
                metrics,
                shutdown,
            ))
        });
        let revocations = self.revocations.clone();
        tokio::spawn(async move {
            shutdown.await;
            let _ = stop.send(true);
            // Open watches and exec sessions would hold the stop forever.
            revocations.end_all();
        });
        match self.tls {
            Some((config, certificate)) => {
                let reload = tokio::spawn(certificate.watch());
                berth_api::serve_tls(self.listener, config, self.router, stopping(stopped)).await;
                reload.abort();
            }
            None => {
                let app = self
                    .router
                    .into_make_service_with_connect_info::<SocketAddr>();
                axum::serve(self.listener, app)
                    .with_graceful_shutdown(stopping(stopped))
                    .await?;
            }
        }
        if let Some(controller) = controller {
            // It stops on the same signal, releasing its lease for another replica.
            let _ = controller.await;
        }
        if let Some(splunk) = splunk {
            // It finishes the batch in flight and gives its lease up.
            let _ = splunk.await;
        }
        sweeper.abort();
        warm.abort();
        workloads.abort();
        revoking.abort();
        let _ = kube.await;
        if let Some(metrics) = metrics {
            let _ = metrics.await;
        }
        publish.abort();
        mend.abort();
        // In-flight requests have finished; let the store finish its writes too.
        self.auth.store().close().await;
        if let Some(reporting) = self.reporting {
            let sent = tokio::task::spawn_blocking(move || crate::reporting::stop(reporting)).await;
            if !matches!(sent, Ok(true)) {
                tracing::warn!("some error reports were not sent to Sentry before the stop");
            }
        }
        tracing::info!("stopped");
        Ok(())
    }
}

/// On first start with an empty store, creates the admin from the configuration
/// or with a random password, which is shown this once on standard error,
/// never through the log: log lines are kept and shipped (Splunk), a
/// terminal is not.
async fn bootstrap_admin(auth: &Auth, config: &Config) -> anyhow::Result<()> {
    let email = Email::parse(
        "BERTH_ADMIN_EMAIL",
        config.admin_email.as_deref().unwrap_or(DEFAULT_ADMIN_EMAIL),
    )?;
    let (password, generated) = match &config.admin_password {
        Some(password) => (
            Password::new_secret("BERTH_ADMIN_PASSWORD", password.clone())?,
            false,
        ),
        None => (
            Password::new_secret("password", Secret::generate().expose().to_owned())?,
            true,
        ),
    };
    if let Some(admin) = auth
        .bootstrap_admin(email, password.clone(), generated)
        .await?
    {
        if generated {
            tracing::warn!(
                email = %admin.email,
                "created the first admin with a random password, shown once on standard error \
                 (not in this log): log in and change it"
            );
            eprintln!(
                "\n  Berth created the first admin: {} with password {}\n  \
                 It is shown this once and is not in the log: log in and change it.\n",
                admin.email,
                password.expose()
            );
        } else {
            tracing::info!(email = %admin.email, "created the first admin");
        }
    }
    Ok(())
}

/// Connects to the cluster in the background, so that the first request finds
/// the Environment cache warm; retries until the cluster answers.
async fn connect_when_possible(cluster: Arc<Cluster>) {
    loop {
        match cluster.connection().await {
            Ok(_) => return,
            Err(e) => tracing::warn!(error = %e, "cluster not reachable yet; retrying in 5 s"),
        }
        tokio::time::sleep(Duration::from_secs(5)).await;
    }
}

/// Runs the controller once the cluster answers, and again after a failure.
async fn run_controller(
    cluster: Arc<Cluster>,
    options: ControllerOptions,
    metrics: ControllerMetrics,
    shutdown: impl Future<Output = ()> + Send,
) {
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let attempt = async {
            let client = cluster.client().await.map_err(anyhow::Error::msg)?;
            berth_controller::run(client, options.clone(), metrics.clone(), &mut shutdown).await?;
            anyhow::Ok(())
        };
        match attempt.await {
            Ok(()) => return,
            Err(e) => tracing::warn!(error = %e, "controller stopped; restarting in 5 s"),
        }
        tokio::select! {
            () = &mut shutdown => return,
            () = tokio::time::sleep(Duration::from_secs(5)) => {}
        }
    }
}

async fn sweep(auth: Auth) {
    let mut every = tokio::time::interval(Duration::from_secs(3600));
    loop {
        every.tick().await;
        if let Err(e) = auth.sweep().await {
            tracing::warn!(error = %e, "could not remove expired sessions and login failures");
        }
    }
}

/// SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("SIGTERM handler installs");
    tokio::select! {
        _ = ctrl_c => {},
        _ = term.recv() => {},
    }
    tracing::info!("shutting down: finishing in-flight requests");
}

/// The names the made-up certificate of the kube listener is for: loopback,
/// the listen address `listen`, and the hosts of the public URLs `urls`.
fn kube_names<'a>(listen: IpAddr, urls: impl IntoIterator<Item = &'a String>) -> Vec<String> {
    let mut names = vec![
        "localhost".to_owned(),
        "127.0.0.1".to_owned(),
        "::1".to_owned(),
    ];
    if !listen.is_unspecified() {
        names.push(listen.to_string());
    }
    for url in urls {
        // A certificate names an IPv6 address without the URL's brackets.
        match url::Url::parse(url).ok().as_ref().and_then(url::Url::host) {
            Some(url::Host::Domain(domain)) => names.push(domain.to_owned()),
            Some(url::Host::Ipv4(ip)) => names.push(ip.to_string()),
            Some(url::Host::Ipv6(ip)) => names.push(ip.to_string()),
            None => {}
        }
    }
    names.sort();
    names.dedup();
    names
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_kube_certificate_names_the_hosts_of_the_public_urls() {
        let urls = [
            "https://berth.example.com:8443/x".to_owned(),
            "https://[fd00::1]:8443".to_owned(),
            "https://10.0.0.7".to_owned(),
            "not a url".to_owned(),
        ];
        let names = kube_names("192.168.1.2".parse().unwrap(), &urls);
        for name in [
            "berth.example.com",
            "fd00::1",
            "10.0.0.7",
            "192.168.1.2",
            "localhost",
        ] {
            assert!(names.contains(&name.to_owned()), "{name} in {names:?}");
        }
        assert!(
            !names
                .iter()
                .any(|n| n.contains('[') || n.contains(':') && n.contains('.')),
            "{names:?}"
        );
        assert!(!kube_names("0.0.0.0".parse().unwrap(), &[]).contains(&"0.0.0.0".to_owned()));
    }
}
