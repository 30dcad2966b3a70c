use crate::audit::{Action, RequestId};
use crate::error::ApiError;
use crate::extract::CurrentUser;
use crate::json::ApiJson;
use crate::state::AppState;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use berth_core::account::TokenName;
use berth_store::TokenRecord;
use serde::{Deserialize, Serialize};
use serde_json::json;
use time::OffsetDateTime;
use uuid::Uuid;

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct CreateTokenRequest {
    #[schema(schema_with = crate::openapi_common::token_name)]
    name: String,
    /// Days until the token expires: 1 to 365, 90 when left out.
    #[schema(minimum = 1, maximum = 365)]
    expires_in_days: Option<i64>,
}

/// A token as listed: never its secret.
#[derive(Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TokenView {
    id: Uuid,
    name: String,
    #[serde(with = "time::serde::rfc3339")]
    created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option")]
    expires_at: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339::option")]
    last_used_at: Option<OffsetDateTime>,
}

/// A token just created: `token` is shown this once.
#[derive(Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CreatedToken {
    id: Uuid,
    name: String,
    token: String,
    #[serde(with = "time::serde::rfc3339")]
    created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option")]
    expires_at: Option<OffsetDateTime>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct TokenList {
    items: Vec<TokenView>,
}

impl From<TokenRecord> for TokenView {
    fn from(t: TokenRecord) -> Self {
        Self {
            id: t.id,
            name: t.name,
            created_at: t.created_at,
            expires_at: t.expires_at,
            last_used_at: t.last_used_at,
        }
    }
}

#[utoipa::path(post, operation_id = "tokens_create", path = "/api/v1/tokens", tag = "tokens", request_body = CreateTokenRequest, responses(
    (status = 201, description = "Created; the secret is in `token`, shown once", body = CreatedToken),
    (status = 400, description = "Invalid field", body = crate::error::ErrorBody),
), security(("session" = []), ("token" = [])))]
pub async fn create(
    State(state): State<AppState>,
    CurrentUser(principal): CurrentUser,
    request_id: RequestId,
    ApiJson(body): ApiJson<CreateTokenRequest>,
) -> Result<(StatusCode, ApiJson<CreatedToken>), ApiError> {
    let name = TokenName::parse("name", &body.name)?;
    let issued = state
        .auth
        .issue_token(principal.user.id, name, body.expires_in_days)
        .await?;
    tracing::info!(token_id = %issued.record.id, "token created");
    let action = Action {
        actor: principal.user.email.as_str(),
        action: "token.create",
        target: format!("token/{}", issued.record.id),
        environment: None,
        // Never the secret, nor its hash.
        details: json!({
            "name": issued.record.name,
            "expiresAt": issued.record.expires_at.map(rfc3339),
        }),
    };
    state.audit(action, "success", &request_id).await;
    Ok((
        StatusCode::CREATED,
        ApiJson(CreatedToken {
            id: issued.record.id,
            name: issued.record.name,
            token: issued.secret.expose().to_owned(),
            created_at: issued.record.created_at,
            expires_at: issued.record.expires_at,
        }),
    ))
}

#[utoipa::path(get, operation_id = "tokens_list", path = "/api/v1/tokens", tag = "tokens", responses(
    (status = 200, description = "The caller's tokens, newest first, without secrets", body = TokenList),
), security(("session" = []), ("token" = [])))]
pub async fn list(
    State(state): State<AppState>,
    CurrentUser(principal): CurrentUser,
) -> Result<ApiJson<TokenList>, ApiError> {
    let tokens = state.auth.store().list_tokens(principal.user.id).await?;
    Ok(ApiJson(TokenList {
        items: tokens.into_iter().map(TokenView::from).collect(),
    }))
}

#[utoipa::path(delete, operation_id = "tokens_revoke", path = "/api/v1/tokens/{id}", tag = "tokens", params(("id" = Uuid, Path)), responses(
    (status = 204, description = "Revoked; it stops working at once"),
    (status = 404, description = "No such token of the caller's", body = crate::error::ErrorBody),
), security(("session" = []), ("token" = [])))]
pub async fn revoke(
    State(state): State<AppState>,
    CurrentUser(principal): CurrentUser,
    request_id: RequestId,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let id = Uuid::parse_str(&id).map_err(|_| ApiError::NotFound)?;
    if state.auth.revoke_token(principal.user.id, id).await? {
        tracing::info!(token_id = %id, "token revoked");
        let action = Action {
            actor: principal.user.email.as_str(),
            action: "token.revoke",
            target: format!("token/{id}"),
            environment: None,
            details: json!({}),
        };
        state.audit(action, "success", &request_id).await;
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::NotFound)
    }
}

/// A time as the API writes it.
fn rfc3339(at: OffsetDateTime) -> String {
    at.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}
