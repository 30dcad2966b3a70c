//! The answers that layers shared by many operations give (the credential
//! check, the JSON body parser, the body limit, the store's outage, the admin
//! gate), written into each operation they apply to, so that the document
//! lists every status an operation can answer without each handler
//! repeating them.

use utoipa::Modify;
use utoipa::openapi::header::HeaderBuilder;
use utoipa::openapi::path::{Operation, ParameterIn};
use utoipa::openapi::schema::{Object, ObjectBuilder, Schema, SchemaType, Type};
use utoipa::openapi::{ContentBuilder, Ref, RefOr, Response, ResponseBuilder};

/// Adds the shared answers to every operation of the document.
pub(crate) struct CommonResponses;

/// Operations that answer without looking at the store: no 503 for its outage.
const STORELESS: &[&str] = &["/healthz", "/metrics", "/api/v1/openapi.json"];

impl Modify for CommonResponses {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        for (path, item) in openapi.paths.paths.iter_mut() {
            let operations = [
                (false, item.get.as_mut()),
                (false, item.head.as_mut()),
                (true, item.post.as_mut()),
                (true, item.put.as_mut()),
                (true, item.patch.as_mut()),
                (true, item.delete.as_mut()),
            ];
            for (writes, operation) in operations {
                if let Some(operation) = operation {
                    add_common(path, writes, operation);
                }
            }
        }
    }
}

fn add_common(path: &str, writes: bool, operation: &mut Operation) {
    let authenticated = operation
        .security
        .as_ref()
        .is_some_and(|requirements| !requirements.is_empty());
    let parameters = operation.parameters.as_deref().unwrap_or_default();
    let in_path = parameters
        .iter()
        .any(|p| matches!(p.parameter_in, ParameterIn::Path));
    let in_query_or_header = parameters
        .iter()
        .any(|p| matches!(p.parameter_in, ParameterIn::Query | ParameterIn::Header));
    let has_body = operation.request_body.is_some();
    constrain_parameters(operation);

    let mut add = |status: &str, description: &str| {
        operation
            .responses
            .responses
            .entry(status.to_owned())
            .or_insert_with(|| error_response(description).into());
    };
    if authenticated {
        add(
            "401",
            "`unauthenticated`: no session or token, or one that expired or was revoked",
        );
        if writes {
            add(
                "403",
                "`csrf_failed`: a write with the session cookie but without `X-CSRF-Token` equal to the `berth_csrf` cookie",
            );
        }
    }
    if path.starts_with("/api/v1/admin/") {
        add("404", "`not_found`: the caller is not an admin");
    }
    if in_path {
        add(
            "404",
            "`not_found`: no such object, or one the caller may not see",
        );
    }
    if has_body || in_query_or_header {
        add(
            "400",
            "`validation_failed`: a field, parameter or header is not valid; `details` name each",
        );
    }
    if has_body {
        add("413", "`payload_too_large`: the body is over 1 MiB");
        add(
            "415",
            "`unsupported_media_type`: the body is not sent as JSON (`Content-Type: application/json`)",
        );
    }
    if authenticated || !STORELESS.contains(&path) {
        add(
            "503",
            "`unavailable`: a part Berth needs (the database, the cluster) is not reachable; try again after `Retry-After` seconds",
        );
    }
    for (status, response) in operation.responses.responses.iter_mut() {
        if let ("429" | "503", RefOr::T(response)) = (status.as_str(), response) {
            response
                .headers
                .entry("Retry-After".to_owned())
                .or_insert_with(retry_after);
        }
    }
}

/// Parameters that many operations share, constrained as their parsers are.
fn constrain_parameters(operation: &mut Operation) {
    for parameter in operation.parameters.iter_mut().flatten() {
        let schema = match (&parameter.parameter_in, parameter.name.as_str()) {
            (ParameterIn::Path, "email") => email(),
            (ParameterIn::Header, "If-Match") => text(
                "The environment's generation, quoted or not.",
                r#"^"?[0-9]{1,18}"?$"#,
                None,
                None,
            ),
            _ => continue,
        };
        parameter.schema = Some(RefOr::T(Schema::Object(schema)));
    }
}

/// An error answer: the contract's one error shape.
fn error_response(description: &str) -> Response {
    ResponseBuilder::new()
        .description(description)
        .content(
            "application/json",
            ContentBuilder::new()
                .schema(Some(Ref::from_schema_name("ErrorBody")))
                .build(),
        )
        .build()
}

