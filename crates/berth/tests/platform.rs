//! Policy, templates and the audit log through the API.

mod support;

use reqwest::{Client, Method, StatusCode};
use serde_json::{Value, json};
use support::*;

#[tokio::test]
async fn policy_has_defaults_rejects_bad_fields_and_closes_registration() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let client = Client::new();
    let policy: Value = app.get_json(&admin, "/api/v1/admin/policy").await;
    assert_eq!(policy["registration"], "open");
    assert_eq!(policy["approval"], "overLimit");

    let mut bad = policy.clone();
    bad["maxQuota"]["cpu"] = json!("lots");
    let response = app
        .call(Method::PUT, &admin, "/api/v1/admin/policy", Some(&bad))
        .await;
    let body = expect_error(response, StatusCode::BAD_REQUEST, "validation_failed").await;
    assert_eq!(
        body["error"]["details"],
        json!([{"field": "maxQuota.cpu", "message": body["error"]["details"][0]["message"]}]),
        "{body}"
    );
    let partial = app
        .call(
            Method::PUT,
            &admin,
            "/api/v1/admin/policy",
            Some(&json!({"approval": "always"})),
        )
        .await;
    let body = expect_error(partial, StatusCode::BAD_REQUEST, "validation_failed").await;
    assert!(
        body.to_string().contains("\"registration\""),
        "PUT replaces the whole policy: {body}"
    );

    let mut closed = policy.clone();
    closed["registration"] = json!("closed");
    let saved: Value = app
        .call(Method::PUT, &admin, "/api/v1/admin/policy", Some(&closed))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(saved["registration"], "closed");
    let response = app.register(&Client::new(), "late@example.com").await;
    expect_error(response, StatusCode::FORBIDDEN, "forbidden").await;

    let member_view = client
        .get(app.url("/api/v1/admin/policy"))
        .send()
        .await
        .unwrap();
    expect_error(member_view, StatusCode::NOT_FOUND, "not_found").await;
}

#[tokio::test]
async fn templates_start_with_the_built_ins_and_admins_manage_their_own() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let member = app.member_token("tess@example.com").await;
    let names = |list: &Value| -> Vec<String> {
        list["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["name"].as_str().unwrap().to_owned())
            .collect()
    };
    let list: Value = app.get_json(&member, "/api/v1/templates").await;
    assert_eq!(names(&list), ["large", "medium", "small"]);
    assert_eq!(list["items"][2]["spec"]["quota"]["cpu"], "2");

    let ci = json!({"description": "CI runners", "spec": {"quota": {"cpu": "1", "memory": "2Gi", "storage": "5Gi", "pods": 10}, "ttl": "8h"}});
    let response = app
        .call(
            Method::PUT,
            &member,
            "/api/v1/admin/templates/ci",
            Some(&ci),
        )
        .await;
    expect_error(response, StatusCode::NOT_FOUND, "not_found").await;
    let response = app
        .call(Method::PUT, &admin, "/api/v1/admin/templates/ci", Some(&ci))
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let bad = json!({"spec": {"quota": {"memory": "2 gigs"}}});
    let response = app
        .call(
            Method::PUT,
            &admin,
            "/api/v1/admin/templates/ci",
            Some(&bad),
        )
        .await;
    let body = expect_error(response, StatusCode::BAD_REQUEST, "validation_failed").await;
    assert_eq!(
        body["error"]["details"][0]["field"], "spec.quota.memory",
        "{body}"
    );

    let list: Value = app.get_json(&member, "/api/v1/templates").await;
    assert_eq!(names(&list), ["ci", "large", "medium", "small"]);
    assert_eq!(list["items"][0]["spec"]["ttl"], "8h");

    let response = app.delete(&admin, "/api/v1/admin/templates/small").await;
    expect_error(response, StatusCode::CONFLICT, "conflict").await;
    let response = app.delete(&admin, "/api/v1/admin/templates/ci").await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    let response = app.delete(&admin, "/api/v1/admin/templates/ci").await;
    expect_error(response, StatusCode::NOT_FOUND, "not_found").await;
}

#[tokio::test]
async fn admin_actions_are_audited_and_filterable() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let client = Client::new();
    let response = client
        .put(app.url("/api/v1/admin/templates/ci"))
        .bearer_auth(&admin)
        .header("x-request-id", "audit-me-1")
        .json(&json!({"description": "CI"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let audit: Value = app
        .get_json(&admin, "/api/v1/admin/audit?actor=admin@example.com")
        .await;
    let entry = &audit["items"][0];
    assert_eq!(entry["action"], "template.put");
    assert_eq!(entry["target"], "template/ci");
    assert_eq!(entry["outcome"], "success");
    assert_eq!(entry["requestId"], "audit-me-1");
    let none: Value = app
        .get_json(&admin, "/api/v1/admin/audit?actor=someone@example.com")
        .await;
    assert_eq!(none["items"], json!([]));
    for (query, field) in [
        ("since=yesterday", "since"),
        ("limit=0", "limit"),
        ("bogus=1", "bogus"),
    ] {
        let response = app
            .get(&admin, &format!("/api/v1/admin/audit?{query}"))
            .await;
        let body = expect_error(response, StatusCode::BAD_REQUEST, "validation_failed").await;
        assert_eq!(
            body["error"]["details"][0]["field"], field,
            "{query}: {body}"
        );
    }
    // The audit log has no write route: a write is a wrong method.
    let response = app.delete(&admin, "/api/v1/admin/audit").await;
    let allow = response.headers()["allow"].to_str().unwrap().to_owned();
    assert!(
        allow.contains("GET") && !allow.contains("DELETE"),
        "Allow: {allow}"
    );
    expect_error(
        response,
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
    )
    .await;
}
