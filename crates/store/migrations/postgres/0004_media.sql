-- Files attached to messages. The file itself lives under <data_dir>/media/<id>.
-- An attachment row is written before its message (so a message never points at nothing);
-- rows whose message never committed are harmless leftovers.
CREATE TABLE attachments (
    id               TEXT COLLATE "C" PRIMARY KEY,
    conversation_id  TEXT COLLATE "C" NOT NULL REFERENCES conversations(id),
    message_id       TEXT COLLATE "C" NOT NULL,
    filename         TEXT COLLATE "C" NOT NULL,
    content_type     TEXT COLLATE "C" NOT NULL,
    size_bytes       BIGINT NOT NULL,
    created_at       BIGINT NOT NULL
);
CREATE INDEX attachments_message ON attachments (message_id);
-- the media gallery of a conversation, newest first
CREATE INDEX attachments_conversation ON attachments (conversation_id, created_at DESC, id DESC);
