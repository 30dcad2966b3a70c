use crate::AuthError;
use berth_store::{FailureWindow, Store};
use std::net::IpAddr;
use std::time::Duration;
use time::OffsetDateTime;

/// How many failed logins are tolerated, per email and per client address,
/// within one window.
#[derive(Debug, Clone, Copy)]
pub struct LoginLimits {
    pub per_email: u32,
    pub per_client: u32,
    pub window: Duration,
}

impl Default for LoginLimits {
    fn default() -> Self {
        Self {
            per_email: 5,
            per_client: 50,
            window: Duration::from_secs(15 * 60),
        }
    }
}

/// Counts failed logins in fixed windows, in the store, so that every replica
/// enforces the same limits.
pub struct LoginLimiter {
    limits: LoginLimits,
    store: Store,
}

impl LoginLimiter {
    pub fn new(limits: LoginLimits, store: Store) -> Self {
        Self { limits, store }
    }

    /// `Err(RateLimited)` when either the email or the client is over its limit.
    pub async fn check(
        &self,
        email: &str,
        client: Option<IpAddr>,
        now: OffsetDateTime,
    ) -> Result<(), AuthError> {
        let windows = self
            .store
            .login_failures(&subjects(email, client), now - self.limits.window)
            .await?;
        match retry_after(&self.limits, &windows, now) {
            Some(retry_after) => Err(AuthError::RateLimited { retry_after }),
            None => Ok(()),
        }
    }

    pub async fn record_failure(
        &self,
        email: &str,
        client: Option<IpAddr>,
        now: OffsetDateTime,
    ) -> Result<(), AuthError> {
        self.store
            .record_login_failure(&subjects(email, client), now, now - self.limits.window)
            .await?;
        Ok(())
    }

    /// A successful login clears the email's count (not the client's: one
    /// valid account must not launder guesses at others).
    pub async fn record_success(&self, email: &str) -> Result<(), AuthError> {
        self.store
            .clear_login_failures(&email_subject(email))
            .await?;
        Ok(())
    }

    /// Forgets windows that are over; returns how many went.
    pub async fn sweep(&self, now: OffsetDateTime) -> Result<u64, AuthError> {
        Ok(self
            .store
            .delete_stale_login_failures(now - self.limits.window)
            .await?)
    }
}

/// Windows are kept per subject: `email:<address>` or `client:<ip>`.
const EMAIL: &str = "email:";
const CLIENT: &str = "client:";

fn email_subject(email: &str) -> String {
    format!("{EMAIL}{email}")
}

fn subjects(email: &str, client: Option<IpAddr>) -> Vec<String> {
    let mut subjects = vec![email_subject(email)];
    subjects.extend(client.map(|ip| format!("{CLIENT}{ip}")));
    subjects
}

/// How long until no window of `windows` (all still open at `now`) is at its
/// subject's limit; `None` when none is.
fn retry_after(
    limits: &LoginLimits,
    windows: &[FailureWindow],
    now: OffsetDateTime,
) -> Option<Duration> {
    windows
        .iter()
        .filter(|w| {
            let limit = if w.subject.starts_with(EMAIL) {
                limits.per_email
            } else {
                limits.per_client
            };
            w.failures >= limit
        })
        .map(|w| {
            let ends = w.window_started + limits.window;
            Duration::try_from(ends - now).unwrap_or(Duration::ZERO)
        })
        .max()
        .filter(|wait| !wait.is_zero())
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: LoginLimits = LoginLimits {
        per_email: 2,
        per_client: 3,
        window: Duration::from_secs(60),
    };

    fn window(subject: &str, started: OffsetDateTime, failures: u32) -> FailureWindow {
        FailureWindow {
            subject: subject.into(),
            window_started: started,
            failures,
        }
    }

    #[test]
    fn an_email_at_its_limit_waits_for_the_end_of_its_window() {
        let t0 = OffsetDateTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        let later = t0 + Duration::from_secs(10);
        assert_eq!(
            retry_after(&LIMITS, &[window("email:a@x.io", t0, 1)], later),
            None
        );
        assert_eq!(
            retry_after(&LIMITS, &[window("email:a@x.io", t0, 2)], later),
            Some(Duration::from_secs(50))
        );
        assert_eq!(
            retry_after(
                &LIMITS,
                &[window("email:a@x.io", t0, 2)],
                t0 + Duration::from_secs(60)
            ),
            None
        );
    }

    #[test]
    fn a_client_has_its_own_higher_limit_and_the_longest_wait_wins() {
        let t0 = OffsetDateTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        let now = t0 + Duration::from_secs(30);
        assert_eq!(
            retry_after(&LIMITS, &[window("client:10.0.0.1", t0, 2)], now),
            None
        );
        let windows = [
            window("email:a@x.io", t0 + Duration::from_secs(20), 2),
            window("client:10.0.0.1", t0, 3),
        ];
        assert_eq!(
            retry_after(&LIMITS, &windows, now),
            Some(Duration::from_secs(50))
        );
    }

    #[test]
    fn subjects_name_the_email_and_the_client() {
        assert_eq!(
            subjects("a@x.io", Some("10.0.0.1".parse().unwrap())),
            ["email:a@x.io", "client:10.0.0.1"]
        );
        assert_eq!(subjects("a@x.io", None), ["email:a@x.io"]);
    }
}
