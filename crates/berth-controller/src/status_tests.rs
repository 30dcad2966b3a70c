use super::*;
use k8s_openapi::api::apps::v1::{DeploymentCondition, DeploymentSpec, DeploymentStatus};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

fn now() -> Timestamp {
    "2025-01-01T00:00:00Z".parse().unwrap()
}

fn later() -> Timestamp {
    "2025-01-01T00:05:00Z".parse().unwrap()
}

fn deployment(replicas: i32, available: i32, conditions: Vec<DeploymentCondition>) -> Deployment {
    Deployment {
        metadata: ObjectMeta {
            name: Some("web".into()),
            generation: Some(2),
            ..ObjectMeta::default()
        },
        spec: Some(DeploymentSpec {
            replicas: Some(replicas),
            ..DeploymentSpec::default()
        }),
        status: Some(DeploymentStatus {
            observed_generation: Some(2),
            replicas: Some(replicas),
            updated_replicas: Some(replicas),
            available_replicas: Some(available),
            conditions: Some(conditions),
            ..DeploymentStatus::default()
        }),
    }
}

fn cond<'a>(status: &'a EnvironmentStatus, type_: &str) -> &'a Condition {
    status.conditions.iter().find(|c| c.type_ == type_).unwrap()
}

#[test]
fn a_deployment_is_available_when_every_replica_is() {
    assert!(DeploymentState::of(&deployment(2, 2, vec![])).available);
    assert!(!DeploymentState::of(&deployment(2, 1, vec![])).available);
    let mut stale = deployment(1, 1, vec![]);
    stale.metadata.generation = Some(3);
    assert!(!DeploymentState::of(&stale).available);
    let mut fresh = deployment(1, 1, vec![]);
    fresh.status = None;
    assert!(!DeploymentState::of(&fresh).available);
}

#[test]
fn quota_exceeded_degrades_with_the_apiserver_message() {
    let failing = deployment(
        3,
        0,
        vec![DeploymentCondition {
            type_: "ReplicaFailure".into(),
            status: "True".into(),
            reason: Some("FailedCreate".into()),
            message: Some("pods \"web-1\" is forbidden: exceeded quota: quota".into()),
            ..DeploymentCondition::default()
        }],
    );
    let observation = Observation {
        deployments: vec![DeploymentState::of(&failing)],
        ..Observation::default()
    };
    let status = status(None, observation, now());
    assert_eq!(status.phase, Some(Phase::Degraded));
    let degraded = cond(&status, "Degraded");
    assert_eq!(degraded.status, "True");
    assert_eq!(degraded.reason, "QuotaExceeded");
    assert!(degraded.message.contains("app web"), "{}", degraded.message);
}

#[test]
fn apps_not_yet_available_are_provisioning_then_ready() {
    let observation = |available| Observation {
        generation: Some(4),
        deployments: vec![DeploymentState::of(&deployment(2, available, vec![]))],
        ..Observation::default()
    };
    let first = status(None, observation(1), now());
    assert_eq!(first.phase, Some(Phase::Provisioning));
    assert_eq!(cond(&first, "Progressing").status, "True");
    assert!(cond(&first, "Ready").message.contains("web"));
    assert_eq!(first.observed_generation, Some(4));

    let second = status(Some(&first), observation(2), later());
    assert_eq!(second.phase, Some(Phase::Ready));
    assert_eq!(cond(&second, "Ready").status, "True");
    assert_eq!(
        cond(&second, "Ready").last_transition_time,
        later().to_string()
    );
    // Degraded stayed False: its transition time is the first one.
    assert_eq!(
        cond(&second, "Degraded").last_transition_time,
        now().to_string()
    );
}

#[test]
fn an_unchanged_observation_gives_an_equal_status() {
    let observation = Observation {
        generation: Some(1),
        expires_at: Some(later()),
        ..Observation::default()
    };
    let first = status(None, observation.clone(), now());
    let again = status(Some(&first), observation, later());
    assert_eq!(first, again);
    assert_eq!(first.expires_at.as_deref(), Some("2025-01-01T00:05:00Z"));
}

