-- The online series of the panel's "last hour" chart and
-- GET /api/v1/stats/series: one row per sampling bucket. `at` is the
-- bucket's start (Unix milliseconds, a multiple of the sampling interval),
-- so every node of a cluster sampling the same bucket writes the same row
-- (an upsert); `users` and `sessions` are the cluster's online users and
-- live sessions then. Rows older than 24 h are pruned.
CREATE TABLE online_series (
    at       BIGINT PRIMARY KEY,
    users    BIGINT NOT NULL,
    sessions BIGINT NOT NULL
);
