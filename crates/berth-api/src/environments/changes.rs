//! What the live views (`?watch=true`) need from the Environment watch,
//! without I/O: a signal after every change the cache applied, and a short
//! memory of environments that went out of someone's sight (deleted, or a
//! member removed), so that a client resuming with `Last-Event-ID` learns
//! what it must drop.
//!
//! Each live view works out what to send by comparing the cache with what it
//! sent before, so a relist, a burst of changes or a slow client never lose
//! an event; the memory is only for what happened while a client was away.

use super::members_of;
use berth_core::account::Email;
use berth_manifests::Environment;
use std::collections::VecDeque;
use std::sync::{Mutex, PoisonError};
use tokio::sync::watch;

/// How many departures are kept for resuming clients. A client away for
/// longer (more departures than this since its `Last-Event-ID`) gets the
/// whole current state again, like a first connection.
pub const KEPT_DEPARTURES: usize = 4096;

/// An environment that left the sight of some callers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Departure {
    /// The resource version of the change (for a deletion, of the delete).
    pub resource_version: u64,
    pub name: String,
    /// Deleted: gone for everyone who saw it, admins included.
    pub deleted: bool,
    /// The members who no longer see it.
    pub lost: Vec<Email>,
}

impl Departure {
    /// Whether a caller who may see every environment (`all`, an admin) or
    /// is `email` lost sight of it through this change.
    pub fn concerns(&self, email: &Email, all: bool) -> bool {
        (self.deleted && all) || self.lost.contains(email)
    }
}

/// Shared between the watch (which records) and every live view (which reads).
pub struct Changes {
    tick: watch::Sender<u64>,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    departures: VecDeque<Departure>,
    /// Departures older than this resource version were forgotten (or
    /// happened before this process watched): a client asking to resume
    /// from before it gets the whole state.
    horizon: u64,
    /// Names seen since the watch (re)started listing, to find what a
    /// relist no longer has.
    relisted: Option<Vec<String>>,
    /// The highest resource version seen.
    newest: u64,
}

impl Default for Changes {
    fn default() -> Self {
        Self {
            tick: watch::Sender::new(0),
            state: Mutex::default(),
        }
    }
}

/// An Environment's resource version as a number. Kubernetes calls resource
/// versions opaque, but the apiserver's are etcd revisions, which grow;
/// `Last-Event-ID` is compared by that order.
pub fn resource_version(env: &Environment) -> u64 {
    env.metadata
        .resource_version
        .as_deref()
        .and_then(|rv| rv.parse().ok())
        .unwrap_or(0)
}

