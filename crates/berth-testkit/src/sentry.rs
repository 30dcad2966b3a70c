//! A Sentry for tests: a real HTTP server at a DSN's host that takes
//! `POST /api/{project_id}/envelope/`, checks the `X-Sentry-Auth` header's
//! `sentry_key` (or the `sentry_key` query parameter) and the project, and
//! parses the body as Sentry documents envelopes
//! (<https://develop.sentry.dev/sdk/data-model/envelopes/>), with its own
//! parser so that a bug shared by the SDK's writer and reader cannot hide:
//!
//! ```text
//! Envelope = Headers { "\n" Item } [ "\n" ]
//! Item     = Headers "\n" Payload
//! Headers  = one line of JSON (an object)
//! ```
//!
//! An item's headers name its `type`; with `length`, the payload is that
//! many bytes (then an optional newline), without it the payload runs to the
//! next newline or the end. Bodies may come `Content-Encoding: gzip` or
//! `deflate`. The receiver records every envelope and every refusal, and can
//! be taken down and brought back on the same port, or made to stall (read
//! the request, never answer).

use crate::restartable::Restartable;
use anyhow::{Context, Result, bail, ensure};
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::io::Read;
use std::sync::{Arc, Mutex};

/// The project every DSN of this receiver names.
pub const PROJECT_ID: &str = "42";

/// How the receiver answers envelopes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SentryMode {
    /// Checks, parses, records and answers 200 `{"id": ...}`.
    Normal,
    /// Reads the request and never answers (a black-holed Sentry).
    Stall,
}

/// One item of an envelope.
#[derive(Debug, Clone)]
pub struct Item {
    /// The item's headers, `type` among them.
    pub headers: Value,
    pub payload: Vec<u8>,
}

impl Item {
    /// The item's `type` (`event`, `session`, `client_report`, ...).
    pub fn kind(&self) -> &str {
        self.headers["type"].as_str().unwrap_or_default()
    }

    /// The payload as JSON, for the types whose payload is JSON.
    pub fn json(&self) -> Result<Value> {
        serde_json::from_slice(&self.payload)
            .with_context(|| format!("the payload of a {:?} item is not JSON", self.kind()))
    }
}

/// An envelope as it arrived.
#[derive(Debug, Clone)]
pub struct Envelope {
    pub headers: Value,
    pub items: Vec<Item>,
}

/// Parses an envelope (already decompressed) by the documented format.
pub fn parse_envelope(body: &[u8]) -> Result<Envelope> {
    let (line, mut rest) = split_line(body);
    let headers = header_object(line).context("the envelope's headers")?;
    let mut items = Vec::new();
    loop {
        // Items are separated by a newline; the envelope may end with one.
        while let Some(after) = rest.strip_prefix(b"\n") {
            rest = after;
        }
        if rest.is_empty() {
            break;
        }
        let (line, after_headers) = split_line(rest);
        let item_headers =
            header_object(line).with_context(|| format!("the headers of item {}", items.len()))?;
        let kind = item_headers.get("type").and_then(Value::as_str);
        ensure!(
            kind.is_some_and(|k| !k.is_empty()),
            "item {} has no type in its headers {item_headers}",
            items.len()
        );
        let payload;
        match item_headers.get("length") {
            Some(length) => {
                let length = length
                    .as_u64()
                    .and_then(|l| usize::try_from(l).ok())
                    .with_context(|| {
                        format!("item {}: length {length} is not a size", items.len())
                    })?;
                ensure!(
                    length <= after_headers.len(),
                    "item {}: length {length} runs past the end ({} bytes left)",
                    items.len(),
                    after_headers.len()
                );
                payload = &after_headers[..length];
                rest = &after_headers[length..];
                ensure!(
                    rest.is_empty() || rest[0] == b'\n',
                    "item {}: no newline after its {length}-byte payload",
                    items.len()
                );
            }
            None => {
                let (line, after) = split_line(after_headers);
                payload = line;
                rest = after;
            }
        }
        items.push(Item {
            headers: item_headers,
            payload: payload.to_vec(),
        });
    }
    Ok(Envelope { headers, items })
}

