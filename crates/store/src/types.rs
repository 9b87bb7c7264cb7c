//! Values the store takes and returns beyond the core's own.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use serde::Serialize;
use switchboard_core::event::EventDraft;
pub use switchboard_core::ingest::{Inbound, InboundSender, IngestError, Ingested};
use switchboard_core::*;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    /// SHA-256 of the bearer token; the token itself is never stored.
    pub token_hash: String,
    pub agent_id: AgentId,
    pub csrf_token: String,
    pub created_at: Timestamp,
    pub expires_at: Timestamp,
    pub revoked_at: Option<Timestamp>,
}

/// A conversation as the list shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ConversationSummary {
    #[serde(flatten)]
    pub conversation: Conversation,
    pub contact_name: Option<String>,
    /// Where agents load the customer's picture (`core::contact::avatar_url`).
    pub contact_avatar_url: Option<String>,
    pub channel: ChannelKind,
    pub inbox_name: String,
    pub last_message_preview: Option<String>,
    pub unread_count: i64,
    /// When the holder must have answered the customer (the reply deadline), if one runs.
    pub reply_due_at: Option<Timestamp>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AssigneeFilter {
    Unassigned,
    Agent(AgentId),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConversationQuery {
    pub workspace_id: WorkspaceId,
    /// The inboxes the asking agent may see; `None` for admins (all).
    pub visible_inboxes: Option<Vec<InboxId>>,
    pub status: Option<ConversationStatus>,
    pub inbox_id: Option<InboxId>,
    pub assignee: Option<AssigneeFilter>,
    pub tag: Option<String>,
    pub q: Option<String>,
    pub contact_id: Option<ContactId>,
    pub cursor: Option<ListCursor>,
    pub limit: u32,
}

/// Position in the conversation list: (last activity, id), newest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ListCursor {
    pub last_activity_at: Timestamp,
    pub id: ConversationId,
}

/// Position in a thread: (created at, id), paging backwards.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MessageCursor {
    pub created_at: Timestamp,
    pub id: MessageId,
}

fn encode_pair(ms: i64, id: uuid::Uuid) -> String {
    B64.encode(format!("{ms}:{id}"))
}

fn decode_pair(s: &str) -> Option<(i64, uuid::Uuid)> {
    let raw = String::from_utf8(B64.decode(s).ok()?).ok()?;
    let (ms, id) = raw.split_once(':')?;
    Some((ms.parse().ok()?, id.parse().ok()?))
}

impl ListCursor {
    pub fn encode(&self) -> String {
        encode_pair(self.last_activity_at.0, self.id.0)
    }
    pub fn decode(s: &str) -> Option<Self> {
        decode_pair(s).map(|(ms, id)| Self {
            last_activity_at: Timestamp(ms),
            id: ConversationId(id),
        })
    }
}

impl MessageCursor {
    pub fn encode(&self) -> String {
        encode_pair(self.created_at.0, self.id.0)
    }
    pub fn decode(s: &str) -> Option<Self> {
        decode_pair(s).map(|(ms, id)| Self {
            created_at: Timestamp(ms),
            id: MessageId(id),
        })
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next_cursor: Option<String>,
}

/// A page of the conversation list from `rows` fetched with one row more than `limit`: that row's
/// presence means there is a next page, which starts after the page's last conversation.
pub(crate) fn page_of(
    mut rows: Vec<ConversationSummary>,
    limit: usize,
) -> Page<ConversationSummary> {
    let next_cursor = if rows.len() > limit {
        rows.truncate(limit);
        rows.last().map(|s| {
            ListCursor {
                last_activity_at: s.conversation.last_activity_at,
                id: s.conversation.id,
            }
            .encode()
        })
    } else {
        None
    };
    Page {
        items: rows,
        next_cursor,
    }
}

/// Two lists in the conversation list's order (newest activity first, then id) merged into one,
/// each conversation once, at most `take`.
pub(crate) fn merge_newest_first(
    a: Vec<ConversationSummary>,
    b: Vec<ConversationSummary>,
    take: usize,
) -> Vec<ConversationSummary> {
    let mut all: Vec<ConversationSummary> = a.into_iter().chain(b).collect();
    all.sort_by(|x, y| {
        (y.conversation.last_activity_at, y.conversation.id)
            .cmp(&(x.conversation.last_activity_at, x.conversation.id))
    });
    all.dedup_by_key(|s| s.conversation.id);
    all.truncate(take);
    all
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ActionLogEntry {
    pub id: uuid::Uuid,
    pub conversation_id: ConversationId,
    pub kind: String,
    pub actor_id: Option<AgentId>,
    pub detail: serde_json::Value,
    pub created_at: Timestamp,
}

/// One agent command's effect, applied atomically by [`crate::Store::apply`].
#[derive(Debug, Clone)]
pub struct Change {
    /// The conversation's new state (its `version` is one more than the stored one), or `None` when
    /// only a message or events are written (e.g. an internal note).
    pub conversation: Option<Conversation>,
    /// The version the decision was made on, checked against the stored row.
    pub expected_version: i64,
    pub conversation_id: ConversationId,
    pub workspace_id: WorkspaceId,
    pub actions: Vec<Action>,
    pub message: Option<Message>,
    pub events: Vec<EventDraft>,
    pub now: Timestamp,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_reject_garbage() {
        let c = ListCursor {
            last_activity_at: Timestamp(1_700_000_000_123),
            id: ConversationId(uuid::Uuid::from_u128(77)),
        };
        assert_eq!(ListCursor::decode(&c.encode()), Some(c));
        assert_eq!(ListCursor::decode("not-a-cursor"), None);
        assert_eq!(MessageCursor::decode(&B64.encode("12:nope")), None);
    }
}
