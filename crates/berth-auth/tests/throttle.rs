//! Login and registration throttling through `Auth`, with small limits, on
//! SQLite or (with BERTH_TEST_POSTGRES_URL) PostgreSQL.

use berth_auth::{Auth, AuthConfig, AuthError, Registration, ThrottleLimits};
use berth_core::account::{DisplayName, Email, Password};
use berth_store::Store;
use berth_store::testing::fresh_database_url;
use std::net::IpAddr;
use std::time::Duration;

const PASSWORD: &str = "correct horse battery";

const LIMITS: ThrottleLimits = ThrottleLimits {
    per_email_and_client: 2,
    per_email: 5,
    per_client: 4,
    login_window: Duration::from_secs(600),
    registrations_per_client: 3,
    registration_window: Duration::from_secs(3600),
};

async fn auth(hash_queue: usize) -> Auth {
    auth_with(hash_queue, LIMITS).await
}

async fn auth_with(hash_queue: usize, limits: ThrottleLimits) -> Auth {
    let dir = std::env::temp_dir().join("berth-auth-tests");
    std::fs::create_dir_all(&dir).unwrap();
    let store = Store::connect(&fresh_database_url(&dir).await)
        .await
        .unwrap();
    let config = AuthConfig {
        hash_concurrency: 1,
        hash_queue,
        limits,
        ..AuthConfig::default()
    };
    Auth::new(store, config).unwrap()
}

fn email(raw: &str) -> Email {
    Email::parse("email", raw).unwrap()
}

fn password(raw: &str) -> Password {
    Password::given("password", raw.into()).unwrap()
}

fn client(n: u8) -> Option<IpAddr> {
    Some(IpAddr::from([10, 0, 0, n]))
}

async fn register(auth: &Auth, address: &str, from: Option<IpAddr>) -> Result<(), AuthError> {
    let email = email(address);
    let registration = Registration {
        display_name: DisplayName::parse("displayName", None, Some(&email)).unwrap(),
        email,
        password: Password::new_secret("password", PASSWORD.into()).unwrap(),
    };
    auth.register(registration, true, from).await.map(|_| ())
}

