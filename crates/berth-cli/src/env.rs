//! `berth env ...`: environments, as the portal shows and changes them.

use crate::api::{Answer, Api};
use crate::config;
use crate::error::CliError;
use crate::output::{self, Format, items_of, text};
use crate::wait::{self, Goal};
use crate::{Common, kubeconfig, parse_duration, segment, spec, sse};
use clap::{Args, Subcommand};
use reqwest::header::{ACCEPT, CONTENT_TYPE, IF_MATCH};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Args, Debug, Clone, Copy)]
pub struct WaitArgs {
    /// Wait until the environment is Ready, showing its progress; fail with
    /// the reason when it is Degraded.
    #[arg(long)]
    wait: bool,
    /// How long --wait waits (90s, 5m, 1h).
    #[arg(long, default_value = "5m", value_parser = parse_duration)]
    timeout: Duration,
}

#[derive(Subcommand, Debug)]
pub enum EnvCommand {
    /// The environments you are a member of.
    #[command(visible_alias = "ls")]
    List {
        /// Admins: every environment.
        #[arg(long)]
        all: bool,
    },
    /// One environment: settings, status, conditions, quota use, members, apps.
    Get { name: String },
    /// Create an environment from a spec file (YAML or JSON; - for stdin).
    Create {
        #[arg(short = 'f', long = "filename")]
        file: String,
        #[command(flatten)]
        wait: WaitArgs,
    },
    /// Create the environment of a spec file, or change it to what the file
    /// says; a file that changes nothing sends no change (for CI and GitOps).
    Apply {
        #[arg(short = 'f', long = "filename")]
        file: String,
        #[command(flatten)]
        wait: WaitArgs,
    },
    /// Edit an environment's spec in $VISUAL or $EDITOR; saving sends the change.
    Edit {
        name: String,
        #[command(flatten)]
        wait: WaitArgs,
    },
    /// Delete an environment and everything in it.
    #[command(visible_alias = "rm")]
    Delete {
        name: String,
        /// Wait until it is gone.
        #[arg(long)]
        wait: bool,
        #[arg(long, default_value = "5m", value_parser = parse_duration)]
        timeout: Duration,
    },
    /// Restart an environment's TTL clock (or set another TTL).
    Renew {
        name: String,
        /// The TTL from now (default: the environment's own).
        #[arg(long)]
        ttl: Option<String>,
    },
    /// What a spec file would make (the objects as YAML, a plain-language
    /// summary, warnings); nothing is created.
    Preview {
        #[arg(short = 'f', long = "filename")]
        file: String,
    },
    /// A pod's logs (the environment's only pod when none is named).
    Logs {
        name: String,
        pod: Option<String>,
        /// The container (default: the pod's only or first one).
        #[arg(short = 'c', long)]
        container: Option<String>,
        /// Only the last N lines.
        #[arg(long)]
        tail: Option<u32>,
        /// Only lines newer than this (30s, 5m, 1h).
        #[arg(long, value_parser = parse_duration)]
        since: Option<Duration>,
        /// The previous container's logs, after a restart.
        #[arg(long)]
        previous: bool,
        /// Keep streaming new lines.
        #[arg(short = 'f', long)]
        follow: bool,
    },
    /// Kubernetes events of the environment, newest first.
    Events { name: String },
    /// Deployments, pods, services and ingresses in the environment.
    Workloads { name: String },
    /// Print each change of your environments (or of one) as it happens.
    Watch {
        name: Option<String>,
        /// Admins: every environment.
        #[arg(long)]
        all: bool,
    },
    /// A kubeconfig for the environment, for kubectl: printed, written to a
    /// file, or merged into your kubeconfig as a new context.
    Kubeconfig {
        name: String,
        /// Merge it into your kubeconfig ($KUBECONFIG, else ~/.kube/config)
        /// as a context of its own; the file is backed up first.
        #[arg(long)]
        merge: bool,
        /// The kubeconfig to merge into.
        #[arg(long, requires = "merge")]
        kubeconfig: Option<PathBuf>,
        /// Also make the new context kubectl's current one.
        #[arg(long = "use", requires = "merge")]
        use_context: bool,
        /// Write it to this file (mode 0600) instead of printing it.
        #[arg(long, conflicts_with = "merge")]
        file: Option<PathBuf>,
    },
    /// Who may use an environment, and with which role.
    Members {
        #[command(subcommand)]
        command: MembersCommand,
    },
    /// Your requests waiting for (or decided by) an admin.
    Requests {
        /// pending, approved or rejected (default: all).
        #[arg(long)]
        state: Option<String>,
    },
    /// Templates environments start from.
    Templates,
}

