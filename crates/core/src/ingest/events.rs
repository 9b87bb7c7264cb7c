//! What a provider's events other than a customer's message mean for the messages and
//! conversations they touch: receipts and delivery statuses, edits and unsends, reactions, comment
//! changes, the page's own messages (echoes) and merged conversations. The store loads the facts,
//! asks these functions, and writes what they return.

use crate::activity;
use crate::conversation::Transition;
use crate::ids::*;
use crate::model::*;
use crate::time::Timestamp;
use serde_json::{Map, Value, json};

/// How far an outbound message has come on queued → sent → delivered → read (`-1`: off that path).
fn rank(s: DeliveryStatus) -> i8 {
    match s {
        DeliveryStatus::Queued => 0,
        DeliveryStatus::Sent => 1,
        DeliveryStatus::Delivered => 2,
        DeliveryStatus::Read => 3,
        DeliveryStatus::Received | DeliveryStatus::Failed => -1,
    }
}

/// Whether a receipt moves one of our messages from `current` to `to`: only forward, and only a
/// message the provider has (sent or further).
pub fn receipt_moves(current: DeliveryStatus, to: DeliveryStatus) -> bool {
    rank(current) >= 1 && rank(current) < rank(to)
}

/// Whether a provider's delivery status moves one of our messages from `current` to `to`: statuses
/// only move forward (`read` before `delivered` stays `read`); `failed` is recorded whatever came
/// before, once, and nothing moves a failed message.
pub fn status_moves(current: DeliveryStatus, to: DeliveryStatus) -> bool {
    current != DeliveryStatus::Failed && (to == DeliveryStatus::Failed || rank(to) > rank(current))
}

/// A change to a message's provider extras (`meta`, a JSON object).
#[derive(Debug, Clone, PartialEq)]
pub enum MetaEdit {
    /// The customer's reaction (`None`: taken back).
    Reaction(Option<Value>),
    /// The customer edited the message: the provider's count of edits, or — a provider that
    /// counts none (`0`) — one more than before.
    Edited(i64),
    /// The customer unsent the message: it stays, marked deleted, without its attachments.
    Unsent,
    /// A comment changed on the platform: `edited`, `remove`, `hide`, `unhide`, `like`, `unlike`.
    Comment(String),
    /// The provider's error for a message that failed.
    ProviderError(Value),
    /// Keys a provider set, over those already there.
    Merge(Map<String, Value>),
}

/// A comment verb, the flag it sets in `meta.comment` and the flag's value.
const COMMENT_VERBS: [(&str, &str, bool); 6] = [
    ("edited", "edited", true),
    ("remove", "removed", true),
    ("hide", "hidden", true),
    ("unhide", "hidden", false),
    ("like", "liked", true),
    ("unlike", "liked", false),
];

impl MetaEdit {
    /// Applies the change to `meta` (made an object first if it is not one).
    pub fn apply(self, meta: &mut Value) {
        if !meta.is_object() {
            *meta = json!({});
        }
        let Some(o) = meta.as_object_mut() else {
            return;
        };
        match self {
            MetaEdit::Reaction(reaction) => {
                let reactions = o.entry("reactions").or_insert_with(|| json!({}));
                if let Some(map) = reactions.as_object_mut() {
                    match reaction {
                        Some(v) => map.insert("customer".into(), v),
                        None => map.remove("customer"),
                    };
                }
            }
            MetaEdit::Edited(n) => {
                let before = o.get("edited").and_then(Value::as_i64).unwrap_or(0);
                let n = if n > 0 { n } else { before.saturating_add(1) };
                o.insert("edited".into(), json!(n));
            }
            MetaEdit::Unsent => {
                o.insert("deleted".into(), json!(true));
                o.remove("attachments");
            }
            MetaEdit::Comment(verb) => {
                let c = o.entry("comment").or_insert_with(|| json!({}));
                if let (Some(c), Some((_, flag, value))) = (
                    c.as_object_mut(),
                    COMMENT_VERBS.iter().find(|(v, ..)| *v == verb),
                ) {
                    c.insert((*flag).into(), json!(value));
                }
            }
            MetaEdit::ProviderError(detail) => {
                o.insert("provider_error".into(), detail);
            }
            MetaEdit::Merge(patch) => o.extend(patch),
        }
    }
}

