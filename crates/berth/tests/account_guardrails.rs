//! Accounts a hostile client cannot bend (issue 13, faults 10 to 12): one
//! account per email however it is spelled, login and registration floods cut
//! off before any password is hashed without locking the owner out from
//! elsewhere, never fewer than one admin, and account actions in the audit log.
//!
//! The server tells clients apart by their socket address (it trusts no
//! forwarding header), so a second client is a second loopback address.

mod support;

use futures::future::join_all;
use reqwest::{Client, Method, StatusCode};
use serde_json::{Value, json};
use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant};
use support::*;

const ATTACKER: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 1));
const ELSEWHERE: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2));

/// A client whose connections come from `address`.
fn client_at(address: IpAddr) -> Client {
    Client::builder().local_address(address).build().unwrap()
}

async fn post_status(client: &Client, url: &str, body: &Value) -> StatusCode {
    client.post(url).json(body).send().await.unwrap().status()
}

fn count(statuses: &[StatusCode], wanted: StatusCode) -> usize {
    statuses.iter().filter(|s| **s == wanted).count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_login_flood_is_cut_off_before_hashing_and_the_admin_still_logs_in_elsewhere() {
    let app = spawn_app().await;
    let url = app.url("/api/v1/auth/login");
    let attacker = client_at(ATTACKER);
    let wrong = json!({"email": ADMIN_EMAIL, "password": "not the admin password"});
    let flood = tokio::spawn({
        let (url, attacker) = (url.clone(), attacker.clone());
        async move {
            let statuses = join_all((0..100).map(|_| post_status(&attacker, &url, &wrong))).await;
            (statuses, Instant::now())
        }
    });
    // Lets the flood get under way first.
    tokio::time::sleep(Duration::from_millis(10)).await;
    let started = Instant::now();
    let right = json!({"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD});
    let status = post_status(&client_at(ELSEWHERE), &url, &right).await;
    let took = started.elapsed();
    let (statuses, flood_ended) = flood.await.unwrap();

    let (unauthorized, limited) = (
        count(&statuses, StatusCode::UNAUTHORIZED),
        count(&statuses, StatusCode::TOO_MANY_REQUESTS),
    );
    eprintln!(
        "flood: {unauthorized} x 401, {limited} x 429; the admin's login from elsewhere: {status} in {took:?}"
    );
    assert!(
        unauthorized <= 5 && unauthorized + limited == 100,
        "{unauthorized} x 401, {limited} x 429 of {statuses:?}"
    );
    assert!(started < flood_ended, "the flood was over before the login");
    // How long it took is printed, not asserted: a figure on a shared,
    // loaded machine is for the benchmarks. That the flood did not make it
    // wait behind 100 hashes is the count of 401s above.
    assert_eq!(status, StatusCode::OK);

    // The attacker's client is throttled even with the right password, and
    // the answer says when to retry.
    let response = attacker.post(&url).json(&right).send().await.unwrap();
    assert!(response.headers().contains_key("retry-after"));
    expect_error(response, StatusCode::TOO_MANY_REQUESTS, "rate_limited").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_registration_burst_from_one_client_gets_429_after_ten() {
    let app = spawn_app().await;
    let url = app.url("/api/v1/auth/register");
    let client = client_at(ATTACKER);
    let statuses = join_all((0..40).map(|i| {
        let body = json!({"email": format!("bot{i}@example.com"), "password": PASSWORD});
        let (client, url) = (&client, &url);
        async move { post_status(client, url, &body).await }
    }))
    .await;
    let (created, limited) = (
        count(&statuses, StatusCode::CREATED),
        count(&statuses, StatusCode::TOO_MANY_REQUESTS),
    );
    eprintln!("registration burst: {created} x 201, {limited} x 429");
    assert_eq!((created, limited), (10, 30), "{statuses:?}");
    let response = app.register(&client, "one-more@example.com").await;
    assert!(response.headers().contains_key("retry-after"));
    expect_error(response, StatusCode::TOO_MANY_REQUESTS, "rate_limited").await;
    // Another client is not held back by this one.
    let response = app
        .register(&client_at(ELSEWHERE), "human@example.com")
        .await;
    assert_eq!(response.status(), StatusCode::CREATED);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_admins_demoting_or_disabling_each_other_at_once_leave_one_admin() {
    let app = spawn_app().await;
    let first = app.admin_token().await;
    let second = app.member_token("second@example.com").await;
    let id_of = async |token: &str| app.get_json(token, "/api/v1/me").await["id"].clone();
    let ids = [id_of(&first).await, id_of(&second).await];
    let tokens = [first, second];
    let patch = async |by: usize, whom: usize, body: Value| {
        let path = format!("/api/v1/admin/users/{}", ids[whom].as_str().unwrap());
        app.call(Method::PATCH, &tokens[by], &path, Some(&body))
            .await
    };
    // Whoever is still an admin; the first is at the start.
    let mut survivor = 0;
    let mut refused_as_last_admin = 0;
    for round in 0..20 {
        let other = 1 - survivor;
        let restore = patch(survivor, other, json!({"role": "admin", "disabled": false})).await;
        assert_eq!(restore.status(), StatusCode::OK, "round {round}");
        let change = if round % 2 == 0 {
            json!({"role": "member"})
        } else {
            json!({"disabled": true})
        };
        let (zero, one) = tokio::join!(patch(0, 1, change.clone()), patch(1, 0, change.clone()));
        let statuses = [zero.status(), one.status()];
        // The loser is refused as the last admin, or, when its request was
        // authenticated after it lost, no longer an admin at all.
        let winner = statuses
            .iter()
            .position(|s| *s == StatusCode::OK)
            .unwrap_or_else(|| panic!("round {round}: nobody won: {statuses:?}"));
        let loser = [zero, one].into_iter().nth(1 - winner).unwrap();
        match loser.status() {
            StatusCode::CONFLICT => {
                refused_as_last_admin += 1;
                let body = expect_error(loser, StatusCode::CONFLICT, "conflict").await;
                let message = body["error"]["message"].as_str().unwrap();
                assert!(message.contains("last admin"), "{message}");
            }
            StatusCode::NOT_FOUND => {}
            other => panic!("round {round}: {statuses:?}, the loser got {other}"),
        }
        survivor = winner;
        let users = app.get_json(&tokens[survivor], "/api/v1/admin/users").await;
        let admins: Vec<_> = users["items"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|u| u["role"] == "admin" && u["disabled"] == false)
            .collect();
        assert_eq!(admins.len(), 1, "round {round} ({change}): {users}");
    }
    eprintln!("mutual demotion: {refused_as_last_admin} of 20 losers refused as the last admin");
    // The race really happened: both requests got past authentication as admins.
    assert!(refused_as_last_admin > 0);
}

#[tokio::test]
async fn an_email_is_one_account_in_any_normalization_and_case() {
    let app = spawn_app().await;
    let composed = "j\u{fc}rgen@example.com";
    let response = app.register(&Client::new(), composed).await;
    assert_eq!(response.status(), StatusCode::CREATED);
    for other in ["ju\u{308}rgen@example.com", "JU\u{308}RGEN@Example.COM"] {
        let response = app.register(&Client::new(), other).await;
        expect_error(response, StatusCode::CONFLICT, "conflict").await;
    }
    for spelling in [
        composed,
        "ju\u{308}rgen@example.com",
        "J\u{dc}RGEN@EXAMPLE.COM",
        "JU\u{308}RGEN@EXAMPLE.COM",
    ] {
        let response = app.login(&Client::new(), spelling, PASSWORD).await;
        assert_eq!(response.status(), StatusCode::OK, "{spelling:?}");
        let user: Value = response.json().await.unwrap();
        assert_eq!(user["email"], composed, "{spelling:?}");
    }
    let admin = app.admin_token().await;
    let users = app.get_json(&admin, "/api/v1/admin/users").await;
    let jurgens = users["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|u| u["email"].as_str().unwrap().contains("rgen"))
        .count();
    assert_eq!(jurgens, 1, "{users}");
}

#[tokio::test]
async fn account_actions_are_audited_without_secrets_and_found_by_any_spelling() {
    let app = spawn_app().await;
    let wrong = "not-the-admin-password";
    let response = app.login(&Client::new(), ADMIN_EMAIL, wrong).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let admin = app.admin_token().await;
    let member = app.member_token("mel@example.com").await;
    let me = app.get_json(&member, "/api/v1/me").await;
    let member_id = me["id"].as_str().unwrap();
    let path = format!("/api/v1/admin/users/{member_id}");
    let body = json!({"role": "admin"});
    let response = app.call(Method::PATCH, &admin, &path, Some(&body)).await;
    assert_eq!(response.status(), StatusCode::OK);
    let body = json!({"role": "member", "disabled": true});
    let response = app.call(Method::PATCH, &admin, &path, Some(&body)).await;
    assert_eq!(response.status(), StatusCode::OK);
    let created: Value = app
        .post(&admin, "/api/v1/tokens", &json!({"name": "short-lived"}))
        .await
        .json()
        .await
        .unwrap();
    let token_id = created["id"].as_str().unwrap();
    let secret = created["token"].as_str().unwrap();
    let response = app
        .delete(&admin, &format!("/api/v1/tokens/{token_id}"))
        .await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    // Something the log recorded before, so that only the spelling differs.
    let response = app
        .call(
            Method::PUT,
            &admin,
            "/api/v1/admin/templates/ci",
            Some(&json!({"description": "CI"})),
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);

    let log = app
        .get_json(&admin, "/api/v1/admin/audit?actor=ADMIN@EXAMPLE.COM")
        .await;
    let entries = log["items"].as_array().unwrap();
    let has = |action: &str, outcome: &str, target: &str| {
        entries.iter().any(|e| {
            e["actor"] == ADMIN_EMAIL
                && e["action"] == action
                && e["outcome"] == outcome
                && e["target"] == target
        })
    };
    let admin_target = format!("user/{ADMIN_EMAIL}");
    assert!(has("auth.login", "failure", &admin_target), "{log}");
    assert!(has("auth.login", "success", &admin_target), "{log}");
    assert!(
        has("user.update", "success", "user/mel@example.com"),
        "{log}"
    );
    assert!(
        has("token.create", "success", &format!("token/{token_id}")),
        "{log}"
    );
    assert!(
        has("token.revoke", "success", &format!("token/{token_id}")),
        "{log}"
    );
    assert!(has("template.put", "success", "template/ci"), "{log}");
    let changes: Vec<_> = entries
        .iter()
        .filter(|e| e["action"] == "user.update")
        .map(|e| {
            (
                e["details"]["role"].clone(),
                e["details"]["disabled"].clone(),
            )
        })
        .collect();
    assert_eq!(
        changes,
        [
            (json!("member"), json!(true)),
            (json!("admin"), Value::Null)
        ],
        "newest first"
    );
    let text = log.to_string();
    assert!(!text.contains(wrong) && !text.contains(ADMIN_PASSWORD) && !text.contains(secret));

    let log = app
        .get_json(&admin, "/api/v1/admin/audit?actor=Mel@Example.com")
        .await;
    let actions: Vec<_> = log["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, ["token.create", "auth.register"], "{log}");
}
