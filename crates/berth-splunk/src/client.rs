//! The HEC client: one gzip-compressed batch per request on a channel of
//! its own, and indexer acknowledgement polling.

use crate::error::SplunkError;
use crate::event::{HecEvent, HecMetadata};
use flate2::Compression;
use flate2::write::GzEncoder;
use serde::Deserialize;
use std::collections::HashMap;
use std::fmt;
use std::io::Write;
use std::time::{Duration, Instant};

/// Where and how to send (`BERTH_SPLUNK_*`).
#[derive(Clone)]
pub struct HecConfig {
    /// The collector's base URL (`https://splunk:8088`); a URL ending in
    /// `/services/collector` or `/services/collector/event` is taken too.
    pub url: String,
    /// The HEC token; never logged.
    pub token: String,
    /// `None`: the token's default index.
    pub index: Option<String>,
    pub source: String,
    pub sourcetype: String,
    /// This replica's host name, the events' `host`.
    pub host: String,
}

/// Shows everything but the token.
impl fmt::Debug for HecConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HecConfig")
            .field("url", &self.url)
            .field("token", &"<redacted>")
            .field("index", &self.index)
            .field("source", &self.source)
            .field("sourcetype", &self.sourcetype)
            .field("host", &self.host)
            .finish()
    }
}

impl HecConfig {
    /// The metadata every event carries.
    pub fn metadata(&self) -> HecMetadata {
        HecMetadata {
            host: self.host.clone(),
            source: self.source.clone(),
            sourcetype: self.sourcetype.clone(),
            index: self.index.clone(),
        }
    }

    /// Checks the URL and the token; errors name the variable at fault.
    pub fn validate(&self) -> Result<(), SplunkError> {
        self.base_url()?;
        if self.token.trim().is_empty() {
            return Err(SplunkError::Config(
                "BERTH_SPLUNK_HEC_TOKEN: must be set with BERTH_SPLUNK_HEC_URL".into(),
            ));
        }
        Ok(())
    }

    /// The base URL without a trailing collector path; errors name
    /// `BERTH_SPLUNK_HEC_URL`.
    fn base_url(&self) -> Result<String, SplunkError> {
        let url = self.url.trim_end_matches('/');
        // Credentials in the URL would go out as Basic authentication
        // instead of the token, and be printed wherever the URL is.
        if reqwest::Url::parse(url)
            .is_ok_and(|u| !u.username().is_empty() || u.password().is_some())
        {
            return Err(SplunkError::Config(
                "BERTH_SPLUNK_HEC_URL: must not carry credentials (user:password@); HEC takes the token in BERTH_SPLUNK_HEC_TOKEN".into(),
            ));
        }
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            return Err(SplunkError::Config(format!(
                "BERTH_SPLUNK_HEC_URL: {url:?} must be an http:// or https:// URL, such as https://splunk:8088"
            )));
        }
        let base = url
            .strip_suffix("/services/collector/event")
            .or_else(|| url.strip_suffix("/services/collector"))
            .unwrap_or(url);
        Ok(base.to_owned())
    }
}

/// Sends batches to one collector.
#[derive(Clone)]
pub struct HecClient {
    http: reqwest::Client,
    event_url: String,
    ack_url: String,
    authorization: String,
    /// The `X-Splunk-Request-Channel` of this client: ack ids are per channel.
    channel: String,
}

/// HEC's answer body: `{"text": "Success", "code": 0}` and friends.
#[derive(Debug, Default, Deserialize)]
struct Answer {
    #[serde(default)]
    text: String,
    #[serde(default = "unknown_code")]
    code: i64,
    #[serde(rename = "ackId")]
    ack_id: Option<u64>,
    #[serde(rename = "invalid-event-number")]
    invalid_event: Option<usize>,
}

fn unknown_code() -> i64 {
    -1
}

#[derive(Debug, Deserialize)]
struct AckAnswer {
    acks: HashMap<String, bool>,
}

/// HEC's code for "ACK is disabled": the token has no indexer acknowledgement.
const ACK_DISABLED: i64 = 14;

