//! The SQLite side of provider channels: channel events in the group commit, message extras,
//! the outbox, and contact linking and merging. Every write takes the one writer connection and
//! publishes its events after commit, exactly like `apply`/`ingest`.

use super::*;
use crate::channel::*;
use std::collections::HashMap;
use switchboard_core::activity;
use switchboard_core::conversation::Transition;

pub(super) fn rank(s: DeliveryStatus) -> i32 {
    match s {
        DeliveryStatus::Queued => 0,
        DeliveryStatus::Sent => 1,
        DeliveryStatus::Delivered => 2,
        DeliveryStatus::Read => 3,
        DeliveryStatus::Received | DeliveryStatus::Failed => -1,
    }
}

use crate::batch::is_empty_meta;

fn meta_row(r: &SqliteRow) -> Result<MessageMeta> {
    Ok(MessageMeta {
        meta: json_of(r, "meta")?,
        messaging_type: r.try_get("messaging_type")?,
        tag: r.try_get("tag")?,
    })
}

pub(super) use crate::channel::updated_event;

pub(super) async fn message_by_id(
    conn: &mut SqliteConnection,
    id: MessageId,
) -> Result<Option<Message>> {
    sqlx::query("SELECT * FROM messages WHERE id = ?")
        .bind(id.to_string())
        .fetch_optional(conn)
        .await?
        .map(|r| message_row(&r))
        .transpose()
}

pub(super) async fn message_by_provider(
    conn: &mut SqliteConnection,
    inbox: InboxId,
    provider_id: &str,
) -> Result<Option<Message>> {
    sqlx::query("SELECT * FROM messages WHERE inbox_id = ? AND provider_message_id = ?")
        .bind(inbox.to_string())
        .bind(provider_id)
        .fetch_optional(conn)
        .await?
        .map(|r| message_row(&r))
        .transpose()
}

pub(super) async fn load_meta(
    conn: &mut SqliteConnection,
    id: MessageId,
) -> Result<Option<MessageMeta>> {
    sqlx::query("SELECT * FROM message_meta WHERE message_id = ?")
        .bind(id.to_string())
        .fetch_optional(conn)
        .await?
        .map(|r| meta_row(&r))
        .transpose()
}

pub(super) async fn save_meta(
    conn: &mut SqliteConnection,
    id: MessageId,
    meta: &MessageMeta,
    now: Timestamp,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO message_meta (message_id, meta, messaging_type, tag, updated_at) VALUES (?, ?, ?, ?, ?) \
         ON CONFLICT (message_id) DO UPDATE SET meta = excluded.meta, messaging_type = excluded.messaging_type, \
         tag = excluded.tag, updated_at = excluded.updated_at",
    )
    .bind(id.to_string())
    .bind(json_text(&meta.meta))
    .bind(meta.messaging_type.as_deref())
    .bind(meta.tag.as_deref())
    .bind(now.millis())
    .execute(conn)
    .await?;
    Ok(())
}

/// Changes a message's extras with `edit` and records the `message.updated` event.
pub(super) async fn edit_meta(
    conn: &mut SqliteConnection,
    m: &Message,
    now: Timestamp,
    drafts: &mut Vec<EventDraft>,
    edit: impl FnOnce(&mut serde_json::Map<String, serde_json::Value>),
) -> Result<()> {
    let mut meta = load_meta(conn, m.id).await?.unwrap_or_default();
    if !meta.meta.is_object() {
        meta.meta = serde_json::json!({});
    }
    if let Some(o) = meta.meta.as_object_mut() {
        edit(o);
    }
    save_meta(conn, m.id, &meta, now).await?;
    drafts.push(updated_event(m, Some(&meta)));
    Ok(())
}

pub(super) async fn identity_contact(
    conn: &mut SqliteConnection,
    inbox: InboxId,
    external_id: &str,
) -> Result<Option<ContactId>> {
    sqlx::query("SELECT contact_id FROM contact_identities WHERE inbox_id = ? AND external_id = ?")
        .bind(inbox.to_string())
        .bind(external_id)
        .fetch_optional(conn)
        .await?
        .map(|r| uuid_of(&r, "contact_id").map(ContactId))
        .transpose()
}

pub(super) async fn workspace_of(
    conn: &mut SqliteConnection,
    conv: ConversationId,
) -> Result<WorkspaceId> {
    load_conversation(conn, conv)
        .await?
        .map(|c| c.workspace_id)
        .ok_or(StoreError::NotFound)
}

/// Links `external_id` (a messaging id) of `inbox` to the contact of `conv`: a new identity, or a
/// merge when the id already belongs to someone else (the provider proved it is one person).
async fn link_messaging_id(
    conn: &mut SqliteConnection,
    inbox: InboxId,
    external_id: &str,
    conv: ConversationId,
    now: Timestamp,
    events: &mut Vec<Event>,
) -> Result<()> {
    let Some(c) = load_conversation(conn, conv).await? else {
        return Ok(());
    };
    match identity_contact(conn, inbox, external_id).await? {
        None => insert_identity(conn, inbox, external_id, c.contact_id, now).await,
        Some(other) if other == c.contact_id => Ok(()),
        Some(other) => merge_in(
            conn,
            c.contact_id,
            other,
            "private_reply",
            None,
            now,
            events,
        )
        .await
        .map(|_| ()),
    }
}

pub(super) async fn flush(
    conn: &mut SqliteConnection,
    ws: WorkspaceId,
    drafts: Vec<EventDraft>,
    now: Timestamp,
    events: &mut Vec<Event>,
) -> Result<()> {
    if drafts.is_empty() {
        return Ok(());
    }
    insert_events(conn, ws, drafts, now, events).await
}

async fn inbox_workspace(
    conn: &mut SqliteConnection,
    inbox: InboxId,
) -> Result<Option<WorkspaceId>> {
    sqlx::query("SELECT workspace_id FROM inboxes WHERE id = ?")
        .bind(inbox.to_string())
        .fetch_optional(conn)
        .await?
        .map(|r| uuid_of(&r, "workspace_id").map(WorkspaceId))
        .transpose()
}

