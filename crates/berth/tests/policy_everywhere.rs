//! "Policy everywhere": the platform's rules hold on every path into the
//! cluster: templates and policy reach the controller only through the
//! resolved spec the API writes, the per-person limit holds across parallel
//! requests and replicas, changes of bounds are judged like creates, member
//! changes never are, requests apply only to the version they were filed
//! against, and a name being deleted is not free.

mod support;

use berth_testkit::unique_name as unique;
use futures::StreamExt;
use futures::future::join_all;
use k8s_openapi::api::core::v1::{ConfigMap, Event, ObjectReference};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use kube::Api;
use kube::api::{Patch, PatchParams, PostParams};
use reqwest::{Client, Method, StatusCode};
use serde_json::{Value, json};
use std::time::Duration;
use support::*;

const READY: Duration = Duration::from_secs(30);

fn policy(approval: &str, max_environments: u32, cpu: &str) -> Value {
    json!({
        "registration": "open",
        "approval": approval,
        "maxEnvironmentsPerUser": max_environments,
        "maxQuota": {"cpu": cpu, "memory": "16Gi", "storage": "100Gi", "pods": 100}
    })
}

async fn request_id(response: reqwest::Response) -> String {
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    let body: Value = response.json().await.unwrap();
    body["request"]["id"]
        .as_str()
        .expect("a request id")
        .to_owned()
}

async fn ready(app: &TestApp, token: &str, name: &str) -> Value {
    app.eventually(token, &path(name), READY, |s, body| {
        s == StatusCode::OK && body["status"]["phase"] == "Ready"
    })
    .await
}

async fn gone(app: &TestApp, token: &str, name: &str) {
    app.delete(token, &path(name)).await;
    app.eventually(token, &path(name), READY, |s, _| s == StatusCode::NOT_FOUND)
        .await;
}

/// Faults 1, 2 and 3: an admin's template reaches the controller (it was
/// Degraded "must be one of: small, medium, large"); a policy without TTLs
/// gives environments that never expire (they got 72 h); an edit after the
/// template is deleted works (it answered 400 naming `template`).
#[tokio::test]
async fn an_admins_template_is_resolved_once_and_then_only_a_record() {
    let app = spawn_app_with_controller().await;
    let admin = app.admin_token().await;
    let ann = app
        .member_token(&format!("{}@example.com", unique("ann")))
        .await;
    app.set_policy(&admin, &policy("overLimit", 5, "8")).await;
    let template = unique("gpu");
    let body = json!({"description": "GPU work", "spec": {"quota": {"cpu": "3", "memory": "6Gi", "storage": "20Gi", "pods": 12}}});
    let response = app
        .call(
            Method::PUT,
            &admin,
            &format!("/api/v1/admin/templates/{template}"),
            Some(&body),
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);

    let name = unique("tpl");
    let response = app
        .post(
            &ann,
            "/api/v1/environments",
            &json!({"name": name, "template": template}),
        )
        .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let created: Value = response.json().await.unwrap();
    assert_eq!(created["spec"]["quota"]["cpu"], "3", "{created}");
    assert_eq!(
        created["spec"]["podSecurity"], "restricted",
        "written out: {created}"
    );
    assert!(
        created["spec"].get("ttl").is_none(),
        "no TTL in the policy: {created}"
    );

    // The quota controller reports the hard limits a moment after Ready.
    let env = app
        .eventually(&ann, &path(&name), READY, |_, body| {
            body["status"]["phase"] == "Ready"
                && !body["status"]["quota"]["hard"]["requests.cpu"].is_null()
        })
        .await;
    assert_eq!(env["status"]["quota"]["hard"]["requests.cpu"], "3", "{env}");
    assert!(
        env["status"].get("expiresAt").is_none(),
        "never expires: {env}"
    );

    let response = app
        .delete(&admin, &format!("/api/v1/admin/templates/{template}"))
        .await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    let response = patch(&app, &ann, &name, json!({"description": "y"})).await;
    assert_eq!(
        response.status(),
        StatusCode::OK,
        "{}",
        response.text().await.unwrap()
    );
    let env = app
        .eventually(&ann, &path(&name), READY, |_, body| {
            body["status"]["observedGeneration"] == body["generation"]
                && body["status"]["phase"] == "Ready"
        })
        .await;
    assert_eq!(env["spec"]["quota"]["cpu"], "3");
    gone(&app, &ann, &name).await;
}

