//! The list answer, made from the watch cache. Each environment's JSON is
//! rendered once per resource version and reused until the object changes,
//! and the rendered environments are sorted once per change of the cache, so
//! listing a thousand environments is a filter and a concatenation (or, for a
//! caller who asked since the last change, nothing) instead of a thousand
//! conversions and serializations.

use super::access::{self, Standing};
use super::{members_of, view};
use axum::body::Bytes;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use berth_core::account::{Email, Role};
use berth_core::environment::Member;
use berth_manifests::Environment;
use flate2::Compression;
use flate2::write::GzEncoder;
use kube::runtime::reflector::Store;
use serde::{Deserialize, Serialize};
use std::collections::{HashMap, HashSet};
use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError, RwLock};

/// The caller's role closes every view; it is the one part not shared by callers.
const ROLE_FIELD: &str = r#","role":""#;

/// One environment at one resource version, as far as a list needs it.
struct Rendered {
    resource_version: Option<String>,
    name: String,
    created_at: Option<String>,
    members: Vec<Member>,
    /// The view's JSON without its last field, the caller's role, and the closing brace.
    json_before_role: String,
}

impl Rendered {
    fn key(&self) -> ListKey<'_> {
        (&self.created_at, &self.name)
    }

    fn of(env: &Environment) -> Self {
        let view = view(env, Standing::Stranger);
        let json = serde_json::to_string(&view).expect("a view serializes");
        let suffix = format!("{ROLE_FIELD}{}\"}}", Standing::Stranger.label());
        let json_before_role = json
            .strip_suffix(&suffix)
            .expect("`role` is the last field of EnvironmentView")
            .to_owned();
        Self {
            resource_version: env.metadata.resource_version.clone(),
            name: view.name,
            created_at: view.created_at,
            members: members_of(env),
            json_before_role,
        }
    }
}

/// One caller's list, as JSON and, made when first asked for, gzip-compressed:
/// a thousand environments are about a megabyte of JSON, a twentieth of
/// that compressed, and every browser accepts gzip.
pub struct Answer {
    pub json: Bytes,
    gzip: OnceLock<Bytes>,
}

impl Answer {
    pub fn gzip(&self) -> Bytes {
        self.gzip
            .get_or_init(|| {
                let mut encoder = GzEncoder::new(Vec::new(), Compression::fast());
                encoder
                    .write_all(&self.json)
                    .and_then(|()| encoder.finish())
                    .map(Bytes::from)
                    .expect("writing to memory cannot fail")
            })
            .clone()
    }
}

/// Rendered environments, newest first, as of one version of the cache.
struct Snapshot {
    version: u64,
    newest_first: Vec<Arc<Rendered>>,
    /// Answers made from this snapshot, by who asked them: the same people
    /// poll the same list (the UI does every few seconds).
    answers: Mutex<HashMap<(Email, Role, bool), Arc<Answer>>>,
}

/// JSON kept per snapshot (an admin's list of a thousand environments is
/// about a megabyte); past this, the kept answers are dropped and made again.
const KEPT_ANSWER_BYTES: usize = 16 << 20;

/// List answers for everyone, from one sorted snapshot of the watch cache
/// that is made again only after the cache changed. Safe to share between
/// requests.
#[derive(Default)]
pub struct Listing {
    /// Bumped by the watch after each change it applied to the cache.
    version: AtomicU64,
    snapshot: RwLock<Option<Arc<Snapshot>>>,
    /// By name, for reuse across snapshots while their resource version holds.
    /// Held while a snapshot is made, so that a change makes one, not one per request.
    rendered: Mutex<HashMap<String, Arc<Rendered>>>,
}

impl Listing {
    /// The cache changed: the next answer takes a new snapshot.
    pub fn changed(&self) {
        self.version.fetch_add(1, Ordering::AcqRel);
    }

    /// `{"items": [...]}` of the environments in `cache` that the caller is a
    /// member of (with `all`, every one they may see), newest first: the JSON
    /// of `EnvironmentList`.
    pub fn answer(
        &self,
        cache: &Store<Environment>,
        email: &Email,
        role: Role,
        all: bool,
    ) -> Arc<Answer> {
        let snapshot = self.snapshot(cache);
        let key = (email.clone(), role, all);
        let mut answers = snapshot
            .answers
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(answer) = answers.get(&key) {
            return answer.clone();
        }
        let answer = Arc::new(Answer {
            json: Bytes::from(answer_from(visible(&snapshot, email, role, all), None)),
            gzip: OnceLock::new(),
        });
        let kept: usize = answers.values().map(|a| a.json.len()).sum();
        if kept + answer.json.len() > KEPT_ANSWER_BYTES {
            answers.clear();
        }
        answers.insert(key, answer.clone());
        answer
    }

