use crate::rate_limit::Throttle;
use crate::{AuthError, Mailer, PasswordHasher, Secret, ThrottleLimits};
use berth_core::account::{DisplayName, Email, Password, Role, TokenName};
use berth_core::validation::ValidationErrors;
use berth_store::{
    KeepCredential, NewAccountToken, NewToken, NewUser, Store, StoreError, TokenPurpose,
    TokenRecord, UserRecord, UserUpdate, UserUpdated,
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
    /// Where verification and reset links are mailed from (`BERTH_SMTP_URL`).
    /// Without it addresses count as verified and nothing is mailed.
    pub mailer: Option<Mailer>,
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
            mailer: None,
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
    /// The memberships listed for the user's address count: they verified
    /// it, or verification is off ([`Auth::holds_memberships`]).
    pub holds_memberships: bool,
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

/// How long a mailed verification link works.
const VERIFY_TTL: time::Duration = time::Duration::hours(24);
/// How long a mailed password-reset link works.
const RESET_TTL: time::Duration = time::Duration::minutes(30);
/// Mails of one kind to one account: at most one a minute, five an hour.
const MAIL_GAP: time::Duration = time::Duration::minutes(1);
const MAIL_WINDOW: time::Duration = time::Duration::hours(1);
const MAILS_PER_WINDOW: i64 = 5;

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

/// The answer to a mailed link that cannot be used (any reason alike).
fn invalid_link(field: &str) -> AuthError {
    ValidationErrors::single(
        field,
        "this link has expired or was used already; ask for a new one",
    )
    .into()
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
                email_verified: !self.verification_required(),
                must_change_password: false,
            })
            .await
            .map_err(|e| match e {
                StoreError::Conflict { .. } => AuthError::EmailTaken,
                other => other.into(),
            })?;
        tracing::info!(user_id = %user.id, "account registered");
        if let Some(mailer) = &self.config.mailer {
            self.mail_verification(mailer, &user).await?;
        }
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
                    holds_memberships: self.holds_memberships(&user),
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
                    holds_memberships: self.holds_memberships(&user),
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
    /// `None` when users exist already. `generated` marks a password Berth
    /// made up (shown once on a terminal): the admin must change it at first
    /// login. One the operator chose is kept as it is.
    pub async fn bootstrap_admin(
        &self,
        email: Email,
        password: Password,
        generated: bool,
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
                // The operator chose the address.
                email_verified: true,
                must_change_password: generated,
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
        let links = self.store.delete_expired_account_tokens(now).await?;
        let windows = self.throttle.sweep(now).await?;
        let keys = self.store.delete_stale_idempotency_keys(now).await?;
        if sessions + windows + keys + links > 0 {
            tracing::info!(
                sessions,
                windows,
                keys,
                links,
                "expired sessions, login-failure windows, idempotency keys and mailed links removed"
            );
        }
        Ok(())
    }

    /// Whether addresses must be verified before they count: true when a
    /// mail server is configured to send the links.
    pub fn verification_required(&self) -> bool {
        self.config.mailer.is_some()
    }

    /// Whether `user` holds the memberships listed for their address: when
    /// they verified it, or verification is off.
    pub fn holds_memberships(&self, user: &UserRecord) -> bool {
        user.email_verified || !self.verification_required()
    }

    /// Mails `user` a new verification link. `RateLimited` past one a
    /// minute or five an hour; nothing to do when the address is verified or
    /// verification is off.
    pub async fn resend_verification(&self, user: &UserRecord) -> Result<(), AuthError> {
        let Some(mailer) = &self.config.mailer else {
            return Ok(());
        };
        if user.email_verified {
            return Ok(());
        }
        if let Some(retry_after) = self.mail_throttled(user.id, TokenPurpose::Verify).await? {
            return Err(AuthError::RateLimited { retry_after });
        }
        self.mail_verification(mailer, user).await
    }

    /// Verifies the address a mailed link was sent to, for `caller` (the
    /// signed-in account); the user as they are now. A link that is unknown,
    /// used, expired, for an address the account no longer has or for
    /// another account is refused naming `token`.
    pub async fn verify_email(
        &self,
        token: &str,
        caller: &UserRecord,
    ) -> Result<UserRecord, AuthError> {
        let hash = Secret::from_client(token).hash();
        // Only in a session of the account the link was mailed for: whoever
        // registered someone else's address must not have it verified by the
        // owner's click. The owner, unable to sign in to that account, resets
        // its password by mail instead, which ends the registrant's sessions.
        let now = OffsetDateTime::now_utc();
        let owner = self
            .store
            .account_token_user(&hash, TokenPurpose::Verify, now)
            .await?;
        if owner.is_none_or(|owner| owner.id != caller.id) {
            return Err(invalid_link("token"));
        }
        let user = self
            .store
            .use_verify_token(&hash, now)
            .await?
            .ok_or_else(|| invalid_link("token"))?;
        self.tokens.forget(|p| p.user.id == user.id);
        tracing::info!(user_id = %user.id, "email verified");
        Ok(user)
    }

    /// Mails a reset link to `email` if it has an enabled account, in the
    /// background: the caller learns nothing, not even from the time the
    /// answer takes. Silently at most one a minute and five an hour per
    /// account.
    pub fn request_password_reset(&self, email: Email) {
        let auth = self.clone();
        tokio::spawn(async move {
            if let Err(error) = auth.mail_reset(&email).await {
                tracing::warn!(%error, "a password reset link could not be made");
            }
        });
    }

    async fn mail_reset(&self, email: &Email) -> Result<(), AuthError> {
        let Some(user) = self.store.user_by_email(email).await? else {
            return Ok(());
        };
        let Some(mailer) = &self.config.mailer else {
            tracing::warn!(user_id = %user.id, "a password reset was asked for, but no mail server is configured (BERTH_SMTP_URL)");
            return Ok(());
        };
        if user.disabled {
            return Ok(());
        }
        if self
            .mail_throttled(user.id, TokenPurpose::Reset)
            .await?
            .is_some()
        {
            tracing::info!(user_id = %user.id, "password reset mail throttled");
            return Ok(());
        }
        let secret = Secret::generate();
        self.store
            .create_account_token(NewAccountToken {
                secret_hash: secret.hash(),
                user_id: user.id,
                purpose: TokenPurpose::Reset,
                email: user.email.clone(),
                expires_at: OffsetDateTime::now_utc() + RESET_TTL,
            })
            .await?;
        mailer.send_reset(user.email, secret.expose(), RESET_TTL.whole_minutes());
        Ok(())
    }

    /// Sets a new password with a mailed reset link; every session and
    /// personal access token of the account ends. A link that is unknown,
    /// used, expired or for an address the account no longer has is refused
    /// naming `token`. The user as they are now.
    pub async fn reset_password(
        &self,
        token: &str,
        new_password: &Password,
    ) -> Result<UserRecord, AuthError> {
        let hash = Secret::from_client(token).hash();
        // Checked before hashing, so that made-up links cost no hash.
        let known = self
            .store
            .account_token_user(&hash, TokenPurpose::Reset, OffsetDateTime::now_utc())
            .await?;
        if known.is_none() {
            return Err(invalid_link("token"));
        }
        let password_hash = self.hasher.hash(new_password).await?;
        let user = self
            .store
            .use_reset_token(&hash, OffsetDateTime::now_utc(), &password_hash)
            .await?
            .ok_or_else(|| invalid_link("token"))?;
        self.tokens.forget(|p| p.user.id == user.id);
        tracing::info!(user_id = %user.id, "password reset by mailed link");
        Ok(user)
    }

    /// Changes the caller's password when `current` is their password;
    /// counted like a login (and refused as one, `RateLimited`, after
    /// repeated failures). With `revoke_others`, every other session and
    /// every personal access token but the one in use end.
    pub async fn change_password(
        &self,
        principal: &Principal,
        current: &Password,
        new_password: &Password,
        revoke_others: bool,
        client: Option<IpAddr>,
    ) -> Result<(), AuthError> {
        let user = &principal.user;
        let attempt = self
            .throttle
            .admit_login(user.email.as_str(), client, OffsetDateTime::now_utc())
            .await?;
        let stored = self.store.user_by_id(user.id).await?;
        let matches = match self
            .hasher
            .verify(current, stored.as_ref().map(|u| u.password_hash.as_str()))
            .await
        {
            Ok(matches) => matches,
            Err(e) => {
                self.throttle.uncount(attempt).await;
                return Err(e);
            }
        };
        if !matches {
            tracing::info!(user_id = %user.id, "password change refused: wrong current password");
            return Err(AuthError::InvalidCredentials);
        }
        self.throttle.succeeded(attempt).await;
        let password_hash = self.hasher.hash(new_password).await?;
        let keep = revoke_others.then_some(match &principal.via {
            Via::Session { secret_hash } => KeepCredential::Session(secret_hash),
            Via::Token { id } => KeepCredential::Token(*id),
        });
        self.store
            .change_password(user.id, &password_hash, keep)
            .await?;
        // Revoked tokens stop at once, and the kept ones are read again
        // from the store with `must_change_password` cleared (a cached one
        // would go on being refused until the change is made).
        self.tokens.forget(|p| p.user.id == user.id);
        tracing::info!(user_id = %user.id, revoke_others, "password changed");
        Ok(())
    }

    /// When the last mail of `purpose` to `user_id` is too recent, how long
    /// until another may go.
    async fn mail_throttled(
        &self,
        user_id: Uuid,
        purpose: TokenPurpose,
    ) -> Result<Option<Duration>, AuthError> {
        let now = OffsetDateTime::now_utc();
        if self
            .store
            .account_tokens_since(user_id, purpose, now - MAIL_GAP)
            .await?
            > 0
        {
            return Ok(Some(MAIL_GAP.unsigned_abs()));
        }
        if self
            .store
            .account_tokens_since(user_id, purpose, now - MAIL_WINDOW)
            .await?
            >= MAILS_PER_WINDOW
        {
            return Ok(Some(MAIL_WINDOW.unsigned_abs()));
        }
        Ok(None)
    }

    async fn mail_verification(&self, mailer: &Mailer, user: &UserRecord) -> Result<(), AuthError> {
        let secret = Secret::generate();
        self.store
            .create_account_token(NewAccountToken {
                secret_hash: secret.hash(),
                user_id: user.id,
                purpose: TokenPurpose::Verify,
                email: user.email.clone(),
                expires_at: OffsetDateTime::now_utc() + VERIFY_TTL,
            })
            .await?;
        mailer.send_verification(
            user.email.clone(),
            secret.expose(),
            VERIFY_TTL.whole_hours(),
        );
        Ok(())
    }

    /// The store behind the service, for the routes that only read it.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Opens a session for `user`, whose identity the caller has proved some
    /// other way (single sign-on); `Disabled` when the account is disabled.
    pub async fn open_session(&self, user: UserRecord) -> Result<NewSession, AuthError> {
        if user.disabled {
            return Err(AuthError::Disabled);
        }
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