/// Fault 4: at limit 2, twenty parallel creates by one person through two
/// Berth processes sharing one database make exactly two environments (it
/// was four of six through one process).
#[tokio::test]
async fn the_per_person_limit_holds_across_parallel_creates_and_replicas() {
    let first = spawn_app_on_cluster().await;
    let second = first.replica_on_cluster().await;
    let admin = first.admin_token().await;
    first.set_policy(&admin, &policy("never", 2, "8")).await;
    let ann = first
        .member_token(&format!("{}@example.com", unique("ann")))
        .await;
    let names: Vec<String> = (0..20).map(|i| unique(&format!("lim{i}"))).collect();
    let answers = join_all(names.iter().enumerate().map(|(i, name)| {
        let app = if i % 2 == 0 { &first } else { &second };
        let ann = ann.clone();
        async move {
            let response = app
                .post(&ann, "/api/v1/environments", &json!({"name": name}))
                .await;
            let status = response.status();
            (status, response.json::<Value>().await.unwrap())
        }
    }))
    .await;
    let created: Vec<&String> = names
        .iter()
        .zip(&answers)
        .filter(|(_, (s, _))| *s == StatusCode::CREATED)
        .map(|(n, _)| n)
        .collect();
    assert_eq!(created.len(), 2, "{answers:?}");
    for (status, body) in &answers {
        if *status != StatusCode::CREATED {
            assert_eq!(*status, StatusCode::BAD_REQUEST, "{body}");
            assert_eq!(body["error"]["details"][0]["field"], "name", "{body}");
        }
    }
    for name in created {
        first.delete(&ann, &path(name)).await;
    }
}

/// A create answered by one replica is there at once for the other, whose
/// watch cache may not have seen it yet (it answered 404, so `berth env
/// apply --wait` through a load balancer failed with "is gone").
#[tokio::test]
async fn a_create_on_one_replica_is_found_at_once_on_the_other() {
    let first = spawn_app_on_cluster().await;
    let second = first.replica_on_cluster().await;
    let admin = first.admin_token().await;
    first.set_policy(&admin, &policy("never", 10, "8")).await;
    let ann = first
        .member_token(&format!("{}@example.com", unique("ann")))
        .await;
    for i in 0..8 {
        let name = unique(&format!("seen{i}"));
        let response = first
            .post(&ann, "/api/v1/environments", &json!({"name": name}))
            .await;
        assert_eq!(response.status(), StatusCode::CREATED, "{name}");
        let response = second.get(&ann, &path(&name)).await;
        assert_eq!(
            response.status(),
            StatusCode::OK,
            "{name} through the other replica"
        );
        let response = second.delete(&ann, &path(&name)).await;
        assert!(
            response.status().is_success(),
            "{name}: {}",
            response.status()
        );
    }
    // A miss asks the apiserver only for what can be a name: a decoded `?`
    // or space would have made another request of it (a list, a watch).
    for segment in ["%3F", "a%20b", "%3Fwatch%3Dtrue", "x%2Fy"] {
        for response in [
            second
                .get(&ann, &format!("/api/v1/environments/{segment}"))
                .await,
            second
                .delete(&ann, &format!("/api/v1/environments/{segment}"))
                .await,
        ] {
            assert_eq!(response.status(), StatusCode::NOT_FOUND, "{segment}");
        }
    }
}

