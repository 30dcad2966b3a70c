//! The Environment CRD in the shared cluster, for tests that send
//! Environments to the apiserver.

use anyhow::{Context, Result, bail};
use berth_manifests::Environment;
use berth_testkit::eventually;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Patch, PatchParams, PostParams};
use kube::runtime::wait::{await_condition, conditions};
use kube::{Api, Client, CustomResourceExt};
use serde_json::{Value, json};
use std::time::Duration;

/// How long the apiserver may take to serve a changed CRD's schema.
const SCHEMA_PROPAGATION: Duration = Duration::from_secs(30);

/// Applies this build's Environment CRD as the controller does, and waits
/// until the apiserver validates with its schema (a CPU of `lots` refused).
pub async fn install(client: &Client) -> Result<()> {
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    let crd = Environment::crd();
    let name = crd.metadata.name.clone().context("a CRD has a name")?;
    crds.patch(
        &name,
        &PatchParams::apply("berth").force(),
        &Patch::Apply(&crd),
    )
    .await
    .context("applying the Environment CRD")?;
    tokio::time::timeout(
        SCHEMA_PROPAGATION,
        await_condition(crds, &name, conditions::is_crd_established()),
    )
    .await
    .context("the Environment CRD was not established")??;
    eventually(SCHEMA_PROPAGATION, || async {
        match dry_run(client, "schema-canary", &json!({"quota": {"cpu": "lots"}})).await {
            Err(_) => Ok(()),
            Ok(()) => bail!("the apiserver still accepts a CPU of 'lots'"),
        }
    })
    .await
}

/// Creates the Environment `name` with `spec` as a server-side dry run;
/// `Err` carries the apiserver's refusal.
pub async fn dry_run(client: &Client, name: &str, spec: &Value) -> Result<(), kube::Error> {
    let environment: Environment = serde_json::from_value(json!({
        "apiVersion": "berth.dev/v1alpha1", "kind": "Environment",
        "metadata": {"name": name}, "spec": spec,
    }))
    .map_err(kube::Error::SerdeError)?;
    dry_run_environment(client, &environment).await
}

/// Creates `environment` as a server-side dry run.
pub async fn dry_run_environment(
    client: &Client,
    environment: &Environment,
) -> Result<(), kube::Error> {
    let params = PostParams {
        dry_run: true,
        ..PostParams::default()
    };
    Api::<Environment>::all(client.clone())
        .create(&params, environment)
        .await
        .map(drop)
}
