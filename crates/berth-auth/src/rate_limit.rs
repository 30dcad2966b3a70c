use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

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

/// Counts failed logins in fixed windows. Kept in memory: each replica limits on
/// its own, which bounds guessing to `replicas x limit` per window.
pub struct LoginLimiter {
    limits: LoginLimits,
    failures: Mutex<HashMap<Key, Window>>,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Key {
    Email(String),
    Client(IpAddr),
}

#[derive(Debug, Clone, Copy)]
struct Window {
    started: Instant,
    failures: u32,
}

/// Entries kept before expired ones are swept, so memory stays bounded under a
/// spray of random emails.
const SWEEP_AT: usize = 10_000;

impl LoginLimiter {
    pub fn new(limits: LoginLimits) -> Self {
        Self {
            limits,
            failures: Mutex::new(HashMap::new()),
        }
    }

    /// `Err(retry_after)` when either the email or the client is over its limit.
    pub fn check(&self, email: &str, client: Option<IpAddr>, now: Instant) -> Result<(), Duration> {
        let failures = self.failures.lock().expect("limiter lock");
        let mut wait = Duration::ZERO;
        for (key, limit) in self.keys(email, client) {
            if let Some(window) = failures.get(&key) {
                let elapsed = now.saturating_duration_since(window.started);
                if elapsed < self.limits.window && window.failures >= limit {
                    wait = wait.max(self.limits.window - elapsed);
                }
            }
        }
        if wait.is_zero() { Ok(()) } else { Err(wait) }
    }

    pub fn record_failure(&self, email: &str, client: Option<IpAddr>, now: Instant) {
        let mut failures = self.failures.lock().expect("limiter lock");
        if failures.len() >= SWEEP_AT {
            let window = self.limits.window;
            failures.retain(|_, w| now.saturating_duration_since(w.started) < window);
        }
        for (key, _) in self.keys(email, client) {
            let entry = failures.entry(key).or_insert(Window {
                started: now,
                failures: 0,
            });
            if now.saturating_duration_since(entry.started) >= self.limits.window {
                *entry = Window {
                    started: now,
                    failures: 0,
                };
            }
            entry.failures += 1;
        }
    }

    /// A successful login clears the email's count (not the client's: one
    /// valid account must not launder guesses at others).
    pub fn record_success(&self, email: &str) {
        self.failures
            .lock()
            .expect("limiter lock")
            .remove(&Key::Email(email.to_owned()));
    }

    fn keys(&self, email: &str, client: Option<IpAddr>) -> Vec<(Key, u32)> {
        let mut keys = vec![(Key::Email(email.to_owned()), self.limits.per_email)];
        if let Some(ip) = client {
            keys.push((Key::Client(ip), self.limits.per_client));
        }
        keys
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_an_email_after_its_limit_until_the_window_ends() {
        let limits = LoginLimits {
            per_email: 2,
            per_client: 10,
            window: Duration::from_secs(60),
        };
        let limiter = LoginLimiter::new(limits);
        let t0 = Instant::now();
        let ip = Some("127.0.0.1".parse().unwrap());
        limiter.record_failure("a@x.io", ip, t0);
        assert!(limiter.check("a@x.io", ip, t0).is_ok());
        limiter.record_failure("a@x.io", ip, t0);
        let wait = limiter
            .check("a@x.io", ip, t0 + Duration::from_secs(10))
            .unwrap_err();
        assert_eq!(wait, Duration::from_secs(50));
        assert!(limiter.check("b@x.io", ip, t0).is_ok());
        assert!(
            limiter
                .check("a@x.io", ip, t0 + Duration::from_secs(61))
                .is_ok()
        );
    }

    #[test]
    fn blocks_a_client_spraying_many_emails() {
        let limits = LoginLimits {
            per_email: 5,
            per_client: 3,
            window: Duration::from_secs(60),
        };
        let limiter = LoginLimiter::new(limits);
        let t0 = Instant::now();
        let ip = Some("10.0.0.1".parse().unwrap());
        for i in 0..3 {
            limiter.record_failure(&format!("u{i}@x.io"), ip, t0);
        }
        assert!(limiter.check("fresh@x.io", ip, t0).is_err());
        assert!(
            limiter
                .check("fresh@x.io", Some("10.0.0.2".parse().unwrap()), t0)
                .is_ok()
        );
    }
}
