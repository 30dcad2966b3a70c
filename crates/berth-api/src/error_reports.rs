//! Errors to Sentry: every request runs in its own Sentry hub whose scope
//! carries the request id, the route template and, once the caller is known,
//! their user id; a 5xx answer is reported as an event, and a panic by the
//! SDK's panic hook (the handler's client still gets a 500). [`scrub`] is the
//! client's `before_send`: whatever an event gathered, only the fields listed
//! there leave the process, with emails and secret-looking words taken out of
//! messages.
//!
//! Without a Sentry client (no `BERTH_SENTRY_DSN`) all of this is a no-op.
//! Sending happens on the SDK's transport thread from a bounded queue, so a
//! slow or unreachable Sentry never holds a request up: when the queue is
//! full, events are dropped.

use crate::error::ApiError;
use crate::middleware::REQUEST_ID;
use axum::extract::{MatchedPath, Request};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use sentry::protocol::{Event, User};
use std::any::Any;

/// Scope tags an event may carry out of the process; any other is dropped.
/// `environment_name` and `reason` are set by the controller (`environment`
/// is Sentry's own deployment environment, a field of the event).
const TAGS: [&str; 6] = [
    "request_id",
    "route",
    "method",
    "status",
    "environment_name",
    "reason",
];

/// Marks a 500 made from a panic, which the panic hook has reported already.
#[derive(Clone, Copy)]
struct Panicked;

