-- Switchboard schema, SQLite flavour. Ids are UUIDv7 text; times are integer ms since the epoch;
-- JSON is text. Every list query has an index (see the comment above each).

CREATE TABLE workspaces (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    created_at  INTEGER NOT NULL
);

CREATE TABLE agents (
    id             TEXT PRIMARY KEY,
    workspace_id   TEXT NOT NULL REFERENCES workspaces(id),
    email          TEXT NOT NULL,
    name           TEXT NOT NULL,
    role           TEXT NOT NULL CHECK (role IN ('admin','supervisor','agent')),
    password_hash  TEXT NOT NULL,
    capacity       INTEGER,
    active         INTEGER NOT NULL DEFAULT 1,
    created_at     INTEGER NOT NULL
);
CREATE UNIQUE INDEX agents_email ON agents (email);
CREATE INDEX agents_workspace ON agents (workspace_id, name);

CREATE TABLE sessions (
    token_hash  TEXT PRIMARY KEY,
    agent_id    TEXT NOT NULL REFERENCES agents(id),
    csrf_token  TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL,
    revoked_at  INTEGER
);
CREATE INDEX sessions_agent ON sessions (agent_id);

CREATE TABLE inboxes (
    id            TEXT PRIMARY KEY,
    workspace_id  TEXT NOT NULL REFERENCES workspaces(id),
    name          TEXT NOT NULL,
    channel       TEXT NOT NULL,
    settings      TEXT NOT NULL DEFAULT '{}',
    created_at    INTEGER NOT NULL
);
CREATE INDEX inboxes_workspace ON inboxes (workspace_id, name);

CREATE TABLE inbox_members (
    inbox_id  TEXT NOT NULL REFERENCES inboxes(id),
    agent_id  TEXT NOT NULL REFERENCES agents(id),
    PRIMARY KEY (inbox_id, agent_id)
);
CREATE INDEX inbox_members_agent ON inbox_members (agent_id, inbox_id);

CREATE TABLE contacts (
    id            TEXT PRIMARY KEY,
    workspace_id  TEXT NOT NULL REFERENCES workspaces(id),
    name          TEXT,
    phone         TEXT,
    email         TEXT,
    notes         TEXT,
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL
);

CREATE TABLE contact_identities (
    inbox_id     TEXT NOT NULL REFERENCES inboxes(id),
    external_id  TEXT NOT NULL,
    contact_id   TEXT NOT NULL REFERENCES contacts(id),
    created_at   INTEGER NOT NULL,
    PRIMARY KEY (inbox_id, external_id)
);
CREATE INDEX contact_identities_contact ON contact_identities (contact_id);

CREATE TABLE conversations (
    id                        TEXT PRIMARY KEY,
    workspace_id              TEXT NOT NULL REFERENCES workspaces(id),
    inbox_id                  TEXT NOT NULL REFERENCES inboxes(id),
    contact_id                TEXT NOT NULL REFERENCES contacts(id),
    status                    TEXT NOT NULL CHECK (status IN ('bot','pending','open','resolved')),
    assignee_id               TEXT REFERENCES agents(id),
    last_assignee_id          TEXT REFERENCES agents(id),
    participants              TEXT NOT NULL DEFAULT '[]',
    tags                      TEXT NOT NULL DEFAULT '[]',
    last_customer_message_at  INTEGER,
    last_agent_reply_at       INTEGER,
    last_activity_at          INTEGER NOT NULL,
    last_message_preview      TEXT,
    unread_count              INTEGER NOT NULL DEFAULT 0,
    created_at                INTEGER NOT NULL,
    version                   INTEGER NOT NULL
);
-- one conversation per customer per inbox; it is reopened, never duplicated
CREATE UNIQUE INDEX conversations_contact_inbox ON conversations (contact_id, inbox_id);
-- list views: all / by inbox / by status / by assignee, newest activity first
CREATE INDEX conversations_activity ON conversations (last_activity_at DESC, id DESC);
CREATE INDEX conversations_inbox_activity ON conversations (inbox_id, last_activity_at DESC, id DESC);
CREATE INDEX conversations_status_activity ON conversations (status, last_activity_at DESC, id DESC);
CREATE INDEX conversations_assignee_activity ON conversations (assignee_id, status, last_activity_at DESC, id DESC);

CREATE TABLE tags (
    id            TEXT PRIMARY KEY,
    workspace_id  TEXT NOT NULL REFERENCES workspaces(id),
    name          TEXT NOT NULL,
    created_at    INTEGER NOT NULL
);
CREATE UNIQUE INDEX tags_name ON tags (workspace_id, name);

-- the tag filter of the list view
CREATE TABLE conversation_tags (
    tag_id           TEXT NOT NULL REFERENCES tags(id),
    conversation_id  TEXT NOT NULL REFERENCES conversations(id),
    PRIMARY KEY (tag_id, conversation_id)
);
CREATE INDEX conversation_tags_conversation ON conversation_tags (conversation_id);

CREATE TABLE messages (
    id                   TEXT PRIMARY KEY,
    conversation_id      TEXT NOT NULL REFERENCES conversations(id),
    inbox_id             TEXT NOT NULL REFERENCES inboxes(id),
    direction            TEXT NOT NULL,
    sender_kind          TEXT NOT NULL,
    sender_agent_id      TEXT REFERENCES agents(id),
    kind                 TEXT NOT NULL,
    body                 TEXT NOT NULL,
    provider_message_id  TEXT,
    delivery_status      TEXT NOT NULL,
    failure_reason       TEXT,
    created_at           INTEGER NOT NULL
);
-- redelivery of the same provider message collapses to one row
CREATE UNIQUE INDEX messages_provider_id ON messages (inbox_id, provider_message_id);
-- the thread, paged backwards
CREATE INDEX messages_thread ON messages (conversation_id, created_at DESC, id DESC);

CREATE TABLE action_log (
    id               TEXT PRIMARY KEY,
    conversation_id  TEXT NOT NULL REFERENCES conversations(id),
    kind             TEXT NOT NULL,
    actor_id         TEXT REFERENCES agents(id),
    detail           TEXT NOT NULL DEFAULT 'null',
    created_at       INTEGER NOT NULL
);
CREATE INDEX action_log_conversation ON action_log (conversation_id, created_at, id);

CREATE TABLE quick_replies (
    id            TEXT PRIMARY KEY,
    workspace_id  TEXT NOT NULL REFERENCES workspaces(id),
    code          TEXT NOT NULL,
    body          TEXT NOT NULL,
    created_at    INTEGER NOT NULL
);
CREATE UNIQUE INDEX quick_replies_code ON quick_replies (workspace_id, code);

-- the realtime log: every pushed event, so a reconnecting client catches up with ?since=
CREATE TABLE events (
    seq              INTEGER PRIMARY KEY AUTOINCREMENT,
    workspace_id     TEXT NOT NULL,
    inbox_id         TEXT,
    conversation_id  TEXT,
    kind             TEXT NOT NULL,
    payload          TEXT NOT NULL,
    created_at       INTEGER NOT NULL
);
CREATE INDEX events_inbox ON events (inbox_id, seq);

-- key/value settings the server keeps for itself (e.g. its generated signing key)
CREATE TABLE server_settings (
    key    TEXT PRIMARY KEY,
    value  TEXT NOT NULL
);
