//! Per-environment series on Berth's `/metrics`, as kube-state-metrics would
//! give them for the managed namespaces: phase, quota hard and used, pods by
//! phase, container restarts, deployments' desired and available replicas,
//! expiry. Each is labelled `environment` and `namespace`, so that tenants
//! find them through the confined query API.
//!
//! Computed at scrape time from watch caches: the API's Environment cache and
//! two reflectors started here (pods and deployments, stripped to the fields
//! read), never from a call to the apiserver per scrape. Every replica
//! serves the same values; aggregate across replicas with `max`, not `sum`.

use crate::cluster::Cluster;
use berth_manifests::{Environment, Phase};
use futures::StreamExt;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Pod;
use kube::api::Api;
use kube::runtime::reflector::{self, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Resource, ResourceExt};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::Registry;
use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};
use std::time::Duration;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

const PHASES: [Phase; 5] = [
    Phase::Pending,
    Phase::Provisioning,
    Phase::Ready,
    Phase::Degraded,
    Phase::Deleting,
];
const POD_PHASES: [&str; 5] = ["Pending", "Running", "Succeeded", "Failed", "Unknown"];

/// The collector behind the `berth_environment_*` series; cheap to clone.
#[derive(Clone, Debug)]
pub struct EnvironmentMetrics {
    inner: Arc<Inner>,
}

struct Inner {
    cluster: Arc<Cluster>,
    workloads: OnceLock<Workloads>,
}

impl std::fmt::Debug for Inner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EnvironmentMetrics")
            .field("workloads", &self.workloads.get())
            .finish()
    }
}

struct Workloads {
    pods: Store<Pod>,
    deployments: Store<Deployment>,
}

