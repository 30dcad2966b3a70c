//! Names and namespaces beyond a tenant's reach: reserved names are refused
//! naming `name`; a name taken by a namespace the caller cannot see answers
//! the same 409 as any taken name; the events and workloads of an
//! environment are read only from the namespace Berth made for it.

mod support;

use berth_testkit::unique_name as unique;
use k8s_openapi::api::core::v1::{ConfigMap, Event, Namespace, ObjectReference};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::Api;
use kube::api::{DeleteParams, PostParams};
use reqwest::StatusCode;
use serde_json::{Value, json};
use support::*;

#[tokio::test]
async fn reserved_names_are_refused_naming_the_field() {
    let app = spawn_app_on_cluster().await;
    let ann = app
        .member_token(&format!("{}@example.com", unique("ann")))
        .await;
    for name in [
        "kube-tools",
        "default",
        "berth-system",
        "ingress-nginx",
        "monitoring",
        "cert-manager",
        "argocd",
        "preview",
    ] {
        let response = app
            .post(&ann, "/api/v1/environments", &json!({"name": name}))
            .await;
        let body = expect_error(response, StatusCode::BAD_REQUEST, "validation_failed").await;
        assert_eq!(
            body["error"]["details"][0]["field"], "name",
            "{name}: {body}"
        );
    }
}

#[tokio::test]
async fn a_namespace_of_someone_else_is_neither_told_of_nor_read() {
    let app = spawn_app_on_cluster().await;
    let ann = app
        .member_token(&format!("{}@example.com", unique("ann")))
        .await;
    let cluster = berth_testkit::cluster().await.expect("the local cluster");
    let client = cluster.client();

    // A namespace Berth did not make, with an event in it.
    let name = unique("foreign");
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let namespace = Namespace {
        metadata: ObjectMeta {
            name: Some(name.clone()),
            ..ObjectMeta::default()
        },
        ..Namespace::default()
    };
    namespaces
        .create(&PostParams::default(), &namespace)
        .await
        .unwrap();
    let config_maps: Api<ConfigMap> = Api::namespaced(client.clone(), &name);
    let secret_looking = ConfigMap {
        metadata: ObjectMeta {
            name: Some("payroll".into()),
            ..ObjectMeta::default()
        },
        ..ConfigMap::default()
    };
    config_maps
        .create(&PostParams::default(), &secret_looking)
        .await
        .unwrap();
    let events: Api<Event> = Api::namespaced(client.clone(), &name);
    let event = Event {
        metadata: ObjectMeta {
            name: Some("payroll-run".into()),
            ..ObjectMeta::default()
        },
        involved_object: ObjectReference {
            kind: Some("ConfigMap".into()),
            name: Some("payroll".into()),
            namespace: Some(name.clone()),
            ..ObjectReference::default()
        },
        reason: Some("PayrollRun".into()),
        message: Some("paid everyone".into()),
        ..Event::default()
    };
    events.create(&PostParams::default(), &event).await.unwrap();

    // The same answer as any taken name: nothing about whose it is.
    let response = app
        .post(&ann, "/api/v1/environments", &json!({"name": name}))
        .await;
    let body = expect_error(response, StatusCode::CONFLICT, "conflict").await;
    assert_eq!(
        body["error"]["message"],
        format!("the name {name} is taken"),
        "{body}"
    );

    // An Environment of that name written past the API (as Berth's own
    // identity, which the admission policy lets through) lists ann; its
    // events and workloads must not be read from the namespace it does not own.
    let environments: Api<berth_manifests::Environment> = Api::all(client.clone());
    let env: berth_manifests::Environment = serde_json::from_value(json!({
        "apiVersion": "berth.dev/v1alpha1", "kind": "Environment",
        "metadata": {"name": name},
        "spec": {"members": [{"email": ann_email(&app, &ann).await, "role": "owner"}]}
    }))
    .unwrap();
    environments
        .create(&PostParams::default(), &env)
        .await
        .unwrap();
    let path = format!("/api/v1/environments/{name}");
    app.eventually(&ann, &path, std::time::Duration::from_secs(10), |s, _| {
        s == StatusCode::OK
    })
    .await;
    let listed = app.get_json(&ann, &format!("{path}/events")).await;
    assert!(
        !listed.to_string().contains("PayrollRun"),
        "another namespace's events leaked: {listed}"
    );
    let workloads = app.get_json(&ann, &format!("{path}/workloads")).await;
    assert_eq!(workloads["deployments"], json!([]), "{workloads}");

    environments
        .delete(&name, &DeleteParams::default())
        .await
        .ok();
    namespaces
        .delete(&name, &DeleteParams::default())
        .await
        .unwrap();
}

async fn ann_email(app: &TestApp, token: &str) -> String {
    let me: Value = app.get_json(token, "/api/v1/me").await;
    me["email"].as_str().unwrap().to_owned()
}
