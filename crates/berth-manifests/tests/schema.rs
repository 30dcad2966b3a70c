//! The Environment CRD's schema against the real apiserver: it refuses,
//! naming the field, what berth-core's parser refuses, and accepts what the
//! parser accepts, for a table of values at and around each rule's edges.
//! Requests go as the cluster admin (Berth's identity), by server-side dry
//! run, so the admission policy does not take part and nothing is created.
//!
//! These tests need the local cluster (`scripts/localcluster.sh`); without it
//! they fail, never skip.

mod support;

use anyhow::{Context, Result, anyhow, bail, ensure};
use berth_core::environment::{EnvironmentSpec, EnvironmentSpecInput, ResolvedSpec};
use berth_manifests::EnvironmentCrdSpec;
use berth_testkit::{Cluster, api_status};
use kube::Client;
use serde_json::{Value, json};
use support::crd::{dry_run, install as install_crd};

async fn cluster() -> Result<Cluster> {
    berth_testkit::cluster()
        .await
        .context("these tests need the local Kubernetes cluster (scripts/localcluster.sh up)")
}

/// The parser's verdict on the Environment `name` with `spec`, as the
/// controller reads a stored one: the fields it refuses, if any.
fn parser_refuses(name: &str, spec: &Value) -> Result<Vec<String>> {
    let crd_spec: EnvironmentCrdSpec = serde_json::from_value(spec.clone())?;
    Ok(EnvironmentSpec::parse(&crd_spec.to_input(name))
        .and_then(ResolvedSpec::stored)
        .err()
        .map(|e| e.errors().iter().map(|f| f.field.clone()).collect())
        .unwrap_or_default())
}

/// Checks that parser and apiserver agree on one case: both accept it, or
/// both refuse it, the apiserver naming `field` (its path in the object),
/// the parser that field or one inside it.
async fn agree(client: &Client, name: &str, spec: &Value, field: Option<&str>) -> Result<()> {
    let refused_by_parser = parser_refuses(name, spec)?;
    let answer = dry_run(client, name, spec).await;
    match (field, answer) {
        (None, Ok(())) => ensure!(
            refused_by_parser.is_empty(),
            "the parser refuses {refused_by_parser:?}, which the apiserver accepts"
        ),
        (None, Err(e)) => bail!("the apiserver refuses what it should accept: {e}"),
        (Some(field), Ok(())) => bail!("the apiserver accepts what it should refuse at {field}"),
        (Some(field), Err(e)) => {
            ensure!(
                refused_by_parser
                    .iter()
                    .any(|f| format!("spec.{f}").starts_with(field)),
                "the parser refuses {refused_by_parser:?}, not {field}: {e}"
            );
            let (code, _, message) = api_status(&e).ok_or_else(|| anyhow!("{e}"))?;
            ensure!(
                code == 422 && message.contains(field),
                "the refusal ({code}) does not name {field}: {message}"
            );
        }
    }
    Ok(())
}

/// The contract's example spec, less its name (the object's): accepted everywhere.
fn example() -> Value {
    let mut spec = support::example();
    spec.as_object_mut().expect("an object").remove("name");
    spec
}

/// The example with the value at `pointer` (a JSON pointer into the spec)
/// replaced.
fn with(pointer: &str, value: Value) -> Value {
    let mut spec = example();
    *spec
        .pointer_mut(pointer)
        .expect("the example has the field") = value;
    spec
}

fn app(name: &str) -> Value {
    json!({"name": name, "image": "nginx"})
}

fn member(email: &str) -> Value {
    json!({"email": email, "role": "viewer"})
}

