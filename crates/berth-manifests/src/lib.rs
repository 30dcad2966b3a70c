//! Berth's manifest builder: a resolved environment spec in, the Kubernetes
//! objects that isolate and bound it out. Pure: no I/O, no clock, no randomness,
//! so the same spec always yields byte-identical YAML and the controller's
//! server-side apply sees no spurious changes.
//!
//! Also here: the `berth-tenant-*` ClusterRoles ([`cluster_roles`]), the
//! `Environment` custom resource ([`Environment`], [`crd_yaml`]), the admin
//! policy as the apiserver enforces it ([`EnvironmentPolicy`],
//! [`admission_policy`]), the tenant guardrails in the apiserver
//! ([`guardrails`]), everything a cluster needs before Berth runs in it
//! ([`install_manifests`]) and the preview a person sees before creating an
//! environment ([`preview`]).

mod admission;
mod apps;
mod crd;
mod guardrails;
mod namespace;
mod network;
mod quota;
mod rbac;
mod summary;

use berth_core::environment::{EnvironmentName, ResolvedSpec};
use k8s_openapi::api::admissionregistration::v1::{
    ValidatingAdmissionPolicy, ValidatingAdmissionPolicyBinding,
};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{LimitRange, Namespace, ResourceQuota, Service};
use k8s_openapi::api::networking::v1::{Ingress, NetworkPolicy};
use k8s_openapi::api::rbac::v1::{ClusterRole, RoleBinding};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use kube::CustomResourceExt;
use serde::Serialize;
use std::collections::BTreeMap;

pub use admission::{
    ADMISSION_POLICY_NAME, EnvironmentPolicy, EnvironmentPolicySpec, MaxQuotaSpec,
    POLICY_OBJECT_NAME, admission_policy, admission_policy_binding, policy_crd_yaml,
};
pub use apps::APP_LABEL;
pub use crd::{
    Condition, Environment, EnvironmentCrdSpec, EnvironmentStatus, Phase, QuotaStatus, crd_yaml,
};
pub use guardrails::{
    ALLOW_EXTERNAL_NAME_ANNOTATION, ALLOWED_INGRESS_HOSTS_ANNOTATION, GUARDRAIL_POLICY_PREFIX,
    Guardrail, GuardrailOptions, guardrails,
};
pub use namespace::is_environments_namespace;
pub use rbac::{
    EMAIL_ANNOTATION, MEMBER_ANNOTATION, USERS_NAMESPACE, cluster_roles, user_service_account,
    user_service_account_name, users_namespace,
};
pub use summary::{Preview, preview, summary, warnings};

/// Label on every object Berth makes, so Berth can find (and prune) its own.
pub const MANAGED_BY_LABEL: &str = "app.kubernetes.io/managed-by";
pub const MANAGED_BY_VALUE: &str = "berth";
/// Label naming the environment an object belongs to.
pub const ENVIRONMENT_LABEL: &str = "berth.dev/environment";

/// What the builder needs beyond the spec: facts about the cluster and the owner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildOptions {
    /// UID of the `Environment` that owns the objects; `None` (as in a preview,
    /// before it exists) leaves owner references out.
    pub owner_uid: Option<String>,
    /// Apps exposed by ingress are served at `<app>.<environment>.<ingress_domain>`.
    pub ingress_domain: String,
    /// `ingressClassName` of Ingresses; `None` uses the cluster's default class.
    pub ingress_class: Option<String>,
    /// Namespace of the ingress controller, the one outside namespace an
    /// isolated environment accepts traffic from.
    pub ingress_controller_namespace: String,
    /// CIDRs an isolated environment may not send to, beyond link-local
    /// (`169.254.0.0/16`, `fe80::/10`: cloud metadata), which is always
    /// blocked: say the nodes' and the control plane's networks.
    pub blocked_egress_cidrs: Vec<String>,
    /// Members' identities: email (as stored) to the names of the
    /// ServiceAccounts in [`USERS_NAMESPACE`] made for it, sorted. One per
    /// email in a cluster served by one Berth; clusters shared by several
    /// (test runs) may hold more, and each is bound. A member not here (no
    /// account yet, or disabled) gets no RoleBinding; the preview passes
    /// none, so it shows no bindings.
    pub identities: BTreeMap<String, Vec<String>>,
}

impl Default for BuildOptions {
    fn default() -> Self {
        Self {
            owner_uid: None,
            ingress_domain: "berth.localhost".into(),
            ingress_class: None,
            ingress_controller_namespace: berth_core::environment::DEFAULT_INGRESS_NAMESPACE.into(),
            blocked_egress_cidrs: Vec::new(),
            identities: BTreeMap::new(),
        }
    }
}

/// One object the builder makes.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
#[allow(
    clippy::large_enum_variant,
    reason = "objects are built a few dozen at a time and moved, never copied in bulk"
)]
pub enum Object {
    Namespace(Namespace),
    ResourceQuota(ResourceQuota),
    LimitRange(LimitRange),
    NetworkPolicy(NetworkPolicy),
    RoleBinding(RoleBinding),
    ClusterRole(ClusterRole),
    Deployment(Deployment),
    Service(Service),
    Ingress(Ingress),
}

impl Object {
    pub fn metadata(&self) -> &ObjectMeta {
        match self {
            Object::Namespace(o) => &o.metadata,
            Object::ResourceQuota(o) => &o.metadata,
            Object::LimitRange(o) => &o.metadata,
            Object::NetworkPolicy(o) => &o.metadata,
            Object::RoleBinding(o) => &o.metadata,
            Object::ClusterRole(o) => &o.metadata,
            Object::Deployment(o) => &o.metadata,
            Object::Service(o) => &o.metadata,
            Object::Ingress(o) => &o.metadata,
        }
    }

