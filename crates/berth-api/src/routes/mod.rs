pub(crate) mod accounts;
pub(crate) mod admin;
pub(crate) mod audit_log;
pub(crate) mod environment_changes;
pub(crate) mod environment_details;
pub(crate) mod environment_logs;
pub(crate) mod environment_watch;
pub(crate) mod environments;
pub(crate) mod identity;
pub(crate) mod integrations;
pub(crate) mod oidc;
pub(crate) mod policy;
pub(crate) mod requests;
pub(crate) mod system;
pub(crate) mod templates;
pub(crate) mod tokens;

pub use accounts::UserView;

use crate::error::ApiError;
use crate::state::AppState;
use axum::Router;
use axum::routing::{delete, get, patch, post, put};

pub fn api_routes() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(system::healthz))
        .route("/readyz", get(system::readyz))
        .route("/metrics", get(system::metrics))
        .route("/api/v1/openapi.json", get(system::openapi))
        .route("/api/v1/auth/register", post(accounts::register))
        .route("/api/v1/auth/login", post(accounts::login))
        .route("/api/v1/auth/logout", post(accounts::logout))
        .route("/api/v1/auth/providers", get(oidc::providers))
        .route("/api/v1/auth/oidc/login", get(oidc::login))
        .route("/api/v1/auth/oidc/callback", get(oidc::callback))
        .route("/api/v1/me", get(accounts::me))
        .route("/api/v1/me/password", put(identity::change_password))
        .route("/api/v1/auth/verify", post(identity::verify))
        .route("/api/v1/auth/verify/resend", post(identity::resend))
        .route(
            "/api/v1/auth/password-reset",
            post(identity::password_reset),
        )
        .route(
            "/api/v1/auth/password-reset/confirm",
            post(identity::password_reset_confirm),
        )
        .route("/api/v1/tokens", post(tokens::create).get(tokens::list))
        .route("/api/v1/tokens/{id}", delete(tokens::revoke))
        .route("/api/v1/admin/users", get(admin::list_users))
        .route("/api/v1/admin/users/{id}", patch(admin::update_user))
        .route("/api/v1/admin/policy", get(policy::get).put(policy::put))
        .route(
            "/api/v1/admin/integrations",
            get(integrations::get).put(integrations::put),
        )
        .route("/api/v1/admin/audit", get(audit_log::list))
        .route("/api/v1/templates", get(templates::list))
        .route(
            "/api/v1/environments",
            get(environments::list).post(environments::create),
        )
        .route(
            "/api/v1/environments/preview",
            post(environments::preview_spec),
        )
        .route(
            "/api/v1/environments/{name}",
            get(environments::get)
                .patch(environment_changes::patch)
                .delete(environments::delete),
        )
        .route(
            "/api/v1/environments/{name}/renew",
            post(environments::renew),
        )
        .route(
            "/api/v1/environments/{name}/kubeconfig",
            get(environment_details::get_kubeconfig),
        )
        .route(
            "/api/v1/environments/{name}/events",
            get(environment_details::events),
        )
        .route(
            "/api/v1/environments/{name}/workloads",
            get(environment_details::workloads),
        )
        .route(
            "/api/v1/environments/{name}/pods/{pod}/logs",
            get(environment_logs::logs),
        )
        .route(
            "/api/v1/environments/{name}/metrics/query",
            get(crate::metrics_query::query),
        )
        .route(
            "/api/v1/environments/{name}/metrics/query_range",
            get(crate::metrics_query::query_range),
        )
        .route(
            "/api/v1/environments/{name}/metrics/series",
            get(crate::metrics_query::series),
        )
        .route(
            "/api/v1/environments/{name}/metrics/labels",
            get(crate::metrics_query::labels),
        )
        .route(
            "/api/v1/environments/{name}/metrics/label/{label}/values",
            get(crate::metrics_query::label_values),
        )
        .route(
            "/api/v1/environments/{name}/members/{email}",
            put(environment_changes::put_member).delete(environment_changes::delete_member),
        )
        .route("/api/v1/requests", get(requests::mine))
        .route("/api/v1/admin/requests", get(requests::list))
        .route(
            "/api/v1/admin/requests/{id}/approve",
            post(requests::approve),
        )
        .route("/api/v1/admin/requests/{id}/reject", post(requests::reject))
        .route(
            "/api/v1/admin/templates/{name}",
            put(templates::put).delete(templates::delete),
        )
}

/// A method the path does not serve: 405, with `Allow` (axum adds it) naming those it does.
pub async fn method_not_allowed() -> ApiError {
    ApiError::MethodNotAllowed
}
