-- What deciding about environments needs beyond 0002. Portable SQL, as in 0001.

-- A request records the Environment it was filed against (uid and
-- generation, both null for a create), so that approving it after that
-- environment changed, or was replaced by another of the same name, is refused.
ALTER TABLE environment_requests ADD COLUMN environment_uid TEXT;
ALTER TABLE environment_requests ADD COLUMN environment_generation BIGINT;

-- One row per person who has created an environment. A create takes this
-- row's lock (an upsert) for the length of "count what they own, then
-- create", so the per-person limit holds across concurrent requests and
-- replicas sharing the database.
CREATE TABLE creation_locks (
    user_id  TEXT   NOT NULL PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    creates  BIGINT NOT NULL
);

-- Answers kept for clients that retry with an Idempotency-Key: the same key
-- and body within 24 hours replay the answer. `status` is null while the
-- first request is still being answered.
CREATE TABLE idempotency_keys (
    user_id      TEXT   NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    key          TEXT   NOT NULL,
    request_hash TEXT   NOT NULL,
    status       BIGINT,
    body         TEXT,
    created_at   BIGINT NOT NULL,
    CONSTRAINT idempotency_keys_pkey PRIMARY KEY (user_id, key)
);
CREATE INDEX idempotency_keys_created_idx ON idempotency_keys (created_at);
