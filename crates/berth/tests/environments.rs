//! The Environment API against the real local cluster: Environments are
//! written to the apiserver and read back from the watch cache.

mod support;

use berth_testkit::unique_name as unique;
use reqwest::{Client, Method, StatusCode};
use serde_json::{Value, json};
use std::io::Read;
use std::time::Duration;
use support::*;

async fn create(app: &TestApp, token: &str, body: &Value) -> reqwest::Response {
    app.post(token, "/api/v1/environments", body).await
}

async fn delete(app: &TestApp, token: &str, name: &str) {
    let response = app
        .delete(token, &format!("/api/v1/environments/{name}"))
        .await;
    assert!(
        matches!(
            response.status(),
            StatusCode::ACCEPTED | StatusCode::NOT_FOUND
        ),
        "{}",
        response.status()
    );
}

#[tokio::test]
async fn create_get_list_and_delete_with_visibility() {
    let app = spawn_app_on_cluster().await;
    let ann = app
        .member_token(&format!("{}@example.com", unique("ann")))
        .await;
    let eve = app
        .member_token(&format!("{}@example.com", unique("eve")))
        .await;
    let admin = app.admin_token().await;
    let name = unique("env");
    let response = create(
        &app,
        &ann,
        &json!({"name": name, "template": "small", "description": "Feature work"}),
    )
    .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let created: Value = response.json().await.unwrap();
    assert_eq!(created["name"], name);
    assert_eq!(created["namespace"], name);
    assert_eq!(created["role"], "owner");
    assert_eq!(
        created["spec"]["quota"]["cpu"], "2",
        "the template filled the quota: {created}"
    );
    assert_eq!(created["spec"]["members"][0]["role"], "owner");
    assert!(created["status"]["phase"].is_string());

    let path = format!("/api/v1/environments/{name}");
    let got = app
        .eventually(&ann, &path, Duration::from_secs(5), |s, _| {
            s == StatusCode::OK
        })
        .await;
    assert_eq!(got["description"], "Feature work");
    let list: Value = app.get_json(&ann, "/api/v1/environments").await;
    let page: Value = app.get_json(&ann, "/api/v1/environments?limit=1").await;
    assert_eq!(
        page["items"], list["items"],
        "her one environment, one page"
    );
    assert!(page.get("continue").is_none(), "{page}");
    assert!(
        list["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["name"] == name)
    );

    // Someone else: the environment does not exist for them.
    let response = app.get(&eve, &path).await;
    expect_error(response, StatusCode::NOT_FOUND, "not_found").await;
    let list: Value = app.get_json(&eve, "/api/v1/environments").await;
    assert!(
        !list["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["name"] == name)
    );
    let response = app.delete(&eve, &path).await;
    expect_error(response, StatusCode::NOT_FOUND, "not_found").await;

    // Admins see everything when they ask for all.
    let all: Value = app.get_json(&admin, "/api/v1/environments?all=true").await;
    let seen = all["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["name"] == name)
        .expect("admin sees it");
    assert_eq!(seen["role"], "admin");
    // Compressed for clients that take it, saying the same.
    let response = Client::new()
        .get(app.url("/api/v1/environments?all=true"))
        .bearer_auth(&admin)
        .header("accept-encoding", "gzip, deflate")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["content-encoding"], "gzip");
    let mut json = Vec::new();
    flate2::read::GzDecoder::new(&response.bytes().await.unwrap()[..])
        .read_to_end(&mut json)
        .expect("a gzip body");
    let unzipped: Value = serde_json::from_slice(&json).unwrap();
    assert!(
        unzipped["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["name"] == name && e["role"] == "admin"),
        "{unzipped}"
    );

    let response = app.delete(&ann, &path).await;
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    app.eventually(&ann, &path, Duration::from_secs(60), |s, _| {
        s == StatusCode::NOT_FOUND
    })
    .await;
}

#[tokio::test]
async fn bad_specs_are_refused_with_field_details() {
    let app = spawn_app_on_cluster().await;
    let ann = app
        .member_token(&format!("{}@example.com", unique("ann")))
        .await;
    let cases = [
        (json!({"name": "Bad_Name"}), "name"),
        (
            json!({"name": "ok-name", "quota": {"cpu": "lots"}}),
            "quota.cpu",
        ),
        (
            json!({"name": "ok-name", "apps": [{"name": "web", "image": "nginx", "replicas": -1}]}),
            "apps[0].replicas",
        ),
        (
            json!({"name": "ok-name", "template": "gigantic"}),
            "template",
        ),
        (json!({"name": "kube-system"}), "name"),
        (json!({"name": "ok-name", "colour": "blue"}), "colour"),
    ];
    for (body, field) in cases {
        for path in ["/api/v1/environments", "/api/v1/environments/preview"] {
            let response = app.post(&ann, path, &body).await;
            let error = expect_error(response, StatusCode::BAD_REQUEST, "validation_failed").await;
            let fields: Vec<_> = error["error"]["details"]
                .as_array()
                .unwrap()
                .iter()
                .map(|d| d["field"].as_str().unwrap().to_owned())
                .collect();
            assert!(fields.iter().any(|f| f == field), "{path} {body}: {error}");
        }
    }
}

#[tokio::test]
async fn preview_shows_objects_and_a_plain_summary_and_creates_nothing() {
    let app = spawn_app_on_cluster().await;
    let ann = app
        .member_token(&format!("{}@example.com", unique("ann")))
        .await;
    let name = unique("pre");
    let body = json!({"name": name, "template": "small", "apps": [{"name": "web", "image": "nginx:1.27", "replicas": 2, "port": 8080, "expose": "cluster"}]});
    let response = app.post(&ann, "/api/v1/environments/preview", &body).await;
    assert_eq!(response.status(), StatusCode::OK);
    let preview: Value = response.json().await.unwrap();
    assert!(
        preview["yaml"]
            .as_str()
            .unwrap()
            .contains("kind: ResourceQuota")
    );
    let kinds: Vec<_> = preview["objects"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["kind"].as_str().unwrap().to_owned())
        .collect();
    assert!(
        kinds.contains(&"Namespace".to_owned()) && kinds.contains(&"Deployment".to_owned()),
        "{kinds:?}"
    );
    assert!(
        preview["summary"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s.as_str().unwrap().contains("2 CPUs")),
        "{preview}"
    );
    let response = app.get(&ann, &format!("/api/v1/environments/{name}")).await;
    assert_eq!(
        response.status(),
        StatusCode::NOT_FOUND,
        "a preview creates nothing"
    );
}

#[tokio::test]
async fn the_same_name_twice_gives_one_environment() {
    let app = spawn_app_on_cluster().await;
    let ann = app
        .member_token(&format!("{}@example.com", unique("ann")))
        .await;
    let bob = app
        .member_token(&format!("{}@example.com", unique("bob")))
        .await;
    let name = unique("twice");
    let body = json!({"name": name, "template": "small"});
    let (a, b) = tokio::join!(create(&app, &ann, &body), create(&app, &bob, &body));
    let mut statuses = [a.status(), b.status()];
    statuses.sort();
    assert_eq!(statuses, [StatusCode::CREATED, StatusCode::CONFLICT]);
    // The very same create again by the winner is a conflict too: nothing
    // is created, so it must not answer 201 (a retry sends Idempotency-Key).
    let winner = if app
        .get(&ann, &format!("/api/v1/environments/{name}"))
        .await
        .status()
        == StatusCode::OK
    {
        &ann
    } else {
        &bob
    };
    let retry = create(&app, winner, &body).await;
    expect_error(retry, StatusCode::CONFLICT, "conflict").await;
    delete(&app, winner, &name).await;
}

#[tokio::test]
async fn roles_decide_who_changes_what() {
    let app = spawn_app_on_cluster().await;
    let owner_email = format!("{}@example.com", unique("own"));
    let editor_email = format!("{}@example.com", unique("edi"));
    let viewer_email = format!("{}@example.com", unique("vie"));
    let owner = app.member_token(&owner_email).await;
    let editor = app.member_token(&editor_email).await;
    let viewer = app.member_token(&viewer_email).await;
    let name = unique("roles");
    let body = json!({"name": name, "template": "small", "members": [{"email": editor_email, "role": "editor"}, {"email": viewer_email, "role": "viewer"}]});
    assert_eq!(
        create(&app, &owner, &body).await.status(),
        StatusCode::CREATED
    );
    let path = format!("/api/v1/environments/{name}");
    let view = app
        .eventually(&viewer, &path, Duration::from_secs(5), |s, _| {
            s == StatusCode::OK
        })
        .await;
    assert_eq!(view["role"], "viewer");

    let patch =
        async |token: &str, body: Value| app.call(Method::PATCH, token, &path, Some(&body)).await;
    let apps = json!({"apps": [{"name": "web", "image": "nginx:1.27", "port": 8080, "expose": "cluster"}]});
    expect_error(
        patch(&viewer, apps.clone()).await,
        StatusCode::FORBIDDEN,
        "forbidden",
    )
    .await;
    let response = patch(&editor, apps).await;
    assert_eq!(response.status(), StatusCode::OK);
    let changed: Value = response.json().await.unwrap();
    assert_eq!(changed["spec"]["apps"][0]["name"], "web");
    expect_error(
        patch(&editor, json!({"quota": {"cpu": "1"}})).await,
        StatusCode::FORBIDDEN,
        "forbidden",
    )
    .await;
    let response = patch(&owner, json!({"quota": {"cpu": "1"}})).await;
    assert_eq!(response.status(), StatusCode::OK);

    // A write based on an old version is refused, not silently applied.
    let stale = changed["generation"]
        .as_i64()
        .expect("a generation")
        .to_string();
    let response = Client::new()
        .patch(app.url(&path))
        .bearer_auth(&owner)
        .header("if-match", stale)
        .json(&json!({"description": "late"}))
        .send()
        .await
        .unwrap();
    expect_error(
        response,
        StatusCode::PRECONDITION_FAILED,
        "precondition_failed",
    )
    .await;

    // Members: owners manage them; the last owner stays.
    let member_path = |email: &str| format!("{path}/members/{email}");
    let editor_role = json!({"role": "editor"});
    let response = app
        .call(
            Method::PUT,
            &editor,
            &member_path(&viewer_email),
            Some(&editor_role),
        )
        .await;
    expect_error(response, StatusCode::FORBIDDEN, "forbidden").await;
    let response = app
        .call(
            Method::PUT,
            &owner,
            &member_path(&viewer_email),
            Some(&editor_role),
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let response = app.delete(&owner, &member_path(&owner_email)).await;
    expect_error(response, StatusCode::CONFLICT, "conflict").await;
    let response = app.delete(&owner, &member_path(&editor_email)).await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    app.eventually(&editor, &path, Duration::from_secs(5), |s, _| {
        s == StatusCode::NOT_FOUND
    })
    .await;

    expect_error(
        app.delete(&viewer, &path).await,
        StatusCode::FORBIDDEN,
        "forbidden",
    )
    .await;
    delete(&app, &owner, &name).await;
}

#[tokio::test]
async fn over_policy_requests_wait_for_an_admin() {
    let app = spawn_app_on_cluster().await;
    let ann_email = format!("{}@example.com", unique("ann"));
    let ann = app.member_token(&ann_email).await;
    let admin = app.admin_token().await;
    let big = unique("big");
    let huge = unique("huge");
    let over = |name: &str| json!({"name": name, "template": "small", "quota": {"cpu": "64"}});

    let response = create(&app, &ann, &over(&big)).await;
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    let pending: Value = response.json().await.unwrap();
    assert_eq!(pending["request"]["state"], "pending");
    assert!(
        pending["request"]["reasons"][0]
            .as_str()
            .unwrap()
            .contains("quota.cpu"),
        "{pending}"
    );
    let id = pending["request"]["id"].as_str().unwrap().to_owned();
    let response = app.get(&ann, &format!("/api/v1/environments/{big}")).await;
    assert_eq!(
        response.status(),
        StatusCode::NOT_FOUND,
        "a request is not an environment"
    );

    let queue: Value = app
        .get_json(&admin, "/api/v1/admin/requests?state=pending")
        .await;
    assert!(
        queue["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["id"] == id.as_str())
    );
    let approve = format!("/api/v1/admin/requests/{id}/approve");
    let response = app.call(Method::POST, &ann, &approve, None).await;
    expect_error(response, StatusCode::NOT_FOUND, "not_found").await;
    let response = app.call(Method::POST, &admin, &approve, None).await;
    assert_eq!(response.status(), StatusCode::OK);
    let env = app
        .eventually(
            &ann,
            &format!("/api/v1/environments/{big}"),
            Duration::from_secs(5),
            |s, _| s == StatusCode::OK,
        )
        .await;
    assert_eq!(env["spec"]["quota"]["cpu"], "64");
    assert_eq!(env["role"], "owner");
    let again = app.call(Method::POST, &admin, &approve, None).await;
    expect_error(again, StatusCode::CONFLICT, "conflict").await;

    let response = create(&app, &ann, &over(&huge)).await;
    let id = response.json::<Value>().await.unwrap()["request"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let response = app
        .post(
            &admin,
            &format!("/api/v1/admin/requests/{id}/reject"),
            &json!({"reason": "use the large template"}),
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let mine: Value = app.get_json(&ann, "/api/v1/requests?state=rejected").await;
    assert_eq!(mine["items"][0]["reason"], "use the large template");

    let audit: Value = app
        .get_json(&admin, &format!("/api/v1/admin/audit?environment={big}"))
        .await;
    let actions: Vec<_> = audit["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        actions,
        ["request.approve", "environment.request"],
        "{audit}"
    );
    delete(&app, &ann, &big).await;
}

#[tokio::test]
async fn a_request_is_approved_as_asked_after_its_template_is_deleted() {
    let app = spawn_app_on_cluster().await;
    let ann = app
        .member_token(&format!("{}@example.com", unique("ann")))
        .await;
    let admin = app.admin_token().await;
    let template = json!({"description": "CI runners", "spec": {"quota": {"cpu": "1", "memory": "2Gi", "storage": "5Gi", "pods": 10}, "ttl": "8h"}});
    let response = app
        .call(
            Method::PUT,
            &admin,
            "/api/v1/admin/templates/ci",
            Some(&template),
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let name = unique("ci");
    let response = create(
        &app,
        &ann,
        &json!({"name": name, "template": "ci", "quota": {"cpu": "64"}}),
    )
    .await;
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    let id = response.json::<Value>().await.unwrap()["request"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let response = app.delete(&admin, "/api/v1/admin/templates/ci").await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);

    let approve = format!("/api/v1/admin/requests/{id}/approve");
    let response = app.call(Method::POST, &admin, &approve, None).await;
    assert_eq!(response.status(), StatusCode::OK);
    let path = format!("/api/v1/environments/{name}");
    let env = app
        .eventually(&ann, &path, Duration::from_secs(5), |s, _| {
            s == StatusCode::OK
        })
        .await;
    assert_eq!(env["spec"]["quota"]["cpu"], "64", "{env}");
    assert_eq!(
        env["spec"]["quota"]["memory"], "2Gi",
        "the template's, as requested"
    );
    assert_eq!(env["spec"]["ttl"], "8h");
    delete(&app, &ann, &name).await;
}
