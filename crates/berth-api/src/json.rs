//! JSON bodies: parsed with the failing field named, never a bare serde message.

use crate::error::ApiError;
use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use berth_core::validation::ValidationErrors;
use serde::Serialize;
use serde::de::DeserializeOwned;

/// Like `axum::Json`, but its rejections are contract errors that name the field.
pub struct ApiJson<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let is_json = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .is_some_and(|mime| {
                let mime = mime.trim().to_ascii_lowercase();
                mime == "application/json" || mime.ends_with("+json")
            });
        if !is_json {
            return Err(ApiError::UnsupportedMediaType {
                message: "send the body as JSON with Content-Type: application/json".into(),
            });
        }
        let bytes = Bytes::from_request(req, state).await.map_err(|rejection| {
            if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::PayloadTooLarge
            } else {
                ApiError::validation(ValidationErrors::single("body", "could not be read"))
            }
        })?;
        // Every body of this API is an object; serde would also read a
        // struct from an array of its fields in order.
        if bytes.trim_ascii_start().first() == Some(&b'[') {
            return Err(ApiError::validation(ValidationErrors::single(
                "body",
                "must be a JSON object",
            )));
        }
        parse(&bytes).map(ApiJson)
    }
}

impl<T: Serialize> IntoResponse for ApiJson<T> {
    fn into_response(self) -> Response {
        axum::Json(self.0).into_response()
    }
}

/// Parses a JSON document, turning serde's complaint into a field error.
/// A string holding U+0000 is refused, naming its field: PostgreSQL cannot
/// keep it in text, so it would fail the store (SQLite would keep it).
pub fn parse<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    // JSON can only carry U+0000 escaped; most bodies are spared the walk.
    // The walk reads the whole document (trailing bytes included) so that
    // no error below ever echoes a NUL.
    if bytes.windows(6).any(|w| w == b"\\u0000") {
        let value = serde_json::from_slice::<serde_json::Value>(bytes)
            .map_err(|error| ApiError::validation(describe("", &error)))?;
        if let Some(field) = nul_in(&value, "") {
            // A key may hold the NUL itself; the answer never does.
            let field = field.replace('\0', "\u{FFFD}");
            let field = if field.is_empty() {
                "body".to_owned()
            } else {
                field
            };
            return Err(ApiError::validation(ValidationErrors::single(
                field,
                berth_core::validation::NUL_MESSAGE,
            )));
        }
    }
    let deserializer = &mut serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize(&mut *deserializer).map_err(|error| {
        let path = error.path().to_string();
        let inner = error.into_inner();
        ApiError::validation(describe(&path, &inner))
    })?;
    // Nothing but whitespace after the document.
    deserializer
        .end()
        .map_err(|error| ApiError::validation(describe("", &error)))?;
    Ok(value)
}

fn describe(path: &str, error: &serde_json::Error) -> ValidationErrors {
    let path = if path == "." { "" } else { path };
    let text = error.to_string();
    let text = text.split(" at line ").next().unwrap_or(&text);
    if error.is_syntax() || error.is_eof() {
        return ValidationErrors::single("body", format!("is not valid JSON ({text})"));
    }
    if let Some(field) = quoted_after(text, "unknown field ") {
        // The path already ends at the unknown field.
        let field = if path.is_empty() {
            field.to_owned()
        } else {
            path.to_owned()
        };
        return ValidationErrors::single(field, "is not a known field");
    }
    if let Some(field) = quoted_after(text, "missing field ") {
        let field = berth_core::validation::join_path(path, field);
        return ValidationErrors::single(field, "is required");
    }
    let field = if path.is_empty() { "body" } else { path };
    ValidationErrors::single(
        field,
        text.replace("invalid type: ", "has the wrong type: "),
    )
}

/// The path of the first string (or object key) in `value` holding U+0000.
fn nul_in(value: &serde_json::Value, path: &str) -> Option<String> {
    use berth_core::validation::join_path;
    match value {
        serde_json::Value::String(text) => text.contains('\0').then(|| path.to_owned()),
        serde_json::Value::Array(items) => items
            .iter()
            .enumerate()
            .find_map(|(i, item)| nul_in(item, &join_path(path, &format!("[{i}]")))),
        serde_json::Value::Object(fields) => fields.iter().find_map(|(key, item)| {
            let field = join_path(path, key);
            if key.contains('\0') {
                Some(field)
            } else {
                nul_in(item, &field)
            }
        }),
        _ => None,
    }
}

/// The name inside the first pair of backticks after `marker`.
fn quoted_after<'a>(text: &'a str, marker: &str) -> Option<&'a str> {
    let rest = text.split_once(marker)?.1;
    let rest = rest.strip_prefix('`')?;
    rest.split_once('`').map(|(name, _)| name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields, rename_all = "camelCase")]
    #[allow(dead_code)]
    struct Body {
        email: String,
        expires_in_days: Option<i64>,
    }

    fn field_of(json: &str) -> String {
        match parse::<Body>(json.as_bytes()) {
            Err(ApiError::Validation { details, .. }) => details[0].field.clone(),
            other => panic!("expected a validation error, got {other:?}"),
        }
    }

    #[test]
    fn names_the_field_at_fault() {
        assert_eq!(field_of(r#"{"email": "a@b.io", "extra": 1}"#), "extra");
        assert_eq!(field_of(r#"{}"#), "email");
        assert_eq!(field_of(r#"{"email": 5}"#), "email");
        assert_eq!(
            field_of(r#"{"email": "a", "expiresInDays": "x"}"#),
            "expiresInDays"
        );
        assert_eq!(field_of(r#"{"email": "#), "body");
        assert_eq!(field_of(r#"[]"#), "body");
    }

    #[test]
    fn names_the_field_holding_a_nul_character() {
        assert_eq!(field_of(r#"{"email": "a\u0000@b.io"}"#), "email");
        let nested = br#"{"spec": {"apps": [{"name": "ok"}, {"name": "x\u0000"}]}}"#;
        match parse::<serde_json::Value>(nested) {
            Err(ApiError::Validation { details, .. }) => {
                assert_eq!(details[0].field, "spec.apps[1].name");
            }
            other => panic!("{other:?}"),
        }
        match parse::<serde_json::Value>(br#"{"a\u0000b": 1}"#) {
            Err(ApiError::Validation { details, .. }) => {
                assert_eq!(details[0].field, "a\u{FFFD}b");
            }
            other => panic!("{other:?}"),
        }
        // Bytes after the document are refused, a NUL among them or not.
        assert_eq!(field_of(r#"{"email": "a@b.io"} x"#), "body");
        match parse::<serde_json::Value>(br#"{"reason": "no\u0000pe"} x"#) {
            Err(ApiError::Validation { details, .. }) => {
                assert_eq!(details[0].field, "body");
                assert!(!details[0].message.contains('\0'));
            }
            other => panic!("{other:?}"),
        }
        // An escaped backslash before "u0000" is no NUL.
        assert!(parse::<serde_json::Value>(br#"{"a": "\\u0000"}"#).is_ok());
    }
}
