//! Environments as the API serves them: read from the watch cache, written
//! to the apiserver as `Environment` resources that the controller reconciles.
//! The API never touches an environment's child objects itself.

pub mod access;
pub mod changes;
pub mod kubeconfig;
pub mod listing;
pub mod service;

use crate::cluster::{Connection, FIELD_MANAGER};
use crate::error::ApiError;
use access::{Permission, Standing};
use berth_auth::Principal;
use berth_core::environment::{
    EnvironmentSpecInput, Member, MemberRole, ObjectName, ResolvedSpec, Violation,
};
use berth_core::validation::ValidationErrors;
use berth_manifests::{Environment, EnvironmentCrdSpec};
use berth_store::{EnvironmentVersion, NewRequest, RequestKind, RequestRecord};
use kube::api::Api;
use kube::runtime::reflector::ObjectRef;
use serde::Serialize;
use serde_json::json;
use std::sync::Arc;
use std::time::Duration;

pub const CREATED_BY: &str = Environment::CREATED_BY_ANNOTATION;
pub const RENEWED_AT: &str = Environment::RENEWED_AT_ANNOTATION;
pub const CREATOR_ID_LABEL: &str = Environment::CREATOR_ID_LABEL;

/// An environment as the API answers it.
#[derive(Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct EnvironmentView {
    pub name: String,
    pub namespace: String,
    pub description: String,
    pub owner: String,
    pub spec: EnvironmentSpecInput,
    /// `{phase, conditions, quota, expiresAt, observedGeneration}`: the
    /// controller's status with `phase` (Pending before the controller's
    /// first write, Deleting once deletion started) and `conditions` always set.
    #[schema(schema_with = crate::openapi::status_ref)]
    pub status: serde_json::Value,
    pub created_at: Option<String>,
    pub resource_version: Option<String>,
    /// The spec's version: send it back in `If-Match` to make a change fail
    /// (412) if someone else changed the spec first.
    pub generation: Option<i64>,
    /// The caller's role: owner, editor, viewer, or admin for an admin who is not a member.
    /// Last, so that a list can share the rest of the JSON between callers (`listing`).
    #[schema(schema_with = crate::openapi::caller_role)]
    pub role: &'static str,
}

pub fn view(env: &Environment, standing: Standing) -> EnvironmentView {
    let name = env.metadata.name.clone().unwrap_or_default();
    let members = members_of(env);
    let owner = env
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(CREATED_BY).cloned())
        .or_else(|| {
            members
                .iter()
                .find(|m| m.role == MemberRole::Owner)
                .map(|m| m.email.to_string())
        })
        .unwrap_or_default();
    let mut status = env
        .status
        .as_ref()
        .map(|s| serde_json::to_value(s).expect("status serializes"))
        .unwrap_or_else(|| json!({}));
    if status.get("phase").is_none() {
        status["phase"] = json!("Pending");
    }
    if env.metadata.deletion_timestamp.is_some() {
        status["phase"] = json!("Deleting");
    }
    if status.get("conditions").is_none() {
        status["conditions"] = json!([]);
    }
    EnvironmentView {
        namespace: name.clone(),
        description: env.spec.description.clone().unwrap_or_default(),
        owner,
        role: standing.label(),
        spec: env.spec.to_input(&name),
        status,
        created_at: env
            .metadata
            .creation_timestamp
            .as_ref()
            .map(|t| t.0.to_string()),
        resource_version: env.metadata.resource_version.clone(),
        generation: env.metadata.generation,
        name,
    }
}

/// The members an Environment lists; entries that do not parse (a hand-edited
/// resource) grant nothing.
pub fn members_of(env: &Environment) -> Vec<Member> {
    env.spec
        .members
        .iter()
        .flatten()
        .filter_map(|m| Member::parse(m).ok())
        .collect()
}

pub fn standing_of(env: &Environment, caller: &Principal) -> Standing {
    // Memberships are by address: one whose owner has not verified it
    // (while verification is on) holds none.
    let members = if caller.holds_memberships {
        members_of(env)
    } else {
        Vec::new()
    };
    access::standing(&members, &caller.user.email, caller.user.role)
}

