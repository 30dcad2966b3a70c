//! The controller against the real local cluster: an Environment becomes
//! Ready with every object of the builder, drift is repaired within 5 s with
//! an Event, removed apps are pruned, deletion removes the namespace, and a
//! namespace Berth did not make is never touched.

mod support;

use anyhow::{Result, anyhow, bail};
use berth_core::environment::{Policy, builtin_templates, resolve};
use berth_manifests::{ENVIRONMENT_LABEL, Environment, Object, Phase};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Namespace, ResourceQuota, Service};
use k8s_openapi::api::networking::v1::{Ingress, NetworkPolicy};
use kube::api::{
    ApiResource, DeleteParams, DynamicObject, GroupVersionKind, Patch, PatchParams, PostParams,
};
use kube::{Api, ResourceExt};
use serde_json::json;
use std::time::{Duration, Instant};
use support::*;

const READY_WITHIN: Duration = Duration::from_secs(90);
const REPAIR_WITHIN: Duration = Duration::from_secs(5);

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

/// What the builder makes for the Environment as it is in the cluster.
fn built(env: &Environment) -> Vec<Object> {
    let resolved = resolve(
        env.parse_spec().unwrap(),
        &builtin_templates(),
        &Policy::default(),
    )
    .unwrap();
    berth_manifests::build(
        &resolved,
        &berth_manifests::BuildOptions {
            owner_uid: env.uid(),
            ..Default::default()
        },
    )
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
    apply_env(&client, &name, spec_with_apps(&["web", "api"])).await?;
    let env = wait_phase(&client, &name, Phase::Ready, READY_WITHIN).await?;

    let objects = built(&env);
    assert!(objects.len() >= 12, "{} objects", objects.len());
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
        status.expires_at.is_some(),
        "the default policy's TTL applies"
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

#[tokio::test]
async fn an_invalid_spec_is_degraded_naming_the_field() -> Result<()> {
    let client = client().await;
    let name = berth_testkit::unique_name("ctl-invalid");
    apply_env(&client, &name, json!({"quota": {"cpu": "lots"}})).await?;
    let env = wait_phase(&client, &name, Phase::Degraded, Duration::from_secs(30)).await?;
    let degraded = env
        .status
        .unwrap()
        .conditions
        .into_iter()
        .find(|c| c.type_ == "Degraded")
        .unwrap();
    assert_eq!(degraded.reason, "InvalidSpec");
    assert!(
        degraded.message.contains("spec.quota.cpu"),
        "{}",
        degraded.message
    );
    assert!(
        Api::<Namespace>::all(client.clone())
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
