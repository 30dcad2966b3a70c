//! `berth controller`: only the controller, with its own /metrics and /healthz.

use anyhow::Context;
use axum::Router;
use axum::extract::State;
use axum::http::header::CONTENT_TYPE;
use axum::response::IntoResponse;
use axum::routing::get;
use berth::replica_identity;
use berth_api::Cluster;
use berth_controller::{AdmissionPolicies, ControllerOptions, Metrics};
use prometheus_client::registry::Registry;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

#[derive(clap::Args)]
pub struct ControllerArgs {
    /// Kubeconfig of the cluster to manage; else in-cluster, else the local cluster's.
    #[arg(long, env = "KUBECONFIG")]
    kubeconfig: Option<PathBuf>,
    /// This replica's name in the leader lease; unique per replica.
    #[arg(long, env = "BERTH_CONTROLLER_IDENTITY")]
    identity: Option<String>,
    /// Where /metrics and /healthz are served.
    #[arg(
        long,
        env = "BERTH_CONTROLLER_METRICS_LISTEN",
        default_value = "127.0.0.1:9091"
    )]
    metrics_listen: SocketAddr,
    /// Namespace of the leader Lease.
    #[arg(
        long,
        env = "BERTH_CONTROLLER_LEASE_NAMESPACE",
        default_value = "kube-system"
    )]
    lease_namespace: String,
    /// Name of the leader Lease; replicas that share it elect one leader.
    #[arg(
        long,
        env = "BERTH_CONTROLLER_LEASE_NAME",
        default_value = "berth-controller"
    )]
    lease_name: String,
    /// Reconcile only Environments matching this label selector (sharding, tests).
    #[arg(long, env = "BERTH_CONTROLLER_SELECTOR")]
    selector: Option<String>,
    /// Apps exposed by ingress are served at `<app>.<environment>.<domain>`.
    #[arg(long, env = "BERTH_INGRESS_DOMAIN", default_value = "berth.localhost")]
    ingress_domain: String,
    /// Namespace of the ingress controller: isolated environments accept traffic from it.
    #[arg(long, env = "BERTH_INGRESS_NAMESPACE")]
    ingress_namespace: Option<String>,
    /// CIDRs isolated environments may not send to, beyond link-local.
    #[arg(long, env = "BERTH_BLOCKED_EGRESS_CIDRS", value_delimiter = ',')]
    blocked_egress_cidrs: Vec<String>,
    /// Ingress annotations tenants may use beyond the default allow-list.
    #[arg(long, env = "BERTH_INGRESS_ANNOTATIONS", value_delimiter = ',')]
    ingress_annotations: Vec<String>,
    /// Priority classes tenants' pods may name (default: none).
    #[arg(long, env = "BERTH_PRIORITY_CLASSES", value_delimiter = ',')]
    priority_classes: Vec<String>,
    /// Do not apply the CRD at start; it must then be installed (`berth crd`).
    #[arg(long)]
    no_install_crd: bool,
    /// Do not write the admission policies and guardrails; only check the
    /// installed ones (the Helm chart renders them).
    #[arg(long, env = "BERTH_NO_INSTALL_ADMISSION_POLICIES")]
    no_install_admission_policies: bool,
    #[command(flatten)]
    sentry: berth::reporting::SentryArgs,
}

pub async fn run(args: ControllerArgs) -> anyhow::Result<()> {
    let reporting = args
        .sentry
        .settings(None, None)?
        .as_ref()
        .map(berth::reporting::start)
        .transpose()?;
    let client = Cluster::new(args.kubeconfig)
        .client()
        .await
        .map_err(anyhow::Error::msg)?;
    let mut options = ControllerOptions::new(args.identity.unwrap_or_else(replica_identity));
    options.lease.namespace = args.lease_namespace;
    options.lease.name = args.lease_name;
    options.selector = args.selector;
    options.build.ingress_domain = args.ingress_domain;
    berth::config::Network::new(
        args.ingress_namespace,
        Vec::new(),
        args.blocked_egress_cidrs,
    )?
    .allowing(args.ingress_annotations, args.priority_classes)?
    .apply_to(&mut options);
    options.install_crd = !args.no_install_crd;
    if args.no_install_admission_policies {
        options.admission_policies = AdmissionPolicies::Verify;
    }

    let mut registry = Registry::default();
    let metrics = Metrics::register(&mut registry);
    let listener = tokio::net::TcpListener::bind(args.metrics_listen)
        .await
        .with_context(|| format!("binding {}", args.metrics_listen))?;
    tracing::info!(
        identity = %options.lease.identity,
        "metrics on http://{}/metrics",
        listener.local_addr()?
    );
    let app = Router::new()
        .route("/metrics", get(metrics_text))
        .route("/healthz", get(|| async { "ok" }))
        .with_state(Arc::new(registry));
    let server = tokio::spawn(async move { axum::serve(listener, app).await });

    let outcome =
        berth_controller::run(client, options, metrics, berth::serve::shutdown_signal()).await;
    server.abort();
    if let Some(reporting) = reporting {
        tokio::task::spawn_blocking(move || berth::reporting::stop(reporting)).await?;
    }
    Ok(outcome?)
}

async fn metrics_text(State(registry): State<Arc<Registry>>) -> impl IntoResponse {
    let mut text = String::new();
    match prometheus_client::encoding::text::encode(&mut text, &registry) {
        Ok(()) => (
            [(
                CONTENT_TYPE,
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
            )],
            text,
        )
            .into_response(),
        Err(_) => axum::http::StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}
