//! Throttling of logins and registrations. Each attempt is counted in the
//! store (shared by every replica) by one atomic increment before any password
//! is hashed, so that attempts sent in parallel cannot all pass a check that
//! reads the count before the failures are written; an attempt that turns out
//! not to be a failure is taken back.
//!
//! Within a replica, attempts for one email from one client also take turns,
//! each until it is judged: so that parallel logins of one person all see
//! the counts their predecessors left (a success clears them) instead of
//! being refused for attempts still in flight, and so that a flood waits
//! instead of writing. A subject found over its limit is remembered for a
//! moment, so that the rest of a flood is refused without a write each.

use crate::AuthError;
use berth_store::{FailureWindow, Store};
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use time::OffsetDateTime;
use tokio::sync::OwnedMutexGuard;

/// How many attempts are tolerated within one window.
///
/// Failed logins are counted three ways. Per email and client, so that one
/// client guessing at an account is stopped after a few tries without locking
/// the account's owner out elsewhere. Per email, with a higher limit that
/// only a guess spread over many clients reaches. Per client, so that one
/// client cannot guess at many accounts.
#[derive(Debug, Clone, Copy)]
pub struct ThrottleLimits {
    /// Failed logins for one email from one client.
    pub per_email_and_client: u32,
    /// Failed logins for one email from every client together.
    pub per_email: u32,
    /// Failed logins from one client, for any emails.
    pub per_client: u32,
    /// The window of the three login counts.
    pub login_window: Duration,
    /// Registrations from one client, successful or not.
    pub registrations_per_client: u32,
    /// The window of the registration count.
    pub registration_window: Duration,
}

impl Default for ThrottleLimits {
    fn default() -> Self {
        Self {
            per_email_and_client: 5,
            per_email: 50,
            per_client: 50,
            login_window: Duration::from_secs(15 * 60),
            registrations_per_client: 10,
            registration_window: Duration::from_secs(3600),
        }
    }
}

/// How long a subject found over its limit is refused from memory. Short,
/// because counts can fall back under a limit within a window (attempts in
/// flight elsewhere are taken back when they succeed); long enough that a
/// flood costs the store one write a second.
const REMEMBER_REFUSAL: Duration = Duration::from_secs(1);
/// Refusals remembered at most; past this the memory starts over (the store
/// still refuses, at the cost of a write each).
const REFUSED_MAX: usize = 10_000;

/// Counts attempts in the store and says which may go on.
pub(crate) struct Throttle {
    limits: ThrottleLimits,
    store: Store,
    turns: Turns,
    /// Subjects found over their limit: when their window ends, and when to
    /// stop refusing them from memory.
    refused: Mutex<HashMap<String, (OffsetDateTime, Instant)>>,
}

/// The counts one admitted attempt added, until it is judged; a login also
/// holds its turn until then. Dropping it leaves the counts as a failure,
/// which is the safe side when a request ends half-way.
#[must_use = "settle the attempt once it is judged"]
pub(crate) struct Attempt {
    counted: Vec<String>,
    _turn: Option<Turn>,
}

impl Throttle {
    pub(crate) fn new(limits: ThrottleLimits, store: Store) -> Self {
        Self {
            limits,
            store,
            turns: Turns::default(),
            refused: Mutex::default(),
        }
    }

    /// Counts a login attempt for `email` from `client`, or refuses it when a
    /// count is over its limit. The counts are taken in turn: (email, client),
    /// client, email; an attempt refused by one is taken back from those
    /// before it, so that a client refused for its own guesses adds nothing
    /// to the email's count, which others share.
    pub(crate) async fn admit_login(
        &self,
        email: &str,
        client: Option<IpAddr>,
        now: OffsetDateTime,
    ) -> Result<Attempt, AuthError> {
        let client = client.map(client_key);
        let pair = format!(
            "{PAIR}{}|{email}",
            client.as_deref().unwrap_or(UNKNOWN_CLIENT)
        );
        let turn = self.turns.take(&pair).await;
        let mut checks = vec![(pair, self.limits.per_email_and_client)];
        checks.extend(client.map(|c| (format!("{CLIENT}{c}"), self.limits.per_client)));
        checks.push((format!("{EMAIL}{email}"), self.limits.per_email));
        let counted = self.admit(&checks, self.limits.login_window, now).await?;
        Ok(Attempt {
            counted,
            _turn: Some(turn),
        })
    }

