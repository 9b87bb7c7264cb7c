//! What arrives: one channel-neutral [`InboundEvent`] for everything a provider tells us (a
//! customer's message or comment, the page's own message, receipts and statuses, reactions,
//! edits, unsends, comment changes). Each provider's parser (`switchboard_channels`) produces it;
//! [`Stamped`] gives it the inbox it is for and the ids its new rows take, and the store applies it
//! in the group commit.

use super::{Inbound, InboundSender};
use crate::ids::*;
use crate::model::{DeliveryStatus, MessageKind};
use crate::time::Timestamp;
use crate::validate::{strip_controls as s, strip_controls_json as j};
use serde_json::Value;

/// Identities of commenters whose id is not a messaging id (a Facebook feed `from.id` is not a
/// PSID): `commenter:<id>`.
pub const COMMENTER_PREFIX: &str = "commenter:";

/// A customer's message, comment, button tap or referral.
#[derive(Debug, Clone, PartialEq)]
pub struct Said {
    /// Who wrote: their id on the channel (PSID, IGSID, wa_id, Zalo user id, Telegram chat id...)
    /// with the name the channel gave, or a contact known already (a live-chat visitor).
    pub from: InboundSender,
    /// Unique per inbox: a redelivery with the same id is a duplicate.
    pub provider_message_id: String,
    pub kind: MessageKind,
    pub text: String,
    /// The provider's time (drives the messaging window).
    pub at: Timestamp,
    /// Extras shown with the message (attachments, comment, quick reply, referral...).
    pub meta: Value,
    /// The provider id of a message of ours this one answers (`reply_to.mid`): if it was a
    /// private reply, the sender's id is linked to the commenter's contact.
    pub replying_to: Option<String>,
    /// Another id of the same customer on this inbox (WhatsApp's business-scoped user id next to
    /// the phone number): linked to the sender's contact in the same transaction.
    pub alias: Option<String>,
}

/// A message the page or business sent (from the provider's own apps, or our send coming back).
#[derive(Debug, Clone, PartialEq)]
pub struct Echoed {
    /// The customer it was sent to.
    pub customer: String,
    pub provider_message_id: String,
    /// Our message id, when the echo carries our marker.
    pub ours: Option<MessageId>,
    pub text: String,
    pub meta: Value,
    pub at: Timestamp,
}

/// One thing a provider told us about one inbox.
#[derive(Debug, Clone, PartialEq)]
pub enum InboundEvent {
    /// A customer wrote: moves the window (through the conversation's transition).
    Customer(Said),
    /// The page wrote. Never moves the window.
    Echo(Echoed),
    /// Delivery or read receipts: by provider ids and/or everything up to a watermark.
    Receipt {
        customer: String,
        provider_message_ids: Vec<String>,
        watermark: Option<Timestamp>,
        status: DeliveryStatus,
    },
    /// A customer's reaction to a message (counts for the window).
    Reaction {
        customer: String,
        target_provider_id: String,
        /// `None` takes the customer's reaction back.
        reaction: Option<Value>,
        at: Timestamp,
    },
    /// The customer edited a message.
    Edit {
        provider_message_id: String,
        text: String,
        num_edit: i64,
    },
    /// The customer unsent a message: the row stays, marked deleted, its text removed.
    Unsent { provider_message_id: String },
    /// A provider's delivery status for one of our messages, found by our marker or by the
    /// provider id. Statuses only move forward; `failed` is recorded whatever came before. It
    /// also tells the outbox the provider accepted the message (so it is never sent again).
    Status {
        provider_message_id: String,
        ours: Option<MessageId>,
        status: DeliveryStatus,
        /// For `failed`: the stable reason and the provider's error (kept in `meta`).
        failure: Option<(String, Value)>,
    },
    /// A comment was edited, removed, hidden or unhidden on the platform.
    CommentChange {
        provider_message_id: String,
        verb: String,
        text: Option<String>,
    },
}

impl InboundEvent {
    /// The customer a message or echo is from or to (whose identity the store may create).
    pub fn customer(&self) -> Option<&str> {
        match self {
            Self::Customer(m) => match &m.from {
                InboundSender::Identity { external_id, .. } => Some(external_id),
                InboundSender::Contact(_) => None,
            },
            Self::Echo(e) => Some(&e.customer),
            Self::Receipt { customer, .. } | Self::Reaction { customer, .. } => Some(customer),
            _ => None,
        }
    }

