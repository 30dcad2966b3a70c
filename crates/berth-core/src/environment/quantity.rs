//! Kubernetes resource quantities (`500m`, `2`, `4Gi`, `10G`), parsed to exact
//! integers so that policy can compare and add them, and printed back canonically.

use crate::validation::ValidationErrors;
use serde::Serialize;
use std::cmp::Ordering;
use std::fmt;

/// Longest quantity text accepted: real quantities are a handful of characters.
const MAX_TEXT_LEN: usize = 24;

const DECIMAL_SUFFIXES: [(&str, u32); 7] = [
    ("", 0),
    ("k", 3),
    ("M", 6),
    ("G", 9),
    ("T", 12),
    ("P", 15),
    ("E", 18),
];
const BINARY_SUFFIXES: [(&str, u32); 6] = [
    ("Ki", 10),
    ("Mi", 20),
    ("Gi", 30),
    ("Ti", 40),
    ("Pi", 50),
    ("Ei", 60),
];

/// Splits `1.5Gi` into its digits before and after the point and its suffix.
fn split(raw: &str) -> Option<(&str, &str, &str)> {
    if raw.is_empty() || raw.len() > MAX_TEXT_LEN {
        return None;
    }
    let end = raw
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(raw.len());
    let (number, suffix) = raw.split_at(end);
    let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
    let valid = !whole.is_empty()
        && whole.bytes().all(|b| b.is_ascii_digit())
        && fraction.bytes().all(|b| b.is_ascii_digit())
        && !(number.ends_with('.'));
    valid.then_some((whole, fraction, suffix))
}

/// `whole.fraction * multiplier`, when that is a whole number.
fn scale(whole: &str, fraction: &str, multiplier: u128) -> Option<u128> {
    let digits: u128 = format!("{whole}{fraction}").parse().ok()?;
    let divisor = 10u128.checked_pow(u32::try_from(fraction.len()).ok()?)?;
    let product = digits.checked_mul(multiplier)?;
    (product % divisor == 0).then(|| product / divisor)
}

/// An amount of CPU, held in thousandths of a core.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CpuQuantity {
    millis: u64,
}

impl CpuQuantity {
    /// Far above any node, low enough that sums over many apps cannot overflow.
    pub const MAX_MILLIS: u64 = 10_000_000;
    const RULE: &str =
        "must be a CPU quantity such as 500m or 2 (whole thousandths, from 1m to 10000)";

    pub fn parse(field: &str, raw: &str) -> Result<Self, ValidationErrors> {
        let bad = || ValidationErrors::single(field, Self::RULE);
        let (whole, fraction, suffix) = split(raw).ok_or_else(bad)?;
        let multiplier = match suffix {
            "" => 1000,
            "m" => 1,
            _ => return Err(bad()),
        };
        let millis = scale(whole, fraction, multiplier).ok_or_else(bad)?;
        let millis = u64::try_from(millis).map_err(|_| bad())?;
        Self::from_millis(millis).ok_or_else(bad)
    }

    /// `None` outside `1..=MAX_MILLIS`.
    pub fn from_millis(millis: u64) -> Option<Self> {
        (1..=Self::MAX_MILLIS)
            .contains(&millis)
            .then_some(Self { millis })
    }

    pub fn millis(self) -> u64 {
        self.millis
    }
}

impl fmt::Display for CpuQuantity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.millis.is_multiple_of(1000) {
            write!(f, "{}", self.millis / 1000)
        } else {
            write!(f, "{}m", self.millis)
        }
    }
}

impl Serialize for CpuQuantity {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

/// How a byte quantity was written, kept so that `4Gi` prints as `4Gi` and
/// `10G` as `10G`, as Kubernetes itself canonicalises them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Notation {
    Decimal,
    Binary,
}

/// An amount of memory or storage in bytes. Equality and order are by size alone.
#[derive(Debug, Clone, Copy)]
pub struct ByteQuantity {
    bytes: u64,
    notation: Notation,
}

impl ByteQuantity {
    /// One pebibyte: beyond any environment Berth is meant to host.
    pub const MAX_BYTES: u64 = 1 << 50;
    /// One gibibyte.
    pub const GIB: ByteQuantity = ByteQuantity {
        bytes: 1 << 30,
        notation: Notation::Binary,
    };
    const RULE: &str = "must be a whole number of bytes such as 512Mi, 4Gi or 10G (suffixes k, M, G, T, P, Ki, Mi, Gi, Ti, Pi; at most 1Pi)";

    pub fn parse(field: &str, raw: &str) -> Result<Self, ValidationErrors> {
        let bad = || ValidationErrors::single(field, Self::RULE);
        let (whole, fraction, suffix) = split(raw).ok_or_else(bad)?;
        let (multiplier, notation) =
            if let Some((_, exp)) = DECIMAL_SUFFIXES.iter().find(|(s, _)| *s == suffix) {
                (10u128.pow(*exp), Notation::Decimal)
            } else if let Some((_, exp)) = BINARY_SUFFIXES.iter().find(|(s, _)| *s == suffix) {
                (1u128 << exp, Notation::Binary)
            } else {
                return Err(bad());
            };
        let bytes = scale(whole, fraction, multiplier).ok_or_else(bad)?;
        let bytes = u64::try_from(bytes).map_err(|_| bad())?;
        if bytes == 0 || bytes > Self::MAX_BYTES {
            return Err(bad());
        }
        Ok(Self { bytes, notation })
    }