/// The environment named `name` if the caller may see it; 404 otherwise, so
/// that existence never leaks. From the watch cache; on a miss, from the
/// apiserver, since this replica's cache may not have seen yet a create
/// another replica answered a moment ago.
pub async fn visible(
    connection: &Connection,
    name: &str,
    caller: &Principal,
) -> Result<(Arc<Environment>, Standing), ApiError> {
    let env = match connection.environments.get(&ObjectRef::new(name)) {
        Some(env) => env,
        None => Arc::new(uncached(connection, name).await?),
    };
    judge_visible(env, caller)
}

/// The environment `name` from the apiserver: for a cache miss, and for a
/// change, which is based on the latest version. The name is
/// the caller's path segment, decoded: only an object's name (no `?`, `/`
/// or space, which would make another request of the apiserver) is asked,
/// and the answer is awaited 5 s at most; 404 otherwise.
async fn uncached(connection: &Connection, name: &str) -> Result<Environment, ApiError> {
    ObjectName::parse("name", name).map_err(|_| ApiError::NotFound)?;
    let api = Api::<Environment>::all(connection.client.clone());
    match tokio::time::timeout(Duration::from_secs(5), api.get_opt(name)).await {
        Ok(found) => found.map_err(kube_error)?.ok_or(ApiError::NotFound),
        Err(_) => Err(ApiError::Unavailable {
            message: "the cluster did not answer in time; try again shortly".into(),
            details: vec![],
            retry_after: Duration::from_secs(5),
        }),
    }
}

/// Like [`visible`], from the watch cache alone: for checks repeated while
/// an answer streams, where a miss means the environment is gone.
pub fn visible_cached(
    connection: &Connection,
    name: &str,
    caller: &Principal,
) -> Result<(Arc<Environment>, Standing), ApiError> {
    let env = connection
        .environments
        .get(&ObjectRef::new(name))
        .ok_or(ApiError::NotFound)?;
    judge_visible(env, caller)
}

/// `env` with the caller's standing if they may see it; 404 otherwise.
fn judge_visible<E: std::borrow::Borrow<Environment>>(
    env: E,
    caller: &Principal,
) -> Result<(E, Standing), ApiError> {
    let standing = standing_of(env.borrow(), caller);
    if standing.can_see() {
        Ok((env, standing))
    } else {
        Err(ApiError::NotFound)
    }
}

/// Visible and allowed: 404 when invisible, 403 when visible but not allowed.
pub async fn permitted(
    connection: &Connection,
    name: &str,
    caller: &Principal,
    permission: Permission,
) -> Result<(Arc<Environment>, Standing), ApiError> {
    let (env, standing) = visible(connection, name, caller).await?;
    require(standing, permission)?;
    Ok((env, standing))
}

/// 403 unless the caller's standing allows `permission`.
fn require(standing: Standing, permission: Permission) -> Result<(), ApiError> {
    if standing.allows(permission) {
        Ok(())
    } else {
        Err(ApiError::Forbidden(
            "your role in this environment does not allow this",
        ))
    }
}

/// Like [`visible`], but the latest version from the apiserver: a change is
/// based on it, not on the cache, which may lag a write made a moment ago.
pub async fn visible_latest(
    connection: &Connection,
    name: &str,
    caller: &Principal,
) -> Result<(Environment, Standing), ApiError> {
    judge_visible(uncached(connection, name).await?, caller)
}

/// Like [`permitted`], on the latest version.
pub async fn permitted_latest(
    connection: &Connection,
    name: &str,
    caller: &Principal,
    permission: Permission,
) -> Result<(Environment, Standing), ApiError> {
    let (env, standing) = visible_latest(connection, name, caller).await?;
    require(standing, permission)?;
    Ok((env, standing))
}