async fn ingest_item(
    conn: &mut SqliteConnection,
    item: &ChannelItem,
    now: Timestamp,
    events: &mut Vec<Event>,
) -> Result<Result<ChannelOutcome, IngestError>> {
    let inbox = match item {
        ChannelItem::Customer { inbound, .. } => inbound.inbox_id,
        ChannelItem::Echo { inbox_id, .. }
        | ChannelItem::Receipt { inbox_id, .. }
        | ChannelItem::Reaction { inbox_id, .. }
        | ChannelItem::Edit { inbox_id, .. }
        | ChannelItem::Unsent { inbox_id, .. }
        | ChannelItem::Status { inbox_id, .. }
        | ChannelItem::CommentChange { inbox_id, .. } => *inbox_id,
    };
    let Some(ws) = inbox_workspace(conn, inbox).await? else {
        return Ok(Err(IngestError::UnknownInbox));
    };
    let mut drafts = Vec::new();
    let outcome = match item {
        ChannelItem::Customer {
            inbound,
            meta,
            replying_to,
            alias,
        } => {
            // A DM answering our private reply: its sender is the commenter.
            if let (Some(reply_to), InboundSender::Identity { external_id, .. }) =
                (replying_to, &inbound.sender)
                && identity_contact(conn, inbox, external_id).await?.is_none()
                && let Some(ours) = message_by_provider(conn, inbox, reply_to).await?
                && ours.direction == Direction::Outbound
            {
                link_messaging_id(conn, inbox, external_id, ours.conversation_id, now, events)
                    .await?;
            }
            match super::ingest::ingest_batch(
                conn,
                &[inbound],
                &[meta],
                &[alias.as_deref()],
                now,
                events,
            )
            .await?
            .pop()
            {
                Some(Ok(done)) => ChannelOutcome::Message(done),
                Some(Err(e)) => return Ok(Err(e)),
                None => return Err(StoreError::Corrupt("empty ingest outcome".into())),
            }
        }
        ChannelItem::Echo {
            workspace_id,
            inbox_id,
            customer_external_id,
            provider_message_id,
            ours,
            text,
            meta,
            sent_at,
            message_id,
            new_conversation_id,
            new_contact_id,
        } => {
            let mine = match ours {
                Some(id) => message_by_id(conn, *id)
                    .await?
                    .filter(|m| m.inbox_id == *inbox_id),
                None => None,
            };
            let mine = match mine {
                Some(m) => Some(m),
                None => message_by_provider(conn, *inbox_id, provider_message_id).await?,
            };
            if let Some(m) = mine {
                echo_of_known(
                    conn,
                    &m,
                    customer_external_id,
                    provider_message_id,
                    now,
                    events,
                    &mut drafts,
                )
                .await?;
                ChannelOutcome::Message(crate::Ingested {
                    message_id: m.id,
                    conversation_id: m.conversation_id,
                    contact_id: load_conversation(conn, m.conversation_id)
                        .await?
                        .map(|c| c.contact_id)
                        .unwrap_or(*new_contact_id),
                    duplicate: true,
                    entered_pool: false,
                })
            } else {
                let contact_id =
                    match identity_contact(conn, *inbox_id, customer_external_id).await? {
                        Some(c) => c,
                        None => {
                            let fresh = Contact {
                                id: *new_contact_id,
                                workspace_id: *workspace_id,
                                name: None,
                                phone: None,
                                email: None,
                                notes: None,
                                created_at: now,
                                updated_at: now,
                            };
                            insert_contact(conn, &fresh).await?;
                            insert_identity(conn, *inbox_id, customer_external_id, fresh.id, now)
                                .await?;
                            fresh.id
                        }
                    };
                let existing = sqlx::query(
                    "SELECT * FROM conversations WHERE contact_id = ? AND inbox_id = ?",
                )
                .bind(contact_id.to_string())
                .bind(inbox_id.to_string())
                .fetch_optional(&mut *conn)
                .await?
                .map(|r| conversation_row(&r))
                .transpose()?;
                let at = sent_at.clamp_to(now);
                let conv = match existing {
                    Some(c) => c,
                    None => {
                        // The page wrote first (from Meta's apps): a conversation without a window.
                        let c = Conversation::new_from_customer(
                            *new_conversation_id,
                            *workspace_id,
                            *inbox_id,
                            contact_id,
                            at,
                        );
                        insert_conversation(conn, &c).await?;
                        super::routing::after_write(conn, None, &c, now).await?;
                        let tr = Transition {
                            conversation: c.clone(),
                            actions: Vec::new(),
                            changed: true,
                        };
                        drafts.extend(event::for_transition(None, &tr));
                        c
                    }
                };
                let m = Message {
                    id: *message_id,
                    conversation_id: conv.id,
                    inbox_id: *inbox_id,
                    direction: Direction::Outbound,
                    sender_kind: SenderKind::Agent,
                    sender_agent_id: None,
                    kind: MessageKind::Text,
                    text: text.clone(),
                    provider_message_id: Some(provider_message_id.clone()),
                    delivery_status: DeliveryStatus::Sent,
                    failure_reason: None,
                    created_at: at,
                };
                insert_message(conn, &m).await?;
                sqlx::query("UPDATE conversations SET last_message_preview = ?, last_activity_at = MAX(last_activity_at, ?) WHERE id = ?")
                    .bind(preview(&m.text))
                    .bind(at.millis())
                    .bind(conv.id.to_string())
                    .execute(&mut *conn)
                    .await?;
                let mm = MessageMeta {
                    meta: meta.clone(),
                    ..MessageMeta::default()
                };
                if !is_empty_meta(meta) {
                    save_meta(conn, m.id, &mm, now).await?;
                }
                let mut created = event::message_created(&m);
                created.payload =
                    serde_json::json!({ "message": message_with_meta(&m, Some(&mm)) });
                drafts.push(created);
                ChannelOutcome::Message(crate::Ingested {
                    message_id: m.id,
                    conversation_id: conv.id,
                    contact_id,
                    duplicate: false,
                    // The page wrote first: nothing for routing until the customer answers.
                    entered_pool: false,
                })
            }
        }
        ChannelItem::Receipt {
            inbox_id,
            customer_external_id,
            provider_message_ids,
            watermark,
            status,
        } => {
            let mut targets = Vec::new();
            for mid in provider_message_ids {
                if let Some(m) = message_by_provider(conn, *inbox_id, mid).await? {
                    targets.push(m);
                }
            }
            if let Some(w) = watermark
                && let Some(contact) =
                    identity_contact(conn, *inbox_id, customer_external_id).await?
            {
                let rows = sqlx::query(
                    "SELECT m.* FROM conversations c JOIN messages m ON m.conversation_id = c.id \
                     WHERE c.contact_id = ? AND c.inbox_id = ? AND m.direction = 'outbound' \
                     AND m.created_at <= ? AND m.delivery_status IN ('sent', 'delivered')",
                )
                .bind(contact.to_string())
                .bind(inbox_id.to_string())
                .bind(w.millis())
                .fetch_all(&mut *conn)
                .await?;
                for r in &rows {
                    targets.push(message_row(r)?);
                }
            }
            let mut n = 0;
            let mut seen = std::collections::HashSet::new();
            for mut m in targets {
                if m.direction != Direction::Outbound
                    || !seen.insert(m.id)
                    || rank(m.delivery_status) < 1
                    || rank(m.delivery_status) >= rank(*status)
                {
                    continue;
                }
                sqlx::query("UPDATE messages SET delivery_status = ? WHERE id = ?")
                    .bind(status.as_str())
                    .bind(m.id.to_string())
                    .execute(&mut *conn)
                    .await?;
                m.delivery_status = *status;
                let meta = load_meta(conn, m.id).await?;
                drafts.push(updated_event(&m, meta.as_ref()));
                n += 1;
            }
            if n == 0 {
                ChannelOutcome::Nothing
            } else {
                ChannelOutcome::Updated(n)
            }
        }
        ChannelItem::Reaction {
            inbox_id,
            customer_external_id,
            target_provider_id,
            reaction,
            at,
        } => {
            let Some(m) = message_by_provider(conn, *inbox_id, target_provider_id).await? else {
                return Ok(Ok(ChannelOutcome::Nothing));
            };
            let r = reaction.clone();
            edit_meta(conn, &m, now, &mut drafts, |o| {
                let reactions = o
                    .entry("reactions")
                    .or_insert_with(|| serde_json::json!({}));
                if let Some(map) = reactions.as_object_mut() {
                    match r {
                        Some(v) => map.insert("customer".into(), v),
                        None => map.remove("customer"),
                    };
                }
            })
            .await?;
            // A reaction is a qualifying action (channels.md §1.6): it moves the window.
            if let Some(c) = load_conversation(conn, m.conversation_id).await?
                && identity_contact(conn, *inbox_id, customer_external_id).await?
                    == Some(c.contact_id)
            {
                let tr = activity::customer_action(&c, *at, now);
                if tr.changed {
                    update_conversation(conn, &tr.conversation, c.version).await?;
                    super::routing::after_write(conn, Some(&c), &tr.conversation, now).await?;
                    drafts.extend(event::for_transition(Some(&c), &tr));
                }
            }
            ChannelOutcome::Updated(1)
        }
        ChannelItem::Edit {
            inbox_id,
            provider_message_id,
            text,
            num_edit,
        } => {
            let Some(mut m) = message_by_provider(conn, *inbox_id, provider_message_id).await?
            else {
                return Ok(Ok(ChannelOutcome::Nothing));
            };
            sqlx::query("UPDATE messages SET body = ? WHERE id = ?")
                .bind(text)
                .bind(m.id.to_string())
                .execute(&mut *conn)
                .await?;
            m.text = text.clone();
            let n = *num_edit;
            edit_meta(conn, &m, now, &mut drafts, |o| {
                o.insert("edited".into(), serde_json::json!(n));
            })
            .await?;
            ChannelOutcome::Updated(1)
        }
        ChannelItem::Unsent {
            inbox_id,
            provider_message_id,
        } => {
            let Some(mut m) = message_by_provider(conn, *inbox_id, provider_message_id).await?
            else {
                return Ok(Ok(ChannelOutcome::Nothing));
            };
            sqlx::query("UPDATE messages SET body = '' WHERE id = ?")
                .bind(m.id.to_string())
                .execute(&mut *conn)
                .await?;
            m.text = String::new();
            edit_meta(conn, &m, now, &mut drafts, |o| {
                o.insert("deleted".into(), serde_json::json!(true));
                o.remove("attachments");
            })
            .await?;
            ChannelOutcome::Updated(1)
        }
        ChannelItem::Status {
            inbox_id,
            provider_message_id,
            ours,
            status,
            failure,
        } => {
            super::providers::status(
                conn,
                super::providers::StatusItem {
                    inbox: *inbox_id,
                    provider_message_id,
                    ours: *ours,
                    status: *status,
                    failure: failure.as_ref(),
                },
                now,
                events,
                &mut drafts,
            )
            .await?
        }
        ChannelItem::CommentChange {
            inbox_id,
            provider_message_id,
            verb,
            text,
        } => {
            let Some(mut m) = message_by_provider(conn, *inbox_id, provider_message_id).await?
            else {
                return Ok(Ok(ChannelOutcome::Nothing));
            };
            if verb == "edited"
                && let Some(t) = text
            {
                sqlx::query("UPDATE messages SET body = ? WHERE id = ?")
                    .bind(t)
                    .bind(m.id.to_string())
                    .execute(&mut *conn)
                    .await?;
                m.text = t.clone();
            }
            let verb = verb.clone();
            edit_meta(conn, &m, now, &mut drafts, |o| {
                let c = o.entry("comment").or_insert_with(|| serde_json::json!({}));
                if let Some(c) = c.as_object_mut() {
                    match verb.as_str() {
                        "edited" => c.insert("edited".into(), serde_json::json!(true)),
                        "remove" => c.insert("removed".into(), serde_json::json!(true)),
                        "hide" => c.insert("hidden".into(), serde_json::json!(true)),
                        "unhide" => c.insert("hidden".into(), serde_json::json!(false)),
                        "like" => c.insert("liked".into(), serde_json::json!(true)),
                        "unlike" => c.insert("liked".into(), serde_json::json!(false)),
                        _ => None,
                    };
                }
            })
            .await?;
            ChannelOutcome::Updated(1)
        }
    };
    flush(conn, ws, drafts, now, events).await?;
    Ok(Ok(outcome))
}

