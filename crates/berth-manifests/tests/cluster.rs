//! The builder's objects against a real apiserver: every spec the parser
//! accepts yields objects the apiserver accepts (server-side dry-run), and an
//! Environment, written fully resolved as the API writes it, that the CRD's
//! schema accepts; the `berth-tenant-*` ClusterRoles confine a member's
//! token to its workloads.
//!
//! These tests need the local cluster (`scripts/localcluster.sh`); without it
//! they fail, never skip.

mod support;

use anyhow::{Context, Result, anyhow, bail, ensure};
use berth_core::account::Email;
use berth_core::environment::{
    AppInput, EnvironmentSpec, EnvironmentSpecInput, LimitsInput, MemberInput, NetworkInput,
    Policy, QuotaInput, ResolvedSpec, ResourcesInput, builtin_templates, resolve,
};
use berth_manifests::{
    BuildOptions, Environment, Object, USERS_NAMESPACE, build, cluster_roles, user_service_account,
    user_service_account_name, users_namespace,
};
use berth_testkit::{Cluster, TestNamespace, api_status, eventually};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{
    LimitRange, Namespace, Pod, ResourceQuota, Secret, Service, ServiceAccount,
};
use k8s_openapi::api::networking::v1::{Ingress, NetworkPolicy};
use k8s_openapi::api::rbac::v1::{ClusterRole, RoleBinding};
use kube::api::{ApiResource, DynamicObject, ListParams, Patch, PatchParams, PostParams};
use kube::{Api, Client};
use proptest::prelude::*;
use proptest::test_runner::{Config as ProptestConfig, TestCaseError, TestRunner};
use serde_json::{Value, json};
use std::time::Duration;

const FIELD_MANAGER: &str = "berth";
const POD_SECURITY_ENFORCE: &str = "pod-security.kubernetes.io/enforce";
/// RBAC changes reach the apiserver's authorizer through an informer, so a
/// fresh RoleBinding may take a moment to grant anything.
const RBAC_PROPAGATION: Duration = Duration::from_secs(30);

async fn cluster() -> Result<Cluster> {
    berth_testkit::cluster()
        .await
        .context("these tests need the local Kubernetes cluster (scripts/localcluster.sh up)")
}

/// An `Api` for any object the builder makes, in the object's own namespace.
fn api_for(client: &Client, object: &Object) -> Api<DynamicObject> {
    let resource = match object {
        Object::Namespace(_) => ApiResource::erase::<Namespace>(&()),
        Object::ResourceQuota(_) => ApiResource::erase::<ResourceQuota>(&()),
        Object::LimitRange(_) => ApiResource::erase::<LimitRange>(&()),
        Object::NetworkPolicy(_) => ApiResource::erase::<NetworkPolicy>(&()),
        Object::RoleBinding(_) => ApiResource::erase::<RoleBinding>(&()),
        Object::ClusterRole(_) => ApiResource::erase::<ClusterRole>(&()),
        Object::Deployment(_) => ApiResource::erase::<Deployment>(&()),
        Object::Service(_) => ApiResource::erase::<Service>(&()),
        Object::Ingress(_) => ApiResource::erase::<Ingress>(&()),
    };
    match object.metadata().namespace.as_deref() {
        Some(ns) => Api::namespaced_with(client.clone(), ns, &resource),
        None => Api::all_with(client.clone(), &resource),
    }
}

/// Server-side applies `object` as Berth does, for real or as a dry run.
async fn apply(client: &Client, object: &Object, dry_run: bool) -> Result<()> {
    let mut params = PatchParams::apply(FIELD_MANAGER).force();
    if dry_run {
        params = params.dry_run();
    }
    api_for(client, object)
        .patch(object.name(), &params, &Patch::Apply(&object.to_json()))
        .await
        .map(drop)
        .with_context(|| {
            format!(
                "the apiserver refused {} {} (dry run: {dry_run}):\n{}",
                object.kind(),
                object.name(),
                serde_json::to_string_pretty(&object.to_json()).unwrap_or_default()
            )
        })
}

