//! The local control plane behaves as a real Kubernetes cluster: admission,
//! controllers, scheduling onto the fake nodes, encryption at rest,
//! authentication and RBAC. Each test works in a namespace of its own.

use std::time::Duration;

use anyhow::{Context, Result, bail, ensure};
use berth_testkit::{TestNamespace, api_status, cluster, eventually};
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::authentication::v1::SelfSubjectReview;
use k8s_openapi::api::core::v1::{
    ConfigMap, Namespace, Pod, ResourceQuota, Secret, ServiceAccount,
};
use k8s_openapi::api::rbac::v1::{Role, RoleBinding};
use k8s_openapi::serde::de::DeserializeOwned;
use kube::Api;
use kube::api::{DeleteParams, ListParams, PostParams, PropagationPolicy};
use serde_json::json;

const WAIT: Duration = Duration::from_secs(60);

fn object<T: DeserializeOwned>(value: serde_json::Value) -> T {
    serde_json::from_value(value).expect("test object matches its Kubernetes type")
}

fn pod(name: &str, privileged: bool) -> Pod {
    object(json!({
        "metadata": {"name": name},
        "spec": {"containers": [{
            "name": "app",
            "image": "registry.invalid/app:1",
            "resources": {"requests": {"cpu": "1", "memory": "64Mi"}, "limits": {"cpu": "1", "memory": "64Mi"}},
            "securityContext": {"privileged": privileged},
        }]},
    }))
}

fn deployment(name: &str, replicas: i32) -> Deployment {
    object(json!({
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "app", "image": "registry.invalid/app:1"}]},
            },
        },
    }))
}

async fn running_pods(pods: &Api<Pod>) -> Result<Vec<Pod>> {
    Ok(pods
        .list(&ListParams::default())
        .await?
        .items
        .into_iter()
        .filter(|p| {
            p.metadata.deletion_timestamp.is_none()
                && p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running")
        })
        .collect())
}

#[tokio::test]
async fn resource_quota_refuses_a_pod_over_quota() -> Result<()> {
    let cluster = cluster().await?;
    let ns = TestNamespace::create(&cluster, "quota").await?;
    let quotas: Api<ResourceQuota> = Api::namespaced(cluster.client(), ns.name());
    quotas
        .create(
            &PostParams::default(),
            &object(json!({"metadata": {"name": "small"}, "spec": {"hard": {"requests.cpu": "500m", "pods": "5"}}})),
        )
        .await?;
    // Admission only enforces a quota once the quota controller has
    // computed its status.
    eventually(WAIT, || async {
        let quota = quotas.get("small").await?;
        let hard = quota.status.and_then(|s| s.hard).unwrap_or_default();
        ensure!(
            hard.contains_key("requests.cpu"),
            "quota status not computed yet"
        );
        Ok(())
    })
    .await?;

    let pods: Api<Pod> = Api::namespaced(cluster.client(), ns.name());
    let err = pods
        .create(&PostParams::default(), &pod("too-big", false))
        .await
        .expect_err("a pod requesting 1 CPU under a 500m quota must be refused");
    let (code, reason, message) =
        api_status(&err).with_context(|| format!("not an API error: {err}"))?;
    assert_eq!((code, reason), (403, "Forbidden"), "{message}");
    assert!(message.contains("exceeded quota: small"), "{message}");
    ns.delete().await
}

#[tokio::test]
async fn deployment_of_three_replicas_runs_on_fake_nodes() -> Result<()> {
    let cluster = cluster().await?;
    let ns = TestNamespace::create(&cluster, "deploy").await?;
    let deployments: Api<Deployment> = Api::namespaced(cluster.client(), ns.name());
    deployments
        .create(&PostParams::default(), &deployment("web", 3))
        .await?;

    let pods: Api<Pod> = Api::namespaced(cluster.client(), ns.name());
    let running = eventually(WAIT, || async {
        let running = running_pods(&pods).await?;
        ensure!(running.len() == 3, "{} of 3 pods running", running.len());
        Ok(running)
    })
    .await?;
    for p in &running {
        let node = p
            .spec
            .as_ref()
            .and_then(|s| s.node_name.as_deref())
            .unwrap_or_default();
        assert!(node.starts_with("berth-node-"), "pod scheduled on {node:?}");
        let status = p.status.as_ref().context("running pod without status")?;
        assert!(status.pod_ip.is_some(), "running pod without an IP");
    }
    // The deployment controller sees the pods' readiness, as with a kubelet.
    eventually(WAIT, || async {
        let ready = deployments
            .get("web")
            .await?
            .status
            .and_then(|s| s.ready_replicas);
        ensure!(ready == Some(3), "ready replicas: {ready:?}");
        Ok(())
    })
    .await?;
    ns.delete().await
}

