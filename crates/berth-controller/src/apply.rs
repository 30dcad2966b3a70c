//! Server-side apply of an environment's objects, and pruning of the ones
//! it no longer asks for.
//!
//! Each object is applied on its own, so that one the apiserver refuses
//! holds nothing else up: it is reported as a [`Refusal`] while the others
//! are applied and pruning goes on.
//!
//! Each object is applied without force first. The apiserver answers 409
//! only when someone else took ownership of a field Berth sets (kubectl
//! edit, kubectl scale): that is drift, so the object is applied again with
//! force and the repair reported, saying who changed which field. A field
//! that cannot change in place (a RoleBinding's `roleRef`, a Deployment's
//! selector) makes the apiserver refuse the apply as invalid: the object is
//! then deleted and created anew. An object that comes back with a new uid
//! was deleted behind Berth's back and recreated: drift too.

use crate::Error;
use crate::children::{ChildKey, Kind};
use berth_manifests::Object;
use futures::{StreamExt, stream};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::ResourceQuota;
use kube::api::{Api, DeleteParams, DynamicObject, Patch, PatchParams, PropagationPolicy};
use kube::core::Status;
use kube::{Client, ResourceExt};
use serde_json::Value;
use std::collections::{BTreeSet, HashMap};

pub const FIELD_MANAGER: &str = "berth";

/// Objects of one environment applied at once: enough to overlap round trips
/// without one environment crowding out the others.
const PARALLEL_APPLIES: usize = 8;

/// How the apiserver's validation words a refused change of a field that is
/// set once: `field is immutable` for most (a Deployment's selector, a
/// Service's cluster IP), `cannot change roleRef` for RBAC bindings.
const IMMUTABLE: [&str; 2] = ["field is immutable", "cannot change roleRef"];

/// The uid each object had when this process last applied it, per object.
pub type Ledger = HashMap<ChildKey, String>;

#[derive(Debug, Default)]
pub struct Applied {
    pub deployments: Vec<Deployment>,
    pub quota: Option<ResourceQuota>,
    /// What was repaired, per object, for the Events.
    pub repaired: Vec<(Kind, String)>,
    pub failures: Failures,
}

/// What could not be applied or pruned.
#[derive(Debug, Default)]
pub struct Failures {
    /// Objects the apiserver refused for good, in its words.
    pub refused: Vec<Refusal>,
    /// The first failure that retrying may cure: the apiserver unreachable
    /// or failing (5xx), a conflict (409), too many requests (429), the
    /// namespace not there (404).
    pub retry: Option<Error>,
}

impl Failures {
    fn record(&mut self, key: &ChildKey, error: kube::Error) {
        match error {
            kube::Error::Api(status) if is_refusal(&status) => self.refused.push(Refusal {
                key: key.clone(),
                message: status.message,
                reason: status.reason,
            }),
            source => {
                self.retry.get_or_insert(Error::Apply {
                    kind: key.kind.name(),
                    name: key.name.clone(),
                    source,
                });
            }
        }
    }
}

/// An object the apiserver refused (invalid, forbidden), which applying it
/// again as it is will not cure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub key: ChildKey,
    /// The apiserver's message, as it wrote it.
    pub message: String,
    /// The apiserver's reason (`Invalid`, `Forbidden`), empty if it gave none.
    pub reason: String,
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.reason.is_empty() {
            write!(f, "{} was refused: {}", self.key, self.message)
        } else {
            write!(
                f,
                "{} was refused ({}): {}",
                self.key, self.reason, self.message
            )
        }
    }
}

/// A 4xx that is about the object, not about timing: 404 (the namespace is
/// not there yet, or going), 409 (a conflict, an object being deleted) and
/// 429 (too many requests) pass with time.
fn is_refusal(status: &Status) -> bool {
    (400..500).contains(&status.code) && ![404, 409, 429].contains(&status.code)
}

