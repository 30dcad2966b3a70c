//! The HEC event model, and how each kind of outbox row becomes one.
//!
//! A row's body holds what varies per event: `time` (epoch milliseconds),
//! `event` (any JSON) and `fields` (flat strings). What is the same for every
//! event (host, source, sourcetype, index) is added when it is sent, so a
//! change of configuration applies to what is still queued.

use berth_store::{AuditEntry, NewOutboxEvent, OutboxRow};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use time::format_description::well_known::Rfc3339;

/// The outbox source of audit entries.
pub const SOURCE_AUDIT: &str = "audit";
/// The outbox source of the Kubernetes events of Berth's namespaces.
pub const SOURCE_KUBERNETES: &str = "kubernetes-event";
/// The outbox source of Berth's own warnings and errors.
pub const SOURCE_LOG: &str = "log";

/// What every event carries, from the configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HecMetadata {
    /// This replica's host name.
    pub host: String,
    pub source: String,
    pub sourcetype: String,
    /// `None`: the token's default index.
    pub index: Option<String>,
}

/// One event as `/services/collector/event` takes it (Splunk's "Format
/// events for HTTP Event Collector").
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HecEvent {
    /// Epoch seconds, with milliseconds as the fraction.
    pub time: f64,
    pub host: String,
    pub source: String,
    pub sourcetype: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub index: Option<String>,
    pub event: Value,
    /// Indexed fields: HEC takes only flat string values.
    pub fields: BTreeMap<String, String>,
}

/// The body of a row: time in epoch milliseconds, the event, its fields.
pub(crate) fn body(time_ms: i64, event: Value, fields: BTreeMap<String, String>) -> Value {
    json!({ "time": time_ms, "event": event, "fields": fields })
}

/// The outbox row of an audit entry stored with id `id`: the event is the
/// entry; `environment` and `namespace` (one and the same in Berth) are
/// indexed fields when the action concerns an environment.
pub fn audit_event(entry: &AuditEntry, id: &str) -> NewOutboxEvent {
    let event_id = format!("audit:{id}");
    let mut fields = BTreeMap::from([
        ("event_id".to_owned(), event_id.clone()),
        ("action".to_owned(), entry.action.clone()),
        ("outcome".to_owned(), entry.outcome.clone()),
    ]);
    if let Some(environment) = &entry.environment {
        fields.insert("environment".into(), environment.clone());
        fields.insert("namespace".into(), environment.clone());
    }
    let event = json!({
        "at": entry.at.format(&Rfc3339).unwrap_or_default(),
        "actor": entry.actor,
        "action": entry.action,
        "target": entry.target,
        "environment": entry.environment,
        "outcome": entry.outcome,
        "requestId": entry.request_id,
        "details": entry.details,
    });
    NewOutboxEvent {
        event_id,
        source: SOURCE_AUDIT.into(),
        body: body(millis(entry.at), event, fields),
    }
}

/// The HEC event of a queued row: its body with `meta`, and the row's source
/// as the indexed field `kind`.
pub fn to_hec(row: &OutboxRow, meta: &HecMetadata) -> HecEvent {
    let time_ms = row.body["time"]
        .as_i64()
        .unwrap_or_else(|| millis(row.created_at));
    let mut fields: BTreeMap<String, String> = row.body["fields"]
        .as_object()
        .map(|fields| {
            fields
                .iter()
                .map(|(k, v)| {
                    let v = v.as_str().map_or_else(|| v.to_string(), str::to_owned);
                    (k.clone(), v)
                })
                .collect()
        })
        .unwrap_or_default();
    fields
        .entry("event_id".into())
        .or_insert_with(|| row.event_id.clone());
    fields.insert("kind".into(), row.source.clone());
    HecEvent {
        time: time_ms as f64 / 1000.0,
        host: meta.host.clone(),
        source: meta.source.clone(),
        sourcetype: meta.sourcetype.clone(),
        index: meta.index.clone(),
        event: row.body.get("event").cloned().unwrap_or(Value::Null),
        fields,
    }
}

pub(crate) fn millis(at: time::OffsetDateTime) -> i64 {
    (at.unix_timestamp_nanos() / 1_000_000) as i64
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn an_audit_entry_becomes_an_event_with_flat_fields_and_a_time_in_seconds() {
        let entry = AuditEntry {
            at: datetime!(2026-01-02 03:04:05.678 UTC),
            actor: "ann@example.com".into(),
            action: "environment.delete".into(),
            target: "environment/team-a".into(),
            environment: Some("team-a".into()),
            outcome: "success".into(),
            request_id: Some("r-1".into()),
            details: json!({ "x": 1 }),
        };
        let queued = audit_event(&entry, "0190-1");
        assert_eq!(queued.event_id, "audit:0190-1");
        let row = OutboxRow {
            id: "1".into(),
            event_id: queued.event_id,
            source: queued.source,
            body: queued.body,
            created_at: entry.at,
        };
        let meta = HecMetadata {
            host: "h".into(),
            source: "berth".into(),
            sourcetype: "_json".into(),
            index: Some("main".into()),
        };
        let event = serde_json::to_value(to_hec(&row, &meta)).unwrap();
        assert_eq!(event["time"], json!(1_767_323_045.678));
        assert_eq!(event["index"], "main");
        assert_eq!(event["event"]["actor"], "ann@example.com");
        assert_eq!(event["event"]["at"], "2026-01-02T03:04:05.678Z");
        assert_eq!(
            event["fields"],
            json!({
                "action": "environment.delete", "environment": "team-a", "event_id": "audit:0190-1",
                "kind": "audit", "namespace": "team-a", "outcome": "success",
            })
        );
    }
}
