//! The admin policy in the apiserver, against the real local cluster. The
//! controller's leader installs the admission policy; the test publishes the
//! default policy as Berth's API does. An Environment written by anyone but
//! Berth (here a ServiceAccount, as kubectl or a GitOps tool would) within
//! the policy is accepted and becomes Ready; over the policy, malformed, on a
//! reserved name or with Berth's bookkeeping annotations forged, it is
//! refused with a message naming the field. Berth's own identity (the admin
//! the controller runs as) may exceed the policy, and an outsider's edit of
//! an environment above the policy passes when it leaves the bounds alone.
//!
//! Refusals are checked by server-side dry run: nothing is created.

mod support;

use anyhow::{Context, Result, anyhow, bail, ensure};
use berth_core::environment::{Policy, ReservedNames};
use berth_manifests::{
    ADMISSION_POLICY_NAME, Environment, EnvironmentPolicy, POLICY_OBJECT_NAME, Phase,
};
use berth_testkit::{TestNamespace, api_status, eventually, unique_name};
use k8s_openapi::api::admissionregistration::v1::ValidatingAdmissionPolicy;
use k8s_openapi::api::core::v1::ServiceAccount;
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding};
use kube::api::{DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::{Api, Client};
use serde_json::{Value, json};
use std::time::Duration;
use support::{RUN_LABEL, client, delete_env, run_id, wait_phase};

/// RBAC and admission policies reach the apiserver's checks through
/// informers: a fresh binding or policy may take a moment to act.
const PROPAGATION: Duration = Duration::from_secs(60);
const READY_WITHIN: Duration = Duration::from_secs(90);
/// Allows the test ServiceAccounts to write Environments, as a GitOps
/// tool's would; shared by the tests, each binding it for its own account.
const WRITER_ROLE: &str = "berth-test-environment-writer";

/// A writer that is not Berth: a ServiceAccount of a test namespace, bound
/// to [`WRITER_ROLE`], with a client holding its token.
struct Outsider {
    client: Client,
    admin: Client,
    namespace: TestNamespace,
}

impl Outsider {
    async fn new() -> Result<Self> {
        let admin = client().await;
        let cluster = berth_testkit::cluster().await?;
        publish_default_policy(&admin).await?;
        let namespace = TestNamespace::create(&cluster, "bc-outsider").await?;
        let role: ClusterRole = serde_json::from_value(json!({
            "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
            "metadata": {"name": WRITER_ROLE},
            "rules": [{"apiGroups": ["berth.dev"], "resources": ["environments"],
                       "verbs": ["get", "list", "watch", "create", "update", "patch", "delete"]}],
        }))?;
        Api::<ClusterRole>::all(admin.clone())
            .patch(
                WRITER_ROLE,
                &PatchParams::apply("berth-tests").force(),
                &Patch::Apply(&role),
            )
            .await?;
        let binding: ClusterRoleBinding = serde_json::from_value(json!({
            "metadata": {"name": namespace.name()},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": WRITER_ROLE},
            "subjects": [{"kind": "ServiceAccount", "name": "writer", "namespace": namespace.name()}],
        }))?;
        Api::<ClusterRoleBinding>::all(admin.clone())
            .create(&PostParams::default(), &binding)
            .await?;
        let accounts = Api::<ServiceAccount>::namespaced(admin.clone(), namespace.name());
        let account: ServiceAccount =
            serde_json::from_value(json!({"metadata": {"name": "writer"}}))?;
        accounts.create(&PostParams::default(), &account).await?;
        let client = cluster
            .service_account_client(namespace.name(), "writer")
            .await?;
        let environments = Api::<Environment>::all(client.clone());
        eventually(PROPAGATION, || async {
            environments.list(&ListParams::default().limit(1)).await?;
            Ok(())
        })
        .await
        .context("the test ServiceAccount never got to list Environments")?;
        Ok(Self {
            client,
            admin,
            namespace,
        })
    }

    async fn cleanup(self) -> Result<()> {
        match Api::<ClusterRoleBinding>::all(self.admin.clone())
            .delete(self.namespace.name(), &DeleteParams::default())
            .await
        {
            Ok(_) => {}
            Err(kube::Error::Api(e)) if e.code == 404 => {}
            Err(e) => return Err(e.into()),
        }
        self.namespace.delete().await
    }

    /// Checks, until the admission policy acts, that creating `name` with
    /// `spec` (and `annotations`) is refused with a message naming `field`.
    async fn refused(
        &self,
        name: &str,
        spec: Value,
        annotations: Value,
        field: &str,
    ) -> Result<String> {
        self.refused_object(environment(name, spec, annotations)?, field)
            .await
    }

    /// Like [`Self::refused`], for an Environment made by the caller.
    async fn refused_object(&self, environment: Environment, field: &str) -> Result<String> {
        let name = environment.metadata.name.clone().unwrap_or_default();
        let name = name.as_str();
        let params = PostParams {
            dry_run: true,
            ..PostParams::default()
        };
        let api = Api::<Environment>::all(self.client.clone());
        let (api, environment, params) = (&api, &environment, &params);
        eventually(PROPAGATION, || async move {
            match api.create(params, environment).await {
                Ok(_) => bail!("the apiserver accepted {name} from an outsider"),
                Err(e) => match api_status(&e) {
                    Some((422, _, message)) if message.contains(field) => Ok(message.to_owned()),
                    _ => bail!("refused, but not naming {field}: {e}"),
                },
            }
        })
        .await
    }
}

/// Publishes the default policy as Berth's API does at start (the
/// `EnvironmentPolicy` CRD is the controller leader's to install).
async fn publish_default_policy(admin: &Client) -> Result<()> {
    let api = Api::<EnvironmentPolicy>::all(admin.clone());
    let object = EnvironmentPolicy::for_policy(&Policy::default(), &ReservedNames::default());
    eventually(PROPAGATION, || async {
        api.patch(
            POLICY_OBJECT_NAME,
            &PatchParams::apply("berth").force(),
            &Patch::Apply(&object),
        )
        .await
        .context("publishing the policy")
    })
    .await?;
    Ok(())
}

fn environment(name: &str, spec: Value, annotations: Value) -> Result<Environment> {
    Ok(serde_json::from_value(json!({
        "apiVersion": "berth.dev/v1alpha1", "kind": "Environment",
        "metadata": {"name": name, "labels": {RUN_LABEL: run_id()}, "annotations": annotations},
        "spec": spec,
    }))?)
}

/// A small environment well within the default policy (and any sane one).
fn within_policy() -> Value {
    json!({
        "quota": {"cpu": "100m", "memory": "64Mi", "storage": "1Gi", "pods": 2},
        "limits": {"defaultCpu": "50m", "defaultMemory": "32Mi"},
        "network": {"isolation": "isolated"},
        "podSecurity": "restricted",
        "ttl": "30m",
        "members": [{"email": "ada@example.com", "role": "owner"}],
    })
}

/// [`within_policy`] with the field at `pointer` set to `value`.
fn with(pointer: &str, value: Value) -> Value {
    let mut spec = within_policy();
    *spec.pointer_mut(pointer).expect("the spec has the field") = value;
    spec
}

#[tokio::test]
async fn an_outsiders_environment_within_the_policy_becomes_ready() -> Result<()> {
    let outsider = Outsider::new().await?;
    let name = unique_name("bc-vap-ok");
    let outcome = async {
        // The same environment asking for more is refused: the policy acts.
        outsider
            .refused(
                &name,
                with("/quota/cpu", json!("10000")),
                json!({}),
                "spec.quota.cpu",
            )
            .await?;
        Api::<Environment>::all(outsider.client.clone())
            .create(
                &PostParams::default(),
                &environment(&name, within_policy(), json!({}))?,
            )
            .await
            .context("an environment within the policy was refused")?;
        wait_phase(&outsider.admin, &name, Phase::Ready, READY_WITHIN).await?;
        Ok(())
    }
    .await;
    let removed = delete_env(&outsider.admin, &name).await;
    let cleaned = outsider.cleanup().await;
    outcome.and(removed).and(cleaned)
}

#[tokio::test]
async fn a_quota_over_the_policy_is_refused_naming_the_field() -> Result<()> {
    let outsider = Outsider::new().await?;
    let outcome = async {
        let message = outsider
            .refused(
                &unique_name("bc-vap-cpu"),
                with("/quota/cpu", json!("10000")),
                json!({}),
                "spec.quota.cpu",
            )
            .await?;
        ensure!(message.contains("policy maximum"), "{message}");
        outsider
            .refused(
                &unique_name("bc-vap-pods"),
                with("/quota/pods", json!(1000)),
                json!({}),
                "spec.quota.pods",
            )
            .await?;
        Ok(())
    }
    .await;
    let cleaned = outsider.cleanup().await;
    outcome.and(cleaned)
}

#[tokio::test]
async fn a_ttl_of_a_hundred_years_is_refused() -> Result<()> {
    let outsider = Outsider::new().await?;
    let outcome = outsider
        .refused(
            &unique_name("bc-vap-ttl"),
            with("/ttl", json!("876000h")),
            json!({}),
            "spec.ttl",
        )
        .await;
    let cleaned = outsider.cleanup().await;
    outcome.map(drop).and(cleaned)
}

#[tokio::test]
async fn relaxed_pod_security_or_network_is_refused() -> Result<()> {
    let outsider = Outsider::new().await?;
    let outcome = async {
        outsider
            .refused(
                &unique_name("bc-vap-pss"),
                with("/podSecurity", json!("baseline")),
                json!({}),
                "spec.podSecurity",
            )
            .await?;
        outsider
            .refused(
                &unique_name("bc-vap-net"),
                with("/network/isolation", json!("open")),
                json!({}),
                "spec.network.isolation",
            )
            .await?;
        let mut excepted = within_policy();
        excepted["exceptions"] = json!({"ingressHosts": ["shop.example.com"]});
        outsider
            .refused(
                &unique_name("bc-vap-exc"),
                excepted,
                json!({}),
                "spec.exceptions",
            )
            .await?;
        Ok(())
    }
    .await;
    let cleaned = outsider.cleanup().await;
    outcome.and(cleaned)
}

#[tokio::test]
async fn forged_bookkeeping_annotations_are_refused() -> Result<()> {
    let outsider = Outsider::new().await?;
    let outcome = async {
        for annotation in [
            Environment::CREATED_BY_ANNOTATION,
            Environment::RENEWED_AT_ANNOTATION,
        ] {
            outsider
                .refused(
                    &unique_name("bc-vap-forged"),
                    within_policy(),
                    json!({annotation: "boss@example.com"}),
                    annotation,
                )
                .await?;
        }
        // The label the per-person limit counts by is bookkeeping too.
        let mut forged = environment(&unique_name("bc-vap-forged"), within_policy(), json!({}))?;
        forged
            .metadata
            .labels
            .get_or_insert_with(Default::default)
            .insert(Environment::CREATOR_ID_LABEL.into(), "someone-else".into());
        outsider
            .refused_object(forged, Environment::CREATOR_ID_LABEL)
            .await?;
        Ok(())
    }
    .await;
    let cleaned = outsider.cleanup().await;
    outcome.and(cleaned)
}

#[tokio::test]
async fn a_malformed_quota_is_refused_by_the_schema() -> Result<()> {
    let outsider = Outsider::new().await?;
    let outcome = async {
        let message = outsider
            .refused(
                &unique_name("bc-vap-lots"),
                with("/quota/cpu", json!("lots")),
                json!({}),
                "spec.quota.cpu",
            )
            .await?;
        // Refused at once, by the CRD's schema, not later by the controller.
        ensure!(!message.contains("ValidatingAdmissionPolicy"), "{message}");
        ensure!(message.contains("must be a CPU quantity"), "{message}");
        Ok(())
    }
    .await;
    let cleaned = outsider.cleanup().await;
    outcome.and(cleaned)
}

#[tokio::test]
async fn reserved_names_are_refused() -> Result<()> {
    let outsider = Outsider::new().await?;
    let outcome = async {
        // `kube-*` is refused by the schema, for everyone; the others only
        // by the admission policy.
        for name in [
            "kube-foo",
            "preview",
            "berthling",
            "ingress-nginx",
            "monitoring",
        ] {
            outsider
                .refused(name, within_policy(), json!({}), "metadata.name")
                .await
                .with_context(|| format!("the name {name}"))?;
        }
        Ok(())
    }
    .await;
    let cleaned = outsider.cleanup().await;
    outcome.and(cleaned)
}

#[tokio::test]
async fn berth_may_exceed_the_policy_and_outsiders_edit_what_leaves_bounds_alone() -> Result<()> {
    let outsider = Outsider::new().await?;
    let name = unique_name("bc-vap-above");
    let outcome = async {
        // What Berth writes for an approved request: above the policy,
        // relaxed, and with its bookkeeping.
        let mut above = with("/quota/cpu", json!("9000"));
        above["podSecurity"] = json!("baseline");
        above["network"]["isolation"] = json!("open");
        above["exceptions"] = json!({"ingressHosts": ["shop.example.com"], "externalName": true});
        let environment = environment(
            &name,
            above,
            json!({Environment::CREATED_BY_ANNOTATION: "ada@example.com"}),
        )?;
        Api::<Environment>::all(outsider.admin.clone())
            .create(&PostParams::default(), &environment)
            .await
            .context("Berth's own identity was refused")?;

        let api = Api::<Environment>::all(outsider.client.clone());
        let (api, name) = (&api, name.as_str());
        let patch = |body: Value| async move {
            api.patch(name, &PatchParams::default(), &Patch::Merge(&body))
                .await
                .map(drop)
        };
        patch(json!({"spec": {"description": "renamed by GitOps"}}))
            .await
            .context("an edit that leaves the bounds alone was refused")?;
        eventually(PROPAGATION, || async {
            match patch(json!({"spec": {"quota": {"cpu": "9500"}}})).await {
                Ok(()) => bail!("an outsider raised a quota above the policy"),
                Err(e) => match api_status(&e) {
                    Some((422, _, m)) if m.contains("spec.quota.cpu") => Ok(()),
                    _ => Err(anyhow!("refused, but not naming spec.quota.cpu: {e}")),
                },
            }
        })
        .await?;
        for exceptions in [
            json!({"ingressHosts": ["shop.example.com", "*.example.org"], "externalName": true}),
            json!(null),
        ] {
            match patch(json!({"spec": {"exceptions": exceptions}})).await {
                Ok(()) => bail!("an outsider changed the exceptions to {exceptions}"),
                Err(e) => ensure!(
                    api_status(&e)
                        .is_some_and(|(code, _, m)| code == 422 && m.contains("spec.exceptions")),
                    "refused, but not naming spec.exceptions: {e}"
                ),
            }
        }
        let forged = json!({"metadata": {"annotations": {Environment::CREATED_BY_ANNOTATION: "mallory@example.com"}}});
        match patch(forged).await {
            Ok(()) => bail!("an outsider changed the creator annotation"),
            Err(e) => ensure!(
                api_status(&e).is_some_and(|(code, _, m)| code == 422
                    && m.contains(Environment::CREATED_BY_ANNOTATION)),
                "refused, but not naming the annotation: {e}"
            ),
        }
        Ok(())
    }
    .await;
    let removed = delete_env(&outsider.admin, &name).await;
    let cleaned = outsider.cleanup().await;
    outcome.and(removed).and(cleaned)
}

#[tokio::test]
async fn the_admission_policy_type_checks_against_the_crds() -> Result<()> {
    let admin = client().await;
    let api = Api::<ValidatingAdmissionPolicy>::all(admin);
    eventually(PROPAGATION, || async {
        let policy = api.get(ADMISSION_POLICY_NAME).await?;
        let status = policy.status.clone().unwrap_or_default();
        ensure!(
            status.observed_generation.is_some()
                && status.observed_generation == policy.metadata.generation,
            "the policy's type check has not run yet"
        );
        let warnings = status
            .type_checking
            .and_then(|t| t.expression_warnings)
            .unwrap_or_default();
        ensure!(warnings.is_empty(), "type warnings: {warnings:?}");
        Ok(())
    })
    .await
}
