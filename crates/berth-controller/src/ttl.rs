//! Time to live: when an environment expires, when people are warned, and
//! when the controller must look again. Pure.

use k8s_openapi::jiff::{SignedDuration, Timestamp};
use std::time::Duration;

/// A warning sent once before expiry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Warning {
    Day,
    Hour,
}

impl Warning {
    fn lead(self) -> SignedDuration {
        match self {
            Warning::Day => SignedDuration::from_hours(24),
            Warning::Hour => SignedDuration::from_hours(1),
        }
    }

    pub fn text(self) -> &'static str {
        match self {
            Warning::Day => "24 hours",
            Warning::Hour => "1 hour",
        }
    }
}

/// What the TTL asks for now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Due {
    Nothing,
    Warn(Warning),
    Expire,
}

pub fn expires_at(created: Timestamp, ttl_seconds: Option<u64>) -> Option<Timestamp> {
    let seconds = i64::try_from(ttl_seconds?).ok()?;
    created.checked_add(SignedDuration::from_secs(seconds)).ok()
}

/// The most urgent step due at `now`: within the last hour only the hour's
/// warning is due, so a short-lived environment is not told "24 hours".
pub fn due(now: Timestamp, expires_at: Timestamp) -> Due {
    if now >= expires_at {
        Due::Expire
    } else if now >= expires_at - Warning::Hour.lead() {
        Due::Warn(Warning::Hour)
    } else if now >= expires_at - Warning::Day.lead() {
        Due::Warn(Warning::Day)
    } else {
        Due::Nothing
    }
}

/// How long until the next step (a warning or the expiry) falls due.
pub fn until_next(now: Timestamp, expires_at: Timestamp) -> Duration {
    [
        expires_at - Warning::Day.lead(),
        expires_at - Warning::Hour.lead(),
        expires_at,
    ]
    .into_iter()
    .find(|t| *t > now)
    .map_or(Duration::ZERO, |t| {
        Duration::try_from(t.duration_since(now)).unwrap_or(Duration::ZERO)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    #[test]
    fn expiry_is_creation_plus_ttl() {
        let created = at("2025-01-01T00:00:00Z");
        assert_eq!(
            expires_at(created, Some(72 * 3600)),
            Some(at("2025-01-04T00:00:00Z"))
        );
        assert_eq!(expires_at(created, None), None);
    }

    #[test]
    fn steps_follow_the_clock() {
        let exp = at("2025-01-04T00:00:00Z");
        assert_eq!(due(at("2025-01-02T00:00:00Z"), exp), Due::Nothing);
        assert_eq!(
            due(at("2025-01-03T00:00:00Z"), exp),
            Due::Warn(Warning::Day)
        );
        assert_eq!(
            due(at("2025-01-03T23:00:00Z"), exp),
            Due::Warn(Warning::Hour)
        );
        assert_eq!(due(exp, exp), Due::Expire);
    }

    #[test]
    fn the_next_deadline_is_the_nearest_future_step() {
        let exp = at("2025-01-04T00:00:00Z");
        assert_eq!(
            until_next(at("2025-01-02T00:00:00Z"), exp),
            Duration::from_secs(24 * 3600)
        );
        assert_eq!(
            until_next(at("2025-01-03T22:00:00Z"), exp),
            Duration::from_secs(3600)
        );
        assert_eq!(
            until_next(at("2025-01-03T23:59:00Z"), exp),
            Duration::from_secs(60)
        );
        assert_eq!(until_next(exp, exp), Duration::ZERO);
    }
}
