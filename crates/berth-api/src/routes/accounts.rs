use crate::audit::{Action, RequestId};
use crate::error::ApiError;
use crate::extract::{ClientAddr, CurrentUser, cleared_cookies, session_cookies};
use crate::json::ApiJson;
use crate::platform;
use crate::state::AppState;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::IntoResponse;
use berth_auth::{AuthError, NewSession};
use berth_core::account::{DisplayName, Email, Password, Role};
use berth_core::environment::Registration;
use berth_core::validation::ValidationErrors;
use berth_store::UserRecord;
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::net::IpAddr;
use time::OffsetDateTime;
use uuid::Uuid;

/// A person's account as the API shows it.
#[derive(Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct UserView {
    pub id: Uuid,
    pub email: String,
    pub display_name: String,
    pub role: Role,
    pub disabled: bool,
    /// The owner proved they receive mail at `email` (always true while
    /// verification is off, i.e. no mail server is configured). Until then
    /// the account holds no membership and cannot create environments.
    pub email_verified: bool,
    /// The password was generated (the first admin's, shown once on the
    /// server's terminal) and must be changed with `PUT /api/v1/me/password`;
    /// until then every other call but `GET /api/v1/me` and logout answers
    /// 403 `forbidden`.
    pub must_change_password: bool,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

impl From<&UserRecord> for UserView {
    fn from(user: &UserRecord) -> Self {
        Self {
            id: user.id,
            email: user.email.to_string(),
            display_name: user.display_name.as_str().to_owned(),
            role: user.role,
            disabled: user.disabled,
            email_verified: user.email_verified,
            must_change_password: user.must_change_password,
            created_at: user.created_at,
        }
    }
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RegisterRequest {
    #[schema(schema_with = crate::openapi_common::email)]
    email: String,
    #[schema(schema_with = crate::openapi_common::new_password)]
    password: String,
    #[schema(schema_with = crate::openapi_common::display_name, required = false)]
    display_name: Option<String>,
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    #[schema(schema_with = crate::openapi_common::email)]
    email: String,
    #[schema(schema_with = crate::openapi_common::given_password)]
    password: String,
}

#[utoipa::path(post, operation_id = "accounts_register", path = "/api/v1/auth/register", tag = "accounts", request_body = RegisterRequest, responses(
    (status = 201, description = "Account created; session cookies set", body = UserView),
    (status = 400, description = "Invalid field; a password under 10 characters or a common one (field password)", body = crate::error::ErrorBody),
    (status = 403, description = "Registration is closed", body = crate::error::ErrorBody),
    (status = 409, description = "The email has an account", body = crate::error::ErrorBody),
    (status = 429, description = "Too many registrations from this client; see Retry-After", body = crate::error::ErrorBody),
    (status = 503, description = "Too many passwords are being checked; see Retry-After", body = crate::error::ErrorBody),
))]
// Opens an account (throttled per client) and logs it in.
pub async fn register(
    State(state): State<AppState>,
    ClientAddr(client): ClientAddr,
    request_id: RequestId,
    ApiJson(body): ApiJson<RegisterRequest>,
) -> Result<impl IntoResponse, ApiError> {
    local_login_on(&state)?;
    let mut errors = ValidationErrors::new();
    let email = errors.collect(Email::parse("email", &body.email));
    let password = errors.collect(berth_auth::new_password("password", body.password));
    let display_name = errors.collect(DisplayName::parse(
        "displayName",
        body.display_name.as_deref(),
        email.as_ref(),
    ));
    let (Some(email), Some(password), Some(display_name)) = (email, password, display_name) else {
        return Err(errors.into());
    };
    let open = platform::policy(state.auth.store()).await?.registration == Registration::Open;
    let registration = berth_auth::Registration {
        email,
        password,
        display_name,
    };
    let session = state.auth.register(registration, open, client).await?;
    // An address still to be verified gets no identity in the cluster: the
    // controller binds identities by address, so one made now would hand the
    // account every membership listed for an address it has not proved.
    if state.auth.holds_memberships(&session.user) {
        crate::identities::ensure_soon(&state, session.user.id, session.user.email.clone());
    }
    let action = account_action(&session.user.email, "auth.register", client);
    state.audit(action, "success", &request_id).await;
    Ok(with_session(StatusCode::CREATED, &state, session))
}

