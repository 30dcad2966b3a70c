//! `berth`: the one binary. It only wires the parts together; each part lives
//! in its own crate. Besides the server it is the client of one
//! (`berth login`, `berth env ...`, `berth admin ...`: `berth-cli`).

mod controller;

use berth::{config, serve};
use clap::{CommandFactory, Parser, Subcommand};
use std::io::IsTerminal;
use std::path::PathBuf;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

#[derive(Parser)]
#[command(
    name = "berth",
    version,
    about = "Self-service Kubernetes environments"
)]
struct Cli {
    /// Optional TOML file; flags and BERTH_* variables override it.
    #[arg(long, global = true)]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the API and the web UI.
    // Boxed: its many settings would make every other command as large.
    Serve(Box<config::ServeArgs>),
    /// Run only the controller (leader-elected; any number of replicas).
    Controller(controller::ControllerArgs),
    /// Print the Environment CRD as YAML, for `kubectl apply -f -`.
    Crd,
    /// Print everything a cluster needs before Berth manages it, for
    /// `kubectl apply --server-side -f -`: the Environment and
    /// EnvironmentPolicy CRDs, the tenant ClusterRoles, the admission
    /// policy that holds Environments written outside Berth to the admin
    /// policy (which Berth publishes when it starts), and the tenant
    /// guardrails, with their bindings.
    InstallManifests {
        /// The username Berth runs as in the cluster (`kubectl auth whoami`
        /// with Berth's credentials): the one writer the admission policy
        /// lets through, as what Berth writes was judged by its API.
        #[arg(long)]
        berth_username: String,
        /// Apps exposed by ingress are served at `<app>.<environment>.<domain>`:
        /// the hosts tenants' Ingresses may use.
        #[arg(long, env = "BERTH_INGRESS_DOMAIN", default_value = "berth.localhost")]
        ingress_domain: String,
    },
    /// Re-encrypt every stored secret under the first key of
    /// BERTH_ENCRYPTION_KEYS (the new key first, the old ones after it);
    /// safe to run again, and while Berth serves.
    RotateKeys {
        /// `sqlite://PATH` or `postgres://...`.
        #[arg(long, env = "BERTH_DATABASE_URL", hide_env_values = true, default_value = config::DEFAULT_DATABASE_URL)]
        database_url: String,
    },
    #[command(flatten)]
    Client(berth_cli::ClientCommand),
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    if let Command::Client(command) = cli.command {
        // A client prints answers, never log lines, to standard output.
        let code = berth_cli::run(command, Cli::command).await;
        std::process::exit(code);
    }
    let _flush_logs_on_exit = init_logging();
    match cli.command {
        Command::Serve(args) => {
            let config = config::Config::load(*args, cli.config.as_deref())?;
            serve::run(config).await
        }
        Command::Controller(args) => controller::run(args).await,
        Command::Crd => {
            print!("{}", berth_manifests::crd_yaml());
            Ok(())
        }
        Command::InstallManifests {
            berth_username,
            ingress_domain,
        } => {
            let guardrails = berth_manifests::GuardrailOptions {
                ingress_domain,
                ..Default::default()
            };
            print!(
                "{}",
                berth_manifests::install_manifests(&berth_username, &guardrails)
            );
            Ok(())
        }
        Command::RotateKeys { database_url } => berth::rotate_keys::run(&database_url).await,
        Command::Client(_) => unreachable!("client commands ran above"),
    }
}

/// JSON lines when the output is not a terminal (collectors parse them), text for people.
/// Lines are written by a background thread so that a request never waits on
/// stdout's lock; when that thread falls behind, requests wait rather than
/// lines being dropped. The returned guard flushes what is left on exit.
fn init_logging() -> tracing_appender::non_blocking::WorkerGuard {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        tracing_subscriber::EnvFilter::new("info,sqlx=warn,kube=warn,tower_http=info")
    });
    let terminal = std::io::stdout().is_terminal();
    let (writer, guard) = tracing_appender::non_blocking::NonBlockingBuilder::default()
        .lossy(false)
        .finish(std::io::stdout());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer);
    // Warnings and errors also go to Splunk, when it is configured.
    let splunk = berth_splunk::log_layer();
    if terminal {
        builder.finish().with(splunk).init();
    } else {
        builder
            .json()
            .with_current_span(true)
            .with_span_list(false)
            .finish()
            .with(splunk)
            .init();
    }
    guard
}