    /// Like [`Listing::answer`], but at most `limit` environments, those
    /// after `after`, with a `continue` cursor when more follow. A page is
    /// made from the snapshot of its moment: environments created while a
    /// client pages are not on later pages (they are newer than the cursor).
    pub fn page(
        &self,
        cache: &Store<Environment>,
        caller: (&Email, Role, bool),
        limit: usize,
        after: Option<&Cursor>,
    ) -> String {
        let (email, role, all) = caller;
        let snapshot = self.snapshot(cache);
        let mut rest = visible(&snapshot, email, role, all)
            .skip_while(|(r, _)| after.is_some_and(|cursor| !cursor.precedes(r)))
            .peekable();
        let page: Vec<_> = rest.by_ref().take(limit).collect();
        let next = match (page.last(), rest.peek()) {
            (Some((last, _)), Some(_)) => Some(Cursor::at(last).encode()),
            _ => None,
        };
        answer_from(page.into_iter(), next.as_deref())
    }

    fn snapshot(&self, cache: &Store<Environment>) -> Arc<Snapshot> {
        let version = self.version.load(Ordering::Acquire);
        let up_to_date = || {
            self.snapshot
                .read()
                .unwrap_or_else(PoisonError::into_inner)
                .clone()
                .filter(|s| s.version == version)
        };
        if let Some(snapshot) = up_to_date() {
            return snapshot;
        }
        let mut rendered = self.rendered.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(snapshot) = up_to_date() {
            return snapshot;
        }
        // Read after the version: a change in between makes the next request look again.
        let mut newest_first = render(&mut rendered, &cache.state());
        newest_first.sort_by(|a, b| list_order(a.key(), b.key()));
        let snapshot = Arc::new(Snapshot {
            version,
            newest_first,
            answers: Mutex::default(),
        });
        *self
            .snapshot
            .write()
            .unwrap_or_else(PoisonError::into_inner) = Some(snapshot.clone());
        snapshot
    }
}

/// Every environment rendered at its current version, reusing what was
/// rendered at that version before; entries of environments that are gone
/// are dropped.
fn render(
    rendered: &mut HashMap<String, Arc<Rendered>>,
    environments: &[Arc<Environment>],
) -> Vec<Arc<Rendered>> {
    let all: Vec<Arc<Rendered>> = environments
        .iter()
        .map(|env| {
            let name = env.metadata.name.as_deref().unwrap_or_default();
            match rendered.get(name) {
                Some(r) if r.resource_version == env.metadata.resource_version => r.clone(),
                _ => {
                    let r = Arc::new(Rendered::of(env));
                    rendered.insert(r.name.clone(), r.clone());
                    r
                }
            }
        })
        .collect();
    if rendered.len() > all.len() {
        let present: HashSet<&str> = all.iter().map(|r| r.name.as_str()).collect();
        rendered.retain(|name, _| present.contains(name.as_str()));
    }
    all
}

/// Where an environment stands in a list: by creation time and name.
type ListKey<'a> = (&'a Option<String>, &'a str);

/// The list's order: newest first, then by name.
fn list_order(a: ListKey, b: ListKey) -> std::cmp::Ordering {
    b.0.cmp(a.0).then_with(|| a.1.cmp(b.1))
}

