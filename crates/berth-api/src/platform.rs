//! The platform's settings as the domain sees them: the policy and the
//! templates, read from the store and parsed, with built-in fallbacks.

use crate::error::ApiError;
use berth_core::environment::{Policy, PolicyInput, Template, TemplateInput, builtin_templates};
use berth_store::Store;

const POLICY_KEY: &str = "policy";

/// The policy in force: the stored one, or the defaults before an admin set one.
pub async fn policy(store: &Store) -> Result<Policy, ApiError> {
    let Some(stored) = store.setting(POLICY_KEY).await? else {
        return Ok(Policy::default());
    };
    let input: PolicyInput = serde_json::from_value(stored)
        .map_err(|e| ApiError::Internal(format!("stored policy: {e}")))?;
    Policy::parse(&input).map_err(|e| ApiError::Internal(format!("stored policy: {e}")))
}

pub async fn save_policy(store: &Store, policy: &Policy) -> Result<(), ApiError> {
    let value =
        serde_json::to_value(policy.to_input()).map_err(|e| ApiError::Internal(e.to_string()))?;
    Ok(store.put_setting(POLICY_KEY, &value).await?)
}

/// Built-in templates, each replaced by a stored one of the same name, then
/// the admins' own; sorted by name.
pub async fn templates(store: &Store) -> Result<Vec<Template>, ApiError> {
    let mut all = builtin_templates();
    for record in store.templates().await? {
        let input = TemplateInput {
            name: Some(record.name.clone()),
            description: Some(record.description),
            spec: Some(serde_json::from_value(record.spec).map_err(|e| {
                ApiError::Internal(format!("stored template {}: {e}", record.name))
            })?),
        };
        let template = Template::parse(&input)
            .map_err(|e| ApiError::Internal(format!("stored template {}: {e}", record.name)))?;
        all.retain(|t| t.name != template.name);
        all.push(template);
    }
    all.sort_by(|a, b| a.name.as_str().cmp(b.name.as_str()));
    Ok(all)
}

pub fn is_builtin(name: &str) -> bool {
    builtin_templates().iter().any(|t| t.name.as_str() == name)
}
