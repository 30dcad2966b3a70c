//! `berth env kubeconfig NAME --merge`: the environment's kubeconfig added
//! to the user's own as a context of its own. The file is backed up first
//! and replaced whole (a new file renamed over it), so that it is never left
//! half written; a file that is not a kubeconfig is left alone.

use crate::config::write_private;
use crate::error::CliError;
use serde_yaml::{Mapping, Value};
use std::path::{Path, PathBuf};

/// The kubeconfig kubectl uses: the first file of `$KUBECONFIG`, else
/// `~/.kube/config`.
pub fn default_path() -> Result<PathBuf, CliError> {
    if let Some(first) = std::env::var_os("KUBECONFIG")
        .as_ref()
        .and_then(|v| std::env::split_paths(v).find(|p| !p.as_os_str().is_empty()))
    {
        return Ok(first);
    }
    dirs::home_dir()
        .map(|home| home.join(".kube").join("config"))
        .ok_or_else(|| CliError::Failed("no home directory: give --kubeconfig".into()))
}

/// Where the file is kept as it was before a merge.
pub fn backup_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".berth-backup");
    path.with_file_name(name)
}

/// Merges `fetched` (Berth's kubeconfig for one environment) into the file
/// at `path`; returns the context's name.
pub fn merge_into(path: &Path, fetched: &str, use_context: bool) -> Result<String, CliError> {
    let existing = match std::fs::read_to_string(path) {
        Ok(text) => Some(text),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => {
            return Err(CliError::Failed(format!(
                "cannot read {}: {e}",
                path.display()
            )));
        }
    };
    let (merged, context) = merge(existing.as_deref(), fetched, use_context)
        .map_err(|e| CliError::Failed(format!("{}: {e}; it was left as it is", path.display())))?;
    if let Some(existing) = &existing {
        write_private(&backup_path(path), existing.as_bytes())?;
    }
    write_private(path, merged.as_bytes())?;
    Ok(context)
}

/// `existing` (a kubeconfig, or none) with the cluster, user and context of
/// `fetched` added, each replacing one of the same name. They are all named
/// after the fetched context, so that environments of different servers
/// never share a cluster entry. The current context changes only when
/// `use_context` is set or there was none.
pub fn merge(
    existing: Option<&str>,
    fetched: &str,
    use_context: bool,
) -> Result<(String, String), String> {
    let fetched: Value = serde_yaml::from_str(fetched)
        .map_err(|e| format!("the server's kubeconfig is not YAML: {e}"))?;
    let first = |key: &str| -> Result<Mapping, String> {
        fetched
            .get(key)
            .and_then(Value::as_sequence)
            .and_then(|s| s.first())
            .and_then(Value::as_mapping)
            .cloned()
            .ok_or_else(|| format!("the server's kubeconfig has no {key}"))
    };
    let (mut cluster, mut user, mut context) =
        (first("clusters")?, first("users")?, first("contexts")?);
    let name = context
        .get("name")
        .and_then(Value::as_str)
        .ok_or("the server's kubeconfig names no context")?
        .to_owned();
    cluster.insert("name".into(), name.clone().into());
    user.insert("name".into(), name.clone().into());
    let inner = context
        .get_mut("context")
        .and_then(Value::as_mapping_mut)
        .ok_or("the server's kubeconfig has an empty context")?;
    inner.insert("cluster".into(), name.clone().into());
    inner.insert("user".into(), name.clone().into());

    let mut config = match existing.filter(|text| !text.trim().is_empty()) {
        None => {
            let mut config = Mapping::new();
            config.insert("apiVersion".into(), "v1".into());
            config.insert("kind".into(), "Config".into());
            config
        }
        Some(text) => match serde_yaml::from_str::<Value>(text) {
            Ok(Value::Mapping(config)) => {
                // Only what a kubeconfig holds: a manifest or any other
                // YAML mapping is no file to add credentials to.
                const KEYS: &[&str] = &[
                    "apiVersion",
                    "kind",
                    "clusters",
                    "users",
                    "contexts",
                    "current-context",
                    "preferences",
                    "extensions",
                ];
                let foreign = config
                    .keys()
                    .find(|k| !k.as_str().is_some_and(|k| KEYS.contains(&k)));
                if let Some(key) = foreign {
                    return Err(format!(
                        "not a kubeconfig: it holds `{}`",
                        key.as_str().unwrap_or("a non-text key")
                    ));
                }
                if config
                    .get("kind")
                    .is_some_and(|k| k.as_str() != Some("Config"))
                {
                    return Err("not a kubeconfig: its kind is not Config".into());
                }
                config
            }
            Ok(_) => return Err("not a kubeconfig (not a mapping)".into()),
            Err(e) => return Err(format!("not a kubeconfig: {e}")),
        },
    };
    for (key, entry) in [
        ("clusters", cluster),
        ("users", user),
        ("contexts", context),
    ] {
        let list = config
            .entry(key.into())
            .or_insert_with(|| Value::Sequence(Vec::new()));
        if list.is_null() {
            *list = Value::Sequence(Vec::new());
        }
        let Value::Sequence(list) = list else {
            return Err(format!("not a kubeconfig: `{key}` is not a list"));
        };
        let same = |e: &Value| e.get("name").and_then(Value::as_str) == Some(name.as_str());
        match list.iter_mut().find(|e| same(e)) {
            Some(old) => *old = Value::Mapping(entry),
            None => list.push(Value::Mapping(entry)),
        }
    }
    let no_current = config
        .get("current-context")
        .and_then(Value::as_str)
        .is_none_or(str::is_empty);
    if use_context || no_current {
        config.insert("current-context".into(), name.clone().into());
    }
    let text = serde_yaml::to_string(&Value::Mapping(config)).map_err(|e| e.to_string())?;
    Ok((text, name))
}