impl Changes {
    /// A receiver that is marked changed after every change applied to the cache.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.tick.subscribe()
    }

    /// The cache applied a change: wake every live view.
    pub fn changed(&self) {
        self.tick.send_modify(|n| *n += 1);
    }

    /// Before the cache applies `new` (`None`: deleted) over `old`: remember
    /// who stops seeing it.
    pub fn replacing(&self, old: Option<&Environment>, new: Option<&Environment>) {
        let mut state = self.lock();
        let rv = new.or(old).map(resource_version).unwrap_or(0);
        state.newest = state.newest.max(rv);
        if let Some(relisted) = &mut state.relisted
            && let Some(name) = new.and_then(|env| env.metadata.name.clone())
        {
            relisted.push(name);
        }
        let Some(old) = old else { return };
        let name = old.metadata.name.clone().unwrap_or_default();
        let departure = match new {
            None => Departure {
                resource_version: rv,
                name,
                deleted: true,
                lost: members_of(old).into_iter().map(|m| m.email).collect(),
            },
            Some(new) => {
                let kept: Vec<Email> = members_of(new).into_iter().map(|m| m.email).collect();
                let lost: Vec<Email> = members_of(old)
                    .into_iter()
                    .map(|m| m.email)
                    .filter(|email| !kept.contains(email))
                    .collect();
                if lost.is_empty() {
                    return;
                }
                Departure {
                    resource_version: rv,
                    name,
                    deleted: false,
                    lost,
                }
            }
        };
        state.remember(departure);
    }

    /// The watch starts listing again (its first list, or after losing its place).
    pub fn relisting(&self) {
        self.lock().relisted = Some(Vec::new());
    }

    /// The relist is complete; `before` is the cache as it was before it.
    /// What the relist no longer has was deleted while the watch was away.
    pub fn relisted(&self, before: &[std::sync::Arc<Environment>]) {
        let mut state = self.lock();
        let Some(present) = state.relisted.take() else {
            return;
        };
        if before.is_empty() {
            // The first list: nothing was known before it, and nothing
            // before the newest version it holds can be resumed from.
            state.horizon = state.newest;
            return;
        }
        let rv = state.newest;
        for old in before {
            let name = old.metadata.name.clone().unwrap_or_default();
            if !present.contains(&name) {
                state.remember(Departure {
                    resource_version: rv,
                    name,
                    deleted: true,
                    lost: members_of(old).into_iter().map(|m| m.email).collect(),
                });
            }
        }
    }

    /// The departures after `since` that `email` (or, with `all`, anyone)
    /// must hear of, oldest first; `None` when `since` is older than what is
    /// remembered, so the caller must start again from the whole state.
    pub fn departures_since(&self, since: u64, email: &Email, all: bool) -> Option<Vec<Departure>> {
        let state = self.lock();
        if since < state.horizon {
            return None;
        }
        let mut found: Vec<Departure> = state
            .departures
            .iter()
            .filter(|d| d.resource_version > since && d.concerns(email, all))
            .cloned()
            .collect();
        found.sort_by_key(|d| d.resource_version);
        Some(found)
    }

    /// The resource version of the latest departure of `name`, if remembered.
    pub fn departed(&self, name: &str) -> Option<u64> {
        let state = self.lock();
        state
            .departures
            .iter()
            .rev()
            .find(|d| d.name == name)
            .map(|d| d.resource_version)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl State {
    fn remember(&mut self, departure: Departure) {
        if self.departures.len() == KEPT_DEPARTURES
            && let Some(forgotten) = self.departures.pop_front()
        {
            self.horizon = self.horizon.max(forgotten.resource_version);
        }
        self.departures.push_back(departure);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::sync::Arc;

    fn env(name: &str, rv: u64, members: &[&str]) -> Environment {
        let members: Vec<_> = members
            .iter()
            .map(|email| json!({"email": email, "role": "editor"}))
            .collect();
        serde_json::from_value(json!({
            "apiVersion": "berth.dev/v1alpha1",
            "kind": "Environment",
            "metadata": {"name": name, "resourceVersion": rv.to_string()},
            "spec": {"template": "small", "members": members},
        }))
        .expect("an Environment")
    }

    fn email(raw: &str) -> Email {
        Email::parse("email", raw).expect("an email")
    }

    #[test]
    fn a_removed_member_and_a_deletion_are_departures_for_whom_they_concern() {
        let changes = Changes::default();
        changes.relisting();
        changes.replacing(None, Some(&env("a", 10, &["x@e.com", "y@e.com"])));
        changes.relisted(&[]);
        changes.replacing(
            Some(&env("a", 10, &["x@e.com", "y@e.com"])),
            Some(&env("a", 11, &["x@e.com"])),
        );
        changes.replacing(
            Some(&env("a", 11, &["x@e.com"])),
            Some(&env("a", 12, &["x@e.com"])),
        );
        // A delete event carries the resource version of the deletion.
        changes.replacing(Some(&env("b", 13, &["x@e.com"])), None);

        let y = changes
            .departures_since(10, &email("y@e.com"), false)
            .unwrap();
        assert_eq!(
            y.iter().map(|d| (&*d.name, d.deleted)).collect::<Vec<_>>(),
            [("a", false)]
        );
        let x = changes
            .departures_since(10, &email("x@e.com"), false)
            .unwrap();
        assert_eq!(x.iter().map(|d| &*d.name).collect::<Vec<_>>(), ["b"]);
        let admin = changes
            .departures_since(10, &email("z@e.com"), true)
            .unwrap();
        assert_eq!(admin.iter().map(|d| &*d.name).collect::<Vec<_>>(), ["b"]);
        assert!(
            changes
                .departures_since(11, &email("y@e.com"), false)
                .unwrap()
                .is_empty()
        );
        // Before the first list's newest version, nothing can be resumed.
        assert!(
            changes
                .departures_since(9, &email("y@e.com"), false)
                .is_none()
        );
    }

    #[test]
    fn a_relist_reports_what_it_no_longer_has() {
        let changes = Changes::default();
        changes.relisting();
        changes.replacing(None, Some(&env("a", 3, &["x@e.com"])));
        changes.replacing(None, Some(&env("b", 4, &["x@e.com"])));
        changes.relisted(&[]);
        let before = [
            Arc::new(env("a", 3, &["x@e.com"])),
            Arc::new(env("b", 4, &["x@e.com"])),
        ];
        changes.relisting();
        changes.replacing(None, Some(&env("a", 9, &["x@e.com"])));
        changes.relisted(&before);
        let gone = changes
            .departures_since(4, &email("x@e.com"), false)
            .unwrap();
        assert_eq!(
            gone.iter()
                .map(|d| (&*d.name, d.deleted))
                .collect::<Vec<_>>(),
            [("b", true)]
        );
    }

    #[test]
    fn forgetting_old_departures_moves_the_horizon() {
        let changes = Changes::default();
        for rv in 1..=(KEPT_DEPARTURES as u64 + 1) {
            changes.replacing(Some(&env(&format!("e{rv}"), rv, &["x@e.com"])), None);
        }
        assert!(
            changes
                .departures_since(0, &email("x@e.com"), false)
                .is_none()
        );
        let kept = changes
            .departures_since(1, &email("x@e.com"), false)
            .unwrap();
        assert_eq!(kept.len(), KEPT_DEPARTURES);
    }
}
