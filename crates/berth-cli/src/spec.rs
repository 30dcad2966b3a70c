//! Environment spec files and what `apply` and `edit` make of them: pure
//! functions, no I/O beyond reading the file.

use crate::error::CliError;
use serde_json::{Map, Value, json};
use std::io::Read;

/// Reads an EnvironmentSpec from `path` (`-` for standard input), YAML or
/// JSON. An `Environment` resource as `kubectl` would apply it
/// (`metadata.name` and `spec`) is read as the spec it carries.
pub fn read(path: &str) -> Result<Value, CliError> {
    let text = if path == "-" {
        let mut text = String::new();
        std::io::stdin().read_to_string(&mut text).map_err(|e| {
            CliError::Failed(format!("cannot read the spec from standard input: {e}"))
        })?;
        text
    } else {
        std::fs::read_to_string(path)
            .map_err(|e| CliError::Failed(format!("cannot read {path}: {e}")))?
    };
    let source = if path == "-" { "standard input" } else { path };
    parse(&text).map_err(|e| CliError::Failed(format!("{source}: {e}")))
}

/// The spec in `text` (YAML or JSON), quantities written as numbers made
/// strings as the API takes them (`cpu: 2` is `"2"`).
pub fn parse(text: &str) -> Result<Value, String> {
    let value: Value = serde_yaml::from_str(text).map_err(|e| format!("not YAML or JSON: {e}"))?;
    let mut spec = match value {
        Value::Object(mut object) if object.get("kind") == Some(&json!("Environment")) => {
            let name = object.get("metadata").and_then(|m| m.get("name")).cloned();
            let mut spec = match object.remove("spec") {
                Some(Value::Object(spec)) => spec,
                None => Map::new(),
                Some(_) => return Err("`spec` must be a mapping".into()),
            };
            if let Some(name) = name {
                spec.insert("name".into(), name);
            }
            Value::Object(spec)
        }
        Value::Object(object) => Value::Object(object),
        _ => {
            return Err(
                "must be a mapping of the environment's fields (name, template, quota, ...)".into(),
            );
        }
    };
    stringify_quantities(&mut spec);
    Ok(spec)
}

/// Quantities and environment variables are strings in the API; YAML reads
/// `cpu: 2` or `MODE: 1` as numbers.
fn stringify_quantities(spec: &mut Value) {
    fn strings(object: Option<&mut Value>, keys: Option<&[&str]>) {
        let Some(Value::Object(object)) = object else {
            return;
        };
        for (key, value) in object.iter_mut() {
            let wanted = keys.is_none_or(|keys| keys.contains(&key.as_str()));
            if wanted && let Value::Number(n) = value {
                *value = Value::String(n.to_string());
            }
        }
    }
    let quantities = ["cpu", "memory", "storage", "ephemeralStorage"];
    strings(spec.get_mut("quota"), Some(&quantities));
    strings(spec.get_mut("limits"), None);
    if let Some(Value::Array(apps)) = spec.get_mut("apps") {
        for app in apps {
            strings(app.get_mut("resources"), None);
            strings(app.get_mut("env"), None);
        }
    }
}

/// The environment's name the spec gives.
pub fn name(spec: &Value) -> Result<String, CliError> {
    match spec.get("name") {
        Some(Value::String(name)) if !name.is_empty() => Ok(name.clone()),
        _ => Err(CliError::Failed(
            "the spec is invalid\n  name: is required (the environment's name)".into(),
        )),
    }
}

/// The RFC 7386 merge patch that turns `from` into `to` (what
/// [`json_patch::merge`] applies); `{}` when they are equal.
pub fn merge_diff(from: &Value, to: &Value) -> Value {
    match (from, to) {
        (Value::Object(from), Value::Object(to)) => {
            let mut patch = Map::new();
            for key in from.keys().filter(|k| !to.contains_key(*k)) {
                patch.insert(key.clone(), Value::Null);
            }
            for (key, value) in to {
                match from.get(key) {
                    Some(old) if old == value => {}
                    Some(old) if old.is_object() && value.is_object() => {
                        patch.insert(key.clone(), merge_diff(old, value));
                    }
                    _ => {
                        patch.insert(key.clone(), value.clone());
                    }
                }
            }
            Value::Object(patch)
        }
        _ => to.clone(),
    }
}

