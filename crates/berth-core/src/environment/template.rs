//! Templates, and resolving a spec: filling what it leaves out from its template,
//! else from the policy's defaults.

use super::app::{App, ResolvedApp, required};
use super::duration::Ttl;
use super::member::Member;
use super::name::{EnvironmentName, TemplateName};
use super::policy::Policy;
use super::quantity::{ByteQuantity, CpuQuantity, PodCount};
use super::settings::{Description, LimitsRequest, QuotaRequest, Settings};
use super::spec::{EnvironmentSpec, EnvironmentSpecInput, LimitsInput, NetworkInput, QuotaInput};
use super::spec::{Isolation, PodSecurity};
use crate::validation::{FieldError, ValidationErrors};
use serde::{Deserialize, Serialize};

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

/// Named settings a spec can start from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    pub name: TemplateName,
    pub description: Description,
    pub settings: Settings,
}

impl Template {
    pub fn parse(input: &TemplateInput) -> Result<Self, ValidationErrors> {
        let mut errors = ValidationErrors::new();
        let name = errors
            .collect(required(&input.name, "name").and_then(|n| TemplateName::parse("name", n)));
        let description = errors.collect(
            input
                .description
                .as_deref()
                .map_or(Ok(Description::default()), |d| {
                    Description::parse("description", d)
                }),
        );
        let spec = input.spec.clone().unwrap_or_default();
        let settings = errors.collect(
            Settings::parse(
                spec.quota.as_ref(),
                spec.limits.as_ref(),
                spec.network.as_ref(),
                spec.pod_security.as_deref(),
                spec.ttl.as_deref(),
            )
            .map_err(|e| e.under("spec")),
        );
        errors.finish(|| Template {
            name: name.expect("checked"),
            description: description.expect("checked"),
            settings: settings.expect("checked"),
        })
    }

    pub fn to_input(&self) -> TemplateInput {
        let s = &self.settings;
        TemplateInput {
            name: Some(self.name.to_string()),
            description: Some(self.description.as_str().to_owned()),
            spec: Some(TemplateSpecInput {
                quota: s.quota_input(),
                limits: s.limits_input(),
                network: s.network_input(),
                pod_security: s.pod_security.map(|p| p.to_string()),
                ttl: s.ttl.map(|t| t.to_string()),
            }),
        }
    }
}

impl Serialize for Template {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.to_input().serialize(serializer)
    }
}

/// The built-in templates as data, in the same form an admin's template takes.
/// They leave the TTL to the policy's default.
const BUILTIN: &str = r#"[
  {"name": "small", "description": "A few small services: 2 CPUs, 4Gi memory, 10Gi storage, 20 pods",
   "spec": {"quota": {"cpu": "2", "memory": "4Gi", "storage": "10Gi", "pods": 20},
            "limits": {"defaultCpu": "250m", "defaultMemory": "256Mi"},
            "network": {"isolation": "isolated"}, "podSecurity": "restricted"}},
  {"name": "medium", "description": "A team's services: 4 CPUs, 8Gi memory, 50Gi storage, 50 pods",
   "spec": {"quota": {"cpu": "4", "memory": "8Gi", "storage": "50Gi", "pods": 50},
            "limits": {"defaultCpu": "250m", "defaultMemory": "256Mi"},
            "network": {"isolation": "isolated"}, "podSecurity": "restricted"}},
  {"name": "large", "description": "A full product stack: 8 CPUs, 16Gi memory, 100Gi storage, 100 pods",
   "spec": {"quota": {"cpu": "8", "memory": "16Gi", "storage": "100Gi", "pods": 100},
            "limits": {"defaultCpu": "500m", "defaultMemory": "512Mi"},
            "network": {"isolation": "isolated"}, "podSecurity": "restricted"}}
]"#;

/// The templates every Berth has: `small`, `medium` and `large`.
pub fn builtin_templates() -> Vec<Template> {
    let inputs: Vec<TemplateInput> =
        serde_json::from_str(BUILTIN).expect("built-in templates are well-formed");
    inputs
        .iter()
        .map(|input| Template::parse(input).expect("built-in templates are valid"))
        .collect()
}

/// The resource quota of an environment, every part set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quota {
    pub cpu: CpuQuantity,
    pub memory: ByteQuantity,
    pub storage: ByteQuantity,
    pub pods: PodCount,
}

/// The per-container defaults of an environment, every part set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub default_cpu: CpuQuantity,
    pub default_memory: ByteQuantity,
}

/// Settings with nothing left out: what the policy falls back to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Defaults {
    pub quota: Quota,
    pub limits: Limits,
    pub isolation: Isolation,
    pub pod_security: PodSecurity,
    pub ttl: Option<Ttl>,
}