/// Server-side applies an object the builder does not make (a user's
/// identity and its namespace, which the API makes).
async fn apply_json(
    client: &Client,
    resource: &ApiResource,
    namespace: Option<&str>,
    mut body: Value,
) -> Result<()> {
    body["apiVersion"] = resource.api_version.clone().into();
    body["kind"] = resource.kind.clone().into();
    let name = body["metadata"]["name"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let api = match namespace {
        Some(ns) => Api::<DynamicObject>::namespaced_with(client.clone(), ns, resource),
        None => Api::all_with(client.clone(), resource),
    };
    api.patch(
        &name,
        &PatchParams::apply(FIELD_MANAGER).force(),
        &Patch::Apply(&body),
    )
    .await
    .with_context(|| format!("applying {} {name}", resource.kind))?;
    Ok(())
}

/// The tenant ClusterRoles exist once per cluster, shipped with Berth; the
/// RoleBindings the builder makes refer to them.
async fn apply_cluster_roles(client: &Client) -> Result<()> {
    for role in cluster_roles() {
        apply(client, &Object::ClusterRole(role), false).await?;
    }
    Ok(())
}

fn resolved(input: &EnvironmentSpecInput) -> Result<ResolvedSpec> {
    let spec = EnvironmentSpec::parse(input).map_err(|e| anyhow!("spec rejected: {e:?}"))?;
    resolve(spec, &builtin_templates(), &Policy::default())
        .map_err(|e| anyhow!("spec does not resolve: {e:?}"))
}

// ---------------------------------------------------------------------------
// Every accepted spec yields objects the apiserver accepts.
// ---------------------------------------------------------------------------

/// Stands in for the environment name until a case has its namespace, whose
/// name the objects must carry.
const PLACEHOLDER_NAME: &str = "placeholder-env";

fn cpu() -> impl Strategy<Value = String> {
    prop_oneof![
        (1u64..=64).prop_map(|n| n.to_string()),
        (1u64..=64_000).prop_map(|n| format!("{n}m")),
        (0u64..=63, 1u64..=9).prop_map(|(a, b)| format!("{a}.{b}")),
    ]
}

fn bytes() -> impl Strategy<Value = String> {
    let suffix = prop::sample::select(vec!["", "k", "M", "G", "Ki", "Mi", "Gi"]);
    (1u64..=512, suffix).prop_map(|(n, s)| format!("{n}{s}"))
}

fn ttl() -> impl Strategy<Value = String> {
    prop_oneof![
        (1u64..=8760).prop_map(|h| format!("{h}h")),
        (1u64..=525_600).prop_map(|m| format!("{m}m")),
        (60u64..=31_536_000).prop_map(|s| format!("{s}s")),
        (0u64..=8759, 1u64..=59, 1u64..=59).prop_map(|(h, m, s)| format!("{h}h{m}m{s}s")),
    ]
}

fn app(index: usize) -> impl Strategy<Value = AppInput> {
    let name = "[a-z][a-z0-9-]{0,12}[a-z0-9]";
    let image = prop::sample::select(vec![
        "nginx",
        "nginx:1.27",
        "ghcr.io/acme/api:v2",
        "docker.io/library/busybox:1.36",
        "registry.local:5000/x/y@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
    ]);
    let env = prop::collection::btree_map("[A-Z_][A-Z0-9_]{0,10}", "[ -~]{0,20}", 0..4);
    let expose = prop::option::of(prop::sample::select(vec!["none", "cluster", "ingress"]));
    (
        name,
        image,
        prop::option::of(0i64..=20),
        prop::option::of(1i64..=65535),
        env,
        prop::option::of((prop::option::of(cpu()), prop::option::of(bytes()))),
        expose,
    )
        .prop_map(
            move |(name, image, replicas, port, env, resources, expose)| AppInput {
                // The index keeps names unique within the environment.
                name: Some(format!("{name}{index}")),
                image: Some(image.to_owned()),
                replicas,
                port,
                env: Some(env),
                resources: resources.map(|(cpu, memory)| ResourcesInput { cpu, memory }),
                expose: expose.map(str::to_owned),
            },
        )
}

fn members() -> impl Strategy<Value = Vec<MemberInput>> {
    // Long and odd local parts exercise the ServiceAccount name's sanitising.
    prop::collection::btree_set("[a-z0-9][a-z0-9._+-]{0,45}@[a-z]{1,8}\\.(com|dev)", 0..4)
        .prop_flat_map(|emails| {
            let n = emails.len();
            (
                Just(emails),
                prop::collection::vec(prop::sample::select(vec!["owner", "editor", "viewer"]), n),
            )
        })
        .prop_map(|(emails, roles)| {
            emails
                .into_iter()
                .zip(roles)
                .map(|(e, r)| MemberInput {
                    email: Some(e),
                    role: Some(r.to_owned()),
                })
                .collect()
        })
}

/// Specs the parser accepts and that resolve under the default policy.
fn accepted_spec() -> impl Strategy<Value = EnvironmentSpecInput> {
    let quota = prop::option::of((
        prop::option::of(cpu()),
        prop::option::of(bytes()),
        prop::option::of(bytes()),
        prop::option::of(1i64..=1000),
    ));
    let limits = prop::option::of((prop::option::of(cpu()), prop::option::of(bytes())));
    let apps = (0usize..4).prop_flat_map(|n| (0..n).map(app).collect::<Vec<_>>());
    (
        prop::option::of("[ -~]{0,40}"),
        prop::option::of(prop::sample::select(vec!["small", "medium", "large"])),
        quota,
        limits,
        prop::option::of(prop::sample::select(vec!["isolated", "open"])),
        prop::option::of(prop::sample::select(vec!["restricted", "baseline"])),
        prop::option::of(ttl()),
        apps,
        members(),
    )
        .prop_map(
            |(
                description,
                template,
                quota,
                limits,
                isolation,
                pod_security,
                ttl,
                apps,
                members,
            )| {
                EnvironmentSpecInput {
                    name: Some(PLACEHOLDER_NAME.to_owned()),
                    description,
                    template: template.map(str::to_owned),
                    quota: quota.map(|(cpu, memory, storage, pods)| QuotaInput {
                        cpu,
                        memory,
                        storage,
                        pods,
                        ..QuotaInput::default()
                    }),
                    limits: limits.map(|(default_cpu, default_memory)| LimitsInput {
                        default_cpu,
                        default_memory,
                    }),
                    network: isolation.map(|i| NetworkInput {
                        isolation: Some(i.to_owned()),
                    }),
                    pod_security: pod_security.map(str::to_owned),
                    ttl,
                    apps: Some(apps),
                    members: Some(members),
                    exceptions: None,
                }
            },
        )
        // Limits above an arbitrary quota, or an odd email, are rejected by
        // design; this test is about the specs that get through.
        .prop_filter("the parser accepts it", |input| resolved(input).is_ok())
}

/// One case: a namespace for real at the spec's pod security level, then
/// every object of the spec dry-run applied in it.
async fn dry_run_case(cluster: &Cluster, mut input: EnvironmentSpecInput) -> Result<()> {
    let client = cluster.client();
    let level = resolved(&input)?.pod_security.to_string();
    let namespace =
        TestNamespace::create_with_labels(cluster, "bm-prop", &[(POD_SECURITY_ENFORCE, &level)])
            .await?;
    input.name = Some(namespace.name().to_owned());
    let outcome = async {
        let spec = resolved(&input)?;
        support::crd::dry_run_environment(&client, &Environment::for_spec(&spec))
            .await
            .context("the CRD's schema refuses the Environment the API would write")?;
        let objects = build(&spec, &BuildOptions::default());
        for object in &objects {
            if !matches!(object, Object::Namespace(_)) {
                ensure!(
                    object.metadata().namespace.as_deref() == Some(namespace.name()),
                    "{} {} is not in the environment's namespace",
                    object.kind(),
                    object.name()
                );
            }
            apply(&client, object, true).await?;
            if let Object::Deployment(deployment) = object {
                admit_pod_template(&client, namespace.name(), deployment).await?;
            }
        }
        Ok(())
    }
    .await;
    let cleanup = namespace.delete().await;
    outcome.with_context(|| {
        format!(
            "spec: {}",
            serde_json::to_string(&input).unwrap_or_default()
        )
    })?;
    cleanup
}

/// A Deployment is admitted whatever its pods look like; Pod Security judges
/// the pods. So its template is dry-run created as a Pod too, at the
/// namespace's enforced level.
async fn admit_pod_template(
    client: &Client,
    namespace: &str,
    deployment: &Deployment,
) -> Result<()> {
    let template = deployment
        .spec
        .as_ref()
        .map(|s| s.template.clone())
        .context("a Deployment without a spec")?;
    let mut metadata = template.metadata.unwrap_or_default();
    metadata.name = Some(format!(
        "{}-pod",
        deployment.metadata.name.as_deref().unwrap_or("app")
    ));
    let pod = Pod {
        metadata,
        spec: template.spec,
        ..Pod::default()
    };
    Api::<Pod>::namespaced(client.clone(), namespace)
        .create(
            &PostParams {
                dry_run: true,
                ..PostParams::default()
            },
            &pod,
        )
        .await
        .map(drop)
        .with_context(|| {
            format!(
                "the pod template of Deployment {:?} is not admitted",
                deployment.metadata.name
            )
        })
}

#[tokio::test(flavor = "multi_thread")]
async fn every_accepted_spec_yields_objects_the_apiserver_accepts() -> Result<()> {
    let cluster = cluster().await?;
    apply_cluster_roles(&cluster.client()).await?;
    support::crd::install(&cluster.client()).await?;

    let handle = tokio::runtime::Handle::current();
    // Each case creates a namespace and sends a dozen requests: a few cases suffice.
    // Outside the proptest! macro there is no source file to persist failing
    // cases next to; the failure message carries the spec instead.
    let mut runner = TestRunner::new(ProptestConfig {
        failure_persistence: None,
        ..ProptestConfig::with_cases(12)
    });
    tokio::task::block_in_place(|| {
        runner
            .run(&accepted_spec(), |input| {
                handle
                    .block_on(dry_run_case(&cluster, input))
                    .map_err(|e| TestCaseError::fail(format!("{e:#}")))
            })
            .map_err(|failure| anyhow!("{failure}"))
    })?;
    Ok(())
}

#[test]
fn a_rejected_spec_names_the_field() {
    let input = EnvironmentSpecInput::from_json(json!({
        "name": "team-a",
        "apps": [{"name": "web", "image": "nginx", "resources": {"cpu": "lots"}}]
    }))
    .expect("wire form");
    let errors = EnvironmentSpec::parse(&input).expect_err("a CPU of 'lots' is rejected");
    let fields: Vec<&str> = errors.errors().iter().map(|e| e.field.as_str()).collect();
    assert_eq!(fields, ["apps[0].resources.cpu"], "{errors:?}");
}

// ---------------------------------------------------------------------------
// The tenant ClusterRoles confine a member's token.
// ---------------------------------------------------------------------------

async fn tenant_is_confined(role: &str) -> Result<()> {
    let cluster = cluster().await?;
    let admin = cluster.client();
    apply_cluster_roles(&admin).await?;

    let home = TestNamespace::create_with_labels(
        &cluster,
        &format!("bm-rbac-{role}"),
        &[(POD_SECURITY_ENFORCE, "restricted")],
    )
    .await?;
    let other = TestNamespace::create(&cluster, "bm-other").await?;
    let outcome = confined_in(&cluster, role, home.name(), other.name()).await;
    let cleanup = (home.delete().await, other.delete().await);
    outcome?;
    cleanup.0?;
    cleanup.1
}

async fn confined_in(cluster: &Cluster, role: &str, home: &str, other: &str) -> Result<()> {
    let admin = cluster.client();
    let email = format!("{role}.member@example.com");
    let spec = resolved(
        &EnvironmentSpecInput::from_json(json!({
            "name": home,
            "podSecurity": "restricted",
            "network": {"isolation": "isolated"},
            "apps": [{"name": "web", "image": "nginx:1.27", "port": 8080, "expose": "cluster"}],
            "members": [{"email": email, "role": role}]
        }))
        .map_err(|e| anyhow!("{e:?}"))?,
    )?;
    // The member's identity, as the API makes it, outside the namespace.
    let id = uuid::Uuid::now_v7();
    let account = user_service_account_name(id);
    let parsed = Email::parse("email", &email).map_err(|e| anyhow!("{e:?}"))?;
    apply_json(
        &admin,
        &ApiResource::erase::<Namespace>(&()),
        None,
        serde_json::to_value(users_namespace())?,
    )
    .await?;
    apply_json(
        &admin,
        &ApiResource::erase::<ServiceAccount>(&()),
        Some(USERS_NAMESPACE),
        serde_json::to_value(user_service_account(id, &parsed))?,
    )
    .await?;
    let options = BuildOptions {
        identities: [(parsed.to_string(), vec![account.clone()])].into(),
        ..BuildOptions::default()
    };
    let objects = build(&spec, &options);
    for object in &objects {
        apply(&admin, object, false).await?;
    }
    let object_named = |kind: &str| {
        objects
            .iter()
            .find(|o| o.kind() == kind)
            .map(|o| o.name().to_owned())
            .with_context(|| format!("the builder made no {kind}"))
    };
    let quota = object_named("ResourceQuota")?;
    let limits = object_named("LimitRange")?;
    let policy = object_named("NetworkPolicy")?;

    let tenant = cluster
        .service_account_client(USERS_NAMESPACE, &account)
        .await?;

    // Allowed: creating a workload that meets the restricted level.
    let deployments = Api::<Deployment>::namespaced(tenant.clone(), home);
    let deployment: Deployment = serde_json::from_value(restricted_deployment("tenant-app"))?;
    let (deployments, deployment) = (&deployments, &deployment);
    eventually(RBAC_PROPAGATION, || async move {
        match deployments.create(&PostParams::default(), deployment).await {
            Ok(_) => Ok(()),
            Err(e) if api_status(&e).is_some_and(|(code, _, _)| code == 409) => Ok(()),
            Err(e) => Err(anyhow!("a {role} could not create a Deployment: {e}")),
        }
    })
    .await?;

    // Refused: changing the environment's bounds.
    let merge = Patch::Merge(json!({"metadata": {"labels": {"tampered": "yes"}}}));
    let pp = PatchParams::default();
    let quotas = Api::<ResourceQuota>::namespaced(tenant.clone(), home);
    let mut q = Api::<ResourceQuota>::namespaced(admin.clone(), home)
        .get(&quota)
        .await?;
    expect_forbidden(
        "patch the ResourceQuota",
        quotas.patch(&quota, &pp, &merge).await,
    )?;
    q.spec.get_or_insert_default().hard = None;
    expect_forbidden(
        "replace the ResourceQuota",
        quotas.replace(&quota, &PostParams::default(), &q).await,
    )?;

    let limit_ranges = Api::<LimitRange>::namespaced(tenant.clone(), home);
    let mut l = Api::<LimitRange>::namespaced(admin.clone(), home)
        .get(&limits)
        .await?;
    expect_forbidden(
        "patch the LimitRange",
        limit_ranges.patch(&limits, &pp, &merge).await,
    )?;
    l.spec.get_or_insert_default().limits.clear();
    expect_forbidden(
        "replace the LimitRange",
        limit_ranges
            .replace(&limits, &PostParams::default(), &l)
            .await,
    )?;

    let policies = Api::<NetworkPolicy>::namespaced(tenant.clone(), home);
    let mut n = Api::<NetworkPolicy>::namespaced(admin.clone(), home)
        .get(&policy)
        .await?;
    expect_forbidden(
        "patch a NetworkPolicy",
        policies.patch(&policy, &pp, &merge).await,
    )?;
    n.spec.get_or_insert_default().ingress = Some(vec![Default::default()]);
    expect_forbidden(
        "replace a NetworkPolicy",
        policies.replace(&policy, &PostParams::default(), &n).await,
    )?;

    // Refused: granting itself more.
    let escalation: RoleBinding = serde_json::from_value(json!({
        "metadata": {"name": "tenant-cluster-admin", "namespace": home},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "cluster-admin"},
        "subjects": [{"kind": "ServiceAccount", "name": account, "namespace": USERS_NAMESPACE}]
    }))?;
    expect_forbidden(
        "create a RoleBinding to cluster-admin",
        Api::<RoleBinding>::namespaced(tenant.clone(), home)
            .create(&PostParams::default(), &escalation)
            .await,
    )?;

    // Refused: another namespace's Secrets, listed or fetched by name.
    let secret: Secret = serde_json::from_value(json!({
        "metadata": {"name": "not-yours"},
        "stringData": {"password": "hunter2"}
    }))?;
    Api::<Secret>::namespaced(admin.clone(), other)
        .create(&PostParams::default(), &secret)
        .await
        .context("creating a Secret in the other namespace")?;
    let foreign = Api::<Secret>::namespaced(tenant.clone(), other);
    expect_forbidden(
        "list Secrets of another namespace",
        foreign.list(&ListParams::default()).await,
    )?;
    expect_forbidden(
        "read a Secret of another namespace",
        foreign.get("not-yours").await,
    )?;

    // Refused by Pod Security admission rather than RBAC: a privileged pod.
    let privileged: Pod = serde_json::from_value(json!({
        "metadata": {"name": "privileged"},
        "spec": {"containers": [{
            "name": "root", "image": "busybox:1.36",
            "securityContext": {"privileged": true}
        }]}
    }))?;
    let message = expect_forbidden(
        "create a privileged pod",
        Api::<Pod>::namespaced(tenant.clone(), home)
            .create(&PostParams::default(), &privileged)
            .await,
    )?;
    ensure!(
        message.contains("PodSecurity") && message.contains("privileged"),
        "the privileged pod was refused, but not by Pod Security: {message}"
    );
    Ok(())
}

