//! What provider channels (Messenger, Instagram, ...) need from the store beyond live chat:
//! channel events ingested in the same group commit as messages, message extras (attachments,
//! comment details, reactions, the policy used), the outbox, and contact linking and merging.

use crate::{Change, Inbound, InboundSender, IngestError, Result};
use async_trait::async_trait;
use serde::Serialize;
use std::collections::HashMap;
use switchboard_core::event::Event;
use switchboard_core::*;

/// Identities of commenters whose id is not a messaging id (a Facebook feed `from.id` is not a
/// PSID): `commenter:<id>`. `ChannelStore::messaging_id` never returns these.
pub const COMMENTER_PREFIX: &str = "commenter:";

/// One normalised provider event, stored by [`ChannelStore::ingest_channel`] inside the group
/// commit. Provider ids are unique per inbox, so redelivery changes nothing.
#[derive(Debug, Clone, PartialEq)]
pub enum ChannelItem {
    /// A customer's message or comment: moves the window (via the conversation transition).
    Customer {
        inbound: Inbound,
        /// Extras shown with the message (attachments, comment, quick reply, referral...).
        meta: serde_json::Value,
        /// The provider id of a message of ours this one answers (`reply_to.mid`): if it was a
        /// private reply, the sender's id is linked to the commenter's contact.
        replying_to: Option<String>,
        /// Another id of the same customer on this inbox (WhatsApp's business-scoped user id
        /// next to the phone number): linked to the sender's contact in the same transaction,
        /// unless it is linked already.
        alias: Option<String>,
    },
    /// A message the page sent (from Meta's apps, or our own send coming back). Never moves the window.
    Echo {
        workspace_id: WorkspaceId,
        inbox_id: InboxId,
        /// The customer it was sent to.
        customer_external_id: String,
        provider_message_id: String,
        /// Our message id when the echo carries our `metadata` marker.
        ours: Option<MessageId>,
        text: String,
        meta: serde_json::Value,
        sent_at: Timestamp,
        message_id: MessageId,
        new_conversation_id: ConversationId,
        new_contact_id: ContactId,
    },
    /// Delivery or read receipts: by provider ids and/or everything up to a watermark.
    Receipt {
        inbox_id: InboxId,
        customer_external_id: String,
        provider_message_ids: Vec<String>,
        watermark: Option<Timestamp>,
        status: DeliveryStatus,
    },
    /// A customer's reaction to a message (counts for the window).
    Reaction {
        inbox_id: InboxId,
        customer_external_id: String,
        target_provider_id: String,
        /// `None` removes the customer's reaction.
        reaction: Option<serde_json::Value>,
        at: Timestamp,
    },
    /// The customer edited a message.
    Edit {
        inbox_id: InboxId,
        provider_message_id: String,
        text: String,
        num_edit: i64,
    },
    /// The customer unsent a message (Instagram): the row stays, marked deleted, text removed.
    Unsent {
        inbox_id: InboxId,
        provider_message_id: String,
    },
    /// A provider's delivery status for one of our messages (WhatsApp `statuses[]`), found by our
    /// marker or by the provider id. Statuses only move forward (`read` before `delivered` stays
    /// `read`); `failed` is recorded whatever came before. It also tells the outbox the provider
    /// accepted the message (so it is never sent again).
    Status {
        inbox_id: InboxId,
        provider_message_id: String,
        ours: Option<MessageId>,
        status: DeliveryStatus,
        /// For `failed`: the stable reason and the provider's error (kept in `meta.provider_error`).
        failure: Option<(String, serde_json::Value)>,
    },
    /// A comment was edited, removed, hidden or unhidden on the platform.
    CommentChange {
        inbox_id: InboxId,
        provider_message_id: String,
        verb: String,
        text: Option<String>,
    },
}

