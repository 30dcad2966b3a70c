//! The fake nodes serve the kubelet's HTTPS API: container logs through the
//! apiserver's `pods/log`, metrics for metrics-server (`metrics.k8s.io`) and
//! for Prometheus (`/metrics/cadvisor`, through the apiserver's node proxy or
//! directly), and they refuse callers the cluster does not authorize.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, bail, ensure};
use berth_testkit::{Cluster, TestNamespace, api_status, cluster, eventually};
use futures::{AsyncBufReadExt, StreamExt};
use k8s_openapi::api::authentication::v1::TokenRequest;
use k8s_openapi::api::core::v1::{Node, Pod, ServiceAccount};
use k8s_openapi::serde::de::DeserializeOwned;
use kube::api::{
    ApiResource, DeleteParams, DynamicObject, GetParams, GroupVersionKind, LogParams, PostParams,
};
use kube::config::{AuthInfo, KubeConfigOptions, Kubeconfig};
use kube::{Api, Client, Config};
use serde_json::json;

const WAIT: Duration = Duration::from_secs(60);
/// The fake containers log a line every two seconds from their start.
const LOG_INTERVAL_SECS: i64 = 2;

fn object<T: DeserializeOwned>(value: serde_json::Value) -> T {
    serde_json::from_value(value).expect("test object matches its Kubernetes type")
}

/// A pod of two containers, `app` with requests and `sidecar` without.
fn two_container_pod(name: &str) -> Pod {
    object(json!({
        "metadata": {"name": name},
        "spec": {"containers": [
            {
                "name": "app",
                "image": "registry.invalid/app:1",
                "resources": {"requests": {"cpu": "500m", "memory": "128Mi"}},
            },
            {"name": "sidecar", "image": "registry.invalid/sidecar:1"},
        ]},
    }))
}

/// Creates the pod and waits until it runs; returns it as running.
async fn running_pod(pods: &Api<Pod>, pod: &Pod) -> Result<Pod> {
    pods.create(&PostParams::default(), pod).await?;
    let name = pod.metadata.name.as_deref().context("pod without a name")?;
    eventually(WAIT, || async {
        let pod = pods.get(name).await?;
        let phase = pod.status.as_ref().and_then(|s| s.phase.clone());
        ensure!(phase.as_deref() == Some("Running"), "pod phase {phase:?}");
        Ok(pod)
    })
    .await
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs() as i64
}

/// When the named container of a running pod started, in Unix seconds.
fn started_at(pod: &Pod, container: &str) -> Result<i64> {
    let status = pod
        .status
        .as_ref()
        .and_then(|s| s.container_statuses.as_ref())
        .and_then(|cs| cs.iter().find(|c| c.name == container))
        .with_context(|| format!("no status for container {container}"))?;
    let running = status
        .state
        .as_ref()
        .and_then(|s| s.running.as_ref())
        .and_then(|r| r.started_at.as_ref())
        .with_context(|| format!("container {container} is not running"))?;
    Ok(running.0.as_second())
}

/// One parsed log line: `<RFC 3339 time> <namespace>/<pod> <container> line <n>`.
#[derive(Debug, PartialEq)]
struct LogLine {
    unix: i64,
    source: String,
    container: String,
    n: i64,
}

fn parse_line(line: &str) -> Result<LogLine> {
    let fields: Vec<&str> = line.split(' ').collect();
    ensure!(
        fields.len() == 5 && fields[3] == "line",
        "unexpected log line {line:?}"
    );
    let time: k8s_openapi::jiff::Timestamp = fields[0]
        .parse()
        .with_context(|| format!("time of log line {line:?}"))?;
    Ok(LogLine {
        unix: time.as_second(),
        source: fields[1].to_owned(),
        container: fields[2].to_owned(),
        n: fields[4]
            .parse()
            .with_context(|| format!("number of log line {line:?}"))?,
    })
}

fn parse_lines(text: &str) -> Result<Vec<LogLine>> {
    text.lines().map(parse_line).collect()
}

