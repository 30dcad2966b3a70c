//! Single sign-on against a real OpenID provider (`scripts/oidc.sh`, the
//! zitadel/oidc example provider with the users of
//! `tools/oidc-provider/testing.json`), driven as a browser would: Berth's
//! redirect, the provider's login form, the code back to Berth.

mod support;

use reqwest::header::{ACCEPT, LOCATION};
use reqwest::redirect::Policy;
use reqwest::{Client, Response, StatusCode};
use serde_json::{Value, json};
use support::*;

const CALLBACK: &str = "/api/v1/auth/oidc/callback";
const ADMIN_GROUP: &str = "berth-admins";

/// The provider `make test` started; without it these tests cannot run.
fn issuer() -> String {
    std::env::var("BERTH_TEST_OIDC_ISSUER").unwrap_or_else(|_| {
        panic!(
            "BERTH_TEST_OIDC_ISSUER is not set: these tests need the OpenID provider that \
             `make test` starts (scripts/oidc.sh start DIR prints its issuer URL)"
        )
    })
}

/// The provider's client for Berth, as `tools/oidc-provider/testing.json` registers it.
fn sso(local_login: bool) -> berth::sso::SsoSettings {
    let fixture: Value =
        serde_json::from_str(include_str!("../../../tools/oidc-provider/testing.json"))
            .expect("the provider's fixture is JSON");
    let client = &fixture["clients"][0];
    berth::sso::SsoSettings {
        oidc: Some(berth_api::OidcConfig {
            issuer: issuer(),
            client_id: client["id"].as_str().unwrap().to_owned(),
            client_secret: client["secret"].as_str().unwrap().to_owned(),
            name: "Test Provider".to_owned(),
            admin_group: Some(ADMIN_GROUP.to_owned()),
            groups_claim: "groups".to_owned(),
            public_url: None,
            allow_sign_up: true,
        }),
        local_login,
    }
}

/// A browser that keeps cookies and lets the test follow each redirect.
fn browser() -> Client {
    Client::builder()
        .cookie_store(true)
        .redirect(Policy::none())
        .build()
        .unwrap()
}

fn location(response: &Response) -> String {
    response
        .headers()
        .get(LOCATION)
        .unwrap_or_else(|| panic!("a redirect, got {}", response.status()))
        .to_str()
        .unwrap()
        .to_owned()
}

