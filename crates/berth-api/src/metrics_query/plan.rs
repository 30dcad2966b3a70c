//! What a tenant's metrics request becomes before it reaches Prometheus: its
//! parameters read as Prometheus' HTTP API reads them, held to the limits
//! that protect Prometheus, and every selector confined to the environment's
//! namespace. Pure: the caller sends the plan.

use crate::error::ApiError;
use berth_core::validation::ValidationErrors;
use std::time::Duration;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// Longest query (and `match[]` selector) accepted, in bytes.
pub const MAX_QUERY_BYTES: usize = 4096;
/// Widest time range a range query, a series or a label look-up may span.
pub const MAX_RANGE: Duration = Duration::from_secs(31 * 24 * 3600);
/// Most points one series of a range query may have: `(end - start) / step + 1`.
pub const MAX_POINTS: f64 = 11_000.0;
/// Longest Prometheus may evaluate; also what a request without `timeout` gets.
pub const MAX_TIMEOUT: Duration = Duration::from_secs(30);
/// Most `match[]` selectors in one request.
pub const MAX_MATCHERS: usize = 20;

/// The Prometheus HTTP API operation a request maps to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    /// `/api/v1/query`: `query`, `time?`, `timeout?`.
    Query,
    /// `/api/v1/query_range`: `query`, `start`, `end`, `step`, `timeout?`.
    QueryRange,
    /// `/api/v1/series`: `match[]` (one or more), `start?`, `end?`.
    Series,
    /// `/api/v1/labels`: `match[]*`, `start?`, `end?`.
    Labels,
    /// `/api/v1/label/<label>/values`: `match[]*`, `start?`, `end?`.
    LabelValues(String),
}

impl Endpoint {
    /// Its path under Prometheus' base URL.
    fn path(&self) -> String {
        match self {
            Self::Query => "api/v1/query".to_owned(),
            Self::QueryRange => "api/v1/query_range".to_owned(),
            Self::Series => "api/v1/series".to_owned(),
            Self::Labels => "api/v1/labels".to_owned(),
            Self::LabelValues(label) => format!("api/v1/label/{label}/values"),
        }
    }

    fn parameters(&self) -> &'static [&'static str] {
        match self {
            Self::Query => &["query", "time", "timeout"],
            Self::QueryRange => &["query", "start", "end", "step", "timeout"],
            Self::Series | Self::Labels | Self::LabelValues(_) => &["match[]", "start", "end"],
        }
    }
}

/// A request for Prometheus: its path under the base URL and its parameters,
/// confined and checked.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    /// E.g. `api/v1/query_range`.
    pub path: String,
    pub params: Vec<(&'static str, String)>,
    /// How long Prometheus may take.
    pub timeout: Duration,
}

