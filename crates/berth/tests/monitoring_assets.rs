//! The monitoring assets under `deploy/`: the alerting rules pass `promtool`
//! (syntax and their unit tests, every alert both firing and not), the test
//! Prometheus that `make test` starts (`BERTH_TEST_PROMETHEUS_URL`, its
//! file_sd directory in `BERTH_TEST_PROMETHEUS_TARGETS`) has loaded them and
//! evaluates them without error, and every query of both Grafana dashboards
//! returns data from it once a real Berth manages an environment running an
//! app.

mod support;

use berth_testkit::unique_name as unique;
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};
use support::*;

/// The repository's `deploy/` directory.
fn deploy() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy")
}

/// Rule files (`deploy/prometheus/*.yml`) and promtool's unit tests of them
/// (`*.test.yml`), as scripts/prometheus.sh tells them apart.
fn rule_files() -> (Vec<PathBuf>, Vec<PathBuf>) {
    let mut files: Vec<PathBuf> = std::fs::read_dir(deploy().join("prometheus"))
        .expect("deploy/prometheus is readable")
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yml"))
        .map(|p| p.canonicalize().unwrap())
        .collect();
    files.sort();
    let (tests, rules) = files
        .into_iter()
        .partition(|p| p.to_string_lossy().ends_with(".test.yml"));
    (rules, tests)
}

fn yaml(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap();
    serde_yaml::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Every alerting rule of the rule files: (group, rule).
fn alerts(rules: &[PathBuf]) -> Vec<(String, Value)> {
    let mut alerts = Vec::new();
    for path in rules {
        for group in yaml(path)["groups"].as_array().expect("groups") {
            for rule in group["rules"].as_array().expect("rules") {
                if rule.get("alert").is_some() {
                    alerts.push((group["name"].as_str().unwrap().to_owned(), rule.clone()));
                }
            }
        }
    }
    alerts
}

fn promtool(args: &[&Path], subcommand: &[&str]) -> String {
    let output = Command::new("promtool")
        .args(subcommand)
        .args(args)
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "promtool is needed (Debian's `prometheus` package, which \
                 scripts/deps.sh installs) and did not run: {e}"
            )
        });
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        output.status.success(),
        "promtool {} failed:\n{text}",
        subcommand.join(" ")
    );
    text
}

#[test]
fn alerting_rules_pass_promtool_and_each_alert_is_tested_both_ways() {
    let (rules, tests) = rule_files();
    assert!(
        !rules.is_empty() && !tests.is_empty(),
        "{rules:?} {tests:?}"
    );
    let rule_refs: Vec<&Path> = rules.iter().map(PathBuf::as_path).collect();
    let test_refs: Vec<&Path> = tests.iter().map(PathBuf::as_path).collect();
    promtool(&rule_refs, &["check", "rules"]);
    promtool(&test_refs, &["test", "rules"]);

    // Which alerts the unit tests expect to fire, and which they check stay quiet.
    let (mut fires, mut quiet) = (BTreeSet::new(), BTreeSet::new());
    for path in &tests {
        for test in yaml(path)["tests"].as_array().expect("tests") {
            for case in test["alert_rule_test"].as_array().into_iter().flatten() {
                let name = case["alertname"].as_str().unwrap().to_owned();
                match case["exp_alerts"].as_array() {
                    Some(expected) if !expected.is_empty() => fires.insert(name),
                    _ => quiet.insert(name),
                };
            }
        }
    }
    let alerts = alerts(&rules);
    assert!(alerts.len() >= 4, "{alerts:?}");
    for (_, rule) in alerts {
        let name = rule["alert"].as_str().unwrap();
        assert!(fires.contains(name), "no unit test has {name} firing");
        assert!(quiet.contains(name), "no unit test has {name} not firing");
        assert!(
            ["critical", "warning", "info"]
                .contains(&rule["labels"]["severity"].as_str().unwrap_or("")),
            "{name}: severity label {}",
            rule["labels"]
        );
        for annotation in ["summary", "description"] {
            assert!(
                rule["annotations"][annotation]
                    .as_str()
                    .is_some_and(|s| !s.trim().is_empty()),
                "{name}: no {annotation}"
            );
        }
        // A runbook under docs/runbooks/, named in kebab case.
        let runbook = rule["annotations"]["runbook_url"].as_str().unwrap_or("");
        let page = runbook
            .strip_prefix("docs/runbooks/")
            .and_then(|p| p.strip_suffix(".md"))
            .unwrap_or("");
        assert!(
            !page.is_empty()
                && page
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'),
            "{name}: runbook_url {runbook:?} is not docs/runbooks/<name>.md"
        );
    }
}