/// An echo of a message we know (our own send, or a redelivery): mark it sent and link the
/// recipient's id to the conversation's contact if it was not known (a private reply's PSID).
async fn echo_of_known(
    conn: &mut SqliteConnection,
    m: &Message,
    customer_external_id: &str,
    mid: &str,
    now: Timestamp,
    events: &mut Vec<Event>,
    drafts: &mut Vec<EventDraft>,
) -> Result<()> {
    if m.direction != Direction::Outbound {
        return Ok(());
    }
    if !customer_external_id.is_empty() {
        link_messaging_id(
            conn,
            m.inbox_id,
            customer_external_id,
            m.conversation_id,
            now,
            events,
        )
        .await?;
    }
    // The send went through even if its HTTP answer was lost: the outbox must not send it again.
    sqlx::query("UPDATE outbox SET state = 'sent', provider_message_id = COALESCE(provider_message_id, ?), lease_until = NULL, updated_at = ? WHERE message_id = ? AND state IN ('queued', 'sending')")
        .bind(mid)
        .bind(now.millis())
        .bind(m.id.to_string())
        .execute(&mut *conn)
        .await?;
    if m.provider_message_id.is_none() || m.delivery_status == DeliveryStatus::Queued {
        set_provider_id(conn, m.id, mid).await?;
        if let Some(fresh) = message_by_id(conn, m.id).await? {
            let meta = load_meta(conn, m.id).await?;
            drafts.push(updated_event(&fresh, meta.as_ref()));
        }
    }
    Ok(())
}

