//! Every endpoint against every kind of caller: the documented status, and
//! 404 (never 403) for whatever a caller may not see.

mod support;

use reqwest::{Client, Method, StatusCode};
use serde_json::{Value, json};
use std::time::Duration;
use support::*;

/// Callers, in the order of each row's expected statuses.
const CALLERS: [&str; 8] = [
    "admin",
    "owner",
    "editor",
    "viewer",
    "stranger",
    "anonymous",
    "revoked",
    "disabled",
];

#[tokio::test]
async fn every_endpoint_answers_every_caller_as_documented() {
    let app = spawn_app_with_controller().await;
    let client = Client::new();
    let email = |who: &str| format!("{}@example.com", berth_testkit::unique_name(who));
    let (owner_email, editor_email, viewer_email, disabled_email) =
        (email("own"), email("edi"), email("vie"), email("dis"));
    let admin = app.admin_token().await;
    let owner = app.member_token(&owner_email).await;
    let editor = app.member_token(&editor_email).await;
    let viewer = app.member_token(&viewer_email).await;
    let stranger = app.member_token(&email("str")).await;
    let disabled = app.member_token(&disabled_email).await;
    let revoked = app.member_token(&email("rev")).await;

    let name = berth_testkit::unique_name("matrix");
    let members = json!([{"email": editor_email, "role": "editor"}, {"email": viewer_email, "role": "viewer"}, {"email": disabled_email, "role": "editor"}]);
    let response = app
        .post(
            &owner,
            "/api/v1/environments",
            &json!({"name": name, "template": "small", "members": members}),
        )
        .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let path = format!("/api/v1/environments/{name}");
    app.eventually(&owner, &path, Duration::from_secs(60), |_, env| {
        env["status"]["phase"] == "Ready"
    })
    .await;

    let tokens: Vec<(String, Option<String>)> = {
        let revoke_list: Value = app.get_json(&revoked, "/api/v1/tokens").await;
        let id = revoke_list["items"][0]["id"].as_str().unwrap().to_owned();
        assert_eq!(
            app.delete(&revoked, &format!("/api/v1/tokens/{id}"))
                .await
                .status(),
            StatusCode::NO_CONTENT
        );
        let me: Value = app.get_json(&disabled, "/api/v1/me").await;
        let id = me["id"].as_str().unwrap();
        let response = app
            .call(
                Method::PATCH,
                &admin,
                &format!("/api/v1/admin/users/{id}"),
                Some(&json!({"disabled": true})),
            )
            .await;
        assert_eq!(response.status(), StatusCode::OK);
        vec![
            ("admin".into(), Some(admin.clone())),
            ("owner".into(), Some(owner.clone())),
            ("editor".into(), Some(editor.clone())),
            ("viewer".into(), Some(viewer.clone())),
            ("stranger".into(), Some(stranger.clone())),
            ("anonymous".into(), None),
            ("revoked".into(), Some(revoked.clone())),
            ("disabled".into(), Some(disabled.clone())),
        ]
    };

    let env = |suffix: &str| format!("{path}{suffix}");
    let extra = "extra@example.com";
    // (method, path, body, statuses for CALLERS). Writes the owner and admin may
    // make leave the environment as it was, so the rows do not depend on each other.
    // A TTL of `VARY` becomes a different value for each caller, so that every
    // attempt is a real change, not a no-op.
    let rows: Vec<(Method, String, Option<Value>, [u16; 8])> = vec![
        (
            Method::GET,
            "/api/v1/me".into(),
            None,
            [200, 200, 200, 200, 200, 401, 401, 401],
        ),
        (
            Method::GET,
            "/api/v1/environments".into(),
            None,
            [200, 200, 200, 200, 200, 401, 401, 401],
        ),
        (
            Method::GET,
            "/api/v1/templates".into(),
            None,
            [200, 200, 200, 200, 200, 401, 401, 401],
        ),
        (
            Method::POST,
            "/api/v1/environments/preview".into(),
            Some(json!({"name": "peek", "template": "small"})),
            [200, 200, 200, 200, 200, 401, 401, 401],
        ),
        (
            Method::GET,
            env(""),
            None,
            [200, 200, 200, 200, 404, 401, 401, 401],
        ),
        (
            Method::PATCH,
            env(""),
            Some(json!({"description": "matrix"})),
            [200, 200, 200, 403, 404, 401, 401, 401],
        ),
        (
            Method::PATCH,
            env(""),
            Some(json!({"ttl": "VARY"})),
            [200, 200, 403, 403, 404, 401, 401, 401],
        ),
        (
            Method::POST,
            env("/renew"),
            Some(json!({"ttl": "72h"})),
            [200, 200, 200, 403, 404, 401, 401, 401],
        ),
        (
            Method::GET,
            env("/kubeconfig"),
            None,
            [403, 200, 200, 200, 404, 401, 401, 401],
        ),
        (
            Method::GET,
            env("/events"),
            None,
            [200, 200, 200, 200, 404, 401, 401, 401],
        ),
        (
            Method::GET,
            env("/workloads"),
            None,
            [200, 200, 200, 200, 404, 401, 401, 401],
        ),
        (
            Method::PUT,
            env(&format!("/members/{extra}")),
            Some(json!({"role": "viewer"})),
            [200, 200, 403, 403, 404, 401, 401, 401],
        ),
        (
            Method::DELETE,
            env("/members/nobody@example.com"),
            None,
            [404, 404, 403, 403, 404, 401, 401, 401],
        ),
        (
            Method::DELETE,
            env(""),
            None,
            [0, 0, 403, 403, 404, 401, 401, 401],
        ),
        (
            Method::GET,
            "/api/v1/admin/users".into(),
            None,
            [200, 404, 404, 404, 404, 404, 404, 404],
        ),
        (
            Method::GET,
            "/api/v1/admin/policy".into(),
            None,
            [200, 404, 404, 404, 404, 404, 404, 404],
        ),
        (
            Method::GET,
            "/api/v1/admin/integrations".into(),
            None,
            [200, 404, 404, 404, 404, 404, 404, 404],
        ),
        (
            Method::GET,
            "/api/v1/admin/requests".into(),
            None,
            [200, 404, 404, 404, 404, 404, 404, 404],
        ),
        (
            Method::GET,
            "/api/v1/admin/audit".into(),
            None,
            [200, 404, 404, 404, 404, 404, 404, 404],
        ),
        (
            Method::PUT,
            "/api/v1/admin/templates/matrix".into(),
            Some(json!({"description": "m"})),
            [200, 404, 404, 404, 404, 404, 404, 404],
        ),
        (
            Method::GET,
            "/api/v1/environments/no-such-environment".into(),
            None,
            [404, 404, 404, 404, 404, 401, 401, 401],
        ),
    ];
    let mut wrong = Vec::new();
    for (method, path, body, expected) in &rows {
        for (index, ((who, token), want)) in tokens.iter().zip(expected).enumerate() {
            if *want == 0 {
                continue; // a destructive success, checked below
            }
            let mut request = client.request(method.clone(), app.url(path));
            if let Some(token) = token {
                request = request.bearer_auth(token);
            }
            if let Some(body) = body {
                let body = body
                    .to_string()
                    .replace("VARY", &format!("{}h", 40 + index));
                request = request
                    .header("content-type", "application/json")
                    .body(body);
            }
            let got = request.send().await.unwrap().status().as_u16();
            if got != *want {
                wrong.push(format!(
                    "{method} {path} as {who}: got {got}, documented {want}"
                ));
            }
        }
    }
    assert_eq!(CALLERS.len(), tokens.len());
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));

    let response = app.delete(&owner, &path).await;
    assert_eq!(response.status(), StatusCode::ACCEPTED);
}
