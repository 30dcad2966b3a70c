//! Encryption at rest: secrets set through `PUT /api/v1/admin/integrations`
//! are stored only encrypted under `BERTH_ENCRYPTION_KEYS`, answers never
//! echo them, `berth rotate-keys` (as `docs/runbooks/rotate-encryption-keys.md`
//! runs it) moves them to a new key, and the store's files are private.

use berth::config::{Config, ServeArgs};
use berth::serve::Server;
use berth_keyring::{KeyRing, KeyRingError};
use reqwest::{Client, StatusCode};
use serde_json::{Value, json};
use sqlx::Row;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

const ADMIN_EMAIL: &str = "admin@example.com";
const ADMIN_PASSWORD: &str = "admin-password-1";
const HEC_TOKEN: &str = "hec-secret-7d1c9e2a";
const SENTRY_DSN: &str = "https://dsnkey0a9b8c7d@sentry.example.com/42";
/// `openssl rand -base64 32` twice, and a third key of zeros.
const OLD_KEY: &str = "old:VPUaXKG82P1ODV71ZX+udbwwQndnTftGqNGIxVFwZxg=";
const NEW_KEY: &str = "new:osyaJiQJcfy3B7zciC4zt0Bw0XvLvVizkpiOqp8QxSs=";
const OTHER_KEY: &str = "new:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=";

