//! The group-commit ingest of customer messages, with a fixed number of statements per batch
//! whatever its size: every read is one query over the whole batch (a list parameter, or
//! [`Conn::by_keys`] for composite keys), the decisions are made in memory by
//! `core::ingest::batch`, and
//! every write is one multi-row statement per table ([`Conn::insert_rows`]).
//!
//! Why: a statement per row is a round trip each (sqlx's SQLite worker thread, PostgreSQL's
//! network); at ~20 statements per message the writer spent its time switching threads, not
//! writing (`BENCHMARKS.md`, `shared/perf-limits.md`).
//!
//! On SQLite the single writer connection makes the reads and the writes one serial transaction;
//! on PostgreSQL the senders are locked first (advisory locks: a customer's first messages arriving
//! on two nodes at once create one contact and one conversation) and the conversations read are
//! locked. The compare-and-set on conversation versions is checked either way.

use crate::rows::*;
use crate::sql::{Arg, Conn, Keys, RowRead, id_strings, json_text, q};
use crate::writes::{
    CONVERSATION_ROW, conversation_args, identity_key, sender_key, write_actions, write_contacts,
    write_identities, write_messages,
};
use crate::*;
use serde_json::Value;
use std::collections::HashMap;
use switchboard_core::event::Event;
use switchboard_core::ingest::batch::{self, Facts, Known, Touched};
use switchboard_core::routing::RoutingRules;
use switchboard_core::timers::TimerKind;
use uuid::Uuid;

/// `(inbox, text)` keys as rows of values.
fn pairs(keys: &[(InboxId, String)]) -> Vec<Vec<Arg>> {
    keys.iter()
        .map(|(i, s)| vec![i.to_string().into(), s.as_str().into()])
        .collect()
}

