//! Berth's controller: turns each `Environment` into its namespace and the
//! objects in it, keeps them as built, and reports how they are doing.
//!
//! [`run`] elects a leader among the replicas (a Lease, see [`leader`]); the
//! leader installs the CRD and the `berth-tenant-*` ClusterRoles by
//! server-side apply, then reconciles until it loses the lease or is told to
//! stop. A reconcile (see `reconcile`) parses the spec, which the API wrote
//! fully resolved (it never looks templates or policy up), builds the
//! objects with `berth_manifests::build`, applies them one by one (field
//! manager `berth`; an object the apiserver refuses is reported and stops
//! nothing else), prunes the ones no longer built, and writes the status;
//! deletion goes through a finalizer that removes the namespace, only ever
//! one Berth made. Only the Environments matching
//! [`ControllerOptions::selector`] are watched, and so reconciled.

mod admission;
mod apply;
mod autoscalers;
mod children;
mod error;
mod identities;
pub mod leader;
mod metrics;
mod reconcile;
mod status;
mod ttl;

pub use admission::AdmissionPolicies;
pub use error::Error;
pub use leader::LeaseOptions;
pub use metrics::Metrics;
pub use reconcile::FINALIZER;

use autoscalers::Autoscalers;
use berth_core::environment::ReservedNames;
use berth_manifests::{Environment, GuardrailOptions, cluster_roles, users_namespace};
use children::Children;
use futures::StreamExt;
use identities::Identities;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{ListParams, Patch, PatchParams};
use kube::runtime::controller::{Config, Controller};
use kube::runtime::events::{Recorder, Reporter};
use kube::runtime::reflector::store::Writer;
use kube::runtime::wait::{await_condition, conditions};
use kube::runtime::{Predicate, WatchStreamExt, predicates, watcher};
use kube::{Api, Client, CustomResourceExt, Resource, ResourceExt};
use std::future::Future;
use std::pin::pin;
use std::sync::Arc;
use std::time::Duration;

#[derive(Debug, Clone)]
pub struct ControllerOptions {
    /// Cluster facts the builder needs (ingress domain and class, ingress
    /// controller namespace); `owner_uid` is set per environment.
    pub build: berth_manifests::BuildOptions,
    pub lease: LeaseOptions,
    /// Environments reconciled at once.
    pub concurrency: u16,
    /// Apply the CRD at start (needs rights on CRDs); without it, the CRD
    /// must have been installed (`berth crd | kubectl apply -f -`).
    pub install_crd: bool,
    /// Whether the leader applies the admission policies and guardrails or
    /// only checks those installed (by the Helm chart).
    pub admission_policies: AdmissionPolicies,
    /// Reconcile only the Environments matching this label selector (the
    /// Environment watch's): for sharding, and so that test runs sharing a
    /// cluster stay apart.
    pub selector: Option<String>,
    /// What the tenant guardrails allow beyond their fixed rules; their
    /// ingress domain is always `build`'s.
    pub guardrails: GuardrailOptions,
}

impl ControllerOptions {
    pub fn new(identity: impl Into<String>) -> Self {
        Self {
            build: berth_manifests::BuildOptions::default(),
            lease: LeaseOptions::new(identity),
            concurrency: 32,
            install_crd: true,
            admission_policies: AdmissionPolicies::Apply,
            guardrails: GuardrailOptions::default(),
            selector: None,
        }
    }
}

/// Runs the controller until `shutdown` completes: waits to lead, reconciles
/// while leading, and goes back to waiting when the lease is lost. On
/// shutdown the lease is released so that another replica takes over at once.
pub async fn run(
    client: Client,
    options: ControllerOptions,
    metrics: Metrics,
    shutdown: impl Future<Output = ()>,
) -> Result<(), Error> {
    let mut shutdown = pin!(shutdown);
    let mut elector = leader::Elector::new(client.clone(), options.lease.clone());
    loop {
        tokio::select! {
            () = &mut shutdown => return Ok(()),
            () = elector.acquire() => {}
        }
        metrics.set_leader(true);
        let outcome = tokio::select! {
            () = &mut shutdown => {
                elector.release().await;
                metrics.set_leader(false);
                return Ok(());
            }
            () = elector.hold() => Ok(()),
            result = lead(client.clone(), options.clone(), metrics.clone()) => result,
        };
        // Leaving the select dropped the controller: its reconciles are
        // aborted, so nothing is written once the lease may be someone else's.
        metrics.set_leader(false);
        if let Err(error) = outcome {
            tracing::error!(%error, "the controller stopped; releasing the lease and retrying");
            elector.release().await;
            tokio::time::sleep(Duration::from_secs(2)).await;
        }
    }
}

