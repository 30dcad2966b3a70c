//! Access follows a kubeconfig already handed out, end to end through
//! `berth serve` and its controller on the local cluster. Bob, an editor
//! holding his kubeconfig, may create Deployments; once an owner makes him a
//! viewer, `kubectl auth can-i` with that same kubeconfig says no within
//! 5 s (the RoleBinding's `roleRef` cannot change in place; the controller
//! used to stop there, Degraded for good, and bob kept his rights). Removed,
//! he can read nothing within 5 s; disabled by an admin, his identity is
//! deleted and every token of it refused at once. Every member has an
//! identity of their own in `berth-users`, which no tenant can mint tokens
//! for or run pods as; a disable that could not reach the cluster is
//! mended as soon as a Berth that can reach it starts.

mod support;

use reqwest::{Method, StatusCode};
use serde_json::json;
use std::path::Path;
use std::time::{Duration, Instant};
use support::*;

/// How long a role change, a removal or a disable may take to reach an
/// existing kubeconfig.
const ACCESS_CHANGE_WITHIN: Duration = Duration::from_secs(5);

/// `kubectl --kubeconfig kubeconfig args...`: whether it succeeded, and
/// what it said (stdout, then stderr).
async fn kubectl(kubectl: &Path, kubeconfig: &Path, args: &[&str]) -> (bool, String) {
    let output = tokio::process::Command::new(kubectl)
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .args(args)
        .output()
        .await
        .expect("kubectl runs");
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success(), said.trim().to_owned())
}
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

