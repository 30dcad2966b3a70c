//! The environment service: every decision about creating, changing,
//! approving and renewing an environment, made once, here, for every handler
//! (and any later client: the CLI, a GitOps import). Handlers parse and
//! translate; the rules themselves are plain functions of berth-core
//! ([`Policy::decide_create`], [`Policy::decide_change`]); this module adds
//! what needs the store and the apiserver: the per-person lock, the live
//! count, the name check and the request's version check.
//!
//! [`Policy::decide_create`]: berth_core::environment::Policy::decide_create
//! [`Policy::decide_change`]: berth_core::environment::Policy::decide_change

use super::{CREATED_BY, CREATOR_ID_LABEL, file_request, kube_error, refusal, replace_spec};
use crate::audit::{Action, RequestId};
use crate::cluster::{Connection, FIELD_MANAGER};
use crate::error::ApiError;
use crate::state::AppState;
use berth_auth::Principal;
use berth_core::account::Role;
use berth_core::environment::{
    Decision, EnvironmentSpec, EnvironmentSpecInput, Exceptions, MemberRole, ResolvedSpec,
    Violation, resolve,
};
use berth_core::validation::{FieldError, ValidationErrors};
use berth_manifests::{Environment, EnvironmentCrdSpec, MANAGED_BY_LABEL, MANAGED_BY_VALUE};
use berth_store::{EnvironmentVersion, RequestKind, RequestRecord, RequestState};
use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Api, ListParams, PostParams};
use serde_json::json;
use uuid::Uuid;

/// What a create or change came to.
pub enum Outcome {
    Created(Box<Environment>),
    Changed(Box<Environment>),
    /// Held for an admin: the request filed.
    Requested(Box<RequestRecord>),
}

/// Creates `spec` for `caller`, or files a request for it, or refuses it.
///
/// The per-person limit is counted and the Environment created under the
/// caller's creation lock in the store, so N parallel creates at limit k,
/// through any number of replicas, make exactly k. Errors: 400 (a reserved
/// name, the template is unknown, the policy denies), 409 (the name is
/// taken or being deleted), 503 (the cluster is away).
pub async fn create(
    state: &AppState,
    caller: &Principal,
    request_id: &RequestId,
    mut spec: EnvironmentSpec,
) -> Result<Outcome, ApiError> {
    state
        .settings
        .reserved_names
        .check("name", spec.name.as_str())?;
    if !caller.holds_memberships {
        return Err(ApiError::Forbidden(
            "verify your email address first: open the link Berth mailed you (or ask for a new one), then create environments",
        ));
    }
    spec.set_creator(caller.user.email.clone())?;
    let store = state.auth.store();
    let policy = crate::platform::policy(store).await?;
    let templates = crate::platform::templates(store).await?;
    let spec = resolve(spec, &templates, &policy)?;
    let connection = state.cluster.connection().await?;
    let name = spec.name.to_string();
    ensure_name_free(connection, &name).await?;

    let lock = store.lock_creations(caller.user.id).await?;
    let owned = owned_by(connection, caller.user.id).await?;
    let decision = judge_exceptions(
        state,
        caller,
        &Exceptions::default(),
        &spec,
        policy.decide_create(&spec, owned),
    )?;
    match decision {
        Decision::Deny(violations) => Err(refusal(violations)),
        Decision::NeedsApproval(reasons) => {
            lock.release().await?;
            let record = file_request(
                state,
                caller,
                request_id,
                RequestKind::Create,
                &spec,
                &reasons,
                None,
            )
            .await?;
            Ok(Outcome::Requested(Box::new(record)))
        }
        Decision::Allow => {
            let created = create_resource(
                connection,
                &spec,
                caller.user.email.as_str(),
                caller.user.id,
            )
            .await;
            lock.release().await?;
            // After the lock: other creates need not wait for the watch.
            if let Ok(created) = &created {
                connection.caught_up(created).await;
            }
            audit_write(
                state,
                caller,
                request_id,
                "environment.create",
                &spec,
                &created,
            )
            .await;
            Ok(Outcome::Created(Box::new(created?)))
        }
    }
}

