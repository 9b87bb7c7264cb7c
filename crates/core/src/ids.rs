//! Typed identifiers. All are UUIDv7 (time-ordered), generated outside the core and passed in.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;
use uuid::Uuid;

macro_rules! id_type {
    ($($(#[$doc:meta])* $name:ident),* $(,)?) => {$(
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub Uuid);

        impl $name {
            pub const fn from_uuid(u: Uuid) -> Self { Self(u) }
            pub const fn uuid(self) -> Uuid { self.0 }
        }
        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result { self.0.fmt(f) }
        }
        impl FromStr for $name {
            type Err = uuid::Error;
            fn from_str(s: &str) -> Result<Self, Self::Err> { Uuid::parse_str(s).map(Self) }
        }
    )*};
}

id_type!(
    /// A tenant. One by default.
    WorkspaceId,
    /// One connected channel account (a page, a number, a website widget).
    InboxId,
    /// A human user of the workspace.
    AgentId,
    /// One customer, across channels.
    ContactId,
    /// A contact × inbox thread.
    ConversationId,
    MessageId,
    TagId,
    QuickReplyId,
    /// A durable timer row (reply SLA, auto-close, offline release).
    TimerId,
    /// An automation flow (all its versions share the id).
    FlowId,
    /// One run of a flow in one conversation.
    FlowRunId,
    /// A flow attached to a customer to run at a time ("kịch bản hẹn giờ").
    ScheduledFlowId,
);
