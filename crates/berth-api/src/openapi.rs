//! The OpenAPI 3.1 document, generated from the handlers' annotations and types.

use crate::openapi_common::{CommonResponses, NO_NUL};
use crate::routes;
use berth_core::environment::{EnvironmentSpecInput, PolicyInput, TemplateInput};
use berth_manifests::EnvironmentStatus;
use schemars::generate::SchemaSettings;
use serde_json::{Value, json};
use std::sync::OnceLock;
use utoipa::openapi::schema::{Object, ObjectBuilder, Ref, Type};
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

#[derive(OpenApi)]
#[openapi(
    info(title = "Berth API", version = "1", description = "Self-service Kubernetes environments."),
    paths(
        routes::system::healthz,
        routes::system::readyz,
        routes::system::metrics,
        routes::system::openapi,
        routes::accounts::register,
        routes::accounts::login,
        routes::accounts::logout,
        routes::accounts::me,
        routes::oidc::providers,
        routes::oidc::login,
        routes::oidc::callback,
        routes::identity::change_password,
        routes::identity::verify,
        routes::identity::resend,
        routes::identity::password_reset,
        routes::identity::password_reset_confirm,
        routes::tokens::create,
        routes::tokens::list,
        routes::tokens::revoke,
        routes::admin::list_users,
        routes::admin::update_user,
        routes::policy::get,
        routes::policy::put,
        routes::integrations::get,
        routes::integrations::put,
        routes::audit_log::list,
        routes::templates::list,
        routes::templates::put,
        routes::templates::delete,
        routes::environments::list,
        routes::environments::create,
        routes::environments::preview_spec,
        routes::environments::get,
        routes::environment_changes::patch,
        routes::environments::delete,
        routes::environments::renew,
        routes::environment_details::get_kubeconfig,
        routes::environment_details::events,
        routes::environment_details::workloads,
        routes::environment_logs::logs,
        crate::metrics_query::query,
        crate::metrics_query::query_range,
        crate::metrics_query::series,
        crate::metrics_query::labels,
        crate::metrics_query::label_values,
        routes::environment_changes::put_member,
        routes::environment_changes::delete_member,
        routes::requests::mine,
        routes::requests::list,
        routes::requests::approve,
        routes::requests::reject,
    ),
    components(schemas(crate::error::ErrorBody, berth_core::validation::FieldError)),
    modifiers(&SecuritySchemes, &CommonResponses),
)]
struct ApiDoc;

struct SecuritySchemes;

impl Modify for SecuritySchemes {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "session",
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::new(
                crate::extract::SESSION_COOKIE,
            ))),
        );
        components.add_security_scheme(
            "token",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// The document, rendered once. The wire types that the `Environment` CRD
/// also carries take their schemas from schemars, as the CRD does: one
/// source for the patterns, lengths, ranges and enums the parsers enforce,
/// where utoipa's derive would describe free strings.
pub fn openapi_json() -> &'static str {
    static DOC: OnceLock<String> = OnceLock::new();
    DOC.get_or_init(|| {
        let mut doc =
            serde_json::to_value(ApiDoc::openapi()).expect("the OpenAPI document serializes");
        if let Some(schemas) = doc
            .pointer_mut("/components/schemas")
            .and_then(Value::as_object_mut)
        {
            schemas.extend(wire_schemas());
        }
        forbid_nul(&mut doc);
        serde_json::to_string_pretty(&doc).expect("the OpenAPI document serializes")
    })
}

/// Gives every free string schema (no pattern, enum, const or format) the
/// pattern [`NO_NUL`]: no text of this API may hold U+0000, which the body
/// and query parsers refuse since PostgreSQL cannot store it.
fn forbid_nul(value: &mut Value) {
    match value {
        Value::Object(object) => {
            let is_string = match object.get("type") {
                Some(Value::String(kind)) => kind == "string",
                Some(Value::Array(kinds)) => kinds.iter().any(|k| k == "string"),
                _ => false,
            };
            let free = ["pattern", "enum", "const", "format"]
                .iter()
                .all(|key| !object.contains_key(*key));
            if is_string && free {
                object.insert("pattern".into(), NO_NUL.into());
            }
            object.values_mut().for_each(forbid_nul);
        }
        Value::Array(items) => items.iter_mut().for_each(forbid_nul),
        _ => {}
    }
}

/// The schemas of the spec, policy and status types as schemars derives
/// them, named as utoipa names them, so that the derived `$ref`s resolve.
fn wire_schemas() -> serde_json::Map<String, Value> {
    let mut generator = SchemaSettings::draft2020_12()
        .with(|s| s.definitions_path = "/components/schemas".into())
        .into_generator();
    generator.subschema_for::<EnvironmentSpecInput>();
    generator.subschema_for::<TemplateInput>();
    generator.subschema_for::<PolicyInput>();
    generator.subschema_for::<EnvironmentStatus>();
    let mut schemas = generator.take_definitions(true);
    for schema in schemas.values_mut() {
        strip_kubernetes_extensions(schema);
    }
    // Every answer carries a phase and conditions: the view fills them in
    // when the controller has not written a status yet.
    if let Some(status) = schemas
        .get_mut(STATUS_SCHEMA)
        .and_then(Value::as_object_mut)
    {
        status.insert("required".into(), json!(["phase", "conditions"]));
        if let Some(properties) = status.get_mut("properties").and_then(Value::as_object_mut) {
            properties.insert(
                "phase".into(),
                json!({ "$ref": "#/components/schemas/Phase" }),
            );
        }
    }
    schemas
}

/// The CRD's CEL rules and structural markers (`x-kubernetes-*`) mean
/// something to the apiserver only; the patterns and bounds beside them stay.
fn strip_kubernetes_extensions(schema: &mut Value) {
    match schema {
        Value::Object(map) => {
            map.retain(|key, _| !key.starts_with("x-kubernetes-"));
            map.values_mut().for_each(strip_kubernetes_extensions);
        }
        Value::Array(items) => items.iter_mut().for_each(strip_kubernetes_extensions),
        _ => {}
    }
}

/// The name of an environment's status schema in the document.
const STATUS_SCHEMA: &str = "EnvironmentStatus";

/// A reference to the status schema, for `#[schema(schema_with = ...)]`.
pub(crate) fn status_ref() -> Ref {
    Ref::from_schema_name(STATUS_SCHEMA)
}

/// A string schema limited to `values`, for fields held as `&'static str`.
fn string_enum(description: &str, values: &[&str]) -> Object {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .description(Some(description))
        .enum_values(Some(values.iter().copied()))
        .build()
}

/// The caller's role in an environment (`EnvironmentView.role`).
pub(crate) fn caller_role() -> Object {
    string_enum(
        "The caller's role: owner, editor, viewer, or admin for an admin who is not a member.",
        &["owner", "editor", "viewer", "admin"],
    )
}

/// What a request asks (`RequestView.kind`).
pub(crate) fn request_kind() -> Object {
    string_enum(
        "`create` a new environment or `update` an existing one.",
        &["create", "update"],
    )
}

/// Where a request is (`RequestView.state`).
pub(crate) fn request_state() -> Object {
    string_enum(
        "`pending` until an admin approves or rejects it.",
        &["pending", "approved", "rejected"],
    )
}