/// The bytes up to the first newline, and those after it.
fn split_line(bytes: &[u8]) -> (&[u8], &[u8]) {
    match bytes.iter().position(|&b| b == b'\n') {
        Some(at) => (&bytes[..at], &bytes[at + 1..]),
        None => (bytes, &[]),
    }
}

fn header_object(line: &[u8]) -> Result<Value> {
    let value: Value = serde_json::from_slice(line).with_context(|| {
        format!(
            "not one line of JSON: {:?}",
            String::from_utf8_lossy(&line[..line.len().min(200)])
        )
    })?;
    ensure!(
        value.is_object(),
        "headers must be a JSON object, not {value}"
    );
    Ok(value)
}

/// The `sentry_key` of an `X-Sentry-Auth` header
/// (`Sentry sentry_version=7, sentry_key=..., sentry_client=...`).
fn auth_key(header: &str) -> Option<&str> {
    let fields = header.strip_prefix("Sentry ")?;
    fields.split(',').find_map(|field| {
        let (name, value) = field.trim().split_once('=')?;
        (name == "sentry_key").then_some(value)
    })
}

/// The running receiver. Dropping it stops it.
pub struct SentryReceiver {
    server: Restartable,
    shared: Arc<Shared>,
}

struct Shared {
    key: String,
    mode: Mutex<SentryMode>,
    envelopes: Mutex<Vec<Envelope>>,
    /// Requests refused: status and why.
    refused: Mutex<Vec<(u16, String)>>,
}

impl SentryReceiver {
    /// Starts a receiver on a free loopback port, with a key of its own.
    pub async fn start() -> Result<Self> {
        let shared = Arc::new(Shared {
            key: uuid::Uuid::new_v4().simple().to_string(),
            mode: Mutex::new(SentryMode::Normal),
            envelopes: Mutex::new(Vec::new()),
            refused: Mutex::new(Vec::new()),
        });
        let router = Router::new()
            .route("/api/{project}/envelope/", post(receive))
            .fallback(|| async { (StatusCode::NOT_FOUND, "not a Sentry endpoint") })
            .with_state(shared.clone());
        Ok(Self {
            server: Restartable::start_on("127.0.0.1:0".parse()?, router)?,
            shared,
        })
    }

    /// The DSN, as `BERTH_SENTRY_DSN` takes it.
    pub fn dsn(&self) -> String {
        format!(
            "http://{}@{}/{PROJECT_ID}",
            self.shared.key,
            self.server.addr()
        )
    }

    pub fn set_mode(&self, mode: SentryMode) {
        *self.shared.mode.lock().unwrap() = mode;
    }

    /// Every envelope accepted so far, in the order received.
    pub fn envelopes(&self) -> Vec<Envelope> {
        self.shared.envelopes.lock().unwrap().clone()
    }

    /// The payloads of every `event` item accepted so far.
    pub fn events(&self) -> Vec<Value> {
        self.envelopes()
            .iter()
            .flat_map(|e| e.items.iter())
            .filter(|item| item.kind() == "event")
            .filter_map(|item| item.json().ok())
            .collect()
    }

    /// Requests refused so far: status and reason.
    pub fn refused(&self) -> Vec<(u16, String)> {
        self.shared.refused.lock().unwrap().clone()
    }

    /// Takes the receiver down: the port refuses connections and requests
    /// in flight are cut.
    pub fn stop(&self) {
        self.server.stop();
    }

    /// Brings it back on the same port.
    pub fn restart(&self) -> Result<()> {
        self.server.restart()
    }
}

async fn receive(
    State(shared): State<Arc<Shared>>,
    Path(project): Path<String>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    match accept(&shared, &project, &query, &headers, &body) {
        Ok(envelope) => {
            if *shared.mode.lock().unwrap() == SentryMode::Stall {
                std::future::pending::<()>().await;
            }
            let id = envelope.headers["event_id"].clone();
            shared.envelopes.lock().unwrap().push(envelope);
            (StatusCode::OK, axum::Json(json!({ "id": id }))).into_response()
        }
        Err((status, reason)) => {
            shared
                .refused
                .lock()
                .unwrap()
                .push((status.as_u16(), reason.clone()));
            (status, axum::Json(json!({ "detail": reason }))).into_response()
        }
    }
}

