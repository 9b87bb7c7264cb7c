//! Agents' Web Push subscriptions: where each of an agent's browsers can be reached while the app
//! is closed; and what each agent wants to be notified of. One row per endpoint (a browser's subscription is its endpoint); an endpoint that
//! subscribes again — the same browser, another agent signed in — moves to that agent.

use crate::Result;
use crate::rows::uuid_of;
use crate::sql::{Db, RowRead, q};
use async_trait::async_trait;
use switchboard_core::*;
use tracing::instrument;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushSubscription {
    pub endpoint: String,
    pub agent_id: AgentId,
    /// The browser's public key and secret, base64url, as it gave them.
    pub p256dh: String,
    pub auth: String,
    pub created_at: Timestamp,
}

#[async_trait]
pub trait PushStore {
    /// Saves a subscription (an endpoint already known is replaced, whoever had it).
    async fn save_push_subscription(&self, s: &PushSubscription) -> Result<()>;
    /// An agent's subscriptions, oldest first.
    async fn push_subscriptions(&self, agent: AgentId) -> Result<Vec<PushSubscription>>;
    /// Forgets an endpoint (for this agent only, when `agent` is given). True if one was removed.
    async fn delete_push_subscription(
        &self,
        endpoint: &str,
        agent: Option<AgentId>,
    ) -> Result<bool>;
    /// What the agent wants to be notified of (the default until they chose).
    async fn notification_prefs(
        &self,
        agent: AgentId,
    ) -> Result<switchboard_core::notifications::NotificationPrefs>;
    async fn set_notification_prefs(
        &self,
        agent: AgentId,
        prefs: &switchboard_core::notifications::NotificationPrefs,
        now: Timestamp,
    ) -> Result<()>;
}

fn row(r: &impl RowRead) -> Result<PushSubscription> {
    Ok(PushSubscription {
        endpoint: r.try_get("endpoint")?,
        agent_id: AgentId(uuid_of(r, "agent_id")?),
        p256dh: r.try_get("p256dh")?,
        auth: r.try_get("auth")?,
        created_at: Timestamp(r.try_get("created_at")?),
    })
}

#[async_trait]
impl<D: Db> PushStore for D {
    #[instrument(skip_all)]
    async fn notification_prefs(
        &self,
        agent: AgentId,
    ) -> Result<switchboard_core::notifications::NotificationPrefs> {
        let stored: Option<String> =
            q("SELECT notifications FROM agent_preferences WHERE agent_id = $1")
                .bind(agent.to_string())
                .read_opt(self, |r| Ok(r.try_get("notifications")?))
                .await?;
        Ok(switchboard_core::notifications::NotificationPrefs::from_stored(stored.as_deref()))
    }

    #[instrument(skip_all)]
    async fn set_notification_prefs(
        &self,
        agent: AgentId,
        prefs: &switchboard_core::notifications::NotificationPrefs,
        now: Timestamp,
    ) -> Result<()> {
        let json = serde_json::to_string(prefs).unwrap_or_default();
        q("INSERT INTO agent_preferences (agent_id, notifications, updated_at) VALUES ($1, $2, $3) \
           ON CONFLICT (agent_id) DO UPDATE SET notifications = excluded.notifications, updated_at = excluded.updated_at")
            .bind(agent.to_string())
            .bind(json)
            .bind(now.millis())
            .write(self)
            .await?;
        Ok(())
    }

    #[instrument(skip_all)]
    async fn save_push_subscription(&self, s: &PushSubscription) -> Result<()> {
        q("INSERT INTO push_subscriptions (endpoint, agent_id, p256dh, auth, created_at) VALUES ($1, $2, $3, $4, $5) \
           ON CONFLICT (endpoint) DO UPDATE SET agent_id = excluded.agent_id, p256dh = excluded.p256dh, auth = excluded.auth, created_at = excluded.created_at")
            .bind(&s.endpoint)
            .bind(s.agent_id.to_string())
            .bind(&s.p256dh)
            .bind(&s.auth)
            .bind(s.created_at.millis())
            .write(self)
            .await?;
        Ok(())
    }

    #[instrument(skip_all)]
    async fn push_subscriptions(&self, agent: AgentId) -> Result<Vec<PushSubscription>> {
        q("SELECT * FROM push_subscriptions WHERE agent_id = $1 ORDER BY created_at, endpoint")
            .bind(agent.to_string())
            .read_all(self, row)
            .await
    }

    #[instrument(skip_all)]
    async fn delete_push_subscription(
        &self,
        endpoint: &str,
        agent: Option<AgentId>,
    ) -> Result<bool> {
        let done = match agent {
            Some(a) => {
                q("DELETE FROM push_subscriptions WHERE endpoint = $1 AND agent_id = $2")
                    .bind(endpoint)
                    .bind(a.to_string())
                    .write(self)
                    .await?
            }
            None => {
                q("DELETE FROM push_subscriptions WHERE endpoint = $1")
                    .bind(endpoint)
                    .write(self)
                    .await?
            }
        };
        Ok(done.rows_affected() > 0)
    }
}
