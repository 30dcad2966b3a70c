//! The admin policy in the cluster. Berth keeps the cluster-scoped
//! `EnvironmentPolicy` named `default` (`berth_manifests::EnvironmentPolicy`)
//! in step with the policy in its store: published once Berth reaches the
//! cluster at start ([`publish_at_start`]) and after an admin replaces the
//! policy ([`publish_in_background`]). The apiserver's admission policy
//! reads it to hold Environments written outside Berth (kubectl, GitOps)
//! to the same bounds.
//!
//! Publishing is a server-side apply of the whole object: the same policy
//! published again, by any number of replicas, changes nothing.

use crate::cluster::{Cluster, FIELD_MANAGER};
use crate::platform;
use berth_core::environment::ReservedNames;
use berth_manifests::{EnvironmentPolicy, POLICY_OBJECT_NAME};
use berth_store::Store;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::wait::{await_condition, conditions};
use kube::{CustomResourceExt, ResourceExt};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Mutex;

/// How long the `EnvironmentPolicy` CRD may take to be served once created.
const CRD_ESTABLISHED_TIMEOUT: Duration = Duration::from_secs(30);
/// Wait between attempts at start while the cluster is away.
const RETRY_EVERY: Duration = Duration::from_secs(5);
/// How often the published policy is written again, to mend what was changed.
const RESYNC_EVERY: Duration = Duration::from_secs(60);

/// One publication at a time in this process, each reading the store once
/// it holds the lock: the last to publish publishes the newest policy.
static PUBLISHING: Mutex<()> = Mutex::const_new(());

/// Publishes the store's policy to the cluster. `Err` says why not, for
/// the log.
pub async fn publish(
    cluster: &Cluster,
    store: &Store,
    reserved: &ReservedNames,
) -> Result<(), String> {
    let _one_at_a_time = PUBLISHING.lock().await;
    let client = cluster
        .connection()
        .await
        .map_err(|e| e.to_string())?
        .client
        .clone();
    let policy = platform::policy(store).await.map_err(|e| e.to_string())?;
    let params = PatchParams::apply(FIELD_MANAGER).force();
    // The controller's leader installs this CRD too; the API may run
    // without one, or before it.
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    let crd = EnvironmentPolicy::crd();
    let name = crd.name_any();
    crds.patch(&name, &params, &Patch::Apply(&crd))
        .await
        .map_err(|e| format!("cannot install the {name} CRD: {e}"))?;
    tokio::time::timeout(
        CRD_ESTABLISHED_TIMEOUT,
        await_condition(crds, &name, conditions::is_crd_established()),
    )
    .await
    .map_err(|_| format!("the {name} CRD was not served within 30 s"))?
    .map_err(|e| format!("waiting for the {name} CRD: {e}"))?;
    Api::<EnvironmentPolicy>::all(client)
        .patch(
            POLICY_OBJECT_NAME,
            &params,
            &Patch::Apply(&EnvironmentPolicy::for_policy(&policy, reserved)),
        )
        .await
        .map_err(|e| format!("cannot publish the policy: {e}"))?;
    Ok(())
}

/// Keeps the cluster's policy object in step with the store for as long as
/// Berth runs: published once the cluster can be reached (retrying every
/// 5 s until then), then again every minute, which also restores it should
/// someone delete or change it (without it the admission policy refuses
/// every Environment write, Berth's own too).
pub async fn publish_at_start(cluster: Arc<Cluster>, store: Store, reserved: ReservedNames) {
    let mut published = false;
    loop {
        match publish(&cluster, &store, &reserved).await {
            Ok(()) if !published => {
                tracing::info!("published the policy to the cluster");
                published = true;
            }
            Ok(()) => {}
            Err(error) => tracing::warn!(%error, "policy not published; retrying"),
        }
        tokio::time::sleep(if published { RESYNC_EVERY } else { RETRY_EVERY }).await;
    }
}

/// Publishes after an admin changed the policy, without holding up their
/// answer on the cluster: the store is the policy's home, and a failure is
/// logged and mended at the next start.
pub fn publish_in_background(cluster: Arc<Cluster>, store: Store, reserved: ReservedNames) {
    tokio::spawn(async move {
        if let Err(error) = publish(&cluster, &store, &reserved).await {
            tracing::warn!(%error, "the changed policy could not be published to the cluster");
        }
    });
}
