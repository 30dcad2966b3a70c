//! Fresh databases for tests, so that every test starts from an empty store
//! on whichever database the test run targets.

use sqlx::Connection;
use std::path::Path;

/// The variable naming a PostgreSQL server to test against (`make test` sets it).
pub const POSTGRES_ENV: &str = "BERTH_TEST_POSTGRES_URL";

/// A URL of a new, empty database: a SQLite file under `dir`, or a new
/// database on the server named by `BERTH_TEST_POSTGRES_URL` when it is set.
pub async fn fresh_database_url(dir: &Path) -> String {
    match std::env::var(POSTGRES_ENV) {
        Ok(server) if !server.is_empty() => fresh_postgres_database(&server).await,
        _ => format!(
            "sqlite://{}",
            dir.join(format!("berth-{}.db", uuid::Uuid::new_v4().simple()))
                .display()
        ),
    }
}

async fn fresh_postgres_database(server: &str) -> String {
    let name = format!("berth_test_{}", uuid::Uuid::new_v4().simple());
    let mut conn = sqlx::PgConnection::connect(server)
        .await
        .unwrap_or_else(|e| panic!("{POSTGRES_ENV}={server} does not answer: {e}"));
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&mut conn)
        .await
        .unwrap_or_else(|e| panic!("cannot create test database {name}: {e}"));
    let (prefix, _) = server
        .rsplit_once('/')
        .expect("a PostgreSQL URL ends with /DATABASE");
    format!("{prefix}/{name}")
}
