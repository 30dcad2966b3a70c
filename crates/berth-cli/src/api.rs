//! The one HTTP client of the CLI: a Berth server's base URL and a bearer
//! token. Every answer goes through [`Api::send`], which turns what went wrong
//! into a [`CliError`] a person can act on: the server's message and each
//! field it named, or plainly that the URL is unreachable or not Berth's.

use crate::error::{ApiFailure, CliError};
use reqwest::header::{CONTENT_TYPE, HeaderMap, HeaderValue, RETRY_AFTER};
use reqwest::{Method, RequestBuilder, Response, StatusCode, Url};
use serde_json::Value;
use std::time::Duration;

/// How long one ordinary request may take, connecting included.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Tries of a request that is safe to repeat, when the server could not be
/// reached or said it is busy (503, 429).
const TRIES: u32 = 3;

#[derive(Clone)]
pub struct Api {
    http: reqwest::Client,
    base: String,
    token: Option<String>,
}

/// A successful answer, read whole.
pub struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

impl Answer {
    pub fn json(&self) -> Result<Value, CliError> {
        serde_json::from_slice(&self.body).map_err(|_| {
            CliError::Unreachable(format!(
                "the server answered {} with something that is not JSON: is the URL a Berth server?",
                self.status
            ))
        })
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// The base URL a person typed, made whole: `https://` when no scheme was
/// given, no trailing slash. Refuses what is not an http(s) URL.
pub fn normalize_server(input: &str) -> Result<String, CliError> {
    let input = input.trim();
    let with_scheme = if input.contains("://") {
        input.to_owned()
    } else {
        format!("https://{input}")
    };
    let url = Url::parse(&with_scheme)
        .map_err(|e| CliError::Usage(format!("{input:?} is not a URL: {e}")))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(CliError::Usage(format!(
            "{input:?} is not an http:// or https:// URL of a Berth server"
        )));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(CliError::Usage(format!(
            "{input:?}: give the server's base URL, without a query or fragment"
        )));
    }
    Ok(url.as_str().trim_end_matches('/').to_owned())
}

impl Api {
    pub fn new(server: &str, token: Option<String>) -> Result<Self, CliError> {
        Self::build(server, token, false)
    }

    /// A client that keeps cookies: for a password login, whose session
    /// then makes a personal access token.
    pub fn with_cookies(server: &str) -> Result<Self, CliError> {
        Self::build(server, None, true)
    }

