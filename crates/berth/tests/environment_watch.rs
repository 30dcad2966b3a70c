//! Live views (`?watch=true`): Server-Sent Events of the caller's
//! environments from the watch cache, each change within a second, a member
//! removed told `deleted` and nothing after, strangers told nothing (404 for
//! one environment), resumable with `Last-Event-ID`, and a stream whose
//! session ended stops.

mod support;

use berth_testkit::unique_name as unique;
use reqwest::{Client, Response, StatusCode};
use serde_json::{Value, json};
use std::time::{Duration, Instant};
use support::*;

/// One Server-Sent Event: its `event`, `id` and `data` (JSON).
#[derive(Debug, Clone)]
struct Sse {
    event: String,
    id: String,
    data: Value,
}

/// A stream of events being read.
struct Events {
    body: Response,
    buffer: String,
}

impl Events {
    async fn open(request: reqwest::RequestBuilder) -> Self {
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(
            response.headers()["content-type"],
            "text/event-stream",
            "a watch answers Server-Sent Events"
        );
        Self::of(response)
    }

    fn of(response: Response) -> Self {
        Self {
            body: response,
            buffer: String::new(),
        }
    }

    /// The next event (heartbeats skipped) within `timeout`; `None` when the
    /// stream ended, a failure when nothing came.
    async fn next(&mut self, timeout: Duration) -> Option<Sse> {
        let deadline = Instant::now() + timeout;
        loop {
            while let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                let mut event = Sse {
                    event: "message".into(),
                    id: String::new(),
                    data: Value::Null,
                };
                for line in block.lines() {
                    if let Some(v) = line.strip_prefix("event: ") {
                        event.event = v.into();
                    } else if let Some(v) = line.strip_prefix("id: ") {
                        event.id = v.into();
                    } else if let Some(v) = line.strip_prefix("data: ") {
                        event.data = serde_json::from_str(v).expect("JSON data");
                    }
                }
                if event.data != Value::Null {
                    return Some(event);
                }
            }
            let left = deadline.saturating_duration_since(Instant::now());
            match tokio::time::timeout(left, self.body.chunk()).await {
                Ok(Ok(Some(chunk))) => self.buffer.push_str(std::str::from_utf8(&chunk).unwrap()),
                Ok(_) => return None,
                Err(_) => panic!("no event within {timeout:?}"),
            }
        }
    }

    /// The next event that is about `name`.
    async fn next_about(&mut self, name: &str, timeout: Duration) -> Sse {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let event = self.next(left).await.expect("the stream is open");
            if event.data["name"] == name {
                return event;
            }
        }
    }

    /// The first event about `name` showing `ttl` (within 5 s).
    async fn until(&mut self, name: &str, ttl: &str) -> Sse {
        let deadline = Instant::now() + Duration::from_secs(5);
        let mut seen = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let event = tokio::time::timeout(left, self.next_about(name, Duration::from_secs(10)))
                .await
                .unwrap_or_else(|_| panic!("no event with ttl {ttl} within 5 s; before: {seen:?}"));
            if event.data["spec"]["ttl"] == ttl {
                return event;
            }
            seen.push((event.event, event.id, event.data["spec"]["ttl"].clone()));
        }
    }

    /// Every event that arrives within `quiet` of the previous one.
    async fn drain(&mut self, quiet: Duration) -> Vec<Sse> {
        let mut all = Vec::new();
        while let Ok(Some(event)) = tokio::time::timeout(quiet, self.next(quiet * 2)).await {
            all.push(event);
        }
        all
    }
}

fn watch(app: &TestApp, token: &str, path: &str) -> reqwest::RequestBuilder {
    Client::new().get(app.url(path)).bearer_auth(token)
}

