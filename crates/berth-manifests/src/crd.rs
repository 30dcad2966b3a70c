//! The `Environment` custom resource (`environments.berth.dev`): its spec is the
//! contract's EnvironmentSpec less `name` (the object's name), in wire form, so
//! `kubectl apply` of one works; it becomes a domain spec only through the
//! berth-core parser.

use berth_core::environment::schema;
use berth_core::environment::{
    AppInput, Defaults, EnvironmentName, EnvironmentSpec, EnvironmentSpecInput, ExceptionsInput,
    LimitsInput, MemberInput, NetworkInput, QuotaInput, ResolvedSpec,
};
use berth_core::validation::ValidationErrors;
use kube::core::{Message, Rule};
use kube::{CustomResource, CustomResourceExt};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::collections::BTreeMap;

pub(crate) const API_VERSION: &str = "berth.dev/v1alpha1";
pub(crate) const KIND: &str = "Environment";

/// What a user asked for; see the contract's EnvironmentSpec.
#[derive(
    CustomResource, Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema,
)]
#[kube(
    group = "berth.dev",
    version = "v1alpha1",
    kind = "Environment",
    status = "EnvironmentStatus",
    shortname = "benv",
    doc = "An isolated namespace with its quota, limits, network isolation, pod security, members and apps",
    printcolumn = r#"{"name": "Phase", "type": "string", "jsonPath": ".status.phase"}"#,
    printcolumn = r#"{"name": "Owner", "type": "string", "jsonPath": ".spec.members[0].email", "description": "The first member: the creator"}"#,
    printcolumn = r#"{"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"}"#,
    validation = name_rule()
)]
#[serde(rename_all = "camelCase")]
#[schemars(transform = limits_within_quota)]
pub struct EnvironmentCrdSpec {
    // The schema attributes are those of `EnvironmentSpecInput`'s fields
    // (a test keeps them alike), which mirror berth-core's parsers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(
        length(max = 500),
        regex(pattern = r"^[^\x00-\x09\x0b-\x1f\x7f-\x9f]*$")
    )]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(
        length(min = 1, max = 40),
        regex(pattern = "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
    )]
    pub template: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quota: Option<QuotaInput>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limits: Option<LimitsInput>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network: Option<NetworkInput>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("enum" = ["restricted", "baseline"]))]
    pub pod_security: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(transform = schema::ttl)]
    pub ttl: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 50), transform = schema::unique_app_names)]
    pub apps: Option<Vec<AppInput>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 100), transform = schema::unique_member_emails)]
    pub members: Option<Vec<MemberInput>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exceptions: Option<ExceptionsInput>,
}

/// The object's name is the environment's (`EnvironmentName::parse`): a DNS
/// label of 3 to 40 characters, not one Kubernetes or Berth keeps.
fn name_rule() -> Rule {
    let (min, max) = (EnvironmentName::MIN_LEN, EnvironmentName::MAX_LEN);
    Rule::new(format!(
        "size(self.metadata.name) >= {min} && size(self.metadata.name) <= {max} \
         && self.metadata.name.matches('^[a-z0-9]([-a-z0-9]*[a-z0-9])?$') \
         && self.metadata.name != 'default' && !self.metadata.name.startsWith('kube-') \
         && !self.metadata.name.startsWith('berth-')"
    ))
    .message(Message::Message(format!(
        "metadata.name must be {min} to {max} characters of lowercase letters, digits and '-', \
         starting and ending with a letter or digit, and not 'default' or start with 'kube-' \
         or 'berth-' (reserved)"
    )))
}

/// A container default written in the spec must not exceed the quota, or
/// the builtin quota ([`Defaults::builtin`]) where the spec gives none
/// (`resolve`): the apiserver would refuse the LimitRange.
fn limits_within_quota(schema: &mut schemars::Schema) {
    let quota = Defaults::builtin().quota;
    // `has` rather than optionals: through `orValue` the cost estimator
    // loses the strings' maxLength and refuses the rule as too costly.
    let rule = |limit: &str, quota_field: &str, default: String, what: &str| {
        let (limit, quota) = (format!("limits.{limit}"), format!("quota.{quota_field}"));
        json!({
            "rule": format!(
                "!has(self.limits) || !has(self.{limit}) || !isQuantity(self.{limit}) \
                 || (has(self.quota) && has(self.{quota}) \
                 ? !isQuantity(self.{quota}) || quantity(self.{limit}).compareTo(quantity(self.{quota})) <= 0 \
                 : quantity(self.{limit}).compareTo(quantity('{default}')) <= 0)"
            ),
            "message": format!("must not exceed the {what} quota ({default} when {quota} is not given)"),
            "fieldPath": format!(".{limit}"),
        })
    };
    let rules = [
        rule("defaultCpu", "cpu", quota.cpu.to_string(), "CPU"),
        rule(
            "defaultMemory",
            "memory",
            quota.memory.to_string(),
            "memory",
        ),
    ];
    match schema.get_mut("x-kubernetes-validations") {
        Some(Value::Array(existing)) => existing.extend(rules),
        _ => {
            schema.insert("x-kubernetes-validations".into(), json!(rules));
        }
    }
}

