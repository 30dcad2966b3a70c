//! Golden files: the YAML of representative specs, byte for byte. After an
//! intended change, regenerate with `BERTH_BLESS=1 cargo test -p berth-manifests`.

mod support;

use berth_manifests::{BuildOptions, build, crd_yaml, policy_crd_yaml, to_yaml};
use serde_json::json;
use std::path::{Path, PathBuf};

const OWNER_UID: &str = "6f1c1f4e-1d2b-4c3a-9e8f-0a1b2c3d4e5f";

fn check(path: &Path, actual: &str) {
    if std::env::var_os("BERTH_BLESS").is_some() {
        std::fs::write(path, actual).expect("write golden file");
        return;
    }
    let expected = std::fs::read_to_string(path).unwrap_or_default();
    assert!(
        expected == actual,
        "{} is stale; if the change is intended, run BERTH_BLESS=1 cargo test -p berth-manifests\n--- actual ---\n{actual}",
        path.display()
    );
}

fn golden(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(format!("{name}.yaml"))
}

fn owned() -> BuildOptions {
    BuildOptions {
        owner_uid: Some(OWNER_UID.into()),
        ..BuildOptions::default()
    }
}

#[test]
fn minimal_spec_gets_the_policy_defaults() {
    let spec = support::resolved(json!({"name": "minimal"}));
    check(
        &golden("minimal"),
        &to_yaml(&build(&spec, &BuildOptions::default())),
    );
}

#[test]
fn contract_example() {
    let spec = support::resolved(support::example());
    check(
        &golden("contract-example"),
        &to_yaml(&build(&spec, &owned())),
    );
}

#[test]
fn open_baseline_with_ingress_and_every_role() {
    let spec = support::resolved(json!({
        "name": "shop-staging",
        "template": "medium",
        "network": {"isolation": "open"},
        "podSecurity": "baseline",
        "apps": [
            {"name": "frontend", "image": "ghcr.io/acme/shop-frontend:2.4.1", "replicas": 3, "port": 3000,
             "expose": "ingress", "env": {"API_URL": "http://api:8080", "NODE_ENV": "production"}},
            {"name": "api", "image": "ghcr.io/acme/shop-api@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
             "port": 8080, "resources": {"cpu": "500m", "memory": "1Gi"}},
            {"name": "worker", "image": "ghcr.io/acme/shop-worker:2.4.1", "replicas": 0}
        ],
        "members": [
            {"email": "Carol.Owner@Example.com", "role": "owner"},
            {"email": "dev+shop@example.com", "role": "editor"},
            {"email": "auditor@example.org", "role": "viewer"}
        ]
    }));
    // Every member but the viewer has an account: the viewer gets no binding.
    let options = BuildOptions {
        ingress_domain: "apps.example.com".into(),
        ingress_class: Some("nginx".into()),
        identities: [
            (
                "carol.owner@example.com",
                "user-00000000-0000-7000-8000-00000000000c",
            ),
            (
                "dev+shop@example.com",
                "user-00000000-0000-7000-8000-00000000000d",
            ),
        ]
        .into_iter()
        .map(|(email, account)| (email.to_owned(), vec![account.to_owned()]))
        .collect(),
        ..owned()
    };
    check(&golden("open-baseline"), &to_yaml(&build(&spec, &options)));
}

#[test]
fn large_template_without_expiry_or_members() {
    let mut policy_free = support::example();
    policy_free["template"] = json!("large");
    for field in ["quota", "limits", "ttl", "members"] {
        policy_free.as_object_mut().unwrap().remove(field);
    }
    policy_free["name"] = json!("data-lab");
    let mut spec = support::resolved(policy_free);
    spec.ttl = None;
    check(&golden("large"), &to_yaml(&build(&spec, &owned())));
}

#[test]
fn the_checked_in_crd_is_current() {
    let path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/crd/environments.berth.dev.yaml");
    check(&path, &crd_yaml());
}

#[test]
fn the_checked_in_policy_crd_is_current() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../deploy/crd/environmentpolicies.berth.dev.yaml");
    check(&path, &policy_crd_yaml());
}
