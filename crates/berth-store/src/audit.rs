//! The audit log: who did what to which target, and how it ended.

use crate::platform::parse_json;
use crate::{Store, StoreError, from_millis, now, to_millis};
use berth_core::account::fold_email;
use sqlx::Row;
use time::OffsetDateTime;
use uuid::Uuid;

/// One recorded action.
#[derive(Debug, Clone)]
pub struct AuditEntry {
    pub at: OffsetDateTime,
    /// The actor's email (folded, as every stored email), or `system`.
    pub actor: String,
    pub action: String,
    pub target: String,
    /// The environment the action concerns, when it concerns one.
    pub environment: Option<String>,
    pub outcome: String,
    pub request_id: Option<String>,
    pub details: serde_json::Value,
}

/// Inserts `entry` with its time set to now and its actor folded; returns
/// the entry's id (a UUIDv7, so ids sort as entries were written).
pub(crate) async fn insert_audit<'e>(
    executor: impl sqlx::Executor<'e, Database = sqlx::Any>,
    entry: &mut AuditEntry,
) -> Result<String, StoreError> {
    entry.at = now();
    entry.actor = fold_email(&entry.actor);
    let id = Uuid::now_v7().to_string();
    sqlx::query(
        "INSERT INTO audit_log (id, at, actor, action, target, environment, outcome, request_id, details) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(&id)
    .bind(to_millis(entry.at))
    .bind(&entry.actor)
    .bind(&entry.action)
    .bind(&entry.target)
    .bind(entry.environment.as_deref())
    .bind(&entry.outcome)
    .bind(entry.request_id.as_deref())
    .bind(entry.details.to_string())
    .execute(executor)
    .await?;
    Ok(id)
}

/// Which entries to read; every given field must match.
#[derive(Debug, Default)]
pub struct AuditFilter {
    /// An email, in any spelling (it is folded before comparing), or `system`.
    pub actor: Option<String>,
    pub environment: Option<String>,
    pub since: Option<OffsetDateTime>,
    pub limit: u32,
}

impl Store {
    /// Records `entry`; its time is set here, and its actor folded as emails
    /// are, so that a filter finds it by any spelling.
    pub async fn append_audit(&self, mut entry: AuditEntry) -> Result<AuditEntry, StoreError> {
        insert_audit(&self.pool, &mut entry).await?;
        Ok(entry)
    }

    /// Entries matching every given filter, newest first.
    pub async fn audit(&self, filter: &AuditFilter) -> Result<Vec<AuditEntry>, StoreError> {
        let rows = sqlx::query(
            "SELECT at, actor, action, target, environment, outcome, request_id, details FROM audit_log \
             WHERE ($1 IS NULL OR actor = $1) AND ($2 IS NULL OR environment = $2) AND at >= $3 \
             ORDER BY at DESC, id DESC LIMIT $4",
        )
        .bind(filter.actor.as_deref().map(fold_email))
        .bind(filter.environment.as_deref())
        .bind(filter.since.map_or(0, to_millis))
        .bind(i64::from(filter.limit))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(AuditEntry {
                    at: from_millis(row.try_get("at")?),
                    actor: row.try_get("actor")?,
                    action: row.try_get("action")?,
                    target: row.try_get("target")?,
                    environment: row.try_get("environment")?,
                    outcome: row.try_get("outcome")?,
                    request_id: row.try_get("request_id")?,
                    details: parse_json(&row.try_get::<String, _>("details")?)?,
                })
            })
            .collect()
    }
}
