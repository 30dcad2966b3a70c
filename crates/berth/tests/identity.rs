//! Verified emails and passwords against a real SMTP server (Mailpit, which
//! `make test` starts: `BERTH_TEST_SMTP_URL` and `BERTH_TEST_MAILPIT_URL`),
//! on SQLite or (with BERTH_TEST_POSTGRES_URL) PostgreSQL: register → mail →
//! verify → membership effective; the takeover of an address listed before
//! its account existed fails; reset and change of passwords; common
//! passwords; throttled resends; no enumeration by password reset.

mod support;

use reqwest::{Client, Method, StatusCode};
use serde_json::{Value, json};
use std::time::{Duration, Instant};
use support::*;

/// The SMTP URL and the HTTP API of the Mailpit the tests share.
fn mailpit() -> (String, String) {
    let get = |name: &str| {
        std::env::var(name).ok().filter(|v| !v.is_empty()).unwrap_or_else(|| {
            panic!(
                "{name} is not set: these tests read mail from a real SMTP server. \
                 Start one with `scripts/mailpit.sh start DIR` and export \
                 BERTH_TEST_SMTP_URL and BERTH_TEST_MAILPIT_URL (its two lines), as `make test` does"
            )
        })
    };
    (get("BERTH_TEST_SMTP_URL"), get("BERTH_TEST_MAILPIT_URL"))
}

async fn app_with_mail(cluster: bool) -> TestApp {
    let (smtp, _) = mailpit();
    spawn_app_with_mail(&smtp, cluster).await
}

/// A fresh address, so that tests sharing one Mailpit read only their mail.
fn address(who: &str) -> String {
    format!("{who}-{}@example.com", uuid::Uuid::new_v4().simple())
}

/// The mails Mailpit holds for `to`, newest first: (subject, text).
async fn mails_to(to: &str) -> Vec<(String, String)> {
    let (_, api) = mailpit();
    let client = Client::new();
    let found: Value = client
        .get(format!("{api}/api/v1/search"))
        .query(&[("query", format!("to:\"{to}\""))])
        .send()
        .await
        .expect("Mailpit answers")
        .json()
        .await
        .expect("Mailpit's search is JSON");
    let mut mails = Vec::new();
    for message in found["messages"].as_array().cloned().unwrap_or_default() {
        let id = message["ID"].as_str().expect("a message ID");
        let full: Value = client
            .get(format!("{api}/api/v1/message/{id}"))
            .send()
            .await
            .expect("Mailpit answers")
            .json()
            .await
            .expect("a message as JSON");
        mails.push((
            full["Subject"].as_str().unwrap_or_default().to_owned(),
            full["Text"].as_str().unwrap_or_default().to_owned(),
        ));
    }
    mails
}

