//! What makes decisions about environments safe to repeat and to race: the
//! per-person creation lock and the answers kept for idempotency keys.

use crate::{Store, StoreError, now, to_millis};
use sqlx::{Any, Row, Transaction};
use time::{Duration, OffsetDateTime};
use uuid::Uuid;

/// How long an idempotency key replays its answer (the contract's 24 hours).
pub const IDEMPOTENCY_WINDOW: Duration = Duration::hours(24);
/// How long a claimed key without an answer holds: a create takes seconds
/// (the creation lock, two apiserver calls, the watch catching up, 5 s at
/// most), and clients give up within a minute (the CLI after 60 s); a claim
/// older than this was left by a process that stopped, and a retry may
/// claim it anew rather than hear 409 for a day. Ten minutes, so that a
/// create slowed by a queue of its owner's creates is never run twice.
pub const IN_FLIGHT_LIMIT: Duration = Duration::minutes(10);

/// Held while one person's create is counted and made; every other create
/// of theirs, in any replica, waits for it. Dropping it releases the lock.
pub struct CreationLock {
    tx: Transaction<'static, Any>,
}

impl CreationLock {
    /// Ends the critical section.
    pub async fn release(self) -> Result<(), StoreError> {
        self.tx.commit().await?;
        Ok(())
    }
}

/// What an idempotency key holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyState {
    /// New: this request is the first with the key and now holds it.
    Claimed,
    /// The first request with the same body is still being answered.
    InFlight,
    /// Answered before with the same body: replay `status` and `body`.
    Answered { status: u16, body: String },
    /// Used before with another body.
    Mismatch,
}

impl Store {
    /// Takes `user`'s creation lock: a row lock on PostgreSQL, the write lock
    /// on SQLite (waiting up to the busy timeout for another writer).
    pub async fn lock_creations(&self, user: Uuid) -> Result<CreationLock, StoreError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "INSERT INTO creation_locks (user_id, creates) VALUES ($1, 1) \
             ON CONFLICT (user_id) DO UPDATE SET creates = creation_locks.creates + 1",
        )
        .bind(user.to_string())
        .execute(&mut *tx)
        .await?;
        Ok(CreationLock { tx })
    }

    /// Claims `key` of `user` for a request whose body hashes to `hash`, or
    /// says what the key already holds. Keys older than the window, and
    /// claims without an answer older than [`IN_FLIGHT_LIMIT`], are free.
    pub async fn claim_idempotency_key(
        &self,
        user: Uuid,
        key: &str,
        hash: &str,
    ) -> Result<KeyState, StoreError> {
        let stale = to_millis(now() - IDEMPOTENCY_WINDOW);
        let abandoned = to_millis(now() - IN_FLIGHT_LIMIT);
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "DELETE FROM idempotency_keys WHERE user_id = $1 AND key = $2 \
             AND (created_at <= $3 OR (status IS NULL AND created_at <= $4))",
        )
        .bind(user.to_string())
        .bind(key)
        .bind(stale)
        .bind(abandoned)
        .execute(&mut *tx)
        .await?;
        let inserted = sqlx::query(
            "INSERT INTO idempotency_keys (user_id, key, request_hash, created_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (user_id, key) DO NOTHING",
        )
        .bind(user.to_string())
        .bind(key)
        .bind(hash)
        .bind(to_millis(now()))
        .execute(&mut *tx)
        .await?;
        let state = if inserted.rows_affected() > 0 {
            KeyState::Claimed
        } else {
            let row = sqlx::query(
                "SELECT request_hash, status, body FROM idempotency_keys WHERE user_id = $1 AND key = $2",
            )
            .bind(user.to_string())
            .bind(key)
            .fetch_one(&mut *tx)
            .await?;
            let stored: String = row.try_get("request_hash")?;
            let status: Option<i64> = row.try_get("status")?;
            match status {
                _ if stored != hash => KeyState::Mismatch,
                None => KeyState::InFlight,
                Some(status) => KeyState::Answered {
                    status: u16::try_from(status)
                        .map_err(|_| StoreError::Corrupt(format!("kept status {status}")))?,
                    body: row
                        .try_get::<Option<String>, _>("body")?
                        .unwrap_or_default(),
                },
            }
        };
        tx.commit().await?;
        Ok(state)
    }

    /// Keeps the answer to the request that claimed `key`.
    pub async fn answer_idempotency_key(
        &self,
        user: Uuid,
        key: &str,
        status: u16,
        body: &str,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE idempotency_keys SET status = $1, body = $2 WHERE user_id = $3 AND key = $4",
        )
        .bind(i64::from(status))
        .bind(body)
        .bind(user.to_string())
        .bind(key)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Frees `key` after its request failed, so that a retry is answered anew.
    pub async fn release_idempotency_key(&self, user: Uuid, key: &str) -> Result<(), StoreError> {
        sqlx::query(
            "DELETE FROM idempotency_keys WHERE user_id = $1 AND key = $2 AND status IS NULL",
        )
        .bind(user.to_string())
        .bind(key)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Removes keys whose window closed before `at`; returns how many.
    pub async fn delete_stale_idempotency_keys(
        &self,
        at: OffsetDateTime,
    ) -> Result<u64, StoreError> {
        let done = sqlx::query("DELETE FROM idempotency_keys WHERE created_at <= $1")
            .bind(to_millis(at - IDEMPOTENCY_WINDOW))
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected())
    }
}
