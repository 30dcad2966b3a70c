use berth_core::validation::ValidationErrors;
use std::time::Duration;
use thiserror::Error;

/// Everything authentication can refuse or fail at.
#[derive(Debug, Error)]
pub enum AuthError {
    #[error(transparent)]
    Invalid(#[from] ValidationErrors),
    /// Unknown email and wrong password alike: the answer must not tell them apart.
    #[error("invalid email or password")]
    InvalidCredentials,
    #[error("no valid session or token")]
    Unauthenticated,
    #[error("this account is disabled")]
    Disabled,
    #[error("registration is closed")]
    RegistrationClosed,
    #[error("an account with this email exists")]
    EmailTaken,
    /// Too many attempts from this client or for this email; try after `retry_after`.
    #[error("too many attempts")]
    RateLimited { retry_after: Duration },
    /// The queue of password hashes is full; try after `retry_after`.
    #[error("too many passwords are being checked; try again shortly")]
    Busy { retry_after: Duration },
    /// The change would leave no enabled admin.
    #[error("the last admin cannot be demoted or disabled; make another admin first")]
    LastAdmin,
    /// Mail settings that cannot work; names the variable, never a secret.
    #[error("{0}")]
    MailConfig(String),
    /// A mail was not sent (logged; the user asks again).
    #[error("mail not sent: {0}")]
    Mail(String),
    #[error("password hashing failed: {0}")]
    Hashing(String),
    #[error(transparent)]
    Store(#[from] berth_store::StoreError),
}