/// Checks that lines are the container's consecutive lines, each stamped
/// with its own time: the start plus two seconds per line.
fn check_sequence(lines: &[LogLine], source: &str, container: &str, start: i64) -> Result<()> {
    for (i, l) in lines.iter().enumerate() {
        ensure!(
            l.source == source && l.container == container,
            "line of {}/{} in the logs of {source} {container}",
            l.source,
            l.container
        );
        ensure!(
            l.unix == start + l.n * LOG_INTERVAL_SECS,
            "line {} stamped {} for a container started at {start}",
            l.n,
            l.unix
        );
        if i > 0 {
            ensure!(
                l.n == lines[i - 1].n + 1,
                "line {} follows line {}",
                l.n,
                lines[i - 1].n
            );
        }
    }
    Ok(())
}

#[tokio::test]
async fn pod_logs_come_from_the_node_through_the_apiserver() -> Result<()> {
    let cluster = cluster().await?;
    let ns = TestNamespace::create(&cluster, "logs").await?;
    let pods: Api<Pod> = Api::namespaced(cluster.client(), ns.name());
    let pod = running_pod(&pods, &two_container_pod("web")).await?;
    let start = started_at(&pod, "app")?;
    let source = format!("{}/web", ns.name());
    let app = |lp: LogParams| LogParams {
        container: Some("app".into()),
        ..lp
    };

    // A few lines in, the tail is the last lines logged until now.
    let (tail, before) = eventually(WAIT, || async {
        let before = unix_now();
        let lines = parse_lines(
            &pods
                .logs(
                    "web",
                    &app(LogParams {
                        tail_lines: Some(3),
                        ..LogParams::default()
                    }),
                )
                .await?,
        )?;
        ensure!(lines.len() == 3, "{} lines logged so far", lines.len());
        Ok((lines, before))
    })
    .await?;
    check_sequence(&tail, &source, "app", start)?;
    let after = unix_now();
    let last = tail.last().expect("three lines").unix;
    ensure!(
        before - LOG_INTERVAL_SECS <= last && last <= after,
        "the last line ({last}) is not the latest one (asked between {before} and {after})"
    );

    // All lines, from the first.
    let all = parse_lines(&pods.logs("web", &app(LogParams::default())).await?)?;
    ensure!(
        all.first().map(|l| l.n) == Some(0),
        "logs do not start at line 0"
    );
    check_sequence(&all, &source, "app", start)?;

    // sinceSeconds: only lines stamped within the last four seconds.
    let before = unix_now();
    let recent = parse_lines(
        &pods
            .logs(
                "web",
                &app(LogParams {
                    since_seconds: Some(4),
                    ..LogParams::default()
                }),
            )
            .await?,
    )?;
    let after = unix_now();
    ensure!(!recent.is_empty(), "no line in the last four seconds");
    check_sequence(&recent, &source, "app", start)?;
    ensure!(
        recent[0].unix >= before - 4 - 1,
        "line {} ({}) is older than four seconds",
        recent[0].n,
        recent[0].unix
    );
    ensure!(
        recent[0].n == 0 || recent[0].unix - LOG_INTERVAL_SECS < after - 4 + 1,
        "line {} is missing from the last four seconds",
        recent[0].n - 1
    );

    // timestamps: the kubelet's RFC 3339 prefix with nanoseconds.
    let stamped = pods
        .logs(
            "web",
            &app(LogParams {
                tail_lines: Some(1),
                timestamps: true,
                ..LogParams::default()
            }),
        )
        .await?;
    let (prefix, line) = stamped
        .trim_end()
        .split_once(' ')
        .context("timestamped line without a prefix")?;
    let line = parse_line(line)?;
    let prefix: k8s_openapi::jiff::Timestamp = prefix.parse()?;
    assert_eq!(prefix.as_second(), line.unix, "{stamped:?}");
    assert!(stamped.contains(".000000000Z "), "{stamped:?}");

    // The other container has its own lines.
    let sidecar = parse_lines(
        &pods
            .logs(
                "web",
                &LogParams {
                    container: Some("sidecar".into()),
                    tail_lines: Some(2),
                    ..LogParams::default()
                },
            )
            .await?,
    )?;
    ensure!(sidecar.len() == 2, "sidecar tail: {sidecar:?}");
    check_sequence(&sidecar, &source, "sidecar", started_at(&pod, "sidecar")?)?;

    // limitBytes cuts the output.
    let limited = pods
        .logs(
            "web",
            &app(LogParams {
                limit_bytes: Some(10),
                ..LogParams::default()
            }),
        )
        .await?;
    assert_eq!(limited.len(), 10, "{limited:?}");

    // The apiserver's own checks: a container must be named when there are
    // two, and must exist.
    for (lp, expected) in [
        (LogParams::default(), "a container name must be specified"),
        (
            LogParams {
                container: Some("nope".into()),
                ..LogParams::default()
            },
            "container nope is not valid",
        ),
    ] {
        let err = pods
            .logs("web", &lp)
            .await
            .expect_err("the apiserver must refuse this log request");
        let (code, _, message) =
            api_status(&err).with_context(|| format!("not an API error: {err}"))?;
        assert_eq!(code, 400, "{message}");
        assert!(message.contains(expected), "{message}");
    }

    // A container that never restarted has no previous logs.
    let err = pods
        .logs(
            "web",
            &app(LogParams {
                previous: true,
                ..LogParams::default()
            }),
        )
        .await
        .expect_err("no previous instance of the container");
    let (code, _, message) =
        api_status(&err).with_context(|| format!("not an API error: {err}"))?;
    assert_eq!(code, 400, "{message}");
    assert!(
        message.contains("previous terminated container \"app\""),
        "{message}"
    );
    ns.delete().await
}

