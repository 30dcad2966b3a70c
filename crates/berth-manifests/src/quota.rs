//! The environment's bounds: a ResourceQuota for the whole namespace and a
//! LimitRange for each container.

use super::Context;
use berth_core::environment::ByteQuantity;
use k8s_openapi::api::core::v1::{
    LimitRange, LimitRangeItem, LimitRangeSpec, ResourceQuota, ResourceQuotaSpec,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use std::collections::BTreeMap;

pub(crate) const QUOTA_NAME: &str = "berth-quota";
pub(crate) const LIMITS_NAME: &str = "berth-limits";
/// Scratch space a container gets when it asks for none: enough for logs
/// and a small cache, so that a quota's worth takes many containers.
const DEFAULT_EPHEMERAL_STORAGE: ByteQuantity = ByteQuantity::GIB;

fn quantities<const N: usize>(pairs: [(&str, String); N]) -> BTreeMap<String, Quantity> {
    pairs
        .into_iter()
        .map(|(k, v)| (k.to_owned(), Quantity(v)))
        .collect()
}

pub(crate) fn resource_quota(ctx: &Context<'_>) -> ResourceQuota {
    let q = ctx.spec.quota;
    // Load balancers and node ports would open the environment to the outside
    // world past its network policies, so none are allowed.
    let hard = quantities([
        ("requests.cpu", q.cpu.to_string()),
        ("limits.cpu", q.cpu.to_string()),
        ("requests.memory", q.memory.to_string()),
        ("limits.memory", q.memory.to_string()),
        ("requests.storage", q.storage.to_string()),
        ("pods", q.pods.get().to_string()),
        (
            "requests.ephemeral-storage",
            q.ephemeral_storage.to_string(),
        ),
        ("limits.ephemeral-storage", q.ephemeral_storage.to_string()),
        ("count/configmaps", q.objects.configmaps.get().to_string()),
        ("count/secrets", q.objects.secrets.get().to_string()),
        ("services", q.objects.services.get().to_string()),
        (
            "persistentvolumeclaims",
            q.objects.persistent_volume_claims.get().to_string(),
        ),
        ("services.loadbalancers", "0".to_owned()),
        ("services.nodeports", "0".to_owned()),
    ]);
    ResourceQuota {
        metadata: ctx.meta(QUOTA_NAME, true),
        spec: Some(ResourceQuotaSpec {
            hard: Some(hard),
            ..ResourceQuotaSpec::default()
        }),
        ..ResourceQuota::default()
    }
}

pub(crate) fn limit_range(ctx: &Context<'_>) -> LimitRange {
    let (limits, quota) = (ctx.spec.limits, ctx.spec.quota);
    let defaults = quantities([
        ("cpu", limits.default_cpu.to_string()),
        ("memory", limits.default_memory.to_string()),
        (
            "ephemeral-storage",
            quota
                .ephemeral_storage
                .min(DEFAULT_EPHEMERAL_STORAGE)
                .to_string(),
        ),
    ]);
    // With `limits.cpu` (and the others) in the quota, a pod without limits
    // is refused; the defaults let such pods in. No container may exceed
    // the whole quota.
    let item = LimitRangeItem {
        type_: "Container".to_owned(),
        default: Some(defaults.clone()),
        default_request: Some(defaults),
        max: Some(quantities([
            ("cpu", quota.cpu.to_string()),
            ("memory", quota.memory.to_string()),
            ("ephemeral-storage", quota.ephemeral_storage.to_string()),
        ])),
        ..LimitRangeItem::default()
    };
    LimitRange {
        metadata: ctx.meta(LIMITS_NAME, true),
        spec: Some(LimitRangeSpec { limits: vec![item] }),
    }
}