impl EnvironmentCrdSpec {
    /// The wire spec without its name, which becomes the object's name.
    pub fn from_input(input: EnvironmentSpecInput) -> Self {
        Self {
            description: input.description,
            template: input.template,
            quota: input.quota,
            limits: input.limits,
            network: input.network,
            pod_security: input.pod_security,
            ttl: input.ttl,
            apps: input.apps,
            members: input.members,
            exceptions: input.exceptions,
        }
    }

    pub fn to_input(&self, name: &str) -> EnvironmentSpecInput {
        EnvironmentSpecInput {
            name: Some(name.to_owned()),
            description: self.description.clone(),
            template: self.template.clone(),
            quota: self.quota.clone(),
            limits: self.limits.clone(),
            network: self.network.clone(),
            pod_security: self.pod_security.clone(),
            ttl: self.ttl.clone(),
            apps: self.apps.clone(),
            members: self.members.clone(),
            exceptions: self.exceptions.clone(),
        }
    }
}

impl Environment {
    /// Annotation naming the person who created the environment.
    pub const CREATED_BY_ANNOTATION: &'static str = "berth.dev/created-by";
    /// Annotation with the RFC 3339 time its TTL counts from after a renewal;
    /// without it, the TTL counts from the resource's creation.
    pub const RENEWED_AT_ANNOTATION: &'static str = "berth.dev/renewed-at";
    /// Label with the id of the Berth user who created the environment: what
    /// the per-person limit counts, by label selector.
    pub const CREATOR_ID_LABEL: &'static str = "berth.dev/creator-id";

    /// The resource for a resolved spec: every setting written out, so later
    /// changes to templates or policy do not alter it.
    pub fn for_spec(spec: &ResolvedSpec) -> Self {
        Environment::new(
            spec.name.as_str(),
            EnvironmentCrdSpec::from_input(spec.to_input()),
        )
    }

    /// Parses the resource's spec (named by the object's name), exactly as the
    /// API parses a request: errors name the fields under `spec`.
    pub fn parse_spec(&self) -> Result<EnvironmentSpec, ValidationErrors> {
        let name = self.metadata.name.as_deref().unwrap_or_default();
        EnvironmentSpec::parse(&self.spec.to_input(name))
    }

    /// The spec as stored, resolved without looking anything up
    /// ([`ResolvedSpec::stored`]): what the controller builds from.
    pub fn resolved_spec(&self) -> Result<ResolvedSpec, ValidationErrors> {
        self.parse_spec().and_then(ResolvedSpec::stored)
    }
}

/// Where an environment is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum Phase {
    Pending,
    Provisioning,
    Ready,
    Degraded,
    Deleting,
}

/// One observation of the controller, shaped like Kubernetes conditions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Condition {
    #[serde(rename = "type")]
    pub type_: String,
    /// `True`, `False` or `Unknown`.
    pub status: String,
    pub reason: String,
    pub message: String,
    /// RFC 3339 UTC.
    pub last_transition_time: String,
}

/// The quota's limits and what the namespace uses of them, as Kubernetes reports them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct QuotaStatus {
    #[serde(default)]
    pub hard: BTreeMap<String, String>,
    #[serde(default)]
    pub used: BTreeMap<String, String>,
}

/// What the controller last saw of an environment.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct EnvironmentStatus {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<Phase>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quota: Option<QuotaStatus>,
    /// RFC 3339 UTC; absent when the environment does not expire.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
}

/// The CustomResourceDefinition as YAML, for `berth crd` and `kubectl apply -f`.
pub fn crd_yaml() -> String {
    serde_yaml::to_string(&Environment::crd()).expect("the CRD serializes to YAML")
}
