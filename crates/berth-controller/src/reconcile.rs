//! One reconcile of one Environment: parse, resolve, build, apply, prune,
//! report; and on deletion, the namespace's removal.

use crate::apply::{self, FIELD_MANAGER, Failures, Ledger};
use crate::autoscalers::{self, Autoscalers};
use crate::children::{ChildKey, Children, Kind};
use crate::identities::Identities;
use crate::metrics::Metrics;
use crate::status::{self, DeploymentState, Observation, Problem};
use crate::ttl::{self, Due, Warning};
use crate::{ControllerOptions, Error};
use berth_core::validation::ValidationErrors;
use berth_manifests::{Environment, EnvironmentStatus, Object};
use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::jiff::Timestamp;
use kube::api::{DeleteParams, Patch, PatchParams, PostParams, PropagationPolicy};
use kube::runtime::controller::Action;
use kube::runtime::events::{Event, EventType, Recorder};
use kube::runtime::finalizer::{self, finalizer};
use kube::{Api, Client, Resource, ResourceExt};
use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub const FINALIZER: &str = "berth.dev/namespace";

/// How often an environment looks again when what stops it is not watched,
/// so nothing else wakes it: a namespace that belongs to someone else, an
/// object refused by a quota or an admission policy that is not Berth's.
const RECHECK: Duration = Duration::from_secs(30);

pub struct Context {
    pub client: Client,
    pub options: ControllerOptions,
    pub recorder: Recorder,
    pub metrics: Metrics,
    pub children: Children,
    pub autoscalers: Autoscalers,
    pub identities: Identities,
    pub failures: Mutex<HashMap<String, u32>>,
    pub ledgers: Mutex<HashMap<String, Ledger>>,
    pub warned: Mutex<HashSet<(String, Warning)>>,
}

#[tracing::instrument(skip_all, fields(environment = %env.name_any()))]
pub async fn reconcile(env: Arc<Environment>, ctx: Arc<Context>) -> Result<Action, Error> {
    let _timer = ctx.metrics.reconcile_started();
    let api: Api<Environment> = Api::all(ctx.client.clone());
    let name = env.name_any();
    let action = finalizer(&api, FINALIZER, env, |event| async {
        match event {
            finalizer::Event::Apply(env) => apply(&env, &ctx).await,
            finalizer::Event::Cleanup(env) => cleanup(&env, &ctx).await,
        }
    })
    .await
    .map_err(|e| Error::Finalizer(Box::new(e)))?;
    ctx.failures.lock().expect("failures lock").remove(&name);
    Ok(action)
}

/// Transient failures wait longer each time they repeat for the same
/// environment; waiting for a namespace to go is not a failure.
pub fn error_policy(env: Arc<Environment>, error: &Error, ctx: Arc<Context>) -> Action {
    if error.is_waiting() {
        return Action::requeue(Duration::from_secs(2));
    }
    ctx.metrics.error(&env.name_any(), error.reason());
    let failures = {
        let mut map = ctx.failures.lock().expect("failures lock");
        let n = map.entry(env.name_any()).or_default();
        *n = n.saturating_add(1);
        *n
    };
    let wait = crate::error::backoff(failures, rand::random::<f64>());
    tracing::warn!(environment = %env.name_any(), %error, failures, ?wait, "reconcile failed");
    if !error.is_classified() {
        report(&env.name_any(), error);
    }
    Action::requeue(wait)
}

/// Reports a failure the controller cannot classify to Sentry (a no-op
/// without a Sentry client), tagged with the environment's name and the
/// failure's reason, its causes as the exception chain.
fn report(environment: &str, error: &Error) {
    sentry::with_scope(
        |scope| {
            scope.set_tag("environment_name", environment);
            scope.set_tag("reason", error.reason());
            scope.set_transaction(Some("reconcile"));
        },
        || sentry::capture_error(error),
    );
}

