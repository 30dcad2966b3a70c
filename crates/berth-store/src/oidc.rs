//! OpenID Connect sign-in: identities linked to accounts, and sign-ins under way.

use crate::accounts::{USER_COLUMNS, user_from_row};
use crate::{Store, StoreError, now, to_millis};
use berth_core::account::{DisplayName, Email, Role};
use sqlx::Row;
use time::OffsetDateTime;
use uuid::Uuid;

/// The password hash of an account made by single sign-on: no PHC string,
/// so no password ever matches it (a reset may give it one later).
const NO_PASSWORD: &str = "!sso";

/// A sign-in between the redirect to the provider and its answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingOidcLogin {
    /// The nonce the ID token must carry.
    pub nonce: String,
    /// The PKCE code verifier the code is exchanged with.
    pub pkce_verifier: String,
    /// The redirect URI the provider was given (the exchange repeats it).
    pub redirect_uri: String,
    /// The portal path to land on afterwards (same-origin, starts with `/`).
    pub next_path: String,
}

impl Store {
    /// Keeps a sign-in under way, known by the hash of its state, until
    /// `expires_at`. Sign-ins past their time are removed on the way.
    pub async fn put_oidc_login(
        &self,
        state_hash: &str,
        login: &PendingOidcLogin,
        expires_at: OffsetDateTime,
    ) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM oidc_logins WHERE expires_at < $1")
            .bind(to_millis(now()))
            .execute(&self.pool)
            .await?;
        sqlx::query(
            "INSERT INTO oidc_logins (state_hash, nonce, pkce_verifier, redirect_uri, next_path, expires_at) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(state_hash)
        .bind(&login.nonce)
        .bind(&login.pkce_verifier)
        .bind(&login.redirect_uri)
        .bind(&login.next_path)
        .bind(to_millis(expires_at))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Takes the sign-in known by `state_hash` away: the first caller gets
    /// it, any later one (a replayed answer, a parallel one) `None`, as does
    /// one past its time.
    pub async fn take_oidc_login(
        &self,
        state_hash: &str,
    ) -> Result<Option<PendingOidcLogin>, StoreError> {
        let row = sqlx::query(
            "SELECT nonce, pkce_verifier, redirect_uri, next_path, expires_at FROM oidc_logins \
             WHERE state_hash = $1",
        )
        .bind(state_hash)
        .fetch_optional(&self.pool)
        .await?;
        let Some(row) = row else { return Ok(None) };
        // Whoever deletes the row owns the sign-in; the select alone proves nothing.
        let deleted = sqlx::query("DELETE FROM oidc_logins WHERE state_hash = $1")
            .bind(state_hash)
            .execute(&self.pool)
            .await?
            .rows_affected();
        let expires_at: i64 = row.try_get("expires_at")?;
        if deleted != 1 || expires_at < to_millis(now()) {
            return Ok(None);
        }
        Ok(Some(PendingOidcLogin {
            nonce: row.try_get("nonce")?,
            pkce_verifier: row.try_get("pkce_verifier")?,
            redirect_uri: row.try_get("redirect_uri")?,
            next_path: row.try_get("next_path")?,
        }))
    }

    /// The account `subject` of `issuer` is linked to.
    pub async fn oidc_linked_user(
        &self,
        issuer: &str,
        subject: &str,
    ) -> Result<Option<crate::UserRecord>, StoreError> {
        let sql = format!(
            "SELECT {USER_COLUMNS} FROM oidc_links l JOIN users u ON u.id = l.user_id \
             WHERE l.issuer = $1 AND l.subject = $2"
        );
        let row = sqlx::query(&sql)
            .bind(issuer)
            .bind(subject)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(user_from_row).transpose()
    }

    /// Creates a member's account for a single sign-on: no password (the
    /// stored hash is no PHC string, so none matches), its email verified
    /// as the provider vouched for it. `Conflict` on `users_email_key` when
    /// the email has an account.
    pub async fn create_sso_user(
        &self,
        email: &Email,
        display_name: &DisplayName,
    ) -> Result<crate::UserRecord, StoreError> {
        let id = Uuid::now_v7();
        // The columns left out take their defaults: enabled, and (from 0006)
        // verified, with no password change due.
        sqlx::query(
            "INSERT INTO users (id, email, display_name, password_hash, role, disabled, created_at) \
             VALUES ($1, $2, $3, $4, $5, 0, $6)",
        )
        .bind(id.to_string())
        .bind(email.as_str())
        .bind(display_name.as_str())
        .bind(NO_PASSWORD)
        .bind(Role::Member.as_str())
        .bind(to_millis(now()))
        .execute(&self.pool)
        .await
        .map_err(|e| StoreError::unique(e, "users_email_key"))?;
        self.user_by_id(id)
            .await?
            .ok_or_else(|| StoreError::Corrupt(format!("user {id} vanished after its insert")))
    }

    /// Hands an account whose address was never proven by mail to the
    /// single sign-on that vouches for that address: its password, every
    /// session, personal access token and pending link end, and the address
    /// counts as verified. Whoever registered the address before its owner
    /// signed in keeps nothing of it. `None` when the account is gone.
    pub async fn claim_for_sso(
        &self,
        user_id: Uuid,
    ) -> Result<Option<crate::UserRecord>, StoreError> {
        let id = user_id.to_string();
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "UPDATE users SET password_hash = $2, must_change_password = 0, email_verified = 1 \
             WHERE id = $1",
        )
        .bind(&id)
        .bind(NO_PASSWORD)
        .execute(&mut *tx)
        .await?;
        for sql in [
            "DELETE FROM sessions WHERE user_id = $1",
            "DELETE FROM api_tokens WHERE user_id = $1",
            "DELETE FROM account_tokens WHERE user_id = $1",
        ] {
            sqlx::query(sql).bind(&id).execute(&mut *tx).await?;
        }
        let sql = format!("SELECT {USER_COLUMNS} FROM users u WHERE u.id = $1");
        let row = sqlx::query(&sql).bind(&id).fetch_optional(&mut *tx).await?;
        let user = row.as_ref().map(user_from_row).transpose()?;
        tx.commit().await?;
        Ok(user)
    }

    /// Links `subject` of `issuer` to `user_id`; `Conflict` on
    /// `oidc_links_pkey` when that identity is linked already.
    pub async fn link_oidc(
        &self,
        issuer: &str,
        subject: &str,
        user_id: Uuid,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO oidc_links (issuer, subject, user_id, created_at) VALUES ($1, $2, $3, $4)",
        )
        .bind(issuer)
        .bind(subject)
        .bind(user_id.to_string())
        .bind(to_millis(now()))
        .execute(&self.pool)
        .await
        .map_err(|e| StoreError::unique(e, "oidc_links_pkey"))?;
        Ok(())
    }
}
