use crate::error::ApiError;
use crate::openapi::openapi_json;
use crate::state::AppState;
use axum::Json;
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use berth_core::validation::FieldError;
use serde_json::json;
use std::time::Duration;

#[utoipa::path(get, operation_id = "system_healthz", path = "/healthz", tag = "system", responses((status = 200, description = "The process serves")))]
pub async fn healthz() -> Json<serde_json::Value> {
    Json(json!({"status": "ok"}))
}

/// Ready when the store and the cluster answer; otherwise 503 naming each part that does not.
#[utoipa::path(get, operation_id = "system_readyz", path = "/readyz", tag = "system", responses(
    (status = 200, description = "Store and cluster are reachable"),
    (status = 503, description = "A part is unreachable", body = crate::error::ErrorBody),
))]
pub async fn readyz(State(state): State<AppState>) -> Result<Json<serde_json::Value>, ApiError> {
    let (store, cluster) = tokio::join!(state.auth.store().ping(), state.cluster.check());
    let mut failing = Vec::new();
    if let Err(e) = store {
        tracing::warn!(error = %e, "store is not reachable");
        failing.push(FieldError::new("store", "the database does not answer"));
    }
    if let Err(why) = cluster {
        failing.push(FieldError::new("cluster", why));
    }
    if failing.is_empty() {
        return Ok(Json(
            json!({"status": "ready", "checks": {"store": "ok", "cluster": "ok"}}),
        ));
    }
    let names: Vec<_> = failing.iter().map(|f| f.field.clone()).collect();
    Err(ApiError::Unavailable {
        message: format!("not ready: {} unreachable", names.join(" and ")),
        details: failing,
        retry_after: Duration::from_secs(5),
    })
}

#[utoipa::path(get, operation_id = "system_metrics", path = "/metrics", tag = "system", responses(
    (status = 200, description = "Prometheus text format", content_type = "application/openmetrics-text"),
    (status = 404, description = "Served on its own listener instead (`BERTH_METRICS_LISTEN`)", body = crate::error::ErrorBody),
))]
pub async fn metrics(State(state): State<AppState>) -> Result<impl IntoResponse, ApiError> {
    if state.settings.metrics_listener {
        return Err(ApiError::NotFound);
    }
    metrics_text(State(state)).await
}

/// `/metrics` of the metrics listener (`BERTH_METRICS_LISTEN`).
pub async fn metrics_text(State(state): State<AppState>) -> Result<impl IntoResponse, ApiError> {
    let mut body = String::new();
    prometheus_client::encoding::text::encode(&mut body, &state.registry)
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    Ok((
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        body,
    ))
}

#[utoipa::path(get, operation_id = "system_openapi", path = "/api/v1/openapi.json", tag = "system", responses((status = 200, description = "This API as OpenAPI 3.1")))]
pub async fn openapi() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/json")], openapi_json())
}
