-- Accounts fit for PHI: disabling an account, ending its sessions, a lockout that
-- strangers cannot turn on a victim, password-reset requests handled off the request
-- path, and an audit log keyed with a secret the database does not hold.

-- A disabled account cannot log in and its chat and mail identities write nothing.
-- session_epoch is raised whenever all of a user's sessions must end (disable, revoke,
-- reset by staff, password change): each session remembers the epoch it began in, so
-- one that an in-flight request writes back after its row was deleted still ends.
ALTER TABLE users ADD COLUMN disabled_at timestamptz;
ALTER TABLE users ADD COLUMN session_epoch bigint NOT NULL DEFAULT 0;

-- What a user (and staff through the CLI) sees of each session. scs's upsert names
-- only token, data and expiry, so these keep their values across its writes.
ALTER TABLE sessions ADD COLUMN id bigserial;
ALTER TABLE sessions ADD COLUMN created_at timestamptz NOT NULL DEFAULT now();
ALTER TABLE sessions ADD COLUMN ip text NOT NULL DEFAULT '';
ALTER TABLE sessions ADD COLUMN user_agent text NOT NULL DEFAULT '';
CREATE UNIQUE INDEX sessions_id_key ON sessions (id);

-- Secrets the instances share and nobody configures: the key that signs device
-- cookies (a leak lets a thief skip the stranger lockout of one account, no more).
CREATE TABLE app_keys (
    name       text PRIMARY KEY,
    key        bytea NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);

-- "Forgot your password?" only queues the address here, the same one INSERT for a
-- known and an unknown address; a worker looks it up, issues the code and audits.
CREATE TABLE reset_queue (
    id         bigserial PRIMARY KEY,
    email      text NOT NULL,
    ip         text NOT NULL DEFAULT '',
    user_agent text NOT NULL DEFAULT '',
    created_at timestamptz NOT NULL DEFAULT now()
);

-- chain_version 1: the unkeyed SHA-256 chain of the rows written before this
-- migration (and by instances without --audit-key-file until the first keyed row);
-- 2: HMAC-SHA256 under the audit key. os_user names who ran a CLI command.
ALTER TABLE audit_log ADD COLUMN chain_version smallint NOT NULL DEFAULT 1;
ALTER TABLE audit_log ADD COLUMN os_user text NOT NULL DEFAULT '';