/// What the leader does: install what the environments need, then reconcile.
async fn lead(client: Client, options: ControllerOptions, metrics: Metrics) -> Result<(), Error> {
    if options.install_crd {
        install_crd(&client).await?;
    }
    install_cluster_roles(&client).await?;
    install_users_namespace(&client).await?;
    admission::install(
        &client,
        options.install_crd,
        options.admission_policies,
        &ReservedNames::new(&options.build.ingress_controller_namespace, &[]),
        &GuardrailOptions {
            ingress_domain: options.build.ingress_domain.clone(),
            ..options.guardrails.clone()
        },
    )
    .await?;

    let mut config = watcher::Config::default();
    if let Some(selector) = &options.selector {
        check_selector(&client, selector).await?;
        config = config.labels(selector);
    }
    let (children, triggers) = Children::watch(&client);
    let (autoscalers, autoscaler_trigger) = Autoscalers::watch(&client);
    let (identities, identity_trigger) = Identities::watch(&client);
    let writer = Writer::<Environment>::new(());
    let reader = writer.as_reader();
    let listed = reader.clone();
    // Status writes (the controller's own) change neither generation nor
    // finalizers, so they wake nothing; spec changes, deletion (which bumps
    // a custom resource's generation) and finalizer changes do. Children of
    // an environment outside the selector wake nothing either: the
    // controller finds no such environment in its store and skips it.
    let environments = watcher(Api::<Environment>::all(client.clone()), config)
        .default_backoff()
        .reflect(writer)
        .applied_objects()
        .predicate_filter(
            predicates::generation.combine(predicates::finalizers),
            Default::default(),
        );
    let mut controller = Controller::for_stream(environments, reader)
        .with_config(Config::default().concurrency(options.concurrency));
    for (trigger, resource) in triggers {
        controller = controller.watches_stream_with(
            trigger,
            |meta| children::environment_of(&meta),
            resource,
        );
    }
    controller = controller.watches_stream(autoscaler_trigger, autoscalers::environment_of);
    controller = controller.watches_stream(identity_trigger, move |account| {
        identities::environments_of(&account, &listed)
    });
    let context = Arc::new(reconcile::Context {
        recorder: Recorder::new(
            client.clone(),
            Reporter {
                controller: "berth-controller".into(),
                instance: Some(options.lease.identity.clone()),
            },
        ),
        client,
        metrics,
        children,
        autoscalers,
        identities,
        failures: Default::default(),
        ledgers: Default::default(),
        warned: Default::default(),
        options,
    });
    tracing::info!("reconciling environments");
    controller
        .run(reconcile::reconcile, reconcile::error_policy, context)
        .for_each(|result| async move {
            if let Err(error) = result {
                tracing::debug!(%error, "controller event");
            }
        })
        .await;
    Ok(())
}

/// Fails at once on a selector the apiserver cannot parse, which the
/// Environment watch would otherwise retry forever while reconciling nothing.
async fn check_selector(client: &Client, selector: &str) -> Result<(), Error> {
    let params = ListParams::default().labels(selector).limit(1);
    match Api::<Environment>::all(client.clone())
        .list_metadata(&params)
        .await
    {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(status)) if status.code == 400 => Err(Error::Selector {
            selector: selector.to_owned(),
            source: kube::Error::Api(status),
        }),
        Err(e) => Err(e.into()),
    }
}

async fn install_crd(client: &Client) -> Result<(), Error> {
    let api: Api<CustomResourceDefinition> = Api::all(client.clone());
    let crd = Environment::crd();
    let name = crd.name_any();
    api.patch(
        &name,
        &PatchParams::apply(apply::FIELD_MANAGER).force(),
        &Patch::Apply(&crd),
    )
    .await?;
    tokio::time::timeout(
        Duration::from_secs(30),
        await_condition(api, &name, conditions::is_crd_established()),
    )
    .await
    .map_err(|_| Error::CrdNotEstablished(format!("{name} not established after 30 s")))?
    .map_err(|e| Error::CrdNotEstablished(e.to_string()))?;
    Ok(())
}

/// Makes the namespace of users' identities, which the API fills; made here
/// too so that the identities' watch has a namespace to watch from the start.
async fn install_users_namespace(client: &Client) -> Result<(), Error> {
    let api: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(client.clone());
    let namespace = users_namespace();
    let mut body = serde_json::to_value(&namespace).map_err(kube::Error::SerdeError)?;
    body["apiVersion"] = "v1".into();
    body["kind"] = "Namespace".into();
    api.patch(
        &namespace.name_any(),
        &PatchParams::apply(apply::FIELD_MANAGER),
        &Patch::Apply(&body),
    )
    .await?;
    Ok(())
}

/// Applies the tenant ClusterRoles where they differ from this version's.
/// The Helm chart installs them itself and grants Berth only `bind` on
/// them (with `escalate` and `update`, whoever took over Berth's pod could
/// give the tenant roles, and through aggregation `view`, every right), so
/// under the chart the leader finds them as they should be and writes
/// nothing.
async fn install_cluster_roles(client: &Client) -> Result<(), Error> {
    let api: Api<k8s_openapi::api::rbac::v1::ClusterRole> = Api::all(client.clone());
    for role in cluster_roles() {
        if let Some(existing) = api.get_opt(&role.name_any()).await?
            && existing.rules == role.rules
            && existing.aggregation_rule == role.aggregation_rule
        {
            continue;
        }
        let mut body = serde_json::to_value(&role).map_err(kube::Error::SerdeError)?;
        body["apiVersion"] = k8s_openapi::api::rbac::v1::ClusterRole::api_version(&()).into();
        body["kind"] = k8s_openapi::api::rbac::v1::ClusterRole::kind(&()).into();
        api.patch(
            &role.name_any(),
            &PatchParams::apply(apply::FIELD_MANAGER).force(),
            &Patch::Apply(&body),
        )
        .await?;
    }
    Ok(())
}
