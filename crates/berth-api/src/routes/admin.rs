use crate::audit::{Action, RequestId};
use crate::error::ApiError;
use crate::extract::AdminUser;
use crate::json::ApiJson;
use crate::routes::UserView;
use crate::state::AppState;
use axum::extract::{Path, State};
use berth_auth::AuthError;
use berth_core::account::Role;
use berth_store::UserUpdate;
use serde::{Deserialize, Serialize};
use serde_json::json;
use uuid::Uuid;

#[derive(Serialize, utoipa::ToSchema)]
pub struct UserList {
    items: Vec<UserView>,
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateUserRequest {
    role: Option<Role>,
    disabled: Option<bool>,
}

#[utoipa::path(get, operation_id = "admin_list_users", path = "/api/v1/admin/users", tag = "admin", responses(
    (status = 200, description = "Every user, newest first", body = UserList),
    (status = 404, description = "Not an admin", body = crate::error::ErrorBody),
), security(("session" = []), ("token" = [])))]
pub async fn list_users(
    State(state): State<AppState>,
    _admin: AdminUser,
) -> Result<ApiJson<UserList>, ApiError> {
    let users = state.auth.store().list_users().await?;
    Ok(ApiJson(UserList {
        items: users.iter().map(UserView::from).collect(),
    }))
}

#[utoipa::path(patch, operation_id = "admin_update_user", path = "/api/v1/admin/users/{id}", tag = "admin", params(("id" = Uuid, Path)),
    request_body = UpdateUserRequest, responses(
    (status = 200, description = "Updated; a disabled user's sessions and tokens stop working", body = UserView),
    (status = 404, description = "No such user, or not an admin", body = crate::error::ErrorBody),
    (status = 409, description = "An admin cannot demote or disable themselves, nor the last enabled admin", body = crate::error::ErrorBody),
), security(("session" = []), ("token" = [])))]
pub async fn update_user(
    State(state): State<AppState>,
    AdminUser(admin): AdminUser,
    request_id: RequestId,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<UpdateUserRequest>,
) -> Result<ApiJson<UserView>, ApiError> {
    let id = Uuid::parse_str(&id).map_err(|_| ApiError::NotFound)?;
    // Keeps at least one admin who can undo mistakes.
    if id == admin.user.id && (body.role == Some(Role::Member) || body.disabled == Some(true)) {
        return Err(ApiError::Conflict(
            "you cannot demote or disable your own account".into(),
        ));
    }
    let update = UserUpdate {
        role: body.role,
        disabled: body.disabled,
    };
    let (outcome, target, user) = match state.auth.update_user(id, update).await {
        Ok(Some(user)) => ("success", user.email.clone(), Ok(user)),
        Ok(None) => return Err(ApiError::NotFound),
        // Recorded too: two admins racing to demote each other is worth seeing.
        Err(e @ AuthError::LastAdmin) => {
            let user = state.auth.store().user_by_id(id).await?;
            let target = user.ok_or(ApiError::NotFound)?.email;
            ("refused", target, Err(e))
        }
        Err(e) => return Err(e.into()),
    };
    let action = Action {
        actor: admin.user.email.as_str(),
        action: "user.update",
        target: format!("user/{target}"),
        environment: None,
        details: json!({ "id": id, "role": body.role, "disabled": body.disabled }),
    };
    state.audit(action, outcome, &request_id).await;
    let user = user?;
    tracing::info!(user_id = %id, role = ?body.role, disabled = ?body.disabled, "user updated by admin");
    Ok(ApiJson(UserView::from(&user)))
}