/// Both dashboards: (file name, dashboard).
fn dashboards() -> Vec<(String, Value)> {
    ["platform-overview.json", "environment.json"]
        .iter()
        .map(|name| {
            let text = std::fs::read_to_string(deploy().join("grafana").join(name)).unwrap();
            let dashboard: Value =
                serde_json::from_str(&text).unwrap_or_else(|e| panic!("{name}: {e}"));
            ((*name).to_owned(), dashboard)
        })
        .collect()
}

/// Every query of `dashboard`: (panel title, expr).
fn queries(dashboard: &Value) -> Vec<(String, String)> {
    let mut queries = Vec::new();
    for panel in dashboard["panels"].as_array().unwrap() {
        for target in panel["targets"].as_array().into_iter().flatten() {
            queries.push((
                panel["title"].as_str().unwrap_or("").to_owned(),
                target["expr"].as_str().unwrap_or("").to_owned(),
            ));
        }
    }
    queries
}

const NAMESPACE_QUERY: &str = "label_values(berth_environment_phase, namespace)";

#[test]
fn dashboards_are_well_formed() {
    let mut uids = BTreeSet::new();
    for (name, dashboard) in dashboards() {
        let uid = dashboard["uid"].as_str().unwrap_or("");
        assert!(!uid.is_empty(), "{name}: no uid");
        assert!(uids.insert(uid.to_owned()), "{name}: uid {uid} taken twice");
        assert!(
            dashboard["schemaVersion"].as_i64().is_some_and(|v| v >= 39),
            "{name}: schemaVersion of an old Grafana"
        );
        let variables = dashboard["templating"]["list"].as_array().unwrap();
        let datasource = variables.iter().find(|v| v["name"] == "datasource");
        assert!(
            datasource.is_some_and(|v| v["type"] == "datasource" && v["query"] == "prometheus"),
            "{name}: no `datasource` variable of type prometheus"
        );
        if name == "environment.json" {
            let namespace = variables
                .iter()
                .find(|v| v["name"] == "namespace")
                .expect("environment.json: a `namespace` variable");
            assert_eq!(namespace["query"]["query"], NAMESPACE_QUERY);
            assert_eq!(namespace["datasource"]["uid"], "${datasource}");
        }
        let mut ids = BTreeSet::new();
        for panel in dashboard["panels"].as_array().unwrap() {
            let title = panel["title"].as_str().unwrap_or("");
            assert!(!title.is_empty(), "{name}: a panel without a title");
            assert!(
                ids.insert(panel["id"].as_i64().expect("a panel id")),
                "{name}: panel id of {title} taken twice"
            );
            assert_eq!(
                panel["datasource"],
                json!({"type": "prometheus", "uid": "${datasource}"}),
                "{name}: {title}'s datasource"
            );
            for field in ["h", "w", "x", "y"] {
                assert!(panel["gridPos"][field].is_u64(), "{name}: {title} gridPos");
            }
            let targets = panel["targets"].as_array();
            assert!(
                targets.is_some_and(|t| !t.is_empty()),
                "{name}: {title} has no targets"
            );
            let mut refs = BTreeSet::new();
            for target in targets.unwrap() {
                assert!(
                    refs.insert(target["refId"].as_str().unwrap_or("").to_owned()),
                    "{name}: {title} has a refId twice"
                );
                assert!(
                    target["expr"]
                        .as_str()
                        .is_some_and(|e| !e.trim().is_empty()),
                    "{name}: {title} has a target without expr"
                );
                assert_eq!(
                    target["datasource"]["uid"], "${datasource}",
                    "{name}: {title}'s target datasource"
                );
                // A fixed window would hold too few samples for a slow scrape
                // interval, or smooth a short time range away.
                let expr = target["expr"].as_str().unwrap();
                for window in expr.split('[').skip(1) {
                    assert!(
                        window.starts_with("$__rate_interval]"),
                        "{name}: {title}: a range other than [$__rate_interval] in {expr}"
                    );
                }
            }
        }
    }
}

/// The shared Prometheus and the directory where it finds its targets.
fn prometheus() -> (String, PathBuf) {
    let url = std::env::var("BERTH_TEST_PROMETHEUS_URL").expect(
        "BERTH_TEST_PROMETHEUS_URL must name the test Prometheus: run `make test`, or \
         `scripts/prometheus.sh start DIR` and set it and BERTH_TEST_PROMETHEUS_TARGETS=DIR/targets",
    );
    let targets = std::env::var("BERTH_TEST_PROMETHEUS_TARGETS")
        .expect("BERTH_TEST_PROMETHEUS_TARGETS must name the test Prometheus' file_sd directory");
    (url, PathBuf::from(targets))
}

/// A scrape target listed in Prometheus' file_sd directory while it lives.
struct Target(PathBuf);