/// A client that gives up while its create is being made leaves no half:
/// the environment, its audit entry and its Idempotency-Key's answer are
/// all kept (the handler stopped with the connection: the key answered 409
/// for a day and the audit log missed the create).
#[tokio::test]
async fn a_create_whose_client_left_is_finished_and_its_key_replays() {
    let app = spawn_app_on_cluster().await;
    let admin = app.admin_token().await;
    let ann_email = format!("{}@example.com", unique("ann"));
    let ann = app.member_token(&ann_email).await;
    let name = unique("left");
    let key = unique("key");
    let send = |timeout: Duration| {
        Client::builder()
            .timeout(timeout)
            .build()
            .unwrap()
            .post(app.url("/api/v1/environments"))
            .bearer_auth(&ann)
            .header("Idempotency-Key", &key)
            .json(&json!({"name": name}))
            .send()
    };
    // Gone before the apiserver answered (a create takes longer).
    assert!(
        send(Duration::from_millis(20)).await.is_err(),
        "the create answered within 20 ms"
    );
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    let replayed = loop {
        let response = send(Duration::from_secs(30)).await.unwrap();
        if response.status() != StatusCode::CONFLICT {
            break response;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the key still answers 409 after 15 s: {}",
            response.text().await.unwrap()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(replayed.status(), StatusCode::CREATED);
    let audit = app
        .get_json(
            &admin,
            &format!("/api/v1/admin/audit?environment={name}&limit=10"),
        )
        .await;
    assert!(
        audit["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["action"] == "environment.create"),
        "no audit entry for the create: {audit}"
    );
    app.delete(&ann, &path(&name)).await;
}

/// Faults 5 and 6: under `approval: always` a change of bounds waits for an
/// admin (it applied at once); member changes never wait and never fail in
/// an environment above a policy lowered since (500, then 409, or 400).
#[tokio::test]
async fn changes_of_bounds_are_judged_as_creates_and_member_changes_never() {
    let app = spawn_app_on_cluster().await;
    let admin = app.admin_token().await;
    app.set_policy(&admin, &policy("never", 5, "8")).await;
    let ann = app
        .member_token(&format!("{}@example.com", unique("ann")))
        .await;
    let bob = format!("{}@example.com", unique("bob"));
    let name = unique("bounds");
    let response = app
        .post(
            &ann,
            "/api/v1/environments",
            &json!({"name": name, "quota": {"cpu": "4"},
            "members": [{"email": bob, "role": "editor"}]}),
        )
        .await;
    assert_eq!(response.status(), StatusCode::CREATED);

    // The policy is lowered below what the environment has.
    app.set_policy(&admin, &policy("never", 5, "1")).await;
    let member = format!("{}/members/{bob}", path(&name));
    let response = app
        .call(Method::PUT, &ann, &member, Some(&json!({"role": "viewer"})))
        .await;
    assert_eq!(
        response.status(),
        StatusCode::OK,
        "{}",
        response.text().await.unwrap()
    );
    let response = app.delete(&ann, &member).await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    let response = patch(&app, &ann, &name, json!({"description": "still editable"})).await;
    assert_eq!(response.status(), StatusCode::OK);
    let response = patch(&app, &ann, &name, json!({"quota": {"cpu": "6"}})).await;
    let body = expect_error(response, StatusCode::BAD_REQUEST, "validation_failed").await;
    assert_eq!(body["error"]["details"][0]["field"], "quota.cpu", "{body}");

    app.set_policy(&admin, &policy("always", 5, "8")).await;
    for change in [
        json!({"podSecurity": "baseline"}),
        json!({"network": {"isolation": "open"}}),
        json!({"quota": {"cpu": "2"}}),
        json!({"ttl": "24h"}),
    ] {
        let response = patch(&app, &ann, &name, change.clone()).await;
        let id = request_id(response).await;
        let response = app
            .post(
                &admin,
                &format!("/api/v1/admin/requests/{id}/reject"),
                &json!({"reason": "no"}),
            )
            .await;
        assert_eq!(response.status(), StatusCode::OK, "{change}");
    }
    let env = app.get_json(&ann, &path(&name)).await;
    assert_eq!(env["spec"]["podSecurity"], "restricted", "{env}");
    assert_eq!(env["spec"]["quota"]["cpu"], "4", "{env}");
    let response = patch(&app, &ann, &name, json!({"description": "no bounds"})).await;
    assert_eq!(response.status(), StatusCode::OK);
    app.delete(&ann, &path(&name)).await;
}

/// Fault 7: a request applies only to the version of the environment it was
/// filed against: edits made since are not undone (409 instead), and an
/// environment deleted and made anew by someone else is not taken over.
#[tokio::test]
async fn a_request_applies_only_to_the_version_it_was_filed_against() {
    let app = spawn_app_on_cluster().await;
    let admin = app.admin_token().await;
    app.set_policy(&admin, &policy("overLimit", 5, "8")).await;
    let ann = app
        .member_token(&format!("{}@example.com", unique("ann")))
        .await;
    let bob_email = format!("{}@example.com", unique("bob"));
    let bob = app.member_token(&bob_email).await;
    let name = unique("stale");
    let response = app
        .post(
            &ann,
            "/api/v1/environments",
            &json!({"name": name,
            "members": [{"email": bob_email, "role": "editor"}]}),
        )
        .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let id = request_id(patch(&app, &ann, &name, json!({"quota": {"cpu": "16"}})).await).await;
    let response = app
        .delete(&ann, &format!("{}/members/{bob_email}", path(&name)))
        .await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    let approve = format!("/api/v1/admin/requests/{id}/approve");
    let response = app.call(Method::POST, &admin, &approve, None).await;
    let body = expect_error(response, StatusCode::CONFLICT, "conflict").await;
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("changed since"),
        "{body}"
    );
    let env = app.get_json(&ann, &path(&name)).await;
    assert_eq!(
        env["spec"]["members"].as_array().unwrap().len(),
        1,
        "bob stays removed: {env}"
    );
    assert_eq!(env["spec"]["quota"]["cpu"], "2");

    // Filed, then the environment is deleted and bob makes one of the name.
    let id = request_id(patch(&app, &ann, &name, json!({"quota": {"cpu": "12"}})).await).await;
    gone(&app, &ann, &name).await;
    let response = app
        .post(&bob, "/api/v1/environments", &json!({"name": name}))
        .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let response = app
        .call(
            Method::POST,
            &admin,
            &format!("/api/v1/admin/requests/{id}/approve"),
            None,
        )
        .await;
    let body = expect_error(response, StatusCode::CONFLICT, "conflict").await;
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("same name"),
        "{body}"
    );
    let response = app.get(&ann, &path(&name)).await;
    assert_eq!(
        response.status(),
        StatusCode::NOT_FOUND,
        "ann did not take bob's environment"
    );
    app.delete(&bob, &path(&name)).await;
}

/// Fault 8: a name being deleted is not free (201 with phase Deleting, then
/// 404); an identical second create is a conflict (it answered 201); renew
/// and PATCH of a deleting environment answer 409 (renew answered 200).
/// Retries are safe with an Idempotency-Key instead.
#[tokio::test]
async fn a_name_is_free_only_when_gone_and_retries_use_an_idempotency_key() {
    let app = spawn_app_with_controller().await;
    let ann = app
        .member_token(&format!("{}@example.com", unique("ann")))
        .await;
    let name = unique("again");
    let body = json!({"name": name, "ttl": "8h"});
    let send = |key: Option<&'static str>, body: Value| {
        let mut request = Client::new()
            .post(app.url("/api/v1/environments"))
            .bearer_auth(&ann)
            .json(&body);
        if let Some(key) = key {
            request = request.header("idempotency-key", key);
        }
        request.send()
    };
    let first = send(Some("create-1"), body.clone()).await.unwrap();
    assert_eq!(first.status(), StatusCode::CREATED);
    let first: Value = first.json().await.unwrap();
    let replay = send(Some("create-1"), body.clone()).await.unwrap();
    assert_eq!(
        replay.status(),
        StatusCode::CREATED,
        "the first answer, replayed"
    );
    assert_eq!(replay.json::<Value>().await.unwrap(), first);
    let other = send(Some("create-1"), json!({"name": unique("other")}))
        .await
        .unwrap();
    expect_error(other, StatusCode::CONFLICT, "conflict").await;
    let twice = send(None, body.clone()).await.unwrap();
    let error = expect_error(twice, StatusCode::CONFLICT, "conflict").await;
    assert!(
        error["error"]["message"]
            .as_str()
            .unwrap()
            .contains("taken"),
        "{error}"
    );

    ready(&app, &ann, &name).await;
    // A ConfigMap with a finalizer of its own holds the deletion open.
    let cluster = berth_testkit::cluster().await.expect("the local cluster");
    let config_maps: Api<ConfigMap> = Api::namespaced(cluster.client(), &name);
    let hold = ConfigMap {
        metadata: ObjectMeta {
            name: Some("hold".into()),
            finalizers: Some(vec!["example.com/hold".into()]),
            ..ObjectMeta::default()
        },
        ..ConfigMap::default()
    };
    config_maps
        .create(&PostParams::default(), &hold)
        .await
        .unwrap();
    let response = app.delete(&ann, &path(&name)).await;
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    let again = send(None, body.clone()).await.unwrap();
    let error = expect_error(again, StatusCode::CONFLICT, "conflict").await;
    assert!(
        error["error"]["message"]
            .as_str()
            .unwrap()
            .contains("being deleted"),
        "{error}"
    );
    let renew = app
        .post(
            &ann,
            &format!("{}/renew", path(&name)),
            &json!({"ttl": "24h"}),
        )
        .await;
    expect_error(renew, StatusCode::CONFLICT, "conflict").await;
    let response = patch(&app, &ann, &name, json!({"description": "late"})).await;
    expect_error(response, StatusCode::CONFLICT, "conflict").await;
    config_maps
        .patch(
            "hold",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"finalizers": null}})),
        )
        .await
        .unwrap();
    app.eventually(&ann, &path(&name), READY, |s, _| s == StatusCode::NOT_FOUND)
        .await;
}

