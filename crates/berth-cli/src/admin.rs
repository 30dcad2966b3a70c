//! `berth admin ...`: what the portal's admin pages do. Others get "not
//! found" (exit 3), as the API answers them.

use crate::api::Api;
use crate::config;
use crate::env::{requests_table, templates_table};
use crate::error::CliError;
use crate::output::{self, Format, items_of, text};
use crate::{Common, parse_duration, segment};
use clap::Subcommand;
use reqwest::Method;
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

#[derive(Subcommand, Debug)]
pub enum AdminCommand {
    /// Requests for environments or changes over policy.
    Requests {
        /// pending (the default), approved, rejected or all.
        #[arg(long, default_value = "pending")]
        state: String,
    },
    /// Approve a request: the environment is created or changed as asked.
    Approve { id: String },
    /// Reject a request; the requester sees the reason.
    Reject {
        id: String,
        #[arg(long)]
        reason: String,
    },
    /// Accounts: list them, or change one's role or disable it.
    Users {
        #[command(subcommand)]
        command: Option<UsersCommand>,
    },
    /// The policy: who may register, what needs approval, limits and TTLs.
    Policy {
        #[command(subcommand)]
        command: Option<PolicyCommand>,
    },
    /// Templates environments start from.
    Templates {
        #[command(subcommand)]
        command: Option<TemplatesCommand>,
    },
    /// The audit log, newest first.
    Audit {
        /// Only entries by this actor (an email, or `system`).
        #[arg(long)]
        actor: Option<String>,
        /// Only entries about this environment.
        #[arg(long)]
        environment: Option<String>,
        /// Only entries since this RFC 3339 time, or this long ago (1h, 2d).
        #[arg(long)]
        since: Option<String>,
        /// At most this many entries (1 to 1000).
        #[arg(long)]
        limit: Option<u32>,
    },
}

#[derive(Subcommand, Debug)]
pub enum UsersCommand {
    /// Every account.
    List,
    /// Change an account (by email or id).
    Set {
        user: String,
        /// admin or member.
        #[arg(long)]
        role: Option<String>,
        /// Disable the account: its sessions, tokens and kubeconfigs stop working.
        #[arg(long, conflicts_with = "enable")]
        disable: bool,
        /// Enable a disabled account again.
        #[arg(long)]
        enable: bool,
    },
}

#[derive(Subcommand, Debug)]
pub enum PolicyCommand {
    /// The policy in force.
    Get,
    /// Change the policy: the fields a file gives (YAML or JSON) and the flags.
    Set {
        #[arg(short = 'f', long = "filename")]
        file: Option<String>,
        /// open or closed.
        #[arg(long)]
        registration: Option<String>,
        /// never, overLimit or always.
        #[arg(long)]
        approval: Option<String>,
        #[arg(long)]
        max_environments_per_user: Option<i64>,
        #[arg(long)]
        default_ttl: Option<String>,
        #[arg(long)]
        max_ttl: Option<String>,
    },
}

#[derive(Subcommand, Debug)]
pub enum TemplatesCommand {
    /// Every template.
    List,
    /// One template, whole.
    Get { name: String },
    /// Create or replace a template from a file: `{name, description, spec}`.
    Apply {
        #[arg(short = 'f', long = "filename")]
        file: String,
    },
    /// Delete a stored template (a built-in one it replaced is in force again).
    Delete { name: String },
}

