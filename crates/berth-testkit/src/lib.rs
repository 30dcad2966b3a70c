//! Test support for everything in Berth that talks to Kubernetes.
//!
//! [`cluster`] gives a handle on the local control plane that
//! `scripts/localcluster.sh` runs (a real kube-apiserver, controller-manager,
//! scheduler and etcd, with fake nodes), starting it once per test process
//! when it is not already up. [`TestNamespace`] isolates each test in a
//! namespace of its own, and [`eventually`] polls a condition with a deadline.
//!
//! When the cluster cannot be started the error says why, and the test fails:
//! a test that needs the cluster never passes without one.
//!
//! [`hec`] is a Splunk HTTP Event Collector that tests can take down.

pub mod hec;
pub mod restartable;
/// A Sentry receiver for tests: envelopes parsed as Sentry documents them.
pub mod sentry;

use std::future::Future;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use k8s_openapi::api::authentication::v1::{TokenRequest, TokenRequestSpec};
use k8s_openapi::api::core::v1::{Namespace, ServiceAccount};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{DeleteParams, PostParams};
use kube::config::{AuthInfo, KubeConfigOptions, Kubeconfig};
use kube::{Api, Client, Config};
use tokio::process::Command;
use tokio::sync::OnceCell;

/// Where the cluster's state lives, relative to the repository root.
const CLUSTER_DIR: &str = ".berth/cluster";

/// The local control plane, as seen by one test.
///
/// Cheap to get: the cluster is started at most once per process, while each
/// call builds a fresh [`Client`], because a client is bound to the Tokio
/// runtime it was made on and every `#[tokio::test]` has its own.
pub struct Cluster {
    root: PathBuf,
    client: Client,
}

static STARTED: OnceCell<PathBuf> = OnceCell::const_new();

/// Returns the running local cluster, starting it (and building it, on a
/// machine that never did) when its kubeconfig is missing or it does not
/// answer.
pub async fn cluster() -> Result<Cluster> {
    let root = STARTED
        .get_or_try_init(|| async {
            let root = repo_root()?;
            if !responds(&root).await {
                start(&root).await?;
            }
            Ok::<_, anyhow::Error>(root)
        })
        .await?
        .clone();
    let client = client_from_kubeconfig(&kubeconfig_path(&root), None).await?;
    Ok(Cluster { root, client })
}

impl Cluster {
    /// A client with cluster-admin rights.
    pub fn client(&self) -> Client {
        self.client.clone()
    }

    /// The admin kubeconfig, for tools that read one.
    pub fn kubeconfig(&self) -> PathBuf {
        kubeconfig_path(&self.root)
    }

    /// The repository root the cluster belongs to.
    pub fn repo_root(&self) -> &Path {
        &self.root
    }

    /// A client for the same apiserver that authenticates with a bearer
    /// token (for example a ServiceAccount token) instead of the admin
    /// certificate.
    pub async fn client_with_token(&self, token: &str) -> Result<Client> {
        client_from_kubeconfig(&self.kubeconfig(), Some(token)).await
    }

    /// A client acting as the ServiceAccount `namespace/name`, with a token
    /// from a TokenRequest that works for ten minutes (the default audience).
    pub async fn service_account_client(&self, namespace: &str, name: &str) -> Result<Client> {
        let request = TokenRequest {
            spec: TokenRequestSpec {
                expiration_seconds: Some(600),
                ..TokenRequestSpec::default()
            },
            ..TokenRequest::default()
        };
        let token = Api::<ServiceAccount>::namespaced(self.client(), namespace)
            .create_token_request(name, &PostParams::default(), &request)
            .await
            .with_context(|| format!("requesting a token for ServiceAccount {namespace}/{name}"))?
            .status
            .context("a token request without status")?
            .token;
        self.client_with_token(&token).await
    }