/// Applies `objects`, the namespace first since everything else lives in it,
/// each on its own: a failure of one is recorded and the others still go.
pub async fn apply_all(client: &Client, objects: Vec<Object>, ledger: &mut Ledger) -> Applied {
    let mut keyed: Vec<(ChildKey, Object)> = objects
        .into_iter()
        .filter_map(|o| Kind::of(&o).map(|k| (ChildKey::of(k, &o), o)))
        .collect();
    keyed.sort_by_key(|(key, _)| key.kind != Kind::Namespace);
    let rest = keyed.split_off(
        keyed
            .iter()
            .take_while(|(k, _)| k.kind == Kind::Namespace)
            .count(),
    );
    let mut outcomes = Vec::with_capacity(rest.len() + 1);
    for (key, object) in keyed {
        outcomes.push(apply_one(client, key, object).await);
    }
    let applied: Vec<_> = stream::iter(rest)
        .map(|(key, object)| apply_one(client, key, object))
        .buffer_unordered(PARALLEL_APPLIES)
        .collect()
        .await;
    outcomes.extend(applied);

    let mut out = Applied::default();
    for (key, outcome) in outcomes {
        let (written, repair) = match outcome {
            Ok(written) => written,
            Err(error) => {
                out.failures.record(&key, error);
                continue;
            }
        };
        let uid = written.uid().unwrap_or_default();
        if let Some(note) = repair {
            out.repaired.push((key.kind, note));
        } else if ledger.get(&key).is_some_and(|known| *known != uid) {
            let note = format!("{key}: recreated after it was deleted");
            out.repaired.push((key.kind, note));
        }
        ledger.insert(key.clone(), uid);
        let parsed = match key.kind {
            Kind::Deployment => parse(written).map(|d| out.deployments.push(d)),
            Kind::ResourceQuota => parse(written).map(|q| out.quota = Some(q)),
            _ => Ok(()),
        };
        // What the apiserver wrote back always parses; should it not, the
        // status cannot be judged, as after a failure to retry.
        if let Err(error) = parsed {
            out.failures.retry.get_or_insert(error);
        }
    }
    out.deployments
        .sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
    out
}

fn parse<K: kube::Resource + serde::de::DeserializeOwned>(
    object: DynamicObject,
) -> Result<K, Error> {
    object.try_parse().map_err(|e| {
        Error::Kube(kube::Error::SerdeError(serde_json::Error::io(
            std::io::Error::other(e.to_string()),
        )))
    })
}

/// The object as written, and the repair it took if any.
type Written = (DynamicObject, Option<String>);

async fn apply_one(
    client: &Client,
    key: ChildKey,
    object: Object,
) -> (ChildKey, Result<Written, kube::Error>) {
    let api = key.api(client.clone());
    let body = object.to_json();
    let params = PatchParams::apply(FIELD_MANAGER);
    let result = match api.patch(&key.name, &params, &Patch::Apply(&body)).await {
        Ok(written) => Ok((written, None)),
        Err(kube::Error::Api(status)) if status.code == 409 => api
            .patch(&key.name, &params.clone().force(), &Patch::Apply(&body))
            .await
            .map(|written| (written, Some(conflict_note(&key, &status, &body)))),
        // Never the namespace: replacing it would delete everything in it.
        Err(kube::Error::Api(status)) if key.kind != Kind::Namespace && is_immutable(&status) => {
            replace(&api, &key, &params, &body)
                .await
                .map(|written| (written, Some(replacement_note(&key, &status))))
        }
        Err(e) => Err(e),
    };
    (key, result)
}

/// Deletes the object and applies it again, which creates it as built.
async fn replace(
    api: &Api<DynamicObject>,
    key: &ChildKey,
    params: &PatchParams,
    body: &Value,
) -> Result<DynamicObject, kube::Error> {
    // In the background: the object itself goes at once, what it owns (a
    // Deployment's ReplicaSets) after, so the new one can be created now.
    let in_background = DeleteParams {
        propagation_policy: Some(PropagationPolicy::Background),
        ..DeleteParams::default()
    };
    match api.delete(&key.name, &in_background).await {
        Ok(_) => {}
        Err(kube::Error::Api(status)) if status.code == 404 => {}
        Err(e) => return Err(e),
    }
    api.patch(&key.name, params, &Patch::Apply(body)).await
}

/// Whether the apiserver refused the apply because it changes a field that
/// cannot change in place.
fn is_immutable(status: &Status) -> bool {
    let said = |text: &str| IMMUTABLE.iter().any(|phrase| text.contains(phrase));
    status.code == 422
        && (said(&status.message)
            || status
                .details
                .iter()
                .flat_map(|d| &d.causes)
                .any(|c| said(&c.message)))
}

