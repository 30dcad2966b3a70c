//! The kinds of object an environment is made of, and the controller's view
//! of the ones that exist: one metadata-only watch per kind, filtered to
//! Berth's label and stripped of managed fields, which both wakes the
//! environment an object belongs to and answers "what is there to prune".

use berth_manifests::{ENVIRONMENT_LABEL, Environment, MANAGED_BY_LABEL, MANAGED_BY_VALUE, Object};
use futures::Stream;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{LimitRange, Namespace, ResourceQuota, Service, ServiceAccount};
use k8s_openapi::api::networking::v1::{Ingress, NetworkPolicy};
use k8s_openapi::api::rbac::v1::RoleBinding;
use kube::api::{ApiResource, DynamicObject, PartialObjectMeta};
use kube::runtime::reflector::{ObjectRef, Store, store::Writer};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client, ResourceExt};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    Namespace,
    ResourceQuota,
    LimitRange,
    NetworkPolicy,
    /// Never built any more: watched so that the member ServiceAccounts
    /// namespaces held before identities moved to `berth-users` are pruned.
    ServiceAccount,
    RoleBinding,
    Deployment,
    Service,
    Ingress,
}

impl Kind {
    pub const ALL: [Kind; 9] = [
        Kind::Namespace,
        Kind::ResourceQuota,
        Kind::LimitRange,
        Kind::NetworkPolicy,
        Kind::ServiceAccount,
        Kind::RoleBinding,
        Kind::Deployment,
        Kind::Service,
        Kind::Ingress,
    ];

    /// The kind of a built object; `None` for the cluster-wide roles, which
    /// belong to no environment.
    pub fn of(object: &Object) -> Option<Kind> {
        Some(match object {
            Object::Namespace(_) => Kind::Namespace,
            Object::ResourceQuota(_) => Kind::ResourceQuota,
            Object::LimitRange(_) => Kind::LimitRange,
            Object::NetworkPolicy(_) => Kind::NetworkPolicy,
            Object::RoleBinding(_) => Kind::RoleBinding,
            Object::Deployment(_) => Kind::Deployment,
            Object::Service(_) => Kind::Service,
            Object::Ingress(_) => Kind::Ingress,
            Object::ClusterRole(_) => return None,
        })
    }

    pub fn api_resource(self) -> ApiResource {
        match self {
            Kind::Namespace => ApiResource::erase::<Namespace>(&()),
            Kind::ResourceQuota => ApiResource::erase::<ResourceQuota>(&()),
            Kind::LimitRange => ApiResource::erase::<LimitRange>(&()),
            Kind::NetworkPolicy => ApiResource::erase::<NetworkPolicy>(&()),
            Kind::ServiceAccount => ApiResource::erase::<ServiceAccount>(&()),
            Kind::RoleBinding => ApiResource::erase::<RoleBinding>(&()),
            Kind::Deployment => ApiResource::erase::<Deployment>(&()),
            Kind::Service => ApiResource::erase::<Service>(&()),
            Kind::Ingress => ApiResource::erase::<Ingress>(&()),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Kind::Namespace => "Namespace",
            Kind::ResourceQuota => "ResourceQuota",
            Kind::LimitRange => "LimitRange",
            Kind::NetworkPolicy => "NetworkPolicy",
            Kind::ServiceAccount => "ServiceAccount",
            Kind::RoleBinding => "RoleBinding",
            Kind::Deployment => "Deployment",
            Kind::Service => "Service",
            Kind::Ingress => "Ingress",
        }
    }
}

/// One object of an environment, by kind, namespace and name.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ChildKey {
    pub kind: Kind,
    pub namespace: Option<String>,
    pub name: String,
}

impl ChildKey {
    pub fn of(kind: Kind, object: &Object) -> Self {
        Self {
            kind,
            namespace: object.metadata().namespace.clone(),
            name: object.name().to_owned(),
        }
    }

    /// A dynamic client for this object's kind, in its namespace.
    pub fn api(&self, client: Client) -> Api<DynamicObject> {
        let resource = self.kind.api_resource();
        match &self.namespace {
            Some(ns) => Api::namespaced_with(client, ns, &resource),
            None => Api::all_with(client, &resource),
        }
    }
}

impl std::fmt::Display for ChildKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.kind.name(), self.name)
    }
}

type Meta = PartialObjectMeta<DynamicObject>;
pub type Trigger = std::pin::Pin<Box<dyn Stream<Item = Result<Meta, watcher::Error>> + Send>>;

/// What exists of every environment, as the metadata watches last saw it.
#[derive(Clone)]
pub struct Children {
    stores: Vec<(Kind, Store<Meta>)>,
}

impl Children {
    /// The stores and, for each kind, the watch stream that fills its store;
    /// the controller must poll the streams (they are its triggers).
    pub fn watch(client: &Client) -> (Self, Vec<(Trigger, ApiResource)>) {
        let selector = format!("{MANAGED_BY_LABEL}={MANAGED_BY_VALUE}");
        let mut stores = Vec::new();
        let mut triggers = Vec::new();
        for kind in Kind::ALL {
            let resource = kind.api_resource();
            let writer = Writer::<Meta>::new(resource.clone());
            stores.push((kind, writer.as_reader()));
            // An Api of PartialObjectMeta lists and watches metadata only.
            let api = Api::<Meta>::all_with(client.clone(), &resource);
            let stream = watcher(api, watcher::Config::default().labels(&selector))
                .default_backoff()
                .modify(|meta| meta.managed_fields_mut().clear())
                .reflect(writer)
                .touched_objects();
            triggers.push((Box::pin(stream) as Trigger, resource));
        }
        (Self { stores }, triggers)
    }

    /// Every object labelled as part of `environment`.
    pub fn of(&self, environment: &str) -> Vec<ChildKey> {
        let mut found = Vec::new();
        for (kind, store) in &self.stores {
            for meta in store.state() {
                if meta.labels().get(ENVIRONMENT_LABEL).map(String::as_str) == Some(environment) {
                    found.push(ChildKey {
                        kind: *kind,
                        namespace: meta.namespace(),
                        name: meta.name_any(),
                    });
                }
            }
        }
        found
    }
}

/// The Environment an object of Berth's belongs to, by its label: owner
/// references cannot say it, since kube-rs maps a namespaced child's owner
/// into the child's namespace, where no cluster-scoped Environment is found.
pub fn environment_of(meta: &Meta) -> Option<ObjectRef<Environment>> {
    meta.labels()
        .get(ENVIRONMENT_LABEL)
        .map(|name| ObjectRef::new(name))
}
