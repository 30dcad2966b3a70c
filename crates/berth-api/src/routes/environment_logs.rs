//! A pod's logs for the environment's members, through the apiserver's
//! `pods/log` (and so the kubelet), as `kubectl logs` reads them.

use crate::environments as envs;
use crate::error::ApiError;
use crate::extract::CurrentUser;
use crate::query::ApiQuery;
use crate::routes::environment_details::owns_namespace;
use crate::state::AppState;
use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use berth_core::environment::{ContainerName, ObjectName};
use berth_core::validation::{FieldError, ValidationErrors};
use futures::{AsyncBufReadExt, StreamExt};
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, LogParams};
use serde::Deserialize;
use std::time::Duration;

/// Most lines `tailLines` may ask for: what the portal's viewer keeps.
pub const MAX_TAIL_LINES: i64 = 100_000;
/// Furthest back `sinceSeconds` may reach: 30 days.
pub const MAX_SINCE_SECONDS: i64 = 30 * 24 * 3600;
/// How often a followed stream re-checks that its caller may still read it.
const RECHECK: Duration = Duration::from_secs(1);

/// The query of `GET .../pods/{pod}/logs`: the kubelet's parameters.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[into_params(parameter_in = Query, rename_all = "camelCase")]
pub struct LogQuery {
    /// The container; may be left out when the pod has one.
    #[param(max_length = 63, pattern = "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")]
    container: Option<String>,
    /// Only the last this many lines (0 to 100,000).
    #[param(minimum = 0, maximum = 100000)]
    tail_lines: Option<i64>,
    /// Only lines of the last this many seconds (1 to 2,592,000: 30 days).
    #[param(minimum = 1, maximum = 2592000)]
    since_seconds: Option<i64>,
    /// The previous run of the container, after a restart.
    previous: Option<bool>,
    /// Keep the answer open, sending lines as they come, until the client
    /// leaves or loses access.
    follow: Option<bool>,
}

impl LogQuery {
    /// The kubelet's parameters, or 400 naming each one out of range.
    fn params(&self) -> Result<LogParams, ApiError> {
        let mut errors = ValidationErrors::new();
        let container = self
            .container
            .as_deref()
            .and_then(|raw| errors.collect(ContainerName::parse("container", raw)));
        if let Some(tail) = self.tail_lines
            && !(0..=MAX_TAIL_LINES).contains(&tail)
        {
            errors.push(FieldError::new(
                "tailLines",
                format!("must be between 0 and {MAX_TAIL_LINES}"),
            ));
        }
        if let Some(since) = self.since_seconds
            && !(1..=MAX_SINCE_SECONDS).contains(&since)
        {
            errors.push(FieldError::new(
                "sinceSeconds",
                format!("must be between 1 and {MAX_SINCE_SECONDS} (30 days)"),
            ));
        }
        errors.finish(|| ())?;
        Ok(LogParams {
            container: container.map(|name| name.as_str().to_owned()),
            tail_lines: self.tail_lines,
            since_seconds: self.since_seconds,
            previous: self.previous.unwrap_or(false),
            follow: self.follow.unwrap_or(false),
            ..LogParams::default()
        })
    }
}

#[utoipa::path(get, operation_id = "environment_logs_get", path = "/api/v1/environments/{name}/pods/{pod}/logs", tag = "environments",
    params(("name" = String, Path), ("pod" = String, Path, max_length = 253), LogQuery),
    responses(
        (status = 200, description = "The container's log lines as the kubelet keeps them; with follow=true a stream that stays open, sending lines as they come, until the client leaves or the caller loses access", content_type = "text/plain"),
        (status = 400, description = "A parameter out of range, or a container the pod does not have (the details name it)", body = crate::error::ErrorBody),
        (status = 404, description = "The environment or the pod is absent or not visible", body = crate::error::ErrorBody),
        (status = 503, description = "The cluster is not reachable", body = crate::error::ErrorBody),
    ),
    security(("session" = []), ("token" = [])))]
pub async fn logs(
    State(state): State<AppState>,
    CurrentUser(caller): CurrentUser,
    Path((name, pod)): Path<(String, String)>,
    ApiQuery(query): ApiQuery<LogQuery>,
    headers: axum::http::HeaderMap,
) -> Result<Response, ApiError> {
    let params = query.params()?;
    // No pod can have another name ("..", "a/b"): as absent as a missing one.
    ObjectName::parse("pod", &pod).map_err(|_| ApiError::NotFound)?;
    let connection = state.cluster.connection().await?;
    let (env, _) = envs::visible(connection, &name, &caller).await?;
    if !owns_namespace(connection, &env).await? {
        return Err(ApiError::NotFound);
    }
    let pods: Api<Pod> = Api::namespaced(connection.client.clone(), &name);
    let reader = pods.log_stream(&pod, &params).await.map_err(|e| match e {
        // The apiserver says why: no such container, or the pod has
        // several and none was named.
        kube::Error::Api(status) if status.code == 400 => ApiError::validation(
            ValidationErrors::single("container", status.message.clone()),
        ),
        other => envs::kube_error(other),
    })?;
    let lines = reader.lines().map(|line| {
        line.map(|mut l| {
            l.push('\n');
            Bytes::from(l)
        })
    });
    let body = if params.follow {
        // Access is checked when the request starts; a followed stream
        // checks again every second, and ends once the caller's credential
        // is no longer valid (logout, a deleted token, disable) or they were
        // removed from the environment.
        let credential = crate::extract::credential(
            &axum::http::Method::GET,
            &headers,
            state.settings.secure_cookies,
        )?;
        let (state, mut user, env_name) = (state.clone(), caller.clone(), name.clone());
        let lost = async move {
            loop {
                tokio::time::sleep(RECHECK).await;
                let Some(now) = crate::extract::reauthenticate(&state, &credential, &user).await
                else {
                    return;
                };
                user = now;
                let visible = state
                    .cluster
                    .connected()
                    .is_some_and(|c| envs::visible_cached(c, &env_name, &user).is_ok());
                if !visible {
                    return;
                }
            }
        };
        Body::from_stream(lines.take_until(lost))
    } else {
        Body::from_stream(lines)
    };
    Ok((
        [
            (header::CONTENT_TYPE, "text/plain; charset=utf-8"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        body,
    )
        .into_response())
}
