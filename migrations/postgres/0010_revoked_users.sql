-- Deny entries of revoked users (src/revocation.rs): tokens issued up to
-- revoked_at (iat), or without iat expiring up to max_exp, are refused
-- until `until`. Times are Unix seconds, as in JWT claims.
CREATE TABLE revoked_users (
    user_id    TEXT   PRIMARY KEY,
    revoked_at BIGINT NOT NULL,
    max_exp    BIGINT NOT NULL,
    until      BIGINT NOT NULL
);

CREATE INDEX revoked_users_until ON revoked_users (until);
