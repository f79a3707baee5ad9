-- Ended sessions (contract v1.1 §10). `view` is the contract's Session JSON
-- as recorded and is what queries return; the other columns are what
-- queries filter, sort and aggregate on. Times are Unix milliseconds.
CREATE EXTENSION IF NOT EXISTS pg_trgm;

CREATE TABLE sessions (
    seq           BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    session_id    TEXT             NOT NULL UNIQUE,
    user_id       TEXT             NOT NULL,
    name          TEXT,
    org           TEXT,
    email         TEXT,
    team          TEXT,
    node_id       TEXT             NOT NULL,
    transport     TEXT,
    ip            TEXT,
    user_agent    TEXT,
    platform      TEXT,
    device_type   TEXT,
    browser       TEXT,
    app_name      TEXT,
    app_version   TEXT,
    page          TEXT,
    meta          JSONB,
    connected_at  BIGINT           NOT NULL,
    last_activity BIGINT           NOT NULL,
    ended_at      BIGINT           NOT NULL,
    end_cause     TEXT,
    duration_s    DOUBLE PRECISION NOT NULL,
    msgs_in       BIGINT,
    msgs_out      BIGINT,
    bytes_in      BIGINT,
    bytes_out     BIGINT,
    rtt_ms        DOUBLE PRECISION,
    timeline      JSONB,
    view          TEXT             NOT NULL
);

CREATE INDEX sessions_connected ON sessions (connected_at, session_id);
CREATE INDEX sessions_user ON sessions (user_id, connected_at);
CREATE INDEX sessions_user_ended ON sessions (user_id, ended_at);
CREATE INDEX sessions_org ON sessions (org, connected_at);
CREATE INDEX sessions_node ON sessions (node_id, connected_at);
CREATE INDEX sessions_ended ON sessions (ended_at);
CREATE INDEX sessions_email ON sessions (email);
CREATE INDEX sessions_team ON sessions (team);
-- `meta.<key>=<value>` filters: containment (`meta @> '{"k":"v"}'`).
CREATE INDEX sessions_meta ON sessions USING gin (meta jsonb_path_ops);

-- `q`: case-insensitive substring search over user_id, name, ip and
-- session_id, served by trigram indexes (pg_trgm). The expressions must stay
-- exactly as the queries in src/history/postgres.rs write them.
CREATE INDEX sessions_search ON sessions USING gin (
    lower(user_id) gin_trgm_ops,
    lower(coalesce(name, '')) gin_trgm_ops,
    lower(coalesce(ip, '')) gin_trgm_ops,
    session_id gin_trgm_ops
);
