use berth_core::validation::ValidationErrors;
use std::time::Duration;
use thiserror::Error;

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
    #[error("too many failed logins")]
    RateLimited { retry_after: Duration },
    #[error("password hashing failed: {0}")]
    Hashing(String),
    #[error(transparent)]
    Store(#[from] berth_store::StoreError),
}
