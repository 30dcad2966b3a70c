//! The admin policy reaches the cluster, where the admission policy holds
//! kubectl and GitOps writes to it: Berth publishes its store's policy as
//! the `EnvironmentPolicy` `default` when an admin replaces it, and again
//! whenever a Berth starts, mending whatever the object held.
//!
//! Other Berth processes of a test run publish their own stores' policies to
//! the same object; the values here are ones no other test uses.

mod support;

use anyhow::{Result, bail};
use berth_core::environment::{Policy, ReservedNames};
use berth_manifests::{EnvironmentPolicy, POLICY_OBJECT_NAME};
use kube::Api;
use kube::api::{Patch, PatchParams};
use serde_json::json;
use std::time::Duration;
use support::spawn_app_on_cluster;

const PUBLISHED_WITHIN: Duration = Duration::from_secs(30);

/// Waits until the published policy allows 7 CPUs and 77 hours.
async fn published(api: &Api<EnvironmentPolicy>) -> Result<()> {
    berth_testkit::eventually(PUBLISHED_WITHIN, || async {
        let spec = api.get(POLICY_OBJECT_NAME).await?.spec;
        if spec.max_quota.cpu == "7" && spec.max_ttl.as_deref() == Some("77h") {
            Ok(())
        } else {
            bail!("the cluster holds {spec:?}")
        }
    })
    .await
}

#[tokio::test]
async fn the_policy_is_published_when_changed_and_at_every_start() -> Result<()> {
    let app = spawn_app_on_cluster().await;
    let admin = app.admin_token().await;
    let mut policy: serde_json::Value = app.get_json(&admin, "/api/v1/admin/policy").await;
    policy["maxQuota"] = json!({"cpu": "7", "memory": "7Gi", "storage": "77Gi", "pods": 77});
    policy["defaultTtl"] = json!("7h");
    policy["maxTtl"] = json!("77h");
    app.set_policy(&admin, &policy).await;

    let client = berth_testkit::cluster().await?.client();
    let api = Api::<EnvironmentPolicy>::all(client);
    published(&api).await?;
    let object = api.get(POLICY_OBJECT_NAME).await?;
    assert_eq!(object.spec.max_quota.memory, "7Gi");
    assert_eq!(object.spec.max_quota.storage, "77Gi");
    assert_eq!(object.spec.max_quota.pods, 77);

    // Another store's policy lands on the object, as when a Berth with
    // another database starts; a Berth of this store starting mends it.
    api.patch(
        POLICY_OBJECT_NAME,
        &PatchParams::apply("berth").force(),
        &Patch::Apply(&EnvironmentPolicy::for_policy(
            &Policy::default(),
            &ReservedNames::default(),
        )),
    )
    .await?;
    let replica = app.replica_on_cluster().await;
    published(&api).await?;
    drop(replica);
    Ok(())
}