/// Records the provider's id and moves a queued message to `sent`. A provider id already used by
/// another row (an echo stored before the Send API answered, without our marker) is left there.
pub(super) async fn set_provider_id(
    conn: &mut SqliteConnection,
    id: MessageId,
    mid: &str,
) -> Result<()> {
    let set = sqlx::query(
        "UPDATE messages SET provider_message_id = COALESCE(provider_message_id, ?) WHERE id = ?",
    )
    .bind(mid)
    .bind(id.to_string())
    .execute(&mut *conn)
    .await;
    match set {
        Ok(_) => {}
        Err(e) if unique_violation(&e) => {
            tracing::warn!("provider id already stored for another message");
        }
        Err(e) => return Err(e.into()),
    }
    sqlx::query(
        "UPDATE messages SET delivery_status = 'sent' WHERE id = ? AND delivery_status = 'queued'",
    )
    .bind(id.to_string())
    .execute(&mut *conn)
    .await?;
    Ok(())
}

// ---------------------------------------------------------------- merges

#[derive(serde::Serialize, serde::Deserialize, Default)]
struct Undo {
    identities: Vec<(String, String)>,
    repointed: Vec<String>,
    absorbed: Vec<Absorbed>,
}

#[derive(serde::Serialize, serde::Deserialize)]
struct Absorbed {
    conversation: Conversation,
    preview: Option<String>,
    unread_count: i64,
    into: String,
    messages: Vec<String>,
    actions: Vec<String>,
    outbox: Vec<String>,
}

async fn ids_where(
    conn: &mut SqliteConnection,
    sql: &'static str,
    arg: &str,
) -> Result<Vec<String>> {
    sqlx::query(sql)
        .bind(arg)
        .fetch_all(conn)
        .await?
        .iter()
        .map(|r| r.try_get::<String, _>(0).map_err(StoreError::from))
        .collect()
}

fn conversation_event(
    before: Option<&Conversation>,
    after: &Conversation,
    extra: serde_json::Value,
) -> Option<EventDraft> {
    let tr = Transition {
        conversation: after.clone(),
        actions: Vec::new(),
        changed: true,
    };
    let mut d = event::for_transition(before, &tr)?;
    if let (Some(o), serde_json::Value::Object(x)) = (d.payload.as_object_mut(), extra) {
        o.extend(x);
    }
    Some(d)
}

