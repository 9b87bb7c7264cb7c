//! The group-commit ingest of customer messages on PostgreSQL, with a fixed number of statements
//! per batch whatever its size: every read is one query over the whole batch (`unnest()` arrays or
//! `= ANY`), the decisions are made in memory item by item — exactly as the per-item path (and the
//! SQLite store) makes them, in batch order — and every write is one multi-row statement.
//! Per-row statements cost a round trip each and stall at ~10k rows/s (`shared/perf-limits.md`).
//!
//! What the per-item path does with `after_write` (timers from `core::timers::plan`, the waiting
//! pool) is simulated here on the rows read at the start, then the final rows are written: the
//! same SQL semantics (a `Set` bumps the generation and drops the lease only when the due time or
//! agent changes; an `Ensure` keeps an existing timer; a conversation still waiting keeps its place).

use super::*;
use std::collections::HashMap;
use switchboard_core::routing::RoutingRules;
use switchboard_core::timers::{self, TimerOp};

/// A timer row as the batch leaves it.
#[derive(Clone)]
struct TimerRow {
    id: String,
    kind: &'static str,
    conversation_id: String,
    agent_id: Option<String>,
    due_at: i64,
    generation: i64,
    locked_by: Option<String>,
    locked_until: Option<i64>,
    created_at: i64,
    changed: bool,
}

/// A waiting-pool row as the batch leaves it.
#[derive(Clone)]
struct PoolRow {
    inbox_id: String,
    waiting_since: i64,
    excluded_agent_id: Option<String>,
    changed: bool,
}

/// One conversation touched by the batch.
struct Touched {
    conversation: Conversation,
    /// The stored version (`None`: created by this batch).
    stored_version: Option<i64>,
    preview: Option<String>,
    unread: i64,
    timers: HashMap<&'static str, TimerRow>,
    /// Timer ids the batch deleted.
    timers_gone: Vec<String>,
    pool: Option<PoolRow>,
    pool_loaded: bool,
}

fn in_pool(c: &Conversation) -> bool {
    c.status == ConversationStatus::Pending && c.assignee_id.is_none()
}

