//! Single sign-on routes: which sign-ins the login page offers, the redirect
//! to the OpenID provider and its answer (`crate::oidc` decides).

use crate::audit::{Action, RequestId};
use crate::error::ApiError;
use crate::extract::{ClientAddr, cookie, session_cookies};
use crate::json::ApiJson;
use crate::oidc::{OidcError, SsoFailure, is_local_path};
use crate::query::ApiQuery;
use crate::state::AppState;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use berth_auth::Secret;
use berth_core::validation::ValidationErrors;
use serde::{Deserialize, Serialize};
use serde_json::json;
use subtle::ConstantTimeEq;

/// The cookie that ties a sign-in to the browser that started it.
const STATE_COOKIE: &str = "berth_oidc_state";
/// The path it is sent to, and only there.
const STATE_COOKIE_PATH: &str = "/api/v1/auth/oidc";
/// Where the OpenID provider sends the browser back to.
pub const CALLBACK_PATH: &str = "/api/v1/auth/oidc/callback";
const LOGIN_PATH: &str = "/api/v1/auth/oidc/login";

/// How people can sign in, for the login page.
#[derive(Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AuthProviders {
    /// Whether email and password login (and registration) are on.
    local_login: bool,
    /// The single sign-on provider, when one is configured.
    oidc: Option<OidcProvider>,
}

/// A single sign-on provider as the login page offers it.
#[derive(Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct OidcProvider {
    /// Its name: "Sign in with <name>".
    name: String,
    /// Where the browser goes to start signing in (add `?next=/path`).
    login_url: String,
}

#[utoipa::path(get, operation_id = "auth_providers", path = "/api/v1/auth/providers", tag = "accounts", responses(
    (status = 200, description = "The ways to sign in", body = AuthProviders),
))]
pub async fn providers(State(state): State<AppState>) -> ApiJson<AuthProviders> {
    ApiJson(AuthProviders {
        local_login: state.settings.local_login,
        oidc: state.settings.oidc.as_ref().map(|oidc| OidcProvider {
            name: oidc.config().name.clone(),
            login_url: LOGIN_PATH.to_owned(),
        }),
    })
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct LoginParams {
    /// A path of this site to land on after signing in (default `/`).
    next: Option<String>,
}

#[utoipa::path(get, operation_id = "auth_oidc_login", path = "/api/v1/auth/oidc/login", tag = "accounts", params(LoginParams), responses(
    (status = 302, description = "To the OpenID provider's authorization endpoint (authorization code, PKCE S256, state and nonce); sets the HttpOnly sign-in state cookie"),
    (status = 400, description = "next is not a path of this site", body = crate::error::ErrorBody),
    (status = 404, description = "No OpenID provider is configured", body = crate::error::ErrorBody),
    (status = 503, description = "The OpenID provider is not reachable; see Retry-After", body = crate::error::ErrorBody),
))]
pub async fn login(
    State(state): State<AppState>,
    headers: HeaderMap,
    ApiQuery(params): ApiQuery<LoginParams>,
) -> Result<Response, ApiError> {
    let oidc = state.settings.oidc.as_ref().ok_or(ApiError::NotFound)?;
    let next = params.next.unwrap_or_else(|| "/".to_owned());
    if !is_local_path(&next) {
        return Err(ValidationErrors::single(
            "next",
            "must be a path of this site, such as /environments",
        )
        .into());
    }
    let redirect_uri = callback_url(&state, &headers)?;
    let redirect = oidc
        .begin(&state.auth, &redirect_uri, &next)
        .await
        .map_err(into_api_error)?;
    let mut response = (StatusCode::FOUND, [(header::LOCATION, redirect.url)]).into_response();
    let secure = if state.settings.secure_cookies {
        "; Secure"
    } else {
        ""
    };
    let cookie = format!(
        "{STATE_COOKIE}={}; Path={STATE_COOKIE_PATH}; Max-Age={}; HttpOnly; SameSite=Lax{secure}",
        redirect.state.expose(),
        crate::oidc::LOGIN_TTL.as_secs()
    );
    response.headers_mut().append(
        header::SET_COOKIE,
        HeaderValue::from_str(&cookie).map_err(|e| ApiError::Internal(e.to_string()))?,
    );
    Ok(response)
}

