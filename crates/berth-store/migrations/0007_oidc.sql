-- OpenID Connect sign-in. Portable SQL, as in 0001.

-- Which account a provider's identity is: the issuer and its subject (`sub`),
-- which never change, rather than the email, which may. One account per
-- identity; an account may be reached from several.
CREATE TABLE oidc_links (
    issuer     TEXT   NOT NULL,
    subject    TEXT   NOT NULL,
    user_id    TEXT   NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (issuer, subject)
);
CREATE INDEX oidc_links_user_id_idx ON oidc_links (user_id);

-- Sign-ins under way, between the redirect to the provider and its answer:
-- single use, minutes long. Only the SHA-256 of the state is kept; the
-- browser holds the state itself. The nonce and PKCE verifier are secrets of
-- this one attempt, useless once it is taken.
CREATE TABLE oidc_logins (
    state_hash    TEXT   NOT NULL PRIMARY KEY,
    nonce         TEXT   NOT NULL,
    pkce_verifier TEXT   NOT NULL,
    redirect_uri  TEXT   NOT NULL,
    next_path     TEXT   NOT NULL,
    expires_at    BIGINT NOT NULL
);
CREATE INDEX oidc_logins_expires_at_idx ON oidc_logins (expires_at);
