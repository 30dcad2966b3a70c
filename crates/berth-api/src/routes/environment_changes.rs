//! Changing an environment: merge patches of its spec and its members.

use crate::audit::RequestId;
use crate::environments::access::Permission;
use crate::environments::service::{self, Outcome};
use crate::environments::{self as envs, EnvironmentView};
use crate::error::ApiError;
use crate::extract::CurrentUser;
use crate::json::ApiJson;
use crate::routes::environments::{answer, if_match};
use crate::state::AppState;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use berth_core::account::Email;
use berth_core::environment::{EnvironmentSpecInput, MemberInput, MemberRole};
use berth_core::validation::ValidationErrors;
use berth_manifests::Environment;
use serde::Deserialize;
use serde_json::Value;

#[utoipa::path(patch, operation_id = "environment_changes_patch", path = "/api/v1/environments/{name}", tag = "environments",
    params(("name" = String, Path), ("If-Match" = Option<String>, Header, description = "The environment's `generation` the change is based on, as `\"<generation>\"`; 412 when it moved on")),
    request_body(content = berth_core::environment::EnvironmentSpecInput, description = "JSON merge patch (RFC 7396) of the spec: the fields to change, null to remove one; apps and members are replaced whole", content_type = "application/merge-patch+json"), responses(
    (status = 200, description = "Changed", body = EnvironmentView),
    (status = 202, description = "Over policy: a request waits for an admin", body = crate::routes::requests::RequestAnswer),
    (status = 400, description = "Invalid field", body = crate::error::ErrorBody),
    (status = 403, description = "The caller's role may not change these fields", body = crate::error::ErrorBody),
    (status = 404, description = "Absent or not visible", body = crate::error::ErrorBody),
    (status = 409, description = "Being deleted, or no owner would be left", body = crate::error::ErrorBody),
    (status = 412, description = "Changed by someone else since the If-Match version", body = crate::error::ErrorBody),
), security(("session" = []), ("token" = [])))]
pub async fn patch(
    State(state): State<AppState>,
    CurrentUser(caller): CurrentUser,
    request_id: RequestId,
    headers: HeaderMap,
    Path(name): Path<String>,
    ApiJson(patch): ApiJson<Value>,
) -> Result<(StatusCode, ApiJson<Value>), ApiError> {
    if !patch.is_object() {
        return Err(ValidationErrors::single(
            "body",
            "must be a JSON object (a merge patch of the spec)",
        )
        .into());
    }
    if patch
        .get("name")
        .is_some_and(|n| n.as_str() != Some(name.as_str()))
    {
        return Err(ValidationErrors::single("name", "cannot be changed").into());
    }
    let connection = state.cluster.connection().await?;
    let (env, standing) = envs::visible_latest(connection, &name, &caller).await?;
    if !standing.allows(Permission::EditApps) {
        return Err(ApiError::Forbidden("viewers cannot change an environment"));
    }
    let before = env.spec.to_input(&name);
    let mut merged =
        serde_json::to_value(&before).map_err(|e| ApiError::Internal(e.to_string()))?;
    json_patch::merge(&mut merged, &patch);
    let after = EnvironmentSpecInput::from_json(merged)?;
    for permission in needed_permissions(&before, &after) {
        if !standing.allows(permission) {
            return Err(ApiError::Forbidden(match permission {
                Permission::ManageMembers => "only owners and admins change members",
                Permission::EditSettings => {
                    "only owners and admins change quota, limits, network, pod security, TTL or template"
                }
                _ => "viewers cannot change an environment",
            }));
        }
    }
    let outcome = service::change(
        &state,
        &caller,
        &request_id,
        &env,
        after,
        if_match(&headers)?,
        &[],
    )
    .await?;
    let (status, body) = answer(outcome, &caller);
    Ok((status, ApiJson(body)))
}