async fn merge_in(
    conn: &mut SqliteConnection,
    from: ContactId,
    into: ContactId,
    reason: &str,
    actor: Option<AgentId>,
    now: Timestamp,
    events: &mut Vec<Event>,
) -> Result<ContactMerge> {
    if from == into {
        return Err(StoreError::Conflict("merge of a contact into itself"));
    }
    let into_row =
        sqlx::query("SELECT workspace_id FROM contacts WHERE id = ? AND merged_into IS NULL")
            .bind(into.to_string())
            .fetch_optional(&mut *conn)
            .await?
            .ok_or(StoreError::NotFound)?;
    let ws = WorkspaceId(uuid_of(&into_row, "workspace_id")?);
    let mut undo = Undo::default();
    let mut drafts = Vec::new();
    for r in
        sqlx::query("SELECT inbox_id, external_id FROM contact_identities WHERE contact_id = ?")
            .bind(from.to_string())
            .fetch_all(&mut *conn)
            .await?
    {
        undo.identities
            .push((r.try_get("inbox_id")?, r.try_get("external_id")?));
    }
    sqlx::query("UPDATE contact_identities SET contact_id = ? WHERE contact_id = ?")
        .bind(into.to_string())
        .bind(from.to_string())
        .execute(&mut *conn)
        .await?;
    let convs = sqlx::query("SELECT * FROM conversations WHERE contact_id = ?")
        .bind(from.to_string())
        .fetch_all(&mut *conn)
        .await?;
    for r in &convs {
        let a = conversation_row(r)?;
        let target =
            sqlx::query("SELECT * FROM conversations WHERE contact_id = ? AND inbox_id = ?")
                .bind(into.to_string())
                .bind(a.inbox_id.to_string())
                .fetch_optional(&mut *conn)
                .await?
                .map(|r| conversation_row(&r))
                .transpose()?;
        let Some(b) = target else {
            sqlx::query("UPDATE conversations SET contact_id = ? WHERE id = ?")
                .bind(into.to_string())
                .bind(a.id.to_string())
                .execute(&mut *conn)
                .await?;
            undo.repointed.push(a.id.to_string());
            let mut moved = a.clone();
            moved.contact_id = into;
            drafts.extend(conversation_event(
                Some(&a),
                &moved,
                serde_json::json!({"contact_id": into}),
            ));
            continue;
        };
        let aid = a.id.to_string();
        let absorbed = Absorbed {
            conversation: a.clone(),
            preview: r.try_get("last_message_preview")?,
            unread_count: r.try_get("unread_count")?,
            into: b.id.to_string(),
            messages: ids_where(
                conn,
                "SELECT id FROM messages WHERE conversation_id = ?",
                &aid,
            )
            .await?,
            actions: ids_where(
                conn,
                "SELECT id FROM action_log WHERE conversation_id = ?",
                &aid,
            )
            .await?,
            outbox: ids_where(
                conn,
                "SELECT message_id FROM outbox WHERE conversation_id = ?",
                &aid,
            )
            .await?,
        };
        for sql in [
            "UPDATE messages SET conversation_id = ? WHERE conversation_id = ?",
            "UPDATE action_log SET conversation_id = ? WHERE conversation_id = ?",
            "UPDATE outbox SET conversation_id = ? WHERE conversation_id = ?",
            "UPDATE attachments SET conversation_id = ? WHERE conversation_id = ?",
        ] {
            sqlx::query(sql)
                .bind(b.id.to_string())
                .bind(&aid)
                .execute(&mut *conn)
                .await?;
        }
        // The absorbed conversation's timers and place in the pool go with it; the survivor's are
        // planned afresh below.
        for sql in [
            "DELETE FROM conversation_tags WHERE conversation_id = ?",
            "DELETE FROM timers WHERE conversation_id = ?",
            "DELETE FROM routing_pool WHERE conversation_id = ?",
        ] {
            sqlx::query(sql).bind(&aid).execute(&mut *conn).await?;
        }
        sqlx::query("DELETE FROM conversations WHERE id = ?")
            .bind(&aid)
            .execute(&mut *conn)
            .await?;
        let mut after = b.clone();
        after.last_customer_message_at =
            match (a.last_customer_message_at, b.last_customer_message_at) {
                (Some(x), Some(y)) => Some(x.max(y)),
                (x, y) => x.or(y),
            };
        after.last_activity_at = a.last_activity_at.max(b.last_activity_at);
        after.version += 1;
        update_conversation(conn, &after, b.version).await?;
        super::routing::after_write(conn, Some(&b), &after, now).await?;
        sqlx::query("UPDATE conversations SET unread_count = unread_count + ? WHERE id = ?")
            .bind(absorbed.unread_count)
            .bind(b.id.to_string())
            .execute(&mut *conn)
            .await?;
        drafts.extend(conversation_event(
            Some(&b),
            &after,
            serde_json::json!({"merged_conversation_id": a.id}),
        ));
        undo.absorbed.push(absorbed);
    }
    sqlx::query("UPDATE contacts SET merged_into = ?, updated_at = ? WHERE id = ?")
        .bind(into.to_string())
        .bind(now.millis())
        .bind(from.to_string())
        .execute(&mut *conn)
        .await?;
    let merge = ContactMerge {
        id: Uuid::now_v7(),
        from_contact_id: from,
        into_contact_id: into,
        reason: reason.to_owned(),
        actor_id: actor,
        created_at: now,
        undone_at: None,
    };
    sqlx::query("INSERT INTO contact_merges (id, from_contact_id, into_contact_id, reason, actor_id, undo, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)")
        .bind(merge.id.to_string())
        .bind(from.to_string())
        .bind(into.to_string())
        .bind(reason)
        .bind(actor.map(|a| a.to_string()))
        .bind(json_text(&undo))
        .bind(now.millis())
        .execute(&mut *conn)
        .await?;
    flush(conn, ws, drafts, now, events).await?;
    Ok(merge)
}

fn merge_row(r: &SqliteRow) -> Result<ContactMerge> {
    Ok(ContactMerge {
        id: uuid_of(r, "id")?,
        from_contact_id: ContactId(uuid_of(r, "from_contact_id")?),
        into_contact_id: ContactId(uuid_of(r, "into_contact_id")?),
        reason: r.try_get("reason")?,
        actor_id: opt_uuid_of(r, "actor_id")?.map(AgentId),
        created_at: ts(r, "created_at")?,
        undone_at: opt_ts(r, "undone_at")?,
    })
}

