//! Environment requests over policy: admins approve or reject them; requesters
//! see their own, with the admin's reason.

use crate::audit::{Action, RequestId};
use crate::environments as envs;
use crate::error::ApiError;
use crate::extract::{AdminUser, CurrentUser};
use crate::json::ApiJson;
use crate::query::ApiQuery;
use crate::state::AppState;
use axum::extract::{Path, State};
use berth_core::validation::ValidationErrors;
use berth_store::{RequestKind, RequestRecord, RequestState};
use serde::{Deserialize, Serialize};
use serde_json::json;
use time::OffsetDateTime;
use uuid::Uuid;

#[derive(Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RequestView {
    id: Uuid,
    environment: String,
    #[schema(schema_with = crate::openapi::request_kind)]
    kind: &'static str,
    requester: String,
    /// The spec asked, resolved as the environment would hold it.
    #[schema(value_type = berth_core::environment::EnvironmentSpecInput)]
    spec: serde_json::Value,
    /// Why it needs an admin.
    reasons: Vec<String>,
    #[schema(schema_with = crate::openapi::request_state)]
    state: &'static str,
    /// The admin's reason, when rejected.
    reason: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option")]
    decided_at: Option<OffsetDateTime>,
}

/// The answer when the policy holds a create or change for an admin (202).
#[derive(Serialize, utoipa::ToSchema)]
pub struct RequestAnswer {
    pub request: RequestView,
}

impl From<RequestRecord> for RequestView {
    fn from(r: RequestRecord) -> Self {
        Self {
            id: r.id,
            environment: r.environment,
            kind: match r.kind {
                RequestKind::Create => "create",
                RequestKind::Update => "update",
            },
            requester: r.requester_email,
            spec: r.spec,
            reasons: r.reasons,
            state: r.state.as_str(),
            reason: r.decision,
            created_at: r.created_at,
            decided_at: r.decided_at,
        }
    }
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct RequestList {
    items: Vec<RequestView>,
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct StateQuery {
    #[param(schema_with = crate::openapi_common::request_state_filter)]
    state: Option<String>,
}

fn parse_state(query: &StateQuery) -> Result<Option<RequestState>, ApiError> {
    query
        .state
        .as_deref()
        .map(|s| {
            RequestState::parse(s).ok_or_else(|| {
                ValidationErrors::single("state", "must be pending, approved or rejected").into()
            })
        })
        .transpose()
}

#[utoipa::path(get, operation_id = "requests_list", path = "/api/v1/admin/requests", tag = "admin", params(StateQuery), responses(
    (status = 200, description = "Requests, newest first", body = RequestList),
), security(("session" = []), ("token" = [])))]
pub async fn list(
    State(state): State<AppState>,
    _admin: AdminUser,
    ApiQuery(query): ApiQuery<StateQuery>,
) -> Result<ApiJson<RequestList>, ApiError> {
    let records = state
        .auth
        .store()
        .requests(parse_state(&query)?, None)
        .await?;
    Ok(ApiJson(RequestList {
        items: records.into_iter().map(RequestView::from).collect(),
    }))
}

/// The caller's own requests, so they see what was decided and why.
#[utoipa::path(get, operation_id = "requests_mine", path = "/api/v1/requests", tag = "environments", params(StateQuery), responses(
    (status = 200, description = "The caller's requests, newest first", body = RequestList),
), security(("session" = []), ("token" = [])))]
pub async fn mine(
    State(state): State<AppState>,
    CurrentUser(caller): CurrentUser,
    ApiQuery(query): ApiQuery<StateQuery>,
) -> Result<ApiJson<RequestList>, ApiError> {
    let records = state
        .auth
        .store()
        .requests(parse_state(&query)?, Some(caller.user.id))
        .await?;
    Ok(ApiJson(RequestList {
        items: records.into_iter().map(RequestView::from).collect(),
    }))
}

async fn pending(state: &AppState, id: &str) -> Result<RequestRecord, ApiError> {
    let id = Uuid::parse_str(id).map_err(|_| ApiError::NotFound)?;
    let record = state
        .auth
        .store()
        .request(id)
        .await?
        .ok_or(ApiError::NotFound)?;
    if record.state != RequestState::Pending {
        return Err(ApiError::Conflict(format!(
            "this request was {} already",
            record.state.as_str()
        )));
    }
    Ok(record)
}

#[utoipa::path(post, operation_id = "requests_approve", path = "/api/v1/admin/requests/{id}/approve", tag = "admin", params(("id" = Uuid, Path)), responses(
    (status = 200, description = "Approved; the environment is created or changed as requested", body = RequestView),
    (status = 404, description = "No such request", body = crate::error::ErrorBody),
    (status = 409, description = "Already decided; the name was taken meanwhile; or the environment changed, or was replaced, since the request was filed (the request is then rejected with that reason)", body = crate::error::ErrorBody),
), security(("session" = []), ("token" = [])))]
pub async fn approve(
    State(state): State<AppState>,
    AdminUser(admin): AdminUser,
    request_id: RequestId,
    Path(id): Path<String>,
) -> Result<ApiJson<RequestView>, ApiError> {
    let record = pending(&state, &id).await?;
    envs::service::approve(&state, &admin, &request_id, &record).await?;
    let store = state.auth.store();
    let decided = store.request(record.id).await?.ok_or(ApiError::NotFound)?;
    Ok(ApiJson(decided.into()))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RejectBody {
    #[schema(schema_with = crate::openapi_common::reason)]
    reason: String,
}

#[utoipa::path(post, operation_id = "requests_reject", path = "/api/v1/admin/requests/{id}/reject", tag = "admin", params(("id" = Uuid, Path)),
    request_body = RejectBody, responses(
    (status = 200, description = "Rejected; the requester sees the reason", body = RequestView),
    (status = 409, description = "Already decided", body = crate::error::ErrorBody),
), security(("session" = []), ("token" = [])))]
pub async fn reject(
    State(state): State<AppState>,
    AdminUser(admin): AdminUser,
    request_id: RequestId,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<RejectBody>,
) -> Result<ApiJson<RequestView>, ApiError> {
    let reason = body.reason.trim();
    if reason.is_empty() || reason.chars().count() > 1000 {
        return Err(
            ValidationErrors::single("reason", "must say why, in 1 to 1000 characters").into(),
        );
    }
    let record = pending(&state, &id).await?;
    let store = state.auth.store();
    if !store
        .decide_request(
            record.id,
            RequestState::Rejected,
            admin.user.id,
            Some(reason),
        )
        .await?
    {
        return Err(ApiError::Conflict(
            "another admin decided this request first".into(),
        ));
    }
    let action = Action {
        actor: admin.user.email.as_str(),
        action: "request.reject",
        target: format!("request/{}", record.id),
        environment: Some(&record.environment),
        details: json!({ "reason": reason }),
    };
    state.audit(action, "success", &request_id).await;
    let decided = store.request(record.id).await?.ok_or(ApiError::NotFound)?;
    Ok(ApiJson(decided.into()))
}