#[tokio::test]
async fn members_see_changes_live_and_strangers_see_nothing() {
    let app = spawn_app_on_cluster().await;
    let ann_email = format!("{}@example.com", unique("ann"));
    let ann = app.member_token(&ann_email).await;
    let vic_email = format!("{}@example.com", unique("vic"));
    let vic = app.member_token(&vic_email).await;
    let sam = app
        .member_token(&format!("{}@example.com", unique("sam")))
        .await;
    let name = unique("live");

    let mut anns = Events::open(watch(&app, &ann, "/api/v1/environments?watch=true")).await;
    let mut sams = Events::open(watch(&app, &sam, "/api/v1/environments?watch=true")).await;
    let created_at = Instant::now();
    let created = app
        .post(
            &ann,
            "/api/v1/environments",
            &json!({"name": name, "template": "small",
                    "members": [{"email": vic_email, "role": "viewer"}]}),
        )
        .await;
    assert_eq!(created.status(), StatusCode::CREATED);
    let first = anns.next_about(&name, Duration::from_secs(5)).await;
    let latency = created_at.elapsed();
    assert_eq!(first.event, "environment");
    assert_eq!(first.data["role"], "owner");
    assert!(
        !first.id.is_empty(),
        "each event carries its resource version"
    );
    assert!(latency < Duration::from_secs(1), "seen after {latency:?}");
    println!("create seen by the owner's watch {latency:?} after the request");

    // One environment: its members watch it; others get 404, as for GET.
    let one = format!("{}?watch=true", path(&name));
    let response = watch(&app, &sam, &one).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    let response = watch(
        &app,
        &ann,
        &format!("/api/v1/environments/{}?watch=true", unique("none")),
    )
    .send()
    .await
    .unwrap();
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    let mut vics = Events::open(watch(&app, &vic, &one)).await;
    let seen = vics.next(Duration::from_secs(5)).await.unwrap();
    assert_eq!(
        (seen.event.as_str(), &seen.data["role"]),
        ("environment", &json!("viewer"))
    );

    // A change: both members see it, with a newer resource version. (A
    // controller may write the status meanwhile: a view sends the latest.)
    let changed = patch(&app, &ann, &name, json!({"ttl": "24h"})).await;
    assert_eq!(changed.status(), StatusCode::OK);
    let anns_change = anns.until(&name, "24h").await;
    assert!(anns_change.id.parse::<u64>().unwrap() > first.id.parse::<u64>().unwrap());
    vics.until(&name, "24h").await;

    // The viewer removed: told `deleted`, and nothing after.
    let removed = patch(
        &app,
        &ann,
        &name,
        json!({"members": [{"email": ann_email, "role": "owner"}]}),
    )
    .await;
    assert_eq!(removed.status(), StatusCode::OK);
    let gone = loop {
        let event = vics.next(Duration::from_secs(5)).await.unwrap();
        if event.event == "deleted" {
            break event;
        }
        let members = event.data["spec"]["members"].to_string();
        assert!(
            members.contains(&vic_email),
            "sent after the removal: {event:?}"
        );
    };
    assert_eq!(gone.data, json!({"name": name}));
    let renewed = patch(&app, &ann, &name, json!({"ttl": "48h"})).await;
    assert_eq!(renewed.status(), StatusCode::OK);
    let last = anns.until(&name, "48h").await;
    assert!(
        vics.drain(Duration::from_millis(500)).await.is_empty(),
        "a removed member hears nothing more"
    );

    // The stranger's list stream never named it.
    let strangers = sams.drain(Duration::from_millis(500)).await;
    assert!(
        strangers.iter().all(|e| e.data["name"] != name),
        "{strangers:?}"
    );

    // Resuming from the last id: only what came after, deletion first.
    drop(anns);
    let deleted = app.delete(&ann, &path(&name)).await;
    assert!(deleted.status().is_success(), "{}", deleted.status());
    let mut resumed = Events::open(
        watch(&app, &ann, "/api/v1/environments?watch=true").header("last-event-id", &last.id),
    )
    .await;
    let after: Vec<Sse> = resumed.drain(Duration::from_millis(800)).await;
    let about: Vec<_> = after.iter().filter(|e| e.data["name"] == name).collect();
    assert!(
        about.iter().any(|e| e.event == "deleted")
            || about
                .iter()
                .any(|e| e.data["status"]["phase"] == "Deleting"),
        "the resumed stream tells of the deletion: {after:?}"
    );
    assert!(
        after
            .iter()
            .all(|e| e.id.parse::<u64>().unwrap() > last.id.parse::<u64>().unwrap()),
        "nothing from before the last id is sent again: {after:?}"
    );
    app.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_stream_whose_session_ended_stops() {
    let app = spawn_app_on_cluster().await;
    let email = format!("{}@example.com", unique("kim"));
    let browser = app.browser();
    let registered = app.register(&browser, &email).await;
    assert_eq!(registered.status(), StatusCode::CREATED);
    let csrf = set_cookie(&registered, "berth_csrf").unwrap();
    let token = app
        .member_token(&format!("{}@example.com", unique("ow")))
        .await;
    let name = unique("ends");
    let created = app
        .post(
            &token,
            "/api/v1/environments",
            &json!({"name": name, "template": "small", "members": [{"email": email, "role": "editor"}]}),
        )
        .await;
    assert_eq!(created.status(), StatusCode::CREATED);

    let response = browser
        .get(app.url("/api/v1/environments?watch=true"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let mut events = Events::of(response);
    events.next_about(&name, Duration::from_secs(5)).await;

    let logout = browser
        .post(app.url("/api/v1/auth/logout"))
        .header("x-csrf-token", csrf)
        .send()
        .await
        .unwrap();
    assert!(logout.status().is_success());
    // The next change is judged with the ended session: the stream ends.
    let changed = patch(&app, &token, &name, json!({"ttl": "24h"})).await;
    assert_eq!(changed.status(), StatusCode::OK);
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match events.next(left).await {
            None => break,
            Some(event) => assert_ne!(
                event.data["spec"]["ttl"], "24h",
                "a change after the logout reached the ended session"
            ),
        }
    }
    let again = browser
        .get(app.url("/api/v1/environments?watch=true"))
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), StatusCode::UNAUTHORIZED);
    app.shutdown().await.unwrap();
}

#[tokio::test]
async fn watch_with_paging_is_refused_naming_the_parameter() {
    let app = spawn_app_on_cluster().await;
    let token = app
        .member_token(&format!("{}@example.com", unique("pg")))
        .await;
    let response = app
        .get(&token, "/api/v1/environments?watch=true&limit=5")
        .await;
    let body = expect_error(response, StatusCode::BAD_REQUEST, "validation_failed").await;
    assert_eq!(body["error"]["details"][0]["field"], "watch", "{body}");
    app.shutdown().await.unwrap();
}
