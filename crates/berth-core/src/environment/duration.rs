//! Go-style durations (`72h`, `1h30m`) for an environment's time to live.

use crate::validation::ValidationErrors;
use serde::Serialize;
use std::fmt;
use std::time::Duration;

/// How long an environment lives, in whole seconds from one minute to one year.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Ttl {
    seconds: u64,
}

const UNITS: [(char, u64); 3] = [('h', 3600), ('m', 60), ('s', 1)];

impl Ttl {
    pub const MIN_SECONDS: u64 = 60;
    pub const MAX_SECONDS: u64 = 8760 * 3600;
    const RULE: &str =
        "must be a duration such as 72h or 1h30m (units h, m, s, largest first), from 1m to 8760h";

    pub fn parse(field: &str, raw: &str) -> Result<Self, ValidationErrors> {
        let bad = || ValidationErrors::single(field, Self::RULE);
        if raw.is_empty() || raw.len() > 24 {
            return Err(bad());
        }
        let mut seconds: u64 = 0;
        let mut rest = raw;
        let mut allowed = &UNITS[..];
        while !rest.is_empty() {
            let digits = rest.find(|c: char| !c.is_ascii_digit()).ok_or_else(bad)?;
            let (number, tail) = rest.split_at(digits);
            let amount: u64 = number.parse().map_err(|_| bad())?;
            let unit = tail.chars().next().ok_or_else(bad)?;
            let position = allowed
                .iter()
                .position(|(u, _)| *u == unit)
                .ok_or_else(bad)?;
            let part = amount.checked_mul(allowed[position].1).ok_or_else(bad)?;
            seconds = seconds.checked_add(part).ok_or_else(bad)?;
            allowed = &allowed[position + 1..];
            rest = &tail[1..];
        }
        Self::from_seconds(seconds).ok_or_else(bad)
    }

    /// `None` outside `MIN_SECONDS..=MAX_SECONDS`.
    pub fn from_seconds(seconds: u64) -> Option<Self> {
        (Self::MIN_SECONDS..=Self::MAX_SECONDS)
            .contains(&seconds)
            .then_some(Self { seconds })
    }

    pub fn seconds(self) -> u64 {
        self.seconds
    }

    pub fn as_duration(self) -> Duration {
        Duration::from_secs(self.seconds)
    }
}

impl fmt::Display for Ttl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut left = self.seconds;
        for (unit, size) in UNITS {
            let amount = left / size;
            left %= size;
            if amount > 0 {
                write!(f, "{amount}{unit}")?;
            }
        }
        Ok(())
    }
}

impl Serialize for Ttl {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_go_style_and_prints_without_zero_parts() {
        for (raw, seconds, text) in [
            ("72h", 259_200, "72h"),
            ("1h30m", 5400, "1h30m"),
            ("90m", 5400, "1h30m"),
            ("1h0m0s", 3600, "1h"),
            ("61s", 61, "1m1s"),
        ] {
            let ttl = Ttl::parse("ttl", raw).unwrap();
            assert_eq!(
                (ttl.seconds(), ttl.to_string().as_str()),
                (seconds, text),
                "{raw}"
            );
        }
        for bad in [
            "", "h", "72", "30m1h", "1h1h", "59s", "8761h", "1d", "1.5h", "-1h", "1h 30m",
        ] {
            assert_eq!(
                Ttl::parse("ttl", bad).unwrap_err().errors()[0].field,
                "ttl",
                "{bad}"
            );
        }
    }
}
