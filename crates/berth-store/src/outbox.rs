//! The outbox of events for Splunk's HTTP Event Collector: rows written
//! beside what they report, read in order by the one replica holding the
//! outbox lease, and marked sent once Splunk has them.

use crate::audit::insert_audit;
use crate::platform::parse_json;
use crate::{AuditEntry, Store, StoreError, from_millis, now, to_millis};
use sqlx::Row;
use std::time::Duration;
use time::OffsetDateTime;
use uuid::Uuid;

/// An event to queue.
#[derive(Debug, Clone)]
pub struct NewOutboxEvent {
    /// The event's stable identity: queuing the same id again is a no-op.
    pub event_id: String,
    /// What kind of event it is (`audit`, `kubernetes-event`, `log`): rows
    /// of one source are sent in the order they were queued.
    pub source: String,
    /// What the sender needs to build the event (JSON).
    pub body: serde_json::Value,
}

/// A queued event that Splunk does not have yet.
#[derive(Debug, Clone)]
pub struct OutboxRow {
    /// Sorts in the order rows were queued.
    pub id: String,
    pub event_id: String,
    pub source: String,
    pub body: serde_json::Value,
    /// When it was queued.
    pub created_at: OffsetDateTime,
}

/// How far behind the outbox is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutboxStats {
    /// Rows not sent yet (quarantined ones excluded).
    pub depth: u64,
    /// When the oldest of them was queued.
    pub oldest: Option<OffsetDateTime>,
}

impl Store {
    /// Queues `events`, skipping those whose `event_id` is queued already;
    /// returns how many were new.
    pub async fn enqueue_outbox(&self, events: &[NewOutboxEvent]) -> Result<u64, StoreError> {
        let mut tx = self.pool.begin().await?;
        let mut inserted = 0;
        for event in events {
            inserted += insert_event(&mut *tx, event).await?;
        }
        tx.commit().await?;
        Ok(inserted)
    }

    /// Records `entry` in the audit log and queues the event `event` makes of
    /// it (given the stored entry and its id) in one transaction: either both
    /// are kept or neither.
    pub async fn append_audit_with_outbox(
        &self,
        mut entry: AuditEntry,
        event: impl FnOnce(&AuditEntry, &str) -> NewOutboxEvent,
    ) -> Result<AuditEntry, StoreError> {
        let mut tx = self.pool.begin().await?;
        let id = insert_audit(&mut *tx, &mut entry).await?;
        insert_event(&mut *tx, &event(&entry, &id)).await?;
        tx.commit().await?;
        Ok(entry)
    }

    /// Takes or renews the lease `name` for `holder` for `ttl`; false when
    /// another holder's lease has not expired.
    pub async fn take_outbox_lease(
        &self,
        name: &str,
        holder: &str,
        ttl: Duration,
    ) -> Result<bool, StoreError> {
        let now = to_millis(now());
        let taken = sqlx::query(
            "INSERT INTO outbox_leases (name, holder, expires_at) VALUES ($1, $2, $3) \
             ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at \
             WHERE outbox_leases.holder = excluded.holder OR outbox_leases.expires_at < $4",
        )
        .bind(name)
        .bind(holder)
        .bind(now + i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX / 2))
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(taken.rows_affected() == 1)
    }

    /// Gives the lease up, so another replica can take it at once.
    pub async fn release_outbox_lease(&self, name: &str, holder: &str) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM outbox_leases WHERE name = $1 AND holder = $2")
            .bind(name)
            .bind(holder)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Up to `limit` unsent rows, oldest first.
    pub async fn pending_outbox(&self, limit: u32) -> Result<Vec<OutboxRow>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, event_id, source, body, created_at FROM splunk_outbox \
             WHERE state = 'pending' ORDER BY id LIMIT $1",
        )
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(OutboxRow {
                    id: row.try_get("id")?,
                    event_id: row.try_get("event_id")?,
                    source: row.try_get("source")?,
                    body: parse_json(&row.try_get::<String, _>("body")?)?,
                    created_at: from_millis(row.try_get("created_at")?),
                })
            })
            .collect()
    }

    /// Marks the rows `ids` sent: Splunk has them.
    pub async fn mark_outbox_sent(&self, ids: &[String]) -> Result<(), StoreError> {
        for chunk in ids.chunks(500) {
            let placeholders = (2..chunk.len() + 2)
                .map(|i| format!("${i}"))
                .collect::<Vec<_>>()
                .join(", ");
            let sql = format!(
                "UPDATE splunk_outbox SET state = 'sent', sent_at = $1 WHERE id IN ({placeholders})"
            );
            let mut query = sqlx::query(&sql).bind(to_millis(now()));
            for id in chunk {
                query = query.bind(id);
            }
            query.execute(&self.pool).await?;
        }
        Ok(())
    }

    /// Sets the row `id` aside with Splunk's answer `error`: it is not sent again.
    pub async fn quarantine_outbox(&self, id: &str, error: &str) -> Result<(), StoreError> {
        sqlx::query("UPDATE splunk_outbox SET state = 'quarantined', error = $1 WHERE id = $2")
            .bind(error)
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// How many rows wait and since when.
    pub async fn outbox_stats(&self) -> Result<OutboxStats, StoreError> {
        let row = sqlx::query(
            "SELECT COUNT(*) AS depth, MIN(created_at) AS oldest FROM splunk_outbox WHERE state = 'pending'",
        )
        .fetch_one(&self.pool)
        .await?;
        Ok(OutboxStats {
            depth: u64::try_from(row.try_get::<i64, _>("depth")?).unwrap_or(0),
            oldest: row.try_get::<Option<i64>, _>("oldest")?.map(from_millis),
        })
    }

    /// Forgets rows sent or quarantined before `before`. Sent rows are kept
    /// a while so that their `event_id` still refuses a second enqueue (a
    /// relist of Kubernetes events); keep them longer than events live.
    pub async fn prune_outbox(&self, before: OffsetDateTime) -> Result<u64, StoreError> {
        let done = sqlx::query(
            "DELETE FROM splunk_outbox WHERE state <> 'pending' AND COALESCE(sent_at, created_at) < $1",
        )
        .bind(to_millis(before))
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected())
    }
}

