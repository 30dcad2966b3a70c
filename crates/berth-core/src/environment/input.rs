//! The wire forms: environment specs, apps, members and templates exactly as
//! the contract's JSON has them. Every field is optional here so that a
//! missing one is reported by the parsers with its name, rather than by
//! serde; the parsed forms live beside their rules (`spec`, `app`, `member`,
//! `template`). Nothing here depends on another module of `environment`.

use crate::validation::ValidationErrors;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// An EnvironmentSpec exactly as the contract's JSON has it. Every field is
/// optional here so that a missing one is reported by [`EnvironmentSpec::parse`]
/// with its name, rather than by serde.
#[derive(
    Debug,
    Clone,
    Default,
    PartialEq,
    Eq,
    Serialize,
    Deserialize,
    schemars::JsonSchema,
    utoipa::ToSchema,
)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EnvironmentSpecInput {
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(
        length(min = 3, max = 40),
        regex(pattern = "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
    )]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(
        length(max = 500),
        regex(pattern = r"^[^\x00-\x09\x0b-\x1f\x7f-\x9f]*$")
    )]
    pub description: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(
        length(min = 1, max = 40),
        regex(pattern = "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
    )]
    pub template: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub quota: Option<QuotaInput>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limits: Option<LimitsInput>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub network: Option<NetworkInput>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(extend("enum" = ["restricted", "baseline"]))]
    pub pod_security: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(transform = super::schema::ttl)]
    pub ttl: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 50), transform = super::schema::unique_app_names)]
    pub apps: Option<Vec<AppInput>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 100), transform = super::schema::unique_member_emails)]
    pub members: Option<Vec<MemberInput>>,
    /// Exceptions to the tenant guardrails; granted by an admin only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exceptions: Option<ExceptionsInput>,
}

/// Exceptions to the tenant guardrails for one environment, as they travel
/// in JSON. Anyone may ask; only an admin grants them (asked by anyone else,
/// a create or change waits for an admin's approval, whatever the policy).
#[derive(
    Debug,
    Clone,
    Default,
    PartialEq,
    Eq,
    Serialize,
    Deserialize,
    schemars::JsonSchema,
    utoipa::ToSchema,
)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ExceptionsInput {
    /// More hosts the environment's Ingresses may serve, beyond
    /// `*.<environment>.<ingress domain>`: DNS names (IDNs allowed, stored in
    /// punycode), `*.example.com` for every name under `example.com`; never
    /// under the ingress domain, and never another environment's.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 20))]
    pub ingress_hosts: Option<Vec<String>>,
    /// Whether the environment's Services may be of type `ExternalName`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub external_name: Option<bool>,
}

impl EnvironmentSpecInput {
    /// Reads the wire form from JSON, naming the field of any type error or
    /// unknown field, so even those answer with field details.
    pub fn from_json(value: serde_json::Value) -> Result<Self, ValidationErrors> {
        serde_path_to_error::deserialize(value).map_err(|err| {
            let path = err.path().to_string();
            let field = if path == "." { String::new() } else { path };
            ValidationErrors::single(field, err.into_inner().to_string())
        })
    }
}

#[derive(
    Debug,
    Clone,
    Default,
    PartialEq,
    Eq,
    Serialize,
    Deserialize,
    schemars::JsonSchema,
    utoipa::ToSchema,
)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct QuotaInput {
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(transform = super::schema::cpu_quantity)]
    pub cpu: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(transform = super::schema::byte_quantity)]
    pub memory: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(transform = super::schema::byte_quantity)]
    pub storage: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 1000))]
    pub pods: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(transform = super::schema::byte_quantity)]
    pub ephemeral_storage: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub objects: Option<ObjectCountsInput>,
}

/// How many objects of each kind the namespace may hold, as they travel in JSON.
#[derive(
    Debug,
    Clone,
    Default,
    PartialEq,
    Eq,
    Serialize,
    Deserialize,
    schemars::JsonSchema,
    utoipa::ToSchema,
)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ObjectCountsInput {
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 1000))]
    pub configmaps: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 1000))]
    pub secrets: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 1000))]
    pub services: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 1000))]
    pub persistent_volume_claims: Option<i64>,
}

#[derive(
    Debug,
    Clone,
    Default,
    PartialEq,
    Eq,
    Serialize,
    Deserialize,
    schemars::JsonSchema,
    utoipa::ToSchema,
)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LimitsInput {
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(transform = super::schema::cpu_quantity)]
    pub default_cpu: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(transform = super::schema::byte_quantity)]
    pub default_memory: Option<String>,
}

#[derive(
    Debug,
    Clone,
    Default,
    PartialEq,
    Eq,
    Serialize,
    Deserialize,
    schemars::JsonSchema,
    utoipa::ToSchema,
)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NetworkInput {
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(extend("enum" = ["isolated", "open"]))]
    pub isolation: Option<String>,
}

/// An app: a Deployment, and a Service and an Ingress as `expose` asks.
#[derive(
    Debug,
    Clone,
    Default,
    PartialEq,
    Eq,
    Serialize,
    Deserialize,
    schemars::JsonSchema,
    utoipa::ToSchema,
)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schemars(transform = super::schema::app)]
pub struct AppInput {
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(
        required,
        length(min = 1, max = 40),
        regex(pattern = "^[a-z]([-a-z0-9]*[a-z0-9])?$")
    )]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(required, transform = super::schema::image)]
    pub image: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = 20))]
    pub replicas: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 65535))]
    pub port: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(transform = super::schema::env)]
    pub env: Option<BTreeMap<String, String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resources: Option<ResourcesInput>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(extend("enum" = ["none", "cluster", "ingress"]))]
    pub expose: Option<String>,
}

/// Per-container CPU and memory as they travel in JSON.
#[derive(
    Debug,
    Clone,
    Default,
    PartialEq,
    Eq,
    Serialize,
    Deserialize,
    schemars::JsonSchema,
    utoipa::ToSchema,
)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ResourcesInput {
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(transform = super::schema::cpu_quantity)]
    pub cpu: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(transform = super::schema::byte_quantity)]
    pub memory: Option<String>,
}

/// A member as it travels in JSON.
#[derive(
    Debug,
    Clone,
    Default,
    PartialEq,
    Eq,
    Serialize,
    Deserialize,
    schemars::JsonSchema,
    utoipa::ToSchema,
)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct MemberInput {
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(required, transform = super::schema::email)]
    pub email: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(required, extend("enum" = ["owner", "editor", "viewer"]))]
    pub role: Option<String>,
}

/// A template's settings as they travel in JSON: the spec fields a template fills.
#[derive(
    Debug,
    Clone,
    Default,
    PartialEq,
    Eq,
    Serialize,
    Deserialize,
    schemars::JsonSchema,
    utoipa::ToSchema,
)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TemplateSpecInput {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub quota: Option<QuotaInput>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limits: Option<LimitsInput>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub network: Option<NetworkInput>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pod_security: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ttl: Option<String>,
}

/// A template as `GET /api/v1/templates` lists it and an admin writes it.
#[derive(
    Debug,
    Clone,
    Default,
    PartialEq,
    Eq,
    Serialize,
    Deserialize,
    schemars::JsonSchema,
    utoipa::ToSchema,
)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TemplateInput {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub spec: Option<TemplateSpecInput>,
}

pub(super) fn required<'a>(
    value: &'a Option<String>,
    field: &str,
) -> Result<&'a str, ValidationErrors> {
    value
        .as_deref()
        .ok_or_else(|| ValidationErrors::single(field, "is required"))
}
