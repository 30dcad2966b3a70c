//! The connection to the Kubernetes cluster. Berth starts without one and
//! connects when the cluster appears, so accounts work while it is away.
//! Once connected, Environments are served from a watch cache (a kube-rs
//! reflector), never from one apiserver call per request.

use crate::environments::changes::Changes;
use crate::environments::listing::Listing;
use crate::error::ApiError;
use berth_manifests::Environment;
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, Patch, PatchParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{CustomResourceExt, Resource};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::OnceCell;

/// The admin kubeconfig that `make cluster-up` writes.
pub const LOCAL_CLUSTER_KUBECONFIG: &str = ".berth/cluster/kubeconfig";
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);
const CACHE_SYNC_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a write waits for the cache to show it (see [`Connection::caught_up`]).
const CATCH_UP_TIMEOUT: Duration = Duration::from_secs(5);
pub const FIELD_MANAGER: &str = "berth";

pub struct Cluster {
    kubeconfig: Option<PathBuf>,
    connection: OnceCell<Connection>,
}

/// A working connection: the client, what a kubeconfig for tenants needs to
/// know of the server, and the Environment cache.
pub struct Connection {
    pub client: kube::Client,
    pub server: String,
    /// PEM of the CA that signs the apiserver's certificate, if any.
    pub ca_pem: Option<String>,
    pub environments: Store<Environment>,
    /// List answers rendered from `environments`.
    pub listing: Arc<Listing>,
    /// What live views (`?watch=true`) learn of changes to `environments`.
    pub changes: Arc<Changes>,
}

impl Connection {
    /// Returns once the cache holds `written` (an Environment this process
    /// has just created or changed) or a later version of it, a deletion
    /// under way included; at most [`CATCH_UP_TIMEOUT`] later. Reads are
    /// served from the cache, which learns of a write only through the
    /// watch: without this, a caller could get 404 for an environment it was
    /// just answered 201 for. The write is made either way; past the
    /// deadline (a watch far behind) the cache is left to catch up later.
    pub async fn caught_up(&self, written: &Environment) {
        self.until_cached(written, |cached| {
            cached.is_some_and(|cached| at_least(cached, written))
        })
        .await;
    }

    /// Like [`Self::caught_up`], for a deletion of `deleted` just asked for:
    /// returns once the cache shows it being deleted or gone.
    pub async fn caught_up_deleting(&self, deleted: &Environment) {
        self.until_cached(deleted, |cached| {
            cached.is_none_or(|cached| {
                cached.metadata.uid != deleted.metadata.uid
                    || cached.metadata.deletion_timestamp.is_some()
            })
        })
        .await;
    }

