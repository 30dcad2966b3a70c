mod support;

use reqwest::{Client, StatusCode};
use serde_json::{Value, json};
use support::*;

#[tokio::test]
async fn register_me_logout_round_trip() {
    let app = spawn_app().await;
    let browser = app.browser();
    let response = app.register(&browser, "Ada@Example.com").await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let set_cookies: Vec<_> = response
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .collect();
    assert!(set_cookies.iter().any(|c| c.starts_with("berth_session=")
        && c.contains("HttpOnly")
        && c.contains("SameSite=Lax")));
    assert!(
        set_cookies
            .iter()
            .any(|c| c.starts_with("berth_csrf=") && !c.contains("HttpOnly"))
    );
    let csrf = set_cookie(&response, "berth_csrf").unwrap();
    let user: Value = response.json().await.unwrap();
    assert_eq!(user["email"], "ada@example.com");
    assert_eq!(user["displayName"], "ada");
    assert_eq!(user["role"], "member");
    assert!(user["createdAt"].as_str().unwrap().ends_with('Z'));

    let me: Value = browser
        .get(app.url("/api/v1/me"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(me, user);

    let response = browser
        .post(app.url("/api/v1/auth/logout"))
        .header("x-csrf-token", &csrf)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    let response = browser.get(app.url("/api/v1/me")).send().await.unwrap();
    expect_error(response, StatusCode::UNAUTHORIZED, "unauthenticated").await;
}

#[tokio::test]
async fn a_logged_out_session_stays_revoked_even_when_replayed() {
    let app = spawn_app().await;
    let client = Client::new();
    let response = app.register(&client, "eve@example.com").await;
    let session = set_cookie(&response, "berth_session").unwrap();
    let csrf = set_cookie(&response, "berth_csrf").unwrap();
    let cookie = format!("berth_session={session}; berth_csrf={csrf}");
    let response = client
        .post(app.url("/api/v1/auth/logout"))
        .header("cookie", &cookie)
        .header("x-csrf-token", &csrf)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    let response = client
        .get(app.url("/api/v1/me"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    expect_error(response, StatusCode::UNAUTHORIZED, "unauthenticated").await;
}

#[tokio::test]
async fn emails_are_unique_regardless_of_case() {
    let app = spawn_app().await;
    assert_eq!(
        app.register(&Client::new(), "bob@example.com")
            .await
            .status(),
        StatusCode::CREATED
    );
    let response = app.register(&Client::new(), "BOB@example.COM").await;
    expect_error(response, StatusCode::CONFLICT, "conflict").await;
    let response = app.login(&Client::new(), "Bob@Example.com", PASSWORD).await;
    assert_eq!(response.status(), StatusCode::OK);
}

#[tokio::test]
async fn unknown_email_and_wrong_password_get_the_same_answer() {
    let app = spawn_app().await;
    app.register(&Client::new(), "carol@example.com").await;
    let wrong = app
        .login(&Client::new(), "carol@example.com", "not the password")
        .await;
    let unknown = app
        .login(&Client::new(), "nobody@example.com", "not the password")
        .await;
    let wrong = expect_error(wrong, StatusCode::UNAUTHORIZED, "invalid_credentials").await;
    let unknown = expect_error(unknown, StatusCode::UNAUTHORIZED, "invalid_credentials").await;
    assert_eq!(wrong, unknown);
}

#[tokio::test]
async fn unknown_email_and_wrong_password_take_similar_time() {
    let app = spawn_app().await;
    app.register(&Client::new(), "dave@example.com").await;
    // The fastest of four of each (five failures from one client lock the
    // email for it): a machine's other load only ever adds time,
    // while an early answer for an unknown email would be fast every time.
    let mut wrong = std::time::Duration::MAX;
    let mut unknown = std::time::Duration::MAX;
    for i in 0..4 {
        let started = std::time::Instant::now();
        app.login(&Client::new(), "dave@example.com", "not the password")
            .await;
        wrong = wrong.min(started.elapsed());
        let started = std::time::Instant::now();
        app.login(
            &Client::new(),
            &format!("ghost{i}@example.com"),
            "not the password",
        )
        .await;
        unknown = unknown.min(started.elapsed());
    }
    // Both verify an argon2id hash; an unknown email must not answer early.
    let ratio = unknown.as_secs_f64() / wrong.as_secs_f64();
    assert!(
        (0.5..2.0).contains(&ratio),
        "unknown {unknown:?} vs wrong {wrong:?}"
    );
}

#[tokio::test]
async fn repeated_failures_are_rate_limited_per_email_across_replicas() {
    let app = spawn_app().await;
    let replica = app.replica().await;
    app.register(&Client::new(), "erin@example.com").await;
    // Five failures, spread over two replicas: they count together.
    for server in [&app, &replica, &app, &replica, &app] {
        let response = server
            .login(&Client::new(), "erin@example.com", "wrong password")
            .await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    }
    let response = app
        .login(&Client::new(), "erin@example.com", PASSWORD)
        .await;
    let retry_after: u64 = response.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(retry_after > 0);
    expect_error(response, StatusCode::TOO_MANY_REQUESTS, "rate_limited").await;
    // Another account is not locked by erin's failures.
    app.register(&Client::new(), "frank@example.com").await;
    assert_eq!(
        app.login(&Client::new(), "frank@example.com", PASSWORD)
            .await
            .status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn cookie_writes_need_the_csrf_header_and_bearer_writes_do_not() {
    let app = spawn_app().await;
    let browser = app.browser();
    let response = app.register(&browser, "gina@example.com").await;
    let csrf = set_cookie(&response, "berth_csrf").unwrap();
    let create = |header: Option<&str>| {
        let mut request = browser
            .post(app.url("/api/v1/tokens"))
            .json(&json!({"name": "t"}));
        if let Some(value) = header {
            request = request.header("x-csrf-token", value);
        }
        request.send()
    };
    expect_error(
        create(None).await.unwrap(),
        StatusCode::FORBIDDEN,
        "csrf_failed",
    )
    .await;
    expect_error(
        create(Some("forged")).await.unwrap(),
        StatusCode::FORBIDDEN,
        "csrf_failed",
    )
    .await;
    assert_eq!(
        create(Some(&csrf)).await.unwrap().status(),
        StatusCode::CREATED
    );

    let token = app.member_token("hank@example.com").await;
    let response = app
        .post(&token, "/api/v1/tokens", &json!({"name": "t"}))
        .await;
    assert_eq!(response.status(), StatusCode::CREATED);
}

#[tokio::test]
async fn tokens_are_shown_once_listed_without_secrets_and_revoked_at_once() {
    let app = spawn_app().await;
    let token = app.member_token("ivy@example.com").await;
    assert!(token.starts_with("berth_pat_"));
    let created: Value = app
        .post(
            &token,
            "/api/v1/tokens",
            &json!({"name": "deploy", "expiresInDays": 7}),
        )
        .await
        .json()
        .await
        .unwrap();
    let second = created["token"].as_str().unwrap().to_owned();
    let expires = created["expiresAt"].as_str().unwrap();
    assert!(expires > created["createdAt"].as_str().unwrap());

    let list: Value = app.get_json(&token, "/api/v1/tokens").await;
    let items = list["items"].as_array().unwrap();
    assert_eq!(items.len(), 2);
    assert_eq!(items[0]["name"], "deploy", "newest first");
    assert!(
        !list.to_string().contains("berth_pat_"),
        "no secret in the list: {list}"
    );

    let me = app.get(&second, "/api/v1/me").await;
    assert_eq!(me.status(), StatusCode::OK);
    let id = created["id"].as_str().unwrap();
    let response = app.delete(&token, &format!("/api/v1/tokens/{id}")).await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    let me = app.get(&second, "/api/v1/me").await;
    expect_error(me, StatusCode::UNAUTHORIZED, "unauthenticated").await;
    let again = app.delete(&token, &format!("/api/v1/tokens/{id}")).await;
    expect_error(again, StatusCode::NOT_FOUND, "not_found").await;
}

#[tokio::test]
async fn nobody_can_see_or_revoke_another_users_token() {
    let app = spawn_app().await;
    let jack = app.member_token("jack@example.com").await;
    let kate = app.member_token("kate@example.com").await;
    let list: Value = app.get_json(&kate, "/api/v1/tokens").await;
    let kates_id = list["items"][0]["id"].as_str().unwrap().to_owned();
    let response = app
        .delete(&jack, &format!("/api/v1/tokens/{kates_id}"))
        .await;
    expect_error(response, StatusCode::NOT_FOUND, "not_found").await;
    assert_eq!(app.get(&kate, "/api/v1/me").await.status(), StatusCode::OK);
}

#[tokio::test]
async fn admin_is_bootstrapped_and_admin_routes_are_hidden_from_members() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let member = app.member_token("liam@example.com").await;
    let client = Client::new();
    let me: Value = app.get_json(&admin, "/api/v1/me").await;
    assert_eq!(me["role"], "admin");
    let users: Value = app.get_json(&admin, "/api/v1/admin/users").await;
    assert_eq!(users["items"].as_array().unwrap().len(), 2);
    for token in [Some(member.as_str()), None] {
        let mut request = client.get(app.url("/api/v1/admin/users"));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        expect_error(
            request.send().await.unwrap(),
            StatusCode::NOT_FOUND,
            "not_found",
        )
        .await;
    }
}

#[tokio::test]
async fn a_disabled_user_loses_sessions_and_tokens_and_cannot_log_in() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let browser = app.browser();
    let user: Value = app
        .register(&browser, "mia@example.com")
        .await
        .json()
        .await
        .unwrap();
    let token = app.member_token("mia2@example.com").await;
    let client = Client::new();
    let mia2: Value = client
        .get(app.url("/api/v1/me"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();

    for id in [&user["id"], &mia2["id"]] {
        let id = id.as_str().unwrap();
        let response = client
            .patch(app.url(&format!("/api/v1/admin/users/{id}")))
            .bearer_auth(&admin)
            .json(&json!({"disabled": true}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.json::<Value>().await.unwrap()["disabled"], true);
    }
    expect_error(
        browser.get(app.url("/api/v1/me")).send().await.unwrap(),
        StatusCode::UNAUTHORIZED,
        "unauthenticated",
    )
    .await;
    expect_error(
        client
            .get(app.url("/api/v1/me"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap(),
        StatusCode::UNAUTHORIZED,
        "unauthenticated",
    )
    .await;
    expect_error(
        app.login(&Client::new(), "mia@example.com", PASSWORD).await,
        StatusCode::FORBIDDEN,
        "forbidden",
    )
    .await;

    let admin_me: Value = client
        .get(app.url("/api/v1/me"))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = admin_me["id"].as_str().unwrap();
    let response = client
        .patch(app.url(&format!("/api/v1/admin/users/{id}")))
        .bearer_auth(&admin)
        .json(&json!({"role": "member"}))
        .send()
        .await
        .unwrap();
    expect_error(response, StatusCode::CONFLICT, "conflict").await;
}

#[tokio::test]
async fn an_expired_token_is_refused() {
    let app = spawn_app().await;
    let token = app.member_token("noah@example.com").await;
    let store = berth_store::Store::connect(&app.database_url)
        .await
        .unwrap();
    let client = Client::new();
    let me: Value = app.get_json(&token, "/api/v1/me").await;
    let user_id = me["id"].as_str().unwrap().parse().unwrap();
    let secret = berth_auth::Secret::generate_token();
    store
        .create_token(berth_store::NewToken {
            user_id,
            name: "old".into(),
            secret_hash: secret.hash(),
            expires_at: Some(time::OffsetDateTime::now_utc() - time::Duration::minutes(1)),
        })
        .await
        .unwrap();
    let response = client
        .get(app.url("/api/v1/me"))
        .bearer_auth(secret.expose())
        .send()
        .await
        .unwrap();
    expect_error(response, StatusCode::UNAUTHORIZED, "unauthenticated").await;
}

#[tokio::test]
async fn in_flight_requests_finish_on_shutdown() {
    let app = spawn_app().await;
    // Registrations hash passwords a few at a time, so most of these are still
    // queued in the server when it is told to stop.
    // Each client's connection is open and accepted first, so that the
    // stop finds the registrations on connections the server is reading,
    // not still being set up.
    let mut clients = Vec::new();
    for _ in 0..8 {
        let client = Client::new();
        let warm = client.get(app.url("/healthz")).send().await.unwrap();
        assert_eq!(warm.status(), StatusCode::OK);
        clients.push(client);
    }
    let pending: Vec<_> = clients
        .into_iter()
        .enumerate()
        .map(|(i, client)| {
            let url = app.url("/api/v1/auth/register");
            tokio::spawn(async move {
                client
                    .post(url)
                    .json(&json!({"email": format!("olga{i}@example.com"), "password": PASSWORD}))
                    .send()
                    .await
            })
        })
        .collect();
    // Lets every connection be accepted before the stop.
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    app.shutdown().await.unwrap();
    for request in pending {
        let response = request
            .await
            .unwrap()
            .expect("an in-flight request got an answer");
        assert_eq!(response.status(), StatusCode::CREATED);
    }
}
