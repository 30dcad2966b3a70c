-- The outbox of events for Splunk's HTTP Event Collector, and the lease that
-- lets one replica drain it. Portable SQL, as in 0001.

-- A row is written beside what it reports (an audit entry in the same
-- transaction), so nothing is lost while Splunk is away; requests only ever
-- insert. `id` is a UUIDv7 and sorts in the order rows were written, which is
-- the order they are sent in. `event_id` is the event's stable identity
-- (an audit entry's id, a Kubernetes event's uid and count): its unique
-- constraint makes a second enqueue of the same event a no-op, so relists
-- and restarts never duplicate. Sent rows stay (state 'sent') for a while
-- for that reason; rows Splunk refused as bad data are 'quarantined' with
-- its answer in `error`, so that one never blocks the rest.
CREATE TABLE splunk_outbox (
    id         TEXT   NOT NULL PRIMARY KEY,
    event_id   TEXT   NOT NULL,
    source     TEXT   NOT NULL,
    body       TEXT   NOT NULL,
    created_at BIGINT NOT NULL,
    state      TEXT   NOT NULL,
    sent_at    BIGINT,
    error      TEXT,
    CONSTRAINT splunk_outbox_event_id_key UNIQUE (event_id),
    CONSTRAINT splunk_outbox_state_check CHECK (state IN ('pending', 'sent', 'quarantined'))
);
CREATE INDEX splunk_outbox_state_idx ON splunk_outbox (state, id);

-- Who drains the outbox: the one replica whose lease has not expired.
CREATE TABLE outbox_leases (
    name       TEXT   NOT NULL PRIMARY KEY,
    holder     TEXT   NOT NULL,
    expires_at BIGINT NOT NULL
);
