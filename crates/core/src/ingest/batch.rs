//! The group-commit ingest of customer messages, planned in memory (the store reads the facts and
//! writes the plan: `store::ingest`). A backend reads everything a batch needs with a fixed number of
//! statements (the senders' identities, stored duplicates, the conversations with their timers and
//! pool rows), this module makes the decisions item by item in batch order — exactly as a
//! message-at-a-time path would, through the same core functions — and the backend writes the
//! result back with one multi-row statement per table.
//!
//! Why: a statement per row is a round trip each (a network hop on PostgreSQL, a thread hop for
//! sqlx's SQLite worker); ~20 of them per message capped ingest at a few thousand messages/s. See
//! `BENCHMARKS.md`.
//!
//! What the per-message path did with routing's `after_write` (timers from `core::timers::plan`, the
//! waiting pool) is simulated on the rows read at the start: a `Set` bumps the generation and drops
//! the lease only when the due time or agent changes; an `Ensure` keeps an existing timer; a
//! conversation still waiting keeps its place in the queue.

use super::{Inbound, InboundSender, IngestError, Ingested};
use crate::conversation::Action;
use crate::event::{self, Event};
use crate::event::{MessageMeta, updated_event};
use crate::ids::*;
use crate::model::*;
use crate::routing::{PoolEntry, RoutingRules, pool_entry};
use crate::time::Timestamp;
use crate::timers::{self, TimerKind, TimerOp};
use std::collections::{HashMap, HashSet};
use uuid::Uuid;

/// How many characters of a message the conversation list shows.
pub const PREVIEW_CHARS: usize = 140;

pub fn preview(text: &str) -> String {
    text.chars().take(PREVIEW_CHARS).collect()
}

/// A timer row as the batch leaves it.
#[derive(Clone, Debug)]
pub struct TimerRow {
    pub id: String,
    pub kind: &'static str,
    pub conversation_id: String,
    pub agent_id: Option<String>,
    pub due_at: i64,
    pub generation: i64,
    pub locked_by: Option<String>,
    pub locked_until: Option<i64>,
    pub created_at: i64,
    pub changed: bool,
}

/// A waiting-pool row as the batch leaves it.
#[derive(Clone, Debug)]
pub struct PoolRow {
    pub inbox_id: String,
    pub waiting_since: i64,
    pub excluded_agent_id: Option<String>,
    pub changed: bool,
}

/// One conversation the batch touches.
pub struct Touched {
    pub conversation: Conversation,
    /// The stored version (`None`: created by this batch).
    pub stored_version: Option<i64>,
    pub preview: Option<String>,
    pub unread: i64,
    pub timers: HashMap<&'static str, TimerRow>,
    /// Timer ids the batch deleted.
    pub timers_gone: Vec<String>,
    pub pool: Option<PoolRow>,
    /// Whether a stored pool row may exist (it must be deleted when `pool` ends up `None`).
    pub pool_loaded: bool,
}

impl Touched {
    /// A stored conversation, as read (add its timers and pool row with the setters below).
    pub fn stored(conversation: Conversation) -> Self {
        Self {
            stored_version: Some(conversation.version),
            conversation,
            preview: None,
            unread: 0,
            timers: HashMap::new(),
            timers_gone: Vec::new(),
            pool: None,
            pool_loaded: false,
        }
    }

    pub fn add_timer(&mut self, kind: TimerKind, row: TimerRow) {
        self.timers.insert(kind.as_str(), row);
    }

    pub fn set_pool(&mut self, inbox_id: String, waiting_since: i64, excluded: Option<String>) {
        self.pool = Some(PoolRow {
            inbox_id,
            waiting_since,
            excluded_agent_id: excluded,
            changed: false,
        });
    }

    /// Whether the batch wrote to this conversation.
    pub fn written(&self) -> bool {
        self.preview.is_some()
    }

    /// Whether a stored pool row must be deleted.
    pub fn leaves_pool(&self) -> bool {
        self.pool.is_none() && self.pool_loaded && self.stored_version.is_some()
    }

