use crate::audit::{Action, RequestId};
use crate::environments::access::Permission;
use crate::environments::listing::Cursor;
use crate::environments::service::{self, Outcome};
use crate::environments::{self as envs, EnvironmentView, RENEWED_AT};
use crate::error::ApiError;
use crate::extract::CurrentUser;
use crate::json::ApiJson;
use crate::query::ApiQuery;
use crate::routes::environment_watch::{self as watch, Scope};
use crate::routes::requests::{RequestAnswer, RequestView};
use crate::state::AppState;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use berth_core::environment::{Decision, EnvironmentSpec, EnvironmentSpecInput, Ttl};
use berth_core::validation::ValidationErrors;
use berth_manifests::{BuildOptions, Preview, preview};
use berth_store::KeyState;
use serde::{Deserialize, Serialize};
use serde_json::json;
use sha2::{Digest, Sha256};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

// The list answer's shape for the OpenAPI document; `environments::listing`
// writes its JSON directly from rendered parts.
#[derive(Serialize, utoipa::ToSchema)]
pub struct EnvironmentList {
    items: Vec<EnvironmentView>,
    /// With `limit`, when more follow: send it back as `continue` for the next page.
    #[serde(rename = "continue", skip_serializing_if = "Option::is_none")]
    next: Option<String>,
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// Admins only: every environment, not just those they are a member of.
    all: Option<bool>,
    /// Answer with Server-Sent Events of the environments as they change
    /// (`text/event-stream`), not with a list; not with `limit` or `continue`.
    watch: Option<bool>,
    /// At most this many (1 to 1000); without it, all of them.
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<u32>,
    /// The `continue` of the previous page.
    #[serde(rename = "continue")]
    after: Option<String>,
}

/// A page's size when `continue` comes without `limit`.
const DEFAULT_PAGE: u32 = 100;

#[utoipa::path(get, operation_id = "environments_list", path = "/api/v1/environments", tag = "environments", params(ListQuery, LastEventId), responses(
    (status = 200, description = "Environments the caller is a member of, newest first; with watch=true, Server-Sent Events (see the `watch` parameter)", content(
        (EnvironmentList = "application/json"),
        (String = "text/event-stream", example = json!(WATCH_EXAMPLE)),
    )),
    (status = 400, description = "Invalid parameter", body = crate::error::ErrorBody),
), security(("session" = []), ("token" = [])))]
pub async fn list(
    State(state): State<AppState>,
    CurrentUser(caller): CurrentUser,
    ApiQuery(query): ApiQuery<ListQuery>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let paging = paging(&query)?;
    let connection = state.cluster.connection().await?;
    let all = query.all == Some(true) && caller.user.role == berth_core::account::Role::Admin;
    if query.watch == Some(true) {
        if paging.is_some() {
            return Err(ValidationErrors::single(
                "watch",
                "cannot be combined with limit or continue",
            )
            .into());
        }
        let credential = crate::extract::credential(
            &axum::http::Method::GET,
            &headers,
            state.settings.secure_cookies,
        )?;
        return watch::respond(
            state.clone(),
            connection,
            caller,
            credential,
            Scope::List { all },
            &headers,
        )
        .await;
    }
    // An address not yet verified holds no membership (see `standing_of`),
    // so a member who has not verified it is a member of nothing.
    if !caller.holds_memberships && caller.user.role != berth_core::account::Role::Admin {
        return Ok((
            [(header::CONTENT_TYPE, "application/json")],
            r#"{"items":[]}"#,
        )
            .into_response());
    }
    if let Some((limit, after)) = paging {
        let page = connection.listing.page(
            &connection.environments,
            (&caller.user.email, caller.user.role, all),
            limit,
            after.as_ref(),
        );
        return Ok(([(header::CONTENT_TYPE, "application/json")], page).into_response());
    }
    let answer = connection.listing.answer(
        &connection.environments,
        &caller.user.email,
        caller.user.role,
        all,
    );
    let json = [
        (header::CONTENT_TYPE, "application/json"),
        (header::VARY, "accept-encoding"),
    ];
    Ok(if accepts_gzip(&headers) {
        (json, [(header::CONTENT_ENCODING, "gzip")], answer.gzip()).into_response()
    } else {
        (json, answer.json.clone()).into_response()
    })
}