    /// A size in binary notation; `None` outside `1..=MAX_BYTES`.
    pub fn from_bytes(bytes: u64) -> Option<Self> {
        (1..=Self::MAX_BYTES).contains(&bytes).then_some(Self {
            bytes,
            notation: Notation::Binary,
        })
    }

    pub fn bytes(self) -> u64 {
        self.bytes
    }
}

impl PartialEq for ByteQuantity {
    fn eq(&self, other: &Self) -> bool {
        self.bytes == other.bytes
    }
}

impl Eq for ByteQuantity {}

impl PartialOrd for ByteQuantity {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for ByteQuantity {
    fn cmp(&self, other: &Self) -> Ordering {
        self.bytes.cmp(&other.bytes)
    }
}

impl fmt::Display for ByteQuantity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let bytes = u128::from(self.bytes);
        if self.notation == Notation::Binary
            && let Some((suffix, exp)) = BINARY_SUFFIXES
                .iter()
                .rev()
                .find(|(_, exp)| bytes.is_multiple_of(1u128 << exp))
        {
            return write!(f, "{}{suffix}", bytes >> exp);
        }
        let (suffix, exp) = DECIMAL_SUFFIXES
            .iter()
            .rev()
            .find(|(_, exp)| bytes.is_multiple_of(10u128.pow(*exp)))
            .unwrap_or(&DECIMAL_SUFFIXES[0]);
        write!(f, "{}{suffix}", bytes / 10u128.pow(*exp))
    }
}

impl Serialize for ByteQuantity {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

/// How many pods an environment may run at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct PodCount(u32);

impl PodCount {
    pub const MAX: u32 = 1000;

    pub fn parse(field: &str, raw: i64) -> Result<Self, ValidationErrors> {
        u32::try_from(raw)
            .ok()
            .and_then(Self::new)
            .ok_or_else(|| ValidationErrors::single(field, "must be a whole number from 1 to 1000"))
    }

    /// `None` outside `1..=MAX`.
    pub fn new(count: u32) -> Option<Self> {
        (1..=Self::MAX).contains(&count).then_some(Self(count))
    }

    pub fn get(self) -> u32 {
        self.0
    }
}

/// How many objects of one kind a namespace may hold (ConfigMaps, Secrets,
/// Services, PersistentVolumeClaims): at least one, since Kubernetes itself
/// puts a ConfigMap (`kube-root-ca.crt`) in every namespace.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ObjectCount(u32);

impl ObjectCount {
    pub const MAX: u32 = 1000;

    pub fn parse(field: &str, raw: i64) -> Result<Self, ValidationErrors> {
        u32::try_from(raw)
            .ok()
            .and_then(Self::new)
            .ok_or_else(|| ValidationErrors::single(field, "must be a whole number from 1 to 1000"))
    }

    /// `None` outside `1..=MAX`.
    pub fn new(count: u32) -> Option<Self> {
        (1..=Self::MAX).contains(&count).then_some(Self(count))
    }

    pub fn get(self) -> u32 {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_parses_to_millis_and_prints_canonically() {
        let cases = [
            ("500m", 500, "500m"),
            ("2", 2000, "2"),
            ("0.5", 500, "500m"),
            ("1.25", 1250, "1250m"),
            ("2000m", 2000, "2"),
        ];
        for (raw, millis, text) in cases {
            let cpu = CpuQuantity::parse("cpu", raw).unwrap();
            assert_eq!(
                (cpu.millis(), cpu.to_string().as_str()),
                (millis, text),
                "{raw}"
            );
        }
        for bad in [
            "", "0", "0m", "1.", ".5", "0.0005", "1Gi", "-1", "1e3", "10001", "1 ", "abc",
        ] {
            assert_eq!(
                CpuQuantity::parse("quota.cpu", bad).unwrap_err().errors()[0].field,
                "quota.cpu",
                "{bad}"
            );
        }
    }

    #[test]
    fn bytes_keep_their_notation_and_compare_by_size() {
        let cases = [
            ("4Gi", 4 << 30, "4Gi"),
            ("1024Mi", 1 << 30, "1Gi"),
            ("10G", 10_000_000_000, "10G"),
            ("1.5Gi", 3 << 29, "1536Mi"),
            ("128974848", 128_974_848, "128974848"),
            ("1000k", 1_000_000, "1M"),
        ];
        for (raw, bytes, text) in cases {
            let q = ByteQuantity::parse("memory", raw).unwrap();
            assert_eq!((q.bytes(), q.to_string().as_str()), (bytes, text), "{raw}");
        }
        assert!(ByteQuantity::parse("m", "1Gi").unwrap() > ByteQuantity::parse("m", "1G").unwrap());
        assert_eq!(
            ByteQuantity::parse("m", "1Gi").unwrap(),
            ByteQuantity::parse("m", "1073741824").unwrap()
        );
        for bad in ["", "0", "1m", "0.5", "2Pi", "1Ki5", "4gi", "1E"] {
            assert!(ByteQuantity::parse("memory", bad).is_err(), "{bad}");
        }
    }
}
