//! The store's platform tables, on SQLite or (with BERTH_TEST_POSTGRES_URL) PostgreSQL.

use berth_core::account::{DisplayName, Email, Role};
use berth_store::testing::fresh_database_url;
use berth_store::*;
use serde_json::json;

async fn store() -> (Store, String) {
    let dir = std::env::temp_dir().join("berth-store-tests");
    std::fs::create_dir_all(&dir).unwrap();
    let url = fresh_database_url(&dir).await;
    (Store::connect(&url).await.unwrap(), url)
}

async fn user(store: &Store, email: &str) -> UserRecord {
    let email = Email::parse("email", email).unwrap();
    let display_name = DisplayName::parse("displayName", None, Some(&email)).unwrap();
    store
        .create_user(NewUser {
            email,
            display_name,
            role: Role::Member,
            password_hash: "x".into(),
            email_verified: true,
            must_change_password: false,
        })
        .await
        .unwrap()
}

#[tokio::test]
async fn migrations_are_idempotent_and_settings_upsert() {
    let (store, url) = store().await;
    assert_eq!(store.setting("policy").await.unwrap(), None);
    store
        .put_setting("policy", &json!({"approval": "always"}))
        .await
        .unwrap();
    store
        .put_setting("policy", &json!({"approval": "never"}))
        .await
        .unwrap();
    store.close().await;
    let again = Store::connect(&url)
        .await
        .expect("a second start finds the schema up to date");
    assert_eq!(
        again.setting("policy").await.unwrap(),
        Some(json!({"approval": "never"}))
    );
}

#[tokio::test]
async fn templates_are_replaced_and_deleted_by_name() {
    let (store, _) = store().await;
    store
        .put_template("ci", "for CI", &json!({"quota": {"cpu": "1"}}))
        .await
        .unwrap();
    store
        .put_template("ci", "for CI runs", &json!({"quota": {"cpu": "2"}}))
        .await
        .unwrap();
    let templates = store.templates().await.unwrap();
    assert_eq!(templates.len(), 1);
    assert_eq!(templates[0].description, "for CI runs");
    assert_eq!(templates[0].spec["quota"]["cpu"], "2");
    assert!(store.delete_template("ci").await.unwrap());
    assert!(!store.delete_template("ci").await.unwrap());
}

#[tokio::test]
async fn one_pending_request_per_environment_and_decisions_happen_once() {
    let (store, _) = store().await;
    let ann = user(&store, "ann@example.com").await;
    let admin = user(&store, "root@example.com").await;
    let new = |name: &str| NewRequest {
        requester_id: ann.id,
        environment: name.into(),
        kind: RequestKind::Create,
        spec: json!({"quota": {"cpu": "64"}}),
        reasons: vec!["quota.cpu 64 is over the policy's 8".into()],
        target: None,
    };
    let id = store.create_request(new("big")).await.unwrap();
    assert!(matches!(
        store.create_request(new("big")).await,
        Err(StoreError::Conflict { .. })
    ));

    let pending = store
        .requests(Some(RequestState::Pending), None)
        .await
        .unwrap();
    assert_eq!(pending.len(), 1);
    assert_eq!(pending[0].requester_email, "ann@example.com");
    assert_eq!(pending[0].reasons, ["quota.cpu 64 is over the policy's 8"]);

    assert!(
        store
            .decide_request(id, RequestState::Rejected, admin.id, Some("too big"))
            .await
            .unwrap()
    );
    assert!(
        !store
            .decide_request(id, RequestState::Approved, admin.id, None)
            .await
            .unwrap(),
        "decided once"
    );
    let decided = store.request(id).await.unwrap().unwrap();
    assert_eq!(
        (decided.state, decided.decision.as_deref()),
        (RequestState::Rejected, Some("too big"))
    );
    assert!(decided.decided_at.is_some());

    // The name is free again for a new request once the first is decided.
    store.create_request(new("big")).await.unwrap();
    assert_eq!(store.requests(None, Some(ann.id)).await.unwrap().len(), 2);
    assert_eq!(store.requests(None, Some(admin.id)).await.unwrap().len(), 0);
}