impl HecClient {
    /// A client for `config` with its own channel; `timeout` bounds each request.
    pub fn new(config: &HecConfig, timeout: Duration) -> Result<Self, SplunkError> {
        config.validate()?;
        let base = config.base_url()?;
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(2).min(timeout))
            .timeout(timeout)
            .build()
            .map_err(|e| SplunkError::Config(format!("HEC client: {e}")))?;
        Ok(Self {
            http,
            event_url: format!("{base}/services/collector/event"),
            ack_url: format!("{base}/services/collector/ack"),
            authorization: format!("Splunk {}", config.token.trim()),
            channel: uuid::Uuid::new_v4().to_string(),
        })
    }

    /// Sends `events` as one gzip-compressed request of concatenated JSON
    /// objects. `Ok(Some(id))`: accepted, to be acknowledged as `id`;
    /// `Ok(None)`: accepted, and the token does not acknowledge.
    pub async fn send(&self, events: &[HecEvent]) -> Result<Option<u64>, SplunkError> {
        let mut body = GzEncoder::new(Vec::new(), Compression::fast());
        for event in events {
            serde_json::to_writer(&mut body, event)
                .map_err(|e| SplunkError::Config(format!("an event is not JSON: {e}")))?;
            body.write_all(b"\n")
                .map_err(|e| SplunkError::Config(e.to_string()))?;
        }
        let body = body
            .finish()
            .map_err(|e| SplunkError::Config(e.to_string()))?;
        let response = self
            .http
            .post(&self.event_url)
            .header("authorization", &self.authorization)
            .header("x-splunk-request-channel", &self.channel)
            .header("content-type", "application/json")
            .header("content-encoding", "gzip")
            .body(body)
            .send()
            .await
            .map_err(unreachable)?;
        let (status, answer) = answer(response).await?;
        if status == 200 && answer.code == 0 {
            return Ok(answer.ack_id);
        }
        Err(refusal(status, answer))
    }

    /// Whether HEC acknowledges `ack_id` yet: `Some(true)` once indexed,
    /// `None` when the token has acknowledgement disabled (the 200 counts).
    pub async fn acknowledged(&self, ack_id: u64) -> Result<Option<bool>, SplunkError> {
        let response = self
            .http
            .post(&self.ack_url)
            .query(&[("channel", &self.channel)])
            .header("authorization", &self.authorization)
            .header("x-splunk-request-channel", &self.channel)
            .json(&serde_json::json!({ "acks": [ack_id] }))
            .send()
            .await
            .map_err(unreachable)?;
        let status = response.status().as_u16();
        let bytes = response.bytes().await.map_err(unreachable)?;
        if status == 200 {
            let acks: AckAnswer =
                serde_json::from_slice(&bytes).map_err(|e| SplunkError::Server {
                    status,
                    code: -1,
                    text: format!("an acknowledgement that is not {{\"acks\": {{...}}}}: {e}"),
                })?;
            return Ok(Some(
                acks.acks.get(&ack_id.to_string()).copied().unwrap_or(false),
            ));
        }
        let answer: Answer = serde_json::from_slice(&bytes).unwrap_or_default();
        if answer.code == ACK_DISABLED {
            return Ok(None);
        }
        Err(refusal(status, answer))
    }

    /// Polls until `ack_id` is acknowledged (or acknowledgement turns out to
    /// be disabled), for at most `timeout`.
    pub async fn wait_for_ack(&self, ack_id: u64, timeout: Duration) -> Result<(), SplunkError> {
        let deadline = Instant::now() + timeout;
        let mut pause = Duration::from_millis(20);
        loop {
            if self.acknowledged(ack_id).await? != Some(false) {
                return Ok(());
            }
            if Instant::now() + pause > deadline {
                return Err(SplunkError::AckTimeout(ack_id));
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_secs(1));
        }
    }
}

fn unreachable(error: reqwest::Error) -> SplunkError {
    // reqwest's message names the URL, never the headers.
    SplunkError::Unreachable(format!("{error:#}"))
}

async fn answer(response: reqwest::Response) -> Result<(u16, Answer), SplunkError> {
    let status = response.status().as_u16();
    let bytes = response.bytes().await.map_err(unreachable)?;
    let answer = serde_json::from_slice(&bytes).unwrap_or_else(|_| Answer {
        text: String::from_utf8_lossy(&bytes).chars().take(200).collect(),
        code: -1,
        ..Answer::default()
    });
    Ok((status, answer))
}

fn refusal(status: u16, answer: Answer) -> SplunkError {
    let Answer {
        text,
        code,
        invalid_event,
        ..
    } = answer;
    match status {
        401 | 403 => SplunkError::Token { status, code, text },
        // HEC answers bad data with 400, and a body too large with 413; any
        // other status (a wrong path's 404, 429) says nothing of the events,
        // so they are kept and sent again rather than set aside.
        400 | 413 => SplunkError::Data {
            status,
            code,
            text,
            invalid_event,
        },
        _ => SplunkError::Server { status, code, text },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(url: &str) -> HecConfig {
        HecConfig {
            url: url.into(),
            token: "secret-token".into(),
            index: None,
            source: "berth".into(),
            sourcetype: "_json".into(),
            host: "h".into(),
        }
    }

    #[test]
    fn the_url_may_name_the_collector_and_the_token_is_never_shown() {
        for url in [
            "https://splunk:8088",
            "https://splunk:8088/",
            "https://splunk:8088/services/collector",
            "https://splunk:8088/services/collector/event",
        ] {
            let client = HecClient::new(&config(url), Duration::from_secs(1)).unwrap();
            assert_eq!(
                client.event_url,
                "https://splunk:8088/services/collector/event"
            );
            assert_eq!(client.ack_url, "https://splunk:8088/services/collector/ack");
        }
        let error = HecClient::new(&config("splunk:8088"), Duration::from_secs(1)).err();
        assert!(error.unwrap().to_string().contains("BERTH_SPLUNK_HEC_URL"));
        assert!(!format!("{:?}", config("https://s")).contains("secret-token"));
    }
}
