//! The environment's namespace, with Pod Security Admission at the spec's level.

use super::Context;
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
    Namespace {
        metadata: meta,
        ..Namespace::default()
    }
}
