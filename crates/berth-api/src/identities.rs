//! Users' identities in the cluster: one ServiceAccount per user in
//! `berth-users` (see `berth_manifests::user_service_account`), which the
//! API alone makes and removes. Kubeconfigs carry tokens of it; the
//! controller binds it in each environment that lists the user. Deleting it
//! ends all of the user's kubeconfigs at once: the apiserver checks a
//! token's ServiceAccount uid on every request.

use crate::cluster::{Cluster, FIELD_MANAGER};
use crate::state::AppState;
use berth_core::account::Email;
use berth_manifests::{
    MANAGED_BY_LABEL, MANAGED_BY_VALUE, USERS_NAMESPACE, user_service_account,
    user_service_account_name,
};
use berth_store::Store;
use k8s_openapi::api::core::v1::{Namespace, ServiceAccount};
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams};
use kube::{Client, ResourceExt};
use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;
use uuid::Uuid;

/// How often identities left to disabled users are looked for.
const MEND_EVERY: Duration = Duration::from_secs(60);

/// Makes (or keeps) the user's ServiceAccount, and its namespace when it is
/// missing (the controller's leader makes it too, but the API may run first).
pub async fn ensure(client: &Client, id: Uuid, email: &Email) -> Result<(), kube::Error> {
    match apply_account(client, id, email).await {
        Err(kube::Error::Api(e)) if e.code == 404 => {
            apply_namespace(client).await?;
            apply_account(client, id, email).await
        }
        other => other,
    }
}

async fn apply_account(client: &Client, id: Uuid, email: &Email) -> Result<(), kube::Error> {
    let api: Api<ServiceAccount> = Api::namespaced(client.clone(), USERS_NAMESPACE);
    let mut body =
        serde_json::to_value(user_service_account(id, email)).map_err(kube::Error::SerdeError)?;
    body["apiVersion"] = "v1".into();
    body["kind"] = "ServiceAccount".into();
    api.patch(
        &user_service_account_name(id),
        &PatchParams::apply(FIELD_MANAGER).force(),
        &Patch::Apply(&body),
    )
    .await?;
    Ok(())
}

async fn apply_namespace(client: &Client) -> Result<(), kube::Error> {
    let api: Api<Namespace> = Api::all(client.clone());
    let namespace = berth_manifests::users_namespace();
    let mut body = serde_json::to_value(&namespace).map_err(kube::Error::SerdeError)?;
    body["apiVersion"] = "v1".into();
    body["kind"] = "Namespace".into();
    api.patch(
        &namespace.name_any(),
        &PatchParams::apply(FIELD_MANAGER),
        &Patch::Apply(&body),
    )
    .await?;
    Ok(())
}

/// Deletes the user's ServiceAccount, and with it every token issued for
/// it; the controller then drops the user's bindings. Absent is done.
pub async fn remove(client: &Client, id: Uuid) -> Result<(), kube::Error> {
    let api: Api<ServiceAccount> = Api::namespaced(client.clone(), USERS_NAMESPACE);
    match api
        .delete(&user_service_account_name(id), &DeleteParams::default())
        .await
    {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(e)) if e.code == 404 => Ok(()),
        Err(e) => Err(e),
    }
}

/// Makes the identity of a new or re-enabled account in the background, so
/// that the controller binds it before the user asks for a kubeconfig; an
/// account never waits on the cluster, and issuing a kubeconfig makes the
/// identity anyway.
pub fn ensure_soon(state: &AppState, id: Uuid, email: Email) {
    let cluster = state.cluster.clone();
    tokio::spawn(async move {
        let result = match cluster.connection().await {
            Ok(connection) => ensure(&connection.client, id, &email)
                .await
                .map_err(|e| e.to_string()),
            Err(e) => Err(e.to_string()),
        };
        if let Err(error) = result {
            tracing::debug!(user_id = %id, %error, "the user's identity waits for their first kubeconfig");
        }
    });
}

/// Ends every kubeconfig of the account (its identity goes, with every token
/// issued for it), then makes a fresh identity, in the background: for an
/// account whose credentials were just taken from whoever held them.
pub fn renew_soon(state: &AppState, id: Uuid, email: Email) {
    let cluster = state.cluster.clone();
    tokio::spawn(async move {
        let result = match cluster.connection().await {
            Ok(connection) => match remove(&connection.client, id).await {
                Ok(()) => ensure(&connection.client, id, &email)
                    .await
                    .map_err(|e| e.to_string()),
                Err(e) => Err(e.to_string()),
            },
            Err(e) => Err(e.to_string()),
        };
        if let Err(error) = result {
            tracing::warn!(user_id = %id, %error, "the kubeconfigs of a taken-over account could not be ended");
        }
    });
}

/// Deletes, for as long as Berth runs (once a minute), the identities of
/// users this store knows as disabled: it mends a disable whose deletion
/// could not reach the cluster. Identities of users this store does not
/// know are left alone: another Berth (a test run) may share the cluster.
pub async fn remove_disabled_at_start(cluster: Arc<Cluster>, store: Store) {
    loop {
        match remove_disabled(&cluster, &store).await {
            Ok(0) => {}
            Ok(removed) => {
                tracing::warn!(
                    removed,
                    "deleted identities of disabled users left in the cluster"
                );
            }
            Err(error) => tracing::debug!(%error, "identities of disabled users not checked"),
        }
        tokio::time::sleep(MEND_EVERY).await;
    }
}

async fn remove_disabled(cluster: &Cluster, store: &Store) -> Result<usize, String> {
    let disabled: HashSet<String> = store
        .list_users()
        .await
        .map_err(|e| e.to_string())?
        .into_iter()
        .filter(|user| user.disabled)
        .map(|user| user_service_account_name(user.id))
        .collect();
    if disabled.is_empty() {
        return Ok(0);
    }
    let connection = cluster.connection().await.map_err(|e| e.to_string())?;
    let accounts: Api<ServiceAccount> = Api::namespaced(connection.client.clone(), USERS_NAMESPACE);
    let listed = accounts
        .list_metadata(
            &ListParams::default().labels(&format!("{MANAGED_BY_LABEL}={MANAGED_BY_VALUE}")),
        )
        .await
        .map_err(|e| e.to_string())?;
    let mut removed = 0;
    for account in listed.items {
        let name = account.name_any();
        if disabled.contains(&name) {
            accounts
                .delete(&name, &DeleteParams::default())
                .await
                .map_err(|e| e.to_string())?;
            removed += 1;
        }
    }
    Ok(removed)
}
