//! A pod's logs for the environment's members: through the apiserver's
//! `pods/log` to the (local cluster's) kubelet, tail and since and
//! container as `kubectl logs` has them, each bad parameter named; 404 for
//! anyone else; a followed stream sends lines as they come and ends within
//! seconds of its reader's removal.

mod support;

use berth_testkit::unique_name as unique;
use reqwest::{Client, Method, StatusCode};
use serde_json::json;
use std::time::{Duration, Instant};
use support::*;

#[tokio::test]
async fn members_read_and_follow_a_pods_logs_until_they_lose_access() {
    let app = spawn_app_with_controller().await;
    let ann_email = format!("{}@example.com", unique("ann"));
    let ann = app.member_token(&ann_email).await;
    let viewer_email = format!("{}@example.com", unique("vic"));
    let viewer = app.member_token(&viewer_email).await;
    let stranger = app
        .member_token(&format!("{}@example.com", unique("sam")))
        .await;
    let name = unique("logs");
    let path = format!("/api/v1/environments/{name}");
    let created = app
        .post(
            &ann,
            "/api/v1/environments",
            &json!({"name": name, "template": "small",
                    "members": [{"email": viewer_email, "role": "viewer"}],
                    "apps": [{"name": "web", "image": "nginx:1.27", "replicas": 1, "port": 8080,
                              "resources": {"cpu": "100m", "memory": "64Mi"}}]}),
        )
        .await;
    assert_eq!(created.status(), StatusCode::CREATED);
    let workloads = app
        .eventually(
            &ann,
            &format!("{path}/workloads"),
            Duration::from_secs(60),
            |_, b| {
                b["pods"]
                    .as_array()
                    .is_some_and(|p| p.iter().any(|p| p["phase"] == "Running"))
            },
        )
        .await;
    let pod = workloads["pods"][0]["name"].as_str().unwrap().to_owned();
    // The portal's log viewer offers these as the container picker.
    assert_eq!(workloads["pods"][0]["containers"], json!(["web"]));
    let logs = format!("{path}/pods/{pod}/logs");

    // The kubelet writes a line every two seconds from the container's start.
    let deadline = Instant::now() + Duration::from_secs(30);
    let text = loop {
        let response = app.get(&viewer, &format!("{logs}?tailLines=2")).await;
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(
            response.headers()["content-type"],
            "text/plain; charset=utf-8"
        );
        let text = response.text().await.unwrap();
        if text.lines().count() == 2 || Instant::now() > deadline {
            break text;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    assert_eq!(text.lines().count(), 2, "{text}");
    assert!(text.lines().all(|l| l.contains(&pod)), "{text}");

    // `kubectl logs` with the viewer's kubeconfig reads the same lines: both
    // start at the container's start, so the shorter is a prefix of the longer.
    let kubeconfig = std::env::temp_dir().join(format!("berth-{name}-viewer.kubeconfig"));
    let response = app.get(&viewer, &format!("{path}/kubeconfig")).await;
    assert_eq!(response.status(), StatusCode::OK);
    std::fs::write(&kubeconfig, response.text().await.unwrap()).unwrap();
    let cluster = berth_testkit::cluster().await.expect("the local cluster");
    let output = tokio::process::Command::new(cluster.repo_root().join(".berth/bin/kubectl"))
        .arg("--kubeconfig")
        .arg(&kubeconfig)
        .args(["logs", &pod, "-n", &name])
        .output()
        .await
        .expect("kubectl runs");
    let _ = std::fs::remove_file(&kubeconfig);
    assert!(
        output.status.success(),
        "kubectl logs with the viewer's kubeconfig: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let by_kubectl = String::from_utf8(output.stdout).unwrap();
    let by_api = app.get(&viewer, &logs).await.text().await.unwrap();
    let (kubectl_lines, api_lines): (Vec<_>, Vec<_>) =
        (by_kubectl.lines().collect(), by_api.lines().collect());
    let common = kubectl_lines.len().min(api_lines.len());
    assert!(common >= 2, "kubectl: {by_kubectl}\nAPI: {by_api}");
    assert_eq!(kubectl_lines[..common], api_lines[..common]);

    for (query, field) in [
        ("container=nope", "container"),
        ("container=Bad_Name", "container"),
        ("tailLines=-1", "tailLines"),
        ("tailLines=100001", "tailLines"),
        ("sinceSeconds=0", "sinceSeconds"),
        ("follow=perhaps", "follow"),
        ("lines=3", "query"),
    ] {
        let response = app.get(&ann, &format!("{logs}?{query}")).await;
        let body = expect_error(response, StatusCode::BAD_REQUEST, "validation_failed").await;
        assert!(
            body["error"]["details"][0]["field"]
                .as_str()
                .is_some_and(|f| f == field || (field == "query" && !f.is_empty())),
            "{query}: {body}"
        );
    }
    for (token, path) in [
        (&stranger, logs.clone()),
        (&ann, format!("{path}/pods/no-such-pod/logs")),
        // No pod has such a name: absent, not a 400 of the apiserver's.
        (&ann, format!("{path}/pods/%2e%2e/logs")),
        (&ann, format!("{path}/pods/Web%20Pod/logs")),
    ] {
        let response = app.get(token, &path).await;
        expect_error(response, StatusCode::NOT_FOUND, "not_found").await;
    }

    // Followed, lines keep coming; removed, the reader's stream ends.
    let response = Client::new()
        .get(app.url(&format!("{logs}?follow=true&tailLines=0")))
        .bearer_auth(&viewer)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let mut response = response;
    let first = tokio::time::timeout(Duration::from_secs(10), response.chunk())
        .await
        .expect("a line within 10 s")
        .unwrap()
        .expect("the stream is open");
    let first = String::from_utf8_lossy(&first).into_owned();
    assert!(first.contains(&pod), "{first}");
    // Each line starts with the second it was written at (the container's
    // start plus two seconds a line): it must arrive within 2 s of it.
    let written = time::OffsetDateTime::parse(
        first.split(' ').next().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .expect("a timestamped line");
    let late = time::OffsetDateTime::now_utc() - written;
    eprintln!("a followed line arrived {late} after it was written");
    assert!(late < time::Duration::seconds(2), "{late} late: {first}");
    let removed = app
        .call(
            Method::DELETE,
            &ann,
            &format!("{path}/members/{viewer_email}"),
            None,
        )
        .await;
    assert_eq!(removed.status(), StatusCode::NO_CONTENT);
    ends_within_5_s(&mut response, "the removed viewer's").await;

    // A session that ends (logout, here) ends its followed streams too.
    let browser = app.browser();
    let login = app.login(&browser, &ann_email, PASSWORD).await;
    assert_eq!(login.status(), StatusCode::OK);
    let csrf = set_cookie(&login, "berth_csrf").unwrap();
    let mut response = browser
        .get(app.url(&format!("{logs}?follow=true&tailLines=1")))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    tokio::time::timeout(Duration::from_secs(10), response.chunk())
        .await
        .expect("a line within 10 s")
        .unwrap()
        .expect("the stream is open");
    let logout = browser
        .post(app.url("/api/v1/auth/logout"))
        .header("x-csrf-token", csrf)
        .send()
        .await
        .unwrap();
    assert!(logout.status().is_success());
    ends_within_5_s(&mut response, "the logged-out session's").await;

    let deleted = app.delete(&ann, &path).await;
    assert!(deleted.status().is_success());
}

/// Reads `response` (a followed log) until it ends, failing after 5 s;
/// prints how long that took, naming `whose` stream it was.
async fn ends_within_5_s(response: &mut reqwest::Response, whose: &str) {
    let start = Instant::now();
    let ended = tokio::time::timeout(Duration::from_secs(5), async {
        while let Ok(Some(_)) = response.chunk().await {}
    })
    .await;
    assert!(ended.is_ok(), "{whose} log stream still runs after 5 s");
    eprintln!("{whose} log stream ended {:?} later", start.elapsed());
}
