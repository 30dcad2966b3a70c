//! `bench/provision`: time from creating N Environments at once to all
//! Ready, against `kubectl apply --server-side` of the builder's YAML for the
//! same specs followed by `kubectl wait` for their Deployments, on the same
//! cluster in the same run. Usage: `provision [N...]` (default 1 100).

use anyhow::{Context, Result, bail};
use berth_controller::{ControllerOptions, Metrics};
use berth_core::environment::{Policy, builtin_templates, resolve};
use berth_manifests::{Environment, EnvironmentCrdSpec, Phase};
use futures::future::try_join_all;
use k8s_openapi::api::core::v1::Namespace;
use kube::api::{DeleteParams, ListParams, Patch, PatchParams};
use kube::{Api, Client};
use serde_json::json;
use std::time::{Duration, Instant};

const RUN_LABEL: &str = "berth.dev/bench-run";

fn spec() -> serde_json::Value {
    json!({
        "template": "small",
        "apps": [{"name": "web", "image": "nginx:1.27", "replicas": 1, "port": 8080, "expose": "cluster"}],
        "members": [{"email": "ada@example.com", "role": "owner"}],
    })
}

#[tokio::main]
async fn main() -> Result<()> {
    let counts: Vec<usize> = std::env::args()
        .skip(1)
        .map(|a| a.parse())
        .collect::<Result<_, _>>()?;
    let counts = if counts.is_empty() {
        vec![1, 100]
    } else {
        counts
    };
    let cluster = berth_testkit::cluster().await?;
    let client = cluster.client();
    let run = berth_testkit::unique_name("bench");
    let mut options = ControllerOptions::new(format!("bench-{run}"));
    options.lease.name = format!("berth-bench-{run}");
    options.selector = Some(format!("{RUN_LABEL}={run}"));
    let controller = tokio::spawn(berth_controller::run(
        client.clone(),
        options,
        Metrics::register(&mut Default::default()),
        std::future::pending(),
    ));
    // Warm up: the controller leads and has its watches running.
    time_berth(&client, &run, "warm", 1).await?;

    println!(
        "| environments | Berth (create -> all Ready) | kubectl apply --server-side + wait | ratio |"
    );
    println!("|---|---|---|---|");
    for n in counts {
        let berth = time_berth(&client, &run, &format!("b{n}"), n).await?;
        let kubectl = time_kubectl(&cluster, &client, &run, &format!("k{n}"), n).await?;
        println!(
            "| {n} | {:.2} s | {:.2} s | {:.2} |",
            berth.as_secs_f64(),
            kubectl.as_secs_f64(),
            berth.as_secs_f64() / kubectl.as_secs_f64()
        );
    }
    controller.abort();
    let _ = Api::<k8s_openapi::api::coordination::v1::Lease>::namespaced(client, "kube-system")
        .delete(&format!("berth-bench-{run}"), &DeleteParams::default())
        .await;
    Ok(())
}

fn names(run: &str, prefix: &str, n: usize) -> Vec<String> {
    let tag = &run[run.len() - 6..];
    (0..n).map(|i| format!("{prefix}-{tag}-{i}")).collect()
}

async fn time_berth(client: &Client, run: &str, prefix: &str, n: usize) -> Result<Duration> {
    let api = Api::<Environment>::all(client.clone());
    let names = names(run, prefix, n);
    let start = Instant::now();
    try_join_all(names.iter().map(|name| {
        let body = json!({
            "apiVersion": "berth.dev/v1alpha1", "kind": "Environment",
            "metadata": {"name": name, "labels": {RUN_LABEL: run}},
            "spec": spec(),
        });
        let api = api.clone();
        async move {
            api.patch(
                name,
                &PatchParams::apply("bench").force(),
                &Patch::Apply(&body),
            )
            .await
        }
    }))
    .await?;
    let selector = format!("{RUN_LABEL}={run}");
    loop {
        let list = api.list(&ListParams::default().labels(&selector)).await?;
        let ready = list
            .items
            .iter()
            .filter(|e| names.contains(e.metadata.name.as_ref().unwrap()))
            .filter(|e| e.status.as_ref().and_then(|s| s.phase) == Some(Phase::Ready))
            .count();
        if ready == n {
            break;
        }
        if start.elapsed() > Duration::from_secs(600) {
            bail!("only {ready}/{n} Ready after 600 s");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let elapsed = start.elapsed();
    for name in &names {
        api.delete(name, &DeleteParams::default()).await?;
    }
    wait_gone(client, &names).await?;
    Ok(elapsed)
}

async fn time_kubectl(
    cluster: &berth_testkit::Cluster,
    client: &Client,
    run: &str,
    prefix: &str,
    n: usize,
) -> Result<Duration> {
    let names = names(run, prefix, n);
    let mut yaml = String::new();
    for name in &names {
        let spec: EnvironmentCrdSpec = serde_json::from_value(spec())?;
        let parsed = Environment::new(name, spec)
            .parse_spec()
            .map_err(|e| anyhow::anyhow!("{e:?}"))?;
        let resolved = resolve(parsed, &builtin_templates(), &Policy::default())
            .map_err(|e| anyhow::anyhow!("{e:?}"))?;
        let objects = berth_manifests::build(&resolved, &Default::default());
        for object in &objects {
            let mut json = object.to_json();
            json["metadata"]["labels"][RUN_LABEL] = run.into();
            yaml.push_str("---\n");
            yaml.push_str(&serde_json::to_string(&json)?);
            yaml.push('\n');
        }
    }
    let file = std::env::temp_dir().join(format!("{run}-{prefix}.yaml"));
    std::fs::write(&file, yaml)?;
    let kubectl = |args: Vec<String>| {
        let status = std::process::Command::new(cluster.repo_root().join(".berth/bin/kubectl"))
            .arg("--kubeconfig")
            .arg(cluster.kubeconfig())
            .args(&args)
            .stdout(std::process::Stdio::null())
            .status();
        async move {
            match status {
                Ok(s) if s.success() => Ok(()),
                other => bail!("kubectl {args:?}: {other:?}"),
            }
        }
    };
    let start = Instant::now();
    kubectl(vec![
        "apply".into(),
        "--server-side".into(),
        "-f".into(),
        file.display().to_string(),
    ])
    .await?;
    kubectl(vec![
        "wait".into(),
        "--for=condition=Available".into(),
        "deployment".into(),
        "-A".into(),
        "-l".into(),
        format!("{RUN_LABEL}={run}"),
        "--timeout=600s".into(),
    ])
    .await
    .context("kubectl wait")?;
    let elapsed = start.elapsed();
    let namespaces = Api::<Namespace>::all(client.clone());
    for name in &names {
        namespaces.delete(name, &DeleteParams::default()).await?;
    }
    wait_gone(client, &names).await?;
    Ok(elapsed)
}

async fn wait_gone(client: &Client, names: &[String]) -> Result<()> {
    let namespaces = Api::<Namespace>::all(client.clone());
    let envs = Api::<Environment>::all(client.clone());
    berth_testkit::eventually(Duration::from_secs(600), || async {
        for name in names {
            if namespaces.get_opt(name).await?.is_some() || envs.get_opt(name).await?.is_some() {
                bail!("{name} still exists");
            }
        }
        Ok(())
    })
    .await
}
