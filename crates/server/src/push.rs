//! Web Push to agents' browsers: a conversation assigned or transferred to an agent reaches their
//! subscribed browsers even when the app is closed. The commit hook hands this node's committed
//! assignments over (so each is pushed once, by the node that made it, however many nodes run);
//! a task of its own encrypts and signs one request per subscription (`channels::webpush`) and
//! sends it. A push service that answers 404 or 410 has dropped the subscription: it is forgotten.

use crate::clock::Clock;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use rand::RngCore;
use std::sync::Arc;
use switchboard_channels::webpush::{self, Subscription, VapidKey};
use switchboard_core::event::{Event, EventKind};
use switchboard_core::{AgentId, ConversationId};
use switchboard_store::Store;
use tokio::sync::mpsc;

/// How long a push service may hold a push for a browser that is offline.
const TTL_SECS: u32 = 4 * 3600;

/// One assignment to tell an agent about.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Job {
    agent: AgentId,
    conversation: ConversationId,
    /// `assigned`, or `transferred` when someone held it before.
    kind: &'static str,
}

pub struct Pusher {
    key: VapidKey,
    jobs: mpsc::UnboundedSender<Job>,
}

impl Pusher {
    /// The key kept in the store (made on first start), and the sending task.
    pub async fn start(
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
        http: reqwest::Client,
        subject: String,
    ) -> anyhow::Result<Arc<Self>> {
        let saved = store
            .setting_init("vapid_private_key", &B64.encode(random_scalar()))
            .await?;
        let key = B64
            .decode(saved)
            .ok()
            .and_then(|b| VapidKey::from_bytes(&b).ok())
            .ok_or_else(|| anyhow::anyhow!("the stored VAPID key is not a P-256 key"))?;
        let (jobs, rx) = mpsc::unbounded_channel();
        let sender = Sender {
            store,
            clock,
            http,
            key: key.clone(),
            subject,
        };
        tokio::spawn(sender.run(rx));
        Ok(Arc::new(Self { key, jobs }))
    }

    /// The public key browsers subscribe with (`applicationServerKey`).
    pub fn public_key(&self) -> String {
        self.key.public_key_b64()
    }

    /// Called from the commit hook: picks the assignments out of this commit's events. Cheap and
    /// never waits (the store holds its write lock meanwhile).
    pub fn committed(&self, events: &[Event]) {
        for e in events {
            if let Some(job) = job_of(e) {
                let _ = self.jobs.send(job);
            }
        }
    }
}

/// A conversation that got a new holder.
fn job_of(e: &Event) -> Option<Job> {
    if e.kind != EventKind::ConversationAssigned {
        return None;
    }
    let conversation = e.conversation_id?;
    let to = e.payload.pointer("/conversation/assignee_id")?.as_str()?;
    let from = e
        .payload
        .get("previous_assignee_id")
        .and_then(|v| v.as_str());
    if from == Some(to) {
        return None;
    }
    Some(Job {
        agent: AgentId(uuid::Uuid::parse_str(to).ok()?),
        conversation,
        kind: if from.is_some() {
            "transferred"
        } else {
            "assigned"
        },
    })
}

struct Sender {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    http: reqwest::Client,
    key: VapidKey,
    subject: String,
}

impl Sender {
    async fn run(self, mut rx: mpsc::UnboundedReceiver<Job>) {
        while let Some(job) = rx.recv().await {
            if let Err(e) = self.push(&job).await {
                tracing::warn!(error = %e, agent = %job.agent, "web push not sent");
            }
        }
    }

