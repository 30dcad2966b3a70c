//! Tests of the whole spec: a table of bad inputs, and properties over generated ones.

mod props;
mod table;

use serde_json::{Value, json};

/// The contract's example spec.
fn example() -> Value {
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