#[derive(Subcommand, Debug)]
pub enum MembersCommand {
    /// The members and their roles.
    List { name: String },
    /// Add a member, or change their role (owners only).
    Set {
        name: String,
        email: String,
        /// owner, editor (edit workloads) or viewer (read only).
        #[arg(long, default_value = "editor")]
        role: String,
    },
    /// Remove a member (owners only; the last owner stays).
    Remove { name: String, email: String },
}

fn env_path(name: &str) -> String {
    format!("/api/v1/environments/{}", segment(name))
}

pub async fn run(command: EnvCommand, common: &Common) -> Result<(), CliError> {
    let target = config::target(common.context.as_deref())?;
    let api = Api::new(&target.server, Some(target.token))?;
    let format = common.output;
    match command {
        EnvCommand::List { all } => list(&api, all, format).await,
        EnvCommand::Get { name } => {
            let env = api.get(&env_path(&name)).await?;
            output::print(format, &env, describe)
        }
        EnvCommand::Create { file, wait } => {
            let spec = spec::read(&file)?;
            let answer = create(&api, &spec).await?;
            finish(&api, answer, "created", wait, format).await
        }
        EnvCommand::Apply { file, wait } => apply(&api, &spec::read(&file)?, wait, format).await,
        EnvCommand::Edit { name, wait } => edit(&api, &name, wait, format).await,
        EnvCommand::Delete {
            name,
            wait,
            timeout,
        } => {
            let answer = api
                .call(Method::DELETE, &env_path(&name), None, true)
                .await?;
            let env = answer.json()?;
            output::print(format, &env, |_| format!("environment/{name} deleting"))?;
            if wait {
                wait::until(&api, &name, Goal::Gone, timeout).await?;
            }
            Ok(())
        }
        EnvCommand::Renew { name, ttl } => renew(&api, &name, ttl, format).await,
        EnvCommand::Preview { file } => {
            let spec = spec::read(&file)?;
            let answer = api
                .call(
                    Method::POST,
                    "/api/v1/environments/preview",
                    Some(&spec),
                    true,
                )
                .await?
                .json()?;
            output::print(format, &answer, preview)
        }
        EnvCommand::Logs {
            name,
            pod,
            container,
            tail,
            since,
            previous,
            follow,
        } => {
            let pod = match pod {
                Some(pod) => pod,
                None => only_pod(&api, &name).await?,
            };
            let mut query: Vec<(&str, String)> = Vec::new();
            if let Some(container) = container {
                query.push(("container", container));
            }
            if let Some(tail) = tail {
                query.push(("tailLines", tail.to_string()));
            }
            if let Some(since) = since {
                query.push(("sinceSeconds", since.as_secs().max(1).to_string()));
            }
            if previous {
                query.push(("previous", "true".into()));
            }
            if follow {
                query.push(("follow", "true".into()));
            }
            let path = format!("{}/pods/{}/logs", env_path(&name), segment(&pod));
            let mut response = api
                .open(api.request(Method::GET, &path).query(&query))
                .await?;
            while let Some(chunk) = response
                .chunk()
                .await
                .map_err(|e| CliError::Unreachable(format!("the log stream broke off: {e}")))?
            {
                output::write_out(&chunk)?;
            }
            Ok(())
        }
        EnvCommand::Events { name } => {
            let events = api.get(&format!("{}/events", env_path(&name))).await?;
            output::print(format, &events, |events| {
                if items_of(events).is_empty() {
                    return format!("No events in {name}.");
                }
                output::table(
                    &["last seen", "type", "reason", "object", "count", "message"],
                    items_of(events).iter().map(|e| {
                        vec![
                            output::age(&e["lastSeen"]),
                            text(&e["type"]),
                            text(&e["reason"]),
                            text(&e["object"]),
                            text(&e["count"]),
                            text(&e["message"]),
                        ]
                    }),
                )
            })
        }
        EnvCommand::Workloads { name } => {
            let workloads = api.get(&format!("{}/workloads", env_path(&name))).await?;
            output::print(format, &workloads, workloads_tables)
        }
        EnvCommand::Watch { name, all } => watch(&api, name.as_deref(), all, format).await,
        EnvCommand::Kubeconfig {
            name,
            merge,
            kubeconfig: into,
            use_context,
            file,
        } => {
            let yaml = api
                .send(
                    api.request(Method::GET, &format!("{}/kubeconfig", env_path(&name))),
                    true,
                )
                .await?
                .text();
            if merge {
                let path = match into {
                    Some(path) => path,
                    None => kubeconfig::default_path()?,
                };
                let context = kubeconfig::merge_into(&path, &yaml, use_context)?;
                output::say(&format!(
                    "Context {context} is in {}{}; use it with: kubectl --context {context} get pods",
                    path.display(),
                    if use_context { " and current" } else { "" },
                ))?;
            } else if let Some(file) = file {
                config::write_private(&file, yaml.as_bytes())?;
                output::say(&format!(
                    "Wrote {}; use it with: KUBECONFIG={} kubectl get pods",
                    file.display(),
                    file.display()
                ))?;
            } else {
                output::write_out(yaml.as_bytes())?;
            }
            Ok(())
        }
        EnvCommand::Members { command } => members(&api, command, format).await,
        EnvCommand::Requests { state } => {
            let path = match state {
                Some(state) => format!("/api/v1/requests?state={}", segment(&state)),
                None => "/api/v1/requests".into(),
            };
            let requests = api.get(&path).await?;
            output::print(format, &requests, |r| requests_table(r, false))
        }
        EnvCommand::Templates => {
            let templates = api.get("/api/v1/templates").await?;
            output::print(format, &templates, templates_table)
        }
    }
}