/// `RoleBinding x: roleRef cannot change in place, so it was deleted and
/// created anew`, naming the fields the apiserver named.
fn replacement_note(key: &ChildKey, status: &Status) -> String {
    let fields: Vec<&str> = status
        .details
        .iter()
        .flat_map(|d| &d.causes)
        .filter(|c| IMMUTABLE.iter().any(|phrase| c.message.contains(phrase)))
        .map(|c| c.field.as_str())
        .filter(|f| !f.is_empty())
        .collect();
    if fields.is_empty() {
        format!(
            "{key} could not change in place ({}), so it was deleted and created anew",
            status.message
        )
    } else {
        format!(
            "{key}: {} cannot change in place, so it was deleted and created anew",
            fields.join(", ")
        )
    }
}

/// The repair of a conflict, a sentence per field naming who changed it and
/// what it is restored to, from the causes of server-side apply's 409: each
/// names a field (`.spec.replicas`) and its other manager (`conflict with
/// "kubectl" with subresource "scale"`).
fn conflict_note(key: &ChildKey, status: &Status, body: &Value) -> String {
    let changes: Vec<String> = status
        .details
        .iter()
        .flat_map(|d| &d.causes)
        .filter(|c| c.reason == "FieldManagerConflict")
        .map(|c| {
            let field = c.field.trim_start_matches('.');
            let by = quoted(&c.message).map_or_else(
                || "someone else".to_owned(),
                |manager| format!("\"{manager}\""),
            );
            match value_at(body, field) {
                Some(value) => format!("{field} was changed by {by} and is restored to {value}"),
                None => format!("{field} was changed by {by} and is restored"),
            }
        })
        .collect();
    if changes.is_empty() {
        format!(
            "{key}: fields changed by someone else are restored ({})",
            status.message
        )
    } else {
        format!("{key}: {}", changes.join("; "))
    }
}

/// The first double-quoted part of `text`.
fn quoted(text: &str) -> Option<&str> {
    let (_, rest) = text.split_once('"')?;
    rest.split_once('"').map(|(inside, _)| inside)
}