/// Checks that `result` is the apiserver's 403 and returns its message.
fn expect_forbidden<T: std::fmt::Debug>(
    what: &str,
    result: Result<T, kube::Error>,
) -> Result<String> {
    match result {
        Ok(value) => bail!("a tenant could {what}: the apiserver allowed it ({value:?})"),
        Err(e) => match api_status(&e) {
            Some((403, "Forbidden", message)) => Ok(message.to_owned()),
            _ => bail!("a tenant trying to {what} got {e} instead of 403 Forbidden"),
        },
    }
}

fn restricted_deployment(name: &str) -> Value {
    json!({
        "metadata": {"name": name},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {
                    "securityContext": {"runAsNonRoot": true, "runAsUser": 10001,
                                        "seccompProfile": {"type": "RuntimeDefault"}},
                    "containers": [{
                        "name": "app", "image": "nginx:1.27",
                        "resources": {"requests": {"cpu": "10m", "memory": "16Mi"},
                                      "limits": {"cpu": "50m", "memory": "32Mi"}},
                        "securityContext": {"allowPrivilegeEscalation": false,
                                            "capabilities": {"drop": ["ALL"]}}
                    }]
                }
            }
        }
    })
}

#[tokio::test]
async fn an_editor_is_confined_to_its_workloads() -> Result<()> {
    tenant_is_confined("editor").await
}

#[tokio::test]
async fn an_owner_is_confined_to_its_workloads() -> Result<()> {
    tenant_is_confined("owner").await
}
