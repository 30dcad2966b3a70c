//! Authentication: who is calling. Passwords are hashed with argon2id off the
//! async runtime, a bounded number at a time; session and token secrets are
//! random and stored only as SHA-256 hashes; logins are throttled per email
//! and client, per email and per client, registrations per client, all
//! counted before any password is hashed.
//!
//! HTTP concerns (cookies, headers, the extractor) live in `berth-api`; this
//! crate only decides.

mod error;
mod passwords;
mod rate_limit;
mod secrets;
mod service;

pub use error::AuthError;
pub use passwords::PasswordHasher;
pub use rate_limit::ThrottleLimits;
pub use secrets::{Secret, TOKEN_PREFIX, hash_secret};
pub use service::{
    Auth, AuthConfig, Credential, IssuedToken, NewSession, Principal, Registration, Via,
};
