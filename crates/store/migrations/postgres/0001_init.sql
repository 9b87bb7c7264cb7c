-- Switchboard schema, PostgreSQL flavour (the same tables as the SQLite one; text columns compare bytewise, like SQLite). Ids are UUIDv7 text; times are integer ms since the epoch;
-- JSON is text. Every list query has an index (see the comment above each).

CREATE TABLE workspaces (
    id          TEXT COLLATE "C" PRIMARY KEY,
    name        TEXT COLLATE "C" NOT NULL,
    created_at  BIGINT NOT NULL
);

CREATE TABLE agents (
    id             TEXT COLLATE "C" PRIMARY KEY,
    workspace_id   TEXT COLLATE "C" NOT NULL REFERENCES workspaces(id),
    email          TEXT COLLATE "C" NOT NULL,
    name           TEXT COLLATE "C" NOT NULL,
    role           TEXT COLLATE "C" NOT NULL CHECK (role IN ('admin','supervisor','agent')),
    password_hash  TEXT COLLATE "C" NOT NULL,
    capacity       BIGINT,
    active         BIGINT NOT NULL DEFAULT 1,
    created_at     BIGINT NOT NULL
);
CREATE UNIQUE INDEX agents_email ON agents (email);
CREATE INDEX agents_workspace ON agents (workspace_id, name);

CREATE TABLE sessions (
    token_hash  TEXT COLLATE "C" PRIMARY KEY,
    agent_id    TEXT COLLATE "C" NOT NULL REFERENCES agents(id),
    csrf_token  TEXT COLLATE "C" NOT NULL,
    created_at  BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL,
    revoked_at  BIGINT
);
CREATE INDEX sessions_agent ON sessions (agent_id);

CREATE TABLE inboxes (
    id            TEXT COLLATE "C" PRIMARY KEY,
    workspace_id  TEXT COLLATE "C" NOT NULL REFERENCES workspaces(id),
    name          TEXT COLLATE "C" NOT NULL,
    channel       TEXT COLLATE "C" NOT NULL,
    settings      TEXT COLLATE "C" NOT NULL DEFAULT '{}',
    created_at    BIGINT NOT NULL
);
CREATE INDEX inboxes_workspace ON inboxes (workspace_id, name);

CREATE TABLE inbox_members (
    inbox_id  TEXT COLLATE "C" NOT NULL REFERENCES inboxes(id),
    agent_id  TEXT COLLATE "C" NOT NULL REFERENCES agents(id),
    PRIMARY KEY (inbox_id, agent_id)
);
CREATE INDEX inbox_members_agent ON inbox_members (agent_id, inbox_id);

CREATE TABLE contacts (
    id            TEXT COLLATE "C" PRIMARY KEY,
    workspace_id  TEXT COLLATE "C" NOT NULL REFERENCES workspaces(id),
    name          TEXT COLLATE "C",
    phone         TEXT COLLATE "C",
    email         TEXT COLLATE "C",
    notes         TEXT COLLATE "C",
    created_at    BIGINT NOT NULL,
    updated_at    BIGINT NOT NULL
);

CREATE TABLE contact_identities (
    inbox_id     TEXT COLLATE "C" NOT NULL REFERENCES inboxes(id),
    external_id  TEXT COLLATE "C" NOT NULL,
    contact_id   TEXT COLLATE "C" NOT NULL REFERENCES contacts(id),
    created_at   BIGINT NOT NULL,
    PRIMARY KEY (inbox_id, external_id)
);
CREATE INDEX contact_identities_contact ON contact_identities (contact_id);

CREATE TABLE conversations (
    id                        TEXT COLLATE "C" PRIMARY KEY,
    workspace_id              TEXT COLLATE "C" NOT NULL REFERENCES workspaces(id),
    inbox_id                  TEXT COLLATE "C" NOT NULL REFERENCES inboxes(id),
    contact_id                TEXT COLLATE "C" NOT NULL REFERENCES contacts(id),
    status                    TEXT COLLATE "C" NOT NULL CHECK (status IN ('bot','pending','open','resolved')),
    assignee_id               TEXT COLLATE "C" REFERENCES agents(id),
    last_assignee_id          TEXT COLLATE "C" REFERENCES agents(id),
    participants              TEXT COLLATE "C" NOT NULL DEFAULT '[]',
    tags                      TEXT COLLATE "C" NOT NULL DEFAULT '[]',
    last_customer_message_at  BIGINT,
    last_agent_reply_at       BIGINT,
    last_activity_at          BIGINT NOT NULL,
    last_message_preview      TEXT COLLATE "C",
    unread_count              BIGINT NOT NULL DEFAULT 0,
    created_at                BIGINT NOT NULL,
    version                   BIGINT NOT NULL
);
-- one conversation per customer per inbox; it is reopened, never duplicated
CREATE UNIQUE INDEX conversations_contact_inbox ON conversations (contact_id, inbox_id);
-- list views: all / by inbox / by status / by assignee, newest activity first
CREATE INDEX conversations_activity ON conversations (last_activity_at DESC, id DESC);
CREATE INDEX conversations_inbox_activity ON conversations (inbox_id, last_activity_at DESC, id DESC);
CREATE INDEX conversations_status_activity ON conversations (status, last_activity_at DESC, id DESC);
CREATE INDEX conversations_assignee_activity ON conversations (assignee_id, status, last_activity_at DESC, id DESC);