/// Fault 13: the events answer is the newest of the namespace whatever it
/// holds (with 600 older events listed first, the 86 newer were missing).
#[tokio::test]
async fn events_are_the_newest_whatever_the_namespace_holds() {
    let app = spawn_app_with_controller().await;
    let ann = app
        .member_token(&format!("{}@example.com", unique("ann")))
        .await;
    let name = unique("events");
    let response = app
        .post(&ann, "/api/v1/environments", &json!({"name": name}))
        .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    ready(&app, &ann, &name).await;
    let cluster = berth_testkit::cluster().await.expect("the local cluster");
    let events: Api<Event> = Api::namespaced(cluster.client(), &name);
    // The apiserver lists by name: the old ones come first.
    let event = |prefix: &str, i: usize, at: &str| Event {
        metadata: ObjectMeta {
            name: Some(format!("{prefix}-{i:04}")),
            ..ObjectMeta::default()
        },
        involved_object: ObjectReference {
            kind: Some("ConfigMap".into()),
            name: Some(format!("{prefix}-{i}")),
            namespace: Some(name.clone()),
            ..ObjectReference::default()
        },
        reason: Some(prefix.into()),
        message: Some(format!("{prefix} {i}")),
        type_: Some("Normal".into()),
        last_timestamp: Some(Time(at.parse().unwrap())),
        ..Event::default()
    };
    let made = futures::stream::iter(
        (0..600)
            .map(|i| event("a-old", i, "2020-01-01T00:00:00Z"))
            .chain((0..86).map(|i| event("z-new", i, "2030-01-01T00:00:00Z"))),
    )
    .map(|e| {
        let events = events.clone();
        async move { events.create(&PostParams::default(), &e).await }
    })
    .buffer_unordered(16)
    .collect::<Vec<_>>()
    .await;
    assert!(made.iter().all(Result::is_ok), "every event was recorded");

    let listed = app.get_json(&ann, &format!("{}/events", path(&name))).await;
    let items = listed["items"].as_array().unwrap();
    assert_eq!(items.len(), 500, "at most 500");
    let newest: Vec<&str> = items[..86]
        .iter()
        .map(|e| e["reason"].as_str().unwrap())
        .collect();
    assert!(
        newest.iter().all(|r| *r == "z-new"),
        "newest first: {newest:?}"
    );
    app.delete(&ann, &path(&name)).await;
}

