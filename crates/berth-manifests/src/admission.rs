//! The admin policy in the cluster. Berth publishes the policy of its store
//! as the cluster-scoped [`EnvironmentPolicy`] named `default`
//! ([`EnvironmentPolicy::for_policy`]); a ValidatingAdmissionPolicy
//! ([`admission_policy`]), bound to that object ([`admission_policy_binding`]),
//! holds every Environment that anyone but Berth writes (kubectl, GitOps) to
//! it, in the apiserver itself: CEL, no webhook to run.
//!
//! Berth's own writes are exempt: the API has already judged them, and what
//! it writes for an approved request may exceed the policy.

use crate::crd::Environment;
use berth_core::environment::{Defaults, Policy, ReservedNames};
use k8s_openapi::api::admissionregistration::v1::{
    ValidatingAdmissionPolicy, ValidatingAdmissionPolicyBinding,
};
use kube::{CustomResource, CustomResourceExt, Resource};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// The one [`EnvironmentPolicy`] the admission policy reads.
pub const POLICY_OBJECT_NAME: &str = "default";
/// Name of the ValidatingAdmissionPolicy and of its binding.
pub const ADMISSION_POLICY_NAME: &str = "berth-environments";
/// Annotations only Berth writes: who created an environment, and when its
/// TTL was last renewed (see [`Environment::CREATED_BY_ANNOTATION`]).
const BOOKKEEPING_ANNOTATIONS: [&str; 2] = [
    Environment::CREATED_BY_ANNOTATION,
    Environment::RENEWED_AT_ANNOTATION,
];

/// The policy's bounds as the apiserver enforces them on Environments
/// written outside Berth.
#[derive(CustomResource, Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "berth.dev",
    version = "v1alpha1",
    kind = "EnvironmentPolicy",
    doc = "The Berth admin policy's bounds, published by Berth from its store (object `default`) and read by the ValidatingAdmissionPolicy `berth-environments`; edits are overwritten",
    printcolumn = r#"{"name": "CPU", "type": "string", "jsonPath": ".spec.maxQuota.cpu"}"#,
    printcolumn = r#"{"name": "Memory", "type": "string", "jsonPath": ".spec.maxQuota.memory"}"#,
    printcolumn = r#"{"name": "Max TTL", "type": "string", "jsonPath": ".spec.maxTtl"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct EnvironmentPolicySpec {
    /// The largest quota an environment may have without an admin.
    pub max_quota: MaxQuotaSpec,
    /// The longest TTL (Go duration); absent, environments may live forever.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(
        regex(pattern = "^([0-9]+h)?([0-9]+m)?([0-9]+s)?$"),
        length(min = 2, max = 24)
    )]
    pub max_ttl: Option<String>,
    /// Names an environment may not take; a trailing `*` matches a prefix.
    #[serde(default)]
    #[schemars(inner(regex(pattern = r"^[a-z0-9-]+\*?$"), length(min = 1, max = 63)))]
    pub reserved_names: Vec<String>,
}

/// The largest quota, in Kubernetes quantities.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct MaxQuotaSpec {
    /// CPUs in all, such as `8`.
    #[schemars(extend("x-kubernetes-validations" = [{"rule": "isQuantity(self)", "message": "must be a quantity"}]))]
    pub cpu: String,
    /// Memory in all, such as `16Gi`.
    #[schemars(extend("x-kubernetes-validations" = [{"rule": "isQuantity(self)", "message": "must be a quantity"}]))]
    pub memory: String,
    /// Persistent storage in all, such as `100Gi`.
    #[schemars(extend("x-kubernetes-validations" = [{"rule": "isQuantity(self)", "message": "must be a quantity"}]))]
    pub storage: String,
    /// Pods at once.
    pub pods: u32,
}

impl EnvironmentPolicy {
    /// The object Berth publishes for `policy` and the names it reserves:
    /// always named `default`.
    pub fn for_policy(policy: &Policy, reserved: &ReservedNames) -> Self {
        let max = policy.max_quota;
        EnvironmentPolicy::new(
            POLICY_OBJECT_NAME,
            EnvironmentPolicySpec {
                max_quota: MaxQuotaSpec {
                    cpu: max.cpu.to_string(),
                    memory: max.memory.to_string(),
                    storage: max.storage.to_string(),
                    pods: max.pods.get(),
                },
                max_ttl: policy.max_ttl.map(|t| t.to_string()),
                reserved_names: reserved.patterns().to_vec(),
            },
        )
    }
}