/// Ingests one batch inside `conn`'s transaction (the caller numbers the events and commits);
/// `metas`: the provider extras per item (see [`batch::decide`]); `aliases`: another id of each
/// item's sender, to link (see [`batch::senders`]). Both may be shorter than the batch.
pub(crate) async fn ingest_batch<C: Conn>(
    conn: &mut C,
    batch: &[&Inbound],
    metas: &[&Value],
    aliases: &[Option<&str>],
    now: Timestamp,
    events: &mut Vec<Event>,
) -> Result<Vec<Result<Ingested, IngestError>>> {
    if batch.is_empty() {
        return Ok(Vec::new());
    }
    // The senders, and the aliases the batch may link (another node may be creating them).
    let alias_keys = batch
        .iter()
        .zip(aliases)
        .filter_map(|(i, a)| a.map(|a| identity_key(i.inbox_id, a)));
    conn.lock_keys(
        batch
            .iter()
            .map(|i| sender_key(i.inbox_id, &i.sender))
            .chain(alias_keys)
            .collect(),
    )
    .await?;

    // ---- reads, one statement each for the whole batch
    let look = batch::lookups(batch, aliases);
    let mut known = Known::default();
    for r in q("SELECT id FROM inboxes WHERE id = ANY($1)")
        .bind(id_strings(&look.inboxes))
        .fetch_all(&mut *conn)
        .await?
    {
        known.inboxes.insert(InboxId(uuid_of(&r, "id")?));
    }
    if !look.contacts.is_empty() {
        for r in q("SELECT id FROM contacts WHERE id = ANY($1)")
            .bind(id_strings(&look.contacts))
            .fetch_all(&mut *conn)
            .await?
        {
            known.contacts.insert(ContactId(uuid_of(&r, "id")?));
        }
    }
    if !look.identities.is_empty() {
        for r in conn
            .by_keys(Keys {
                table: "contact_identities",
                on: &[("inbox_id", "="), ("external_id", "=")],
                keys: pairs(&look.identities),
                lock: false,
            })
            .await?
        {
            known.identities.insert(
                (InboxId(uuid_of(&r, "inbox_id")?), r.try_get("external_id")?),
                ContactId(uuid_of(&r, "contact_id")?),
            );
        }
    }
    for r in conn
        .by_keys(Keys {
            table: "messages",
            on: &[("inbox_id", "="), ("provider_message_id", "=")],
            keys: pairs(&look.provider_ids),
            lock: false,
        })
        .await?
    {
        known.stored.insert(
            (
                InboxId(uuid_of(&r, "inbox_id")?),
                r.try_get("provider_message_id")?,
            ),
            (
                MessageId(uuid_of(&r, "id")?),
                ConversationId(uuid_of(&r, "conversation_id")?),
            ),
        );
    }
    let senders = batch::senders(batch, aliases, &mut known, now);

    // ---- the conversations the batch touches, locked, with their timers and pool rows
    let keys = senders.conversation_keys(batch);
    let mut convs: Vec<Touched> = Vec::new();
    if !keys.is_empty() {
        for r in conn
            .by_keys(Keys {
                table: "conversations",
                on: &[("contact_id", "="), ("inbox_id", "=")],
                keys: keys
                    .iter()
                    .map(|(c, i)| vec![c.to_string().into(), i.to_string().into()])
                    .collect(),
                lock: true,
            })
            .await?
        {
            convs.push(Touched::stored(conversation_row(&r)?));
        }
    }
    let mut rules: HashMap<InboxId, RoutingRules> = HashMap::new();
    for r in
        q("SELECT inbox_id, rules, reply_sla_since FROM routing_rules WHERE inbox_id = ANY($1)")
            .bind(id_strings(&look.inboxes))
            .fetch_all(&mut *conn)
            .await?
    {
        rules.insert(
            InboxId(uuid_of(&r, "inbox_id")?),
            crate::pool::rules_row(&r)?,
        );
    }
    if !convs.is_empty() {
        read_timers_and_pool(conn, &mut convs, &rules).await?;
    }

    // ---- decide in memory, then write, one statement per table
    let facts = Facts {
        senders: senders.senders,
        known: &known,
        conversations: convs,
        rules: &rules,
    };
    let mut plan = batch::decide(batch, metas, facts, now, &mut Uuid::now_v7);
    write_contacts(conn, &senders.new_contacts).await?;
    let identities = senders.new_identities.iter();
    let identities = identities.map(|(i, e, c)| (*i, e.as_str(), *c, now));
    write_identities(conn, identities, "").await?;
    // Aliases of known customers; one linked meanwhile by another node stays as it is.
    let links = senders.links.iter();
    let links = links.map(|(i, e, c)| (*i, e.as_str(), *c, now));
    write_identities(conn, links, "ON CONFLICT DO NOTHING").await?;
    let touched: Vec<&Touched> = plan.conversations.iter().filter(|t| t.written()).collect();
    write_conversations(conn, &touched).await?;
    write_timers_and_pool(conn, &touched).await?;
    write_messages(conn, &plan.messages).await?;
    write_actions(conn, &plan.actions).await?;
    conn.insert_rows(
        "INSERT INTO message_meta (message_id, meta, messaging_type, tag, updated_at)",
        "",
        plan.metas
            .iter()
            .map(|(id, m)| {
                vec![
                    id.to_string().into(),
                    json_text(&m.meta).into(),
                    m.messaging_type.clone().into(),
                    m.tag.clone().into(),
                    now.millis().into(),
                ]
            })
            .collect(),
    )
    .await?;
    // The files of new customer messages, to download (one statement, only when there are any).
    crate::inbound_media::write_inbound_files(conn, &plan.messages, &plan.metas, now).await?;
    events.append(&mut plan.events);
    Ok(plan.out)
}

