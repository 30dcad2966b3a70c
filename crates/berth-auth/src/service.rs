use crate::rate_limit::Throttle;
use crate::{AuthError, PasswordHasher, Secret, ThrottleLimits};
use berth_core::account::{DisplayName, Email, Password, Role, TokenName};
use berth_core::validation::ValidationErrors;
use berth_store::{
    NewToken, NewUser, Store, StoreError, TokenRecord, UserRecord, UserUpdate, UserUpdated,
};
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use time::OffsetDateTime;
use uuid::Uuid;

/// How authentication behaves; `Default` is what `berth serve` runs with.
#[derive(Debug, Clone)]
pub struct AuthConfig {
    /// How long a session lasts.
    pub session_ttl: Duration,
    /// A token's lifetime when its creator does not choose one.
    pub token_default_days: u32,
    /// The longest lifetime a token may be given.
    pub token_max_days: u32,
    /// Password hashes computed at once; each takes 19 MiB and one core.
    pub hash_concurrency: usize,
    /// Password hashes that may wait for their turn; more get `Busy`.
    pub hash_queue: usize,
    /// Limits of failed logins and of registrations.
    pub limits: ThrottleLimits,
}

/// Hashes allowed to wait per hash running: at ~30 ms a hash, a full queue
/// is about half a second of work.
const HASH_QUEUE_PER_CORE: usize = 16;

impl Default for AuthConfig {
    fn default() -> Self {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        Self {
            session_ttl: Duration::from_secs(7 * 24 * 3600),
            token_default_days: 90,
            token_max_days: 365,
            hash_concurrency: cores,
            hash_queue: cores * HASH_QUEUE_PER_CORE,
            limits: ThrottleLimits::default(),
        }
    }
}

/// What a new account is made of, parsed from a registration.
pub struct Registration {
    pub email: Email,
    pub password: Password,
    pub display_name: DisplayName,
}

/// A session just opened: the secret goes to the client once.
pub struct NewSession {
    pub user: UserRecord,
    pub secret: Secret,
    pub expires_at: OffsetDateTime,
}

/// What a request presented as proof of identity.
pub enum Credential {
    Session(Secret),
    Token(Secret),
}

/// An authenticated caller and how they proved it.
#[derive(Debug, Clone)]
pub struct Principal {
    pub user: UserRecord,
    pub via: Via,
}

/// The kind of credential a principal came in with.
#[derive(Debug, Clone)]
pub enum Via {
    Session { secret_hash: String },
    Token { id: Uuid },
}

/// A token just created: the secret goes to the client once.
pub struct IssuedToken {
    pub record: TokenRecord,
    pub secret: Secret,
}

/// How often a token's `lastUsedAt` is written: per request would make every
/// read a write.
const TOUCH_EVERY: time::Duration = time::Duration::minutes(1);

/// How long a token's principal is reused without asking the store. Changes
/// made through this process (revoking the token, disabling or changing the
/// user) evict it at once; other replicas see them within this time.
const TOKEN_CACHE_TTL: Duration = Duration::from_secs(1);
/// Tokens cached at most; past this the cache starts over, bounding memory.
const TOKEN_CACHE_MAX: usize = 10_000;

/// Principals of recently used tokens, by the token's hash.
#[derive(Default)]
struct TokenCache(std::sync::Mutex<std::collections::HashMap<String, (Principal, Instant)>>);

impl TokenCache {
    fn get(&self, hash: &str) -> Option<Principal> {
        let entries = self.0.lock().expect("token cache lock");
        entries
            .get(hash)
            .filter(|(_, at)| at.elapsed() < TOKEN_CACHE_TTL)
            .map(|(principal, _)| principal.clone())
    }

    fn put(&self, hash: String, principal: Principal) {
        let mut entries = self.0.lock().expect("token cache lock");
        if entries.len() >= TOKEN_CACHE_MAX {
            entries.clear();
        }
        entries.insert(hash, (principal, Instant::now()));
    }

    fn forget(&self, unwanted: impl Fn(&Principal) -> bool) {
        self.0
            .lock()
            .expect("token cache lock")
            .retain(|_, (principal, _)| !unwanted(principal));
    }
}

/// The authentication service: accounts, sessions, tokens and throttling.
#[derive(Clone)]
pub struct Auth {
    store: Store,
    hasher: PasswordHasher,
    throttle: Arc<Throttle>,
    tokens: Arc<TokenCache>,
    config: AuthConfig,
}