/// Replaces an Environment's spec, if it is still at the generation of
/// `current`: 409 when it changed in between. With `expected_generation`
/// (from `If-Match`) it fails with 412 when `current` is not at that
/// generation. The generation, unlike the resource version, does not move
/// when the controller writes status, so only a real competing change counts.
pub async fn replace_spec(
    connection: &Connection,
    current: &Environment,
    spec: EnvironmentCrdSpec,
    expected_generation: Option<i64>,
    annotations: &[(&str, String)],
) -> Result<Environment, ApiError> {
    let name = current.metadata.name.clone().unwrap_or_default();
    if let Some(expected) = expected_generation
        && current.metadata.generation != Some(expected)
    {
        return Err(ApiError::PreconditionFailed(format!(
            "the environment is at version {}, not {expected}; reload and try again",
            current.metadata.generation.unwrap_or_default()
        )));
    }
    let mut ops = Vec::new();
    if let Some(generation) = current.metadata.generation {
        ops.push(json!({"op": "test", "path": "/metadata/generation", "value": generation}));
    }
    ops.push(json!({"op": "replace", "path": "/spec", "value": spec}));
    if !annotations.is_empty() {
        let mut merged = current.metadata.annotations.clone().unwrap_or_default();
        for (key, value) in annotations {
            merged.insert((*key).to_owned(), value.clone());
        }
        ops.push(json!({"op": "add", "path": "/metadata/annotations", "value": merged}));
    }
    let patch: json_patch::Patch = serde_json::from_value(serde_json::Value::Array(ops))
        .map_err(|e| ApiError::Internal(format!("building a JSON patch: {e}")))?;
    let api: Api<Environment> = Api::all(connection.client.clone());
    let params = kube::api::PatchParams {
        field_manager: Some(FIELD_MANAGER.into()),
        ..Default::default()
    };
    let written = api
        .patch(&name, &params, &kube::api::Patch::Json::<()>(patch))
        .await
        .map_err(|e| match e {
            // A failed `test` op: someone changed the spec in between.
            kube::Error::Api(e) if e.code == 409 || e.code == 422 => stale(),
            kube::Error::Api(e) if e.code == 404 => ApiError::NotFound,
            other => kube_error(other),
        })?;
    connection.caught_up(&written).await;
    Ok(written)
}

fn stale() -> ApiError {
    ApiError::Conflict("the environment changed since you read it; reload and try again".into())
}

/// Files a request for an admin to approve `spec` (a create, or a change of
/// the `target` version of the environment) and records it in the audit log.
pub async fn file_request(
    state: &crate::state::AppState,
    caller: &Principal,
    request_id: &crate::audit::RequestId,
    kind: RequestKind,
    spec: &ResolvedSpec,
    reasons: &[Violation],
    target: Option<EnvironmentVersion>,
) -> Result<RequestRecord, ApiError> {
    let name = spec.name.to_string();
    let store = state.auth.store();
    let id = store
        .create_request(NewRequest {
            requester_id: caller.user.id,
            environment: name.clone(),
            kind,
            spec: serde_json::to_value(spec.to_input())
                .map_err(|e| ApiError::Internal(e.to_string()))?,
            reasons: reasons
                .iter()
                .map(|v| format!("{} {}", v.field, v.message))
                .collect(),
            target,
        })
        .await
        .map_err(|e| match e {
            berth_store::StoreError::Conflict { .. } => ApiError::Conflict(format!(
                "a request for {name} is already waiting for approval"
            )),
            other => other.into(),
        })?;
    let record = store
        .request(id)
        .await?
        .ok_or_else(|| ApiError::Internal("request vanished".into()))?;
    let action = crate::audit::Action {
        actor: caller.user.email.as_str(),
        action: "environment.request",
        target: format!("environment/{name}"),
        environment: Some(&name),
        details: json!({ "spec": spec.to_input() }),
    };
    state.audit(action, "pending", request_id).await;
    Ok(record)
}

/// Violations as the field errors of a refusal.
pub fn refusal(violations: Vec<Violation>) -> ApiError {
    let mut errors = ValidationErrors::new();
    for v in violations {
        errors.push(berth_core::validation::FieldError::new(v.field, v.message));
    }
    ApiError::validation(errors)
}

/// An apiserver failure the caller cannot fix: logged in full, answered as 503
/// when the cluster is away and 500 otherwise.
pub fn kube_error(error: kube::Error) -> ApiError {
    match error {
        kube::Error::Api(e) if e.code == 404 => ApiError::NotFound,
        // The admission policy's parameters (the published policy) are
        // missing: Berth publishes them again within a minute.
        kube::Error::Api(e) if e.code == 422 && e.message.contains("no params found") => {
            ApiError::Unavailable {
                message:
                    "the platform's policy is being restored in the cluster; try again shortly"
                        .into(),
                details: vec![],
                retry_after: std::time::Duration::from_secs(30),
            }
            .logged(&e.message)
        }
        kube::Error::Api(e) => {
            ApiError::Internal(format!("apiserver answered {}: {}", e.code, e.message))
        }
        other => ApiError::Unavailable {
            message: "the cluster is not reachable right now".into(),
            details: vec![],
            retry_after: std::time::Duration::from_secs(5),
        }
        .logged(&other),
    }
}
