//! Environment requests: a create or change over policy waits here, as a row,
//! until an admin approves or rejects it. It is not an environment yet.

use crate::platform::parse_json;
use crate::{Store, StoreError, from_millis, now, to_millis};
use sqlx::Row;
use sqlx::any::AnyRow;
use time::OffsetDateTime;
use uuid::Uuid;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestKind {
    Create,
    Update,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestState {
    Pending,
    Approved,
    Rejected,
}

#[derive(Debug, Clone)]
pub struct RequestRecord {
    pub id: Uuid,
    pub requester_id: Uuid,
    pub requester_email: String,
    pub environment: String,
    pub kind: RequestKind,
    /// The spec as asked for, in the contract's JSON form.
    pub spec: serde_json::Value,
    /// Why it needs approval, for the admin.
    pub reasons: Vec<String>,
    pub state: RequestState,
    /// The admin's reason, shown to the requester.
    pub decision: Option<String>,
    pub created_at: OffsetDateTime,
    pub decided_at: Option<OffsetDateTime>,
    /// The Environment a change was filed against; `None` for a create.
    pub target: Option<EnvironmentVersion>,
}

/// One version of one Environment: its uid (which a re-created environment
/// of the same name does not share) and the generation of its spec.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvironmentVersion {
    pub uid: String,
    pub generation: i64,
}

pub struct NewRequest {
    pub requester_id: Uuid,
    pub environment: String,
    pub kind: RequestKind,
    pub spec: serde_json::Value,
    pub reasons: Vec<String>,
    pub target: Option<EnvironmentVersion>,
}

const COLUMNS: &str = "r.id, r.requester_id, u.email AS requester_email, r.environment, r.kind, r.spec, \
     r.reasons, r.state, r.decision, r.created_at, r.decided_at, r.environment_uid, r.environment_generation";

impl RequestKind {
    fn as_str(self) -> &'static str {
        match self {
            Self::Create => "create",
            Self::Update => "update",
        }
    }
}

impl RequestState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Approved => "approved",
            Self::Rejected => "rejected",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "pending" => Some(Self::Pending),
            "approved" => Some(Self::Approved),
            "rejected" => Some(Self::Rejected),
            _ => None,
        }
    }
}

impl Store {
    /// Files a pending request; `Conflict` when one is already pending for the name.
    pub async fn create_request(&self, new: NewRequest) -> Result<Uuid, StoreError> {
        let id = Uuid::now_v7();
        sqlx::query(
            "INSERT INTO environment_requests (id, requester_id, environment, kind, spec, reasons, state, created_at, \
             environment_uid, environment_generation) VALUES ($1, $2, $3, $4, $5, $6, 'pending', $7, $8, $9)",
        )
        .bind(id.to_string())
        .bind(new.requester_id.to_string())
        .bind(&new.environment)
        .bind(new.kind.as_str())
        .bind(new.spec.to_string())
        .bind(serde_json::Value::from(new.reasons).to_string())
        .bind(to_millis(now()))
        .bind(new.target.as_ref().map(|t| t.uid.clone()))
        .bind(new.target.as_ref().map(|t| t.generation))
        .execute(&self.pool)
        .await
        .map_err(|e| StoreError::unique(e, "environment_requests_pending_key"))?;
        Ok(id)
    }

    pub async fn request(&self, id: Uuid) -> Result<Option<RequestRecord>, StoreError> {
        let sql = format!(
            "SELECT {COLUMNS} FROM environment_requests r JOIN users u ON u.id = r.requester_id WHERE r.id = $1"
        );
        let row = sqlx::query(&sql)
            .bind(id.to_string())
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(request_from_row).transpose()
    }

