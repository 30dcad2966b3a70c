//! The drain loop: the outbox lease's holder sends queued rows in order,
//! marks them sent once HEC has them (acknowledged, where the token
//! acknowledges), retries with capped exponential backoff while HEC is away,
//! and sets aside an event HEC refuses as bad data so it never blocks the rest.

use crate::client::{HecClient, HecConfig};
use crate::error::SplunkError;
use crate::event::{HecEvent, HecMetadata, to_hec};
use crate::metrics::OutboxMetrics;
use crate::port::OutboxStore;
use berth_store::OutboxRow;
use std::time::{Duration, Instant};
use time::OffsetDateTime;

/// How the drainer paces itself.
#[derive(Debug, Clone)]
pub struct DrainOptions {
    /// This replica's name in the outbox lease.
    pub holder: String,
    /// Events per request.
    pub batch_size: u32,
    /// Bound on each request to HEC.
    pub request_timeout: Duration,
    /// How long an accepted batch may wait for its acknowledgement before it
    /// is sent again.
    pub ack_timeout: Duration,
    /// The lease outlives a request and its acknowledgement together, so a
    /// slow batch is never sent by a second replica meanwhile.
    pub lease_ttl: Duration,
    /// Pause when nothing is queued, and how often `/metrics` is refreshed.
    pub idle_poll: Duration,
    /// First and longest pause after a failed request.
    pub min_backoff: Duration,
    pub max_backoff: Duration,
    /// How long sent rows are kept, refusing a second enqueue of their ids.
    pub keep_sent: Duration,
}

impl DrainOptions {
    pub fn new(holder: impl Into<String>) -> Self {
        Self {
            holder: holder.into(),
            batch_size: 500,
            request_timeout: Duration::from_secs(10),
            ack_timeout: Duration::from_secs(15),
            lease_ttl: Duration::from_secs(60),
            idle_poll: Duration::from_millis(200),
            min_backoff: Duration::from_millis(200),
            max_backoff: Duration::from_secs(10),
            keep_sent: Duration::from_secs(24 * 3600),
        }
    }
}

/// Drains the outbox into one collector.
pub struct Drainer<S> {
    store: S,
    client: HecClient,
    meta: HecMetadata,
    metrics: OutboxMetrics,
    options: DrainOptions,
}

/// How one turn of the loop went, deciding the pause before the next.
enum Turn {
    Sent,
    Idle,
    NotHolder,
    Failed,
}

impl<S: OutboxStore> Drainer<S> {
    /// Errors name the setting at fault.
    pub fn new(
        store: S,
        config: &HecConfig,
        metrics: OutboxMetrics,
        options: DrainOptions,
    ) -> Result<Self, SplunkError> {
        Ok(Self {
            client: HecClient::new(config, options.request_timeout)?,
            meta: config.metadata(),
            store,
            metrics,
            options,
        })
    }

    /// Drains until `shutdown` completes, finishing the batch in flight, then
    /// gives the lease up so another replica takes over at once.
    pub async fn run(self, shutdown: impl Future<Output = ()> + Send) {
        let mut shutdown = std::pin::pin!(shutdown);
        let refresh = tokio::spawn(refresh_metrics(
            self.store.clone(),
            self.metrics.clone(),
            self.options.idle_poll.max(Duration::from_millis(500)),
        ));
        let mut backoff = self.options.min_backoff;
        let mut pruned = None::<Instant>;
        loop {
            let pause = match self.turn(&mut pruned).await {
                Turn::Sent => {
                    backoff = self.options.min_backoff;
                    Duration::ZERO
                }
                Turn::Idle => self.options.idle_poll,
                Turn::NotHolder => self.options.idle_poll * 5,
                Turn::Failed => {
                    let pause = backoff;
                    backoff = (backoff * 2).min(self.options.max_backoff);
                    pause
                }
            };
            tokio::select! {
                biased;
                () = &mut shutdown => break,
                () = tokio::time::sleep(pause) => {}
            }
        }
        refresh.abort();
        if let Err(e) = self.store.release_lease(&self.options.holder).await {
            tracing::warn!(error = %e, "could not release the Splunk outbox lease; it expires by itself");
        }
    }

