//! An environment's metrics for its members: Prometheus' HTTP query API with
//! every selector confined to the environment's namespace (`berth-promql`).
//! Handlers here only find the environment and the caller's standing;
//! `plan` decides what goes to Prometheus, `prometheus` sends it.

pub mod answer;
pub mod plan;
pub mod prometheus;

use crate::environments as envs;
use crate::error::ApiError;
use crate::extract::CurrentUser;
use crate::state::AppState;
use axum::extract::{Path, RawQuery, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use plan::Endpoint;
pub use prometheus::Prometheus;
use time::OffsetDateTime;

/// Asks Prometheus for `endpoint` on behalf of a member (or admin) of `name`;
/// 404 for anyone else, before any parameter is looked at.
async fn answer(
    state: AppState,
    caller: &berth_auth::Principal,
    name: &str,
    endpoint: Endpoint,
    query: Option<String>,
) -> Result<Response, ApiError> {
    let connection = state.cluster.connection().await?;
    envs::visible(connection, name, caller).await?;
    let prometheus = state
        .prometheus
        .as_ref()
        .ok_or_else(prometheus::not_configured)?;
    // The environment's namespace is named after it.
    let plan = plan::plan(
        &endpoint,
        name,
        query.as_deref().unwrap_or_default(),
        OffsetDateTime::now_utc(),
    )?;
    let body = prometheus.send(&plan).await?;
    Ok(([(header::CONTENT_TYPE, "application/json")], body).into_response())
}

const SUCCESS: &str = "Prometheus' answer as it sent it: `{\"status\":\"success\",\"data\":...}` (and `warnings` when it has some)";
const REFUSED: &str = "A parameter is invalid, over a limit, or could select another namespace's series; `details` names it (`query`, `time`, `start`, `end`, `step`, `timeout`, `match[]`, `label`)";
const NOT_VISIBLE: &str = "Absent, or the caller is neither a member nor an admin";
const UNAVAILABLE: &str = "No Prometheus is configured (BERTH_PROMETHEUS_URL), Prometheus or the cluster cannot be reached; with Retry-After";

#[utoipa::path(get, operation_id = "environment_metrics_query", path = "/api/v1/environments/{name}/metrics/query", tag = "metrics",
    description = "Prometheus' instant query (`/api/v1/query`) over the environment's namespace: every vector and matrix selector gets `namespace=\"<name>\"`. A query may leave the namespace out or write exactly `namespace=\"<name>\"`; any other matcher on `namespace` (another value, `!=`, `=~`, `!~`) is refused, as are `label_replace`/`label_join`/`count_values` writing the `namespace` label and `info()`.",
    params(
        ("name" = String, Path, description = "The environment"),
        ("query" = String, Query, description = "PromQL expression, at most 4096 bytes", max_length = 4096),
        ("time" = Option<String>, Query, description = "Evaluation time: RFC 3339 or Unix seconds; default now"),
        ("timeout" = Option<String>, Query, description = "Evaluation timeout: seconds or a duration such as 10s; at most 30s, the default"),
    ),
    responses(
        (status = 200, description = SUCCESS, body = answer::QueryAnswer),
        (status = 400, description = REFUSED, body = crate::error::ErrorBody),
        (status = 401, description = "Not signed in", body = crate::error::ErrorBody),
        (status = 404, description = NOT_VISIBLE, body = crate::error::ErrorBody),
        (status = 503, description = UNAVAILABLE, body = crate::error::ErrorBody),
    ), security(("session" = []), ("token" = [])))]
pub async fn query(
    State(state): State<AppState>,
    CurrentUser(caller): CurrentUser,
    Path(name): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    answer(state, &caller, &name, Endpoint::Query, query).await
}

#[utoipa::path(get, operation_id = "environment_metrics_query_range", path = "/api/v1/environments/{name}/metrics/query_range", tag = "metrics",
    description = "Prometheus' range query (`/api/v1/query_range`), confined like `query`. `(end - start) / step + 1` may be at most 11000 points; the range at most 31 days.",
    params(
        ("name" = String, Path, description = "The environment"),
        ("query" = String, Query, description = "PromQL expression, at most 4096 bytes", max_length = 4096),
        ("start" = String, Query, description = "RFC 3339 or Unix seconds"),
        ("end" = String, Query, description = "RFC 3339 or Unix seconds; not before start, at most 31 days after it"),
        ("step" = String, Query, description = "Resolution: seconds or a duration such as 1m; positive, and large enough for at most 11000 points"),
        ("timeout" = Option<String>, Query, description = "Evaluation timeout: seconds or a duration such as 10s; at most 30s, the default"),
    ),
    responses(
        (status = 200, description = SUCCESS, body = answer::QueryAnswer),
        (status = 400, description = REFUSED, body = crate::error::ErrorBody),
        (status = 401, description = "Not signed in", body = crate::error::ErrorBody),
        (status = 404, description = NOT_VISIBLE, body = crate::error::ErrorBody),
        (status = 503, description = UNAVAILABLE, body = crate::error::ErrorBody),
    ), security(("session" = []), ("token" = [])))]