/// Every case: a spec, and the field the apiserver must name in refusing
/// it, or `None` when it must accept it.
fn cases() -> Vec<(Value, Option<&'static str>)> {
    let hash = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
    let mut cases = vec![(json!({}), None), (example(), None)];
    for cpu in [
        "500m", "2", "0.5", "1.25", "1.2500", "1.0m", "007", "1m", "10000",
    ] {
        let mut spec = with("/quota/cpu", json!(cpu));
        spec["limits"]["defaultCpu"] = json!("1m");
        cases.push((spec, None));
    }
    for cpu in [
        "lots", "0", "0m", "1.", ".5", "0.0005", "1.5m", "1Gi", "-1", "1e3", "10001", "1 ",
    ] {
        cases.push((with("/quota/cpu", json!(cpu)), Some("spec.quota.cpu")));
    }
    for bytes in [
        "4Gi",
        "1024Mi",
        "10G",
        "1.5Gi",
        "128974848",
        "1000k",
        "1.5k",
        "1.0",
        "1Pi",
        "1P",
    ] {
        let mut spec = with("/quota/storage", json!(bytes));
        spec["quota"]["memory"] = json!(bytes);
        spec["limits"]["defaultMemory"] = json!("1");
        cases.push((spec, None));
    }
    for bytes in [
        "", "0", "1m", "0.5", "2Pi", "1025Ti", "1Ki5", "4gi", "1E", "1.2345k",
    ] {
        cases.push((
            with("/quota/storage", json!(bytes)),
            Some("spec.quota.storage"),
        ));
    }
    for (pods, field) in [(1, None), (1000, None), (0, Some("spec.quota.pods"))] {
        cases.push((with("/quota/pods", json!(pods)), field));
    }
    cases.push((with("/quota/pods", json!(1001)), Some("spec.quota.pods")));
    for ttl in [
        "72h", "1h30m", "90m", "1h0m0s", "61s", "1m", "8760h", "0h0m60s",
    ] {
        cases.push((with("/ttl", json!(ttl)), None));
    }
    for ttl in [
        "", "h", "72", "30m1h", "1h1h", "59s", "8761h", "876000h", "1d", "1.5h", "-1h", "1h 30m",
    ] {
        cases.push((with("/ttl", json!(ttl)), Some("spec.ttl")));
    }
    cases.push((
        with("/podSecurity", json!("privileged")),
        Some("spec.podSecurity"),
    ));
    cases.push((
        with("/network/isolation", json!("none")),
        Some("spec.network.isolation"),
    ));
    cases.push((with("/template", json!("Small")), Some("spec.template")));
    cases.push((with("/description", json!("two\nlines é")), None));
    cases.push((with("/description", json!("é".repeat(500))), None));
    cases.push((
        with("/description", json!("é".repeat(501))),
        Some("spec.description"),
    ));
    cases.push((
        with("/description", json!("bell \u{7}")),
        Some("spec.description"),
    ));
    // A default above the quota, written or taken from the builtin quota.
    cases.push((
        with("/limits/defaultCpu", json!("3")),
        Some("spec.limits.defaultCpu"),
    ));
    let mut no_quota = example();
    no_quota.as_object_mut().unwrap().remove("quota");
    no_quota["limits"]["defaultMemory"] = json!("5Gi");
    cases.push((no_quota, Some("spec.limits.defaultMemory")));
    for image in [
        "nginx",
        "library/nginx:1.27-alpine",
        "ghcr.io/berth/app:v1.2.3",
        "localhost:5000/app",
        "localhost/app",
        "my_org/app",
        "my.app:1.0",
        "reg:5000/a/b",
        &format!("registry.example.com:443/team/app@sha256:{hash}"),
    ] {
        cases.push((with("/apps/0/image", json!(image)), None));
    }
    for image in [
        "Nginx",
        "nginx:",
        "nginx:-x",
        "nginx@sha256:12",
        "a b",
        "/nginx",
        "nginx/",
        "ex.com:0/app",
        "ex.com:65536/app",
        "a._b/x",
        "a..b/x",
        "nginx:1.27/foo",
        &"a".repeat(513),
    ] {
        cases.push((
            with("/apps/0/image", json!(image)),
            Some("spec.apps[0].image"),
        ));
    }
    cases.push((
        with("/apps/0/name", json!("1web")),
        Some("spec.apps[0].name"),
    ));
    cases.push((with("/apps/0/name", json!("w")), None));
    cases.push((with("/apps/0/replicas", json!(0)), None));
    cases.push((
        with("/apps/0/replicas", json!(21)),
        Some("spec.apps[0].replicas"),
    ));
    cases.push((with("/apps/0/port", json!(0)), Some("spec.apps[0].port")));
    cases.push((
        with("/apps/0/port", json!(65536)),
        Some("spec.apps[0].port"),
    ));
    cases.push((
        with("/apps/0/expose", json!("public")),
        Some("spec.apps[0].expose"),
    ));
    let mut no_port = example();
    no_port["apps"][0].as_object_mut().unwrap().remove("port");
    cases.push((no_port, Some("spec.apps[0].port")));
    cases.push((
        with("/apps/0", json!({"name": "web"})),
        Some("spec.apps[0].image"),
    ));
    cases.push((with("/apps/0/env", json!({"_X1": "v"})), None));
    cases.push((
        with("/apps/0/env", json!({"1A": "v"})),
        Some("spec.apps[0].env"),
    ));
    cases.push((
        with("/apps/0/env", json!({"A": "v".repeat(4097)})),
        Some("spec.apps[0].env"),
    ));
    cases.push((
        with("/apps/0/resources/cpu", json!("lots")),
        Some("spec.apps[0].resources.cpu"),
    ));
    cases.push((
        with("/apps", json!([app("web"), app("web")])),
        Some("spec.apps"),
    ));
    let fifty: Vec<Value> = (0..50).map(|i| app(&format!("a{i}"))).collect();
    cases.push((with("/apps", json!(fifty)), None));
    let fifty_one: Vec<Value> = (0..51).map(|i| app(&format!("a{i}"))).collect();
    cases.push((with("/apps", json!(fifty_one)), Some("spec.apps")));
    for email in [
        "Carol.Owner@Example.com",
        " padded@example.com ",
        "a..b@example.com",
        "dev+shop@example.com",
    ] {
        cases.push((with("/members/0/email", json!(email)), None));
    }
    for email in [
        "ada",
        "ada@",
        "@example.com",
        "ada@example",
        "a b@example.com",
        "ada@-x.com",
    ] {
        cases.push((
            with("/members/0/email", json!(email)),
            Some("spec.members[0].email"),
        ));
    }
    cases.push((
        with("/members/0/role", json!("admin")),
        Some("spec.members[0].role"),
    ));
    cases.push((
        with(
            "/members",
            json!([member("a@example.com"), member("A@Example.com")]),
        ),
        Some("spec.members"),
    ));
    let hundred: Vec<Value> = (0..100)
        .map(|i| member(&format!("m{i}@example.com")))
        .collect();
    cases.push((with("/members", json!(hundred)), None));
    let hundred_one: Vec<Value> = (0..101)
        .map(|i| member(&format!("m{i}@example.com")))
        .collect();
    cases.push((with("/members", json!(hundred_one)), Some("spec.members")));
    cases
}

