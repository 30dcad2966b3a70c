//! A Splunk HTTP Event Collector for tests: a real HTTP server that checks
//! the wire format and the token as Splunk documents them ("Format events
//! for HTTP Event Collector", the HEC REST API reference and its status
//! codes), records the events it accepts, and can be made to fail: taken
//! down and brought back on the same port, answering 503 "Server is busy",
//! or stalling (never answering).
//!
//! Endpoints: `POST /services/collector/event` (also `/services/collector`),
//! `POST /services/collector/ack`, `GET /services/collector/health`.

use crate::restartable::Restartable;
use anyhow::Result;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};
use std::collections::{HashMap, HashSet};
use std::io::Read;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

/// How the collector answers event requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HecMode {
    /// Checks and accepts.
    Normal,
    /// 503 `{"text":"Server is busy","code":9}`, and an unhealthy health check.
    Busy,
    /// Reads the request and never answers.
    Stall,
}

/// One request to the event endpoint, as the collector saw it.
#[derive(Debug, Clone)]
pub struct HecRequest {
    /// The body was `Content-Encoding: gzip`.
    pub gzip: bool,
    /// How many event objects the body held (0 when it could not be read).
    pub events: usize,
    pub status: u16,
    /// HEC's code in the answer.
    pub code: i64,
}

/// The running collector. Dropping it stops it.
pub struct HecReceiver {
    server: Restartable,
    shared: Arc<Shared>,
}

struct Shared {
    token: String,
    mode: Mutex<HecMode>,
    /// Indexer acknowledgement enabled on the token.
    ack: Mutex<bool>,
    events: Mutex<Vec<Value>>,
    requests: Mutex<Vec<HecRequest>>,
    /// Ack ids given out, per channel.
    acks: Mutex<HashMap<String, (u64, HashSet<u64>)>>,
}

impl HecReceiver {
    /// Starts a collector on a free loopback port accepting `token`, with
    /// indexer acknowledgement enabled.
    pub async fn start(token: &str) -> Result<Self> {
        Self::start_on("127.0.0.1:0".parse()?, token).await
    }

    /// Starts a collector on `addr` (port 0: a free one) accepting `token`,
    /// with indexer acknowledgement enabled.
    pub async fn start_on(addr: SocketAddr, token: &str) -> Result<Self> {
        let shared = Arc::new(Shared {
            token: token.to_owned(),
            mode: Mutex::new(HecMode::Normal),
            ack: Mutex::new(true),
            events: Mutex::new(Vec::new()),
            requests: Mutex::new(Vec::new()),
            acks: Mutex::new(HashMap::new()),
        });
        let router = Router::new()
            .route("/services/collector", post(collect))
            .route("/services/collector/event", post(collect))
            .route("/services/collector/event/1.0", post(collect))
            .route("/services/collector/ack", post(ack))
            .route("/services/collector/health", get(health))
            .route("/services/collector/health/1.0", get(health))
            .fallback(|| async {
                answer(
                    StatusCode::NOT_FOUND,
                    "The requested URL was not found on this server.",
                    404,
                )
            })
            .with_state(shared.clone());
        Ok(Self {
            server: Restartable::start_on(addr, router)?,
            shared,
        })
    }

    /// The base URL, as `BERTH_SPLUNK_HEC_URL` takes it.
    pub fn url(&self) -> String {
        format!("http://{}", self.server.addr())
    }

    pub fn set_mode(&self, mode: HecMode) {
        *self.shared.mode.lock().unwrap() = mode;
    }

    /// Turns indexer acknowledgement on the token on or off.
    pub fn set_ack(&self, enabled: bool) {
        *self.shared.ack.lock().unwrap() = enabled;
    }

    /// Every event accepted so far, in the order received.
    pub fn events(&self) -> Vec<Value> {
        self.shared.events.lock().unwrap().clone()
    }

    /// Every request to the event endpoint so far.
    pub fn requests(&self) -> Vec<HecRequest> {
        self.shared.requests.lock().unwrap().clone()
    }

    /// Takes the collector down: the port refuses connections and requests
    /// in flight are cut.
    pub fn stop(&self) {
        self.server.stop();
    }