    /// Counts a registration from `client`, or refuses it over the limit.
    /// Registrations take turns only while they are counted: each counts,
    /// whatever its outcome.
    pub(crate) async fn admit_registration(
        &self,
        client: Option<IpAddr>,
        now: OffsetDateTime,
    ) -> Result<Attempt, AuthError> {
        let client = client.map_or_else(|| UNKNOWN_CLIENT.to_owned(), client_key);
        let subject = format!("{REGISTER}{client}");
        let _turn = self.turns.take(&subject).await;
        let checks = [(subject, self.limits.registrations_per_client)];
        let counted = self
            .admit(&checks, self.limits.registration_window, now)
            .await?;
        Ok(Attempt {
            counted,
            _turn: None,
        })
    }

    /// Counts `checks` in the store, or refuses; returns the subjects counted.
    async fn admit(
        &self,
        checks: &[(String, u32)],
        window: Duration,
        now: OffsetDateTime,
    ) -> Result<Vec<String>, AuthError> {
        if let Some(ends) = self.remembered(checks) {
            return Err(AuthError::RateLimited {
                retry_after: until(ends, now),
            });
        }
        let Some(over) = self.store.count_attempts(checks, now, now - window).await? else {
            return Ok(checks.iter().map(|(subject, _)| subject.clone()).collect());
        };
        let limit = checks
            .iter()
            .find(|(subject, _)| *subject == over.subject)
            .map_or(0, |(_, limit)| *limit);
        if over.failures == limit + 1 {
            // Once per window and subject, however long the flood.
            tracing::warn!(
                kind = subject_kind(&over.subject),
                limit,
                "throttling: the limit is reached; further attempts get 429 until the window ends"
            );
        }
        let ends = over.window_started + window;
        self.remember(over, ends);
        Err(AuthError::RateLimited {
            retry_after: until(ends, now),
        })
    }

    /// When the window ends of a subject of `checks` remembered as refused.
    fn remembered(&self, checks: &[(String, u32)]) -> Option<OffsetDateTime> {
        let refused = self.refused.lock().expect("throttle memory lock");
        let now = Instant::now();
        checks
            .iter()
            .filter_map(|(subject, _)| refused.get(subject))
            .filter(|(_, forget_at)| *forget_at > now)
            .map(|(ends, _)| *ends)
            .max()
    }

    fn remember(&self, over: FailureWindow, ends: OffsetDateTime) {
        let mut refused = self.refused.lock().expect("throttle memory lock");
        let now = Instant::now();
        if refused.len() >= REFUSED_MAX {
            refused.retain(|_, (_, forget_at)| *forget_at > now);
            if refused.len() >= REFUSED_MAX {
                refused.clear();
            }
        }
        refused.insert(over.subject, (ends, now + REMEMBER_REFUSAL));
    }

    /// Takes the attempt back: it was never judged (the hashing queue was
    /// full, the store failed), or it was no failure.
    pub(crate) async fn uncount(&self, attempt: Attempt) {
        self.take_back(&attempt, None).await;
    }

    /// The password was right: the (email, client) count starts over, since
    /// whoever mistyped there has now proved they know it, and the attempt
    /// is taken back from the shared counts (which a success must not clear:
    /// that would wipe out what other clients' failures added).
    pub(crate) async fn succeeded(&self, attempt: Attempt) {
        let pair = attempt
            .counted
            .iter()
            .find(|s| s.starts_with(PAIR))
            .cloned();
        self.take_back(&attempt, pair.as_deref()).await;
    }

    async fn take_back(&self, attempt: &Attempt, clear: Option<&str>) {
        let subjects: Vec<&str> = attempt.counted.iter().map(String::as_str).collect();
        // Best effort: an attempt left counted only makes the limit stricter.
        if let Err(e) = self.store.uncount_attempts(&subjects, clear).await {
            tracing::warn!(error = %e, "could not take back a throttled attempt");
        }
    }

