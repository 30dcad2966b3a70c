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
}
