//! Server-side apply of an environment's objects, and pruning of the ones
//! it no longer asks for.
//!
//! Each object is applied without force first. The apiserver answers 409
//! only when someone else took ownership of a field Berth sets (kubectl edit,
//! a patch): that is drift, so the object is applied again with force and the
//! repair reported. An object that comes back with a new uid was deleted
//! behind Berth's back and recreated: drift too.

use crate::Error;
use crate::children::{ChildKey, Kind};
use berth_manifests::Object;
use futures::{StreamExt, TryStreamExt, stream};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::ResourceQuota;
use kube::api::{DeleteParams, DynamicObject, Patch, PatchParams, PropagationPolicy};
use kube::{Client, ResourceExt};
use std::collections::{BTreeSet, HashMap};

pub const FIELD_MANAGER: &str = "berth";

/// Objects of one environment applied at once: enough to overlap round trips
/// without one environment crowding out the others.
const PARALLEL_APPLIES: usize = 8;

/// The uid each object had when this process last applied it, per object.
pub type Ledger = HashMap<ChildKey, String>;

#[derive(Debug, Default)]
pub struct Applied {
    pub deployments: Vec<Deployment>,
    pub quota: Option<ResourceQuota>,
    /// What was repaired, per object, for the Events.
    pub repaired: Vec<(Kind, String)>,
}

/// Applies `objects`, the namespace first since everything else lives in it.
pub async fn apply_all(
    client: &Client,
    objects: Vec<Object>,
    ledger: &mut Ledger,
) -> Result<Applied, Error> {
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
    let mut results = Vec::with_capacity(rest.len() + 1);
    for (key, object) in keyed {
        results.push(apply_one(client, key, object).await?);
    }
    let applied: Vec<_> = stream::iter(rest)
        .map(|(key, object)| apply_one(client, key, object))
        .buffer_unordered(PARALLEL_APPLIES)
        .try_collect()
        .await?;
    results.extend(applied);

    let mut out = Applied::default();
    for (key, written, conflict) in results {
        let uid = written.uid().unwrap_or_default();
        if let Some(message) = conflict {
            let note = format!("{key}: restored fields changed by someone else ({message})");
            out.repaired.push((key.kind, note));
        } else if ledger.get(&key).is_some_and(|known| *known != uid) {
            let note = format!("{key}: recreated after it was deleted");
            out.repaired.push((key.kind, note));
        }
        ledger.insert(key.clone(), uid);
        match key.kind {
            Kind::Deployment => out.deployments.push(parse(written)?),
            Kind::ResourceQuota => out.quota = Some(parse(written)?),
            _ => {}
        }
    }
    out.deployments
        .sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
    Ok(out)
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

async fn apply_one(
    client: &Client,
    key: ChildKey,
    object: Object,
) -> Result<(ChildKey, DynamicObject, Option<String>), Error> {
    let api = key.api(client.clone());
    let body = object.to_json();
    let params = PatchParams::apply(FIELD_MANAGER);
    let failed = |source| Error::Apply {
        kind: key.kind.name(),
        name: key.name.clone(),
        source,
    };
    match api.patch(&key.name, &params, &Patch::Apply(&body)).await {
        Ok(written) => Ok((key, written, None)),
        Err(kube::Error::Api(e)) if e.code == 409 => {
            let written = api
                .patch(&key.name, &params.clone().force(), &Patch::Apply(&body))
                .await
                .map_err(failed)?;
            Ok((key, written, Some(e.message)))
        }
        Err(e) => Err(failed(e)),
    }
}

/// Deletes the objects in `existing` that are not `wanted`, never the
/// namespace (that goes only with the environment). Returns what went.
pub async fn prune(
    client: &Client,
    existing: Vec<ChildKey>,
    wanted: &BTreeSet<ChildKey>,
    ledger: &mut Ledger,
) -> Result<Vec<ChildKey>, Error> {
    let extra: Vec<ChildKey> = existing
        .into_iter()
        .filter(|k| k.kind != Kind::Namespace && !wanted.contains(k))
        .collect();
    let params = DeleteParams {
        propagation_policy: Some(PropagationPolicy::Background),
        ..DeleteParams::default()
    };
    for key in &extra {
        match key.api(client.clone()).delete(&key.name, &params).await {
            Ok(_) => {}
            Err(kube::Error::Api(e)) if e.code == 404 => {}
            Err(source) => {
                return Err(Error::Apply {
                    kind: key.kind.name(),
                    name: key.name.clone(),
                    source,
                });
            }
        }
        ledger.remove(key);
    }
    Ok(extra)
}
