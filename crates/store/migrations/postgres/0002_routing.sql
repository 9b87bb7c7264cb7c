-- Routing (issue 6): per-inbox rules with the shared round-robin pointer, the waiting pool's order,
-- and durable timers. Every list query has an index (see the comment above each).

-- One row per inbox that has rules; no row = the defaults (self_claim, everything off).
-- rules: the JSON the API shows. strategy: copied out of it for the backlog query.
-- rr_last_agent_id / rr_version: the rotation pointer, moved with compare-and-set so every node
-- shares one fair rotation.
CREATE TABLE routing_rules (
    inbox_id          TEXT COLLATE "C" PRIMARY KEY REFERENCES inboxes(id),
    rules             TEXT COLLATE "C" NOT NULL,
    strategy          TEXT COLLATE "C" NOT NULL,
    rr_last_agent_id  TEXT COLLATE "C",
    rr_version        BIGINT NOT NULL DEFAULT 0,
    updated_at        BIGINT NOT NULL
);

-- Conversations waiting in the pool (pending, nobody holds them): since when, so the backlog
-- drains oldest first, and which agent routing must not hand it straight back to (the one who
-- just lost it). Kept in step with the conversation in the same transaction.
CREATE TABLE routing_pool (
    conversation_id    TEXT COLLATE "C" PRIMARY KEY REFERENCES conversations(id),
    inbox_id           TEXT COLLATE "C" NOT NULL REFERENCES inboxes(id),
    waiting_since      BIGINT NOT NULL,
    excluded_agent_id  TEXT COLLATE "C"
);
-- an inbox's backlog, longest waiting first
CREATE INDEX routing_pool_inbox_waiting ON routing_pool (inbox_id, waiting_since, conversation_id);

-- Durable timers: at most one per (conversation, kind). generation changes on every reschedule so
-- a runner holding an old copy cannot fire it; locked_by/locked_until is a runner's lease (on
-- PostgreSQL the claim becomes SELECT ... FOR UPDATE SKIP LOCKED).
CREATE TABLE timers (
    id               TEXT COLLATE "C" PRIMARY KEY,
    kind             TEXT COLLATE "C" NOT NULL,
    conversation_id  TEXT COLLATE "C" NOT NULL REFERENCES conversations(id),
    agent_id         TEXT COLLATE "C",
    due_at           BIGINT NOT NULL,
    generation       BIGINT NOT NULL,
    locked_by        TEXT COLLATE "C",
    locked_until     BIGINT,
    created_at       BIGINT NOT NULL
);
CREATE UNIQUE INDEX timers_conversation_kind ON timers (conversation_id, kind);
-- the runner's claim: due timers, earliest first
CREATE INDEX timers_due ON timers (due_at, id);
-- an agent's offline-release timers (cancelled when they come back)
CREATE INDEX timers_agent ON timers (agent_id, kind);
