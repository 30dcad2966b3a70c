//! HorizontalPodAutoscalers that people add to their environments. An app
//! whose Deployment one of them scales leaves its replica count to it: Berth
//! applies that Deployment without `spec.replicas`, so server-side apply
//! neither fights the autoscaler over the field nor reports its changes as
//! drift. One watch of every HPA keeps them at hand (a reconcile asks the
//! apiserver nothing for them) and wakes the environment of the namespace
//! an HPA appears in, changes in or leaves.

use berth_manifests::{Environment, Object};
use futures::Stream;
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use kube::runtime::reflector::{ObjectRef, Store, store::Writer};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client, ResourceExt};
use std::collections::BTreeSet;
use std::pin::Pin;

/// The HPA watch: the controller must poll it (it is a trigger too).
pub type Trigger =
    Pin<Box<dyn Stream<Item = Result<HorizontalPodAutoscaler, watcher::Error>> + Send>>;

/// Every HPA of the cluster, as the watch last saw it.
#[derive(Clone)]
pub struct Autoscalers {
    store: Store<HorizontalPodAutoscaler>,
}

impl Autoscalers {
    /// The store and the watch stream that fills it.
    pub fn watch(client: &Client) -> (Self, Trigger) {
        let writer = Writer::default();
        let store = writer.as_reader();
        let stream = watcher(
            Api::<HorizontalPodAutoscaler>::all(client.clone()),
            watcher::Config::default(),
        )
        .default_backoff()
        .modify(|hpa| {
            // Only the target is read: the rest need not stay in memory.
            hpa.managed_fields_mut().clear();
            hpa.status = None;
        })
        .reflect(writer)
        .touched_objects();
        (Self { store }, Box::pin(stream))
    }

    /// The Deployments that an HPA in `namespace` scales, by name.
    pub fn deployments_in(&self, namespace: &str) -> BTreeSet<String> {
        self.store
            .state()
            .iter()
            .filter(|hpa| hpa.namespace().as_deref() == Some(namespace))
            .filter_map(|hpa| scaled_deployment(hpa).map(ToOwned::to_owned))
            .collect()
    }
}

/// The name of the Deployment `hpa` scales, if it scales one.
fn scaled_deployment(hpa: &HorizontalPodAutoscaler) -> Option<&str> {
    let target = &hpa.spec.as_ref()?.scale_target_ref;
    let apps = target
        .api_version
        .as_deref()
        .is_none_or(|v| v.starts_with("apps/"));
    (apps && target.kind == "Deployment").then_some(target.name.as_str())
}

/// The environment whose namespace holds `hpa`: they share their name.
pub fn environment_of(hpa: HorizontalPodAutoscaler) -> Option<ObjectRef<Environment>> {
    hpa.namespace().map(|namespace| ObjectRef::new(&namespace))
}

/// Leaves the replica count of the Deployments named in `autoscaled` out of
/// `objects`, for their autoscalers to decide.
pub fn leave_replicas(objects: &mut [Object], autoscaled: &BTreeSet<String>) {
    for object in objects {
        if let Object::Deployment(deployment) = object
            && deployment
                .metadata
                .name
                .as_ref()
                .is_some_and(|name| autoscaled.contains(name))
            && let Some(spec) = deployment.spec.as_mut()
        {
            spec.replicas = None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::apps::v1::{Deployment, DeploymentSpec};
    use k8s_openapi::api::autoscaling::v2::{
        CrossVersionObjectReference, HorizontalPodAutoscalerSpec,
    };
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    fn hpa(api_version: Option<&str>, kind: &str, name: &str) -> HorizontalPodAutoscaler {
        HorizontalPodAutoscaler {
            spec: Some(HorizontalPodAutoscalerSpec {
                scale_target_ref: CrossVersionObjectReference {
                    api_version: api_version.map(Into::into),
                    kind: kind.into(),
                    name: name.into(),
                },
                max_replicas: 5,
                ..HorizontalPodAutoscalerSpec::default()
            }),
            ..HorizontalPodAutoscaler::default()
        }
    }

    fn deployment(name: &str, replicas: i32) -> Object {
        Object::Deployment(Deployment {
            metadata: ObjectMeta {
                name: Some(name.into()),
                ..ObjectMeta::default()
            },
            spec: Some(DeploymentSpec {
                replicas: Some(replicas),
                ..DeploymentSpec::default()
            }),
            ..Deployment::default()
        })
    }

    #[test]
    fn only_deployments_are_targets() {
        assert_eq!(
            scaled_deployment(&hpa(Some("apps/v1"), "Deployment", "web")),
            Some("web")
        );
        assert_eq!(
            scaled_deployment(&hpa(None, "Deployment", "web")),
            Some("web")
        );
        assert_eq!(
            scaled_deployment(&hpa(Some("apps/v1"), "StatefulSet", "db")),
            None
        );
        assert_eq!(
            scaled_deployment(&hpa(Some("example.com/v1"), "Deployment", "web")),
            None
        );
    }

    #[test]
    fn an_autoscaled_deployment_is_applied_without_replicas() {
        let mut objects = vec![deployment("web", 2), deployment("api", 3)];
        leave_replicas(&mut objects, &BTreeSet::from(["web".to_owned()]));
        let replicas: Vec<_> = objects
            .iter()
            .map(|o| o.to_json()["spec"].get("replicas").cloned())
            .collect();
        assert_eq!(replicas, [None, Some(3.into())]);
    }
}