CREATE TABLE tags (
    id            TEXT COLLATE "C" PRIMARY KEY,
    workspace_id  TEXT COLLATE "C" NOT NULL REFERENCES workspaces(id),
    name          TEXT COLLATE "C" NOT NULL,
    created_at    BIGINT NOT NULL
);
CREATE UNIQUE INDEX tags_name ON tags (workspace_id, name);

-- the tag filter of the list view
CREATE TABLE conversation_tags (
    tag_id           TEXT COLLATE "C" NOT NULL REFERENCES tags(id),
    conversation_id  TEXT COLLATE "C" NOT NULL REFERENCES conversations(id),
    PRIMARY KEY (tag_id, conversation_id)
);
CREATE INDEX conversation_tags_conversation ON conversation_tags (conversation_id);

CREATE TABLE messages (
    id                   TEXT COLLATE "C" PRIMARY KEY,
    conversation_id      TEXT COLLATE "C" NOT NULL REFERENCES conversations(id),
    inbox_id             TEXT COLLATE "C" NOT NULL REFERENCES inboxes(id),
    direction            TEXT COLLATE "C" NOT NULL,
    sender_kind          TEXT COLLATE "C" NOT NULL,
    sender_agent_id      TEXT COLLATE "C" REFERENCES agents(id),
    kind                 TEXT COLLATE "C" NOT NULL,
    body                 TEXT COLLATE "C" NOT NULL,
    provider_message_id  TEXT COLLATE "C",
    delivery_status      TEXT COLLATE "C" NOT NULL,
    failure_reason       TEXT COLLATE "C",
    created_at           BIGINT NOT NULL
);
-- redelivery of the same provider message collapses to one row
CREATE UNIQUE INDEX messages_provider_id ON messages (inbox_id, provider_message_id);
-- the thread, paged backwards
CREATE INDEX messages_thread ON messages (conversation_id, created_at DESC, id DESC);

CREATE TABLE action_log (
    id               TEXT COLLATE "C" PRIMARY KEY,
    conversation_id  TEXT COLLATE "C" NOT NULL REFERENCES conversations(id),
    kind             TEXT COLLATE "C" NOT NULL,
    actor_id         TEXT COLLATE "C" REFERENCES agents(id),
    detail           TEXT COLLATE "C" NOT NULL DEFAULT 'null',
    created_at       BIGINT NOT NULL
);
CREATE INDEX action_log_conversation ON action_log (conversation_id, created_at, id);

CREATE TABLE quick_replies (
    id            TEXT COLLATE "C" PRIMARY KEY,
    workspace_id  TEXT COLLATE "C" NOT NULL REFERENCES workspaces(id),
    code          TEXT COLLATE "C" NOT NULL,
    body          TEXT COLLATE "C" NOT NULL,
    created_at    BIGINT NOT NULL
);
CREATE UNIQUE INDEX quick_replies_code ON quick_replies (workspace_id, code);

-- the realtime log: every pushed event, so a reconnecting client catches up with ?since=
CREATE TABLE events (
    seq              BIGINT PRIMARY KEY,
    workspace_id     TEXT COLLATE "C" NOT NULL,
    inbox_id         TEXT COLLATE "C",
    conversation_id  TEXT COLLATE "C",
    kind             TEXT COLLATE "C" NOT NULL,
    payload          TEXT COLLATE "C" NOT NULL,
    created_at       BIGINT NOT NULL
);
CREATE INDEX events_inbox ON events (inbox_id, seq);

-- The last event number handed out. Every transaction that writes events moves it as its last
-- statement, so event-producing commits happen in seq order across all nodes: once a client has
-- seen seq N, nothing below N can still appear (see postgres/mod.rs).
CREATE TABLE event_counter (
    id        BIGINT PRIMARY KEY CHECK (id = 1),
    last_seq  BIGINT NOT NULL
);
INSERT INTO event_counter (id, last_seq) VALUES (1, 0);

-- key/value settings the server keeps for itself (e.g. its generated signing key)
CREATE TABLE server_settings (
    key    TEXT COLLATE "C" PRIMARY KEY,
    value  TEXT COLLATE "C" NOT NULL
);