    /// Polls the cache's entry of `object` until `done` holds for it, at
    /// most [`CATCH_UP_TIMEOUT`].
    async fn until_cached(
        &self,
        object: &Environment,
        done: impl Fn(Option<&Environment>) -> bool,
    ) {
        let key = ObjectRef::from_obj(object);
        let deadline = tokio::time::Instant::now() + CATCH_UP_TIMEOUT;
        while !done(self.environments.get(&key).as_deref())
            && tokio::time::Instant::now() < deadline
        {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

/// Whether `cached` is `written` or a later version of the same object: a
/// deletion under way, or a later resourceVersion (etcd's revision, which
/// the apiserver's own watch cache compares as a number; if one is not a
/// number, only the same version counts).
fn at_least(cached: &Environment, written: &Environment) -> bool {
    let (cached, written) = (&cached.metadata, &written.metadata);
    if cached.uid != written.uid {
        return false;
    }
    if cached.deletion_timestamp.is_some() || cached.resource_version == written.resource_version {
        return true;
    }
    let revision = |v: &Option<String>| v.as_deref().and_then(|v| v.parse::<u64>().ok());
    match (
        revision(&cached.resource_version),
        revision(&written.resource_version),
    ) {
        (Some(cached), Some(written)) => cached >= written,
        _ => false,
    }
}

impl Cluster {
    pub fn new(kubeconfig: Option<PathBuf>) -> Self {
        Self {
            kubeconfig,
            connection: OnceCell::new(),
        }
    }

    /// The connection, made on first use; until it can be made, every call
    /// answers 503 naming the cluster.
    pub async fn connection(&self) -> Result<&Connection, ApiError> {
        self.connection
            .get_or_try_init(|| self.connect())
            .await
            .map_err(|why| ApiError::Unavailable {
                message: format!("the cluster is not reachable: {why}"),
                details: vec![],
                retry_after: Duration::from_secs(5),
            })
    }

    /// The connection if it is made, without waiting for one.
    pub fn connected(&self) -> Option<&Connection> {
        self.connection.get()
    }

    /// `Err` says, for a person, why the cluster cannot be reached.
    pub async fn check(&self) -> Result<(), String> {
        let connection = match self.connection().await {
            Ok(connection) => connection,
            Err(ApiError::Unavailable { message, .. }) => return Err(message),
            Err(other) => return Err(other.to_string()),
        };
        match tokio::time::timeout(PROBE_TIMEOUT, connection.client.apiserver_version()).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(format!("the Kubernetes API server does not answer: {e}")),
            Err(_) => Err("the Kubernetes API server did not answer within 2 s".into()),
        }
    }

    /// A bare client, without the Environment cache: for the controller.
    pub async fn client(&self) -> Result<kube::Client, String> {
        let config = self.load_config().await?;
        kube::Client::try_from(config).map_err(|e| format!("cannot build a cluster client: {e}"))
    }

    async fn connect(&self) -> Result<Connection, String> {
        let config = self.load_config().await?;
        let server = config
            .cluster_url
            .to_string()
            .trim_end_matches('/')
            .to_owned();
        let ca_pem = config
            .root_cert
            .as_ref()
            .map(|certs| certs.iter().map(|der| pem("CERTIFICATE", der)).collect());
        let client = kube::Client::try_from(config)
            .map_err(|e| format!("cannot build a cluster client: {e}"))?;
        tokio::time::timeout(PROBE_TIMEOUT, client.apiserver_version())
            .await
            .map_err(|_| "the Kubernetes API server did not answer within 2 s".to_owned())?
            .map_err(|e| format!("the Kubernetes API server does not answer: {e}"))?;
        install_crd(&client).await?;
        let listing = Arc::new(Listing::default());
        let changes = Arc::new(Changes::default());
        let environments = start_cache(client.clone(), listing.clone(), changes.clone()).await?;
        tracing::info!(%server, "connected to the cluster");
        Ok(Connection {
            client,
            server,
            ca_pem,
            environments,
            listing,
            changes,
        })
    }

    /// KUBECONFIG if given, else the in-cluster service account, else the
    /// local development cluster.
    async fn load_config(&self) -> Result<kube::Config, String> {
        if let Some(path) = &self.kubeconfig {
            return from_file(path).await;
        }
        if let Ok(config) = kube::Config::incluster() {
            return Ok(config);
        }
        let local = Path::new(LOCAL_CLUSTER_KUBECONFIG);
        if local.exists() {
            return from_file(local).await;
        }
        Err("no cluster configured: set KUBECONFIG, run in a cluster, or start one with `make cluster-up`".into())
    }
}

async fn from_file(path: &Path) -> Result<kube::Config, String> {
    let kubeconfig = Kubeconfig::read_from(path)
        .map_err(|e| format!("cannot read kubeconfig {}: {e}", path.display()))?;
    kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
        .await
        .map_err(|e| format!("invalid kubeconfig {}: {e}", path.display()))
}

/// Applies the Environment CRD (idempotent), so the API works before or
/// without a controller having done so.
async fn install_crd(client: &kube::Client) -> Result<(), String> {
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    let crd = Environment::crd();
    let name = crd.meta().name.clone().unwrap_or_default();
    crds.patch(
        &name,
        &PatchParams::apply(FIELD_MANAGER).force(),
        &Patch::Apply(&crd),
    )
    .await
    .map_err(|e| format!("cannot install the Environment CRD: {e}"))?;
    Ok(())
}

async fn start_cache(
    client: kube::Client,
    listing: Arc<Listing>,
    changes: Arc<Changes>,
) -> Result<Store<Environment>, String> {
    let api: Api<Environment> = Api::all(client);
    let (reader, writer) = reflector::store();
    let before = reader.clone();
    let recorder = changes.clone();
    // Seen before `reflect` applies each event, while the cache still holds
    // the old object: who stops seeing an environment is known only then.
    let stream = watcher(api, watcher::Config::default())
        .default_backoff()
        .inspect_ok(move |event| match event {
            watcher::Event::Init => recorder.relisting(),
            watcher::Event::InitApply(env) => recorder.replacing(None, Some(env)),
            watcher::Event::InitDone => recorder.relisted(&before.state()),
            watcher::Event::Apply(env) => {
                recorder.replacing(before.get(&ObjectRef::from_obj(env)).as_deref(), Some(env))
            }
            watcher::Event::Delete(env) => recorder.replacing(Some(env), None),
        })
        .reflect(writer);
    tokio::spawn(async move {
        futures::pin_mut!(stream);
        while let Some(event) = stream.next().await {
            match event {
                // `reflect` has put the change in the cache, within this same poll,
                // so a list never lags a get by more than this line.
                Ok(_) => {
                    listing.changed();
                    changes.changed();
                }
                Err(e) => tracing::warn!(error = %e, "environment watch interrupted; retrying"),
            }
        }
    });
    // The CRD may take a moment to be served after it is created.
    tokio::time::timeout(CACHE_SYNC_TIMEOUT, reader.wait_until_ready())
        .await
        .map_err(|_| "the Environment watch did not sync within 10 s".to_owned())?
        .map_err(|e| format!("the Environment watch stopped: {e}"))?;
    Ok(reader)
}

fn pem(label: &str, der: &[u8]) -> String {
    use base64::Engine;
    let encoded = base64::engine::general_purpose::STANDARD.encode(der);
    let lines: Vec<&str> = encoded
        .as_bytes()
        .chunks(64)
        .map(|c| std::str::from_utf8(c).expect("base64 is ASCII"))
        .collect();
    format!(
        "-----BEGIN {label}-----\n{}\n-----END {label}-----\n",
        lines.join("\n")
    )
}

#[cfg(test)]
mod tests {
    use super::at_least;
    use berth_manifests::{Environment, EnvironmentCrdSpec};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
    use k8s_openapi::jiff::Timestamp;

    fn env(uid: &str, version: &str) -> Environment {
        let mut env = Environment::new("a", EnvironmentCrdSpec::default());
        env.metadata.uid = Some(uid.into());
        env.metadata.resource_version = Some(version.into());
        env
    }

    #[test]
    fn the_cache_has_caught_up_with_the_same_or_a_later_version_only() {
        let written = env("u1", "120");
        assert!(at_least(&env("u1", "120"), &written));
        assert!(
            at_least(&env("u1", "121"), &written),
            "the controller wrote status since"
        );
        assert!(!at_least(&env("u1", "119"), &written));
        assert!(!at_least(&env("u0", "125"), &written), "an older namesake");
        assert!(!at_least(&env("u1", "opaque"), &written));
        let mut deleting = env("u1", "119");
        deleting.metadata.deletion_timestamp = Some(Time(Timestamp::now()));
        assert!(at_least(&deleting, &written));
    }
}
