//! Named secrets, stored only as sealed by the key ring (`berth-keyring`):
//! the store never sees them in clear, and reads them back sealed.

use crate::{Store, StoreError, from_millis, now, to_millis};
use sqlx::Row;
use time::OffsetDateTime;

/// One stored secret, as sealed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealedSecret {
    pub name: String,
    /// `v1:<key id>:<base64url>` (see `berth-keyring`).
    pub sealed: String,
    /// The id of the key that sealed it.
    pub key_id: String,
    pub updated_at: OffsetDateTime,
}

impl Store {
    /// Every stored secret, by name.
    pub async fn sealed_secrets(&self) -> Result<Vec<SealedSecret>, StoreError> {
        let rows =
            sqlx::query("SELECT name, sealed, key_id, updated_at FROM secrets ORDER BY name")
                .fetch_all(&self.pool)
                .await?;
        rows.iter()
            .map(|row| {
                Ok(SealedSecret {
                    name: row.try_get("name")?,
                    sealed: row.try_get("sealed")?,
                    key_id: row.try_get("key_id")?,
                    updated_at: from_millis(row.try_get("updated_at")?),
                })
            })
            .collect()
    }

    /// Creates or replaces the secret `name`.
    pub async fn put_sealed_secret(
        &self,
        name: &str,
        sealed: &str,
        key_id: &str,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO secrets (name, sealed, key_id, updated_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (name) DO UPDATE SET sealed = excluded.sealed, key_id = excluded.key_id, \
             updated_at = excluded.updated_at",
        )
        .bind(name)
        .bind(sealed)
        .bind(key_id)
        .bind(to_millis(now()))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Replaces the secret `name` with `sealed` only if it still holds
    /// `previous`: a rotation never overwrites a value set meanwhile.
    /// Returns whether it was replaced. Its time of change stays.
    pub async fn reseal_secret(
        &self,
        name: &str,
        previous: &str,
        sealed: &str,
        key_id: &str,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE secrets SET sealed = $1, key_id = $2 WHERE name = $3 AND sealed = $4",
        )
        .bind(sealed)
        .bind(key_id)
        .bind(name)
        .bind(previous)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Removes the secret `name`; returns whether there was one.
    pub async fn delete_secret(&self, name: &str) -> Result<bool, StoreError> {
        let done = sqlx::query("DELETE FROM secrets WHERE name = $1")
            .bind(name)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() == 1)
    }
}