/// Starts a sign-in at Berth, logs in at the provider's form as `username`
/// and answers the URL the provider sends the browser back to (Berth's
/// callback with code and state), not yet visited.
async fn sign_in_at_provider(app: &TestApp, browser: &Client, username: &str) -> String {
    let start = browser
        .get(app.url("/api/v1/auth/oidc/login?next=/environments"))
        .send()
        .await
        .unwrap();
    assert_eq!(start.status(), StatusCode::FOUND);
    let authorize = location(&start);
    let provider = issuer();
    assert!(authorize.starts_with(&provider), "{authorize}");
    for parameter in [
        "code_challenge_method=S256",
        "code_challenge=",
        "nonce=",
        "state=",
    ] {
        assert!(authorize.contains(parameter), "{parameter} in {authorize}");
    }
    // The provider sends the browser on to its login form.
    let mut url = authorize;
    let form = loop {
        let response = browser.get(&url).send().await.unwrap();
        if response.status().is_redirection() {
            url = absolute(&provider, &location(&response));
            continue;
        }
        assert_eq!(response.status(), StatusCode::OK, "{url}");
        break response.text().await.unwrap();
    };
    let id = form
        .split("name=\"id\" value=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap_or_else(|| panic!("the provider's login form: {form}"));
    let fixture: Value =
        serde_json::from_str(include_str!("../../../tools/oidc-provider/testing.json")).unwrap();
    let user = fixture["users"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["username"] == username)
        .unwrap();
    let mut response = browser
        .post(format!("{provider}/login/username"))
        .form(&[
            ("id", id),
            ("username", username),
            ("password", user["password"].as_str().unwrap()),
        ])
        .send()
        .await
        .unwrap();
    loop {
        assert!(
            response.status().is_redirection(),
            "the provider accepted the login: {}",
            response.status()
        );
        let next = absolute(&provider, &location(&response));
        if next.starts_with(&app.url(CALLBACK)) {
            return next;
        }
        response = browser.get(&next).send().await.unwrap();
    }
}

fn absolute(base: &str, location: &str) -> String {
    if location.starts_with("http") {
        location.to_owned()
    } else {
        format!("{base}{location}")
    }
}

/// Signs in as `username` end to end; answers Berth's callback response.
async fn sign_in(app: &TestApp, browser: &Client, username: &str) -> Response {
    let callback = sign_in_at_provider(app, browser, username).await;
    browser.get(callback).send().await.unwrap()
}

async fn me(app: &TestApp, browser: &Client) -> Value {
    let response = browser.get(app.url("/api/v1/me")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK, "GET /api/v1/me");
    response.json().await.unwrap()
}

async fn error_of(response: Response, status: StatusCode) -> Value {
    assert_eq!(response.status(), status);
    let body: Value = response.json().await.unwrap();
    body["error"].clone()
}

#[tokio::test]
async fn first_sign_in_creates_the_account_and_later_ones_find_it() {
    let app = spawn_app_with_sso(sso(true)).await;
    let providers: Value = Client::new()
        .get(app.url("/api/v1/auth/providers"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        providers,
        json!({"localLogin": true, "oidc": {"name": "Test Provider", "loginUrl": "/api/v1/auth/oidc/login"}})
    );

    let ada = browser();
    let landed = sign_in(&app, &ada, "ada").await;
    assert_eq!(landed.status(), StatusCode::FOUND);
    assert_eq!(location(&landed), "/environments");
    let cookies: Vec<_> = landed
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .collect();
    assert!(
        cookies
            .iter()
            .any(|c| c.starts_with("berth_session=") && c.contains("HttpOnly"))
    );
    assert!(cookies.iter().any(|c| c.starts_with("berth_csrf=")));
    let user = me(&app, &ada).await;
    // The provider's `Ada@Example.com`, case folded as every email is.
    assert_eq!(user["email"], "ada@example.com");
    assert_eq!(user["displayName"], "Ada Lovelace");
    assert_eq!(user["role"], "member");

    // Another browser, another sign-in: the same account.
    let again = browser();
    assert_eq!(
        sign_in(&app, &again, "ada").await.status(),
        StatusCode::FOUND
    );
    assert_eq!(me(&app, &again).await["id"], user["id"]);
    // The account has no password anyone could log in with.
    let response = app.login(&Client::new(), "ada@example.com", "!sso").await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);

    // The admin group makes an admin.
    let grace = browser();
    assert_eq!(
        sign_in(&app, &grace, "grace").await.status(),
        StatusCode::FOUND
    );
    assert_eq!(me(&app, &grace).await["role"], "admin");
    let users = grace
        .get(app.url("/api/v1/admin/users"))
        .send()
        .await
        .unwrap();
    assert_eq!(users.status(), StatusCode::OK, "an admin lists users");
}

#[tokio::test]
async fn a_tampered_state_or_a_replayed_code_signs_nobody_in() {
    let app = spawn_app_with_sso(sso(true)).await;
    let ada = browser();

    // The provider's answer with a state other than this browser's sign-in.
    let callback = sign_in_at_provider(&app, &ada, "ada").await;
    let tampered = callback.replace("state=", "state=x");
    let error = error_of(
        ada.get(&tampered).send().await.unwrap(),
        StatusCode::UNAUTHORIZED,
    )
    .await;
    assert_eq!(error["code"], "unauthenticated");
    assert!(
        error["message"].as_str().unwrap().contains("sign in again"),
        "{error}"
    );
    let me = ada.get(app.url("/api/v1/me")).send().await.unwrap();
    assert_eq!(me.status(), StatusCode::UNAUTHORIZED);

    // A genuine answer works once ...
    let callback = sign_in_at_provider(&app, &ada, "ada").await;
    assert_eq!(
        ada.get(&callback).send().await.unwrap().status(),
        StatusCode::FOUND
    );
    // ... and not again: its state is used up.
    let replayed = ada.get(&callback).send().await.unwrap();
    assert_eq!(
        error_of(replayed, StatusCode::UNAUTHORIZED).await["code"],
        "unauthenticated"
    );

    // Nor does its code work with a fresh sign-in's state: the provider
    // refuses a code twice (and the PKCE verifier is another).
    let attacker = browser();
    let start = attacker
        .get(app.url("/api/v1/auth/oidc/login"))
        .send()
        .await
        .unwrap();
    let fresh_state = location(&start)
        .split("state=")
        .nth(1)
        .and_then(|s| s.split('&').next())
        .unwrap()
        .to_owned();
    let code = callback
        .split("code=")
        .nth(1)
        .and_then(|s| s.split('&').next())
        .unwrap();
    let replayed = attacker
        .get(app.url(&format!("{CALLBACK}?code={code}&state={fresh_state}")))
        .send()
        .await
        .unwrap();
    assert_eq!(
        error_of(replayed, StatusCode::UNAUTHORIZED).await["code"],
        "unauthenticated"
    );
    let me = attacker.get(app.url("/api/v1/me")).send().await.unwrap();
    assert_eq!(me.status(), StatusCode::UNAUTHORIZED);

    // A browser is led to the login page, which says why.
    let start = browser();
    let callback = sign_in_at_provider(&app, &start, "ada").await;
    let page = start
        .get(callback.replace("state=", "state=x"))
        .header(ACCEPT, "text/html")
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), StatusCode::UNAUTHORIZED);
    let html = page.text().await.unwrap();
    assert!(html.contains("/login?ssoError=state"), "{html}");

    // `next` must stay on this site.
    let response = Client::new()
        .get(app.url("/api/v1/auth/oidc/login?next=//evil.example/"))
        .send()
        .await
        .unwrap();
    let error = error_of(response, StatusCode::BAD_REQUEST).await;
    assert_eq!(error["details"][0]["field"], "next");
}