    fn apply_timer_ops(
        &mut self,
        ops: &[TimerOp],
        now: Timestamp,
        new_id: &mut impl FnMut() -> Uuid,
    ) {
        let conv = self.conversation.id.to_string();
        for op in ops {
            match op {
                TimerOp::Set {
                    kind,
                    due_at,
                    agent_id,
                } => {
                    let agent = agent_id.map(|a| a.to_string());
                    match self.timers.get_mut(kind.as_str()) {
                        Some(t) => {
                            if t.due_at != due_at.millis() || t.agent_id != agent {
                                t.due_at = due_at.millis();
                                t.agent_id = agent;
                                t.generation += 1;
                                t.locked_by = None;
                                t.locked_until = None;
                                t.changed = true;
                            }
                        }
                        None => {
                            self.timers.insert(
                                kind.as_str(),
                                new_timer(new_id(), &conv, *kind, *due_at, agent, now),
                            );
                        }
                    }
                }
                TimerOp::Ensure {
                    kind,
                    due_at,
                    agent_id,
                } => {
                    if !self.timers.contains_key(kind.as_str()) {
                        let agent = agent_id.map(|a| a.to_string());
                        self.timers.insert(
                            kind.as_str(),
                            new_timer(new_id(), &conv, *kind, *due_at, agent, now),
                        );
                    }
                }
                TimerOp::Clear(kind) => {
                    if let Some(t) = self.timers.remove(kind.as_str())
                        && !t.id.is_empty()
                    {
                        self.timers_gone.push(t.id);
                    }
                }
            }
        }
    }

    /// The pool rules of routing's `after_write` (`core::routing::pool_entry`).
    fn apply_pool(&mut self, before: Option<&Conversation>, now: Timestamp) {
        let row = |excluded: Option<AgentId>| PoolRow {
            inbox_id: self.conversation.inbox_id.to_string(),
            waiting_since: now.millis(),
            excluded_agent_id: excluded.map(|a| a.to_string()),
            changed: true,
        };
        match pool_entry(before, &self.conversation) {
            PoolEntry::Out => {
                self.pool = None;
                // Remember that a stored row, if any, must go.
                self.pool_loaded = true;
            }
            PoolEntry::Keep => {
                if self.pool.is_none() {
                    self.pool = Some(row(None));
                }
            }
            PoolEntry::Enter { excluded } => self.pool = Some(row(excluded)),
        }
    }
}

fn new_timer(
    id: Uuid,
    conv: &str,
    kind: TimerKind,
    due_at: Timestamp,
    agent_id: Option<String>,
    now: Timestamp,
) -> TimerRow {
    TimerRow {
        id: id.to_string(),
        kind: kind.as_str(),
        conversation_id: conv.to_owned(),
        agent_id,
        due_at: due_at.millis(),
        generation: 1,
        locked_by: None,
        locked_until: None,
        created_at: now.millis(),
        changed: true,
    }
}

/// What a batch needs to know before deciding who wrote each message.
#[derive(Default)]
pub struct Known {
    pub inboxes: HashSet<InboxId>,
    pub contacts: HashSet<ContactId>,
    /// (inbox, external id) → contact.
    pub identities: HashMap<(InboxId, String), ContactId>,
    /// (inbox, provider message id) → the stored message (duplicates).
    pub stored: HashMap<(InboxId, String), (MessageId, ConversationId)>,
}

/// The batch's reads as keys: what a backend must look up for [`Known`].
pub struct Lookups {
    pub inboxes: Vec<InboxId>,
    pub contacts: Vec<ContactId>,
    pub identities: Vec<(InboxId, String)>,
    pub provider_ids: Vec<(InboxId, String)>,
}

