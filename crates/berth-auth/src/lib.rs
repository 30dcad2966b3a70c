//! Authentication: who is calling. Passwords are hashed with argon2id off the
//! async runtime, a bounded number at a time; session and token secrets are
//! random and stored only as SHA-256 hashes; logins are throttled per email
//! and client, per email and per client, registrations per client, all
//! counted before any password is hashed. With a mail server configured,
//! addresses are verified by a mailed link, and forgotten passwords reset by
//! one; one-time links are stored as hashes, like sessions.
//!
//! HTTP concerns (cookies, headers, the extractor) live in `berth-api`; this
//! crate only decides.

mod error;
mod mail;
mod passwords;
mod rate_limit;
mod secrets;
mod service;

pub use error::AuthError;
pub use mail::{DEFAULT_FROM as DEFAULT_MAIL_FROM, Mailer};
pub use passwords::{PasswordHasher, new_password};
pub use rate_limit::ThrottleLimits;
pub use secrets::{Secret, TOKEN_PREFIX, hash_secret};
pub use service::{
    Auth, AuthConfig, Credential, IssuedToken, NewSession, Principal, Registration, Via,
};
