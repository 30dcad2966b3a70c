use crate::audit::{Action, RequestId};
use crate::error::ApiError;
use crate::extract::AdminUser;
use crate::json::ApiJson;
use crate::platform;
use crate::policy_object;
use crate::state::AppState;
use axum::extract::State;
use berth_core::environment::{Policy, PolicyInput};
use serde_json::json;

#[utoipa::path(get, operation_id = "policy_get", path = "/api/v1/admin/policy", tag = "admin", responses(
    (status = 200, description = "The policy in force", body = PolicyInput),
    (status = 404, description = "Not an admin", body = crate::error::ErrorBody),
), security(("session" = []), ("token" = [])))]
pub async fn get(
    State(state): State<AppState>,
    _admin: AdminUser,
) -> Result<ApiJson<PolicyInput>, ApiError> {
    Ok(ApiJson(
        platform::policy(state.auth.store()).await?.to_input(),
    ))
}

/// Replaces the policy; fields left out take their defaults. The cluster
/// gets it too (`policy_object`), for kubectl and GitOps writes.
#[utoipa::path(put, operation_id = "policy_put", path = "/api/v1/admin/policy", tag = "admin", request_body = PolicyInput, responses(
    (status = 200, description = "The policy now in force", body = PolicyInput),
    (status = 400, description = "Invalid field", body = crate::error::ErrorBody),
    (status = 404, description = "Not an admin", body = crate::error::ErrorBody),
), security(("session" = []), ("token" = [])))]
pub async fn put(
    State(state): State<AppState>,
    AdminUser(admin): AdminUser,
    request_id: RequestId,
    ApiJson(body): ApiJson<PolicyInput>,
) -> Result<ApiJson<PolicyInput>, ApiError> {
    let policy = Policy::parse(&body)?;
    platform::save_policy(state.auth.store(), &policy).await?;
    policy_object::publish_in_background(
        state.cluster.clone(),
        state.auth.store().clone(),
        state.settings.reserved_names.clone(),
    );
    let saved = policy.to_input();
    let action = Action {
        actor: admin.user.email.as_str(),
        action: "policy.update",
        target: "policy".into(),
        environment: None,
        details: json!({ "policy": saved }),
    };
    state.audit(action, "success", &request_id).await;
    Ok(ApiJson(saved))
}
