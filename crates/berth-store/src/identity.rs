//! One-time account tokens (the links Berth mails: verify an address, reset
//! a password) and password changes. Only the SHA-256 of a token's secret is
//! kept; using a token is one conditional write, so that a link works once
//! even when it is opened twice at the same moment.

use crate::accounts::{USER_COLUMNS, user_from_row};
use crate::{Store, StoreError, now, to_millis};
use berth_core::account::Email;
use sqlx::Row;
use time::OffsetDateTime;
use uuid::Uuid;

/// What a one-time account token is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenPurpose {
    /// Proves that the account's owner receives mail at the address.
    Verify,
    /// Lets the owner of the address set a new password.
    Reset,
}

impl TokenPurpose {
    fn as_str(self) -> &'static str {
        match self {
            Self::Verify => "verify",
            Self::Reset => "reset",
        }
    }
}

/// A one-time token to store; only its secret's hash is kept.
pub struct NewAccountToken {
    pub secret_hash: String,
    pub user_id: Uuid,
    pub purpose: TokenPurpose,
    /// The address the link is mailed to (and, for `Verify`, proves).
    pub email: Email,
    pub expires_at: OffsetDateTime,
}

/// Which credential survives a password change that revokes the others.
#[derive(Debug, Clone, Copy)]
pub enum KeepCredential<'a> {
    /// The session with this secret hash.
    Session(&'a str),
    /// The personal access token with this id.
    Token(Uuid),
}

