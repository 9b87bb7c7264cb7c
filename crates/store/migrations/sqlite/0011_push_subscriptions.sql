-- Agents' Web Push subscriptions (store/src/push.rs): one row per browser endpoint.
CREATE TABLE push_subscriptions (
    endpoint   TEXT PRIMARY KEY,
    agent_id   TEXT NOT NULL REFERENCES agents(id),
    p256dh     TEXT NOT NULL,
    auth       TEXT NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE INDEX push_subscriptions_agent ON push_subscriptions (agent_id, created_at);
