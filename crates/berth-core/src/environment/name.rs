//! Names that end up as Kubernetes object names and DNS labels.

use crate::validation::ValidationErrors;
use serde::Serialize;
use std::fmt;

/// Checks a DNS label (RFC 1123, or RFC 1035 when `letter_first`) of `min..=max`
/// characters, returning what is allowed when it is not one.
fn check_label(
    field: &str,
    raw: &str,
    min: usize,
    max: usize,
    letter_first: bool,
) -> Result<String, ValidationErrors> {
    let chars_ok = raw
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    let first_ok = raw
        .bytes()
        .next()
        .is_some_and(|b| b.is_ascii_lowercase() || (!letter_first && b.is_ascii_digit()));
    let last_ok = raw
        .bytes()
        .last()
        .is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
    let len_ok = (min..=max).contains(&raw.len());
    if chars_ok && first_ok && last_ok && len_ok {
        return Ok(raw.to_owned());
    }
    let start = if letter_first {
        "starting with a letter and ending with a letter or digit"
    } else {
        "starting and ending with a letter or digit"
    };
    Err(ValidationErrors::single(
        field,
        format!("must be {min} to {max} characters of lowercase letters, digits and '-', {start}"),
    ))
}

/// The name of an environment, which is also the name of its namespace.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct EnvironmentName(String);

impl EnvironmentName {
    pub const MIN_LEN: usize = 3;
    pub const MAX_LEN: usize = 40;

    pub fn parse(field: &str, raw: &str) -> Result<Self, ValidationErrors> {
        let value = check_label(field, raw, Self::MIN_LEN, Self::MAX_LEN, false)?;
        // These namespaces belong to Kubernetes or to Berth itself; a tenant
        // owning one could weaken the platform.
        if value == "default" || value.starts_with("kube-") || value.starts_with("berth-") {
            return Err(ValidationErrors::single(
                field,
                "must not be 'default' or start with 'kube-' or 'berth-' (reserved)",
            ));
        }
        Ok(Self(value))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for EnvironmentName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The name of an app: its Deployment, Service and Ingress are named after it,
/// and Service names must start with a letter (RFC 1035).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct AppName(String);

impl AppName {
    pub const MAX_LEN: usize = 40;

    pub fn parse(field: &str, raw: &str) -> Result<Self, ValidationErrors> {
        check_label(field, raw, 1, Self::MAX_LEN, true).map(Self)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for AppName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The name of a template (`small`, or one an admin added).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct TemplateName(String);

impl TemplateName {
    pub const MAX_LEN: usize = 40;

    pub fn parse(field: &str, raw: &str) -> Result<Self, ValidationErrors> {
        check_label(field, raw, 1, Self::MAX_LEN, false).map(Self)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for TemplateName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The name of a container in a pod: an RFC 1123 DNS label of 1 to 63
/// characters (Kubernetes' `DNS_LABEL` for `containers[].name`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct ContainerName(String);

impl ContainerName {
    pub const MAX_LEN: usize = 63;

    pub fn parse(field: &str, raw: &str) -> Result<Self, ValidationErrors> {
        check_label(field, raw, 1, Self::MAX_LEN, false).map(Self)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The name of a namespaced Kubernetes object such as a pod: an RFC 1123
/// subdomain of at most 253 characters, dot-separated labels of lowercase
/// letters, digits and '-' (Kubernetes' `DNS_SUBDOMAIN`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct ObjectName(String);

impl ObjectName {
    pub const MAX_LEN: usize = 253;

    pub fn parse(field: &str, raw: &str) -> Result<Self, ValidationErrors> {
        if raw.len() > Self::MAX_LEN {
            return Err(ValidationErrors::single(
                field,
                format!("must be at most {} characters", Self::MAX_LEN),
            ));
        }
        for label in raw.split('.') {
            check_label(field, label, 1, 63, false)?;
        }
        Ok(Self(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn environment_names_are_bounded_dns_labels_and_not_reserved() {
        for good in ["abc", "team-a-dev", "1ab", &"a".repeat(40)] {
            assert!(EnvironmentName::parse("name", good).is_ok(), "{good}");
        }
        for bad in [
            "ab",
            &"a".repeat(41),
            "Team",
            "-abc",
            "abc-",
            "a_b",
            "a.bc",
            "default",
            "kube-system",
            "berth-system",
            "",
        ] {
            let err = EnvironmentName::parse("name", bad).unwrap_err();
            assert_eq!(err.errors()[0].field, "name", "{bad}");
        }
    }

    #[test]
    fn app_names_start_with_a_letter() {
        assert!(AppName::parse("n", "w").is_ok());
        assert!(AppName::parse("n", "web-1").is_ok());
        assert!(AppName::parse("n", "1web").is_err());
        assert!(ContainerName::parse("c", "1web").is_ok());
        for good in ["web-7d4b9c-x2x", "a.b-c.d", &"a".repeat(63)] {
            assert!(ObjectName::parse("pod", good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "..",
            ".",
            "a..b",
            "-a",
            "A",
            "a/b",
            "a b",
            &"a".repeat(64),
            &"a.".repeat(127),
        ] {
            assert!(ObjectName::parse("pod", bad).is_err(), "{bad}");
        }
        assert!(ContainerName::parse("c", &"a".repeat(63)).is_ok());
        for bad in ["", "-web", "web-", "Web", "we b", &"a".repeat(64)] {
            assert!(ContainerName::parse("c", bad).is_err(), "{bad}");
        }
    }
}
