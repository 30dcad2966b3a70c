//! `spawn_app`: the real Berth on a random port with a fresh database, on
//! SQLite by default or on PostgreSQL when `BERTH_TEST_POSTGRES_URL` names a
//! server (a new database is made there for each test).

#![allow(dead_code)] // each test binary uses its own part of the support module

use berth::config::Config;
use berth::serve::Server;
use reqwest::{Client, Method, Response, StatusCode};
use serde_json::{Value, json};
use std::path::PathBuf;
use std::time::{Duration, Instant};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub const ADMIN_EMAIL: &str = "admin@example.com";
pub const ADMIN_PASSWORD: &str = "admin-password-1";
pub const PASSWORD: &str = "correct horse battery";

/// The API path of the environment `name`.
pub fn path(name: &str) -> String {
    format!("/api/v1/environments/{name}")
}

/// `PATCH` of the environment `name` with the merge patch `body`.
pub async fn patch(app: &TestApp, token: &str, name: &str, body: Value) -> Response {
    app.call(Method::PATCH, token, &path(name), Some(&body))
        .await
}

pub struct TestApp {
    pub base: String,
    pub database_url: String,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<anyhow::Result<()>>>,
    _dir: TempDir,
}

pub async fn spawn_app() -> TestApp {
    let dir = TempDir::new();
    // A kubeconfig that does not exist: these tests run without a cluster.
    let kubeconfig = dir.0.join("no-such-kubeconfig");
    spawn_with(dir, kubeconfig, true).await
}

/// Berth's API connected to the shared local cluster (started if it is not
/// running), without a controller: Environments stay as the API wrote them.
pub async fn spawn_app_on_cluster() -> TestApp {
    spawn_with(TempDir::new(), local_cluster_kubeconfig().await, true).await
}

/// The whole of `berth serve` on the shared local cluster, controller included.
pub async fn spawn_app_with_controller() -> TestApp {
    spawn_with(TempDir::new(), local_cluster_kubeconfig().await, false).await
}

/// `berth serve` on the shared local cluster, controller included, asking
/// the Prometheus at `prometheus_url` (if any) for environments' metrics.
pub async fn spawn_app_with_prometheus(prometheus_url: Option<String>) -> TestApp {
    let dir = TempDir::new();
    let database_url = berth_store::testing::fresh_database_url(&dir.0).await;
    let kubeconfig = local_cluster_kubeconfig().await;
    spawn_configured(dir, database_url, kubeconfig, false, prometheus_url, None).await
}

/// Berth without a cluster, reporting errors to Sentry as `sentry` says.
pub async fn spawn_app_with_sentry(sentry: berth::reporting::SentrySettings) -> TestApp {
    let dir = TempDir::new();
    let database_url = berth_store::testing::fresh_database_url(&dir.0).await;
    let kubeconfig = dir.0.join("no-such-kubeconfig");
    spawn_configured(dir, database_url, kubeconfig, true, None, Some(sentry)).await
}

async fn local_cluster_kubeconfig() -> PathBuf {
    berth_testkit::cluster()
        .await
        .unwrap_or_else(|e| panic!("the local cluster is needed and did not start: {e:#}"))
        .kubeconfig()
}

async fn spawn_with(dir: TempDir, kubeconfig: PathBuf, no_controller: bool) -> TestApp {
    let database_url = berth_store::testing::fresh_database_url(&dir.0).await;
    spawn_on(dir, database_url, kubeconfig, no_controller).await
}

async fn spawn_on(
    dir: TempDir,
    database_url: String,
    kubeconfig: PathBuf,
    no_controller: bool,
) -> TestApp {
    spawn_configured(dir, database_url, kubeconfig, no_controller, None, None).await
}

async fn spawn_configured(
    dir: TempDir,
    database_url: String,
    kubeconfig: PathBuf,
    no_controller: bool,
    prometheus_url: Option<String>,
    sentry: Option<berth::reporting::SentrySettings>,
) -> TestApp {
    let config = test_config(
        database_url,
        kubeconfig,
        no_controller,
        prometheus_url,
        sentry,
    );
    start(dir, config).await
}

/// Berth without a cluster, with single sign-on and local login as `sso` says.
pub async fn spawn_app_with_sso(sso: berth::sso::SsoSettings) -> TestApp {
    let dir = TempDir::new();
    let database_url = berth_store::testing::fresh_database_url(&dir.0).await;
    let kubeconfig = dir.0.join("no-such-kubeconfig");
    let mut config = test_config(database_url, kubeconfig, true, None, None);
    config.sso = sso;
    start(dir, config).await
}