pub async fn run(command: AdminCommand, common: &Common) -> Result<(), CliError> {
    let target = config::target(common.context.as_deref())?;
    let api = Api::new(&target.server, Some(target.token))?;
    let format = common.output;
    match command {
        AdminCommand::Requests { state } => {
            let path = match state.as_str() {
                "all" => "/api/v1/admin/requests".to_owned(),
                state => format!("/api/v1/admin/requests?state={}", segment(state)),
            };
            let requests = api.get(&path).await?;
            output::print(format, &requests, |r| requests_table(r, true))
        }
        AdminCommand::Approve { id } => {
            let path = format!("/api/v1/admin/requests/{}/approve", segment(&id));
            let request = api.call(Method::POST, &path, None, false).await?.json()?;
            output::print(format, &request, |r| {
                format!(
                    "request {id} approved: environment/{} is being {}",
                    text(&r["environment"]),
                    if r["kind"] == "update" {
                        "changed"
                    } else {
                        "created"
                    }
                )
            })
        }
        AdminCommand::Reject { id, reason } => {
            let path = format!("/api/v1/admin/requests/{}/reject", segment(&id));
            let body = json!({ "reason": reason });
            let request = api
                .call(Method::POST, &path, Some(&body), false)
                .await?
                .json()?;
            output::print(format, &request, |r| {
                format!(
                    "request {id} rejected: environment/{}",
                    text(&r["environment"])
                )
            })
        }
        AdminCommand::Users { command } => match command.unwrap_or(UsersCommand::List) {
            UsersCommand::List => {
                let users = api.get("/api/v1/admin/users").await?;
                output::print(format, &users, users_table)
            }
            UsersCommand::Set {
                user,
                role,
                disable,
                enable,
            } => {
                let mut body = json!({});
                if let Some(role) = role {
                    body["role"] = json!(role);
                }
                if disable || enable {
                    body["disabled"] = json!(disable);
                }
                if body.as_object().is_some_and(|b| b.is_empty()) {
                    return Err(CliError::Usage(
                        "say what to change: --role, --disable or --enable".into(),
                    ));
                }
                let id = user_id(&api, &user).await?;
                let path = format!("/api/v1/admin/users/{}", segment(&id));
                let updated = api
                    .call(Method::PATCH, &path, Some(&body), true)
                    .await?
                    .json()?;
                output::print(format, &updated, |u| {
                    format!(
                        "user {} is now {}{}",
                        text(&u["email"]),
                        text(&u["role"]),
                        if u["disabled"] == true {
                            ", disabled"
                        } else {
                            ""
                        }
                    )
                })
            }
        },
        AdminCommand::Policy { command } => match command.unwrap_or(PolicyCommand::Get) {
            PolicyCommand::Get => {
                let policy = api.get("/api/v1/admin/policy").await?;
                output::print(format, &policy, policy_fields)
            }
            PolicyCommand::Set {
                file,
                registration,
                approval,
                max_environments_per_user,
                default_ttl,
                max_ttl,
            } => {
                let mut changes = match file {
                    Some(file) => read_mapping(&file)?,
                    None => json!({}),
                };
                for (key, value) in [
                    ("registration", registration.map(Value::from)),
                    ("approval", approval.map(Value::from)),
                    (
                        "maxEnvironmentsPerUser",
                        max_environments_per_user.map(Value::from),
                    ),
                    ("defaultTtl", default_ttl.map(Value::from)),
                    ("maxTtl", max_ttl.map(Value::from)),
                ] {
                    if let Some(value) = value {
                        changes[key] = value;
                    }
                }
                if changes.as_object().is_some_and(|c| c.is_empty()) {
                    return Err(CliError::Usage(
                        "say what to change: -f FILE or a flag such as --approval".into(),
                    ));
                }
                let mut policy = api.get("/api/v1/admin/policy").await?;
                json_patch::merge(&mut policy, &changes);
                let policy = api
                    .call(Method::PUT, "/api/v1/admin/policy", Some(&policy), true)
                    .await?
                    .json()?;
                output::print(format, &policy, |p| {
                    format!("policy updated:\n{}", policy_fields(p))
                })
            }
        },
        AdminCommand::Templates { command } => match command.unwrap_or(TemplatesCommand::List) {
            TemplatesCommand::List => {
                let templates = api.get("/api/v1/templates").await?;
                output::print(format, &templates, templates_table)
            }
            TemplatesCommand::Get { name } => {
                let templates = api.get("/api/v1/templates").await?;
                let template = items_of(&templates)
                    .iter()
                    .find(|t| t["name"] == name.as_str())
                    .cloned()
                    .ok_or_else(|| {
                        CliError::Api(not_found(format!("there is no template {name}")))
                    })?;
                let format = if format == Format::Table {
                    Format::Yaml
                } else {
                    format
                };
                output::print(format, &template, |_| String::new())
            }
            TemplatesCommand::Apply { file } => {
                let mut template = read_mapping(&file)?;
                let name = template["name"]
                    .as_str()
                    .map(str::to_owned)
                    .ok_or_else(|| {
                        CliError::Failed("the template is invalid\n  name: is required".into())
                    })?;
                template.as_object_mut().expect("a mapping").remove("name");
                let path = format!("/api/v1/admin/templates/{}", segment(&name));
                let saved = api
                    .call(Method::PUT, &path, Some(&template), true)
                    .await?
                    .json()?;
                output::print(format, &saved, |_| format!("template/{name} saved"))
            }
            TemplatesCommand::Delete { name } => {
                let path = format!("/api/v1/admin/templates/{}", segment(&name));
                api.call(Method::DELETE, &path, None, true).await?;
                if format == Format::Table {
                    output::say(&format!("template/{name} deleted"))?;
                }
                Ok(())
            }
        },
        AdminCommand::Audit {
            actor,
            environment,
            since,
            limit,
        } => {
            let mut query: Vec<(&str, String)> = Vec::new();
            if let Some(actor) = actor {
                query.push(("actor", actor));
            }
            if let Some(environment) = environment {
                query.push(("environment", environment));
            }
            if let Some(since) = since {
                query.push(("since", since_time(&since)?));
            }
            if let Some(limit) = limit {
                query.push(("limit", limit.to_string()));
            }
            let request = api
                .request(Method::GET, "/api/v1/admin/audit")
                .query(&query);
            let entries = api.send(request, true).await?.json()?;
            output::print(format, &entries, |entries| {
                output::table(
                    &["at", "actor", "action", "target", "outcome"],
                    items_of(entries).iter().map(|e| {
                        vec![
                            text(&e["at"]),
                            text(&e["actor"]),
                            text(&e["action"]),
                            text(&e["target"]),
                            text(&e["outcome"]),
                        ]
                    }),
                )
            })
        }
    }
}

