//! What provider channels (Messenger, Instagram, ...) need from the store beyond live chat:
//! channel events ingested in the same group commit as messages, message extras (attachments,
//! comment details, reactions, the policy used), the outbox, and contact linking and merging.

use crate::{Change, IngestError, Result};
use async_trait::async_trait;
use serde::Serialize;
use std::collections::HashMap;
use switchboard_core::event::Event;
use switchboard_core::*;

/// `ChannelStore::messaging_id` never returns a commenter's identity.
pub use switchboard_core::ingest::COMMENTER_PREFIX;

/// One provider event for one inbox ([`ChannelStore::ingest_channel`] stores it inside the group
/// commit); the channel-neutral event itself is `core`'s. Provider ids are unique per inbox, so
/// a redelivery changes nothing.
pub use switchboard_core::ingest::{Echoed, InboundEvent, NewIds, Said, Stamped};

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

/// A contact's name and picture as profile syncs see them.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ContactProfile {
    pub name: Option<String>,
    pub name_source: Option<contact::NameSource>,
    /// The provider's URL of the picture (shown as is only where its bytes may not be kept).
    pub avatar_url: Option<String>,
    /// Our copy: `<data_dir>/media/avatars/<avatar_file>`.
    pub avatar_file: Option<String>,
    /// The copy's type, derived from its bytes.
    pub avatar_type: Option<String>,
    /// The provider's identity of the picture the copy (or URL) is of.
    pub avatar_key: Option<String>,
    pub synced_at: Option<Timestamp>,
}

impl ContactProfile {
    /// Where agents load the picture (`core::contact::avatar_url`).
    pub fn avatar_shown(&self, id: ContactId) -> Option<String> {
        contact::avatar_url(id, self.avatar_file.as_deref(), self.avatar_url.as_deref())
    }
}

/// What a profile sync writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProfileWrite {
    /// A name from the channel (`None`: the name stays).
    pub name: Option<String>,
    /// A new picture (`None`: the picture stays).
    pub avatar: Option<AvatarWrite>,
    pub synced_at: Timestamp,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AvatarWrite {
    /// Copied into our media store.
    Copied {
        file: String,
        content_type: String,
        key: String,
        url: Option<String>,
    },
    /// The provider's URL only (its bytes may not be kept, or the copy failed).
    Linked { url: String, key: String },
}
pub use switchboard_core::event::{MessageMeta, message_with_meta};

pub use switchboard_core::outbound::OutboxJob;

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
    /// A bot's step that sends this message: saved in the same transaction (one commit for the
    /// step and its reply); a step saved by someone else first fails it all with `StaleRun`.
    pub run: Option<crate::automation::RunSave>,
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
        batch: &[Stamped],
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
    /// What profile syncs read of a contact (its name and where that came from, its picture).
    async fn contact_profile(&self, contact: ContactId) -> Result<Option<ContactProfile>>;
    /// Writes what a profile sync decided (`core::contact`); publishes nothing (the next read
    /// shows it).
    async fn set_contact_profile(&self, contact: ContactId, w: &ProfileWrite) -> Result<()>;
    /// Sets the name and where it came from (an agent typed it, or cleared it).
    async fn set_contact_name(
        &self,
        contact: ContactId,
        name: Option<&str>,
        source: Option<contact::NameSource>,
        now: Timestamp,
    ) -> Result<()>;
    /// The customer's public handle on a channel (Telegram, Instagram), when the profile gave one.
    async fn set_identity_username(
        &self,
        inbox: InboxId,
        external_id: &str,
        username: Option<&str>,
    ) -> Result<()>;
    async fn identity_username(&self, inbox: InboxId, external_id: &str) -> Result<Option<String>>;
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