fn test_config(
    database_url: String,
    kubeconfig: PathBuf,
    no_controller: bool,
    prometheus_url: Option<String>,
    sentry: Option<berth::reporting::SentrySettings>,
) -> Config {
    Config {
        listen: "127.0.0.1:0".parse().unwrap(),
        database_url: database_url.clone(),
        kubeconfig: Some(kubeconfig),
        admin_email: Some(ADMIN_EMAIL.into()),
        admin_password: Some(ADMIN_PASSWORD.into()),
        prometheus_url,
        public_url: None,
        kube_listen: "127.0.0.1:0".parse().unwrap(),
        metrics_listen: None,
        kube_public_url: None,
        tls: None,
        ingress_domain: "berth.localhost".into(),
        kubeconfig_ttl: Duration::from_secs(8 * 3600),
        network: berth::config::Network::default(),
        no_controller,
        no_install_admission_policies: false,
        splunk: None,
        sentry,
        encryption_keys: None,
        mailer: None,
        sso: berth::sso::SsoSettings {
            oidc: None,
            local_login: true,
        },
    }
}

async fn start(dir: TempDir, config: Config) -> TestApp {
    let database_url = config.database_url.clone();
    let server = Server::build(config).await.expect("the server starts");
    let base = format!("http://{}", server.local_addr());
    let (tx, rx) = oneshot::channel();
    let task = tokio::spawn(server.run_until(async {
        let _ = rx.await;
    }));
    TestApp {
        base,
        database_url,
        shutdown: Some(tx),
        task: Some(task),
        _dir: dir,
    }
}

/// Berth mailing its links through the SMTP server at `smtp_url` (set up
/// as `BERTH_SMTP_URL` is, links to `http://berth.test`); with `cluster`,
/// the whole of `berth serve` on the shared local cluster.
pub async fn spawn_app_with_mail(smtp_url: &str, cluster: bool) -> TestApp {
    let dir = TempDir::new();
    let database_url = berth_store::testing::fresh_database_url(&dir.0).await;
    let kubeconfig = if cluster {
        local_cluster_kubeconfig().await
    } else {
        dir.0.join("no-such-kubeconfig")
    };
    let args = berth::config::ServeArgs {
        listen: Some("127.0.0.1:0".parse().unwrap()),
        kube_listen: Some("127.0.0.1:0".parse().unwrap()),
        database_url: Some(database_url.clone()),
        kubeconfig: Some(kubeconfig),
        admin_email: Some(ADMIN_EMAIL.into()),
        admin_password: Some(ADMIN_PASSWORD.into()),
        no_controller: !cluster,
        public_url: Some("http://berth.test".into()),
        smtp_url: Some(smtp_url.into()),
        smtp_from: Some("Berth <berth@example.com>".into()),
        ..Default::default()
    };
    let config = Config::load(args, None).expect("a configuration with mail");
    let server = Server::build(config).await.expect("the server starts");
    let base = format!("http://{}", server.local_addr());
    let (tx, rx) = oneshot::channel();
    let task = tokio::spawn(server.run_until(async {
        let _ = rx.await;
    }));
    TestApp {
        base,
        database_url,
        shutdown: Some(tx),
        task: Some(task),
        _dir: dir,
    }
}

impl TestApp {
    /// A second replica on the same database (without a cluster), as a
    /// deployment with more than one would run; it must not outlive this one.
    pub async fn replica(&self) -> TestApp {
        let dir = TempDir::new();
        let kubeconfig = dir.0.join("no-such-kubeconfig");
        spawn_on(dir, self.database_url.clone(), kubeconfig, true).await
    }

    /// A second replica on the same database and the shared local cluster,
    /// without a controller.
    pub async fn replica_on_cluster(&self) -> TestApp {
        spawn_on(
            TempDir::new(),
            self.database_url.clone(),
            local_cluster_kubeconfig().await,
            true,
        )
        .await
    }

