-- Ended sessions (contract v1.1 §10). `view` is the contract's Session JSON
-- as recorded and is what queries return; the other columns are what
-- queries filter, sort and aggregate on. Times are Unix milliseconds.
CREATE TABLE sessions (
    seq           INTEGER PRIMARY KEY,
    session_id    TEXT    NOT NULL UNIQUE,
    user_id       TEXT    NOT NULL,
    name          TEXT,
    org           TEXT,
    email         TEXT,
    team          TEXT,
    node_id       TEXT    NOT NULL,
    transport     TEXT,
    ip            TEXT,
    user_agent    TEXT,
    platform      TEXT,
    device_type   TEXT,
    browser       TEXT,
    app_name      TEXT,
    app_version   TEXT,
    page          TEXT,
    meta          TEXT,
    connected_at  INTEGER NOT NULL,
    last_activity INTEGER NOT NULL,
    ended_at      INTEGER NOT NULL,
    end_cause     TEXT,
    duration_s    REAL    NOT NULL,
    msgs_in       INTEGER,
    msgs_out      INTEGER,
    bytes_in      INTEGER,
    bytes_out     INTEGER,
    rtt_ms        REAL,
    timeline      TEXT,
    view          TEXT    NOT NULL
);

CREATE INDEX sessions_connected ON sessions (connected_at, session_id);
CREATE INDEX sessions_user ON sessions (user_id, connected_at);
CREATE INDEX sessions_user_ended ON sessions (user_id, ended_at);
CREATE INDEX sessions_org ON sessions (org, connected_at);
CREATE INDEX sessions_node ON sessions (node_id, connected_at);
CREATE INDEX sessions_ended ON sessions (ended_at);
CREATE INDEX sessions_email ON sessions (email);
CREATE INDEX sessions_team ON sessions (team);

-- `q`: case-insensitive substring search over user_id, name, ip and
-- session_id, served by a trigram index (queries of 3 characters or more).
CREATE VIRTUAL TABLE sessions_search USING fts5(
    user_id, name, ip, session_id,
    content = 'sessions', content_rowid = 'seq', tokenize = 'trigram'
);

CREATE TRIGGER sessions_search_insert AFTER INSERT ON sessions BEGIN
    INSERT INTO sessions_search (rowid, user_id, name, ip, session_id)
    VALUES (new.seq, new.user_id, new.name, new.ip, new.session_id);
END;

CREATE TRIGGER sessions_search_delete AFTER DELETE ON sessions BEGIN
    INSERT INTO sessions_search (sessions_search, rowid, user_id, name, ip, session_id)
    VALUES ('delete', old.seq, old.user_id, old.name, old.ip, old.session_id);
END;

CREATE TRIGGER sessions_search_update AFTER UPDATE OF user_id, name, ip, session_id ON sessions BEGIN
    INSERT INTO sessions_search (sessions_search, rowid, user_id, name, ip, session_id)
    VALUES ('delete', old.seq, old.user_id, old.name, old.ip, old.session_id);
    INSERT INTO sessions_search (rowid, user_id, name, ip, session_id)
    VALUES (new.seq, new.user_id, new.name, new.ip, new.session_id);
END;