/// `aliases[i]`: another id of item i's sender (see `Said::alias`); may be shorter
/// than the batch.
pub fn lookups(batch: &[&Inbound], aliases: &[Option<&str>]) -> Lookups {
    let mut inboxes: Vec<InboxId> = batch.iter().map(|i| i.inbox_id).collect();
    inboxes.sort_unstable();
    inboxes.dedup();
    let mut contacts = Vec::new();
    let mut identities = Vec::new();
    for (n, i) in batch.iter().enumerate() {
        match &i.sender {
            InboundSender::Contact(c) => contacts.push(*c),
            InboundSender::Identity { external_id, .. } => {
                identities.push((i.inbox_id, external_id.clone()));
            }
        }
        if let Some(alias) = aliases.get(n).copied().flatten() {
            identities.push((i.inbox_id, alias.to_owned()));
        }
    }
    Lookups {
        inboxes,
        contacts,
        identities,
        provider_ids: batch
            .iter()
            .map(|i| (i.inbox_id, i.provider_message_id.clone()))
            .collect(),
    }
}

/// Who wrote each message; customers seen for the first time become new contacts.
pub struct Senders {
    pub senders: Vec<Result<ContactId, IngestError>>,
    pub new_contacts: Vec<Contact>,
    /// One per new contact, in the same order.
    pub new_identities: Vec<(InboxId, String, ContactId)>,
    /// Aliases to link to their sender's contact (none was linked when the batch was read).
    pub links: Vec<(InboxId, String, ContactId)>,
}

impl Senders {
    /// The (contact, inbox) pairs whose conversations the backend must read, with their timers
    /// (for inboxes with saved rules) and pool rows.
    pub fn conversation_keys(&self, batch: &[&Inbound]) -> Vec<(ContactId, InboxId)> {
        let mut keys: Vec<(ContactId, InboxId)> = batch
            .iter()
            .zip(&self.senders)
            .filter_map(|(i, s)| s.as_ref().ok().map(|c| (*c, i.inbox_id)))
            .collect();
        keys.sort_unstable();
        keys.dedup();
        keys
    }
}

/// An alias is linked to the first sender that brings it, and known from then on: a later item of
/// the batch written under that id alone is the same customer.
pub fn senders(
    batch: &[&Inbound],
    aliases: &[Option<&str>],
    known: &mut Known,
    now: Timestamp,
) -> Senders {
    let mut new_contacts = Vec::new();
    let mut new_identities = Vec::new();
    let mut links = Vec::new();
    let mut senders = Vec::with_capacity(batch.len());
    for (n, item) in batch.iter().enumerate() {
        if !known.inboxes.contains(&item.inbox_id) {
            senders.push(Err(IngestError::UnknownInbox));
            continue;
        }
        let sender = match &item.sender {
            InboundSender::Contact(c) if known.contacts.contains(c) => Ok(*c),
            InboundSender::Contact(_) => Err(IngestError::UnknownContact),
            InboundSender::Identity { external_id, name } => {
                let key = (item.inbox_id, external_id.clone());
                match known.identities.get(&key) {
                    Some(c) => Ok(*c),
                    None => {
                        new_contacts.push(Contact {
                            id: item.new_contact_id,
                            workspace_id: item.workspace_id,
                            name: name.clone(),
                            phone: None,
                            email: None,
                            notes: None,
                            created_at: now,
                            updated_at: now,
                        });
                        new_identities.push((
                            item.inbox_id,
                            external_id.clone(),
                            item.new_contact_id,
                        ));
                        known.identities.insert(key, item.new_contact_id);
                        Ok(item.new_contact_id)
                    }
                }
            }
        };
        if let (Ok(contact), Some(alias)) = (&sender, aliases.get(n).copied().flatten())
            && let std::collections::hash_map::Entry::Vacant(v) =
                known.identities.entry((item.inbox_id, alias.to_owned()))
        {
            links.push((item.inbox_id, alias.to_owned(), *contact));
            v.insert(*contact);
        }
        senders.push(sender);
    }
    Senders {
        senders,
        new_contacts,
        new_identities,
        links,
    }
}

/// An action-log row.
pub struct ActionRow {
    pub id: Uuid,
    pub conversation_id: ConversationId,
    pub kind: &'static str,
    pub actor: Option<AgentId>,
    /// JSON text.
    pub detail: String,
    pub at: Timestamp,
}

