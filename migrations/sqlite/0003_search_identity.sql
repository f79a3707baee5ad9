-- `q` also searches the identity claims `email` and `team` (contract v1.1
-- §9): the trigram index is rebuilt over user_id, name, ip, session_id,
-- email and team.
DROP TRIGGER sessions_search_insert;
DROP TRIGGER sessions_search_delete;
DROP TRIGGER sessions_search_update;
DROP TABLE sessions_search;

CREATE VIRTUAL TABLE sessions_search USING fts5(
    user_id, name, ip, session_id, email, team,
    content = 'sessions', content_rowid = 'seq', tokenize = 'trigram'
);

INSERT INTO sessions_search (sessions_search) VALUES ('rebuild');

CREATE TRIGGER sessions_search_insert AFTER INSERT ON sessions BEGIN
    INSERT INTO sessions_search (rowid, user_id, name, ip, session_id, email, team)
    VALUES (new.seq, new.user_id, new.name, new.ip, new.session_id, new.email, new.team);
END;

CREATE TRIGGER sessions_search_delete AFTER DELETE ON sessions BEGIN
    INSERT INTO sessions_search (sessions_search, rowid, user_id, name, ip, session_id, email, team)
    VALUES ('delete', old.seq, old.user_id, old.name, old.ip, old.session_id, old.email, old.team);
END;

CREATE TRIGGER sessions_search_update AFTER UPDATE OF user_id, name, ip, session_id, email, team ON sessions BEGIN
    INSERT INTO sessions_search (sessions_search, rowid, user_id, name, ip, session_id, email, team)
    VALUES ('delete', old.seq, old.user_id, old.name, old.ip, old.session_id, old.email, old.team);
    INSERT INTO sessions_search (rowid, user_id, name, ip, session_id, email, team)
    VALUES (new.seq, new.user_id, new.name, new.ip, new.session_id, new.email, new.team);
END;
