use crate::audit::{Action, RequestId};
use crate::error::ApiError;
use crate::extract::{AdminUser, CurrentUser};
use crate::json::ApiJson;
use crate::platform;
use crate::state::AppState;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use berth_core::environment::{Template, TemplateInput, TemplateSpecInput};
use serde::{Deserialize, Serialize};
use serde_json::json;

#[derive(Serialize, utoipa::ToSchema)]
pub struct TemplateList {
    items: Vec<TemplateInput>,
}

/// A template as an admin writes it; its name is in the path.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TemplateBody {
    description: Option<String>,
    spec: Option<TemplateSpecInput>,
}

#[utoipa::path(get, operation_id = "templates_list", path = "/api/v1/templates", tag = "environments", responses(
    (status = 200, description = "Templates to start an environment from, by name", body = TemplateList),
), security(("session" = []), ("token" = [])))]
pub async fn list(
    State(state): State<AppState>,
    _caller: CurrentUser,
) -> Result<ApiJson<TemplateList>, ApiError> {
    let templates = platform::templates(state.auth.store()).await?;
    Ok(ApiJson(TemplateList {
        items: templates.iter().map(Template::to_input).collect(),
    }))
}

#[utoipa::path(put, operation_id = "templates_put", path = "/api/v1/admin/templates/{name}", tag = "admin", params(("name" = String, Path)),
    request_body = TemplateBody, responses(
    (status = 200, description = "Created or replaced", body = TemplateInput),
    (status = 400, description = "Invalid field", body = crate::error::ErrorBody),
    (status = 404, description = "Not an admin", body = crate::error::ErrorBody),
), security(("session" = []), ("token" = [])))]
pub async fn put(
    State(state): State<AppState>,
    AdminUser(admin): AdminUser,
    request_id: RequestId,
    Path(name): Path<String>,
    ApiJson(body): ApiJson<TemplateBody>,
) -> Result<ApiJson<TemplateInput>, ApiError> {
    let template = Template::parse(&TemplateInput {
        name: Some(name),
        description: body.description,
        spec: body.spec,
    })?;
    let input = template.to_input();
    let spec = serde_json::to_value(&input.spec).map_err(|e| ApiError::Internal(e.to_string()))?;
    state
        .auth
        .store()
        .put_template(template.name.as_str(), template.description.as_str(), &spec)
        .await?;
    let action = Action {
        actor: admin.user.email.as_str(),
        action: "template.put",
        target: format!("template/{}", template.name.as_str()),
        environment: None,
        details: json!({ "template": input }),
    };
    state.audit(action, "success", &request_id).await;
    Ok(ApiJson(input))
}

#[utoipa::path(delete, operation_id = "templates_delete", path = "/api/v1/admin/templates/{name}", tag = "admin", params(("name" = String, Path)), responses(
    (status = 204, description = "Deleted; a built-in template it replaced is in force again"),
    (status = 404, description = "No such stored template, or not an admin", body = crate::error::ErrorBody),
    (status = 409, description = "A built-in template cannot be deleted", body = crate::error::ErrorBody),
), security(("session" = []), ("token" = [])))]
pub async fn delete(
    State(state): State<AppState>,
    AdminUser(admin): AdminUser,
    request_id: RequestId,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    if state.auth.store().delete_template(&name).await? {
        let action = Action {
            actor: admin.user.email.as_str(),
            action: "template.delete",
            target: format!("template/{name}"),
            environment: None,
            details: json!({}),
        };
        state.audit(action, "success", &request_id).await;
        Ok(StatusCode::NO_CONTENT)
    } else if platform::is_builtin(&name) {
        Err(ApiError::Conflict(format!(
            "{name} is built in: replace it with PUT instead"
        )))
    } else {
        Err(ApiError::NotFound)
    }
}
