//! Users, sessions and personal access tokens.

use crate::{Backend, Store, StoreError, from_millis, now, to_millis};
use berth_core::account::{DisplayName, Email, Role};
use sqlx::Row;
use sqlx::any::AnyRow;
use time::OffsetDateTime;
use uuid::Uuid;

/// A user as stored.
#[derive(Debug, Clone)]
pub struct UserRecord {
    pub id: Uuid,
    pub email: Email,
    pub display_name: DisplayName,
    pub role: Role,
    pub disabled: bool,
    pub created_at: OffsetDateTime,
    pub password_hash: String,
    /// The owner proved they receive mail at `email` (or the account predates
    /// verification, or was made while mail was not configured).
    pub email_verified: bool,
    /// The password was chosen by someone else and must be changed; a change
    /// of password clears it.
    pub must_change_password: bool,
}

/// A user to create.
pub struct NewUser {
    pub email: Email,
    pub display_name: DisplayName,
    pub role: Role,
    pub password_hash: String,
    /// Whether the address counts as verified from the start.
    pub email_verified: bool,
    /// Whether the password must be changed at the first login.
    pub must_change_password: bool,
}

/// A change an admin makes to a user; `None` leaves a field as it is.
#[derive(Debug, Default)]
pub struct UserUpdate {
    pub role: Option<Role>,
    pub disabled: Option<bool>,
    /// `Some(true)` marks the email verified (an admin vouches for it).
    pub email_verified: Option<bool>,
}

/// What became of a [`UserUpdate`].
#[derive(Debug)]
pub enum UserUpdated {
    /// Changed; the user as they are now.
    Done(UserRecord),
    /// No user has that id.
    NotFound,
    /// Refused, because it would leave no enabled admin.
    LastAdmin,
}

/// A personal access token as stored, without its secret.
#[derive(Debug, Clone)]
pub struct TokenRecord {
    pub id: Uuid,
    pub user_id: Uuid,
    pub name: String,
    pub created_at: OffsetDateTime,
    pub expires_at: Option<OffsetDateTime>,
    pub last_used_at: Option<OffsetDateTime>,
}

/// A personal access token to create; only its secret's hash is kept.
pub struct NewToken {
    pub user_id: Uuid,
    pub name: String,
    pub secret_hash: String,
    pub expires_at: Option<OffsetDateTime>,
}

pub(crate) const USER_COLUMNS: &str = "u.id, u.email, u.display_name, u.role, u.disabled, u.created_at, \
     u.password_hash, u.email_verified, u.must_change_password";
// Aliased so that a join with users reads each column unambiguously by name.
const TOKEN_COLUMNS: &str = "t.id AS token_id, t.user_id AS token_user_id, t.name AS token_name, \
     t.created_at AS token_created_at, t.expires_at AS token_expires_at, t.last_used_at AS token_last_used_at";

impl Store {
    /// Creates a user; `Conflict` on `users_email_key` when the email has one.
    pub async fn create_user(&self, new: NewUser) -> Result<UserRecord, StoreError> {
        let user = UserRecord {
            id: Uuid::now_v7(),
            email: new.email,
            display_name: new.display_name,
            role: new.role,
            disabled: false,
            created_at: now(),
            password_hash: new.password_hash,
            email_verified: new.email_verified,
            must_change_password: new.must_change_password,
        };
        sqlx::query(
            "INSERT INTO users (id, email, display_name, password_hash, role, disabled, created_at, \
             email_verified, must_change_password) VALUES ($1, $2, $3, $4, $5, 0, $6, $7, $8)",
        )
        .bind(user.id.to_string())
        .bind(user.email.as_str())
        .bind(user.display_name.as_str())
        .bind(&user.password_hash)
        .bind(user.role.as_str())
        .bind(to_millis(user.created_at))
        .bind(i64::from(user.email_verified))
        .bind(i64::from(user.must_change_password))
        .execute(&self.pool)
        .await
        .map_err(|e| StoreError::unique(e, "users_email_key"))?;
        Ok(user)
    }

    /// How many users there are.
    pub async fn count_users(&self) -> Result<i64, StoreError> {
        let row = sqlx::query("SELECT COUNT(*) AS n FROM users")
            .fetch_one(&self.pool)
            .await?;
        Ok(row.try_get("n")?)
    }

    /// The user with `email`, which is folded like every stored email.
    pub async fn user_by_email(&self, email: &Email) -> Result<Option<UserRecord>, StoreError> {
        let sql = format!("SELECT {USER_COLUMNS} FROM users u WHERE u.email = $1");
        let row = sqlx::query(&sql)
            .bind(email.as_str())
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(user_from_row).transpose()
    }

