-- Comment rules (docs/comment-rules.md): a Page's or Instagram account's rules and per-post
-- overrides; the ledger of what rules did to each comment (one row per comment and action, so an
-- action happens at most once across restarts and nodes; pending rows are the comment outbox);
-- posts with their counters; who already commented on a post; flows waiting for the answer to a
-- private reply.
CREATE TABLE comment_rules (
    inbox_id      TEXT COLLATE "C" NOT NULL REFERENCES inboxes(id),
    -- '' : the Page's (account's) own rules; else a post's override
    post_id       TEXT COLLATE "C" NOT NULL,
    workspace_id  TEXT COLLATE "C" NOT NULL,
    rules         TEXT NOT NULL,
    version       BIGINT NOT NULL,
    updated_at    BIGINT NOT NULL,
    PRIMARY KEY (inbox_id, post_id)
);
CREATE TABLE comment_actions (
    message_id       TEXT COLLATE "C" NOT NULL,
    action           TEXT NOT NULL,
    workspace_id     TEXT COLLATE "C" NOT NULL,
    inbox_id         TEXT COLLATE "C" NOT NULL,
    conversation_id  TEXT COLLATE "C" NOT NULL,
    post_id          TEXT COLLATE "C" NOT NULL,
    comment_id       TEXT COLLATE "C" NOT NULL,
    payload          TEXT NOT NULL,
    status           TEXT NOT NULL,
    attempts         BIGINT NOT NULL,
    due_at           BIGINT NOT NULL,
    locked_by        TEXT,
    locked_until     BIGINT,
    result           TEXT,
    created_at       BIGINT NOT NULL,
    done_at          BIGINT,
    PRIMARY KEY (message_id, action)
);
CREATE INDEX comment_actions_due ON comment_actions (due_at, message_id) WHERE status = 'pending';
CREATE INDEX comment_actions_post ON comment_actions (inbox_id, post_id, action);
CREATE TABLE comment_posts (
    inbox_id         TEXT COLLATE "C" NOT NULL,
    post_id          TEXT COLLATE "C" NOT NULL,
    workspace_id     TEXT COLLATE "C" NOT NULL,
    post_link        TEXT,
    comments         BIGINT NOT NULL,
    hidden           BIGINT NOT NULL,
    replied          BIGINT NOT NULL,
    private_replied  BIGINT NOT NULL,
    liked            BIGINT NOT NULL,
    first_at         BIGINT NOT NULL,
    last_at          BIGINT NOT NULL,
    PRIMARY KEY (inbox_id, post_id)
);
CREATE INDEX comment_posts_recent ON comment_posts (inbox_id, last_at);
CREATE TABLE comment_seen (
    message_id  TEXT COLLATE "C" PRIMARY KEY,
    inbox_id    TEXT COLLATE "C" NOT NULL,
    post_id     TEXT COLLATE "C" NOT NULL,
    person      TEXT COLLATE "C" NOT NULL,
    at          BIGINT NOT NULL
);
CREATE INDEX comment_seen_person ON comment_seen (inbox_id, post_id, person, at);
CREATE TABLE comment_answer_flows (
    conversation_id  TEXT COLLATE "C" PRIMARY KEY,
    flow_id          TEXT COLLATE "C" NOT NULL,
    created_at       BIGINT NOT NULL
);
-- Customers' comments the rules have not decided yet (a node stopped between the commit and the
-- decision): found again by the sweep.
CREATE INDEX messages_comments ON messages (created_at, id) WHERE kind = 'comment' AND direction = 'inbound';
