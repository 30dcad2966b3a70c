//! Throttling counts, on SQLite or (with BERTH_TEST_POSTGRES_URL) PostgreSQL.

use berth_store::testing::fresh_database_url;
use berth_store::{FailureWindow, Store};
use std::collections::BTreeSet;
use std::time::Duration;
use time::OffsetDateTime;

const WINDOW: Duration = Duration::from_secs(60);

async fn store() -> Store {
    let dir = std::env::temp_dir().join("berth-store-tests");
    std::fs::create_dir_all(&dir).unwrap();
    Store::connect(&fresh_database_url(&dir).await)
        .await
        .unwrap()
}

fn checks(list: &[(&str, u32)]) -> Vec<(String, u32)> {
    list.iter().map(|(s, l)| ((*s).to_owned(), *l)).collect()
}

/// Counts one attempt for `subject` with a limit of zero, so that its window
/// always comes back.
async fn count(store: &Store, subject: &str, at: OffsetDateTime) -> FailureWindow {
    store
        .count_attempts(&checks(&[(subject, 0)]), at, at - WINDOW)
        .await
        .unwrap()
        .expect("over a limit of zero")
}

#[tokio::test]
async fn attempts_count_in_a_window_that_a_later_attempt_restarts() {
    let store = store().await;
    let t0 = OffsetDateTime::from_unix_timestamp(2_000_000_000).unwrap();
    for (seconds, expected) in [(0, 1), (10, 2), (20, 3)] {
        let now = t0 + Duration::from_secs(seconds);
        assert_eq!(
            count(&store, "email:a@x.io", now).await,
            FailureWindow {
                subject: "email:a@x.io".into(),
                window_started: t0,
                failures: expected
            }
        );
    }
    // Taking back counts down, never below zero; clearing starts over.
    store
        .uncount_attempts(&["email:a@x.io"], None)
        .await
        .unwrap();
    let now = t0 + Duration::from_secs(30);
    assert_eq!(count(&store, "email:a@x.io", now).await.failures, 3);
    count(&store, "client:10.0.0.1", t0).await;
    store
        .uncount_attempts(&["email:a@x.io", "client:10.0.0.1"], Some("email:a@x.io"))
        .await
        .unwrap();
    store
        .uncount_attempts(&["client:10.0.0.1"], None)
        .await
        .unwrap();
    assert_eq!(count(&store, "email:a@x.io", now).await.failures, 1);
    assert_eq!(count(&store, "client:10.0.0.1", now).await.failures, 1);

    // The window is over: the next attempt starts a new one.
    let later = t0 + Duration::from_secs(90);
    assert_eq!(
        count(&store, "email:a@x.io", later).await,
        FailureWindow {
            subject: "email:a@x.io".into(),
            window_started: later,
            failures: 1
        }
    );
    assert_eq!(
        store
            .delete_stale_login_failures(later - WINDOW)
            .await
            .unwrap(),
        1,
        "the client's old window"
    );
}

#[tokio::test]
async fn counting_stops_at_the_first_subject_over_its_limit_and_takes_back_those_before() {
    let store = store().await;
    let now = OffsetDateTime::now_utc();
    let since = now - WINDOW;
    let login = checks(&[("pair:a", 1), ("client:a", 10), ("email:e", 10)]);
    assert_eq!(
        store.count_attempts(&login, now, since).await.unwrap(),
        None
    );
    // The pair is over: nothing else is counted.
    let over = store.count_attempts(&login, now, since).await.unwrap();
    assert_eq!(
        over.map(|w| (w.subject, w.failures)),
        Some(("pair:a".into(), 2))
    );
    assert_eq!(count(&store, "client:a", now).await.failures, 2);
    assert_eq!(count(&store, "email:e", now).await.failures, 2);
    // The client is over: the pair counted before it is taken back.
    let login = checks(&[("pair:b", 5), ("client:a", 2), ("email:e", 10)]);
    let over = store.count_attempts(&login, now, since).await.unwrap();
    assert_eq!(
        over.map(|w| (w.subject, w.failures)),
        Some(("client:a".into(), 3))
    );
    assert_eq!(count(&store, "pair:b", now).await.failures, 1);
    assert_eq!(count(&store, "email:e", now).await.failures, 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn parallel_attempts_each_see_their_own_count_and_only_the_limit_passes() {
    let store = store().await;
    let now = OffsetDateTime::now_utc();
    let since = now - WINDOW;
    let attempts: Vec<_> = (0..40)
        .map(|_| {
            let store = store.clone();
            tokio::spawn(async move {
                let login = checks(&[("pair:x", 5), ("email:x", 100)]);
                store.count_attempts(&login, now, since).await.unwrap()
            })
        })
        .collect();
    let mut admitted = 0;
    let mut refused = BTreeSet::new();
    for attempt in attempts {
        match attempt.await.unwrap() {
            None => admitted += 1,
            Some(over) => {
                refused.insert(over.failures);
            }
        }
    }
    // Read-then-write would let more through and repeat counts; an upsert cannot.
    assert_eq!(admitted, 5);
    assert_eq!(refused, (6..=40).collect::<BTreeSet<u32>>());
    assert_eq!(count(&store, "email:x", now).await.failures, 6);
}
