//! The client's own configuration: one named context per Berth server the
//! user logged in to, each with its personal access token, and which one is
//! current. Kept in `<config dir>/berth/config.toml` (on Linux
//! `$XDG_CONFIG_HOME/berth`, else `~/.config/berth`), mode 0600, written by
//! replacing the file whole so that a crash never leaves half of it.

use crate::error::CliError;
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::path::{Path, PathBuf};

/// Overrides where the configuration file is (tests, several identities).
pub const CONFIG_ENV: &str = "BERTH_CLIENT_CONFIG";
/// With `BERTH_TOKEN`, a server to talk to without any configuration file
/// (CI jobs).
pub const SERVER_ENV: &str = "BERTH_SERVER";
pub const TOKEN_ENV: &str = "BERTH_TOKEN";
/// The context to use instead of the current one.
pub const CONTEXT_ENV: &str = "BERTH_CONTEXT";

#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct ClientConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current_context: Option<String>,
    #[serde(default)]
    pub contexts: Vec<Context>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct Context {
    pub name: String,
    /// The server's base URL, such as `https://berth.example.com`.
    pub server: String,
    pub token: String,
    /// The token's id on the server, to revoke it at logout (absent for a
    /// token given with `--token`, which `logout` only forgets).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_id: Option<String>,
    #[serde(default)]
    pub email: String,
}

/// What a command talks to: a server and a token, and the context they came
/// from when they came from the file.
#[derive(Debug, Clone)]
pub struct Target {
    pub server: String,
    pub token: String,
    pub context: Option<String>,
}

impl ClientConfig {
    pub fn path() -> Result<PathBuf, CliError> {
        if let Some(path) = std::env::var_os(CONFIG_ENV).filter(|p| !p.is_empty()) {
            return Ok(PathBuf::from(path));
        }
        dirs::config_dir()
            .map(|dir| dir.join("berth").join("config.toml"))
            .ok_or_else(|| {
                CliError::Failed(format!(
                    "no configuration directory is known for this user: set {CONFIG_ENV}"
                ))
            })
    }

    /// The configuration in `path`; empty when there is no file yet.
    pub fn load_from(path: &Path) -> Result<Self, CliError> {
        match std::fs::read_to_string(path) {
            Ok(text) => toml::from_str(&text).map_err(|e| {
                CliError::Failed(format!(
                    "{} is not a Berth configuration: {e}",
                    path.display()
                ))
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Self::default()),
            Err(e) => Err(CliError::Failed(format!(
                "cannot read {}: {e}",
                path.display()
            ))),
        }
    }

    pub fn load() -> Result<Self, CliError> {
        Self::load_from(&Self::path()?)
    }

    pub fn save(&self) -> Result<(), CliError> {
        self.save_to(&Self::path()?)
    }

    /// Writes the whole file anew, readable by the user alone: a sibling
    /// temporary file (created 0600) renamed over it.
    pub fn save_to(&self, path: &Path) -> Result<(), CliError> {
        let text = toml::to_string_pretty(self)
            .map_err(|e| CliError::Failed(format!("cannot write the configuration: {e}")))?;
        write_private(path, text.as_bytes())
    }

    pub fn context(&self, name: &str) -> Option<&Context> {
        self.contexts.iter().find(|c| c.name == name)
    }

    /// Adds `context`, replacing one of the same name, and makes it current.
    pub fn upsert(&mut self, context: Context) {
        self.current_context = Some(context.name.clone());
        match self.contexts.iter_mut().find(|c| c.name == context.name) {
            Some(existing) => *existing = context,
            None => self.contexts.push(context),
        }
    }

    /// Removes the context `name`; the current context is unset if it was that one.
    pub fn remove(&mut self, name: &str) -> Option<Context> {
        let index = self.contexts.iter().position(|c| c.name == name)?;
        if self.current_context.as_deref() == Some(name) {
            self.current_context = None;
        }
        Some(self.contexts.remove(index))
    }

    /// The context a command uses: the one named (flag or `BERTH_CONTEXT`),
    /// else the current one.
    pub fn selected(&self, named: Option<&str>) -> Result<&Context, CliError> {
        match named.or(self.current_context.as_deref()) {
            Some(name) => self.context(name).ok_or_else(|| {
                CliError::Usage(format!(
                    "there is no context {name:?}; `berth context list` shows them"
                ))
            }),
            None => Err(CliError::Failed(
                "not logged in: run `berth login URL` (or set BERTH_SERVER and BERTH_TOKEN)".into(),
            )),
        }
    }
}

/// What a command talks to: `BERTH_SERVER` and `BERTH_TOKEN` when both are
/// set (and no context was named), else the selected context.
pub fn target(named: Option<&str>) -> Result<Target, CliError> {
    // Pasted secrets often end in a line break: no value here may hold one.
    let env = |name| {
        std::env::var(name)
            .ok()
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty())
    };
    let named = named.map(str::to_owned).or_else(|| env(CONTEXT_ENV));
    if named.is_none()
        && let (Some(server), Some(token)) = (env(SERVER_ENV), env(TOKEN_ENV))
    {
        return Ok(Target {
            server,
            token,
            context: None,
        });
    }
    // A token from the environment goes only to the server named beside it,
    // never to whatever server the current context happens to name.
    if env(TOKEN_ENV).is_some() && env(SERVER_ENV).is_none() {
        return Err(CliError::Usage(
            "BERTH_TOKEN is set without BERTH_SERVER: set BERTH_SERVER to the server the token is for, or unset BERTH_TOKEN".into(),
        ));
    }
    let config = ClientConfig::load()?;
    let context = config.selected(named.as_deref())?;
    // A context's token goes to that context's server and nowhere else.
    if let Some(server) = env(SERVER_ENV).filter(|s| *s != context.server)
        && env(TOKEN_ENV).is_none()
    {
        return Err(CliError::Usage(format!(
            "BERTH_SERVER is {server} but context {} is for {}: set BERTH_TOKEN too, or unset BERTH_SERVER",
            context.name, context.server
        )));
    }
    Ok(Target {
        server: env(SERVER_ENV).unwrap_or_else(|| context.server.clone()),
        token: env(TOKEN_ENV).unwrap_or_else(|| context.token.clone()),
        context: Some(context.name.clone()),
    })
}