#[utoipa::path(post, operation_id = "accounts_login", path = "/api/v1/auth/login", tag = "accounts", request_body = LoginRequest, responses(
    (status = 200, description = "Logged in; session cookies set", body = UserView),
    (status = 400, description = "Invalid field", body = crate::error::ErrorBody),
    (status = 401, description = "Unknown email or wrong password, alike", body = crate::error::ErrorBody),
    (status = 403, description = "The account is disabled", body = crate::error::ErrorBody),
    (status = 429, description = "Too many failed attempts for this email from this client, for this email, or from this client; see Retry-After", body = crate::error::ErrorBody),
    (status = 503, description = "Too many passwords are being checked; see Retry-After", body = crate::error::ErrorBody),
))]
// Logs in; every judged attempt, successful or not, is audited.
pub async fn login(
    State(state): State<AppState>,
    ClientAddr(client): ClientAddr,
    request_id: RequestId,
    ApiJson(body): ApiJson<LoginRequest>,
) -> Result<impl IntoResponse, ApiError> {
    local_login_on(&state)?;
    let mut errors = ValidationErrors::new();
    let email = errors.collect(Email::parse("email", &body.email));
    let password = errors.collect(Password::given("password", body.password));
    let (Some(email), Some(password)) = (email, password) else {
        return Err(errors.into());
    };
    let result = state.auth.login(&email, &password, client).await;
    // Throttled and unjudged attempts are not recorded one by one: a flood
    // of them would grow the log without bound. Judged ones are bounded by
    // the throttle.
    let judged = match &result {
        Ok(_) => Some(("success", None)),
        Err(AuthError::InvalidCredentials) => Some(("failure", Some("invalid_credentials"))),
        Err(AuthError::Disabled) => Some(("failure", Some("disabled"))),
        Err(_) => None,
    };
    if let Some((outcome, reason)) = judged {
        let mut action = account_action(&email, "auth.login", client);
        if let Some(reason) = reason {
            action.details["reason"] = json!(reason);
        }
        state.audit(action, outcome, &request_id).await;
    }
    Ok(with_session(StatusCode::OK, &state, result?))
}

/// Refuses email and password login and registration when they are
/// switched off (`BERTH_LOCAL_LOGIN=false`: single sign-on only).
fn local_login_on(state: &AppState) -> Result<(), ApiError> {
    if state.settings.local_login {
        Ok(())
    } else {
        Err(ApiError::Forbidden(
            "Email and password login is switched off here; sign in with single sign-on",
        ))
    }
}

/// An audit entry of `email`'s own doing from `client`; never with a password.
fn account_action<'a>(email: &'a Email, action: &'a str, client: Option<IpAddr>) -> Action<'a> {
    Action {
        actor: email.as_str(),
        action,
        target: format!("user/{email}"),
        environment: None,
        details: json!({ "client": client.map(|ip| ip.to_string()) }),
    }
}

#[utoipa::path(post, operation_id = "accounts_logout", path = "/api/v1/auth/logout", tag = "accounts", responses(
    (status = 204, description = "The session is revoked"),
    (status = 401, description = "Not logged in", body = crate::error::ErrorBody),
))]
pub async fn logout(
    State(state): State<AppState>,
    CurrentUser(principal): CurrentUser,
) -> Result<impl IntoResponse, ApiError> {
    state.auth.logout(&principal).await?;
    let mut headers = HeaderMap::new();
    for cookie in cleared_cookies(state.settings.secure_cookies) {
        headers.append(header::SET_COOKIE, cookie);
    }
    Ok((StatusCode::NO_CONTENT, headers))
}

#[utoipa::path(get, operation_id = "accounts_me", path = "/api/v1/me", tag = "accounts", responses(
    (status = 200, description = "The caller", body = UserView),
    (status = 401, description = "Not logged in", body = crate::error::ErrorBody),
), security(("session" = []), ("token" = [])))]
pub async fn me(CurrentUser(principal): CurrentUser) -> ApiJson<UserView> {
    ApiJson(UserView::from(&principal.user))
}

fn with_session(
    status: StatusCode,
    state: &AppState,
    session: NewSession,
) -> impl IntoResponse + use<> {
    let mut headers = HeaderMap::new();
    for cookie in session_cookies(
        &session.secret,
        session.expires_at,
        state.settings.secure_cookies,
    ) {
        headers.append(header::SET_COOKIE, cookie);
    }
    (status, headers, ApiJson(UserView::from(&session.user)))
}
