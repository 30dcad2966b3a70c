//! Splunk HTTP Event Collector: the real Berth, with its durable outbox,
//! sending to a collector that checks the wire format and the token as
//! Splunk documents them (`berth_testkit::hec`), on SQLite or on PostgreSQL
//! (`BERTH_TEST_POSTGRES_URL`).

use berth::config::{Config, ServeArgs};
use berth::serve::Server;
use berth_splunk::HecConfig;
use berth_testkit::hec::{HecMode, HecReceiver};
use k8s_openapi::api::core::v1::{Event, ObjectReference};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::Api;
use kube::api::PostParams;
use reqwest::{Client, StatusCode};
use serde_json::{Value, json};
use std::collections::HashSet;
use std::io::Write;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

const ADMIN_EMAIL: &str = "admin@example.com";
const ADMIN_PASSWORD: &str = "admin-password-1";
const TOKEN: &str = "f1d2d2f9-24a1-4c3b-9d3e-hec-token";
/// Long enough for the slowest CI delivery; polling ends as soon as it is there.
const DELIVERY: Duration = Duration::from_secs(60);

/// A running `berth serve`, sending to Splunk.
struct Berth {
    base: String,
    /// One client, so that requests reuse their connection.
    http: Client,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<anyhow::Result<()>>>,
}

impl Berth {
    async fn start(database_url: &str, kubeconfig: PathBuf, hec: HecConfig) -> Self {
        logs();
        let args = ServeArgs {
            listen: Some("127.0.0.1:0".parse().unwrap()),
            kube_listen: Some("127.0.0.1:0".parse().unwrap()),
            database_url: Some(database_url.to_owned()),
            kubeconfig: Some(kubeconfig),
            admin_email: Some(ADMIN_EMAIL.into()),
            admin_password: Some(ADMIN_PASSWORD.into()),
            no_controller: true,
            ..ServeArgs::default()
        };
        let mut config = Config::load(args, None).expect("the configuration loads");
        config.splunk = Some(hec);
        let server = Server::build(config).await.expect("the server starts");
        let base = format!("http://{}", server.local_addr());
        let (stop, stopped) = oneshot::channel();
        let task = tokio::spawn(server.run_until(async {
            let _ = stopped.await;
        }));
        Self {
            base,
            http: Client::new(),
            stop: Some(stop),
            task: Some(task),
        }
    }