#[tokio::test]
async fn deleting_a_namespace_removes_it_and_its_objects() -> Result<()> {
    let cluster = cluster().await?;
    let ns = TestNamespace::create(&cluster, "cascade").await?;
    let name = ns.name().to_owned();
    let deployments: Api<Deployment> = Api::namespaced(cluster.client(), &name);
    let replicasets: Api<ReplicaSet> = Api::namespaced(cluster.client(), &name);
    let pods: Api<Pod> = Api::namespaced(cluster.client(), &name);
    let configmaps: Api<ConfigMap> = Api::namespaced(cluster.client(), &name);
    configmaps
        .create(
            &PostParams::default(),
            &object(json!({"metadata": {"name": "settings"}, "data": {"k": "v"}})),
        )
        .await?;
    deployments
        .create(&PostParams::default(), &deployment("worker", 2))
        .await?;
    deployments
        .create(&PostParams::default(), &deployment("gone", 1))
        .await?;
    eventually(WAIT, || async {
        let n = running_pods(&pods).await?.len();
        ensure!(n == 3, "{n} of 3 pods running");
        Ok(())
    })
    .await?;

    // The garbage collector removes what a deleted owner owned.
    let background = DeleteParams {
        propagation_policy: Some(PropagationPolicy::Background),
        ..DeleteParams::default()
    };
    deployments.delete("gone", &background).await?;
    eventually(WAIT, || async {
        let left = replicasets
            .list(&ListParams::default().labels("app=gone"))
            .await?
            .items
            .len()
            + pods
                .list(&ListParams::default().labels("app=gone"))
                .await?
                .items
                .len();
        ensure!(
            left == 0,
            "{left} replica sets and pods of the deleted deployment remain"
        );
        Ok(())
    })
    .await?;

    // The namespace controller empties a deleted namespace, then removes it.
    ns.delete().await?;
    let namespaces: Api<Namespace> = Api::all(cluster.client());
    eventually(WAIT, || async {
        match namespaces.get_opt(&name).await? {
            None => Ok(()),
            Some(n) => bail!(
                "namespace still there, phase {:?}",
                n.status.and_then(|s| s.phase)
            ),
        }
    })
    .await?;
    for (kind, left) in [
        (
            "configmaps",
            configmaps.list(&ListParams::default()).await?.items.len(),
        ),
        ("pods", pods.list(&ListParams::default()).await?.items.len()),
        (
            "deployments",
            deployments.list(&ListParams::default()).await?.items.len(),
        ),
    ] {
        assert_eq!(left, 0, "{kind} left in the deleted namespace");
    }
    Ok(())
}

#[tokio::test]
async fn restricted_namespace_refuses_a_privileged_pod() -> Result<()> {
    let cluster = cluster().await?;
    let ns = TestNamespace::create_with_labels(
        &cluster,
        "restricted",
        &[("pod-security.kubernetes.io/enforce", "restricted")],
    )
    .await?;
    let pods: Api<Pod> = Api::namespaced(cluster.client(), ns.name());
    let err = pods
        .create(&PostParams::default(), &pod("privileged", true))
        .await
        .expect_err("PodSecurity must refuse a privileged pod in a restricted namespace");
    let (code, reason, message) =
        api_status(&err).with_context(|| format!("not an API error: {err}"))?;
    assert_eq!((code, reason), (403, "Forbidden"), "{message}");
    assert!(
        message.contains("violates PodSecurity \"restricted:latest\""),
        "{message}"
    );
    assert!(message.contains("privileged"), "{message}");
    ns.delete().await
}