impl ActionRow {
    /// The rows of `actions` (`new_id` names each row).
    pub fn of(
        conv: ConversationId,
        actions: &[Action],
        now: Timestamp,
        new_id: &mut impl FnMut() -> Uuid,
    ) -> Vec<ActionRow> {
        actions
            .iter()
            .map(|a| ActionRow {
                id: new_id(),
                conversation_id: conv,
                kind: a.kind.as_str(),
                actor: a.actor,
                detail: serde_json::to_string(&a.detail).unwrap_or_else(|_| "null".into()),
                at: now,
            })
            .collect()
    }
}

/// What the batch writes, decided.
pub struct Plan {
    pub out: Vec<Result<Ingested, IngestError>>,
    /// New messages, in batch order.
    pub messages: Vec<Message>,
    pub actions: Vec<ActionRow>,
    /// Unnumbered (`seq` 0), in batch order.
    pub events: Vec<Event>,
    /// The provider extras of new messages (`message_meta` rows).
    pub metas: Vec<(MessageId, MessageMeta)>,
    /// The conversations, with what the batch did to them (see [`Touched::written`]).
    pub conversations: Vec<Touched>,
}

/// What the store read for a batch.
pub struct Facts<'a> {
    /// Who wrote each item ([`senders`]).
    pub senders: Vec<Result<ContactId, IngestError>>,
    pub known: &'a Known,
    /// The stored conversations [`Senders::conversation_keys`] named, with timers and pool rows.
    pub conversations: Vec<Touched>,
    /// The saved routing rules per inbox.
    pub rules: &'a HashMap<InboxId, RoutingRules>,
}

/// Decides, item by item in batch order, what the batch writes (`new_id` names new rows). `conversations` are the stored
/// ones the keys named (with timers and pool rows); `rules` the saved routing rules per inbox;
/// `metas` the provider extras of each item (`Null` or `{}`: none; shorter than the batch: none for
/// the rest) — a new message with extras also gets its `message.updated` event, as an edit would.
pub fn decide(
    batch: &[&Inbound],
    metas: &[&serde_json::Value],
    facts: Facts<'_>,
    now: Timestamp,
    new_id: &mut impl FnMut() -> Uuid,
) -> Plan {
    let Facts {
        senders,
        known,
        conversations,
        rules,
    } = facts;
    let mut convs: HashMap<(ContactId, InboxId), Touched> = conversations
        .into_iter()
        .map(|t| ((t.conversation.contact_id, t.conversation.inbox_id), t))
        .collect();
    let mut out = Vec::with_capacity(batch.len());
    let mut messages = Vec::with_capacity(batch.len());
    let mut actions = Vec::new();
    let mut events = Vec::with_capacity(batch.len());
    let mut extras = Vec::new();
    let mut seen: HashMap<(InboxId, &str), (MessageId, ConversationId)> = HashMap::new();
    for (n, (item, sender)) in batch.iter().zip(senders).enumerate() {
        let contact_id = match sender {
            Ok(c) => c,
            Err(e) => {
                out.push(Err(e));
                continue;
            }
        };
        let dup = seen
            .get(&(item.inbox_id, item.provider_message_id.as_str()))
            .or_else(|| {
                known
                    .stored
                    .get(&(item.inbox_id, item.provider_message_id.clone()))
            });
        if let Some((message_id, conversation_id)) = dup {
            out.push(Ok(Ingested {
                message_id: *message_id,
                conversation_id: *conversation_id,
                contact_id,
                duplicate: true,
                entered_pool: false,
                held_by_bot: false,
            }));
            continue;
        }
        let key = (contact_id, item.inbox_id);
        let existing = convs.get(&key).map(|t| t.conversation.clone());
        let fresh = Conversation::new_from_customer(
            item.new_conversation_id,
            item.workspace_id,
            item.inbox_id,
            contact_id,
            now,
        );
        let tr = crate::conversation::customer_message(existing.as_ref(), fresh, item.sent_at, now);
        let t = convs.entry(key).or_insert_with(|| Touched {
            conversation: tr.conversation.clone(),
            stored_version: None,
            preview: None,
            unread: 0,
            timers: HashMap::new(),
            timers_gone: Vec::new(),
            pool: None,
            pool_loaded: true,
        });
        t.conversation = tr.conversation.clone();
        if let Some(r) = rules.get(&item.inbox_id) {
            let ops = timers::plan(existing.as_ref(), &t.conversation, r, now);
            t.apply_timer_ops(&ops, now, new_id);
        }
        t.apply_pool(existing.as_ref(), now);
        t.preview = Some(preview(&item.text));
        t.unread += 1;
        let conv = &t.conversation;
        let entered_pool = existing
            .as_ref()
            .is_none_or(|e| e.status == ConversationStatus::Resolved);
        let message = Message {
            id: item.message_id,
            conversation_id: conv.id,
            inbox_id: item.inbox_id,
            direction: Direction::Inbound,
            sender_kind: SenderKind::Customer,
            sender_agent_id: None,
            kind: item.kind,
            text: item.text.clone(),
            provider_message_id: Some(item.provider_message_id.clone()),
            delivery_status: DeliveryStatus::Received,
            failure_reason: None,
            created_at: item.sent_at.clamp_to(now),
        };
        actions.extend(ActionRow::of(conv.id, &tr.actions, now, new_id));
        // A plain customer message only moves activity: `message.created` says that already.
        let mut drafts = Vec::with_capacity(2);
        if !tr.actions.is_empty() {
            drafts.extend(event::for_transition(existing.as_ref(), &tr));
        }
        drafts.push(event::message_created(&message));
        if let Some(meta) = metas.get(n).filter(|m| !is_empty_meta(m)) {
            let m = MessageMeta {
                meta: (*meta).clone(),
                ..MessageMeta::default()
            };
            drafts.push(updated_event(&message, Some(&m)));
            extras.push((message.id, m));
        }
        events.extend(
            drafts
                .into_iter()
                .map(|d| unnumbered(item.workspace_id, d, now)),
        );
        seen.insert(
            (item.inbox_id, item.provider_message_id.as_str()),
            (message.id, conv.id),
        );
        out.push(Ok(Ingested {
            message_id: message.id,
            conversation_id: conv.id,
            contact_id,
            duplicate: false,
            entered_pool,
            held_by_bot: conv.status == ConversationStatus::Bot,
        }));
        messages.push(message);
    }
    Plan {
        out,
        messages,
        actions,
        events,
        metas: extras,
        conversations: convs.into_values().collect(),
    }
}

