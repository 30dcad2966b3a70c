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
    #[error("migration: {0}")]
    Migration(#[from] sqlx::migrate::MigrateError),
}

impl From<sqlx::Error> for StoreError {
    fn from(error: sqlx::Error) -> Self {
        Self::Database(error)
    }
}

impl StoreError {
    /// Maps a unique violation to `Conflict` naming the constraint the caller expected.
    pub(crate) fn unique(error: sqlx::Error, constraint: &'static str) -> Self {
        match &error {
            sqlx::Error::Database(db) if db.is_unique_violation() => Self::Conflict { constraint },
            _ => Self::Database(error),
        }
    }
}
