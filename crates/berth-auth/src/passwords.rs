use crate::AuthError;
use argon2::password_hash::{PasswordHash, PasswordHasher as _, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use berth_core::account::Password;
use berth_core::validation::ValidationErrors;
use passwords::analyzer::is_common_password;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Semaphore;

/// OWASP's argon2id minimum: 19 MiB, 2 passes, 1 lane.
const MEMORY_KIB: u32 = 19 * 1024;
const ITERATIONS: u32 = 2;
const LANES: u32 = 1;

/// How long a client refused for a full queue is asked to wait: the queue
/// holds well under a second of work.
const BUSY_RETRY_AFTER: Duration = Duration::from_secs(1);

/// Hashes and verifies passwords on the blocking pool, at most `concurrency`
/// at a time, so that a flood of logins cannot starve every other request of
/// the async workers. At most `queue` more wait for their turn; past that a
/// request is refused at once with `Busy`, since one queued without end would
/// only answer after its client gave up, and hold memory until then.
#[derive(Clone)]
pub struct PasswordHasher {
    /// One per hash being computed.
    running: Arc<Semaphore>,
    /// One per hash being computed or waiting to be.
    admitted: Arc<Semaphore>,
    /// Verified against when the email is unknown, so that both cases cost the same.
    dummy_hash: Arc<str>,
}

impl PasswordHasher {
    /// A hasher running `concurrency` hashes at once (at least one) with up
    /// to `queue` more waiting.
    pub fn new(concurrency: usize, queue: usize) -> Result<Self, AuthError> {
        let dummy_hash = hash_blocking("berth-dummy-password-for-timing")?;
        let concurrency = concurrency.max(1);
        Ok(Self {
            running: Arc::new(Semaphore::new(concurrency)),
            admitted: Arc::new(Semaphore::new(concurrency + queue)),
            dummy_hash: dummy_hash.into(),
        })
    }

    /// An argon2id hash of `password` in PHC string form.
    pub async fn hash(&self, password: &Password) -> Result<String, AuthError> {
        let password = password.expose().to_owned();
        self.run(move || hash_blocking(&password)).await?
    }

    /// True when `password` matches `stored`; with no stored hash, does the same
    /// work against a dummy and answers false.
    pub async fn verify(
        &self,
        password: &Password,
        stored: Option<&str>,
    ) -> Result<bool, AuthError> {
        let (hash, known) = match stored {
            Some(hash) => (hash.to_owned(), true),
            None => (self.dummy_hash.to_string(), false),
        };
        let password = password.expose().to_owned();
        let matches = self
            .run(move || {
                PasswordHash::new(&hash)
                    .map(|parsed| {
                        argon2()
                            .verify_password(password.as_bytes(), &parsed)
                            .is_ok()
                    })
                    .unwrap_or(false)
            })
            .await?;
        Ok(matches && known)
    }

    async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, AuthError> {
        let _admitted = self.admitted.try_acquire().map_err(|_| AuthError::Busy {
            retry_after: BUSY_RETRY_AFTER,
        })?;
        let _running = self
            .running
            .acquire()
            .await
            .map_err(|e| AuthError::Hashing(e.to_string()))?;
        tokio::task::spawn_blocking(work)
            .await
            .map_err(|e| AuthError::Hashing(e.to_string()))
    }
}

fn argon2() -> Argon2<'static> {
    let params =
        Params::new(MEMORY_KIB, ITERATIONS, LANES, None).expect("argon2 parameters are valid");
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

fn hash_blocking(password: &str) -> Result<String, AuthError> {
    let salt = SaltString::generate(&mut rand::rngs::OsRng);
    argon2()
        .hash_password(password.as_bytes(), &salt)
        .map(|hash| hash.to_string())
        .map_err(|e| AuthError::Hashing(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn hashes_verify_and_unknown_users_never_match() {
        let hasher = PasswordHasher::new(2, 0).unwrap();
        let password = Password::given("password", "correct horse battery".into()).unwrap();
        let hash = hasher.hash(&password).await.unwrap();
        assert!(hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));
        assert!(hasher.verify(&password, Some(&hash)).await.unwrap());
        let wrong = Password::given("password", "wrong horse battery".into()).unwrap();
        assert!(!hasher.verify(&wrong, Some(&hash)).await.unwrap());
        let dummy = Password::given("password", "berth-dummy-password-for-timing".into()).unwrap();
        assert!(!hasher.verify(&dummy, None).await.unwrap());
    }

    #[tokio::test]
    async fn a_full_queue_refuses_at_once_instead_of_waiting() {
        // One hash at a time and one waiting: of six asked at once, two are
        // served. `join!` polls them in order, so which ones is certain.
        let hasher = PasswordHasher::new(1, 1).unwrap();
        let password = Password::given("password", "correct horse battery".into()).unwrap();
        let hash = || hasher.hash(&password);
        let (a, b, c, d, e, f) = tokio::join!(hash(), hash(), hash(), hash(), hash(), hash());
        assert!(a.is_ok() && b.is_ok(), "{a:?} {b:?}");
        for refused in [c, d, e, f] {
            assert!(
                matches!(refused, Err(AuthError::Busy { retry_after }) if retry_after == BUSY_RETRY_AFTER),
                "{refused:?}"
            );
        }
        // Once the queue drains, hashing works again.
        assert!(hasher.hash(&password).await.is_ok());
    }
}

/// Checks a password someone is choosing (registration, change, reset):
/// the length rule, and not one of the common passwords that guessing
/// attacks try first (the list the `passwords` crate embeds, compared as
/// typed and in lower case). Errors name `field`.
pub fn new_password(field: &str, raw: String) -> Result<Password, ValidationErrors> {
    let password = Password::new_secret(field, raw)?;
    let typed = password.expose();
    if is_common_password(typed) || is_common_password(typed.to_lowercase()) {
        return Err(ValidationErrors::single(
            field,
            "is one of the most common passwords, which are guessed first; choose another",
        ));
    }
    Ok(password)
}

#[cfg(test)]
mod common_tests {
    use super::new_password;

    #[test]
    fn common_passwords_are_refused_naming_the_field() {
        for common in ["password123", "Password123", "qwertyuiop", "1234567890"] {
            let errors = new_password("newPassword", common.into()).unwrap_err();
            assert_eq!(errors.errors()[0].field, "newPassword", "{common}");
        }
        new_password("password", "correct horse battery".into()).unwrap();
        assert!(new_password("password", "short".into()).is_err());
    }
}
