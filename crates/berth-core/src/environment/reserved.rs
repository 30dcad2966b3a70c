//! Names no environment may take: the namespaces of Kubernetes, of Berth and
//! of the platform around it, and the words the API uses beside `{name}` in
//! its paths. An environment is a namespace of the same name, so taking one
//! of these would claim (or, once deleted, remove) someone else's namespace,
//! or let its network policies admit traffic meant for the platform.

use crate::validation::ValidationErrors;

/// The names reserved whatever the configuration says (the contract's list);
/// a trailing `*` matches every name starting with the rest.
pub const PLATFORM_NAMES: &[&str] = &[
    "kube-*",
    "default",
    "berth*",
    "preview",
    "cert-manager",
    "monitoring",
    "istio-system",
    "linkerd",
    "argocd",
    "flux-system",
];

/// The ingress controller's namespace when configuration names none.
pub const DEFAULT_INGRESS_NAMESPACE: &str = "ingress-nginx";

/// Patterns of reserved names: exact names, or prefixes ending in `*`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReservedNames(Vec<String>);

impl ReservedNames {
    /// [`PLATFORM_NAMES`], the ingress controller's namespace and `extra`
    /// (an admin's list of further patterns).
    pub fn new(ingress_namespace: &str, extra: &[String]) -> Self {
        let mut names: Vec<String> = PLATFORM_NAMES.iter().map(|&n| n.to_owned()).collect();
        names.push(ingress_namespace.to_owned());
        names.extend(extra.iter().cloned());
        names.sort();
        names.dedup();
        Self(names)
    }

    pub fn patterns(&self) -> &[String] {
        &self.0
    }

    /// Whether `name` matches a pattern.
    pub fn contains(&self, name: &str) -> bool {
        self.0
            .iter()
            .any(|pattern| match pattern.strip_suffix('*') {
                Some(prefix) => name.starts_with(prefix),
                None => name == pattern,
            })
    }

    /// Errors: `field` when `name` is reserved.
    pub fn check(&self, field: &str, name: &str) -> Result<(), ValidationErrors> {
        if self.contains(name) {
            return Err(ValidationErrors::single(
                field,
                format!(
                    "is reserved for the platform (reserved: {})",
                    self.0.join(", ")
                ),
            ));
        }
        Ok(())
    }
}

impl Default for ReservedNames {
    fn default() -> Self {
        Self::new(DEFAULT_INGRESS_NAMESPACE, &[])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn platform_namespaces_and_prefixes_are_reserved() {
        let reserved = ReservedNames::new("traefik", &["team-infra".into(), "ops-*".into()]);
        for name in [
            "kube-system",
            "kube-x",
            "default",
            "berth",
            "berthling",
            "preview",
            "monitoring",
            "traefik",
            "team-infra",
            "ops-1",
        ] {
            assert!(reserved.contains(name), "{name}");
        }
        for name in ["kube", "defaults", "ingress-nginx", "team-a", "my-berth"] {
            assert!(!reserved.contains(name), "{name}");
        }
        let err = reserved.check("name", "kube-x").unwrap_err();
        assert_eq!(err.errors()[0].field, "name");
    }
}
