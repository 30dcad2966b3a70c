//! What the drain loop needs of the store, so that it depends on the
//! outbox's behaviour rather than on SQL.

use berth_store::{NewOutboxEvent, OutboxRow, OutboxStats, Store, StoreError};
use std::future::Future;
use std::time::Duration;
use time::OffsetDateTime;

/// The outbox lease's name: one drainer across all replicas.
const LEASE: &str = "splunk-hec";

/// The durable outbox (see `berth_store`'s outbox for each operation's contract).
pub trait OutboxStore: Clone + Send + Sync + 'static {
    /// Queues events; an `event_id` queued before is skipped.
    fn enqueue(
        &self,
        events: &[NewOutboxEvent],
    ) -> impl Future<Output = Result<u64, StoreError>> + Send;
    /// Takes or renews the drainer's lease; false while another holds it.
    fn take_lease(
        &self,
        holder: &str,
        ttl: Duration,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;
    fn release_lease(&self, holder: &str) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// Up to `limit` unsent rows in queue order.
    fn pending(
        &self,
        limit: u32,
    ) -> impl Future<Output = Result<Vec<OutboxRow>, StoreError>> + Send;
    fn mark_sent(&self, ids: &[String]) -> impl Future<Output = Result<(), StoreError>> + Send;
    fn quarantine(
        &self,
        id: &str,
        error: &str,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    fn stats(&self) -> impl Future<Output = Result<OutboxStats, StoreError>> + Send;
    fn prune(&self, before: OffsetDateTime)
    -> impl Future<Output = Result<u64, StoreError>> + Send;
}

impl OutboxStore for Store {
    fn enqueue(
        &self,
        events: &[NewOutboxEvent],
    ) -> impl Future<Output = Result<u64, StoreError>> + Send {
        self.enqueue_outbox(events)
    }
    fn take_lease(
        &self,
        holder: &str,
        ttl: Duration,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send {
        self.take_outbox_lease(LEASE, holder, ttl)
    }
    fn release_lease(&self, holder: &str) -> impl Future<Output = Result<(), StoreError>> + Send {
        self.release_outbox_lease(LEASE, holder)
    }
    fn pending(
        &self,
        limit: u32,
    ) -> impl Future<Output = Result<Vec<OutboxRow>, StoreError>> + Send {
        self.pending_outbox(limit)
    }
    fn mark_sent(&self, ids: &[String]) -> impl Future<Output = Result<(), StoreError>> + Send {
        self.mark_outbox_sent(ids)
    }
    fn quarantine(
        &self,
        id: &str,
        error: &str,
    ) -> impl Future<Output = Result<(), StoreError>> + Send {
        self.quarantine_outbox(id, error)
    }
    fn stats(&self) -> impl Future<Output = Result<OutboxStats, StoreError>> + Send {
        self.outbox_stats()
    }
    fn prune(
        &self,
        before: OffsetDateTime,
    ) -> impl Future<Output = Result<u64, StoreError>> + Send {
        self.prune_outbox(before)
    }
}
