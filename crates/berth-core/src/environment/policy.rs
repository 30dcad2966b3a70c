//! The platform's policy: who may register, how far an environment may go, and
//! when a person must approve it.

use super::choice;
use super::duration::Ttl;
use super::input::required;
use super::quantity::{ByteQuantity, CpuQuantity, PodCount};
use super::resolved::{Defaults, ResolvedSpec};
use super::settings::{Limits, Quota};
use crate::validation::{FieldError, ValidationErrors};
use serde::{Deserialize, Serialize};

choice! {
    /// Whether anyone may create an account.
    Registration { Open => "open", Closed => "closed" }
}

choice! {
    /// When creating or changing an environment waits for an admin.
    Approval { Never => "never", OverLimit => "overLimit", Always => "always" }
}

/// The policy as `GET/PUT /api/v1/admin/policy` carries it.
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
pub struct PolicyInput {
    pub registration: Option<String>,
    pub approval: Option<String>,
    pub max_environments_per_user: Option<i64>,
    pub max_quota: Option<MaxQuotaInput>,
    pub default_ttl: Option<String>,
    pub max_ttl: Option<String>,
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
pub struct MaxQuotaInput {
    pub cpu: Option<String>,
    pub memory: Option<String>,
    pub storage: Option<String>,
    pub pods: Option<i64>,
}

/// The most one environment may be given without an admin's approval.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MaxQuota {
    pub cpu: CpuQuantity,
    pub memory: ByteQuantity,
    pub storage: ByteQuantity,
    pub pods: PodCount,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    pub registration: Registration,
    pub approval: Approval,
    pub max_environments_per_user: u32,
    pub max_quota: MaxQuota,
    /// TTL of an environment whose spec and template give none; `None`: no expiry.
    pub default_ttl: Option<Ttl>,
    /// Longest TTL allowed; `None`: environments may live forever.
    pub max_ttl: Option<Ttl>,
}

impl Default for Policy {
    fn default() -> Self {
        Self {
            registration: Registration::Open,
            approval: Approval::OverLimit,
            max_environments_per_user: 5,
            max_quota: MaxQuota {
                cpu: CpuQuantity::from_millis(8000).expect("in range"),
                memory: ByteQuantity::from_bytes(16 << 30).expect("in range"),
                storage: ByteQuantity::from_bytes(100 << 30).expect("in range"),
                pods: PodCount::new(100).expect("in range"),
            },
            default_ttl: Ttl::from_seconds(72 * 3600),
            max_ttl: Ttl::from_seconds(30 * 24 * 3600),
        }
    }
}

/// One way a spec goes beyond the policy, named by the field that does.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Violation {
    pub field: String,
    pub message: String,
}

/// What the policy says about a spec.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Create it now.
    Allow,
    /// Record a request for an admin; the violations (possibly none, under
    /// `approval: always`) say why.
    NeedsApproval(Vec<Violation>),
    /// Refuse: over policy, and the policy never asks an admin.
    Deny(Vec<Violation>),
}

impl Policy {
    const MAX_ENVIRONMENTS: i64 = 1000;

    pub fn parse(input: &PolicyInput) -> Result<Self, ValidationErrors> {
        let mut errors = ValidationErrors::new();
        let registration = errors.collect(
            required(&input.registration, "registration")
                .and_then(|v| Registration::parse("registration", v)),
        );
        let approval = errors.collect(
            required(&input.approval, "approval").and_then(|v| Approval::parse("approval", v)),
        );
        let max_envs = errors.collect(match input.max_environments_per_user {
            Some(n) if (0..=Self::MAX_ENVIRONMENTS).contains(&n) => {
                Ok(u32::try_from(n).expect("in range"))
            }
            Some(_) => Err(ValidationErrors::single(
                "maxEnvironmentsPerUser",
                "must be a whole number from 0 to 1000",
            )),
            None => Err(ValidationErrors::single(
                "maxEnvironmentsPerUser",
                "is required",
            )),
        });
        let max_quota = errors.collect(parse_max_quota(input.max_quota.as_ref()));
        let default_ttl = errors.collect(
            input
                .default_ttl
                .as_deref()
                .map(|v| Ttl::parse("defaultTtl", v))
                .transpose(),
        );
        let max_ttl = errors.collect(
            input
                .max_ttl
                .as_deref()
                .map(|v| Ttl::parse("maxTtl", v))
                .transpose(),
        );
        if let (Some(Some(default)), Some(Some(max))) = (default_ttl, max_ttl)
            && default > max
        {
            errors.push(FieldError::new(
                "defaultTtl",
                format!("must not exceed maxTtl ({max})"),
            ));
        }
        if let (Some(None), Some(Some(_))) = (default_ttl, max_ttl) {
            errors.push(FieldError::new(
                "defaultTtl",
                "is required when maxTtl is set",
            ));
        }
        errors.finish(|| Policy {
            registration: registration.expect("checked"),
            approval: approval.expect("checked"),
            max_environments_per_user: max_envs.expect("checked"),
            max_quota: max_quota.expect("checked"),
            default_ttl: default_ttl.expect("checked"),
            max_ttl: max_ttl.expect("checked"),
        })
    }

