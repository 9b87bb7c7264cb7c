//! Live-chat (and any plain customer message) ingest. There is one group-commit writer for every
//! channel — [`crate::channel_ingest::ChannelIngest`] — so a burst from the widget and a burst of
//! provider webhooks share transactions; this is the narrow entry point for a single customer
//! message. A caller that gets `Ok` may acknowledge: the message is on disk.

use crate::channel_ingest::ChannelIngest;
pub use crate::channel_ingest::IngestFailure;
use switchboard_store::{ChannelOutcome, Inbound, InboundEvent, Ingested, NewIds, Said, Stamped};

#[derive(Clone)]
pub struct Ingest {
    writer: ChannelIngest,
}

impl Ingest {
    pub fn new(writer: ChannelIngest) -> Self {
        Self { writer }
    }

    /// Queues one customer message and waits until it is durably stored (or refused). A
    /// conversation it created or reopened is routed before this returns, unless a flow may take
    /// it: then automation's worker decides, and routes it if no flow does.
    pub async fn submit(&self, inbound: Inbound) -> Result<Ingested, IngestFailure> {
        let item = Stamped {
            workspace_id: inbound.workspace_id,
            inbox_id: inbound.inbox_id,
            ids: NewIds {
                message: inbound.message_id,
                conversation: inbound.new_conversation_id,
                contact: inbound.new_contact_id,
            },
            event: InboundEvent::Customer(Said {
                from: inbound.sender,
                provider_message_id: inbound.provider_message_id,
                kind: inbound.kind,
                text: inbound.text,
                at: inbound.sent_at,
                meta: serde_json::Value::Null,
                replying_to: None,
                alias: None,
            }),
        };
        match self.writer.submit_all(vec![item]).await?.pop() {
            Some(Ok(ChannelOutcome::Message(done))) => Ok(done),
            Some(Err(e)) => Err(e.into()),
            Some(Ok(_)) | None => Err(IngestFailure::Store),
        }
    }
}
