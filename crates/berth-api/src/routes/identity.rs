//! Verified emails and passwords: the mailed verify and reset links, the
//! resend, and changing one's password.

use crate::audit::{Action, RequestId};
use crate::error::ApiError;
use crate::extract::{ClientAddr, CurrentUser};
use crate::identities;
use crate::json::ApiJson;
use crate::state::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use berth_core::account::{Email, Password};
use berth_core::validation::ValidationErrors;
use berth_store::UserRecord;
use serde::Deserialize;
use serde_json::json;
use uuid::Uuid;

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VerifyRequest {
    /// The `token` of the mailed link.
    #[schema(min_length = 1, max_length = 200)]
    token: String,
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PasswordResetRequest {
    #[schema(max_length = 254)]
    email: String,
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct PasswordResetConfirm {
    /// The `token` of the mailed link.
    #[schema(min_length = 1, max_length = 200)]
    token: String,
    /// At least 10 characters, at most 1024 bytes, and not a common password.
    #[schema(min_length = 10)]
    new_password: String,
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct PasswordChange {
    #[schema(min_length = 1)]
    current_password: String,
    /// At least 10 characters, at most 1024 bytes, and not a common password.
    #[schema(min_length = 10)]
    new_password: String,
    /// End every other session and every personal access token (but the
    /// one this request uses); false when absent.
    revoke_other_sessions: Option<bool>,
}

/// A mailed link's token: bounded, so that nothing large is hashed.
fn link_token(raw: &str) -> Result<&str, ValidationErrors> {
    if raw.is_empty() || raw.len() > 200 {
        return Err(ValidationErrors::single(
            "token",
            "must be the token of the mailed link",
        ));
    }
    Ok(raw)
}

#[utoipa::path(post, operation_id = "accounts_verify", path = "/api/v1/auth/verify", tag = "accounts", request_body = VerifyRequest, description = "Verifies the signed-in account's email with the token of the link mailed to it. Only that account's session or token may use it: the owner of an address someone else registered is not made to verify the other's account by opening the link (they reset its password by mail instead, which ends the other's sessions).", responses(
    (status = 204, description = "The email is verified; memberships listed for it take effect"),
    (status = 400, description = "The link is unknown, expired, used or for another account (field token)", body = crate::error::ErrorBody),
    (status = 401, description = "Not logged in: the portal asks to log in and comes back", body = crate::error::ErrorBody),
    (status = 403, description = "CSRF token missing or wrong", body = crate::error::ErrorBody),
    (status = 503, description = "The store is unavailable; see Retry-After", body = crate::error::ErrorBody),
), security(("session" = []), ("token" = [])))]
pub async fn verify(
    State(state): State<AppState>,
    CurrentUser(principal): CurrentUser,
    request_id: RequestId,
    ApiJson(body): ApiJson<VerifyRequest>,
) -> Result<StatusCode, ApiError> {
    let token = link_token(&body.token)?;
    let user = state.auth.verify_email(token, &principal.user).await?;
    identities::ensure_soon(&state, user.id, user.email.clone());
    state
        .audit(own_action(&user, "auth.verify"), "success", &request_id)
        .await;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(post, operation_id = "accounts_verify_resend", path = "/api/v1/auth/verify/resend", tag = "accounts", responses(
    (status = 202, description = "A new link is mailed (nothing is sent when the email is verified or verification is off)"),
    (status = 401, description = "Not logged in", body = crate::error::ErrorBody),
    (status = 403, description = "CSRF token missing or wrong", body = crate::error::ErrorBody),
    (status = 429, description = "A link was mailed less than a minute ago, or five this hour; see Retry-After", body = crate::error::ErrorBody),
), security(("session" = []), ("token" = [])))]
pub async fn resend(
    State(state): State<AppState>,
    CurrentUser(principal): CurrentUser,
) -> Result<StatusCode, ApiError> {
    state.auth.resend_verification(&principal.user).await?;
    Ok(StatusCode::ACCEPTED)
}

#[utoipa::path(post, operation_id = "accounts_password_reset", path = "/api/v1/auth/password-reset", tag = "accounts", request_body = PasswordResetRequest, responses(
    (status = 202, description = "Whether or not the email has an account, alike; if it has, a link valid for 30 minutes is mailed (at most one a minute)"),
    (status = 400, description = "Not an email address (field email)", body = crate::error::ErrorBody),
))]
// Answers before anything is looked up, so that neither the answer nor its
// timing tells whether the address has an account.
pub async fn password_reset(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<PasswordResetRequest>,
) -> Result<StatusCode, ApiError> {
    let email = Email::parse("email", &body.email)?;
    state.auth.request_password_reset(email);
    Ok(StatusCode::ACCEPTED)
}

