//! The whole journey of the contract against `berth serve` with its
//! controller on the local cluster: create -> Ready -> kubeconfig -> use it ->
//! see workloads and events -> delete -> gone.

mod support;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Pod, ResourceQuota, Secret};
use kube::api::{Api, ListParams, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use reqwest::{Client, StatusCode};
use serde_json::json;
use std::time::{Duration, Instant};
use support::*;

async fn tenant_client(yaml: &str) -> kube::Client {
    let kubeconfig = Kubeconfig::from_yaml(yaml).expect("a kubeconfig");
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
        .await
        .unwrap();
    kube::Client::try_from(config).unwrap()
}

/// From `iat` to `exp` of the kubeconfig's service account token (a JWT).
fn token_lifetime(yaml: &str) -> Duration {
    use base64::Engine;
    let token = yaml
        .lines()
        .find_map(|line| line.trim().strip_prefix("token: "))
        .expect("a token");
    let payload = token.split('.').nth(1).expect("a JWT");
    let claims: serde_json::Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .expect("base64url"),
    )
    .expect("JSON claims");
    let seconds = claims["exp"].as_u64().unwrap() - claims["iat"].as_u64().unwrap();
    Duration::from_secs(seconds)
}

#[tokio::test]
async fn register_create_ready_kubeconfig_use_delete() {
    let app = spawn_app_with_controller().await;
    let suffix = &uuid::Uuid::new_v4().simple().to_string()[..8];
    let email = format!("journey-{suffix}@example.com");
    let token = app.member_token(&email).await;
    let name = format!("journey-{suffix}");
    let other = format!("other-{suffix}");
    // The other environment is a neighbour's: a kubeconfig reaches only its
    // own environment's namespace (through Berth), as its holder's identity.
    let neighbour = app
        .member_token(&format!("neighbour-{suffix}@example.com"))
        .await;
    let client = Client::new();
    for (env, token) in [(&name, &token), (&other, &neighbour)] {
        let response = app
            .post(
                token,
                "/api/v1/environments",
                &json!({"name": env, "template": "small"}),
            )
            .await;
        assert_eq!(response.status(), StatusCode::CREATED);
    }
    let path = format!("/api/v1/environments/{name}");
    // Ready, with the quota as Kubernetes enforces it (its controller fills that in).
    app.eventually(&token, &path, Duration::from_secs(60), |s, b| {
        s == StatusCode::OK
            && b["status"]["phase"] == "Ready"
            && b["status"]["quota"]["hard"]["pods"] == "20"
    })
    .await;

    let response = app.get(&token, &format!("{path}/kubeconfig")).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["content-type"], "application/yaml");
    let yaml = response.text().await.unwrap();
    assert_eq!(
        token_lifetime(&yaml),
        Duration::from_secs(8 * 3600),
        "the configured lifetime"
    );
    let tenant = tenant_client(&yaml).await;

    // In its namespace the tenant deploys like anyone with kubectl would.
    let deployments: Api<Deployment> = Api::namespaced(tenant.clone(), &name);
    let deployment: Deployment = serde_json::from_value(json!({
        "metadata": {"name": "hello"},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "hello"}},
            "template": {"metadata": {"labels": {"app": "hello"}}, "spec": {
                "securityContext": {"runAsNonRoot": true, "runAsUser": 1000, "seccompProfile": {"type": "RuntimeDefault"}},
                "containers": [{"name": "hello", "image": "nginx:1.27",
                    "resources": {"requests": {"cpu": "100m", "memory": "64Mi"}, "limits": {"cpu": "100m", "memory": "64Mi"}},
                    "securityContext": {"allowPrivilegeEscalation": false, "capabilities": {"drop": ["ALL"]}}}]}}}
    }))
    .unwrap();
    deployments
        .create(&PostParams::default(), &deployment)
        .await
        .expect("the tenant creates a deployment in its namespace");
    let workloads = app
        .eventually(
            &token,
            &format!("{path}/workloads"),
            Duration::from_secs(30),
            |_, b| {
                b["pods"]
                    .as_array()
                    .is_some_and(|pods| pods.iter().any(|p| p["phase"] == "Running"))
            },
        )
        .await;
    assert!(
        workloads["deployments"]
            .as_array()
            .unwrap()
            .iter()
            .any(|d| d["name"] == "hello"),
        "{workloads}"
    );
    app.eventually(
        &token,
        &format!("{path}/events"),
        Duration::from_secs(30),
        |_, b| {
            b["items"]
                .as_array()
                .is_some_and(|events| !events.is_empty())
        },
    )
    .await;

    // Outside it, and above it, the tenant is refused: by Berth's proxy of
    // the environment's Kubernetes API outside the namespace, by the
    // apiserver's RBAC above it.
    let elsewhere: Api<Pod> = Api::namespaced(tenant.clone(), &other);
    assert_forbidden(
        elsewhere.list(&ListParams::default()).await,
        "pods of another environment",
    );
    let secrets: Api<Secret> = Api::namespaced(tenant.clone(), "kube-system");
    assert_forbidden(
        secrets.list(&ListParams::default()).await,
        "secrets of kube-system",
    );
    let namespaces: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(tenant.clone());
    assert_forbidden(
        namespaces.list(&ListParams::default()).await,
        "cluster-scoped reads",
    );
    let quotas: Api<ResourceQuota> = Api::namespaced(tenant.clone(), &name);
    let mut quota = quotas
        .list(&ListParams::default())
        .await
        .map(|l| l.items)
        .unwrap_or_default()
        .into_iter()
        .next();
    if let Some(quota) = quota.as_mut() {
        quota.spec.as_mut().unwrap().hard.as_mut().unwrap().insert(
            "pods".into(),
            k8s_openapi::apimachinery::pkg::api::resource::Quantity("1000".into()),
        );
        let name = quota.metadata.name.clone().unwrap();
        assert_forbidden(
            quotas.replace(&name, &PostParams::default(), quota).await,
            "raising its own quota",
        );
    }

    // A member's kubeconfig works while they are a member, and stops when removed.
    let guest_email = format!("guest-{suffix}@example.com");
    let guest = app.member_token(&guest_email).await;
    let member_url = app.url(&format!("{path}/members/{guest_email}"));
    let response = client
        .put(&member_url)
        .bearer_auth(&token)
        .json(&json!({"role": "viewer"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let kubeconfig_path = format!("{path}/kubeconfig");
    let deadline = Instant::now() + Duration::from_secs(30);
    let guest_yaml = loop {
        let response = app.get(&guest, &kubeconfig_path).await;
        if response.status() == StatusCode::OK {
            break response.text().await.unwrap();
        }
        assert!(
            Instant::now() < deadline,
            "no kubeconfig for the new member: {}",
            response.status()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let guest_pods: Api<Pod> = Api::namespaced(tenant_client(&guest_yaml).await, &name);
    guest_pods
        .list(&ListParams::default())
        .await
        .expect("a viewer reads pods");
    let response = client
        .delete(&member_url)
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match guest_pods.list(&ListParams::default()).await {
            Err(kube::Error::Api(e)) if e.code == 401 || e.code == 403 => break,
            other => assert!(
                Instant::now() < deadline,
                "the removed member's kubeconfig still works: {other:?}"
            ),
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    for (env, token) in [(&name, &token), (&other, &neighbour)] {
        let response = app
            .delete(token, &format!("/api/v1/environments/{env}"))
            .await;
        assert_eq!(response.status(), StatusCode::ACCEPTED);
    }
    app.eventually(&token, &path, Duration::from_secs(90), |s, _| {
        s == StatusCode::NOT_FOUND
    })
    .await;
}

fn assert_forbidden<T: std::fmt::Debug>(result: Result<T, kube::Error>, what: &str) {
    match result {
        Err(kube::Error::Api(e)) if e.code == 403 => {}
        other => panic!("{what}: expected 403 from the apiserver, got {other:?}"),
    }
}
