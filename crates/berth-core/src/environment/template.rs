//! Templates: named settings a spec can start from, the built-in ones as data.

use super::input::{TemplateInput, TemplateSpecInput, required};
use super::name::TemplateName;
use super::settings::{Description, Settings};
use crate::validation::ValidationErrors;
use serde::Serialize;

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
   "spec": {"quota": {"cpu": "2", "memory": "4Gi", "storage": "10Gi", "pods": 20, "ephemeralStorage": "20Gi",
                      "objects": {"configmaps": 50, "secrets": 50, "services": 20, "persistentVolumeClaims": 20}},
            "limits": {"defaultCpu": "250m", "defaultMemory": "256Mi"},
            "network": {"isolation": "isolated"}, "podSecurity": "restricted"}},
  {"name": "medium", "description": "A team's services: 4 CPUs, 8Gi memory, 50Gi storage, 50 pods",
   "spec": {"quota": {"cpu": "4", "memory": "8Gi", "storage": "50Gi", "pods": 50, "ephemeralStorage": "50Gi",
                      "objects": {"configmaps": 100, "secrets": 100, "services": 50, "persistentVolumeClaims": 50}},
            "limits": {"defaultCpu": "250m", "defaultMemory": "256Mi"},
            "network": {"isolation": "isolated"}, "podSecurity": "restricted"}},
  {"name": "large", "description": "A full product stack: 8 CPUs, 16Gi memory, 100Gi storage, 100 pods",
   "spec": {"quota": {"cpu": "8", "memory": "16Gi", "storage": "100Gi", "pods": 100, "ephemeralStorage": "100Gi",
                      "objects": {"configmaps": 200, "secrets": 200, "services": 100, "persistentVolumeClaims": 100}},
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