#[tokio::test]
async fn the_schema_refuses_what_the_parser_refuses_naming_the_field() -> Result<()> {
    let cluster = cluster().await?;
    let client = cluster.client();
    install_crd(&client).await?;
    let mut failures = Vec::new();
    for (spec, field) in cases() {
        if let Err(e) = agree(&client, "schema-case", &spec, field).await {
            failures.push(format!("{spec}: {e:#}"));
        }
    }
    ensure!(failures.is_empty(), "{}", failures.join("\n"));
    Ok(())
}

#[tokio::test]
async fn the_schema_refuses_names_the_parser_refuses() -> Result<()> {
    let cluster = cluster().await?;
    let client = cluster.client();
    install_crd(&client).await?;
    for name in ["abc", "team-a-dev", "1ab", &"a".repeat(40)] {
        ensure!(parser_refuses(name, &json!({}))?.is_empty(), "{name}");
        dry_run(&client, name, &json!({}))
            .await
            .with_context(|| format!("the apiserver refuses the name {name}"))?;
    }
    for name in [
        "ab",
        &"a".repeat(41),
        "a.bc",
        "default",
        "kube-foo",
        "berth-x",
    ] {
        ensure!(!parser_refuses(name, &json!({}))?.is_empty(), "{name}");
        match dry_run(&client, name, &json!({})).await {
            Ok(()) => bail!("the apiserver accepts the name {name}"),
            Err(e) => {
                let (_, _, message) = api_status(&e).ok_or_else(|| anyhow!("{e}"))?;
                ensure!(message.contains("metadata.name"), "{name}: {message}");
            }
        }
    }
    Ok(())
}

/// The CRD's spec repeats `EnvironmentSpecInput`'s fields; their schemas
/// (what the apiserver checks) must not drift apart.
#[test]
fn the_crd_spec_schema_is_the_wire_spec_schema() {
    fn properties(schema: schemars::Schema) -> Value {
        let mut value = schema.to_value();
        strip_descriptions(&mut value);
        value["properties"].take()
    }
    fn strip_descriptions(value: &mut Value) {
        match value {
            Value::Object(map) => {
                map.remove("description");
                map.values_mut().for_each(strip_descriptions);
            }
            Value::Array(items) => items.iter_mut().for_each(strip_descriptions),
            _ => {}
        }
    }
    let mut wire = properties(schemars::schema_for!(EnvironmentSpecInput));
    wire.as_object_mut().unwrap().remove("name");
    let crd = properties(schemars::schema_for!(EnvironmentCrdSpec));
    assert_eq!(crd, wire);
}
