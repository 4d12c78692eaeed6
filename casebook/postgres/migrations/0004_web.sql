-- The web page: server-side sessions, login throttling and password reset codes.

-- sessions is the table alexedwards/scs/postgresstore reads and writes (token, data,
-- expiry). user_id is ours: it is set after a login commits the session, so that a
-- password change can end the user's other sessions. The store's upsert leaves it alone.
CREATE TABLE sessions (
    token   text PRIMARY KEY,
    data    bytea NOT NULL,
    expiry  timestamptz NOT NULL,
    user_id bigint REFERENCES users (id) ON DELETE CASCADE
);
CREATE INDEX sessions_expiry_idx ON sessions (expiry);
CREATE INDEX sessions_user_idx ON sessions (user_id) WHERE user_id IS NOT NULL;

-- login_throttle counts failed logins per key ("account:EMAIL" for any name typed,
-- known or not, and "ip:ADDRESS"), so that the delay holds across instances.
CREATE TABLE login_throttle (
    key          text PRIMARY KEY,
    failures     integer NOT NULL,
    last_failure timestamptz NOT NULL,
    locked_until timestamptz NOT NULL
);
CREATE INDEX login_throttle_last_idx ON login_throttle (last_failure);

-- reset_codes holds at most one live temporary password per user, as a SHA-256 of
-- the code (the code has 130 random bits, so a fast hash is enough).
CREATE TABLE reset_codes (
    user_id    bigint PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    code_hash  text NOT NULL,
    reason     text NOT NULL CHECK (reason IN ('reset', 'new_account')),
    expires_at timestamptz NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);

-- reset_requests records when codes were issued, to cap requests per account per hour.
CREATE TABLE reset_requests (
    user_id bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX reset_requests_user_idx ON reset_requests (user_id, at);
