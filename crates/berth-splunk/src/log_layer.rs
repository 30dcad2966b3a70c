//! Berth's own warnings and errors, on their way to the outbox.
//!
//! The layer never blocks and never recurses: a record goes into a bounded
//! channel or is dropped when it is full; records of this crate (the
//! drainer's own complaints) and of the database driver (which the forwarder
//! itself drives) are left out; fields whose names suggest a secret are
//! redacted.

use crate::event::{SOURCE_LOG, body, millis};
use crate::port::OutboxStore;
use berth_store::NewOutboxEvent;
use serde_json::json;
use std::collections::BTreeMap;
use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, OnceLock};
use time::OffsetDateTime;
use tokio::sync::mpsc;
use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::layer::Context;

/// Records waiting to be queued; more are dropped rather than wait.
const CAPACITY: usize = 1024;
/// Longest value kept of a field.
const MAX_VALUE: usize = 4096;
/// Field names that are never sent, whatever their value.
const SECRET_WORDS: [&str; 7] = [
    "password",
    "token",
    "secret",
    "authorization",
    "cookie",
    "dsn",
    "credential",
];
/// Targets left out: this crate, and what queuing a record itself runs.
const SKIPPED_TARGETS: [&str; 2] = ["berth_splunk", "sqlx"];

/// One warning or error of Berth's.
#[derive(Debug, Clone)]
pub struct LogRecord {
    pub at: OffsetDateTime,
    /// `WARN` or `ERROR`.
    pub level: String,
    pub target: String,
    pub message: String,
    /// The record's other fields, secrets redacted.
    pub fields: BTreeMap<String, String>,
}

/// The tracing layer: add it to the subscriber where logging is set up.
pub struct LogLayer {
    tx: mpsc::Sender<LogRecord>,
}

static RECORDS: OnceLock<Mutex<Option<mpsc::Receiver<LogRecord>>>> = OnceLock::new();
/// Set once someone takes the records: until then the layer does nothing.
static LISTENING: AtomicBool = AtomicBool::new(false);

/// The layer of the process. Its records are handed to the first caller of
/// [`take_log_records`] (the server, when Splunk is configured).
pub fn log_layer() -> LogLayer {
    let (tx, rx) = mpsc::channel(CAPACITY);
    let _ = RECORDS.set(Mutex::new(Some(rx)));
    LogLayer { tx }
}

/// The records of the layer [`log_layer`] made, once; `None` when there is
/// no such layer (tests that set up no logging) or they were taken.
pub fn take_log_records() -> Option<mpsc::Receiver<LogRecord>> {
    let records = RECORDS.get()?.lock().ok()?.take();
    if records.is_some() {
        LISTENING.store(true, Ordering::Relaxed);
    }
    records
}

impl<S: Subscriber> tracing_subscriber::Layer<S> for LogLayer {
    fn on_event(&self, event: &Event<'_>, _: Context<'_, S>) {
        let meta = event.metadata();
        if *meta.level() > Level::WARN
            || !LISTENING.load(Ordering::Relaxed)
            || SKIPPED_TARGETS
                .iter()
                .any(|skipped| meta.target().starts_with(skipped))
        {
            return;
        }
        let mut visitor = Fields::default();
        event.record(&mut visitor);
        let record = LogRecord {
            at: OffsetDateTime::now_utc(),
            level: meta.level().to_string(),
            target: meta.target().to_owned(),
            message: visitor.message,
            fields: visitor.fields,
        };
        // Full or closed: the record is dropped rather than anyone waiting.
        let _ = self.tx.try_send(record);
    }
}

#[derive(Default)]
struct Fields {
    message: String,
    fields: BTreeMap<String, String>,
}

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.keep(field, value.to_owned());
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.keep(field, format!("{value:?}"));
    }
}

impl Fields {
    fn keep(&mut self, field: &Field, mut value: String) {
        let name = field.name();
        if name == "message" {
            self.message = value;
            return;
        }
        let lower = name.to_ascii_lowercase();
        if SECRET_WORDS.iter().any(|word| lower.contains(word)) {
            value = "<redacted>".into();
        }
        if value.len() > MAX_VALUE {
            let mut end = MAX_VALUE;
            while !value.is_char_boundary(end) {
                end -= 1;
            }
            value.truncate(end);
        }
        self.fields.insert(name.to_owned(), value);
    }
}

/// The outbox row of a log record.
fn log_event(record: LogRecord) -> NewOutboxEvent {
    let event_id = format!("log:{}", uuid::Uuid::now_v7());
    let fields = BTreeMap::from([
        ("event_id".to_owned(), event_id.clone()),
        ("level".to_owned(), record.level.clone()),
    ]);
    let event = json!({
        "level": record.level,
        "target": record.target,
        "message": record.message,
        "fields": record.fields,
    });
    NewOutboxEvent {
        event_id,
        source: SOURCE_LOG.into(),
        body: body(millis(record.at), event, fields),
    }
}

/// Queues `records` until the layer is gone or `shutdown` completes,
/// a batch of whatever has arrived at a time.
pub async fn forward_logs<S: OutboxStore>(
    store: S,
    mut records: mpsc::Receiver<LogRecord>,
    shutdown: impl Future<Output = ()> + Send,
) {
    let mut shutdown = std::pin::pin!(shutdown);
    let mut batch = Vec::with_capacity(64);
    loop {
        tokio::select! {
            () = &mut shutdown => return,
            received = records.recv_many(&mut batch, 64) => {
                if received == 0 {
                    return;
                }
            }
        }
        let events: Vec<NewOutboxEvent> = batch.drain(..).map(log_event).collect();
        if let Err(e) = store.enqueue(&events).await {
            tracing::warn!(error = %e, dropped = events.len(), "could not queue log records for Splunk");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tracing_subscriber::layer::SubscriberExt;

    #[test]
    fn warnings_are_kept_with_secrets_redacted_and_info_is_not() {
        let (tx, mut rx) = mpsc::channel(8);
        LISTENING.store(true, Ordering::Relaxed);
        let subscriber = tracing_subscriber::registry().with(LogLayer { tx });
        tracing::subscriber::with_default(subscriber, || {
            // This module's own target is left out, as all of this crate's.
            tracing::info!(target: "berth_api::x", "not sent");
            tracing::warn!(
                target: "berth_api::x",
                password = "hunter2",
                api_token = "t0k",
                user = "ann",
                "created"
            );
            tracing::warn!(target: "berth_splunk::drain", "its own: not sent");
            tracing::error!(target: "sqlx::query", "driver: not sent");
        });
        let record = rx.try_recv().unwrap();
        assert_eq!(record.level, "WARN");
        assert_eq!(record.message, "created");
        assert_eq!(record.fields["password"], "<redacted>");
        assert_eq!(record.fields["api_token"], "<redacted>");
        assert_eq!(record.fields["user"], "ann");
        assert!(rx.try_recv().is_err());
        let queued = log_event(record);
        assert!(!queued.body.to_string().contains("hunter2"));
        assert_eq!(queued.body["fields"]["level"], "WARN");
    }
}
