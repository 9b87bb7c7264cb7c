//! The in-process event bus: committed events (numbered) and ephemeral ones (typing, presence),
//! serialised once and shared by every subscriber. With several nodes (`cluster.rs`), what is
//! published here is also sent to the other nodes over NATS, and what they send arrives here.

use axum::extract::ws::Utf8Bytes;
use std::sync::Arc;
use switchboard_core::event::{Event, EventKind};
use switchboard_core::{AgentId, ConversationId, InboxId};
use tokio::sync::broadcast;

/// One event on the bus with its wire JSON, serialised once for all sockets.
#[derive(Debug)]
pub struct BusEvent {
    /// 0 for ephemeral events, which are not stored and not replayed.
    pub seq: i64,
    pub kind: EventKind,
    pub inbox_id: Option<InboxId>,
    pub conversation_id: Option<ConversationId>,
    /// Present on `message.created`/`message.updated` when the message is public: what a widget may see.
    pub public_message: Option<serde_json::Value>,
    /// Who is typing (`agent`/`customer`), for typing events.
    pub typing_actor: Option<&'static str>,
    pub json: Utf8Bytes,
}

impl BusEvent {
    pub fn from_event(e: &Event) -> Self {
        Self {
            seq: e.seq,
            kind: e.kind,
            inbox_id: e.inbox_id,
            conversation_id: e.conversation_id,
            public_message: e.public_message().cloned(),
            typing_actor: None,
            json: Utf8Bytes::from(e.to_wire().to_string()),
        }
    }
}

/// Signals for open sockets (not for clients): re-check your session now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Control {
    /// A session was ended (sign-out); carries the token hash.
    SessionEnded(String),
    /// An agent was changed (role, deactivated, password): their sockets re-check.
    AgentChanged(switchboard_core::AgentId),
}

/// The other nodes of a cluster, as this node's bus sees them: what it forwards to them. The
/// cluster link (NATS) implements it.
pub trait Peers: Send + Sync {
    /// Committed events.
    fn events(&self, events: &[Event]);
    fn control(&self, c: &Control);
    /// Inbox memberships changed: the other nodes reload their access cache.
    fn memberships_changed(&self);
    fn ephemeral(
        &self,
        kind: EventKind,
        inbox_id: Option<InboxId>,
        conversation_id: Option<ConversationId>,
        typing_actor: Option<&'static str>,
        payload: &serde_json::Value,
    );
    /// This node's presence entry for `agent_id` changed.
    fn presence(&self, agent_id: AgentId, entry: Option<crate::presence::Entry>);
}

#[derive(Clone)]
pub struct Bus {
    tx: broadcast::Sender<Arc<BusEvent>>,
    control: broadcast::Sender<Control>,
    /// The other nodes, once this node has joined a cluster.
    cluster: Arc<std::sync::OnceLock<Arc<dyn Peers>>>,
}

impl Bus {
    pub fn new(capacity: usize) -> Self {
        Self {
            tx: broadcast::channel(capacity).0,
            control: broadcast::channel(256).0,
            cluster: Arc::default(),
        }
    }

    pub(crate) fn join(&self, link: Arc<dyn Peers>) {
        let _ = self.cluster.set(link);
    }

    pub(crate) fn cluster(&self) -> Option<&dyn Peers> {
        self.cluster.get().map(|p| p.as_ref())
    }

    pub fn subscribe_control(&self) -> broadcast::Receiver<Control> {
        self.control.subscribe()
    }

    /// Signals this node's sockets and every other node's.
    pub fn control(&self, c: Control) {
        if let Some(link) = self.cluster() {
            link.control(&c);
        }
        self.control_local(c);
    }

    pub(crate) fn control_local(&self, c: Control) {
        let _ = self.control.send(c);
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Arc<BusEvent>> {
        self.tx.subscribe()
    }

    pub fn publish_committed(&self, events: &[Event]) {
        for e in events {
            // No subscribers is fine: the event is in the store for catch-up.
            let _ = self.tx.send(Arc::new(BusEvent::from_event(e)));
        }
    }

    /// Typing and presence: pushed to whoever is connected now, never stored. Typing goes to the
    /// other nodes too; presence does not (every node works out presence changes itself).
    pub fn publish_ephemeral(
        &self,
        kind: EventKind,
        inbox_id: Option<InboxId>,
        conversation_id: Option<ConversationId>,
        typing_actor: Option<&'static str>,
        payload: serde_json::Value,
    ) {
        if kind != EventKind::Presence
            && let Some(link) = self.cluster()
        {
            link.ephemeral(kind, inbox_id, conversation_id, typing_actor, &payload);
        }
        self.publish_ephemeral_local(kind, inbox_id, conversation_id, typing_actor, payload);
    }

    pub(crate) fn publish_ephemeral_local(
        &self,
        kind: EventKind,
        inbox_id: Option<InboxId>,
        conversation_id: Option<ConversationId>,
        typing_actor: Option<&'static str>,
        payload: serde_json::Value,
    ) {
        let mut wire = serde_json::json!({
            "type": kind.as_str(),
            "cursor": null,
            "inbox_id": inbox_id,
            "conversation_id": conversation_id,
        });
        if let (Some(obj), serde_json::Value::Object(extra)) = (wire.as_object_mut(), payload) {
            obj.extend(extra);
        }
        let _ = self.tx.send(Arc::new(BusEvent {
            seq: 0,
            kind,
            inbox_id,
            conversation_id,
            public_message: None,
            typing_actor,
            json: Utf8Bytes::from(wire.to_string()),
        }));
    }
}
