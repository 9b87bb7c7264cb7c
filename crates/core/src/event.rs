//! Realtime events: what changed, in small JSON, for agents' and visitors' sockets.
//! The store gives each persisted event a monotonically increasing `seq` (the client's cursor).

use crate::conversation::Transition;
use crate::ids::*;
use crate::model::{Conversation, ConversationStatus, Message, str_enum};
use crate::time::Timestamp;
use serde::Serialize;

str_enum!(
    EventKind {
        MessageCreated = "message.created",
        MessageUpdated = "message.updated",
        ConversationCreated = "conversation.created",
        ConversationUpdated = "conversation.updated",
        ConversationAssigned = "conversation.assigned",
        ConversationResolved = "conversation.resolved",
        // A holder lost a conversation (missed reply SLA, offline too long): notify them.
        ConversationReturned = "conversation.returned",
        Typing = "typing",
        Presence = "presence",
    }
);

/// An event before the store has numbered it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EventDraft {
    pub inbox_id: Option<InboxId>,
    pub conversation_id: Option<ConversationId>,
    pub kind: EventKind,
    pub payload: serde_json::Value,
}

/// A persisted event. `seq` orders all events of a deployment.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Event {
    pub seq: i64,
    pub workspace_id: WorkspaceId,
    pub inbox_id: Option<InboxId>,
    pub conversation_id: Option<ConversationId>,
    pub kind: EventKind,
    pub payload: serde_json::Value,
    pub created_at: Timestamp,
}

impl Event {
    /// The JSON a client receives: `{type, cursor, inbox_id, conversation_id, ...payload}`.
    pub fn to_wire(&self) -> serde_json::Value {
        let mut v = serde_json::json!({
            "type": self.kind.as_str(),
            "cursor": self.seq,
            "inbox_id": self.inbox_id,
            "conversation_id": self.conversation_id,
            "at": self.created_at,
        });
        if let (Some(obj), serde_json::Value::Object(extra)) = (v.as_object_mut(), &self.payload) {
            for (k, val) in extra {
                obj.entry(k.clone()).or_insert_with(|| val.clone());
            }
        }
        v
    }

    /// The message carried by a `message.created`/`message.updated` event, if it is public
    /// (what a widget visitor may see).
    pub fn public_message(&self) -> Option<&serde_json::Value> {
        if !matches!(
            self.kind,
            EventKind::MessageCreated | EventKind::MessageUpdated
        ) {
            return None;
        }
        let m = self.payload.get("message")?;
        let private = m
            .get("private")
            .and_then(serde_json::Value::as_bool)
            .unwrap_or(true);
        (!private).then_some(m)
    }
}

/// The message as events and the API show it.
pub fn message_json(m: &Message) -> serde_json::Value {
    serde_json::json!({
        "id": m.id,
        "conversation_id": m.conversation_id,
        "direction": m.direction,
        "sender_kind": m.sender_kind,
        "sender_agent_id": m.sender_agent_id,
        "kind": m.kind,
        "text": m.text,
        "private": m.is_private(),
        "delivery_status": m.delivery_status,
        "failure_reason": m.failure_reason,
        "created_at": m.created_at,
    })
}

pub fn conversation_json(c: &Conversation) -> serde_json::Value {
    serde_json::json!({
        "id": c.id,
        "status": c.status,
        "assignee_id": c.assignee_id,
        "participants": c.participants,
        "tags": c.tags,
        "last_activity_at": c.last_activity_at,
        "version": c.version,
    })
}

/// Extras of one message.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct MessageMeta {
    pub meta: serde_json::Value,
    pub messaging_type: Option<String>,
    pub tag: Option<String>,
}

/// The `message.updated` event of a message whose extras changed.
pub fn updated_event(m: &Message, meta: Option<&MessageMeta>) -> EventDraft {
    EventDraft {
        inbox_id: Some(m.inbox_id),
        conversation_id: Some(m.conversation_id),
        kind: EventKind::MessageUpdated,
        payload: serde_json::json!({ "message": message_with_meta(m, meta) }),
    }
}