impl Store {
    /// Stores a one-time token.
    pub async fn create_account_token(&self, new: NewAccountToken) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO account_tokens (secret_hash, user_id, purpose, email, created_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(&new.secret_hash)
        .bind(new.user_id.to_string())
        .bind(new.purpose.as_str())
        .bind(new.email.as_str())
        .bind(to_millis(now()))
        .bind(to_millis(new.expires_at))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// How many tokens for `purpose` were made for `user_id` since `since`:
    /// what throttles the mails of one account.
    pub async fn account_tokens_since(
        &self,
        user_id: Uuid,
        purpose: TokenPurpose,
        since: OffsetDateTime,
    ) -> Result<i64, StoreError> {
        let row = sqlx::query(
            "SELECT COUNT(*) AS n FROM account_tokens \
             WHERE user_id = $1 AND purpose = $2 AND created_at > $3",
        )
        .bind(user_id.to_string())
        .bind(purpose.as_str())
        .bind(to_millis(since))
        .fetch_one(&self.pool)
        .await?;
        Ok(row.try_get("n")?)
    }

    /// The enabled user a usable token for `purpose` belongs to: unused,
    /// unexpired, and mailed to the address the account still has.
    pub async fn account_token_user(
        &self,
        secret_hash: &str,
        purpose: TokenPurpose,
        at: OffsetDateTime,
    ) -> Result<Option<crate::UserRecord>, StoreError> {
        let sql = format!(
            "SELECT {USER_COLUMNS} FROM account_tokens t JOIN users u ON u.id = t.user_id \
             WHERE t.secret_hash = $1 AND t.purpose = $2 AND t.used_at IS NULL \
             AND t.expires_at > $3 AND t.email = u.email AND u.disabled = 0"
        );
        let row = sqlx::query(&sql)
            .bind(secret_hash)
            .bind(purpose.as_str())
            .bind(to_millis(at))
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(user_from_row).transpose()
    }

    /// Uses a verify token: marks it used and the account's address
    /// verified. `None` when the token is unknown, used, expired or for
    /// another address; the user as they are now otherwise.
    pub async fn use_verify_token(
        &self,
        secret_hash: &str,
        at: OffsetDateTime,
    ) -> Result<Option<crate::UserRecord>, StoreError> {
        let mut tx = self.pool.begin().await?;
        let Some(user_id) = consume(&mut tx, secret_hash, TokenPurpose::Verify, at).await? else {
            return Ok(None);
        };
        sqlx::query("UPDATE users SET email_verified = 1 WHERE id = $1")
            .bind(&user_id)
            .execute(&mut *tx)
            .await?;
        let user = read_user(&mut tx, &user_id).await?;
        tx.commit().await?;
        Ok(user)
    }

    /// Uses a reset token: sets the password, which also proves the address
    /// (the link was mailed there), and ends every session, personal access
    /// token and other pending reset of the account. `None` when the token
    /// is unknown, used, expired or for another address.
    pub async fn use_reset_token(
        &self,
        secret_hash: &str,
        at: OffsetDateTime,
        password_hash: &str,
    ) -> Result<Option<crate::UserRecord>, StoreError> {
        let mut tx = self.pool.begin().await?;
        let Some(user_id) = consume(&mut tx, secret_hash, TokenPurpose::Reset, at).await? else {
            return Ok(None);
        };
        sqlx::query(
            "UPDATE users SET password_hash = $2, must_change_password = 0, email_verified = 1 \
             WHERE id = $1",
        )
        .bind(&user_id)
        .bind(password_hash)
        .execute(&mut *tx)
        .await?;
        for sql in [
            "DELETE FROM sessions WHERE user_id = $1",
            "DELETE FROM api_tokens WHERE user_id = $1",
            "DELETE FROM account_tokens WHERE user_id = $1 AND purpose = 'reset' AND used_at IS NULL",
        ] {
            sqlx::query(sql).bind(&user_id).execute(&mut *tx).await?;
        }
        let user = read_user(&mut tx, &user_id).await?;
        tx.commit().await?;
        Ok(user)
    }

    /// Sets a user's password and clears `must_change_password`; pending
    /// reset links stop working. With `keep`, every other session and every
    /// personal access token but the kept one end too.
    pub async fn change_password(
        &self,
        user_id: Uuid,
        password_hash: &str,
        keep: Option<KeepCredential<'_>>,
    ) -> Result<(), StoreError> {
        let id = user_id.to_string();
        let mut tx = self.pool.begin().await?;
        sqlx::query("UPDATE users SET password_hash = $2, must_change_password = 0 WHERE id = $1")
            .bind(&id)
            .bind(password_hash)
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "DELETE FROM account_tokens WHERE user_id = $1 AND purpose = 'reset' AND used_at IS NULL",
        )
        .bind(&id)
        .execute(&mut *tx)
        .await?;
        if let Some(keep) = keep {
            // Nothing kept is spelled as a value no row has.
            let (session, token) = match keep {
                KeepCredential::Session(hash) => (hash.to_owned(), String::new()),
                KeepCredential::Token(token) => (String::new(), token.to_string()),
            };
            sqlx::query("DELETE FROM sessions WHERE user_id = $1 AND secret_hash <> $2")
                .bind(&id)
                .bind(&session)
                .execute(&mut *tx)
                .await?;
            sqlx::query("DELETE FROM api_tokens WHERE user_id = $1 AND id <> $2")
                .bind(&id)
                .bind(&token)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Removes one-time tokens past their expiry, used or not; returns how
    /// many went.
    pub async fn delete_expired_account_tokens(
        &self,
        at: OffsetDateTime,
    ) -> Result<u64, StoreError> {
        let done = sqlx::query("DELETE FROM account_tokens WHERE expires_at <= $1")
            .bind(to_millis(at))
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected())
    }
}

/// Marks a usable token used, in one conditional write; the id of its user
/// when it was usable.
async fn consume(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    secret_hash: &str,
    purpose: TokenPurpose,
    at: OffsetDateTime,
) -> Result<Option<String>, StoreError> {
    let done = sqlx::query(
        "UPDATE account_tokens SET used_at = $3 \
         WHERE secret_hash = $1 AND purpose = $2 AND used_at IS NULL AND expires_at > $3 \
         AND email = (SELECT u.email FROM users u \
                      WHERE u.id = account_tokens.user_id AND u.disabled = 0)",
    )
    .bind(secret_hash)
    .bind(purpose.as_str())
    .bind(to_millis(at))
    .execute(&mut **tx)
    .await?;
    if done.rows_affected() == 0 {
        return Ok(None);
    }
    let row = sqlx::query("SELECT user_id FROM account_tokens WHERE secret_hash = $1")
        .bind(secret_hash)
        .fetch_one(&mut **tx)
        .await?;
    Ok(Some(row.try_get("user_id")?))
}

async fn read_user(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    id: &str,
) -> Result<Option<crate::UserRecord>, StoreError> {
    let sql = format!("SELECT {USER_COLUMNS} FROM users u WHERE u.id = $1");
    let row = sqlx::query(&sql).bind(id).fetch_optional(&mut **tx).await?;
    row.as_ref().map(user_from_row).transpose()
}
