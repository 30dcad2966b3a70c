//! Berth's HTTP API. Handlers only parse, call the domain and translate the
//! answer; every error becomes an HTTP answer in one place (`error.rs`).

mod audit;
mod cluster;
mod environment_metrics;
mod environments;
mod error;
pub mod error_reports;
mod extract;
mod identities;
mod json;
mod kube_proxy;
mod kube_tls;
mod metrics;
mod metrics_query;
mod middleware;
mod oidc;
mod openapi;
mod openapi_common;
mod platform;
mod policy_object;
mod query;
mod routes;
mod state;
mod tls;

pub use cluster::{Cluster, LOCAL_CLUSTER_KUBECONFIG};
pub use environment_metrics::EnvironmentMetrics;
pub use error::ApiError;
pub use identities::remove_disabled_at_start as remove_disabled_identities_at_start;
pub use kube_proxy::Revocations;
pub use kube_tls::{KubeTls, TlsError, router as kube_router, serve as serve_kube};
pub use metrics::HttpMetrics;
pub use metrics_query::Prometheus;
/// Prometheus' answers as the metrics endpoints pass them through.
pub use metrics_query::answer as prometheus_answer;
pub use middleware::wrap;
pub use oidc::{Oidc, OidcConfig};
pub use openapi::openapi_json;
pub use policy_object::publish_at_start as publish_policy_at_start;
pub use routes::integrations::{
    IntegrationSettings, SENTRY_DSN as SENTRY_DSN_SECRET,
    SPLUNK_HEC_TOKEN as SPLUNK_HEC_TOKEN_SECRET,
};
pub use state::{AppState, Settings};
pub use tls::{
    ReloadingCertificate, STRICT_TRANSPORT_SECURITY, serve as serve_tls,
    server_config as tls_server_config,
};

use axum::Router;
use axum::extract::DefaultBodyLimit;

/// The metrics listener's (`BERTH_METRICS_LISTEN`): `GET /metrics` alone.
pub fn metrics_router(state: AppState) -> Router {
    Router::new()
        .route("/metrics", axum::routing::get(routes::system::metrics_text))
        .with_state(state)
}

/// Request bodies above this answer 413.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// The whole HTTP surface of Berth, ready to serve.
pub fn router(state: AppState) -> Router {
    let api = routes::api_routes()
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            middleware::record_metrics,
        ))
        .fallback_service(berth_web::router())
        .method_not_allowed_fallback(routes::method_not_allowed);
    middleware::wrap(
        api.layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
            .with_state(state),
    )
}