/// Waits (15 s at most) for the `count`th mail to `to` whose subject has
/// `subject`, and returns the token of the link in the newest.
async fn link_token(to: &str, subject: &str, count: usize) -> String {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let mails: Vec<_> = mails_to(to)
            .await
            .into_iter()
            .filter(|(s, _)| s.contains(subject))
            .collect();
        if mails.len() >= count {
            let text = &mails[0].1;
            let (_, rest) = text
                .split_once("token=")
                .unwrap_or_else(|| panic!("no link in the mail: {text}"));
            return rest
                .split(|c: char| c.is_whitespace())
                .next()
                .unwrap()
                .to_owned();
        }
        assert!(
            Instant::now() < deadline,
            "no {count} mail(s) '{subject}' to {to} within 15 s: {mails:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn register(app: &TestApp, email: &str, password: &str) -> reqwest::Response {
    Client::new()
        .post(app.url("/api/v1/auth/register"))
        .json(&json!({"email": email, "password": password}))
        .send()
        .await
        .unwrap()
}

/// Uses a verification link as `bearer` (a personal access token), or
/// without signing in.
async fn verify(app: &TestApp, bearer: Option<&str>, token: &str) -> reqwest::Response {
    let request = Client::new()
        .post(app.url("/api/v1/auth/verify"))
        .json(&json!({ "token": token }));
    match bearer {
        Some(bearer) => request.bearer_auth(bearer),
        None => request,
    }
    .send()
    .await
    .unwrap()
}

/// An owner lists an address that has no account; whoever registers it
/// first must not become a member until they prove they receive its mail.
/// On the old code the registrant got the environment and an editor
/// kubeconfig at once.
#[tokio::test]
async fn an_unverified_address_holds_no_membership_and_verifying_it_grants_it() {
    let app = app_with_mail(true).await;
    let admin = app.admin_token().await;
    let suffix = &uuid::Uuid::new_v4().simple().to_string()[..8];
    let name = format!("idm-{suffix}");
    let env = path(&name);
    let victim = address("listed");
    let created = app
        .post(
            &admin,
            "/api/v1/environments",
            &json!({"name": name, "template": "small"}),
        )
        .await;
    assert_eq!(created.status(), StatusCode::CREATED);
    let added = app
        .call(
            Method::PUT,
            &admin,
            &format!("{env}/members/{victim}"),
            Some(&json!({"role": "editor"})),
        )
        .await;
    assert_eq!(added.status(), StatusCode::OK);

    // Someone registers the listed address; they can log in...
    let registered = register(&app, &victim, PASSWORD).await;
    assert_eq!(registered.status(), StatusCode::CREATED);
    let claimant = app.token_for_session(&registered).await;
    let me = app.get_json(&claimant, "/api/v1/me").await;
    assert_eq!(me["emailVerified"], false);
    // ...but hold no membership on any path, nor create environments.
    expect_error(
        app.get(&claimant, &env).await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
    expect_error(
        app.get(&claimant, &format!("{env}/kubeconfig")).await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
    let listed = app.get_json(&claimant, "/api/v1/environments").await;
    assert_eq!(listed["items"], json!([]));
    let refused = app
        .post(
            &claimant,
            "/api/v1/environments",
            &json!({"name": format!("own-{suffix}"), "template": "small"}),
        )
        .await;
    let error = expect_error(refused, StatusCode::FORBIDDEN, "forbidden").await;
    assert!(
        error["error"]["message"]
            .as_str()
            .unwrap()
            .contains("verify your email"),
        "{error}"
    );
    // Nor is the address verified in the cluster: no identity was made.
    let accounts: kube::Api<k8s_openapi::api::core::v1::ServiceAccount> = kube::Api::namespaced(
        berth_testkit::cluster()
            .await
            .expect("the local cluster")
            .client(),
        "berth-users",
    );
    let id = me["id"].as_str().unwrap();
    assert!(
        accounts
            .get_opt(&format!("user-{id}"))
            .await
            .expect("reading berth-users")
            .is_none(),
        "an identity was made for an unverified address"
    );

    // The link works only in the registered account's own session: opened
    // by someone not signed in to it (the address's owner, when someone else
    // registered it; review) or by another account, it verifies nothing.
    let token = link_token(&victim, "Verify", 1).await;
    expect_error(
        verify(&app, None, &token).await,
        StatusCode::UNAUTHORIZED,
        "unauthenticated",
    )
    .await;
    let other = expect_error(
        verify(&app, Some(&admin), &token).await,
        StatusCode::BAD_REQUEST,
        "validation_failed",
    )
    .await;
    assert_eq!(other["error"]["details"][0]["field"], "token");
    let me = app.get_json(&claimant, "/api/v1/me").await;
    assert_eq!(me["emailVerified"], false);
    // The registrant, who reads the address's mail, opens it: the
    // membership counts.
    assert_eq!(
        verify(&app, Some(&claimant), &token).await.status(),
        StatusCode::NO_CONTENT
    );
    let again = expect_error(
        verify(&app, Some(&claimant), &token).await,
        StatusCode::BAD_REQUEST,
        "validation_failed",
    )
    .await;
    assert_eq!(again["error"]["details"][0]["field"], "token");
    let me = app.get_json(&claimant, "/api/v1/me").await;
    assert_eq!(me["emailVerified"], true);
    let seen = app.get_json(&claimant, &env).await;
    assert_eq!(seen["role"], "editor");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let response = app.get(&claimant, &format!("{env}/kubeconfig")).await;
        if response.status() == StatusCode::OK {
            assert!(response.text().await.unwrap().contains("token:"));
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no kubeconfig after verifying: {}",
            response.status()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(
        app.delete(&admin, &env).await.status(),
        StatusCode::ACCEPTED
    );
}

#[tokio::test]
async fn passwords_change_and_reset_by_mail() {
    let app = app_with_mail(false).await;
    let ada = address("ada");

    // Common passwords are refused, naming the field.
    let common = register(&app, &ada, "password123").await;
    let error = expect_error(common, StatusCode::BAD_REQUEST, "validation_failed").await;
    assert_eq!(error["error"]["details"][0]["field"], "password");

    let registered = register(&app, &ada, PASSWORD).await;
    assert_eq!(registered.status(), StatusCode::CREATED);
    let token = app.token_for_session(&registered).await;
    // One verification mail went at registration: a resend right away is throttled.
    link_token(&ada, "Verify", 1).await;
    let resend = app
        .post(&token, "/api/v1/auth/verify/resend", &json!(null))
        .await;
    let retry_after = resend.headers().get("retry-after").cloned();
    expect_error(resend, StatusCode::TOO_MANY_REQUESTS, "rate_limited").await;
    assert!(retry_after.is_some());
    assert_eq!(mails_to(&ada).await.len(), 1);

    // Change: the current password is required; the new one is checked.
    let change = |current: &str, new: &str, revoke: bool| {
        let body =
            json!({"currentPassword": current, "newPassword": new, "revokeOtherSessions": revoke});
        let (app, token) = (&app, &token);
        async move {
            app.call(Method::PUT, token, "/api/v1/me/password", Some(&body))
                .await
        }
    };
    expect_error(
        change("not the password", "a brand new secret", false).await,
        StatusCode::UNAUTHORIZED,
        "invalid_credentials",
    )
    .await;
    let weak = expect_error(
        change(PASSWORD, "Password123", false).await,
        StatusCode::BAD_REQUEST,
        "validation_failed",
    )
    .await;
    assert_eq!(weak["error"]["details"][0]["field"], "newPassword");
    // With revokeOtherSessions, another session and another token end; the
    // credential in use stays.
    let other_session = app.login(&Client::new(), &ada, PASSWORD).await;
    let other_token = app.token_for_session(&other_session).await;
    let changed = change(PASSWORD, "a brand new secret", true).await;
    assert_eq!(changed.status(), StatusCode::NO_CONTENT);
    expect_error(
        app.get(&other_token, "/api/v1/me").await,
        StatusCode::UNAUTHORIZED,
        "unauthenticated",
    )
    .await;
    let session = set_cookie(&other_session, "berth_session").unwrap();
    let by_cookie = Client::new()
        .get(app.url("/api/v1/me"))
        .header("cookie", format!("berth_session={session}"))
        .send()
        .await
        .unwrap();
    expect_error(by_cookie, StatusCode::UNAUTHORIZED, "unauthenticated").await;
    app.get_json(&token, "/api/v1/me").await;
    let old = app.login(&Client::new(), &ada, PASSWORD).await;
    expect_error(old, StatusCode::UNAUTHORIZED, "invalid_credentials").await;
    let new = app.login(&Client::new(), &ada, "a brand new secret").await;
    assert_eq!(new.status(), StatusCode::OK);

    // Reset: the same answer for an address with and without an account.
    let reset = |email: String| {
        let app = &app;
        async move {
            let response = Client::new()
                .post(app.url("/api/v1/auth/password-reset"))
                .json(&json!({ "email": email }))
                .send()
                .await
                .unwrap();
            (response.status(), response.text().await.unwrap())
        }
    };
    let nobody = address("nobody");
    let (known, unknown) = (reset(ada.clone()).await, reset(nobody.clone()).await);
    assert_eq!(known, unknown);
    assert_eq!(known.0, StatusCode::ACCEPTED);
    let link = link_token(&ada, "Reset", 1).await;
    assert!(mails_to(&nobody).await.is_empty());

    let confirm = |token: String, password: &'static str| {
        let app = &app;
        async move {
            Client::new()
                .post(app.url("/api/v1/auth/password-reset/confirm"))
                .json(&json!({"token": token, "newPassword": password}))
                .send()
                .await
                .unwrap()
        }
    };
    let common = expect_error(
        confirm(link.clone(), "password123").await,
        StatusCode::BAD_REQUEST,
        "validation_failed",
    )
    .await;
    assert_eq!(common["error"]["details"][0]["field"], "newPassword");
    let done = confirm(link.clone(), "reset by the mailed link").await;
    assert_eq!(done.status(), StatusCode::NO_CONTENT);
    // Every session and token of the account ended.
    expect_error(
        app.get(&token, "/api/v1/me").await,
        StatusCode::UNAUTHORIZED,
        "unauthenticated",
    )
    .await;
    let login = app
        .login(&Client::new(), &ada, "reset by the mailed link")
        .await;
    assert_eq!(login.status(), StatusCode::OK);
    // The link worked once.
    let reused = expect_error(
        confirm(link, "yet another password").await,
        StatusCode::BAD_REQUEST,
        "validation_failed",
    )
    .await;
    assert_eq!(reused["error"]["details"][0]["field"], "token");

    // An expired link (its expiry moved into the past in the store) is refused.
    let bob = address("bob");
    assert_eq!(
        register(&app, &bob, PASSWORD).await.status(),
        StatusCode::CREATED
    );
    assert_eq!(reset(bob.clone()).await.0, StatusCode::ACCEPTED);
    let link = link_token(&bob, "Reset", 1).await;
    sqlx::any::install_default_drivers();
    let pool = sqlx::AnyPool::connect(&app.database_url).await.unwrap();
    sqlx::query("UPDATE account_tokens SET expires_at = 0 WHERE purpose = 'reset'")
        .execute(&pool)
        .await
        .unwrap();
    pool.close().await;
    let expired = expect_error(
        confirm(link, "reset by the mailed link").await,
        StatusCode::BAD_REQUEST,
        "validation_failed",
    )
    .await;
    assert_eq!(expired["error"]["details"][0]["field"], "token");
    let login = app.login(&Client::new(), &bob, PASSWORD).await;
    assert_eq!(login.status(), StatusCode::OK);
}
