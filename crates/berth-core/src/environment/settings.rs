//! The settings a spec or a template may give, each possibly left out.

use super::choice;
use super::duration::Ttl;
use super::input::{LimitsInput, NetworkInput, ObjectCountsInput, QuotaInput};
use super::quantity::{ByteQuantity, CpuQuantity, ObjectCount, PodCount};
use crate::validation::ValidationErrors;
use serde::Serialize;

choice! {
    /// Who may reach an environment's pods.
    Isolation { Isolated => "isolated", Open => "open" }
}

choice! {
    /// The Pod Security Standard enforced in the namespace.
    PodSecurity { Restricted => "restricted", Baseline => "baseline" }
}

/// The resource quota of an environment, every part set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quota {
    pub cpu: CpuQuantity,
    pub memory: ByteQuantity,
    pub storage: ByteQuantity,
    pub pods: PodCount,
    /// Node-local scratch space (container writable layers, `emptyDir`).
    pub ephemeral_storage: ByteQuantity,
    pub objects: ObjectCounts,
}

/// The per-container defaults of an environment, every part set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub default_cpu: CpuQuantity,
    pub default_memory: ByteQuantity,
}

const MAX_DESCRIPTION_CHARS: usize = 500;

/// A short text describing an environment or template.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct Description(String);

impl Description {
    pub fn parse(field: &str, raw: &str) -> Result<Self, ValidationErrors> {
        if raw.chars().count() > MAX_DESCRIPTION_CHARS {
            return Err(ValidationErrors::single(
                field,
                "must be at most 500 characters",
            ));
        }
        if raw.chars().any(|c| c.is_control() && c != '\n') {
            return Err(ValidationErrors::single(
                field,
                "must not contain control characters other than line breaks",
            ));
        }
        Ok(Self(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Counts of the object kinds a namespace's quota bounds: `T` is an
/// [`ObjectCount`] once resolved, an `Option` of one while asked for.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ObjectCounts<T = ObjectCount> {
    pub configmaps: T,
    pub secrets: T,
    pub services: T,
    pub persistent_volume_claims: T,
}

impl<T> ObjectCounts<T> {
    /// Each count through `f`, with the contract's name of its field.
    pub fn map<U>(self, mut f: impl FnMut(&str, T) -> U) -> ObjectCounts<U> {
        ObjectCounts {
            configmaps: f("configmaps", self.configmaps),
            secrets: f("secrets", self.secrets),
            services: f("services", self.services),
            persistent_volume_claims: f("persistentVolumeClaims", self.persistent_volume_claims),
        }
    }

    /// Pairs each count with the one of `other`.
    pub fn zip<U>(self, other: ObjectCounts<U>) -> ObjectCounts<(T, U)> {
        ObjectCounts {
            configmaps: (self.configmaps, other.configmaps),
            secrets: (self.secrets, other.secrets),
            services: (self.services, other.services),
            persistent_volume_claims: (
                self.persistent_volume_claims,
                other.persistent_volume_claims,
            ),
        }
    }
}

/// The quota asked for; what is left out comes from the template or policy.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct QuotaRequest {
    pub cpu: Option<CpuQuantity>,
    pub memory: Option<ByteQuantity>,
    pub storage: Option<ByteQuantity>,
    pub ephemeral_storage: Option<ByteQuantity>,
    pub objects: ObjectCounts<Option<ObjectCount>>,
    pub pods: Option<PodCount>,
}

/// Per-container defaults asked for.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LimitsRequest {
    pub default_cpu: Option<CpuQuantity>,
    pub default_memory: Option<ByteQuantity>,
}

/// The settings a template can supply: each may be left out.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Settings {
    pub quota: QuotaRequest,
    pub limits: LimitsRequest,
    pub isolation: Option<Isolation>,
    pub pod_security: Option<PodSecurity>,
    pub ttl: Option<Ttl>,
}