    async fn push(&self, job: &Job) -> anyhow::Result<()> {
        let subs = self.store.push_subscriptions(job.agent).await?;
        if subs.is_empty()
            || !self
                .store
                .notification_prefs(job.agent)
                .await?
                .wants(job.kind)
        {
            return Ok(());
        }
        // What the agent did themselves (taking a customer, reopening) needs no push.
        let history = self.store.history(job.conversation).await?;
        if history.last().and_then(|h| h.actor_id) == Some(job.agent) {
            return Ok(());
        }
        let name = self
            .store
            .conversation_summary(job.conversation)
            .await?
            .and_then(|c| c.contact_name);
        // The browser words it in the agent's language (the app leaves it the strings).
        let payload = serde_json::json!({
            "kind": job.kind,
            "conversation_id": job.conversation,
            "name": name,
        })
        .to_string();
        let now_secs = self.clock.now().millis() / 1000;
        for s in subs {
            let Ok(sub) = Subscription::parse(&s.endpoint, &s.p256dh, &s.auth, true) else {
                continue;
            };
            let req = webpush::request(
                &sub,
                payload.as_bytes(),
                &self.key,
                &self.subject,
                now_secs,
                TTL_SECS,
                &random_scalar(),
                &random_salt(),
            )?;
            let mut call = self.http.post(&req.url).body(req.body);
            for (name, value) in req.headers {
                call = call.header(name, value);
            }
            match call.send().await {
                Ok(r) if r.status().is_success() => {}
                Ok(r) if matches!(r.status().as_u16(), 404 | 410) => {
                    self.store
                        .delete_push_subscription(&s.endpoint, None)
                        .await?;
                }
                Ok(r) => tracing::warn!(status = %r.status(), "push service refused a push"),
                Err(e) => tracing::warn!(error = %e, "push service unreachable"),
            }
        }
        Ok(())
    }
}

/// 32 random bytes that are a P-256 private key (all but one in 2^32 are).
fn random_scalar() -> [u8; 32] {
    loop {
        let mut b = [0u8; 32];
        rand::thread_rng().fill_bytes(&mut b);
        if VapidKey::from_bytes(&b).is_ok() {
            return b;
        }
    }
}

fn random_salt() -> [u8; 16] {
    let mut b = [0u8; 16];
    rand::thread_rng().fill_bytes(&mut b);
    b
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use switchboard_core::{Timestamp, WorkspaceId};

    fn event(kind: EventKind, payload: serde_json::Value) -> Event {
        Event {
            seq: 1,
            workspace_id: WorkspaceId(uuid::Uuid::nil()),
            inbox_id: None,
            conversation_id: Some(ConversationId(uuid::Uuid::nil())),
            kind,
            payload,
            created_at: Timestamp(0),
        }
    }

    #[test]
    fn only_a_new_holder_is_pushed() {
        let a = "0190a000-0000-7000-8000-000000000001";
        let b = "0190a000-0000-7000-8000-000000000002";
        let agent = |s: &str| AgentId(uuid::Uuid::parse_str(s).unwrap());
        let conversation = ConversationId(uuid::Uuid::nil());
        let table = [
            (
                EventKind::ConversationAssigned,
                serde_json::json!({"conversation": {"assignee_id": a}, "previous_assignee_id": null}),
                Some(Job {
                    agent: agent(a),
                    conversation,
                    kind: "assigned",
                }),
            ),
            (
                EventKind::ConversationAssigned,
                serde_json::json!({"conversation": {"assignee_id": a}}),
                Some(Job {
                    agent: agent(a),
                    conversation,
                    kind: "assigned",
                }),
            ),
            (
                EventKind::ConversationAssigned,
                serde_json::json!({"conversation": {"assignee_id": a}, "previous_assignee_id": b}),
                Some(Job {
                    agent: agent(a),
                    conversation,
                    kind: "transferred",
                }),
            ),
            (
                EventKind::ConversationAssigned,
                serde_json::json!({"conversation": {"assignee_id": a}, "previous_assignee_id": a}),
                None,
            ),
            (
                EventKind::ConversationUpdated,
                serde_json::json!({"conversation": {"assignee_id": a}}),
                None,
            ),
            (
                EventKind::ConversationReturned,
                serde_json::json!({"conversation": {"assignee_id": null}, "previous_assignee_id": a}),
                None,
            ),
        ];
        for (kind, payload, want) in table {
            assert_eq!(job_of(&event(kind, payload.clone())), want, "{payload}");
        }
    }
}