/// The plan for `endpoint` with the raw query string `query_string`, confined
/// to `namespace`, as of `now`. Every refusal is a 400 naming the parameter.
pub fn plan(
    endpoint: &Endpoint,
    namespace: &str,
    query_string: &str,
    now: OffsetDateTime,
) -> Result<Plan, ApiError> {
    if let Endpoint::LabelValues(label) = endpoint
        && !is_label_name(label)
    {
        return Err(invalid(
            "label",
            "must be a label name: letters, digits and underscores, not starting with a digit",
        ));
    }
    let raw = Raw::parse(endpoint, query_string)?;
    let now = now.unix_timestamp_nanos() as f64 / 1e9;
    let mut params = Vec::new();
    let mut timeout = MAX_TIMEOUT;
    let path = match endpoint {
        Endpoint::Query | Endpoint::QueryRange => {
            let query = raw
                .single("query")?
                .ok_or_else(|| invalid("query", "is required"))?;
            params.push(("query", confine(&query, namespace, "query")?));
            if let Some(asked) = raw.single("timeout")? {
                timeout = duration("timeout", &asked)?;
                if timeout > MAX_TIMEOUT {
                    return Err(invalid(
                        "timeout",
                        format!("must be at most {}s", MAX_TIMEOUT.as_secs()),
                    ));
                }
            }
            // Seconds, which Prometheus reads with a fraction too (its
            // durations, `1m30s`, take none).
            params.push(("timeout", timeout.as_secs_f64().to_string()));
            if *endpoint == Endpoint::Query {
                if let Some(at) = raw.single("time")? {
                    timestamp("time", &at)?;
                    params.push(("time", at));
                }
                endpoint.path()
            } else {
                let (start, end) = range(&raw, now, true)?;
                let step = raw
                    .single("step")?
                    .ok_or_else(|| invalid("step", "is required"))?;
                let step_seconds = duration("step", &step)?.as_secs_f64();
                let points = ((end.1 - start.1) / step_seconds).floor() + 1.0;
                if points > MAX_POINTS {
                    return Err(invalid(
                        "step",
                        format!(
                            "is too small for the range: it would make {points} points per series, at most {MAX_POINTS} are allowed; use a step of at least {}s",
                            ((end.1 - start.1) / (MAX_POINTS - 1.0)).ceil()
                        ),
                    ));
                }
                params.extend([("start", start.0), ("end", end.0), ("step", step)]);
                endpoint.path()
            }
        }
        Endpoint::Series | Endpoint::Labels | Endpoint::LabelValues(_) => {
            let selectors = raw.all("match[]");
            if selectors.is_empty() && *endpoint == Endpoint::Series {
                return Err(invalid(
                    "match[]",
                    "at least one series selector is required",
                ));
            }
            if selectors.len() > MAX_MATCHERS {
                return Err(invalid(
                    "match[]",
                    format!("at most {MAX_MATCHERS} selectors are allowed"),
                ));
            }
            for selector in selectors {
                params.push(("match[]", confine_selector(selector, namespace)?));
            }
            if params.is_empty() {
                // Without a selector Prometheus would answer for every series.
                params.push(("match[]", berth_promql::namespace_selector(namespace)));
            }
            let (start, end) = range(&raw, now, false)?;
            params.extend([("start", start.0), ("end", end.0)]);
            endpoint.path()
        }
    };
    Ok(Plan {
        path,
        params,
        timeout,
    })
}

/// The query string's parameters, each known to the endpoint.
struct Raw(Vec<(String, String)>);

impl Raw {
    fn parse(endpoint: &Endpoint, query_string: &str) -> Result<Self, ApiError> {
        crate::query::refuse_nul(query_string)?;
        let pairs: Vec<(String, String)> = form_urlencoded::parse(query_string.as_bytes())
            .into_owned()
            .collect();
        if let Some((unknown, _)) = pairs
            .iter()
            .find(|(name, _)| !endpoint.parameters().contains(&name.as_str()))
        {
            return Err(invalid(
                unknown.clone(),
                format!(
                    "is not a parameter of this operation (it takes {})",
                    endpoint.parameters().join(", ")
                ),
            ));
        }
        Ok(Self(pairs))
    }

    /// The one value of `name`, if given; given twice is an error.
    fn single(&self, name: &'static str) -> Result<Option<String>, ApiError> {
        let mut values = self.all(name).into_iter();
        let first = values.next().map(str::to_owned);
        if values.next().is_some() {
            return Err(invalid(name, "is given more than once"));
        }
        Ok(first)
    }

    fn all(&self, name: &str) -> Vec<&str> {
        self.0
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
            .collect()
    }
}

/// A time as given, and as Unix seconds.
type Bound = (String, f64);