/// Changes `env` (the latest version, read by the caller's handler) to
/// `after` (setting `annotations` too), or files a request for the change,
/// or refuses it. Only changes of bounds are judged by the policy
/// ([`Policy::decide_change`]); a template named anew fills the settings
/// the patch leaves out, while a template kept is only a record and never
/// looked up, so a template deleted since changes nothing.
///
/// Errors: 400 (invalid, denied), 409 (deleting, no owner left, changed
/// meanwhile), 412 (not at `expected_generation`), 503.
///
/// [`Policy::decide_change`]: berth_core::environment::Policy::decide_change
pub async fn change(
    state: &AppState,
    caller: &Principal,
    request_id: &RequestId,
    env: &Environment,
    after: EnvironmentSpecInput,
    expected_generation: Option<i64>,
    annotations: &[(&str, String)],
) -> Result<Outcome, ApiError> {
    refuse_if_deleting(env)?;
    let name = env.metadata.name.clone().unwrap_or_default();
    let before_input = env.spec.to_input(&name);
    let spec = EnvironmentSpec::parse(&after)?;
    if !spec.members.iter().any(|m| m.role == MemberRole::Owner) {
        return Err(ApiError::Conflict(
            "an environment needs at least one owner".into(),
        ));
    }
    let store = state.auth.store();
    let policy = crate::platform::policy(store).await?;
    let after = if after.template.is_some() && after.template != before_input.template {
        let templates = crate::platform::templates(store).await?;
        resolve(
            only_asked_settings(spec, &before_input, &after)?,
            &templates,
            &policy,
        )?
    } else {
        ResolvedSpec::stored(spec)?
    };
    let (decision, granted) = match env.resolved_spec() {
        Ok(before) => (policy.decide_change(&before, &after), before.exceptions),
        // A hand-broken spec has no bounds to keep: judge the new one whole.
        Err(_) => (policy.decide_create(&after, 0), Exceptions::default()),
    };
    let decision = judge_exceptions(state, caller, &granted, &after, decision)?;
    match decision {
        Decision::Deny(violations) => Err(refusal(violations)),
        Decision::NeedsApproval(reasons) => {
            let target = version_of(env);
            let record = file_request(
                state,
                caller,
                request_id,
                RequestKind::Update,
                &after,
                &reasons,
                target,
            )
            .await?;
            Ok(Outcome::Requested(Box::new(record)))
        }
        Decision::Allow => {
            let connection = state.cluster.connection().await?;
            let spec = EnvironmentCrdSpec::from_input(after.to_input());
            let updated =
                replace_spec(connection, env, spec, expected_generation, annotations).await;
            audit_write(
                state,
                caller,
                request_id,
                "environment.update",
                &after,
                &updated,
            )
            .await;
            Ok(Outcome::Changed(Box::new(updated?)))
        }
    }
}

/// Approves `record` as `admin` and carries it out. The approval is claimed
/// in the store first, so that of an approval and a rejection (or two
/// approvals) racing, only the one that wins writes to the cluster. Should
/// carrying it out fail, the approval is taken back: a request that can
/// never apply (409: the environment changed, or the name was taken) is
/// closed as rejected with the reason, one that may apply later goes back
/// to pending. Errors: 409 (decided already, or the reason), 503.
pub async fn approve(
    state: &AppState,
    admin: &Principal,
    request_id: &RequestId,
    record: &RequestRecord,
) -> Result<(), ApiError> {
    let store = state.auth.store();
    if !store
        .decide_request(record.id, RequestState::Approved, admin.user.id, None)
        .await?
    {
        return Err(ApiError::Conflict(
            "another admin decided this request first".into(),
        ));
    }
    let outcome = carry_out(state, record).await;
    let action = Action {
        actor: admin.user.email.as_str(),
        action: "request.approve",
        target: format!("request/{}", record.id),
        environment: Some(&record.environment),
        details: json!({ "requester": record.requester_email }),
    };
    match &outcome {
        Ok(()) => state.audit(action, "success", request_id).await,
        Err(error) => {
            let closed = match error {
                ApiError::Conflict(reason) => {
                    store
                        .reconsider_request(record.id, Some((RequestState::Rejected, reason)))
                        .await
                }
                _ => store.reconsider_request(record.id, None).await,
            };
            if let Err(e) = closed {
                tracing::error!(error = %e, request = %record.id, "could not take an approval back");
            }
            state.audit(action, "failure", request_id).await;
        }
    }
    outcome
}

