-- Failed logins counted in fixed windows per subject ("email:<address>" or
-- "client:<ip>"), kept here rather than in memory so that every replica
-- enforces one limit. Portable SQL, as in 0001.

CREATE TABLE login_failures (
    subject        TEXT   NOT NULL PRIMARY KEY,
    window_started BIGINT NOT NULL,
    failures       BIGINT NOT NULL
);