/// A CEL string literal of `text`: JSON's escapes are a subset of CEL's.
fn cel_string(text: &str) -> String {
    serde_json::to_string(text).expect("a string serializes")
}

/// `object.?spec.?<path>` with the value a hand-written Environment gets
/// when it leaves the field out, and whether a write changes it: on UPDATE
/// only changed fields are judged, so an environment above a policy lowered
/// since (or approved above it) can still be edited otherwise.
fn bounded(name: &str, path: &str, default: &str) -> [Value; 2] {
    [
        json!({"name": name, "expression": format!("object.?spec.?{path}.orValue({default})")}),
        json!({
            "name": format!("{name}Changed"),
            "expression": format!(
                "request.operation != 'UPDATE' || oldObject.?spec.?{path}.orValue({default}) != variables.{name}"
            ),
        }),
    ]
}

/// One refusal: `expression` must hold. An admission policy's validation
/// has no field path of its own, so each message starts with the field.
fn check(expression: &str, message_expression: &str) -> Value {
    json!({
        "expression": expression,
        "messageExpression": message_expression,
        "reason": "Invalid",
    })
}

/// The ValidatingAdmissionPolicy `berth-environments`. On CREATE and UPDATE
/// of an Environment by anyone but `berth_username` (Berth's own identity,
/// from a SelfSubjectReview), with the [`EnvironmentPolicy`] as `params`:
/// - quota within `maxQuota`, TTL within `maxTtl` (and required when it is
///   set), judged on UPDATE only when changed;
/// - no `baseline` pod security, no `open` network: only an admin, through
///   Berth, relaxes them;
/// - a name not in `reservedNames`;
/// - `exceptions` to the guardrails absent on CREATE and unchanged on
///   UPDATE: only an admin grants them, through Berth;
/// - the bookkeeping annotations (`berth.dev/created-by`,
///   `berth.dev/renewed-at`) and label (`berth.dev/creator-id`) absent on
///   CREATE and unchanged on UPDATE.
///
/// A field left out is judged at the value Berth gives it
/// ([`Defaults::builtin`]), as the controller will.
pub fn admission_policy(berth_username: &str) -> ValidatingAdmissionPolicy {
    let d = Defaults::builtin();
    let mut variables = Vec::new();
    let mut validations = Vec::new();
    for (field, default) in [
        ("cpu", d.quota.cpu.to_string()),
        ("memory", d.quota.memory.to_string()),
        ("storage", d.quota.storage.to_string()),
    ] {
        variables.extend(bounded(
            field,
            &format!("quota.?{field}"),
            &cel_string(&default),
        ));
        validations.push(check(
            &format!(
                "!variables.{field}Changed || quantity(variables.{field}).compareTo(quantity(params.spec.maxQuota.{field})) <= 0"
            ),
            &format!(
                "'spec.quota.{field}: ' + variables.{field} + ' is above the policy maximum of ' + params.spec.maxQuota.{field} + '; only a Berth admin may grant more'"
            ),
        ));
    }
    variables.extend(bounded(
        "pods",
        "quota.?pods",
        &d.quota.pods.get().to_string(),
    ));
    validations.push(check(
        "!variables.podsChanged || variables.pods <= params.spec.maxQuota.pods",
        "'spec.quota.pods: ' + string(variables.pods) + ' is above the policy maximum of ' + string(params.spec.maxQuota.pods) + '; only a Berth admin may grant more'",
    ));
    // No ttl: the environment never expires.
    variables.extend(bounded("ttl", "ttl", "''"));
    validations.push(check(
        "!variables.ttlChanged || !has(params.spec.maxTtl) || (variables.ttl != '' && duration(variables.ttl) <= duration(params.spec.maxTtl))",
        "variables.ttl == '' ? 'spec.ttl: is required: the policy allows at most ' + params.spec.maxTtl : 'spec.ttl: ' + variables.ttl + ' is above the policy maximum of ' + params.spec.maxTtl",
    ));
    variables.extend(bounded(
        "podSecurity",
        "podSecurity",
        &cel_string(d.pod_security.as_str()),
    ));
    validations.push(check(
        "!variables.podSecurityChanged || variables.podSecurity != 'baseline'",
        "'spec.podSecurity: baseline relaxes the restricted Pod Security level; only a Berth admin may allow it'",
    ));
    variables.extend(bounded(
        "isolation",
        "network.?isolation",
        &cel_string(d.isolation.as_str()),
    ));
    validations.push(check(
        "!variables.isolationChanged || variables.isolation != 'open'",
        "'spec.network.isolation: open lets any namespace reach the environment; only a Berth admin may allow it'",
    ));
    validations.push(check(
        "request.operation == 'UPDATE' ? oldObject.spec.?exceptions == object.spec.?exceptions : !object.spec.?exceptions.hasValue()",
        "'spec.exceptions: exceptions to the tenant guardrails are granted only by a Berth admin, through Berth'",
    ));
    // A name cannot change after CREATE.
    validations.push(check(
        "request.operation != 'CREATE' || !params.spec.reservedNames.exists(r, r.endsWith('*') ? object.metadata.name.startsWith(r.substring(0, size(r) - 1)) : object.metadata.name == r)",
        "'metadata.name: ' + object.metadata.name + ' is reserved for the platform (reserved: ' + params.spec.reservedNames.join(', ') + ')'",
    ));
    let key = cel_string(Environment::CREATOR_ID_LABEL);
    validations.push(check(
        &format!(
            "request.operation == 'UPDATE' ? oldObject.metadata.?labels[?{key}] == object.metadata.?labels[?{key}] : !object.metadata.?labels[?{key}].hasValue()"
        ),
        &cel_string(&format!(
            "metadata.labels[{}]: is Berth's own bookkeeping; only Berth may set or change it",
            Environment::CREATOR_ID_LABEL
        )),
    ));
    for annotation in BOOKKEEPING_ANNOTATIONS {
        let key = cel_string(annotation);
        validations.push(check(
            &format!(
                "request.operation == 'UPDATE' ? oldObject.metadata.?annotations[?{key}] == object.metadata.?annotations[?{key}] : !object.metadata.?annotations[?{key}].hasValue()"
            ),
            &cel_string(&format!(
                "metadata.annotations[{annotation}]: is Berth's own bookkeeping; only Berth may set or change it"
            )),
        ));
    }
    let api_version = Environment::api_version(&());
    let (group, version) = api_version
        .split_once('/')
        .expect("a custom resource's apiVersion has a group");
    serde_json::from_value(json!({
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingAdmissionPolicy",
        "metadata": {"name": ADMISSION_POLICY_NAME},
        "spec": {
            "failurePolicy": "Fail",
            "paramKind": {
                "apiVersion": EnvironmentPolicy::api_version(&()),
                "kind": EnvironmentPolicy::kind(&()),
            },
            "matchConstraints": {"resourceRules": [{
                "apiGroups": [group],
                "apiVersions": [version],
                "operations": ["CREATE", "UPDATE"],
                "resources": [Environment::plural(&())],
            }]},
            "matchConditions": [{
                "name": "not-berth",
                "expression": format!("request.userInfo.username != {}", cel_string(berth_username)),
            }],
            "variables": variables,
            "validations": validations,
        },
    }))
    .expect("the admission policy is well-formed")
}

/// Binds [`admission_policy`] to the [`EnvironmentPolicy`] `default`. Until
/// Berth has published it, every Environment written outside Berth is
/// refused: no policy is not the same as no limits.
pub fn admission_policy_binding() -> ValidatingAdmissionPolicyBinding {
    serde_json::from_value(json!({
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingAdmissionPolicyBinding",
        "metadata": {"name": ADMISSION_POLICY_NAME},
        "spec": {
            "policyName": ADMISSION_POLICY_NAME,
            "paramRef": {"name": POLICY_OBJECT_NAME, "parameterNotFoundAction": "Deny"},
            "validationActions": ["Deny"],
        },
    }))
    .expect("the admission policy binding is well-formed")
}

/// The `EnvironmentPolicy` CustomResourceDefinition as YAML.
pub fn policy_crd_yaml() -> String {
    serde_yaml::to_string(&EnvironmentPolicy::crd()).expect("the CRD serializes to YAML")
}
