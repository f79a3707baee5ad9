-- `q` also searches the identity claims `email` and `team` (contract v1.1
-- §9). The expressions must stay exactly as src/history/postgres.rs writes
-- them.
DROP INDEX sessions_search;

CREATE INDEX sessions_search ON sessions USING gin (
    lower(user_id) gin_trgm_ops,
    lower(coalesce(name, '')) gin_trgm_ops,
    lower(coalesce(ip, '')) gin_trgm_ops,
    session_id gin_trgm_ops,
    lower(coalesce(email, '')) gin_trgm_ops,
    lower(coalesce(team, '')) gin_trgm_ops
);
