use crate::{AuthError, LoginLimiter, LoginLimits, PasswordHasher, Secret};
use berth_core::account::{DisplayName, Email, Password, Role, TokenName};
use berth_core::validation::ValidationErrors;
use berth_store::{NewToken, NewUser, Store, StoreError, TokenRecord, UserRecord, UserUpdate};
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use time::OffsetDateTime;
use uuid::Uuid;

#[derive(Debug, Clone)]
pub struct AuthConfig {
    pub session_ttl: Duration,
    pub token_default_days: u32,
    pub token_max_days: u32,
    /// Password hashes computed at once; each takes 19 MiB and one core.
    pub hash_concurrency: usize,
    pub login_limits: LoginLimits,
}

impl Default for AuthConfig {
    fn default() -> Self {
        Self {
            session_ttl: Duration::from_secs(7 * 24 * 3600),
            token_default_days: 90,
            token_max_days: 365,
            hash_concurrency: std::thread::available_parallelism().map_or(2, |n| n.get()),
            login_limits: LoginLimits::default(),
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

#[derive(Debug, Clone)]
pub enum Via {
    Session { secret_hash: String },
    Token { id: Uuid },
}

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

#[derive(Clone)]
pub struct Auth {
    store: Store,
    hasher: PasswordHasher,
    limiter: Arc<LoginLimiter>,
    tokens: Arc<TokenCache>,
    config: AuthConfig,
}

impl Auth {
    pub fn new(store: Store, config: AuthConfig) -> Result<Self, AuthError> {
        Ok(Self {
            hasher: PasswordHasher::new(config.hash_concurrency)?,
            limiter: Arc::new(LoginLimiter::new(config.login_limits, store.clone())),
            tokens: Arc::default(),
            store,
            config,
        })
    }

    pub async fn register(
        &self,
        registration: Registration,
        open: bool,
    ) -> Result<NewSession, AuthError> {
        if !open {
            return Err(AuthError::RegistrationClosed);
        }
        let password_hash = self.hasher.hash(&registration.password).await?;
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

    pub async fn login(
        &self,
        email: &Email,
        password: &Password,
        client: Option<IpAddr>,
    ) -> Result<NewSession, AuthError> {
        self.limiter
            .check(email.as_str(), client, OffsetDateTime::now_utc())
            .await?;
        let user = self.store.user_by_email(email).await?;
        let matches = self
            .hasher
            .verify(password, user.as_ref().map(|u| u.password_hash.as_str()))
            .await?;
        let user = match user {
            Some(user) if matches => user,
            _ => {
                self.limiter
                    .record_failure(email.as_str(), client, OffsetDateTime::now_utc())
                    .await?;
                tracing::info!("login failed");
                return Err(AuthError::InvalidCredentials);
            }
        };
        if user.disabled {
            return Err(AuthError::Disabled);
        }
        self.limiter.record_success(email.as_str()).await?;
        self.open_session(user).await
    }

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

    /// Changes a user's role or disabled flag; it applies to their next request.
    pub async fn update_user(
        &self,
        id: Uuid,
        update: UserUpdate,
    ) -> Result<Option<UserRecord>, AuthError> {
        let user = self.store.update_user(id, update).await?;
        self.tokens.forget(|p| p.user.id == id);
        Ok(user)
    }

    /// Removes expired sessions, login-failure windows that are over and
    /// idempotency keys past their window.
    pub async fn sweep(&self) -> Result<(), AuthError> {
        let now = OffsetDateTime::now_utc();
        let sessions = self.store.delete_expired_sessions(now).await?;
        let windows = self.limiter.sweep(now).await?;
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
