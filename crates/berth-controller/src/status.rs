//! What an environment's status says, decided from what the controller saw.
//! Pure, so every phase and reason is a unit test away.

use berth_manifests::{Condition, EnvironmentStatus, Phase, QuotaStatus};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Namespace, ResourceQuota};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::jiff::Timestamp;
use std::collections::BTreeMap;

/// Why an environment cannot be made as asked; each is a `Degraded` reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    /// The spec does not parse or resolve: the message names the fields.
    InvalidSpec(String),
    /// A namespace of the environment's name exists and Berth did not make it for this environment.
    NamespaceConflict(String),
    /// The apiserver refused an object.
    ApplyFailed(String),
}

impl Problem {
    fn reason(&self) -> &'static str {
        match self {
            Problem::InvalidSpec(_) => "InvalidSpec",
            Problem::NamespaceConflict(_) => "NamespaceConflict",
            Problem::ApplyFailed(_) => "ApplyFailed",
        }
    }

    fn message(&self) -> &str {
        match self {
            Problem::InvalidSpec(m) | Problem::NamespaceConflict(m) | Problem::ApplyFailed(m) => m,
        }
    }
}

/// How one app's Deployment is doing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeploymentState {
    pub name: String,
    pub available: bool,
    /// Why pods cannot be created (quota exceeded, forbidden by pod security).
    pub failure: Option<String>,
}

impl DeploymentState {
    pub fn of(deployment: &Deployment) -> Self {
        let name = deployment.metadata.name.clone().unwrap_or_default();
        let wanted = deployment
            .spec
            .as_ref()
            .and_then(|s| s.replicas)
            .unwrap_or(1);
        let generation = deployment.metadata.generation.unwrap_or(0);
        let Some(status) = &deployment.status else {
            return Self {
                name,
                available: false,
                failure: None,
            };
        };
        let conditions = status.conditions.as_deref().unwrap_or_default();
        let failure = conditions
            .iter()
            .find(|c| {
                c.status == "True" && c.type_ == "ReplicaFailure"
                    || c.status == "False"
                        && c.type_ == "Progressing"
                        && c.reason.as_deref() == Some("ProgressDeadlineExceeded")
            })
            .map(|c| c.message.clone().unwrap_or_else(|| c.type_.clone()));
        let available = status.observed_generation.unwrap_or(0) >= generation
            && status.updated_replicas.unwrap_or(0) == wanted
            && status.available_replicas.unwrap_or(0) == wanted
            && status.replicas.unwrap_or(0) == wanted;
        Self {
            name,
            available,
            failure,
        }
    }
}

/// Everything one reconcile learnt that the status reports.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Observation {
    pub generation: Option<i64>,
    pub expires_at: Option<Timestamp>,
    pub quota: Option<QuotaStatus>,
    pub problem: Option<Problem>,
    pub deployments: Vec<DeploymentState>,
}

/// The quota's limits and usage as the ResourceQuota reports them.
pub fn quota_status(quota: &ResourceQuota) -> Option<QuotaStatus> {
    let status = quota.status.as_ref()?;
    Some(QuotaStatus {
        hard: quantities(status.hard.as_ref()),
        used: quantities(status.used.as_ref()),
    })
}

fn quantities(map: Option<&BTreeMap<String, Quantity>>) -> BTreeMap<String, String> {
    map.into_iter()
        .flatten()
        .map(|(k, v)| (k.clone(), v.0.clone()))
        .collect()
}

/// The status for `observation`, keeping each condition's transition time
/// from `previous` while its status stays the same.
pub fn status(
    previous: Option<&EnvironmentStatus>,
    observation: Observation,
    now: Timestamp,
) -> EnvironmentStatus {
    let (phase, ready, progressing, degraded) = judge(&observation);
    let conditions = [
        ("Ready", ready),
        ("Progressing", progressing),
        ("Degraded", degraded),
    ]
    .into_iter()
    .map(|(type_, (on, reason, message))| condition(previous, type_, on, reason, message, now))
    .collect();
    EnvironmentStatus {
        phase: Some(phase),
        conditions,
        quota: observation
            .quota
            .or_else(|| previous.and_then(|p| p.quota.clone())),
        expires_at: observation.expires_at.map(|t| t.to_string()),
        observed_generation: observation.generation,
    }
}

/// What a terminating namespace waits on, as its own status conditions say.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Held {
    /// The type of the first condition that holds it, as the reason.
    pub reason: String,
    /// Their messages: which finalizers, how many objects of which kinds.
    pub message: String,
    /// Whether deleting the content failed, rather than waits.
    pub failed: bool,
}