/// Tags the request's scope and reports a 5xx answer (but 503: those are
/// deliberate answers, a dependency not configured or not reachable, which
/// `/readyz` tells, or load shed with `Retry-After`). Runs inside the
/// request's own hub (`sentry::integrations::tower::NewSentryLayer`).
pub async fn report(request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched", MatchedPath::as_str)
        .to_owned();
    let method = request.method().clone();
    let request_id = request
        .headers()
        .get(&REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("-")
        .to_owned();
    sentry::configure_scope(|scope| {
        scope.set_tag("request_id", &request_id);
        scope.set_tag("route", &route);
        scope.set_tag("method", &method);
        scope.set_transaction(Some(&format!("{method} {route}")));
    });
    let response = next.run(request).await;
    let status = response.status();
    if status.is_server_error()
        && status != StatusCode::SERVICE_UNAVAILABLE
        && response.extensions().get::<Panicked>().is_none()
    {
        sentry::with_scope(
            |scope| scope.set_tag("status", status.as_u16()),
            || {
                sentry::capture_message(
                    &format!("{method} {route} answered {status}"),
                    sentry::Level::Error,
                )
            },
        );
    }
    response
}

/// The answer to a request whose handler panicked: the contract's 500, marked
/// so that [`report`] does not report it a second time.
pub fn panicked(_: Box<dyn Any + Send + 'static>) -> Response {
    let mut response =
        ApiError::Internal("the request's handler panicked".to_owned()).into_response();
    response.extensions_mut().insert(Panicked);
    response
}

/// Names the caller on the request's scope: their user id, never more.
pub fn identify(user_id: &impl ToString) {
    sentry::configure_scope(|scope| {
        scope.set_user(Some(User {
            id: Some(user_id.to_string()),
            ..Default::default()
        }))
    });
}

/// `before_send`: keeps what says where and what failed (level, message,
/// exceptions and their stack traces, release, environment, server name,
/// the route as transaction, the tags in [`TAGS`], the user's id) and drops
/// everything else an integration may have added: request data (URL, headers,
/// cookies, body), breadcrumbs, extra data, contexts, modules, the user's
/// email, name and address. Messages and exception values go through
/// [`redact`].
pub fn scrub(mut event: Event<'static>) -> Option<Event<'static>> {
    event.request = None;
    event.breadcrumbs = Default::default();
    event.extra.clear();
    event.contexts.clear();
    event.modules.clear();
    event.culprit = None;
    event.template = None;
    event.user = event.user.and_then(|user| {
        user.id.map(|id| User {
            id: Some(id),
            ..Default::default()
        })
    });
    event.tags.retain(|key, _| TAGS.contains(&key.as_str()));
    event.message = event.message.as_deref().map(redact);
    if let Some(entry) = event.logentry.as_mut() {
        entry.message = redact(&entry.message);
        entry.params.clear();
    }
    for exception in &mut event.exception.values {
        exception.value = exception.value.as_deref().map(redact);
        if let Some(stacktrace) = exception.stacktrace.as_mut() {
            for frame in &mut stacktrace.frames {
                frame.vars.clear();
            }
        }
    }
    Some(event)
}

/// Replaces, in free text such as a panic message or an apiserver's answer,
/// each word that looks like an email address (`[email]`) or a secret
/// (`[redacted]`): a Berth token (`berth_...`), a JWT (`eyJ...`), or any
/// run of 32 or more letters, digits and `-_+/=` mixing letters and digits
/// (session secrets, keys; UUIDs too, which costs little).
pub fn redact(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut word = String::new();
    for c in text.chars() {
        if c.is_whitespace() || "\"'`<>()[]{},;".contains(c) {
            out.push_str(redact_word(&word));
            word.clear();
            out.push(c);
        } else {
            word.push(c);
        }
    }
    out.push_str(redact_word(&word));
    out
}

fn redact_word(word: &str) -> &str {
    let email = word
        .split_once('@')
        .is_some_and(|(local, domain)| !local.is_empty() && domain.contains('.'));
    if email {
        return "[email]";
    }
    let secret_alphabet = word
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "-_+/=.".contains(c));
    let mixed =
        word.chars().any(|c| c.is_ascii_alphabetic()) && word.chars().any(|c| c.is_ascii_digit());
    let secret = word.starts_with("berth_")
        || (word.starts_with("eyJ") && word.len() >= 20)
        || (word.len() >= 32 && secret_alphabet && mixed);
    if secret { "[redacted]" } else { word }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sentry::protocol::{Exception, Request as SentryRequest};

    #[test]
    fn emails_and_secrets_leave_free_text() {
        assert_eq!(
            redact("ada@example.com sent berth_pat_abc123 (eyJhbGciOiJIUzI1NiJ9.eyJzdWIi.x)"),
            "[email] sent [redacted] ([redacted])"
        );
        assert_eq!(
            redact("session=\"Qm9ndXNTZWNyZXRWYWx1ZTEyMzQ1Njc4OTAxMjM0NQ\" ok"),
            "session=\"[redacted]\" ok"
        );
        let plain = "no such table: environment_requests (code 1) at GET /api/v1/requests";
        assert_eq!(redact(plain), plain);
    }

    #[test]
    fn only_listed_fields_leave() {
        let mut event = Event {
            message: Some("failed for bob@example.org".into()),
            user: Some(User {
                id: Some("42".into()),
                email: Some("bob@example.org".into()),
                username: Some("bob".into()),
                ..Default::default()
            }),
            request: Some(SentryRequest {
                cookies: Some("berth_session=s3cret".into()),
                data: Some("{\"password\":\"x\"}".into()),
                ..Default::default()
            }),
            ..Default::default()
        };
        event.tags.insert("route".into(), "/api/v1/me".into());
        event.tags.insert("authorization".into(), "Bearer x".into());
        event.extra.insert("body".into(), "secret".into());
        event.exception.values.push(Exception {
            ty: "panic".into(),
            value: Some("token berth_pat_zzz leaked".into()),
            ..Default::default()
        });
        let event = scrub(event).expect("events are kept");
        assert_eq!(event.message.as_deref(), Some("failed for [email]"));
        let user = event.user.expect("the user's id stays");
        assert_eq!(user.id.as_deref(), Some("42"));
        assert!(user.email.is_none() && user.username.is_none());
        assert!(event.request.is_none());
        assert!(event.extra.is_empty());
        assert_eq!(event.tags.keys().collect::<Vec<_>>(), ["route"]);
        assert_eq!(
            event.exception.values[0].value.as_deref(),
            Some("token [redacted] leaked")
        );
    }
}
