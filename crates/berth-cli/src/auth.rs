//! `berth login`, `logout`, `whoami` and `context`.

use crate::api::{Answer, Api, normalize_server};
use crate::config::{self, ClientConfig, Context};
use crate::error::CliError;
use crate::output::{self, Format, items_of};
use crate::{Common, segment};
use clap::{Args, Subcommand};
use reqwest::Method;
use reqwest::header::{COOKIE, SET_COOKIE};
use serde_json::{Value, json};
use std::io::{BufRead, IsTerminal, Write};

#[derive(Args, Debug)]
pub struct LoginArgs {
    /// The Berth server's URL, such as https://berth.example.com (default:
    /// the current context's server).
    url: Option<String>,
    /// Use this personal access token (made in the portal) instead of a
    /// password; `-` reads it from standard input.
    #[arg(long)]
    token: Option<String>,
    /// The account's email (else prompted for).
    #[arg(long)]
    email: Option<String>,
    /// Read the password from standard input (its first line) instead of
    /// prompting for it.
    #[arg(long)]
    password_stdin: bool,
    /// The context's name (default: the server's host and port).
    #[arg(long = "name")]
    name: Option<String>,
    /// Days until the token made at login expires (default: never).
    #[arg(long)]
    expires_in_days: Option<u32>,
}

#[derive(Subcommand, Debug)]
pub enum ContextCommand {
    /// The contexts, and which one is current.
    List,
    /// Make a context current.
    Use { name: String },
}

pub async fn login(args: LoginArgs) -> Result<(), CliError> {
    let mut config = ClientConfig::load()?;
    let url = match args.url.clone().or_else(|| {
        std::env::var(config::SERVER_ENV)
            .ok()
            .filter(|s| !s.is_empty())
    }) {
        Some(url) => url,
        None => config
            .selected(None)
            .map(|c| c.server.clone())
            .map_err(|_| {
                CliError::Usage(
                    "give the server's URL: berth login https://berth.example.com".into(),
                )
            })?,
    };
    let server = normalize_server(&url)?;
    let mut stdin = std::io::stdin().lock();
    let (token, token_id, user) = match args.token.as_deref() {
        Some(token) => {
            let token = if token == "-" {
                read_line(&mut stdin, "the token")?
            } else {
                token.to_owned()
            };
            let user = Api::new(&server, Some(token.clone()))?
                .get("/api/v1/me")
                .await?;
            (token, None, user)
        }
        None => {
            let email = match args.email.clone() {
                Some(email) => email,
                None => prompt(&mut stdin, "Email: ")?,
            };
            let password = if args.password_stdin || !std::io::stdin().is_terminal() {
                read_line(&mut stdin, "the password")?
            } else {
                rpassword::prompt_password("Password: ")
                    .map_err(|e| CliError::Failed(format!("cannot read the password: {e}")))?
            };
            let (token, id, user) =
                password_login(&server, &email, &password, args.expires_in_days).await?;
            (token, Some(id), user)
        }
    };
    let name = match args.name {
        Some(name) => name,
        None => context_name(&server),
    };
    let email = user["email"].as_str().unwrap_or_default().to_owned();
    // Logging in again replaces the context's token: the one it held, if
    // this CLI made it, is revoked rather than left working unseen.
    if let Some(old) = config.context(&name).cloned()
        && old.token != token
        && let Err(error) = revoke(&old).await
    {
        eprintln!("warning: the token context {name} held before was not revoked: {error}");
    }
    config.upsert(Context {
        name: name.clone(),
        server: server.clone(),
        token,
        token_id,
        email: email.clone(),
    });
    config.save()?;
    output::say(&format!(
        "Logged in to {server} as {email} (context {name})."
    ))
}

/// Logs in with a password, makes a personal access token with the session
/// (as the portal would) and ends the session; returns the token, its id and
/// the user.
async fn password_login(
    server: &str,
    email: &str,
    password: &str,
    expires_in_days: Option<u32>,
) -> Result<(String, String, Value), CliError> {
    let api = Api::new(server, None)?;
    let body = json!({"email": email, "password": password});
    // A failed login counts against the account: never repeated.
    let login = api
        .call(Method::POST, "/api/v1/auth/login", Some(&body), false)
        .await?;
    let user = login.json()?;
    // Under TLS the server names them `__Host-...`.
    let names = ["__Host-berth_session", "berth_session"]
        .into_iter()
        .zip(["__Host-berth_csrf", "berth_csrf"])
        .find(|(session, _)| cookie(&login, session).is_some());
    let session = names.and_then(|(session, _)| cookie(&login, session));
    let csrf = names.and_then(|(_, csrf)| cookie(&login, csrf));
    let (Some((session_name, csrf_name)), Some(session), Some(csrf)) = (names, session, csrf)
    else {
        return Err(CliError::Unreachable(format!(
            "{server} accepted the login but set no session: is the URL the Berth server's?"
        )));
    };
    let with_session = |method, path| {
        api.request(method, path)
            .header(
                COOKIE,
                format!("{session_name}={session}; {csrf_name}={csrf}"),
            )
            .header("x-csrf-token", csrf.as_str())
    };
    let host = hostname();
    let mut token_body = json!({"name": format!("berth CLI on {host}")});
    if let Some(days) = expires_in_days {
        token_body["expiresInDays"] = json!(days);
    }
    let created = api
        .send(
            with_session(Method::POST, "/api/v1/tokens").json(&token_body),
            false,
        )
        .await?
        .json()?;
    // The session has done its work; the token is what is kept.
    let _ = api
        .send(with_session(Method::POST, "/api/v1/auth/logout"), false)
        .await;
    let token = created["token"].as_str().unwrap_or_default().to_owned();
    let id = text_of(&created["id"]);
    if token.is_empty() {
        return Err(CliError::Failed("the server made no token".into()));
    }
    Ok((token, id, user))
}

