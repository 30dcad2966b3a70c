//! The Berth client: everything the portal does, from a terminal or a CI
//! job, against a Berth server's HTTP API (`../shared/api.md`), in the style
//! of `kubectl` and `gh`.
//!
//! The binary flattens [`ClientCommand`] into its own commands and calls
//! [`run`], which returns the exit code scripts rely on: 0 ok, 1 error,
//! 2 usage, 3 not found, 4 pending approval.

mod admin;
pub mod api;
mod auth;
pub mod config;
mod env;
pub mod error;
pub mod kubeconfig;
pub mod output;
pub mod spec;
mod sse;
mod wait;

use clap::{Args, Subcommand};
use error::CliError;
use output::Format;
use std::time::Duration;

/// Options every client command takes.
#[derive(Args, Clone, Debug, Default)]
pub struct Common {
    /// The context (server and login) to use instead of the current one;
    /// also BERTH_CONTEXT. BERTH_SERVER with BERTH_TOKEN need no login at all.
    #[arg(long, global = true)]
    pub context: Option<String>,
    /// Output: tables for people, json or yaml for scripts.
    #[arg(short = 'o', long, global = true, value_enum, default_value_t)]
    pub output: Format,
}

#[derive(Subcommand, Debug)]
pub enum ClientCommand {
    /// Log in to a Berth server and keep a personal access token for it, as a
    /// named context (prompts for email and password, or takes --token).
    Login(auth::LoginArgs),
    /// Revoke the context's token and forget the context.
    Logout {
        #[command(flatten)]
        common: Common,
    },
    /// Who the current context is logged in as, and where.
    Whoami {
        #[command(flatten)]
        common: Common,
    },
    /// The servers logged in to, and which one is in use.
    Context {
        #[command(subcommand)]
        command: auth::ContextCommand,
        #[command(flatten)]
        common: Common,
    },
    /// Environments: list, create, apply, wait until Ready, connect, delete.
    #[command(visible_alias = "envs")]
    Env {
        #[command(subcommand)]
        command: env::EnvCommand,
        #[command(flatten)]
        common: Common,
    },
    /// Administration: requests waiting for approval, users, policy,
    /// templates, audit log (admins only).
    Admin {
        #[command(subcommand)]
        command: admin::AdminCommand,
        #[command(flatten)]
        common: Common,
    },
    /// Print a shell completion script: `source <(berth completion bash)`.
    Completion {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
}

/// Runs `command`; `cli` gives the whole command line's definition (for
/// completions). Errors are printed to standard error; returns the exit code.
pub async fn run(command: ClientCommand, cli: impl FnOnce() -> clap::Command) -> i32 {
    let outcome = match command {
        ClientCommand::Login(args) => auth::login(args).await,
        ClientCommand::Logout { common } => auth::logout(&common).await,
        ClientCommand::Whoami { common } => auth::whoami(&common).await,
        ClientCommand::Context { command, common } => auth::context(command, &common),
        ClientCommand::Env { command, common } => env::run(command, &common).await,
        ClientCommand::Admin { command, common } => admin::run(command, &common).await,
        ClientCommand::Completion { shell } => {
            let mut cli = cli();
            clap_complete::generate(shell, &mut cli, "berth", &mut std::io::stdout());
            Ok(())
        }
    };
    match outcome {
        Ok(()) => error::EXIT_OK,
        Err(CliError::PendingApproval(message)) => {
            eprintln!("{message}");
            error::EXIT_PENDING
        }
        Err(error) => {
            eprintln!("error: {error}");
            error.exit_code()
        }
    }
}

/// A duration as people write one: `90s`, `5m`, `2h`, `1d`, or seconds.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: u64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not a duration such as 90s, 5m, 2h or 1d"))?;
    let seconds = match unit {
        "" | "s" => 1,
        "m" => 60,
        "h" => 3_600,
        "d" => 86_400,
        _ => {
            return Err(format!(
                "{text:?} is not a duration such as 90s, 5m, 2h or 1d"
            ));
        }
    };
    Ok(Duration::from_secs(number * seconds))
}

/// A path segment with everything but unreserved characters percent-encoded.
pub(crate) fn segment(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' | b'@' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_as_people_write_them() {
        assert_eq!(parse_duration("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration("2h"), Ok(Duration::from_secs(7200)));
        assert_eq!(parse_duration("1d"), Ok(Duration::from_secs(86400)));
        assert_eq!(parse_duration("30"), Ok(Duration::from_secs(30)));
        for bad in ["", "m", "5x", "-1s", "1.5h"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn emails_are_one_path_segment() {
        assert_eq!(segment("bob+ci@example.com"), "bob%2Bci@example.com");
        assert_eq!(segment("a/b?c"), "a%2Fb%3Fc");
        assert_eq!(segment("team-a_1.x~"), "team-a_1.x~");
    }
}
