//! Specs shared by the tests and the benchmark.

// Each test crate that includes this module uses only some of it.
#![allow(dead_code)]

pub mod crd;

use berth_core::environment::{
    EnvironmentSpec, EnvironmentSpecInput, Policy, ResolvedSpec, builtin_templates, resolve,
};
use serde_json::{Value, json};

pub fn resolved(value: Value) -> ResolvedSpec {
    let input = EnvironmentSpecInput::from_json(value).expect("wire form");
    let spec = EnvironmentSpec::parse(&input).expect("valid spec");
    resolve(spec, &builtin_templates(), &Policy::default()).expect("resolves")
}

/// The contract's example spec.
pub fn example() -> Value {
    json!({
        "name": "team-a-dev",
        "description": "Feature work for team A",
        "template": "small",
        "quota": {"cpu": "2", "memory": "4Gi", "storage": "10Gi", "pods": 20},
        "limits": {"defaultCpu": "250m", "defaultMemory": "256Mi"},
        "network": {"isolation": "isolated"},
        "podSecurity": "restricted",
        "ttl": "72h",
        "apps": [{"name": "web", "image": "nginx:1.27", "replicas": 2, "port": 8080,
                  "env": {"MODE": "dev"}, "resources": {"cpu": "100m", "memory": "128Mi"},
                  "expose": "cluster"}],
        "members": [{"email": "bob@example.com", "role": "editor"}]
    })
}

/// A spec with `apps` apps, each exposed by ingress, for the benchmark.
pub fn many_apps(apps: usize) -> Value {
    let apps: Vec<Value> = (0..apps)
        .map(|i| {
            json!({"name": format!("app-{i}"), "image": format!("ghcr.io/acme/app-{i}:v1.{i}"),
                   "replicas": 1, "port": 8080, "env": {"INDEX": i.to_string(), "MODE": "bench"},
                   "resources": {"cpu": "50m", "memory": "64Mi"}, "expose": "ingress"})
        })
        .collect();
    json!({
        "name": "bench-env", "template": "large", "apps": apps,
        "members": [{"email": "owner@example.com", "role": "owner"},
                    {"email": "dev@example.com", "role": "editor"},
                    {"email": "pm@example.com", "role": "viewer"}]
    })
}
