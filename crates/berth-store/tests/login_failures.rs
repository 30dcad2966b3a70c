//! Failed-login windows, on SQLite or (with BERTH_TEST_POSTGRES_URL) PostgreSQL.

use berth_store::testing::fresh_database_url;
use berth_store::{FailureWindow, Store};
use std::time::Duration;
use time::OffsetDateTime;

async fn store() -> Store {
    let dir = std::env::temp_dir().join("berth-store-tests");
    std::fs::create_dir_all(&dir).unwrap();
    Store::connect(&fresh_database_url(&dir).await)
        .await
        .unwrap()
}

#[tokio::test]
async fn failures_count_in_a_window_that_a_later_failure_restarts() {
    let store = store().await;
    let window = Duration::from_secs(60);
    let t0 = OffsetDateTime::from_unix_timestamp(2_000_000_000).unwrap();
    let subjects = vec!["email:a@x.io".to_owned(), "client:10.0.0.1".to_owned()];
    let open_at =
        async |at: OffsetDateTime| store.login_failures(&subjects, at - window).await.unwrap();
    for seconds in [0, 10, 20] {
        let now = t0 + Duration::from_secs(seconds);
        store
            .record_login_failure(&subjects, now, now - window)
            .await
            .unwrap();
    }
    let now = t0 + Duration::from_secs(30);
    let open = open_at(now).await;
    assert_eq!(
        open,
        [
            FailureWindow {
                subject: "email:a@x.io".into(),
                window_started: t0,
                failures: 3
            },
            FailureWindow {
                subject: "client:10.0.0.1".into(),
                window_started: t0,
                failures: 3
            },
        ]
    );

    // The window is over: it no longer counts, and the next failure starts a new one.
    let later = t0 + Duration::from_secs(90);
    assert!(open_at(later).await.is_empty());
    store
        .record_login_failure(&subjects[..1], later, later - window)
        .await
        .unwrap();
    let open = open_at(later).await;
    assert_eq!(
        open,
        [FailureWindow {
            subject: "email:a@x.io".into(),
            window_started: later,
            failures: 1
        }]
    );

    store.clear_login_failures("email:a@x.io").await.unwrap();
    assert!(open_at(later).await.is_empty());
    assert_eq!(
        store
            .delete_stale_login_failures(later - window)
            .await
            .unwrap(),
        1,
        "the client's old window"
    );
}