/// An approval and a rejection at the same moment: one wins, and the
/// cluster shows the winner's decision (a rejected request was carried
/// out anyway, while its approval answered 409).
#[tokio::test]
async fn an_approval_racing_a_rejection_is_carried_out_only_if_it_won() {
    let first = spawn_app_on_cluster().await;
    let second = first.replica_on_cluster().await;
    let admin = first.admin_token().await;
    first.set_policy(&admin, &policy("always", 50, "8")).await;
    let ann = first
        .member_token(&format!("{}@example.com", unique("ann")))
        .await;
    for round in 0..8 {
        let name = unique(&format!("race{round}"));
        let response = first
            .post(&ann, "/api/v1/environments", &json!({"name": name}))
            .await;
        let id = request_id(response).await;
        let (approve, reject) = (
            format!("/api/v1/admin/requests/{id}/approve"),
            format!("/api/v1/admin/requests/{id}/reject"),
        );
        let no = json!({"reason": "no"});
        let (approved, rejected) = tokio::join!(
            first.call(Method::POST, &admin, &approve, None),
            second.post(&admin, &reject, &no),
        );
        let (approved, rejected) = (approved.status(), rejected.status());
        assert!(
            (approved == StatusCode::OK) != (rejected == StatusCode::OK),
            "exactly one decision wins: approve {approved}, reject {rejected}"
        );
        // Reads come from the watch cache, which sees a create a moment
        // after the approval answered.
        if approved == StatusCode::OK {
            first
                .eventually(&ann, &path(&name), READY, |s, _| s == StatusCode::OK)
                .await;
            first.delete(&ann, &path(&name)).await;
        } else {
            let status = first.get(&ann, &path(&name)).await.status();
            assert_eq!(
                status,
                StatusCode::NOT_FOUND,
                "round {round}: rejected, yet made"
            );
        }
    }
}