async fn login(auth: &Auth, address: &str, secret: &str, from: Option<IpAddr>) -> &'static str {
    match auth.login(&email(address), &password(secret), from).await {
        Ok(_) => "ok",
        Err(AuthError::InvalidCredentials) => "wrong",
        Err(AuthError::RateLimited { retry_after }) => {
            assert!(retry_after >= Duration::from_secs(1));
            "throttled"
        }
        Err(AuthError::Busy { .. }) => "busy",
        Err(e) => panic!("unexpected {e:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parallel_guesses_from_one_client_are_cut_off_before_hashing_not_the_owner() {
    let auth = auth(64).await;
    register(&auth, "ada@example.com", client(9)).await.unwrap();
    let guesses: Vec<_> = (0..30)
        .map(|_| {
            let auth = auth.clone();
            tokio::spawn(async move { login(&auth, "ada@example.com", "guess", client(1)).await })
        })
        .collect();
    let mut answers = Vec::new();
    for guess in guesses {
        answers.push(guess.await.unwrap());
    }
    let wrong = answers.iter().filter(|a| **a == "wrong").count();
    let throttled = answers.iter().filter(|a| **a == "throttled").count();
    assert_eq!((wrong, throttled), (2, 28), "{answers:?}");
    // Even the right password is refused from there now...
    assert_eq!(
        login(&auth, "ada@example.com", PASSWORD, client(1)).await,
        "throttled"
    );
    // ...but not from anywhere else.
    assert_eq!(
        login(&auth, "ada@example.com", PASSWORD, client(2)).await,
        "ok"
    );
}

#[tokio::test]
async fn guesses_spread_over_clients_reach_the_email_limit_and_one_client_the_client_limit() {
    let auth = auth(64).await;
    register(&auth, "ada@example.com", client(9)).await.unwrap();
    // Two guesses from each of three clients; the email allows five in all.
    let mut answers = Vec::new();
    for n in 1..=3 {
        for _ in 0..2 {
            answers.push(login(&auth, "ada@example.com", "guess", client(n)).await);
        }
    }
    assert_eq!(
        answers,
        ["wrong", "wrong", "wrong", "wrong", "wrong", "throttled"]
    );
    assert_eq!(
        login(&auth, "ada@example.com", PASSWORD, client(4)).await,
        "throttled"
    );

    // One client guessing at many emails: four failures, then nothing.
    let mut answers = Vec::new();
    for i in 0..6 {
        let address = format!("ghost{i}@example.com");
        answers.push(login(&auth, &address, "guess", client(7)).await);
    }
    assert_eq!(
        answers,
        ["wrong", "wrong", "wrong", "wrong", "throttled", "throttled"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parallel_logins_of_one_person_from_one_client_all_succeed() {
    let auth = auth(64).await;
    register(&auth, "ada@example.com", client(9)).await.unwrap();
    // Four times the limit at once: each takes its turn, so none is refused
    // for the others' attempts still in flight.
    let logins: Vec<_> = (0..8)
        .map(|_| {
            let auth = auth.clone();
            tokio::spawn(async move { login(&auth, "ada@example.com", PASSWORD, client(1)).await })
        })
        .collect();
    for login in logins {
        assert_eq!(login.await.unwrap(), "ok");
    }
}

#[tokio::test]
async fn successes_do_not_count_and_clear_what_their_client_mistyped() {
    let auth = auth(64).await;
    register(&auth, "ada@example.com", client(9)).await.unwrap();
    // More successes from one client than any limit allows failures.
    for _ in 0..8 {
        assert_eq!(
            login(&auth, "ada@example.com", PASSWORD, client(1)).await,
            "ok"
        );
    }
    // A typo, a success, then a typo again: the first typo no longer counts.
    for expected in ["wrong", "ok", "wrong", "ok"] {
        let secret = if expected == "ok" { PASSWORD } else { "typo" };
        assert_eq!(
            login(&auth, "ada@example.com", secret, client(1)).await,
            expected
        );
    }
}

#[tokio::test]
async fn a_full_hashing_queue_answers_busy_and_counts_nothing() {
    // One hash at a time and none waiting; the email allows seven failures.
    let auth = auth_with(
        0,
        ThrottleLimits {
            per_email: 7,
            ..LIMITS
        },
    )
    .await;
    register(&auth, "ada@example.com", client(9)).await.unwrap();
    let guess = |n| login(&auth, "ada@example.com", "guess", client(n));
    let (a, b, c, d, e, f) =
        tokio::join!(guess(1), guess(2), guess(3), guess(4), guess(5), guess(6));
    let answers = [a, b, c, d, e, f];
    let judged = answers.iter().filter(|a| **a == "wrong").count();
    let busy = answers.iter().filter(|a| **a == "busy").count();
    assert!(
        judged >= 1 && busy >= 1 && judged + busy == 6,
        "{answers:?}"
    );
    // Only the judged guesses count: the email has 7 - judged left.
    let mut more = Vec::new();
    for n in 10..=17 {
        more.push(login(&auth, "ada@example.com", "guess", client(n)).await);
    }
    let left = more.iter().take_while(|a| **a == "wrong").count();
    assert_eq!(left, 7 - judged, "{answers:?} then {more:?}");
}

#[tokio::test]
async fn registrations_are_throttled_per_client() {
    let auth = auth(64).await;
    let mut answers = Vec::new();
    for i in 0..5 {
        answers.push(register(&auth, &format!("user{i}@example.com"), client(1)).await);
    }
    let created = answers.iter().filter(|a| a.is_ok()).count();
    assert_eq!(created, 3, "{answers:?}");
    assert!(
        answers[3..]
            .iter()
            .all(|a| matches!(a, Err(AuthError::RateLimited { .. })))
    );
    register(&auth, "other@example.com", client(2))
        .await
        .unwrap();
}
