//! The group-commit ingest of customer messages on PostgreSQL, with a fixed number of statements
//! per batch whatever its size: every read is one query over the whole batch (`unnest()` arrays or
//! `= ANY`), the decisions are made in memory by [`crate::batch`] (shared with SQLite), and every
//! write is one multi-row statement. Per-row statements cost a round trip each and stall at ~10k
//! rows/s (`shared/perf-limits.md`).

use super::*;
use crate::batch::{self, Known, Touched};
use std::collections::HashMap;
use switchboard_core::routing::RoutingRules;

/// Ingests one batch inside `conn`'s transaction (the caller numbers the events and commits);
/// `metas`: the provider extras per item (see [`batch::decide`]); `aliases`: another id of each
/// item's sender, to link (see [`batch::senders`]). Both may be shorter than the batch.
pub(super) async fn ingest_batch(
    conn: &mut PgConnection,
    batch: &[&Inbound],
    metas: &[&serde_json::Value],
    aliases: &[Option<&str>],
    now: Timestamp,
    events: &mut Vec<Event>,
) -> Result<Vec<Result<Ingested, IngestError>>> {
    // The senders, and the aliases the batch may link (another node may be creating them).
    let alias_keys = batch.iter().zip(aliases).filter_map(|(i, a)| {
        a.map(|a| {
            sender_key(
                i.inbox_id,
                &InboundSender::Identity {
                    external_id: a.to_owned(),
                    name: None,
                },
            )
        })
    });
    lock_keys(
        conn,
        batch
            .iter()
            .map(|i| sender_key(i.inbox_id, &i.sender))
            .chain(alias_keys)
            .collect(),
    )
    .await?;

    // ---- reads, one statement each for the whole batch; composite keys are looked up one by one
    // (`LATERAL`): joined as sets, PostgreSQL hashed whole tables while they were young and kept
    // that plan as they grew.
    let look = batch::lookups(batch, aliases);
    let mut known = Known::default();
    for r in sqlx::query("SELECT id FROM inboxes WHERE id = ANY($1)")
        .bind(id_strings(&look.inboxes))
        .fetch_all(&mut *conn)
        .await?
    {
        known.inboxes.insert(InboxId(uuid_of(&r, "id")?));
    }
    if !look.contacts.is_empty() {
        for r in sqlx::query("SELECT id FROM contacts WHERE id = ANY($1)")
            .bind(id_strings(&look.contacts))
            .fetch_all(&mut *conn)
            .await?
        {
            known.contacts.insert(ContactId(uuid_of(&r, "id")?));
        }
    }
    if !look.identities.is_empty() {
        let (inboxes, externals) = pairs(&look.identities);
        for r in sqlx::query(
            "SELECT i.inbox_id, i.external_id, i.contact_id \
             FROM unnest($1::text[], $2::text[]) AS k(inbox_id, external_id) CROSS JOIN LATERAL \
             (SELECT * FROM contact_identities i \
              WHERE i.inbox_id = k.inbox_id AND i.external_id = k.external_id) i",
        )
        .bind(inboxes)
        .bind(externals)
        .fetch_all(&mut *conn)
        .await?
        {
            known.identities.insert(
                (InboxId(uuid_of(&r, "inbox_id")?), r.try_get("external_id")?),
                ContactId(uuid_of(&r, "contact_id")?),
            );
        }
    }
    let (inboxes, pids) = pairs(&look.provider_ids);
    for r in sqlx::query(
        "SELECT m.inbox_id, m.provider_message_id, m.id, m.conversation_id \
         FROM unnest($1::text[], $2::text[]) AS k(inbox_id, pid) CROSS JOIN LATERAL \
         (SELECT * FROM messages m WHERE m.inbox_id = k.inbox_id AND m.provider_message_id = k.pid) m",
    )
    .bind(inboxes)
    .bind(pids)
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

    // ---- the conversations the batch touches, locked, with their timers and pool rows
    let keys = senders.conversation_keys(batch);
    let mut convs: Vec<Touched> = Vec::new();
    if !keys.is_empty() {
        let contacts: Vec<String> = keys.iter().map(|k| k.0.to_string()).collect();
        let inboxes: Vec<String> = keys.iter().map(|k| k.1.to_string()).collect();
        for r in sqlx::query(
            "SELECT c.* FROM conversations c WHERE c.id IN (SELECT x.id \
             FROM unnest($1::text[], $2::text[]) AS k(contact_id, inbox_id) CROSS JOIN LATERAL \
             (SELECT id FROM conversations x WHERE x.contact_id = k.contact_id AND x.inbox_id = k.inbox_id) x) \
             ORDER BY c.id FOR UPDATE",
        )
        .bind(&contacts)
        .bind(&inboxes)
        .fetch_all(&mut *conn)
        .await?
        {
            convs.push(Touched::stored(conversation_row(&r)?));
        }
    }
    let mut rules: HashMap<InboxId, RoutingRules> = HashMap::new();
    for r in sqlx::query("SELECT inbox_id, rules FROM routing_rules WHERE inbox_id = ANY($1)")
        .bind(id_strings(&look.inboxes))
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
        let ids: Vec<String> = by_id.keys().cloned().collect();
        for r in sqlx::query("SELECT * FROM routing_pool WHERE conversation_id = ANY($1)")
            .bind(&ids)
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
            for r in sqlx::query("SELECT * FROM timers WHERE conversation_id = ANY($1)")
                .bind(&with_rules)
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
    let plan = batch::decide(batch, metas, senders.senders, &known, convs, &rules, now);
    write_contacts(conn, &senders.new_contacts, &senders.new_identities).await?;
    write_links(conn, &senders.links, now).await?;
    let touched: Vec<&Touched> = plan.conversations.iter().filter(|t| t.written()).collect();
    write_conversations(conn, &touched).await?;
    write_timers_and_pool(conn, &touched).await?;
    let mut pending = PendingRows {
        messages: plan.messages,
        actions: plan
            .actions
            .into_iter()
            .map(|a| (a.id, a.conversation_id, a.kind, a.actor, a.detail, a.at))
            .collect(),
    };
    pending.write(conn).await?;
    write_metas(conn, &plan.metas, now).await?;
    events.extend(plan.events);
    Ok(plan.out)
}