    /// The user with `id`.
    pub async fn user_by_id(&self, id: Uuid) -> Result<Option<UserRecord>, StoreError> {
        let sql = format!("SELECT {USER_COLUMNS} FROM users u WHERE u.id = $1");
        let row = sqlx::query(&sql)
            .bind(id.to_string())
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(user_from_row).transpose()
    }

    /// Every user, newest first.
    pub async fn list_users(&self) -> Result<Vec<UserRecord>, StoreError> {
        let sql =
            format!("SELECT {USER_COLUMNS} FROM users u ORDER BY u.created_at DESC, u.id DESC");
        let rows = sqlx::query(&sql).fetch_all(&self.pool).await?;
        rows.iter().map(user_from_row).collect()
    }

    /// Changes role and disabled flag; disabling ends the user's sessions at
    /// once. Refused when it would leave no enabled admin: the check and the
    /// change are one statement, and on PostgreSQL the enabled admins' rows
    /// are locked first, so that two admins demoting each other at the same
    /// moment cannot both succeed (SQLite runs one writer at a time).
    pub async fn update_user(
        &self,
        id: Uuid,
        update: UserUpdate,
    ) -> Result<UserUpdated, StoreError> {
        let mut tx = self.pool.begin().await?;
        if self.backend == Backend::Postgres {
            // In id order, so that concurrent updates queue instead of deadlocking.
            sqlx::query(
                "SELECT id FROM users WHERE role = 'admin' AND disabled = 0 \
                 ORDER BY id FOR NO KEY UPDATE",
            )
            .fetch_all(&mut *tx)
            .await?;
        }
        let done = sqlx::query(
            "UPDATE users SET role = COALESCE($2, role), disabled = COALESCE($3, disabled), \
             email_verified = COALESCE($4, email_verified) \
             WHERE id = $1 AND ( \
               (COALESCE($2, role) = 'admin' AND COALESCE($3, disabled) = 0) \
               OR role <> 'admin' OR disabled <> 0 \
               OR EXISTS (SELECT 1 FROM users other \
                 WHERE other.role = 'admin' AND other.disabled = 0 AND other.id <> $1))",
        )
        .bind(id.to_string())
        .bind(update.role.map(Role::as_str))
        .bind(update.disabled.map(i64::from))
        .bind(update.email_verified.map(i64::from))
        .execute(&mut *tx)
        .await?;
        let sql = format!("SELECT {USER_COLUMNS} FROM users u WHERE u.id = $1");
        let row = sqlx::query(&sql)
            .bind(id.to_string())
            .fetch_optional(&mut *tx)
            .await?;
        let Some(user) = row.as_ref().map(user_from_row).transpose()? else {
            return Ok(UserUpdated::NotFound);
        };
        if done.rows_affected() == 0 {
            return Ok(UserUpdated::LastAdmin);
        }
        if update.disabled == Some(true) {
            sqlx::query("DELETE FROM sessions WHERE user_id = $1")
                .bind(id.to_string())
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(UserUpdated::Done(user))
    }

    /// Opens a session known by the hash of its secret.
    pub async fn create_session(
        &self,
        secret_hash: &str,
        user_id: Uuid,
        expires_at: OffsetDateTime,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO sessions (secret_hash, user_id, created_at, expires_at) VALUES ($1, $2, $3, $4)",
        )
        .bind(secret_hash)
        .bind(user_id.to_string())
        .bind(to_millis(now()))
        .bind(to_millis(expires_at))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The enabled user behind an unexpired session.
    pub async fn session_user(
        &self,
        secret_hash: &str,
        now: OffsetDateTime,
    ) -> Result<Option<UserRecord>, StoreError> {
        let sql = format!(
            "SELECT {USER_COLUMNS} FROM sessions s JOIN users u ON u.id = s.user_id \
             WHERE s.secret_hash = $1 AND s.expires_at > $2 AND u.disabled = 0"
        );
        let row = sqlx::query(&sql)
            .bind(secret_hash)
            .bind(to_millis(now))
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(user_from_row).transpose()
    }

    /// Ends a session.
    pub async fn delete_session(&self, secret_hash: &str) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM sessions WHERE secret_hash = $1")
            .bind(secret_hash)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Removes sessions past their expiry; returns how many went.
    pub async fn delete_expired_sessions(&self, now: OffsetDateTime) -> Result<u64, StoreError> {
        let done = sqlx::query("DELETE FROM sessions WHERE expires_at <= $1")
            .bind(to_millis(now))
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected())
    }

