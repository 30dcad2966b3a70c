-- Verified emails, forced password changes and one-time account tokens.
-- Portable SQL, as in 0001.

-- Accounts made before verification existed count as verified: they were
-- accepted under the old rules, and locking them out would help nobody.
ALTER TABLE users ADD COLUMN email_verified BIGINT NOT NULL DEFAULT 1;
-- Set for a password someone else chose (the generated first admin's); a
-- password change clears it.
ALTER TABLE users ADD COLUMN must_change_password BIGINT NOT NULL DEFAULT 0;

-- Links sent by mail: verify an address, or reset a password. Only the
-- SHA-256 of the secret is kept; `email` is the address a verify token
-- proves, so that a link sent to an old address proves nothing new.
CREATE TABLE account_tokens (
    secret_hash TEXT   NOT NULL PRIMARY KEY,
    user_id     TEXT   NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    purpose     TEXT   NOT NULL,
    email       TEXT   NOT NULL,
    created_at  BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL,
    used_at     BIGINT,
    CONSTRAINT account_tokens_purpose_check CHECK (purpose IN ('verify', 'reset'))
);
CREATE INDEX account_tokens_user_purpose_idx ON account_tokens (user_id, purpose, created_at);
