//! Settings (such as the policy) and environment templates, kept as JSON
//! documents: their shape belongs to `berth-core`, which parses them.

use crate::{Store, StoreError, from_millis, now, to_millis};
use sqlx::Row;
use time::OffsetDateTime;

#[derive(Debug, Clone)]
pub struct TemplateRecord {
    pub name: String,
    pub description: String,
    pub spec: serde_json::Value,
    pub updated_at: OffsetDateTime,
}

impl Store {
    pub async fn setting(&self, key: &str) -> Result<Option<serde_json::Value>, StoreError> {
        let row = sqlx::query("SELECT value FROM settings WHERE key = $1")
            .bind(key)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|row| parse_json(&row.try_get::<String, _>("value")?))
            .transpose()
    }

    pub async fn put_setting(
        &self,
        key: &str,
        value: &serde_json::Value,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO settings (key, value, updated_at) VALUES ($1, $2, $3) \
             ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
        )
        .bind(key)
        .bind(value.to_string())
        .bind(to_millis(now()))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Every stored template, by name.
    pub async fn templates(&self) -> Result<Vec<TemplateRecord>, StoreError> {
        let rows =
            sqlx::query("SELECT name, description, spec, updated_at FROM templates ORDER BY name")
                .fetch_all(&self.pool)
                .await?;
        rows.iter()
            .map(|row| {
                Ok(TemplateRecord {
                    name: row.try_get("name")?,
                    description: row.try_get("description")?,
                    spec: parse_json(&row.try_get::<String, _>("spec")?)?,
                    updated_at: from_millis(row.try_get("updated_at")?),
                })
            })
            .collect()
    }

    /// Creates or replaces a template.
    pub async fn put_template(
        &self,
        name: &str,
        description: &str,
        spec: &serde_json::Value,
    ) -> Result<(), StoreError> {
        let at = to_millis(now());
        sqlx::query(
            "INSERT INTO templates (name, description, spec, created_at, updated_at) VALUES ($1, $2, $3, $4, $4) \
             ON CONFLICT (name) DO UPDATE SET description = excluded.description, spec = excluded.spec, \
             updated_at = excluded.updated_at",
        )
        .bind(name)
        .bind(description)
        .bind(spec.to_string())
        .bind(at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// False when no such template was stored.
    pub async fn delete_template(&self, name: &str) -> Result<bool, StoreError> {
        let done = sqlx::query("DELETE FROM templates WHERE name = $1")
            .bind(name)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() > 0)
    }
}

pub(crate) fn parse_json(text: &str) -> Result<serde_json::Value, StoreError> {
    serde_json::from_str(text).map_err(|e| StoreError::Corrupt(format!("stored JSON: {e}")))
}
