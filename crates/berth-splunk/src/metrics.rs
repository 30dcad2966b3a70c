//! The outbox's series on `/metrics`.

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use std::sync::atomic::AtomicU64;

/// How far behind delivery to Splunk is, and how it goes.
#[derive(Clone, Default)]
pub struct OutboxMetrics {
    /// Events queued and not yet sent.
    pub depth: Gauge,
    /// Age in seconds of the oldest event not yet sent (0 when none).
    pub oldest_age: Gauge<f64, AtomicU64>,
    /// Events Splunk accepted (and acknowledged, where it acknowledges).
    pub sent: Counter,
    /// Requests to HEC that failed (unreachable, 5xx, refused token or data).
    pub failures: Counter,
    /// Events set aside because HEC refused them as bad data.
    pub quarantined: Counter,
}

impl OutboxMetrics {
    pub fn register(registry: &mut Registry) -> Self {
        let metrics = Self::default();
        registry.register(
            "berth_splunk_outbox_depth",
            "Events queued for Splunk HEC and not yet sent",
            metrics.depth.clone(),
        );
        registry.register(
            "berth_splunk_outbox_oldest_age_seconds",
            "Age of the oldest event queued for Splunk HEC and not yet sent",
            metrics.oldest_age.clone(),
        );
        registry.register(
            "berth_splunk_events_sent",
            "Events Splunk HEC accepted (acknowledged, where the token acknowledges)",
            metrics.sent.clone(),
        );
        registry.register(
            "berth_splunk_send_failures",
            "Requests to Splunk HEC that failed",
            metrics.failures.clone(),
        );
        registry.register(
            "berth_splunk_events_quarantined",
            "Events set aside because Splunk HEC refused them as bad data",
            metrics.quarantined.clone(),
        );
        metrics
    }
}