/// An environment with every setting decided: what the manifests are built from
/// and what policy is checked against.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedSpec {
    pub name: EnvironmentName,
    pub description: Description,
    pub template: Option<TemplateName>,
    pub quota: Quota,
    pub limits: Limits,
    pub isolation: Isolation,
    pub pod_security: PodSecurity,
    /// `None`: the environment does not expire.
    pub ttl: Option<Ttl>,
    pub apps: Vec<ResolvedApp>,
    pub members: Vec<Member>,
}

impl ResolvedSpec {
    /// The contract's JSON with every field written out, so that storing it pins
    /// the environment against later changes to its template or the policy.
    pub fn to_input(&self) -> EnvironmentSpecInput {
        let settings = Settings {
            quota: QuotaRequest {
                cpu: Some(self.quota.cpu),
                memory: Some(self.quota.memory),
                storage: Some(self.quota.storage),
                pods: Some(self.quota.pods),
            },
            limits: LimitsRequest {
                default_cpu: Some(self.limits.default_cpu),
                default_memory: Some(self.limits.default_memory),
            },
            isolation: Some(self.isolation),
            pod_security: Some(self.pod_security),
            ttl: self.ttl,
        };
        EnvironmentSpecInput {
            name: Some(self.name.to_string()),
            description: (!self.description.as_str().is_empty())
                .then(|| self.description.as_str().to_owned()),
            template: self.template.as_ref().map(ToString::to_string),
            quota: settings.quota_input(),
            limits: settings.limits_input(),
            network: settings.network_input(),
            pod_security: Some(self.pod_security.to_string()),
            ttl: self.ttl.map(|t| t.to_string()),
            apps: (!self.apps.is_empty())
                .then(|| self.apps.iter().map(ResolvedApp::to_input).collect()),
            members: (!self.members.is_empty())
                .then(|| self.members.iter().map(Member::to_input).collect()),
        }
    }
}

impl Serialize for ResolvedSpec {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.to_input().serialize(serializer)
    }
}

/// Fills what `spec` leaves out from its template (looked up in `templates`),
/// else from `policy`'s defaults, and checks that the result holds together.
pub fn resolve(
    spec: EnvironmentSpec,
    templates: &[Template],
    policy: &Policy,
) -> Result<ResolvedSpec, ValidationErrors> {
    let template = match &spec.template {
        None => Settings::default(),
        Some(name) => match templates.iter().find(|t| &t.name == name) {
            Some(t) => t.settings,
            None => {
                let known: Vec<&str> = templates.iter().map(|t| t.name.as_str()).collect();
                return Err(ValidationErrors::single(
                    "template",
                    format!("must be one of: {}", known.join(", ")),
                ));
            }
        },
    };
    let d = policy.defaults();
    let s = spec.settings.or(template);
    let quota = Quota {
        cpu: s.quota.cpu.unwrap_or(d.quota.cpu),
        memory: s.quota.memory.unwrap_or(d.quota.memory),
        storage: s.quota.storage.unwrap_or(d.quota.storage),
        pods: s.quota.pods.unwrap_or(d.quota.pods),
    };
    // Limit defaults that came from elsewhere shrink to a smaller quota the user
    // chose; ones the user wrote themselves are errors below instead.
    let asked = spec.settings.limits;
    let limits = Limits {
        default_cpu: asked.default_cpu.unwrap_or_else(|| {
            s.limits
                .default_cpu
                .unwrap_or(d.limits.default_cpu)
                .min(quota.cpu)
        }),
        default_memory: asked.default_memory.unwrap_or_else(|| {
            s.limits
                .default_memory
                .unwrap_or(d.limits.default_memory)
                .min(quota.memory)
        }),
    };
    let mut errors = ValidationErrors::new();
    // A LimitRange whose default exceeds its max is refused by the apiserver.
    if limits.default_cpu > quota.cpu {
        errors.push(FieldError::new(
            "limits.defaultCpu",
            format!("must not exceed the CPU quota ({})", quota.cpu),
        ));
    }
    if limits.default_memory > quota.memory {
        errors.push(FieldError::new(
            "limits.defaultMemory",
            format!("must not exceed the memory quota ({})", quota.memory),
        ));
    }
    errors.finish(|| ResolvedSpec {
        name: spec.name,
        description: spec.description,
        template: spec.template,
        quota,
        limits,
        isolation: s.isolation.unwrap_or(d.isolation),
        pod_security: s.pod_security.unwrap_or(d.pod_security),
        ttl: s.ttl.or(d.ttl),
        apps: spec
            .apps
            .into_iter()
            .map(|a: App| a.resolve(&limits))
            .collect(),
        members: spec.members,
    })
}