/// The message as the API and events show it, with its extras (`meta`, `messaging_type`, `tag`).
pub fn message_with_meta(m: &Message, meta: Option<&MessageMeta>) -> serde_json::Value {
    let mut v = message_json(m);
    if let Some(o) = v.as_object_mut() {
        let meta = meta.cloned().unwrap_or_default();
        o.insert(
            "meta".into(),
            if meta.meta.is_null() {
                serde_json::json!({})
            } else {
                meta.meta
            },
        );
        o.insert(
            "messaging_type".into(),
            serde_json::json!(meta.messaging_type),
        );
        o.insert("tag".into(), serde_json::json!(meta.tag));
    }
    v
}

pub fn message_created(m: &Message) -> EventDraft {
    EventDraft {
        inbox_id: Some(m.inbox_id),
        conversation_id: Some(m.conversation_id),
        kind: EventKind::MessageCreated,
        payload: serde_json::json!({ "message": message_json(m) }),
    }
}

/// The conversation event a transition calls for: created, assigned (holder changed), resolved,
/// or updated. Nothing when the transition changed nothing.
pub fn for_transition(before: Option<&Conversation>, tr: &Transition) -> Option<EventDraft> {
    if !tr.changed {
        return None;
    }
    let after = &tr.conversation;
    let kind = match before {
        None => EventKind::ConversationCreated,
        Some(b) if b.assignee_id != after.assignee_id && after.assignee_id.is_some() => {
            EventKind::ConversationAssigned
        }
        Some(b)
            if b.status != ConversationStatus::Resolved
                && after.status == ConversationStatus::Resolved =>
        {
            EventKind::ConversationResolved
        }
        Some(_) => EventKind::ConversationUpdated,
    };
    let mut payload = serde_json::json!({ "conversation": conversation_json(after) });
    if let (Some(b), Some(obj)) = (before, payload.as_object_mut())
        && b.assignee_id != after.assignee_id
    {
        obj.insert(
            "previous_assignee_id".into(),
            serde_json::json!(b.assignee_id),
        );
    }
    Some(EventDraft {
        inbox_id: Some(after.inbox_id),
        conversation_id: Some(after.id),
        kind,
        payload,
    })
}