#[tokio::test]
async fn audit_entries_filter_by_actor_environment_and_time() {
    let (store, _) = store().await;
    let entry = |actor: &str, env: Option<&str>| AuditEntry {
        at: time::OffsetDateTime::UNIX_EPOCH,
        actor: actor.into(),
        action: "environment.create".into(),
        target: env.map_or("user/x".into(), |e| format!("environment/{e}")),
        environment: env.map(Into::into),
        outcome: "success".into(),
        request_id: Some("req-1".into()),
        details: json!({"template": "small"}),
    };
    let first = store
        .append_audit(entry("ann@example.com", Some("a")))
        .await
        .unwrap();
    store
        .append_audit(entry("bob@example.com", Some("b")))
        .await
        .unwrap();
    store
        .append_audit(entry("ann@example.com", None))
        .await
        .unwrap();

    let all = store
        .audit(&AuditFilter {
            limit: 100,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(all.len(), 3);
    assert!(all[0].at >= all[2].at, "newest first");
    let anns = store
        .audit(&AuditFilter {
            actor: Some("ann@example.com".into()),
            limit: 100,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(anns.len(), 2);
    let env_b = store
        .audit(&AuditFilter {
            environment: Some("b".into()),
            limit: 100,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(env_b[0].actor, "bob@example.com");
    assert_eq!(env_b[0].details, json!({"template": "small"}));
    let later = time::OffsetDateTime::now_utc() + time::Duration::hours(1);
    assert!(
        store
            .audit(&AuditFilter {
                since: Some(later),
                limit: 100,
                ..Default::default()
            })
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        first.at > time::OffsetDateTime::UNIX_EPOCH,
        "the store sets the time"
    );
    assert_eq!(
        store
            .audit(&AuditFilter {
                limit: 1,
                ..Default::default()
            })
            .await
            .unwrap()
            .len(),
        1
    );
}

#[tokio::test]
async fn a_change_request_records_the_environment_version_it_was_filed_against() {
    let (store, _) = store().await;
    let ann = user(&store, "ann@example.com").await;
    let target = EnvironmentVersion {
        uid: "5f0c3c1e-uid".into(),
        generation: 7,
    };
    let id = store
        .create_request(NewRequest {
            requester_id: ann.id,
            environment: "team".into(),
            kind: RequestKind::Update,
            spec: json!({}),
            reasons: vec![],
            target: Some(target.clone()),
        })
        .await
        .unwrap();
    assert_eq!(
        store.request(id).await.unwrap().unwrap().target,
        Some(target)
    );
}

#[tokio::test]
async fn a_creation_lock_makes_the_next_holder_wait() {
    let (store, _) = store().await;
    let ann = user(&store, "ann@example.com").await;
    let first = store.lock_creations(ann.id).await.unwrap();
    let second = tokio::spawn({
        let store = store.clone();
        async move {
            let lock = store.lock_creations(ann.id).await.unwrap();
            lock.release().await.unwrap();
            std::time::Instant::now()
        }
    });
    // The second holder cannot get in while the first holds the lock; it
    // gets in once the first releases it.
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert!(
        !second.is_finished(),
        "the second lock waited for the first"
    );
    let released = std::time::Instant::now();
    first.release().await.unwrap();
    assert!(second.await.unwrap() >= released);
}

#[tokio::test]
async fn an_idempotency_key_replays_its_answer_and_refuses_another_body() {
    let (store, _) = store().await;
    let ann = user(&store, "ann@example.com").await;
    let bob = user(&store, "bob@example.com").await;
    assert_eq!(
        store
            .claim_idempotency_key(ann.id, "k1", "h1")
            .await
            .unwrap(),
        KeyState::Claimed
    );
    assert_eq!(
        store
            .claim_idempotency_key(ann.id, "k1", "h1")
            .await
            .unwrap(),
        KeyState::InFlight
    );
    assert_eq!(
        store
            .claim_idempotency_key(bob.id, "k1", "h2")
            .await
            .unwrap(),
        KeyState::Claimed,
        "keys are per person"
    );
    store
        .answer_idempotency_key(ann.id, "k1", 201, "{\"name\":\"a\"}")
        .await
        .unwrap();
    assert_eq!(
        store
            .claim_idempotency_key(ann.id, "k1", "h1")
            .await
            .unwrap(),
        KeyState::Answered {
            status: 201,
            body: "{\"name\":\"a\"}".into()
        }
    );
    assert_eq!(
        store
            .claim_idempotency_key(ann.id, "k1", "other")
            .await
            .unwrap(),
        KeyState::Mismatch
    );
    store.release_idempotency_key(bob.id, "k1").await.unwrap();
    assert_eq!(
        store
            .claim_idempotency_key(bob.id, "k1", "h3")
            .await
            .unwrap(),
        KeyState::Claimed,
        "a failed request frees its key"
    );
    let later = time::OffsetDateTime::now_utc() + berth_store::IDEMPOTENCY_WINDOW;
    assert_eq!(store.delete_stale_idempotency_keys(later).await.unwrap(), 2);
}

/// PostgreSQL cannot hold U+0000 in text; its refusal is the
/// input's fault (`Unstorable`, a 400 at the API), not a failed store (500).
/// SQLite keeps it, so the API refuses such text before either.
#[tokio::test]
async fn a_nul_character_is_unstorable_on_postgresql_not_a_database_fault() {
    let (store, _) = store().await;
    let text = store.put_template("nul", "a\u{0}b", &json!({})).await;
    // JSON is stored as text, where U+0000 is the escape `\u0000`.
    store
        .put_setting("policy", &json!({"note": "a\u{0}b"}))
        .await
        .unwrap();
    let filter = store
        .audit(&AuditFilter {
            actor: Some("a\u{0}b".into()),
            environment: None,
            since: None,
            limit: 1,
        })
        .await;
    match store.backend() {
        Backend::Postgres => {
            assert!(matches!(text, Err(StoreError::Unstorable(_))), "{text:?}");
            assert!(
                matches!(filter, Err(StoreError::Unstorable(_))),
                "{filter:?}"
            );
        }
        Backend::Sqlite => {
            text.unwrap();
            assert!(filter.unwrap().is_empty());
        }
    }
}
