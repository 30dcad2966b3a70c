//! The controller's Prometheus metrics.

use berth_manifests::Phase;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabels {
    reason: String,
}

/// An environment and its namespace (named after it), as tenants' queries
/// find them.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct EnvironmentLabels {
    environment: String,
    namespace: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PhaseLabels {
    phase: String,
}

/// Cheap to clone: every field shares its value with the registry.
#[derive(Clone)]
pub struct Metrics {
    reconciles: Counter,
    errors: Family<ReasonLabels, Counter>,
    environment_errors: Family<EnvironmentLabels, Counter>,
    duration: Histogram,
    in_flight: Gauge,
    by_phase: Family<PhaseLabels, Gauge>,
    leader: Gauge,
    phases: Arc<Mutex<HashMap<String, Phase>>>,
}

impl Metrics {
    /// Registers the metrics under `berth_controller_` in `registry`.
    pub fn register(registry: &mut Registry) -> Self {
        let metrics = Self {
            reconciles: Counter::default(),
            errors: Family::default(),
            environment_errors: Family::default(),
            duration: Histogram::new(exponential_buckets(0.005, 2.0, 14)),
            in_flight: Gauge::default(),
            by_phase: Family::default(),
            leader: Gauge::default(),
            phases: Arc::default(),
        };
        registry.register(
            "berth_environment_reconcile_errors",
            "Failed reconciles of the environment while this process led",
            metrics.environment_errors.clone(),
        );
        let r = registry.sub_registry_with_prefix("berth_controller");
        r.register(
            "reconciles",
            "Reconciles started",
            metrics.reconciles.clone(),
        );
        r.register(
            "reconcile_errors",
            "Failed reconciles by reason",
            metrics.errors.clone(),
        );
        r.register(
            "reconcile_duration_seconds",
            "How long reconciles take",
            metrics.duration.clone(),
        );
        r.register(
            "reconciles_in_flight",
            "Reconciles running now: the controller's queue that is being worked",
            metrics.in_flight.clone(),
        );
        r.register(
            "environments",
            "Environments by phase, as this leader last saw them",
            metrics.by_phase.clone(),
        );
        r.register(
            "leader",
            "1 while this process holds the leader lease",
            metrics.leader.clone(),
        );
        metrics
    }

    /// Counts a reconcile and times it until the returned guard drops, so
    /// that a reconcile cancelled midway is still measured.
    pub fn reconcile_started(&self) -> ReconcileTimer {
        self.reconciles.inc();
        self.in_flight.inc();
        ReconcileTimer {
            metrics: self.clone(),
            start: Instant::now(),
        }
    }

    /// Counts a failed reconcile of `environment`.
    pub fn error(&self, environment: &str, reason: String) {
        self.errors.get_or_create(&ReasonLabels { reason }).inc();
        self.environment_errors
            .get_or_create(&EnvironmentLabels {
                environment: environment.to_owned(),
                namespace: environment.to_owned(),
            })
            .inc();
    }

    pub fn set_leader(&self, leader: bool) {
        self.leader.set(i64::from(leader));
        if !leader {
            self.phases.lock().expect("phases lock").clear();
            self.by_phase.clear();
            self.environment_errors.clear();
        }
    }

    pub fn set_phase(&self, environment: &str, phase: Option<Phase>) {
        let mut phases = self.phases.lock().expect("phases lock");
        match phase {
            Some(p) => phases.insert(environment.to_owned(), p),
            None => {
                // A gone environment's series go with it.
                self.environment_errors.remove(&EnvironmentLabels {
                    environment: environment.to_owned(),
                    namespace: environment.to_owned(),
                });
                phases.remove(environment)
            }
        };
        let mut counts: HashMap<String, i64> = HashMap::new();
        for p in phases.values() {
            *counts.entry(format!("{p:?}")).or_default() += 1;
        }
        for name in ["Pending", "Provisioning", "Ready", "Degraded", "Deleting"] {
            self.by_phase
                .get_or_create(&PhaseLabels {
                    phase: name.to_owned(),
                })
                .set(counts.get(name).copied().unwrap_or(0));
        }
    }
}

pub struct ReconcileTimer {
    metrics: Metrics,
    start: Instant,
}

impl Drop for ReconcileTimer {
    fn drop(&mut self) {
        self.metrics
            .duration
            .observe(self.start.elapsed().as_secs_f64());
        self.metrics.in_flight.dec();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prometheus_client::encoding::text::encode;

    fn leader_line(registry: &Registry) -> String {
        let mut text = String::new();
        encode(&mut text, registry).unwrap();
        text.lines()
            .find(|l| l.starts_with("berth_controller_leader "))
            .unwrap_or_else(|| panic!("no berth_controller_leader in {text}"))
            .to_owned()
    }

    /// The alert on no controller leading needs every replica to report,
    /// following (0) as much as leading (1).
    #[test]
    fn leadership_is_exported_as_0_or_1() {
        let mut registry = Registry::default();
        let metrics = Metrics::register(&mut registry);
        assert_eq!(leader_line(&registry), "berth_controller_leader 0");
        metrics.set_leader(true);
        assert_eq!(leader_line(&registry), "berth_controller_leader 1");
        metrics.set_leader(false);
        assert_eq!(leader_line(&registry), "berth_controller_leader 0");
    }

    #[test]
    fn metrics_are_exposed() {
        let mut registry = Registry::default();
        let metrics = Metrics::register(&mut registry);
        drop(metrics.reconcile_started());
        metrics.error("a", "api_500".into());
        metrics.set_phase("a", Some(Phase::Ready));
        metrics.set_phase("b", Some(Phase::Ready));
        metrics.set_phase("b", None);
        let mut text = String::new();
        encode(&mut text, &registry).unwrap();
        assert!(
            text.contains("berth_controller_reconciles_total 1"),
            "{text}"
        );
        assert!(
            text.contains("berth_controller_reconcile_errors_total{reason=\"api_500\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("berth_controller_environments{phase=\"Ready\"} 1"),
            "{text}"
        );
        assert!(
            text.contains(
                "berth_environment_reconcile_errors_total{environment=\"a\",namespace=\"a\"} 1"
            ),
            "{text}"
        );
        assert!(
            text.contains("berth_controller_reconciles_in_flight 0"),
            "{text}"
        );
        assert!(
            text.contains("berth_controller_reconcile_duration_seconds_count 1"),
            "{text}"
        );
    }
}
