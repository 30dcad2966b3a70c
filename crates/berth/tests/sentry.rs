//! Errors to Sentry, end to end: the real Berth reporting to a local
//! receiver that parses envelopes as Sentry documents them
//! (`berth_testkit::sentry`).
//!
//! One test, as the Sentry client is global to the process: a 5xx (the
//! store's table of requests gone under a running server) and a handler's
//! panic arrive with request id, route template, user id, release and
//! environment, and without email, session, token, header or body; a 4xx
//! is not reported; with the receiver stalled or down, requests keep their
//! latency (p50/p99 printed) and reports flow again once it is back; a
//! panic in a background task is reported; `berth controller` (the binary,
//! on the shared local cluster) reports a reconcile failure it cannot
//! classify (an admission webhook that cannot be called makes the
//! apiserver answer 500) with the environment's name; stopping waits at
//! most the flush bound on a stalled Sentry.

mod support;

use anyhow::{Context, Result};
use berth::reporting::SentrySettings;
use berth_manifests::Environment;
use berth_testkit::sentry::{SentryMode, SentryReceiver};
use berth_testkit::unique_name as unique;
use k8s_openapi::api::admissionregistration::v1::ValidatingWebhookConfiguration;
use kube::Api;
use kube::api::{DeleteParams, Patch, PatchParams, PostParams};
use reqwest::{Client, StatusCode};
use serde_json::{Value, json};
use sqlx::Connection;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use support::*;

const SENTRY_ENVIRONMENT: &str = "berth-tests";
/// How soon an API error's report arrives.
const SOON: Duration = Duration::from_secs(15);
/// Requests per latency sample.
const SAMPLE: usize = 150;