/// The events for a change routing made on its own (auto-assign, take-back, auto-resolve), each
/// carrying `reason`. A holder who lost the conversation gets `conversation.returned` (with
/// `previous_assignee_id`, so their client can tell them); a new holder gets `conversation.assigned`.
pub fn for_routing(before: &Conversation, tr: &Transition, reason: &str) -> Vec<EventDraft> {
    let mut out = Vec::with_capacity(2);
    if !tr.changed {
        return out;
    }
    let after = &tr.conversation;
    let lost = before.assignee_id.is_some()
        && before.assignee_id != after.assignee_id
        && after.status != ConversationStatus::Resolved;
    if lost {
        out.push(EventDraft {
            inbox_id: Some(after.inbox_id),
            conversation_id: Some(after.id),
            kind: EventKind::ConversationReturned,
            payload: serde_json::json!({
                "conversation": conversation_json(after),
                "previous_assignee_id": before.assignee_id,
                "reason": reason,
            }),
        });
    }
    if let Some(mut d) = for_transition(Some(before), tr) {
        // Back to the pool: `conversation.returned` already says everything.
        if !(lost && d.kind == EventKind::ConversationUpdated) {
            if let Some(obj) = d.payload.as_object_mut() {
                obj.insert("reason".into(), serde_json::json!(reason));
            }
            out.push(d);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conversation::{self, Actor};
    use crate::model::*;
    use uuid::Uuid;

    fn conv() -> Conversation {
        Conversation::new_from_customer(
            ConversationId(Uuid::from_u128(1)),
            WorkspaceId(Uuid::from_u128(2)),
            InboxId(Uuid::from_u128(3)),
            ContactId(Uuid::from_u128(4)),
            Timestamp(0),
        )
    }

    #[test]
    fn transition_events() {
        let a = Actor {
            agent_id: AgentId(Uuid::from_u128(9)),
            role: Role::Agent,
        };
        let created = conversation::customer_message(None, conv(), Timestamp(1), Timestamp(1));
        assert_eq!(
            for_transition(None, &created).map(|e| e.kind),
            Some(EventKind::ConversationCreated)
        );
        let c = created.conversation;
        let claimed = conversation::claim(&c, a).ok();
        let ev = claimed.as_ref().and_then(|t| for_transition(Some(&c), t));
        assert_eq!(
            ev.as_ref().map(|e| e.kind),
            Some(EventKind::ConversationAssigned)
        );
        assert_eq!(
            ev.map(|e| e.payload["previous_assignee_id"].clone()),
            Some(serde_json::Value::Null)
        );
        let c2 = claimed.map(|t| t.conversation).unwrap_or_else(conv);
        let resolved = conversation::resolve(&c2, a, Timestamp(5)).ok();
        assert_eq!(
            resolved
                .and_then(|t| for_transition(Some(&c2), &t))
                .map(|e| e.kind),
            Some(EventKind::ConversationResolved)
        );
        let again = conversation::claim(&c2, a).ok();
        assert_eq!(
            again.and_then(|t| for_transition(Some(&c2), &t)),
            None,
            "no-op transitions publish nothing"
        );
    }

    #[test]
    fn routing_events_tell_who_lost_and_who_got_it() {
        use crate::routing::{self, CloseReason, Trigger};
        let mut held = conv();
        held.status = ConversationStatus::Open;
        held.assignee_id = Some(AgentId(Uuid::from_u128(1)));
        let b = AgentId(Uuid::from_u128(2));
        let kinds = |evs: &[EventDraft]| evs.iter().map(|e| e.kind).collect::<Vec<_>>();

        let pooled = routing::take_back(&held, None, Trigger::ReplySla, Timestamp(9)).ok();
        let evs = pooled
            .map(|t| for_routing(&held, &t, "reply_sla"))
            .unwrap_or_default();
        assert_eq!(kinds(&evs), vec![EventKind::ConversationReturned]);
        assert_eq!(
            evs[0].payload["previous_assignee_id"],
            serde_json::json!(held.assignee_id)
        );
        assert_eq!(evs[0].payload["reason"], "reply_sla");

        let moved = routing::take_back(&held, Some(b), Trigger::ReplySla, Timestamp(9)).ok();
        let evs = moved
            .map(|t| for_routing(&held, &t, "reply_sla"))
            .unwrap_or_default();
        assert_eq!(
            kinds(&evs),
            vec![
                EventKind::ConversationReturned,
                EventKind::ConversationAssigned
            ]
        );
        assert_eq!(
            evs[1].payload["conversation"]["assignee_id"],
            serde_json::json!(b)
        );

        let closed = routing::auto_resolve(&held, CloseReason::AgentSilence, Timestamp(9)).ok();
        let evs = closed
            .map(|t| for_routing(&held, &t, "agent_silence"))
            .unwrap_or_default();
        assert_eq!(kinds(&evs), vec![EventKind::ConversationResolved]);
        assert_eq!(evs[0].payload["reason"], "agent_silence");
    }

    #[test]
    fn private_messages_are_not_public() {
        let mut m = Message {
            id: MessageId(Uuid::from_u128(5)),
            conversation_id: ConversationId(Uuid::from_u128(1)),
            inbox_id: InboxId(Uuid::from_u128(3)),
            direction: Direction::Outbound,
            sender_kind: SenderKind::Agent,
            sender_agent_id: None,
            kind: MessageKind::Note,
            text: "internal".into(),
            provider_message_id: None,
            delivery_status: DeliveryStatus::Sent,
            failure_reason: None,
            created_at: Timestamp(1),
        };
        let ev = |m: &Message| {
            let d = message_created(m);
            Event {
                seq: 1,
                workspace_id: WorkspaceId(Uuid::from_u128(2)),
                inbox_id: d.inbox_id,
                conversation_id: d.conversation_id,
                kind: d.kind,
                payload: d.payload,
                created_at: Timestamp(1),
            }
        };
        assert!(ev(&m).public_message().is_none());
        m.kind = MessageKind::AgentToAgent;
        assert!(ev(&m).public_message().is_none());
        m.kind = MessageKind::Text;
        assert!(ev(&m).public_message().is_some());
        assert_eq!(ev(&m).to_wire()["type"], "message.created");
        assert_eq!(ev(&m).to_wire()["cursor"], 1);
    }
}