pub async fn query_range(
    State(state): State<AppState>,
    CurrentUser(caller): CurrentUser,
    Path(name): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    answer(state, &caller, &name, Endpoint::QueryRange, query).await
}

#[utoipa::path(get, operation_id = "environment_metrics_series", path = "/api/v1/environments/{name}/metrics/series", tag = "metrics",
    description = "Prometheus' series look-up (`/api/v1/series`), each selector confined like a query's.",
    params(
        ("name" = String, Path, description = "The environment"),
        ("match[]" = Vec<String>, Query, description = "Series selectors, 1 to 20, each at most 4096 bytes", min_items = 1, max_items = 20),
        ("start" = Option<String>, Query, description = "RFC 3339 or Unix seconds; default 31 days before end"),
        ("end" = Option<String>, Query, description = "RFC 3339 or Unix seconds; default now; at most 31 days after start"),
    ),
    responses(
        (status = 200, description = SUCCESS, body = answer::SeriesAnswer),
        (status = 400, description = REFUSED, body = crate::error::ErrorBody),
        (status = 401, description = "Not signed in", body = crate::error::ErrorBody),
        (status = 404, description = NOT_VISIBLE, body = crate::error::ErrorBody),
        (status = 503, description = UNAVAILABLE, body = crate::error::ErrorBody),
    ), security(("session" = []), ("token" = [])))]
pub async fn series(
    State(state): State<AppState>,
    CurrentUser(caller): CurrentUser,
    Path(name): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    answer(state, &caller, &name, Endpoint::Series, query).await
}

#[utoipa::path(get, operation_id = "environment_metrics_labels", path = "/api/v1/environments/{name}/metrics/labels", tag = "metrics",
    description = "Prometheus' label names (`/api/v1/labels`) of the environment's series; each selector confined like a query's, none meaning all the namespace's series.",
    params(
        ("name" = String, Path, description = "The environment"),
        ("match[]" = Option<Vec<String>>, Query, description = "Series selectors, at most 20, each at most 4096 bytes", max_items = 20),
        ("start" = Option<String>, Query, description = "RFC 3339 or Unix seconds; default 31 days before end"),
        ("end" = Option<String>, Query, description = "RFC 3339 or Unix seconds; default now; at most 31 days after start"),
    ),
    responses(
        (status = 200, description = SUCCESS, body = answer::NamesAnswer),
        (status = 400, description = REFUSED, body = crate::error::ErrorBody),
        (status = 401, description = "Not signed in", body = crate::error::ErrorBody),
        (status = 404, description = NOT_VISIBLE, body = crate::error::ErrorBody),
        (status = 503, description = UNAVAILABLE, body = crate::error::ErrorBody),
    ), security(("session" = []), ("token" = [])))]
pub async fn labels(
    State(state): State<AppState>,
    CurrentUser(caller): CurrentUser,
    Path(name): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    answer(state, &caller, &name, Endpoint::Labels, query).await
}

#[utoipa::path(get, operation_id = "environment_metrics_label_values", path = "/api/v1/environments/{name}/metrics/label/{label}/values", tag = "metrics",
    description = "Prometheus' values of one label (`/api/v1/label/<label>/values`) among the environment's series; selectors as for `labels`.",
    params(
        ("name" = String, Path, description = "The environment"),
        ("label" = String, Path, description = "A label name", pattern = "^[a-zA-Z_][a-zA-Z0-9_]*$"),
        ("match[]" = Option<Vec<String>>, Query, description = "Series selectors, at most 20, each at most 4096 bytes", max_items = 20),
        ("start" = Option<String>, Query, description = "RFC 3339 or Unix seconds; default 31 days before end"),
        ("end" = Option<String>, Query, description = "RFC 3339 or Unix seconds; default now; at most 31 days after start"),
    ),
    responses(
        (status = 200, description = SUCCESS, body = answer::NamesAnswer),
        (status = 400, description = REFUSED, body = crate::error::ErrorBody),
        (status = 401, description = "Not signed in", body = crate::error::ErrorBody),
        (status = 404, description = NOT_VISIBLE, body = crate::error::ErrorBody),
        (status = 503, description = UNAVAILABLE, body = crate::error::ErrorBody),
    ), security(("session" = []), ("token" = [])))]
pub async fn label_values(
    State(state): State<AppState>,
    CurrentUser(caller): CurrentUser,
    Path((name, label)): Path<(String, String)>,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    answer(state, &caller, &name, Endpoint::LabelValues(label), query).await
}
