use crate::cluster::Cluster;
use crate::metrics::HttpMetrics;
use crate::metrics_query::Prometheus;
use berth_auth::Auth;
use berth_core::environment::ReservedNames;
use prometheus_client::registry::Registry;
use std::sync::Arc;
use std::time::Duration;

/// Choices the HTTP layer makes that come from configuration.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Mark cookies `Secure`: true when Berth is served over HTTPS.
    pub secure_cookies: bool,
    /// How long the token of a downloaded kubeconfig works.
    pub kubeconfig_ttl: Duration,
    /// Names no environment may take.
    pub reserved_names: ReservedNames,
    /// Apps answer at `<app>.<environment>.<ingress_domain>`: no exception
    /// may grant a host under it.
    pub ingress_domain: String,
    /// Where kubeconfigs reach the environments' Kubernetes API
    /// (`BERTH_KUBE_PUBLIC_URL`, an `https://` URL); `None`: the host a
    /// request for a kubeconfig came to, at [`Settings::kube_port`].
    pub kube_public_url: Option<String>,
    /// The port of the HTTPS listener of the environments' Kubernetes API.
    pub kube_port: u16,
    /// PEM of the CA kubeconfigs trust for it, when Berth made its own.
    pub kube_ca_pem: Option<String>,
    /// Queue audit entries for Splunk HEC too (`BERTH_SPLUNK_HEC_URL` is set).
    pub splunk_outbox: bool,
    /// Email and password login and registration are on (`BERTH_LOCAL_LOGIN`).
    pub local_login: bool,
    /// Single sign-on with the configured OpenID provider, if any.
    pub oidc: Option<crate::oidc::Oidc>,
    /// `/metrics` is served on a listener of its own (`BERTH_METRICS_LISTEN`,
    /// [`crate::metrics_router`]), so the main one, which an Ingress may
    /// publish, answers 404 there.
    pub metrics_listener: bool,
}

#[derive(Clone)]
pub struct AppState {
    pub auth: Auth,
    pub cluster: Arc<Cluster>,
    pub settings: Arc<Settings>,
    pub http_metrics: HttpMetrics,
    pub registry: Arc<Registry>,
    /// Where environments' metrics are queried; `None` answers 503.
    pub prometheus: Option<Prometheus>,
    /// Ends kubeconfigs' open requests when their access is taken away.
    pub revocations: crate::kube_proxy::Revocations,
    /// The key ring secrets are stored under, and which secrets the
    /// environment sets (`/api/v1/admin/integrations`).
    pub integrations: Arc<crate::routes::integrations::IntegrationSettings>,
}