    /// Drops NUL and the other forbidden control characters from every string a provider sent
    /// (text, names, ids, extras): the customer's message is kept, and no byte of it can make the
    /// store refuse the batch it travels in.
    pub fn strip_controls(&mut self) {
        match self {
            Self::Customer(m) => {
                if let InboundSender::Identity { external_id, name } = &mut m.from {
                    s(external_id);
                    name.iter_mut().for_each(s);
                }
                s(&mut m.provider_message_id);
                s(&mut m.text);
                j(&mut m.meta);
                m.replying_to.iter_mut().for_each(s);
                m.alias.iter_mut().for_each(s);
            }
            Self::Echo(e) => {
                s(&mut e.customer);
                s(&mut e.provider_message_id);
                s(&mut e.text);
                j(&mut e.meta);
            }
            Self::Receipt {
                customer,
                provider_message_ids,
                ..
            } => {
                s(customer);
                provider_message_ids.iter_mut().for_each(s);
            }
            Self::Reaction {
                customer,
                target_provider_id,
                reaction,
                ..
            } => {
                s(customer);
                s(target_provider_id);
                reaction.iter_mut().for_each(j);
            }
            Self::Edit {
                provider_message_id,
                text,
                ..
            } => {
                s(provider_message_id);
                s(text);
            }
            Self::Unsent {
                provider_message_id,
            } => s(provider_message_id),
            Self::Status {
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
            Self::CommentChange {
                provider_message_id,
                verb,
                text,
            } => {
                s(provider_message_id);
                s(verb);
                text.iter_mut().for_each(s);
            }
        }
    }
}

/// The earliest time a provider can mean (2010-01-01): anything older is a misread field (a
/// missing timestamp read as 0, seconds read as milliseconds).
pub const EARLIEST_PROVIDER_TIME: Timestamp = Timestamp(1_262_304_000_000);
/// How far ahead of our clock a provider's time may run (clock skew); further is a misread field.
pub const MAX_PROVIDER_SKEW_MS: i64 = 24 * 3_600_000;

/// A provider's time as ingest uses it: the provider's own when it is plausible, else the time we
/// received the event (`now`). A timestamp of 0 (missing) or far in the future must never close or
/// stretch a messaging window.
pub fn plausible_time(at: Timestamp, now: Timestamp) -> Timestamp {
    if at < EARLIEST_PROVIDER_TIME || at > now.plus_millis(MAX_PROVIDER_SKEW_MS) {
        now
    } else {
        at
    }
}

impl InboundEvent {
    /// Replaces every implausible provider time of the event by the receive time
    /// ([`plausible_time`]).
    pub fn settle_times(&mut self, now: Timestamp) {
        let fix = |t: &mut Timestamp| *t = plausible_time(*t, now);
        match self {
            Self::Customer(m) => fix(&mut m.at),
            Self::Echo(e) => fix(&mut e.at),
            Self::Reaction { at, reaction, .. } => {
                fix(at);
                // The time shown with the reaction, when the provider's was implausible.
                if let Some(Value::Object(o)) = reaction
                    && let Some(shown) = o.get_mut("at")
                    && let Some(t) = shown.as_i64()
                {
                    *shown = Value::from(plausible_time(Timestamp(t), now).millis());
                }
            }
            Self::Receipt { watermark, .. } => {
                if let Some(w) = watermark {
                    fix(w);
                }
            }
            Self::Edit { .. }
            | Self::Unsent { .. }
            | Self::Status { .. }
            | Self::CommentChange { .. } => {}
        }
    }
}

/// Pre-generated ids for the rows an event may create, used only if they are new.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NewIds {
    pub message: MessageId,
    pub conversation: ConversationId,
    pub contact: ContactId,
}

/// An event for one inbox, ready for the store.
#[derive(Debug, Clone, PartialEq)]
pub struct Stamped {
    pub workspace_id: WorkspaceId,
    pub inbox_id: InboxId,
    pub ids: NewIds,
    pub event: InboundEvent,
}

