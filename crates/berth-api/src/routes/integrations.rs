//! `GET, PUT /api/v1/admin/integrations`: the Splunk HEC token and the
//! Sentry DSN set through the API, stored only encrypted under
//! `BERTH_ENCRYPTION_KEYS` (`berth-keyring`). Answers say whether each is
//! set, never what it is.
//!
//! Which one is used: the environment variable (`BERTH_SPLUNK_HEC_TOKEN`,
//! `BERTH_SENTRY_DSN`) when set, as operators who keep them in a Kubernetes
//! Secret stay in charge; else the stored one. Berth reads them when it
//! starts, so a change applies at each replica's next start.

use crate::audit::{Action, RequestId};
use crate::error::ApiError;
use crate::extract::AdminUser;
use crate::json::ApiJson;
use crate::state::AppState;
use axum::extract::State;
use berth_core::validation::ValidationErrors;
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::json;
use std::str::FromStr;
use time::OffsetDateTime;

/// The store's name of the Splunk HEC token.
pub const SPLUNK_HEC_TOKEN: &str = "splunk_hec_token";
/// The store's name of the Sentry DSN.
pub const SENTRY_DSN: &str = "sentry_dsn";
const MAX_SECRET_CHARS: usize = 1024;

/// What the integrations need to know of the configuration.
#[derive(Debug, Clone, Default)]
pub struct IntegrationSettings {
    /// The key ring of `BERTH_ENCRYPTION_KEYS`; without it nothing is stored.
    pub keyring: Option<berth_keyring::KeyRing>,
    /// `BERTH_SPLUNK_HEC_TOKEN` is set (it wins over a stored token).
    pub splunk_hec_token_in_environment: bool,
    /// `BERTH_SENTRY_DSN` is set (it wins over a stored DSN).
    pub sentry_dsn_in_environment: bool,
}

/// One secret's state, without the secret.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SecretState {
    /// A value is stored (encrypted).
    pub stored: bool,
    /// When it was last set; null when none is stored.
    #[serde(with = "time::serde::rfc3339::option")]
    pub updated_at: Option<OffsetDateTime>,
    /// The environment variable is set; it is used instead of the stored value.
    pub from_environment: bool,
}

/// The integrations' secrets, as `GET` and `PUT` answer them.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct IntegrationsView {
    pub splunk_hec_token: SecretState,
    pub sentry_dsn: SecretState,
    /// The id of the key new values are encrypted under; null without
    /// `BERTH_ENCRYPTION_KEYS`, when nothing can be stored.
    pub encryption_key_id: Option<String>,
}

/// A change: a string sets the value, `null` removes the stored one, a
/// field left out stays as it is.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct IntegrationsChange {
    /// The Splunk HEC token (1 to 1024 visible ASCII characters).
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>, min_length = 1, max_length = 1024, pattern = "^[\\x21-\\x7e]{1,1024}$")]
    pub splunk_hec_token: Option<Option<String>>,
    /// The Sentry DSN (`https://<key>@<host>/<project>`).
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>, min_length = 1, max_length = 1024, pattern = "^https?://[A-Za-z0-9]+(:[A-Za-z0-9]+)?@[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?(\\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)*(:([1-9][0-9]{0,3}|[1-5][0-9]{4}|6[0-4][0-9]{3}|65[0-4][0-9]{2}|655[0-2][0-9]|6553[0-5]))?(/[A-Za-z0-9_-]+)*/[0-9]+$")]
    pub sentry_dsn: Option<Option<String>>,
}

/// A field given, as `null` or a value.
fn present<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Option<String>>, D::Error> {
    Option::<String>::deserialize(d).map(Some)
}

#[utoipa::path(get, operation_id = "integrations_get", path = "/api/v1/admin/integrations", tag = "admin", responses(
    (status = 200, description = "Whether each secret is stored or set by the environment; never the secret", body = IntegrationsView),
    (status = 404, description = "Not an admin, or no valid credential", body = crate::error::ErrorBody),
), security(("session" = []), ("token" = [])))]
pub async fn get(
    State(state): State<AppState>,
    _admin: AdminUser,
) -> Result<ApiJson<IntegrationsView>, ApiError> {
    Ok(ApiJson(view(&state).await?))
}

