use crate::metrics::HttpMetrics;
use berth_auth::Auth;
use prometheus_client::registry::Registry;
use std::sync::Arc;

/// Tells whether the Kubernetes cluster answers. Implemented by the binary,
/// which owns the cluster connection.
#[async_trait::async_trait]
pub trait ClusterHealth: Send + Sync {
    /// `Err` says, for a person, why the cluster cannot be reached.
    async fn check(&self) -> Result<(), String>;
}

/// Choices the HTTP layer makes that come from configuration.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Mark cookies `Secure`: true when Berth is served over HTTPS.
    pub secure_cookies: bool,
}

#[derive(Clone)]
pub struct AppState {
    pub auth: Auth,
    pub cluster: Arc<dyn ClusterHealth>,
    pub settings: Arc<Settings>,
    pub http_metrics: HttpMetrics,
    pub registry: Arc<Registry>,
}