/// `start` and `end`: required for a range query; elsewhere `end` defaults
/// to now and `start` to the widest range before it.
fn range(raw: &Raw, now: f64, required: bool) -> Result<(Bound, Bound), ApiError> {
    let given = |name: &'static str| -> Result<Option<Bound>, ApiError> {
        match raw.single(name)? {
            Some(text) => {
                let at = timestamp(name, &text)?;
                Ok(Some((text, at)))
            }
            None if required => Err(invalid(name, "is required")),
            None => Ok(None),
        }
    };
    let end = given("end")?.unwrap_or_else(|| (format_seconds(now), now));
    let start = match given("start")? {
        Some(start) => start,
        None => {
            let at = end.1 - MAX_RANGE.as_secs_f64();
            (format_seconds(at), at)
        }
    };
    if end.1 < start.1 {
        return Err(invalid("end", "must not be before start"));
    }
    if end.1 - start.1 > MAX_RANGE.as_secs_f64() {
        return Err(invalid(
            "start",
            format!(
                "is too far before end: a range spans at most {} days",
                MAX_RANGE.as_secs() / 86_400
            ),
        ));
    }
    Ok((start, end))
}

fn format_seconds(seconds: f64) -> String {
    format!("{seconds:.3}")
}

/// A time as Prometheus reads it: RFC 3339, or Unix seconds with an optional fraction.
fn timestamp(name: &'static str, text: &str) -> Result<f64, ApiError> {
    if let Ok(seconds) = text.parse::<f64>()
        && seconds.is_finite()
    {
        return Ok(seconds);
    }
    OffsetDateTime::parse(text, &Rfc3339)
        .map(|t| t.unix_timestamp_nanos() as f64 / 1e9)
        .map_err(|_| {
            invalid(
                name,
                "must be an RFC 3339 time or Unix seconds, e.g. 2026-01-31T12:00:00Z or 1769860800",
            )
        })
}

/// A duration as Prometheus reads it: seconds (`15`, `0.5`) or PromQL (`1m30s`); positive.
fn duration(name: &'static str, text: &str) -> Result<Duration, ApiError> {
    let parsed = match text.parse::<f64>() {
        Ok(seconds) if seconds.is_finite() && seconds > 0.0 && seconds < 1e12 => {
            Some(Duration::from_secs_f64(seconds))
        }
        Ok(_) => None,
        Err(_) => berth_promql::parse_duration(text).ok(),
    };
    parsed.filter(|d| !d.is_zero()).ok_or_else(|| {
        invalid(
            name,
            "must be a positive duration: seconds such as 15 or 0.5, or 30s, 1m, 1h30m",
        )
    })
}

fn confine(query: &str, namespace: &str, field: &'static str) -> Result<String, ApiError> {
    if query.len() > MAX_QUERY_BYTES {
        return Err(invalid(
            field,
            format!("is longer than {MAX_QUERY_BYTES} bytes"),
        ));
    }
    berth_promql::confine(query, namespace).map_err(|e| invalid(field, e.to_string()))
}

fn confine_selector(selector: &str, namespace: &str) -> Result<String, ApiError> {
    if selector.len() > MAX_QUERY_BYTES {
        return Err(invalid(
            "match[]",
            format!("is longer than {MAX_QUERY_BYTES} bytes"),
        ));
    }
    berth_promql::confine_selector(selector, namespace)
        .map_err(|e| invalid("match[]", e.to_string()))
}

/// Prometheus' label names: `[a-zA-Z_][a-zA-Z0-9_]*`.
fn is_label_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