fn retry_after() -> utoipa::openapi::header::Header {
    HeaderBuilder::new()
        .schema(
            ObjectBuilder::new()
                .schema_type(Type::Integer)
                .minimum(Some(1)),
        )
        .description(Some("Seconds to wait before trying again"))
        .build()
}

/// Characters Rust's `char::is_control` refuses (Unicode `Cc`), for patterns.
const CONTROL: &str = r"\x00-\x1f\x7f-\u009f";

/// Any text without U+0000, which no string of this API may hold
/// (PostgreSQL cannot store it; `json.rs` and `query.rs` refuse it).
pub(crate) const NO_NUL: &str = r"^[^\x00]*$";

/// A string schema with a pattern and lengths (in characters).
fn text(description: &str, pattern: &str, min: Option<usize>, max: Option<usize>) -> Object {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .description(Some(description))
        .pattern(Some(pattern))
        .min_length(min)
        .max_length(max)
        .build()
}

/// A string schema limited to `values`.
fn one_of(description: &str, values: &[&str]) -> Object {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .description(Some(description))
        .enum_values(Some(values.iter().copied()))
        .build()
}

/// An email as `Email::parse` reads it (it trims and case-folds first): one
/// `@`, a local part of at most 64 characters without spaces or control
/// characters, a domain of dot-separated letter, digit and hyphen labels.
pub(crate) fn email() -> Object {
    let label = "[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?";
    text(
        "An email address, compared after Unicode NFC normalization and case folding.",
        &format!(r"^\s*[^@\s{CONTROL}]{{1,64}}@{label}(\.{label})+\s*$"),
        None,
        Some(254),
    )
}

/// A new password: 10 characters at least, 1024 bytes at most (counted here
/// as characters, which the byte limit never refuses below 256).
pub(crate) fn new_password() -> Object {
    text(
        "At least 10 characters, at most 1024 bytes.",
        NO_NUL,
        Some(10),
        Some(1024),
    )
}

/// A password offered at login: only bounded, since the rules may have
/// changed since it was set.
pub(crate) fn given_password() -> Object {
    text("The account's password.", NO_NUL, Some(1), Some(1024))
}

/// A display name: at most 100 characters, none of them control characters;
/// blank or absent takes the part of the email before `@`.
pub(crate) fn display_name() -> Object {
    let mut schema = text(
        "Shown for the person: at most 100 characters without control characters; the part of the email before `@` when blank, null or absent.",
        &format!("^[^{CONTROL}]*$"),
        None,
        Some(100),
    );
    schema.schema_type = SchemaType::from_iter([Type::String, Type::Null]);
    schema
}

/// A personal access token's name: 1 to 100 characters once trimmed, no
/// control characters.
pub(crate) fn token_name() -> Object {
    text(
        "1 to 100 characters (trimmed), without control characters.",
        &format!(r"^[^{CONTROL}]*[^\s{CONTROL}][^{CONTROL}]*$"),
        Some(1),
        Some(100),
    )
}

/// An admin's reason for a rejection: 1 to 1000 characters once trimmed.
pub(crate) fn reason() -> Object {
    text(
        "Shown to the requester: 1 to 1000 characters (trimmed).",
        r"^[^\x00]*[^\s\x00][^\x00]*$",
        Some(1),
        Some(1000),
    )
}

/// A member's role in an environment.
pub(crate) fn member_role() -> Object {
    one_of(
        "owner (everything, members included), editor (edit workloads) or viewer (read only).",
        &["owner", "editor", "viewer"],
    )
}

/// A request's state, as a filter.
pub(crate) fn request_state_filter() -> Object {
    one_of(
        "Only requests in this state; all when left out.",
        &["pending", "approved", "rejected"],
    )
}

/// A TTL as `Ttl::parse` reads it: Go-style units, largest first, from 1m
/// to 8760h. The pattern keeps to values inside those bounds (whole
/// hours up to 8759h, minutes, seconds), so that a TTL it admits is never refused.
pub(crate) fn ttl() -> Object {
    text(
        "Go-style duration, units h, m, s, largest first, from 1m to 8760h, such as `72h` or `1h30m`.",
        "^(([1-9][0-9]{0,2}|[1-7][0-9]{3}|8[0-6][0-9]{2}|87[0-5][0-9])h([0-5]?[0-9]m)?([0-5]?[0-9]s)?|([1-9]|[1-5][0-9])m([0-5]?[0-9]s)?|8760h)$",
        Some(2),
        Some(24),
    )
}