async fn apply(env: &Environment, ctx: &Context) -> Result<Action, Error> {
    let name = env.name_any();
    let now = Timestamp::now();
    // A renewal restarts the TTL; a bad annotation falls back to creation.
    let renewed = env
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(Environment::RENEWED_AT_ANNOTATION))
        .and_then(|at| at.parse::<Timestamp>().ok());
    let created = renewed.unwrap_or_else(|| {
        env.metadata
            .creation_timestamp
            .as_ref()
            .map_or(now, |t| t.0)
    });
    let resolved = match env.resolved_spec() {
        Ok(resolved) => resolved,
        Err(errors) => {
            let observation = Observation {
                generation: env.metadata.generation,
                problem: Some(Problem::InvalidSpec(describe(&errors))),
                ..Observation::default()
            };
            write_status(env, ctx, observation).await?;
            // Nothing but a new spec can fix it: wait for one.
            return Ok(Action::await_change());
        }
    };
    let expires_at = ttl::expires_at(created, resolved.ttl.map(|t| t.seconds()));
    if let Some(expires_at) = expires_at {
        match ttl::due(now, expires_at) {
            Due::Expire => return expire(env, ctx).await,
            Due::Warn(warning) => warn_expiry(env, ctx, warning, expires_at).await,
            Due::Nothing => {}
        }
    }
    let uid = env.uid().unwrap_or_default();
    ctx.identities.ready().await?;
    let identities = ctx
        .identities
        .of(resolved.members.iter().map(|m| m.email.as_str()));
    let mut objects = berth_manifests::build(
        &resolved,
        &berth_manifests::BuildOptions {
            owner_uid: Some(uid.clone()),
            identities,
            ..ctx.options.build.clone()
        },
    );
    autoscalers::leave_replicas(&mut objects, &ctx.autoscalers.deployments_in(&name));
    if let Some(conflict) = claim_namespace(env, ctx, &objects).await? {
        let observation = Observation {
            generation: env.metadata.generation,
            expires_at,
            problem: Some(Problem::NamespaceConflict(conflict)),
            ..Observation::default()
        };
        write_status(env, ctx, observation).await?;
        return Ok(Action::requeue(RECHECK));
    }

    let applied = apply_and_prune(ctx, &name, objects).await;
    publish_repairs(ctx, env, &applied.repaired).await;
    let Failures { refused, retry } = applied.failures;
    // Without a refusal to report, a status from a partial apply could only
    // mislead (an app whose Deployment was not read is not waited for).
    let retry = match retry {
        Some(error) if refused.is_empty() => return Err(error),
        retry => retry,
    };
    if !refused.is_empty() {
        ctx.metrics.error(&name, "refused".to_owned());
    }
    let problem = (!refused.is_empty()).then(|| {
        let sentences: Vec<String> = refused.iter().map(ToString::to_string).collect();
        Problem::ApplyFailed(sentences.join("; "))
    });
    let observation = Observation {
        generation: env.metadata.generation,
        expires_at,
        quota: applied.quota.as_ref().and_then(status::quota_status),
        problem,
        deployments: applied
            .deployments
            .iter()
            .map(DeploymentState::of)
            .collect(),
    };
    write_status(env, ctx, observation).await?;
    if let Some(error) = retry {
        return Err(error);
    }
    let expiry = expires_at.map(|at| ttl::until_next(Timestamp::now(), at));
    Ok(match (refused.is_empty(), expiry) {
        (true, Some(wait)) => Action::requeue(wait),
        // Every change that matters arrives by a watch.
        (true, None) => Action::await_change(),
        // What would cure a refusal (a quota or an admission policy that is
        // not Berth's) is not watched.
        (false, wait) => Action::requeue(wait.map_or(RECHECK, |w| w.min(RECHECK))),
    })
}

/// An Event per repair. The recorder folds events with the same reason and
/// action into one series keeping the first note, so each kind repaired gets
/// its own action.
async fn publish_repairs(ctx: &Context, env: &Environment, repaired: &[(Kind, String)]) {
    for (kind, note) in repaired {
        tracing::info!(%note, "repaired drift");
        let action = format!("Repair{}", kind.name());
        publish(
            ctx,
            env,
            EventType::Warning,
            "DriftRepaired",
            &action,
            note.clone(),
        )
        .await;
    }
}

/// Applies the objects and prunes the environment's others, each on its
/// own, with the environment's ledger of uids.
async fn apply_and_prune(ctx: &Context, name: &str, objects: Vec<Object>) -> apply::Applied {
    let wanted: BTreeSet<ChildKey> = objects
        .iter()
        .filter_map(|o| Kind::of(o).map(|k| ChildKey::of(k, o)))
        .collect();
    let mut ledger = ctx
        .ledgers
        .lock()
        .expect("ledgers lock")
        .remove(name)
        .unwrap_or_default();
    let mut applied = apply::apply_all(&ctx.client, objects, &mut ledger).await;
    let pruned = apply::prune(
        &ctx.client,
        ctx.children.of(name),
        &wanted,
        &mut ledger,
        &mut applied.failures,
    )
    .await;
    ctx.ledgers
        .lock()
        .expect("ledgers lock")
        .insert(name.to_owned(), ledger);
    if !pruned.is_empty() {
        let list: Vec<String> = pruned.iter().map(ToString::to_string).collect();
        tracing::info!(pruned = %list.join(", "), "pruned objects no longer asked for");
    }
    applied
}