#[tokio::test]
async fn errors_reach_sentry_scrubbed_and_never_slow_a_request() -> Result<()> {
    let sentry = SentryReceiver::start().await?;
    let settings = SentrySettings::new(Some(sentry.dsn()), Some(SENTRY_ENVIRONMENT.into()))?
        .context("a DSN makes settings")?;
    let app = spawn_app_with_sentry(settings).await;

    // Ada signs in with a browser (session cookie); Bea has a token.
    let email = format!("{}@example.com", unique("ada"));
    let browser = app.browser();
    let registered = app.register(&browser, &email).await;
    assert_eq!(registered.status(), StatusCode::CREATED);
    let session = set_cookie(&registered, "berth_session").context("a session cookie")?;
    let ada: Value = browser
        .get(app.url("/api/v1/me"))
        .send()
        .await?
        .json()
        .await?;
    let ada_id = ada["id"]
        .as_str()
        .context("/me has the user's id")?
        .to_owned();
    let token = app
        .member_token(&format!("{}@example.com", unique("bea")))
        .await;
    let bea = app.get_json(&token, "/api/v1/me").await;
    let user_id = bea["id"]
        .as_str()
        .context("/me has the user's id")?
        .to_owned();

    // A 4xx is the client's mistake, not Berth's: nothing is reported.
    let hidden = app.get(&token, "/api/v1/admin/users").await;
    assert_eq!(hidden.status(), StatusCode::NOT_FOUND);
    let bad = app
        .post(&token, "/api/v1/tokens", &json!({"name": 7}))
        .await;
    assert_eq!(bad.status(), StatusCode::BAD_REQUEST);
    let anonymous = Client::new().get(app.url("/api/v1/me")).send().await?;
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);

    // An honest 500: the table of environment requests is gone from under
    // the running server (a store broken by hand or a bad migration).
    let mut store = break_requests_table(&app.database_url).await?;
    let request_id = format!("req-{}", unique("sentry"));
    let failed = browser
        .get(app.url("/api/v1/requests"))
        .header("x-request-id", &request_id)
        .header("x-custom-secret", "header-secret-value-9c1d")
        .send()
        .await?;
    assert_eq!(failed.status(), StatusCode::INTERNAL_SERVER_ERROR);
    let event = wait_for_event(&sentry, SOON, |e| {
        e["tags"]["request_id"] == request_id.as_str()
    })
    .await?;
    // Sentry reads a missing level as `error`, and the SDK leaves it out then.
    assert_eq!(event["level"].as_str().unwrap_or("error"), "error");
    assert_eq!(event["tags"]["route"], "/api/v1/requests");
    assert_eq!(event["tags"]["method"], "GET");
    assert_eq!(event["tags"]["status"], "500");
    assert_eq!(event["transaction"], "GET /api/v1/requests");
    assert_eq!(event["user"], json!({"id": ada_id}));
    assert_release_and_environment(&event);
    assert_private_data_absent(&event, &[&session, &email, "header-secret", "berth_csrf"]);

    // Nothing was reported for the 4xx answers.
    for event in sentry.events() {
        let status = event["tags"]["status"].as_str().unwrap_or_default();
        assert!(!status.starts_with('4'), "a 4xx was reported: {event}");
    }

    // A panicking handler: the client still gets the contract's 500 and
    // the panic arrives once, with the route template, not the raw path.
    let boom = serve_panicking_route(&user_id).await?;
    let request_id = format!("req-{}", unique("panic"));
    let answer = Client::new()
        .post(format!("{boom}/boom/7"))
        .bearer_auth(&token)
        .header("x-request-id", &request_id)
        .body(format!(
            "{{\"password\":\"body-secret\",\"email\":\"{email}\"}}"
        ))
        .send()
        .await?;
    assert_eq!(answer.status(), StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(
        answer.headers()["x-request-id"].to_str()?,
        request_id,
        "the panic's answer keeps the request id"
    );
    let body: Value = answer.json().await?;
    assert_eq!(body["error"]["code"], "internal");
    let event = wait_for_event(&sentry, SOON, |e| {
        e["tags"]["request_id"] == request_id.as_str()
    })
    .await?;
    assert_eq!(event["tags"]["route"], "/boom/{id}");
    assert_eq!(event["user"], json!({"id": user_id}));
    let exception = &event["exception"]["values"][0];
    assert_eq!(exception["type"], "panic", "{event}");
    assert_eq!(
        exception["value"], "charging [email] failed",
        "the panic message, its email redacted"
    );
    assert!(
        exception["stacktrace"]["frames"]
            .as_array()
            .is_some_and(|f| !f.is_empty())
    );
    assert_release_and_environment(&event);
    assert_private_data_absent(&event, &[&token, &email, "body-secret"]);
    tokio::time::sleep(Duration::from_millis(300)).await; // a second report would be sent by now
    let reports = sentry
        .events()
        .into_iter()
        .filter(|e| e["tags"]["request_id"] == request_id.as_str())
        .count();
    assert_eq!(reports, 1, "the panic is reported once, not again as a 500");

    // A panic in a background task.
    let task = tokio::spawn(async { panic!("sweeping failed for token berth_pat_bg0123") });
    assert!(task.await.is_err());
    let event = wait_for_event(&sentry, SOON, |e| {
        e["exception"]["values"][0]["value"] == "sweeping failed for token [redacted]"
    })
    .await?;
    assert_release_and_environment(&event);

    // Latency of failing requests (each one reported) with Sentry up,
    // stalled (it reads and never answers) and down (connections refused).
    let up = latencies(&app, &token).await?;
    sentry.set_mode(SentryMode::Stall);
    let stalled = latencies(&app, &token).await?;
    sentry.stop();
    let down = latencies(&app, &token).await?;
    for (name, sample) in [("up", &up), ("stalled", &stalled), ("down", &down)] {
        println!(
            "sentry {name}: 500 answers p50 {:.2} ms, p99 {:.2} ms ({SAMPLE} requests)",
            percentile(sample, 0.50),
            percentile(sample, 0.99)
        );
    }
    // A send on the request path would cost seconds when stalled; load on
    // the machine moves the tail by tens of milliseconds.
    let bound = (percentile(&up, 0.99) * 4.0).max(percentile(&up, 0.99) + 100.0);
    for (name, sample) in [("stalled", &stalled), ("down", &down)] {
        assert!(
            percentile(sample, 0.99) <= bound,
            "with Sentry {name}, p99 {:.2} ms exceeds {bound:.2} ms",
            percentile(sample, 0.99)
        );
    }

    // Back up: reports flow again (the send stuck on the stalled connection
    // gives up after its deadline).
    sentry.set_mode(SentryMode::Normal);
    sentry.restart()?;
    let request_id = format!("req-{}", unique("back"));
    let failed = Client::new()
        .get(app.url("/api/v1/requests"))
        .bearer_auth(&token)
        .header("x-request-id", &request_id)
        .send()
        .await?;
    assert_eq!(failed.status(), StatusCode::INTERNAL_SERVER_ERROR);
    wait_for_event(&sentry, SOON, |e| {
        e["tags"]["request_id"] == request_id.as_str()
    })
    .await?;
    restore_requests_table(&mut store).await?;
    assert_eq!(
        app.get(&token, "/api/v1/requests").await.status(),
        StatusCode::OK
    );

    controller_reports_what_it_cannot_classify(&sentry).await?;

    // Stopping with Sentry stalled and reports queued waits at most the
    // flush bound (2 s), not for Sentry.
    sentry.set_mode(SentryMode::Stall);
    let mut store = break_requests_table(&app.database_url).await?;
    for _ in 0..5 {
        let _ = app.get(&token, "/api/v1/requests").await;
    }
    restore_requests_table(&mut store).await?;
    let stopping = Instant::now();
    app.shutdown().await?;
    let took = stopping.elapsed();
    println!("stop with Sentry stalled took {took:?}");
    assert!(took < Duration::from_secs(5), "stopping took {took:?}");
    Ok(())
}

