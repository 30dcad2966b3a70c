//! Writing the audit log: every mutating action, with who, what, target,
//! outcome and the request id that ties it to the logs.

use crate::state::AppState;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use berth_store::AuditEntry;

/// The request id the middleware gave this request.
#[derive(Debug, Clone, Default)]
pub struct RequestId(pub Option<String>);

impl<S: Send + Sync> FromRequestParts<S> for RequestId {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(Self(
            parts
                .headers
                .get("x-request-id")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned),
        ))
    }
}

/// One action to record.
pub struct Action<'a> {
    pub actor: &'a str,
    pub action: &'a str,
    pub target: String,
    pub environment: Option<&'a str>,
    pub details: serde_json::Value,
}

impl AppState {
    /// Records an action and how it ended, and queues it for Splunk in the
    /// same transaction when Splunk is configured. A failure to record is
    /// logged, not returned: the action itself has already happened.
    pub async fn audit(&self, action: Action<'_>, outcome: &str, request_id: &RequestId) {
        let entry = AuditEntry {
            at: time::OffsetDateTime::UNIX_EPOCH,
            actor: action.actor.to_owned(),
            action: action.action.to_owned(),
            target: action.target,
            environment: action.environment.map(str::to_owned),
            outcome: outcome.to_owned(),
            request_id: request_id.0.clone(),
            details: action.details,
        };
        let store = self.auth.store();
        let recorded = if self.settings.splunk_outbox {
            store
                .append_audit_with_outbox(entry, berth_splunk::audit_event)
                .await
        } else {
            store.append_audit(entry).await
        };
        if let Err(e) = recorded {
            tracing::error!(error = %e, "could not write the audit log");
        }
    }
}
