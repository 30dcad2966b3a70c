-- Secrets Berth keeps (the Splunk HEC token and Sentry DSN set through the
-- API, and any later one), each only as sealed by the key ring of
-- BERTH_ENCRYPTION_KEYS (berth-keyring): AES-256-GCM, as text
-- "v1:<key id>:<base64url>"; key_id repeats the id so that rotation can find
-- what is left under an old key. Portable SQL, as in 0001.

CREATE TABLE secrets (
    name       TEXT   NOT NULL PRIMARY KEY,
    sealed     TEXT   NOT NULL,
    key_id     TEXT   NOT NULL,
    updated_at BIGINT NOT NULL
);
