//! `--wait`: follows an environment until it is Ready (or gone), showing
//! its progress, and fails with the reason when it is Degraded.

use crate::api::Api;
use crate::error::CliError;
use crate::segment;
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::Value;
use std::io::IsTerminal;
use std::time::{Duration, Instant};

const POLL: Duration = Duration::from_millis(500);

#[derive(Clone, Copy, Debug)]
pub enum Goal {
    /// Ready, with the controller having seen at least this generation.
    Ready(Option<i64>),
    /// Deleted: the API answers 404.
    Gone,
}

#[derive(Debug, PartialEq)]
pub enum State {
    Waiting(String),
    Done,
    Failed(String),
}

/// Where an environment stands on the way to Ready.
pub fn judge(env: &Value, generation: Option<i64>) -> State {
    let status = &env["status"];
    let phase = status["phase"].as_str().unwrap_or("Pending");
    let observed = status["observedGeneration"].as_i64();
    let caught_up = match (generation, observed) {
        (Some(wanted), Some(seen)) => seen >= wanted,
        (Some(_), None) => false,
        (None, _) => true,
    };
    match phase {
        "Ready" if caught_up => State::Done,
        "Degraded" if caught_up => State::Failed(match degraded(status) {
            Some(why) => format!("is Degraded: {why}"),
            None => "is Degraded".into(),
        }),
        "Deleting" => State::Failed("is being deleted".into()),
        _ => State::Waiting(match pending_condition(status) {
            Some(what) if caught_up => format!("{phase}: {what}"),
            _ => phase.to_owned(),
        }),
    }
}

/// The Degraded condition's reason and message.
fn degraded(status: &Value) -> Option<String> {
    conditions(status)
        .find(|c| c["type"] == "Degraded" && c["status"] == "True")
        .map(reason_and_message)
}

/// What the environment waits for: the first condition that is not yet met.
fn pending_condition(status: &Value) -> Option<String> {
    conditions(status)
        .find(|c| c["type"] != "Degraded" && c["status"] != "True")
        .map(reason_and_message)
        .filter(|s| !s.is_empty())
}

fn conditions(status: &Value) -> impl Iterator<Item = &Value> {
    status["conditions"].as_array().into_iter().flatten()
}

fn reason_and_message(condition: &Value) -> String {
    let reason = condition["reason"].as_str().unwrap_or_default();
    let message = condition["message"].as_str().unwrap_or_default();
    match (reason.is_empty(), message.is_empty()) {
        (false, false) => format!("{reason}: {message}"),
        (false, true) => reason.to_owned(),
        _ => message.to_owned(),
    }
}

/// Follows environment `name` until `goal`, for at most `timeout`; returns
/// the environment as it last was (Null once gone).
pub async fn until(
    api: &Api,
    name: &str,
    goal: Goal,
    timeout: Duration,
) -> Result<Value, CliError> {
    let progress = Progress::new(name);
    let deadline = Instant::now() + timeout;
    let path = format!("/api/v1/environments/{}", segment(name));
    let mut last = String::new();
    loop {
        let state = match (api.get(&path).await, goal) {
            (Ok(env), Goal::Ready(generation)) => match judge(&env, generation) {
                State::Done => {
                    progress.finish(&format!("{name} is Ready"));
                    return Ok(env);
                }
                State::Failed(why) => {
                    progress.abandon();
                    return Err(CliError::Failed(format!("environment {name} {why}")));
                }
                State::Waiting(what) => what,
            },
            (Ok(env), Goal::Gone) => env["status"]["phase"]
                .as_str()
                .unwrap_or("Deleting")
                .to_owned(),
            (Err(e), Goal::Gone) if e.is_not_found() => {
                progress.finish(&format!("{name} is deleted"));
                return Ok(Value::Null);
            }
            (Err(e), Goal::Ready(_)) if e.is_not_found() => {
                progress.abandon();
                return Err(CliError::Failed(format!(
                    "environment {name} is gone (deleted, or your access to it was removed)"
                )));
            }
            (Err(e), _) => {
                progress.abandon();
                return Err(e);
            }
        };
        if state != last {
            progress.say(&format!("{name}: {state}"));
            last = state;
        }
        if Instant::now() >= deadline {
            progress.abandon();
            let goal = match goal {
                Goal::Ready(_) => "Ready",
                Goal::Gone => "deleted",
            };
            return Err(CliError::Failed(format!(
                "environment {name} is not {goal} after {}s (last: {last}); `berth env events {name}` may say why",
                timeout.as_secs()
            )));
        }
        tokio::time::sleep(POLL).await;
    }
}

/// A spinner on a terminal; a line per change elsewhere (CI logs).
struct Progress {
    bar: Option<ProgressBar>,
}

impl Progress {
    fn new(name: &str) -> Self {
        if !std::io::stderr().is_terminal() {
            return Self { bar: None };
        }
        let bar = ProgressBar::new_spinner();
        bar.set_style(
            ProgressStyle::with_template("{spinner} {msg} ({elapsed})").expect("a valid template"),
        );
        bar.set_message(format!("{name}: waiting"));
        bar.enable_steady_tick(Duration::from_millis(100));
        Self { bar: Some(bar) }
    }

    fn say(&self, line: &str) {
        match &self.bar {
            Some(bar) => bar.set_message(line.to_owned()),
            None => eprintln!("{line}"),
        }
    }

    fn finish(&self, line: &str) {
        match &self.bar {
            Some(bar) => {
                bar.set_style(
                    ProgressStyle::with_template("✓ {msg} ({elapsed})").expect("a valid template"),
                );
                bar.finish_with_message(line.to_owned());
            }
            None => eprintln!("{line}"),
        }
    }

    fn abandon(&self) {
        if let Some(bar) = &self.bar {
            bar.abandon();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn ready_only_once_the_controller_saw_the_change() {
        let env = json!({"status": {"phase": "Ready", "observedGeneration": 1}});
        assert_eq!(judge(&env, Some(1)), State::Done);
        assert_eq!(judge(&env, None), State::Done);
        assert_eq!(judge(&env, Some(2)), State::Waiting("Ready".into()));
        assert_eq!(judge(&json!({}), Some(1)), State::Waiting("Pending".into()));
    }

    #[test]
    fn degraded_fails_with_its_reason() {
        let env = json!({"status": {"phase": "Degraded", "observedGeneration": 3, "conditions": [
            {"type": "Ready", "status": "False", "reason": "Degraded", "message": "see Degraded"},
            {"type": "Degraded", "status": "True", "reason": "QuotaRefused", "message": "quota.cpu is over the cluster's limit"}]}});
        assert_eq!(
            judge(&env, Some(3)),
            State::Failed(
                "is Degraded: QuotaRefused: quota.cpu is over the cluster's limit".into()
            )
        );
        // Degraded from an older generation: the fix may be on its way.
        assert!(matches!(judge(&env, Some(4)), State::Waiting(_)));
    }

    #[test]
    fn waiting_says_for_what() {
        let env = json!({"status": {"phase": "Provisioning", "observedGeneration": 1, "conditions": [
            {"type": "Degraded", "status": "False", "reason": "", "message": ""},
            {"type": "Ready", "status": "False", "reason": "Reconciling", "message": "applying 12 objects"}]}});
        assert_eq!(
            judge(&env, Some(1)),
            State::Waiting("Provisioning: Reconciling: applying 12 objects".into())
        );
        let deleting = json!({"status": {"phase": "Deleting"}});
        assert!(matches!(judge(&deleting, None), State::Failed(_)));
    }
}
