//! Who is calling: the auth extractor (session cookie with CSRF check, or a
//! bearer token) and the cookies Berth sets.

use crate::error::ApiError;
use crate::state::AppState;
use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Method, header};
use berth_auth::{Credential, Principal, Secret};
use berth_core::account::Role;
use std::net::{IpAddr, SocketAddr};
use subtle::ConstantTimeEq;
use time::OffsetDateTime;

pub const SESSION_COOKIE: &str = "berth_session";
pub const CSRF_COOKIE: &str = "berth_csrf";
/// The session cookie's name under TLS: a browser keeps a `__Host-` cookie
/// only when it is Secure, for `Path=/` and without `Domain`, so neither a
/// sibling subdomain nor a plain-HTTP answer can set or shadow it.
pub const HOST_SESSION_COOKIE: &str = "__Host-berth_session";
/// The CSRF cookie's name under TLS (see [`HOST_SESSION_COOKIE`]).
pub const HOST_CSRF_COOKIE: &str = "__Host-berth_csrf";
pub const CSRF_HEADER: &str = "x-csrf-token";

/// An authenticated caller. Rejects with 401 when no valid credential is
/// given, with 403 `csrf_failed` for a cookie-authenticated write without
/// the CSRF header, and with 403 `forbidden` ([`MUST_CHANGE_PASSWORD`]) while
/// the caller must change their password, except on the requests that let
/// them do so ([`allowed_before_password_change`]).
pub struct CurrentUser(pub Principal);

impl FromRequestParts<AppState> for CurrentUser {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let principal = authenticated(parts, state).await?;
        require_password_changed(parts, &principal)?;
        Ok(Self(principal))
    }
}

/// The message of the 403 every other request gets while the caller's
/// password must be changed (the generated first admin password).
pub const MUST_CHANGE_PASSWORD: &str = "Change your password first (PUT /api/v1/me/password): \
     this account's password was generated and must be changed at first login";

/// The caller of `parts`, whatever their account's state.
async fn authenticated(parts: &Parts, state: &AppState) -> Result<Principal, ApiError> {
    let credential = credential(&parts.method, &parts.headers, state.settings.secure_cookies)?;
    let principal = state.auth.authenticate(&credential).await?;
    crate::error_reports::identify(&principal.user.id);
    Ok(principal)
}

/// Refuses every request of a caller who must change their password but
/// those that show who they are, change it, or log out. Checked here, in
/// the extractor every authenticated route takes, so no route (a kubeconfig
/// download, a token's creation, a bearer token's call) slips past it.
fn require_password_changed(parts: &Parts, principal: &Principal) -> Result<(), ApiError> {
    if principal.user.must_change_password
        && !allowed_before_password_change(&parts.method, parts.uri.path())
    {
        return Err(ApiError::Forbidden(MUST_CHANGE_PASSWORD));
    }
    Ok(())
}

/// The requests a caller who must change their password may still make.
fn allowed_before_password_change(method: &Method, path: &str) -> bool {
    matches!(
        (method, path),
        (&Method::GET | &Method::HEAD, "/api/v1/me")
            | (&Method::PUT, "/api/v1/me/password")
            | (&Method::POST, "/api/v1/auth/logout")
    )
}

/// The caller again, from the credential a long-lived answer (a followed
/// log, a live view) started with: `None` once it is no longer valid
/// (logout, a deleted token, expiry, the account disabled) or names someone
/// else. Taken up at every check, so a changed role applies too.
pub(crate) async fn reauthenticate(
    state: &AppState,
    credential: &Credential,
    caller: &Principal,
) -> Option<Principal> {
    match state.auth.authenticate(credential).await {
        Ok(principal) if principal.user.id == caller.user.id => Some(principal),
        _ => None,
    }
}

/// An authenticated admin. Everyone else gets 404, so admin routes do not
/// reveal that they exist. An admin who must change their password gets the
/// 403 saying so, as on every other route.
pub struct AdminUser(pub Principal);

