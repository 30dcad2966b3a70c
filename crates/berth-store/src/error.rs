use thiserror::Error;

#[derive(Debug, Error)]
pub enum StoreError {
    /// A named unique constraint refused the write: the thing exists already.
    #[error("conflict on {constraint}")]
    Conflict { constraint: &'static str },
    #[error("store configuration: {0}")]
    Config(String),
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    #[error("database: {0}")]
    Database(#[source] sqlx::Error),
    /// The database cannot be reached for now (stopped, restarting, the
    /// connection lost, every pooled connection busy past the pool's wait,
    /// SQLite locked past its busy timeout): the same request may succeed
    /// once it is back, so callers answer 503 with Retry-After, never 500.
    #[error("database unavailable: {0}")]
    Unavailable(#[source] sqlx::Error),
    /// PostgreSQL refused a text it cannot hold (U+0000 in text, SQLSTATE
    /// 22021; 22P05 in jsonb, which Berth does not use yet): the input is at fault, not the store. The
    /// API refuses such text before it gets here; this keeps any other
    /// source of text (an identity provider's claims) from answering 500.
    #[error("a text holds a character the database cannot store: {0}")]
    Unstorable(#[source] sqlx::Error),
    #[error("migration: {0}")]
    Migration(#[from] sqlx::migrate::MigrateError),
}

impl From<sqlx::Error> for StoreError {
    fn from(error: sqlx::Error) -> Self {
        if is_transient(&error) {
            Self::Unavailable(error)
        } else if is_unstorable(&error) {
            Self::Unstorable(error)
        } else {
            Self::Database(error)
        }
    }
}

/// Whether `error` says the database is out of reach for now rather than
/// that the statement is wrong.
fn is_transient(error: &sqlx::Error) -> bool {
    match error {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Database(db) => db.code().is_some_and(|code| transient_code(&code)),
        _ => false,
    }
}

/// Whether PostgreSQL refused a character: 22021 character_not_in_repertoire
/// (U+0000 in text), 22P05 untranslatable_character (U+0000 in jsonb).
fn is_unstorable(error: &sqlx::Error) -> bool {
    matches!(error, sqlx::Error::Database(db)
        if db.code().is_some_and(|code| matches!(&*code, "22021" | "22P05")))
}

/// PostgreSQL's SQLSTATEs are five characters: class 08 is a connection
/// exception, 57P01-57P03 a server shutting down, restarting or starting,
/// 53300 too many connections. SQLite's are numbers whose low byte is the
/// primary code: 5 SQLITE_BUSY and 6 SQLITE_LOCKED, in every extended form.
fn transient_code(code: &str) -> bool {
    if code.len() == 5 {
        return code.starts_with("08") || matches!(code, "57P01" | "57P02" | "57P03" | "53300");
    }
    code.parse::<u32>()
        .is_ok_and(|primary| matches!(primary & 0xff, 5 | 6))
}

impl StoreError {
    /// Maps a unique violation to `Conflict` naming the constraint the caller expected.
    pub(crate) fn unique(error: sqlx::Error, constraint: &'static str) -> Self {
        match &error {
            sqlx::Error::Database(db) if db.is_unique_violation() => Self::Conflict { constraint },
            _ => error.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::transient_code;

    #[test]
    fn connection_and_shutdown_codes_are_transient_and_constraint_codes_are_not() {
        for code in [
            "08006", "08001", "57P01", "57P03", "53300", "5", "517", "773", "6",
        ] {
            assert!(transient_code(code), "{code}");
        }
        for code in ["23505", "42P01", "40001", "19", "2067", "1"] {
            assert!(!transient_code(code), "{code}");
        }
    }
}
