use crate::audit::{Action, RequestId};
use crate::error::ApiError;
use crate::extract::AdminUser;
use crate::identities;
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
#[serde(rename_all = "camelCase")]
pub struct UserList {
    items: Vec<UserView>,
    /// Whether addresses must be verified by a mailed link (a mail server
    /// is configured, `BERTH_SMTP_URL`); false: every account counts as
    /// verified.
    email_verification: bool,
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateUserRequest {
    role: Option<Role>,
    disabled: Option<bool>,
    /// `true` marks the email verified, as if its owner had opened the
    /// mailed link (an extension of the contract's body); `false` is refused.
    #[serde(rename = "emailVerified")]
    email_verified: Option<bool>,
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
        email_verification: state.auth.verification_required(),
    }))
}

#[utoipa::path(patch, operation_id = "admin_update_user", path = "/api/v1/admin/users/{id}", tag = "admin", params(("id" = Uuid, Path)),
    request_body = UpdateUserRequest, responses(
    (status = 200, description = "Updated; a disabled user's sessions and tokens stop working; emailVerified true marks the email verified", body = UserView),
    (status = 400, description = "Invalid field (emailVerified false)", body = crate::error::ErrorBody),
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
    if body.email_verified == Some(false) {
        return Err(berth_core::validation::ValidationErrors::single(
            "emailVerified",
            "can only be set to true: an address, once verified, stays so",
        )
        .into());
    }
    let update = UserUpdate {
        role: body.role,
        disabled: body.disabled,
        email_verified: body.email_verified,
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
        details: json!({ "id": id, "role": body.role, "disabled": body.disabled, "emailVerified": body.email_verified }),
    };
    state.audit(action, outcome, &request_id).await;
    let user = user?;
    match body.disabled {
        Some(true) => end_identity(&state, id).await?,
        // Verified now, or enabled again: memberships count (again).
        _ if (body.disabled == Some(false) || body.email_verified == Some(true))
            && state.auth.holds_memberships(&user) =>
        {
            identities::ensure_soon(&state, id, user.email.clone())
        }
        _ => {}
    }
    tracing::info!(user_id = %id, role = ?body.role, disabled = ?body.disabled, "user updated by admin");
    Ok(ApiJson(UserView::from(&user)))
}

/// Deletes a disabled user's identity, ending all of their kubeconfigs at
/// once. Without any cluster connection (none configured, or never
/// reached) the disable stands with a warning, and the identity goes once
/// the cluster is reached (`identities::remove_disabled_at_start`); a
/// cluster that fails the deletion gets a 503, so the admin sends the
/// request again.
async fn end_identity(state: &AppState, id: Uuid) -> Result<(), ApiError> {
    let connection = match state.cluster.connection().await {
        Ok(connection) => connection,
        Err(error) => {
            tracing::warn!(user_id = %id, %error, "a disabled user's identity could not be deleted: no cluster");
            return Ok(());
        }
    };
    identities::remove(&connection.client, id)
        .await
        .map_err(|e| ApiError::Unavailable {
            message: "the account is disabled, but the cluster did not confirm that its kubeconfigs stopped working; send the request again".into(),
            details: vec![],
            retry_after: std::time::Duration::from_secs(2),
        }
        .logged(&e))
}
