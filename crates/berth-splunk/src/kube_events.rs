//! The Kubernetes events of Berth's namespaces, into the outbox.
//!
//! Every replica watches and queues; each event is queued once all the same,
//! as its outbox id is its uid and count (or resourceVersion), which the
//! outbox's unique constraint keeps to one row across relists, restarts and
//! replicas.

use crate::event::{SOURCE_KUBERNETES, body, millis};
use crate::port::OutboxStore;
use berth_manifests::{ENVIRONMENT_LABEL, MANAGED_BY_LABEL, MANAGED_BY_VALUE};
use berth_store::NewOutboxEvent;
use futures::StreamExt;
use k8s_openapi::api::core::v1::{Event, Namespace};
use kube::Api;
use kube::runtime::{WatchStreamExt, watcher};
use serde_json::json;
use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

/// How long a namespace's being managed (or not) is believed.
const MANAGED_TTL: Duration = Duration::from_secs(300);
const UNMANAGED_TTL: Duration = Duration::from_secs(10);

/// The outbox row of `event`, which happened in the namespace of the
/// environment `environment`; `None` when the event has no uid.
pub fn kubernetes_event(event: &Event, environment: &str) -> Option<NewOutboxEvent> {
    let uid = event.metadata.uid.as_deref()?;
    let namespace = event.metadata.namespace.clone().unwrap_or_default();
    // A repeat of an event raises its count: a new occurrence, a new row.
    let occurrence = event
        .count
        .map(|c| c.to_string())
        .or_else(|| {
            event
                .series
                .as_ref()
                .and_then(|s| s.count)
                .map(|c| c.to_string())
        })
        .or_else(|| event.metadata.resource_version.clone())
        .unwrap_or_default();
    let event_id = format!("k8s:{uid}:{occurrence}");
    let at = event
        .last_timestamp
        .as_ref()
        .map(|t| t.0)
        .or_else(|| event.event_time.as_ref().map(|t| t.0))
        .or_else(|| event.first_timestamp.as_ref().map(|t| t.0))
        .or_else(|| event.metadata.creation_timestamp.as_ref().map(|t| t.0));
    let time_ms = at.map_or_else(
        || millis(time::OffsetDateTime::now_utc()),
        |at| at.as_millisecond(),
    );
    let involved = &event.involved_object;
    let mut fields = BTreeMap::from([
        ("event_id".to_owned(), event_id.clone()),
        ("environment".to_owned(), environment.to_owned()),
        ("namespace".to_owned(), namespace.clone()),
    ]);
    for (key, value) in [
        ("reason", &event.reason),
        ("type", &event.type_),
        ("involved_kind", &involved.kind),
    ] {
        if let Some(value) = value {
            fields.insert(key.to_owned(), value.clone());
        }
    }
    let body = body(
        time_ms,
        json!({
            "namespace": namespace,
            "name": event.metadata.name,
            "type": event.type_,
            "reason": event.reason,
            "message": event.message,
            "count": event.count,
            "involvedObject": {
                "kind": involved.kind,
                "name": involved.name,
                "namespace": involved.namespace,
                "uid": involved.uid,
            },
            "source": event.source.as_ref().and_then(|s| s.component.clone()),
            "reportingController": event.reporting_component,
        }),
        fields,
    );
    Some(NewOutboxEvent {
        event_id,
        source: SOURCE_KUBERNETES.into(),
        body,
    })
}

/// Watches the events of every namespace and queues those of namespaces
/// Berth manages, until `shutdown` completes. The watch resumes by itself
/// after errors (with backoff).
pub async fn forward_kubernetes_events<S: OutboxStore>(
    client: kube::Client,
    store: S,
    shutdown: impl Future<Output = ()> + Send,
) {
    let events = watcher(
        Api::<Event>::all(client.clone()),
        watcher::Config::default(),
    )
    .default_backoff()
    .applied_objects();
    let mut events = std::pin::pin!(events);
    let mut shutdown = std::pin::pin!(shutdown);
    let namespaces = Api::<Namespace>::all(client);
    let mut managed = HashMap::<String, (Option<String>, Instant)>::new();
    loop {
        let event = tokio::select! {
            () = &mut shutdown => return,
            next = events.next() => match next {
                Some(Ok(event)) => event,
                Some(Err(e)) => {
                    tracing::debug!(error = %e, "watch of Kubernetes events interrupted; resuming");
                    continue;
                }
                None => return,
            },
        };
        let Some(namespace) = event.metadata.namespace.clone() else {
            continue;
        };
        let Some(environment) = environment_of(&namespaces, &mut managed, &namespace).await else {
            continue;
        };
        let Some(queued) = kubernetes_event(&event, &environment) else {
            continue;
        };
        if let Err(e) = store.enqueue(&[queued]).await {
            tracing::warn!(error = %e, namespace, "could not queue a Kubernetes event for Splunk");
        }
    }
}

/// The environment whose namespace `namespace` is, if Berth manages it.
async fn environment_of(
    namespaces: &Api<Namespace>,
    cache: &mut HashMap<String, (Option<String>, Instant)>,
    namespace: &str,
) -> Option<String> {
    if let Some((environment, at)) = cache.get(namespace) {
        let ttl = if environment.is_some() {
            MANAGED_TTL
        } else {
            UNMANAGED_TTL
        };
        if at.elapsed() < ttl {
            return environment.clone();
        }
    }
    let environment = match namespaces.get_opt(namespace).await {
        Ok(found) => found.and_then(|ns| {
            let labels = ns.metadata.labels.unwrap_or_default();
            (labels.get(MANAGED_BY_LABEL).map(String::as_str) == Some(MANAGED_BY_VALUE))
                .then(|| labels.get(ENVIRONMENT_LABEL).cloned())
                .flatten()
        }),
        Err(e) => {
            tracing::debug!(error = %e, namespace, "could not read a namespace");
            return None;
        }
    };
    if cache.len() > 10_000 {
        cache.clear();
    }
    cache.insert(namespace.to_owned(), (environment.clone(), Instant::now()));
    environment
}