/// Carries out an approved request: the spec stored with it was resolved
/// when it was filed, so it is written as it is, even above the policy (the
/// admin decided). A change applies only to the very version of the
/// environment it was filed against. Errors: 409 with the reason why it
/// can never apply.
async fn carry_out(state: &AppState, record: &RequestRecord) -> Result<(), ApiError> {
    let input = EnvironmentSpecInput::from_json(record.spec.clone())
        .map_err(|e| ApiError::Internal(format!("stored request spec: {e}")))?;
    let spec = EnvironmentSpec::parse(&input)
        .and_then(ResolvedSpec::stored)
        .map_err(|e| ApiError::Internal(format!("stored request spec: {e}")))?;
    let connection = state.cluster.connection().await?;
    if let Err(errors) = check_exceptions_free(connection, &spec) {
        return Err(ApiError::Conflict(format!(
            "{errors}; the requester can ask again"
        )));
    }
    match record.kind {
        RequestKind::Create => {
            ensure_name_free(connection, &record.environment).await?;
            let created = create_resource(
                connection,
                &spec,
                &record.requester_email,
                record.requester_id,
            )
            .await?;
            connection.caught_up(&created).await;
        }
        RequestKind::Update => {
            let api: Api<Environment> = Api::all(connection.client.clone());
            let current = api
                .get_opt(&record.environment)
                .await
                .map_err(kube_error)?
                .ok_or_else(|| ApiError::Conflict("the environment no longer exists".into()))?;
            let stale = stale_reason(record.target.as_ref(), version_of(&current).as_ref());
            if let Some(reason) = stale {
                return Err(ApiError::Conflict(format!(
                    "{reason}; the requester can ask again"
                )));
            }
            refuse_if_deleting(&current)?;
            let generation = current.metadata.generation;
            let spec = EnvironmentCrdSpec::from_input(spec.to_input());
            replace_spec(connection, &current, spec, generation, &[]).await?;
        }
    }
    Ok(())
}

/// Exceptions to the guardrails are an admin's to grant. When `after`
/// grants more than was `granted`, its hosts must stay out of the ingress domain
/// (400, each under its field); an admin's grant must not overlap another
/// environment's (400 naming the host and the environment); anyone else's
/// waits for an admin whatever the policy, so `decision` becomes a request
/// (a refusal stays one).
fn judge_exceptions(
    state: &AppState,
    caller: &Principal,
    granted: &Exceptions,
    after: &ResolvedSpec,
    decision: Decision,
) -> Result<Decision, ApiError> {
    // Taking exceptions back narrows what the tenant may do: anyone with
    // the right to change the environment may.
    if after.exceptions.within(granted) {
        return Ok(decision);
    }
    after
        .exceptions
        .check_domain(&state.settings.ingress_domain)?;
    if caller.user.role == Role::Admin {
        if let Some(connection) = state.cluster.connected() {
            check_exceptions_free(connection, after)?;
        }
        return Ok(decision);
    }
    let reason = Violation {
        field: "exceptions".into(),
        message: "asks for exceptions to the tenant guardrails, which only an admin grants".into(),
    };
    Ok(match decision {
        Decision::Allow => Decision::NeedsApproval(vec![reason]),
        Decision::NeedsApproval(mut reasons) => {
            reasons.push(reason);
            Decision::NeedsApproval(reasons)
        }
        deny @ Decision::Deny(_) => deny,
    })
}

