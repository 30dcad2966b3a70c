//! Resolving a spec: filling what it leaves out from its template, else from
//! the policy's defaults (a request, once, before it is written), or from
//! Berth's built-in defaults alone (a stored Environment).

use super::app::App;
use super::policy::Policy;
use super::resolved::{Defaults, ResolvedSpec};
use super::settings::{Limits, Quota, Settings};
use super::spec::EnvironmentSpec;
use super::template::Template;
use crate::validation::{FieldError, ValidationErrors};

/// Fills what `spec` leaves out from its template (looked up in `templates`),
/// else from `policy`'s defaults, and checks that the result holds together.
/// This is how a request is resolved, once, before it is written.
///
/// Errors: `template` when it names none of `templates`; `limits.*` when a
/// default the user wrote exceeds the quota.
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
    fill(spec, template, policy.defaults())
}

impl ResolvedSpec {
    /// A spec as an `Environment` stores it, which the API writes fully
    /// resolved: nothing is looked up. `template` is only a record of where
    /// the settings came from; a field left out (an Environment written by
    /// hand) takes [`Defaults::BUILTIN`], and no `ttl` means no expiry, so
    /// a template or policy changed later changes no existing environment.
    pub fn stored(spec: EnvironmentSpec) -> Result<ResolvedSpec, ValidationErrors> {
        fill(spec, Settings::default(), Defaults::builtin())
    }
}

/// Each setting from `spec`, else `template`, else `defaults`.
fn fill(
    spec: EnvironmentSpec,
    template: Settings,
    d: Defaults,
) -> Result<ResolvedSpec, ValidationErrors> {
    let s = spec.settings.or(template);
    let quota = Quota {
        cpu: s.quota.cpu.unwrap_or(d.quota.cpu),
        memory: s.quota.memory.unwrap_or(d.quota.memory),
        storage: s.quota.storage.unwrap_or(d.quota.storage),
        pods: s.quota.pods.unwrap_or(d.quota.pods),
        ephemeral_storage: s
            .quota
            .ephemeral_storage
            .unwrap_or(d.quota.ephemeral_storage),
        objects: s
            .quota
            .objects
            .zip(d.quota.objects)
            .map(|_, (asked, default)| asked.unwrap_or(default)),
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
        exceptions: spec.exceptions,
    })
}