/// What `apply` wants the environment's spec to be: the current spec with
/// every field the file gives. The file's apps are the apps; each keeps
/// what the file leaves out of it (such as the replicas the server filled
/// in) from the app of the same name. As on create, the environment's owner
/// stays its first member, an owner, whatever the file's member list says.
pub fn desired(current: &Value, file: &Value, owner: &str) -> Value {
    let mut wanted = file.clone();
    if let Value::Object(object) = &mut wanted {
        object.remove("name");
        if let Some(Value::Array(apps)) = object.get_mut("apps") {
            let before = current["apps"].as_array().map(Vec::as_slice).unwrap_or(&[]);
            for app in apps.iter_mut() {
                if let Some(old) = before.iter().find(|old| old.get("name") == app.get("name")) {
                    let mut merged = old.clone();
                    json_patch::merge(&mut merged, app);
                    *app = merged;
                }
            }
        }
    }
    let mut desired = current.clone();
    json_patch::merge(&mut desired, &wanted);
    if file.get("members").is_some() && !owner.is_empty() {
        let members = desired
            .as_object_mut()
            .expect("a spec is an object")
            .entry("members")
            .or_insert_with(|| json!([]));
        if let Value::Array(members) = members {
            members.retain(|m| {
                m.get("email")
                    .and_then(Value::as_str)
                    .is_none_or(|e| !e.eq_ignore_ascii_case(owner))
            });
            members.insert(0, json!({"email": owner, "role": "owner"}));
        }
    }
    desired
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn yaml_json_and_environment_resources_read_alike() {
        let yaml = "name: team-a\ntemplate: small\nquota:\n  cpu: 2\n  memory: 4Gi\n  pods: 20\napps:\n- name: web\n  image: nginx:1.27\n  env: {MODE: 1}\n  resources: {cpu: 0.5}\n";
        let expected = json!({"name": "team-a", "template": "small",
            "quota": {"cpu": "2", "memory": "4Gi", "pods": 20},
            "apps": [{"name": "web", "image": "nginx:1.27", "env": {"MODE": "1"}, "resources": {"cpu": "0.5"}}]});
        assert_eq!(parse(yaml).unwrap(), expected);
        assert_eq!(parse(&expected.to_string()).unwrap(), expected);
        let resource = "apiVersion: berth.dev/v1alpha1\nkind: Environment\nmetadata:\n  name: team-a\nspec:\n  template: small\n";
        assert_eq!(
            parse(resource).unwrap(),
            json!({"name": "team-a", "template": "small"})
        );
        assert!(parse("- a\n- b\n").is_err());
        assert!(parse("name: [unclosed").unwrap_err().contains("line"));
    }

    #[test]
    fn a_spec_without_a_name_is_refused_naming_the_field() {
        let error = name(&json!({"template": "small"})).unwrap_err().to_string();
        assert!(error.contains("name: is required"), "{error}");
        assert_eq!(name(&json!({"name": "x-y"})).unwrap(), "x-y");
    }

    #[test]
    fn a_diff_is_the_merge_patch_between_two_specs() {
        let from = json!({"name": "a", "ttl": "8h", "quota": {"cpu": "1", "memory": "1Gi"}, "apps": [{"name": "x"}]});
        let to = json!({"name": "a", "quota": {"cpu": "2", "memory": "1Gi"}, "apps": [{"name": "x"}, {"name": "y"}], "description": "d"});
        let patch = merge_diff(&from, &to);
        assert_eq!(
            patch,
            json!({"ttl": null, "quota": {"cpu": "2"}, "apps": [{"name": "x"}, {"name": "y"}], "description": "d"})
        );
        let mut patched = from.clone();
        json_patch::merge(&mut patched, &patch);
        assert_eq!(patched, to);
        assert_eq!(merge_diff(&to, &to), json!({}));
    }

    #[test]
    fn applying_the_same_file_again_changes_nothing() {
        let file = json!({"name": "a", "template": "small", "members": [{"email": "bob@example.com", "role": "editor"}]});
        // As the server stored it: resolved, the creator first as owner.
        let current = json!({"name": "a", "template": "small", "ttl": "72h",
            "quota": {"cpu": "2"},
            "members": [{"email": "ada@example.com", "role": "owner"}, {"email": "bob@example.com", "role": "editor"}]});
        assert_eq!(desired(&current, &file, "ada@example.com"), current);
        // Nor does a file that names the owner with another role.
        let demoting = json!({"name": "a", "members": [{"email": "ADA@example.com", "role": "viewer"}, {"email": "bob@example.com", "role": "editor"}]});
        assert_eq!(desired(&current, &demoting, "ada@example.com"), current);

        // An app keeps what the server filled in and the file leaves out;
        // one the file drops is gone.
        let current = json!({"name": "a", "apps": [
            {"name": "web", "image": "nginx:1.27", "replicas": 1, "expose": "cluster"},
            {"name": "old", "image": "busybox", "replicas": 1}]});
        let file = json!({"name": "a", "apps": [{"name": "web", "image": "nginx:1.27"}]});
        let patch = merge_diff(&current, &super::desired(&current, &file, ""));
        assert_eq!(
            patch,
            json!({"apps": [{"name": "web", "image": "nginx:1.27", "replicas": 1, "expose": "cluster"}]})
        );
        let file = json!({"name": "a", "apps": [
            {"name": "web", "image": "nginx:1.27"}, {"name": "old", "image": "busybox"}]});
        assert_eq!(super::desired(&current, &file, ""), current);

        // A change the file makes is the only thing patched.
        let current = json!({"name": "a", "template": "small", "quota": {"cpu": "2"}});
        let file = json!({"name": "a", "description": "now", "quota": {"cpu": "3"}});
        let patch = merge_diff(
            &current,
            &super::desired(&current, &file, "ada@example.com"),
        );
        assert_eq!(patch, json!({"description": "now", "quota": {"cpu": "3"}}));
    }
}
