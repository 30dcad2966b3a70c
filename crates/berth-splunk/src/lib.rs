//! Berth's events in Splunk, through the HTTP Event Collector (HEC).
//!
//! Nothing here sits on a request's path: requests only insert rows into the
//! store's outbox ([`audit_event`] builds the row of an audit entry, written
//! in the entry's own transaction). One replica at a time, the holder of the
//! outbox lease, drains it ([`Drainer`]): batches in queue order, gzip,
//! `POST /services/collector/event` with `Authorization: Splunk <token>`, and,
//! when the token has indexer acknowledgement, `POST /services/collector/ack`
//! until the batch is acknowledged. Only then are the rows marked sent, so an
//! outage of any length loses nothing and only unacknowledged batches are
//! sent again. Besides audit entries, the Kubernetes events of Berth's
//! namespaces ([`forward_kubernetes_events`]) and Berth's own warnings and
//! errors ([`log_layer`], [`forward_logs`]) go the same way.

mod client;
mod drain;
mod error;
mod event;
mod kube_events;
mod log_layer;
mod metrics;
mod port;

pub use client::{HecClient, HecConfig};
pub use drain::{DrainOptions, Drainer};
pub use error::SplunkError;
pub use event::{
    HecEvent, HecMetadata, SOURCE_AUDIT, SOURCE_KUBERNETES, SOURCE_LOG, audit_event, to_hec,
};
pub use kube_events::{forward_kubernetes_events, kubernetes_event};
pub use log_layer::{LogLayer, LogRecord, forward_logs, log_layer, take_log_records};
pub use metrics::OutboxMetrics;
pub use port::OutboxStore;
