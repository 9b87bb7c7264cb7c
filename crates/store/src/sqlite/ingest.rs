//! The group-commit ingest of customer messages on SQLite, with a fixed number of statements per
//! batch whatever its size: every read is one query over the whole batch (keys passed as one JSON
//! array, joined through `json_each`), the decisions are made in memory by [`crate::batch`]
//! (shared with PostgreSQL), and every write is one multi-row `INSERT … SELECT FROM json_each(?)`.
//!
//! Why: sqlx runs SQLite on a worker thread and every statement is a round trip to it. At ~20
//! statements per message the writer spent its time switching threads, not writing (a `perf`
//! profile showed ~60 % of the server's time in the scheduler); see `BENCHMARKS.md`.
//!
//! The single writer connection makes the reads and the writes one serial transaction, so the
//! compare-and-set on conversation versions cannot fail here; it is still checked.

use super::*;
use crate::batch::{self, Known, Touched};
use serde_json::Value;
use std::collections::HashMap;
use switchboard_core::routing::RoutingRules;

/// Ingests one batch inside `conn`'s transaction and numbers its events; `metas`: the provider
/// extras per item (see [`batch::decide`]); `aliases`: another id of each item's sender, to link
/// (see [`batch::senders`]). Both may be shorter than the batch.
pub(super) async fn ingest_batch(
    conn: &mut SqliteConnection,
    batch: &[&Inbound],
    metas: &[&Value],
    aliases: &[Option<&str>],
    now: Timestamp,
    events: &mut Vec<Event>,
) -> Result<Vec<Result<Ingested, IngestError>>> {
    if batch.is_empty() {
        return Ok(Vec::new());
    }
    // ---- reads, one statement each for the whole batch
    let look = batch::lookups(batch, aliases);
    let mut known = Known::default();
    for r in sqlx::query("SELECT id FROM inboxes WHERE id IN (SELECT value FROM json_each(?))")
        .bind(ids_json(&look.inboxes))
        .fetch_all(&mut *conn)
        .await?
    {
        known.inboxes.insert(InboxId(uuid_of(&r, "id")?));
    }
    if !look.contacts.is_empty() {
        for r in sqlx::query("SELECT id FROM contacts WHERE id IN (SELECT value FROM json_each(?))")
            .bind(ids_json(&look.contacts))
            .fetch_all(&mut *conn)
            .await?
        {
            known.contacts.insert(ContactId(uuid_of(&r, "id")?));
        }
    }
    if !look.identities.is_empty() {
        for r in sqlx::query(
            "SELECT i.inbox_id, i.external_id, i.contact_id FROM json_each(?) AS k \
             JOIN contact_identities i ON i.inbox_id = k.value ->> 0 AND i.external_id = k.value ->> 1",
        )
        .bind(pairs(&look.identities))
        .fetch_all(&mut *conn)
        .await?
        {
            known.identities.insert(
                (InboxId(uuid_of(&r, "inbox_id")?), r.try_get("external_id")?),
                ContactId(uuid_of(&r, "contact_id")?),
            );
        }
    }
    for r in sqlx::query(
        "SELECT m.inbox_id, m.provider_message_id, m.id, m.conversation_id FROM json_each(?) AS k \
         JOIN messages m ON m.inbox_id = k.value ->> 0 AND m.provider_message_id = k.value ->> 1",
    )
    .bind(pairs(&look.provider_ids))
    .fetch_all(&mut *conn)
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

    // ---- the conversations the batch touches, with their timers and pool rows
    let keys = senders.conversation_keys(batch);
    let mut convs: Vec<Touched> = Vec::new();
    if !keys.is_empty() {
        let keys = json_text(
            &keys
                .iter()
                .map(|(c, i)| [c.to_string(), i.to_string()])
                .collect::<Vec<_>>(),
        );
        for r in sqlx::query(
            "SELECT c.* FROM json_each(?) AS k \
             JOIN conversations c ON c.contact_id = k.value ->> 0 AND c.inbox_id = k.value ->> 1",
        )
        .bind(keys)
        .fetch_all(&mut *conn)
        .await?
        {
            convs.push(Touched::stored(conversation_row(&r)?));
        }
    }
    let mut rules: HashMap<InboxId, RoutingRules> = HashMap::new();
    for r in sqlx::query(
        "SELECT inbox_id, rules FROM routing_rules WHERE inbox_id IN (SELECT value FROM json_each(?))",
    )
    .bind(ids_json(&look.inboxes))
    .fetch_all(&mut *conn)
    .await?
    {
        rules.insert(
            InboxId(uuid_of(&r, "inbox_id")?),
            routing::rules_of(&r.try_get::<String, _>("rules")?)?,
        );
    }
    if !convs.is_empty() {
        let by_id: HashMap<String, usize> = convs
            .iter()
            .enumerate()
            .map(|(i, t)| (t.conversation.id.to_string(), i))
            .collect();
        let ids: Vec<&String> = by_id.keys().collect();
        for r in sqlx::query(
            "SELECT * FROM routing_pool WHERE conversation_id IN (SELECT value FROM json_each(?))",
        )
        .bind(json_text(&ids))
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
        if !with_rules.is_empty() {
            for r in sqlx::query(
                "SELECT * FROM timers WHERE conversation_id IN (SELECT value FROM json_each(?))",
            )
            .bind(json_text(&with_rules))
            .fetch_all(&mut *conn)
            .await?
            {
                let id: String = r.try_get("conversation_id")?;
                let kind = enum_of(&r, "kind", switchboard_core::timers::TimerKind::parse)?;
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
        }
    }

    // ---- decide in memory, then write, one statement per table
    let mut plan = batch::decide(batch, metas, senders.senders, &known, convs, &rules, now);
    write_contacts(conn, &senders.new_contacts, &senders.new_identities).await?;
    write_values(
        conn,
        "INSERT INTO contact_identities (inbox_id, external_id, contact_id, created_at)",
        "ON CONFLICT DO NOTHING",
        senders
            .links
            .iter()
            .map(|(inbox, alias, contact)| {
                vec![
                    inbox.to_string().into(),
                    alias.as_str().into(),
                    contact.to_string().into(),
                    now.millis().into(),
                ]
            })
            .collect(),
    )
    .await?;
    let touched: Vec<&Touched> = plan.conversations.iter().filter(|t| t.written()).collect();
    write_conversations(conn, &touched).await?;
    write_timers_and_pool(conn, &touched).await?;
    write_messages(conn, &plan.messages).await?;
    write_actions(conn, &plan.actions).await?;
    write_metas(conn, &plan.metas, now).await?;
    number_events(conn, &mut plan.events).await?;
    events.append(&mut plan.events);
    Ok(plan.out)
}

/// `[[inbox, text], …]` as one JSON array.
fn pairs(keys: &[(InboxId, String)]) -> String {
    json_text(
        &keys
            .iter()
            .map(|(i, s)| (i.to_string(), s.as_str()))
            .collect::<Vec<_>>(),
    )
}

async fn write_contacts(
    conn: &mut SqliteConnection,
    contacts: &[Contact],
    identities: &[(InboxId, String, ContactId)],
) -> Result<()> {
    write_values(
        conn,
        "INSERT INTO contacts (id, workspace_id, name, created_at, updated_at)",
        "",
        contacts
            .iter()
            .map(|c| {
                vec![
                    c.id.to_string().into(),
                    c.workspace_id.to_string().into(),
                    c.name.clone().into(),
                    c.created_at.millis().into(),
                    c.updated_at.millis().into(),
                ]
            })
            .collect(),
    )
    .await?;
    write_values(
        conn,
        "INSERT INTO contact_identities (inbox_id, external_id, contact_id, created_at)",
        "",
        identities
            .iter()
            .zip(contacts)
            .map(|((inbox, external, contact), c)| {
                vec![
                    inbox.to_string().into(),
                    external.as_str().into(),
                    contact.to_string().into(),
                    c.created_at.millis().into(),
                ]
            })
            .collect(),
    )
    .await?;
    Ok(())
}

/// A conversation's columns in the order of the INSERT below (the UPDATE reads them by position).
fn conversation_args(t: &Touched) -> Vec<Arg> {
    let c = &t.conversation;
    vec![
        c.id.to_string().into(),
        c.workspace_id.to_string().into(),
        c.inbox_id.to_string().into(),
        c.contact_id.to_string().into(),
        c.status.as_str().into(),
        c.assignee_id.map(|a| a.to_string()).into(),
        c.last_assignee_id.map(|a| a.to_string()).into(),
        ids_json(&c.participants).into(),
        json_text(&c.tags).into(),
        c.last_customer_message_at.map(Timestamp::millis).into(),
        c.last_agent_reply_at.map(Timestamp::millis).into(),
        c.last_activity_at.millis().into(),
        c.created_at.millis().into(),
        c.version.into(),
        t.preview.clone().into(),
        t.unread.into(),
    ]
}

async fn write_conversations(conn: &mut SqliteConnection, touched: &[&Touched]) -> Result<()> {
    let (new, old): (Vec<&Touched>, Vec<&Touched>) =
        touched.iter().partition(|t| t.stored_version.is_none());
    write_values(
        conn,
        "INSERT INTO conversations (id, workspace_id, inbox_id, contact_id, status, assignee_id, last_assignee_id, \
         participants, tags, last_customer_message_at, last_agent_reply_at, last_activity_at, created_at, version, \
         last_message_preview, unread_count)",
        "",
        new.iter().map(|t| conversation_args(t)).collect(),
    )
    .await?;
    // Compare-and-set on the stored version (the 17th column).
    let updated = write_values(
        conn,
        "UPDATE conversations SET status = u.column5, assignee_id = u.column6, \
         last_assignee_id = u.column7, participants = u.column8, tags = u.column9, \
         last_customer_message_at = u.column10, last_agent_reply_at = u.column11, \
         last_activity_at = u.column12, version = u.column14, last_message_preview = u.column15, \
         unread_count = unread_count + u.column16 FROM (",
        ") AS u WHERE conversations.id = u.column1 AND conversations.version = u.column17",
        old.iter()
            .map(|t| {
                let mut args = conversation_args(t);
                args.push(t.stored_version.unwrap_or(0).into());
                args
            })
            .collect(),
    )
    .await?;
    if updated != old.len() as u64 {
        return Err(StoreError::VersionConflict);
    }
    Ok(())
}

async fn write_timers_and_pool(conn: &mut SqliteConnection, touched: &[&Touched]) -> Result<()> {
    let gone: Vec<&String> = touched.iter().flat_map(|t| &t.timers_gone).collect();
    if !gone.is_empty() {
        sqlx::query("DELETE FROM timers WHERE id IN (SELECT value FROM json_each(?))")
            .bind(json_text(&gone))
            .execute(&mut *conn)
            .await?;
    }
    write_values(
        conn,
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
        sqlx::query(
            "DELETE FROM routing_pool WHERE conversation_id IN (SELECT value FROM json_each(?))",
        )
        .bind(json_text(&leave))
        .execute(&mut *conn)
        .await?;
    }
    write_values(
        conn,
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

async fn write_messages(conn: &mut SqliteConnection, messages: &[Message]) -> Result<()> {
    write_values(
        conn,
        "INSERT INTO messages (id, conversation_id, inbox_id, direction, sender_kind, sender_agent_id, kind, body, \
         provider_message_id, delivery_status, failure_reason, created_at)",
        "ON CONFLICT (inbox_id, provider_message_id) DO NOTHING",
        messages
            .iter()
            .map(|m| {
                vec![
                    m.id.to_string().into(),
                    m.conversation_id.to_string().into(),
                    m.inbox_id.to_string().into(),
                    m.direction.as_str().into(),
                    m.sender_kind.as_str().into(),
                    m.sender_agent_id.map(|a| a.to_string()).into(),
                    m.kind.as_str().into(),
                    m.text.clone().into(),
                    m.provider_message_id.clone().into(),
                    m.delivery_status.as_str().into(),
                    m.failure_reason.clone().into(),
                    m.created_at.millis().into(),
                ]
            })
            .collect(),
    )
    .await?;
    Ok(())
}

async fn write_actions(conn: &mut SqliteConnection, actions: &[batch::ActionRow]) -> Result<()> {
    write_values(
        conn,
        "INSERT INTO action_log (id, conversation_id, kind, actor_id, detail, created_at)",
        "",
        actions
            .iter()
            .map(|a| {
                vec![
                    a.id.to_string().into(),
                    a.conversation_id.to_string().into(),
                    a.kind.into(),
                    a.actor.map(|x| x.to_string()).into(),
                    a.detail.clone().into(),
                    a.at.millis().into(),
                ]
            })
            .collect(),
    )
    .await?;
    Ok(())
}

async fn write_metas(
    conn: &mut SqliteConnection,
    metas: &[(MessageId, MessageMeta)],
    now: Timestamp,
) -> Result<()> {
    write_values(
        conn,
        "INSERT INTO message_meta (message_id, meta, messaging_type, tag, updated_at)",
        "",
        metas
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
    Ok(())
}

/// Numbers and writes the batch's events with one statement: the writer connection is the only
/// one, so the next numbers are known (`AUTOINCREMENT`'s high-water mark, which never goes back).
async fn number_events(conn: &mut SqliteConnection, events: &mut [Event]) -> Result<()> {
    if events.is_empty() {
        return Ok(());
    }
    let last: i64 = sqlx::query(
        "SELECT MAX(COALESCE((SELECT seq FROM sqlite_sequence WHERE name = 'events'), 0), \
         COALESCE((SELECT MAX(seq) FROM events), 0))",
    )
    .fetch_one(&mut *conn)
    .await?
    .try_get(0)?;
    let mut rows = Vec::with_capacity(events.len());
    let mut seq = last;
    for e in events.iter_mut() {
        seq += 1;
        e.seq = seq;
        rows.push(vec![
            e.seq.into(),
            e.workspace_id.to_string().into(),
            e.inbox_id.map(|i| i.to_string()).into(),
            e.conversation_id.map(|c| c.to_string()).into(),
            e.kind.as_str().into(),
            json_text(&e.payload).into(),
            e.created_at.millis().into(),
        ]);
    }
    write_values(
        conn,
        "INSERT INTO events (seq, workspace_id, inbox_id, conversation_id, kind, payload, created_at)",
        "",
        rows,
    )
    .await?;
    Ok(())
}