/// What `body` sets at `path` when that is a plain value reached through
/// names (`spec.replicas`); not for paths into lists
/// (`spec.template.spec.containers[name="web"].image`) or to whole objects.
fn value_at(body: &Value, path: &str) -> Option<String> {
    if path.contains('[') {
        return None;
    }
    match path
        .split('.')
        .try_fold(body, |value, name| value.get(name))?
    {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// Deletes the objects in `existing` that are not `wanted`, never the
/// namespace (that goes only with the environment), each on its own: a
/// failure is recorded in `failures` and the others still go. Returns what
/// went.
pub async fn prune(
    client: &Client,
    existing: Vec<ChildKey>,
    wanted: &BTreeSet<ChildKey>,
    ledger: &mut Ledger,
    failures: &mut Failures,
) -> Vec<ChildKey> {
    let params = DeleteParams {
        propagation_policy: Some(PropagationPolicy::Background),
        ..DeleteParams::default()
    };
    let mut pruned = Vec::new();
    for key in existing {
        if key.kind == Kind::Namespace || wanted.contains(&key) {
            continue;
        }
        match key.api(client.clone()).delete(&key.name, &params).await {
            Ok(_) => {}
            Err(kube::Error::Api(e)) if e.code == 404 => {}
            Err(error) => {
                failures.record(&key, error);
                continue;
            }
        }
        ledger.remove(&key);
        pruned.push(key);
    }
    pruned
}

#[cfg(test)]
mod tests {
    use super::*;
    use kube::core::response::{StatusCause, StatusDetails};
    use serde_json::json;

    fn key(kind: Kind, name: &str) -> ChildKey {
        ChildKey {
            kind,
            namespace: Some("team-a".into()),
            name: name.into(),
        }
    }

    fn status(code: u16, reason: &str, message: &str, causes: &[(&str, &str, &str)]) -> Status {
        Status::failure(message, reason)
            .with_code(code)
            .with_details(StatusDetails {
                name: String::new(),
                group: String::new(),
                kind: String::new(),
                uid: String::new(),
                causes: causes
                    .iter()
                    .map(|(reason, message, field)| StatusCause {
                        reason: (*reason).into(),
                        message: (*message).into(),
                        field: (*field).into(),
                    })
                    .collect(),
                retry_after_seconds: 0,
            })
    }

    #[test]
    fn a_conflict_names_the_field_its_manager_and_the_value_restored() {
        let conflict = status(
            409,
            "Conflict",
            "Apply failed with 1 conflict: conflict with \"kubectl\" with subresource \"scale\" using apps/v1: .spec.replicas",
            &[(
                "FieldManagerConflict",
                "conflict with \"kubectl\" with subresource \"scale\"",
                ".spec.replicas",
            )],
        );
        let body = json!({"spec": {"replicas": 2}});
        assert_eq!(
            conflict_note(&key(Kind::Deployment, "web"), &conflict, &body),
            "Deployment web: spec.replicas was changed by \"kubectl\" and is restored to 2"
        );
    }

    #[test]
    fn a_conflict_on_several_fields_says_each() {
        let conflict = status(
            409,
            "Conflict",
            "Apply failed with 2 conflicts: ...",
            &[
                (
                    "FieldManagerConflict",
                    "conflict with \"kubectl-edit\"",
                    ".spec.hard.pods",
                ),
                (
                    "FieldManagerConflict",
                    "conflict with \"kubectl-edit\"",
                    ".spec.template.spec.containers[name=\"web\"].image",
                ),
            ],
        );
        let body = json!({"spec": {"hard": {"pods": "20"}}});
        assert_eq!(
            conflict_note(&key(Kind::ResourceQuota, "quota"), &conflict, &body),
            "ResourceQuota quota: spec.hard.pods was changed by \"kubectl-edit\" and is restored to 20; \
             spec.template.spec.containers[name=\"web\"].image was changed by \"kubectl-edit\" and is restored"
        );
    }

    #[test]
    fn a_conflict_without_causes_keeps_the_apiservers_message() {
        let conflict = status(409, "Conflict", "Apply failed", &[]);
        assert_eq!(
            conflict_note(&key(Kind::Service, "web"), &conflict, &json!({})),
            "Service web: fields changed by someone else are restored (Apply failed)"
        );
    }

    #[test]
    fn immutable_fields_are_told_from_other_refusals() {
        let role_ref = status(
            422,
            "Invalid",
            "RoleBinding.rbac.authorization.k8s.io \"bob\" is invalid: roleRef: Invalid value: {...}: cannot change roleRef",
            &[(
                "FieldValueInvalid",
                "Invalid value: {...}: cannot change roleRef",
                "roleRef",
            )],
        );
        assert!(is_immutable(&role_ref));
        assert_eq!(
            replacement_note(&key(Kind::RoleBinding, "bob"), &role_ref),
            "RoleBinding bob: roleRef cannot change in place, so it was deleted and created anew"
        );
        let selector = status(
            422,
            "Invalid",
            "Deployment.apps \"web\" is invalid: spec.selector: Invalid value: ...: field is immutable",
            &[],
        );
        assert!(is_immutable(&selector));
        assert!(
            replacement_note(&key(Kind::Deployment, "web"), &selector)
                .ends_with("field is immutable), so it was deleted and created anew")
        );
        let invalid = status(
            422,
            "Invalid",
            "Service \"web\" is invalid: spec.ports[0].port: must be between 1 and 65535",
            &[],
        );
        assert!(!is_immutable(&invalid));
        assert!(is_refusal(&invalid));
    }

    #[test]
    fn only_refusals_about_the_object_are_reported_as_such() {
        let mut failures = Failures::default();
        let forbidden = status(
            403,
            "Forbidden",
            "services \"db\" is forbidden: exceeded quota: hold",
            &[],
        );
        failures.record(
            &key(Kind::Service, "db"),
            kube::Error::Api(forbidden.boxed()),
        );
        for code in [404, 409, 429, 500] {
            let transient = Status::failure("try later", "").with_code(code);
            failures.record(
                &key(Kind::Service, "web"),
                kube::Error::Api(transient.boxed()),
            );
        }
        assert_eq!(failures.refused.len(), 1);
        assert_eq!(
            failures.refused[0].to_string(),
            "Service db was refused (Forbidden): services \"db\" is forbidden: exceeded quota: hold"
        );
        let retry = failures.retry.expect("a failure to retry");
        assert_eq!(retry.to_string(), "Service web: try later");
        assert_eq!(retry.reason(), "api_404", "the first one is kept");
    }
}
