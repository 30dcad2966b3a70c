//! The connection to the Kubernetes cluster. Berth starts without one and
//! connects when the cluster appears, so accounts work while it is away.

use crate::config::LOCAL_CLUSTER_KUBECONFIG;
use berth_api::ClusterHealth;
use kube::config::{KubeConfigOptions, Kubeconfig};
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio::sync::Mutex;

const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

pub struct Cluster {
    kubeconfig: Option<PathBuf>,
    client: Mutex<Option<kube::Client>>,
}

impl Cluster {
    pub fn new(kubeconfig: Option<PathBuf>) -> Self {
        Self {
            kubeconfig,
            client: Mutex::new(None),
        }
    }

    /// A client, built on first use and kept once it worked.
    pub async fn client(&self) -> Result<kube::Client, String> {
        let mut slot = self.client.lock().await;
        if let Some(client) = slot.as_ref() {
            return Ok(client.clone());
        }
        let config = self.load_config().await?;
        let client = kube::Client::try_from(config)
            .map_err(|e| format!("cannot build a cluster client: {e}"))?;
        *slot = Some(client.clone());
        Ok(client)
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

#[async_trait::async_trait]
impl ClusterHealth for Cluster {
    async fn check(&self) -> Result<(), String> {
        let client = self.client().await?;
        match tokio::time::timeout(PROBE_TIMEOUT, client.apiserver_version()).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(format!("the Kubernetes API server does not answer: {e}")),
            Err(_) => Err("the Kubernetes API server did not answer within 2 s".into()),
        }
    }
}
