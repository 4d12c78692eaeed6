-- Chat state shared by the Slack and Discord bots: which case a thread is about, files
-- waiting for their case to be named, and delivered event ids (platforms redeliver).

-- chat_threads ties a thread (Slack thread_ts, Discord reply chain) to the case the bot
-- first confirmed there, so later uploads in it need no reference. Kept here rather than
-- re-read from channel history: Slack limits conversations.replies to one call a minute.
CREATE TABLE chat_threads (
    platform    text NOT NULL CHECK (platform IN ('slack', 'discord')),
    workspace   text NOT NULL DEFAULT '',
    channel     text NOT NULL,
    thread      text NOT NULL,
    case_number bigint NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (platform, workspace, channel, thread)
);

-- chat_pending_files holds a file whose case was not named until someone answers the
-- bot's question or the hold expires. data is the bot's description of the file (name,
-- size, where to fetch it again); the bytes are not kept.
CREATE TABLE chat_pending_files (
    platform   text NOT NULL CHECK (platform IN ('slack', 'discord')),
    workspace  text NOT NULL DEFAULT '',
    channel    text NOT NULL,
    thread     text NOT NULL,
    author_id  text NOT NULL,
    file_id    text NOT NULL,
    data       jsonb NOT NULL,
    held_until timestamptz NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (platform, file_id)
);
CREATE INDEX chat_pending_files_thread_idx ON chat_pending_files (platform, workspace, channel, thread);
CREATE INDEX chat_pending_files_author_idx ON chat_pending_files (platform, workspace, channel, author_id);
CREATE INDEX chat_pending_files_held_idx ON chat_pending_files (held_until);

-- chat_events records delivered event ids, so an event delivered twice (Slack resends an
-- envelope whose ack it did not see) is handled once.
CREATE TABLE chat_events (
    platform   text NOT NULL CHECK (platform IN ('slack', 'discord')),
    event_id   text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (platform, event_id)
);
CREATE INDEX chat_events_created_idx ON chat_events (created_at);
