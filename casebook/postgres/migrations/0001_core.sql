-- Core schema: orgs, users and identities, channel bindings, cases and their timeline,
-- attachments, the outbox, the audit log and channel checkpoints.

CREATE TABLE orgs (
    id         bigserial PRIMARY KEY,
    name       text NOT NULL,
    domain     text NOT NULL DEFAULT '',
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX orgs_name_key ON orgs (lower(name));

CREATE TABLE users (
    id            bigserial PRIMARY KEY,
    org_id        bigint REFERENCES orgs (id),
    email         text NOT NULL,
    name          text NOT NULL DEFAULT '',
    staff         boolean NOT NULL DEFAULT false,
    password_hash text NOT NULL DEFAULT '',
    must_change_password boolean NOT NULL DEFAULT false,
    created_at    timestamptz NOT NULL DEFAULT now(),
    CHECK (staff OR org_id IS NOT NULL)
);
CREATE UNIQUE INDEX users_email_key ON users (lower(email));
CREATE INDEX users_org_idx ON users (org_id);

-- identities map a channel's author to a user; every user's email is one.
CREATE TABLE identities (
    kind    text NOT NULL CHECK (kind IN ('email', 'slack', 'discord')),
    value   text NOT NULL,
    user_id bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    PRIMARY KEY (kind, value)
);
CREATE INDEX identities_user_idx ON identities (user_id);

CREATE TABLE channel_bindings (
    platform  text NOT NULL CHECK (platform IN ('slack', 'discord')),
    workspace text NOT NULL DEFAULT '',
    channel   text NOT NULL,
    org_id    bigint NOT NULL REFERENCES orgs (id),
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (platform, channel, workspace)
);

CREATE SEQUENCE case_numbers;

CREATE TABLE cases (
    id           bigserial PRIMARY KEY,
    number       bigint NOT NULL UNIQUE DEFAULT nextval('case_numbers'),
    org_id       bigint NOT NULL REFERENCES orgs (id),
    requester_id bigint NOT NULL REFERENCES users (id),
    owner_id     bigint NOT NULL REFERENCES users (id),
    subject      text NOT NULL,
    status       text NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'pending', 'resolved', 'closed')),
    attachment_count integer NOT NULL DEFAULT 0,
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now()
);
ALTER SEQUENCE case_numbers OWNED BY cases.number;
-- The web page lists an org's (or an owner's) cases by most recent activity, keyset by (updated_at, id).
CREATE INDEX cases_org_activity_idx ON cases (org_id, status, updated_at DESC, id DESC);
CREATE INDEX cases_owner_activity_idx ON cases (owner_id, status, updated_at DESC, id DESC);

CREATE TABLE updates (
    id             bigserial PRIMARY KEY,
    case_id        bigint NOT NULL REFERENCES cases (id),
    source         text NOT NULL CHECK (source IN ('email', 'slack', 'discord', 'web', 'system')),
    external_id    text NOT NULL,
    author_user_id bigint REFERENCES users (id),
    author         text NOT NULL,
    body           text NOT NULL DEFAULT '',
    meta           jsonb NOT NULL DEFAULT '{}',
    created_at     timestamptz NOT NULL DEFAULT now(),
    UNIQUE (source, external_id)
);
CREATE INDEX updates_case_idx ON updates (case_id, created_at, id);

CREATE TABLE attachments (
    id           bigserial PRIMARY KEY,
    update_id    bigint NOT NULL REFERENCES updates (id),
    case_id      bigint NOT NULL REFERENCES cases (id),
    filename     text NOT NULL,
    content_type text NOT NULL,
    size         bigint NOT NULL,
    sha256       text NOT NULL,
    blob_key     text NOT NULL,
    inline       boolean NOT NULL DEFAULT false,
    created_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX attachments_case_idx ON attachments (case_id, id);
CREATE INDEX attachments_update_idx ON attachments (update_id);
CREATE INDEX attachments_blob_idx ON attachments (blob_key);

-- outbox holds every mail to send, written in the transaction of the change that caused it.
CREATE TABLE outbox (
    id              bigserial PRIMARY KEY,
    kind            text NOT NULL,
    case_id         bigint REFERENCES cases (id),
    update_id       bigint REFERENCES updates (id),
    user_id         bigint REFERENCES users (id),
    recipient       text NOT NULL,
    message_id      text NOT NULL UNIQUE,
    data            jsonb NOT NULL DEFAULT '{}',
    status          text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'sent', 'failed', 'suppressed')),
    attempts        integer NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    last_error      text NOT NULL DEFAULT '',
    created_at      timestamptz NOT NULL DEFAULT now(),
    sent_at         timestamptz
);
CREATE INDEX outbox_due_idx ON outbox (next_attempt_at, id) WHERE status = 'pending';
CREATE INDEX outbox_case_idx ON outbox (case_id, recipient, created_at);

-- audit_log is append-only: each row carries the hash of the one before, so an edit or a
-- deletion breaks the chain.
CREATE TABLE audit_log (
    id         bigserial PRIMARY KEY,
    at         timestamptz NOT NULL DEFAULT now(),
    user_id    bigint,
    org_id     bigint,
    action     text NOT NULL,
    object     text NOT NULL DEFAULT '',
    outcome    text NOT NULL,
    ip         text NOT NULL DEFAULT '',
    user_agent text NOT NULL DEFAULT '',
    prev_hash  text NOT NULL,
    hash       text NOT NULL
);
CREATE INDEX audit_log_user_idx ON audit_log (user_id, id);
CREATE INDEX audit_log_object_idx ON audit_log (object, id);

-- checkpoints are channel positions advanced with the update they belong to.
CREATE TABLE checkpoints (
    channel    text NOT NULL,
    key        text NOT NULL,
    value      text NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (channel, key)
);