impl Stamped {
    /// A customer's message as the batch ingest takes it.
    pub fn inbound(&self) -> Option<Inbound> {
        let InboundEvent::Customer(m) = &self.event else {
            return None;
        };
        Some(Inbound {
            workspace_id: self.workspace_id,
            inbox_id: self.inbox_id,
            sender: m.from.clone(),
            provider_message_id: m.provider_message_id.clone(),
            kind: m.kind,
            text: m.text.clone(),
            sent_at: m.at,
            message_id: self.ids.message,
            new_conversation_id: self.ids.conversation,
            new_contact_id: self.ids.contact,
        })
    }

    /// A customer's message that needs nothing but the batch ingest (not an answer to one of our
    /// private replies, which first links the commenter).
    pub fn plain_customer(&self) -> Option<&Said> {
        match &self.event {
            InboundEvent::Customer(m) if m.replying_to.is_none() => Some(m),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_string_a_provider_sent_loses_its_control_characters() {
        let mut e = InboundEvent::Customer(Said {
            from: InboundSender::identity("u\u{0}1", Some("A\u{0}n")),
            provider_message_id: "m\u{0}1".into(),
            kind: MessageKind::Text,
            text: "hi\u{0}there".into(),
            at: Timestamp(1),
            meta: serde_json::json!({"a\u{0}": ["x\u{0}"]}),
            replying_to: Some("r\u{0}".into()),
            alias: Some("b\u{0}".into()),
        });
        e.strip_controls();
        let InboundEvent::Customer(m) = &e else {
            panic!("{e:?}");
        };
        assert_eq!(m.from, InboundSender::identity("u1", Some("An")));
        assert_eq!(m.text, "hithere");
        assert_eq!(m.meta, serde_json::json!({"a": ["x"]}));
        assert_eq!(m.replying_to.as_deref(), Some("r"));
        assert_eq!(m.alias.as_deref(), Some("b"));
    }

    #[test]
    fn implausible_provider_times_fall_back_to_the_receive_time() {
        let now = Timestamp(1_790_000_000_000);
        for (at, want) in [
            (Timestamp(0), now),
            (Timestamp(1_700_000_000), now), // seconds read as ms: 1970
            (Timestamp(EARLIEST_PROVIDER_TIME.0 - 1), now),
            (EARLIEST_PROVIDER_TIME, EARLIEST_PROVIDER_TIME),
            (Timestamp(1_700_000_000_000), Timestamp(1_700_000_000_000)),
            (now, now),
            (
                now.plus_millis(MAX_PROVIDER_SKEW_MS),
                now.plus_millis(MAX_PROVIDER_SKEW_MS),
            ),
            (now.plus_millis(MAX_PROVIDER_SKEW_MS + 1), now),
            (Timestamp(i64::MAX), now),
            (Timestamp(i64::MIN), now),
        ] {
            assert_eq!(plausible_time(at, now), want, "{at:?}");
        }
        let mut e = InboundEvent::Reaction {
            customer: "c".into(),
            target_provider_id: "m".into(),
            reaction: Some(serde_json::json!({"emoji": "❤", "at": 0})),
            at: Timestamp(0),
        };
        e.settle_times(now);
        let InboundEvent::Reaction { at, reaction, .. } = e else {
            panic!("{e:?}");
        };
        assert_eq!(at, now);
        assert_eq!(
            reaction,
            Some(serde_json::json!({"emoji": "❤", "at": now.millis()}))
        );
    }

    #[test]
    fn a_stamped_customer_message_becomes_the_batch_ingests_inbound() {
        let id = |n: u128| uuid::Uuid::from_u128(n);
        let st = Stamped {
            workspace_id: WorkspaceId(id(1)),
            inbox_id: InboxId(id(2)),
            ids: NewIds {
                message: MessageId(id(3)),
                conversation: ConversationId(id(4)),
                contact: ContactId(id(5)),
            },
            event: InboundEvent::Customer(Said {
                from: InboundSender::identity("psid", None),
                provider_message_id: "mid".into(),
                kind: MessageKind::Text,
                text: "xin chào".into(),
                at: Timestamp(7),
                meta: Value::Null,
                replying_to: Some("ours".into()),
                alias: None,
            }),
        };
        let i = st.inbound().unwrap_or_else(|| panic!("no inbound"));
        assert_eq!(
            (i.inbox_id, i.message_id, i.sent_at, i.text.as_str()),
            (st.inbox_id, st.ids.message, Timestamp(7), "xin chào")
        );
        // Answering one of our messages: not a plain message for the batch path.
        assert!(st.plain_customer().is_none());
    }
}