impl Touched {
    fn apply_timer_ops(&mut self, ops: &[TimerOp], now: Timestamp) {
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
                                new_timer(&conv, *kind, *due_at, agent, now),
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
                        self.timers
                            .insert(kind.as_str(), new_timer(&conv, *kind, *due_at, agent, now));
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

    /// The pool rules of `after_write`.
    fn apply_pool(&mut self, before: Option<&Conversation>, now: Timestamp) {
        let after = &self.conversation;
        if !in_pool(after) {
            if let Some(p) = &mut self.pool {
                p.changed = true;
            }
            self.pool = None;
            // Remember that a stored row, if any, must go.
            self.pool_loaded = true;
        } else if before.is_some_and(in_pool) {
            if self.pool.is_none() {
                self.pool = Some(PoolRow {
                    inbox_id: after.inbox_id.to_string(),
                    waiting_since: now.millis(),
                    excluded_agent_id: None,
                    changed: true,
                });
            }
        } else {
            self.pool = Some(PoolRow {
                inbox_id: after.inbox_id.to_string(),
                waiting_since: now.millis(),
                excluded_agent_id: before.and_then(|b| b.assignee_id).map(|a| a.to_string()),
                changed: true,
            });
        }
    }
}

fn new_timer(
    conv: &str,
    kind: switchboard_core::timers::TimerKind,
    due_at: Timestamp,
    agent_id: Option<String>,
    now: Timestamp,
) -> TimerRow {
    TimerRow {
        id: Uuid::now_v7().to_string(),
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

type Key = (String, String);

/// Ingests one batch inside `conn`'s transaction (the caller numbers the events and commits).
pub(super) async fn ingest_batch(
    conn: &mut PgConnection,
    batch: &[Inbound],
    now: Timestamp,
    events: &mut Vec<Event>,
) -> Result<Vec<Result<Ingested, IngestError>>> {
    lock_keys(
        conn,
        batch
            .iter()
            .map(|i| sender_key(i.inbox_id, &i.sender))
            .collect(),
    )
    .await?;

    // ---- reads, one statement each for the whole batch
    let inbox_ids: Vec<String> = batch.iter().map(|i| i.inbox_id.to_string()).collect();
    let inboxes: std::collections::HashSet<String> =
        sqlx::query("SELECT id FROM inboxes WHERE id = ANY($1)")
            .bind(&inbox_ids)
            .fetch_all(&mut *conn)
            .await?
            .iter()
            .map(|r| r.try_get::<String, _>(0))
            .collect::<Result<_, _>>()?;
    let contact_ids: Vec<String> = batch
        .iter()
        .filter_map(|i| match &i.sender {
            InboundSender::Contact(c) => Some(c.to_string()),
            InboundSender::Identity { .. } => None,
        })
        .collect();
    let contacts: std::collections::HashSet<String> = if contact_ids.is_empty() {
        Default::default()
    } else {
        sqlx::query("SELECT id FROM contacts WHERE id = ANY($1)")
            .bind(&contact_ids)
            .fetch_all(&mut *conn)
            .await?
            .iter()
            .map(|r| r.try_get::<String, _>(0))
            .collect::<Result<_, _>>()?
    };
    let (id_inboxes, id_externals): (Vec<String>, Vec<String>) = batch
        .iter()
        .filter_map(|i| match &i.sender {
            InboundSender::Identity { external_id, .. } => {
                Some((i.inbox_id.to_string(), external_id.clone()))
            }
            InboundSender::Contact(_) => None,
        })
        .unzip();
    let mut identities: HashMap<Key, ContactId> = HashMap::new();
    if !id_inboxes.is_empty() {
        for r in sqlx::query(
            "SELECT i.inbox_id, i.external_id, i.contact_id FROM contact_identities i \
             JOIN unnest($1::text[], $2::text[]) AS k(inbox_id, external_id) \
             ON i.inbox_id = k.inbox_id AND i.external_id = k.external_id",
        )
        .bind(&id_inboxes)
        .bind(&id_externals)
        .fetch_all(&mut *conn)
        .await?
        {
            identities.insert(
                (r.try_get("inbox_id")?, r.try_get("external_id")?),
                ContactId(uuid_of(&r, "contact_id")?),
            );
        }
    }
    let pids: Vec<String> = batch
        .iter()
        .map(|i| i.provider_message_id.clone())
        .collect();
    let mut stored: HashMap<Key, (MessageId, ConversationId)> = HashMap::new();
    for r in sqlx::query(
        "SELECT m.inbox_id, m.provider_message_id, m.id, m.conversation_id FROM messages m \
         JOIN unnest($1::text[], $2::text[]) AS k(inbox_id, pid) \
         ON m.inbox_id = k.inbox_id AND m.provider_message_id = k.pid",
    )
    .bind(&inbox_ids)
    .bind(&pids)
    .fetch_all(&mut *conn)
    .await?
    {
        stored.insert(
            (r.try_get("inbox_id")?, r.try_get("provider_message_id")?),
            (
                MessageId(uuid_of(&r, "id")?),
                ConversationId(uuid_of(&r, "conversation_id")?),
            ),
        );
    }

    // ---- who wrote each message (creating contacts and identities for new customers)
    let mut new_contacts: Vec<Contact> = Vec::new();
    let mut new_identities: Vec<(InboxId, String, ContactId)> = Vec::new();
    let mut senders: Vec<Result<ContactId, IngestError>> = Vec::with_capacity(batch.len());
    for item in batch {
        if !inboxes.contains(&item.inbox_id.to_string()) {
            senders.push(Err(IngestError::UnknownInbox));
            continue;
        }
        senders.push(match &item.sender {
            InboundSender::Contact(c) if contacts.contains(&c.to_string()) => Ok(*c),
            InboundSender::Contact(_) => Err(IngestError::UnknownContact),
            InboundSender::Identity { external_id, name } => {
                let key = (item.inbox_id.to_string(), external_id.clone());
                match identities.get(&key) {
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
                        identities.insert(key, item.new_contact_id);
                        Ok(item.new_contact_id)
                    }
                }
            }
        });
    }

    // ---- the conversations the batch touches, locked, with their timers and pool rows
    let (pair_contacts, pair_inboxes): (Vec<String>, Vec<String>) = batch
        .iter()
        .zip(&senders)
        .filter_map(|(i, s)| {
            s.as_ref()
                .ok()
                .map(|c| (c.to_string(), i.inbox_id.to_string()))
        })
        .unzip();
    let mut convs: HashMap<Key, Touched> = HashMap::new();
    if !pair_contacts.is_empty() {
        for r in sqlx::query(
            "SELECT c.* FROM conversations c \
             WHERE (c.contact_id, c.inbox_id) IN (SELECT * FROM unnest($1::text[], $2::text[])) \
             ORDER BY c.id FOR UPDATE",
        )
        .bind(&pair_contacts)
        .bind(&pair_inboxes)
        .fetch_all(&mut *conn)
        .await?
        {
            let c = conversation_row(&r)?;
            convs.insert(
                (c.contact_id.to_string(), c.inbox_id.to_string()),
                Touched {
                    stored_version: Some(c.version),
                    conversation: c,
                    preview: None,
                    unread: 0,
                    timers: HashMap::new(),
                    timers_gone: Vec::new(),
                    pool: None,
                    pool_loaded: false,
                },
            );
        }
    }
    let mut rules: HashMap<InboxId, RoutingRules> = HashMap::new();
    {
        let mut ids = inbox_ids.clone();
        ids.sort();
        ids.dedup();
        for r in sqlx::query("SELECT inbox_id, rules FROM routing_rules WHERE inbox_id = ANY($1)")
            .bind(&ids)
            .fetch_all(&mut *conn)
            .await?
        {
            rules.insert(
                InboxId(uuid_of(&r, "inbox_id")?),
                routing::rules_of(&r.try_get::<String, _>("rules")?)?,
            );
        }
    }
    let stored_ids: Vec<String> = convs
        .values()
        .map(|t| t.conversation.id.to_string())
        .collect();
    if !stored_ids.is_empty() {
        let by_id: HashMap<String, Key> = convs
            .iter()
            .map(|(k, t)| (t.conversation.id.to_string(), k.clone()))
            .collect();
        for r in sqlx::query("SELECT * FROM routing_pool WHERE conversation_id = ANY($1)")
            .bind(&stored_ids)
            .fetch_all(&mut *conn)
            .await?
        {
            let id: String = r.try_get("conversation_id")?;
            if let Some(t) = by_id.get(&id).and_then(|k| convs.get_mut(k)) {
                t.pool = Some(PoolRow {
                    inbox_id: r.try_get("inbox_id")?,
                    waiting_since: r.try_get("waiting_since")?,
                    excluded_agent_id: r.try_get("excluded_agent_id")?,
                    changed: false,
                });
            }
        }
        let with_rules: Vec<String> = convs
            .values()
            .filter(|t| rules.contains_key(&t.conversation.inbox_id))
            .map(|t| t.conversation.id.to_string())
            .collect();
        if !with_rules.is_empty() {
            for r in sqlx::query("SELECT * FROM timers WHERE conversation_id = ANY($1)")
                .bind(&with_rules)
                .fetch_all(&mut *conn)
                .await?
            {
                let id: String = r.try_get("conversation_id")?;
                let kind = enum_of(&r, "kind", switchboard_core::timers::TimerKind::parse)?;
                if let Some(t) = by_id.get(&id).and_then(|k| convs.get_mut(k)) {
                    t.timers.insert(
                        kind.as_str(),
                        TimerRow {
                            id: r.try_get("id")?,
                            kind: kind.as_str(),
                            conversation_id: id.clone(),
                            agent_id: r.try_get("agent_id")?,
                            due_at: r.try_get("due_at")?,
                            generation: r.try_get("generation")?,
                            locked_by: r.try_get("locked_by")?,
                            locked_until: r.try_get("locked_until")?,
                            created_at: r.try_get("created_at")?,
                            changed: false,
                        },
                    );
                }
            }
        }
    }

    // ---- decide, item by item, in batch order
    let mut out = Vec::with_capacity(batch.len());
    let mut pending = PendingRows::default();
    let mut seen: HashMap<Key, (MessageId, ConversationId)> = HashMap::new();
    for (item, sender) in batch.iter().zip(senders) {
        let contact_id = match sender {
            Ok(c) => c,
            Err(e) => {
                out.push(Err(e));
                continue;
            }
        };
        let pkey = (item.inbox_id.to_string(), item.provider_message_id.clone());
        if let Some((message_id, conversation_id)) = seen.get(&pkey).or_else(|| stored.get(&pkey)) {
            out.push(Ok(Ingested {
                message_id: *message_id,
                conversation_id: *conversation_id,
                contact_id,
                duplicate: true,
                entered_pool: false,
            }));
            continue;
        }
        let ckey = (contact_id.to_string(), item.inbox_id.to_string());
        let existing = convs.get(&ckey).map(|t| t.conversation.clone());
        let fresh = Conversation::new_from_customer(
            item.new_conversation_id,
            item.workspace_id,
            item.inbox_id,
            contact_id,
            now,
        );
        let tr = switchboard_core::conversation::customer_message(
            existing.as_ref(),
            fresh,
            item.sent_at,
            now,
        );
        let t = convs.entry(ckey).or_insert_with(|| Touched {
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
            t.apply_timer_ops(&ops, now);
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
        pending.actions(conv.id, &tr.actions, now);
        let mut drafts = Vec::with_capacity(2);
        if !tr.actions.is_empty() {
            drafts.extend(event::for_transition(existing.as_ref(), &tr));
        }
        drafts.push(event::message_created(&message));
        insert_events(conn, item.workspace_id, drafts, now, events).await?;
        seen.insert(pkey, (message.id, conv.id));
        out.push(Ok(Ingested {
            message_id: message.id,
            conversation_id: conv.id,
            contact_id,
            duplicate: false,
            entered_pool,
        }));
        pending.messages.push(message);
    }

    // ---- writes, one statement each
    write_contacts(conn, &new_contacts, &new_identities).await?;
    let touched: Vec<&Touched> = convs.values().filter(|t| t.preview.is_some()).collect();
    write_conversations(conn, &touched).await?;
    write_timers_and_pool(conn, &touched).await?;
    pending.write(conn).await?;
    Ok(out)
}

async fn write_contacts(
    conn: &mut PgConnection,
    contacts: &[Contact],
    identities: &[(InboxId, String, ContactId)],
) -> Result<()> {
    if contacts.is_empty() {
        return Ok(());
    }
    sqlx::query(
        "INSERT INTO contacts (id, workspace_id, name, created_at, updated_at) \
         SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::bigint[], $5::bigint[])",
    )
    .bind(
        contacts
            .iter()
            .map(|c| c.id.to_string())
            .collect::<Vec<_>>(),
    )
    .bind(
        contacts
            .iter()
            .map(|c| c.workspace_id.to_string())
            .collect::<Vec<_>>(),
    )
    .bind(contacts.iter().map(|c| c.name.clone()).collect::<Vec<_>>())
    .bind(
        contacts
            .iter()
            .map(|c| c.created_at.millis())
            .collect::<Vec<_>>(),
    )
    .bind(
        contacts
            .iter()
            .map(|c| c.updated_at.millis())
            .collect::<Vec<_>>(),
    )
    .execute(&mut *conn)
    .await?;
    sqlx::query(
        "INSERT INTO contact_identities (inbox_id, external_id, contact_id, created_at) \
         SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::bigint[])",
    )
    .bind(
        identities
            .iter()
            .map(|i| i.0.to_string())
            .collect::<Vec<_>>(),
    )
    .bind(identities.iter().map(|i| i.1.clone()).collect::<Vec<_>>())
    .bind(
        identities
            .iter()
            .map(|i| i.2.to_string())
            .collect::<Vec<_>>(),
    )
    .bind(
        contacts
            .iter()
            .map(|c| c.created_at.millis())
            .collect::<Vec<_>>(),
    )
    .execute(&mut *conn)
    .await?;
    Ok(())
}

async fn write_conversations(conn: &mut PgConnection, touched: &[&Touched]) -> Result<()> {
    let (new, old): (Vec<&Touched>, Vec<&Touched>) =
        touched.iter().partition(|t| t.stored_version.is_none());
    let col = |ts: &[&Touched],
               f: &dyn Fn(&Conversation) -> Option<String>|
     -> Vec<Option<String>> { ts.iter().map(|t| f(&t.conversation)).collect() };
    let ms = |ts: &[&Touched], f: &dyn Fn(&Conversation) -> Option<i64>| -> Vec<Option<i64>> {
        ts.iter().map(|t| f(&t.conversation)).collect()
    };
    for (rows, insert) in [(&new, true), (&old, false)] {
        if rows.is_empty() {
            continue;
        }
        let sql: &'static str = if insert {
            "INSERT INTO conversations (id, workspace_id, inbox_id, contact_id, status, assignee_id, last_assignee_id, \
             participants, tags, last_customer_message_at, last_agent_reply_at, last_activity_at, created_at, version, \
             last_message_preview, unread_count) \
             SELECT u.id, u.workspace_id, u.inbox_id, u.contact_id, u.status, u.assignee_id, u.last_assignee_id, \
             u.participants, u.tags, u.lcm, u.lar, u.activity, u.created_at, u.version, u.preview, u.unread \
             FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], \
             $8::text[], $9::text[], $10::bigint[], $11::bigint[], $12::bigint[], $13::bigint[], $14::bigint[], \
             $15::text[], $16::bigint[], $17::bigint[]) \
             AS u(id, workspace_id, inbox_id, contact_id, status, assignee_id, last_assignee_id, participants, tags, \
             lcm, lar, activity, created_at, version, preview, unread, expected)"
        } else {
            // Compare-and-set on the stored version (the rows are locked, so it holds).
            "UPDATE conversations c SET status = u.status, assignee_id = u.assignee_id, \
             last_assignee_id = u.last_assignee_id, participants = u.participants, tags = u.tags, \
             last_customer_message_at = u.lcm, last_agent_reply_at = u.lar, last_activity_at = u.activity, \
             version = u.version, last_message_preview = u.preview, unread_count = c.unread_count + u.unread \
             FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], \
             $8::text[], $9::text[], $10::bigint[], $11::bigint[], $12::bigint[], $13::bigint[], $14::bigint[], \
             $15::text[], $16::bigint[], $17::bigint[]) \
             AS u(id, workspace_id, inbox_id, contact_id, status, assignee_id, last_assignee_id, participants, tags, \
             lcm, lar, activity, created_at, version, preview, unread, expected) \
             WHERE c.id = u.id AND c.version = u.expected"
        };
        let done = sqlx::query(sql)
            .bind(col(rows, &|c| Some(c.id.to_string())))
            .bind(col(rows, &|c| Some(c.workspace_id.to_string())))
            .bind(col(rows, &|c| Some(c.inbox_id.to_string())))
            .bind(col(rows, &|c| Some(c.contact_id.to_string())))
            .bind(col(rows, &|c| Some(c.status.as_str().to_owned())))
            .bind(col(rows, &|c| c.assignee_id.map(|a| a.to_string())))
            .bind(col(rows, &|c| c.last_assignee_id.map(|a| a.to_string())))
            .bind(col(rows, &|c| Some(ids_json(&c.participants))))
            .bind(col(rows, &|c| Some(json_text(&c.tags))))
            .bind(ms(rows, &|c| {
                c.last_customer_message_at.map(Timestamp::millis)
            }))
            .bind(ms(rows, &|c| c.last_agent_reply_at.map(Timestamp::millis)))
            .bind(ms(rows, &|c| Some(c.last_activity_at.millis())))
            .bind(ms(rows, &|c| Some(c.created_at.millis())))
            .bind(ms(rows, &|c| Some(c.version)))
            .bind(rows.iter().map(|t| t.preview.clone()).collect::<Vec<_>>())
            .bind(rows.iter().map(|t| t.unread).collect::<Vec<_>>())
            .bind(
                rows.iter()
                    .map(|t| t.stored_version.unwrap_or(0))
                    .collect::<Vec<_>>(),
            )
            .execute(&mut *conn)
            .await?;
        if done.rows_affected() != rows.len() as u64 {
            return Err(StoreError::VersionConflict);
        }
    }
    Ok(())
}

async fn write_timers_and_pool(conn: &mut PgConnection, touched: &[&Touched]) -> Result<()> {
    let gone: Vec<String> = touched
        .iter()
        .flat_map(|t| t.timers_gone.iter().cloned())
        .collect();
    if !gone.is_empty() {
        sqlx::query("DELETE FROM timers WHERE id = ANY($1)")
            .bind(&gone)
            .execute(&mut *conn)
            .await?;
    }
    let set: Vec<&TimerRow> = touched
        .iter()
        .flat_map(|t| t.timers.values())
        .filter(|r| r.changed)
        .collect();
    if !set.is_empty() {
        sqlx::query(
            "INSERT INTO timers (id, kind, conversation_id, agent_id, due_at, generation, locked_by, locked_until, created_at) \
             SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::bigint[], $6::bigint[], \
             $7::text[], $8::bigint[], $9::bigint[]) \
             ON CONFLICT (id) DO UPDATE SET due_at = excluded.due_at, agent_id = excluded.agent_id, \
             generation = excluded.generation, locked_by = excluded.locked_by, locked_until = excluded.locked_until",
        )
        .bind(set.iter().map(|r| r.id.clone()).collect::<Vec<_>>())
        .bind(set.iter().map(|r| r.kind).collect::<Vec<_>>())
        .bind(set.iter().map(|r| r.conversation_id.clone()).collect::<Vec<_>>())
        .bind(set.iter().map(|r| r.agent_id.clone()).collect::<Vec<_>>())
        .bind(set.iter().map(|r| r.due_at).collect::<Vec<_>>())
        .bind(set.iter().map(|r| r.generation).collect::<Vec<_>>())
        .bind(set.iter().map(|r| r.locked_by.clone()).collect::<Vec<_>>())
        .bind(set.iter().map(|r| r.locked_until).collect::<Vec<_>>())
        .bind(set.iter().map(|r| r.created_at).collect::<Vec<_>>())
        .execute(&mut *conn)
        .await?;
    }
    let leave: Vec<String> = touched
        .iter()
        .filter(|t| t.pool.is_none() && t.pool_loaded && t.stored_version.is_some())
        .map(|t| t.conversation.id.to_string())
        .collect();
    if !leave.is_empty() {
        sqlx::query("DELETE FROM routing_pool WHERE conversation_id = ANY($1)")
            .bind(&leave)
            .execute(&mut *conn)
            .await?;
    }
    let enter: Vec<(String, &PoolRow)> = touched
        .iter()
        .filter_map(|t| {
            t.pool
                .as_ref()
                .filter(|p| p.changed)
                .map(|p| (t.conversation.id.to_string(), p))
        })
        .collect();
    if !enter.is_empty() {
        sqlx::query(
            "INSERT INTO routing_pool (conversation_id, inbox_id, waiting_since, excluded_agent_id) \
             SELECT * FROM unnest($1::text[], $2::text[], $3::bigint[], $4::text[]) \
             ON CONFLICT (conversation_id) DO UPDATE SET waiting_since = excluded.waiting_since, \
             excluded_agent_id = excluded.excluded_agent_id",
        )
        .bind(enter.iter().map(|(id, _)| id.clone()).collect::<Vec<_>>())
        .bind(enter.iter().map(|(_, p)| p.inbox_id.clone()).collect::<Vec<_>>())
        .bind(enter.iter().map(|(_, p)| p.waiting_since).collect::<Vec<_>>())
        .bind(
            enter
                .iter()
                .map(|(_, p)| p.excluded_agent_id.clone())
                .collect::<Vec<_>>(),
        )
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}
