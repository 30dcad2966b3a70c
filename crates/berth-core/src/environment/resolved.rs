//! The resolved model: an environment with every setting decided, what the
//! manifest builder builds from and the policy judges.

use super::app::ResolvedApp;
use super::duration::Ttl;
use super::exceptions::Exceptions;
use super::input::EnvironmentSpecInput;
use super::member::Member;
use super::name::{EnvironmentName, TemplateName};
use super::settings::{
    Description, Isolation, Limits, LimitsRequest, PodSecurity, Quota, QuotaRequest, Settings,
};
use super::template::builtin_templates;
use serde::Serialize;

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
    /// What an admin granted beyond the guardrails.
    pub exceptions: Exceptions,
}

/// The settings of a resolved spec that bound what it may use: what a
/// change must not alter without the policy's say.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bounds {
    pub quota: Quota,
    pub limits: Limits,
    pub isolation: Isolation,
    pub pod_security: PodSecurity,
    pub ttl: Option<Ttl>,
}

impl ResolvedSpec {
    pub fn bounds(&self) -> Bounds {
        Bounds {
            quota: self.quota,
            limits: self.limits,
            isolation: self.isolation,
            pod_security: self.pod_security,
            ttl: self.ttl,
        }
    }

    /// The contract's JSON with every field written out, so that storing it pins
    /// the environment against later changes to its template or the policy.
    pub fn to_input(&self) -> EnvironmentSpecInput {
        let settings = Settings {
            quota: QuotaRequest {
                cpu: Some(self.quota.cpu),
                memory: Some(self.quota.memory),
                storage: Some(self.quota.storage),
                pods: Some(self.quota.pods),
                ephemeral_storage: Some(self.quota.ephemeral_storage),
                objects: self.quota.objects.map(|_, count| Some(count)),
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
            exceptions: self.exceptions.to_input(),
        }
    }
}

impl Serialize for ResolvedSpec {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.to_input().serialize(serializer)
    }
}

impl Defaults {
    /// What a hand-written Environment gets for the fields it leaves out:
    /// the `small` template's settings and no expiry.
    pub fn builtin() -> Defaults {
        let small = builtin_templates()
            .into_iter()
            .next()
            .expect("small is built in")
            .settings;
        Defaults {
            quota: Quota {
                cpu: small.quota.cpu.expect("small sets every quota"),
                memory: small.quota.memory.expect("small sets every quota"),
                storage: small.quota.storage.expect("small sets every quota"),
                pods: small.quota.pods.expect("small sets every quota"),
                ephemeral_storage: small
                    .quota
                    .ephemeral_storage
                    .expect("small sets every quota"),
                objects: small
                    .quota
                    .objects
                    .map(|_, count| count.expect("small sets every quota")),
            },
            limits: Limits {
                default_cpu: small.limits.default_cpu.expect("small sets limits"),
                default_memory: small.limits.default_memory.expect("small sets limits"),
            },
            isolation: small.isolation.unwrap_or(Isolation::Isolated),
            pod_security: small.pod_security.unwrap_or(PodSecurity::Restricted),
            ttl: None,
        }
    }
}