/// The conditions the namespace controller sets on a terminating namespace,
/// each `True` while it holds, with whether it tells of a failure rather
/// than of what is left; the ones saying what is left come first.
const DELETION_CONDITIONS: [(&str, bool); 5] = [
    ("NamespaceFinalizersRemaining", false),
    ("NamespaceContentRemaining", false),
    ("NamespaceDeletionContentFailure", true),
    ("NamespaceDeletionDiscoveryFailure", true),
    ("NamespaceDeletionGroupVersionParsingFailure", true),
];

/// What holds the deletion of `namespace` up; `None` while nothing does (or
/// the namespace controller has not said yet).
pub fn held(namespace: &Namespace) -> Option<Held> {
    let conditions = namespace
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_deref())
        .unwrap_or_default();
    let holding: Vec<(&str, bool, &str)> = DELETION_CONDITIONS
        .iter()
        .filter_map(|(type_, failure)| {
            conditions
                .iter()
                .find(|c| c.type_ == *type_ && c.status == "True")
                .map(|c| (*type_, *failure, c.message.as_deref().unwrap_or(type_)))
        })
        .collect();
    let (reason, _, _) = holding.first()?;
    Some(Held {
        reason: (*reason).to_owned(),
        message: holding
            .iter()
            .map(|(_, _, message)| *message)
            .collect::<Vec<_>>()
            .join("; "),
        failed: holding.iter().any(|(_, failure, _)| *failure),
    })
}

/// The status while the environment is being deleted: what the namespace's
/// deletion waits on when `held`.
pub fn deleting(
    previous: Option<&EnvironmentStatus>,
    held: Option<&Held>,
    now: Timestamp,
) -> EnvironmentStatus {
    let (reason, message) = match held {
        Some(held) => (
            held.reason.as_str(),
            format!(
                "deleting the namespace, which waits on what is left in it: {}",
                held.message
            ),
        ),
        None => (
            "Deleting",
            "deleting the namespace and everything in it".to_owned(),
        ),
    };
    let failed = held.is_some_and(|h| h.failed);
    let mut status = previous.cloned().unwrap_or_default();
    status.phase = Some(Phase::Deleting);
    status.conditions = [
        ("Ready", (false, "Deleting", message.clone())),
        ("Progressing", (true, reason, message.clone())),
        (
            "Degraded",
            if failed {
                (true, reason, message)
            } else {
                (false, "Deleting", String::new())
            },
        ),
    ]
    .into_iter()
    .map(|(type_, (on, reason, message))| condition(previous, type_, on, reason, message, now))
    .collect();
    status
}

type Verdict = (bool, &'static str, String);

fn judge(o: &Observation) -> (Phase, Verdict, Verdict, Verdict) {
    if let Some(problem) = &o.problem {
        let message = problem.message().to_owned();
        return (
            Phase::Degraded,
            (false, problem.reason(), message.clone()),
            (false, problem.reason(), String::new()),
            (true, problem.reason(), message),
        );
    }
    let failing: Vec<String> = o
        .deployments
        .iter()
        .filter_map(|d| d.failure.as_ref().map(|f| format!("app {}: {f}", d.name)))
        .collect();
    if !failing.is_empty() {
        let reason = if failing.iter().any(|f| f.contains("exceeded quota")) {
            "QuotaExceeded"
        } else {
            "PodsNotCreated"
        };
        let message = failing.join("; ");
        return (
            Phase::Degraded,
            (false, reason, message.clone()),
            (false, reason, String::new()),
            (true, reason, message),
        );
    }
    let waiting: Vec<&str> = o
        .deployments
        .iter()
        .filter(|d| !d.available)
        .map(|d| d.name.as_str())
        .collect();
    if !waiting.is_empty() {
        let message = format!(
            "waiting for apps to become available: {}",
            waiting.join(", ")
        );
        return (
            Phase::Provisioning,
            (false, "DeploymentsNotAvailable", message.clone()),
            (true, "DeploymentsRollingOut", message),
            (false, "AsExpected", String::new()),
        );
    }
    let message = "every object is applied and every app is available".to_owned();
    (
        Phase::Ready,
        (true, "AllObjectsReady", message),
        (false, "Converged", String::new()),
        (false, "AsExpected", String::new()),
    )
}

fn condition(
    previous: Option<&EnvironmentStatus>,
    type_: &str,
    on: bool,
    reason: &str,
    message: String,
    now: Timestamp,
) -> Condition {
    let status = if on { "True" } else { "False" };
    let last_transition_time = previous
        .and_then(|p| p.conditions.iter().find(|c| c.type_ == type_))
        .filter(|c| c.status == status)
        .map_or_else(|| now.to_string(), |c| c.last_transition_time.clone());
    Condition {
        type_: type_.to_owned(),
        status: status.to_owned(),
        reason: reason.to_owned(),
        message,
        last_transition_time,
    }
}

#[cfg(test)]
#[path = "status_tests.rs"]
mod tests;