impl Auth {
    /// The service over `store`; computes one hash to have a dummy ready.
    pub fn new(store: Store, config: AuthConfig) -> Result<Self, AuthError> {
        Ok(Self {
            hasher: PasswordHasher::new(config.hash_concurrency, config.hash_queue)?,
            throttle: Arc::new(Throttle::new(config.limits, store.clone())),
            tokens: Arc::default(),
            store,
            config,
        })
    }

    /// Creates a member's account and opens a session for it. Throttled per
    /// `client` before the password is hashed.
    pub async fn register(
        &self,
        registration: Registration,
        open: bool,
        client: Option<IpAddr>,
    ) -> Result<NewSession, AuthError> {
        if !open {
            return Err(AuthError::RegistrationClosed);
        }
        let attempt = self
            .throttle
            .admit_registration(client, OffsetDateTime::now_utc())
            .await?;
        let password_hash = match self.hasher.hash(&registration.password).await {
            Ok(hash) => hash,
            Err(e) => {
                // Never got to the store: it does not count against the client.
                self.throttle.uncount(attempt).await;
                return Err(e);
            }
        };
        // From here the attempt stays counted, whether the account is created
        // or its email is taken.
        let user = self
            .store
            .create_user(NewUser {
                email: registration.email,
                display_name: registration.display_name,
                role: Role::Member,
                password_hash,
            })
            .await
            .map_err(|e| match e {
                StoreError::Conflict { .. } => AuthError::EmailTaken,
                other => other.into(),
            })?;
        tracing::info!(user_id = %user.id, "account registered");
        self.open_session(user).await
    }

    /// Opens a session for `email` when `password` is its password. The
    /// attempt is counted (and may be refused) before the password is hashed.
    pub async fn login(
        &self,
        email: &Email,
        password: &Password,
        client: Option<IpAddr>,
    ) -> Result<NewSession, AuthError> {
        let attempt = self
            .throttle
            .admit_login(email.as_str(), client, OffsetDateTime::now_utc())
            .await?;
        match self.check_password(email, password).await {
            Ok(Some(user)) => {
                self.throttle.succeeded(attempt).await;
                if user.disabled {
                    return Err(AuthError::Disabled);
                }
                self.open_session(user).await
            }
            Ok(None) => {
                // The attempt stays counted: it was a failure.
                tracing::info!("login failed");
                Err(AuthError::InvalidCredentials)
            }
            Err(e) => {
                // Not judged (the hashing queue was full, or the store
                // failed): no failure to count.
                self.throttle.uncount(attempt).await;
                Err(e)
            }
        }
    }

    /// The user whose password `password` is, if `email` has an account.
    async fn check_password(
        &self,
        email: &Email,
        password: &Password,
    ) -> Result<Option<UserRecord>, AuthError> {
        let user = self.store.user_by_email(email).await?;
        let matches = self
            .hasher
            .verify(password, user.as_ref().map(|u| u.password_hash.as_str()))
            .await?;
        Ok(user.filter(|_| matches))
    }

    /// Who `credential` belongs to, if it is valid and its user enabled.
    pub async fn authenticate(&self, credential: &Credential) -> Result<Principal, AuthError> {
        let now = OffsetDateTime::now_utc();
        match credential {
            Credential::Session(secret) => {
                let secret_hash = secret.hash();
                let user = self.store.session_user(&secret_hash, now).await?;
                let user = user.ok_or(AuthError::Unauthenticated)?;
                Ok(Principal {
                    user,
                    via: Via::Session { secret_hash },
                })
            }
            Credential::Token(secret) => {
                let hash = secret.hash();
                if let Some(principal) = self.tokens.get(&hash) {
                    return Ok(principal);
                }
                let found = self.store.token_user(&hash, now).await?;
                let (token, user) = found.ok_or(AuthError::Unauthenticated)?;
                if token.last_used_at.is_none_or(|at| now - at > TOUCH_EVERY) {
                    let store = self.store.clone();
                    tokio::spawn(async move {
                        if let Err(e) = store.touch_token(token.id, now).await {
                            tracing::warn!(error = %e, "could not record token use");
                        }
                    });
                }
                let principal = Principal {
                    user,
                    via: Via::Token { id: token.id },
                };
                self.tokens.put(hash, principal.clone());
                Ok(principal)
            }
        }
    }

