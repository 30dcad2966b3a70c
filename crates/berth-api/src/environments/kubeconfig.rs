//! Kubeconfigs for tenants: a short-lived token of the member's own identity
//! (their ServiceAccount in `berth-users`), bound by the controller in the
//! environment's namespace to the member's role, for Berth's proxy of the
//! environment's Kubernetes API (`kube_proxy`), the only place the token's
//! audience is accepted. Access follows the binding (a role change or
//! removal reaches every kubeconfig at once, open requests included) and
//! the identity (disabling the user deletes it, ending every token).

use crate::cluster::Connection;
use crate::environments::kube_error;
use crate::error::ApiError;
use crate::identities;
use berth_manifests::{
    MANAGED_BY_LABEL, MANAGED_BY_VALUE, USERS_NAMESPACE, user_service_account_name,
};
use berth_store::UserRecord;
use k8s_openapi::api::authentication::v1::{TokenRequest, TokenRequestSpec};
use k8s_openapi::api::core::v1::ServiceAccount;
use k8s_openapi::api::rbac::v1::RoleBinding;
use kube::api::{Api, ListParams, PostParams};
use serde_json::json;

/// How long issuing a kubeconfig waits for the controller to bind the
/// caller's identity in the environment.
const BINDING_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

/// Whether a RoleBinding of Berth's in `environment` names `account` of
/// `berth-users`: whether that identity is a member there.
pub(crate) async fn is_bound(
    connection: &Connection,
    environment: &str,
    account: &str,
) -> Result<bool, ApiError> {
    let bindings: Api<RoleBinding> = Api::namespaced(connection.client.clone(), environment);
    let list = bindings
        .list(&ListParams::default().labels(&format!("{MANAGED_BY_LABEL}={MANAGED_BY_VALUE}")))
        .await
        .map_err(kube_error)?;
    Ok(list.items.iter().any(|binding| {
        binding.subjects.iter().flatten().any(|subject| {
            subject.kind == "ServiceAccount"
                && subject.name == account
                && subject.namespace.as_deref() == Some(USERS_NAMESPACE)
        })
    }))
}

pub async fn kubeconfig(
    connection: &Connection,
    environment: &str,
    user: &UserRecord,
    expires_in_seconds: u64,
    server: &str,
    ca_pem: Option<&str>,
) -> Result<String, ApiError> {
    let (id, email) = (user.id, &user.email);
    identities::ensure(&connection.client, id, email)
        .await
        .map_err(kube_error)?;
    let account = user_service_account_name(id);
    // The controller binds an identity as soon as it sees it (made just now,
    // for a user who had none); a token issued before that would only be
    // refused, so the request waits a little for it, then says to retry.
    let deadline = tokio::time::Instant::now() + BINDING_WAIT;
    while !is_bound(connection, environment, &account).await? {
        if tokio::time::Instant::now() >= deadline {
            return Err(ApiError::Unavailable {
                message: "your access to this environment is still being set up; try again in a few seconds".into(),
                details: vec![],
                retry_after: std::time::Duration::from_secs(2),
            });
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    let accounts: Api<ServiceAccount> = Api::namespaced(connection.client.clone(), USERS_NAMESPACE);
    let request = TokenRequest {
        spec: TokenRequestSpec {
            audiences: vec![crate::kube_proxy::TOKEN_AUDIENCE.to_owned()],
            expiration_seconds: Some(i64::try_from(expires_in_seconds).unwrap_or(i64::MAX)),
            bound_object_ref: None,
        },
        ..Default::default()
    };
    let issued: TokenRequest = accounts
        .create_subresource("token", &account, &PostParams::default(), &request)
        .await
        .map_err(kube_error)?;
    let token = issued.status.map(|s| s.token).unwrap_or_default();
    let context = format!(
        "{environment}-{}",
        email.as_str().split('@').next().unwrap_or("me")
    );
    let mut cluster = json!({"server": server});
    if let Some(ca) = ca_pem {
        use base64::Engine;
        cluster["certificate-authority-data"] =
            json!(base64::engine::general_purpose::STANDARD.encode(ca));
    }
    let config = json!({
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "berth", "cluster": cluster}],
        "users": [{"name": context, "user": {"token": token}}],
        "contexts": [{"name": context, "context": {"cluster": "berth", "user": context, "namespace": environment}}],
        "current-context": context,
    });
    serde_yaml::to_string(&config).map_err(|e| ApiError::Internal(e.to_string()))
}