/// Where the provider sends the browser back: Berth's public URL, else the
/// host this request came to (the provider only accepts registered ones).
fn callback_url(state: &AppState, headers: &HeaderMap) -> Result<String, ApiError> {
    if let Some(public) = &state
        .settings
        .oidc
        .as_ref()
        .and_then(|o| o.config().public_url.clone())
    {
        return Ok(format!("{}{CALLBACK_PATH}", public.trim_end_matches('/')));
    }
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .filter(|h| {
            !h.is_empty()
                && h.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-.:[]".contains(&b))
        })
        .ok_or_else(|| ApiError::from(ValidationErrors::single("Host", "must name this server")))?;
    let scheme = if state.settings.secure_cookies {
        "https"
    } else {
        "http"
    };
    Ok(format!("{scheme}://{host}{CALLBACK_PATH}"))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct CallbackParams {
    /// The state the sign-in started with.
    state: Option<String>,
    /// The authorization code.
    code: Option<String>,
    /// The provider's error, when it did not sign the person in.
    error: Option<String>,
}

#[utoipa::path(get, operation_id = "auth_oidc_callback", path = "/api/v1/auth/oidc/callback", tag = "accounts", params(CallbackParams), responses(
    (status = 302, description = "Signed in: session cookies set, to the page the sign-in started for"),
    (status = 401, description = "A bad, used or expired state, a code or ID token that does not verify, the provider's refusal, an email it does not vouch for or none, or no account while sign-up is off. Browsers (Accept: text/html) get a page that leads to the login page, which says why (/login?ssoError=<code>)", body = crate::error::ErrorBody),
    (status = 403, description = "The account is disabled", body = crate::error::ErrorBody),
    (status = 404, description = "No OpenID provider is configured", body = crate::error::ErrorBody),
    (status = 503, description = "The OpenID provider is not reachable; see Retry-After", body = crate::error::ErrorBody),
))]
pub async fn callback(
    State(state): State<AppState>,
    ClientAddr(client): ClientAddr,
    request_id: RequestId,
    headers: HeaderMap,
    axum::extract::Query(params): axum::extract::Query<CallbackParams>,
) -> Result<Response, ApiError> {
    let oidc = state.settings.oidc.as_ref().ok_or(ApiError::NotFound)?;
    let browser = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("text/html"));
    let result = async {
        let given = params.state.as_deref().unwrap_or_default();
        let kept = cookie(&headers, STATE_COOKIE).unwrap_or_default();
        // Only the browser that started the sign-in may finish it: a code
        // and state sent to someone else's browser sign nobody in there.
        if given.is_empty() || !bool::from(given.as_bytes().ct_eq(kept.as_bytes())) {
            return Err(OidcError::Refused(
                SsoFailure::State,
                "state cookie missing or different".into(),
            ));
        }
        let pending = oidc.take(&state.auth, &Secret::from_client(given)).await?;
        if let Some(error) = &params.error {
            return Err(OidcError::Refused(
                SsoFailure::Provider,
                format!("provider error {error:?}"),
            ));
        }
        let code = params
            .code
            .as_deref()
            .filter(|c| !c.is_empty())
            .ok_or_else(|| OidcError::Refused(SsoFailure::Token, "no code".into()))?;
        let identity = oidc.identity(&pending, code).await?;
        let (session, claimed) = oidc.sign_in(&state.auth, &identity).await?;
        Ok((session, claimed, pending.next_path))
    }
    .await;
    match result {
        Ok((session, claimed, next)) => {
            if claimed.0 {
                crate::identities::renew_soon(&state, session.user.id, session.user.email.clone());
            } else {
                crate::identities::ensure_soon(&state, session.user.id, session.user.email.clone());
            }
            let action = sso_action(session.user.email.as_str(), client, None);
            state.audit(action, "success", &request_id).await;
            let mut response = (StatusCode::FOUND, [(header::LOCATION, next)]).into_response();
            for value in session_cookies(
                &session.secret,
                session.expires_at,
                state.settings.secure_cookies,
            ) {
                response.headers_mut().append(header::SET_COOKIE, value);
            }
            clear_state_cookie(&mut response, state.settings.secure_cookies);
            Ok(response)
        }
        Err(OidcError::Refused(failure, cause)) => {
            tracing::info!(reason = failure.code(), %cause, "single sign-on refused");
            let action = sso_action("unknown", client, Some(failure.code()));
            state.audit(action, "failure", &request_id).await;
            let mut response = refusal(failure, browser);
            clear_state_cookie(&mut response, state.settings.secure_cookies);
            Ok(response)
        }
        Err(other) => Err(into_api_error(other)),
    }
}

fn sso_action<'a>(
    actor: &'a str,
    client: Option<std::net::IpAddr>,
    reason: Option<&str>,
) -> Action<'a> {
    let mut details = json!({ "client": client.map(|ip| ip.to_string()), "method": "oidc" });
    if let Some(reason) = reason {
        details["reason"] = json!(reason);
    }
    Action {
        actor,
        action: "auth.login",
        target: format!("user/{actor}"),
        environment: None,
        details,
    }
}

fn clear_state_cookie(response: &mut Response, secure: bool) {
    let secure = if secure { "; Secure" } else { "" };
    let value = format!(
        "{STATE_COOKIE}=; Path={STATE_COOKIE_PATH}; Max-Age=0; HttpOnly; SameSite=Lax{secure}"
    );
    response.headers_mut().append(
        header::SET_COOKIE,
        HeaderValue::from_str(&value).expect("cookie is ASCII"),
    );
}

/// The contract's error answer; for a browser, a page leading on to the
/// portal's login page, which says why, with the same status.
fn refusal(failure: SsoFailure, browser: bool) -> Response {
    let (status, code) = match failure {
        SsoFailure::Disabled => (StatusCode::FORBIDDEN, "forbidden"),
        _ => (StatusCode::UNAUTHORIZED, "unauthenticated"),
    };
    if browser {
        // The codes are fixed identifiers, safe in a URL and in HTML.
        let target = format!("/login?ssoError={}", failure.code());
        let page = format!(
            "<!doctype html><html><head><meta charset=\"utf-8\">\
             <meta http-equiv=\"refresh\" content=\"0; url={target}\"><title>Sign-in failed</title></head>\
             <body><p>{}.</p><p><a href=\"{target}\">Back to sign in</a></p></body></html>",
            failure.message()
        );
        return (
            status,
            [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
            page,
        )
            .into_response();
    }
    let body = json!({ "error": { "code": code, "message": failure.message() } });
    (status, axum::Json(body)).into_response()
}

fn into_api_error(error: OidcError) -> ApiError {
    match error {
        OidcError::Unreachable(cause) => ApiError::Unavailable {
            message: "The identity provider is not reachable; try again shortly".to_owned(),
            details: vec![],
            retry_after: std::time::Duration::from_secs(5),
        }
        .logged(&cause),
        OidcError::Store(e) => e.into(),
        OidcError::Auth(e) => e.into(),
        OidcError::Refused(failure, _) => ApiError::Forbidden(failure.message()),
    }
}