async fn list(api: &Api, all: bool, format: Format) -> Result<(), CliError> {
    let path = if all {
        "/api/v1/environments?all=true"
    } else {
        "/api/v1/environments"
    };
    let list = api.get(path).await?;
    output::print(format, &list, |list| {
        if items_of(list).is_empty() {
            return "No environments. Create one with `berth env create -f spec.yaml`.".into();
        }
        output::table(
            &[
                "name", "phase", "role", "owner", "template", "expires", "age",
            ],
            items_of(list).iter().map(|e| {
                vec![
                    text(&e["name"]),
                    text(&e["status"]["phase"]),
                    text(&e["role"]),
                    text(&e["owner"]),
                    text(&e["spec"]["template"]),
                    output::until(&e["status"]["expiresAt"]),
                    output::age(&e["createdAt"]),
                ]
            }),
        )
    })
}

/// `POST` of a new environment, safe to retry: one Idempotency-Key for
/// every try of this command.
async fn create(api: &Api, spec: &Value) -> Result<Answer, CliError> {
    let key = uuid::Uuid::new_v4().to_string();
    let request = api
        .request(Method::POST, "/api/v1/environments")
        .header("idempotency-key", key)
        .json(spec);
    api.send(request, true).await
}

/// Says what a create or change came to and, with --wait, waits for Ready;
/// a request held for approval ends the command with exit code 4.
async fn finish(
    api: &Api,
    answer: Answer,
    done: &str,
    wait: WaitArgs,
    format: Format,
) -> Result<(), CliError> {
    let body = answer.json()?;
    if answer.status == StatusCode::ACCEPTED {
        return pending(&body["request"], format);
    }
    let name = body["name"].as_str().unwrap_or_default().to_owned();
    output::print(format, &body, |_| format!("environment/{name} {done}"))?;
    if wait.wait {
        wait::until(
            api,
            &name,
            Goal::Ready(body["generation"].as_i64()),
            wait.timeout,
        )
        .await?;
    }
    Ok(())
}