impl ChannelItem {
    /// Drops NUL and the other forbidden control characters from every string a provider sent
    /// (text, names, ids, extras): a customer's message is kept, and no byte of it can make the
    /// store refuse the batch it travels in.
    pub fn strip_controls(&mut self) {
        use switchboard_core::validate::{strip_controls as s, strip_controls_json as j};
        match self {
            ChannelItem::Customer {
                inbound,
                meta,
                replying_to,
                alias,
            } => {
                s(&mut inbound.provider_message_id);
                s(&mut inbound.text);
                if let InboundSender::Identity { external_id, name } = &mut inbound.sender {
                    s(external_id);
                    name.iter_mut().for_each(s);
                }
                j(meta);
                replying_to.iter_mut().for_each(s);
                alias.iter_mut().for_each(s);
            }
            ChannelItem::Echo {
                customer_external_id,
                provider_message_id,
                text,
                meta,
                ..
            } => {
                s(customer_external_id);
                s(provider_message_id);
                s(text);
                j(meta);
            }
            ChannelItem::Receipt {
                customer_external_id,
                provider_message_ids,
                ..
            } => {
                s(customer_external_id);
                provider_message_ids.iter_mut().for_each(s);
            }
            ChannelItem::Reaction {
                customer_external_id,
                target_provider_id,
                reaction,
                ..
            } => {
                s(customer_external_id);
                s(target_provider_id);
                reaction.iter_mut().for_each(j);
            }
            ChannelItem::Edit {
                provider_message_id,
                text,
                ..
            } => {
                s(provider_message_id);
                s(text);
            }
            ChannelItem::Unsent {
                provider_message_id,
                ..
            } => s(provider_message_id),
            ChannelItem::Status {
                provider_message_id,
                failure,
                ..
            } => {
                s(provider_message_id);
                if let Some((reason, error)) = failure {
                    s(reason);
                    j(error);
                }
            }
            ChannelItem::CommentChange {
                provider_message_id,
                verb,
                text,
                ..
            } => {
                s(provider_message_id);
                s(verb);
                text.iter_mut().for_each(s);
            }
        }
    }

    /// A customer's message that needs nothing but the batch ingest (not an answer to one of our
    /// private replies, which first links the commenter): the message and its provider extras.
    pub(crate) fn plain_customer(&self) -> Option<(&Inbound, (&serde_json::Value, Option<&str>))> {
        match self {
            ChannelItem::Customer {
                inbound,
                meta,
                replying_to: None,
                alias,
            } => Some((inbound, (meta, alias.as_deref()))),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum ChannelOutcome {
    /// A message row (new or, with `duplicate`, seen before).
    Message(crate::Ingested),
    /// Existing rows were updated (how many).
    Updated(usize),
    /// Nothing to do (unknown target, already applied).
    Nothing,
}

pub(crate) use switchboard_core::event::updated_event;
pub use switchboard_core::event::{MessageMeta, message_with_meta};

/// What the outbox does for a row.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum OutboxJob {
    /// A Send API message to the customer's messaging id.
    Send,
    /// A Send API message to `recipient.comment_id` (one per comment).
    PrivateReply,
    /// A public reply under a comment.
    CommentReply,
}

impl OutboxJob {
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Send => "send",
            Self::PrivateReply => "private_reply",
            Self::CommentReply => "comment_reply",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "send" => Self::Send,
            "private_reply" => Self::PrivateReply,
            "comment_reply" => Self::CommentReply,
            _ => return None,
        })
    }
}

/// `last_error` of an outbox row taken over from a worker that died while sending it.
pub const OUTBOX_INTERRUPTED: &str = "interrupted";

/// A row of the outbox.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OutboxRow {
    pub message_id: MessageId,
    pub inbox_id: InboxId,
    pub conversation_id: ConversationId,
    pub job: OutboxJob,
    /// Everything the send needs: `recipient`, `messaging_type`, `tag`, `text`, `comment_id`.
    pub request: serde_json::Value,
    pub state: String,
    pub attempts: u32,
    pub next_attempt_at: Timestamp,
    pub queued_at: Timestamp,
    pub provider_message_id: Option<String>,
    pub last_error: Option<String>,
}

/// A new outbound message with its outbox row (written in one transaction with the message).
#[derive(Debug, Clone)]
pub struct Outbound {
    pub change: Change,
    pub job: OutboxJob,
    pub request: serde_json::Value,
    pub meta: MessageMeta,
    /// For a private reply: the comment it answers (at most one per comment, enforced here).
    pub private_reply_to: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OutboundError {
    #[error("this comment already has its private reply")]
    PrivateReplyExists,
}

/// What a merge moved, so that it can be undone.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ContactMerge {
    pub id: uuid::Uuid,
    pub from_contact_id: ContactId,
    pub into_contact_id: ContactId,
    pub reason: String,
    pub actor_id: Option<AgentId>,
    pub created_at: Timestamp,
    pub undone_at: Option<Timestamp>,
}

