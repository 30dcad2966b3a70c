//! The drain loop against the test HEC and a real store (SQLite, or
//! PostgreSQL with `BERTH_TEST_POSTGRES_URL`): an event HEC refuses as bad
//! data is set aside and the others around it still arrive, in order.

use berth_splunk::{DrainOptions, Drainer, HecConfig, OutboxMetrics, OutboxStore};
use berth_store::{NewOutboxEvent, Store};
use berth_testkit::hec::HecReceiver;
use serde_json::json;
use std::time::Duration;

const TOKEN: &str = "drain-test-token";

#[tokio::test]
async fn a_bad_event_is_set_aside_and_never_blocks_the_rest() {
    let dir = std::env::temp_dir().join(format!("berth-drain-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    let store = Store::connect(&berth_store::testing::fresh_database_url(&dir).await)
        .await
        .unwrap();
    // A body without `event` is sent with `"event": null`, which HEC refuses
    // ("Event field cannot be blank", code 13) naming its place in the batch.
    let events: Vec<NewOutboxEvent> = (0..5)
        .map(|i| NewOutboxEvent {
            event_id: format!("e{i}"),
            source: "test".into(),
            body: if i == 2 {
                json!({ "time": 1_000, "fields": {} })
            } else {
                json!({ "time": 1_000, "event": { "n": i }, "fields": {} })
            },
        })
        .collect();
    store.enqueue(&events).await.unwrap();

    let receiver = HecReceiver::start(TOKEN).await.unwrap();
    let config = HecConfig {
        url: receiver.url(),
        token: TOKEN.into(),
        index: None,
        source: "berth".into(),
        sourcetype: "_json".into(),
        host: "h".into(),
    };
    let metrics = OutboxMetrics::default();
    let drainer = Drainer::new(
        store.clone(),
        &config,
        metrics.clone(),
        DrainOptions::new("test"),
    )
    .unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn(drainer.run(async {
        let _ = stopped.await;
    }));
    let arrived = berth_testkit::eventually(Duration::from_secs(30), || {
        let events = receiver.events();
        async move {
            anyhow::ensure!(events.len() >= 4, "{} of 4 events arrived", events.len());
            Ok(events)
        }
    })
    .await
    .unwrap();
    let order: Vec<i64> = arrived
        .iter()
        .map(|e| e["event"]["n"].as_i64().unwrap())
        .collect();
    assert_eq!(order, [0, 1, 3, 4]);
    let refused = receiver.requests().into_iter().find(|r| r.status == 400);
    assert_eq!(refused.map(|r| r.code), Some(13));
    // HEC has the events before the drainer hears its answer and marks
    // the rows sent, so the counts are awaited rather than read at once.
    berth_testkit::eventually(Duration::from_secs(30), || {
        let (sent, quarantined) = (metrics.sent.get(), metrics.quarantined.get());
        let store = store.clone();
        async move {
            let depth = store.stats().await?.depth;
            anyhow::ensure!(
                sent == 4 && quarantined == 1 && depth == 0,
                "sent {sent} of 4, set aside {quarantined} of 1, {depth} pending"
            );
            Ok(())
        }
    })
    .await
    .unwrap();
    let _ = stop.send(());
    running.await.unwrap();
    let _ = std::fs::remove_dir_all(dir);
}
