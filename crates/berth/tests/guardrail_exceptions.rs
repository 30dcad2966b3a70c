//! Exceptions to the tenant guardrails (more Ingress hosts, ExternalName
//! Services) are an admin's to grant: asked by a member, a create or change
//! waits for an admin whatever the policy; granted, they reach the
//! namespace where the guardrails read them, and taken back they leave it;
//! no grant reaches into the ingress domain or overlaps another
//! environment's. (That nobody but Berth writes them into an Environment is
//! `berth-controller/tests/admission.rs`; that the guardrails admit what the
//! namespace allows is `berth-controller/tests/guardrails.rs`.)

mod support;

use berth_manifests::{ALLOW_EXTERNAL_NAME_ANNOTATION, ALLOWED_INGRESS_HOSTS_ANNOTATION};
use berth_testkit::unique_name as unique;
use k8s_openapi::api::core::v1::Namespace;
use kube::Api;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};
use support::*;

const READY: Duration = Duration::from_secs(30);

/// The 202's request, whose reasons must name `exceptions`.
async fn held_for_an_admin(response: reqwest::Response) -> String {
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    let body: Value = response.json().await.unwrap();
    let reasons = body["request"]["reasons"].to_string();
    assert!(reasons.contains("exceptions"), "{body}");
    body["request"]["id"].as_str().expect("an id").to_owned()
}

/// Polls the namespace `name` until its annotations satisfy `done`.
async fn namespace_annotations(
    name: &str,
    done: impl Fn(&BTreeMap<String, String>) -> bool,
) -> BTreeMap<String, String> {
    let cluster = berth_testkit::cluster().await.expect("the local cluster");
    let namespaces: Api<Namespace> = Api::all(cluster.client());
    let deadline = Instant::now() + READY;
    loop {
        let annotations = namespaces
            .get_opt(name)
            .await
            .unwrap()
            .and_then(|ns| ns.metadata.annotations)
            .unwrap_or_default();
        if done(&annotations) {
            return annotations;
        }
        assert!(
            Instant::now() < deadline,
            "namespace {name}: {annotations:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn members_ask_for_exceptions_and_admins_grant_and_take_them_back() {
    let app = spawn_app_with_controller().await;
    let admin = app.admin_token().await;
    let ann = app
        .member_token(&format!("{}@example.com", unique("ann")))
        .await;
    let shop = format!("{}.example.com", unique("shop"));
    let preview = format!("*.{}.example.org", unique("pr"));
    // Within every policy limit, a member's exceptions still wait.
    let asked = unique("exc-ask");
    let id = held_for_an_admin(
        app.post(
            &ann,
            "/api/v1/environments",
            &json!({"name": asked, "exceptions": {"ingressHosts": [shop.to_uppercase()], "externalName": true}}),
        )
        .await,
    )
    .await;
    let preview_body = app
        .post(
            &ann,
            "/api/v1/environments/preview",
            &json!({"name": asked, "exceptions": {"externalName": true}}),
        )
        .await;
    assert_eq!(preview_body.status(), StatusCode::OK);
    let response = app
        .call(
            Method::POST,
            &admin,
            &format!("/api/v1/admin/requests/{id}/approve"),
            None,
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let granted =
        namespace_annotations(&asked, |a| a.contains_key(ALLOW_EXTERNAL_NAME_ANNOTATION)).await;
    assert_eq!(granted[ALLOWED_INGRESS_HOSTS_ANNOTATION], shop);
    assert_eq!(granted[ALLOW_EXTERNAL_NAME_ANNOTATION], "true");
    let env = app.get_json(&ann, &path(&asked)).await;
    assert_eq!(
        env["spec"]["exceptions"],
        json!({"ingressHosts": [shop], "externalName": true})
    );

    // A member's widening of exceptions waits too; other changes do not,
    // and neither does giving exceptions back.
    let response = patch(
        &app,
        &ann,
        &asked,
        json!({"exceptions": {"ingressHosts": [shop, "more.example.net"], "externalName": true}}),
    )
    .await;
    held_for_an_admin(response).await;
    let response = patch(&app, &ann, &asked, json!({"description": "still granted"})).await;
    assert_eq!(response.status(), StatusCode::OK);
    let response = patch(
        &app,
        &ann,
        &asked,
        json!({"exceptions": {"externalName": null}}),
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    namespace_annotations(&asked, |a| !a.contains_key(ALLOW_EXTERNAL_NAME_ANNOTATION)).await;
    // An exception annotation written beside the spec does not stand.
    let cluster = berth_testkit::cluster().await.expect("the local cluster");
    let namespaces: Api<Namespace> = Api::all(cluster.client());
    namespaces
        .patch(
            &asked,
            &kube::api::PatchParams::default(),
            &kube::api::Patch::Merge(json!({"metadata": {"annotations": {
                ALLOW_EXTERNAL_NAME_ANNOTATION: "true"}}})),
        )
        .await
        .unwrap();
    let response = patch(
        &app,
        &ann,
        &asked,
        json!({"description": "reconciled again"}),
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    namespace_annotations(&asked, |a| !a.contains_key(ALLOW_EXTERNAL_NAME_ANNOTATION)).await;

    // Nothing under the ingress domain, whose names are environments' own.
    for (host, field) in [
        ("web.other.berth.localhost", "exceptions.ingressHosts[0]"),
        ("*.berth.localhost", "exceptions.ingressHosts[0]"),
        ("Berth.Localhost.", "exceptions.ingressHosts[0]"),
        ("not a host", "exceptions.ingressHosts[0]"),
    ] {
        let response = patch(
            &app,
            &admin,
            &asked,
            json!({"exceptions": {"ingressHosts": [host]}}),
        )
        .await;
        let body = expect_error(response, StatusCode::BAD_REQUEST, "validation_failed").await;
        assert_eq!(
            body["error"]["details"][0]["field"], field,
            "{host}: {body}"
        );
    }

    // An admin grants at once, never a host another environment holds.
    let other = unique("exc-other");
    let response = app
        .post(&ann, "/api/v1/environments", &json!({"name": other}))
        .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let overlapping = format!("*.{}", shop.split_once('.').unwrap().1);
    let response = patch(
        &app,
        &admin,
        &other,
        json!({"exceptions": {"ingressHosts": [preview, overlapping]}}),
    )
    .await;
    let body = expect_error(response, StatusCode::BAD_REQUEST, "validation_failed").await;
    assert_eq!(
        body["error"]["details"][0]["field"],
        "exceptions.ingressHosts[1]"
    );
    assert!(body.to_string().contains(&asked), "{body}");
    let response = patch(
        &app,
        &admin,
        &other,
        json!({"exceptions": {"ingressHosts": [preview]}}),
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    namespace_annotations(&other, |a| {
        a.get(ALLOWED_INGRESS_HOSTS_ANNOTATION) == Some(&preview)
    })
    .await;

    // Taken back, they leave the namespace.
    let response = patch(&app, &admin, &asked, json!({"exceptions": null})).await;
    assert_eq!(response.status(), StatusCode::OK);
    namespace_annotations(&asked, |a| {
        !a.contains_key(ALLOWED_INGRESS_HOSTS_ANNOTATION)
            && !a.contains_key(ALLOW_EXTERNAL_NAME_ANNOTATION)
    })
    .await;

    for name in [&asked, &other] {
        app.delete(&admin, &path(name)).await;
    }
}
