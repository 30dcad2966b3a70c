//! Delivery to Splunk HEC wired into `berth serve`: the outbox's drainer,
//! and the forwarders of Berth's warnings and of the Kubernetes events of
//! its namespaces.

use berth_api::Cluster;
use berth_splunk::{DrainOptions, Drainer, HecConfig, LogRecord, OutboxMetrics};
use berth_store::Store;
use prometheus_client::registry::Registry;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

/// What runs beside the server when `BERTH_SPLUNK_HEC_URL` is set.
pub(crate) struct Splunk {
    drainer: Drainer<Store>,
    store: Store,
    /// Berth's warnings, kept from the moment Splunk is configured.
    logs: Option<mpsc::Receiver<LogRecord>>,
}

impl Splunk {
    /// Registers the outbox's series on `registry`; errors name the setting.
    pub(crate) fn build(
        config: &HecConfig,
        store: Store,
        registry: &mut Registry,
    ) -> anyhow::Result<Self> {
        let metrics = OutboxMetrics::register(registry);
        let options = DrainOptions::new(crate::replica_identity());
        let drainer = Drainer::new(store.clone(), config, metrics, options)?;
        Ok(Self {
            drainer,
            store,
            logs: berth_splunk::take_log_records(),
        })
    }

    /// Runs until `stopped` turns true; the handle finishes once the drainer
    /// has finished its batch in flight.
    pub(crate) fn spawn(
        self,
        cluster: Arc<Cluster>,
        stopped: watch::Receiver<bool>,
    ) -> JoinHandle<()> {
        let stopping = |mut rx: watch::Receiver<bool>| async move {
            let _ = rx.wait_for(|stop| *stop).await;
        };
        let logs = self.logs.map(|records| {
            tokio::spawn(berth_splunk::forward_logs(
                self.store.clone(),
                records,
                stopping(stopped.clone()),
            ))
        });
        let store = self.store.clone();
        let events_stopped = stopped.clone();
        let events = tokio::spawn(async move {
            let client = loop {
                match cluster.client().await {
                    Ok(client) => break client,
                    Err(_) => {
                        // The server says why, once; this waits quietly.
                        tokio::select! {
                            () = stopping(events_stopped.clone()) => return,
                            () = tokio::time::sleep(Duration::from_secs(5)) => {}
                        }
                    }
                }
            };
            berth_splunk::forward_kubernetes_events(client, store, stopping(events_stopped)).await;
        });
        let drainer = self.drainer;
        tokio::spawn(async move {
            drainer.run(stopping(stopped)).await;
            events.abort();
            if let Some(logs) = logs {
                logs.abort();
            }
        })
    }
}
