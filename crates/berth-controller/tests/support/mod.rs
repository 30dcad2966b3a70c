//! One controller for the whole test process, on a runtime of its own (a
//! client is bound to the runtime it was made on, and each test has its own),
//! reconciling only the Environments of this test run so that runs sharing
//! the cluster stay apart.

#![allow(dead_code)]

use anyhow::{Context, Result, anyhow, bail};
use berth_controller::{ControllerOptions, Metrics};
use berth_manifests::{Environment, Phase};
use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::api::events::v1::Event;
use kube::api::{DeleteParams, ListParams, Patch, PatchParams};
use kube::{Api, Client, ResourceExt};
use std::sync::OnceLock;
use std::time::Duration;

pub const RUN_LABEL: &str = "berth.dev/test-run";

static RUN: OnceLock<String> = OnceLock::new();

/// Starts the controller once and returns this run's label value. Panics
/// with the reason when the local cluster cannot be had: never a skip.
pub fn run_id() -> &'static str {
    RUN.get_or_init(|| {
        let id = berth_testkit::unique_name("run");
        let (tx, rx) = std::sync::mpsc::channel();
        let run = id.clone();
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Runtime::new().expect("a Tokio runtime");
            runtime.block_on(async move {
                let cluster = match berth_testkit::cluster().await {
                    Ok(c) => c,
                    Err(e) => {
                        let _ = tx.send(Err(format!("{e:#}")));
                        return;
                    }
                };
                let _ = tx.send(Ok(()));
                let mut options = ControllerOptions::new(format!("test-{run}"));
                options.lease.name = format!("berth-test-{run}");
                options.selector = Some(format!("{RUN_LABEL}={run}"));
                let metrics = Metrics::register(&mut Default::default());
                if let Err(e) = berth_controller::run(
                    cluster.client(),
                    options,
                    metrics,
                    std::future::pending(),
                )
                .await
                {
                    eprintln!("the test controller stopped: {e}");
                }
            });
        });
        match rx.recv() {
            Ok(Ok(())) => id,
            Ok(Err(e)) => panic!("the local Kubernetes cluster is required and absent: {e}"),
            Err(_) => panic!("the test controller thread died before the cluster answered"),
        }
    })
}

pub async fn client() -> Client {
    run_id();
    berth_testkit::cluster()
        .await
        .expect("the local Kubernetes cluster")
        .client()
}

/// Applies an Environment as `kubectl apply --server-side` would.
pub async fn apply_env(
    client: &Client,
    name: &str,
    spec: serde_json::Value,
) -> Result<Environment> {
    let body = serde_json::json!({
        "apiVersion": "berth.dev/v1alpha1",
        "kind": "Environment",
        "metadata": {"name": name, "labels": {RUN_LABEL: run_id()}},
        "spec": spec,
    });
    Api::<Environment>::all(client.clone())
        .patch(
            name,
            &PatchParams::apply("kubectl").force(),
            &Patch::Apply(&body),
        )
        .await
        .with_context(|| format!("applying Environment {name}"))
}

pub async fn wait_phase(
    client: &Client,
    name: &str,
    phase: Phase,
    timeout: Duration,
) -> Result<Environment> {
    let api = Api::<Environment>::all(client.clone());
    berth_testkit::eventually(timeout, || async {
        let env = api.get(name).await?;
        let status = env.status.clone().unwrap_or_default();
        if status.phase == Some(phase) && status.observed_generation == env.metadata.generation {
            Ok(env)
        } else {
            Err(anyhow!(
                "Environment {name} is {:?}, not {phase:?}: {:?}",
                status.phase,
                status.conditions
            ))
        }
    })
    .await
}

/// Events the controller recorded about the Environment (they live in `default`).
pub async fn events(client: &Client, env: &Environment) -> Result<Vec<Event>> {
    let uid = env.uid().unwrap_or_default();
    let list = Api::<Event>::namespaced(client.clone(), "default")
        .list(&ListParams::default())
        .await?;
    Ok(list
        .items
        .into_iter()
        .filter(|e| e.regarding.as_ref().and_then(|r| r.uid.as_deref()) == Some(uid.as_str()))
        .collect())
}

/// Deletes the Environment and waits until it and its namespace are gone.
pub async fn delete_env(client: &Client, name: &str) -> Result<()> {
    let envs = Api::<Environment>::all(client.clone());
    match envs.delete(name, &DeleteParams::default()).await {
        Ok(_) => {}
        Err(kube::Error::Api(e)) if e.code == 404 => {}
        Err(e) => return Err(e.into()),
    }
    let namespaces = Api::<Namespace>::all(client.clone());
    berth_testkit::eventually(Duration::from_secs(60), || async {
        if envs.get_opt(name).await?.is_some() {
            bail!("Environment {name} still exists");
        }
        if namespaces.get_opt(name).await?.is_some() {
            bail!("namespace {name} still exists");
        }
        Ok(())
    })
    .await
}

/// Makes a user's identity for `email` as the API does (a ServiceAccount
/// `user-<id>` in `berth-users`) and returns its name.
pub async fn identity(client: &Client, email: &str) -> Result<String> {
    let email = berth_core::account::Email::parse("email", email)
        .map_err(|e| anyhow!("{email} is not an email: {e:?}"))?;
    let id = uuid::Uuid::now_v7();
    let params = PatchParams::apply("berth").force();
    let mut namespace = serde_json::to_value(berth_manifests::users_namespace())?;
    namespace["apiVersion"] = "v1".into();
    namespace["kind"] = "Namespace".into();
    Api::<Namespace>::all(client.clone())
        .patch(
            berth_manifests::USERS_NAMESPACE,
            &params,
            &Patch::Apply(&namespace),
        )
        .await?;
    let name = berth_manifests::user_service_account_name(id);
    let mut account = serde_json::to_value(berth_manifests::user_service_account(id, &email))?;
    account["apiVersion"] = "v1".into();
    account["kind"] = "ServiceAccount".into();
    Api::<k8s_openapi::api::core::v1::ServiceAccount>::namespaced(
        client.clone(),
        berth_manifests::USERS_NAMESPACE,
    )
    .patch(&name, &params, &Patch::Apply(&account))
    .await
    .context("making a user's identity")?;
    Ok(name)
}

/// The identities of `emails` as the controller sees them in `berth-users`.
pub async fn identities_of(
    client: &Client,
    emails: &[&str],
) -> Result<std::collections::BTreeMap<String, Vec<String>>> {
    let accounts = Api::<k8s_openapi::api::core::v1::ServiceAccount>::namespaced(
        client.clone(),
        berth_manifests::USERS_NAMESPACE,
    )
    .list(&ListParams::default())
    .await?;
    let mut found = std::collections::BTreeMap::<String, Vec<String>>::new();
    for account in accounts {
        if let Some(email) = account.annotations().get(berth_manifests::EMAIL_ANNOTATION)
            && emails.contains(&email.as_str())
        {
            found
                .entry(email.clone())
                .or_default()
                .push(account.name_any());
        }
    }
    for names in found.values_mut() {
        names.sort();
    }
    Ok(found)
}
