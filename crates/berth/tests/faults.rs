//! Faults Berth survives, each with real processes: `berth serve` as a
//! child process, PostgreSQL from `scripts/postgres.sh`, SQLite files.
//!
//! - PostgreSQL stopped under write traffic: writes answer 503 `unavailable`
//!   with Retry-After (never 500), Berth recovers by itself once PostgreSQL
//!   is back, and every write it acknowledged is there afterwards.
//! - `berth serve` killed with SIGKILL in the middle of writes, on SQLite and
//!   on PostgreSQL: the restarted server finds an intact database and every
//!   acknowledged write, each with its audit entry.
//!
//! Recovery times are printed (`cargo test -- --nocapture` shows them).

use reqwest::{Client, StatusCode};
use serde_json::{Value, json};
use sqlx::Row;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

const ADMIN_EMAIL: &str = "admin@example.com";
const ADMIN_PASSWORD: &str = "admin-password-1";

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// A directory removed when the test ends; world-traversable, as
/// PostgreSQL runs as its own user when the tests run as root.
struct Scratch(PathBuf);

impl Scratch {
    fn new(what: &str) -> Self {
        let path = std::env::temp_dir().join(format!(
            "berth-faults-{what}-{}",
            uuid::Uuid::new_v4().simple()
        ));
        std::fs::create_dir_all(&path).unwrap();
        Self(path)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A throwaway PostgreSQL server (`scripts/postgres.sh`), stopped and
/// removed when dropped.
struct Postgres {
    dir: PathBuf,
    url: String,
}

impl Postgres {
    fn start(scratch: &Scratch) -> Self {
        let dir = scratch.0.join("pg");
        let url = postgres_script("start", &dir);
        Self { dir, url }
    }

    /// Stops the server, keeping its data (`postgres.sh halt`).
    fn halt(&self) {
        postgres_script("halt", &self.dir);
    }

    /// Starts it again on the same port (`postgres.sh resume`).
    fn resume(&self) {
        postgres_script("resume", &self.dir);
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        postgres_script("stop", &self.dir);
    }
}

fn postgres_script(command: &str, dir: &Path) -> String {
    let out = Command::new(repo_root().join("scripts/postgres.sh"))
        .arg(command)
        .arg(dir)
        .output()
        .expect("scripts/postgres.sh runs");
    assert!(
        out.status.success(),
        "postgres.sh {command} failed (PostgreSQL is needed: scripts/deps.sh installs it): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

/// `berth serve` as a child process on a free port, without a controller;
/// SIGKILLed when dropped.
struct Berth {
    child: Child,
    base: String,
    log: PathBuf,
}

impl Berth {
    async fn start(dir: &Path, database_url: &str) -> Self {
        Self::start_on(dir, database_url, &dir.join("no-such-kubeconfig")).await
    }

    /// `berth serve` managing the cluster of `kubeconfig`, without a
    /// controller (the tests run theirs on their own lease).
    async fn start_on(dir: &Path, database_url: &str, kubeconfig: &Path) -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let log = dir.join(format!("berth-{port}.log"));
        let file = std::fs::File::create(&log).unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_berth"))
            .arg("serve")
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("HOME", dir)
            .env("BERTH_LISTEN", format!("127.0.0.1:{port}"))
            .env("BERTH_KUBE_LISTEN", "127.0.0.1:0")
            .env("BERTH_DATABASE_URL", database_url)
            .env("KUBECONFIG", kubeconfig)
            .env("BERTH_NO_CONTROLLER", "true")
            .env("BERTH_ADMIN_EMAIL", ADMIN_EMAIL)
            .env("BERTH_ADMIN_PASSWORD", ADMIN_PASSWORD)
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(file.try_clone().unwrap())
            .stderr(file)
            .spawn()
            .expect("berth serve starts");
        let berth = Self {
            child,
            base: format!("http://127.0.0.1:{port}"),
            log,
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
                "berth serve did not answer /healthz within 60 s:\n{}",
                berth.logs()
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

    /// SIGKILL: no handler runs, nothing is flushed or closed.
    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// A personal access token of the first admin.
    async fn admin_token(&self) -> String {
        let client = Client::builder().cookie_store(true).build().unwrap();
        let login = client
            .post(self.url("/api/v1/auth/login"))
            .json(&json!({"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD}))
            .send()
            .await
            .unwrap();
        assert_eq!(login.status(), StatusCode::OK, "{}", self.logs());
        let csrf = login
            .headers()
            .get_all("set-cookie")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find_map(|v| v.strip_prefix("berth_csrf="))
            .and_then(|v| v.split(';').next())
            .expect("a CSRF cookie")
            .to_owned();
        let created: Value = client
            .post(self.url("/api/v1/tokens"))
            .header("x-csrf-token", csrf)
            .json(&json!({"name": "faults"}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        created["token"].as_str().expect("a token").to_owned()
    }
}

impl Drop for Berth {
    fn drop(&mut self) {
        self.kill();
    }
}

/// What one write got.
#[derive(Debug)]
enum Outcome {
    /// 201: the token `id` exists from now on.
    Acknowledged { id: String, secret: String },
    /// 503 `unavailable` with Retry-After.
    Unavailable,
    /// No answer (the server died): it may or may not have happened.
    NoAnswer,
    /// Anything else: a failure of the test.
    Wrong(String),
}

/// Creates one token as `token`'s holder and classifies the answer.
async fn create_token(client: &Client, base: &str, token: &str, name: &str) -> Outcome {
    let sent = client
        .post(format!("{base}/api/v1/tokens"))
        .bearer_auth(token)
        .json(&json!({"name": name}))
        .timeout(Duration::from_secs(20))
        .send()
        .await;
    let response = match sent {
        Ok(r) => r,
        Err(_) => return Outcome::NoAnswer,
    };
    let status = response.status();
    let retry_after = response.headers().get("retry-after").cloned();
    let body: Value = match response.json().await {
        Ok(b) => b,
        Err(_) => return Outcome::NoAnswer,
    };
    match status {
        StatusCode::CREATED => Outcome::Acknowledged {
            id: body["id"].as_str().unwrap().to_owned(),
            secret: body["token"].as_str().unwrap().to_owned(),
        },
        StatusCode::SERVICE_UNAVAILABLE
            if body["error"]["code"] == "unavailable" && retry_after.is_some() =>
        {
            Outcome::Unavailable
        }
        other => Outcome::Wrong(format!(
            "{name}: {other} {body} retry-after={retry_after:?}"
        )),
    }
}

/// `writers` tasks creating tokens until `stop`; each outcome with the time
/// it was answered.
fn write_traffic(
    base: &str,
    token: &str,
    writers: usize,
    stop: Arc<AtomicBool>,
) -> Vec<tokio::task::JoinHandle<Vec<(Instant, Outcome)>>> {
    (0..writers)
        .map(|w| {
            let (base, token, stop) = (base.to_owned(), token.to_owned(), stop.clone());
            tokio::spawn(async move {
                let client = Client::new();
                let mut outcomes = Vec::new();
                let mut n = 0;
                while !stop.load(Ordering::Relaxed) {
                    let outcome = create_token(&client, &base, &token, &format!("w{w}-{n}")).await;
                    let died = matches!(outcome, Outcome::NoAnswer);
                    outcomes.push((Instant::now(), outcome));
                    n += 1;
                    if died {
                        break;
                    }
                }
                outcomes
            })
        })
        .collect()
}

async fn collect(
    tasks: Vec<tokio::task::JoinHandle<Vec<(Instant, Outcome)>>>,
) -> Vec<(Instant, Outcome)> {
    let mut all = Vec::new();
    for task in tasks {
        all.extend(task.await.unwrap());
    }
    all
}

/// The ids of the tokens `token`'s holder has, as the API lists them.
async fn listed_tokens(base: &str, token: &str) -> BTreeSet<String> {
    let list: Value = Client::new()
        .get(format!("{base}/api/v1/tokens"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let items = list["items"]
        .as_array()
        .or(list.as_array())
        .unwrap_or_else(|| panic!("a token list: {list}"));
    items
        .iter()
        .map(|t| t["id"].as_str().unwrap().to_owned())
        .collect()
}

async fn status_of(url: &str, token: Option<&str>) -> (StatusCode, Value, bool) {
    let mut request = Client::new().get(url).timeout(Duration::from_secs(20));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.unwrap();
    let status = response.status();
    let retry_after = response.headers().contains_key("retry-after");
    let body = response.json().await.unwrap_or(Value::Null);
    (status, body, retry_after)
}

#[tokio::test]
async fn postgres_stopped_under_writes_answers_503_and_recovers_by_itself_losing_nothing() {
    let scratch = Scratch::new("pg-outage");
    let postgres = Postgres::start(&scratch);
    let berth = Berth::start(&scratch.0, &postgres.url).await;
    let token = berth.admin_token().await;

    let stop = Arc::new(AtomicBool::new(false));
    let writers = write_traffic(&berth.base, &token, 4, stop.clone());
    tokio::time::sleep(Duration::from_millis(500)).await;
    postgres.halt();
    let halted = Instant::now();

    // During the outage: writes and authenticated reads 503 with
    // Retry-After (credentials are checked against the store on every
    // request, so that a revoked token stops at once); the process itself,
    // its readiness naming the store and the metrics from its caches answer.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (status, body, retry_after) = status_of(&berth.url("/readyz"), None).await;
        if status == StatusCode::SERVICE_UNAVAILABLE {
            assert!(retry_after, "/readyz 503 without Retry-After");
            assert!(body.to_string().contains("store"), "{body}");
            break;
        }
        assert!(Instant::now() < deadline, "/readyz still {status} {body}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (status, body, retry_after) = status_of(&berth.url("/api/v1/me"), Some(&token)).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(body["error"]["code"], "unavailable", "{body}");
    assert!(retry_after, "a 503 without Retry-After");
    assert_eq!(
        status_of(&berth.url("/healthz"), None).await.0,
        StatusCode::OK
    );
    assert_eq!(
        status_of(&berth.url("/metrics"), None).await.0,
        StatusCode::OK
    );
    // Long enough for pooled connections to be found dead and new ones refused.
    tokio::time::sleep(Duration::from_secs(2)).await;

    postgres.resume();
    let resumed = Instant::now();
    let deadline = resumed + Duration::from_secs(30);
    let recovered = loop {
        // Without a cluster, /readyz stays 503 for the cluster alone.
        let (_, readiness, _) = status_of(&berth.url("/readyz"), None).await;
        let store_down = readiness["error"]["details"]
            .as_array()
            .is_some_and(|d| d.iter().any(|f| f["field"] == "store"));
        if !store_down
            && matches!(
                create_token(&Client::new(), &berth.base, &token, "probe").await,
                Outcome::Acknowledged { .. }
            )
        {
            break resumed.elapsed();
        }
        assert!(
            Instant::now() < deadline,
            "Berth did not recover within 30 s of PostgreSQL's return:\n{}",
            berth.logs()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.store(true, Ordering::Relaxed);
    let outcomes = collect(writers).await;

    let wrong: Vec<_> = outcomes
        .iter()
        .filter_map(|(_, o)| match o {
            Outcome::Wrong(what) => Some(what.clone()),
            Outcome::NoAnswer => Some("no answer".into()),
            _ => None,
        })
        .collect();
    assert!(wrong.is_empty(), "answers other than 201 or 503: {wrong:?}");
    let unavailable = outcomes
        .iter()
        .filter(|(_, o)| matches!(o, Outcome::Unavailable))
        .count();
    assert!(unavailable > 0, "no write was refused during the outage");
    let acknowledged: BTreeSet<String> = outcomes
        .iter()
        .filter_map(|(_, o)| match o {
            Outcome::Acknowledged { id, .. } => Some(id.clone()),
            _ => None,
        })
        .collect();
    let after_outage = outcomes
        .iter()
        .filter(|(at, o)| *at > resumed && matches!(o, Outcome::Acknowledged { .. }))
        .count();
    assert!(after_outage > 0, "no write succeeded after the outage");
    let listed = listed_tokens(&berth.base, &token).await;
    let lost: Vec<_> = acknowledged.difference(&listed).collect();
    assert!(lost.is_empty(), "acknowledged writes lost: {lost:?}");
    let writes_during: usize = outcomes
        .iter()
        .filter(|(at, _)| *at > halted && *at < resumed)
        .count();
    println!(
        "PostgreSQL outage: {} writes acknowledged, {unavailable} answered 503 ({writes_during} during the outage), \
         0 lost; recovered {recovered:?} after PostgreSQL was back",
        acknowledged.len()
    );
    assert!(
        recovered < Duration::from_secs(10),
        "recovery took {recovered:?}"
    );
}

/// SIGKILLs `berth serve` on `database_url` while 8 writers create tokens,
/// starts it again on the same database and checks that every acknowledged
/// write is there with its audit entry; returns how long the restart took
/// to answer.
async fn killed_mid_writes(scratch: &Scratch, database_url: &str) -> Duration {
    let mut berth = Berth::start(&scratch.0, database_url).await;
    let token = berth.admin_token().await;
    let stop = Arc::new(AtomicBool::new(false));
    let writers = write_traffic(&berth.base, &token, 8, stop.clone());
    // Kill once writes are flowing, in the middle of them.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let answered = listed_tokens(&berth.base, &token).await.len();
        if answered > 30 {
            break;
        }
        assert!(Instant::now() < deadline, "writes did not flow: {answered}");
    }
    berth.kill();
    let killed = Instant::now();
    let outcomes = collect(writers).await;
    stop.store(true, Ordering::Relaxed);

    let berth = Berth::start(&scratch.0, database_url).await;
    let restarted = killed.elapsed();
    let wrong: Vec<_> = outcomes
        .iter()
        .filter_map(|(_, o)| match o {
            Outcome::Wrong(what) => Some(what.clone()),
            _ => None,
        })
        .collect();
    assert!(wrong.is_empty(), "{wrong:?}");
    let acknowledged: BTreeMap<String, String> = outcomes
        .iter()
        .filter_map(|(_, o)| match o {
            Outcome::Acknowledged { id, secret } => Some((id.clone(), secret.clone())),
            _ => None,
        })
        .collect();
    let in_flight = outcomes
        .iter()
        .filter(|(_, o)| matches!(o, Outcome::NoAnswer))
        .count();

    // Every acknowledged token is there and works.
    let listed = listed_tokens(&berth.base, &token).await;
    for (id, secret) in &acknowledged {
        assert!(listed.contains(id), "acknowledged token {id} lost");
        let (status, body, _) = status_of(&berth.url("/api/v1/me"), Some(secret)).await;
        assert_eq!(
            status,
            StatusCode::OK,
            "token {id} after the restart: {body}"
        );
    }

    // In the database: every acknowledged token has its audit entry, and
    // every audit entry names a token that exists (the audit entry is
    // written after the token, so an entry never outlives its write).
    sqlx::any::install_default_drivers();
    let pool = sqlx::AnyPool::connect(database_url).await.unwrap();
    let tokens: BTreeSet<String> = sqlx::query("SELECT id FROM api_tokens")
        .fetch_all(&pool)
        .await
        .unwrap()
        .iter()
        .map(|r| r.get::<String, _>(0))
        .collect();
    let audited: BTreeSet<String> =
        sqlx::query("SELECT target FROM audit_log WHERE action = 'token.create'")
            .fetch_all(&pool)
            .await
            .unwrap()
            .iter()
            .filter_map(|r| {
                r.get::<String, _>(0)
                    .strip_prefix("token/")
                    .map(str::to_owned)
            })
            .collect();
    for id in acknowledged.keys() {
        assert!(
            audited.contains(id),
            "token {id} acknowledged without its audit entry"
        );
    }
    let orphans: Vec<_> = audited.difference(&tokens).collect();
    assert!(
        orphans.is_empty(),
        "audit entries of tokens that do not exist: {orphans:?}"
    );
    if database_url.starts_with("sqlite:") {
        let check: String = sqlx::query("PRAGMA integrity_check")
            .fetch_one(&pool)
            .await
            .unwrap()
            .get(0);
        assert_eq!(check, "ok", "SQLite integrity check after SIGKILL");
    }
    pool.close().await;
    let unaudited = tokens.difference(&audited).count();
    println!(
        "SIGKILL on {}: {} writes acknowledged, 0 lost; {in_flight} in flight at the kill; \
         {unaudited} token(s) without their audit entry (in flight); restart answered {restarted:?} after the kill",
        database_url.split(':').next().unwrap(),
        acknowledged.len(),
    );
    restarted
}

#[tokio::test]
async fn sigkill_in_the_middle_of_writes_loses_nothing_acknowledged_on_sqlite_and_postgres() {
    let scratch = Scratch::new("sigkill");
    let sqlite = format!("sqlite://{}", scratch.0.join("berth.db").display());
    killed_mid_writes(&scratch, &sqlite).await;
    let postgres = Postgres::start(&scratch);
    killed_mid_writes(&scratch, &postgres.url).await;
}

/// The fenced block ```` ```sh tested:<name> ```` of `docs/runbooks/<file>`,
/// as the runbook shows it.
fn runbook_block(file: &str, name: &str) -> String {
    let path = repo_root().join("docs/runbooks").join(file);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let fence = format!("```sh tested:{name}");
    let start = text
        .lines()
        .position(|l| l.trim() == fence)
        .unwrap_or_else(|| panic!("{file} has no block {fence}"));
    text.lines()
        .skip(start + 1)
        .take_while(|l| l.trim() != "```")
        .collect::<Vec<_>>()
        .join("\n")
}

/// Runs a runbook block with bash (`-euo pipefail`), `kubectl` of the local
/// cluster on the PATH and `vars` set; returns its standard output.
fn run_block(file: &str, name: &str, vars: &[(&str, &str)]) -> String {
    let block = runbook_block(file, name);
    let path = format!(
        "{}:{}",
        repo_root().join(".berth/bin").display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let out = Command::new("bash")
        .args(["-euo", "pipefail", "-c", &block])
        .env("PATH", path)
        .envs(vars.iter().copied())
        .output()
        .expect("bash runs");
    assert!(
        out.status.success(),
        "{file} block {name} failed:\n{block}\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn every_alert_names_a_runbook_that_exists() {
    let rules = repo_root().join("deploy/prometheus/berth-alerts.yml");
    let rules: serde_yaml::Value =
        serde_yaml::from_str(&std::fs::read_to_string(&rules).unwrap()).unwrap();
    let mut alerts = 0;
    for group in rules["groups"].as_sequence().unwrap() {
        for rule in group["rules"].as_sequence().unwrap() {
            let Some(alert) = rule["alert"].as_str() else {
                continue;
            };
            alerts += 1;
            let url = rule["annotations"]["runbook_url"]
                .as_str()
                .unwrap_or_else(|| panic!("{alert} has no runbook_url"));
            let file = repo_root().join(url);
            assert!(
                url.starts_with("docs/runbooks/") && file.is_file(),
                "{alert}: runbook {url} does not exist"
            );
            let text = std::fs::read_to_string(&file).unwrap();
            assert!(text.contains(alert), "{url} does not name {alert}");
        }
    }
    assert!(alerts >= 4, "only {alerts} alerts found");
}

/// A token created as `token`'s holder, which must succeed.
async fn token_named(berth: &Berth, token: &str, name: &str) -> String {
    match create_token(&Client::new(), &berth.base, token, name).await {
        Outcome::Acknowledged { id, .. } => id,
        other => panic!("creating token {name}: {other:?}"),
    }
}

#[tokio::test]
async fn database_backup_and_restore_as_the_runbook_says_on_sqlite_and_postgres() {
    let scratch = Scratch::new("restore");
    let runbook = "restore-database.md";

    // SQLite: the online backup while Berth serves, the restore while stopped.
    let db = scratch.0.join("berth.db");
    let backup = scratch.0.join("backup.db");
    let url = format!("sqlite://{}", db.display());
    let (db, backup) = (db.to_str().unwrap(), backup.to_str().unwrap());
    let mut berth = Berth::start(&scratch.0, &url).await;
    let token = berth.admin_token().await;
    let before = token_named(&berth, &token, "before-backup").await;
    let checked = run_block(
        runbook,
        "sqlite-backup",
        &[("BERTH_DB", db), ("BACKUP", backup)],
    );
    assert_eq!(checked.trim(), "ok");
    let after = token_named(&berth, &token, "after-backup").await;
    berth.kill();
    run_block(
        runbook,
        "sqlite-restore",
        &[("BERTH_DB", db), ("BACKUP", backup)],
    );
    let berth = Berth::start(&scratch.0, &url).await;
    let listed = listed_tokens(&berth.base, &token).await;
    assert!(
        listed.contains(&before),
        "SQLite: the write before the backup is not back"
    );
    assert!(
        !listed.contains(&after),
        "SQLite: a write after the backup survived the restore"
    );
    drop(berth);

    // PostgreSQL: pg_dump while Berth serves, pg_restore into the same database.
    let postgres = Postgres::start(&scratch);
    let backup = scratch.0.join("berth.dump");
    let backup = backup.to_str().unwrap();
    let mut berth = Berth::start(&scratch.0, &postgres.url).await;
    let token = berth.admin_token().await;
    let before = token_named(&berth, &token, "before-backup").await;
    let vars = [("DATABASE_URL", postgres.url.as_str()), ("BACKUP", backup)];
    run_block(runbook, "postgres-backup", &vars);
    let after = token_named(&berth, &token, "after-backup").await;
    berth.kill();
    run_block(runbook, "postgres-restore", &vars);
    let berth = Berth::start(&scratch.0, &postgres.url).await;
    let listed = listed_tokens(&berth.base, &token).await;
    assert!(
        listed.contains(&before),
        "PostgreSQL: the write before the backup is not back"
    );
    assert!(
        !listed.contains(&after),
        "PostgreSQL: a write after the backup survived the restore"
    );
}

/// One `berth controller` process on the local cluster, electing leaders on
/// its own Lease and reconciling only the Environments of one run;
/// SIGKILLed when dropped.
struct Controller {
    child: Child,
}

impl Controller {
    fn start(kubeconfig: &Path, run: &str, identity: &str, log_dir: &Path) -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let log = std::fs::File::create(log_dir.join(format!("{identity}.log"))).unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_berth"))
            .arg("controller")
            .arg("--kubeconfig")
            .arg(kubeconfig)
            .args(["--identity", identity, "--lease-name", &lease_name(run)])
            .args(["--selector", &format!("{RUN_LABEL}={run}")])
            .args(["--metrics-listen", &format!("127.0.0.1:{port}")])
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("berth controller starts");
        Self { child }
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Controller {
    fn drop(&mut self) {
        self.kill();
    }
}

const RUN_LABEL: &str = "berth.dev/test-run";

fn lease_name(run: &str) -> String {
    format!("berth-faults-{run}")
}

async fn local_cluster() -> berth_testkit::Cluster {
    berth_testkit::cluster()
        .await
        .unwrap_or_else(|e| panic!("the local cluster is needed and did not start: {e:#}"))
}

#[tokio::test]
async fn a_follower_takes_the_lease_when_the_leader_dies_as_the_runbook_checks_it() {
    let cluster = local_cluster().await;
    let scratch = Scratch::new("leader");
    let run = uuid::Uuid::new_v4().simple().to_string()[..10].to_owned();
    let kubeconfig = cluster.kubeconfig();
    let kubeconfig_text = kubeconfig.display().to_string();
    let lease = lease_name(&run);
    let vars = [
        ("KUBECONFIG", kubeconfig_text.as_str()),
        ("LEASE_NAMESPACE", "kube-system"),
        ("LEASE_NAME", lease.as_str()),
    ];
    let holder = || {
        run_block("controller-not-leading.md", "leader", &vars)
            .split_whitespace()
            .next()
            .unwrap_or_default()
            .to_owned()
    };
    let mut first = Controller::start(&kubeconfig, &run, &format!("a-{run}"), &scratch.0);
    let mut second = Controller::start(&kubeconfig, &run, &format!("b-{run}"), &scratch.0);
    let deadline = Instant::now() + Duration::from_secs(60);
    let leader = loop {
        let out = std::process::Command::new(repo_root().join(".berth/bin/kubectl"))
            .args([
                "--kubeconfig",
                &kubeconfig_text,
                "-n",
                "kube-system",
                "get",
                "lease",
                &lease,
            ])
            .output()
            .unwrap();
        if out.status.success() {
            let holder = holder();
            if !holder.is_empty() {
                break holder;
            }
        }
        assert!(
            Instant::now() < deadline,
            "no replica took the lease within 60 s"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let survivor = if leader == format!("a-{run}") {
        first.kill();
        format!("b-{run}")
    } else {
        second.kill();
        format!("a-{run}")
    };
    let killed = Instant::now();
    let deadline = killed + Duration::from_secs(30);
    let took_over = loop {
        if holder() == survivor {
            break killed.elapsed();
        }
        assert!(
            Instant::now() < deadline,
            "{survivor} did not take the lease within 30 s"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    println!(
        "leader takeover: {survivor} holds the lease {took_over:?} after the leader's SIGKILL"
    );
    assert!(
        took_over <= Duration::from_secs(15),
        "takeover took {took_over:?}, beyond the lease duration and a retry"
    );
    let _ = kube::Api::<k8s_openapi::api::coordination::v1::Lease>::namespaced(
        cluster.client(),
        "kube-system",
    )
    .delete(&lease, &Default::default())
    .await;
}

/// Applies an Environment of `run` as `kubectl apply` would, through `client`.
async fn apply_environment(client: &kube::Client, run: &str, name: &str) {
    let body = json!({
        "apiVersion": "berth.dev/v1alpha1", "kind": "Environment",
        "metadata": {"name": name, "labels": {RUN_LABEL: run}},
        "spec": {"template": "small"},
    });
    let api = kube::Api::<berth_manifests::Environment>::all(client.clone());
    berth_testkit::eventually(Duration::from_secs(30), || async {
        api.patch(
            name,
            &kube::api::PatchParams::apply("kubectl").force(),
            &kube::api::Patch::Apply(&body),
        )
        .await
        .map_err(anyhow::Error::from)
    })
    .await
    .unwrap_or_else(|e| panic!("applying Environment {name}: {e:#}"));
}

/// Waits until the Environment `name` is Ready as the cluster says.
async fn ready_in_cluster(client: &kube::Client, name: &str, timeout: Duration) {
    let api = kube::Api::<berth_manifests::Environment>::all(client.clone());
    berth_testkit::eventually(timeout, || async {
        let env = api.get(name).await?;
        match env.status.and_then(|s| s.phase) {
            Some(berth_manifests::Phase::Ready) => Ok(()),
            other => anyhow::bail!("{name} is {other:?}"),
        }
    })
    .await
    .unwrap_or_else(|e| panic!("{e:#}"));
}

#[tokio::test]
async fn an_environment_stuck_deleting_goes_with_the_runbooks_commands() {
    use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
    let cluster = local_cluster().await;
    let client = cluster.client();
    let scratch = Scratch::new("stuck");
    let run = uuid::Uuid::new_v4().simple().to_string()[..10].to_owned();
    let _controller =
        Controller::start(&cluster.kubeconfig(), &run, &format!("c-{run}"), &scratch.0);
    let name = format!("stuck-{run}");
    apply_environment(&client, &run, &name).await;
    ready_in_cluster(&client, &name, Duration::from_secs(90)).await;

    // An object whose operator is gone for good holds the namespace.
    let held: ConfigMap = serde_json::from_value(json!({
        "metadata": {"name": "held", "finalizers": ["example.com/operator-long-gone"]},
    }))
    .unwrap();
    kube::Api::<ConfigMap>::namespaced(client.clone(), &name)
        .create(&Default::default(), &held)
        .await
        .unwrap();
    let environments = kube::Api::<berth_manifests::Environment>::all(client.clone());
    environments
        .delete(&name, &Default::default())
        .await
        .unwrap();
    // Stuck: the namespace terminates but keeps the object, and the
    // Environment waits for it.
    berth_testkit::eventually(Duration::from_secs(60), || async {
        let namespace = kube::Api::<Namespace>::all(client.clone())
            .get(&name)
            .await?;
        let remaining = namespace
            .status
            .and_then(|s| s.conditions)
            .unwrap_or_default()
            .iter()
            .any(|c| c.type_ == "NamespaceFinalizersRemaining" && c.status == "True");
        anyhow::ensure!(remaining, "the namespace is not held by finalizers yet");
        anyhow::Ok(())
    })
    .await
    .unwrap_or_else(|e| panic!("{e:#}"));
    let env = environments.get(&name).await.unwrap();
    assert!(env.metadata.deletion_timestamp.is_some());

    let kubeconfig = cluster.kubeconfig().display().to_string();
    let started = Instant::now();
    let out = run_block(
        "environment-stuck-deleting.md",
        "stuck-deletion",
        &[("KUBECONFIG", &kubeconfig), ("ENV", &name), ("NS", &name)],
    );
    assert!(out.contains("ConfigMap/held"), "{out}");
    assert!(
        environments.get_opt(&name).await.unwrap().is_none(),
        "the Environment is still there"
    );
    println!(
        "stuck deletion: gone {:?} after the runbook's commands",
        started.elapsed()
    );
    let _ =
        kube::Api::<k8s_openapi::api::coordination::v1::Lease>::namespaced(client, "kube-system")
            .delete(&lease_name(&run), &Default::default())
            .await;
}

/// A second kube-apiserver of the shared local cluster: the same etcd,
/// certificates and flags as the cluster's own, on a port of its own. Berth
/// is pointed at it alone, so this test can kill and restart an apiserver
/// while the cluster's own (and every other test using it) runs on. The
/// local cluster's supervisor stops the whole cluster when its apiserver
/// exits, and `up` starts from an empty state, so restarting that one would
/// fail every other test running meanwhile. SIGKILLed when dropped.
struct SecondApiserver {
    exe: PathBuf,
    args: Vec<String>,
    log: PathBuf,
    child: Option<Child>,
    kubeconfig: PathBuf,
}

impl SecondApiserver {
    async fn start(dir: &Path) -> Self {
        let cluster_dir = repo_root().join(".berth/cluster");
        let pid = std::fs::read_to_string(cluster_dir.join("apiserver.pid"))
            .expect("the local cluster's apiserver.pid");
        let cmdline = std::fs::read(format!("/proc/{}/cmdline", pid.trim()))
            .expect("the local cluster's apiserver runs");
        let mut parts = cmdline
            .split(|b| *b == 0)
            .filter(|p| !p.is_empty())
            .map(|p| String::from_utf8_lossy(p).into_owned());
        let exe = PathBuf::from(parts.next().unwrap());
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut own_port = None;
        let args: Vec<String> = parts
            .map(|arg| match arg.strip_prefix("--secure-port=") {
                Some(old) => {
                    own_port = Some(old.to_owned());
                    format!("--secure-port={port}")
                }
                None => arg,
            })
            .collect();
        let own_port = own_port.expect("the apiserver's --secure-port");
        let admin = std::fs::read_to_string(cluster_dir.join("kubeconfig")).unwrap();
        let kubeconfig = dir.join("second-apiserver.kubeconfig");
        std::fs::write(
            &kubeconfig,
            admin.replace(
                &format!("https://127.0.0.1:{own_port}"),
                &format!("https://127.0.0.1:{port}"),
            ),
        )
        .unwrap();
        let mut apiserver = Self {
            exe,
            args,
            log: dir.join("second-apiserver.log"),
            child: None,
            kubeconfig,
        };
        apiserver.run().await;
        apiserver
    }

    /// Starts the process and waits until it is ready; returns how long that took.
    async fn run(&mut self) -> Duration {
        let started = Instant::now();
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .unwrap();
        self.child = Some(
            Command::new(&self.exe)
                .args(&self.args)
                .stdin(Stdio::null())
                .stdout(log.try_clone().unwrap())
                .stderr(log)
                .spawn()
                .expect("the second apiserver starts"),
        );
        let kubectl = repo_root().join(".berth/bin/kubectl");
        let deadline = started + Duration::from_secs(90);
        loop {
            let ready = Command::new(&kubectl)
                .arg("--kubeconfig")
                .arg(&self.kubeconfig)
                .args(["get", "--raw", "/readyz", "--request-timeout=2s"])
                .output()
                .is_ok_and(|o| o.status.success());
            if ready {
                return started.elapsed();
            }
            assert!(
                Instant::now() < deadline,
                "the second apiserver was not ready within 90 s:\n{}",
                std::fs::read_to_string(&self.log).unwrap_or_default()
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for SecondApiserver {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The phase of environment `name` as Berth's API answers it, or the status.
async fn api_phase(berth: &Berth, token: &str, name: &str) -> Result<String, StatusCode> {
    let (status, body, _) = status_of(
        &berth.url(&format!("/api/v1/environments/{name}")),
        Some(token),
    )
    .await;
    if status != StatusCode::OK {
        return Err(status);
    }
    Ok(body["status"]["phase"]
        .as_str()
        .unwrap_or_default()
        .to_owned())
}

#[tokio::test]
async fn the_apiserver_restarted_under_reads_berth_serves_its_cache_and_converges() {
    let cluster = local_cluster().await;
    let shared = cluster.client();
    let scratch = Scratch::new("apiserver");
    let run = uuid::Uuid::new_v4().simple().to_string()[..10].to_owned();
    let mut apiserver = SecondApiserver::start(&scratch.0).await;
    let database = format!("sqlite://{}", scratch.0.join("berth.db").display());
    let berth = Berth::start_on(&scratch.0, &database, &apiserver.kubeconfig).await;
    let mut controller =
        Controller::start(&apiserver.kubeconfig, &run, &format!("c-{run}"), &scratch.0);
    let token = berth.admin_token().await;

    let before = format!("before-{run}");
    apply_environment(&shared, &run, &before).await;
    let deadline = Instant::now() + Duration::from_secs(90);
    while api_phase(&berth, &token, &before).await != Ok("Ready".into()) {
        assert!(
            Instant::now() < deadline,
            "{before} not Ready through Berth within 90 s"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // Reads of the environment, all along.
    let stop = Arc::new(AtomicBool::new(false));
    let reader = {
        let (stop, base, token, before) = (
            stop.clone(),
            berth.base.clone(),
            token.clone(),
            before.clone(),
        );
        tokio::spawn(async move {
            let client = Client::new();
            let (mut ok, mut failed) = (0, Vec::new());
            while !stop.load(Ordering::Relaxed) {
                let response = client
                    .get(format!("{base}/api/v1/environments/{before}"))
                    .bearer_auth(&token)
                    .timeout(Duration::from_secs(5))
                    .send()
                    .await;
                match response {
                    Ok(r) if r.status() == StatusCode::OK => ok += 1,
                    Ok(r) => failed.push(r.status().to_string()),
                    Err(e) => failed.push(e.to_string()),
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            (ok, failed)
        })
    };

    apiserver.kill();
    let killed = Instant::now();
    let deadline = killed + Duration::from_secs(30);
    let noticed = loop {
        let (status, body, _) = status_of(&berth.url("/readyz"), None).await;
        if status == StatusCode::SERVICE_UNAVAILABLE {
            assert!(body.to_string().contains("cluster"), "{body}");
            break killed.elapsed();
        }
        assert!(
            Instant::now() < deadline,
            "/readyz still {status} with the apiserver down"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    // Created while Berth's apiserver is down (through the cluster's own).
    let during = format!("during-{run}");
    apply_environment(&shared, &run, &during).await;
    tokio::time::sleep(Duration::from_secs(3)).await;

    let restart = apiserver.run().await;
    let back = Instant::now();
    let deadline = back + Duration::from_secs(60);
    let ready_again = loop {
        if status_of(&berth.url("/readyz"), None).await.0 == StatusCode::OK {
            break back.elapsed();
        }
        assert!(
            Instant::now() < deadline,
            "/readyz not 200 within 60 s of the apiserver's return"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let deadline = back + Duration::from_secs(90);
    let converged = loop {
        if api_phase(&berth, &token, &during).await == Ok("Ready".into()) {
            break back.elapsed();
        }
        if Instant::now() >= deadline {
            // What the controller and Berth said, to tell a stuck watch
            // from a controller that never led again.
            let log = |file: PathBuf| {
                let text = std::fs::read_to_string(file).unwrap_or_default();
                let lines: Vec<&str> = text.lines().collect();
                lines[lines.len().saturating_sub(40)..].join("\n")
            };
            panic!(
                "{during} not Ready through Berth within 90 s of the apiserver's return: {:?}\n\
                 controller log:\n{}\nberth log:\n{}",
                api_phase(&berth, &token, &during).await,
                log(scratch.0.join(format!("c-{run}.log"))),
                log(berth.log.clone()),
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    stop.store(true, Ordering::Relaxed);
    let (reads, failed) = reader.await.unwrap();
    assert!(
        failed.is_empty(),
        "cached reads failed during the outage: {failed:?}"
    );
    println!(
        "apiserver restart: /readyz said cluster down {noticed:?} after the kill; the apiserver took {restart:?} to start; \
         /readyz 200 {ready_again:?} and the environment created during the outage Ready {converged:?} after it was back; \
         {reads} cached reads, 0 failed"
    );

    // Clean up while the controller still runs (it removes its finalizer).
    let environments = kube::Api::<berth_manifests::Environment>::all(shared.clone());
    for name in [&before, &during] {
        let _ = environments.delete(name, &Default::default()).await;
    }
    let _ = berth_testkit::eventually(Duration::from_secs(90), || async {
        for name in [&before, &during] {
            anyhow::ensure!(
                environments.get_opt(name).await?.is_none(),
                "{name} remains"
            );
        }
        anyhow::Ok(())
    })
    .await;
    controller.kill();
    let _ =
        kube::Api::<k8s_openapi::api::coordination::v1::Lease>::namespaced(shared, "kube-system")
            .delete(&lease_name(&run), &Default::default())
            .await;
}
