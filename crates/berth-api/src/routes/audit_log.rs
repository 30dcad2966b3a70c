use crate::error::ApiError;
use crate::extract::AdminUser;
use crate::json::ApiJson;
use crate::query::ApiQuery;
use crate::state::AppState;
use axum::extract::State;
use berth_core::validation::ValidationErrors;
use berth_store::AuditFilter;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct AuditQuery {
    /// Only entries by this actor (an email, or `system`).
    actor: Option<String>,
    /// Only entries about this environment.
    environment: Option<String>,
    /// Only entries at or after this RFC 3339 time.
    #[param(format = DateTime)]
    since: Option<String>,
    /// At most this many entries (1 to 1000, default 200).
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<u32>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct AuditView {
    #[serde(with = "time::serde::rfc3339")]
    at: OffsetDateTime,
    actor: String,
    action: String,
    target: String,
    outcome: String,
    #[serde(rename = "requestId")]
    request_id: Option<String>,
    details: serde_json::Value,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct AuditList {
    items: Vec<AuditView>,
}

#[utoipa::path(get, operation_id = "audit_log_list", path = "/api/v1/admin/audit", tag = "admin", params(AuditQuery), responses(
    (status = 200, description = "Matching entries, newest first", body = AuditList),
    (status = 400, description = "Invalid filter", body = crate::error::ErrorBody),
    (status = 404, description = "Not an admin", body = crate::error::ErrorBody),
), security(("session" = []), ("token" = [])))]
pub async fn list(
    State(state): State<AppState>,
    _admin: AdminUser,
    ApiQuery(query): ApiQuery<AuditQuery>,
) -> Result<ApiJson<AuditList>, ApiError> {
    let since = query
        .since
        .as_deref()
        .map(|s| OffsetDateTime::parse(s, &Rfc3339))
        .transpose()
        .map_err(|_| {
            ValidationErrors::single(
                "since",
                "must be an RFC 3339 time such as 2026-01-31T12:00:00Z",
            )
        })?;
    let limit = query.limit.unwrap_or(200);
    if !(1..=1000).contains(&limit) {
        return Err(ValidationErrors::single("limit", "must be from 1 to 1000").into());
    }
    let filter = AuditFilter {
        actor: query.actor,
        environment: query.environment,
        since,
        limit,
    };
    let entries = state.auth.store().audit(&filter).await?;
    let items = entries
        .into_iter()
        .map(|e| AuditView {
            at: e.at,
            actor: e.actor,
            action: e.action,
            target: e.target,
            outcome: e.outcome,
            request_id: e.request_id,
            details: e.details,
        })
        .collect();
    Ok(ApiJson(AuditList { items }))
}