struct Running {
    base: String,
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl Running {
    async fn stop(self) {
        self.stop.send(()).unwrap();
        self.task.await.unwrap().unwrap();
    }
}

/// The configuration `berth serve --config FILE` would load from `extra`
/// (TOML lines) over a test's basics.
fn load(dir: &Path, database_url: &str, extra: &str) -> anyhow::Result<Config> {
    let file = dir.join("berth.toml");
    std::fs::write(
        &file,
        format!(
            "listen = \"127.0.0.1:0\"\nkube_listen = \"127.0.0.1:0\"\n\
             database_url = \"{database_url}\"\nkubeconfig = \"{}\"\n\
             admin_email = \"{ADMIN_EMAIL}\"\nadmin_password = \"{ADMIN_PASSWORD}\"\n\
             no_controller = true\n{extra}",
            dir.join("no-such-kubeconfig").display()
        ),
    )?;
    Config::load(ServeArgs::default(), Some(&file))
}

async fn serve(dir: &Path, database_url: &str, extra: &str) -> Running {
    let server = Server::build(load(dir, database_url, extra).unwrap())
        .await
        .expect("the server starts");
    let base = server.url();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(server.run_until(async {
        let _ = stopped.await;
    }));
    Running { base, stop, task }
}

/// A personal access token of the admin, made with a login's session.
async fn admin_token(base: &str) -> String {
    let browser = Client::builder().cookie_store(true).build().unwrap();
    let login = browser
        .post(format!("{base}/api/v1/auth/login"))
        .json(&json!({"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD}))
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
    let created: Value = browser
        .post(format!("{base}/api/v1/tokens"))
        .header("x-csrf-token", csrf)
        .json(&json!({"name": "at-rest"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    created["token"].as_str().unwrap().to_owned()
}

async fn put(base: &str, token: &str, body: &Value) -> (StatusCode, Value, String) {
    let response = Client::new()
        .put(format!("{base}/api/v1/admin/integrations"))
        .bearer_auth(token)
        .json(body)
        .send()
        .await
        .unwrap();
    let status = response.status();
    let text = response.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap(), text)
}

/// `berth rotate-keys` as the runbook runs it: its exit status and stderr.
fn rotate_keys(database_url: &str, keys: &str) -> (bool, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_berth"))
        .arg("rotate-keys")
        .env("BERTH_DATABASE_URL", database_url)
        .env("BERTH_ENCRYPTION_KEYS", keys)
        .env("RUST_LOG", "warn")
        .output()
        .expect("berth runs");
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// Runs the block `tested:rotate-keys` of the runbook as written, with bash,
/// the `berth` under test first on the PATH; returns its standard error.
fn runbook_rotation(database_url: &str) -> String {
    let runbook =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/runbooks/rotate-encryption-keys.md");
    let text = std::fs::read_to_string(&runbook).unwrap();
    let block: Vec<&str> = text
        .lines()
        .skip_while(|l| l.trim() != "```sh tested:rotate-keys")
        .skip(1)
        .take_while(|l| l.trim() != "```")
        .map(str::trim)
        .collect();
    assert!(
        !block.is_empty(),
        "the runbook has no block tested:rotate-keys"
    );
    let bin = Path::new(env!("CARGO_BIN_EXE_berth")).parent().unwrap();
    let output = Command::new("bash")
        .args(["-euo", "pipefail", "-c", &block.join("\n")])
        .env(
            "PATH",
            format!(
                "{}:{}",
                bin.display(),
                std::env::var("PATH").unwrap_or_default()
            ),
        )
        .env("BERTH_DATABASE_URL", database_url)
        .env("NEW_KEY", NEW_KEY)
        .env("OLD_KEY", OLD_KEY)
        .env("RUST_LOG", "warn")
        .output()
        .expect("bash runs");
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(
        output.status.success(),
        "the runbook's block failed: {stderr}"
    );
    stderr
}

/// The stored rows: name and sealed text, read with SQL as an attacker
/// holding a copy of the database would.
async fn stored(database_url: &str) -> Vec<(String, String)> {
    sqlx::any::install_default_drivers();
    let pool = sqlx::AnyPool::connect(database_url).await.unwrap();
    let rows = sqlx::query("SELECT name, sealed FROM secrets ORDER BY name")
        .fetch_all(&pool)
        .await
        .unwrap();
    pool.close().await;
    rows.iter()
        .map(|row| (row.get("name"), row.get("sealed")))
        .collect()
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[tokio::test]
async fn secrets_are_stored_encrypted_rotated_to_a_new_key_and_never_answered() {
    let dir = tempdir();
    let sqlite = std::env::var("BERTH_TEST_POSTGRES_URL")
        .ok()
        .filter(|u| !u.is_empty())
        .is_none();
    // SQLite in a directory Berth makes, to see the modes it gives both.
    let state_dir = dir.join("state");
    let database_url = if sqlite {
        format!("sqlite://{}/berth.db", state_dir.display())
    } else {
        berth_store::testing::fresh_database_url(&dir).await
    };

    // A bad key ring stops the start, naming the variable, not the key.
    let error = load(&dir, &database_url, "encryption_keys = \"k1:c2hvcnQ=\"\n").unwrap_err();
    let said = format!("{error:#}");
    assert!(said.contains("BERTH_ENCRYPTION_KEYS"), "{said}");
    assert!(!said.contains("c2hvcnQ"), "{said}");

    // Without a key ring, nothing secret can be stored.
    let plain = serve(&dir, &database_url, "").await;
    let token = admin_token(&plain.base).await;
    let (status, body, _) = put(&plain.base, &token, &json!({"splunkHecToken": HEC_TOKEN})).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["error"]["code"], "conflict");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(message.contains("BERTH_ENCRYPTION_KEYS"), "{message}");
    assert!(!message.contains(HEC_TOKEN), "{message}");
    plain.stop().await;
    assert!(stored(&database_url).await.is_empty());

    let running = serve(
        &dir,
        &database_url,
        &format!("encryption_keys = \"{OLD_KEY}\"\n"),
    )
    .await;
    let base = running.base.clone();
    let token = admin_token(&base).await;
    // Bad values are refused naming the field.
    for (field, value) in [("splunkHecToken", ""), ("sentryDsn", "not a dsn")] {
        let (status, body, _) = put(&base, &token, &json!({ field: value })).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        assert_eq!(body["error"]["details"][0]["field"], field, "{body}");
    }
    let (status, body, text) = put(
        &base,
        &token,
        &json!({"splunkHecToken": HEC_TOKEN, "sentryDsn": SENTRY_DSN}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["splunkHecToken"]["stored"], true, "{body}");
    assert_eq!(body["sentryDsn"]["stored"], true, "{body}");
    assert_eq!(body["encryptionKeyId"], "old", "{body}");
    // Timestamps are RFC 3339, as the contract and the document say.
    let updated = body["splunkHecToken"]["updatedAt"]
        .as_str()
        .unwrap_or_default();
    assert!(
        time::OffsetDateTime::parse(updated, &time::format_description::well_known::Rfc3339)
            .is_ok(),
        "{body}"
    );
    let got = Client::new()
        .get(format!("{base}/api/v1/admin/integrations"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for answer in [&text, &got] {
        assert!(!answer.contains(HEC_TOKEN), "{answer}");
        assert!(!answer.contains("dsnkey0a9b8c7d"), "{answer}");
    }
    // Admins only: a member is told it does not exist.
    let member = Client::builder().cookie_store(true).build().unwrap();
    let registered = member
        .post(format!("{base}/api/v1/auth/register"))
        .json(&json!({"email": "member@example.com", "password": "correct horse battery"}))
        .send()
        .await
        .unwrap();
    assert_eq!(registered.status(), StatusCode::CREATED);
    let hidden = member
        .get(format!("{base}/api/v1/admin/integrations"))
        .send()
        .await
        .unwrap();
    assert_eq!(hidden.status(), StatusCode::NOT_FOUND);
    running.stop().await;

    // What is stored is ciphertext under the key named in it.
    let rows = stored(&database_url).await;
    assert_eq!(rows.len(), 2, "{rows:?}");
    for (name, sealed) in &rows {
        assert!(sealed.starts_with("v1:old:"), "{name}: {sealed}");
        assert!(
            !sealed.contains(HEC_TOKEN) && !sealed.contains("dsnkey"),
            "{sealed}"
        );
    }
    if sqlite {
        // Nowhere in the database's files, journal included.
        for file in ["berth.db", "berth.db-wal", "berth.db-shm"] {
            let path = state_dir.join(file);
            if let Ok(bytes) = std::fs::read(&path) {
                let text = String::from_utf8_lossy(&bytes);
                assert!(!text.contains(HEC_TOKEN), "{file} holds the token");
                assert!(!text.contains("dsnkey0a9b8c7d"), "{file} holds the DSN");
                assert_eq!(mode(&path), 0o600, "{file}");
            }
        }
        assert_eq!(mode(&state_dir), 0o700);
        assert_eq!(mode(&state_dir.join("berth.db")), 0o600);
    }

    // The runbook's block: the new key first, the old after it; run twice.
    let said = runbook_rotation(&database_url);
    let first = said.find("2 of 2 stored secrets re-encrypted; all are now under key 'new'");
    let second = said.find("0 of 2 stored secrets re-encrypted");
    assert!(first.is_some() && second > first, "{said}");
    // Now the new key alone opens every secret; the old alone none.
    let new = KeyRing::parse(NEW_KEY).unwrap();
    let old = KeyRing::parse(OLD_KEY).unwrap();
    let wrong = KeyRing::parse(OTHER_KEY).unwrap();
    for (name, sealed) in stored(&database_url).await {
        assert!(sealed.starts_with("v1:new:"), "{sealed}");
        let plain = String::from_utf8(new.open(&name, &sealed).unwrap()).unwrap();
        assert!([HEC_TOKEN, SENTRY_DSN].contains(&plain.as_str()), "{name}");
        assert!(matches!(
            old.open(&name, &sealed),
            Err(KeyRingError::UnknownKey { .. })
        ));
        let error = wrong.open(&name, &sealed).unwrap_err();
        assert!(matches!(error, KeyRingError::Decrypt { .. }), "{error}");
    }
    // A ring without the key the secrets are under is refused clearly.
    let (ok, said) = rotate_keys(&database_url, OLD_KEY.replace("old:", "older:").as_str());
    assert!(!ok);
    assert!(
        said.contains("splunk_hec_token") && said.contains("'new'"),
        "{said}"
    );
    // A wrong key under the right id: said as such, nothing changed.
    let (ok, said) = rotate_keys(
        &database_url,
        &format!("next:{},{OTHER_KEY}", &NEW_KEY[4..]),
    );
    assert!(!ok);
    assert!(said.contains("does not decrypt with key 'new'"), "{said}");
    // The same wrong key first: the secrets already under 'new' are opened
    // too, so the run fails now rather than every replica's next start.
    let (ok, said) = rotate_keys(&database_url, OTHER_KEY);
    assert!(!ok, "{said}");
    assert!(said.contains("does not decrypt with key 'new'"), "{said}");

    // Berth serves with the new key alone, and sends to Splunk with the
    // stored token (BERTH_SPLUNK_HEC_URL without BERTH_SPLUNK_HEC_TOKEN): the
    // collector accepts only that token.
    let hec = berth_testkit::hec::HecReceiver::start(HEC_TOKEN)
        .await
        .unwrap();
    hec.set_ack(false);
    let running = serve(
        &dir,
        &database_url,
        &format!(
            "encryption_keys = \"{NEW_KEY}\"\nsplunk_hec_url = \"{}\"\n",
            hec.url()
        ),
    )
    .await;
    let token = admin_token(&running.base).await;
    // Removing a secret needs no key; the audit entry goes to Splunk.
    let (status, body, _) = put(&running.base, &token, &json!({"sentryDsn": null})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["sentryDsn"]["stored"], false, "{body}");
    assert_eq!(body["splunkHecToken"]["stored"], true, "{body}");
    assert_eq!(body["splunkHecToken"]["fromEnvironment"], false, "{body}");
    berth_testkit::eventually(std::time::Duration::from_secs(20), || async {
        let events = hec.events();
        events
            .iter()
            .any(|e| e.to_string().contains("integrations.update"))
            .then_some(())
            .ok_or_else(|| anyhow::anyhow!("no audit entry at Splunk yet: {events:?}"))
    })
    .await
    .unwrap();
    running.stop().await;
    std::fs::remove_dir_all(&dir).unwrap();
}

fn tempdir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("berth-at-rest-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}
