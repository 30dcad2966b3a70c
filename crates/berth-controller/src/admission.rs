//! Installs the admin policy's enforcement in the apiserver: the
//! `EnvironmentPolicy` CRD, and the ValidatingAdmissionPolicy with its
//! binding (see `berth_manifests::admission_policy`), which exempts the
//! identity Berth runs as. Berth's API publishes the `EnvironmentPolicy`
//! object itself, from its store; until it has, the default policy stands
//! in, since without its parameters the binding refuses every write, Berth's
//! own included (the controller could not even remove its finalizer).
//! Also the tenant guardrails on the namespaces Berth manages (see
//! `berth_manifests::guardrails`), exempting the same identity.

use crate::Error;
use crate::apply::FIELD_MANAGER;
use berth_core::environment::{Policy, ReservedNames};
use berth_manifests::{
    EnvironmentPolicy, GuardrailOptions, admission_policy, admission_policy_binding, guardrails,
};
use k8s_openapi::api::admissionregistration::v1::{
    ValidatingAdmissionPolicy, ValidatingAdmissionPolicyBinding,
};
use k8s_openapi::api::authentication::v1::SelfSubjectReview;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Patch, PatchParams, PostParams};
use kube::runtime::wait::{await_condition, conditions};
use kube::{Api, Client, CustomResourceExt, ResourceExt};
use serde::Deserialize;
use std::time::Duration;

/// The part of a SelfSubjectReview's answer Berth needs.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Review {
    user_info: UserInfo,
}

#[derive(Deserialize)]
struct UserInfo {
    username: String,
}

/// The username the apiserver knows `client` by (a SelfSubjectReview):
/// the one writer the admission policy lets through.
async fn berth_username(client: &Client) -> Result<String, Error> {
    let review = Api::<SelfSubjectReview>::all(client.clone())
        .create(&PostParams::default(), &SelfSubjectReview::default())
        .await?;
    // An answer without a username is one Berth cannot read.
    let status = serde_json::to_value(review.status).map_err(kube::Error::SerdeError)?;
    let review: Review = serde_json::from_value(status).map_err(kube::Error::SerdeError)?;
    Ok(review.user_info.username)
}

/// Applies, by server-side apply (field manager `berth`), the
/// `EnvironmentPolicy` CRD when `install_crd` (waiting until it is served),
/// then the admission policy exempting this client's identity and its
/// binding, the default policy's object if none was published yet (with
/// `reserved` names), and the tenant guardrails. Idempotent: every
/// replica's leader may run it.
pub(crate) async fn install(
    client: &Client,
    install_crd: bool,
    reserved: &ReservedNames,
    guardrail_options: &GuardrailOptions,
) -> Result<(), Error> {
    let params = PatchParams::apply(FIELD_MANAGER).force();
    if install_crd {
        let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
        let crd = EnvironmentPolicy::crd();
        let name = crd.name_any();
        crds.patch(&name, &params, &Patch::Apply(&crd)).await?;
        tokio::time::timeout(
            Duration::from_secs(30),
            await_condition(crds, &name, conditions::is_crd_established()),
        )
        .await
        .map_err(|_| Error::CrdNotEstablished(format!("{name} not established after 30 s")))?
        .map_err(|e| Error::CrdNotEstablished(e.to_string()))?;
    }
    let stand_in = EnvironmentPolicy::for_policy(&Policy::default(), reserved);
    let create = PostParams {
        field_manager: Some(FIELD_MANAGER.to_owned()),
        ..PostParams::default()
    };
    match Api::<EnvironmentPolicy>::all(client.clone())
        .create(&create, &stand_in)
        .await
    {
        Ok(_) => {}
        // Published already (by the API, from the store): that one stands.
        Err(kube::Error::Api(e)) if e.code == 409 => {}
        Err(e) => return Err(e.into()),
    }
    let username = berth_username(client).await?;
    let policy = admission_policy(&username);
    Api::<ValidatingAdmissionPolicy>::all(client.clone())
        .patch(&policy.name_any(), &params, &Patch::Apply(&policy))
        .await?;
    let binding = admission_policy_binding();
    Api::<ValidatingAdmissionPolicyBinding>::all(client.clone())
        .patch(&binding.name_any(), &params, &Patch::Apply(&binding))
        .await?;
    install_guardrails(client, &params, &username, guardrail_options).await
}

/// Applies the tenant guardrails exempting `username`, with their bindings.
async fn install_guardrails(
    client: &Client,
    params: &PatchParams,
    username: &str,
    options: &GuardrailOptions,
) -> Result<(), Error> {
    let policies = Api::<ValidatingAdmissionPolicy>::all(client.clone());
    let bindings = Api::<ValidatingAdmissionPolicyBinding>::all(client.clone());
    for guardrail in guardrails(username, options) {
        let (policy, binding) = (&guardrail.policy, &guardrail.binding);
        policies
            .patch(&policy.name_any(), params, &Patch::Apply(policy))
            .await?;
        bindings
            .patch(&binding.name_any(), params, &Patch::Apply(binding))
            .await?;
    }
    Ok(())
}