impl FromRequestParts<AppState> for AdminUser {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let principal = authenticated(parts, state)
            .await
            .map_err(|_| ApiError::NotFound)?;
        if principal.user.role != Role::Admin {
            return Err(ApiError::NotFound);
        }
        require_password_changed(parts, &principal)?;
        Ok(Self(principal))
    }
}

/// The peer address, when the server was started with connect info: the
/// client that logins and registrations are throttled by. `X-Forwarded-For`
/// is not read: without a configured list of trusted proxies, any client
/// could name itself a new client with it and escape its limits. Behind a
/// reverse proxy, every client is the proxy.
pub struct ClientAddr(pub Option<IpAddr>);

impl<S: Send + Sync> FromRequestParts<S> for ClientAddr {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(Self(
            parts
                .extensions
                .get::<ConnectInfo<SocketAddr>>()
                .map(|ConnectInfo(addr)| addr.ip()),
        ))
    }
}

/// The names of the session and CSRF cookies: `__Host-` prefixed when
/// cookies are `Secure` (under TLS). Only those names are read then, so a
/// cookie planted without the prefix is never taken for a session.
pub fn cookie_names(secure: bool) -> (&'static str, &'static str) {
    if secure {
        (HOST_SESSION_COOKIE, HOST_CSRF_COOKIE)
    } else {
        (SESSION_COOKIE, CSRF_COOKIE)
    }
}

/// The credential of a request: its bearer token, else its session cookie
/// (named as [`cookie_names`] says for `secure`), checked against CSRF for
/// a write.
pub(crate) fn credential(
    method: &Method,
    headers: &HeaderMap,
    secure: bool,
) -> Result<Credential, ApiError> {
    let (session_cookie, csrf_cookie) = cookie_names(secure);
    if let Some(value) = headers.get(header::AUTHORIZATION) {
        let token = value
            .to_str()
            .ok()
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or(ApiError::Unauthenticated)?;
        return Ok(Credential::Token(Secret::from_client(token)));
    }
    let session = cookie(headers, session_cookie).ok_or(ApiError::Unauthenticated)?;
    let safe = matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS);
    if !safe {
        let expected = cookie(headers, csrf_cookie).unwrap_or_default();
        let given = headers
            .get(CSRF_HEADER)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        if expected.is_empty() || !bool::from(expected.as_bytes().ct_eq(given.as_bytes())) {
            return Err(ApiError::CsrfFailed);
        }
    }
    Ok(Credential::Session(Secret::from_client(session)))
}

/// The value of cookie `name`, if the request carries it.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value)
}

/// `Set-Cookie` values for a new session: the session itself (HttpOnly) and
/// the CSRF token the UI echoes in a header (readable by script on purpose).
pub fn session_cookies(
    session: &Secret,
    expires_at: OffsetDateTime,
    secure: bool,
) -> [HeaderValue; 2] {
    let max_age = (expires_at - OffsetDateTime::now_utc())
        .whole_seconds()
        .max(0);
    let csrf = Secret::generate();
    let (session_cookie, csrf_cookie) = cookie_names(secure);
    let secure = if secure { "; Secure" } else { "" };
    [
        format!(
            "{session_cookie}={}; Path=/; Max-Age={max_age}; HttpOnly; SameSite=Lax{secure}",
            session.expose()
        ),
        format!(
            "{csrf_cookie}={}; Path=/; Max-Age={max_age}; SameSite=Lax{secure}",
            csrf.expose()
        ),
    ]
    .map(|v| HeaderValue::from_str(&v).expect("cookie values are URL-safe"))
}

/// `Set-Cookie` values that make the browser forget the session.
pub fn cleared_cookies(secure: bool) -> [HeaderValue; 2] {
    let (session_cookie, csrf_cookie) = cookie_names(secure);
    let secure = if secure { "; Secure" } else { "" };
    [
        format!("{session_cookie}=; Path=/; Max-Age=0; HttpOnly; SameSite=Lax{secure}"),
        format!("{csrf_cookie}=; Path=/; Max-Age=0; SameSite=Lax{secure}"),
    ]
    .map(|v| HeaderValue::from_str(&v).expect("cookie values are ASCII"))
}