/// Whether a message's provider extras are empty (nothing to store).
pub fn is_empty_meta(v: &serde_json::Value) -> bool {
    v.is_null() || v.as_object().is_some_and(serde_json::Map::is_empty)
}

/// An event not numbered yet (`seq` 0): the backend numbers a transaction's events at commit.
pub fn unnumbered(ws: WorkspaceId, d: event::EventDraft, now: Timestamp) -> Event {
    Event {
        seq: 0,
        workspace_id: ws,
        inbox_id: d.inbox_id,
        conversation_id: d.conversation_id,
        kind: d.kind,
        payload: d.payload,
        created_at: now,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const NOW: Timestamp = Timestamp(1_790_000_000_000);
    const WS: WorkspaceId = WorkspaceId(Uuid::from_u128(1));
    const INBOX: InboxId = InboxId(Uuid::from_u128(2));
    const KNOWN: ContactId = ContactId(Uuid::from_u128(3));

    /// Item `n`: from `sender` (an external id, or `#` for the known contact), provider id `pid`.
    fn item(n: u128, sender: &str, pid: &str) -> Inbound {
        Inbound {
            workspace_id: WS,
            inbox_id: if sender == "?" {
                InboxId(Uuid::from_u128(99))
            } else {
                INBOX
            },
            sender: match sender {
                "#" => InboundSender::Contact(KNOWN),
                "!" => InboundSender::Contact(ContactId(Uuid::from_u128(98))),
                s => InboundSender::Identity {
                    external_id: s.into(),
                    name: None,
                },
            },
            provider_message_id: pid.into(),
            kind: MessageKind::Text,
            text: format!("text {n}"),
            sent_at: NOW,
            message_id: MessageId(Uuid::from_u128(100 + n)),
            new_conversation_id: ConversationId(Uuid::from_u128(200 + n)),
            new_contact_id: ContactId(Uuid::from_u128(300 + n)),
        }
    }

    /// The outcome of one item, as (duplicate, entered_pool, message id n, contact id n), or the error.
    type Want = Result<(bool, bool, u128, u128), IngestError>;

    /// Items with their aliases, the provider ids the store has, the outcome of each item.
    type Case = (
        Vec<(Inbound, Option<&'static str>)>,
        Vec<&'static str>,
        Vec<Want>,
    );

    #[test]
    fn a_batch_decides_each_item_as_if_it_came_alone() {
        let alias = Some("alias-a");
        let cases: Vec<Case> = vec![
            // A new customer: new contact and conversation, in the pool.
            (
                vec![(item(1, "a", "m1"), None)],
                vec![],
                vec![Ok((false, true, 101, 301))],
            ),
            // The known contact, then a redelivery inside the batch, then one stored before.
            (
                vec![
                    (item(1, "#", "m1"), None),
                    (item(2, "#", "m1"), None),
                    (item(3, "#", "old"), None),
                ],
                vec!["old"],
                vec![
                    Ok((false, true, 101, 3)),
                    Ok((true, false, 101, 3)),
                    Ok((true, false, 7, 3)),
                ],
            ),
            // The same new customer twice: one contact, one conversation, entering the pool once.
            (
                vec![(item(1, "a", "m1"), None), (item(2, "a", "m2"), None)],
                vec![],
                vec![Ok((false, true, 101, 301)), Ok((false, false, 102, 301))],
            ),
            // An alias brought by one message names the same customer in the next.
            (
                vec![
                    (item(1, "a", "m1"), alias),
                    (item(2, "alias-a", "m2"), None),
                ],
                vec![],
                vec![Ok((false, true, 101, 301)), Ok((false, false, 102, 301))],
            ),
            // Unknown inbox or contact: refused, the others stored.
            (
                vec![
                    (item(1, "?", "m1"), None),
                    (item(2, "!", "m2"), None),
                    (item(3, "b", "m3"), None),
                ],
                vec![],
                vec![
                    Err(IngestError::UnknownInbox),
                    Err(IngestError::UnknownContact),
                    Ok((false, true, 103, 303)),
                ],
            ),
        ];
        for (n, (items, stored, want)) in cases.into_iter().enumerate() {
            let batch: Vec<&Inbound> = items.iter().map(|(i, _)| i).collect();
            let aliases: Vec<Option<&str>> = items.iter().map(|(_, a)| *a).collect();
            let mut known = Known::default();
            known.inboxes.insert(INBOX);
            known.contacts.insert(KNOWN);
            for pid in stored {
                let m = (
                    MessageId(Uuid::from_u128(7)),
                    ConversationId(Uuid::from_u128(8)),
                );
                known.stored.insert((INBOX, pid.into()), m);
            }
            let look = lookups(&batch, &aliases);
            assert_eq!(look.provider_ids.len(), batch.len(), "case {n}");
            let senders = senders(&batch, &aliases, &mut known, NOW);
            let rules = HashMap::new();
            let facts = Facts {
                senders: senders.senders,
                known: &known,
                conversations: Vec::new(),
                rules: &rules,
            };
            let mut ids = (1000..).map(Uuid::from_u128);
            let plan = decide(&batch, &[], facts, NOW, &mut || ids.next().unwrap());
            let got: Vec<Want> = plan
                .out
                .iter()
                .map(|r| {
                    r.clone().map(|i| {
                        (
                            i.duplicate,
                            i.entered_pool,
                            i.message_id.0.as_u128(),
                            i.contact_id.0.as_u128(),
                        )
                    })
                })
                .collect();
            assert_eq!(got, want, "case {n}");
            let new = want.iter().filter(|w| matches!(w, Ok((false, ..)))).count();
            assert_eq!(
                plan.messages.len(),
                new,
                "case {n}: one row per new message"
            );
            assert!(
                plan.conversations
                    .iter()
                    .filter(|t| t.written())
                    .all(|t| t.pool.is_some()),
                "case {n}: every conversation a customer wrote to waits in the pool"
            );
        }
    }
}