/// The page asked for, if any: its size and the cursor it starts after.
fn paging(query: &ListQuery) -> Result<Option<(usize, Option<Cursor>)>, ApiError> {
    if query.limit.is_none() && query.after.is_none() {
        return Ok(None);
    }
    let limit = query.limit.unwrap_or(DEFAULT_PAGE);
    if !(1..=1000).contains(&limit) {
        return Err(ValidationErrors::single("limit", "must be from 1 to 1000").into());
    }
    let after = query
        .after
        .as_deref()
        .map(|token| {
            Cursor::decode(token).ok_or_else(|| {
                ValidationErrors::single("continue", "is not a token of a previous page")
            })
        })
        .transpose()?;
    Ok(Some((limit as usize, after)))
}

/// Whether `Accept-Encoding` takes gzip: named with a non-zero weight, or
/// not named and `*` is.
fn accepts_gzip(headers: &HeaderMap) -> bool {
    let mut any = false;
    let codings = headers
        .get_all(header::ACCEPT_ENCODING)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','));
    for coding in codings {
        let mut parts = coding.split(';').map(str::trim);
        let name = parts.next().unwrap_or_default();
        let weight = parts
            .find_map(|p| p.strip_prefix("q="))
            .map_or(Some(1.0), |q| q.parse::<f32>().ok())
            .unwrap_or(0.0);
        if name.eq_ignore_ascii_case("gzip") {
            return weight > 0.0;
        }
        if name == "*" {
            any = weight > 0.0;
        }
    }
    any
}

/// What a create or change answers: the environment (201 created, 200
/// changed, as the caller sees it), or the request waiting for an admin (202).
pub fn answer(outcome: Outcome, caller: &berth_auth::Principal) -> (StatusCode, serde_json::Value) {
    let view = |env: &berth_manifests::Environment| {
        serde_json::to_value(envs::view(env, envs::standing_of(env, caller)))
            .expect("a view serializes")
    };
    match outcome {
        Outcome::Created(env) => (StatusCode::CREATED, view(&env)),
        Outcome::Changed(env) => (StatusCode::OK, view(&env)),
        Outcome::Requested(record) => (
            StatusCode::ACCEPTED,
            serde_json::to_value(RequestAnswer {
                request: RequestView::from(*record),
            })
            .expect("a request serializes"),
        ),
    }
}

/// The header a client sends to make a create safe to retry.
const IDEMPOTENCY_KEY: &str = "idempotency-key";

#[utoipa::path(post, operation_id = "environments_create", path = "/api/v1/environments", tag = "environments", request_body = EnvironmentSpecInput,
    params(("Idempotency-Key" = Option<String>, Header, description = "Makes a retry safe: the same key and body within 24 h replay the first answer; the same key with another body answers 409. 1 to 200 visible ASCII characters.", pattern = "^[\\x21-\\x7e]{1,200}$")),
    responses(
    (status = 201, description = "Created; the controller is making it real", body = EnvironmentView),
    (status = 202, description = "Over policy: a request waits for an admin", body = crate::routes::requests::RequestAnswer),
    (status = 400, description = "Invalid field, or refused by the policy", body = crate::error::ErrorBody),
    (status = 409, description = "The name is taken or being deleted, or the Idempotency-Key was used with another body or is in use right now", body = crate::error::ErrorBody),
), security(("session" = []), ("token" = [])))]
pub async fn create(
    State(state): State<AppState>,
    CurrentUser(caller): CurrentUser,
    request_id: RequestId,
    headers: HeaderMap,
    ApiJson(input): ApiJson<EnvironmentSpecInput>,
) -> Result<Response, ApiError> {
    let key = idempotency_key(&headers)?;
    let spec = EnvironmentSpec::parse(&input)?;
    let Some(key) = key else {
        let (status, body) = answer(
            service::create(&state, &caller, &request_id, spec).await?,
            &caller,
        );
        return Ok((status, ApiJson(body)).into_response());
    };
    let store = state.auth.store();
    let hash = body_hash(&input);
    match store
        .claim_idempotency_key(caller.user.id, &key, &hash)
        .await?
    {
        KeyState::Claimed => {}
        KeyState::Answered { status, body } => {
            let status = StatusCode::from_u16(status)
                .map_err(|_| ApiError::Internal(format!("kept status {status}")))?;
            return Ok((status, [(header::CONTENT_TYPE, "application/json")], body).into_response());
        }
        KeyState::InFlight => {
            return Err(ApiError::Conflict(
                "a request with this Idempotency-Key is being answered; retry in a moment".into(),
            ));
        }
        KeyState::Mismatch => {
            return Err(ApiError::Conflict(
                "this Idempotency-Key was used with another body".into(),
            ));
        }
    }
    match service::create(&state, &caller, &request_id, spec).await {
        Ok(outcome) => {
            let (status, body) = answer(outcome, &caller);
            store
                .answer_idempotency_key(caller.user.id, &key, status.as_u16(), &body.to_string())
                .await?;
            Ok((status, ApiJson(body)).into_response())
        }
        Err(error) => {
            store.release_idempotency_key(caller.user.id, &key).await?;
            Err(error)
        }
    }
}

