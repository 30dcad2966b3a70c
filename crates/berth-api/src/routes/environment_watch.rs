//! Live views of environments (`?watch=true` on the list and on one
//! environment), as Server-Sent Events from the watch cache: `event:
//! environment` with the environment as `GET` answers it, `event: deleted`
//! with `{"name"}` when it is gone or no longer visible to the caller, `id:`
//! the resource version of the change, heartbeats as comments.
//!
//! Each view compares what the caller may see now with what it sent before,
//! after every change of the cache, so visibility is judged again at every
//! event (a member removed gets `deleted`, never later changes), and the
//! caller's credential is checked again at every change and heartbeat (a
//! session ended elsewhere ends the stream, and the client's reconnection
//! gets 401).

use crate::cluster::Connection;
use crate::environments::access::Standing;
use crate::environments::changes::{Departure, resource_version};
use crate::environments::{self as envs};
use crate::error::ApiError;
use crate::state::AppState;
use axum::http::HeaderMap;
use axum::response::sse::{Event, Sse};
use axum::response::{IntoResponse, Response};
use berth_auth::{Credential, Principal};
use berth_core::account::Role;
use berth_manifests::Environment;
use futures::Stream;
use serde_json::json;
use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

/// How often an idle stream sends a comment (keeping proxies from closing
/// it) and checks the caller's credential again.
pub const HEARTBEAT: Duration = Duration::from_secs(15);

/// Which environments a view follows.
#[derive(Clone)]
pub enum Scope {
    /// The list: those the caller is a member of; with `all` (admins), every one.
    List { all: bool },
    /// One environment, while the caller may see it.
    One(String),
}

/// The view's answer: 200 `text/event-stream`. For one environment, 404
/// when it is absent or invisible at the start, as `GET` answers.
pub async fn respond(
    state: AppState,
    connection: &Connection,
    caller: Principal,
    credential: Credential,
    scope: Scope,
    headers: &HeaderMap,
) -> Result<Response, ApiError> {
    if let Scope::One(name) = &scope {
        envs::visible(connection, name, &caller).await?;
    }
    let last_event_id = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    let view = View {
        state,
        caller,
        credential,
        scope,
        sent: HashMap::new(),
    };
    Ok(Sse::new(view.events(last_event_id)).into_response())
}

struct View {
    state: AppState,
    caller: Principal,
    credential: Credential,
    scope: Scope,
    /// What the client holds: name → the resource version sent.
    sent: HashMap<String, u64>,
}

impl View {
    fn events(
        mut self,
        last_event_id: Option<u64>,
    ) -> impl Stream<Item = Result<Event, Infallible>> {
        async_stream::stream! {
            let cluster = self.state.cluster.clone();
            let Some(connection) = cluster.connected() else { return };
            let mut ticks = connection.changes.subscribe();
            ticks.mark_changed();
            // Resuming: the client holds what it was sent up to its last id;
            // tell it what left its sight meanwhile, then what changed.
            if let Some(since) = last_event_id {
                let (email, all) = (&self.caller.user.email, self.sees_all());
                if let Some(departures) = connection.changes.departures_since(since, email, all) {
                    for env in self.in_sight(connection) {
                        let rv = resource_version(&env);
                        if rv <= since {
                            self.sent.insert(env.metadata.name.clone().unwrap_or_default(), rv);
                        }
                    }
                    for Departure { name, resource_version, .. } in departures {
                        if self.scope_has(&name) && !self.sent.contains_key(&name) {
                            yield Ok(deleted(&name, resource_version));
                        }
                    }
                }
            }
            let mut stopping = std::pin::pin!(self.state.revocations.stopping());
            let mut heartbeat = tokio::time::interval(HEARTBEAT);
            heartbeat.tick().await;
            loop {
                tokio::select! {
                    // A stopping server would otherwise wait for every open view.
                    () = &mut stopping => return,
                    changed = ticks.changed() => {
                        if changed.is_err() { return }
                        if !self.still_authenticated().await { return }
                        for event in self.catch_up(connection) {
                            yield Ok(event);
                        }
                    }
                    _ = heartbeat.tick() => {
                        if !self.still_authenticated().await { return }
                        yield Ok(Event::default().comment("heartbeat"));
                    }
                }
            }
        }
    }

    /// The events that bring the client from what it was sent to what the
    /// caller sees now, by resource version, so that a client resuming from
    /// any of their ids misses none of the later ones.
    fn catch_up(&mut self, connection: &Connection) -> Vec<Event> {
        let mut out: Vec<(u64, Event)> = Vec::new();
        let mut seen = HashMap::new();
        for env in self.in_sight(connection) {
            let name = env.metadata.name.clone().unwrap_or_default();
            let rv = resource_version(&env);
            if self.sent.get(&name) != Some(&rv) {
                let standing = envs::standing_of(&env, &self.caller);
                let data =
                    serde_json::to_string(&envs::view(&env, standing)).expect("a view serializes");
                out.push((
                    rv,
                    Event::default()
                        .event("environment")
                        .id(rv.to_string())
                        .data(data),
                ));
            }
            seen.insert(name, rv);
        }
        for name in self.sent.keys().filter(|name| !seen.contains_key(*name)) {
            // The id of the change that took it away (its delete, or the
            // change of its members).
            let rv = connection
                .changes
                .departed(name)
                .or_else(|| seen.values().max().copied())
                .unwrap_or(0);
            out.push((rv, deleted(name, rv)));
        }
        self.sent = seen;
        out.sort_by_key(|(rv, _)| *rv);
        out.into_iter().map(|(_, event)| event).collect()
    }

    /// The environments of the scope the caller may see now.
    fn in_sight(&self, connection: &Connection) -> Vec<Arc<Environment>> {
        let all = self.sees_all();
        connection
            .environments
            .state()
            .into_iter()
            .filter(|env| self.scope_has(env.metadata.name.as_deref().unwrap_or_default()))
            .filter(|env| match envs::standing_of(env, &self.caller) {
                Standing::Member(_) => true,
                standing => standing.can_see() && (all || matches!(self.scope, Scope::One(_))),
            })
            .collect()
    }

    fn scope_has(&self, name: &str) -> bool {
        match &self.scope {
            Scope::List { .. } => true,
            Scope::One(one) => one == name,
        }
    }

    /// Whether the caller sees environments they are not a member of.
    fn sees_all(&self) -> bool {
        self.caller.user.role == Role::Admin
            && match self.scope {
                Scope::List { all } => all,
                Scope::One(_) => true,
            }
    }

    /// Checks the credential again, taking up the caller's current role
    /// (an admin demoted sees less from the next event on).
    async fn still_authenticated(&mut self) -> bool {
        match crate::extract::reauthenticate(&self.state, &self.credential, &self.caller).await {
            Some(principal) => {
                self.caller = principal;
                true
            }
            None => false,
        }
    }
}

fn deleted(name: &str, rv: u64) -> Event {
    Event::default()
        .event("deleted")
        .id(rv.to_string())
        .data(json!({ "name": name }).to_string())
}