/// Renewing restarts the clock; asking for another TTL is a change of
/// bounds, for owners and the policy to decide (an editor stretched the TTL
/// past `approval: always` with renew).
#[tokio::test]
async fn renew_restarts_the_clock_and_another_ttl_is_a_change_of_bounds() {
    let app = spawn_app_on_cluster().await;
    let admin = app.admin_token().await;
    let ann = app
        .member_token(&format!("{}@example.com", unique("ann")))
        .await;
    let bob_email = format!("{}@example.com", unique("bob"));
    let bob = app.member_token(&bob_email).await;
    let name = unique("renew");
    let response = app
        .post(
            &ann,
            "/api/v1/environments",
            &json!({"name": name, "ttl": "24h",
            "members": [{"email": bob_email, "role": "editor"}]}),
        )
        .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    app.set_policy(&admin, &policy("always", 5, "8")).await;
    let renew = format!("{}/renew", path(&name));

    let response = app.post(&bob, &renew, &json!({"ttl": "24h"})).await;
    assert_eq!(
        response.status(),
        StatusCode::OK,
        "an editor restarts the clock"
    );
    let body: Value = response.json().await.unwrap();
    assert!(body["status"]["expiresAt"].is_string(), "{body}");
    let response = app.post(&bob, &renew, &json!({"ttl": "700h"})).await;
    expect_error(response, StatusCode::FORBIDDEN, "forbidden").await;
    let response = app.post(&ann, &renew, &json!({"ttl": "700h"})).await;
    request_id(response).await;
    let env = app.get_json(&ann, &path(&name)).await;
    assert_eq!(env["spec"]["ttl"], "24h", "held for an admin: {env}");
    app.delete(&ann, &path(&name)).await;
}