impl Settings {
    pub(super) fn parse(
        quota: Option<&QuotaInput>,
        limits: Option<&LimitsInput>,
        network: Option<&NetworkInput>,
        pod_security: Option<&str>,
        ttl: Option<&str>,
    ) -> Result<Self, ValidationErrors> {
        let mut errors = ValidationErrors::new();
        let quota = quota.cloned().unwrap_or_default();
        let cpu = errors.collect(
            quota
                .cpu
                .as_deref()
                .map(|v| CpuQuantity::parse("quota.cpu", v))
                .transpose(),
        );
        let memory = errors.collect(
            quota
                .memory
                .as_deref()
                .map(|v| ByteQuantity::parse("quota.memory", v))
                .transpose(),
        );
        let storage = errors.collect(
            quota
                .storage
                .as_deref()
                .map(|v| ByteQuantity::parse("quota.storage", v))
                .transpose(),
        );
        let pods = errors.collect(
            quota
                .pods
                .map(|v| PodCount::parse("quota.pods", v))
                .transpose(),
        );
        let ephemeral_storage = errors.collect(
            quota
                .ephemeral_storage
                .as_deref()
                .map(|v| ByteQuantity::parse("quota.ephemeralStorage", v))
                .transpose(),
        );
        let counts = quota.objects.clone().unwrap_or_default();
        let objects = ObjectCounts {
            configmaps: counts.configmaps,
            secrets: counts.secrets,
            services: counts.services,
            persistent_volume_claims: counts.persistent_volume_claims,
        }
        .map(|name, raw| {
            errors
                .collect(
                    raw.map(|v| ObjectCount::parse(&format!("quota.objects.{name}"), v))
                        .transpose(),
                )
                .flatten()
        });
        let limits = limits.cloned().unwrap_or_default();
        let default_cpu = errors.collect(
            limits
                .default_cpu
                .as_deref()
                .map(|v| CpuQuantity::parse("limits.defaultCpu", v))
                .transpose(),
        );
        let default_memory = errors.collect(
            limits
                .default_memory
                .as_deref()
                .map(|v| ByteQuantity::parse("limits.defaultMemory", v))
                .transpose(),
        );
        let isolation = errors.collect(
            network
                .and_then(|n| n.isolation.as_deref())
                .map(|v| Isolation::parse("network.isolation", v))
                .transpose(),
        );
        let pod_security = errors.collect(
            pod_security
                .map(|v| PodSecurity::parse("podSecurity", v))
                .transpose(),
        );
        let ttl = errors.collect(ttl.map(|v| Ttl::parse("ttl", v)).transpose());
        errors.finish(|| Settings {
            quota: QuotaRequest {
                cpu: cpu.flatten(),
                memory: memory.flatten(),
                storage: storage.flatten(),
                pods: pods.flatten(),
                ephemeral_storage: ephemeral_storage.flatten(),
                objects,
            },
            limits: LimitsRequest {
                default_cpu: default_cpu.flatten(),
                default_memory: default_memory.flatten(),
            },
            isolation: isolation.flatten(),
            pod_security: pod_security.flatten(),
            ttl: ttl.flatten(),
        })
    }

    /// Each setting from `self`, else from `fallback`.
    pub fn or(self, fallback: Settings) -> Settings {
        Settings {
            quota: QuotaRequest {
                cpu: self.quota.cpu.or(fallback.quota.cpu),
                memory: self.quota.memory.or(fallback.quota.memory),
                storage: self.quota.storage.or(fallback.quota.storage),
                pods: self.quota.pods.or(fallback.quota.pods),
                ephemeral_storage: self
                    .quota
                    .ephemeral_storage
                    .or(fallback.quota.ephemeral_storage),
                objects: self
                    .quota
                    .objects
                    .zip(fallback.quota.objects)
                    .map(|_, (own, other)| own.or(other)),
            },
            limits: LimitsRequest {
                default_cpu: self.limits.default_cpu.or(fallback.limits.default_cpu),
                default_memory: self
                    .limits
                    .default_memory
                    .or(fallback.limits.default_memory),
            },
            isolation: self.isolation.or(fallback.isolation),
            pod_security: self.pod_security.or(fallback.pod_security),
            ttl: self.ttl.or(fallback.ttl),
        }
    }

    pub(super) fn quota_input(&self) -> Option<QuotaInput> {
        let q = self.quota;
        let input = QuotaInput {
            cpu: q.cpu.map(|v| v.to_string()),
            memory: q.memory.map(|v| v.to_string()),
            storage: q.storage.map(|v| v.to_string()),
            pods: q.pods.map(|v| i64::from(v.get())),
            ephemeral_storage: q.ephemeral_storage.map(|v| v.to_string()),
            objects: Some(ObjectCountsInput {
                configmaps: q.objects.configmaps.map(|v| i64::from(v.get())),
                secrets: q.objects.secrets.map(|v| i64::from(v.get())),
                services: q.objects.services.map(|v| i64::from(v.get())),
                persistent_volume_claims: q
                    .objects
                    .persistent_volume_claims
                    .map(|v| i64::from(v.get())),
            })
            .filter(|o| *o != ObjectCountsInput::default()),
        };
        (input != QuotaInput::default()).then_some(input)
    }

    pub(super) fn limits_input(&self) -> Option<LimitsInput> {
        let input = LimitsInput {
            default_cpu: self.limits.default_cpu.map(|v| v.to_string()),
            default_memory: self.limits.default_memory.map(|v| v.to_string()),
        };
        (input != LimitsInput::default()).then_some(input)
    }

    pub(super) fn network_input(&self) -> Option<NetworkInput> {
        self.isolation.map(|i| NetworkInput {
            isolation: Some(i.to_string()),
        })
    }
}
