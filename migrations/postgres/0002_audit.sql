-- The audit trail (contract v1.1 §10): admin actions and authentication
-- failures. Times are Unix milliseconds.
CREATE TABLE audit_events (
    seq               BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id                TEXT   NOT NULL UNIQUE,
    at                BIGINT NOT NULL,
    action            TEXT   NOT NULL,
    actor_user_id     TEXT,
    actor_role        TEXT,
    actor_ip          TEXT,
    target_user_id    TEXT,
    target_session_id TEXT,
    reason            TEXT,
    node_id           TEXT   NOT NULL,
    result            TEXT   NOT NULL
);

CREATE INDEX audit_at ON audit_events (at);
CREATE INDEX audit_action ON audit_events (action, at);
CREATE INDEX audit_actor ON audit_events (actor_user_id, at);
CREATE INDEX audit_target ON audit_events (target_user_id, at);