/// The `Idempotency-Key` header, if sent: 1 to 200 visible ASCII characters.
fn idempotency_key(headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    let Some(value) = headers.get(IDEMPOTENCY_KEY) else {
        return Ok(None);
    };
    value
        .to_str()
        .ok()
        .filter(|v| (1..=200).contains(&v.len()) && v.bytes().all(|b| b.is_ascii_graphic()))
        .map(|v| Some(v.to_owned()))
        .ok_or_else(|| {
            ValidationErrors::single(
                "Idempotency-Key",
                "must be 1 to 200 visible ASCII characters",
            )
            .into()
        })
}

/// What identifies a body for an idempotency key: the SHA-256 of its parsed
/// form, so that whitespace and key order do not matter.
fn body_hash(input: &EnvironmentSpecInput) -> String {
    let canonical = serde_json::to_vec(input).expect("a spec serializes");
    let digest = Sha256::digest(canonical);
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

#[utoipa::path(post, operation_id = "environments_preview_spec", path = "/api/v1/environments/preview", tag = "environments", request_body = EnvironmentSpecInput, responses(
    (status = 200, description = "The objects, as YAML and JSON, a plain-language summary and warnings; nothing is created", body = Preview),
    (status = 400, description = "Invalid field", body = crate::error::ErrorBody),
), security(("session" = []), ("token" = [])))]
pub async fn preview_spec(
    State(state): State<AppState>,
    CurrentUser(caller): CurrentUser,
    ApiJson(input): ApiJson<EnvironmentSpecInput>,
) -> Result<ApiJson<Preview>, ApiError> {
    let spec = EnvironmentSpec::parse(&input)?;
    let (spec, decision) = service::preview(&state, &caller, spec).await?;
    let mut answer = preview(&spec, &BuildOptions::default());
    match decision {
        Decision::Allow => {}
        // Approval `always`: nothing is over a limit, yet an admin decides.
        Decision::NeedsApproval(violations) if violations.is_empty() => answer.warnings.push(
            "Needs an admin's approval: the policy holds every create and change of bounds for an admin".into(),
        ),
        Decision::NeedsApproval(violations) => answer.warnings.extend(
            violations
                .iter()
                .map(|v| format!("Needs an admin's approval: {} {}", v.field, v.message)),
        ),
        Decision::Deny(violations) => answer.warnings.extend(
            violations
                .iter()
                .map(|v| format!("Will be refused: {} {}", v.field, v.message)),
        ),
    }
    Ok(ApiJson(answer))
}

/// `?watch=true` of one environment.
#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct GetQuery {
    /// Answer with Server-Sent Events of this environment as it changes
    /// (`text/event-stream`): `deleted` when it is gone or no longer
    /// visible to the caller.
    watch: Option<bool>,
}

/// `Last-Event-ID` of a resumed watch.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Header)]
#[allow(dead_code)] // Only describes the header for the OpenAPI document.
struct LastEventId {
    /// With watch=true: the `id` of the last event received (a resource
    /// version). The stream then sends only what changed after it, `deleted`
    /// first for what left the caller's sight meanwhile; an id older than
    /// Berth remembers (or from before it started) gets the whole state again.
    #[param(rename = "Last-Event-ID")]
    last_event_id: Option<String>,
}

