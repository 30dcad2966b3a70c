//! The first admin's generated password (issue 17, "At rest"): shown once on
//! standard error, never in the log, and it must be changed at first login.
//! Until then every call but `GET /api/v1/me`, `PUT /api/v1/me/password` and
//! logout answers 403 saying so, whatever the route and the credential.
//! Runs the `berth serve` binary itself (without `BERTH_ADMIN_PASSWORD`) on
//! SQLite; no cluster is needed (the calls that work after the change are
//! the ones served from the store).

use reqwest::{Client, StatusCode};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const ADMIN_EMAIL: &str = "first-admin@example.com";
const NEW_PASSWORD: &str = "a-new-Admin-passphrase-7";
const OTHER_PASSWORD: &str = "another-Admin-passphrase-8";

/// `berth serve` as a child process with an empty store, its log (standard
/// output) and its terminal (standard error) in files; SIGKILLed when dropped.
struct Berth {
    child: Child,
    base: String,
    log: PathBuf,
    terminal: PathBuf,
}

impl Berth {
    async fn start(dir: &Path) -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let log = dir.join("berth.log");
        let terminal = dir.join("berth.stderr");
        let child = Command::new(env!("CARGO_BIN_EXE_berth"))
            .arg("serve")
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("HOME", dir)
            .env("BERTH_LISTEN", format!("127.0.0.1:{port}"))
            .env("BERTH_KUBE_LISTEN", "127.0.0.1:0")
            .env("BERTH_DATABASE_URL", database_url(dir))
            .env("KUBECONFIG", dir.join("no-such-kubeconfig"))
            .env("BERTH_NO_CONTROLLER", "true")
            .env("BERTH_ADMIN_EMAIL", ADMIN_EMAIL)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&log).unwrap())
            .stderr(std::fs::File::create(&terminal).unwrap())
            .spawn()
            .expect("berth serve starts");
        let berth = Self {
            child,
            base: format!("http://127.0.0.1:{port}"),
            log,
            terminal,
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(r) = reqwest::get(berth.url("/healthz")).await
                && r.status() == StatusCode::OK
            {
                return berth;
            }
            assert!(
                Instant::now() < deadline,
                "berth serve did not answer /healthz within 60 s:\n{}\n{}",
                berth.logs(),
                berth.terminal()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    fn logs(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn terminal(&self) -> String {
        std::fs::read_to_string(&self.terminal).unwrap_or_default()
    }

    /// The password as the terminal shows it once (written before the
    /// server listens, so it is there by now).
    fn generated_password(&self) -> String {
        let terminal = self.terminal();
        terminal
            .split_once(" with password ")
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .unwrap_or_else(|| panic!("no generated password on standard error:\n{terminal}"))
            .to_owned()
    }
}

impl Drop for Berth {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `berth login` against `berth` with `password` on standard input, its
/// configuration under `dir`.
fn cli_login(berth: &Berth, dir: &Path, password: &str) -> std::process::Output {
    let home = dir.join("cli-home");
    std::fs::create_dir_all(&home).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_berth"))
        .args([
            "login",
            &berth.base,
            "--email",
            ADMIN_EMAIL,
            "--password-stdin",
        ])
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", &home)
        .env("XDG_CONFIG_HOME", home.join(".config"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("berth login starts");
    std::io::Write::write_all(
        &mut child.stdin.take().unwrap(),
        format!("{password}\n").as_bytes(),
    )
    .unwrap();
    child.wait_with_output().unwrap()
}

fn database_url(dir: &Path) -> String {
    format!("sqlite://{}?mode=rwc", dir.join("berth.db").display())
}

/// A browser: a cookie jar and the CSRF token of its session.
struct Browser {
    client: Client,
    csrf: String,
}

async fn login(berth: &Berth, password: &str) -> Result<Browser, (StatusCode, Value)> {
    let client = Client::builder().cookie_store(true).build().unwrap();
    let answer = client
        .post(berth.url("/api/v1/auth/login"))
        .json(&json!({"email": ADMIN_EMAIL, "password": password}))
        .send()
        .await
        .unwrap();
    if answer.status() != StatusCode::OK {
        return Err((answer.status(), answer.json().await.unwrap_or(Value::Null)));
    }
    let csrf = answer
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|v| v.strip_prefix("berth_csrf="))
        .and_then(|v| v.split(';').next())
        .expect("a CSRF cookie")
        .to_owned();
    Ok(Browser { client, csrf })
}

impl Browser {
    async fn call(
        &self,
        berth: &Berth,
        method: &str,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut request = self
            .client
            .request(method.parse().unwrap(), berth.url(path))
            .header("x-csrf-token", &self.csrf);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let answer = request.send().await.unwrap();
        let status = answer.status();
        (status, answer.json().await.unwrap_or(Value::Null))
    }
}

/// The refusal every other call gets: 403 `forbidden`, saying to change the
/// password first.
fn assert_must_change(what: &str, (status, body): &(StatusCode, Value)) {
    assert_eq!(*status, StatusCode::FORBIDDEN, "{what}: {body}");
    assert_eq!(body["error"]["code"], "forbidden", "{what}: {body}");
    let message = body["error"]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("Change your password") && message.contains("/api/v1/me/password"),
        "{what} does not say to change the password first: {body}"
    );
}

#[tokio::test]
async fn the_generated_admin_password_must_be_changed_at_first_login() {
    let dir = std::env::temp_dir().join(format!(
        "berth-first-login-{}",
        uuid::Uuid::new_v4().simple()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let berth = Berth::start(&dir).await;
    let generated = berth.generated_password();
    let logged = berth.logs();
    assert!(
        logged.contains("first admin") && !logged.contains(&generated),
        "the log must tell of the first admin but never its password:\n{logged}"
    );

    let browser = login(&berth, &generated)
        .await
        .expect("the generated password logs in");
    let (status, me) = browser.call(&berth, "GET", "/api/v1/me", None).await;
    assert_eq!(status, StatusCode::OK, "{me}");
    assert_eq!(me["mustChangePassword"], true, "{me}");

    // Every other route refuses, with the same answer: a list, a token's
    // creation (so no bearer token can get around it), a kubeconfig
    // download, and an admin-only route (403, not its usual 404).
    for (method, path, body) in [
        ("GET", "/api/v1/environments", None),
        ("POST", "/api/v1/tokens", Some(json!({"name": "before"}))),
        ("GET", "/api/v1/tokens", None),
        ("GET", "/api/v1/environments/anything/kubeconfig", None),
        ("GET", "/api/v1/admin/users", None),
        ("GET", "/api/v1/admin/policy", None),
    ] {
        let answer = browser.call(&berth, method, path, body).await;
        assert_must_change(&format!("{method} {path}"), &answer);
    }

    // The CLI's login, which makes a token with the password, is refused
    // with the same message.
    let cli = cli_login(&berth, &dir, &generated);
    let said = String::from_utf8_lossy(&cli.stderr);
    assert!(
        !cli.status.success() && said.contains("Change your password first"),
        "berth login with the generated password: {}\n{said}",
        cli.status
    );

    // Whoever else read the generated password and signed in with it is
    // signed out by the change, whatever the changer asks (review: that
    // session became a full admin once the owner changed the password).
    let intruder = login(&berth, &generated)
        .await
        .expect("the generated password logs in twice");
    // Keeping the generated password is no change.
    let (status, body) = browser
        .call(
            &berth,
            "PUT",
            "/api/v1/me/password",
            Some(json!({"currentPassword": generated, "newPassword": generated})),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(
        body["error"]["details"][0]["field"], "newPassword",
        "{body}"
    );

    // The wrong current password is refused; the right one changes it.
    let (status, body) = browser
        .call(
            &berth,
            "PUT",
            "/api/v1/me/password",
            Some(json!({"currentPassword": "not-the-password-1", "newPassword": NEW_PASSWORD})),
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    let (status, body) = browser
        .call(
            &berth,
            "PUT",
            "/api/v1/me/password",
            Some(json!({"currentPassword": generated, "newPassword": NEW_PASSWORD})),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");

    // Then everything works, in the same session; the other one has ended.
    let (status, me) = browser.call(&berth, "GET", "/api/v1/me", None).await;
    assert_eq!(status, StatusCode::OK, "{me}");
    assert_eq!(me["mustChangePassword"], false, "{me}");
    let (status, body) = intruder.call(&berth, "GET", "/api/v1/me", None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    let (status, body) = browser.call(&berth, "GET", "/api/v1/tokens", None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = browser
        .call(&berth, "GET", "/api/v1/admin/users", None)
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, token) = browser
        .call(
            &berth,
            "POST",
            "/api/v1/tokens",
            Some(json!({"name": "after"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{token}");
    let secret = token["token"]
        .as_str()
        .expect("the token's secret")
        .to_owned();
    let bearer = |method: &str, path: &str, body: Option<Value>| {
        let mut request = Client::new()
            .request(method.parse().unwrap(), berth.url(path))
            .bearer_auth(&secret);
        if let Some(body) = body {
            request = request.json(&body);
        }
        async move {
            let answer = request.send().await.unwrap();
            (
                answer.status(),
                answer.json::<Value>().await.unwrap_or(Value::Null),
            )
        }
    };

    // The old password is refused, the new one logs in.
    let (status, body) = login(&berth, &generated)
        .await
        .err()
        .expect("the old password is refused");
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    login(&berth, NEW_PASSWORD)
        .await
        .expect("the new password logs in");

    // A bearer token is held to it as well: with the flag set again in the
    // store (as for a generated password), the token may only show who it
    // is and change the password, which lifts the refusal at once.
    let store = sqlx::SqlitePool::connect(&database_url(&dir))
        .await
        .unwrap();
    sqlx::query("UPDATE users SET must_change_password = 1")
        .execute(&store)
        .await
        .unwrap();
    store.close().await;
    assert_must_change(
        "a bearer token's call",
        &bearer("GET", "/api/v1/tokens", None).await,
    );
    let (status, me) = bearer("GET", "/api/v1/me", None).await;
    assert_eq!(status, StatusCode::OK, "{me}");
    assert_eq!(me["mustChangePassword"], true, "{me}");
    let (status, body) = bearer(
        "PUT",
        "/api/v1/me/password",
        Some(json!({"currentPassword": NEW_PASSWORD, "newPassword": OTHER_PASSWORD})),
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    let (status, body) = bearer("GET", "/api/v1/tokens", None).await;
    assert_eq!(status, StatusCode::OK, "{body}");

    drop(berth);
    let _ = std::fs::remove_dir_all(&dir);
}
