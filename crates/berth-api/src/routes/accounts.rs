use crate::error::ApiError;
use crate::extract::{ClientAddr, CurrentUser, cleared_cookies, session_cookies};
use crate::json::ApiJson;
use crate::platform;
use crate::state::AppState;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::IntoResponse;
use berth_auth::NewSession;
use berth_core::account::{DisplayName, Email, Password, Role};
use berth_core::environment::Registration;
use berth_core::validation::ValidationErrors;
use berth_store::UserRecord;
use serde::{Deserialize, Serialize};
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
            created_at: user.created_at,
        }
    }
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RegisterRequest {
    email: String,
    password: String,
    display_name: Option<String>,
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    email: String,
    password: String,
}

#[utoipa::path(post, operation_id = "accounts_register", path = "/api/v1/auth/register", tag = "accounts", request_body = RegisterRequest, responses(
    (status = 201, description = "Account created; session cookies set", body = UserView),
    (status = 400, description = "Invalid field", body = crate::error::ErrorBody),
    (status = 403, description = "Registration is closed", body = crate::error::ErrorBody),
    (status = 409, description = "The email has an account", body = crate::error::ErrorBody),
))]
pub async fn register(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<RegisterRequest>,
) -> Result<impl IntoResponse, ApiError> {
    let mut errors = ValidationErrors::new();
    let email = errors.collect(Email::parse("email", &body.email));
    let password = errors.collect(Password::new_secret("password", body.password));
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
    let session = state.auth.register(registration, open).await?;
    Ok(with_session(StatusCode::CREATED, &state, session))
}

#[utoipa::path(post, operation_id = "accounts_login", path = "/api/v1/auth/login", tag = "accounts", request_body = LoginRequest, responses(
    (status = 200, description = "Logged in; session cookies set", body = UserView),
    (status = 401, description = "Unknown email or wrong password, alike", body = crate::error::ErrorBody),
    (status = 429, description = "Too many failed attempts", body = crate::error::ErrorBody),
))]
pub async fn login(
    State(state): State<AppState>,
    ClientAddr(client): ClientAddr,
    ApiJson(body): ApiJson<LoginRequest>,
) -> Result<impl IntoResponse, ApiError> {
    let mut errors = ValidationErrors::new();
    let email = errors.collect(Email::parse("email", &body.email));
    let password = errors.collect(Password::given("password", body.password));
    let (Some(email), Some(password)) = (email, password) else {
        return Err(errors.into());
    };
    let session = state.auth.login(&email, &password, client).await?;
    Ok(with_session(StatusCode::OK, &state, session))
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