    /// The value of `key` exactly as the apiserver stored it in etcd, so that
    /// a test can check what is really at rest.
    pub async fn etcd_raw(&self, key: &str) -> Result<Vec<u8>> {
        let output = Command::new(self.root.join(".berth/bin/berth-cluster"))
            .args(["etcdget", "--dir", CLUSTER_DIR, key])
            .current_dir(&self.root)
            .stdin(Stdio::null())
            .output()
            .await
            .context("running .berth/bin/berth-cluster etcdget")?;
        if !output.status.success() {
            bail!(
                "berth-cluster etcdget {key} failed ({}): {}",
                output.status,
                String::from_utf8_lossy(&output.stderr).trim()
            );
        }
        Ok(output.stdout)
    }
}

/// The repository root: the nearest directory above this crate holding both
/// `Cargo.lock` and the cluster script.
fn repo_root() -> Result<PathBuf> {
    let start = Path::new(env!("CARGO_MANIFEST_DIR"));
    start
        .ancestors()
        .find(|dir| {
            dir.join("Cargo.lock").is_file() && dir.join("scripts/localcluster.sh").is_file()
        })
        .map(Path::to_path_buf)
        .ok_or_else(|| {
            anyhow!(
                "no directory above {} holds Cargo.lock and scripts/localcluster.sh",
                start.display()
            )
        })
}

fn kubeconfig_path(root: &Path) -> PathBuf {
    root.join(CLUSTER_DIR).join("kubeconfig")
}

/// Whether a cluster already answers through the kubeconfig at its fixed
/// place (the supervisor writes it only once the cluster is ready, and
/// removes it when the cluster stops).
async fn responds(root: &Path) -> bool {
    let path = kubeconfig_path(root);
    if !path.is_file() {
        return false;
    }
    let Ok(client) = client_from_kubeconfig(&path, None).await else {
        return false;
    };
    matches!(
        tokio::time::timeout(Duration::from_secs(5), client.apiserver_version()).await,
        Ok(Ok(_))
    )
}

