-- The most users online at once per UTC day (`peak_online` of the stats and
-- the daily analytics), kept so that it survives restarts. `day` is days
-- since the Unix epoch; `at` Unix milliseconds of when the peak was first
-- reached.
CREATE TABLE daily_peaks (
    day   BIGINT PRIMARY KEY,
    users BIGINT NOT NULL,
    at    BIGINT NOT NULL
);
