-- Platform data: settings (the policy), templates, environment requests that
-- wait for approval, and the audit log. Portable SQL, as in 0001.

CREATE TABLE settings (
    key        TEXT   NOT NULL PRIMARY KEY,
    value      TEXT   NOT NULL,
    updated_at BIGINT NOT NULL
);

CREATE TABLE templates (
    name        TEXT   NOT NULL PRIMARY KEY,
    description TEXT   NOT NULL,
    spec        TEXT   NOT NULL,
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL
);

CREATE TABLE environment_requests (
    id           TEXT   NOT NULL PRIMARY KEY,
    requester_id TEXT   NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    environment  TEXT   NOT NULL,
    kind         TEXT   NOT NULL,
    spec         TEXT   NOT NULL,
    reasons      TEXT   NOT NULL,
    state        TEXT   NOT NULL,
    decided_by   TEXT   REFERENCES users (id) ON DELETE SET NULL,
    decision     TEXT,
    created_at   BIGINT NOT NULL,
    decided_at   BIGINT,
    CONSTRAINT environment_requests_kind_check CHECK (kind IN ('create', 'update')),
    CONSTRAINT environment_requests_state_check CHECK (state IN ('pending', 'approved', 'rejected'))
);
-- One open request per environment name: a second one would race the first.
CREATE UNIQUE INDEX environment_requests_pending_key
    ON environment_requests (environment) WHERE state = 'pending';
CREATE INDEX environment_requests_state_idx ON environment_requests (state, created_at);

-- Append-only: the API offers no way to change or delete an entry.
CREATE TABLE audit_log (
    id          TEXT   NOT NULL PRIMARY KEY,
    at          BIGINT NOT NULL,
    actor       TEXT   NOT NULL,
    action      TEXT   NOT NULL,
    target      TEXT   NOT NULL,
    environment TEXT,
    outcome     TEXT   NOT NULL,
    request_id  TEXT,
    details     TEXT   NOT NULL
);
CREATE INDEX audit_log_at_idx ON audit_log (at);
CREATE INDEX audit_log_actor_idx ON audit_log (actor, at);
CREATE INDEX audit_log_environment_idx ON audit_log (environment, at);
