//! The OpenAPI 3.1 document, generated from the handlers' annotations and types.

use crate::routes;
use std::sync::OnceLock;
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
    modifiers(&SecuritySchemes),
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

/// The document, rendered once.
pub fn openapi_json() -> &'static str {
    static DOC: OnceLock<String> = OnceLock::new();
    DOC.get_or_init(|| {
        ApiDoc::openapi()
            .to_pretty_json()
            .expect("the OpenAPI document serializes")
    })
}