/// Whether a customer's edit or unsend may change a stored message: only a message the customer
/// sent (an edit naming one of ours, or an agent's note, changes nothing).
pub fn customer_may_change(m: &Message) -> bool {
    m.direction == Direction::Inbound
        && m.sender_kind == SenderKind::Customer
        && !m.kind.is_private()
}

/// Links a reply to the message it answers (`reply_to_message_id`), with a short quote of it
/// (`reply_to_text`) unless the provider gave one.
pub fn link_reply(meta: &mut Value, original: MessageId, original_text: &str) {
    if !meta.is_object() {
        *meta = json!({});
    }
    if let Some(o) = meta.as_object_mut() {
        o.insert("reply_to_message_id".into(), json!(original));
        if !o.contains_key("reply_to_text") && !original_text.is_empty() {
            let quote: String = original_text.chars().take(140).collect();
            o.insert("reply_to_text".into(), json!(quote));
        }
    }
}

/// The text a comment change leaves on its message: an edit's new text, else unchanged (`None`).
pub fn comment_text<'a>(verb: &str, text: Option<&'a str>) -> Option<&'a str> {
    text.filter(|_| verb == "edited")
}

/// A customer's reaction is a qualifying action (channels.md §1.6): it moves the window, when the
/// one reacting is the conversation's customer and it is newer than their last message.
pub fn reaction(
    c: &Conversation,
    reactor: Option<ContactId>,
    at: Timestamp,
    now: Timestamp,
) -> Option<Transition> {
    if reactor != Some(c.contact_id) {
        return None;
    }
    Some(activity::customer_action(c, at, now)).filter(|t| t.changed)
}

/// A message the page sent from the provider's own apps, seen as an echo.
#[derive(Debug, Clone, PartialEq)]
pub struct PageMessage {
    pub id: MessageId,
    pub workspace_id: WorkspaceId,
    pub inbox_id: InboxId,
    pub contact_id: ContactId,
    /// The id of the conversation it opens if the customer has none.
    pub new_conversation_id: ConversationId,
    pub text: String,
    pub provider_message_id: String,
    pub sent_at: Timestamp,
}

/// Where a page's message goes: the customer's conversation, or — the page wrote first — a new
/// conversation without a window (`Some`, to create; nothing for routing until the customer
/// answers). The message is ours, sent, at the provider's time (never ahead of `now`).
pub fn page_message(
    existing: Option<&Conversation>,
    p: PageMessage,
    now: Timestamp,
) -> (Option<Conversation>, Message) {
    let at = p.sent_at.clamp_to(now);
    let created = match existing {
        Some(_) => None,
        None => Some(Conversation::new_from_customer(
            p.new_conversation_id,
            p.workspace_id,
            p.inbox_id,
            p.contact_id,
            at,
        )),
    };
    let conversation_id = existing
        .or(created.as_ref())
        .map_or(p.new_conversation_id, |c| c.id);
    let message = Message {
        id: p.id,
        conversation_id,
        inbox_id: p.inbox_id,
        direction: Direction::Outbound,
        sender_kind: SenderKind::Agent,
        sender_agent_id: None,
        kind: MessageKind::Text,
        text: p.text,
        provider_message_id: Some(p.provider_message_id),
        delivery_status: DeliveryStatus::Sent,
        failure_reason: None,
        created_at: at,
    };
    (created, message)
}

/// Which of two conversations of one customer on one inbox goes on when their contacts merge:
/// `true` keeps `from`. The one a person holds wins over one nobody holds, so a merge never takes
/// a customer away from the agent talking to them (a private reply whose customer turns out to
/// have written before); otherwise `into`, the surviving contact's.
pub fn merge_keeps_from(from: &Conversation, into: &Conversation) -> bool {
    let held = |c: &Conversation| c.assignee_id.is_some() && c.status == ConversationStatus::Open;
    held(from) && !held(into)
}

/// `into` after absorbing `from` (two contacts merged, each with a conversation on the inbox): the
/// later customer message and activity of the two, one version on.
pub fn absorb(from: &Conversation, into: &Conversation) -> Conversation {
    let mut after = into.clone();
    after.last_customer_message_at =
        match (from.last_customer_message_at, into.last_customer_message_at) {
            (Some(x), Some(y)) => Some(x.max(y)),
            (x, y) => x.or(y),
        };
    after.last_activity_at = from.last_activity_at.max(into.last_activity_at);
    after.version += 1;
    after
}