/// `berth controller` (the binary, given `BERTH_SENTRY_DSN`), failing to
/// apply an environment's ResourceQuota because the apiserver answers 500
/// (a validating webhook, scoped to this environment's namespace, that
/// cannot be called), reports it with the environment's name. It runs with
/// a lease and a selector of its own, so that it is the one reconciling.
async fn controller_reports_what_it_cannot_classify(sentry: &SentryReceiver) -> Result<()> {
    let cluster = berth_testkit::cluster().await?;
    let client = cluster.client();
    let name = unique("sentry");
    let webhooks: Api<ValidatingWebhookConfiguration> = Api::all(client.clone());
    let webhook: ValidatingWebhookConfiguration = serde_json::from_value(json!({
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingWebhookConfiguration",
        "metadata": {"name": format!("berth-test-{name}")},
        "webhooks": [{
            "name": "unreachable.berth.dev",
            "clientConfig": {"url": "https://127.0.0.1:1/validate"},
            "rules": [{"apiGroups": [""], "apiVersions": ["v1"],
                       "operations": ["CREATE", "UPDATE"], "resources": ["resourcequotas"]}],
            "namespaceSelector": {"matchLabels": {berth_manifests::ENVIRONMENT_LABEL: name}},
            "failurePolicy": "Fail",
            "sideEffects": "None",
            "admissionReviewVersions": ["v1"],
            "timeoutSeconds": 2
        }]
    }))?;
    webhooks.create(&PostParams::default(), &webhook).await?;
    let controller = ControllerProcess::start(&cluster, &name, &sentry.dsn())?;
    let environments = Api::<Environment>::all(client.clone());
    let body = json!({
        "apiVersion": "berth.dev/v1alpha1", "kind": "Environment",
        "metadata": {"name": name, "labels": {RUN_LABEL: name}},
        "spec": {"template": "small"},
    });
    environments
        .patch(
            &name,
            &PatchParams::apply("kubectl").force(),
            &Patch::Apply(&body),
        )
        .await?;
    let reported = wait_for_event(sentry, Duration::from_secs(60), |e| {
        e["tags"]["environment_name"] == name.as_str()
    })
    .await;
    webhooks
        .delete(&format!("berth-test-{name}"), &DeleteParams::default())
        .await?;
    environments.delete(&name, &DeleteParams::default()).await?;
    let gone = berth_testkit::eventually(Duration::from_secs(60), || async {
        match environments.get_opt(&name).await? {
            None => Ok(()),
            Some(_) => anyhow::bail!("environment {name} still there"),
        }
    })
    .await;
    drop(controller);
    let event = reported.with_context(|| format!("controller log: {}", read_log(&name)))?;
    gone?;
    assert_eq!(event["tags"]["reason"], "api_500", "{event}");
    let values = event["exception"]["values"].to_string();
    assert!(values.contains("failed calling webhook"), "{event}");
    assert_release_and_environment(&event);
    Ok(())
}

const RUN_LABEL: &str = "berth.dev/test-run";

/// A `berth controller` process reporting to Sentry; killed when dropped.
struct ControllerProcess(Child);