pub async fn logout(common: &Common) -> Result<(), CliError> {
    let mut config = ClientConfig::load()?;
    let named = common.context.clone().or_else(|| {
        std::env::var(config::CONTEXT_ENV)
            .ok()
            .filter(|s| !s.is_empty())
    });
    let context = config.selected(named.as_deref())?.clone();
    // A context whose token could not be revoked is kept, so that logging
    // out can be tried again: its token still works.
    let revoked = revoke(&context).await.map_err(|error| {
        CliError::Failed(format!(
            "the token of context {} was not revoked ({error}); the context is kept: run `berth logout` again once the server answers",
            context.name
        ))
    })?;
    config.remove(&context.name);
    config.save()?;
    let revoked = match revoked {
        Revoked::Now => " (token revoked)",
        Revoked::Already => " (its token no longer worked)",
        Revoked::NotOurs => {
            " (the token given at login was left as it is: revoke it where it was made)"
        }
    };
    output::say(&format!("Logged out of {}{revoked}.", context.name))
}

/// What became of a context's token.
enum Revoked {
    Now,
    /// Revoked or expired before.
    Already,
    /// Given to `login --token`: this CLI did not make it and knows no id.
    NotOurs,
}

/// Revokes the token `context` holds, when this CLI made it.
async fn revoke(context: &Context) -> Result<Revoked, CliError> {
    let Some(id) = &context.token_id else {
        return Ok(Revoked::NotOurs);
    };
    let api = Api::new(&context.server, Some(context.token.clone()))?;
    match api
        .call(
            Method::DELETE,
            &format!("/api/v1/tokens/{}", segment(id)),
            None,
            true,
        )
        .await
    {
        Ok(_) => Ok(Revoked::Now),
        Err(CliError::Api(failure)) if matches!(failure.status, 401 | 404) => Ok(Revoked::Already),
        Err(error) => Err(error),
    }
}

pub async fn whoami(common: &Common) -> Result<(), CliError> {
    let target = config::target(common.context.as_deref())?;
    let api = Api::new(&target.server, Some(target.token.clone()))?;
    let user = api.get("/api/v1/me").await?;
    output::print(common.output, &user, |user| {
        output::fields(&[
            ("Email", output::text(&user["email"])),
            ("Name", output::text(&user["displayName"])),
            ("Role", output::text(&user["role"])),
            ("Server", target.server.clone()),
            (
                "Context",
                target
                    .context
                    .clone()
                    .unwrap_or_else(|| "(BERTH_SERVER and BERTH_TOKEN)".into()),
            ),
        ])
    })
}

pub fn context(command: ContextCommand, common: &Common) -> Result<(), CliError> {
    let mut config = ClientConfig::load()?;
    match command {
        ContextCommand::List => {
            let current = config.current_context.clone().unwrap_or_default();
            // Never the tokens.
            let items: Vec<Value> = config
                .contexts
                .iter()
                .map(|c| {
                    json!({"name": c.name, "server": c.server, "email": c.email, "current": c.name == current})
                })
                .collect();
            let value = json!({"current": config.current_context, "items": items});
            output::print(common.output, &value, |value| {
                if items_of(value).is_empty() {
                    return "No contexts: run `berth login URL`.".into();
                }
                output::table(
                    &["current", "name", "server", "user"],
                    items_of(value).iter().map(|c| {
                        vec![
                            if c["current"] == true { "*" } else { "" }.to_owned(),
                            output::text(&c["name"]),
                            output::text(&c["server"]),
                            output::text(&c["email"]),
                        ]
                    }),
                )
            })
        }
        ContextCommand::Use { name } => {
            config.selected(Some(&name))?;
            config.current_context = Some(name.clone());
            config.save()?;
            if common.output == Format::Table {
                output::say(&format!("Using context {name}."))?;
            }
            Ok(())
        }
    }
}

/// A context's default name: the server's host, and its port when it has one.
fn context_name(server: &str) -> String {
    let url = reqwest::Url::parse(server).expect("normalized servers parse");
    let host = url.host_str().unwrap_or("berth");
    match url.port() {
        Some(port) => format!("{host}:{port}"),
        None => host.to_owned(),
    }
}

fn text_of(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// The value a login answer's `Set-Cookie` gives cookie `name`.
fn cookie(answer: &Answer, name: &str) -> Option<String> {
    answer
        .headers
        .get_all(SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|v| {
            v.strip_prefix(&format!("{name}="))
                .map(|rest| rest.split(';').next().unwrap_or("").to_owned())
        })
        .filter(|v| !v.is_empty())
}

fn hostname() -> String {
    let name = std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "this machine".into());
    name.chars().take(60).collect()
}

/// Asks on standard error and reads the answer's line.
fn prompt(stdin: &mut impl BufRead, question: &str) -> Result<String, CliError> {
    eprint!("{question}");
    let _ = std::io::stderr().flush();
    read_line(stdin, question.trim_end_matches([':', ' ']))
}

fn read_line(stdin: &mut impl BufRead, what: &str) -> Result<String, CliError> {
    let mut line = String::new();
    stdin
        .read_line(&mut line)
        .map_err(|e| CliError::Failed(format!("cannot read {what}: {e}")))?;
    let line = line.trim_end_matches(['\r', '\n']).to_owned();
    if line.is_empty() {
        return Err(CliError::Usage(format!("no {what} was given")));
    }
    Ok(line)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contexts_are_named_after_the_server() {
        assert_eq!(
            context_name("https://berth.example.com"),
            "berth.example.com"
        );
        assert_eq!(context_name("http://127.0.0.1:8080"), "127.0.0.1:8080");
    }
}