    /// Requests in `state` (all when `None`), optionally only one requester's, newest first.
    pub async fn requests(
        &self,
        state: Option<RequestState>,
        requester: Option<Uuid>,
    ) -> Result<Vec<RequestRecord>, StoreError> {
        let sql = format!(
            "SELECT {COLUMNS} FROM environment_requests r JOIN users u ON u.id = r.requester_id \
             WHERE ($1 IS NULL OR r.state = $1) AND ($2 IS NULL OR r.requester_id = $2) \
             ORDER BY r.created_at DESC, r.id DESC"
        );
        let rows = sqlx::query(&sql)
            .bind(state.map(RequestState::as_str))
            .bind(requester.map(|id| id.to_string()))
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(request_from_row).collect()
    }

    /// Moves a pending request to `state`. False when it was not pending (decided
    /// already, perhaps by another admin at the same moment).
    pub async fn decide_request(
        &self,
        id: Uuid,
        state: RequestState,
        decided_by: Uuid,
        decision: Option<&str>,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE environment_requests SET state = $1, decided_by = $2, decision = $3, decided_at = $4 \
             WHERE id = $5 AND state = 'pending'",
        )
        .bind(state.as_str())
        .bind(decided_by.to_string())
        .bind(decision)
        .bind(to_millis(now()))
        .bind(id.to_string())
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() > 0)
    }
}

impl Store {
    /// Takes back the approval of a request that could not be carried out:
    /// pending again (`state` None) for an admin to decide anew, or closed as
    /// `state` with `decision` for the requester. False when it was not
    /// approved.
    pub async fn reconsider_request(
        &self,
        id: Uuid,
        state: Option<(RequestState, &str)>,
    ) -> Result<bool, StoreError> {
        let done = match state {
            None => sqlx::query(
                "UPDATE environment_requests SET state = 'pending', decided_by = NULL, decision = NULL, \
                 decided_at = NULL WHERE id = $1 AND state = 'approved'",
            )
            .bind(id.to_string())
            .execute(&self.pool)
            .await
            .map_err(|e| StoreError::unique(e, "environment_requests_pending_key"))?,
            Some((state, decision)) => sqlx::query(
                "UPDATE environment_requests SET state = $1, decision = $2 WHERE id = $3 AND state = 'approved'",
            )
            .bind(state.as_str())
            .bind(decision)
            .bind(id.to_string())
            .execute(&self.pool)
            .await?,
        };
        Ok(done.rows_affected() > 0)
    }
}

fn request_from_row(row: &AnyRow) -> Result<RequestRecord, StoreError> {
    let parse_id = |column: &str| -> Result<Uuid, StoreError> {
        let raw: String = row.try_get(column)?;
        Uuid::parse_str(&raw).map_err(|e| StoreError::Corrupt(format!("{column} {raw:?}: {e}")))
    };
    let kind = match row.try_get::<String, _>("kind")?.as_str() {
        "create" => RequestKind::Create,
        "update" => RequestKind::Update,
        other => return Err(StoreError::Corrupt(format!("request kind {other:?}"))),
    };
    let state: String = row.try_get("state")?;
    let reasons = parse_json(&row.try_get::<String, _>("reasons")?)?;
    Ok(RequestRecord {
        id: parse_id("id")?,
        requester_id: parse_id("requester_id")?,
        requester_email: row.try_get("requester_email")?,
        environment: row.try_get("environment")?,
        kind,
        spec: parse_json(&row.try_get::<String, _>("spec")?)?,
        reasons: serde_json::from_value(reasons)
            .map_err(|e| StoreError::Corrupt(format!("request reasons: {e}")))?,
        state: RequestState::parse(&state)
            .ok_or_else(|| StoreError::Corrupt(format!("request state {state:?}")))?,
        decision: row.try_get("decision")?,
        created_at: from_millis(row.try_get("created_at")?),
        decided_at: row
            .try_get::<Option<i64>, _>("decided_at")?
            .map(from_millis),
        target: match (
            row.try_get::<Option<String>, _>("environment_uid")?,
            row.try_get::<Option<i64>, _>("environment_generation")?,
        ) {
            (Some(uid), Some(generation)) => Some(EnvironmentVersion { uid, generation }),
            _ => None,
        },
    })
}