#[async_trait]
pub trait ChannelStore: Send + Sync {
    /// Provider events, many in one transaction (group commit); one outcome per item.
    async fn ingest_channel(
        &self,
        batch: &[ChannelItem],
        now: Timestamp,
    ) -> Result<Vec<Result<ChannelOutcome, IngestError>>>;
    /// The inbox of `channel` whose account id setting (`page_id` / `ig_account_id`) is `account`.
    async fn inbox_by_account(&self, channel: ChannelKind, account: &str) -> Result<Option<Inbox>>;
    async fn message(&self, id: MessageId) -> Result<Option<Message>>;
    async fn message_meta(&self, ids: &[MessageId]) -> Result<HashMap<MessageId, MessageMeta>>;
    /// The contact's id on the channel that can receive DMs in this inbox (PSID / IGSID), if known.
    async fn messaging_id(&self, contact: ContactId, inbox: InboxId) -> Result<Option<String>>;
    async fn private_reply_of(&self, inbox: InboxId, comment_id: &str)
    -> Result<Option<MessageId>>;
    /// Sets the channel-given name and avatar; publishes nothing (the next read shows them).
    async fn set_contact_profile(
        &self,
        contact: ContactId,
        name: Option<&str>,
        avatar_url: Option<&str>,
        now: Timestamp,
    ) -> Result<()>;
    async fn contact_avatar(&self, contact: ContactId) -> Result<Option<String>>;
    /// Moves everything of `from` to `into` (identities, conversations, messages); undoable.
    async fn merge_contacts(
        &self,
        from: ContactId,
        into: ContactId,
        reason: &str,
        actor: Option<AgentId>,
        now: Timestamp,
    ) -> Result<ContactMerge>;
    async fn undo_merge(&self, id: uuid::Uuid, now: Timestamp) -> Result<ContactMerge>;
    async fn merges_of(&self, contact: ContactId) -> Result<Vec<ContactMerge>>;
    async fn merge_record(&self, id: uuid::Uuid) -> Result<Option<ContactMerge>>;
}

#[async_trait]
pub trait OutboxStore: Send + Sync {
    /// Writes the message, its extras and its outbox row in one transaction (compare-and-set on
    /// the conversation like [`crate::Store::apply`]).
    async fn queue_outbound(
        &self,
        out: Outbound,
    ) -> Result<std::result::Result<Vec<Event>, OutboundError>>;
    /// Takes up to `limit` rows due at `now` for sending, leasing them until `lease_until`; a row
    /// is handed to exactly one caller. A row taken over from a worker whose lease ran out (it
    /// died mid-send: its request may have reached the provider) comes back with `last_error`
    /// [`OUTBOX_INTERRUPTED`], so the caller does not send it blindly a second time.
    async fn claim_due(
        &self,
        now: Timestamp,
        lease_until: Timestamp,
        limit: u32,
    ) -> Result<Vec<OutboxRow>>;
    /// The provider accepted the message. Links `recipient_id` (a private reply's PSID) to the
    /// conversation's contact.
    async fn outbox_sent(
        &self,
        id: MessageId,
        provider_message_id: &str,
        recipient_id: Option<&str>,
        now: Timestamp,
    ) -> Result<Vec<Event>>;
    /// Try again at `next_attempt_at`.
    async fn outbox_retry(
        &self,
        id: MessageId,
        next_attempt_at: Timestamp,
        error: &str,
        now: Timestamp,
    ) -> Result<()>;
    /// Give up: the message is `failed` with `reason`.
    async fn outbox_failed(
        &self,
        id: MessageId,
        reason: &str,
        now: Timestamp,
    ) -> Result<Vec<Event>>;
    async fn outbox_row(&self, id: MessageId) -> Result<Option<OutboxRow>>;
    /// Earliest `next_attempt_at` of a queued row (the worker sleeps until then).
    async fn next_due(&self) -> Result<Option<Timestamp>>;
}