async fn undo_in(
    conn: &mut SqliteConnection,
    id: Uuid,
    now: Timestamp,
    events: &mut Vec<Event>,
) -> Result<ContactMerge> {
    let row = sqlx::query("SELECT * FROM contact_merges WHERE id = ?")
        .bind(id.to_string())
        .fetch_optional(&mut *conn)
        .await?
        .ok_or(StoreError::NotFound)?;
    let mut merge = merge_row(&row)?;
    if merge.undone_at.is_some() {
        return Err(StoreError::Conflict("undo of this merge"));
    }
    let undo: Undo = json_of(&row, "undo")?;
    let (from, into) = (merge.from_contact_id, merge.into_contact_id);
    let mut drafts = Vec::new();
    let mut ws = None;
    for (inbox, ext) in &undo.identities {
        sqlx::query("UPDATE contact_identities SET contact_id = ? WHERE inbox_id = ? AND external_id = ? AND contact_id = ?")
            .bind(from.to_string())
            .bind(inbox)
            .bind(ext)
            .bind(into.to_string())
            .execute(&mut *conn)
            .await?;
    }
    for conv in &undo.repointed {
        sqlx::query("UPDATE conversations SET contact_id = ? WHERE id = ?")
            .bind(from.to_string())
            .bind(conv)
            .execute(&mut *conn)
            .await?;
        if let Ok(cid) = conv.parse::<ConversationId>()
            && let Some(c) = load_conversation(conn, cid).await?
        {
            ws = Some(c.workspace_id);
            drafts.extend(conversation_event(None, &c, serde_json::json!({})));
        }
    }
    for a in &undo.absorbed {
        let c = &a.conversation;
        ws = Some(c.workspace_id);
        insert_conversation(conn, c).await?;
        sqlx::query(
            "UPDATE conversations SET last_message_preview = ?, unread_count = ? WHERE id = ?",
        )
        .bind(a.preview.as_deref())
        .bind(a.unread_count)
        .bind(c.id.to_string())
        .execute(&mut *conn)
        .await?;
        sync_tags(conn, c, now).await?;
        let cid = c.id.to_string();
        for (sql, ids) in [
            (
                "UPDATE messages SET conversation_id = ? WHERE id = ?",
                &a.messages,
            ),
            (
                "UPDATE action_log SET conversation_id = ? WHERE id = ?",
                &a.actions,
            ),
            (
                "UPDATE outbox SET conversation_id = ? WHERE message_id = ?",
                &a.outbox,
            ),
            (
                "UPDATE attachments SET conversation_id = ? WHERE message_id = ?",
                &a.messages,
            ),
        ] {
            for id in ids {
                sqlx::query(sql)
                    .bind(&cid)
                    .bind(id)
                    .execute(&mut *conn)
                    .await?;
            }
        }
        // The survivor's window is what its own remaining customer messages say.
        if let Ok(bid) = a.into.parse::<ConversationId>()
            && let Some(b) = load_conversation(conn, bid).await?
        {
            let last: Option<i64> = sqlx::query("SELECT MAX(created_at) FROM messages WHERE conversation_id = ? AND direction = 'inbound'")
                .bind(&a.into)
                .fetch_one(&mut *conn)
                .await?
                .try_get(0)?;
            let mut after = b.clone();
            after.last_customer_message_at = last.map(Timestamp);
            after.version += 1;
            update_conversation(conn, &after, b.version).await?;
            super::routing::after_write(conn, Some(&b), &after, now).await?;
            drafts.extend(conversation_event(
                Some(&b),
                &after,
                serde_json::json!({"unmerged_conversation_id": c.id}),
            ));
        }
        super::routing::after_write(conn, None, c, now).await?;
        drafts.extend(conversation_event(None, c, serde_json::json!({})));
    }
    sqlx::query("UPDATE contacts SET merged_into = NULL, updated_at = ? WHERE id = ?")
        .bind(now.millis())
        .bind(from.to_string())
        .execute(&mut *conn)
        .await?;
    sqlx::query("UPDATE contact_merges SET undone_at = ? WHERE id = ?")
        .bind(now.millis())
        .bind(id.to_string())
        .execute(&mut *conn)
        .await?;
    if let Some(ws) = ws {
        flush(conn, ws, drafts, now, events).await?;
    }
    merge.undone_at = Some(now);
    Ok(merge)
}

// ---------------------------------------------------------------- outbox rows

fn outbox_row(r: &SqliteRow) -> Result<OutboxRow> {
    Ok(OutboxRow {
        message_id: MessageId(uuid_of(r, "message_id")?),
        inbox_id: InboxId(uuid_of(r, "inbox_id")?),
        conversation_id: ConversationId(uuid_of(r, "conversation_id")?),
        job: enum_of(r, "job", OutboxJob::parse)?,
        request: json_of(r, "request")?,
        state: r.try_get("state")?,
        attempts: u32::try_from(r.try_get::<i64, _>("attempts")?).unwrap_or(0),
        next_attempt_at: ts(r, "next_attempt_at")?,
        queued_at: ts(r, "queued_at")?,
        provider_message_id: r.try_get("provider_message_id")?,
        last_error: r.try_get("last_error")?,
    })
}

/// Emits `message.updated` for a message after a status change.
async fn status_event(
    conn: &mut SqliteConnection,
    id: MessageId,
    now: Timestamp,
    events: &mut Vec<Event>,
) -> Result<()> {
    if let Some(m) = message_by_id(conn, id).await? {
        let meta = load_meta(conn, id).await?;
        let ws = workspace_of(conn, m.conversation_id).await?;
        flush(
            conn,
            ws,
            vec![updated_event(&m, meta.as_ref())],
            now,
            events,
        )
        .await?;
    }
    Ok(())
}

#[async_trait]
impl OutboxStore for SqliteStore {
    #[instrument(skip_all)]
    async fn queue_outbound(
        &self,
        out: Outbound,
    ) -> Result<std::result::Result<Vec<Event>, OutboundError>> {
        let Some(message) = out.change.message.clone() else {
            return Err(StoreError::Corrupt(
                "an outbound change without a message".into(),
            ));
        };
        let now = out.change.now;
        let mut conn = self.write.acquire().await?;
        let mut tx = conn.begin().await?;
        let events = write_change(&mut tx, out.change).await?;
        if let Some(comment) = &out.private_reply_to {
            let done = sqlx::query("INSERT INTO comment_private_replies (inbox_id, comment_id, message_id, created_at) VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING")
                .bind(message.inbox_id.to_string())
                .bind(comment)
                .bind(message.id.to_string())
                .bind(now.millis())
                .execute(&mut *tx)
                .await?;
            if done.rows_affected() == 0 {
                return Ok(Err(OutboundError::PrivateReplyExists));
            }
        }
        save_meta(&mut tx, message.id, &out.meta, now).await?;
        sqlx::query("INSERT INTO outbox (message_id, inbox_id, conversation_id, job, request, state, attempts, next_attempt_at, queued_at, updated_at) VALUES (?, ?, ?, ?, ?, 'queued', 0, ?, ?, ?)")
            .bind(message.id.to_string())
            .bind(message.inbox_id.to_string())
            .bind(message.conversation_id.to_string())
            .bind(out.job.as_str())
            .bind(json_text(&out.request))
            .bind(now.millis())
            .bind(now.millis())
            .bind(now.millis())
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        self.publish(&events);
        Ok(Ok(events))
    }

