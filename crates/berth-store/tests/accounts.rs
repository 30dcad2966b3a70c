//! Accounts in the store, on SQLite or (with BERTH_TEST_POSTGRES_URL) PostgreSQL:
//! one account per email however it is spelled, and never fewer than one
//! enabled admin.

use berth_core::account::{DisplayName, Email, Role};
use berth_store::testing::fresh_database_url;
use berth_store::{NewUser, Store, StoreError, UserRecord, UserUpdate, UserUpdated};
use uuid::Uuid;

async fn store() -> Store {
    let dir = std::env::temp_dir().join("berth-store-tests");
    std::fs::create_dir_all(&dir).unwrap();
    Store::connect(&fresh_database_url(&dir).await)
        .await
        .unwrap()
}

async fn user(store: &Store, email: &str, role: Role) -> Result<UserRecord, StoreError> {
    let email = Email::parse("email", email).unwrap();
    store
        .create_user(NewUser {
            display_name: DisplayName::parse("displayName", None, Some(&email)).unwrap(),
            email,
            role,
            password_hash: "not a real hash".into(),
            email_verified: true,
            must_change_password: false,
        })
        .await
}

fn update(role: Option<Role>, disabled: Option<bool>) -> UserUpdate {
    UserUpdate {
        role,
        disabled,
        ..UserUpdate::default()
    }
}

async fn enabled_admins(store: &Store) -> Vec<Uuid> {
    let users = store.list_users().await.unwrap();
    users
        .iter()
        .filter(|u| u.role == Role::Admin && !u.disabled)
        .map(|u| u.id)
        .collect()
}

#[tokio::test]
async fn an_email_is_one_account_however_it_is_spelled() {
    let store = store().await;
    let composed = user(&store, "j\u{fc}rgen@example.com", Role::Member)
        .await
        .unwrap();
    let again = user(&store, "JU\u{308}RGEN@example.com", Role::Member).await;
    assert!(
        matches!(
            again,
            Err(StoreError::Conflict {
                constraint: "users_email_key"
            })
        ),
        "{again:?}"
    );
    let found = store
        .user_by_email(&Email::parse("email", "Ju\u{308}rgen@Example.com").unwrap())
        .await
        .unwrap()
        .expect("found by the decomposed spelling");
    assert_eq!(found.id, composed.id);
}

#[tokio::test]
async fn the_last_enabled_admin_can_be_neither_demoted_nor_disabled() {
    let store = store().await;
    let ada = user(&store, "ada@example.com", Role::Admin).await.unwrap();
    let bob = user(&store, "bob@example.com", Role::Admin).await.unwrap();
    let mem = user(&store, "mem@example.com", Role::Member).await.unwrap();

    // A disabled admin is no admin to fall back on.
    let done = store.update_user(bob.id, update(None, Some(true))).await;
    assert!(
        matches!(done, Ok(UserUpdated::Done(ref u)) if u.disabled),
        "{done:?}"
    );
    for change in [
        update(Some(Role::Member), None),
        update(None, Some(true)),
        update(Some(Role::Member), Some(true)),
    ] {
        let refused = store.update_user(ada.id, change).await.unwrap();
        assert!(matches!(refused, UserUpdated::LastAdmin), "{refused:?}");
    }
    assert_eq!(enabled_admins(&store).await, [ada.id]);

    // Changes that leave an enabled admin go through.
    let kept = store
        .update_user(ada.id, update(Some(Role::Admin), Some(false)))
        .await
        .unwrap();
    assert!(matches!(kept, UserUpdated::Done(_)), "{kept:?}");
    let promoted = store
        .update_user(mem.id, update(Some(Role::Admin), None))
        .await
        .unwrap();
    assert!(matches!(promoted, UserUpdated::Done(ref u) if u.role == Role::Admin));
    let demoted = store
        .update_user(ada.id, update(Some(Role::Member), None))
        .await
        .unwrap();
    assert!(matches!(demoted, UserUpdated::Done(ref u) if u.role == Role::Member));
    assert_eq!(enabled_admins(&store).await, [mem.id]);
    let missing = store
        .update_user(Uuid::now_v7(), update(Some(Role::Member), None))
        .await
        .unwrap();
    assert!(matches!(missing, UserUpdated::NotFound), "{missing:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_admins_demoting_or_disabling_each_other_at_once_leave_one() {
    let store = store().await;
    let ada = user(&store, "ada@example.com", Role::Admin).await.unwrap();
    let bob = user(&store, "bob@example.com", Role::Admin).await.unwrap();
    for round in 0..20 {
        // Both admins again, then each removed by the other at the same moment.
        for id in [ada.id, bob.id] {
            store
                .update_user(id, update(Some(Role::Admin), Some(false)))
                .await
                .unwrap();
        }
        let change = || {
            if round % 2 == 0 {
                update(Some(Role::Member), None)
            } else {
                update(None, Some(true))
            }
        };
        let (a, b) = tokio::join!(
            tokio::spawn({
                let store = store.clone();
                let change = change();
                async move { store.update_user(ada.id, change).await.unwrap() }
            }),
            tokio::spawn({
                let store = store.clone();
                let change = change();
                async move { store.update_user(bob.id, change).await.unwrap() }
            }),
        );
        let outcomes = [a.unwrap(), b.unwrap()];
        let done = outcomes
            .iter()
            .filter(|o| matches!(o, UserUpdated::Done(_)))
            .count();
        let refused = outcomes
            .iter()
            .filter(|o| matches!(o, UserUpdated::LastAdmin))
            .count();
        assert_eq!((done, refused), (1, 1), "round {round}: {outcomes:?}");
        assert_eq!(enabled_admins(&store).await.len(), 1, "round {round}");
    }
}