/// Prints a request that waits for an admin and ends with exit code 4.
fn pending(request: &Value, format: Format) -> Result<(), CliError> {
    if format != Format::Table {
        output::print(format, request, |_| String::new())?;
    }
    let reasons: Vec<&str> = request["reasons"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    let mut message = format!(
        "environment/{} is pending approval: request {} waits for an admin",
        text(&request["environment"]),
        text(&request["id"]),
    );
    for reason in reasons {
        message.push_str(&format!("\n  {reason}"));
    }
    Err(CliError::PendingApproval(message))
}

async fn apply(api: &Api, file: &Value, wait: WaitArgs, format: Format) -> Result<(), CliError> {
    let name = spec::name(file)?;
    let path = env_path(&name);
    let current = match api.get(&path).await {
        Ok(env) => env,
        Err(e) if e.is_not_found() => {
            // A request of ours for this name may already wait for an admin.
            if let Some(request) = waiting(api, &name, |r| r["kind"] == "create").await? {
                return pending(&request, format);
            }
            let answer = create(api, file).await?;
            return finish(api, answer, "created", wait, format).await;
        }
        Err(e) => return Err(e),
    };
    if current["status"]["phase"] == "Deleting" {
        return Err(CliError::Failed(format!(
            "environment {name} is being deleted; apply again once it is gone"
        )));
    }
    let owner = current["owner"].as_str().unwrap_or_default();
    let desired = spec::desired(&current["spec"], file, owner);
    let patch = spec::merge_diff(&current["spec"], &desired);
    if patch.as_object().is_some_and(|p| p.is_empty()) {
        output::print(format, &current, |_| {
            format!("environment/{name} unchanged")
        })?;
        if wait.wait {
            wait::until(
                api,
                &name,
                Goal::Ready(current["generation"].as_i64()),
                wait.timeout,
            )
            .await?;
        }
        return Ok(());
    }
    // The very same change may already wait for an admin (one request per
    // environment at a time).
    if let Some(request) = waiting(api, &name, |r| r["spec"] == desired).await? {
        return pending(&request, format);
    }
    let answer = patch_spec(api, &name, &patch, current["generation"].as_i64()).await?;
    finish(api, answer, "configured", wait, format).await
}

/// The caller's pending request for environment `name` that `matches`.
async fn waiting(
    api: &Api,
    name: &str,
    matches: impl Fn(&Value) -> bool,
) -> Result<Option<Value>, CliError> {
    let mine = api.get("/api/v1/requests?state=pending").await?;
    Ok(items_of(&mine)
        .iter()
        .find(|r| r["environment"] == name && matches(r))
        .cloned())
}

/// A merge patch of the spec, made against `generation` (412 when someone
/// changed it since).
async fn patch_spec(
    api: &Api,
    name: &str,
    patch: &Value,
    generation: Option<i64>,
) -> Result<Answer, CliError> {
    let mut request = api
        .request(Method::PATCH, &env_path(name))
        .header(CONTENT_TYPE, "application/merge-patch+json")
        .body(patch.to_string());
    if let Some(generation) = generation {
        request = request.header(IF_MATCH, format!("\"{generation}\""));
    }
    api.send(request, false).await.map_err(|e| match e {
        CliError::Api(failure) if failure.status == 412 => CliError::Failed(format!(
            "environment {name} was changed by someone else meanwhile; nothing was changed: run the command again"
        )),
        other => other,
    })
}

async fn edit(api: &Api, name: &str, wait: WaitArgs, format: Format) -> Result<(), CliError> {
    let current = api.get(&env_path(name)).await?;
    let before = current["spec"].clone();
    let header = format!(
        "# Edit the spec of environment {name}; saving sends the change, an unchanged or\n# empty file cancels. The fields are the API's EnvironmentSpec (GET /api/v1/openapi.json).\n"
    );
    let text = format!("{header}{}", output::yaml(&before)?);
    let mut file = tempfile::Builder::new()
        .prefix(&format!("berth-{name}-"))
        .suffix(".yaml")
        .tempfile()
        .map_err(|e| CliError::Failed(format!("cannot make a file to edit: {e}")))?;
    file.write_all(text.as_bytes())
        .and_then(|()| file.flush())
        .map_err(|e| CliError::Failed(format!("cannot make a file to edit: {e}")))?;
    run_editor(file.path())?;
    let edited = std::fs::read_to_string(file.path())
        .map_err(|e| CliError::Failed(format!("cannot read the edited file: {e}")))?;
    if edited
        .lines()
        .all(|l| l.trim().is_empty() || l.trim_start().starts_with('#'))
    {
        return output::say("Edit cancelled: the file was empty.");
    }
    let after =
        spec::parse(&edited).map_err(|e| CliError::Failed(format!("the edited spec: {e}")))?;
    if after.get("name").is_some_and(|n| n != name) {
        return Err(CliError::Failed(format!(
            "the spec is invalid\n  name: cannot be changed (it is {name})"
        )));
    }
    let patch = spec::merge_diff(&before, &after);
    if patch.as_object().is_some_and(|p| p.is_empty()) {
        return output::say("Edit cancelled: no changes made.");
    }
    let answer = patch_spec(api, name, &patch, current["generation"].as_i64())
        .await
        .map_err(|e| match e {
            CliError::Api(failure) => {
                let kept = file.keep().map(|(_, path)| path.display().to_string());
                let note = kept.map_or(String::new(), |p| format!("\nyour edit is kept in {p}"));
                CliError::Failed(format!("{failure}{note}"))
            }
            other => other,
        })?;
    finish(api, answer, "edited", wait, format).await
}

/// Opens `path` in $VISUAL, else $EDITOR, else vi; the variable may carry
/// arguments (`code --wait`).
fn run_editor(path: &std::path::Path) -> Result<(), CliError> {
    let editor = ["VISUAL", "EDITOR"]
        .iter()
        .find_map(|v| std::env::var(v).ok().filter(|e| !e.trim().is_empty()))
        .unwrap_or_else(|| "vi".into());
    let mut words = editor.split_whitespace();
    let program = words.next().expect("not empty");
    let status = std::process::Command::new(program)
        .args(words)
        .arg(path)
        .status()
        .map_err(|e| CliError::Failed(format!("cannot start the editor {editor:?}: {e}")))?;
    if !status.success() {
        return Err(CliError::Failed(format!(
            "the editor {editor:?} failed ({status}); nothing was changed"
        )));
    }
    Ok(())
}

async fn renew(api: &Api, name: &str, ttl: Option<String>, format: Format) -> Result<(), CliError> {
    let ttl = match ttl {
        Some(ttl) => ttl,
        None => {
            let env = api.get(&env_path(name)).await?;
            env["spec"]["ttl"]
                .as_str()
                .map(str::to_owned)
                .ok_or_else(|| {
                    CliError::Usage(format!(
                        "environment {name} has no TTL (it never expires); give --ttl to set one"
                    ))
                })?
        }
    };
    let answer = api
        .call(
            Method::POST,
            &format!("{}/renew", env_path(name)),
            Some(&json!({ "ttl": ttl })),
            true,
        )
        .await?;
    let body = answer.json()?;
    if answer.status == StatusCode::ACCEPTED {
        return pending(&body["request"], format);
    }
    output::print(format, &body, |env| {
        format!(
            "environment/{name} renewed: expires {} ({})",
            output::until(&env["status"]["expiresAt"]),
            text(&env["status"]["expiresAt"])
        )
    })
}

/// The one pod of an environment, for `logs` without a pod name.
async fn only_pod(api: &Api, name: &str) -> Result<String, CliError> {
    let workloads = api.get(&format!("{}/workloads", env_path(name))).await?;
    let pods: Vec<&str> = workloads["pods"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|p| p["name"].as_str())
        .collect();
    match pods.as_slice() {
        [pod] => Ok((*pod).to_owned()),
        [] => Err(CliError::Failed(format!("environment {name} runs no pods"))),
        many => Err(CliError::Usage(format!(
            "environment {name} runs {} pods; name one: {}",
            many.len(),
            many.join(", ")
        ))),
    }
}

async fn members(api: &Api, command: MembersCommand, format: Format) -> Result<(), CliError> {
    let (name, answer) = match command {
        MembersCommand::List { name } => {
            let env = api.get(&env_path(&name)).await?;
            return output::print(format, &env["spec"]["members"], members_table);
        }
        MembersCommand::Set { name, email, role } => {
            let path = format!("{}/members/{}", env_path(&name), segment(&email));
            let body = json!({ "role": role });
            (name, api.call(Method::PUT, &path, Some(&body), true).await?)
        }
        MembersCommand::Remove { name, email } => {
            let path = format!("{}/members/{}", env_path(&name), segment(&email));
            api.call(Method::DELETE, &path, None, true).await?;
            (
                name.clone(),
                api.send(api.request(Method::GET, &env_path(&name)), true)
                    .await?,
            )
        }
    };
    let env = answer.json()?;
    output::print(format, &env["spec"]["members"], |m| {
        format!("environment/{name} members:\n{}", members_table(m))
    })
}

fn members_table(members: &Value) -> String {
    output::table(
        &["email", "role"],
        members
            .as_array()
            .into_iter()
            .flatten()
            .map(|m| vec![text(&m["email"]), text(&m["role"])]),
    )
}

/// Prints each change of the caller's environments: from the server's event
/// stream where it has one, else by polling.
async fn watch(api: &Api, name: Option<&str>, all: bool, format: Format) -> Result<(), CliError> {
    let (path, poll_path) = match name {
        Some(name) => (format!("{}?watch=true", env_path(name)), env_path(name)),
        None if all => (
            "/api/v1/environments?watch=true&all=true".into(),
            "/api/v1/environments?all=true".into(),
        ),
        None => (
            "/api/v1/environments?watch=true".into(),
            "/api/v1/environments".into(),
        ),
    };
    let request = api
        .request(Method::GET, &path)
        .header(ACCEPT, "text/event-stream");
    let mut response = match api.open(request).await {
        Ok(response) if is_event_stream(&response) => response,
        // A server without the event stream: watch by polling.
        Ok(_) => return poll(api, &poll_path, name.is_some(), format).await,
        Err(CliError::Api(failure)) if failure.status == 400 => {
            return poll(api, &poll_path, name.is_some(), format).await;
        }
        Err(error) => return Err(error),
    };
    let mut parser = sse::Parser::default();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| CliError::Unreachable(format!("the event stream broke off: {e}")))?
    {
        for event in parser.feed(&String::from_utf8_lossy(&chunk)) {
            let Ok(data) = serde_json::from_str::<Value>(&event.data) else {
                continue;
            };
            match event.event.as_str() {
                "environment" => show_change(format, "changed", &data)?,
                "deleted" => show_change(format, "deleted", &data)?,
                _ => {}
            }
        }
    }
    Ok(())
}

