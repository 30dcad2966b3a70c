//! Container image references.

use crate::validation::ValidationErrors;
use serde::Serialize;

const MAX_IMAGE_LEN: usize = 512;

/// A container image reference: `[registry[:port]/]path[:tag][@sha256:digest]`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct Image(String);

impl Image {
    const RULE: &str = "must be a container image such as nginx:1.27 or registry.example.com/team/app@sha256:<64 hex digits>";

    pub fn parse(field: &str, raw: &str) -> Result<Self, ValidationErrors> {
        if is_image_ref(raw) {
            Ok(Self(raw.to_owned()))
        } else {
            Err(ValidationErrors::single(field, Self::RULE))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

fn is_image_ref(raw: &str) -> bool {
    if raw.is_empty() || raw.len() > MAX_IMAGE_LEN {
        return false;
    }
    let (rest, digest) = match raw.split_once('@') {
        Some((rest, digest)) => (rest, Some(digest)),
        None => (raw, None),
    };
    let digest_ok = digest.is_none_or(|d| {
        d.strip_prefix("sha256:").is_some_and(|hex| {
            hex.len() == 64
                && hex
                    .bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        })
    });
    let slash = rest.rfind('/').map_or(0, |i| i + 1);
    let (name, tag) = match rest[slash..].rfind(':') {
        Some(i) => (&rest[..slash + i], Some(&rest[slash + i + 1..])),
        None => (rest, None),
    };
    let tag_ok = tag.is_none_or(|t| {
        (1..=128).contains(&t.len())
            && !t.starts_with(['.', '-'])
            && t.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b))
    });
    let mut parts: Vec<&str> = name.split('/').collect();
    let host_ok = if parts.len() > 1 && (parts[0].contains(['.', ':']) || parts[0] == "localhost") {
        let host = parts.remove(0);
        let (domain, port) = host.split_once(':').unwrap_or((host, "1"));
        port.parse::<u16>().is_ok_and(|p| p > 0)
            && domain.split('.').all(|l| {
                !l.is_empty()
                    && !l.starts_with('-')
                    && !l.ends_with('-')
                    && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            })
    } else {
        true
    };
    let path_ok = parts.iter().all(|p| {
        let ends_ok =
            |b: Option<u8>| b.is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
        ends_ok(p.bytes().next())
            && ends_ok(p.bytes().last())
            && p.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b))
    });
    digest_ok && tag_ok && host_ok && path_ok
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_references() {
        for good in [
            "nginx",
            "nginx:1.27",
            "library/nginx:1.27-alpine",
            "ghcr.io/berth/app:v1.2.3",
            "localhost:5000/app",
            "registry.example.com:443/team/app@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
        ] {
            assert!(Image::parse("image", good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "Nginx",
            "nginx:",
            "nginx:-x",
            "nginx@sha256:12",
            "a b",
            "/nginx",
            "nginx/",
            "ex.com:0/app",
            &"a".repeat(513),
        ] {
            assert!(Image::parse("image", bad).is_err(), "{bad}");
        }
    }
}