/// Errors for each host of `spec`'s exceptions that overlaps one granted to
/// another environment (from the watch cache): two environments serving one
/// name would take each other's traffic.
fn check_exceptions_free(
    connection: &Connection,
    spec: &ResolvedSpec,
) -> Result<(), ValidationErrors> {
    let mut errors = ValidationErrors::new();
    if spec.exceptions.ingress_hosts.is_empty() {
        return Ok(());
    }
    for other in connection.environments.state() {
        let name = other.metadata.name.as_deref().unwrap_or_default();
        if name == spec.name.as_str() {
            continue;
        }
        let Ok(theirs) = other.resolved_spec() else {
            continue;
        };
        for (i, host) in spec.exceptions.overlapping(&theirs.exceptions) {
            errors.push(FieldError::new(
                format!("exceptions.ingressHosts[{i}]"),
                format!("{host} overlaps a host granted to environment {name}"),
            ));
        }
    }
    errors.finish(|| ())
}

/// 409 for an environment whose deletion has begun: nothing may change it.
pub fn refuse_if_deleting(env: &Environment) -> Result<(), ApiError> {
    if env.metadata.deletion_timestamp.is_some() {
        return Err(ApiError::Conflict(format!(
            "environment {} is being deleted",
            env.metadata.name.as_deref().unwrap_or_default()
        )));
    }
    Ok(())
}

/// Why a request filed against `filed` no longer fits `now`, if it does not.
fn stale_reason(
    filed: Option<&EnvironmentVersion>,
    now: Option<&EnvironmentVersion>,
) -> Option<String> {
    match (filed, now) {
        (Some(filed), Some(now)) if filed.uid != now.uid => Some(
            "the environment this request was filed for was deleted, and another of the same name made since"
                .into(),
        ),
        (Some(filed), Some(now)) if filed.generation != now.generation => Some(format!(
            "the environment changed since this request was filed (version {} then, {} now)",
            filed.generation, now.generation
        )),
        (Some(_), Some(_)) => None,
        _ => Some("this request does not say which version of the environment it was for".into()),
    }
}

fn version_of(env: &Environment) -> Option<EnvironmentVersion> {
    Some(EnvironmentVersion {
        uid: env.metadata.uid.clone()?,
        generation: env.metadata.generation?,
    })
}

/// `spec` with only the settings that `after` changed from `before`: the
/// rest is for a newly named template (or the policy) to fill.
fn only_asked_settings(
    mut spec: EnvironmentSpec,
    before: &EnvironmentSpecInput,
    after: &EnvironmentSpecInput,
) -> Result<EnvironmentSpec, ApiError> {
    let asked = EnvironmentSpecInput {
        name: after.name.clone(),
        quota: after
            .quota
            .clone()
            .filter(|q| Some(q) != before.quota.as_ref()),
        limits: after
            .limits
            .clone()
            .filter(|l| Some(l) != before.limits.as_ref()),
        network: after
            .network
            .clone()
            .filter(|n| Some(n) != before.network.as_ref()),
        pod_security: after
            .pod_security
            .clone()
            .filter(|p| Some(p) != before.pod_security.as_ref()),
        ttl: after.ttl.clone().filter(|t| Some(t) != before.ttl.as_ref()),
        ..EnvironmentSpecInput::default()
    };
    spec.settings = EnvironmentSpec::parse(&asked)?.settings;
    Ok(spec)
}

/// How many live environments `user` created, read from the apiserver (not
/// the watch cache, which may not have seen a create made a moment ago).
/// One being deleted no longer counts.
async fn owned_by(connection: &Connection, user: Uuid) -> Result<usize, ApiError> {
    let api: Api<Environment> = Api::all(connection.client.clone());
    let params = ListParams::default().labels(&format!("{CREATOR_ID_LABEL}={user}"));
    let list = api.list_metadata(&params).await.map_err(kube_error)?;
    Ok(list
        .items
        .iter()
        .filter(|e| e.metadata.deletion_timestamp.is_none())
        .count())
}