    /// Ends the session the principal came in with (a token stays valid: it is
    /// revoked by deleting it).
    pub async fn logout(&self, principal: &Principal) -> Result<(), AuthError> {
        if let Via::Session { secret_hash } = &principal.via {
            self.store.delete_session(secret_hash).await?;
        }
        Ok(())
    }

    /// Creates a personal access token for `user_id`, expiring after
    /// `expires_in_days` (the configured default when `None`).
    pub async fn issue_token(
        &self,
        user_id: Uuid,
        name: TokenName,
        expires_in_days: Option<i64>,
    ) -> Result<IssuedToken, AuthError> {
        let days = match expires_in_days {
            None => i64::from(self.config.token_default_days),
            Some(days) if (1..=i64::from(self.config.token_max_days)).contains(&days) => days,
            Some(_) => {
                return Err(ValidationErrors::single(
                    "expiresInDays",
                    format!(
                        "must be a whole number of days from 1 to {}",
                        self.config.token_max_days
                    ),
                )
                .into());
            }
        };
        let secret = Secret::generate_token();
        let record = self
            .store
            .create_token(NewToken {
                user_id,
                name: name.as_str().to_owned(),
                secret_hash: secret.hash(),
                expires_at: Some(OffsetDateTime::now_utc() + time::Duration::days(days)),
            })
            .await?;
        Ok(IssuedToken { record, secret })
    }

    /// Creates the first admin when the store has no user yet; returns it, or
    /// `None` when users exist already.
    pub async fn bootstrap_admin(
        &self,
        email: Email,
        password: Password,
    ) -> Result<Option<UserRecord>, AuthError> {
        if self.store.count_users().await? > 0 {
            return Ok(None);
        }
        let password_hash = self.hasher.hash(&password).await?;
        let display_name = DisplayName::parse("displayName", Some("Administrator"), None)?;
        match self
            .store
            .create_user(NewUser {
                email,
                display_name,
                role: Role::Admin,
                password_hash,
            })
            .await
        {
            Ok(user) => Ok(Some(user)),
            // Another replica bootstrapped the same admin first.
            Err(StoreError::Conflict { .. }) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// Deletes one of `user_id`'s tokens; it stops working at once. False when
    /// no such token is theirs.
    pub async fn revoke_token(&self, user_id: Uuid, token_id: Uuid) -> Result<bool, AuthError> {
        let deleted = self.store.delete_token(user_id, token_id).await?;
        self.tokens
            .forget(|p| matches!(p.via, Via::Token { id } if id == token_id));
        Ok(deleted)
    }

    /// Changes a user's role or disabled flag; it applies to their next
    /// request. `None` when no user has `id`; `LastAdmin` when the change
    /// would leave no enabled admin (checked with the change, atomically).
    pub async fn update_user(
        &self,
        id: Uuid,
        update: UserUpdate,
    ) -> Result<Option<UserRecord>, AuthError> {
        match self.store.update_user(id, update).await? {
            UserUpdated::Done(user) => {
                self.tokens.forget(|p| p.user.id == id);
                Ok(Some(user))
            }
            UserUpdated::NotFound => Ok(None),
            UserUpdated::LastAdmin => Err(AuthError::LastAdmin),
        }
    }

    /// Removes expired sessions, login-failure windows that are over and
    /// idempotency keys past their window.
    pub async fn sweep(&self) -> Result<(), AuthError> {
        let now = OffsetDateTime::now_utc();
        let sessions = self.store.delete_expired_sessions(now).await?;
        let windows = self.throttle.sweep(now).await?;
        let keys = self.store.delete_stale_idempotency_keys(now).await?;
        if sessions + windows + keys > 0 {
            tracing::info!(
                sessions,
                windows,
                keys,
                "expired sessions, login-failure windows and idempotency keys removed"
            );
        }
        Ok(())
    }

    /// The store behind the service, for the routes that only read it.
    pub fn store(&self) -> &Store {
        &self.store
    }

    async fn open_session(&self, user: UserRecord) -> Result<NewSession, AuthError> {
        let secret = Secret::generate();
        let expires_at = OffsetDateTime::now_utc() + self.config.session_ttl;
        self.store
            .create_session(&secret.hash(), user.id, expires_at)
            .await?;
        Ok(NewSession {
            user,
            secret,
            expires_at,
        })
    }
}
