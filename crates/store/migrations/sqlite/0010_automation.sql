-- Automation (docs/flows.md): flows and every saved version of them, runs (one going per
-- conversation at most), scheduled flows per customer, the workspace's FAQ and handoff phrases,
-- contact fields that flows fill in, and the per-conversation auto-reply switch.
CREATE TABLE flows (
    id            TEXT PRIMARY KEY,
    workspace_id  TEXT NOT NULL REFERENCES workspaces(id),
    name          TEXT NOT NULL,
    active        INTEGER NOT NULL,
    version       INTEGER NOT NULL,
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL
);
CREATE INDEX flows_workspace ON flows (workspace_id, name);
-- A run keeps the version it started with, so versions outlive edits (and the flow itself).
CREATE TABLE flow_versions (
    flow_id     TEXT NOT NULL,
    version     INTEGER NOT NULL,
    definition  TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    PRIMARY KEY (flow_id, version)
);
CREATE TABLE flow_runs (
    id               TEXT PRIMARY KEY,
    workspace_id     TEXT NOT NULL,
    flow_id          TEXT NOT NULL,
    flow_version     INTEGER NOT NULL,
    conversation_id  TEXT NOT NULL REFERENCES conversations(id),
    contact_id       TEXT NOT NULL,
    state            TEXT NOT NULL,
    -- where the conversation goes back to when the run ends without a handoff
    resume           TEXT NOT NULL,
    revision         INTEGER NOT NULL,
    started_at       INTEGER NOT NULL,
    ended_at         INTEGER,
    end_reason       TEXT,
    wakes_at         INTEGER,
    locked_by        TEXT,
    locked_until     INTEGER
);
CREATE UNIQUE INDEX flow_runs_going ON flow_runs (conversation_id) WHERE ended_at IS NULL;
CREATE INDEX flow_runs_contact ON flow_runs (contact_id, flow_id, started_at);
CREATE INDEX flow_runs_conversation ON flow_runs (conversation_id, started_at);
CREATE INDEX flow_runs_wake ON flow_runs (wakes_at, id) WHERE ended_at IS NULL AND wakes_at IS NOT NULL;
CREATE TABLE scheduled_flows (
    id               TEXT PRIMARY KEY,
    workspace_id     TEXT NOT NULL,
    contact_id       TEXT NOT NULL,
    conversation_id  TEXT NOT NULL REFERENCES conversations(id),
    flow_id          TEXT NOT NULL,
    attached_at      INTEGER NOT NULL,
    attached_by      TEXT,
    send_at          INTEGER NOT NULL,
    within_hours     TEXT,
    status           TEXT NOT NULL,
    reason           TEXT,
    done_at          INTEGER,
    locked_by        TEXT,
    locked_until     INTEGER
);
CREATE INDEX scheduled_flows_due ON scheduled_flows (send_at, id) WHERE status = 'scheduled';
CREATE INDEX scheduled_flows_contact ON scheduled_flows (contact_id, attached_at);
CREATE TABLE faqs (
    workspace_id     TEXT PRIMARY KEY REFERENCES workspaces(id),
    faq              TEXT NOT NULL,
    handoff_phrases  TEXT,
    updated_at       INTEGER NOT NULL
);
CREATE TABLE contact_fields (
    contact_id  TEXT NOT NULL REFERENCES contacts(id),
    name        TEXT NOT NULL,
    value       TEXT NOT NULL,
    updated_at  INTEGER NOT NULL,
    PRIMARY KEY (contact_id, name)
);
CREATE TABLE auto_reply_off (
    conversation_id  TEXT PRIMARY KEY REFERENCES conversations(id),
    agent_id         TEXT,
    created_at       INTEGER NOT NULL
);