fn is_event_stream(response: &reqwest::Response) -> bool {
    response
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/event-stream"))
}

async fn poll(api: &Api, path: &str, one: bool, format: Format) -> Result<(), CliError> {
    let mut seen: BTreeMap<String, Value> = BTreeMap::new();
    loop {
        let now: BTreeMap<String, Value> = match api.get(path).await {
            Ok(answer) if one => [(text(&answer["name"]), answer)].into(),
            Ok(answer) => items_of(&answer)
                .iter()
                .map(|e| (text(&e["name"]), e.clone()))
                .collect(),
            Err(e) if one && e.is_not_found() => BTreeMap::new(),
            Err(e) => return Err(e),
        };
        for (name, env) in &now {
            if seen.get(name).map(|old| &old["resourceVersion"]) != Some(&env["resourceVersion"]) {
                show_change(format, "changed", env)?;
            }
        }
        for name in seen.keys().filter(|n| !now.contains_key(*n)) {
            show_change(format, "deleted", &json!({ "name": name }))?;
        }
        seen = now;
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// One line per change: a table row for people, a JSON line for scripts.
fn show_change(format: Format, kind: &str, env: &Value) -> Result<(), CliError> {
    let line = match format {
        Format::Json => json!({"type": kind, "object": env}).to_string(),
        Format::Yaml => format!(
            "---\n{}",
            output::yaml(&json!({"type": kind, "object": env}))?
        ),
        Format::Table if kind == "deleted" => format!("{}\tdeleted", text(&env["name"])),
        Format::Table => {
            let status = &env["status"];
            let why = status["conditions"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|c| c["type"] == "Degraded" && c["status"] == "True")
                .map(|c| format!("\t{}", text(&c["message"])))
                .unwrap_or_default();
            format!("{}\t{}{why}", text(&env["name"]), text(&status["phase"]))
        }
    };
    output::say(line.trim_end())
}

/// `env get` for people.
fn describe(env: &Value) -> String {
    let spec = &env["spec"];
    let status = &env["status"];
    let quota = &spec["quota"];
    let mut out = output::fields(&[
        ("Name", text(&env["name"])),
        ("Description", text(&spec["description"])),
        ("Phase", text(&status["phase"])),
        ("Owner", text(&env["owner"])),
        ("Your role", text(&env["role"])),
        ("Template", text(&spec["template"])),
        ("Quota", output::quota(quota)),
        ("Network", text(&spec["network"]["isolation"])),
        ("Pod security", text(&spec["podSecurity"])),
        ("TTL", text(&spec["ttl"])),
        (
            "Expires",
            format!(
                "{} ({})",
                output::until(&status["expiresAt"]),
                text(&status["expiresAt"])
            ),
        ),
        (
            "Created",
            format!(
                "{} ago ({})",
                output::age(&env["createdAt"]),
                text(&env["createdAt"])
            ),
        ),
    ]);
    let conditions = status["conditions"].as_array().cloned().unwrap_or_default();
    if !conditions.is_empty() {
        out.push_str("\nConditions:\n");
        out.push_str(&indent(&output::table(
            &["type", "status", "reason", "message"],
            conditions.iter().map(|c| {
                vec![
                    text(&c["type"]),
                    text(&c["status"]),
                    text(&c["reason"]),
                    text(&c["message"]),
                ]
            }),
        )));
    }
    if let Some(hard) = status["quota"]["hard"]
        .as_object()
        .filter(|h| !h.is_empty())
    {
        out.push_str("\nQuota use:\n");
        out.push_str(&indent(&output::table(
            &["resource", "used", "hard"],
            hard.iter().map(|(resource, limit)| {
                vec![
                    resource.clone(),
                    text(&status["quota"]["used"][resource]),
                    text(limit),
                ]
            }),
        )));
    }
    out.push_str("\nMembers:\n");
    out.push_str(&indent(&members_table(&spec["members"])));
    if let Some(apps) = spec["apps"].as_array().filter(|a| !a.is_empty()) {
        out.push_str("\nApps:\n");
        out.push_str(&indent(&output::table(
            &["name", "image", "replicas", "port", "expose"],
            apps.iter().map(|a| {
                vec![
                    text(&a["name"]),
                    text(&a["image"]),
                    text(&a["replicas"]),
                    text(&a["port"]),
                    text(&a["expose"]),
                ]
            }),
        )));
    }
    out
}

fn indent(text: &str) -> String {
    text.lines().map(|l| format!("  {l}\n")).collect()
}

fn preview(answer: &Value) -> String {
    let mut out = answer["yaml"].as_str().unwrap_or_default().to_owned();
    if !out.ends_with('\n') {
        out.push('\n');
    }
    let list = |key: &str| -> Vec<String> {
        answer[key]
            .as_array()
            .into_iter()
            .flatten()
            .map(|s| format!("  - {}\n", text(s)))
            .collect()
    };
    out.push_str("\n# Summary\n");
    out.extend(list("summary").into_iter().map(|l| format!("#{l}")));
    let warnings = list("warnings");
    if !warnings.is_empty() {
        out.push_str("\n# Warnings\n");
        out.extend(warnings.into_iter().map(|l| format!("#{l}")));
    }
    out
}

fn workloads_tables(workloads: &Value) -> String {
    let rows = |key: &str| workloads[key].as_array().cloned().unwrap_or_default();
    let mut out = String::new();
    let mut section = |title: &str, table: String, empty: bool| {
        if !empty {
            out.push_str(&format!("{title}:\n{}\n", indent(&table)));
        }
    };
    let deployments = rows("deployments");
    section(
        "Deployments",
        output::table(
            &["name", "ready", "image"],
            deployments.iter().map(|d| {
                vec![
                    text(&d["name"]),
                    format!("{}/{}", text(&d["readyReplicas"]), text(&d["replicas"])),
                    text(&d["image"]),
                ]
            }),
        ),
        deployments.is_empty(),
    );
    let pods = rows("pods");
    section(
        "Pods",
        output::table(
            &["name", "phase", "ready", "restarts", "node"],
            pods.iter().map(|p| {
                vec![
                    text(&p["name"]),
                    text(&p["phase"]),
                    text(&p["ready"]),
                    text(&p["restarts"]),
                    text(&p["node"]),
                ]
            }),
        ),
        pods.is_empty(),
    );
    let services = rows("services");
    section(
        "Services",
        output::table(
            &["name", "type", "cluster ip", "ports"],
            services.iter().map(|s| {
                vec![
                    text(&s["name"]),
                    text(&s["type"]),
                    text(&s["clusterIP"]),
                    text(&s["ports"]),
                ]
            }),
        ),
        services.is_empty(),
    );
    let ingresses = rows("ingresses");
    section(
        "Ingresses",
        output::table(
            &["name", "hosts"],
            ingresses
                .iter()
                .map(|i| vec![text(&i["name"]), text(&i["hosts"])]),
        ),
        ingresses.is_empty(),
    );
    if out.is_empty() {
        "Nothing runs here yet.".into()
    } else {
        out.trim_end().to_owned()
    }
}

pub(crate) fn requests_table(requests: &Value, with_requester: bool) -> String {
    if items_of(requests).is_empty() {
        return "No requests.".into();
    }
    let mut headers = vec!["id", "environment", "kind", "state"];
    if with_requester {
        headers.push("requester");
    }
    headers.extend(["age", "why"]);
    output::table(
        &headers,
        items_of(requests).iter().map(|r| {
            let mut row = vec![
                text(&r["id"]),
                text(&r["environment"]),
                text(&r["kind"]),
                text(&r["state"]),
            ];
            if with_requester {
                row.push(text(&r["requester"]));
            }
            let why = match r["reason"].as_str() {
                Some(reason) if r["state"] == "rejected" => format!("rejected: {reason}"),
                _ => r["reasons"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(text)
                    .collect::<Vec<_>>()
                    .join("; "),
            };
            row.extend([output::age(&r["createdAt"]), why]);
            row
        }),
    )
}

pub(crate) fn templates_table(templates: &Value) -> String {
    output::table(
        &["name", "description", "cpu", "memory", "ttl"],
        items_of(templates).iter().map(|t| {
            vec![
                text(&t["name"]),
                text(&t["description"]),
                text(&t["spec"]["quota"]["cpu"]),
                text(&t["spec"]["quota"]["memory"]),
                text(&t["spec"]["ttl"]),
            ]
        }),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_preview_shows_the_objects_then_the_summary() {
        let answer = json!({"yaml": "kind: Namespace\n", "summary": ["Pods may use at most 2 CPUs in total"], "warnings": ["Needs an admin's approval: quota.cpu over 4"]});
        let out = preview(&answer);
        assert_eq!(
            out,
            "kind: Namespace\n\n# Summary\n#  - Pods may use at most 2 CPUs in total\n\n# Warnings\n#  - Needs an admin's approval: quota.cpu over 4\n"
        );
        // The whole of it is still YAML.
        assert!(serde_yaml::from_str::<serde_yaml::Value>(&out).is_ok());
    }

    #[test]
    fn a_description_names_status_members_and_apps() {
        let env = json!({"name": "a", "owner": "ada@example.com", "role": "owner", "createdAt": "2026-01-01T00:00:00Z",
            "spec": {"template": "small", "quota": {"cpu": "2", "memory": "4Gi", "storage": "10Gi", "pods": 20},
                "members": [{"email": "ada@example.com", "role": "owner"}],
                "apps": [{"name": "web", "image": "nginx:1.27", "replicas": 1, "port": 8080, "expose": "cluster"}]},
            "status": {"phase": "Degraded", "conditions": [{"type": "Degraded", "status": "True", "reason": "Refused", "message": "quota"}],
                "quota": {"hard": {"pods": "20"}, "used": {"pods": "1"}}}});
        let out = describe(&env);
        for needle in [
            "Phase:",
            "Degraded",
            "Refused",
            "ada@example.com",
            "nginx:1.27",
            "pods",
            "cpu 2, memory 4Gi",
        ] {
            assert!(out.contains(needle), "{needle} in\n{out}");
        }
    }

    #[test]
    fn requests_say_why_they_wait_or_were_refused() {
        let requests = json!({"items": [
            {"id": "1", "environment": "a", "kind": "create", "state": "pending", "reasons": ["quota.cpu over 4"], "createdAt": "2026-01-01T00:00:00Z"},
            {"id": "2", "environment": "b", "kind": "update", "state": "rejected", "reason": "too big", "reasons": []}]});
        let out = requests_table(&requests, false);
        assert!(out.contains("quota.cpu over 4"), "{out}");
        assert!(out.contains("rejected: too big"), "{out}");
    }
}