    pub fn to_input(&self) -> PolicyInput {
        let q = self.max_quota;
        PolicyInput {
            registration: Some(self.registration.to_string()),
            approval: Some(self.approval.to_string()),
            max_environments_per_user: Some(i64::from(self.max_environments_per_user)),
            max_quota: Some(MaxQuotaInput {
                cpu: Some(q.cpu.to_string()),
                memory: Some(q.memory.to_string()),
                storage: Some(q.storage.to_string()),
                pods: Some(i64::from(q.pods.get())),
            }),
            default_ttl: self.default_ttl.map(|t| t.to_string()),
            max_ttl: self.max_ttl.map(|t| t.to_string()),
        }
    }

    /// What a spec without a template gets: Berth's built-in defaults
    /// ([`Defaults::builtin`]), the quota kept within the maximum, and the
    /// policy's default TTL.
    pub fn defaults(&self) -> Defaults {
        let builtin = Defaults::builtin();
        let max = self.max_quota;
        let quota = Quota {
            cpu: builtin.quota.cpu.min(max.cpu),
            memory: builtin.quota.memory.min(max.memory),
            storage: builtin.quota.storage.min(max.storage),
            pods: builtin.quota.pods.min(max.pods),
            ..builtin.quota
        };
        Defaults {
            quota,
            limits: Limits {
                default_cpu: builtin.limits.default_cpu.min(quota.cpu),
                default_memory: builtin.limits.default_memory.min(quota.memory),
            },
            ttl: self.default_ttl,
            ..builtin
        }
    }

    /// Everything in `spec` that goes beyond this policy.
    pub fn check(&self, spec: &ResolvedSpec) -> Vec<Violation> {
        let mut out = Vec::new();
        let mut over = |field: &str, asked: String, max: String| {
            out.push(Violation {
                field: field.to_owned(),
                message: format!("asks for {asked}, above the policy's maximum of {max}"),
            });
        };
        let (q, max) = (spec.quota, self.max_quota);
        if q.cpu > max.cpu {
            over("quota.cpu", q.cpu.to_string(), max.cpu.to_string());
        }
        if q.memory > max.memory {
            over("quota.memory", q.memory.to_string(), max.memory.to_string());
        }
        if q.storage > max.storage {
            over(
                "quota.storage",
                q.storage.to_string(),
                max.storage.to_string(),
            );
        }
        if q.pods > max.pods {
            over(
                "quota.pods",
                q.pods.get().to_string(),
                max.pods.get().to_string(),
            );
        }
        match (spec.ttl, self.max_ttl) {
            (Some(ttl), Some(max)) if ttl > max => over("ttl", ttl.to_string(), max.to_string()),
            (None, Some(max)) => out.push(Violation {
                field: "ttl".into(),
                message: format!("asks for no expiry, but the policy allows at most {max}"),
            }),
            _ => {}
        }
        out
    }

    /// Whether `spec` may be created now, needs an admin, or is refused, by
    /// someone who already owns `owned` environments: the per-person limit
    /// counts as one more violation.
    pub fn decide_create(&self, spec: &ResolvedSpec, owned: usize) -> Decision {
        let mut violations = self.check(spec);
        if owned >= self.max_environments_per_user as usize {
            violations.push(Violation {
                field: "name".into(),
                message: format!(
                    "would be your environment number {}, over the policy's maximum of {} per person",
                    owned + 1,
                    self.max_environments_per_user
                ),
            });
        }
        self.judge(violations)
    }

    /// Whether a change from `before` to `after` may be written now. Only a
    /// change of bounds (quota, limits, network, pod security, ttl) is judged,
    /// and then as a create would be, for the bounds it changes; apps,
    /// description and members never need approval, even in an environment
    /// above a policy lowered since.
    pub fn decide_change(&self, before: &ResolvedSpec, after: &ResolvedSpec) -> Decision {
        if before.bounds() == after.bounds() {
            return Decision::Allow;
        }
        // A bound already over the policy (lowered since, or approved) that
        // the change leaves as it was is not the change's doing.
        let kept = self.check(before);
        self.judge(
            self.check(after)
                .into_iter()
                .filter(|v| !kept.contains(v))
                .collect(),
        )
    }

    fn judge(&self, violations: Vec<Violation>) -> Decision {
        match (self.approval, violations.is_empty()) {
            (Approval::Always, _) => Decision::NeedsApproval(violations),
            (_, true) => Decision::Allow,
            (Approval::OverLimit, false) => Decision::NeedsApproval(violations),
            (Approval::Never, false) => Decision::Deny(violations),
        }
    }
}

impl Serialize for Policy {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.to_input().serialize(serializer)
    }
}

fn parse_max_quota(input: Option<&MaxQuotaInput>) -> Result<MaxQuota, ValidationErrors> {
    let Some(input) = input else {
        return Err(ValidationErrors::single("maxQuota", "is required"));
    };
    let mut errors = ValidationErrors::new();
    let cpu =
        errors.collect(required(&input.cpu, "cpu").and_then(|v| CpuQuantity::parse("cpu", v)));
    let memory = errors
        .collect(required(&input.memory, "memory").and_then(|v| ByteQuantity::parse("memory", v)));
    let storage = errors.collect(
        required(&input.storage, "storage").and_then(|v| ByteQuantity::parse("storage", v)),
    );
    let pods = errors.collect(
        input
            .pods
            .ok_or_else(|| ValidationErrors::single("pods", "is required"))
            .and_then(|v| PodCount::parse("pods", v)),
    );
    errors.under("maxQuota").finish(|| MaxQuota {
        cpu: cpu.expect("checked"),
        memory: memory.expect("checked"),
        storage: storage.expect("checked"),
        pods: pods.expect("checked"),
    })
}