#[tokio::test]
async fn an_existing_account_is_linked_only_by_a_verified_email() {
    let app = spawn_app_with_sso(sso(true)).await;
    let local = app.browser();
    let registered = app.register(&local, "ada@example.com").await;
    assert_eq!(registered.status(), StatusCode::CREATED);
    let account: Value = registered.json().await.unwrap();

    // The provider vouches for ada's address: her own account.
    let ada = browser();
    assert_eq!(sign_in(&app, &ada, "ada").await.status(), StatusCode::FOUND);
    assert_eq!(me(&app, &ada).await["id"], account["id"]);
    // Nobody proved the address when it was registered (no mail server), so
    // whoever registered it keeps nothing: that session and that password
    // end (review: a pre-registered account became the SSO user's, its
    // registrant holding a session, a token and the password, as admin).
    let stale = local.get(app.url("/api/v1/me")).send().await.unwrap();
    assert_eq!(stale.status(), StatusCode::UNAUTHORIZED);
    let login = app.login(&app.browser(), "ada@example.com", PASSWORD).await;
    assert_eq!(login.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(me(&app, &ada).await["emailVerified"], true);

    // Eve typed the victim's address at the provider, which did not verify it.
    let victim = app.register(&app.browser(), "victim@example.com").await;
    assert_eq!(victim.status(), StatusCode::CREATED);
    let eve = browser();
    let refused = sign_in(&app, &eve, "eve").await;
    let error = error_of(refused, StatusCode::UNAUTHORIZED).await;
    assert!(
        error["message"].as_str().unwrap().contains("not verified"),
        "{error}"
    );
    let me = eve.get(app.url("/api/v1/me")).send().await.unwrap();
    assert_eq!(me.status(), StatusCode::UNAUTHORIZED);
    // Nor did it make her an account of her own with that address.
    let admin = app.admin_token().await;
    let users = app.get_json(&admin, "/api/v1/admin/users").await;
    let victims = users["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|u| u["email"] == "victim@example.com")
        .count();
    assert_eq!(victims, 1);
}

#[tokio::test]
async fn local_login_can_be_switched_off_and_sso_needs_configuring() {
    let app = spawn_app_with_sso(sso(false)).await;
    let providers: Value = Client::new()
        .get(app.url("/api/v1/auth/providers"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(providers["localLogin"], false);
    let login = app.login(&Client::new(), ADMIN_EMAIL, ADMIN_PASSWORD).await;
    assert_eq!(
        error_of(login, StatusCode::FORBIDDEN).await["code"],
        "forbidden"
    );
    let register = app.register(&Client::new(), "new@example.com").await;
    assert_eq!(register.status(), StatusCode::FORBIDDEN);
    // Single sign-on still signs people in.
    let grace = browser();
    assert_eq!(
        sign_in(&app, &grace, "grace").await.status(),
        StatusCode::FOUND
    );
    assert_eq!(me(&app, &grace).await["email"], "grace@example.com");

    // Without a provider configured, its routes are absent.
    let plain = spawn_app().await;
    let providers: Value = Client::new()
        .get(plain.url("/api/v1/auth/providers"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(providers, json!({"localLogin": true, "oidc": null}));
    for path in ["/api/v1/auth/oidc/login", CALLBACK] {
        let response = browser().get(plain.url(path)).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::NOT_FOUND, "{path}");
    }
}
