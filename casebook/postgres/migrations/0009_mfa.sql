-- The TOTP second factor (RFC 6238) and its one-time recovery codes.

-- mfa_factors holds at most one factor per user. secret is the shared secret as the
-- web package stores it: sealed with AES-GCM under --mfa-key when one is configured
-- ("aes-gcm:..."), so that a copy of the database alone does not reveal it, else
-- as text ("plain:..."). confirmed_at stays NULL while the user enrols; last_step is
-- the newest time step (Unix time / 30 s) a code was accepted for, so that no code
-- works twice (RFC 6238 §5.2).
CREATE TABLE mfa_factors (
    user_id      bigint PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    secret       text NOT NULL,
    last_step    bigint NOT NULL DEFAULT 0,
    created_at   timestamptz NOT NULL DEFAULT now(),
    confirmed_at timestamptz
);

-- mfa_recovery_codes holds the SHA-256 of each unused recovery code (50 random bits
-- each, and wrong guesses spend the login throttle, so a fast hash is enough). A code
-- is deleted when it is used.
CREATE TABLE mfa_recovery_codes (
    user_id   bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    code_hash text NOT NULL,
    PRIMARY KEY (user_id, code_hash)
);
