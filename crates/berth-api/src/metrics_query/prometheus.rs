//! The HTTP client to Prometheus: sends a plan, passes a success through
//! untouched and turns everything else into the contract's errors.

use super::plan::{Plan, invalid};
use crate::error::ApiError;
use axum::body::Bytes;
use serde::Deserialize;
use std::time::Duration;

/// How long past the query's own timeout Berth waits for Prometheus' answer.
const ANSWER_MARGIN: Duration = Duration::from_secs(5);
/// How long to wait for a connection to Prometheus.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// What `Retry-After` says when Prometheus cannot be reached.
const RETRY_AFTER: Duration = Duration::from_secs(10);

/// A Prometheus (or anything serving its HTTP query API) at a base URL.
#[derive(Clone)]
pub struct Prometheus {
    base: String,
    client: reqwest::Client,
}

/// Prometheus' error answer: `{"status":"error","errorType":"bad_data","error":"..."}`.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ErrorAnswer {
    error_type: String,
    error: String,
}

impl Prometheus {
    /// A client of the Prometheus at `base` (e.g. `http://127.0.0.1:9090`,
    /// or with a path prefix such as `https://mimir.example/prometheus`).
    /// `Err` says, naming `BERTH_PROMETHEUS_URL`, why `base` is no
    /// Prometheus URL (checked at start: a garbage URL would otherwise make
    /// every query answer "not reachable").
    pub fn new(base: &str) -> Result<Self, String> {
        match reqwest::Url::parse(base) {
            Ok(url) if matches!(url.scheme(), "http" | "https") && url.has_host() => {}
            _ => {
                return Err(
                    "BERTH_PROMETHEUS_URL: must be an http:// or https:// URL, such as http://127.0.0.1:9090"
                        .into(),
                );
            }
        }
        let client = reqwest::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .build()
            .map_err(|e| format!("cannot build the Prometheus client: {e}"))?;
        Ok(Self {
            base: base.trim_end_matches('/').to_owned(),
            client,
        })
    }

    /// Prometheus' JSON answer to `plan`, as it sent it.
    pub async fn send(&self, plan: &Plan) -> Result<Bytes, ApiError> {
        let url = format!("{}/{}", self.base, plan.path);
        let response = self
            .client
            .get(&url)
            .query(&plan.params)
            .timeout(plan.timeout + ANSWER_MARGIN)
            .send()
            .await
            .map_err(|e| unavailable(&e))?;
        let status = response.status();
        let body = response.bytes().await.map_err(|e| unavailable(&e))?;
        if status.is_success() {
            return Ok(body);
        }
        match serde_json::from_slice::<ErrorAnswer>(&body) {
            // A query Prometheus cannot run: the tenant's to fix.
            Ok(answer) if matches!(answer.error_type.as_str(), "bad_data" | "execution") => {
                Err(invalid(
                    field_of(plan),
                    format!("Prometheus refused it: {}", answer.error),
                ))
            }
            Ok(answer) if answer.error_type == "timeout" => Err(invalid(
                "timeout",
                format!(
                    "the query did not finish within {}s; ask for less (a narrower selector, a shorter range, a larger step)",
                    plan.timeout.as_secs_f64()
                ),
            )),
            _ => Err(unavailable(&format!(
                "it answered {status}: {}",
                String::from_utf8_lossy(&body)
                    .chars()
                    .take(200)
                    .collect::<String>()
            ))),
        }
    }
}

/// The parameter a refusal from Prometheus is about.
fn field_of(plan: &Plan) -> &'static str {
    if plan.params.iter().any(|(name, _)| *name == "query") {
        "query"
    } else {
        "match[]"
    }
}

/// 503 naming Prometheus; the cause goes to the log, not to the client.
pub fn unavailable(cause: &dyn std::fmt::Display) -> ApiError {
    ApiError::Unavailable {
        message: "Prometheus is not reachable; metrics are unavailable for now".into(),
        details: vec![],
        retry_after: RETRY_AFTER,
    }
    .logged(cause)
}

/// 503 when Berth has no Prometheus to ask.
pub fn not_configured() -> ApiError {
    ApiError::Unavailable {
        message: "no Prometheus is configured (BERTH_PROMETHEUS_URL), so metrics are unavailable"
            .into(),
        details: vec![],
        retry_after: RETRY_AFTER,
    }
}

#[cfg(test)]
mod tests {
    use super::Prometheus;

    #[test]
    fn only_http_urls_with_a_host_name_a_prometheus() {
        for good in ["http://127.0.0.1:9090", "https://mimir.example/prometheus/"] {
            assert!(Prometheus::new(good).is_ok(), "{good}");
        }
        for bad in ["not a url", "127.0.0.1:9090", "file:///tmp/x", "http://"] {
            let error = Prometheus::new(bad).err().expect(bad);
            assert!(error.contains("BERTH_PROMETHEUS_URL"), "{bad}: {error}");
        }
    }
}