    /// Stops it as SIGTERM would.
    async fn shutdown(mut self) {
        self.stop.take().map(|stop| stop.send(()));
        self.task
            .take()
            .unwrap()
            .await
            .unwrap()
            .expect("berth stops cleanly");
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// A personal access token of the admin (itself an audit entry).
    async fn admin_token(&self) -> String {
        let client = Client::builder().cookie_store(true).build().unwrap();
        let login = client
            .post(self.url("/api/v1/auth/login"))
            .json(&json!({ "email": ADMIN_EMAIL, "password": ADMIN_PASSWORD }))
            .send()
            .await
            .unwrap();
        assert_eq!(login.status(), StatusCode::OK);
        let csrf = login
            .cookies()
            .find(|c| c.name() == "berth_csrf")
            .expect("a CSRF cookie")
            .value()
            .to_owned();
        let created: Value = client
            .post(self.url("/api/v1/tokens"))
            .header("x-csrf-token", csrf)
            .json(&json!({ "name": "admin" }))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        created["token"].as_str().expect("a token").to_owned()
    }

    /// Creates a token named `name` (the audit entry `token.create`) and
    /// returns how long the request took.
    async fn audited_request(&self, token: &str, name: &str) -> Duration {
        let started = Instant::now();
        let response = self
            .http
            .post(self.url("/api/v1/tokens"))
            .bearer_auth(token)
            .json(&json!({ "name": name }))
            .send()
            .await
            .unwrap();
        let took = started.elapsed();
        assert_eq!(
            response.status(),
            StatusCode::CREATED,
            "POST /api/v1/tokens"
        );
        took
    }

    /// The value of the series `name` on `/metrics`.
    async fn metric(&self, name: &str) -> f64 {
        let text = reqwest::get(self.url("/metrics"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        text.lines()
            .find_map(|line| {
                line.strip_prefix(name)
                    .and_then(|rest| rest.strip_prefix(' '))
            })
            .unwrap_or_else(|| panic!("{name} on /metrics:\n{text}"))
            .trim()
            .parse()
            .unwrap()
    }
}

impl Drop for Berth {
    fn drop(&mut self) {
        if let Some(task) = &self.task {
            task.abort();
        }
    }
}

fn hec(receiver: &HecReceiver, token: &str) -> HecConfig {
    HecConfig {
        url: receiver.url(),
        token: token.into(),
        index: Some("berth".into()),
        source: "berth".into(),
        sourcetype: "_json".into(),
        host: "berth-test".into(),
    }
}

/// A fresh database and a directory for it that lives as long as the test.
async fn database() -> (String, TempDir) {
    let dir = TempDir(
        std::env::temp_dir().join(format!("berth-splunk-{}", uuid::Uuid::new_v4().simple())),
    );
    std::fs::create_dir_all(&dir.0).unwrap();
    (berth_store::testing::fresh_database_url(&dir.0).await, dir)
}

struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A kubeconfig naming no cluster: these Berths run without one.
fn no_cluster(dir: &TempDir) -> PathBuf {
    dir.0.join("no-such-kubeconfig")
}

/// The audit events named `prefix*` (by the token name in their details)
/// that `receiver` holds, in the order it received them.
fn audited(receiver: &HecReceiver, prefix: &str) -> Vec<Value> {
    receiver
        .events()
        .into_iter()
        .filter(|e| {
            e["fields"]["kind"] == "audit"
                && e["event"]["details"]["name"]
                    .as_str()
                    .is_some_and(|n| n.starts_with(prefix))
        })
        .collect()
}

/// Polls until `receiver` holds `count` audit events named `prefix*`.
async fn arrive(receiver: &HecReceiver, prefix: &str, count: usize) -> Vec<Value> {
    let deadline = Instant::now() + DELIVERY;
    loop {
        let events = audited(receiver, prefix);
        if events.len() >= count {
            return events;
        }
        assert!(
            Instant::now() < deadline,
            "{} of {count} events {prefix}* arrived within {DELIVERY:?}; requests: {:?}",
            events.len(),
            receiver.requests().iter().rev().take(5).collect::<Vec<_>>()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Each event once, and in the order the requests were made.
fn assert_once_in_order(events: &[Value], prefix: &str, count: usize) {
    let names: Vec<&str> = events
        .iter()
        .map(|e| e["event"]["details"]["name"].as_str().unwrap())
        .collect();
    let expected: Vec<String> = (0..count).map(|i| format!("{prefix}{i:04}")).collect();
    assert_eq!(names, expected, "each event once, in order");
    let ids: HashSet<&str> = events
        .iter()
        .map(|e| e["fields"]["event_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids.len(), count, "distinct event ids");
}

fn percentile(latencies: &mut [Duration], p: f64) -> Duration {
    latencies.sort();
    let index = ((latencies.len() as f64 - 1.0) * p).round() as usize;
    latencies[index]
}

/// What Berth logs, for the tests that read it (set up once per process).
fn logs() -> Arc<Mutex<Vec<u8>>> {
    static LOGS: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();
    LOGS.get_or_init(|| {
        let logs = Arc::new(Mutex::new(Vec::new()));
        let writer = logs.clone();
        tracing_subscriber::fmt()
            .with_env_filter("warn")
            .with_ansi(false)
            .with_writer(move || LogWriter(writer.clone()))
            .init();
        logs
    })
    .clone()
}

struct LogWriter(Arc<Mutex<Vec<u8>>>);

impl Write for LogWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn audit_entries_arrive_gzipped_with_their_fields_and_acknowledged() {
    let receiver = HecReceiver::start(TOKEN).await.unwrap();
    let (database_url, dir) = database().await;
    let berth = Berth::start(&database_url, no_cluster(&dir), hec(&receiver, TOKEN)).await;
    let token = berth.admin_token().await;
    let before = time::OffsetDateTime::now_utc().unix_timestamp() as f64;
    berth.audited_request(&token, "fields-0000").await;
    let event = arrive(&receiver, "fields-", 1).await.remove(0);

    assert_eq!(event["host"], "berth-test");
    assert_eq!(event["source"], "berth");
    assert_eq!(event["sourcetype"], "_json");
    assert_eq!(event["index"], "berth");
    let time = event["time"].as_f64().expect("time in epoch seconds");
    assert!(
        (before - 1.0..before + 60.0).contains(&time),
        "{time} vs {before}"
    );
    assert_eq!(event["event"]["action"], "token.create");
    assert_eq!(event["event"]["actor"], ADMIN_EMAIL);
    assert_eq!(event["event"]["outcome"], "success");
    let fields = event["fields"].as_object().unwrap();
    assert_eq!(fields["kind"], "audit");
    assert_eq!(fields["action"], "token.create");
    assert!(
        fields["event_id"]
            .as_str()
            .is_some_and(|id| id.starts_with("audit:")),
        "{event}"
    );
    assert!(fields.values().all(Value::is_string), "flat: {event}");
    // Every request was gzip, and the collector found nothing to refuse.
    let requests = receiver.requests();
    assert!(
        requests.iter().all(|r| r.gzip && r.status == 200),
        "{requests:?}"
    );
    // HEC has the events before the drainer hears its answer and counts
    // them sent, so the count is awaited rather than read at once.
    berth_testkit::eventually(DELIVERY, || async {
        let sent = berth.metric("berth_splunk_events_sent_total").await;
        anyhow::ensure!(sent >= 2.0, "{sent} events counted sent, not yet 2");
        Ok(())
    })
    .await
    .unwrap();
    berth.shutdown().await;
}

/// Creates the event `name` about a pod of `namespace`.
async fn create_event(cluster: &berth_testkit::Cluster, namespace: &str, name: &str) {
    let event = Event {
        metadata: ObjectMeta {
            name: Some(format!("splunk-test.{name}")),
            namespace: Some(namespace.to_owned()),
            ..ObjectMeta::default()
        },
        involved_object: ObjectReference {
            kind: Some("Pod".into()),
            name: Some("splunk-test".into()),
            namespace: Some(namespace.to_owned()),
            ..ObjectReference::default()
        },
        reason: Some("SplunkTest".into()),
        message: Some(format!("{name} event in {namespace}")),
        type_: Some("Warning".into()),
        count: Some(1),
        ..Event::default()
    };
    Api::<Event>::namespaced(cluster.client(), namespace)
        .create(&PostParams::default(), &event)
        .await
        .unwrap_or_else(|e| panic!("creating an event in {namespace}: {e}"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_events_of_berths_namespaces_arrive_once_and_others_do_not() {
    let cluster = berth_testkit::cluster()
        .await
        .unwrap_or_else(|e| panic!("the local cluster is needed and did not start: {e:#}"));
    let receiver = HecReceiver::start(TOKEN).await.unwrap();
    let (database_url, _dir) = database().await;
    let berth = Berth::start(&database_url, cluster.kubeconfig(), hec(&receiver, TOKEN)).await;
    let other = berth_testkit::TestNamespace::create(&cluster, "splunk-other")
        .await
        .unwrap();
    let environment = berth_testkit::unique_name("splunk-env");
    let managed = berth_testkit::TestNamespace::create_with_labels(
        &cluster,
        "splunk-env",
        &[
            ("app.kubernetes.io/managed-by", "berth"),
            ("berth.dev/environment", environment.as_str()),
        ],
    )
    .await
    .unwrap();
    // The unmanaged one first: once the managed one is in, it had its chance.
    create_event(&cluster, other.name(), "first").await;
    create_event(&cluster, managed.name(), "first").await;
    let of = |namespace: &str| -> Vec<Value> {
        receiver
            .events()
            .into_iter()
            .filter(|e| {
                e["fields"]["kind"] == "kubernetes-event" && e["fields"]["namespace"] == namespace
            })
            .collect()
    };
    let arrived = berth_testkit::eventually(DELIVERY, || {
        let events = of(managed.name());
        async move {
            anyhow::ensure!(!events.is_empty(), "no event of the managed namespace yet");
            Ok(events)
        }
    })
    .await
    .unwrap();
    assert_eq!(arrived.len(), 1, "{arrived:?}");
    let event = &arrived[0];
    assert_eq!(event["fields"]["environment"], environment.as_str());
    assert_eq!(event["fields"]["reason"], "SplunkTest");
    assert_eq!(event["fields"]["type"], "Warning");
    assert_eq!(
        event["event"]["message"],
        format!("first event in {}", managed.name())
    );
    assert!(
        event["fields"]["event_id"]
            .as_str()
            .is_some_and(|id| id.starts_with("k8s:") && id.ends_with(":1")),
        "{event}"
    );
    assert!(
        of(other.name()).is_empty(),
        "events of other namespaces stay out"
    );

    // Another replica lists the same events again: the outbox keeps one.
    // Once an event made after its start is in, it has been through the list.
    berth.shutdown().await;
    let replica = Berth::start(&database_url, cluster.kubeconfig(), hec(&receiver, TOKEN)).await;
    create_event(&cluster, managed.name(), "second").await;
    berth_testkit::eventually(DELIVERY, || {
        let events = of(managed.name());
        async move {
            anyhow::ensure!(
                events.len() >= 2,
                "the second event has not arrived: {events:?}"
            );
            Ok(())
        }
    })
    .await
    .unwrap();
    let names: Vec<Value> = of(managed.name())
        .iter()
        .map(|e| e["event"]["name"].clone())
        .collect();
    assert_eq!(names.len(), 2, "each event once across relists: {names:?}");
    replica.shutdown().await;
    managed.delete().await.unwrap();
    other.delete().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_outage_loses_nothing_sends_nothing_twice_and_never_slows_requests() {
    const OUTAGE: usize = 1000;
    const SAMPLE: usize = 200;
    // With a cluster, so that /readyz has everything it checks.
    let cluster = berth_testkit::cluster()
        .await
        .unwrap_or_else(|e| panic!("the local cluster is needed and did not start: {e:#}"));
    let receiver = HecReceiver::start(TOKEN).await.unwrap();
    let (database_url, _dir) = database().await;
    let berth = Berth::start(&database_url, cluster.kubeconfig(), hec(&receiver, TOKEN)).await;
    let token = berth.admin_token().await;

    let mut up = Vec::new();
    for i in 0..SAMPLE {
        up.push(berth.audited_request(&token, &format!("up-{i:04}")).await);
    }
    assert_once_in_order(&arrive(&receiver, "up-", SAMPLE).await, "up-", SAMPLE);

    // Stalled: the collector reads requests and never answers.
    receiver.set_mode(HecMode::Stall);
    let mut stalled = Vec::new();
    for i in 0..SAMPLE {
        stalled.push(
            berth
                .audited_request(&token, &format!("stall-{i:04}"))
                .await,
        );
    }

    // Down: the port refuses connections (the stalled request is cut).
    receiver.stop();
    let mut down = Vec::new();
    for i in 0..OUTAGE {
        down.push(
            berth
                .audited_request(&token, &format!("outage-{i:04}"))
                .await,
        );
    }
    let ready = reqwest::get(berth.url("/readyz")).await.unwrap();
    assert_eq!(
        ready.status(),
        StatusCode::OK,
        "/readyz while Splunk is down"
    );
    let deadline = Instant::now() + DELIVERY;
    while berth.metric("berth_splunk_outbox_depth").await < (SAMPLE + OUTAGE) as f64 {
        assert!(
            Instant::now() < deadline,
            "the depth on /metrics counts what waits"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(berth.metric("berth_splunk_outbox_oldest_age_seconds").await > 0.0);
    assert!(berth.metric("berth_splunk_send_failures_total").await >= 1.0);

    // Back, busy at first: 503 "Server is busy" is retried too.
    receiver.set_mode(HecMode::Busy);
    receiver.restart().unwrap();
    berth_testkit::eventually(DELIVERY, || {
        let busy = receiver
            .requests()
            .iter()
            .any(|r| r.status == 503 && r.code == 9);
        async move {
            if busy {
                Ok(())
            } else {
                anyhow::bail!("no request met the busy collector yet")
            }
        }
    })
    .await
    .unwrap();
    receiver.set_mode(HecMode::Normal);
    assert_once_in_order(&arrive(&receiver, "stall-", SAMPLE).await, "stall-", SAMPLE);
    assert_once_in_order(
        &arrive(&receiver, "outage-", OUTAGE).await,
        "outage-",
        OUTAGE,
    );
    let deadline = Instant::now() + DELIVERY;
    while berth.metric("berth_splunk_outbox_depth").await > 0.0 {
        assert!(Instant::now() < deadline, "the outbox empties");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(
        berth.metric("berth_splunk_outbox_oldest_age_seconds").await,
        0.0
    );
    // Nothing arrived twice, whatever its kind.
    let events = receiver.events();
    let ids: HashSet<&str> = events
        .iter()
        .map(|e| e["fields"]["event_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids.len(), events.len(), "no event twice");

    let (p50_up, p99_up) = (percentile(&mut up, 0.5), percentile(&mut up, 0.99));
    let (p50_stall, p99_stall) = (
        percentile(&mut stalled, 0.5),
        percentile(&mut stalled, 0.99),
    );
    let (p50_down, p99_down) = (percentile(&mut down, 0.5), percentile(&mut down, 0.99));
    println!(
        "POST /api/v1/tokens latency, Splunk up: p50 {p50_up:?} p99 {p99_up:?} ({SAMPLE}); \
         stalled: p50 {p50_stall:?} p99 {p99_stall:?} ({SAMPLE}); \
         down: p50 {p50_down:?} p99 {p99_down:?} ({OUTAGE})"
    );
    // Requests never wait on Splunk: nowhere near the 10 s a stalled send takes.
    assert!(
        p99_stall < Duration::from_secs(2),
        "stalled p99 {p99_stall:?}"
    );
    assert!(p99_down < Duration::from_secs(2), "down p99 {p99_down:?}");
    berth.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_restart_with_a_full_outbox_sends_the_rest_once_from_one_replica() {
    const COUNT: usize = 100;
    let receiver = HecReceiver::start(TOKEN).await.unwrap();
    receiver.stop();
    let (database_url, dir) = database().await;
    let berth = Berth::start(&database_url, no_cluster(&dir), hec(&receiver, TOKEN)).await;
    let token = berth.admin_token().await;
    for i in 0..COUNT {
        berth
            .audited_request(&token, &format!("restart-{i:04}"))
            .await;
    }
    berth.shutdown().await;

    // Two replicas on the outbox, and acknowledgement off on the token this time.
    receiver.set_ack(false);
    receiver.restart().unwrap();
    let one = Berth::start(&database_url, no_cluster(&dir), hec(&receiver, TOKEN)).await;
    let two = Berth::start(&database_url, no_cluster(&dir), hec(&receiver, TOKEN)).await;
    let events = arrive(&receiver, "restart-", COUNT).await;
    assert_once_in_order(&events, "restart-", COUNT);
    // The admin's login and first token too: nothing else, nothing twice.
    let deadline = Instant::now() + DELIVERY;
    while one.metric("berth_splunk_outbox_depth").await > 0.0 {
        assert!(Instant::now() < deadline, "the outbox empties");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let actions: Vec<Value> = receiver
        .events()
        .iter()
        .map(|e| e["event"]["action"].clone())
        .collect();
    assert_eq!(actions.len(), COUNT + 2, "{actions:?}");
    let sent = one.metric("berth_splunk_events_sent_total").await
        + two.metric("berth_splunk_events_sent_total").await;
    assert_eq!(
        sent,
        (COUNT + 2) as f64,
        "one replica drains, the other waits"
    );
    one.shutdown().await;
    two.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_refused_token_is_reported_without_itself_and_nothing_is_lost() {
    const COUNT: usize = 20;
    const WRONG: &str = "wrong-token-6d1f3a";
    let logs = logs();
    let receiver = HecReceiver::start(TOKEN).await.unwrap();
    let (database_url, dir) = database().await;
    let berth = Berth::start(&database_url, no_cluster(&dir), hec(&receiver, WRONG)).await;
    let token = berth.admin_token().await;
    for i in 0..COUNT {
        berth
            .audited_request(&token, &format!("refused-{i:04}"))
            .await;
    }
    berth_testkit::eventually(DELIVERY, || {
        let refused = receiver
            .requests()
            .iter()
            .any(|r| r.status == 403 && r.code == 4);
        let logged = String::from_utf8_lossy(&logs.lock().unwrap())
            .contains("refused BERTH_SPLUNK_HEC_TOKEN");
        async move {
            anyhow::ensure!(refused, "the collector has not refused the token yet");
            anyhow::ensure!(logged, "no log line says the token was refused");
            Ok(())
        }
    })
    .await
    .unwrap();
    assert!(receiver.events().is_empty());
    assert!(berth.metric("berth_splunk_send_failures_total").await >= 1.0);
    let deadline = Instant::now() + DELIVERY;
    while berth.metric("berth_splunk_outbox_depth").await < COUNT as f64 {
        assert!(
            Instant::now() < deadline,
            "the depth on /metrics counts what waits"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    berth.shutdown().await;
    let text = String::from_utf8_lossy(&logs.lock().unwrap()).into_owned();
    assert!(!text.contains(WRONG), "the token is never logged:\n{text}");

    // With the right token, everything queued arrives.
    let berth = Berth::start(&database_url, no_cluster(&dir), hec(&receiver, TOKEN)).await;
    assert_once_in_order(
        &arrive(&receiver, "refused-", COUNT).await,
        "refused-",
        COUNT,
    );
    berth.shutdown().await;
}

/// Berth's own warnings reach Splunk from the `berth serve` process itself
/// (the log layer is the process's): the first admin's generated password is
/// warned about, the password itself shown only on standard error, never in
/// the log or in Splunk; the cluster, unreachable here, is warned about too.
#[tokio::test]
async fn berths_own_warnings_arrive_without_secrets() {
    let hec = HecReceiver::start("warn-token").await.unwrap();
    let dir = std::env::temp_dir().join(format!("berth-warn-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    let log_path = dir.join("berth.log");
    let log = std::fs::File::create(&log_path).unwrap();
    let terminal_path = dir.join("berth.stderr");
    let terminal = std::fs::File::create(&terminal_path).unwrap();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_berth"))
        .arg("serve")
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("BERTH_LISTEN", "127.0.0.1:0")
        .env("BERTH_KUBE_LISTEN", "127.0.0.1:0")
        .env(
            "BERTH_DATABASE_URL",
            format!("sqlite://{}?mode=rwc", dir.join("berth.db").display()),
        )
        .env("KUBECONFIG", dir.join("no-such-kubeconfig"))
        .env("BERTH_ADMIN_EMAIL", "first-admin@example.com")
        .env("BERTH_SPLUNK_HEC_URL", hec.url())
        .env("BERTH_SPLUNK_HEC_TOKEN", "warn-token")
        .env("RUST_LOG", "info")
        .stdin(std::process::Stdio::null())
        .stdout(log)
        .stderr(terminal)
        .spawn()
        .expect("berth serve starts");
    let deadline = Instant::now() + Duration::from_secs(30);
    let warnings = loop {
        let logs: Vec<Value> = hec
            .events()
            .into_iter()
            .filter(|e| e["fields"]["kind"] == "log")
            .collect();
        let said = |what: &str| logs.iter().any(|e| e.to_string().contains(what));
        if said("first admin") && said("cluster") {
            break logs;
        }
        assert!(
            Instant::now() < deadline,
            "Berth's warnings did not reach Splunk within 30 s: {logs:?}\n{}",
            std::fs::read_to_string(&log_path).unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    // The password as the terminal shows it once, on standard error.
    let printed = || {
        let terminal = std::fs::read_to_string(&terminal_path).unwrap();
        let (_, rest) = terminal.split_once(" with password ")?;
        rest.split_whitespace().next().map(str::to_owned)
    };
    let password = loop {
        if let Some(password) = printed() {
            break password;
        }
        assert!(
            Instant::now() < deadline,
            "no generated password on the terminal"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let _ = child.kill();
    let _ = child.wait();
    let sent = serde_json::to_string(&warnings).unwrap();
    assert!(
        !sent.contains(&password),
        "the password went to Splunk: {sent}"
    );
    let logged = std::fs::read_to_string(&log_path).unwrap();
    assert!(
        logged.contains("first admin") && !logged.contains(&password),
        "the password is in the log: {logged}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
