//! What a command can come to besides success, and the exit code each gives:
//! scripts rely on these (0 ok, 1 error, 2 usage, 3 not found, 4 pending
//! approval).

use std::fmt;

pub const EXIT_OK: i32 = 0;
pub const EXIT_ERROR: i32 = 1;
pub const EXIT_USAGE: i32 = 2;
pub const EXIT_NOT_FOUND: i32 = 3;
pub const EXIT_PENDING: i32 = 4;

#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// The command line or its input is wrong before anything was sent.
    #[error("{0}")]
    Usage(String),
    /// The server answered with an error (its message and each field's).
    #[error("{0}")]
    Api(ApiFailure),
    /// The server was not reached, or what answered is not Berth's API.
    #[error("{0}")]
    Unreachable(String),
    /// Anything else that went wrong (files, the editor, a Degraded
    /// environment, a wait that timed out).
    #[error("{0}")]
    Failed(String),
    /// What was asked waits for an admin's approval.
    #[error("{0}")]
    PendingApproval(String),
}

impl CliError {
    pub fn exit_code(&self) -> i32 {
        match self {
            CliError::Usage(_) => EXIT_USAGE,
            CliError::Api(failure) if failure.status == 404 => EXIT_NOT_FOUND,
            CliError::PendingApproval(_) => EXIT_PENDING,
            CliError::Api(_) | CliError::Unreachable(_) | CliError::Failed(_) => EXIT_ERROR,
        }
    }

    pub fn is_not_found(&self) -> bool {
        matches!(self, CliError::Api(f) if f.status == 404)
    }
}

/// An error answer of the API: `{"error": {code, message, details}}`.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiFailure {
    pub status: u16,
    pub code: String,
    pub message: String,
    /// `(field, message)` for each field the server named.
    pub details: Vec<(String, String)>,
}

impl ApiFailure {
    /// Reads the contract's error shape; `None` when `body` is not one (the
    /// URL is likely not a Berth server, or a proxy answered).
    pub fn parse(status: u16, body: &[u8]) -> Option<Self> {
        let value: serde_json::Value = serde_json::from_slice(body).ok()?;
        let error = value.get("error")?;
        let text = |v: &serde_json::Value, key: &str| {
            v.get(key)
                .and_then(|s| s.as_str())
                .unwrap_or_default()
                .to_owned()
        };
        let details = error
            .get("details")
            .and_then(|d| d.as_array())
            .map(|details| {
                details
                    .iter()
                    .map(|d| (text(d, "field"), text(d, "message")))
                    .collect()
            })
            .unwrap_or_default();
        Some(Self {
            status,
            code: text(error, "code"),
            message: text(error, "message"),
            details,
        })
    }
}

impl fmt::Display for ApiFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let message = if self.message.is_empty() {
            self.code.as_str()
        } else {
            self.message.as_str()
        };
        write!(f, "{message}")?;
        if self.code == "unauthenticated" {
            write!(
                f,
                " (the token is missing, expired or revoked: run `berth login`)"
            )?;
        }
        for (field, message) in &self.details {
            if field.is_empty() {
                write!(f, "\n  {message}")?;
            } else {
                write!(f, "\n  {field}: {message}")?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn field_details_are_each_printed() {
        let body = br#"{"error":{"code":"validation_failed","message":"the request is invalid","details":[{"field":"quota.cpu","message":"must be a CPU quantity such as 500m or 2"},{"field":"name","message":"must be 3 to 40 characters"}]}}"#;
        let failure = ApiFailure::parse(400, body).unwrap();
        let error = CliError::Api(failure);
        assert_eq!(error.exit_code(), EXIT_ERROR);
        assert_eq!(
            error.to_string(),
            "the request is invalid\n  quota.cpu: must be a CPU quantity such as 500m or 2\n  name: must be 3 to 40 characters"
        );
    }

    #[test]
    fn exit_codes_scripts_rely_on() {
        let not_found = ApiFailure::parse(
            404,
            br#"{"error":{"code":"not_found","message":"no such environment"}}"#,
        )
        .unwrap();
        assert_eq!(CliError::Api(not_found).exit_code(), EXIT_NOT_FOUND);
        assert_eq!(CliError::Usage("x".into()).exit_code(), EXIT_USAGE);
        assert_eq!(
            CliError::PendingApproval("x".into()).exit_code(),
            EXIT_PENDING
        );
        assert_eq!(CliError::Unreachable("x".into()).exit_code(), EXIT_ERROR);
        assert!(ApiFailure::parse(404, b"<html>nginx</html>").is_none());
        assert!(ApiFailure::parse(200, br#"{"items":[]}"#).is_none());
    }
}