    #[instrument(skip_all)]
    async fn claim_due(
        &self,
        now: Timestamp,
        lease_until: Timestamp,
        limit: u32,
    ) -> Result<Vec<OutboxRow>> {
        let mut conn = self.write.acquire().await?;
        // A row still `sending` belonged to a worker that died: marked OUTBOX_INTERRUPTED.
        let rows = sqlx::query(
            "UPDATE outbox SET last_error = CASE WHEN state = 'sending' THEN 'interrupted' ELSE last_error END, state = 'sending', lease_until = ?, attempts = attempts + 1, updated_at = ? \
             WHERE message_id IN (SELECT message_id FROM outbox WHERE state = 'queued' AND next_attempt_at <= ? \
             UNION ALL SELECT message_id FROM outbox WHERE state = 'sending' AND next_attempt_at <= ? AND lease_until <= ? \
             LIMIT ?) RETURNING *",
        )
        .bind(lease_until.millis())
        .bind(now.millis())
        .bind(now.millis())
        .bind(now.millis())
        .bind(now.millis())
        .bind(i64::from(limit))
        .fetch_all(&mut *conn)
        .await?;
        let mut out = rows.iter().map(outbox_row).collect::<Result<Vec<_>>>()?;
        out.sort_by_key(|r| (r.next_attempt_at, r.message_id));
        Ok(out)
    }

    #[instrument(skip_all)]
    async fn outbox_sent(
        &self,
        id: MessageId,
        provider_message_id: &str,
        recipient_id: Option<&str>,
        now: Timestamp,
    ) -> Result<Vec<Event>> {
        let mut conn = self.write.acquire().await?;
        let mut tx = conn.begin().await?;
        let row = sqlx::query("SELECT * FROM outbox WHERE message_id = ?")
            .bind(id.to_string())
            .fetch_optional(&mut *tx)
            .await?
            .map(|r| outbox_row(&r))
            .transpose()?
            .ok_or(StoreError::NotFound)?;
        sqlx::query("UPDATE outbox SET state = 'sent', provider_message_id = ?, lease_until = NULL, last_error = NULL, updated_at = ? WHERE message_id = ?")
            .bind(provider_message_id)
            .bind(now.millis())
            .bind(id.to_string())
            .execute(&mut *tx)
            .await?;
        set_provider_id(&mut tx, id, provider_message_id).await?;
        let mut events = Vec::new();
        if let Some(rid) = recipient_id.filter(|r| !r.is_empty()) {
            link_messaging_id(
                &mut tx,
                row.inbox_id,
                rid,
                row.conversation_id,
                now,
                &mut events,
            )
            .await?;
        }
        status_event(&mut tx, id, now, &mut events).await?;
        tx.commit().await?;
        self.publish(&events);
        Ok(events)
    }

    #[instrument(skip_all)]
    async fn outbox_retry(
        &self,
        id: MessageId,
        next_attempt_at: Timestamp,
        error: &str,
        now: Timestamp,
    ) -> Result<()> {
        let mut conn = self.write.acquire().await?;
        sqlx::query("UPDATE outbox SET state = 'queued', next_attempt_at = ?, last_error = ?, lease_until = NULL, updated_at = ? WHERE message_id = ? AND state = 'sending'")
            .bind(next_attempt_at.millis())
            .bind(error)
            .bind(now.millis())
            .bind(id.to_string())
            .execute(&mut *conn)
            .await?;
        Ok(())
    }

    #[instrument(skip_all)]
    async fn outbox_failed(
        &self,
        id: MessageId,
        reason: &str,
        now: Timestamp,
    ) -> Result<Vec<Event>> {
        let mut conn = self.write.acquire().await?;
        let mut tx = conn.begin().await?;
        let done = sqlx::query("UPDATE outbox SET state = 'failed', last_error = ?, lease_until = NULL, updated_at = ? WHERE message_id = ? AND state IN ('queued', 'sending')")
            .bind(reason)
            .bind(now.millis())
            .bind(id.to_string())
            .execute(&mut *tx)
            .await?;
        let mut events = Vec::new();
        if done.rows_affected() == 1 {
            sqlx::query(
                "UPDATE messages SET delivery_status = 'failed', failure_reason = ? WHERE id = ?",
            )
            .bind(reason)
            .bind(id.to_string())
            .execute(&mut *tx)
            .await?;
            // A private reply that never went out does not use up the comment's one reply.
            sqlx::query("DELETE FROM comment_private_replies WHERE message_id = ?")
                .bind(id.to_string())
                .execute(&mut *tx)
                .await?;
            status_event(&mut tx, id, now, &mut events).await?;
        }
        tx.commit().await?;
        self.publish(&events);
        Ok(events)
    }

    #[instrument(skip_all)]
    async fn outbox_row(&self, id: MessageId) -> Result<Option<OutboxRow>> {
        sqlx::query("SELECT * FROM outbox WHERE message_id = ?")
            .bind(id.to_string())
            .fetch_optional(&self.read)
            .await?
            .map(|r| outbox_row(&r))
            .transpose()
    }

    #[instrument(skip_all)]
    async fn next_due(&self) -> Result<Option<Timestamp>> {
        Ok(
            sqlx::query("SELECT MIN(next_attempt_at) FROM outbox WHERE state = 'queued'")
                .fetch_one(&self.read)
                .await?
                .try_get::<Option<i64>, _>(0)?
                .map(Timestamp),
        )
    }
}

#[async_trait]
impl ChannelStore for SqliteStore {
    #[instrument(skip_all, fields(batch = batch.len()))]
    async fn ingest_channel(
        &self,
        batch: &[ChannelItem],
        now: Timestamp,
    ) -> Result<Vec<Result<ChannelOutcome, IngestError>>> {
        let mut conn = self.write.acquire().await?;
        let mut tx = conn.begin().await?;
        let mut events = Vec::with_capacity(batch.len() * 2);
        let mut out = Vec::with_capacity(batch.len());
        let mut rest = batch;
        while let Some(first) = rest.first() {
            // A run of plain customer messages (nearly every webhook) is stored with a fixed
            // number of statements; anything else, item by item, in order.
            let (inbounds, extras): (Vec<&Inbound>, Vec<(&serde_json::Value, Option<&str>)>) =
                rest.iter().map_while(ChannelItem::plain_customer).unzip();
            let (metas, aliases): (Vec<&serde_json::Value>, Vec<Option<&str>>) =
                extras.into_iter().unzip();
            if inbounds.is_empty() {
                out.push(ingest_item(&mut tx, first, now, &mut events).await?);
                rest = &rest[1..];
            } else {
                rest = &rest[inbounds.len()..];
                out.extend(
                    super::ingest::ingest_batch(
                        &mut tx,
                        &inbounds,
                        &metas,
                        &aliases,
                        now,
                        &mut events,
                    )
                    .await?
                    .into_iter()
                    .map(|r| r.map(ChannelOutcome::Message)),
                );
            }
        }
        tx.commit().await?;
        self.publish(&events);
        Ok(out)
    }