impl std::fmt::Debug for Workloads {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Workloads")
            .field("pods", &self.pods.len())
            .field("deployments", &self.deployments.len())
            .finish()
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct EnvLabels {
    environment: String,
    namespace: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PhaseLabels {
    environment: String,
    namespace: String,
    phase: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResourceLabels {
    environment: String,
    namespace: String,
    resource: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DeploymentLabels {
    environment: String,
    namespace: String,
    deployment: String,
}

impl EnvironmentMetrics {
    /// Registers the collector in `registry`; it reports environments once
    /// the cluster is connected, and workloads once [`Self::watch`] runs.
    pub fn register(registry: &mut Registry, cluster: Arc<Cluster>) -> Self {
        let metrics = Self {
            inner: Arc::new(Inner {
                cluster,
                workloads: OnceLock::new(),
            }),
        };
        registry.register_collector(Box::new(metrics.clone()));
        metrics
    }

    /// Starts the pod and deployment reflectors once the cluster answers,
    /// then keeps them running.
    pub async fn watch(self) {
        let client = loop {
            match self.inner.cluster.connection().await {
                Ok(connection) => break connection.client.clone(),
                Err(_) => tokio::time::sleep(Duration::from_secs(5)).await,
            }
        };
        let pods = reflect(Api::<Pod>::all(client.clone()), |pod: &mut Pod| {
            // Only the phase and restart counts are read.
            pod.spec = None;
            strip(pod);
        });
        let deployments = reflect(Api::<Deployment>::all(client), |d: &mut Deployment| {
            if let Some(spec) = d.spec.as_mut() {
                spec.template = Default::default();
            }
            strip(d);
        });
        let _ = self.inner.workloads.set(Workloads {
            pods: pods.0,
            deployments: deployments.0,
        });
        tokio::join!(pods.1, deployments.1);
    }
}

/// Drops what no series reads, so that the caches stay small.
fn strip<K: Resource>(object: &mut K) {
    let meta = object.meta_mut();
    meta.managed_fields = None;
    meta.annotations = None;
    meta.labels = None;
    meta.owner_references = None;
}

/// A reflector of `api` whose objects pass through `modify`: its store and
/// the future that keeps it in step.
fn reflect<K>(
    api: Api<K>,
    modify: impl FnMut(&mut K) + Send + 'static,
) -> (Store<K>, impl Future<Output = ()>)
where
    K: Resource<DynamicType = ()> + Clone + std::fmt::Debug + Send + Sync + 'static,
    K: serde::de::DeserializeOwned,
{
    let (reader, writer) = reflector::store();
    let stream = watcher(api, watcher::Config::default())
        .default_backoff()
        .modify(modify)
        .reflect(writer);
    let run = async move {
        futures::pin_mut!(stream);
        while let Some(event) = stream.next().await {
            if let Err(e) = event {
                tracing::warn!(error = %e, kind = K::kind(&()).as_ref(), "watch for environment metrics interrupted; retrying");
            }
        }
    };
    (reader, run)
}

impl Collector for EnvironmentMetrics {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let Some(connection) = self.inner.cluster.connected() else {
            return Ok(());
        };
        let environments = connection.environments.state();
        let series = Series::of(&environments, self.inner.workloads.get());
        series.encode(&mut encoder)
    }
}

/// Every value of one scrape, by series.
#[derive(Debug, Default)]
struct Series {
    phase: Vec<(PhaseLabels, i64)>,
    quota_hard: Vec<(ResourceLabels, f64)>,
    quota_used: Vec<(ResourceLabels, f64)>,
    expiry: Vec<(EnvLabels, i64)>,
    pods: Vec<(PhaseLabels, i64)>,
    restarts: Vec<(EnvLabels, i64)>,
    desired: Vec<(DeploymentLabels, i64)>,
    available: Vec<(DeploymentLabels, i64)>,
}

impl Series {
    fn of(environments: &[Arc<Environment>], workloads: Option<&Workloads>) -> Self {
        let mut series = Self::default();
        for env in environments {
            let name = env.name_any();
            // An environment's namespace is named after it.
            let labels = EnvLabels {
                environment: name.clone(),
                namespace: name.clone(),
            };
            let phase = match env.metadata.deletion_timestamp {
                Some(_) => Phase::Deleting,
                None => env
                    .status
                    .as_ref()
                    .and_then(|s| s.phase)
                    .unwrap_or(Phase::Pending),
            };
            for p in PHASES {
                series
                    .phase
                    .push((labels.with_phase(&format!("{p:?}")), i64::from(p == phase)));
            }
            let status = env.status.as_ref();
            if let Some(quota) = status.and_then(|s| s.quota.as_ref()) {
                for (resource, value) in &quota.hard {
                    if let Some(v) = quantity(value) {
                        series.quota_hard.push((labels.with_resource(resource), v));
                    }
                }
                for (resource, value) in &quota.used {
                    if let Some(v) = quantity(value) {
                        series.quota_used.push((labels.with_resource(resource), v));
                    }
                }
            }
            if let Some(at) = status
                .and_then(|s| s.expires_at.as_deref())
                .and_then(|t| OffsetDateTime::parse(t, &Rfc3339).ok())
            {
                series.expiry.push((labels.clone(), at.unix_timestamp()));
            }
            if let Some(workloads) = workloads {
                series.add_workloads(&labels, workloads);
            }
        }
        series
    }

    fn add_workloads(&mut self, labels: &EnvLabels, workloads: &Workloads) {
        let namespace = labels.namespace.as_str();
        let mut by_phase: BTreeMap<&str, i64> = POD_PHASES.iter().map(|p| (*p, 0)).collect();
        let mut restarts = 0i64;
        for pod in workloads.pods.state() {
            if pod.metadata.namespace.as_deref() != Some(namespace) {
                continue;
            }
            let status = pod.status.as_ref();
            let phase = status.and_then(|s| s.phase.as_deref()).unwrap_or("Unknown");
            let phase = POD_PHASES
                .iter()
                .find(|p| **p == phase)
                .unwrap_or(&"Unknown");
            *by_phase.entry(phase).or_default() += 1;
            restarts += status
                .and_then(|s| s.container_statuses.as_ref())
                .into_iter()
                .flatten()
                .map(|c| i64::from(c.restart_count))
                .sum::<i64>();
        }
        for (phase, count) in by_phase {
            self.pods.push((labels.with_phase(phase), count));
        }
        self.restarts.push((labels.clone(), restarts));
        for deployment in workloads.deployments.state() {
            if deployment.metadata.namespace.as_deref() != Some(namespace) {
                continue;
            }
            let labels = DeploymentLabels {
                environment: labels.environment.clone(),
                namespace: labels.namespace.clone(),
                deployment: deployment.name_any(),
            };
            let desired = deployment
                .spec
                .as_ref()
                .and_then(|s| s.replicas)
                .unwrap_or(1);
            let available = deployment
                .status
                .as_ref()
                .and_then(|s| s.available_replicas)
                .unwrap_or(0);
            self.desired.push((labels.clone(), i64::from(desired)));
            self.available.push((labels, i64::from(available)));
        }
    }

    fn encode(&self, encoder: &mut DescriptorEncoder) -> Result<(), std::fmt::Error> {
        family(
            encoder,
            "berth_environment_phase",
            "1 for the environment's phase, 0 for the others",
            &self.phase,
        )?;
        family(
            encoder,
            "berth_environment_quota_hard",
            "The namespace's ResourceQuota limit per resource (cores, bytes or objects)",
            &self.quota_hard,
        )?;
        family(
            encoder,
            "berth_environment_quota_used",
            "What the namespace uses of its ResourceQuota per resource (cores, bytes or objects)",
            &self.quota_used,
        )?;
        family(
            encoder,
            "berth_environment_expiry_timestamp_seconds",
            "When the environment expires, in Unix seconds; absent when it does not",
            &self.expiry,
        )?;
        family(
            encoder,
            "berth_environment_pods",
            "The namespace's pods by phase",
            &self.pods,
        )?;
        family(
            encoder,
            "berth_environment_container_restarts",
            "Container restarts of the namespace's current pods, summed",
            &self.restarts,
        )?;
        family(
            encoder,
            "berth_environment_deployment_replicas_desired",
            "Replicas a Deployment of the namespace asks for",
            &self.desired,
        )?;
        family(
            encoder,
            "berth_environment_deployment_replicas_available",
            "Available replicas of a Deployment of the namespace",
            &self.available,
        )
    }
}

impl EnvLabels {
    fn with_phase(&self, phase: &str) -> PhaseLabels {
        PhaseLabels {
            environment: self.environment.clone(),
            namespace: self.namespace.clone(),
            phase: phase.to_owned(),
        }
    }

    fn with_resource(&self, resource: &str) -> ResourceLabels {
        ResourceLabels {
            environment: self.environment.clone(),
            namespace: self.namespace.clone(),
            resource: resource.to_owned(),
        }
    }
}

/// One gauge family, written only when it has series.
fn family<L, N>(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    values: &[(L, N)],
) -> Result<(), std::fmt::Error>
where
    L: EncodeLabelSet,
    N: Copy,
    ConstGauge<N>: EncodeMetric,
{
    if values.is_empty() {
        return Ok(());
    }
    let mut metric = encoder.encode_descriptor(name, help, None, MetricType::Gauge)?;
    for (labels, value) in values {
        ConstGauge::new(*value).encode(metric.encode_family(labels)?)?;
    }
    Ok(())
}

/// A Kubernetes quantity (`500m`, `2`, `1.5Gi`, `10G`, `1e3`) as a number of
/// base units; `None` for text that is not one.
fn quantity(text: &str) -> Option<f64> {
    const SUFFIXES: [(&str, f64); 14] = [
        ("Ki", 1024.0),
        ("Mi", 1_048_576.0),
        ("Gi", 1_073_741_824.0),
        ("Ti", 1_099_511_627_776.0),
        ("Pi", 1_125_899_906_842_624.0),
        ("Ei", 1_152_921_504_606_846_976.0),
        ("n", 1e-9),
        ("u", 1e-6),
        ("m", 1e-3),
        ("k", 1e3),
        ("M", 1e6),
        ("G", 1e9),
        ("T", 1e12),
        ("P", 1e15),
    ];
    let (number, multiplier) = SUFFIXES
        .iter()
        .find_map(|(suffix, m)| text.strip_suffix(suffix).map(|n| (n, *m)))
        .or_else(|| text.strip_suffix('E').map(|n| (n, 1e18)))
        .unwrap_or((text, 1.0));
    number
        .parse::<f64>()
        .ok()
        .filter(|v| v.is_finite())
        .map(|v| v * multiplier)
}

#[cfg(test)]
mod tests {
    use super::*;
    use berth_manifests::{EnvironmentStatus, QuotaStatus};
    use k8s_openapi::api::apps::v1::{DeploymentSpec, DeploymentStatus};
    use k8s_openapi::api::core::v1::{ContainerStatus, PodStatus};
    use kube::runtime::watcher::Event;
    use prometheus_client::encoding::text::encode;

    #[test]
    fn quantities_in_base_units() {
        assert_eq!(quantity("500m"), Some(0.5));
        assert_eq!(quantity("2"), Some(2.0));
        assert_eq!(quantity("4Gi"), Some(4.0 * 1_073_741_824.0));
        assert_eq!(quantity("10G"), Some(1e10));
        assert_eq!(quantity("1e3"), Some(1000.0));
        assert_eq!(quantity("many"), None);
    }

    fn environment(name: &str, phase: Phase) -> Arc<Environment> {
        let mut env: Environment =
            serde_json::from_value(serde_json::json!({"metadata": {"name": name}, "spec": {}}))
                .unwrap();
        env.status = Some(EnvironmentStatus {
            phase: Some(phase),
            quota: Some(QuotaStatus {
                hard: [("requests.cpu".to_owned(), "2".to_owned())].into(),
                used: [("requests.cpu".to_owned(), "250m".to_owned())].into(),
            }),
            expires_at: Some("2026-12-01T00:00:00Z".into()),
            ..Default::default()
        });
        Arc::new(env)
    }

    fn store<K>(objects: Vec<K>) -> Store<K>
    where
        K: Resource<DynamicType = ()> + Clone + std::fmt::Debug + Send + Sync + 'static,
    {
        let (reader, mut writer) = reflector::store();
        writer.apply_watcher_event(&Event::Init);
        for object in objects {
            writer.apply_watcher_event(&Event::InitApply(object));
        }
        writer.apply_watcher_event(&Event::InitDone);
        reader
    }

    #[test]
    fn each_environment_gets_its_own_series() {
        let mut pod = Pod::default();
        pod.metadata.name = Some("web-1".into());
        pod.metadata.namespace = Some("team-a".into());
        pod.status = Some(PodStatus {
            phase: Some("Running".into()),
            container_statuses: Some(vec![ContainerStatus {
                restart_count: 3,
                ..Default::default()
            }]),
            ..Default::default()
        });
        let mut elsewhere = pod.clone();
        elsewhere.metadata.namespace = Some("kube-system".into());
        let mut deployment = Deployment::default();
        deployment.metadata.name = Some("web".into());
        deployment.metadata.namespace = Some("team-a".into());
        deployment.spec = Some(DeploymentSpec {
            replicas: Some(2),
            ..Default::default()
        });
        deployment.status = Some(DeploymentStatus {
            available_replicas: Some(1),
            ..Default::default()
        });
        let workloads = Workloads {
            pods: store(vec![pod, elsewhere]),
            deployments: store(vec![deployment]),
        };
        let series = Series::of(
            &[
                environment("team-a", Phase::Ready),
                environment("team-b", Phase::Degraded),
            ],
            Some(&workloads),
        );
        #[derive(Debug)]
        struct Fixed(Series);
        impl Collector for Fixed {
            fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
                self.0.encode(&mut encoder)
            }
        }
        let mut registry = Registry::default();
        registry.register_collector(Box::new(Fixed(series)));
        let mut text = String::new();
        encode(&mut text, &registry).unwrap();
        for line in [
            r#"berth_environment_phase{environment="team-a",namespace="team-a",phase="Ready"} 1"#,
            r#"berth_environment_phase{environment="team-a",namespace="team-a",phase="Degraded"} 0"#,
            r#"berth_environment_phase{environment="team-b",namespace="team-b",phase="Degraded"} 1"#,
            r#"berth_environment_quota_hard{environment="team-a",namespace="team-a",resource="requests.cpu"} 2.0"#,
            r#"berth_environment_quota_used{environment="team-a",namespace="team-a",resource="requests.cpu"} 0.25"#,
            r#"berth_environment_expiry_timestamp_seconds{environment="team-a",namespace="team-a"} 1796083200"#,
            r#"berth_environment_pods{environment="team-a",namespace="team-a",phase="Running"} 1"#,
            r#"berth_environment_pods{environment="team-b",namespace="team-b",phase="Running"} 0"#,
            r#"berth_environment_container_restarts{environment="team-a",namespace="team-a"} 3"#,
            r#"berth_environment_deployment_replicas_desired{environment="team-a",namespace="team-a",deployment="web"} 2"#,
            r#"berth_environment_deployment_replicas_available{environment="team-a",namespace="team-a",deployment="web"} 1"#,
        ] {
            assert!(text.contains(line), "{line} in\n{text}");
        }
        assert!(!text.contains("kube-system"), "{text}");
    }
}