/// 409 unless `name` is free: no Environment of that name (live or being
/// deleted) and no namespace. The message never says whose a name is.
pub async fn ensure_name_free(connection: &Connection, name: &str) -> Result<(), ApiError> {
    let environments: Api<Environment> = Api::all(connection.client.clone());
    if let Some(env) = environments.get_opt(name).await.map_err(kube_error)? {
        return Err(taken(name, env.metadata.deletion_timestamp.is_some()));
    }
    let namespaces: Api<Namespace> = Api::all(connection.client.clone());
    if let Some(ns) = namespaces.get_opt(name).await.map_err(kube_error)? {
        let ours = ns
            .metadata
            .labels
            .as_ref()
            .and_then(|l| l.get(MANAGED_BY_LABEL))
            .is_some_and(|v| v == MANAGED_BY_VALUE);
        // Berth's namespace without its Environment: still being removed.
        return Err(taken(name, ours));
    }
    Ok(())
}

fn taken(name: &str, deleting: bool) -> ApiError {
    ApiError::Conflict(if deleting {
        format!("the name {name} is being deleted; try again once it is gone")
    } else {
        format!("the name {name} is taken")
    })
}

/// Writes the Environment for a resolved spec, created by `creator`.
async fn create_resource(
    connection: &Connection,
    spec: &ResolvedSpec,
    creator: &str,
    creator_id: Uuid,
) -> Result<Environment, ApiError> {
    let mut env = Environment::for_spec(spec);
    env.metadata.annotations = Some([(CREATED_BY.to_owned(), creator.to_owned())].into());
    env.metadata.labels = Some([(CREATOR_ID_LABEL.to_owned(), creator_id.to_string())].into());
    let api: Api<Environment> = Api::all(connection.client.clone());
    let params = PostParams {
        field_manager: Some(FIELD_MANAGER.into()),
        ..Default::default()
    };
    match api.create(&params, &env).await {
        Ok(created) => Ok(created),
        // Made a moment ago by someone else: say so as the name check does.
        Err(kube::Error::Api(e)) if e.code == 409 => {
            ensure_name_free(connection, spec.name.as_str()).await?;
            Err(taken(spec.name.as_str(), false))
        }
        Err(e) => Err(kube_error(e)),
    }
}

async fn audit_write(
    state: &AppState,
    caller: &Principal,
    request_id: &RequestId,
    action: &str,
    spec: &ResolvedSpec,
    result: &Result<Environment, ApiError>,
) {
    let name = spec.name.to_string();
    let entry = Action {
        actor: caller.user.email.as_str(),
        action,
        target: format!("environment/{name}"),
        environment: Some(&name),
        details: json!({ "spec": spec.to_input() }),
    };
    let outcome = if result.is_ok() { "success" } else { "failure" };
    state.audit(entry, outcome, request_id).await;
}

/// What `spec` would come to, for a preview: resolved as a create would
/// be, and the policy's decision as if it were the caller's first.
pub async fn preview(
    state: &AppState,
    caller: &Principal,
    mut spec: EnvironmentSpec,
) -> Result<(ResolvedSpec, Decision), ApiError> {
    spec.set_creator(caller.user.email.clone())?;
    let store = state.auth.store();
    let policy = crate::platform::policy(store).await?;
    let spec = resolve(spec, &crate::platform::templates(store).await?, &policy)?;
    let decision = judge_exceptions(
        state,
        caller,
        &Exceptions::default(),
        &spec,
        policy.decide_create(&spec, 0),
    )?;
    Ok((spec, decision))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn version(uid: &str, generation: i64) -> EnvironmentVersion {
        EnvironmentVersion {
            uid: uid.into(),
            generation,
        }
    }

    #[test]
    fn a_request_fits_only_the_version_it_was_filed_against() {
        let filed = version("u1", 3);
        assert_eq!(stale_reason(Some(&filed), Some(&version("u1", 3))), None);
        assert!(
            stale_reason(Some(&filed), Some(&version("u1", 4)))
                .unwrap()
                .contains("changed since")
        );
        assert!(
            stale_reason(Some(&filed), Some(&version("u2", 3)))
                .unwrap()
                .contains("another of the same name")
        );
        assert!(stale_reason(None, Some(&filed)).is_some());
    }
}
