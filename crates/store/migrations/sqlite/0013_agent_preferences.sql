-- What each agent wants to be notified of (store/src/push.rs), kept with the agent so every
-- browser and Web Push follow it. JSON text of core::notifications::NotificationPrefs.
CREATE TABLE agent_preferences (
    agent_id      TEXT PRIMARY KEY REFERENCES agents(id),
    notifications TEXT NOT NULL,
    updated_at    INTEGER NOT NULL
);
