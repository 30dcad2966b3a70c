//! Attempts counted per subject (an email, a client, an email from one
//! client, a client registering) in fixed windows, shared by every replica.
//! What the subjects and counts mean is the auth crate's business.
//!
//! An attempt is counted before it is judged, so that parallel attempts
//! cannot all pass a check that reads the count first and writes it later;
//! an attempt later known not to be a failure is taken back. The table keeps
//! its first name, `login_failures`: its `failures` are attempts not known to
//! have succeeded.

use crate::{Store, StoreError, from_millis, to_millis};
use sqlx::Row;
use time::OffsetDateTime;

/// The count of one subject in its current window.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailureWindow {
    pub subject: String,
    pub window_started: OffsetDateTime,
    /// Attempts counted in the window, less those taken back.
    pub failures: u32,
}

/// The upsert that counts one attempt: in the subject's window if that
/// started after `$3`, else in a new one starting `$2`. Every SET expression
/// reads the row as it was before this update.
const COUNT: &str = "INSERT INTO login_failures (subject, window_started, failures) VALUES ($1, $2, 1) \
     ON CONFLICT (subject) DO UPDATE SET \
       failures = CASE WHEN login_failures.window_started > $3 \
         THEN login_failures.failures + 1 ELSE 1 END, \
       window_started = CASE WHEN login_failures.window_started > $3 \
         THEN login_failures.window_started ELSE $2 END \
     RETURNING window_started, failures";

impl Store {
    /// Counts one attempt for each subject of `checks` in turn, each with
    /// its limit, and stops at the first whose count (this attempt included)
    /// is over its limit: that count stays, those counted before it are taken
    /// back, and its window is returned. `None` when every count is within
    /// its limit. Windows that started at or before `since` are over; a new
    /// one starts `now`.
    ///
    /// Each count is one atomic upsert, so that concurrent attempts on
    /// several replicas each see a different count; all of them are one
    /// transaction, so that an attempt takes the database's write lock once.
    /// Callers name subjects in the same order every time, so that
    /// transactions lock rows in that order and never deadlock.
    pub async fn count_attempts(
        &self,
        checks: &[(String, u32)],
        now: OffsetDateTime,
        since: OffsetDateTime,
    ) -> Result<Option<FailureWindow>, StoreError> {
        let mut tx = self.pool.begin().await?;
        let mut over = None;
        for (counted, (subject, limit)) in checks.iter().enumerate() {
            let row = sqlx::query(COUNT)
                .bind(subject)
                .bind(to_millis(now))
                .bind(to_millis(since))
                .fetch_one(&mut *tx)
                .await?;
            let failures = u32::try_from(row.try_get::<i64, _>("failures")?).unwrap_or(u32::MAX);
            if failures > *limit {
                let before: Vec<&str> = checks[..counted].iter().map(|(s, _)| s.as_str()).collect();
                uncount(&mut tx, &before, None).await?;
                over = Some(FailureWindow {
                    subject: subject.clone(),
                    window_started: from_millis(row.try_get("window_started")?),
                    failures,
                });
                break;
            }
        }
        tx.commit().await?;
        Ok(over)
    }

    /// Takes one attempt back from each of `subjects` (they were not
    /// failures after all), never below zero; `clear`, if one of them, starts
    /// over at zero instead. One statement.
    pub async fn uncount_attempts(
        &self,
        subjects: &[&str],
        clear: Option<&str>,
    ) -> Result<(), StoreError> {
        let mut conn = self.pool.acquire().await?;
        uncount(&mut conn, subjects, clear).await
    }

    /// Removes windows that started at or before `since`; returns how many went.
    pub async fn delete_stale_login_failures(
        &self,
        since: OffsetDateTime,
    ) -> Result<u64, StoreError> {
        let done = sqlx::query("DELETE FROM login_failures WHERE window_started <= $1")
            .bind(to_millis(since))
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected())
    }
}

async fn uncount(
    conn: &mut sqlx::AnyConnection,
    subjects: &[&str],
    clear: Option<&str>,
) -> Result<(), StoreError> {
    if subjects.is_empty() {
        return Ok(());
    }
    let list = (2..subjects.len() + 2)
        .map(|n| format!("${n}"))
        .collect::<Vec<_>>()
        .join(", ");
    let sql = format!(
        "UPDATE login_failures SET failures = CASE WHEN subject = $1 THEN 0 ELSE failures - 1 END \
         WHERE subject IN ({list}) AND failures > 0"
    );
    let mut query = sqlx::query(&sql).bind(clear);
    for subject in subjects {
        query = query.bind(*subject);
    }
    query.execute(conn).await?;
    Ok(())
}
