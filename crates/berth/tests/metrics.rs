//! Environments' metrics against the real Prometheus that `make test` starts
//! (`BERTH_TEST_PROMETHEUS_URL`, with its file_sd directory in
//! `BERTH_TEST_PROMETHEUS_TARGETS`): with two environments, a member of one
//! gets their series and none of the other's, for a table of tricky queries;
//! others get 404; limits 400 naming the parameter; no Prometheus 503.
//!
//! The series come from an exporter this test serves and lists as a
//! Prometheus target, with a namespace label per environment (as the kubelet
//! and kube-state-metrics write them), and from Berth's own `/metrics`.

mod support;

use berth_testkit::unique_name as unique;
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::path::PathBuf;
use std::time::{Duration, Instant};
use support::*;

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
    fn add(dir: &std::path::Path, job: &str, address: &str) -> Self {
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

/// Serves `body` as Prometheus text at `/metrics` on a free port; the address.
async fn serve_exporter(body: String) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap().to_string();
    let app = axum::Router::new().route(
        "/metrics",
        axum::routing::get(move || {
            let body = body.clone();
            async move { ([("content-type", "text/plain; version=0.0.4")], body) }
        }),
    );
    tokio::spawn(async move { axum::serve(listener, app).await });
    address
}

/// The series of both environments, told apart by value: any of the other's
/// data in an answer changes a sum, a max or a count.
fn exposition(own: &str, other: &str) -> String {
    format!(
        "# TYPE tenant_requests_total counter
tenant_requests_total{{namespace=\"{own}\",pod=\"a-1\",code=\"200\"}} 1
tenant_requests_total{{namespace=\"{own}\",pod=\"a-2\",code=\"500\"}} 2
tenant_requests_total{{namespace=\"{other}\",pod=\"b-1\",code=\"200\"}} 100
tenant_requests_total{{namespace=\"{other}\",pod=\"b-2\",code=\"500\"}} 200
# TYPE tenant_memory_bytes gauge
tenant_memory_bytes{{namespace=\"{own}\",pod=\"a-1\"}} 10
tenant_memory_bytes{{namespace=\"{other}\",pod=\"b-1\"}} 1000
# TYPE tenant_pod_info gauge
tenant_pod_info{{namespace=\"{own}\",pod=\"a-1\",node=\"n1\"}} 1
tenant_pod_info{{namespace=\"{other}\",pod=\"b-1\",node=\"n2\"}} 1
# TYPE tenant_cluster_capacity_bytes gauge
tenant_cluster_capacity_bytes 1000000
"
    )
}

/// What an answer to a query of the table must be.
#[derive(Debug)]
enum Expect {
    /// Series, each labelled with the own namespace.
    Own(usize),
    /// One sample (a series without labels that identify it, or a scalar) of this value.
    Value(f64),
    /// No series at all.
    Empty,
    /// 400 naming `query`, the message containing this.
    Refused(&'static str),
}

fn samples(answer: &Value) -> Vec<(Value, f64)> {
    // Every answer has the shape the OpenAPI document gives it.
    serde_json::from_value::<berth_api::prometheus_answer::QueryAnswer>(answer.clone())
        .unwrap_or_else(|e| panic!("not the documented QueryAnswer ({e}): {answer}"));
    let data = &answer["data"];
    match data["resultType"].as_str() {
        Some("scalar") => vec![(
            json!({}),
            data["result"][1].as_str().unwrap().parse().unwrap(),
        )],
        _ => data["result"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| {
                (
                    s["metric"].clone(),
                    s["value"][1].as_str().unwrap().parse().unwrap(),
                )
            })
            .collect(),
    }
}

/// `query` percent-encoded for a query string.
fn encode(query: &str) -> String {
    let mut url = reqwest::Url::parse("http://encode.invalid/").unwrap();
    url.query_pairs_mut().append_pair("q", query);
    url.query().unwrap()["q=".len()..].to_owned()
}

/// Polls Prometheus itself until `query` has a result, or fails after 30 s.
async fn until_scraped(prometheus: &str, query: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let answer: Value =
            reqwest::get(format!("{prometheus}/api/v1/query?query={}", encode(query)))
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
        if answer["data"]["result"]
            .as_array()
            .is_some_and(|r| !r.is_empty())
        {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "Prometheus did not scrape `{query}` within 30 s: {answer}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn members_see_their_namespace_and_nothing_else() {
    let (prometheus_url, targets) = prometheus();
    let app = spawn_app_with_prometheus(Some(prometheus_url.clone())).await;
    let ann = app
        .member_token(&format!("{}@example.com", unique("ann")))
        .await;
    let bob = app
        .member_token(&format!("{}@example.com", unique("bob")))
        .await;
    let eve = app
        .member_token(&format!("{}@example.com", unique("eve")))
        .await;
    let admin = app.admin_token().await;
    let (own, other) = (unique("metrics-a"), unique("metrics-b"));
    for (token, name) in [(&ann, &own), (&bob, &other)] {
        let response = app
            .post(
                token,
                "/api/v1/environments",
                &json!({"name": name, "template": "small"}),
            )
            .await;
        assert_eq!(response.status(), StatusCode::CREATED, "{name}");
    }

    let exporter = serve_exporter(exposition(&own, &other)).await;
    let _exporter = Target::add(&targets, &unique("tenant-exporter"), &exporter);
    let berth = app.base.trim_start_matches("http://");
    let _berth = Target::add(&targets, &unique("berth"), berth);
    // Both environments' data is there to be leaked, with a few scrapes of history.
    until_scraped(
        &prometheus_url,
        &format!("tenant_memory_bytes{{namespace=\"{other}\"}}"),
    )
    .await;
    until_scraped(
        &prometheus_url,
        &format!("tenant_memory_bytes{{namespace=\"{own}\"}} offset 3s"),
    )
    .await;

    let base = format!("/api/v1/environments/{own}/metrics");
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let table: Vec<(String, Expect)> = vec![
        ("tenant_requests_total".into(), Expect::Own(2)),
        ("sum(tenant_requests_total)".into(), Expect::Value(3.0)),
        (
            format!("sum(tenant_requests_total{{namespace=\"{own}\"}})"),
            Expect::Value(3.0),
        ),
        (
            r#"count({__name__=~"tenant_.+"})"#.into(),
            Expect::Value(4.0),
        ),
        (r#"{__name__=~".+", pod=~".+"}"#.into(), Expect::Own(4)),
        (
            r#"{__name__=~"tenant_requests_total|tenant_memory_bytes"}"#.into(),
            Expect::Own(3),
        ),
        (
            "tenant_requests_total or tenant_memory_bytes".into(),
            Expect::Own(3),
        ),
        (
            "tenant_requests_total and on (pod) tenant_memory_bytes".into(),
            Expect::Own(1),
        ),
        (
            "tenant_requests_total unless on (pod) tenant_memory_bytes".into(),
            Expect::Own(1),
        ),
        (
            "sum by (namespace) (tenant_requests_total)".into(),
            Expect::Own(1),
        ),
        ("max(tenant_memory_bytes)".into(), Expect::Value(10.0)),
        (
            "max_over_time(tenant_memory_bytes[1m])".into(),
            Expect::Own(1),
        ),
        (
            "max_over_time(max(tenant_memory_bytes)[1m:1s])".into(),
            Expect::Value(10.0),
        ),
        (
            "max(tenant_memory_bytes offset 2s)".into(),
            Expect::Value(10.0),
        ),
        ("tenant_memory_bytes @ end()".into(), Expect::Own(1)),
        (
            format!("max(tenant_memory_bytes @ {now})"),
            Expect::Value(10.0),
        ),
        ("absent(tenant_memory_bytes)".into(), Expect::Empty),
        (r#"absent(no_such_series{job="x"})"#.into(), Expect::Own(1)),
        (
            r#"label_replace(tenant_memory_bytes, "copy", "$1", "namespace", "(.*)")"#.into(),
            Expect::Own(1),
        ),
        (
            "tenant_memory_bytes * on (pod) group_left (node) tenant_pod_info".into(),
            Expect::Own(1),
        ),
        (
            "tenant_pod_info * on (pod) group_right tenant_memory_bytes".into(),
            Expect::Own(1),
        ),
        (
            "sum(tenant_memory_bytes) + sum(tenant_requests_total)".into(),
            Expect::Value(13.0),
        ),
        (
            r#"count(count by (namespace) ({__name__=~".+"}))"#.into(),
            Expect::Value(1.0),
        ),
        (
            r#"count(count_values("value", tenant_memory_bytes))"#.into(),
            Expect::Value(1.0),
        ),
        ("topk(1, tenant_memory_bytes)".into(), Expect::Own(1)),
        (
            "scalar(sum(tenant_memory_bytes))".into(),
            Expect::Value(10.0),
        ),
        ("tenant_memory_bytes > 5".into(), Expect::Own(1)),
        ("rate(tenant_requests_total[10s])".into(), Expect::Own(2)),
        (
            format!("group by (namespace) ({{namespace=\"{own}\", pod=\"a-1\"}})"),
            Expect::Own(1),
        ),
        (
            "quantile(0.5, tenant_memory_bytes)".into(),
            Expect::Value(10.0),
        ),
        ("tenant_cluster_capacity_bytes".into(), Expect::Empty),
        ("vector(1)".into(), Expect::Value(1.0)),
        // Once a stack overflow that took Berth down, and an allocation
        // that took Prometheus down: refused before either.
        (
            format!("{}tenant_memory_bytes", "-".repeat(2000)),
            Expect::Refused("simpler query"),
        ),
        (
            "sum_over_time(rate(tenant_requests_total[1m])[30d:1ms])".into(),
            Expect::Refused("longer step"),
        ),
        (
            format!("tenant_memory_bytes{{namespace=\"{other}\"}}"),
            Expect::Refused("another namespace"),
        ),
        (
            format!("tenant_memory_bytes{{namespace!=\"{own}\"}}"),
            Expect::Refused("another namespace"),
        ),
        (
            format!("tenant_memory_bytes{{namespace=~\"{own}|{other}\"}}"),
            Expect::Refused("another namespace"),
        ),
        (
            r#"tenant_memory_bytes{namespace=~".+"}"#.into(),
            Expect::Refused("another namespace"),
        ),
        (
            format!("tenant_memory_bytes{{namespace!~\"{own}\"}}"),
            Expect::Refused("another namespace"),
        ),
        (
            format!("tenant_memory_bytes{{namespace=~\"{own}\"}}"),
            Expect::Refused("another namespace"),
        ),
        (
            r#"tenant_memory_bytes{namespace=""}"#.into(),
            Expect::Refused("another namespace"),
        ),
        (
            r#"{__name__=~".+", namespace=~".*"}"#.into(),
            Expect::Refused("another namespace"),
        ),
        (
            format!("tenant_memory_bytes or tenant_memory_bytes{{namespace=\"{other}\"}}"),
            Expect::Refused("another namespace"),
        ),
        (
            format!(
                "sum(tenant_memory_bytes) unless sum(tenant_memory_bytes{{namespace=\"{other}\"}})"
            ),
            Expect::Refused("another namespace"),
        ),
        (
            format!("tenant_memory_bytes and on (pod) tenant_pod_info{{namespace=\"{other}\"}}"),
            Expect::Refused("another namespace"),
        ),
        (
            format!("max_over_time(tenant_memory_bytes{{namespace=\"{other}\"}}[1m:1s])"),
            Expect::Refused("another namespace"),
        ),
        (
            format!("tenant_memory_bytes{{namespace=\"{other}\"}} offset 1m"),
            Expect::Refused("another namespace"),
        ),
        (
            format!("tenant_memory_bytes{{namespace=\"{other}\"}} @ {now}"),
            Expect::Refused("another namespace"),
        ),
        (
            format!("absent(tenant_memory_bytes{{namespace=\"{other}\"}})"),
            Expect::Refused("another namespace"),
        ),
        (
            format!(
                "tenant_memory_bytes * on (pod) group_left (node) tenant_pod_info{{namespace=\"{other}\"}}"
            ),
            Expect::Refused("another namespace"),
        ),
        (
            format!(r#"label_replace(tenant_memory_bytes, "namespace", "{other}", "", "")"#),
            Expect::Refused("namespace label"),
        ),
        (
            format!(r#"label_replace(vector(1), "namespace", "{other}", "", "")"#),
            Expect::Refused("namespace label"),
        ),
        (
            r#"label_join(tenant_memory_bytes, "namespace", ",", "pod")"#.into(),
            Expect::Refused("namespace label"),
        ),
        (
            r#"count_values("namespace", tenant_memory_bytes)"#.into(),
            Expect::Refused("namespace label"),
        ),
        ("sum(".into(), Expect::Refused("not valid PromQL")),
        // Prometheus' own refusal (a range vector where an instant one belongs) is the query's 400.
        ("tenant_memory_bytes[1m] + 1".into(), Expect::Refused("")),
    ];
    assert!(table.len() >= 40, "the table has {} queries", table.len());
    for (query, expect) in &table {
        let path = format!("{base}/query?query={}", encode(query));
        let response = app.get(&ann, &path).await;
        let status = response.status();
        let text = response.text().await.unwrap();
        let answer: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        match expect {
            Expect::Refused(reason) => {
                assert_eq!(status, StatusCode::BAD_REQUEST, "{query}: {text}");
                assert_eq!(answer["error"]["code"], "validation_failed", "{query}");
                assert_eq!(
                    answer["error"]["details"][0]["field"], "query",
                    "{query}: {text}"
                );
                let message = answer["error"]["details"][0]["message"].as_str().unwrap();
                assert!(message.contains(reason), "{query}: {message}");
                continue;
            }
            _ => assert_eq!(status, StatusCode::OK, "{query}: {text}"),
        }
        assert!(
            !text.contains(other.as_str()),
            "{query}: the answer names the other namespace: {text}"
        );
        assert_eq!(answer["status"], "success", "{query}: {text}");
        let samples = samples(&answer);
        match expect {
            Expect::Own(n) => {
                assert_eq!(samples.len(), *n, "{query}: {text}");
                for (metric, _) in &samples {
                    assert_eq!(metric["namespace"], own.as_str(), "{query}: {text}");
                }
            }
            Expect::Value(value) => {
                assert_eq!(samples.len(), 1, "{query}: {text}");
                assert_eq!(samples[0].1, *value, "{query}: {text}");
            }
            Expect::Empty => assert!(samples.is_empty(), "{query}: {text}"),
            Expect::Refused(_) => unreachable!("answered above"),
        }
    }

    // Berth's own per-environment series, from its watch caches: the own
    // environment's quota once the controller has written it, nobody else's.
    let quota = format!(
        "{base}/query?query={}",
        encode(r#"berth_environment_quota_hard{resource="requests.cpu"}"#)
    );
    let answer = app
        .eventually(&ann, &quota, Duration::from_secs(60), |status, body| {
            status == StatusCode::OK && !body["data"]["result"].as_array().unwrap().is_empty()
        })
        .await;
    let series = samples(&answer);
    assert_eq!(series.len(), 1, "{answer}");
    assert_eq!(series[0].0["environment"], own.as_str(), "{answer}");
    assert_eq!(series[0].0["namespace"], own.as_str(), "{answer}");
    assert_eq!(series[0].1, 2.0, "the small template's CPU: {answer}");
    let phases = format!(
        "{base}/query?query={}",
        encode("berth_environment_phase == 1")
    );
    let answer = app
        .eventually(&ann, &phases, Duration::from_secs(30), |status, body| {
            status == StatusCode::OK && body["data"]["result"][0]["metric"]["phase"] == "Ready"
        })
        .await;
    assert_eq!(samples(&answer).len(), 1, "one phase at a time: {answer}");
    let pods = app
        .get_json(
            &ann,
            &format!(
                "{base}/query?query={}",
                encode("sum(berth_environment_pods)")
            ),
        )
        .await;
    assert_eq!(samples(&pods)[0].1, 0.0, "no pods yet: {pods}");
    let everything = app
        .get(
            &ann,
            &format!("{base}/query?query={}", encode(r#"{__name__=~"berth_.+"}"#)),
        )
        .await
        .text()
        .await
        .unwrap();
    assert!(
        everything.contains(own.as_str()) && !everything.contains(other.as_str()),
        "{everything}"
    );

    // A range query: every point is the own environment's.
    let end = time::OffsetDateTime::now_utc().unix_timestamp();
    let range = app
        .get_json(
            &ann,
            &format!(
                "{base}/query_range?query={}&start={}&end={end}&step=1",
                encode("max(tenant_memory_bytes)"),
                end - 3
            ),
        )
        .await;
    serde_json::from_value::<berth_api::prometheus_answer::QueryAnswer>(range.clone())
        .expect("the documented QueryAnswer");
    let points = range["data"]["result"][0]["values"].as_array().unwrap();
    assert!(!points.is_empty(), "{range}");
    assert!(points.iter().all(|p| p[1] == "10"), "{range}");

    // The pickers: series, label names and values, only of the own namespace.
    let series = app
        .get_json(
            &ann,
            &format!("{base}/series?match[]=tenant_requests_total"),
        )
        .await;
    serde_json::from_value::<berth_api::prometheus_answer::SeriesAnswer>(series.clone())
        .expect("the documented SeriesAnswer");
    let series = series["data"].as_array().unwrap();
    assert_eq!(series.len(), 2, "{series:?}");
    assert!(series.iter().all(|s| s["namespace"] == own.as_str()));
    let names = app.get_json(&ann, &format!("{base}/labels")).await;
    assert!(
        names["data"].as_array().unwrap().contains(&json!("pod")),
        "{names}"
    );
    let namespaces = app
        .get_json(&ann, &format!("{base}/label/namespace/values"))
        .await;
    assert_eq!(namespaces["data"], json!([own]), "{namespaces}");
    for answer in [&names, &namespaces] {
        serde_json::from_value::<berth_api::prometheus_answer::NamesAnswer>((*answer).clone())
            .expect("the documented NamesAnswer");
    }
    let pods = app
        .get_json(
            &ann,
            &format!("{base}/label/pod/values?match[]=tenant_requests_total"),
        )
        .await;
    assert_eq!(pods["data"], json!(["a-1", "a-2"]), "{pods}");
    let refused = app
        .get(
            &ann,
            &format!(
                "{base}/series?match[]={}",
                encode(&format!("{{namespace=\"{other}\"}}"))
            ),
        )
        .await;
    let body = expect_error(refused, StatusCode::BAD_REQUEST, "validation_failed").await;
    assert_eq!(body["error"]["details"][0]["field"], "match[]", "{body}");

    // Prometheus reads every form of the parameters the limits accept.
    for parameters in ["time=2026-11-30T12:00:00Z&timeout=2.5", "timeout=20s"] {
        let answer = app
            .get_json(&ann, &format!("{base}/query?query=vector(1)&{parameters}"))
            .await;
        assert_eq!(answer["status"], "success", "{parameters}: {answer}");
    }
    let answer = app
        .get_json(&ann, &format!("{base}/query_range?query=vector(1)&start=2026-11-30T12:00:00Z&end=2026-11-30T12:01:00.5Z&step=1m"))
        .await;
    assert_eq!(answer["status"], "success", "{answer}");

    // Limits: each refusal names its parameter.
    let long = encode(&format!(
        "tenant_memory_bytes{{pod=\"{}\"}}",
        "a".repeat(5000)
    ));
    for (path, field) in [
        (format!("{base}/query?query={long}"), "query"),
        (format!("{base}/query?query=up&timeout=31s"), "timeout"),
        (format!("{base}/query?query=up&time=yesterday"), "time"),
        (
            format!("{base}/query_range?query=up&start=0&end=11000&step=1"),
            "step",
        ),
        (
            format!("{base}/query_range?query=up&start=0&end=2700000&step=1h"),
            "start",
        ),
        (
            format!("{base}/query_range?query=up&start=10&end=0&step=1"),
            "end",
        ),
        (
            format!("{base}/query_range?query=up&start=0&end=10"),
            "step",
        ),
        (format!("{base}/labels?verbose=1"), "verbose"),
        (format!("{base}/label/1x/values"), "label"),
    ] {
        expect_invalid(app.get(&ann, &path).await, field, &path).await;
    }

    // Who may ask: members of any role and admins; nobody else learns it exists.
    let endpoints = [
        "query?query=up",
        "query_range?query=up&start=0&end=1&step=1",
        "series?match[]=up",
        "labels",
        "label/pod/values",
    ];
    for endpoint in endpoints {
        for token in [&bob, &eve] {
            let response = app.get(token, &format!("{base}/{endpoint}")).await;
            expect_error(response, StatusCode::NOT_FOUND, "not_found").await;
        }
        let absent = app
            .get(
                &ann,
                &format!(
                    "/api/v1/environments/{}/metrics/{endpoint}",
                    unique("absent")
                ),
            )
            .await;
        expect_error(absent, StatusCode::NOT_FOUND, "not_found").await;
    }
    let by_admin = app
        .get_json(
            &admin,
            &format!("{base}/query?query=sum(tenant_requests_total)"),
        )
        .await;
    assert_eq!(samples(&by_admin)[0].1, 3.0, "{by_admin}");
    let by_bob = app
        .get_json(
            &bob,
            &format!("/api/v1/environments/{other}/metrics/query?query=sum(tenant_requests_total)"),
        )
        .await;
    assert_eq!(samples(&by_bob)[0].1, 300.0, "bob sees his own: {by_bob}");

    for (token, name) in [(&ann, &own), (&bob, &other)] {
        app.delete(token, &format!("/api/v1/environments/{name}"))
            .await;
    }
}

#[tokio::test]
async fn without_prometheus_metrics_answer_503_naming_it() {
    // Nothing listens on port 1: configured but unreachable.
    for (prometheus, says) in [
        (None, "BERTH_PROMETHEUS_URL"),
        (
            Some("http://127.0.0.1:1".to_owned()),
            "Prometheus is not reachable",
        ),
    ] {
        let app = spawn_app_with_prometheus(prometheus).await;
        let ann = app
            .member_token(&format!("{}@example.com", unique("ann")))
            .await;
        let name = unique("metrics-none");
        let response = app
            .post(
                &ann,
                "/api/v1/environments",
                &json!({"name": name, "template": "small"}),
            )
            .await;
        assert_eq!(response.status(), StatusCode::CREATED);
        for endpoint in [
            "query?query=up",
            "query_range?query=up&start=0&end=1&step=1",
            "series?match[]=up",
            "labels",
            "label/pod/values",
        ] {
            let response = app
                .get(
                    &ann,
                    &format!("/api/v1/environments/{name}/metrics/{endpoint}"),
                )
                .await;
            assert!(response.headers().contains_key("retry-after"), "{endpoint}");
            let body = expect_error(response, StatusCode::SERVICE_UNAVAILABLE, "unavailable").await;
            let message = body["error"]["message"].as_str().unwrap();
            assert!(
                message.contains("Prometheus") && message.contains(says),
                "{endpoint}: {message}"
            );
        }
        app.delete(&ann, &format!("/api/v1/environments/{name}"))
            .await;
    }
}
