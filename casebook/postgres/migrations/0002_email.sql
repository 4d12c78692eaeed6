-- Email channel: mail that was not added to a case, kept for a person to work through.
-- kind 'quarantined' waits for a decision (release onto a case or drop); kind 'ignored'
-- (auto-replies and bounces) is kept only so that nothing that arrived is invisible.
CREATE TABLE quarantine (
    id          bigserial PRIMARY KEY,
    kind        text NOT NULL CHECK (kind IN ('quarantined', 'ignored')),
    source      text NOT NULL,
    external_id text NOT NULL,
    reason      text NOT NULL,
    message_id  text NOT NULL DEFAULT '',
    sender      text NOT NULL DEFAULT '',
    subject     text NOT NULL DEFAULT '',
    -- case_number is the case the message seemed to name, when it named one.
    case_number bigint,
    -- raw_blob is the whole message as it arrived, in the blob store ('' when over the size limit).
    raw_blob    text NOT NULL DEFAULT '',
    body        text NOT NULL DEFAULT '',
    meta        jsonb NOT NULL DEFAULT '{}',
    status      text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'released', 'dropped')),
    update_id   bigint REFERENCES updates (id),
    created_at  timestamptz NOT NULL DEFAULT now(),
    resolved_at timestamptz,
    UNIQUE (source, external_id)
);
CREATE INDEX quarantine_pending_idx ON quarantine (kind, status, id);

-- Threading (In-Reply-To/References naming a mail casebook sent) looks ids up in the outbox;
-- its UNIQUE constraint already indexes message_id.