#[tokio::test]
async fn following_pod_logs_streams_new_lines_until_the_pod_goes() -> Result<()> {
    let cluster = cluster().await?;
    let ns = TestNamespace::create(&cluster, "logs-follow").await?;
    let pods: Api<Pod> = Api::namespaced(cluster.client(), ns.name());
    let pod = running_pod(&pods, &two_container_pod("web")).await?;
    let start = started_at(&pod, "app")?;
    let source = format!("{}/web", ns.name());
    let follow = LogParams {
        container: Some("app".into()),
        follow: true,
        tail_lines: Some(0),
        ..LogParams::default()
    };

    // With no tail, only lines logged from now on arrive, one by one.
    let before = unix_now();
    let mut lines = pods.log_stream("web", &follow).await?.lines();
    let mut followed = Vec::new();
    for _ in 0..2 {
        let line = tokio::time::timeout(Duration::from_secs(10), lines.next())
            .await
            .context("no new log line within 10 s")?
            .context("the log stream ended")??;
        followed.push(parse_line(&line)?);
    }
    check_sequence(&followed, &source, "app", start)?;
    ensure!(
        followed[0].unix >= before,
        "followed line {} was logged before the stream started ({before})",
        followed[0].unix
    );
    // A client that leaves simply drops the stream; a second follower is
    // served the same way.
    drop(lines);
    let mut lines = pods.log_stream("web", &follow).await?.lines();
    let line = tokio::time::timeout(Duration::from_secs(10), lines.next())
        .await
        .context("no new log line within 10 s")?
        .context("the log stream ended")??;
    ensure!(
        parse_line(&line)?.n > followed[1].n,
        "{line:?} is not newer than what was followed before"
    );

    // Once the pod is gone, the stream ends.
    pods.delete("web", &DeleteParams::default()).await?;
    tokio::time::timeout(Duration::from_secs(30), async {
        while let Some(line) = lines.next().await {
            line?;
        }
        Ok::<_, anyhow::Error>(())
    })
    .await
    .context("the log stream still runs 30 s after the pod's deletion")??;
    ns.delete().await
}

/// A quantity of CPU in cores or of memory in bytes.
fn quantity(q: &str) -> Result<f64> {
    let split = q
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(q.len());
    let (number, suffix) = q.split_at(split);
    let number: f64 = number.parse().with_context(|| format!("quantity {q:?}"))?;
    let scale = match suffix {
        "n" => 1e-9,
        "u" => 1e-6,
        "m" => 1e-3,
        "" => 1.0,
        "k" => 1e3,
        "M" => 1e6,
        "G" => 1e9,
        "Ki" => 1024.0,
        "Mi" => 1024.0 * 1024.0,
        "Gi" => 1024.0 * 1024.0 * 1024.0,
        _ => bail!("unknown quantity suffix in {q:?}"),
    };
    Ok(number * scale)
}

