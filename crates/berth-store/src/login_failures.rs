//! Failed logins per subject (an email or a client address) in fixed windows,
//! shared by every replica. What the counts mean is the auth crate's business.

use crate::{Store, StoreError, from_millis, to_millis};
use sqlx::Row;
use time::OffsetDateTime;

/// The failures of one subject in its current window.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailureWindow {
    pub subject: String,
    pub window_started: OffsetDateTime,
    pub failures: u32,
}

impl Store {
    /// The windows of `subjects` that started after `since`; older ones are over.
    pub async fn login_failures(
        &self,
        subjects: &[String],
        since: OffsetDateTime,
    ) -> Result<Vec<FailureWindow>, StoreError> {
        let mut windows = Vec::with_capacity(subjects.len());
        for subject in subjects {
            let row = sqlx::query(
                "SELECT window_started, failures FROM login_failures \
                 WHERE subject = $1 AND window_started > $2",
            )
            .bind(subject)
            .bind(to_millis(since))
            .fetch_optional(&self.pool)
            .await?;
            if let Some(row) = row {
                windows.push(FailureWindow {
                    subject: subject.clone(),
                    window_started: from_millis(row.try_get("window_started")?),
                    failures: u32::try_from(row.try_get::<i64, _>("failures")?).unwrap_or(u32::MAX),
                });
            }
        }
        Ok(windows)
    }

    /// Counts one failure for each subject: in its window if that started
    /// after `since`, else in a new window starting `now`. One statement per
    /// subject, so concurrent failures on several replicas all count.
    pub async fn record_login_failure(
        &self,
        subjects: &[String],
        now: OffsetDateTime,
        since: OffsetDateTime,
    ) -> Result<(), StoreError> {
        for subject in subjects {
            sqlx::query(
                "INSERT INTO login_failures (subject, window_started, failures) VALUES ($1, $2, 1) \
                 ON CONFLICT (subject) DO UPDATE SET \
                   failures = CASE WHEN login_failures.window_started > $3 \
                     THEN login_failures.failures + 1 ELSE 1 END, \
                   window_started = CASE WHEN login_failures.window_started > $3 \
                     THEN login_failures.window_started ELSE $2 END",
            )
            .bind(subject)
            .bind(to_millis(now))
            .bind(to_millis(since))
            .execute(&self.pool)
            .await?;
        }
        Ok(())
    }

    pub async fn clear_login_failures(&self, subject: &str) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM login_failures WHERE subject = $1")
            .bind(subject)
            .execute(&self.pool)
            .await?;
        Ok(())
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