/// `into` once a merge is undone and the conversation it absorbed is back on its own: its window is
/// what its own remaining customer messages say (`last_customer_message_at`).
pub fn unabsorb(into: &Conversation, last_customer_message_at: Option<Timestamp>) -> Conversation {
    let mut after = into.clone();
    after.last_customer_message_at = last_customer_message_at;
    after.version += 1;
    after
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use DeliveryStatus::*;
    use uuid::Uuid;

    const NOW: Timestamp = Timestamp(1_790_000_000_000);

    fn conv(contact: u128) -> Conversation {
        Conversation::new_from_customer(
            ConversationId(Uuid::from_u128(1)),
            WorkspaceId(Uuid::from_u128(2)),
            InboxId(Uuid::from_u128(3)),
            ContactId(Uuid::from_u128(contact)),
            Timestamp(NOW.0 - 60_000),
        )
    }

    #[test]
    fn receipts_move_sent_messages_forward_only() {
        for (current, to, moves) in [
            (Sent, Delivered, true),
            (Sent, Read, true),
            (Delivered, Read, true),
            (Read, Delivered, false),
            (Delivered, Delivered, false),
            (Queued, Delivered, false),
            (Failed, Read, false),
            (Received, Read, false),
            (Sent, Failed, false),
        ] {
            assert_eq!(receipt_moves(current, to), moves, "{current:?} -> {to:?}");
        }
    }

    #[test]
    fn statuses_move_forward_and_failure_is_recorded_once() {
        for (current, to, moves) in [
            (Queued, Sent, true),
            (Sent, Read, true),
            (Read, Delivered, false),
            (Sent, Sent, false),
            (Read, Failed, true),
            (Queued, Failed, true),
            (Failed, Failed, false),
            (Failed, Read, false),
        ] {
            assert_eq!(status_moves(current, to), moves, "{current:?} -> {to:?}");
        }
    }

    #[test]
    fn meta_edits() {
        let cases: Vec<(Value, MetaEdit, Value)> = vec![
            (
                Value::Null,
                MetaEdit::Reaction(Some(json!("❤"))),
                json!({"reactions": {"customer": "❤"}}),
            ),
            (
                json!({"reactions": {"customer": "❤", "page": "👍"}}),
                MetaEdit::Reaction(None),
                json!({"reactions": {"page": "👍"}}),
            ),
            (json!({}), MetaEdit::Edited(2), json!({"edited": 2})),
            (json!({}), MetaEdit::Edited(0), json!({"edited": 1})),
            (
                json!({"edited": 1}),
                MetaEdit::Edited(0),
                json!({"edited": 2}),
            ),
            (
                json!({"edited": "x"}),
                MetaEdit::Edited(0),
                json!({"edited": 1}),
            ),
            (
                json!({"attachments": [1], "x": 1}),
                MetaEdit::Unsent,
                json!({"deleted": true, "x": 1}),
            ),
            (
                json!({"comment": {"post_id": "p"}}),
                MetaEdit::Comment("hide".into()),
                json!({"comment": {"post_id": "p", "hidden": true}}),
            ),
            (
                json!({"comment": {"hidden": true}}),
                MetaEdit::Comment("unhide".into()),
                json!({"comment": {"hidden": false}}),
            ),
            (
                json!({}),
                MetaEdit::Comment("remove".into()),
                json!({"comment": {"removed": true}}),
            ),
            (
                json!({}),
                MetaEdit::Comment("edited".into()),
                json!({"comment": {"edited": true}}),
            ),
            (
                json!({}),
                MetaEdit::Comment("like".into()),
                json!({"comment": {"liked": true}}),
            ),
            (
                json!({"comment": {"liked": true}}),
                MetaEdit::Comment("unlike".into()),
                json!({"comment": {"liked": false}}),
            ),
            (
                json!({}),
                MetaEdit::Comment("share".into()),
                json!({"comment": {}}),
            ),
            (
                json!("not an object"),
                MetaEdit::ProviderError(json!({"code": 131047})),
                json!({"provider_error": {"code": 131047}}),
            ),
            (
                json!({"a": 1, "b": 1}),
                MetaEdit::Merge(json!({"b": 2, "c": 3}).as_object().unwrap().clone()),
                json!({"a": 1, "b": 2, "c": 3}),
            ),
        ];
        for (mut meta, edit, want) in cases {
            let seen = format!("{edit:?}");
            edit.apply(&mut meta);
            assert_eq!(meta, want, "{seen}");
        }
        assert_eq!(comment_text("edited", Some("new")), Some("new"));
        assert_eq!(comment_text("hide", Some("new")), None);
        assert_eq!(comment_text("edited", None), None);
    }

    #[test]
    fn a_reaction_moves_the_window_only_for_the_customer_and_only_forward() {
        let c = conv(7);
        let at = Timestamp(NOW.0 - 1_000);
        let moved = reaction(&c, Some(ContactId(Uuid::from_u128(7))), at, NOW).unwrap();
        assert_eq!(moved.conversation.last_customer_message_at, Some(at));
        assert_eq!(moved.conversation.version, c.version + 1);
        assert_eq!(
            reaction(&c, Some(ContactId(Uuid::from_u128(8))), at, NOW),
            None
        );
        assert_eq!(reaction(&c, None, at, NOW), None);
        let later = moved.conversation;
        assert_eq!(
            reaction(&later, Some(later.contact_id), Timestamp(at.0 - 1), NOW),
            None,
            "an older reaction changes nothing"
        );
    }

    #[test]
    fn the_page_writing_first_opens_a_conversation_without_a_window() {
        let page = |sent_at| PageMessage {
            id: MessageId(Uuid::from_u128(10)),
            workspace_id: WorkspaceId(Uuid::from_u128(2)),
            inbox_id: InboxId(Uuid::from_u128(3)),
            contact_id: ContactId(Uuid::from_u128(7)),
            new_conversation_id: ConversationId(Uuid::from_u128(11)),
            text: "hi".into(),
            provider_message_id: "m.1".into(),
            sent_at,
        };
        let (created, m) = page_message(None, page(Timestamp(NOW.0 + 5_000)), NOW);
        let created = created.unwrap();
        assert_eq!(created.id, ConversationId(Uuid::from_u128(11)));
        assert_eq!(created.last_customer_message_at, None, "no window");
        assert_eq!(
            (m.conversation_id, m.created_at),
            (created.id, NOW),
            "clamped to now"
        );
        assert_eq!(
            (m.direction, m.sender_kind, m.delivery_status),
            (Direction::Outbound, SenderKind::Agent, Sent)
        );
        let existing = conv(7);
        let (created, m) = page_message(Some(&existing), page(NOW), NOW);
        assert_eq!((created, m.conversation_id), (None, existing.id));
    }

    #[test]
    fn merged_conversations_keep_the_later_window_and_undo_recomputes_it() {
        let t = |s: i64| Some(Timestamp(NOW.0 - s * 1_000));
        for (from, into, want) in [
            (t(5), t(9), t(5)),
            (t(9), t(5), t(5)),
            (None, t(9), t(9)),
            (t(9), None, t(9)),
            (None, None, None),
        ] {
            let (mut a, mut b) = (conv(7), conv(8));
            a.last_customer_message_at = from;
            b.last_customer_message_at = into;
            a.last_activity_at = Timestamp(NOW.0 - 1);
            let after = absorb(&a, &b);
            assert_eq!(after.last_customer_message_at, want);
            assert_eq!(after.last_activity_at, Timestamp(NOW.0 - 1));
            assert_eq!(after.version, b.version + 1);
        }
        let back = unabsorb(&conv(8), t(30));
        assert_eq!((back.last_customer_message_at, back.version), (t(30), 1));
    }

    #[test]
    fn a_merge_keeps_the_conversation_a_person_holds() {
        let agent = AgentId(Uuid::from_u128(99));
        let held = |mut c: Conversation| {
            c.status = ConversationStatus::Open;
            c.assignee_id = Some(agent);
            c
        };
        let resolved = |mut c: Conversation| {
            c.status = ConversationStatus::Resolved;
            c.last_assignee_id = Some(agent);
            c
        };
        // (from, into, from goes on)
        for (from, into, keeps_from) in [
            (held(conv(7)), conv(8), true),
            (conv(7), held(conv(8)), false),
            (held(conv(7)), held(conv(8)), false),
            (conv(7), conv(8), false),
            (resolved(conv(7)), conv(8), false),
        ] {
            assert_eq!(
                merge_keeps_from(&from, &into),
                keeps_from,
                "{from:?} / {into:?}"
            );
        }
    }
}
