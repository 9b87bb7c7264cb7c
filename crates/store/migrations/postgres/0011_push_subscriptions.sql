-- Agents' Web Push subscriptions (store/src/push.rs): one row per browser endpoint.
CREATE TABLE push_subscriptions (
    endpoint   TEXT COLLATE "C" PRIMARY KEY,
    agent_id   TEXT COLLATE "C" NOT NULL REFERENCES agents(id),
    p256dh     TEXT NOT NULL,
    auth       TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX push_subscriptions_agent ON push_subscriptions (agent_id, created_at);