    /// Stores a personal access token.
    pub async fn create_token(&self, new: NewToken) -> Result<TokenRecord, StoreError> {
        let token = TokenRecord {
            id: Uuid::now_v7(),
            user_id: new.user_id,
            name: new.name,
            created_at: now(),
            expires_at: new.expires_at.map(|at| from_millis(to_millis(at))),
            last_used_at: None,
        };
        sqlx::query(
            "INSERT INTO api_tokens (id, user_id, name, secret_hash, created_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(token.id.to_string())
        .bind(token.user_id.to_string())
        .bind(&token.name)
        .bind(&new.secret_hash)
        .bind(to_millis(token.created_at))
        .bind(token.expires_at.map(to_millis))
        .execute(&self.pool)
        .await
        .map_err(|e| StoreError::unique(e, "api_tokens_secret_hash_key"))?;
        Ok(token)
    }

    /// The token and its enabled owner, when the token is unexpired.
    pub async fn token_user(
        &self,
        secret_hash: &str,
        now: OffsetDateTime,
    ) -> Result<Option<(TokenRecord, UserRecord)>, StoreError> {
        let sql = format!(
            "SELECT {TOKEN_COLUMNS}, {USER_COLUMNS} FROM api_tokens t JOIN users u ON u.id = t.user_id \
             WHERE t.secret_hash = $1 AND (t.expires_at IS NULL OR t.expires_at > $2) AND u.disabled = 0"
        );
        let row = sqlx::query(&sql)
            .bind(secret_hash)
            .bind(to_millis(now))
            .fetch_optional(&self.pool)
            .await?;
        row.map(|row| Ok((token_from_row(&row)?, user_from_row(&row)?)))
            .transpose()
    }

    /// A user's tokens, newest first.
    pub async fn list_tokens(&self, user_id: Uuid) -> Result<Vec<TokenRecord>, StoreError> {
        let sql = format!(
            "SELECT {TOKEN_COLUMNS} FROM api_tokens t WHERE t.user_id = $1 ORDER BY t.created_at DESC, t.id DESC"
        );
        let rows = sqlx::query(&sql)
            .bind(user_id.to_string())
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(token_from_row).collect()
    }

    /// Deletes one of `user_id`'s tokens; false when no such token is theirs.
    pub async fn delete_token(&self, user_id: Uuid, token_id: Uuid) -> Result<bool, StoreError> {
        let done = sqlx::query("DELETE FROM api_tokens WHERE id = $1 AND user_id = $2")
            .bind(token_id.to_string())
            .bind(user_id.to_string())
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Records when a token was last used.
    pub async fn touch_token(&self, token_id: Uuid, at: OffsetDateTime) -> Result<(), StoreError> {
        sqlx::query("UPDATE api_tokens SET last_used_at = $1 WHERE id = $2")
            .bind(to_millis(at))
            .bind(token_id.to_string())
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}

fn parse_uuid(raw: &str) -> Result<Uuid, StoreError> {
    Uuid::parse_str(raw).map_err(|e| StoreError::Corrupt(format!("id {raw:?}: {e}")))
}

pub(crate) fn user_from_row(row: &AnyRow) -> Result<UserRecord, StoreError> {
    let email: String = row.try_get("email")?;
    let role: String = row.try_get("role")?;
    Ok(UserRecord {
        id: parse_uuid(&row.try_get::<String, _>("id")?)?,
        email: Email::parse("email", &email)
            .map_err(|e| StoreError::Corrupt(format!("user email: {e}")))?,
        display_name: DisplayName::from_stored(row.try_get("display_name")?),
        role: role.parse().map_err(StoreError::Corrupt)?,
        disabled: row.try_get::<i64, _>("disabled")? != 0,
        created_at: from_millis(row.try_get("created_at")?),
        password_hash: row.try_get("password_hash")?,
        email_verified: row.try_get::<i64, _>("email_verified")? != 0,
        must_change_password: row.try_get::<i64, _>("must_change_password")? != 0,
    })
}

fn token_from_row(row: &AnyRow) -> Result<TokenRecord, StoreError> {
    Ok(TokenRecord {
        id: parse_uuid(&row.try_get::<String, _>("token_id")?)?,
        user_id: parse_uuid(&row.try_get::<String, _>("token_user_id")?)?,
        name: row.try_get("token_name")?,
        created_at: from_millis(row.try_get("token_created_at")?),
        expires_at: row
            .try_get::<Option<i64>, _>("token_expires_at")?
            .map(from_millis),
        last_used_at: row
            .try_get::<Option<i64>, _>("token_last_used_at")?
            .map(from_millis),
    })
}
