//! Kubeconfigs for tenants: a short-lived token of the member's own
//! ServiceAccount, so access ends when the membership or the token does.

use crate::cluster::Connection;
use crate::environments::kube_error;
use crate::error::ApiError;
use berth_core::account::Email;
use k8s_openapi::api::authentication::v1::{TokenRequest, TokenRequestSpec};
use k8s_openapi::api::core::v1::ServiceAccount;
use kube::api::{Api, PostParams};
use serde_json::json;

pub async fn kubeconfig(
    connection: &Connection,
    environment: &str,
    email: &Email,
    expires_in_seconds: u64,
) -> Result<String, ApiError> {
    let account = berth_manifests::service_account_name(email);
    let accounts: Api<ServiceAccount> = Api::namespaced(connection.client.clone(), environment);
    let request = TokenRequest {
        spec: TokenRequestSpec {
            audiences: vec![],
            expiration_seconds: Some(i64::try_from(expires_in_seconds).unwrap_or(i64::MAX)),
            bound_object_ref: None,
        },
        ..Default::default()
    };
    let issued: TokenRequest = accounts
        .create_subresource("token", &account, &PostParams::default(), &request)
        .await
        .map_err(|e| match e {
            // The controller makes the ServiceAccount; until it has, there is nothing to issue.
            kube::Error::Api(e) if e.code == 404 => ApiError::Unavailable {
                message: "your access to this environment is still being set up; try again in a few seconds".into(),
                details: vec![],
                retry_after: std::time::Duration::from_secs(2),
            },
            other => kube_error(other),
        })?;
    let token = issued.status.map(|s| s.token).unwrap_or_default();
    let context = format!(
        "{environment}-{}",
        email.as_str().split('@').next().unwrap_or("me")
    );
    let mut cluster = json!({"server": connection.server});
    if let Some(ca) = &connection.ca_pem {
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