fn accept(
    shared: &Shared,
    project: &str,
    query: &HashMap<String, String>,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Envelope, (StatusCode, String)> {
    let key = headers
        .get("x-sentry-auth")
        .and_then(|v| v.to_str().ok())
        .and_then(auth_key)
        .or(query.get("sentry_key").map(String::as_str));
    match key {
        None => return Err((StatusCode::UNAUTHORIZED, "missing authorization".into())),
        Some(key) if key != shared.key => {
            return Err((StatusCode::UNAUTHORIZED, format!("unknown key {key:?}")));
        }
        Some(_) => {}
    }
    if project != PROJECT_ID {
        return Err((StatusCode::NOT_FOUND, format!("no project {project:?}")));
    }
    let body = decode(headers, body).map_err(|e| (StatusCode::BAD_REQUEST, format!("{e:#}")))?;
    parse_envelope(&body).map_err(|e| (StatusCode::BAD_REQUEST, format!("{e:#}")))
}

/// The body without its `Content-Encoding`.
fn decode(headers: &HeaderMap, body: &[u8]) -> Result<Vec<u8>> {
    let encoding = headers
        .get("content-encoding")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("identity")
        .trim()
        .to_ascii_lowercase();
    let mut out = Vec::new();
    match encoding.as_str() {
        "identity" => out.extend_from_slice(body),
        "gzip" => {
            flate2::read::GzDecoder::new(body).read_to_end(&mut out)?;
        }
        "deflate" => {
            flate2::read::ZlibDecoder::new(body).read_to_end(&mut out)?;
        }
        other => bail!("unsupported Content-Encoding {other:?}"),
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn items_with_and_without_length() {
        let body = b"{\"event_id\":\"9ec79c33ec9942ab8353589fcb2e04dc\"}\n\
            {\"type\":\"attachment\",\"length\":10,\"filename\":\"a.txt\"}\n\
            \xef\xbb\xbfHello\r\n\n\
            {\"type\":\"event\"}\n\
            {\"message\":\"hello\"}\n";
        let envelope = parse_envelope(body).unwrap();
        assert_eq!(
            envelope.headers["event_id"],
            "9ec79c33ec9942ab8353589fcb2e04dc"
        );
        assert_eq!(envelope.items.len(), 2);
        assert_eq!(envelope.items[0].kind(), "attachment");
        assert_eq!(envelope.items[0].payload, b"\xef\xbb\xbfHello\r\n");
        assert_eq!(envelope.items[1].json().unwrap()["message"], "hello");
    }

    #[test]
    fn the_last_item_may_end_without_a_newline_and_be_empty() {
        let envelope = parse_envelope(b"{}\n{\"type\":\"session\",\"length\":0}\n").unwrap();
        assert_eq!(envelope.items.len(), 1);
        assert!(envelope.items[0].payload.is_empty());
        let envelope = parse_envelope(b"{}\n{\"type\":\"event\"}\n{\"a\":1}").unwrap();
        assert_eq!(envelope.items[0].json().unwrap()["a"], 1);
        assert!(parse_envelope(b"{}").unwrap().items.is_empty());
    }

    #[test]
    fn malformed_envelopes_are_refused_saying_why() {
        for (body, says) in [
            (&b"not json\n"[..], "envelope's headers"),
            (b"{}\n{\"length\":2}\n{}\n", "no type"),
            (
                b"{}\n{\"type\":\"event\",\"length\":50}\n{}\n",
                "past the end",
            ),
            (b"{}\n{\"type\":\"event\",\"length\":1}\n{}\n", "no newline"),
            (b"[]\n", "JSON object"),
        ] {
            let error = format!("{:#}", parse_envelope(body).unwrap_err());
            assert!(error.contains(says), "{error}");
        }
    }

    #[test]
    fn the_key_is_read_from_the_auth_header() {
        assert_eq!(
            auth_key("Sentry sentry_version=7, sentry_key=abc, sentry_client=sentry.rust/0.49"),
            Some("abc")
        );
        assert_eq!(auth_key("Bearer abc"), None);
    }
}