    /// Sets the policy as the admin holding `token` would.
    pub async fn set_policy(&self, token: &str, policy: &Value) {
        let response = self
            .call(Method::PUT, token, "/api/v1/admin/policy", Some(policy))
            .await;
        assert_eq!(response.status(), StatusCode::OK, "PUT policy {policy}");
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// A browser-like client: keeps cookies.
    pub fn browser(&self) -> Client {
        Client::builder().cookie_store(true).build().unwrap()
    }

    pub async fn register(&self, client: &Client, email: &str) -> Response {
        client
            .post(self.url("/api/v1/auth/register"))
            .json(&json!({"email": email, "password": PASSWORD}))
            .send()
            .await
            .unwrap()
    }

    pub async fn login(&self, client: &Client, email: &str, password: &str) -> Response {
        client
            .post(self.url("/api/v1/auth/login"))
            .json(&json!({"email": email, "password": password}))
            .send()
            .await
            .unwrap()
    }

    /// Registers a member and returns a personal access token of theirs.
    pub async fn member_token(&self, email: &str) -> String {
        let response = self.register(&Client::new(), email).await;
        assert_eq!(response.status(), StatusCode::CREATED);
        self.token_for_session(&response).await
    }

    /// Logs the bootstrapped admin in and returns a personal access token of theirs.
    pub async fn admin_token(&self) -> String {
        let response = self
            .login(&Client::new(), ADMIN_EMAIL, ADMIN_PASSWORD)
            .await;
        assert_eq!(response.status(), StatusCode::OK);
        self.token_for_session(&response).await
    }

    /// Creates a token with the session that `response` (a login or
    /// registration) opened, as the web UI would.
    pub async fn token_for_session(&self, response: &Response) -> String {
        let csrf = set_cookie(response, "berth_csrf").unwrap();
        let session = set_cookie(response, "berth_session").unwrap();
        let created: Value = Client::new()
            .post(self.url("/api/v1/tokens"))
            .header(
                "cookie",
                format!("berth_session={session}; berth_csrf={csrf}"),
            )
            .header("x-csrf-token", csrf)
            .json(&json!({"name": "test"}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        created["token"].as_str().expect("a token").to_owned()
    }

    /// `method path` as the holder of `token`, with `body` as JSON if given.
    pub async fn call(
        &self,
        method: Method,
        token: &str,
        path: &str,
        body: Option<&Value>,
    ) -> Response {
        let request = Client::new()
            .request(method, self.url(path))
            .bearer_auth(token);
        let request = match body {
            Some(body) => request.json(body),
            None => request,
        };
        request.send().await.unwrap()
    }

    pub async fn get(&self, token: &str, path: &str) -> Response {
        self.call(Method::GET, token, path, None).await
    }

    /// `GET path`, which must answer 200 with JSON.
    pub async fn get_json(&self, token: &str, path: &str) -> Value {
        let response = self.get(token, path).await;
        assert_eq!(response.status(), StatusCode::OK, "GET {path}");
        response.json().await.expect("a JSON body")
    }

    pub async fn post(&self, token: &str, path: &str, body: &Value) -> Response {
        self.call(Method::POST, token, path, Some(body)).await
    }

    pub async fn delete(&self, token: &str, path: &str) -> Response {
        self.call(Method::DELETE, token, path, None).await
    }

    /// Polls `GET path` with `token` until `done` holds for the answer, or
    /// fails after `timeout`; returns the body that satisfied it.
    pub async fn eventually(
        &self,
        token: &str,
        path: &str,
        timeout: Duration,
        done: impl Fn(StatusCode, &Value) -> bool,
    ) -> Value {
        let deadline = Instant::now() + timeout;
        loop {
            let response = self.get(token, path).await;
            let status = response.status();
            let body: Value = response.json().await.unwrap_or(Value::Null);
            if done(status, &body) {
                return body;
            }
            assert!(
                Instant::now() < deadline,
                "{path} did not get there within {timeout:?}: {status} {body}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Stops the server as SIGTERM would and waits for it to finish.
    pub async fn shutdown(mut self) -> anyhow::Result<()> {
        self.shutdown.take().map(|tx| tx.send(()));
        self.task.take().unwrap().await?
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(task) = &self.task {
            task.abort();
        }
    }
}

/// The value a response's `Set-Cookie` gives cookie `name`.
pub fn set_cookie(response: &Response, name: &str) -> Option<String> {
    response
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|v| {
            v.strip_prefix(&format!("{name}="))
                .map(|rest| rest.split(';').next().unwrap_or("").to_owned())
        })
}

/// Asserts the contract's error shape and returns the body.
/// A 400 `validation_failed` whose first detail names `field` (`context`
/// says which request, when it fails); its body.
pub async fn expect_invalid(response: Response, field: &str, context: &str) -> Value {
    let body = expect_error(response, StatusCode::BAD_REQUEST, "validation_failed").await;
    assert_eq!(
        body["error"]["details"][0]["field"], field,
        "{context}: {body}"
    );
    body
}

pub async fn expect_error(response: Response, status: StatusCode, code: &str) -> Value {
    assert_eq!(response.status(), status, "status");
    let body: Value = response.json().await.expect("an error body is JSON");
    assert_eq!(body["error"]["code"], code, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "{body}"
    );
    body
}

/// A directory removed when the test ends.
pub struct TempDir(pub PathBuf);

impl TempDir {
    fn new() -> Self {
        let path =
            std::env::temp_dir().join(format!("berth-test-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&path).unwrap();
        Self(path)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
