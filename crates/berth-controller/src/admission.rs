//! Installs the admin policy's enforcement in the apiserver: the
//! `EnvironmentPolicy` CRD, and the ValidatingAdmissionPolicy with its
//! binding (see `berth_manifests::admission_policy`), which exempts the
//! identity Berth runs as. Berth's API publishes the `EnvironmentPolicy`
//! object itself, from its store; until it has, the default policy stands
//! in, since without its parameters the binding refuses every write, Berth's
//! own included (the controller could not even remove its finalizer).
//! Also the tenant guardrails on the namespaces Berth manages (see
//! `berth_manifests::guardrails`), which judge Berth's writes too.

use crate::Error;
use crate::apply::FIELD_MANAGER;
use berth_core::environment::{Policy, ReservedNames};
use berth_manifests::{EnvironmentPolicy, GuardrailOptions, admission_policies};
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
/// `reserved` names), and the tenant guardrails; with
/// [`AdmissionPolicies::Verify`] the policies and guardrails are only
/// compared with what they should be. Idempotent: every replica's leader
/// may run it.
pub(crate) async fn install(
    client: &Client,
    install_crd: bool,
    policies_mode: AdmissionPolicies,
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
    let all = admission_policies(&username, guardrail_options);
    let policies = Api::<ValidatingAdmissionPolicy>::all(client.clone());
    let bindings = Api::<ValidatingAdmissionPolicyBinding>::all(client.clone());
    for (policy, binding) in &all {
        match policies_mode {
            AdmissionPolicies::Apply => {
                policies
                    .patch(&policy.name_any(), &params, &Patch::Apply(policy))
                    .await?;
                bindings
                    .patch(&binding.name_any(), &params, &Patch::Apply(binding))
                    .await?;
            }
            AdmissionPolicies::Verify => {
                verify(&policies, policy).await?;
                verify(&bindings, binding).await?;
            }
        }
    }
    Ok(())
}

/// Who writes the admission policies and the guardrails.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AdmissionPolicies {
    /// The leader applies them (it needs write rights on admission policies).
    Apply,
    /// Something else installed them (the Helm chart renders them, so that
    /// Berth's ServiceAccount holds no write right on them: no admission
    /// policy can guard writes to admission policies, so whoever took over
    /// Berth's pod could otherwise switch the guardrails to Audit). The
    /// leader only reads them and logs an error for each one missing or
    /// differing from what this version of Berth enforces.
    Verify,
}

/// Logs an error when `wanted` is missing or its spec differs from the
/// installed one, apiserver defaults aside (see [`same`]).
async fn verify<K>(api: &Api<K>, wanted: &K) -> Result<(), Error>
where
    K: kube::Resource<DynamicType = ()>
        + Clone
        + serde::de::DeserializeOwned
        + serde::Serialize
        + std::fmt::Debug,
{
    let name = wanted.name_any();
    let kind = K::kind(&()).into_owned();
    match api.get_opt(&name).await? {
        None => tracing::error!(
            kind,
            name,
            "not installed: tenants' own writes skip its rule (the chart's admissionPolicies value lists what it installs)"
        ),
        Some(installed) => {
            let installed = serde_json::to_value(&installed).map_err(kube::Error::SerdeError)?;
            let wanted = serde_json::to_value(wanted).map_err(kube::Error::SerdeError)?;
            if !same(&installed["spec"], &wanted["spec"]) {
                tracing::error!(
                    kind,
                    name,
                    "differs from what this version of Berth enforces: upgrade the chart along with the image"
                );
            }
        }
    }
    Ok(())
}

/// Fields the apiserver fills in on admission policies and their bindings
/// when left out, with the value it gives them.
fn is_default(key: &str, value: &serde_json::Value) -> bool {
    use serde_json::Value;
    match value {
        // An empty list or object is stored as none at all, and an empty
        // selector, which is what the apiserver gives, matches everything.
        Value::Array(items) => items.is_empty(),
        Value::Object(fields) => fields.is_empty(),
        Value::String(text) => matches!(
            (key, text.as_str()),
            ("matchPolicy", "Equivalent") | ("scope", "*") | ("failurePolicy", "Fail")
        ),
        _ => false,
    }
}

/// Whether `installed` is `wanted` once the apiserver's defaults are
/// accounted for: a field on one side only must be a default
/// ([`is_default`]); lists are equal item by item.
fn same(installed: &serde_json::Value, wanted: &serde_json::Value) -> bool {
    use serde_json::Value;
    match (installed, wanted) {
        (Value::Object(installed), Value::Object(wanted)) => {
            installed.keys().chain(wanted.keys()).all(|key| {
                match (installed.get(key), wanted.get(key)) {
                    (Some(i), Some(w)) => same(i, w),
                    // A selector the apiserver filled with defaults is
                    // one left out.
                    (Some(only @ Value::Object(_)), None)
                    | (None, Some(only @ Value::Object(_))) => {
                        same(only, &Value::Object(Default::default()))
                    }
                    (Some(only), None) | (None, Some(only)) => is_default(key, only),
                    (None, None) => true,
                }
            })
        }
        (Value::Array(installed), Value::Array(wanted)) => {
            installed.len() == wanted.len() && installed.iter().zip(wanted).all(|(i, w)| same(i, w))
        }
        _ => installed == wanted,
    }
}

#[cfg(test)]
mod tests {
    use super::same;
    use serde_json::json;

    #[test]
    fn defaults_added_by_the_apiserver_count_as_equal_and_changes_do_not() {
        let wanted = json!({
            "validations": [{"expression": "a"}],
            "variables": [],
            "matchConstraints": {"resourceRules": [{"resources": ["pods"]}]},
        });
        let stored = json!({
            "validations": [{"expression": "a"}],
            "failurePolicy": "Fail",
            "matchConstraints": {
                "matchPolicy": "Equivalent",
                "namespaceSelector": {},
                "objectSelector": {},
                "resourceRules": [{"resources": ["pods"], "scope": "*"}],
            },
        });
        assert!(same(&stored, &wanted));
        let mut with_defaults = stored.clone();
        with_defaults["matchResources"] =
            json!({"matchPolicy": "Equivalent", "objectSelector": {}});
        assert!(same(&with_defaults, &wanted));
        for (pointer, changed) in [
            ("/validations/0/expression", json!("b")),
            ("/validations", json!([])),
            ("/failurePolicy", json!("Ignore")),
            (
                "/matchConstraints/objectSelector",
                json!({"matchLabels": {"x": "y"}}),
            ),
            (
                "/matchConstraints/excludeResourceRules",
                json!([{"resources": ["pods"]}]),
            ),
            (
                "/matchConditions",
                json!([{"name": "off", "expression": "false"}]),
            ),
            ("/matchConstraints/resourceRules/0/scope", json!("Cluster")),
            (
                "/matchResources",
                json!({"namespaceSelector": {"matchLabels": {"x": "y"}}}),
            ),
        ] {
            let mut drifted = stored.clone();
            match pointer.rsplit_once('/') {
                Some((parent, key)) => {
                    drifted.pointer_mut(parent).unwrap()[key] = changed;
                }
                None => unreachable!(),
            }
            assert!(!same(&drifted, &wanted), "{pointer}");
        }
    }
}