    fn build(server: &str, token: Option<String>, cookies: bool) -> Result<Self, CliError> {
        let base = normalize_server(server)?;
        let http = reqwest::Client::builder()
            .user_agent(concat!("berth-cli/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(CONNECT_TIMEOUT)
            .cookie_store(cookies)
            .build()
            .map_err(|e| CliError::Failed(format!("cannot make an HTTP client: {e}")))?;
        Ok(Self { http, base, token })
    }

    pub fn base(&self) -> &str {
        &self.base
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// A request to `path` (which starts with `/`), with the token if any.
    pub fn request(&self, method: Method, path: &str) -> RequestBuilder {
        let request = self.http.request(method, self.url(path));
        match &self.token {
            Some(token) => request.bearer_auth(token),
            None => request,
        }
    }

    /// Sends `request` and reads the answer whole; a request that `retry`
    /// allows is tried again when the server was not reached or was busy.
    pub async fn send(&self, request: RequestBuilder, retry: bool) -> Result<Answer, CliError> {
        let tries = if retry { TRIES } else { 1 };
        let mut attempt = 0;
        loop {
            attempt += 1;
            let this = request
                .try_clone()
                .expect("the CLI's requests have bodies in memory")
                .timeout(REQUEST_TIMEOUT);
            let outcome = match this.send().await {
                Ok(response) => {
                    let busy = matches!(
                        response.status(),
                        StatusCode::SERVICE_UNAVAILABLE | StatusCode::TOO_MANY_REQUESTS
                    );
                    if busy && attempt < tries {
                        let wait =
                            retry_after(response.headers()).unwrap_or(Duration::from_secs(1));
                        tokio::time::sleep(wait.min(Duration::from_secs(10))).await;
                        continue;
                    }
                    read(response).await
                }
                Err(error) => Err(self.transport_error(&error)),
            };
            match outcome {
                Err(CliError::Unreachable(_)) if attempt < tries => {
                    tokio::time::sleep(Duration::from_millis(500 * u64::from(attempt))).await;
                }
                outcome => return outcome,
            }
        }
    }

    /// Sends `request` and returns the response as it starts (a stream
    /// such as followed logs), or the error it answered.
    pub async fn open(&self, request: RequestBuilder) -> Result<Response, CliError> {
        let response = request.send().await.map_err(|e| self.transport_error(&e))?;
        if response.status().is_success() {
            return Ok(response);
        }
        let (status, url, headers) = (
            response.status(),
            response.url().clone(),
            response.headers().clone(),
        );
        let body = response.bytes().await.unwrap_or_default();
        Err(failure(status, &url, &headers, &body))
    }

    pub async fn get(&self, path: &str) -> Result<Value, CliError> {
        self.send(self.request(Method::GET, path), true)
            .await?
            .json()
    }

    /// `method path` with `body` as JSON (not retried unless `retry`).
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
        retry: bool,
    ) -> Result<Answer, CliError> {
        let request = self.request(method, path);
        let request = match body {
            Some(body) => request.json(body),
            None => request,
        };
        self.send(request, retry).await
    }

    /// Says plainly why the server was not reached.
    fn transport_error(&self, error: &reqwest::Error) -> CliError {
        let cause = root_cause(error);
        let what = if error.is_timeout() {
            "timed out".to_owned()
        } else if error.is_connect() {
            format!("could not connect ({cause})")
        } else {
            cause
        };
        CliError::Unreachable(format!(
            "cannot reach the Berth server at {}: {what}",
            self.base
        ))
    }
}

/// The answer read whole: success as it is, an error as the server's
/// message, or plainly not Berth.
async fn read(response: Response) -> Result<Answer, CliError> {
    let status = response.status();
    let url = response.url().clone();
    let headers = response.headers().clone();
    let body = response
        .bytes()
        .await
        .map_err(|e| {
            CliError::Unreachable(format!(
                "the answer from {url} broke off: {}",
                root_cause(&e)
            ))
        })?
        .to_vec();
    if status.is_success() {
        return Ok(Answer {
            status,
            headers,
            body,
        });
    }
    Err(failure(status, &url, &headers, &body))
}

/// The error an answer of `status` means: the server's own, or plainly
/// that what answered is not Berth's API.
fn failure(status: StatusCode, url: &Url, headers: &HeaderMap, body: &[u8]) -> CliError {
    match ApiFailure::parse(status.as_u16(), body) {
        Some(failure) => CliError::Api(failure),
        None => {
            let kind = headers
                .get(CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("no content type");
            CliError::Unreachable(format!(
                "{} answered {status} ({kind}), which is not an answer of Berth's API: is the URL the Berth server's?",
                origin(url)
            ))
        }
    }
}

fn origin(url: &Url) -> String {
    url.origin().ascii_serialization()
}

fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    headers
        .get(RETRY_AFTER)
        .and_then(|v: &HeaderValue| v.to_str().ok())
        .and_then(|v| v.trim().parse().ok())
        .map(Duration::from_secs)
}

/// The innermost cause of an error: "Connection refused", "dns error: ...".
fn root_cause(error: &(dyn std::error::Error + 'static)) -> String {
    let mut cause = error;
    while let Some(inner) = cause.source() {
        cause = inner;
    }
    cause.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn servers_are_normalized_and_nonsense_refused() {
        assert_eq!(
            normalize_server("berth.example.com/").unwrap(),
            "https://berth.example.com"
        );
        assert_eq!(
            normalize_server("http://127.0.0.1:8080").unwrap(),
            "http://127.0.0.1:8080"
        );
        assert_eq!(
            normalize_server("https://example.com/berth/").unwrap(),
            "https://example.com/berth"
        );
        for bad in [
            "ftp://example.com",
            "http://",
            "https://x.example/?a=b",
            "::",
        ] {
            assert!(
                matches!(normalize_server(bad), Err(CliError::Usage(_))),
                "{bad}"
            );
        }
    }

    #[tokio::test]
    async fn an_unreachable_server_is_said_plainly() {
        // A port nothing listens on: bind one, then let it go.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let api = Api::new(&format!("http://127.0.0.1:{port}"), None).unwrap();
        let error = api.get("/api/v1/me").await.unwrap_err();
        assert!(matches!(error, CliError::Unreachable(_)), "{error:?}");
        let message = error.to_string();
        assert!(
            message.contains(&format!(
                "cannot reach the Berth server at http://127.0.0.1:{port}"
            )),
            "{message}"
        );
        assert!(message.contains("refused"), "{message}");
    }
}