/// What a watch sends, for the OpenAPI document.
const WATCH_EXAMPLE: &str = "event: environment\nid: 4711\ndata: {\"name\":\"team-a\",...}\n\nevent: deleted\nid: 4712\ndata: {\"name\":\"team-b\"}\n\n: heartbeat\n\n";

#[utoipa::path(get, operation_id = "environments_get", path = "/api/v1/environments/{name}", tag = "environments", params(("name" = String, Path), GetQuery, LastEventId), responses(
    (status = 200, description = "The environment; with watch=true, Server-Sent Events (see the `watch` parameter)", content(
        (EnvironmentView = "application/json"),
        (String = "text/event-stream", example = json!(WATCH_EXAMPLE)),
    )),
    (status = 404, description = "Absent or not visible to the caller", body = crate::error::ErrorBody),
), security(("session" = []), ("token" = [])))]
pub async fn get(
    State(state): State<AppState>,
    CurrentUser(caller): CurrentUser,
    Path(name): Path<String>,
    ApiQuery(query): ApiQuery<GetQuery>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let connection = state.cluster.connection().await?;
    if query.watch == Some(true) {
        let credential = crate::extract::credential(
            &axum::http::Method::GET,
            &headers,
            state.settings.secure_cookies,
        )?;
        return watch::respond(
            state.clone(),
            connection,
            caller,
            credential,
            Scope::One(name),
            &headers,
        )
        .await;
    }
    let (env, standing) = envs::visible(connection, &name, &caller).await?;
    Ok(ApiJson(envs::view(&env, standing)).into_response())
}

