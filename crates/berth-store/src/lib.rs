//! The store: everything Berth keeps outside the cluster: accounts, sessions,
//! tokens, one-time account tokens (verify, reset), failed logins, settings, templates, pending environment requests, the audit log,
//! the outbox of events for Splunk, idempotency keys and the per-person creation lock.
//! One set of portable migrations serves SQLite (the zero set-up default) and PostgreSQL (production).

mod accounts;
mod audit;
mod decisions;
mod error;
mod identity;
mod login_failures;
mod oidc;
mod outbox;
mod platform;
mod requests;
mod secrets;
pub mod testing;

pub use accounts::{NewToken, NewUser, TokenRecord, UserRecord, UserUpdate, UserUpdated};
pub use audit::{AuditEntry, AuditFilter};
pub use decisions::{CreationLock, IDEMPOTENCY_WINDOW, KeyState};
pub use error::StoreError;
pub use identity::{KeepCredential, NewAccountToken, TokenPurpose};
pub use login_failures::FailureWindow;
pub use oidc::PendingOidcLogin;
pub use outbox::{NewOutboxEvent, OutboxRow, OutboxStats};
pub use platform::TemplateRecord;
pub use requests::{EnvironmentVersion, NewRequest, RequestKind, RequestRecord, RequestState};
pub use secrets::SealedSecret;

use sqlx::AnyPool;
use sqlx::any::{AnyPoolOptions, install_default_drivers};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::Path;
use std::time::Duration;
use time::OffsetDateTime;

/// SQLite has one writer at a time; the others wait this long before
/// SQLITE_BUSY (which callers answer with 503). sqlx waits 5 s, which a
/// burst of creates, each holding its creator's lock (the write lock, on
/// SQLite) over two apiserver calls, outlasted on a loaded machine.
const SQLITE_BUSY_TIMEOUT: &str = "PRAGMA busy_timeout = 15000";

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// Which database is behind the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

#[derive(Clone)]
pub struct Store {
    pool: AnyPool,
    backend: Backend,
}

impl Store {
    /// Connects to `url` (`sqlite://path` or `postgres://...`) and brings the
    /// schema up to date. A SQLite file and its directory are created if absent.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        install_default_drivers();
        let backend = if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Backend::Postgres
        } else if url.starts_with("sqlite:") {
            Backend::Sqlite
        } else {
            return Err(StoreError::Config(
                "database URL must start with sqlite:// or postgres://".into(),
            ));
        };
        let url = match backend {
            Backend::Sqlite => prepare_sqlite_url(url)?,
            Backend::Postgres => url.to_owned(),
        };
        let pool = AnyPoolOptions::new()
            .max_connections(16)
            .acquire_timeout(Duration::from_secs(5))
            .after_connect(move |connection, _| {
                Box::pin(async move {
                    if backend == Backend::Sqlite {
                        sqlx::query(SQLITE_BUSY_TIMEOUT).execute(connection).await?;
                    }
                    Ok(())
                })
            })
            .connect(&url)
            .await?;
        MIGRATOR.run(&pool).await?;
        Ok(Self { pool, backend })
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Succeeds when the database answers a trivial query.
    pub async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    /// Waits for running queries to finish and closes every connection.
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// SQLite wants its directory to exist and `mode=rwc` to create the file.
/// Berth creates both itself, readable by its own user only (0700, 0600):
/// the file holds password hashes and sealed secrets, and SQLite gives its
/// `-wal` and `-shm` files the database file's mode.
fn prepare_sqlite_url(url: &str) -> Result<String, StoreError> {
    let rest = url
        .trim_start_matches("sqlite://")
        .trim_start_matches("sqlite:");
    let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
    if path.is_empty() || path == ":memory:" {
        return Err(StoreError::Config(
            "a SQLite store needs a file path, such as sqlite://.berth/berth.db".into(),
        ));
    }
    if let Some(dir) = Path::new(path)
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
    {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|e| StoreError::Config(format!("cannot create {}: {e}", dir.display())))?;
    }
    if !query.contains("mode=ro") {
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)
        {
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => {
                return Err(StoreError::Config(format!("cannot create {path}: {e}")));
            }
        }
    }
    let query = if query.contains("mode=") {
        query.to_owned()
    } else if query.is_empty() {
        "mode=rwc".to_owned()
    } else {
        format!("{query}&mode=rwc")
    };
    Ok(format!("sqlite://{path}?{query}"))
}

/// Now, at the millisecond precision the store keeps, so that a value reads
/// back exactly as it was written.
pub(crate) fn now() -> OffsetDateTime {
    from_millis(to_millis(OffsetDateTime::now_utc()))
}

pub(crate) fn to_millis(at: OffsetDateTime) -> i64 {
    (at.unix_timestamp_nanos() / 1_000_000) as i64
}

pub(crate) fn from_millis(ms: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .unwrap_or(OffsetDateTime::UNIX_EPOCH)
}