fn not_found(message: String) -> crate::error::ApiFailure {
    crate::error::ApiFailure {
        status: 404,
        code: "not_found".into(),
        message,
        details: Vec::new(),
    }
}

/// A file holding one mapping (YAML or JSON).
fn read_mapping(file: &str) -> Result<Value, CliError> {
    let text = std::fs::read_to_string(file)
        .map_err(|e| CliError::Failed(format!("cannot read {file}: {e}")))?;
    match serde_yaml::from_str::<Value>(&text) {
        Ok(value @ Value::Object(_)) => Ok(value),
        Ok(_) => Err(CliError::Failed(format!(
            "{file}: must be a mapping of fields"
        ))),
        Err(e) => Err(CliError::Failed(format!("{file}: not YAML or JSON: {e}"))),
    }
}

/// The id of the account `user` names (its id, or its email).
async fn user_id(api: &Api, user: &str) -> Result<String, CliError> {
    if !user.contains('@') {
        return Ok(user.to_owned());
    }
    let users = api.get("/api/v1/admin/users").await?;
    items_of(&users)
        .iter()
        .find(|u| {
            u["email"]
                .as_str()
                .is_some_and(|e| e.eq_ignore_ascii_case(user))
        })
        .map(|u| text(&u["id"]))
        .ok_or_else(|| CliError::Api(not_found(format!("there is no account {user}"))))
}

/// An RFC 3339 time as given, or the time `since` (a duration) ago.
fn since_time(since: &str) -> Result<String, CliError> {
    if OffsetDateTime::parse(since, &Rfc3339).is_ok() {
        return Ok(since.to_owned());
    }
    let ago = parse_duration(since).map_err(|_| {
        CliError::Usage(format!(
            "--since {since:?}: give an RFC 3339 time or a duration such as 1h"
        ))
    })?;
    let at = OffsetDateTime::now_utc() - ago;
    at.replace_nanosecond(0)
        .expect("zero is a valid nanosecond")
        .format(&Rfc3339)
        .map_err(|e| CliError::Failed(e.to_string()))
}

fn users_table(users: &Value) -> String {
    output::table(
        &["id", "email", "name", "role", "disabled", "age"],
        items_of(users).iter().map(|u| {
            vec![
                text(&u["id"]),
                text(&u["email"]),
                text(&u["displayName"]),
                text(&u["role"]),
                text(&u["disabled"]),
                output::age(&u["createdAt"]),
            ]
        }),
    )
}

fn policy_fields(policy: &Value) -> String {
    let quota = &policy["maxQuota"];
    output::fields(&[
        ("Registration", text(&policy["registration"])),
        ("Approval", text(&policy["approval"])),
        (
            "Environments per user",
            text(&policy["maxEnvironmentsPerUser"]),
        ),
        ("Most quota", output::quota(quota)),
        ("Default TTL", text(&policy["defaultTtl"])),
        ("Longest TTL", text(&policy["maxTtl"])),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn since_takes_a_time_or_a_duration() {
        assert_eq!(
            since_time("2026-01-01T00:00:00Z").unwrap(),
            "2026-01-01T00:00:00Z"
        );
        let hour_ago = since_time("1h").unwrap();
        let at = OffsetDateTime::parse(&hour_ago, &Rfc3339).unwrap();
        let delta = (OffsetDateTime::now_utc() - at).whole_seconds();
        assert!((3599..=3602).contains(&delta), "{delta}");
        assert!(matches!(since_time("yesterday"), Err(CliError::Usage(_))));
    }
}