pub(super) fn invalid(field: impl Into<String>, message: impl Into<String>) -> ApiError {
    ApiError::validation(ValidationErrors::single(field, message))
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    const NOW: OffsetDateTime = datetime!(2026-11-30 12:00 UTC);

    fn refused(endpoint: Endpoint, query: &str) -> (String, String) {
        match plan(&endpoint, "team-a", query, NOW) {
            Err(ApiError::Validation { details, .. }) => {
                (details[0].field.clone(), details[0].message.clone())
            }
            other => panic!("{query}: {other:?}"),
        }
    }

    fn param<'a>(plan: &'a Plan, name: &str) -> Vec<&'a str> {
        plan.params
            .iter()
            .filter(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    #[test]
    fn an_instant_query_is_confined_and_bounded_in_time() {
        let plan = plan(&Endpoint::Query, "team-a", "query=up&time=1769860800", NOW).unwrap();
        assert_eq!(plan.path, "api/v1/query");
        assert_eq!(param(&plan, "query"), [r#"up{namespace="team-a"}"#]);
        assert_eq!(param(&plan, "time"), ["1769860800"]);
        assert_eq!(param(&plan, "timeout"), ["30"]);
        assert_eq!(plan.timeout, MAX_TIMEOUT);
    }

    #[test]
    fn a_range_query_has_at_most_11000_points() {
        let ok = plan(
            &Endpoint::QueryRange,
            "team-a",
            "query=up&start=0&end=10999&step=1&timeout=5s",
            NOW,
        )
        .unwrap();
        assert_eq!(ok.timeout, Duration::from_secs(5));
        assert_eq!(param(&ok, "timeout"), ["5"]);
        assert_eq!(param(&ok, "step"), ["1"]);
        let (field, message) = refused(Endpoint::QueryRange, "query=up&start=0&end=11000&step=1");
        assert_eq!(field, "step");
        assert!(message.contains("11001 points"), "{message}");
        assert!(
            plan(
                &Endpoint::QueryRange,
                "team-a",
                "query=up&start=2026-11-29T12:00:00Z&end=2026-11-30T12:00:00Z&step=1m",
                NOW
            )
            .is_ok()
        );
    }

    #[test]
    fn each_refusal_names_its_parameter() {
        let long = format!("query={}", "a".repeat(MAX_QUERY_BYTES + 1));
        for (endpoint, query, field) in [
            (Endpoint::Query, "", "query"),
            (Endpoint::Query, long.as_str(), "query"),
            (Endpoint::Query, "query=up{namespace=\"b\"}", "query"),
            (Endpoint::Query, "query=sum(", "query"),
            (Endpoint::Query, "query=up&time=yesterday", "time"),
            (Endpoint::Query, "query=up&timeout=31s", "timeout"),
            (Endpoint::Query, "query=up&timeout=-1", "timeout"),
            (Endpoint::Query, "query=up&query=down", "query"),
            (Endpoint::Query, "query=up&step=1", "step"),
            (Endpoint::Query, "query=up%00", "query"),
            (Endpoint::QueryRange, "query=up&end=1&step=1", "start"),
            (Endpoint::QueryRange, "query=up&start=1&step=1", "end"),
            (Endpoint::QueryRange, "query=up&start=1&end=2", "step"),
            (Endpoint::QueryRange, "query=up&start=2&end=1&step=1", "end"),
            (
                Endpoint::QueryRange,
                "query=up&start=0&end=2700000&step=1h",
                "start",
            ),
            (
                Endpoint::QueryRange,
                "query=up&start=0&end=1&step=0",
                "step",
            ),
            (Endpoint::Series, "", "match[]"),
            (Endpoint::Series, "match[]=rate(up[5m])", "match[]"),
            (Endpoint::Labels, "match[]=up{namespace=~\".*\"}", "match[]"),
            (Endpoint::LabelValues("1abc".into()), "", "label"),
            (Endpoint::Labels, "start=nope", "start"),
        ] {
            assert_eq!(refused(endpoint, query).0, field, "{query}");
        }
    }

    #[test]
    fn series_and_labels_are_confined_with_or_without_selectors() {
        let labels = plan(&Endpoint::Labels, "team-a", "", NOW).unwrap();
        assert_eq!(param(&labels, "match[]"), [r#"{namespace="team-a"}"#]);
        assert_eq!(param(&labels, "end"), ["1796040000.000"]);
        let values = plan(
            &Endpoint::LabelValues("pod".into()),
            "team-a",
            "match[]=up&match[]=kube_pod_info",
            NOW,
        )
        .unwrap();
        assert_eq!(values.path, "api/v1/label/pod/values");
        assert_eq!(
            param(&values, "match[]"),
            [
                r#"up{namespace="team-a"}"#,
                r#"kube_pod_info{namespace="team-a"}"#
            ]
        );
    }
}