#[tokio::test]
async fn pod_metrics_appear_in_the_metrics_api() -> Result<()> {
    let cluster = cluster().await?;
    let ns = TestNamespace::create(&cluster, "metrics").await?;
    let pods: Api<Pod> = Api::namespaced(cluster.client(), ns.name());
    running_pod(&pods, &two_container_pod("web")).await?;

    let resource = ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("metrics.k8s.io", "v1beta1", "PodMetrics"),
        "pods",
    );
    let metrics: Api<DynamicObject> = Api::namespaced_with(cluster.client(), ns.name(), &resource);
    // metrics-server scrapes every ten seconds.
    let found = eventually(Duration::from_secs(90), || async {
        Ok(metrics.get("web").await?)
    })
    .await?;
    let containers = found.data["containers"]
        .as_array()
        .context("PodMetrics without containers")?;
    let usage = |name: &str, resource: &str| -> Result<f64> {
        let c = containers
            .iter()
            .find(|c| c["name"] == name)
            .with_context(|| format!("no metrics for container {name}: {containers:?}"))?;
        quantity(
            c["usage"][resource]
                .as_str()
                .with_context(|| format!("no {resource} usage for {name}: {c}"))?,
        )
    };
    // The app uses 20–80% of the 500m CPU and holds 30–70% of the 128Mi it
    // requested; the sidecar, without requests, uses a little.
    let cpu = usage("app", "cpu")?;
    assert!((0.1..=0.4).contains(&cpu), "app CPU {cpu}");
    let memory = usage("app", "memory")?;
    let mi = 1024.0 * 1024.0;
    assert!(
        (0.3 * 128.0 * mi..=0.7 * 128.0 * mi).contains(&memory),
        "app memory {memory}"
    );
    assert!(usage("sidecar", "cpu")? > 0.0, "sidecar uses no CPU");
    assert!(usage("sidecar", "memory")? > 0.0, "sidecar uses no memory");
    ns.delete().await
}

/// The node a pod runs on, and that node's kubelet address and port.
async fn kubelet_of(cluster: &Cluster, pod: &Pod) -> Result<(String, String)> {
    let node_name = pod
        .spec
        .as_ref()
        .and_then(|s| s.node_name.clone())
        .context("running pod without a node")?;
    let node = Api::<Node>::all(cluster.client()).get(&node_name).await?;
    let status = node.status.context("node without status")?;
    let ip = status
        .addresses
        .unwrap_or_default()
        .into_iter()
        .find(|a| a.type_ == "InternalIP")
        .context("node without an InternalIP")?
        .address;
    let port = status
        .daemon_endpoints
        .and_then(|d| d.kubelet_endpoint)
        .map(|e| e.port)
        .context("node without a kubelet port")?;
    Ok((node_name, format!("https://{ip}:{port}")))
}

/// A client for the kubelet at `url` that trusts the cluster CA, with the
/// admin certificate when `auth` is None, or the given credentials.
async fn kubelet_client(cluster: &Cluster, url: &str, auth: Option<AuthInfo>) -> Result<Client> {
    let kubeconfig = Kubeconfig::read_from(cluster.kubeconfig())?;
    let mut config =
        Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default()).await?;
    config.cluster_url = url.parse()?;
    if let Some(auth) = auth {
        config.auth_info = auth;
    }
    Ok(Client::try_from(config)?)
}

async fn get_text(client: &Client, dir: &str, name: &str) -> kube::Result<String> {
    let request = kube::core::Request::new(dir)
        .get(name, &GetParams::default())
        .map_err(kube::Error::BuildRequest)?;
    client.request_text(request).await
}

/// The series of a metric family for the given pod in Prometheus text.
fn series_of<'a>(text: &'a str, metric: &str, namespace: &str, pod: &str) -> Vec<&'a str> {
    text.lines()
        .filter(|l| l.starts_with(&format!("{metric}{{")))
        .filter(|l| {
            l.contains(&format!("namespace=\"{namespace}\""))
                && l.contains(&format!("pod=\"{pod}\""))
        })
        .collect()
}

