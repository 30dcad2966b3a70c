mod support;

use reqwest::{Client, StatusCode};
use serde_json::Value;
use support::*;

#[tokio::test]
async fn health_is_ok_and_readiness_names_the_missing_cluster() {
    let app = spawn_app().await;
    let client = Client::new();
    assert_eq!(
        client
            .get(app.url("/healthz"))
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::OK
    );
    let response = client.get(app.url("/readyz")).send().await.unwrap();
    assert!(response.headers().contains_key("retry-after"));
    let body = expect_error(response, StatusCode::SERVICE_UNAVAILABLE, "unavailable").await;
    let failing: Vec<_> = body["error"]["details"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["field"].as_str().unwrap())
        .collect();
    assert_eq!(failing, ["cluster"], "{body}");
}

#[tokio::test]
async fn metrics_count_requests_by_route_and_status() {
    let app = spawn_app().await;
    let client = Client::new();
    client.get(app.url("/api/v1/me")).send().await.unwrap();
    client.get(app.url("/healthz")).send().await.unwrap();
    let text = client
        .get(app.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        text.contains(
            r#"berth_http_requests_total{method="GET",route="/api/v1/me",status="401"} 1"#
        ),
        "{text}"
    );
    assert!(
        text.contains("berth_http_request_duration_seconds_bucket"),
        "{text}"
    );
}

#[tokio::test]
async fn every_answer_carries_a_request_id_and_a_given_one_is_kept() {
    let app = spawn_app().await;
    let client = Client::new();
    let response = client.get(app.url("/healthz")).send().await.unwrap();
    assert!(!response.headers()["x-request-id"].is_empty());
    let response = client
        .get(app.url("/healthz"))
        .header("x-request-id", "trace-me-42")
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["x-request-id"], "trace-me-42");
}

#[tokio::test]
async fn openapi_document_describes_the_accounts_contract() {
    let app = spawn_app().await;
    let doc: Value = Client::new()
        .get(app.url("/api/v1/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"));
    let paths = doc["paths"].as_object().unwrap();
    for (path, method) in [
        ("/api/v1/auth/register", "post"),
        ("/api/v1/auth/login", "post"),
        ("/api/v1/auth/logout", "post"),
        ("/api/v1/me", "get"),
        ("/api/v1/me/password", "put"),
        ("/api/v1/auth/verify", "post"),
        ("/api/v1/auth/verify/resend", "post"),
        ("/api/v1/auth/password-reset", "post"),
        ("/api/v1/auth/password-reset/confirm", "post"),
        ("/api/v1/tokens", "post"),
        ("/api/v1/tokens", "get"),
        ("/api/v1/tokens/{id}", "delete"),
        ("/api/v1/admin/users", "get"),
        ("/api/v1/admin/users/{id}", "patch"),
        ("/healthz", "get"),
        ("/readyz", "get"),
        ("/metrics", "get"),
    ] {
        assert!(
            paths.get(path).and_then(|p| p.get(method)).is_some(),
            "{method} {path} is documented"
        );
    }
    // A path parameter is one the path names; headers are the ones the
    // contract names as headers; every other one is in the query.
    for (path, operations) in paths {
        for (method, operation) in operations.as_object().unwrap() {
            for parameter in operation["parameters"].as_array().into_iter().flatten() {
                let name = parameter["name"].as_str().unwrap();
                let expected = if path.contains(&format!("{{{name}}}")) {
                    "path"
                } else if ["Idempotency-Key", "If-Match", "Last-Event-ID"].contains(&name) {
                    "header"
                } else {
                    "query"
                };
                assert_eq!(parameter["in"], expected, "{method} {path} {name}");
            }
        }
    }
    let user = &doc["components"]["schemas"]["UserView"]["properties"];
    for field in [
        "id",
        "email",
        "displayName",
        "role",
        "emailVerified",
        "createdAt",
    ] {
        assert!(user.get(field).is_some(), "User has {field}");
    }
    // Environments are typed through and through (the portal's one client):
    // the spec and status are schemas, with the parsers' constraints.
    let schemas = &doc["components"]["schemas"];
    let view = &schemas["EnvironmentView"]["properties"];
    assert_eq!(
        view["spec"]["$ref"],
        "#/components/schemas/EnvironmentSpecInput"
    );
    assert_eq!(
        view["status"]["$ref"],
        "#/components/schemas/EnvironmentStatus"
    );
    assert_eq!(
        schemas["EnvironmentSpecInput"]["properties"]["name"]["maxLength"],
        40
    );
    assert_eq!(
        schemas["AppInput"]["properties"]["expose"]["enum"],
        serde_json::json!(["none", "cluster", "ingress"])
    );
    assert_eq!(
        schemas["EnvironmentStatus"]["required"],
        serde_json::json!(["phase", "conditions"])
    );
    assert!(
        schemas["Phase"]["enum"]
            .as_array()
            .unwrap()
            .contains(&"Deleting".into())
    );
    let text = serde_json::to_string(&doc).unwrap();
    assert!(
        !text.contains("x-kubernetes-"),
        "the CRD's CEL rules stay in the CRD"
    );
}

/// With `BERTH_METRICS_LISTEN`, `/metrics` is served there alone and the
/// main listener, which an Ingress may publish, answers 404 for it (the
/// chart's Ingress published every series to the internet).
#[tokio::test]
async fn metrics_on_their_own_listener_are_not_on_the_main_one() {
    let dir = std::env::temp_dir().join(format!("berth-metrics-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let args = berth::config::ServeArgs {
        listen: Some("127.0.0.1:0".parse().unwrap()),
        kube_listen: Some("127.0.0.1:0".parse().unwrap()),
        metrics_listen: Some("127.0.0.1:0".parse().unwrap()),
        database_url: Some(berth_store::testing::fresh_database_url(&dir).await),
        kubeconfig: Some(dir.join("no-such-kubeconfig")),
        no_controller: true,
        ..Default::default()
    };
    let config = berth::config::Config::load(args, None).unwrap();
    let server = berth::serve::Server::build(config).await.unwrap();
    let (main, metrics) = (server.url(), server.metrics_local_addr().unwrap());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(server.run_until(async {
        let _ = stopped.await;
    }));
    let client = Client::new();
    let response = client.get(format!("{main}/metrics")).send().await.unwrap();
    expect_error(response, StatusCode::NOT_FOUND, "not_found").await;
    let response = client
        .get(format!("http://{metrics}/metrics"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let text = response.text().await.unwrap();
    assert!(text.contains("berth_http_requests_total"), "{text}");
    let response = client
        .get(format!("http://{metrics}/api/v1/me"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.status(),
        StatusCode::NOT_FOUND,
        "the API is not there"
    );
    stop.send(()).unwrap();
    task.await.unwrap().unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
}