impl Target {
    fn add(dir: &Path, job: &str, address: &str) -> Self {
        let path = dir.join(format!("{job}.json"));
        let tmp = dir.join(format!(".{job}.json.tmp"));
        let body = json!([{"targets": [address], "labels": {"job": job}}]);
        std::fs::write(&tmp, body.to_string()).unwrap();
        // Renamed into place, so that Prometheus never reads half a file.
        std::fs::rename(&tmp, &path).unwrap();
        Self(path)
    }
}

impl Drop for Target {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

async fn get_json(url: &str, query: &[(&str, &str)]) -> Value {
    let response = reqwest::Client::new()
        .get(url)
        .query(query)
        .send()
        .await
        .unwrap_or_else(|e| panic!("GET {url}: {e}"));
    let status = response.status();
    let body: Value = response.json().await.unwrap_or(Value::Null);
    assert_eq!(status, StatusCode::OK, "GET {url} {query:?}: {body}");
    body
}

/// Until the test Prometheus has loaded every group and alert of the rule
/// files, from these very files, and evaluated each without error.
async fn until_rules_healthy(prometheus: &str, rules: &[PathBuf], deadline: Instant) {
    let expected: BTreeMap<String, (String, Vec<String>)> = {
        let mut groups: BTreeMap<String, (String, Vec<String>)> = BTreeMap::new();
        for path in rules {
            for (group, rule) in alerts(std::slice::from_ref(path)) {
                groups
                    .entry(group)
                    .or_insert_with(|| (path.display().to_string(), Vec::new()))
                    .1
                    .push(rule["alert"].as_str().unwrap().to_owned());
            }
        }
        groups
    };
    loop {
        let answer = get_json(&format!("{prometheus}/api/v1/rules"), &[("type", "alert")]).await;
        let loaded = answer["data"]["groups"].as_array().unwrap();
        let problems: Vec<String> = expected
            .iter()
            .flat_map(|(group, (file, alerts))| {
                let found = loaded
                    .iter()
                    .find(|g| g["name"] == group.as_str() && g["file"] == file.as_str());
                match found {
                    None => vec![format!(
                        "group {group} of {file} is not loaded (scripts/prometheus.sh lists \
                         deploy/prometheus/*.yml in rule_files; restart an older Prometheus)"
                    )],
                    Some(g) => alerts
                        .iter()
                        .filter_map(|alert| {
                            let rule = g["rules"]
                                .as_array()
                                .unwrap()
                                .iter()
                                .find(|r| r["name"] == alert.as_str());
                            match rule {
                                None => {
                                    Some(format!("alert {alert} of group {group} is not loaded"))
                                }
                                Some(r) if r["health"] != "ok" => Some(format!(
                                    "alert {alert} is {}: {}",
                                    r["health"], r["lastError"]
                                )),
                                Some(_) => None,
                            }
                        })
                        .collect(),
                }
            })
            .collect();
        if problems.is_empty() {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the test Prometheus does not run Berth's rules:\n{}",
            problems.join("\n")
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// A dashboard query as Grafana sends it for `namespace`, over the test
/// Prometheus' one-second scrapes.
fn substitute(expr: &str, namespace: &str) -> String {
    let query = expr
        .replace("$__rate_interval", "10s")
        .replace("$__interval", "5s")
        .replace("${namespace}", namespace)
        .replace("$namespace", namespace);
    assert!(
        !query.contains('$'),
        "{expr} has a variable this test does not know"
    );
    query
}

/// Whether an instant query's answer holds at least one number (NaN, as
/// histogram_quantile gives without requests, draws nothing).
fn has_data(answer: &Value) -> bool {
    let value = |v: &Value| {
        v[1].as_str()
            .and_then(|s| s.parse::<f64>().ok())
            .is_some_and(|v| !v.is_nan())
    };
    match answer["data"]["resultType"].as_str() {
        Some("scalar") => value(&answer["data"]["result"]),
        _ => answer["data"]["result"]
            .as_array()
            .is_some_and(|r| r.iter().any(|s| value(&s["value"]))),
    }
}

/// The metric names in a query: its words with the prefixes of Berth's, the
/// kubelet's and kube-state-metrics' series (no label is named so).
fn metric_names(expr: &str) -> impl Iterator<Item = &str> {
    expr.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
        .filter(|w| {
            ["berth_", "container_", "kube_", "pod_", "node_"]
                .iter()
                .any(|p| w.starts_with(p))
        })
}

/// Every metric name Prometheus has series of, and every sample name Berth's
/// `/metrics` declares (`# TYPE`), with the controller's failure counters,
/// which have no series (nor `# TYPE`) until a reconcile fails.
async fn known_metrics(prometheus: &str, app: &TestApp) -> BTreeSet<String> {
    let names = get_json(&format!("{prometheus}/api/v1/label/__name__/values"), &[]).await;
    let mut known: BTreeSet<String> = names["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n.as_str().unwrap().to_owned())
        .collect();
    let mut exposition = reqwest::get(app.url("/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let mut registry = prometheus_client::registry::Registry::default();
    berth_controller::Metrics::register(&mut registry).error("failing", "reason".into());
    prometheus_client::encoding::text::encode(&mut exposition, &registry).unwrap();
    for line in exposition.lines() {
        let mut words = line.split(' ');
        if let (Some("#"), Some("TYPE"), Some(name), Some(kind)) =
            (words.next(), words.next(), words.next(), words.next())
        {
            let suffixes: &[&str] = match kind {
                "counter" => &["_total"],
                "histogram" => &["_bucket", "_sum", "_count"],
                _ => &[""],
            };
            known.extend(suffixes.iter().map(|s| format!("{name}{s}")));
        }
    }
    known
}

#[tokio::test]
async fn the_test_prometheus_runs_the_rules_and_every_dashboard_query_has_data() {
    let (prometheus_url, targets) = prometheus();
    let deadline = Instant::now() + Duration::from_secs(60);
    let (rules, _) = rule_files();
    until_rules_healthy(&prometheus_url, &rules, deadline).await;

    let app = spawn_app_with_prometheus(Some(prometheus_url.clone())).await;
    let ann = app
        .member_token(&format!("{}@example.com", unique("ann")))
        .await;
    let name = unique("dash");
    let created = app
        .post(
            &ann,
            "/api/v1/environments",
            &json!({"name": name, "template": "small", "ttl": "24h",
                    "apps": [{"name": "web", "image": "nginx:1.27", "replicas": 1, "port": 8080,
                              "resources": {"cpu": "100m", "memory": "64Mi"}}]}),
        )
        .await;
    assert_eq!(created.status(), StatusCode::CREATED);
    let berth = app.base.trim_start_matches("http://");
    let _berth = Target::add(&targets, &unique("berth"), berth);

    // Every query, as Grafana sends it with this environment picked.
    let mut pending: Vec<(String, String, String)> = dashboards()
        .iter()
        .flat_map(|(file, dashboard)| {
            queries(dashboard)
                .into_iter()
                .map(|(panel, expr)| (file.clone(), panel, substitute(&expr, &name)))
                .collect::<Vec<_>>()
        })
        .collect();
    // And the namespace picker of the environment dashboard offers it.
    let mut picker_lists_it = false;
    loop {
        if !picker_lists_it {
            let values = get_json(
                &format!("{prometheus_url}/api/v1/label/namespace/values"),
                &[("match[]", "berth_environment_phase")],
            )
            .await;
            picker_lists_it = values["data"]
                .as_array()
                .is_some_and(|v| v.iter().any(|n| n == name.as_str()));
        }
        let mut still = Vec::new();
        for (file, panel, query) in pending {
            let answer = get_json(
                &format!("{prometheus_url}/api/v1/query"),
                &[("query", query.as_str())],
            )
            .await;
            if !has_data(&answer) {
                still.push((file, panel, query));
            }
        }
        pending = still;
        if pending.is_empty() && picker_lists_it {
            break;
        }
        if Instant::now() > deadline {
            let missing: Vec<String> = pending
                .iter()
                .map(|(file, panel, query)| format!("{file}: panel \"{panel}\": {query}"))
                .collect();
            panic!(
                "within 60 s, {}these queries returned no data:\n{}",
                if picker_lists_it {
                    String::new()
                } else {
                    format!("the namespace picker ({NAMESPACE_QUERY}) did not list {name}, and ")
                },
                missing.join("\n")
            );
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }

    // A query that falls back to 0 (`or on() vector(0)`) has data whatever
    // its metric is called, and an alert on a misspelt metric never fires:
    // every metric the dashboards and rules read must be one Prometheus has,
    // or one Berth declares (a counter that has not counted yet).
    let known = known_metrics(&prometheus_url, &app).await;
    let reads = dashboards()
        .into_iter()
        .flat_map(|(file, dashboard)| {
            queries(&dashboard)
                .into_iter()
                .map(|(panel, expr)| (format!("{file}: panel \"{panel}\""), expr))
                .collect::<Vec<_>>()
        })
        .chain(alerts(&rules).into_iter().map(|(_, rule)| {
            (
                format!("alert {}", rule["alert"].as_str().unwrap()),
                rule["expr"].as_str().unwrap().to_owned(),
            )
        }));
    for (reader, expr) in reads {
        for metric in metric_names(&expr) {
            assert!(
                known.contains(metric),
                "{reader} reads {metric}, which neither Prometheus nor Berth's /metrics has"
            );
        }
    }

    let deleted = app.delete(&ann, &path(&name)).await;
    assert!(deleted.status().is_success(), "{}", deleted.status());
}