#[utoipa::path(post, operation_id = "accounts_password_reset_confirm", path = "/api/v1/auth/password-reset/confirm", tag = "accounts", request_body = PasswordResetConfirm, responses(
    (status = 204, description = "The password is set; every session, personal access token and kubeconfig of the account stops working"),
    (status = 400, description = "The link is unknown, expired or used (field token), or the password is weak or common (field newPassword)", body = crate::error::ErrorBody),
    (status = 503, description = "Too many passwords are being checked, or the store is unavailable; see Retry-After", body = crate::error::ErrorBody),
))]
pub async fn password_reset_confirm(
    State(state): State<AppState>,
    request_id: RequestId,
    ApiJson(body): ApiJson<PasswordResetConfirm>,
) -> Result<StatusCode, ApiError> {
    let mut errors = ValidationErrors::new();
    let token = errors.collect(link_token(&body.token));
    let password = errors.collect(berth_auth::new_password("newPassword", body.new_password));
    let (Some(token), Some(password)) = (token, password) else {
        return Err(errors.into());
    };
    let user = state.auth.reset_password(token, &password).await?;
    renew_identity(&state, user.id, &user).await;
    state
        .audit(
            own_action(&user, "auth.password_reset"),
            "success",
            &request_id,
        )
        .await;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(put, operation_id = "accounts_change_password", path = "/api/v1/me/password", tag = "accounts", request_body = PasswordChange, responses(
    (status = 204, description = "Changed; with revokeOtherSessions, and always when the password had to be changed (mustChangePassword), every other session and personal access token, and every kubeconfig, stop working"),
    (status = 400, description = "The new password is weak, common or the current one (field newPassword)", body = crate::error::ErrorBody),
    (status = 401, description = "Not logged in, or the current password is wrong (invalid_credentials)", body = crate::error::ErrorBody),
    (status = 403, description = "CSRF token missing or wrong", body = crate::error::ErrorBody),
    (status = 429, description = "Too many wrong passwords for this account, as for login; see Retry-After", body = crate::error::ErrorBody),
    (status = 503, description = "Too many passwords are being checked; see Retry-After", body = crate::error::ErrorBody),
), security(("session" = []), ("token" = [])))]
pub async fn change_password(
    State(state): State<AppState>,
    CurrentUser(principal): CurrentUser,
    ClientAddr(client): ClientAddr,
    request_id: RequestId,
    ApiJson(body): ApiJson<PasswordChange>,
) -> Result<StatusCode, ApiError> {
    let mut errors = ValidationErrors::new();
    let current = errors.collect(Password::given("currentPassword", body.current_password));
    let new = errors.collect(berth_auth::new_password("newPassword", body.new_password));
    let (Some(current), Some(new)) = (current, new) else {
        return Err(errors.into());
    };
    if new.expose() == current.expose() {
        return Err(ValidationErrors::single(
            "newPassword",
            "must differ from the current password",
        )
        .into());
    }
    // A password that must be changed was generated and shown where others
    // may have read it (a terminal, a pod's log): whoever signed in with it
    // meanwhile is signed out, whatever the caller asked.
    let revoke = body.revoke_other_sessions == Some(true) || principal.user.must_change_password;
    let result = state
        .auth
        .change_password(&principal, &current, &new, revoke, client)
        .await;
    let outcome = match &result {
        Ok(()) => "success",
        Err(berth_auth::AuthError::InvalidCredentials) => "failure",
        Err(_) => return result.map(|()| StatusCode::NO_CONTENT).map_err(Into::into),
    };
    let mut action = own_action(&principal.user, "auth.password_change");
    action.details["revokeOtherSessions"] = json!(revoke);
    state.audit(action, outcome, &request_id).await;
    result?;
    if revoke {
        renew_identity(&state, principal.user.id, &principal.user).await;
    }
    Ok(StatusCode::NO_CONTENT)
}

/// Ends every kubeconfig of the user (their identity goes, with every token
/// issued for it) and makes a fresh identity, which the controller binds
/// again. A cluster that is away is logged: kubeconfig tokens expire anyway
/// (`BERTH_KUBECONFIG_TTL`).
async fn renew_identity(state: &AppState, id: Uuid, user: &UserRecord) {
    match state.cluster.connection().await {
        Ok(connection) => {
            if let Err(error) = identities::remove(&connection.client, id).await {
                tracing::warn!(user_id = %id, %error, "kubeconfigs of a changed password could not be ended");
            }
        }
        Err(error) => {
            tracing::warn!(user_id = %id, %error, "kubeconfigs of a changed password could not be ended: no cluster");
        }
    }
    if state.auth.holds_memberships(user) {
        identities::ensure_soon(state, id, user.email.clone());
    }
}

/// An audit entry of the user's own doing; never with a secret.
fn own_action<'a>(user: &'a UserRecord, action: &'a str) -> Action<'a> {
    Action {
        actor: user.email.as_str(),
        action,
        target: format!("user/{}", user.email),
        environment: None,
        details: json!({}),
    }
}