/// The permissions a change from `before` to `after` needs.
fn needed_permissions(
    before: &EnvironmentSpecInput,
    after: &EnvironmentSpecInput,
) -> Vec<Permission> {
    let mut needed = Vec::new();
    if before.apps != after.apps || before.description != after.description {
        needed.push(Permission::EditApps);
    }
    if before.members != after.members {
        needed.push(Permission::ManageMembers);
    }
    let settings = |s: &EnvironmentSpecInput| {
        (
            s.template.clone(),
            s.quota.clone(),
            s.limits.clone(),
            s.network.clone(),
            s.pod_security.clone(),
            s.ttl.clone(),
        )
    };
    if settings(before) != settings(after) {
        needed.push(Permission::EditSettings);
    }
    needed
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MemberBody {
    #[schema(schema_with = crate::openapi_common::member_role)]
    role: String,
}

#[utoipa::path(put, operation_id = "environment_changes_put_member", path = "/api/v1/environments/{name}/members/{email}", tag = "environments",
    params(("name" = String, Path), ("email" = String, Path)), request_body = MemberBody, responses(
    (status = 200, description = "The member has the role; their access follows within seconds", body = EnvironmentView),
    (status = 403, description = "Only owners and admins manage members", body = crate::error::ErrorBody),
    (status = 409, description = "It would leave no owner", body = crate::error::ErrorBody),
), security(("session" = []), ("token" = [])))]
pub async fn put_member(
    State(state): State<AppState>,
    CurrentUser(caller): CurrentUser,
    request_id: RequestId,
    Path((name, email)): Path<(String, String)>,
    ApiJson(body): ApiJson<MemberBody>,
) -> Result<(StatusCode, ApiJson<EnvironmentView>), ApiError> {
    let email = Email::parse("email", &email)?;
    // Named as the body names it, not as the member list would.
    MemberRole::parse("role", &body.role)?;
    let connection = state.cluster.connection().await?;
    let (env, _) =
        envs::permitted_latest(connection, &name, &caller, Permission::ManageMembers).await?;
    let mut after = env.spec.to_input(&name);
    let members = after.members.get_or_insert_with(Vec::new);
    let entry = MemberInput {
        email: Some(email.to_string()),
        role: Some(body.role),
    };
    match members.iter_mut().find(|m| {
        m.email
            .as_deref()
            .and_then(|e| Email::parse("email", e).ok())
            .as_ref()
            == Some(&email)
    }) {
        Some(existing) => *existing = entry,
        None => members.push(entry),
    }
    let answer = member_change(&state, &caller, &request_id, &env, after).await?;
    Ok((StatusCode::OK, ApiJson(answer)))
}

#[utoipa::path(delete, operation_id = "environment_changes_delete_member", path = "/api/v1/environments/{name}/members/{email}", tag = "environments",
    params(("name" = String, Path), ("email" = String, Path)), responses(
    (status = 204, description = "Removed; their ServiceAccount and kubeconfigs stop working"),
    (status = 404, description = "No such member or environment", body = crate::error::ErrorBody),
    (status = 409, description = "The last owner cannot be removed", body = crate::error::ErrorBody),
), security(("session" = []), ("token" = [])))]
pub async fn delete_member(
    State(state): State<AppState>,
    CurrentUser(caller): CurrentUser,
    request_id: RequestId,
    Path((name, email)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let email = Email::parse("email", &email).map_err(|_| ApiError::NotFound)?;
    let connection = state.cluster.connection().await?;
    let (env, _) =
        envs::permitted_latest(connection, &name, &caller, Permission::ManageMembers).await?;
    let mut after = env.spec.to_input(&name);
    let members = after.members.get_or_insert_with(Vec::new);
    let before = members.len();
    members.retain(|m| {
        m.email
            .as_deref()
            .and_then(|e| Email::parse("email", e).ok())
            .as_ref()
            != Some(&email)
    });
    if members.len() == before {
        return Err(ApiError::NotFound);
    }
    member_change(&state, &caller, &request_id, &env, after).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A member change: never held for approval, since it changes no bounds.
async fn member_change(
    state: &AppState,
    caller: &berth_auth::Principal,
    request_id: &RequestId,
    env: &Environment,
    after: EnvironmentSpecInput,
) -> Result<EnvironmentView, ApiError> {
    match service::change(state, caller, request_id, env, after, None, &[]).await? {
        Outcome::Created(env) | Outcome::Changed(env) => {
            Ok(envs::view(&env, envs::standing_of(&env, caller)))
        }
        Outcome::Requested(_) => Err(ApiError::Internal(
            "a member change was held for approval".into(),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn merge_patch_follows_rfc_7386() {
        let mut target = json!({"a": "b", "c": {"d": "e", "f": "g"}});
        json_patch::merge(&mut target, &json!({"a": "z", "c": {"f": null}}));
        assert_eq!(target, json!({"a": "z", "c": {"d": "e"}}));
        let mut target = json!({"apps": [{"name": "web"}]});
        json_patch::merge(&mut target, &json!({"apps": []}));
        assert_eq!(target, json!({"apps": []}), "arrays are replaced whole");
    }

    #[test]
    fn each_kind_of_change_needs_its_permission() {
        let base = EnvironmentSpecInput {
            name: Some("a".into()),
            ..Default::default()
        };
        let apps = EnvironmentSpecInput {
            apps: Some(vec![]),
            ..base.clone()
        };
        let ttl = EnvironmentSpecInput {
            ttl: Some("1h".into()),
            ..base.clone()
        };
        let members = EnvironmentSpecInput {
            members: Some(vec![]),
            ..base.clone()
        };
        assert_eq!(needed_permissions(&base, &apps), [Permission::EditApps]);
        assert_eq!(needed_permissions(&base, &ttl), [Permission::EditSettings]);
        assert_eq!(
            needed_permissions(&base, &members),
            [Permission::ManageMembers]
        );
        assert!(needed_permissions(&base, &base).is_empty());
    }
}
