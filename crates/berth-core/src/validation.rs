//! Field-level validation errors, shared by every parser in Berth.
//!
//! A parser that rejects input says which field (as a path such as
//! `apps[1].resources.cpu`) and why, so that the API can answer
//! `validation_failed` with details a person can act on.

use serde::Serialize;
use std::fmt;

/// One rejected field: its path in the request and what is allowed instead.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }

    /// The same error, seen from a parent: `cpu` under `quota` becomes `quota.cpu`.
    pub fn under(mut self, parent: &str) -> Self {
        self.field = join_path(parent, &self.field);
        self
    }
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

/// The reason given for a text holding U+0000, which PostgreSQL cannot store
/// in text.
pub const NUL_MESSAGE: &str = "must not contain the NUL character (U+0000)";

/// Joins a parent path and a child field, handling index segments (`apps` + `[1]`).
pub fn join_path(parent: &str, child: &str) -> String {
    match (parent.is_empty(), child.is_empty()) {
        (true, _) => child.to_owned(),
        (_, true) => parent.to_owned(),
        _ if child.starts_with('[') => format!("{parent}{child}"),
        _ => format!("{parent}.{child}"),
    }
}

/// All the field errors of one input. Never empty when returned as an error.
#[derive(Debug, Clone, Default, PartialEq, Eq, thiserror::Error)]
#[error("{}", self.summary())]
pub struct ValidationErrors(Vec<FieldError>);

impl ValidationErrors {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn single(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self(vec![FieldError::new(field, message)])
    }

    pub fn push(&mut self, error: FieldError) {
        self.0.push(error);
    }

    /// Records the error of `result` (if any) and passes its value on, so a parser
    /// can check every field and report all problems at once.
    pub fn collect<T>(&mut self, result: Result<T, ValidationErrors>) -> Option<T> {
        match result {
            Ok(value) => Some(value),
            Err(errors) => {
                self.0.extend(errors.0);
                None
            }
        }
    }

    /// Prefixes every field with `parent`.
    pub fn under(self, parent: &str) -> Self {
        Self(self.0.into_iter().map(|e| e.under(parent)).collect())
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn errors(&self) -> &[FieldError] {
        &self.0
    }

    pub fn into_errors(self) -> Vec<FieldError> {
        self.0
    }

    /// `Ok(value)` when nothing was recorded, else the recorded errors.
    pub fn finish<T>(self, value: impl FnOnce() -> T) -> Result<T, ValidationErrors> {
        if self.0.is_empty() {
            Ok(value())
        } else {
            Err(self)
        }
    }

    fn summary(&self) -> String {
        self.0
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("; ")
    }
}

impl From<FieldError> for ValidationErrors {
    fn from(error: FieldError) -> Self {
        Self(vec![error])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_join_with_dots_and_indexes() {
        assert_eq!(join_path("apps", "[1]"), "apps[1]");
        assert_eq!(
            join_path("apps[1]", "resources.cpu"),
            "apps[1].resources.cpu"
        );
        assert_eq!(join_path("", "name"), "name");
    }

    #[test]
    fn collect_gathers_every_error() {
        let mut errors = ValidationErrors::new();
        let ok: Option<u8> = errors.collect(Ok(1));
        let bad: Option<u8> = errors.collect(Err(ValidationErrors::single("cpu", "bad")));
        assert_eq!((ok, bad), (Some(1), None));
        let err = errors.under("quota").finish(|| ()).unwrap_err();
        assert_eq!(err.errors()[0].field, "quota.cpu");
    }
}