/// Sets or removes the stored secrets, encrypted under the first key of
/// `BERTH_ENCRYPTION_KEYS`.
#[utoipa::path(put, operation_id = "integrations_put", path = "/api/v1/admin/integrations", tag = "admin", request_body = IntegrationsChange, responses(
    (status = 200, description = "Saved; the answer says what is stored, never the secret", body = IntegrationsView),
    (status = 400, description = "Invalid field", body = crate::error::ErrorBody),
    (status = 404, description = "Not an admin, or no valid credential (or CSRF token) at all", body = crate::error::ErrorBody),
    (status = 409, description = "BERTH_ENCRYPTION_KEYS is not set: secrets are stored only encrypted", body = crate::error::ErrorBody),
), security(("session" = []), ("token" = [])))]
pub async fn put(
    State(state): State<AppState>,
    AdminUser(admin): AdminUser,
    request_id: RequestId,
    ApiJson(change): ApiJson<IntegrationsChange>,
) -> Result<ApiJson<IntegrationsView>, ApiError> {
    let mut errors = ValidationErrors::new();
    if let Some(Some(token)) = &change.splunk_hec_token
        && (token.is_empty()
            || token.chars().count() > MAX_SECRET_CHARS
            || !token.bytes().all(|b| b.is_ascii_graphic()))
    {
        errors.push(berth_core::validation::FieldError::new(
            "splunkHecToken",
            "must be 1 to 1024 visible ASCII characters, as Splunk issues tokens",
        ));
    }
    if let Some(Some(dsn)) = &change.sentry_dsn
        && (dsn.chars().count() > MAX_SECRET_CHARS || sentry::types::Dsn::from_str(dsn).is_err())
    {
        errors.push(berth_core::validation::FieldError::new(
            "sentryDsn",
            "must be a Sentry DSN such as https://<key>@sentry.example.com/<project>",
        ));
    }
    if !errors.is_empty() {
        return Err(ApiError::validation(errors));
    }
    let settings = &state.integrations;
    let store = state.auth.store();
    let mut changed = Vec::new();
    for (field, name, value) in [
        ("splunkHecToken", SPLUNK_HEC_TOKEN, &change.splunk_hec_token),
        ("sentryDsn", SENTRY_DSN, &change.sentry_dsn),
    ] {
        match value {
            None => {}
            Some(None) if store.delete_secret(name).await? => changed.push(field),
            Some(None) => {}
            Some(Some(secret)) => {
                let keyring = settings.keyring.as_ref().ok_or_else(|| {
                    ApiError::Conflict(format!(
                        "{field} cannot be stored: BERTH_ENCRYPTION_KEYS is not set, and Berth \
                         stores secrets only encrypted. Set it (see the README) and restart, or \
                         set the environment variable instead"
                    ))
                })?;
                let sealed = keyring.seal(name, secret.as_bytes());
                store
                    .put_sealed_secret(name, &sealed, keyring.primary_id())
                    .await?;
                changed.push(field);
            }
        }
    }
    let action = Action {
        actor: admin.user.email.as_str(),
        action: "integrations.update",
        target: "integrations".into(),
        environment: None,
        details: json!({ "changed": changed }),
    };
    state.audit(action, "success", &request_id).await;
    Ok(ApiJson(view(&state).await?))
}

async fn view(state: &AppState) -> Result<IntegrationsView, ApiError> {
    let stored = state.auth.store().sealed_secrets().await?;
    let settings = &state.integrations;
    let secret = |name: &str, from_environment: bool| {
        let row = stored.iter().find(|s| s.name == name);
        SecretState {
            stored: row.is_some(),
            updated_at: row.map(|s| s.updated_at),
            from_environment,
        }
    };
    Ok(IntegrationsView {
        splunk_hec_token: secret(SPLUNK_HEC_TOKEN, settings.splunk_hec_token_in_environment),
        sentry_dsn: secret(SENTRY_DSN, settings.sentry_dsn_in_environment),
        encryption_key_id: settings.keyring.as_ref().map(|k| k.primary_id().to_owned()),
    })
}