#[tokio::test]
async fn secrets_are_encrypted_at_rest_in_etcd() -> Result<()> {
    let cluster = cluster().await?;
    let ns = TestNamespace::create(&cluster, "encryption").await?;
    let canary = "berth-plaintext-canary-7f3a";
    let secrets: Api<Secret> = Api::namespaced(cluster.client(), ns.name());
    secrets
        .create(
            &PostParams::default(),
            &object(json!({"metadata": {"name": "db"}, "stringData": {"password": canary}})),
        )
        .await?;
    let configmaps: Api<ConfigMap> = Api::namespaced(cluster.client(), ns.name());
    configmaps
        .create(
            &PostParams::default(),
            &object(json!({"metadata": {"name": "plain"}, "data": {"value": canary}})),
        )
        .await?;

    let raw_secret = cluster
        .etcd_raw(&format!("/registry/secrets/{}/db", ns.name()))
        .await?;
    assert!(
        raw_secret.starts_with(b"k8s:enc:aescbc:v1:"),
        "secret stored without the encryption prefix: {:?}",
        String::from_utf8_lossy(&raw_secret[..raw_secret.len().min(64)])
    );
    assert!(
        !contains(&raw_secret, canary.as_bytes()),
        "the secret's value is readable in etcd"
    );

    // The same read shows a ConfigMap in the clear: the check above would
    // catch an unencrypted secret.
    let raw_configmap = cluster
        .etcd_raw(&format!("/registry/configmaps/{}/plain", ns.name()))
        .await?;
    assert!(
        contains(&raw_configmap, canary.as_bytes()),
        "configmap not found in the clear in etcd"
    );
    ns.delete().await
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[tokio::test]
async fn service_account_token_authenticates_and_rbac_confines_it() -> Result<()> {
    let cluster = cluster().await?;
    let home = TestNamespace::create(&cluster, "sa-home").await?;
    let other = TestNamespace::create(&cluster, "sa-other").await?;
    let client = cluster.client();
    let accounts: Api<ServiceAccount> = Api::namespaced(client.clone(), home.name());
    accounts
        .create(
            &PostParams::default(),
            &object(json!({"metadata": {"name": "reader"}})),
        )
        .await?;
    Api::<Role>::namespaced(client.clone(), home.name())
        .create(
            &PostParams::default(),
            &object(json!({
                "metadata": {"name": "pod-reader"},
                "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list", "watch"]}],
            })),
        )
        .await?;
    Api::<RoleBinding>::namespaced(client.clone(), home.name())
        .create(
            &PostParams::default(),
            &object(json!({
                "metadata": {"name": "reader-reads-pods"},
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "pod-reader"},
                "subjects": [{"kind": "ServiceAccount", "name": "reader", "namespace": home.name()}],
            })),
        )
        .await?;

    let as_reader = cluster
        .service_account_client(home.name(), "reader")
        .await?;

    let review = Api::<SelfSubjectReview>::all(as_reader.clone())
        .create(&PostParams::default(), &SelfSubjectReview::default())
        .await?;
    let username = review
        .status
        .and_then(|s| s.user_info)
        .and_then(|u| u.username);
    assert_eq!(
        username,
        Some(format!("system:serviceaccount:{}:reader", home.name()))
    );

    // The RBAC authorizer learns of new bindings through a watch, so the
    // grant may take a moment to apply.
    let home_pods: Api<Pod> = Api::namespaced(as_reader.clone(), home.name());
    eventually(WAIT, || async {
        home_pods.list(&ListParams::default()).await?;
        Ok(())
    })
    .await?;

    let err = Api::<Pod>::namespaced(as_reader, other.name())
        .list(&ListParams::default())
        .await
        .expect_err("the service account must not list pods in another namespace");
    let (code, reason, message) =
        api_status(&err).with_context(|| format!("not an API error: {err}"))?;
    assert_eq!((code, reason), (403, "Forbidden"), "{message}");
    assert!(
        message.contains(&format!("system:serviceaccount:{}:reader", home.name())),
        "{message}"
    );

    home.delete().await?;
    other.delete().await
}