    pub fn kind(&self) -> &'static str {
        match self {
            Object::Namespace(_) => "Namespace",
            Object::ResourceQuota(_) => "ResourceQuota",
            Object::LimitRange(_) => "LimitRange",
            Object::NetworkPolicy(_) => "NetworkPolicy",
            Object::RoleBinding(_) => "RoleBinding",
            Object::ClusterRole(_) => "ClusterRole",
            Object::Deployment(_) => "Deployment",
            Object::Service(_) => "Service",
            Object::Ingress(_) => "Ingress",
        }
    }

    pub fn name(&self) -> &str {
        self.metadata().name.as_deref().unwrap_or_default()
    }

    /// The object as JSON, `apiVersion` and `kind` included: what server-side apply sends.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::to_value(self).expect("Kubernetes objects serialize to JSON")
    }
}

/// All the objects of one environment, in a fixed order: the namespace, its
/// bounds (quota, limits, network policies), access (a RoleBinding per
/// member with an identity), then each app's Deployment, Service and Ingress.
pub fn build(spec: &ResolvedSpec, options: &BuildOptions) -> Vec<Object> {
    let ctx = Context { spec, options };
    let mut objects = vec![Object::Namespace(namespace::namespace(&ctx))];
    objects.push(Object::ResourceQuota(quota::resource_quota(&ctx)));
    objects.push(Object::LimitRange(quota::limit_range(&ctx)));
    objects.extend(
        network::policies(&ctx)
            .into_iter()
            .map(Object::NetworkPolicy),
    );
    objects.extend(rbac::member_bindings(&ctx));
    objects.extend(apps::app_objects(&ctx));
    objects
}

/// Objects as one multi-document YAML stream, each document starting with `---`.
pub fn to_yaml(objects: &[Object]) -> String {
    objects
        .iter()
        .map(|o| {
            let doc = serde_yaml::to_string(o).expect("Kubernetes objects serialize to YAML");
            format!("---\n{doc}")
        })
        .collect()
}

/// Every admission policy Berth enforces, each with its binding, in a fixed
/// order: the admin policy's (`berth-environments`, exempting
/// `berth_username`) and then the tenant guardrails (judging every writer).
/// What the leader applies or checks, `install_manifests` prints and the
/// Helm chart renders.
pub fn admission_policies(
    berth_username: &str,
    guardrail_options: &GuardrailOptions,
) -> Vec<(ValidatingAdmissionPolicy, ValidatingAdmissionPolicyBinding)> {
    let mut all = vec![(admission_policy(berth_username), admission_policy_binding())];
    all.extend(
        guardrails(guardrail_options)
            .into_iter()
            .map(|g| (g.policy, g.binding)),
    );
    all
}

/// Everything a cluster needs before Berth manages it, as one multi-document
/// YAML stream for `kubectl apply -f -`: the `Environment` and
/// `EnvironmentPolicy` CRDs, the `berth-tenant-*` ClusterRoles, the
/// admission policy with its binding, which exempts `berth_username` (the
/// identity Berth runs as), and the tenant guardrails (with
/// `guardrail_options`), which judge every writer. The `EnvironmentPolicy` itself is Berth's to
/// publish from its store; until it does, Environments written by others
/// are refused.
pub fn install_manifests(berth_username: &str, guardrail_options: &GuardrailOptions) -> String {
    let policies = admission_policies(berth_username, guardrail_options)
        .into_iter()
        .flat_map(|(policy, binding)| {
            [serde_json::to_value(policy), serde_json::to_value(binding)]
        });
    let documents = [
        serde_json::to_value(Environment::crd()),
        serde_json::to_value(EnvironmentPolicy::crd()),
    ]
    .into_iter()
    .chain(cluster_roles().into_iter().map(serde_json::to_value))
    .chain(policies);
    documents
        .map(|doc| {
            let doc = doc.expect("Kubernetes objects serialize to JSON");
            let yaml = serde_yaml::to_string(&doc).expect("Kubernetes objects serialize to YAML");
            format!("---\n{yaml}")
        })
        .collect()
}

/// The spec and options, shared by the parts of the builder.
struct Context<'a> {
    spec: &'a ResolvedSpec,
    options: &'a BuildOptions,
}

impl Context<'_> {
    fn env(&self) -> &EnvironmentName {
        &self.spec.name
    }

    fn labels(&self) -> BTreeMap<String, String> {
        BTreeMap::from([
            (MANAGED_BY_LABEL.to_owned(), MANAGED_BY_VALUE.to_owned()),
            (ENVIRONMENT_LABEL.to_owned(), self.env().to_string()),
        ])
    }

    /// Metadata of an object in the environment's namespace (or of the
    /// namespace itself, when `namespaced` is false).
    fn meta(&self, name: &str, namespaced: bool) -> ObjectMeta {
        ObjectMeta {
            name: Some(name.to_owned()),
            namespace: namespaced.then(|| self.env().to_string()),
            labels: Some(self.labels()),
            owner_references: self.options.owner_uid.as_ref().map(|uid| {
                vec![OwnerReference {
                    api_version: crd::API_VERSION.to_owned(),
                    kind: crd::KIND.to_owned(),
                    name: self.env().to_string(),
                    uid: uid.clone(),
                    controller: Some(true),
                    block_owner_deletion: Some(true),
                }]
            }),
            ..ObjectMeta::default()
        }
    }
}