async fn start(root: &Path) -> Result<()> {
    let output = Command::new("bash")
        .arg(root.join("scripts/localcluster.sh"))
        .arg("up")
        .current_dir(root)
        .stdin(Stdio::null())
        .output()
        .await
        .context("running scripts/localcluster.sh up")?;
    if !output.status.success() {
        bail!(
            "the local Kubernetes cluster could not be started: `scripts/localcluster.sh up` exited with {}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            output.status,
            String::from_utf8_lossy(&output.stdout).trim(),
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    if !responds(root).await {
        bail!(
            "scripts/localcluster.sh up succeeded but no apiserver answers through {}",
            kubeconfig_path(root).display()
        );
    }
    Ok(())
}

async fn client_from_kubeconfig(path: &Path, token: Option<&str>) -> Result<Client> {
    let kubeconfig =
        Kubeconfig::read_from(path).with_context(|| format!("reading {}", path.display()))?;
    let mut config = Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
        .await
        .with_context(|| format!("loading {}", path.display()))?;
    if let Some(token) = token {
        config.auth_info = AuthInfo {
            token: Some(token.to_owned().into()),
            ..AuthInfo::default()
        };
    }
    Client::try_from(config).context("building a Kubernetes client")
}

/// A namespace that exists for one test: uniquely named, deleted by
/// [`TestNamespace::delete`] or, should the test end early, when dropped.
pub struct TestNamespace {
    name: String,
    client: Client,
    kubectl: PathBuf,
    kubeconfig: PathBuf,
    deleted: bool,
}

static NAMESPACE_COUNTER: AtomicU64 = AtomicU64::new(0);

impl TestNamespace {
    /// Creates a namespace named `<prefix>-<unique suffix>`.
    pub async fn create(cluster: &Cluster, prefix: &str) -> Result<Self> {
        Self::create_with_labels(cluster, prefix, &[]).await
    }

    /// Creates a namespace named `<prefix>-<unique suffix>` carrying `labels`.
    pub async fn create_with_labels(
        cluster: &Cluster,
        prefix: &str,
        labels: &[(&str, &str)],
    ) -> Result<Self> {
        let name = unique_name(prefix);
        let namespace = Namespace {
            metadata: ObjectMeta {
                name: Some(name.clone()),
                labels: Some(
                    labels
                        .iter()
                        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                        .chain([("berth.dev/test-namespace".to_owned(), "true".to_owned())])
                        .collect(),
                ),
                ..ObjectMeta::default()
            },
            ..Namespace::default()
        };
        Api::<Namespace>::all(cluster.client())
            .create(&PostParams::default(), &namespace)
            .await
            .with_context(|| format!("creating namespace {name}"))?;
        Ok(Self {
            name,
            client: cluster.client(),
            kubectl: cluster.root.join(".berth/bin/kubectl"),
            kubeconfig: cluster.kubeconfig(),
            deleted: false,
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Starts the deletion of the namespace (and so of everything in it)
    /// without waiting for it to finish.
    pub async fn delete(mut self) -> Result<()> {
        self.deleted = true;
        match Api::<Namespace>::all(self.client.clone())
            .delete(&self.name, &DeleteParams::default())
            .await
        {
            Ok(_) => Ok(()),
            Err(kube::Error::Api(e)) if e.code == 404 => Ok(()),
            Err(e) => Err(e).with_context(|| format!("deleting namespace {}", self.name)),
        }
    }
}

impl Drop for TestNamespace {
    // Drop cannot await, and the test's runtime may already be shutting
    // down, so the namespace is deleted by the kubectl that the cluster
    // script installs, without waiting for the deletion to complete.
    fn drop(&mut self) {
        if self.deleted {
            return;
        }
        let _ = std::process::Command::new(&self.kubectl)
            .arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .args([
                "delete",
                "namespace",
                &self.name,
                "--wait=false",
                "--ignore-not-found",
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

/// A name for a test object: `prefix` made a valid DNS label, then a suffix
/// unique across processes and calls.
pub fn unique_name(prefix: &str) -> String {
    let mut clean: String = prefix
        .to_ascii_lowercase()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    clean.truncate(40);
    let clean = clean.trim_matches('-');
    let n = NAMESPACE_COUNTER.fetch_add(1, Ordering::Relaxed);
    let id = uuid::Uuid::new_v4().simple().to_string();
    format!(
        "{}-{}{}",
        if clean.is_empty() { "test" } else { clean },
        &id[..8],
        n
    )
}

/// Polls `check` until it returns `Ok`, at most until `timeout` has passed;
/// then fails with the last error `check` gave.
pub async fn eventually<T, F, Fut>(timeout: Duration, mut check: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T>>,
{
    let deadline = Instant::now() + timeout;
    let mut pause = Duration::from_millis(50);
    loop {
        match check().await {
            Ok(value) => return Ok(value),
            Err(err) if Instant::now() >= deadline => {
                return Err(err.context(format!("condition still not met after {timeout:?}")));
            }
            Err(_) => {}
        }
        tokio::time::sleep(pause.min(deadline.saturating_duration_since(Instant::now()))).await;
        pause = (pause * 2).min(Duration::from_millis(500));
    }
}

/// The status code, reason and message of a Kubernetes API error, if `err`
/// is one.
pub fn api_status(err: &kube::Error) -> Option<(u16, &str, &str)> {
    match err {
        kube::Error::Api(e) => Some((e.code, e.reason.as_str(), e.message.as_str())),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unique_names_are_dns_labels_and_differ() {
        let a = unique_name("Quota_Test!");
        let b = unique_name("Quota_Test!");
        assert_ne!(a, b);
        for name in [&a, &b] {
            assert!(name.len() <= 63, "{name}");
            assert!(name.starts_with("quota-test-"), "{name}");
            assert!(
                name.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'),
                "{name}"
            );
        }
    }

    #[tokio::test]
    async fn eventually_returns_the_first_success() {
        let mut calls = 0;
        let value = eventually(Duration::from_secs(5), || {
            calls += 1;
            let n = calls;
            async move {
                if n < 3 {
                    Err(anyhow!("not yet"))
                } else {
                    Ok(n)
                }
            }
        })
        .await
        .unwrap();
        assert_eq!(value, 3);
    }

    #[tokio::test]
    async fn eventually_reports_the_last_error_at_the_deadline() {
        let err = eventually(Duration::from_millis(200), || async {
            Err::<(), _>(anyhow!("still broken"))
        })
        .await
        .unwrap_err();
        let text = format!("{err:#}");
        assert!(text.contains("still broken"), "{text}");
        assert!(text.contains("not met"), "{text}");
    }
}
