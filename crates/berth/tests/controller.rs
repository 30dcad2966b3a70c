//! `berth controller` as processes against the real local cluster: killed
//! with SIGKILL mid-reconcile it converges on restart with nothing
//! duplicated or leaked; of two replicas only the leader writes, and the
//! other takes over within 15 s of the leader's death.

use anyhow::{Context, Result, anyhow, bail};
use berth_manifests::{ENVIRONMENT_LABEL, Environment, Phase};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Namespace, ServiceAccount};
use k8s_openapi::api::rbac::v1::RoleBinding;
use kube::api::{DeleteParams, ListParams, Patch, PatchParams};
use kube::{Api, Client, ResourceExt};
use serde_json::json;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const RUN_LABEL: &str = "berth.dev/test-run";

/// One `berth controller` process; SIGKILLed when dropped.
struct Replica {
    identity: String,
    metrics: String,
    child: Child,
}

impl Replica {
    fn start(cluster: &berth_testkit::Cluster, run: &str, identity: &str) -> Result<Self> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let log = std::fs::File::create(std::env::temp_dir().join(format!("{identity}.log")))?;
        let child = Command::new(env!("CARGO_BIN_EXE_berth"))
            .arg("controller")
            .arg("--kubeconfig")
            .arg(cluster.kubeconfig())
            .args([
                "--identity",
                identity,
                "--lease-name",
                &format!("berth-test-{run}"),
            ])
            .args(["--selector", &format!("{RUN_LABEL}={run}")])
            .args(["--metrics-listen", &format!("127.0.0.1:{port}")])
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .context("starting berth controller")?;
        Ok(Self {
            identity: identity.to_owned(),
            metrics: format!("http://127.0.0.1:{port}/metrics"),
            child,
        })
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// The value of a metric without labels, as this process exposes it.
    async fn metric(&self, name: &str) -> Result<f64> {
        let text = reqwest::get(&self.metrics).await?.text().await?;
        text.lines()
            .find_map(|l| l.strip_prefix(name).and_then(|v| v.strip_prefix(' ')))
            .ok_or_else(|| anyhow!("{name} not in /metrics"))?
            .trim()
            .parse()
            .context("parsing a metric")
    }
}