    async fn turn(&self, pruned: &mut Option<Instant>) -> Turn {
        match self
            .store
            .take_lease(&self.options.holder, self.options.lease_ttl)
            .await
        {
            Ok(true) => {}
            Ok(false) => return Turn::NotHolder,
            Err(e) => {
                tracing::warn!(error = %e, "could not take the Splunk outbox lease");
                return Turn::Failed;
            }
        }
        let rows = match self.store.pending(self.options.batch_size).await {
            Ok(rows) => rows,
            Err(e) => {
                tracing::warn!(error = %e, "could not read the Splunk outbox");
                return Turn::Failed;
            }
        };
        if rows.is_empty() {
            if pruned.is_none_or(|at| at.elapsed() > Duration::from_secs(3600)) {
                *pruned = Some(Instant::now());
                let before = OffsetDateTime::now_utc() - self.options.keep_sent;
                if let Err(e) = self.store.prune(before).await {
                    tracing::warn!(error = %e, "could not prune sent rows of the Splunk outbox");
                }
            }
            return Turn::Idle;
        }
        let events: Vec<HecEvent> = rows.iter().map(|row| to_hec(row, &self.meta)).collect();
        match self.deliver(&events).await {
            Ok(()) => self.sent(&rows).await,
            Err(SplunkError::Data {
                invalid_event: Some(invalid),
                ..
            }) if invalid < rows.len() && rows.len() > 1 => {
                // HEC took the events before the one it refused.
                self.metrics.failures.inc();
                self.sent(&rows[..invalid]).await;
                self.one_by_one(&rows[invalid..], &events[invalid..]).await
            }
            Err(SplunkError::Data { .. }) if rows.len() > 1 => {
                self.metrics.failures.inc();
                self.one_by_one(&rows, &events).await
            }
            Err(error) => self.failed(&rows[0], error).await,
        }
    }

    /// Sends each event alone, so that only the ones HEC refuses are set aside.
    async fn one_by_one(&self, rows: &[OutboxRow], events: &[HecEvent]) -> Turn {
        for (row, event) in rows.iter().zip(events) {
            match self.deliver(std::slice::from_ref(event)).await {
                Ok(()) => {
                    self.sent(std::slice::from_ref(row)).await;
                }
                Err(error) => {
                    if let Turn::Failed = self.failed(row, error).await {
                        return Turn::Failed;
                    }
                }
            }
        }
        Turn::Sent
    }

    async fn deliver(&self, events: &[HecEvent]) -> Result<(), SplunkError> {
        if let Some(ack) = self.client.send(events).await? {
            self.client
                .wait_for_ack(ack, self.options.ack_timeout)
                .await?;
        }
        Ok(())
    }

    async fn sent(&self, rows: &[OutboxRow]) -> Turn {
        let ids: Vec<String> = rows.iter().map(|r| r.id.clone()).collect();
        if let Err(e) = self.store.mark_sent(&ids).await {
            // HEC has them; they will be sent once more.
            tracing::warn!(error = %e, events = ids.len(), "could not mark events sent to Splunk");
            return Turn::Failed;
        }
        self.metrics.sent.inc_by(ids.len() as u64);
        Turn::Sent
    }

    /// A request that failed for `row` (the first of its batch).
    async fn failed(&self, row: &OutboxRow, error: SplunkError) -> Turn {
        self.metrics.failures.inc();
        match error {
            SplunkError::Data { .. } => {
                tracing::error!(
                    error = %error,
                    event_id = %row.event_id,
                    "Splunk HEC refused an event as bad data; it is set aside (quarantined) and the rest go on"
                );
                match self.store.quarantine(&row.id, &error.to_string()).await {
                    Ok(()) => {
                        self.metrics.quarantined.inc();
                        Turn::Sent
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "could not set an event aside");
                        Turn::Failed
                    }
                }
            }
            SplunkError::Token { .. } => {
                tracing::error!(
                    error = %error,
                    "Splunk HEC refused BERTH_SPLUNK_HEC_TOKEN; events stay queued until it is accepted"
                );
                Turn::Failed
            }
            error => {
                tracing::warn!(error = %error, "could not send events to Splunk HEC; retrying");
                Turn::Failed
            }
        }
    }
}

async fn refresh_metrics<S: OutboxStore>(store: S, metrics: OutboxMetrics, every: Duration) {
    let mut ticks = tokio::time::interval(every);
    loop {
        ticks.tick().await;
        match store.stats().await {
            Ok(stats) => {
                metrics
                    .depth
                    .set(i64::try_from(stats.depth).unwrap_or(i64::MAX));
                let age = stats.oldest.map_or(0.0, |oldest| {
                    (OffsetDateTime::now_utc() - oldest)
                        .as_seconds_f64()
                        .max(0.0)
                });
                metrics.oldest_age.set(age);
            }
            Err(e) => tracing::debug!(error = %e, "could not read the Splunk outbox's depth"),
        }
    }
}