/// The environments of a snapshot that the caller sees, in its order.
fn visible<'a>(
    snapshot: &'a Snapshot,
    email: &'a Email,
    role: Role,
    all: bool,
) -> impl Iterator<Item = (&'a Rendered, Standing)> + 'a {
    snapshot.newest_first.iter().filter_map(move |r| {
        let standing = access::standing(&r.members, email, role);
        let member = matches!(standing, Standing::Member(_));
        (member || (all && standing.can_see())).then_some((r.as_ref(), standing))
    })
}

/// The JSON of `EnvironmentList`: `items`, and `continue` when given.
fn answer_from<'a>(
    items: impl Iterator<Item = (&'a Rendered, Standing)>,
    next: Option<&str>,
) -> String {
    let items: Vec<_> = items.collect();
    let size: usize = items
        .iter()
        .map(|(r, _)| r.json_before_role.len() + ROLE_FIELD.len() + 10)
        .sum();
    let mut json = String::with_capacity(size + 64);
    json.push_str(r#"{"items":["#);
    for (i, (r, standing)) in items.iter().enumerate() {
        if i > 0 {
            json.push(',');
        }
        json.push_str(&r.json_before_role);
        json.push_str(ROLE_FIELD);
        json.push_str(standing.label());
        json.push_str("\"}");
    }
    json.push(']');
    if let Some(next) = next {
        // A cursor is base64url: nothing in it needs escaping.
        json.push_str(r#","continue":""#);
        json.push_str(next);
        json.push('"');
    }
    json.push('}');
    json
}

/// Where a page ends: the last environment it holds, by the list's order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cursor {
    created_at: Option<String>,
    name: String,
}

impl Cursor {
    fn at(r: &Rendered) -> Self {
        Self {
            created_at: r.created_at.clone(),
            name: r.name.clone(),
        }
    }

    /// Whether `r` comes after this cursor in the list's order.
    fn precedes(&self, r: &Rendered) -> bool {
        list_order((&self.created_at, &self.name), r.key()).is_lt()
    }

    /// The opaque `continue` token.
    pub fn encode(&self) -> String {
        let json = serde_json::to_vec(self).expect("a cursor serializes");
        URL_SAFE_NO_PAD.encode(json)
    }

    /// `None` for anything `encode` did not make.
    pub fn decode(token: &str) -> Option<Self> {
        let json = URL_SAFE_NO_PAD.decode(token).ok()?;
        serde_json::from_slice(&json).ok()
    }
}

#[cfg(test)]
#[cfg(test)]
mod tests {
    use super::*;
    use crate::environments::EnvironmentView;
    use kube::runtime::reflector::{self, store::Writer};
    use kube::runtime::watcher;
    use serde_json::{Value, json};
    use std::io::Read;

    fn env(name: &str, version: &str, created: &str, members: Value) -> Arc<Environment> {
        Arc::new(
            serde_json::from_value(json!({
                "apiVersion": "berth.dev/v1alpha1",
                "kind": "Environment",
                "metadata": {
                    "name": name,
                    "resourceVersion": version,
                    "generation": 2,
                    "creationTimestamp": created,
                    "annotations": {"berth.dev/created-by": "ann@example.com"},
                },
                "spec": {
                    "description": "with \"quotes\" and ünïcode",
                    "template": "small",
                    "members": members,
                },
                "status": {"phase": "Ready", "conditions": [], "observedGeneration": 2},
            }))
            .expect("a valid Environment"),
        )
    }

    fn email(s: &str) -> Email {
        Email::parse("email", s).unwrap()
    }

    /// What the list answered before it was rendered from a cache: a view
    /// of each visible environment, serialized together.
    fn one_by_one(
        environments: &[Arc<Environment>],
        email: &Email,
        role: Role,
        all: bool,
    ) -> Value {
        let mut items: Vec<EnvironmentView> = environments
            .iter()
            .filter_map(|env| {
                let standing = access::standing(&members_of(env), email, role);
                let member = matches!(standing, Standing::Member(_));
                (member || (all && standing.can_see())).then(|| view(env, standing))
            })
            .collect();
        items.sort_by(|a, b| {
            b.created_at
                .cmp(&a.created_at)
                .then_with(|| a.name.cmp(&b.name))
        });
        json!({ "items": items })
    }

    fn fixture() -> Vec<Arc<Environment>> {
        let ann_owns = json!([{"email": "ann@example.com", "role": "owner"}]);
        vec![
            env("alpha", "10", "2026-01-01T00:00:00Z", ann_owns.clone()),
            env(
                "bravo",
                "11",
                "2026-01-03T00:00:00Z",
                json!([{"email": "ann@example.com", "role": "owner"}, {"email": "bob@example.com", "role": "viewer"}]),
            ),
            env("charlie", "12", "2026-01-03T00:00:00Z", ann_owns),
        ]
    }

    fn cache_of(environments: &[Arc<Environment>]) -> (Store<Environment>, Writer<Environment>) {
        let (reader, mut writer) = reflector::store();
        for env in environments {
            writer.apply_watcher_event(&watcher::Event::Apply(Environment::clone(env)));
        }
        (reader, writer)
    }

    fn parsed(answer: Arc<Answer>) -> Value {
        let json: Value = serde_json::from_slice(&answer.json).expect("the answer is JSON");
        let mut unzipped = Vec::new();
        flate2::read::GzDecoder::new(&answer.gzip()[..])
            .read_to_end(&mut unzipped)
            .expect("the compressed answer is gzip");
        assert_eq!(unzipped, answer.json, "both forms say the same");
        json
    }

    #[test]
    fn answers_what_serializing_each_view_answers_for_every_caller() {
        let listing = Listing::default();
        let (cache, _writer) = cache_of(&fixture());
        let callers = [
            ("ann@example.com", Role::Member, false),
            ("bob@example.com", Role::Member, false),
            ("bob@example.com", Role::Member, true),
            ("eve@example.com", Role::Member, true),
            ("root@example.com", Role::Admin, false),
            ("root@example.com", Role::Admin, true),
            ("bob@example.com", Role::Admin, true),
        ];
        for (who, role, all) in callers {
            assert_eq!(
                parsed(listing.answer(&cache, &email(who), role, all)),
                one_by_one(&cache.state(), &email(who), role, all),
                "{who} {role:?} all={all}"
            );
        }
        let admin_all =
            parsed(listing.answer(&cache, &email("bob@example.com"), Role::Admin, true));
        let names: Vec<_> = admin_all["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| (i["name"].as_str().unwrap(), i["role"].as_str().unwrap()))
            .collect();
        assert_eq!(
            names,
            [
                ("bravo", "viewer"),
                ("charlie", "admin"),
                ("alpha", "admin")
            ]
        );
    }

    #[test]
    fn a_change_shows_once_the_watch_says_so_and_only_what_changed_is_rendered_again() {
        let listing = Listing::default();
        let ann = email("ann@example.com");
        let envs = fixture();
        let (cache, mut writer) = cache_of(&envs);
        let before = listing.answer(&cache, &ann, Role::Member, false);
        let bravo = listing.rendered.lock().unwrap()["bravo"].clone();

        let moved = env(
            "alpha",
            "20",
            "2026-01-01T00:00:00Z",
            json!([{"email": "bob@example.com", "role": "owner"}]),
        );
        writer.apply_watcher_event(&watcher::Event::Apply(Environment::clone(&moved)));
        writer.apply_watcher_event(&watcher::Event::Delete(Environment::clone(&envs[2])));
        let again = listing.answer(&cache, &ann, Role::Member, false);
        assert!(Arc::ptr_eq(&again, &before), "the kept answer");

        listing.changed();
        let after = parsed(listing.answer(&cache, &ann, Role::Member, false));
        assert_eq!(after, one_by_one(&cache.state(), &ann, Role::Member, false));
        assert_eq!(
            after["items"].as_array().unwrap().len(),
            1,
            "only bravo is ann's now"
        );
        let rendered = listing.rendered.lock().unwrap();
        assert_eq!(rendered.len(), 2, "charlie is forgotten");
        assert!(Arc::ptr_eq(&rendered["bravo"], &bravo), "bravo is reused");
    }

    fn names(list: &Value) -> Vec<String> {
        list["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["name"].as_str().unwrap().to_owned())
            .collect()
    }

    #[test]
    fn pages_walk_the_list_once_in_its_order_whatever_their_size() {
        let listing = Listing::default();
        let mut envs = fixture();
        for i in 0..5 {
            envs.push(env(
                &format!("delta-{i}"),
                &format!("{}", 30 + i),
                "2026-01-02T00:00:00Z",
                json!([{"email": "ann@example.com", "role": "editor"}]),
            ));
        }
        let (cache, _writer) = cache_of(&envs);
        let ann = email("ann@example.com");
        let everything = names(&parsed(listing.answer(&cache, &ann, Role::Member, false)));
        assert_eq!(everything.len(), 8);
        for limit in 1..=9 {
            let (mut seen, mut after, mut pages) = (Vec::new(), None, 0);
            loop {
                let page: Value = serde_json::from_str(&listing.page(
                    &cache,
                    (&ann, Role::Member, false),
                    limit,
                    after.as_ref(),
                ))
                .unwrap();
                seen.extend(names(&page));
                pages += 1;
                match page["continue"].as_str() {
                    Some(token) => after = Some(Cursor::decode(token).expect("our own token")),
                    None => break,
                }
            }
            assert_eq!(seen, everything, "limit {limit}");
            assert_eq!(pages, everything.len().div_ceil(limit), "limit {limit}");
        }
        assert_eq!(Cursor::decode("not-a-cursor"), None);
        assert_eq!(Cursor::decode(""), None);
    }
}
