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
use serde_json::{Value, json};
use std::collections::HashMap;
use switchboard_core::routing::RoutingRules;

/// Ingests one batch inside `conn`'s transaction and numbers its events; `metas`: the provider
/// extras per item (see [`batch::decide`]).
pub(super) async fn ingest_batch(
    conn: &mut SqliteConnection,
    batch: &[&Inbound],
    metas: &[&Value],
    now: Timestamp,
    events: &mut Vec<Event>,
) -> Result<Vec<Result<Ingested, IngestError>>> {
    if batch.is_empty() {
        return Ok(Vec::new());
    }
    // ---- reads, one statement each for the whole batch
    let look = batch::lookups(batch);
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
    let senders = batch::senders(batch, &mut known, now);

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

/// Runs `sql` (an `INSERT … SELECT … FROM json_each(?)`) with `rows` as its one JSON argument.
async fn insert_rows(
    conn: &mut SqliteConnection,
    sql: &'static str,
    rows: Vec<Value>,
) -> Result<u64> {
    if rows.is_empty() {
        return Ok(0);
    }
    Ok(sqlx::query(sql)
        .bind(Value::Array(rows).to_string())
        .execute(&mut *conn)
        .await?
        .rows_affected())
}

async fn write_contacts(
    conn: &mut SqliteConnection,
    contacts: &[Contact],
    identities: &[(InboxId, String, ContactId)],
) -> Result<()> {
    insert_rows(
        conn,
        "INSERT INTO contacts (id, workspace_id, name, created_at, updated_at) \
         SELECT value ->> 0, value ->> 1, value ->> 2, value ->> 3, value ->> 4 FROM json_each(?)",
        contacts
            .iter()
            .map(|c| {
                json!([
                    c.id.to_string(),
                    c.workspace_id.to_string(),
                    c.name,
                    c.created_at.millis(),
                    c.updated_at.millis()
                ])
            })
            .collect(),
    )
    .await?;
    insert_rows(
        conn,
        "INSERT INTO contact_identities (inbox_id, external_id, contact_id, created_at) \
         SELECT value ->> 0, value ->> 1, value ->> 2, value ->> 3 FROM json_each(?)",
        identities
            .iter()
            .zip(contacts)
            .map(|((inbox, external, contact), c)| {
                json!([
                    inbox.to_string(),
                    external,
                    contact.to_string(),
                    c.created_at.millis()
                ])
            })
            .collect(),
    )
    .await?;
    Ok(())
}

fn conversation_json(t: &Touched) -> Value {
    let c = &t.conversation;
    json!([
        c.id.to_string(),
        c.workspace_id.to_string(),
        c.inbox_id.to_string(),
        c.contact_id.to_string(),
        c.status.as_str(),
        c.assignee_id.map(|a| a.to_string()),
        c.last_assignee_id.map(|a| a.to_string()),
        ids_json(&c.participants),
        json_text(&c.tags),
        c.last_customer_message_at.map(Timestamp::millis),
        c.last_agent_reply_at.map(Timestamp::millis),
        c.last_activity_at.millis(),
        c.created_at.millis(),
        c.version,
        t.preview,
        t.unread,
        t.stored_version.unwrap_or(0),
    ])
}

async fn write_conversations(conn: &mut SqliteConnection, touched: &[&Touched]) -> Result<()> {
    let (new, old): (Vec<&Touched>, Vec<&Touched>) =
        touched.iter().partition(|t| t.stored_version.is_none());
    insert_rows(
        conn,
        "INSERT INTO conversations (id, workspace_id, inbox_id, contact_id, status, assignee_id, last_assignee_id, \
         participants, tags, last_customer_message_at, last_agent_reply_at, last_activity_at, created_at, version, \
         last_message_preview, unread_count) \
         SELECT value ->> 0, value ->> 1, value ->> 2, value ->> 3, value ->> 4, value ->> 5, value ->> 6, \
         value ->> 7, value ->> 8, value ->> 9, value ->> 10, value ->> 11, value ->> 12, value ->> 13, \
         value ->> 14, value ->> 15 FROM json_each(?)",
        new.iter().map(|t| conversation_json(t)).collect(),
    )
    .await?;
    // Compare-and-set on the stored version.
    let updated = insert_rows(
        conn,
        "UPDATE conversations SET status = u.status, assignee_id = u.assignee_id, \
         last_assignee_id = u.last_assignee_id, participants = u.participants, tags = u.tags, \
         last_customer_message_at = u.lcm, last_agent_reply_at = u.lar, last_activity_at = u.activity, \
         version = u.version, last_message_preview = u.preview, unread_count = unread_count + u.unread \
         FROM (SELECT value ->> 0 AS id, value ->> 4 AS status, value ->> 5 AS assignee_id, \
         value ->> 6 AS last_assignee_id, value ->> 7 AS participants, value ->> 8 AS tags, value ->> 9 AS lcm, \
         value ->> 10 AS lar, value ->> 11 AS activity, value ->> 13 AS version, value ->> 14 AS preview, \
         value ->> 15 AS unread, value ->> 16 AS expected FROM json_each(?)) AS u \
         WHERE conversations.id = u.id AND conversations.version = u.expected",
        old.iter().map(|t| conversation_json(t)).collect(),
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
    insert_rows(
        conn,
        "INSERT INTO timers (id, kind, conversation_id, agent_id, due_at, generation, locked_by, locked_until, created_at) \
         SELECT value ->> 0, value ->> 1, value ->> 2, value ->> 3, value ->> 4, value ->> 5, value ->> 6, \
         value ->> 7, value ->> 8 FROM json_each(?) WHERE true \
         ON CONFLICT (id) DO UPDATE SET due_at = excluded.due_at, agent_id = excluded.agent_id, \
         generation = excluded.generation, locked_by = excluded.locked_by, locked_until = excluded.locked_until",
        touched
            .iter()
            .flat_map(|t| t.timers.values())
            .filter(|r| r.changed)
            .map(|r| {
                json!([
                    r.id,
                    r.kind,
                    r.conversation_id,
                    r.agent_id,
                    r.due_at,
                    r.generation,
                    r.locked_by,
                    r.locked_until,
                    r.created_at
                ])
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
    insert_rows(
        conn,
        "INSERT INTO routing_pool (conversation_id, inbox_id, waiting_since, excluded_agent_id) \
         SELECT value ->> 0, value ->> 1, value ->> 2, value ->> 3 FROM json_each(?) WHERE true \
         ON CONFLICT (conversation_id) DO UPDATE SET waiting_since = excluded.waiting_since, \
         excluded_agent_id = excluded.excluded_agent_id",
        touched
            .iter()
            .filter_map(|t| {
                t.pool.as_ref().filter(|p| p.changed).map(|p| {
                    json!([
                        t.conversation.id.to_string(),
                        p.inbox_id,
                        p.waiting_since,
                        p.excluded_agent_id
                    ])
                })
            })
            .collect(),
    )
    .await?;
    Ok(())
}

async fn write_messages(conn: &mut SqliteConnection, messages: &[Message]) -> Result<()> {
    insert_rows(
        conn,
        "INSERT INTO messages (id, conversation_id, inbox_id, direction, sender_kind, sender_agent_id, kind, body, \
         provider_message_id, delivery_status, failure_reason, created_at) \
         SELECT value ->> 0, value ->> 1, value ->> 2, value ->> 3, value ->> 4, value ->> 5, value ->> 6, \
         value ->> 7, value ->> 8, value ->> 9, value ->> 10, value ->> 11 FROM json_each(?) WHERE true \
         ON CONFLICT (inbox_id, provider_message_id) DO NOTHING",
        messages
            .iter()
            .map(|m| {
                json!([
                    m.id.to_string(),
                    m.conversation_id.to_string(),
                    m.inbox_id.to_string(),
                    m.direction.as_str(),
                    m.sender_kind.as_str(),
                    m.sender_agent_id.map(|a| a.to_string()),
                    m.kind.as_str(),
                    m.text,
                    m.provider_message_id,
                    m.delivery_status.as_str(),
                    m.failure_reason,
                    m.created_at.millis()
                ])
            })
            .collect(),
    )
    .await?;
    Ok(())
}

async fn write_actions(conn: &mut SqliteConnection, actions: &[batch::ActionRow]) -> Result<()> {
    insert_rows(
        conn,
        "INSERT INTO action_log (id, conversation_id, kind, actor_id, detail, created_at) \
         SELECT value ->> 0, value ->> 1, value ->> 2, value ->> 3, value ->> 4, value ->> 5 FROM json_each(?)",
        actions
            .iter()
            .map(|a| {
                json!([
                    a.id.to_string(),
                    a.conversation_id.to_string(),
                    a.kind,
                    a.actor.map(|x| x.to_string()),
                    a.detail,
                    a.at.millis()
                ])
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
    insert_rows(
        conn,
        "INSERT INTO message_meta (message_id, meta, messaging_type, tag, updated_at) \
         SELECT value ->> 0, value ->> 1, value ->> 2, value ->> 3, value ->> 4 FROM json_each(?)",
        metas
            .iter()
            .map(|(id, m)| {
                json!([
                    id.to_string(),
                    json_text(&m.meta),
                    m.messaging_type,
                    m.tag,
                    now.millis()
                ])
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
        rows.push(json!([
            e.seq,
            e.workspace_id.to_string(),
            e.inbox_id.map(|i| i.to_string()),
            e.conversation_id.map(|c| c.to_string()),
            e.kind.as_str(),
            json_text(&e.payload),
            e.created_at.millis()
        ]));
    }
    insert_rows(
        conn,
        "INSERT INTO events (seq, workspace_id, inbox_id, conversation_id, kind, payload, created_at) \
         SELECT value ->> 0, value ->> 1, value ->> 2, value ->> 3, value ->> 4, value ->> 5, value ->> 6 \
         FROM json_each(?)",
        rows,
    )
    .await?;
    Ok(())
}
