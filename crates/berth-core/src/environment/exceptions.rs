//! Exceptions to the tenant guardrails that an admin grants one
//! environment: more Ingress hosts, and Services of type `ExternalName`.
//! The controller writes them onto the environment's namespace, where the
//! guardrails (admission policies) read them.

use super::input::ExceptionsInput;
use crate::validation::{FieldError, ValidationErrors};

/// Most extra hosts one environment may be granted.
pub const MAX_INGRESS_HOSTS: usize = 20;

/// An Ingress host granted as an exception: a DNS name in lowercase ASCII
/// (IDNs in punycode) without a trailing dot, or `*.` and such a name for
/// every name under it (as the guardrail matches it: any depth).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct IngressHost(String);

impl IngressHost {
    /// Normalizes `raw` (trimmed, IDN to punycode, lowercased, trailing dot
    /// dropped) and checks it is a DNS name of at most 253 characters,
    /// labels of 1 to 63 letters, digits and inner `-`, a `*` only as the
    /// whole first label, and at least two labels after it.
    pub fn parse(field: &str, raw: &str) -> Result<Self, ValidationErrors> {
        let invalid = |why: &str| ValidationErrors::single(field, why.to_owned());
        let raw = raw.trim().trim_end_matches('.');
        let (wildcard, name) = match raw.strip_prefix("*.") {
            Some(rest) => (true, rest),
            None => (false, raw),
        };
        let ascii = idna::domain_to_ascii(name)
            .map_err(|_| invalid("must be a DNS name such as shop.example.com or *.example.com"))?;
        let labels: Vec<&str> = ascii.split('.').collect();
        let label_ok = |l: &&str| {
            !l.is_empty()
                && l.len() <= 63
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !l.starts_with('-')
                && !l.ends_with('-')
        };
        if ascii.is_empty() || !labels.iter().all(label_ok) {
            return Err(invalid(
                "must be a DNS name such as shop.example.com or *.example.com (a * only as the whole first label)",
            ));
        }
        if labels.len() < 2 {
            return Err(invalid(
                "must have at least two labels: a top-level domain alone would cover every site under it",
            ));
        }
        let host = if wildcard {
            format!("*.{ascii}")
        } else {
            ascii
        };
        if host.len() > 253 {
            return Err(invalid("must be at most 253 characters"));
        }
        Ok(Self(host))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The suffix every name this host covers ends with (`.example.com` for
    /// `*.example.com`), or `None` for a single name.
    fn suffix(&self) -> Option<&str> {
        self.0.strip_prefix('*')
    }

    /// Whether some name is covered by both `self` and `other`.
    pub fn overlaps(&self, other: &IngressHost) -> bool {
        match (self.suffix(), other.suffix()) {
            (None, None) => self.0 == other.0,
            (Some(s), None) => other.0.ends_with(s),
            (None, Some(o)) => self.0.ends_with(o),
            (Some(s), Some(o)) => s.ends_with(o) || o.ends_with(s),
        }
    }

    /// Whether this host covers a name at or under `domain` (the ingress
    /// domain, whose names are each environment's own).
    pub fn reaches_into(&self, domain: &str) -> bool {
        let domain = domain.trim_end_matches('.').to_ascii_lowercase();
        let under = format!(".{domain}");
        match self.suffix() {
            None => self.0 == domain || self.0.ends_with(&under),
            Some(s) => under.ends_with(s) || s.ends_with(&under),
        }
    }
}

impl std::fmt::Display for IngressHost {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// The exceptions of one environment; the default is none.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Exceptions {
    /// In the order given, without duplicates.
    pub ingress_hosts: Vec<IngressHost>,
    pub external_name: bool,
}

impl Exceptions {
    /// Parses the wire form, each host under `exceptions.ingressHosts[i]`.
    pub fn parse(input: Option<&ExceptionsInput>) -> Result<Self, ValidationErrors> {
        let Some(input) = input else {
            return Ok(Self::default());
        };
        let hosts = input.ingress_hosts.as_deref().unwrap_or_default();
        if hosts.len() > MAX_INGRESS_HOSTS {
            return Err(ValidationErrors::single(
                "exceptions.ingressHosts",
                format!("must list at most {MAX_INGRESS_HOSTS} hosts"),
            ));
        }
        let mut errors = ValidationErrors::new();
        let mut ingress_hosts: Vec<IngressHost> = Vec::with_capacity(hosts.len());
        for (i, raw) in hosts.iter().enumerate() {
            let field = format!("exceptions.ingressHosts[{i}]");
            let Some(host) = errors.collect(IngressHost::parse(&field, raw)) else {
                continue;
            };
            if ingress_hosts.contains(&host) {
                errors.push(FieldError::new(field, "must appear only once"));
                continue;
            }
            ingress_hosts.push(host);
        }
        errors.finish(|| Self {
            ingress_hosts,
            external_name: input.external_name.unwrap_or(false),
        })
    }

    pub fn is_empty(&self) -> bool {
        self.ingress_hosts.is_empty() && !self.external_name
    }

    /// The wire form; `None` when there are none.
    pub fn to_input(&self) -> Option<ExceptionsInput> {
        (!self.is_empty()).then(|| ExceptionsInput {
            ingress_hosts: (!self.ingress_hosts.is_empty())
                .then(|| self.ingress_hosts.iter().map(ToString::to_string).collect()),
            external_name: self.external_name.then_some(true),
        })
    }

    /// Whether these exceptions grant nothing beyond `granted`: taking
    /// exceptions back needs no admin.
    pub fn within(&self, granted: &Exceptions) -> bool {
        self.ingress_hosts
            .iter()
            .all(|h| granted.ingress_hosts.contains(h))
            && (!self.external_name || granted.external_name)
    }

    /// Hosts that cover names under the ingress `domain`, each an error
    /// under its field: those names are the environments' own.
    pub fn check_domain(&self, domain: &str) -> Result<(), ValidationErrors> {
        let mut errors = ValidationErrors::new();
        for (i, host) in self.ingress_hosts.iter().enumerate() {
            if host.reaches_into(domain) {
                errors.push(FieldError::new(
                    format!("exceptions.ingressHosts[{i}]"),
                    format!(
                        "{host} reaches into {domain}, whose names belong to each environment; only hosts outside it can be granted"
                    ),
                ));
            }
        }
        errors.finish(|| ())
    }

    /// Each host of `self` that overlaps one of `other`'s (another
    /// environment's), with its index.
    pub fn overlapping<'a>(
        &'a self,
        other: &'a Exceptions,
    ) -> impl Iterator<Item = (usize, &'a IngressHost)> + 'a {
        self.ingress_hosts
            .iter()
            .enumerate()
            .filter(|(_, h)| other.ingress_hosts.iter().any(|o| h.overlaps(o)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host(raw: &str) -> IngressHost {
        IngressHost::parse("h", raw).unwrap()
    }

    #[test]
    fn hosts_are_normalized_as_the_guardrail_compares_them() {
        assert_eq!(host(" Shop.Example.COM. ").as_str(), "shop.example.com");
        assert_eq!(host("bücher.example").as_str(), "xn--bcher-kva.example");
        assert_eq!(
            host("*.Preview.example.org").as_str(),
            "*.preview.example.org"
        );
        for bad in [
            "",
            "*",
            "*.com",
            "com",
            "a..b",
            "-a.com",
            "a_b.com",
            "a.*.com",
            "shop example.com",
            "*.*.example.com",
        ] {
            assert!(IngressHost::parse("h", bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn overlaps_are_seen_from_either_side() {
        let cases = [
            ("shop.example.com", "shop.example.com", true),
            ("shop.example.com", "shop.example.org", false),
            ("*.example.com", "shop.example.com", true),
            ("*.example.com", "a.b.example.com", true),
            ("*.example.com", "example.com", false),
            ("*.example.com", "*.b.example.com", true),
            ("*.example.com", "*.example.org", false),
            ("*.ample.com", "shop.example.com", false),
        ];
        for (a, b, overlap) in cases {
            assert_eq!(host(a).overlaps(&host(b)), overlap, "{a} / {b}");
            assert_eq!(host(b).overlaps(&host(a)), overlap, "{b} / {a}");
        }
    }

    #[test]
    fn nothing_reaching_into_the_ingress_domain_is_granted() {
        for h in [
            "berth.localhost",
            "web.b.berth.localhost",
            "*.berth.localhost",
            "*.b.berth.localhost",
        ] {
            assert!(host(h).reaches_into("Berth.Localhost."), "{h}");
        }
        for h in [
            "shop.example.com",
            "*.example.com",
            "berth.localhost.example.com",
            "xberth.localhost",
        ] {
            assert!(!host(h).reaches_into("berth.localhost"), "{h}");
        }
    }

    #[test]
    fn exceptions_parse_naming_each_host() {
        let input = ExceptionsInput {
            ingress_hosts: Some(vec![
                "shop.example.com".into(),
                "bad host".into(),
                "SHOP.example.com".into(),
            ]),
            external_name: Some(true),
        };
        let errors = Exceptions::parse(Some(&input)).unwrap_err();
        let fields: Vec<&str> = errors.errors().iter().map(|e| e.field.as_str()).collect();
        assert_eq!(
            fields,
            ["exceptions.ingressHosts[1]", "exceptions.ingressHosts[2]"]
        );
        assert_eq!(Exceptions::parse(None).unwrap(), Exceptions::default());
        let granted = Exceptions {
            ingress_hosts: vec![host("shop.example.com")],
            external_name: true,
        };
        assert_eq!(
            Exceptions::parse(granted.to_input().as_ref()).unwrap(),
            granted
        );
        assert!(Exceptions::default().within(&granted));
        assert!(granted.within(&granted));
        assert!(!granted.within(&Exceptions::default()));
    }
}