    #[instrument(skip_all)]
    async fn inbox_by_account(&self, channel: ChannelKind, account: &str) -> Result<Option<Inbox>> {
        let sql = match channel {
            ChannelKind::Messenger => {
                "SELECT * FROM inboxes WHERE channel = 'messenger' AND json_extract(settings, '$.page_id') = ?"
            }
            ChannelKind::Instagram => {
                "SELECT * FROM inboxes WHERE channel = 'instagram' AND json_extract(settings, '$.ig_account_id') = ?"
            }
            _ => return Ok(None),
        };
        self.inbox_by_account_cached(channel, account, sql).await
    }

    #[instrument(skip_all)]
    async fn message(&self, id: MessageId) -> Result<Option<Message>> {
        let mut conn = self.read.acquire().await?;
        message_by_id(&mut conn, id).await
    }

    #[instrument(skip_all)]
    async fn message_meta(&self, ids: &[MessageId]) -> Result<HashMap<MessageId, MessageMeta>> {
        if ids.is_empty() {
            return Ok(HashMap::new());
        }
        let rows = sqlx::query(
            "SELECT * FROM message_meta WHERE message_id IN (SELECT value FROM json_each(?))",
        )
        .bind(ids_json(ids))
        .fetch_all(&self.read)
        .await?;
        rows.iter()
            .map(|r| Ok((MessageId(uuid_of(r, "message_id")?), meta_row(r)?)))
            .collect()
    }

    #[instrument(skip_all)]
    async fn messaging_id(&self, contact: ContactId, inbox: InboxId) -> Result<Option<String>> {
        Ok(sqlx::query("SELECT external_id FROM contact_identities WHERE contact_id = ? AND inbox_id = ? AND external_id NOT LIKE 'commenter:%' ORDER BY created_at DESC LIMIT 1")
            .bind(contact.to_string())
            .bind(inbox.to_string())
            .fetch_optional(&self.read)
            .await?
            .map(|r| r.try_get::<String, _>(0))
            .transpose()?)
    }

    #[instrument(skip_all)]
    async fn private_reply_of(
        &self,
        inbox: InboxId,
        comment_id: &str,
    ) -> Result<Option<MessageId>> {
        sqlx::query(
            "SELECT message_id FROM comment_private_replies WHERE inbox_id = ? AND comment_id = ?",
        )
        .bind(inbox.to_string())
        .bind(comment_id)
        .fetch_optional(&self.read)
        .await?
        .map(|r| uuid_of(&r, "message_id").map(MessageId))
        .transpose()
    }

    #[instrument(skip_all)]
    async fn set_contact_profile(
        &self,
        contact: ContactId,
        name: Option<&str>,
        avatar_url: Option<&str>,
        now: Timestamp,
    ) -> Result<()> {
        let mut conn = self.write.acquire().await?;
        sqlx::query("UPDATE contacts SET name = COALESCE(?, name), avatar_url = COALESCE(?, avatar_url), updated_at = ? WHERE id = ?")
            .bind(name)
            .bind(avatar_url)
            .bind(now.millis())
            .bind(contact.to_string())
            .execute(&mut *conn)
            .await?;
        Ok(())
    }

    #[instrument(skip_all)]
    async fn contact_avatar(&self, contact: ContactId) -> Result<Option<String>> {
        Ok(sqlx::query("SELECT avatar_url FROM contacts WHERE id = ?")
            .bind(contact.to_string())
            .fetch_optional(&self.read)
            .await?
            .map(|r| r.try_get::<Option<String>, _>(0))
            .transpose()?
            .flatten())
    }

    #[instrument(skip_all)]
    async fn merge_contacts(
        &self,
        from: ContactId,
        into: ContactId,
        reason: &str,
        actor: Option<AgentId>,
        now: Timestamp,
    ) -> Result<ContactMerge> {
        let mut conn = self.write.acquire().await?;
        let mut tx = conn.begin().await?;
        let mut events = Vec::new();
        let m = merge_in(&mut tx, from, into, reason, actor, now, &mut events).await?;
        tx.commit().await?;
        self.publish(&events);
        Ok(m)
    }

    #[instrument(skip_all)]
    async fn undo_merge(&self, id: Uuid, now: Timestamp) -> Result<ContactMerge> {
        let mut conn = self.write.acquire().await?;
        let mut tx = conn.begin().await?;
        let mut events = Vec::new();
        let m = undo_in(&mut tx, id, now, &mut events).await?;
        tx.commit().await?;
        self.publish(&events);
        Ok(m)
    }

    #[instrument(skip_all)]
    async fn merges_of(&self, contact: ContactId) -> Result<Vec<ContactMerge>> {
        sqlx::query("SELECT * FROM contact_merges WHERE into_contact_id = ? UNION ALL SELECT * FROM contact_merges WHERE from_contact_id = ? ORDER BY created_at")
            .bind(contact.to_string())
            .bind(contact.to_string())
            .fetch_all(&self.read)
            .await?
            .iter()
            .map(merge_row)
            .collect()
    }

    #[instrument(skip_all)]
    async fn merge_record(&self, id: Uuid) -> Result<Option<ContactMerge>> {
        sqlx::query("SELECT * FROM contact_merges WHERE id = ?")
            .bind(id.to_string())
            .fetch_optional(&self.read)
            .await?
            .map(|r| merge_row(&r))
            .transpose()
    }
}