#[cfg(test)]
mod tests {
    use super::*;

    const FETCHED: &str = "apiVersion: v1\nkind: Config\nclusters:\n- name: berth\n  cluster:\n    server: https://127.0.0.1:6443\n    certificate-authority-data: Q0E=\nusers:\n- name: team-a-ada\n  user:\n    token: t1\ncontexts:\n- name: team-a-ada\n  context:\n    cluster: berth\n    user: team-a-ada\n    namespace: team-a\ncurrent-context: team-a-ada\n";

    const MINE: &str = "apiVersion: v1\nkind: Config\nclusters:\n- name: berth\n  cluster:\n    server: https://prod.example:6443\nusers:\n- name: me\n  user:\n    token: mine\ncontexts:\n- name: prod\n  context:\n    cluster: berth\n    user: me\ncurrent-context: prod\npreferences: {}\n";

    fn parse(text: &str) -> Value {
        serde_yaml::from_str(text).unwrap()
    }

    #[test]
    fn a_new_context_joins_what_is_there_and_collides_with_nothing() {
        let (merged, name) = merge(Some(MINE), FETCHED, false).unwrap();
        assert_eq!(name, "team-a-ada");
        let merged = parse(&merged);
        assert_eq!(
            merged["current-context"], "prod",
            "the current context stays"
        );
        assert_eq!(merged["preferences"], parse("{}"));
        let clusters = merged["clusters"].as_sequence().unwrap();
        assert_eq!(clusters.len(), 2);
        assert_eq!(
            clusters[0]["cluster"]["server"], "https://prod.example:6443",
            "theirs kept"
        );
        assert_eq!(clusters[1]["name"], "team-a-ada");
        assert_eq!(clusters[1]["cluster"]["server"], "https://127.0.0.1:6443");
        let contexts = merged["contexts"].as_sequence().unwrap();
        assert_eq!(contexts[1]["context"]["cluster"], "team-a-ada");
        assert_eq!(contexts[1]["context"]["user"], "team-a-ada");
        assert_eq!(contexts[1]["context"]["namespace"], "team-a");
    }

    #[test]
    fn merging_again_refreshes_the_token_in_place() {
        let (once, _) = merge(Some(MINE), FETCHED, false).unwrap();
        let fresh = FETCHED.replace("token: t1", "token: t2");
        let (twice, _) = merge(Some(&once), &fresh, true).unwrap();
        let twice = parse(&twice);
        let users = twice["users"].as_sequence().unwrap();
        assert_eq!(users.len(), 2);
        assert_eq!(users[1]["user"]["token"], "t2");
        assert_eq!(twice["current-context"], "team-a-ada");
    }

    #[test]
    fn no_file_or_an_empty_one_becomes_a_kubeconfig_of_its_own() {
        for existing in [None, Some(""), Some("\n")] {
            let (merged, _) = merge(existing, FETCHED, false).unwrap();
            let merged = parse(&merged);
            assert_eq!(merged["kind"], "Config");
            assert_eq!(merged["current-context"], "team-a-ada");
        }
    }

    #[test]
    fn a_file_that_is_not_a_kubeconfig_is_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config");
        for junk in [
            "[1, 2",
            "- a list",
            "clusters: 3",
            "foo: bar",
            "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\n",
            "apiVersion: v1\nkind: Pod\n",
        ] {
            std::fs::write(&path, junk).unwrap();
            let error = merge_into(&path, FETCHED, false).unwrap_err().to_string();
            assert!(error.contains("left as it is"), "{error}");
            assert_eq!(std::fs::read_to_string(&path).unwrap(), junk);
            assert!(!backup_path(&path).exists());
        }
    }

    #[test]
    fn the_file_is_backed_up_and_replaced_whole() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config");
        std::fs::write(&path, MINE).unwrap();
        merge_into(&path, FETCHED, false).unwrap();
        assert_eq!(std::fs::read_to_string(backup_path(&path)).unwrap(), MINE);
        let merged = parse(&std::fs::read_to_string(&path).unwrap());
        assert_eq!(merged["contexts"].as_sequence().unwrap().len(), 2);
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(names.len(), 2, "no temporary file left: {names:?}");
    }
}