/// The stored conversations' pool rows, and their timers where the inbox has saved rules.
async fn read_timers_and_pool<C: Conn>(
    conn: &mut C,
    convs: &mut [Touched],
    rules: &HashMap<InboxId, RoutingRules>,
) -> Result<()> {
    let by_id: HashMap<String, usize> = convs
        .iter()
        .enumerate()
        .map(|(i, t)| (t.conversation.id.to_string(), i))
        .collect();
    let ids: Vec<String> = by_id.keys().cloned().collect();
    for r in q("SELECT * FROM routing_pool WHERE conversation_id = ANY($1)")
        .bind(ids)
        .fetch_all(&mut *conn)
        .await?
    {
        let id: String = r.try_get("conversation_id")?;
        if let Some(&i) = by_id.get(&id) {
            convs[i].set_pool(
                r.try_get("inbox_id")?,
                r.try_get("waiting_since")?,
                r.try_get("excluded_agent_id")?,
            );
        }
    }
    let with_rules: Vec<String> = convs
        .iter()
        .filter(|t| rules.contains_key(&t.conversation.inbox_id))
        .map(|t| t.conversation.id.to_string())
        .collect();
    if with_rules.is_empty() {
        return Ok(());
    }
    for r in q("SELECT * FROM timers WHERE conversation_id = ANY($1)")
        .bind(with_rules)
        .fetch_all(&mut *conn)
        .await?
    {
        let id: String = r.try_get("conversation_id")?;
        let kind = enum_of(&r, "kind", TimerKind::parse)?;
        if let Some(&i) = by_id.get(&id) {
            convs[i].add_timer(
                kind,
                batch::TimerRow {
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
    Ok(())
}

async fn write_conversations<C: Conn>(conn: &mut C, touched: &[&Touched]) -> Result<()> {
    let args = |t: &Touched| conversation_args(&t.conversation, t.preview.clone(), t.unread);
    let (new, old): (Vec<&Touched>, Vec<&Touched>) =
        touched.iter().partition(|t| t.stored_version.is_none());
    conn.insert_rows(
        &format!("INSERT INTO conversations ({CONVERSATION_ROW})"),
        "",
        new.iter().map(|t| args(t)).collect(),
    )
    .await?;
    // Compare-and-set on the stored version (on PostgreSQL the rows are locked, so it holds).
    let updated = conn
        .with_rows(
            &format!("{CONVERSATION_ROW}, expected"),
            "UPDATE conversations SET status = u.status, assignee_id = u.assignee_id, \
             last_assignee_id = u.last_assignee_id, handed_over_by = u.handed_over_by, \
             participants = u.participants, tags = u.tags, \
             last_customer_message_at = u.last_customer_message_at, \
             last_agent_reply_at = u.last_agent_reply_at, last_activity_at = u.last_activity_at, \
             version = u.version, last_message_preview = u.last_message_preview, \
             unread_count = conversations.unread_count + u.unread_count \
             FROM u WHERE conversations.id = u.id AND conversations.version = u.expected",
            old.iter()
                .map(|t| {
                    let mut row = args(t);
                    row.push(t.stored_version.unwrap_or(0).into());
                    row
                })
                .collect(),
        )
        .await?;
    if updated != old.len() as u64 {
        return Err(StoreError::VersionConflict);
    }
    Ok(())
}

async fn write_timers_and_pool<C: Conn>(conn: &mut C, touched: &[&Touched]) -> Result<()> {
    let gone: Vec<String> = touched
        .iter()
        .flat_map(|t| t.timers_gone.iter().cloned())
        .collect();
    if !gone.is_empty() {
        q("DELETE FROM timers WHERE id = ANY($1)")
            .bind(gone)
            .execute(&mut *conn)
            .await?;
    }
    conn.insert_rows(
        "INSERT INTO timers (id, kind, conversation_id, agent_id, due_at, generation, locked_by, locked_until, created_at)",
        "ON CONFLICT (id) DO UPDATE SET due_at = excluded.due_at, agent_id = excluded.agent_id, \
         generation = excluded.generation, locked_by = excluded.locked_by, locked_until = excluded.locked_until",
        touched
            .iter()
            .flat_map(|t| t.timers.values())
            .filter(|r| r.changed)
            .map(|r| {
                vec![
                    r.id.clone().into(),
                    r.kind.into(),
                    r.conversation_id.clone().into(),
                    r.agent_id.clone().into(),
                    r.due_at.into(),
                    r.generation.into(),
                    r.locked_by.clone().into(),
                    r.locked_until.into(),
                    r.created_at.into(),
                ]
            })
            .collect(),
    )
    .await?;
    let leave: Vec<String> = touched
        .iter()
        .filter(|t| t.leaves_pool())
        .map(|t| t.conversation.id.to_string())
        .collect();
    if !leave.is_empty() {
        q("DELETE FROM routing_pool WHERE conversation_id = ANY($1)")
            .bind(leave)
            .execute(&mut *conn)
            .await?;
    }
    conn.insert_rows(
        "INSERT INTO routing_pool (conversation_id, inbox_id, waiting_since, excluded_agent_id)",
        "ON CONFLICT (conversation_id) DO UPDATE SET waiting_since = excluded.waiting_since, \
         excluded_agent_id = excluded.excluded_agent_id",
        touched
            .iter()
            .filter_map(|t| {
                t.pool.as_ref().filter(|p| p.changed).map(|p| {
                    vec![
                        t.conversation.id.to_string().into(),
                        p.inbox_id.clone().into(),
                        p.waiting_since.into(),
                        p.excluded_agent_id.clone().into(),
                    ]
                })
            })
            .collect(),
    )
    .await?;
    Ok(())
}