impl Drop for Replica {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The five members of a run's environments.
fn member_emails(run: &str) -> Vec<String> {
    (0..5).map(|i| format!("m{i}-{run}@example.com")).collect()
}

/// Makes the identities of a run's members as the API would (the
/// ServiceAccounts `user-<id>` in `berth-users`), so that each is bound.
async fn make_identities(client: &Client, run: &str) -> Result<()> {
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
    let accounts =
        Api::<ServiceAccount>::namespaced(client.clone(), berth_manifests::USERS_NAMESPACE);
    for email in member_emails(run) {
        let email = berth_core::account::Email::parse("email", &email)
            .map_err(|e| anyhow!("{email}: {e:?}"))?;
        let id = uuid::Uuid::now_v7();
        let mut account = serde_json::to_value(berth_manifests::user_service_account(id, &email))?;
        account["apiVersion"] = "v1".into();
        account["kind"] = "ServiceAccount".into();
        accounts
            .patch(
                &berth_manifests::user_service_account_name(id),
                &params,
                &Patch::Apply(&account),
            )
            .await?;
    }
    Ok(())
}

async fn apply_env(client: &Client, run: &str, name: &str, apps: usize) -> Result<()> {
    let apps: Vec<_> = (0..apps)
        .map(|i| json!({"name": format!("app{i}"), "image": "nginx:1.27", "replicas": 1, "port": 8080, "expose": "ingress",
                        "resources": {"cpu": "10m", "memory": "16Mi"}}))
        .collect();
    let members: Vec<_> = member_emails(run)
        .iter()
        .map(|email| json!({"email": email, "role": "editor"}))
        .collect();
    let body = json!({
        "apiVersion": "berth.dev/v1alpha1", "kind": "Environment",
        "metadata": {"name": name, "labels": {RUN_LABEL: run}},
        "spec": {"template": "large", "apps": apps, "members": members},
    });
    // On a fresh cluster the leader installs the CRD just after it is elected:
    // until the CRD is served, the apiserver answers 404 to the apply.
    berth_testkit::eventually(Duration::from_secs(30), || async {
        Api::<Environment>::all(client.clone())
            .patch(
                name,
                &PatchParams::apply("kubectl").force(),
                &Patch::Apply(&body),
            )
            .await
            .map_err(anyhow::Error::from)
    })
    .await?;
    Ok(())
}

async fn wait_ready(client: &Client, name: &str, timeout: Duration) -> Result<Environment> {
    let api = Api::<Environment>::all(client.clone());
    berth_testkit::eventually(timeout, || async {
        let env = api.get(name).await?;
        let status = env.status.clone().unwrap_or_default();
        if status.phase == Some(Phase::Ready)
            && status.observed_generation == env.metadata.generation
        {
            Ok(env)
        } else {
            bail!("{name} is {:?}", status.phase)
        }
    })
    .await
}

async fn holder(client: &Client, run: &str) -> Result<Option<String>> {
    let lease = Api::<Lease>::namespaced(client.clone(), "kube-system")
        .get_opt(&format!("berth-test-{run}"))
        .await?;
    Ok(lease.and_then(|l| l.spec).and_then(|s| s.holder_identity))
}

async fn cleanup(client: &Client, run: &str, names: &[&str]) -> Result<()> {
    let envs = Api::<Environment>::all(client.clone());
    for name in names {
        let _ = envs.delete(name, &DeleteParams::default()).await;
    }
    berth_testkit::eventually(Duration::from_secs(60), || async {
        for name in names {
            if envs.get_opt(name).await?.is_some() {
                bail!("{name} still exists");
            }
        }
        Ok(())
    })
    .await?;
    let _ = Api::<Lease>::namespaced(client.clone(), "kube-system")
        .delete(&format!("berth-test-{run}"), &DeleteParams::default())
        .await;
    Ok(())
}

/// Names of the objects of one kind labelled as the environment's.
async fn names<K>(client: &Client, env: &str) -> Result<Vec<String>>
where
    K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug,
{
    let list = Api::<K>::namespaced(client.clone(), env)
        .list(&ListParams::default().labels(&format!("{ENVIRONMENT_LABEL}={env}")))
        .await?;
    let mut names: Vec<String> = list.items.iter().map(|o| o.name_any()).collect();
    names.sort();
    Ok(names)
}

#[tokio::test]
async fn sigkill_mid_reconcile_then_restart_converges_without_duplicates() -> Result<()> {
    let cluster = berth_testkit::cluster().await?;
    let client = cluster.client();
    let run = berth_testkit::unique_name("kill");
    let name = berth_testkit::unique_name("ctl-kill");

    let mut first = Replica::start(&cluster, &run, &format!("{run}-a"))?;
    berth_testkit::eventually(Duration::from_secs(20), || async {
        if holder(&client, &run).await?.as_deref() == Some(first.identity.as_str()) {
            Ok(())
        } else {
            bail!("not leading yet")
        }
    })
    .await?;
    make_identities(&client, &run).await?;
    apply_env(&client, &run, &name, 12).await?;
    // Kill it as soon as the namespace exists: objects are being applied.
    berth_testkit::eventually(Duration::from_secs(20), || async {
        match Api::<Namespace>::all(client.clone()).get_opt(&name).await? {
            Some(_) => Ok(()),
            None => bail!("no namespace yet"),
        }
    })
    .await?;
    first.kill();
    let deployments_at_kill = names::<Deployment>(&client, &name).await?.len();

    let second = Replica::start(&cluster, &run, &format!("{run}-b"))?;
    let env = wait_ready(&client, &name, Duration::from_secs(120)).await?;
    eprintln!("killed with {deployments_at_kill}/12 deployments applied; converged after restart");

    let expected_apps: Vec<String> = {
        let mut v: Vec<String> = (0..12).map(|i| format!("app{i}")).collect();
        v.sort();
        v
    };
    assert_eq!(names::<Deployment>(&client, &name).await?, expected_apps);
    // Members' identities live in `berth-users`; the namespace holds only
    // their bindings.
    assert_eq!(names::<ServiceAccount>(&client, &name).await?.len(), 0);
    assert_eq!(names::<RoleBinding>(&client, &name).await?.len(), 5);
    let finalizers = env.finalizers();
    assert_eq!(
        finalizers
            .iter()
            .filter(|f| *f == berth_controller::FINALIZER)
            .count(),
        1,
        "{finalizers:?}"
    );
    for d in Api::<Deployment>::namespaced(client.clone(), &name)
        .list(&ListParams::default())
        .await?
        .items
    {
        assert_eq!(d.owner_references().len(), 1, "{}", d.name_any());
    }
    cleanup(&client, &run, &[&name]).await?;
    drop(second);
    Ok(())
}

#[tokio::test]
async fn only_the_leader_writes_and_the_other_takes_over_within_15_seconds() -> Result<()> {
    let cluster = berth_testkit::cluster().await?;
    let client = cluster.client();
    let run = berth_testkit::unique_name("ha");
    let a = Replica::start(&cluster, &run, &format!("{run}-a"))?;
    let b = Replica::start(&cluster, &run, &format!("{run}-b"))?;
    let mut replicas = [a, b];
    let leader_id = berth_testkit::eventually(Duration::from_secs(20), || async {
        holder(&client, &run)
            .await?
            .ok_or_else(|| anyhow!("no leader yet"))
    })
    .await?;
    let (leader, follower) = if replicas[0].identity == leader_id {
        (0, 1)
    } else {
        (1, 0)
    };

    let first = berth_testkit::unique_name("ctl-ha1");
    apply_env(&client, &run, &first, 1).await?;
    wait_ready(&client, &first, Duration::from_secs(90)).await?;
    // Only the leader reconciled; the follower has not so much as started one.
    assert!(
        replicas[leader]
            .metric("berth_controller_reconciles_total")
            .await?
            > 0.0
    );
    assert_eq!(
        replicas[follower]
            .metric("berth_controller_reconciles_total")
            .await?,
        0.0
    );
    assert_eq!(
        replicas[follower].metric("berth_controller_leader").await?,
        0.0
    );

    replicas[leader].kill();
    let killed = Instant::now();
    let follower_id = replicas[follower].identity.clone();
    berth_testkit::eventually(Duration::from_secs(20), || async {
        if holder(&client, &run).await?.as_deref() == Some(follower_id.as_str()) {
            Ok(())
        } else {
            bail!("no takeover yet")
        }
    })
    .await?;
    let takeover = killed.elapsed();
    eprintln!("takeover after {takeover:?}");
    assert!(
        takeover <= Duration::from_secs(15),
        "takeover took {takeover:?}"
    );

    let second = berth_testkit::unique_name("ctl-ha2");
    apply_env(&client, &run, &second, 1).await?;
    wait_ready(&client, &second, Duration::from_secs(90)).await?;
    assert!(
        replicas[follower]
            .metric("berth_controller_reconciles_total")
            .await?
            > 0.0
    );
    cleanup(&client, &run, &[&first, &second]).await
}