#[utoipa::path(delete, operation_id = "environments_delete", path = "/api/v1/environments/{name}", tag = "environments", params(("name" = String, Path)), responses(
    (status = 202, description = "Deleting: phase Deleting until the namespace is gone, then 404", body = EnvironmentView),
    (status = 403, description = "Only owners and admins delete", body = crate::error::ErrorBody),
    (status = 404, description = "Absent or not visible", body = crate::error::ErrorBody),
), security(("session" = []), ("token" = [])))]
pub async fn delete(
    State(state): State<AppState>,
    CurrentUser(caller): CurrentUser,
    request_id: RequestId,
    Path(name): Path<String>,
) -> Result<(StatusCode, ApiJson<EnvironmentView>), ApiError> {
    let connection = state.cluster.connection().await?;
    let (env, standing) = envs::permitted(connection, &name, &caller, Permission::Delete).await?;
    let api: kube::Api<berth_manifests::Environment> = kube::Api::all(connection.client.clone());
    let result = api.delete(&name, &Default::default()).await;
    let action = Action {
        actor: caller.user.email.as_str(),
        action: "environment.delete",
        target: format!("environment/{name}"),
        environment: Some(&name),
        details: json!({}),
    };
    state
        .audit(
            action,
            if result.is_ok() { "success" } else { "failure" },
            &request_id,
        )
        .await;
    result.map_err(envs::kube_error)?;
    connection.caught_up_deleting(&env).await;
    let mut view = envs::view(&env, standing);
    view.status["phase"] = json!("Deleting");
    Ok((StatusCode::ACCEPTED, ApiJson(view)))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RenewRequest {
    /// Go-style duration from now, such as `72h`. The environment's own TTL
    /// restarts its clock (any member but a viewer); another TTL also
    /// changes it, which is a change of bounds (owners and admins, judged
    /// by the policy).
    #[schema(schema_with = crate::openapi_common::ttl)]
    ttl: String,
}

#[utoipa::path(post, operation_id = "environments_renew", path = "/api/v1/environments/{name}/renew", tag = "environments", params(("name" = String, Path)),
    request_body = RenewRequest, responses(
    (status = 200, description = "Renewed; `status.expiresAt` is the new expiry", body = EnvironmentView),
    (status = 202, description = "Another TTL than the environment's is a change of bounds that the policy holds for an admin: a request waits", body = crate::routes::requests::RequestAnswer),
    (status = 400, description = "Invalid or over the policy's maximum TTL", body = crate::error::ErrorBody),
    (status = 403, description = "Viewers cannot renew; only owners and admins change the TTL itself", body = crate::error::ErrorBody),
    (status = 404, description = "Absent or not visible", body = crate::error::ErrorBody),
    (status = 409, description = "Being deleted", body = crate::error::ErrorBody),
), security(("session" = []), ("token" = [])))]
pub async fn renew(
    State(state): State<AppState>,
    CurrentUser(caller): CurrentUser,
    request_id: RequestId,
    Path(name): Path<String>,
    ApiJson(body): ApiJson<RenewRequest>,
) -> Result<(StatusCode, ApiJson<serde_json::Value>), ApiError> {
    let ttl = Ttl::parse("ttl", &body.ttl)?;
    let connection = state.cluster.connection().await?;
    let (env, standing) =
        envs::permitted_latest(connection, &name, &caller, Permission::Renew).await?;
    service::refuse_if_deleting(&env)?;
    let now = OffsetDateTime::now_utc()
        .replace_nanosecond(0)
        .expect("zero is a valid nanosecond");
    let stamp = now
        .format(&Rfc3339)
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    let renewed = [(RENEWED_AT, stamp)];
    let current = env.resolved_spec().ok().and_then(|spec| spec.ttl);
    let outcome = if current == Some(ttl) {
        // The clock starts again; the TTL itself, a bound, stays. A policy
        // lowered since still caps it.
        let policy = crate::platform::policy(state.auth.store()).await?;
        if let Some(max) = policy.max_ttl.filter(|max| ttl > *max) {
            return Err(ValidationErrors::single(
                "ttl",
                format!("must be at most {max}, the policy's maximum"),
            )
            .into());
        }
        let updated =
            envs::replace_spec(connection, &env, env.spec.clone(), None, &renewed).await?;
        let action = Action {
            actor: caller.user.email.as_str(),
            action: "environment.renew",
            target: format!("environment/{name}"),
            environment: Some(&name),
            details: json!({ "ttl": ttl.to_string() }),
        };
        state.audit(action, "success", &request_id).await;
        Outcome::Changed(Box::new(updated))
    } else {
        // Another TTL is a change of bounds, judged as a PATCH of `ttl` is.
        if !standing.allows(Permission::EditSettings) {
            return Err(ApiError::Forbidden(
                "only owners and admins change the TTL; renew with the environment's own TTL to restart it",
            ));
        }
        let mut after = env.spec.to_input(&name);
        after.ttl = Some(ttl.to_string());
        service::change(&state, &caller, &request_id, &env, after, None, &renewed).await?
    };
    let (status, mut body) = answer(outcome, &caller);
    if status == StatusCode::OK {
        let expires = (now + ttl.as_duration())
            .format(&Rfc3339)
            .map_err(|e| ApiError::Internal(e.to_string()))?;
        body["status"]["expiresAt"] = json!(expires);
    }
    Ok((status, ApiJson(body)))
}

/// `If-Match: <generation>`: the version of the spec a change is based on.
pub fn if_match(headers: &HeaderMap) -> Result<Option<i64>, ApiError> {
    let Some(value) = headers.get(header::IF_MATCH) else {
        return Ok(None);
    };
    value
        .to_str()
        .ok()
        .and_then(|v| v.trim().trim_matches('"').parse().ok())
        .map(Some)
        .ok_or_else(|| {
            ValidationErrors::single(
                "If-Match",
                "must be the environment's generation, a whole number",
            )
            .into()
        })
}

#[cfg(test)]
mod tests {
    use super::accepts_gzip;
    use axum::http::{HeaderMap, HeaderValue, header};

    #[test]
    fn gzip_is_sent_only_to_who_takes_it() {
        let cases = [
            ("gzip, deflate, br, zstd", true),
            ("br;q=1.0, GZIP;q=0.5", true),
            ("*", true),
            ("identity", false),
            ("gzip;q=0", false),
            ("gzip;q=0, *", false),
            ("deflate, *;q=0", false),
            ("gzip;q=nonsense", false),
            ("", false),
        ];
        for (value, expected) in cases {
            let mut headers = HeaderMap::new();
            headers.insert(header::ACCEPT_ENCODING, HeaderValue::from_static(value));
            assert_eq!(accepts_gzip(&headers), expected, "{value:?}");
        }
        assert!(!accepts_gzip(&HeaderMap::new()));
    }
}