    /// Forgets windows that are over; returns how many went.
    pub(crate) async fn sweep(&self, now: OffsetDateTime) -> Result<u64, AuthError> {
        let longest = self
            .limits
            .login_window
            .max(self.limits.registration_window);
        Ok(self
            .store
            .delete_stale_login_failures(now - longest)
            .await?)
    }
}

/// A lock per subject with an attempt in progress on this replica; an entry
/// lives only while someone holds or waits for it.
#[derive(Default)]
struct Turns(Arc<Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>>);

/// One attempt's turn at its subject, until dropped.
struct Turn {
    subject: String,
    turns: Arc<Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>>,
    guard: Option<OwnedMutexGuard<()>>,
}

impl Turns {
    /// Waits for `subject`'s turn.
    async fn take(&self, subject: &str) -> Turn {
        let lock = {
            let mut turns = self.0.lock().expect("turns lock");
            turns.entry(subject.to_owned()).or_default().clone()
        };
        Turn {
            subject: subject.to_owned(),
            turns: self.0.clone(),
            guard: Some(lock.lock_owned().await),
        }
    }
}

impl Drop for Turn {
    fn drop(&mut self) {
        self.guard.take();
        let mut turns = self.turns.lock().expect("turns lock");
        // Only the map holds it: nobody else waits for this subject.
        if turns
            .get(&self.subject)
            .is_some_and(|lock| Arc::strong_count(lock) == 1)
        {
            turns.remove(&self.subject);
        }
    }
}

/// Counts are kept per subject: `pair:<client>|<email>`, `client:<client>`,
/// `email:<email>` and `register:<client>`. The client comes first in a pair
/// because it cannot contain `|`.
const PAIR: &str = "pair:";
const CLIENT: &str = "client:";
const EMAIL: &str = "email:";
const REGISTER: &str = "register:";
/// Stands for the client when the server does not know the peer's address.
const UNKNOWN_CLIENT: &str = "-";

/// The kind of a subject, for logs that must not carry emails or addresses.
fn subject_kind(subject: &str) -> &str {
    subject.split_once(':').map_or(subject, |(kind, _)| kind)
}

/// The part of an address that one client controls: an IPv4 address, or the
/// /64 of an IPv6 one (a single host is usually given a whole /64, so counting
/// its addresses apart would give it 2^64 allowances).
fn client_key(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => {
                let [a, b, c, d, ..] = v6.segments();
                format!("{a:x}:{b:x}:{c:x}:{d:x}::/64")
            }
        },
    }
}

/// How long from `now` until `ends`: at least a second, since a client told
/// to retry at once would be refused again.
fn until(ends: OffsetDateTime, now: OffsetDateTime) -> Duration {
    Duration::try_from(ends - now)
        .unwrap_or(Duration::ZERO)
        .max(Duration::from_secs(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refusal_waits_for_the_end_of_its_window_and_at_least_a_second() {
        let t0 = OffsetDateTime::from_unix_timestamp(2_000_000_000).unwrap();
        let later = |seconds| t0 + Duration::from_secs(seconds);
        assert_eq!(until(later(60), t0), Duration::from_secs(60));
        assert_eq!(until(t0, later(10)), Duration::from_secs(1));
    }

    #[test]
    fn clients_are_counted_by_address_or_by_ipv6_slash_64() {
        let key = |ip: &str| client_key(ip.parse().unwrap());
        assert_eq!(key("10.0.0.1"), "10.0.0.1");
        assert_eq!(key("::ffff:10.0.0.1"), "10.0.0.1");
        assert_eq!(key("2001:db8:1:2:3:4:5:6"), "2001:db8:1:2::/64");
        assert_eq!(key("2001:db8:1:2:ffff::1"), key("2001:db8:1:2::9"));
        assert_eq!(subject_kind("pair:10.0.0.1|a@x.io"), "pair");
    }
}