async fn insert_event<'e>(
    executor: impl sqlx::Executor<'e, Database = sqlx::Any>,
    event: &NewOutboxEvent,
) -> Result<u64, StoreError> {
    let done = sqlx::query(
        "INSERT INTO splunk_outbox (id, event_id, source, body, created_at, state) \
         VALUES ($1, $2, $3, $4, $5, 'pending') ON CONFLICT (event_id) DO NOTHING",
    )
    .bind(Uuid::now_v7().to_string())
    .bind(&event.event_id)
    .bind(&event.source)
    .bind(event.body.to_string())
    .bind(to_millis(now()))
    .execute(executor)
    .await?;
    Ok(done.rows_affected())
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn store() -> (Store, std::path::PathBuf) {
        let dir = std::env::temp_dir().join(format!("berth-outbox-{}", Uuid::new_v4().simple()));
        let url = crate::testing::fresh_database_url(&dir).await;
        (Store::connect(&url).await.unwrap(), dir)
    }

    fn event(id: &str) -> NewOutboxEvent {
        NewOutboxEvent {
            event_id: id.to_owned(),
            source: "test".into(),
            body: serde_json::json!({ "n": id }),
        }
    }

    #[tokio::test]
    async fn an_event_is_queued_once_read_in_order_and_leased_to_one_holder() {
        let (store, dir) = store().await;
        let events: Vec<_> = (0..5).map(|i| event(&format!("e{i}"))).collect();
        assert_eq!(store.enqueue_outbox(&events).await.unwrap(), 5);
        assert_eq!(store.enqueue_outbox(&events[..2]).await.unwrap(), 0);
        let rows = store.pending_outbox(10).await.unwrap();
        let ids: Vec<_> = rows.iter().map(|r| r.event_id.as_str()).collect();
        assert_eq!(ids, ["e0", "e1", "e2", "e3", "e4"]);
        assert_eq!(store.outbox_stats().await.unwrap().depth, 5);

        store
            .mark_outbox_sent(&[rows[0].id.clone(), rows[1].id.clone()])
            .await
            .unwrap();
        store.quarantine_outbox(&rows[2].id, "bad").await.unwrap();
        assert_eq!(store.pending_outbox(10).await.unwrap().len(), 2);
        // Sent rows still refuse their id, until pruned.
        assert_eq!(store.enqueue_outbox(&events[..1]).await.unwrap(), 0);
        let stats = store.outbox_stats().await.unwrap();
        assert_eq!(stats.depth, 2);
        assert_eq!(stats.oldest, Some(rows[3].created_at));
        assert_eq!(
            store
                .prune_outbox(now() + time::Duration::seconds(1))
                .await
                .unwrap(),
            3
        );

        let ttl = Duration::from_secs(30);
        assert!(store.take_outbox_lease("hec", "a", ttl).await.unwrap());
        assert!(store.take_outbox_lease("hec", "a", ttl).await.unwrap());
        assert!(!store.take_outbox_lease("hec", "b", ttl).await.unwrap());
        store.release_outbox_lease("hec", "a").await.unwrap();
        assert!(store.take_outbox_lease("hec", "b", ttl).await.unwrap());
        assert!(!store.take_outbox_lease("hec", "a", ttl).await.unwrap());
        assert!(
            store
                .take_outbox_lease("other", "a", Duration::ZERO)
                .await
                .unwrap()
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
        assert!(store.take_outbox_lease("other", "b", ttl).await.unwrap());
        let _ = std::fs::remove_dir_all(dir);
    }
}
