use thiserror::Error;

/// What went wrong talking to HEC or the outbox. The token is never part of
/// a message.
#[derive(Debug, Error)]
pub enum SplunkError {
    /// A setting is missing or malformed; the message names it.
    #[error("{0}")]
    Config(String),
    /// No answer: connection refused, reset, or timed out. Retried.
    #[error("HEC unreachable: {0}")]
    Unreachable(String),
    /// HEC answered 5xx (503 "Server is busy" included), or a 4xx that says
    /// nothing of the events (a wrong path's 404, 429). Retried.
    #[error("HEC answered {status}: {text} (code {code})")]
    Server {
        status: u16,
        code: i64,
        text: String,
    },
    /// HEC refused the token (401/403, codes 1 to 4). Retried, as a token
    /// can be fixed on the Splunk side; nothing is dropped meanwhile.
    #[error("HEC refused the token with {status}: {text} (code {code})")]
    Token {
        status: u16,
        code: i64,
        text: String,
    },
    /// HEC refused the data (400, or 413 for a batch too large).
    /// `invalid_event` is the index of the first
    /// event it refused, when it said; the events before it were accepted.
    #[error("HEC refused the data with {status}: {text} (code {code})")]
    Data {
        status: u16,
        code: i64,
        text: String,
        invalid_event: Option<usize>,
    },
    /// HEC accepted a batch but did not acknowledge it in time; it is sent again.
    #[error("HEC did not acknowledge ack id {0} in time")]
    AckTimeout(u64),
    #[error("outbox: {0}")]
    Store(#[from] berth_store::StoreError),
}