/// Writes `bytes` to `path` as a new file of mode 0600 (directories made
/// 0700), replacing any file there in one rename.
pub fn write_private(path: &Path, bytes: &[u8]) -> Result<(), CliError> {
    let fail = |what: &str, e: std::io::Error| {
        CliError::Failed(format!("cannot {what} {}: {e}", path.display()))
    };
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    if !dir.exists() {
        let mut builder = std::fs::DirBuilder::new();
        builder.recursive(true);
        #[cfg(unix)]
        std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
        builder
            .create(dir)
            .map_err(|e| fail("create the directory of", e))?;
    }
    // tempfile creates its files 0600.
    let mut file = tempfile::NamedTempFile::new_in(dir).map_err(|e| fail("write", e))?;
    file.write_all(bytes).map_err(|e| fail("write", e))?;
    file.as_file().sync_all().map_err(|e| fail("write", e))?;
    file.persist(path).map_err(|e| fail("replace", e.error))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn context(name: &str) -> Context {
        Context {
            name: name.into(),
            server: format!("https://{name}"),
            token: "berth_pat_x".into(),
            token_id: Some("1".into()),
            email: "ada@example.com".into(),
        }
    }

    #[test]
    fn contexts_are_kept_per_server_and_the_file_is_private() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nested").join("config.toml");
        let mut config = ClientConfig::load_from(&path).unwrap();
        assert_eq!(config, ClientConfig::default());
        config.upsert(context("a.example"));
        config.upsert(context("b.example"));
        let mut again = context("a.example");
        again.token = "berth_pat_y".into();
        config.upsert(again);
        config.save_to(&path).unwrap();

        let loaded = ClientConfig::load_from(&path).unwrap();
        assert_eq!(loaded, config);
        assert_eq!(loaded.contexts.len(), 2);
        assert_eq!(loaded.current_context.as_deref(), Some("a.example"));
        assert_eq!(loaded.selected(None).unwrap().token, "berth_pat_y");
        assert_eq!(
            loaded.selected(Some("b.example")).unwrap().name,
            "b.example"
        );
        assert!(matches!(
            loaded.selected(Some("c")),
            Err(CliError::Usage(_))
        ));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
            let mode = std::fs::metadata(path.parent().unwrap())
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o700);
        }
    }

    #[test]
    fn removing_the_current_context_leaves_none_current() {
        let mut config = ClientConfig::default();
        config.upsert(context("a"));
        config.upsert(context("b"));
        assert!(config.remove("a").is_some());
        assert_eq!(config.current_context.as_deref(), Some("b"));
        assert!(config.remove("b").is_some());
        assert_eq!(config.current_context, None);
        assert!(matches!(config.selected(None), Err(CliError::Failed(_))));
    }

    #[test]
    fn a_broken_file_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.toml");
        std::fs::write(&path, "contexts = 3").unwrap();
        let error = ClientConfig::load_from(&path).unwrap_err().to_string();
        assert!(error.contains("config.toml"), "{error}");
    }
}