#[tokio::test]
async fn cadvisor_metrics_through_the_node_proxy_and_from_the_kubelet() -> Result<()> {
    let cluster = cluster().await?;
    let ns = TestNamespace::create(&cluster, "cadvisor").await?;
    let pods: Api<Pod> = Api::namespaced(cluster.client(), ns.name());
    let pod = running_pod(&pods, &two_container_pod("web")).await?;
    let (node, kubelet_url) = kubelet_of(&cluster, &pod).await?;

    // Through the apiserver's node proxy, as the admin.
    let text = get_text(
        &cluster.client(),
        &format!("/api/v1/nodes/{node}/proxy/metrics"),
        "cadvisor",
    )
    .await?;
    let cpu = series_of(&text, "container_cpu_usage_seconds_total", ns.name(), "web");
    assert_eq!(cpu.len(), 2, "one CPU series per container: {cpu:?}");
    for container in ["app", "sidecar"] {
        let series = cpu
            .iter()
            .find(|l| l.contains(&format!("container=\"{container}\"")))
            .with_context(|| format!("no CPU series for {container}: {cpu:?}"))?;
        for label in ["id=\"/kubepods/", "image=\"registry.invalid/", "name=\""] {
            assert!(series.contains(label), "{label} missing in {series}");
        }
        let value: f64 = series
            .split(' ')
            .nth(1)
            .context("series without a value")?
            .parse()?;
        assert!(value > 0.0, "{series}");
    }
    let memory = series_of(
        &text,
        "container_memory_working_set_bytes",
        ns.name(),
        "web",
    );
    assert_eq!(memory.len(), 2, "{memory:?}");

    // Directly from the kubelet with a client certificate the cluster
    // trusts: the resource metrics metrics-server reads.
    let admin = kubelet_client(&cluster, &kubelet_url, None).await?;
    let text = get_text(&admin, "/metrics", "resource").await?;
    assert_eq!(
        series_of(&text, "container_cpu_usage_seconds_total", ns.name(), "web").len(),
        2,
        "{text}"
    );
    assert!(text.contains("\nnode_cpu_usage_seconds_total "), "{text}");
    assert!(text.contains("\nscrape_error 0 "), "{text}");
    ns.delete().await
}

#[tokio::test]
async fn the_kubelet_refuses_unauthenticated_and_unauthorized_callers() -> Result<()> {
    let cluster = cluster().await?;
    let ns = TestNamespace::create(&cluster, "kubelet-auth").await?;
    let pods: Api<Pod> = Api::namespaced(cluster.client(), ns.name());
    let pod = running_pod(&pods, &two_container_pod("web")).await?;
    let (_, kubelet_url) = kubelet_of(&cluster, &pod).await?;
    let logs_dir = format!("/containerLogs/{}/web", ns.name());

    let anonymous = kubelet_client(&cluster, &kubelet_url, Some(AuthInfo::default())).await?;
    for (dir, name) in [("/metrics", "cadvisor"), (logs_dir.as_str(), "app")] {
        let err = get_text(&anonymous, dir, name)
            .await
            .expect_err("the kubelet must refuse a caller without credentials");
        let (code, _, message) =
            api_status(&err).with_context(|| format!("not an HTTP error: {err}"))?;
        assert_eq!(code, 401, "{dir}/{name}: {message}");
    }

    // A ServiceAccount the cluster knows, but without rights on nodes.
    let token = eventually(WAIT, || async {
        let request = Api::<ServiceAccount>::namespaced(cluster.client(), ns.name())
            .create_token_request("default", &PostParams::default(), &TokenRequest::default())
            .await?;
        Ok(request
            .status
            .context("token request without status")?
            .token)
    })
    .await?;
    let service_account = kubelet_client(
        &cluster,
        &kubelet_url,
        Some(AuthInfo {
            token: Some(token.into()),
            ..AuthInfo::default()
        }),
    )
    .await?;
    let user = format!("system:serviceaccount:{}:default", ns.name());
    for (dir, name, subresource) in [
        ("/metrics", "cadvisor", "metrics"),
        (logs_dir.as_str(), "app", "proxy"),
    ] {
        let err = get_text(&service_account, dir, name)
            .await
            .expect_err("the kubelet must refuse a caller without rights on the node");
        let (code, _, message) =
            api_status(&err).with_context(|| format!("not an HTTP error: {err}"))?;
        assert_eq!(code, 403, "{dir}/{name}: {message}");
        assert!(
            message.contains(&format!("user={user}"))
                && message.contains(&format!("subresource={subresource}")),
            "{message}"
        );
    }

    // The same request with the admin's certificate succeeds: the refusals
    // above are the kubelet's authorization, not a broken endpoint.
    let admin = kubelet_client(&cluster, &kubelet_url, None).await?;
    let logs = get_text(&admin, &logs_dir, "app").await?;
    ensure!(
        logs.contains(&format!("{}/web app line 0", ns.name())),
        "{logs}"
    );
    ns.delete().await
}
