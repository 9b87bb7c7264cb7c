-- Messenger, page comments and Instagram: message extras, the outbox, private replies, contact
-- merges, channel profiles. Registered as version 3 (version 2 belongs to another branch).

-- extras of a message: attachments, comment details, reactions, edits, the policy it was sent under
CREATE TABLE message_meta (
    message_id      TEXT PRIMARY KEY REFERENCES messages(id),
    meta            TEXT NOT NULL DEFAULT '{}',
    messaging_type  TEXT,
    tag             TEXT,
    updated_at      INTEGER NOT NULL
);

-- every outbound provider message is a row here first; the worker sends it exactly once
CREATE TABLE outbox (
    message_id           TEXT PRIMARY KEY REFERENCES messages(id),
    inbox_id             TEXT NOT NULL REFERENCES inboxes(id),
    conversation_id      TEXT NOT NULL,
    job                  TEXT NOT NULL,
    request              TEXT NOT NULL,
    state                TEXT NOT NULL CHECK (state IN ('queued','sending','sent','failed')),
    attempts             INTEGER NOT NULL DEFAULT 0,
    next_attempt_at      INTEGER NOT NULL,
    lease_until          INTEGER,
    queued_at            INTEGER NOT NULL,
    provider_message_id  TEXT,
    last_error           TEXT,
    updated_at           INTEGER NOT NULL
);
-- the worker's query: due rows by state and time
CREATE INDEX outbox_due ON outbox (state, next_attempt_at);
CREATE INDEX outbox_conversation ON outbox (conversation_id);

-- one private reply per comment
CREATE TABLE comment_private_replies (
    inbox_id    TEXT NOT NULL REFERENCES inboxes(id),
    comment_id  TEXT NOT NULL,
    message_id  TEXT NOT NULL REFERENCES messages(id),
    created_at  INTEGER NOT NULL,
    PRIMARY KEY (inbox_id, comment_id)
);
CREATE INDEX comment_private_replies_message ON comment_private_replies (message_id);

-- contact merges, with what moved so that they can be undone
CREATE TABLE contact_merges (
    id               TEXT PRIMARY KEY,
    from_contact_id  TEXT NOT NULL REFERENCES contacts(id),
    into_contact_id  TEXT NOT NULL REFERENCES contacts(id),
    reason           TEXT NOT NULL,
    actor_id         TEXT REFERENCES agents(id),
    undo             TEXT NOT NULL,
    created_at       INTEGER NOT NULL,
    undone_at        INTEGER
);
CREATE INDEX contact_merges_into ON contact_merges (into_contact_id, created_at);
CREATE INDEX contact_merges_from ON contact_merges (from_contact_id, created_at);

ALTER TABLE contacts ADD COLUMN avatar_url TEXT;
ALTER TABLE contacts ADD COLUMN merged_into TEXT;

-- webhooks find their inbox by the page / Instagram account id in the settings
CREATE INDEX inboxes_page_id ON inboxes (channel, json_extract(settings, '$.page_id'));
CREATE INDEX inboxes_ig_account_id ON inboxes (channel, json_extract(settings, '$.ig_account_id'));
