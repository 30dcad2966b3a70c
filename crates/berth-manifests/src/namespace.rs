//! The environment's namespace, with Pod Security Admission at the spec's
//! level and the exceptions an admin granted, where the guardrails read them.

use super::{Context, ENVIRONMENT_LABEL, MANAGED_BY_LABEL, MANAGED_BY_VALUE};
use crate::{ALLOW_EXTERNAL_NAME_ANNOTATION, ALLOWED_INGRESS_HOSTS_ANNOTATION};
use k8s_openapi::api::core::v1::Namespace;

pub(crate) fn namespace(ctx: &Context<'_>) -> Namespace {
    let mut meta = ctx.meta(ctx.env().as_str(), false);
    let level = ctx.spec.pod_security.as_str();
    let labels = meta.labels.get_or_insert_default();
    // Enforcing, auditing and warning at one level tells tenants at apply time
    // what would be refused, instead of only failing their pods later.
    for mode in ["enforce", "audit", "warn"] {
        labels.insert(
            format!("pod-security.kubernetes.io/{mode}"),
            level.to_owned(),
        );
        labels.insert(
            format!("pod-security.kubernetes.io/{mode}-version"),
            "latest".to_owned(),
        );
    }
    // Written only when granted: server-side apply then removes what a
    // change of the spec takes back, since Berth's field manager owned it.
    let exceptions = &ctx.spec.exceptions;
    if !exceptions.ingress_hosts.is_empty() {
        let hosts: Vec<&str> = exceptions
            .ingress_hosts
            .iter()
            .map(|h| h.as_str())
            .collect();
        meta.annotations
            .get_or_insert_default()
            .insert(ALLOWED_INGRESS_HOSTS_ANNOTATION.to_owned(), hosts.join(","));
    }
    if exceptions.external_name {
        meta.annotations
            .get_or_insert_default()
            .insert(ALLOW_EXTERNAL_NAME_ANNOTATION.to_owned(), "true".to_owned());
    }
    Namespace {
        metadata: meta,
        ..Namespace::default()
    }
}

/// Whether `namespace` is the environment's (named `environment`, with
/// `uid`): made by Berth for it, as its labels and owner reference (by uid)
/// say. Nothing else of a namespace is Berth's to change, delete or read.
pub fn is_environments_namespace(namespace: &Namespace, environment: &str, uid: &str) -> bool {
    let labels = namespace.metadata.labels.clone().unwrap_or_default();
    labels.get(MANAGED_BY_LABEL).map(String::as_str) == Some(MANAGED_BY_VALUE)
        && labels.get(ENVIRONMENT_LABEL).map(String::as_str) == Some(environment)
        && namespace
            .metadata
            .owner_references
            .iter()
            .flatten()
            .any(|o| o.kind == "Environment" && o.uid == uid)
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
    use std::collections::BTreeMap;

    fn namespace(labels: &[(&str, &str)], owner_uid: Option<&str>) -> Namespace {
        Namespace {
            metadata: ObjectMeta {
                name: Some("team-a".into()),
                labels: Some(
                    labels
                        .iter()
                        .map(|(k, v)| ((*k).into(), (*v).into()))
                        .collect::<BTreeMap<_, _>>(),
                ),
                owner_references: owner_uid.map(|uid| {
                    vec![OwnerReference {
                        api_version: "berth.dev/v1alpha1".into(),
                        kind: "Environment".into(),
                        name: "team-a".into(),
                        uid: uid.into(),
                        ..OwnerReference::default()
                    }]
                }),
                ..ObjectMeta::default()
            },
            ..Namespace::default()
        }
    }

    const OURS: [(&str, &str); 2] = [
        (MANAGED_BY_LABEL, MANAGED_BY_VALUE),
        (ENVIRONMENT_LABEL, "team-a"),
    ];

    #[test]
    fn only_a_namespace_made_for_this_environment_is_ours() {
        assert!(is_environments_namespace(
            &namespace(&OURS, Some("u1")),
            "team-a",
            "u1"
        ));
        assert!(
            !is_environments_namespace(&namespace(&[], None), "team-a", "u1"),
            "unmanaged"
        );
        assert!(
            !is_environments_namespace(&namespace(&OURS, None), "team-a", "u1"),
            "labels alone"
        );
        assert!(
            !is_environments_namespace(&namespace(&OURS, Some("u0")), "team-a", "u1"),
            "an earlier environment of the name"
        );
        assert!(
            !is_environments_namespace(&namespace(&OURS[..1], Some("u1")), "team-a", "u1"),
            "no environment label"
        );
    }
}
