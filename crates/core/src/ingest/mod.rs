//! Ingest: what arriving events mean. [`batch`] plans the group commit of customer messages
//! (who wrote, which conversation, its transition, timers and pool place, the events); [`events`]
//! decides what a provider's other events (receipts, statuses, edits, reactions, echoes) do. The
//! store reads the facts and writes the plans.

use crate::ids::*;
use crate::model::MessageKind;
use crate::time::Timestamp;
use serde::Serialize;

pub mod batch;
mod events;
mod inbound;

pub use batch::decide;
pub use events::*;
pub use inbound::*;

/// Who sent an inbound message: a contact already known (live chat), or a channel identity the
/// store resolves (and creates) inside the ingest transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InboundSender {
    Contact(ContactId),
    Identity {
        external_id: String,
        name: Option<String>,
    },
}

impl InboundSender {
    /// A channel identity, with the name the channel gave (if any).
    pub fn identity(external_id: impl Into<String>, name: Option<&str>) -> Self {
        Self::Identity {
            external_id: external_id.into(),
            name: name.map(str::to_owned),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inbound {
    pub workspace_id: WorkspaceId,
    pub inbox_id: InboxId,
    pub sender: InboundSender,
    /// Unique per inbox: a redelivery with the same id is a duplicate.
    pub provider_message_id: String,
    pub kind: MessageKind,
    pub text: String,
    /// The provider's time of the message (drives the messaging window).
    pub sent_at: Timestamp,
    /// Pre-generated ids, used only if the row is new.
    pub message_id: MessageId,
    pub new_conversation_id: ConversationId,
    pub new_contact_id: ContactId,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Ingested {
    pub message_id: MessageId,
    pub conversation_id: ConversationId,
    pub contact_id: ContactId,
    /// The same provider message id was stored before; nothing new was written.
    pub duplicate: bool,
    /// The message created the conversation or reopened it: it is in the pool, waiting for routing.
    pub entered_pool: bool,
    /// A flow holds the conversation (status `bot`): the message is the running flow's input.
    pub held_by_bot: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IngestError {
    #[error("unknown contact")]
    UnknownContact,
    #[error("unknown inbox")]
    UnknownInbox,
}
