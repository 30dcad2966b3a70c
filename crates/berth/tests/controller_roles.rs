//! A role change reaches a kubeconfig already handed out, end to end through
//! `berth serve` and its controller on the local cluster: bob, an editor
//! holding his kubeconfig, may create Deployments; once an owner makes him a
//! viewer, `kubectl auth can-i` with that same kubeconfig says no within
//! 5 s. (The RoleBinding's `roleRef` cannot change in place; the controller
//! used to stop there, Degraded for good, and bob kept his rights.)

mod support;

use reqwest::{Method, StatusCode};
use serde_json::json;
use std::path::Path;
use std::time::{Duration, Instant};
use support::*;

/// How long a role change may take to reach an existing kubeconfig.
const ROLE_CHANGE_WITHIN: Duration = Duration::from_secs(5);

/// `kubectl auth can-i create deployments` in `namespace` with `kubeconfig`.
async fn can_create_deployments(kubectl: &Path, kubeconfig: &Path, namespace: &str) -> bool {
    let output = tokio::process::Command::new(kubectl)
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .args(["auth", "can-i", "create", "deployments", "-n", namespace])
        .output()
        .await
        .expect("kubectl runs");
    // `can-i` answers on stdout and exits 1 for "no"; anything else is a failure.
    match String::from_utf8_lossy(&output.stdout).trim() {
        "yes" => true,
        "no" => false,
        other => panic!(
            "kubectl auth can-i answered {other:?}: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        ),
    }
}

/// Polls `can_create_deployments` until it answers `wanted`, failing after
/// `timeout`; returns how long that took.
async fn until_can_i(
    kubectl: &Path,
    kubeconfig: &Path,
    namespace: &str,
    wanted: bool,
    timeout: Duration,
) -> Duration {
    let start = Instant::now();
    loop {
        if can_create_deployments(kubectl, kubeconfig, namespace).await == wanted {
            return start.elapsed();
        }
        assert!(
            start.elapsed() < timeout,
            "can-i create deployments is still {} after {timeout:?}",
            !wanted
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn a_role_change_reaches_an_existing_kubeconfig_within_five_seconds() {
    let app = spawn_app_with_controller().await;
    let cluster = berth_testkit::cluster().await.expect("the local cluster");
    let kubectl = cluster.repo_root().join(".berth/bin/kubectl");
    let suffix = &uuid::Uuid::new_v4().simple().to_string()[..8];
    let owner = app
        .member_token(&format!("owner-{suffix}@example.com"))
        .await;
    let bob_email = format!("bob-{suffix}@example.com");
    let bob = app.member_token(&bob_email).await;
    let name = format!("roles-{suffix}");
    let path = format!("/api/v1/environments/{name}");
    let member = format!("{path}/members/{bob_email}");

    let created = app
        .post(
            &owner,
            "/api/v1/environments",
            &json!({"name": name, "template": "small"}),
        )
        .await;
    assert_eq!(created.status(), StatusCode::CREATED);
    let added = app
        .call(
            Method::PUT,
            &owner,
            &member,
            Some(&json!({"role": "editor"})),
        )
        .await;
    assert_eq!(added.status(), StatusCode::OK);

    // The kubeconfig can be had once the controller made bob's ServiceAccount.
    let deadline = Instant::now() + Duration::from_secs(60);
    let yaml = loop {
        let response = app.get(&bob, &format!("{path}/kubeconfig")).await;
        if response.status() == StatusCode::OK {
            break response.text().await.expect("a kubeconfig");
        }
        assert!(
            Instant::now() < deadline,
            "no kubeconfig for bob: {} {}",
            response.status(),
            response.text().await.unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let kubeconfig = std::env::temp_dir().join(format!("berth-{name}-bob.kubeconfig"));
    std::fs::write(&kubeconfig, yaml).expect("writing the kubeconfig");
    until_can_i(&kubectl, &kubeconfig, &name, true, Duration::from_secs(60)).await;

    let changed = app
        .call(
            Method::PUT,
            &owner,
            &member,
            Some(&json!({"role": "viewer"})),
        )
        .await;
    assert_eq!(changed.status(), StatusCode::OK);
    // Measured from the answer, with a deadline well past the promise so
    // that a slow run reports its figure rather than only "too slow".
    let took = until_can_i(&kubectl, &kubeconfig, &name, false, Duration::from_secs(60)).await;
    eprintln!("a role change (editor -> viewer) reached bob's existing kubeconfig in {took:?}");
    assert!(
        took <= ROLE_CHANGE_WITHIN,
        "the role change took {took:?}, more than {ROLE_CHANGE_WITHIN:?}"
    );
    app.eventually(&owner, &path, Duration::from_secs(30), |_, body| {
        body["status"]["phase"] == "Ready"
    })
    .await;

    let _ = std::fs::remove_file(&kubeconfig);
    let deleted = app.delete(&owner, &path).await;
    assert!(deleted.status().is_success(), "{}", deleted.status());
    app.eventually(&owner, &path, Duration::from_secs(60), |status, _| {
        status == StatusCode::NOT_FOUND
    })
    .await;
}