    /// Brings it back on the same port.
    pub fn restart(&self) -> Result<()> {
        self.server.restart()
    }
}

/// An answer of HEC's: status, text and code.
type Refusal = (StatusCode, &'static str, i64);

fn answer(status: StatusCode, text: &str, code: i64) -> Response {
    (status, axum::Json(json!({ "text": text, "code": code }))).into_response()
}

/// Splunk's answers to a missing, malformed or wrong `Authorization: Splunk <token>`.
fn authorize(shared: &Shared, headers: &HeaderMap) -> Result<(), Refusal> {
    let Some(value) = headers.get("authorization") else {
        return Err((StatusCode::UNAUTHORIZED, "Token is required", 2));
    };
    let token = value
        .to_str()
        .ok()
        .and_then(|v| v.strip_prefix("Splunk "))
        .filter(|t| !t.is_empty());
    match token {
        None => Err((StatusCode::UNAUTHORIZED, "Invalid authorization", 3)),
        Some(token) if token != shared.token => Err((StatusCode::FORBIDDEN, "Invalid token", 4)),
        Some(_) => Ok(()),
    }
}

/// The request's channel (header or `channel` query parameter); an
/// answer when it is not a GUID.
fn channel(
    headers: &HeaderMap,
    query: &HashMap<String, String>,
) -> Result<Option<String>, Refusal> {
    let channel = headers
        .get("x-splunk-request-channel")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .or_else(|| query.get("channel").cloned());
    match channel {
        Some(c) if uuid::Uuid::parse_str(&c).is_err() => {
            Err((StatusCode::BAD_REQUEST, "Invalid data channel", 11))
        }
        channel => Ok(channel),
    }
}

async fn collect(
    State(shared): State<Arc<Shared>>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let gzip = headers
        .get("content-encoding")
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"gzip"));
    let (status, body, events) = accept(&shared, &query, &headers, gzip, &body).await;
    shared.requests.lock().unwrap().push(HecRequest {
        gzip,
        events,
        status: status.as_u16(),
        code: body["code"].as_i64().unwrap_or(-1),
    });
    (status, axum::Json(body)).into_response()
}

/// Checks one request and records its events: the answer's status and
/// body, and how many events were taken.
async fn accept(
    shared: &Shared,
    query: &HashMap<String, String>,
    headers: &HeaderMap,
    gzip: bool,
    body: &[u8],
) -> (StatusCode, Value, usize) {
    let refuse = |status: StatusCode, text: &str, code: i64| {
        (status, json!({ "text": text, "code": code }), 0)
    };
    if let Err((status, text, code)) = authorize(shared, headers) {
        return refuse(status, text, code);
    }
    let mode = *shared.mode.lock().unwrap();
    match mode {
        HecMode::Stall => std::future::pending::<()>().await,
        HecMode::Busy => return refuse(StatusCode::SERVICE_UNAVAILABLE, "Server is busy", 9),
        HecMode::Normal => {}
    }
    let channel = match channel(headers, query) {
        Ok(channel) => channel,
        Err((status, text, code)) => return refuse(status, text, code),
    };
    let ack = *shared.ack.lock().unwrap();
    if ack && channel.is_none() {
        return refuse(StatusCode::BAD_REQUEST, "Data channel is missing", 10);
    }
    let mut text = Vec::new();
    let body = if gzip {
        if flate2::read::GzDecoder::new(body)
            .read_to_end(&mut text)
            .is_err()
        {
            return refuse(StatusCode::BAD_REQUEST, "Invalid data format", 6);
        }
        &text[..]
    } else {
        body
    };
    let mut accepted = Vec::new();
    let mut refusal = None;
    for (n, object) in serde_json::Deserializer::from_slice(body)
        .into_iter::<Value>()
        .enumerate()
    {
        let checked = match &object {
            Ok(event) => check_event(event),
            Err(_) => Err(("Invalid data format", 6)),
        };
        match checked {
            Ok(()) => accepted.push(object.expect("checked")),
            Err((text, code)) => {
                refusal = Some((text, code, n));
                break;
            }
        }
    }
    if refusal.is_none() && accepted.is_empty() {
        return refuse(StatusCode::BAD_REQUEST, "No data", 5);
    }
    // As Splunk does, the events before a bad one are taken.
    let count = accepted.len();
    shared.events.lock().unwrap().extend(accepted);
    if let Some((text, code, n)) = refusal {
        let body = json!({ "text": text, "code": code, "invalid-event-number": n });
        return (StatusCode::BAD_REQUEST, body, count);
    }
    let mut body = json!({ "text": "Success", "code": 0 });
    if let Some(channel) = channel.filter(|_| ack) {
        let mut acks = shared.acks.lock().unwrap();
        let (next, given) = acks.entry(channel).or_default();
        given.insert(*next);
        body["ackId"] = json!(*next);
        *next += 1;
    }
    (StatusCode::OK, body, count)
}

