//! Query strings: parsed with the failing parameter named, like JSON bodies,
//! never axum's plain-text rejection.

use crate::error::ApiError;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use berth_core::validation::ValidationErrors;
use serde::de::DeserializeOwned;

/// Like `axum::extract::Query`, but its rejections are contract errors that
/// name the parameter.
pub struct ApiQuery<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        parse(parts.uri.query().unwrap_or_default()).map(ApiQuery)
    }
}

/// 400 naming the first parameter whose name or value holds U+0000: no
/// text of this API may (PostgreSQL cannot compare it: a filter with one
/// would fail the store rather than match nothing). The name is given with
/// U+FFFD for the NUL, so that the answer never holds one.
pub(crate) fn refuse_nul(query: &str) -> Result<(), ApiError> {
    match form_urlencoded::parse(query.as_bytes())
        .find(|(name, value)| name.contains('\0') || value.contains('\0'))
    {
        Some((name, _)) => Err(ApiError::validation(ValidationErrors::single(
            name.replace('\0', "\u{FFFD}"),
            berth_core::validation::NUL_MESSAGE,
        ))),
        None => Ok(()),
    }
}

fn parse<T: DeserializeOwned>(query: &str) -> Result<T, ApiError> {
    refuse_nul(query)?;
    let deserializer =
        serde_urlencoded::Deserializer::new(form_urlencoded::parse(query.as_bytes()));
    serde_path_to_error::deserialize(deserializer).map_err(|error| {
        let path = error.path().to_string();
        let field = if path == "." {
            "query".to_owned()
        } else {
            path
        };
        ApiError::validation(ValidationErrors::single(
            field,
            format!("is not valid here ({})", error.into_inner()),
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize, PartialEq)]
    struct Filter {
        all: Option<bool>,
        limit: Option<u32>,
    }

    fn field_of(query: &str) -> String {
        match parse::<Filter>(query) {
            Err(ApiError::Validation { details, .. }) => details[0].field.clone(),
            other => panic!("{query}: {other:?}"),
        }
    }

    #[test]
    fn names_the_parameter_that_does_not_parse() {
        assert_eq!(
            parse::<Filter>("all=true&limit=5").unwrap(),
            Filter {
                all: Some(true),
                limit: Some(5)
            }
        );
        assert_eq!(
            parse::<Filter>("").unwrap(),
            Filter {
                all: None,
                limit: None
            }
        );
        assert_eq!(field_of("all=maybe"), "all");
        assert_eq!(field_of("all=true&limit=-1"), "limit");
        assert_eq!(field_of("all=true&actor=a%00b"), "actor");
    }
}