/// The spec's problems with their paths as the Environment has them.
fn describe(errors: &ValidationErrors) -> String {
    errors
        .errors()
        .iter()
        .map(|e| match e.field.as_str() {
            "name" => format!("metadata.name: {}", e.message),
            "" => format!("spec: {}", e.message),
            field => format!("spec.{field}: {}", e.message),
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// Makes sure the namespace is ours before anything is applied to it: an
/// absent one is created (not applied, which would take over one that
/// appeared meanwhile); someone else's is reported and left alone.
async fn claim_namespace(
    env: &Environment,
    ctx: &Context,
    objects: &[Object],
) -> Result<Option<String>, Error> {
    let name = env.name_any();
    let api: Api<Namespace> = Api::all(ctx.client.clone());
    match api.get_opt(&name).await? {
        Some(ns)
            if berth_manifests::is_environments_namespace(
                &ns,
                &name,
                &env.uid().unwrap_or_default(),
            ) =>
        {
            remove_ungranted_exceptions(&api, &ns, objects).await?;
            Ok(None)
        }
        Some(_) => Ok(Some(format!(
            "namespace {name} exists and was not made by Berth for this environment; Berth neither adopts nor deletes it"
        ))),
        None => {
            let Some(Object::Namespace(ns)) =
                objects.iter().find(|o| matches!(o, Object::Namespace(_)))
            else {
                return Ok(None);
            };
            let params = PostParams {
                field_manager: Some(FIELD_MANAGER.to_owned()),
                ..PostParams::default()
            };
            // Fields a create sets stay owned by that (non-apply) write
            // forever, so server-side apply could never remove them: the
            // annotations (granted exceptions, which an admin may take
            // back) are left to the apply that follows.
            let mut ns = ns.clone();
            ns.metadata.annotations = None;
            match api.create(&params, &ns).await {
                Ok(_) => Ok(None),
                Err(kube::Error::Api(e)) if e.code == 409 => Err(Error::NamespaceRace(name)),
                Err(e) => Err(e.into()),
            }
        }
    }
}

/// The guardrails read an environment's exceptions from its namespace's
/// annotations; only the spec grants them (an admin, through Berth, where
/// the domain and overlap rules are checked). An exception annotation the
/// spec does not grant, written by anyone (`kubectl annotate`), is removed;
/// the apply that follows writes the granted ones.
async fn remove_ungranted_exceptions(
    api: &Api<Namespace>,
    namespace: &Namespace,
    objects: &[Object],
) -> Result<(), Error> {
    let granted = objects
        .iter()
        .find_map(|o| match o {
            Object::Namespace(ns) => ns.metadata.annotations.clone(),
            _ => None,
        })
        .unwrap_or_default();
    let present = namespace.metadata.annotations.clone().unwrap_or_default();
    let ungranted: serde_json::Map<String, serde_json::Value> = [
        berth_manifests::ALLOWED_INGRESS_HOSTS_ANNOTATION,
        berth_manifests::ALLOW_EXTERNAL_NAME_ANNOTATION,
    ]
    .into_iter()
    .filter(|key| present.contains_key(*key) && !granted.contains_key(*key))
    .map(|key| (key.to_owned(), serde_json::Value::Null))
    .collect();
    if !ungranted.is_empty() {
        let patch = serde_json::json!({"metadata": {"annotations": ungranted}});
        api.patch(
            &namespace.name_any(),
            &PatchParams::default(),
            &Patch::Merge(&patch),
        )
        .await?;
    }
    Ok(())
}

async fn cleanup(env: &Environment, ctx: &Context) -> Result<Action, Error> {
    let name = env.name_any();
    let api: Api<Namespace> = Api::all(ctx.client.clone());
    match api.get_opt(&name).await? {
        Some(ns)
            if berth_manifests::is_environments_namespace(
                &ns,
                &name,
                &env.uid().unwrap_or_default(),
            ) =>
        {
            // Once terminating, the namespace controller says in the
            // namespace's status what is left (finalizers, objects); every
            // change of it wakes this reconcile through the namespace watch.
            let held = status::held(&ns);
            let next = status::deleting(env.status.as_ref(), held.as_ref(), Timestamp::now());
            patch_status(env, ctx, next).await?;
            if ns.metadata.deletion_timestamp.is_none() {
                let params = DeleteParams {
                    propagation_policy: Some(PropagationPolicy::Background),
                    ..DeleteParams::default()
                };
                api.delete(&name, &params).await?;
                publish(
                    ctx,
                    env,
                    EventType::Normal,
                    "DeletingNamespace",
                    "Delete",
                    format!("deleting namespace {name}"),
                )
                .await;
            }
            Err(Error::NamespaceTerminating(name))
        }
        Some(_) => {
            publish(
                ctx,
                env,
                EventType::Normal,
                "NamespaceKept",
                "Delete",
                format!("namespace {name} was not made by Berth for this environment and is kept"),
            )
            .await;
            forget(ctx, env);
            Ok(Action::await_change())
        }
        None => {
            forget(ctx, env);
            Ok(Action::await_change())
        }
    }
}

fn forget(ctx: &Context, env: &Environment) {
    let name = env.name_any();
    ctx.ledgers.lock().expect("ledgers lock").remove(&name);
    let uid = env.uid().unwrap_or_default();
    ctx.warned
        .lock()
        .expect("warned lock")
        .retain(|(u, _)| *u != uid);
    ctx.metrics.set_phase(&name, None);
}

async fn expire(env: &Environment, ctx: &Context) -> Result<Action, Error> {
    let name = env.name_any();
    publish(
        ctx,
        env,
        EventType::Normal,
        "Expired",
        "Delete",
        format!("environment {name} reached its time to live and is deleted"),
    )
    .await;
    let api: Api<Environment> = Api::all(ctx.client.clone());
    match api.delete(&name, &DeleteParams::default()).await {
        Ok(_) => Ok(Action::await_change()),
        Err(kube::Error::Api(e)) if e.code == 404 => Ok(Action::await_change()),
        Err(e) => Err(e.into()),
    }
}

async fn warn_expiry(env: &Environment, ctx: &Context, warning: Warning, at: Timestamp) {
    let key = (env.uid().unwrap_or_default(), warning);
    if !ctx.warned.lock().expect("warned lock").insert(key) {
        return;
    }
    let note = format!(
        "environment {} expires in less than {} (at {at}); renew it to keep it",
        env.name_any(),
        warning.text()
    );
    publish(ctx, env, EventType::Warning, "ExpiresSoon", "Expire", note).await;
}

async fn write_status(
    env: &Environment,
    ctx: &Context,
    observation: Observation,
) -> Result<(), Error> {
    let next = status::status(env.status.as_ref(), observation, Timestamp::now());
    patch_status(env, ctx, next).await
}

/// Writes the status when it changed: an unchanged one costs no request
/// (and no watch event).
async fn patch_status(
    env: &Environment,
    ctx: &Context,
    next: EnvironmentStatus,
) -> Result<(), Error> {
    ctx.metrics.set_phase(&env.name_any(), next.phase);
    if env.status.as_ref() == Some(&next) {
        return Ok(());
    }
    let api: Api<Environment> = Api::all(ctx.client.clone());
    let body = serde_json::json!({
        "apiVersion": Environment::api_version(&()),
        "kind": Environment::kind(&()),
        "status": next,
    });
    api.patch_status(
        &env.name_any(),
        &PatchParams::apply(FIELD_MANAGER).force(),
        &Patch::Apply(&body),
    )
    .await?;
    Ok(())
}

/// Events are for people; failing to record one never fails a reconcile.
async fn publish(
    ctx: &Context,
    env: &Environment,
    type_: EventType,
    reason: &str,
    action: &str,
    note: String,
) {
    let event = Event {
        type_,
        reason: reason.to_owned(),
        note: Some(note),
        action: action.to_owned(),
        secondary: None,
    };
    if let Err(error) = ctx.recorder.publish(&event, &env.object_ref(&())).await {
        tracing::warn!(%error, reason, "recording an event failed");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spec_errors_carry_their_paths() {
        let mut errors = ValidationErrors::single("quota.cpu", "must be a CPU quantity");
        errors.push(berth_core::validation::FieldError::new(
            "name",
            "must be a DNS label",
        ));
        assert_eq!(
            describe(&errors),
            "spec.quota.cpu: must be a CPU quantity; metadata.name: must be a DNS label"
        );
    }
}