/// One event object as "Format events for HTTP Event Collector" has it:
/// `event` required and not blank; `time` epoch seconds (a number, or a
/// string of one); `host`, `source`, `sourcetype`, `index` strings;
/// `fields` flat: string values or arrays of strings.
fn check_event(event: &Value) -> Result<(), (&'static str, i64)> {
    let Some(object) = event.as_object() else {
        return Err(("Invalid data format", 6));
    };
    match object.get("event") {
        None => return Err(("Event field is required", 12)),
        Some(Value::Null) => return Err(("Event field cannot be blank", 13)),
        Some(Value::String(s)) if s.is_empty() => return Err(("Event field cannot be blank", 13)),
        Some(_) => {}
    }
    match object.get("time") {
        None | Some(Value::Number(_)) => {}
        Some(Value::String(s)) if s.parse::<f64>().is_ok() => {}
        Some(_) => return Err(("Invalid data format", 6)),
    }
    for key in ["host", "source", "sourcetype", "index"] {
        if object.get(key).is_some_and(|v| !v.is_string()) {
            return Err(("Invalid data format", 6));
        }
    }
    if let Some(fields) = object.get("fields") {
        let flat = fields.as_object().is_some_and(|fields| {
            fields.values().all(|v| match v {
                Value::String(_) => true,
                Value::Array(items) => items.iter().all(Value::is_string),
                _ => false,
            })
        });
        if !flat {
            return Err(("Error in handling indexed fields", 15));
        }
    }
    Ok(())
}

async fn ack(
    State(shared): State<Arc<Shared>>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Err((status, text, code)) = authorize(&shared, &headers) {
        return answer(status, text, code);
    }
    if !*shared.ack.lock().unwrap() {
        return answer(StatusCode::BAD_REQUEST, "ACK is disabled", 14);
    }
    let channel = match channel(&headers, &query) {
        Ok(Some(channel)) => channel,
        Ok(None) => return answer(StatusCode::BAD_REQUEST, "Data channel is missing", 10),
        Err((status, text, code)) => return answer(status, text, code),
    };
    let Some(ids) = serde_json::from_slice::<Value>(&body)
        .ok()
        .and_then(|b| b["acks"].as_array().cloned())
        .and_then(|ids| ids.iter().map(Value::as_u64).collect::<Option<Vec<_>>>())
    else {
        return answer(StatusCode::BAD_REQUEST, "Invalid data format", 6);
    };
    let acks = shared.acks.lock().unwrap();
    let given = acks.get(&channel).map(|(_, given)| given);
    let answers: serde_json::Map<String, Value> = ids
        .iter()
        .map(|id| (id.to_string(), json!(given.is_some_and(|g| g.contains(id)))))
        .collect();
    (StatusCode::OK, axum::Json(json!({ "acks": answers }))).into_response()
}

async fn health(State(shared): State<Arc<Shared>>) -> Response {
    if *shared.mode.lock().unwrap() == HecMode::Normal {
        answer(StatusCode::OK, "HEC is healthy", 17)
    } else {
        answer(
            StatusCode::SERVICE_UNAVAILABLE,
            "HEC is unhealthy, queues are full",
            18,
        )
    }
}
