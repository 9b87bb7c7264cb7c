//! The domain's nouns. Enums carry their wire/database spelling via `as_str` / `parse`.

use crate::ids::*;
use crate::time::Timestamp;
use serde::{Deserialize, Serialize};

/// Defines a string-backed enum with one spelling used on the wire, in the database and in logs.
macro_rules! str_enum {
    ($(#[$doc:meta])* $name:ident { $($variant:ident = $s:literal),* $(,)? }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, ::serde::Serialize, ::serde::Deserialize)]
        pub enum $name { $(#[serde(rename = $s)] $variant),* }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),*];
            pub const fn as_str(self) -> &'static str {
                match self { $($name::$variant => $s),* }
            }
            pub fn parse(s: &str) -> Option<Self> {
                match s { $($s => Some($name::$variant),)* _ => None }
            }
        }
        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result { f.write_str(self.as_str()) }
        }
    };
}
pub(crate) use str_enum;

str_enum!(
    /// What an agent may do beyond their inboxes. Admins manage the workspace and see every inbox;
    /// supervisors assign and transfer within their inboxes; agents work their inboxes.
    Role { Admin = "admin", Supervisor = "supervisor", Agent = "agent" }
);

impl Role {
    /// May assign conversations to others and act on conversations they do not hold.
    pub const fn supervises(self) -> bool {
        matches!(self, Role::Admin | Role::Supervisor)
    }
    /// Sees every inbox without being a member.
    pub const fn sees_all_inboxes(self) -> bool {
        matches!(self, Role::Admin)
    }
}

str_enum!(
    /// The kind of channel an inbox is connected to.
    ChannelKind {
        Livechat = "livechat",
        Messenger = "messenger",
        Instagram = "instagram",
        Whatsapp = "whatsapp",
        Zalo = "zalo",
        Telegram = "telegram",
        // Shopee seller chat (Shopee Open Platform).
        Shopee = "shopee",
    }
);

str_enum!(
    /// Where a conversation stands. `bot`: a bot is answering; `pending`: in the pool, nobody holds it;
    /// `open`: an agent holds it; `resolved`: done until the customer writes again.
    ConversationStatus { Bot = "bot", Pending = "pending", Open = "open", Resolved = "resolved" }
);

str_enum!(Direction { Inbound = "inbound", Outbound = "outbound" });

str_enum!(SenderKind { Customer = "customer", Agent = "agent", Bot = "bot", System = "system" });

str_enum!(
    /// `note` and `agent_to_agent` are private: they never leave Switchboard.
    MessageKind {
        Text = "text",
        Media = "media",
        // A public comment on a post (Facebook Page feed, Instagram media).
        Comment = "comment",
        Note = "note",
        AgentToAgent = "agent_to_agent",
        System = "system",
    }
);

impl MessageKind {
    /// Private messages are for agents only; customers and providers never see them.
    pub const fn is_private(self) -> bool {
        matches!(self, MessageKind::Note | MessageKind::AgentToAgent)
    }
}

str_enum!(
    DeliveryStatus {
        Received = "received",
        Queued = "queued",
        Sent = "sent",
        Delivered = "delivered",
        Read = "read",
        Failed = "failed",
    }
);

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Agent {
    pub id: AgentId,
    pub workspace_id: WorkspaceId,
    pub email: String,
    pub name: String,
    pub role: Role,
    /// Most open conversations this agent should hold at once; `None` = no limit.
    pub capacity: Option<u32>,
    pub active: bool,
    pub created_at: Timestamp,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Inbox {
    pub id: InboxId,
    pub workspace_id: WorkspaceId,
    pub name: String,
    pub channel: ChannelKind,
    /// Channel-specific settings (JSON object). Secrets are stripped before the API returns them.
    pub settings: serde_json::Value,
    pub created_at: Timestamp,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Contact {
    pub id: ContactId,
    pub workspace_id: WorkspaceId,
    /// As the channel reports it; agents cannot edit it.
    pub name: Option<String>,
    pub phone: Option<String>,
    pub email: Option<String>,
    pub notes: Option<String>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

/// A customer's account on one channel: (inbox, external id) → contact.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Identity {
    pub inbox_id: InboxId,
    pub external_id: String,
    pub contact_id: ContactId,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Conversation {
    pub id: ConversationId,
    pub workspace_id: WorkspaceId,
    pub inbox_id: InboxId,
    pub contact_id: ContactId,
    pub status: ConversationStatus,
    pub assignee_id: Option<AgentId>,
    /// The agent who last held it; kept across resolve so a returning customer can go back to them.
    pub last_assignee_id: Option<AgentId>,
    /// The agent who last transferred it away, until it is resolved: routing never hands it back
    /// to them (a reply deadline missed by the colleague moves it on, not back).
    pub handed_over_by: Option<AgentId>,
    pub participants: Vec<AgentId>,
    pub tags: Vec<String>,
    /// The provider's time of the customer's last message: drives the messaging window.
    pub last_customer_message_at: Option<Timestamp>,
    /// Drives the reply SLA.
    pub last_agent_reply_at: Option<Timestamp>,
    /// Orders the conversation list (newest activity first).
    pub last_activity_at: Timestamp,
    pub created_at: Timestamp,
    /// Bumped by every change; writes compare-and-set on it.
    pub version: i64,
}

impl Conversation {
    /// A fresh conversation for a customer who just wrote.
    pub fn new_from_customer(
        id: ConversationId,
        workspace_id: WorkspaceId,
        inbox_id: InboxId,
        contact_id: ContactId,
        now: Timestamp,
    ) -> Self {
        Self {
            id,
            workspace_id,
            inbox_id,
            contact_id,
            status: ConversationStatus::Pending,
            assignee_id: None,
            last_assignee_id: None,
            handed_over_by: None,
            participants: Vec::new(),
            tags: Vec::new(),
            last_customer_message_at: None,
            last_agent_reply_at: None,
            last_activity_at: now,
            created_at: now,
            version: 0,
        }
    }

    pub fn is_held_by(&self, agent: AgentId) -> bool {
        self.assignee_id == Some(agent)
    }

    pub fn is_participant(&self, agent: AgentId) -> bool {
        self.participants.contains(&agent)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    pub id: MessageId,
    pub conversation_id: ConversationId,
    pub inbox_id: InboxId,
    pub direction: Direction,
    pub sender_kind: SenderKind,
    pub sender_agent_id: Option<AgentId>,
    pub kind: MessageKind,
    pub text: String,
    /// The provider's id (or the widget's client id): unique per inbox, so redelivery collapses.
    pub provider_message_id: Option<String>,
    pub delivery_status: DeliveryStatus,
    pub failure_reason: Option<String>,
    pub created_at: Timestamp,
}

impl Message {
    pub fn is_private(&self) -> bool {
        self.kind.is_private()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuickReply {
    pub id: QuickReplyId,
    pub workspace_id: WorkspaceId,
    pub code: String,
    pub text: String,
    /// Files of the saved-media library sent with the text, in this order.
    #[serde(default)]
    pub media: Vec<uuid::Uuid>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tag {
    pub id: TagId,
    pub name: String,
}
