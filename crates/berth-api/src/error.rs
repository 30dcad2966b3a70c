//! The one mapping from everything that can go wrong to an HTTP answer.
//! Internal causes are logged here and never sent to the client.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use berth_auth::AuthError;
use berth_core::validation::{FieldError, ValidationErrors};
use berth_store::StoreError;
use serde::Serialize;
use std::time::Duration;
use thiserror::Error;

#[derive(Debug, Error)]
pub enum ApiError {
    #[error("{message}")]
    Validation {
        message: String,
        details: Vec<FieldError>,
    },
    #[error("authentication required")]
    Unauthenticated,
    #[error("invalid email or password")]
    InvalidCredentials,
    #[error("{0}")]
    Forbidden(&'static str),
    #[error("CSRF token missing or wrong")]
    CsrfFailed,
    #[error("not found")]
    NotFound,
    #[error("this method is not allowed here; the Allow header names those that are")]
    MethodNotAllowed,
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    PreconditionFailed(String),
    #[error("request body is larger than 1 MiB")]
    PayloadTooLarge,
    #[error("{message}")]
    UnsupportedMediaType { message: String },
    #[error("too many attempts")]
    RateLimited { retry_after: Duration },
    #[error("{message}")]
    Unavailable {
        message: String,
        details: Vec<FieldError>,
        retry_after: Duration,
    },
    #[error("internal error: {0}")]
    Internal(String),
}

/// The body of every error answer, as the contract shapes it.
#[derive(Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    error: ErrorDetail,
}

#[derive(Serialize, utoipa::ToSchema)]
struct ErrorDetail {
    code: &'static str,
    message: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    details: Vec<FieldError>,
}

impl ApiError {
    pub fn validation(errors: ValidationErrors) -> Self {
        let details = errors.into_errors();
        let message = match details.as_slice() {
            [one] => format!("{} {}", one.field, one.message),
            _ => "Some fields are not valid".to_owned(),
        };
        Self::Validation { message, details }
    }

    /// Logs the cause of an answer that does not show it.
    pub fn logged(self, cause: &dyn std::fmt::Display) -> Self {
        tracing::warn!(%cause, answer = %self, "request could not be served");
        self
    }

    fn status_and_code(&self) -> (StatusCode, &'static str) {
        match self {
            Self::Validation { .. } => (StatusCode::BAD_REQUEST, "validation_failed"),
            Self::Unauthenticated => (StatusCode::UNAUTHORIZED, "unauthenticated"),
            Self::InvalidCredentials => (StatusCode::UNAUTHORIZED, "invalid_credentials"),
            Self::Forbidden(_) => (StatusCode::FORBIDDEN, "forbidden"),
            Self::CsrfFailed => (StatusCode::FORBIDDEN, "csrf_failed"),
            Self::NotFound => (StatusCode::NOT_FOUND, "not_found"),
            Self::MethodNotAllowed => (StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed"),
            Self::Conflict(_) => (StatusCode::CONFLICT, "conflict"),
            Self::PreconditionFailed(_) => (StatusCode::PRECONDITION_FAILED, "precondition_failed"),
            Self::PayloadTooLarge => (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large"),
            Self::UnsupportedMediaType { .. } => {
                (StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type")
            }
            Self::RateLimited { .. } => (StatusCode::TOO_MANY_REQUESTS, "rate_limited"),
            Self::Unavailable { .. } => (StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
            Self::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code) = self.status_and_code();
        let retry_after = match &self {
            Self::RateLimited { retry_after } | Self::Unavailable { retry_after, .. } => {
                Some(retry_after.as_secs().max(1))
            }
            _ => None,
        };
        let (message, details) = match self {
            Self::Validation { message, details }
            | Self::Unavailable {
                message, details, ..
            } => (message, details),
            Self::Internal(cause) => {
                tracing::error!(%cause, "request failed");
                (
                    "Something went wrong on our side; try again later".to_owned(),
                    vec![],
                )
            }
            other => (other.to_string(), vec![]),
        };
        let body = ErrorBody {
            error: ErrorDetail {
                code,
                message,
                details,
            },
        };
        let mut response = (status, axum::Json(body)).into_response();
        if let Some(seconds) = retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }
}

impl From<ValidationErrors> for ApiError {
    fn from(errors: ValidationErrors) -> Self {
        Self::validation(errors)
    }
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::Conflict { constraint } => {
                Self::Conflict(format!("conflicts with an existing record ({constraint})"))
            }
            StoreError::Unavailable(cause) => Self::Unavailable {
                message: "the database is not reachable; try again shortly".into(),
                details: vec![],
                retry_after: Duration::from_secs(5),
            }
            .logged(&cause),
            StoreError::Unstorable(_) => Self::validation(ValidationErrors::single(
                "body",
                berth_core::validation::NUL_MESSAGE,
            )),
            other => Self::Internal(other.to_string()),
        }
    }
}

impl From<AuthError> for ApiError {
    fn from(error: AuthError) -> Self {
        match error {
            AuthError::Invalid(errors) => errors.into(),
            AuthError::InvalidCredentials => Self::InvalidCredentials,
            AuthError::Unauthenticated => Self::Unauthenticated,
            AuthError::Disabled => Self::Forbidden("this account is disabled"),
            AuthError::RegistrationClosed => {
                Self::Forbidden("registration is closed; ask an administrator for an account")
            }
            AuthError::EmailTaken => Self::Conflict("an account with this email exists".into()),
            AuthError::RateLimited { retry_after } => Self::RateLimited { retry_after },
            AuthError::Busy { retry_after } => Self::Unavailable {
                message: "too many passwords are being checked; try again shortly".into(),
                details: vec![],
                retry_after,
            },
            AuthError::LastAdmin => Self::Conflict(
                "the last admin cannot be demoted or disabled; make another admin first".into(),
            ),
            AuthError::Store(e) => e.into(),
            AuthError::Hashing(e) => Self::Internal(e),
            // Mail goes from the background and its settings are checked at
            // start: neither reaches a request but as a fault.
            AuthError::MailConfig(e) | AuthError::Mail(e) => Self::Internal(e),
        }
    }
}
