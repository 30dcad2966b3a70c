//! `berth serve`: store, auth and API wired together, served until SIGTERM.

use crate::config::Config;
use anyhow::Context;
use berth_api::{AppState, Cluster, HttpMetrics, Settings};
use berth_auth::{Auth, AuthConfig, Secret};
use berth_core::account::{Email, Password};
use berth_store::Store;
use prometheus_client::registry::Registry;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use time::OffsetDateTime;

const DEFAULT_ADMIN_EMAIL: &str = "admin@berth.local";

/// Runs Berth until SIGTERM or Ctrl-C.
pub async fn run(config: Config) -> anyhow::Result<()> {
    tracing::info!(config = ?config, "starting berth");
    let server = Server::build(config).await?;
    tracing::info!("listening on http://{}", server.local_addr());
    server.run_until(shutdown_signal()).await
}

/// A Berth bound to its address, not yet serving. Tests build one on port 0.
pub struct Server {
    listener: tokio::net::TcpListener,
    router: axum::Router,
    store: Store,
}

impl Server {
    pub async fn build(config: Config) -> anyhow::Result<Self> {
        let store = Store::connect(&config.database_url)
            .await
            .context("connecting to the store")?;
        let auth = Auth::new(store.clone(), AuthConfig::default())?;
        bootstrap_admin(&auth, &config).await?;

        let mut registry = Registry::default();
        let http_metrics = HttpMetrics::register(&mut registry);
        let state = AppState {
            auth,
            cluster: Arc::new(Cluster::new(config.kubeconfig.clone())),
            settings: Arc::new(Settings {
                secure_cookies: config.secure_cookies(),
            }),
            http_metrics,
            registry: Arc::new(registry),
        };
        let listener = tokio::net::TcpListener::bind(config.listen)
            .await
            .with_context(|| format!("binding {}", config.listen))?;
        Ok(Self {
            listener,
            router: berth_api::router(state),
            store,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .expect("a bound listener has an address")
    }

    /// Serves until `shutdown` completes, then lets in-flight requests finish.
    pub async fn run_until(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let sweeper = tokio::spawn(sweep_sessions(self.store.clone()));
        let app = self
            .router
            .into_make_service_with_connect_info::<SocketAddr>();
        axum::serve(self.listener, app)
            .with_graceful_shutdown(shutdown)
            .await?;
        sweeper.abort();
        // In-flight requests have finished; let the store finish its writes too.
        self.store.close().await;
        tracing::info!("stopped");
        Ok(())
    }
}

/// On first start with an empty store, creates the admin from the configuration
/// or with a random password, which is logged this once.
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
    if let Some(admin) = auth.bootstrap_admin(email, password.clone()).await? {
        if generated {
            tracing::warn!(
                email = %admin.email,
                password = password.expose(),
                "created the first admin with a random password, shown this once: log in and keep it safe"
            );
        } else {
            tracing::info!(email = %admin.email, "created the first admin");
        }
    }
    Ok(())
}

async fn sweep_sessions(store: Store) {
    let mut every = tokio::time::interval(Duration::from_secs(3600));
    loop {
        every.tick().await;
        match store
            .delete_expired_sessions(OffsetDateTime::now_utc())
            .await
        {
            Ok(n) if n > 0 => tracing::info!(sessions = n, "expired sessions removed"),
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "could not remove expired sessions"),
        }
    }
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("SIGTERM handler installs");
    tokio::select! {
        _ = ctrl_c => {},
        _ = term.recv() => {},
    }
    tracing::info!("shutting down: finishing in-flight requests");
}