#[test]
fn problems_name_their_reason() {
    for (problem, reason) in [
        (
            Problem::InvalidSpec("spec.quota.cpu: must be".into()),
            "InvalidSpec",
        ),
        (
            Problem::NamespaceConflict("exists".into()),
            "NamespaceConflict",
        ),
        (Problem::ApplyFailed("refused".into()), "ApplyFailed"),
    ] {
        let observation = Observation {
            problem: Some(problem.clone()),
            ..Observation::default()
        };
        let status = status(None, observation, now());
        assert_eq!(status.phase, Some(Phase::Degraded));
        assert_eq!(cond(&status, "Degraded").reason, reason);
        assert_eq!(cond(&status, "Degraded").message, problem.message());
        assert_eq!(cond(&status, "Ready").status, "False");
    }
}

#[test]
fn quota_status_copies_hard_and_used() {
    let quota = ResourceQuota {
        status: Some(k8s_openapi::api::core::v1::ResourceQuotaStatus {
            hard: Some(BTreeMap::from([("pods".into(), Quantity("20".into()))])),
            used: Some(BTreeMap::from([("pods".into(), Quantity("1".into()))])),
        }),
        ..ResourceQuota::default()
    };
    let q = quota_status(&quota).unwrap();
    assert_eq!(q.hard["pods"], "20");
    assert_eq!(q.used["pods"], "1");
    assert!(quota_status(&ResourceQuota::default()).is_none());
}

#[test]
fn deleting_keeps_quota_and_says_why() {
    let ready = status(None, Observation::default(), now());
    let gone = deleting(Some(&ready), None, later());
    assert_eq!(gone.phase, Some(Phase::Deleting));
    assert_eq!(
        cond(&gone, "Ready").message,
        "deleting the namespace and everything in it"
    );
    assert_eq!(cond(&gone, "Degraded").status, "False");
}

fn terminating(conditions: &[(&str, &str, &str)]) -> Namespace {
    Namespace {
        status: Some(k8s_openapi::api::core::v1::NamespaceStatus {
            phase: Some("Terminating".into()),
            conditions: Some(
                conditions
                    .iter()
                    .map(|(type_, status, message)| {
                        k8s_openapi::api::core::v1::NamespaceCondition {
                            type_: (*type_).into(),
                            status: (*status).into(),
                            message: Some((*message).into()),
                            ..Default::default()
                        }
                    })
                    .collect(),
            ),
        }),
        ..Namespace::default()
    }
}

#[test]
fn a_deletion_that_waits_says_on_what() {
    let namespace = terminating(&[
        (
            "NamespaceDeletionContentFailure",
            "False",
            "All content successfully deleted, may be waiting on finalization",
        ),
        (
            "NamespaceContentRemaining",
            "True",
            "Some resources are remaining: configmaps. has 1 resource instances",
        ),
        (
            "NamespaceFinalizersRemaining",
            "True",
            "Some content in the namespace has finalizers remaining: example.com/hold in 1 resource instances",
        ),
    ]);
    let held = held(&namespace).expect("held");
    assert!(!held.failed);
    let gone = deleting(None, Some(&held), now());
    assert_eq!(gone.phase, Some(Phase::Deleting));
    let progressing = cond(&gone, "Progressing");
    assert_eq!(progressing.reason, "NamespaceFinalizersRemaining");
    assert_eq!(
        progressing.message,
        "deleting the namespace, which waits on what is left in it: \
         Some content in the namespace has finalizers remaining: example.com/hold in 1 resource instances; \
         Some resources are remaining: configmaps. has 1 resource instances"
    );
    assert_eq!(cond(&gone, "Degraded").status, "False");
}

#[test]
fn a_deletion_that_fails_is_degraded_and_nothing_held_says_nothing() {
    let failing = terminating(&[(
        "NamespaceDeletionContentFailure",
        "True",
        "Failed to delete all resource types, 1 remaining: the server is down",
    )]);
    let why = held(&failing).expect("held");
    assert!(why.failed);
    let gone = deleting(None, Some(&why), now());
    assert_eq!(cond(&gone, "Degraded").status, "True");
    assert_eq!(
        cond(&gone, "Degraded").reason,
        "NamespaceDeletionContentFailure"
    );

    let done = terminating(&[(
        "NamespaceContentRemaining",
        "False",
        "All content successfully removed",
    )]);
    assert_eq!(held(&done), None);
    assert_eq!(held(&Namespace::default()), None);
}