async fn write_metas(
    conn: &mut PgConnection,
    metas: &[(MessageId, MessageMeta)],
    now: Timestamp,
) -> Result<()> {
    if metas.is_empty() {
        return Ok(());
    }
    sqlx::query(
        "INSERT INTO message_meta (message_id, meta, messaging_type, tag, updated_at) \
         SELECT u.id, u.meta, u.mt, u.tag, $5 FROM unnest($1::text[], $2::text[], $3::text[], $4::text[]) \
         AS u(id, meta, mt, tag)",
    )
    .bind(metas.iter().map(|(id, _)| id.to_string()).collect::<Vec<_>>())
    .bind(metas.iter().map(|(_, m)| json_text(&m.meta)).collect::<Vec<_>>())
    .bind(
        metas
            .iter()
            .map(|(_, m)| m.messaging_type.clone())
            .collect::<Vec<_>>(),
    )
    .bind(metas.iter().map(|(_, m)| m.tag.clone()).collect::<Vec<_>>())
    .bind(now.millis())
    .execute(&mut *conn)
    .await?;
    Ok(())
}

fn pairs(keys: &[(InboxId, String)]) -> (Vec<String>, Vec<String>) {
    keys.iter().map(|(i, s)| (i.to_string(), s.clone())).unzip()
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

/// Aliases of known customers; one linked meanwhile by another node stays as it is.
async fn write_links(
    conn: &mut PgConnection,
    links: &[(InboxId, String, ContactId)],
    now: Timestamp,
) -> Result<()> {
    if links.is_empty() {
        return Ok(());
    }
    sqlx::query(
        "INSERT INTO contact_identities (inbox_id, external_id, contact_id, created_at) \
         SELECT i, e, c, $4 FROM unnest($1::text[], $2::text[], $3::text[]) AS t(i, e, c) \
         ON CONFLICT DO NOTHING",
    )
    .bind(links.iter().map(|l| l.0.to_string()).collect::<Vec<_>>())
    .bind(links.iter().map(|l| l.1.clone()).collect::<Vec<_>>())
    .bind(links.iter().map(|l| l.2.to_string()).collect::<Vec<_>>())
    .bind(now.millis())
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
    let set: Vec<&batch::TimerRow> = touched
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
        .filter(|t| t.leaves_pool())
        .map(|t| t.conversation.id.to_string())
        .collect();
    if !leave.is_empty() {
        sqlx::query("DELETE FROM routing_pool WHERE conversation_id = ANY($1)")
            .bind(&leave)
            .execute(&mut *conn)
            .await?;
    }
    let enter: Vec<(String, &batch::PoolRow)> = touched
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