impl ControllerProcess {
    fn start(cluster: &berth_testkit::Cluster, run: &str, dsn: &str) -> Result<Self> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let log = std::fs::File::create(log_path(run))?;
        let child = Command::new(env!("CARGO_BIN_EXE_berth"))
            .arg("controller")
            .arg("--kubeconfig")
            .arg(cluster.kubeconfig())
            .args([
                "--identity",
                run,
                "--lease-name",
                &format!("berth-test-{run}"),
            ])
            .args(["--selector", &format!("{RUN_LABEL}={run}")])
            .args(["--metrics-listen", &format!("127.0.0.1:{port}")])
            .env("BERTH_SENTRY_DSN", dsn)
            .env("BERTH_SENTRY_ENVIRONMENT", SENTRY_ENVIRONMENT)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .context("starting berth controller")?;
        Ok(Self(child))
    }
}

impl Drop for ControllerProcess {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn log_path(run: &str) -> std::path::PathBuf {
    std::env::temp_dir().join(format!("{run}-controller.log"))
}

fn read_log(run: &str) -> String {
    std::fs::read_to_string(log_path(run)).unwrap_or_default()
}

/// A router of the test's own with a panicking handler, wrapped in the
/// layers every Berth answer gets (`berth_api::wrap`), served on a free
/// port; the handler names the caller on the scope as Berth's auth
/// extractor does.
async fn serve_panicking_route(user_id: &str) -> Result<String> {
    let user_id = user_id.to_owned();
    let router = berth_api::wrap(axum::Router::new().route(
        "/boom/{id}",
        axum::routing::post(
            move |axum::extract::Path(id): axum::extract::Path<u32>| async move {
                berth_api::error_reports::identify(&user_id);
                if id > 0 {
                    panic!("charging ada@example.com failed");
                }
                StatusCode::NO_CONTENT
            },
        ),
    ));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    tokio::spawn(async move { axum::serve(listener, router).await });
    Ok(base)
}

/// Renames the table `GET /api/v1/requests` reads, through a connection of
/// the test's own; the connection is kept to put it back.
async fn break_requests_table(database_url: &str) -> Result<sqlx::AnyConnection> {
    sqlx::any::install_default_drivers();
    let mut conn = sqlx::AnyConnection::connect(database_url).await?;
    sqlx::query("ALTER TABLE environment_requests RENAME TO environment_requests_gone")
        .execute(&mut conn)
        .await?;
    Ok(conn)
}

async fn restore_requests_table(conn: &mut sqlx::AnyConnection) -> Result<()> {
    sqlx::query("ALTER TABLE environment_requests_gone RENAME TO environment_requests")
        .execute(conn)
        .await?;
    Ok(())
}

/// The first event `matches` accepts, within `timeout`.
async fn wait_for_event(
    sentry: &SentryReceiver,
    timeout: Duration,
    matches: impl Fn(&Value) -> bool,
) -> Result<Value> {
    berth_testkit::eventually(timeout, || {
        let found = sentry.events().into_iter().find(|e| matches(e));
        async move { found.context("no such event yet") }
    })
    .await
    .with_context(|| {
        let tags: Vec<Value> = sentry.events().iter().map(|e| e["tags"].clone()).collect();
        format!(
            "the tags of the events received: {tags:?}; refused: {:?}",
            sentry.refused()
        )
    })
}

fn assert_release_and_environment(event: &Value) {
    let release = event["release"].as_str().unwrap_or_default();
    assert!(
        release.starts_with(&format!("berth@{}", env!("CARGO_PKG_VERSION"))),
        "release {release:?}"
    );
    assert_eq!(event["environment"], SENTRY_ENVIRONMENT);
}

/// Neither the given secrets nor request data appear anywhere in the event.
fn assert_private_data_absent(event: &Value, secrets: &[&str]) {
    let text = event.to_string();
    for secret in secrets {
        assert!(!text.contains(secret), "{secret:?} leaked into {text}");
    }
    for field in ["request", "breadcrumbs", "extra"] {
        assert!(event.get(field).is_none(), "{field} leaked into {text}");
    }
    assert!(!text.to_ascii_lowercase().contains("bearer"), "{text}");
}

/// Milliseconds of `SAMPLE` sequential failing requests, sorted.
async fn latencies(app: &TestApp, token: &str) -> Result<Vec<f64>> {
    let client = Client::new();
    let mut sample = Vec::with_capacity(SAMPLE);
    for _ in 0..SAMPLE {
        let started = Instant::now();
        let response = client
            .get(app.url("/api/v1/requests"))
            .bearer_auth(token)
            .send()
            .await?;
        sample.push(started.elapsed().as_secs_f64() * 1e3);
        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
    }
    sample.sort_by(f64::total_cmp);
    Ok(sample)
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let at = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[at]
}
