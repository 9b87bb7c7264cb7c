-- Messenger, page comments and Instagram: message extras, the outbox, private replies, contact
-- merges, channel profiles. Registered as version 3 (version 2 belongs to another branch).

-- extras of a message: attachments, comment details, reactions, edits, the policy it was sent under
CREATE TABLE message_meta (
    message_id      TEXT COLLATE "C" PRIMARY KEY REFERENCES messages(id),
    meta            TEXT COLLATE "C" NOT NULL DEFAULT '{}',
    messaging_type  TEXT COLLATE "C",
    tag             TEXT COLLATE "C",
    updated_at      BIGINT NOT NULL
);

-- every outbound provider message is a row here first; the worker sends it exactly once
CREATE TABLE outbox (
    message_id           TEXT COLLATE "C" PRIMARY KEY REFERENCES messages(id),
    inbox_id             TEXT COLLATE "C" NOT NULL REFERENCES inboxes(id),
    conversation_id      TEXT COLLATE "C" NOT NULL,
    job                  TEXT COLLATE "C" NOT NULL,
    request              TEXT COLLATE "C" NOT NULL,
    state                TEXT COLLATE "C" NOT NULL CHECK (state IN ('queued','sending','sent','failed')),
    attempts             BIGINT NOT NULL DEFAULT 0,
    next_attempt_at      BIGINT NOT NULL,
    lease_until          BIGINT,
    queued_at            BIGINT NOT NULL,
    provider_message_id  TEXT COLLATE "C",
    last_error           TEXT COLLATE "C",
    updated_at           BIGINT NOT NULL
);
-- the worker's query: due rows by state and time
CREATE INDEX outbox_due ON outbox (state, next_attempt_at);
CREATE INDEX outbox_conversation ON outbox (conversation_id);

-- one private reply per comment
CREATE TABLE comment_private_replies (
    inbox_id    TEXT COLLATE "C" NOT NULL REFERENCES inboxes(id),
    comment_id  TEXT COLLATE "C" NOT NULL,
    message_id  TEXT COLLATE "C" NOT NULL REFERENCES messages(id),
    created_at  BIGINT NOT NULL,
    PRIMARY KEY (inbox_id, comment_id)
);
CREATE INDEX comment_private_replies_message ON comment_private_replies (message_id);

-- contact merges, with what moved so that they can be undone
CREATE TABLE contact_merges (
    id               TEXT COLLATE "C" PRIMARY KEY,
    from_contact_id  TEXT COLLATE "C" NOT NULL REFERENCES contacts(id),
    into_contact_id  TEXT COLLATE "C" NOT NULL REFERENCES contacts(id),
    reason           TEXT COLLATE "C" NOT NULL,
    actor_id         TEXT COLLATE "C" REFERENCES agents(id),
    undo             TEXT COLLATE "C" NOT NULL,
    created_at       BIGINT NOT NULL,
    undone_at        BIGINT
);
CREATE INDEX contact_merges_into ON contact_merges (into_contact_id, created_at);
CREATE INDEX contact_merges_from ON contact_merges (from_contact_id, created_at);

ALTER TABLE contacts ADD COLUMN avatar_url TEXT COLLATE "C";
ALTER TABLE contacts ADD COLUMN merged_into TEXT COLLATE "C";

-- webhooks find their inbox by the page / Instagram account id in the settings
CREATE INDEX inboxes_page_id ON inboxes (channel, (settings::json ->> 'page_id'));
CREATE INDEX inboxes_ig_account_id ON inboxes (channel, (settings::json ->> 'ig_account_id'));