/// Polls `kubectl get pods -n namespace` until it succeeds (`wanted`) or
/// fails, failing after `timeout`; returns how long that took and what
/// kubectl said last.
async fn until_get_pods(
    kubectl_path: &Path,
    kubeconfig: &Path,
    namespace: &str,
    wanted: bool,
    timeout: Duration,
) -> (Duration, String) {
    let start = Instant::now();
    loop {
        let (ok, said) = kubectl(
            kubectl_path,
            kubeconfig,
            &["get", "pods", "-n", namespace, "--request-timeout=5s"],
        )
        .await;
        if ok == wanted {
            return (start.elapsed(), said);
        }
        assert!(
            start.elapsed() < timeout,
            "get pods still {} after {timeout:?}: {said}",
            if ok { "succeeds" } else { "fails" }
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The caller's kubeconfig for `path`, once the API can issue it, written
/// to a file named after `who`.
async fn kubeconfig_file(
    app: &TestApp,
    token: &str,
    path: &str,
    name: &str,
    who: &str,
) -> std::path::PathBuf {
    let deadline = Instant::now() + Duration::from_secs(60);
    let yaml = loop {
        let response = app.get(token, &format!("{path}/kubeconfig")).await;
        if response.status() == StatusCode::OK {
            break response.text().await.expect("a kubeconfig");
        }
        assert!(
            Instant::now() < deadline,
            "no kubeconfig for {who}: {} {}",
            response.status(),
            response.text().await.unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let file = std::env::temp_dir().join(format!("berth-{name}-{who}.kubeconfig"));
    std::fs::write(&file, yaml).expect("writing the kubeconfig");
    file
}

/// The user id of the holder of `token`.
async fn user_id(app: &TestApp, token: &str) -> String {
    let me: serde_json::Value = app.get(token, "/api/v1/me").await.json().await.unwrap();
    me["id"].as_str().expect("an id").to_owned()
}

/// Measures and checks one access change; prints the figure.
fn report(what: &str, took: Duration) {
    eprintln!("{what} reached bob's existing kubeconfig in {took:?}");
    assert!(
        took <= ACCESS_CHANGE_WITHIN,
        "{what} took {took:?}, more than {ACCESS_CHANGE_WITHIN:?}"
    );
}

#[tokio::test]
async fn role_change_removal_and_disable_reach_an_existing_kubeconfig_within_five_seconds() {
    let app = spawn_app_with_controller().await;
    let cluster = berth_testkit::cluster().await.expect("the local cluster");
    let kubectl_path = cluster.repo_root().join(".berth/bin/kubectl");
    let kubectl_path = kubectl_path.as_path();
    let suffix = &uuid::Uuid::new_v4().simple().to_string()[..8];
    let admin = app.admin_token().await;
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
    let add = |role: &'static str| {
        let (app, owner, member) = (&app, &owner, &member);
        async move {
            let added = app
                .call(Method::PUT, owner, member, Some(&json!({"role": role})))
                .await;
            assert_eq!(added.status(), StatusCode::OK, "making bob {role}");
        }
    };
    add("editor").await;

    let kubeconfig = kubeconfig_file(&app, &bob, &path, &name, "bob").await;
    let owner_kubeconfig = kubeconfig_file(&app, &owner, &path, &name, "owner").await;
    until_can_i(
        kubectl_path,
        &kubeconfig,
        &name,
        true,
        Duration::from_secs(60),
    )
    .await;

    // Two members, two identities, each bound by name from `berth-users`.
    let (bob_id, owner_id) = (user_id(&app, &bob).await, user_id(&app, &owner).await);
    let (bob_account, owner_account) = (format!("user-{bob_id}"), format!("user-{owner_id}"));
    assert_ne!(bob_account, owner_account);
    let bindings = berth_testkit::cluster()
        .await
        .expect("the local cluster")
        .client();
    let bindings: Vec<_> =
        kube::Api::<k8s_openapi::api::rbac::v1::RoleBinding>::namespaced(bindings, &name)
            .list(&Default::default())
            .await
            .expect("listing RoleBindings")
            .items
            .into_iter()
            .flat_map(|b| b.subjects.unwrap_or_default())
            .map(|s| format!("{}/{}/{}", s.kind, s.namespace.unwrap_or_default(), s.name))
            .collect();
    for account in [&bob_account, &owner_account] {
        assert!(
            bindings.contains(&format!("ServiceAccount/berth-users/{account}")),
            "{account} is not bound: {bindings:?}"
        );
    }
    assert!(
        bindings
            .iter()
            .all(|s| s.starts_with("ServiceAccount/berth-users/user-")),
        "{bindings:?}"
    );

    // The owner can neither mint a token for bob's identity nor run as it.
    let (minted, said) = kubectl(
        kubectl_path,
        &owner_kubeconfig,
        &["create", "token", &bob_account, "-n", "berth-users"],
    )
    .await;
    assert!(!minted && said.contains("forbidden"), "{said}");
    let pod = json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "as-bob", "namespace": name},
        "spec": {"serviceAccountName": bob_account,
                 "containers": [{"name": "c", "image": "busybox:1.36"}]}
    });
    let pod_file = std::env::temp_dir().join(format!("berth-{name}-pod.json"));
    std::fs::write(&pod_file, pod.to_string()).expect("writing the pod");
    let (ran, said) = kubectl(
        kubectl_path,
        &owner_kubeconfig,
        &["create", "-f", pod_file.to_str().unwrap()],
    )
    .await;
    // A pod's ServiceAccount is always of its own namespace, where no
    // `user-*` account exists (and the guardrail refuses one that would).
    assert!(!ran && said.contains("forbidden"), "{said}");
    eprintln!("a pod running as another member's identity was refused: {said}");

    // A role change.
    add("viewer").await;
    // Measured from the answer, with a deadline well past the promise so
    // that a slow run reports its figure rather than only "too slow".
    let took = until_can_i(
        kubectl_path,
        &kubeconfig,
        &name,
        false,
        Duration::from_secs(60),
    )
    .await;
    report("a role change (editor -> viewer)", took);

    // An open watch, which the apiserver authorized when it began.
    let mut watch = tokio::process::Command::new(kubectl_path)
        .arg("--kubeconfig")
        .arg(&kubeconfig)
        .args(["get", "pods", "-n", &name, "--watch"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("kubectl runs");
    until_get_pods(
        kubectl_path,
        &kubeconfig,
        &name,
        true,
        Duration::from_secs(30),
    )
    .await;
    assert!(
        tokio::time::timeout(Duration::from_secs(2), watch.wait())
            .await
            .is_err(),
        "the watch ended before anything was revoked"
    );

    // A removal.
    let removed = app.delete(&owner, &member).await;
    assert_eq!(removed.status(), StatusCode::NO_CONTENT);
    let start = Instant::now();
    tokio::time::timeout(Duration::from_secs(60), watch.wait())
        .await
        .expect("the open watch outlived the removal by a minute")
        .expect("waiting for kubectl");
    report("a removal, for an open watch", start.elapsed());
    let (took, said) = until_get_pods(
        kubectl_path,
        &kubeconfig,
        &name,
        false,
        Duration::from_secs(60),
    )
    .await;
    assert!(said.contains("forbidden"), "{said}");
    report("a removal", took);

    // Back as an editor, then disabled: the same kubeconfig works again,
    // then not at all.
    add("editor").await;
    until_get_pods(
        kubectl_path,
        &kubeconfig,
        &name,
        true,
        Duration::from_secs(30),
    )
    .await;
    let disabled = app
        .call(
            Method::PATCH,
            &admin,
            &format!("/api/v1/admin/users/{bob_id}"),
            Some(&json!({"disabled": true})),
        )
        .await;
    assert_eq!(disabled.status(), StatusCode::OK);
    let (took, said) = until_get_pods(
        kubectl_path,
        &kubeconfig,
        &name,
        false,
        Duration::from_secs(60),
    )
    .await;
    assert!(
        said.contains("Unauthorized") || said.contains("forbidden"),
        "{said}"
    );
    report("disabling bob's account", took);
    // Access ends with the bindings the controller drops; the token itself
    // is refused once the apiserver's cache of authenticated tokens (10 s by
    // default) forgets it, since its ServiceAccount is gone.
    let start = Instant::now();
    loop {
        let (_, said) = kubectl(kubectl_path, &kubeconfig, &["get", "pods", "-n", &name]).await;
        if said.contains("Unauthorized") {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "bob's token still authenticates: {said}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    eprintln!(
        "bob's token was refused as Unauthorized {:?} later",
        start.elapsed()
    );

    // A kubeconfig's server edited to another namespace's path reaches
    // nothing there: only environments its identity is a member of.
    let text = std::fs::read_to_string(&owner_kubeconfig).expect("the owner's kubeconfig");
    for namespace in ["kube-system", "berth-users", "default"] {
        let edited = text.replace(
            &format!("/environments/{name}/kube"),
            &format!("/environments/{namespace}/kube"),
        );
        let config = kube::Config::from_custom_kubeconfig(
            kube::config::Kubeconfig::from_yaml(&edited).expect("a kubeconfig"),
            &kube::config::KubeConfigOptions::default(),
        )
        .await
        .expect("a client configuration");
        let client = kube::Client::try_from(config).expect("a client");
        let listed =
            kube::Api::<k8s_openapi::api::core::v1::ConfigMap>::namespaced(client, namespace)
                .list(&Default::default())
                .await;
        assert!(
            matches!(&listed, Err(kube::Error::Api(e)) if e.code == 403 && e.message.contains("not a member")),
            "{namespace}: {listed:?}"
        );
    }

    // The token is for Berth only: the apiserver itself never took it.
    let token = std::fs::read_to_string(&owner_kubeconfig)
        .expect("the owner's kubeconfig")
        .lines()
        .find_map(|l| l.trim().strip_prefix("token: ").map(str::to_owned))
        .expect("a token in the kubeconfig");
    let direct = kube::Api::<k8s_openapi::api::core::v1::Pod>::namespaced(
        cluster.client_with_token(&token).await.expect("a client"),
        &name,
    )
    .list(&Default::default())
    .await;
    assert!(
        matches!(&direct, Err(kube::Error::Api(e)) if e.code == 401),
        "the apiserver took a kubeconfig's token directly: {direct:?}"
    );

    // Re-enabled, bob gets a new identity: the old tokens stay dead.
    let enabled = app
        .call(
            Method::PATCH,
            &admin,
            &format!("/api/v1/admin/users/{bob_id}"),
            Some(&json!({"disabled": false})),
        )
        .await;
    assert_eq!(enabled.status(), StatusCode::OK);
    let fresh = kubeconfig_file(&app, &bob, &path, &name, "bob-again").await;
    until_get_pods(kubectl_path, &fresh, &name, true, Duration::from_secs(30)).await;
    let (ok, said) = kubectl(kubectl_path, &kubeconfig, &["get", "pods", "-n", &name]).await;
    assert!(!ok && said.contains("Unauthorized"), "{said}");

    for file in [&kubeconfig, &owner_kubeconfig, &fresh, &pod_file] {
        let _ = std::fs::remove_file(file);
    }
    let deleted = app.delete(&owner, &path).await;
    assert!(deleted.status().is_success(), "{}", deleted.status());
    app.eventually(&owner, &path, Duration::from_secs(60), |status, _| {
        status == StatusCode::NOT_FOUND
    })
    .await;
}

/// Whether `berth-users/user-<id>` exists.
async fn identity_exists(client: &kube::Client, id: &str) -> bool {
    kube::Api::<k8s_openapi::api::core::v1::ServiceAccount>::namespaced(
        client.clone(),
        "berth-users",
    )
    .get_opt(&format!("user-{id}"))
    .await
    .expect("reading berth-users")
    .is_some()
}

/// An account is given its identity when it registers; disabled through a
/// replica that cannot reach the cluster, its identity is deleted as soon
/// as a Berth that can reach it starts.
#[tokio::test]
async fn a_disable_that_missed_the_cluster_is_mended_when_berth_reaches_it() {
    let app = spawn_app_on_cluster().await;
    let client = berth_testkit::cluster()
        .await
        .expect("the local cluster")
        .client();
    let suffix = &uuid::Uuid::new_v4().simple().to_string()[..8];
    let carol = app
        .member_token(&format!("carol-{suffix}@example.com"))
        .await;
    let id = user_id(&app, &carol).await;
    let start = Instant::now();
    while !identity_exists(&client, &id).await {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "no identity for a new account"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let offline = app.replica().await;
    let admin = offline.admin_token().await;
    let disabled = offline
        .call(
            Method::PATCH,
            &admin,
            &format!("/api/v1/admin/users/{id}"),
            Some(&json!({"disabled": true})),
        )
        .await;
    assert_eq!(disabled.status(), StatusCode::OK);
    assert!(identity_exists(&client, &id).await);

    let _online = app.replica_on_cluster().await;
    let start = Instant::now();
    while identity_exists(&client, &id).await {
        assert!(
            start.elapsed() < Duration::from_secs(15),
            "the disabled user's identity is still there"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    eprintln!(
        "a disabled user's identity was deleted {:?} after a Berth reached the cluster",
        start.elapsed()
    );
}
