use crate::error::ApiError;
use crate::error_reports;
use crate::metrics::RouteLabels;
use crate::state::AppState;
use axum::Router;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderName, HeaderValue, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use sentry::SentryFutureExt;
use sentry::integrations::tower::NewSentryLayer;
use std::time::{Duration, Instant};
use tokio::sync::Semaphore;
use tower::ServiceBuilder;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::sensitive_headers::SetSensitiveRequestHeadersLayer;
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::trace::{OnResponse, TraceLayer};
use tracing::{Instrument, Span};

pub(crate) const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The Content-Security-Policy of every answer but the UI's pages.
pub const API_CONTENT_SECURITY_POLICY: &str = "default-src 'none'; frame-ancestors 'none'";

/// Layers every answer gets: a request id (taken from the client or made
/// here) on the log span and the answer, request logging without secrets,
/// security headers (content types not guessed, no framing, no referrer, a
/// Content-Security-Policy that loads nothing), and errors to Sentry
/// (`error_reports`).
pub fn wrap(router: Router) -> Router {
    router.layer(
        ServiceBuilder::new()
            .layer(SetSensitiveRequestHeadersLayer::new([
                header::AUTHORIZATION,
                header::COOKIE,
            ]))
            .layer(SetRequestIdLayer::new(REQUEST_ID, MakeRequestUuid))
            .layer(
                TraceLayer::new_for_http()
                    .make_span_with(|request: &Request| {
                        let request_id = request
                            .headers()
                            .get(REQUEST_ID)
                            .and_then(|v| v.to_str().ok())
                            .unwrap_or("-");
                        tracing::info_span!(
                            "request",
                            method = %request.method(),
                            path = %request.uri().path(),
                            request_id = %request_id,
                        )
                    })
                    .on_request(())
                    .on_response(LogAnswer),
            )
            .layer(PropagateRequestIdLayer::new(REQUEST_ID))
            .layer(SetResponseHeaderLayer::if_not_present(
                header::X_CONTENT_TYPE_OPTIONS,
                HeaderValue::from_static("nosniff"),
            ))
            // The UI's pages set their own policy and referrer policy
            // (berth-web); everything else is data, which may load nothing
            // and be framed by nobody.
            .layer(SetResponseHeaderLayer::if_not_present(
                header::CONTENT_SECURITY_POLICY,
                HeaderValue::from_static(API_CONTENT_SECURITY_POLICY),
            ))
            .layer(SetResponseHeaderLayer::if_not_present(
                header::X_FRAME_OPTIONS,
                HeaderValue::from_static("DENY"),
            ))
            .layer(SetResponseHeaderLayer::if_not_present(
                header::REFERRER_POLICY,
                HeaderValue::from_static("no-referrer"),
            ))
            .layer(SetResponseHeaderLayer::if_not_present(
                header::CACHE_CONTROL,
                HeaderValue::from_static("no-store"),
            ))
            // Errors to Sentry: a hub per request, its scope tagged, 5xx
            // reported; a panic answers 500 (the panic hook reports it).
            .layer(NewSentryLayer::<Request>::new_from_top())
            .layer(axum::middleware::from_fn(error_reports::report))
            .layer(CatchPanicLayer::custom(error_reports::panicked))
            .layer(axum::middleware::from_fn(refuse_nul_in_path))
            .layer(axum::middleware::from_fn(finish_writes)),
    )
}

/// Writes whose handlers may outlive their clients at once: each holds at
/// most one of the store's pooled connections (16), so clients that leave
/// cannot take them all; past it, a write ends with its client as before.
const DETACHED_WRITES: usize = 8;

/// Runs a write's handler to its end even when the client leaves: hyper
/// drops a request's future when its connection closes, which would stop a
/// create after the apiserver made the environment but before its audit
/// entry and its Idempotency-Key's answer were kept. Reads stay as they
/// are, so that a stream (watch, logs) ends with its client. At most
/// [`DETACHED_WRITES`] at once.
async fn finish_writes(request: Request, next: Next) -> Response {
    static DETACHED: Semaphore = Semaphore::const_new(DETACHED_WRITES);
    let permit = if request.method().is_safe() {
        None
    } else {
        DETACHED.try_acquire().ok()
    };
    let Some(permit) = permit else {
        return next.run(request).await;
    };
    let handler = next
        .run(request)
        .bind_hub(sentry::Hub::current())
        .instrument(Span::current());
    let handler = async move {
        let response = handler.await;
        drop(permit);
        response
    };
    match tokio::spawn(handler).await {
        Ok(response) => response,
        Err(error) => match error.try_into_panic() {
            Ok(payload) => error_reports::panicked(payload),
            Err(error) => ApiError::Internal(error.to_string()).into_response(),
        },
    }
}

/// 404 for a path holding `%00` (U+0000 once decoded), before any handler:
/// no name Berth keeps can hold it, and PostgreSQL cannot compare text that
/// does, so a lookup by it would fail the store. A URI cannot carry the
/// byte itself, and decoding is one level, so `%00` is the only spelling.
async fn refuse_nul_in_path(request: Request, next: Next) -> Response {
    if request
        .uri()
        .path()
        .as_bytes()
        .windows(3)
        .any(|w| w == b"%00")
    {
        return ApiError::NotFound.into_response();
    }
    next.run(request).await
}

/// One line per refused request (4xx) at info; answered ones only at debug,
/// since /metrics counts them and a line each would cost about a sixth of the
/// server's throughput. Server errors are logged at error by `TraceLayer`.
#[derive(Clone, Copy)]
struct LogAnswer;

impl<B> OnResponse<B> for LogAnswer {
    fn on_response(self, response: &axum::http::Response<B>, latency: Duration, _: &Span) {
        let status = response.status().as_u16();
        let latency_ms = latency.as_secs_f64() * 1e3;
        if response.status().is_client_error() {
            tracing::info!(status, latency_ms, "finished processing request");
        } else {
            tracing::debug!(status, latency_ms, "finished processing request");
        }
    }
}

pub async fn record_metrics(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    let started = Instant::now();
    let method = request.method().to_string();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let response = next.run(request).await;
    let labels = RouteLabels {
        method,
        route,
        status: response.status().as_u16(),
    };
    state.http_metrics.requests.get_or_create(&labels).inc();
    state
        .http_metrics
        .duration
        .get_or_create(&labels)
        .observe(started.elapsed().as_secs_f64());
    response
}
