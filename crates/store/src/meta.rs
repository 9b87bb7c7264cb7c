//! Provider channels written once: channel events in the group commit, message extras, the outbox
//! (claimed with `FOR UPDATE SKIP LOCKED` on PostgreSQL, so one node sends a row), and contact
//! linking and merging. Events are numbered at commit, like `apply`/`ingest`.

use crate::channel::*;
use crate::rows::*;
use crate::sql::{
    Conn, Db, RowRead, Setting, commit, conflict_on_deadlock, id_strings, json_text, q, q_owned,
    retried,
};
use crate::writes::*;
use crate::*;
use std::collections::HashMap;
use switchboard_core::conversation::{Action, ActionKind, Transition};
use switchboard_core::event::{self, Event, EventDraft};
use switchboard_core::ingest::batch::{is_empty_meta, preview};
use switchboard_core::ingest::{self, MetaEdit};
use tracing::instrument;
use uuid::Uuid;

pub(crate) async fn message_by_id<C: Conn>(conn: &mut C, id: MessageId) -> Result<Option<Message>> {
    q("SELECT * FROM messages WHERE id = $1")
        .bind(id.to_string())
        .opt(conn, message_row)
        .await
}

pub(crate) async fn message_by_provider<C: Conn>(
    conn: &mut C,
    inbox: InboxId,
    provider_id: &str,
) -> Result<Option<Message>> {
    q("SELECT * FROM messages WHERE inbox_id = $1 AND provider_message_id = $2")
        .bind(inbox.to_string())
        .bind(provider_id)
        .opt(conn, message_row)
        .await
}

pub(crate) async fn load_meta<C: Conn>(conn: &mut C, id: MessageId) -> Result<Option<MessageMeta>> {
    q("SELECT * FROM message_meta WHERE message_id = $1")
        .bind(id.to_string())
        .opt(conn, meta_row)
        .await
}

pub(crate) async fn save_meta<C: Conn>(
    conn: &mut C,
    id: MessageId,
    meta: &MessageMeta,
    now: Timestamp,
) -> Result<()> {
    conn.insert_rows(
        "INSERT INTO message_meta (message_id, meta, messaging_type, tag, updated_at)",
        "ON CONFLICT (message_id) DO UPDATE SET meta = excluded.meta, messaging_type = excluded.messaging_type, \
         tag = excluded.tag, updated_at = excluded.updated_at",
        vec![vec![
            id.to_string().into(),
            json_text(&meta.meta).into(),
            meta.messaging_type.clone().into(),
            meta.tag.clone().into(),
            now.millis().into(),
        ]],
    )
    .await?;
    Ok(())
}

/// Changes a message's extras and records the `message.updated` event.
pub(crate) async fn edit_meta<C: Conn>(
    conn: &mut C,
    m: &Message,
    now: Timestamp,
    drafts: &mut Vec<EventDraft>,
    edit: MetaEdit,
) -> Result<()> {
    let mut meta = load_meta(conn, m.id).await?.unwrap_or_default();
    edit.apply(&mut meta.meta);
    save_meta(conn, m.id, &meta, now).await?;
    drafts.push(updated_event(m, Some(&meta)));
    Ok(())
}

/// Edits one of the inbox's messages, found by its provider id (`target`): its text, if `text`
/// is given, and its extras. `None` if there is no such message.
async fn edit_message<C: Conn>(
    conn: &mut C,
    target: (InboxId, &str),
    text: Option<&str>,
    edit: MetaEdit,
    now: Timestamp,
    drafts: &mut Vec<EventDraft>,
) -> Result<Option<Message>> {
    let Some(mut m) = message_by_provider(conn, target.0, target.1).await? else {
        return Ok(None);
    };
    if let Some(t) = text {
        q("UPDATE messages SET body = $1 WHERE id = $2")
            .bind(t)
            .bind(m.id.to_string())
            .execute(&mut *conn)
            .await?;
        m.text = t.to_owned();
    }
    edit_meta(conn, &m, now, drafts, edit).await?;
    Ok(Some(m))
}

/// One of our messages: by our marker (`ours`, if it is of this inbox), else by the provider's id.
pub(crate) async fn ours_or_provider<C: Conn>(
    conn: &mut C,
    ours: Option<MessageId>,
    inbox: InboxId,
    provider_id: &str,
) -> Result<Option<Message>> {
    if let Some(id) = ours
        && let Some(m) = message_by_id(conn, id).await?
        && m.inbox_id == inbox
    {
        return Ok(Some(m));
    }
    message_by_provider(conn, inbox, provider_id).await
}

pub(crate) async fn identity_contact<C: Conn>(
    conn: &mut C,
    inbox: InboxId,
    external_id: &str,
) -> Result<Option<ContactId>> {
    q("SELECT contact_id FROM contact_identities WHERE inbox_id = $1 AND external_id = $2")
        .bind(inbox.to_string())
        .bind(external_id)
        .opt(conn, |r| uuid_of(r, "contact_id").map(ContactId))
        .await
}

pub(crate) async fn workspace_of<C: Conn>(
    conn: &mut C,
    conv: ConversationId,
) -> Result<WorkspaceId> {
    load_conversation(conn, conv)
        .await?
        .map(|c| c.workspace_id)
        .ok_or(StoreError::NotFound)
}

/// Links `external_id` (a messaging id) of `inbox` to the contact of `conv`: a new identity, or a
/// merge when the id already belongs to someone else (the provider proved it is one person).
async fn link_messaging_id<C: Conn>(
    conn: &mut C,
    inbox: InboxId,
    external_id: &str,
    conv: ConversationId,
    now: Timestamp,
    events: &mut Vec<Event>,
) -> Result<()> {
    conn.lock_keys(vec![identity_key(inbox, external_id)])
        .await?;
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

/// The inbox of `channel` whose setting `key` names `account`, remembered (where the store keeps
/// a cache) until an inbox is written.
pub(crate) async fn inbox_by_setting<D: Db>(
    d: &D,
    channel: ChannelKind,
    key: &str,
    account: &str,
) -> Result<Option<Inbox>> {
    let generation = match d.accounts().map(|c| c.get(channel, account)) {
        Some(Ok(hit)) => return Ok(hit),
        Some(Err(g)) => Some(g),
        None => None,
    };
    let sql = format!(
        "SELECT * FROM inboxes WHERE channel = '{}' AND {} = $1",
        channel.as_str(),
        <D::Conn as Conn>::setting_sql(Setting::Named(key))
    );
    let inbox = q_owned(sql)
        .bind(account)
        .opt(&mut *d.read().await?, inbox_row)
        .await?
        .map(|i| opened(d, i))
        .transpose()?;
    if let (Some(cache), Some(g)) = (d.accounts(), generation) {
        cache.put(g, channel, account, inbox.clone());
    }
    Ok(inbox)
}

/// The drafts as the transaction's events (numbered at commit).
pub(crate) fn flush(
    ws: WorkspaceId,
    drafts: Vec<EventDraft>,
    now: Timestamp,
    events: &mut Vec<Event>,
) {
    events.extend(unnumbered(ws, drafts, now));
}

async fn inbox_workspace<C: Conn>(conn: &mut C, inbox: InboxId) -> Result<Option<WorkspaceId>> {
    q("SELECT workspace_id FROM inboxes WHERE id = $1")
        .bind(inbox.to_string())
        .opt(conn, |r| uuid_of(r, "workspace_id").map(WorkspaceId))
        .await
}

async fn ingest_item<C: Conn>(
    conn: &mut C,
    item: &Stamped,
    now: Timestamp,
    events: &mut Vec<Event>,
) -> Result<Result<ChannelOutcome, IngestError>> {
    let inbox = item.inbox_id;
    let inbox_id = &item.inbox_id;
    let Some(ws) = inbox_workspace(conn, inbox).await? else {
        return Ok(Err(IngestError::UnknownInbox));
    };
    let mut drafts = Vec::new();
    let outcome = match &item.event {
        InboundEvent::Customer(said) => {
            let Some(inbound) = item.inbound() else {
                return Err(StoreError::Corrupt(
                    "a customer message without its inbound".into(),
                ));
            };
            // A DM answering our private reply: its sender is the commenter.
            if let (Some(reply_to), InboundSender::Identity { external_id, .. }) =
                (&said.replying_to, &said.from)
                && identity_contact(conn, inbox, external_id).await?.is_none()
                && let Some(ours) = message_by_provider(conn, inbox, reply_to).await?
                && ours.direction == Direction::Outbound
            {
                link_messaging_id(conn, inbox, external_id, ours.conversation_id, now, events)
                    .await?;
            }
            // A reply links to the message it answers when we have it (the thread shows it).
            let mut meta = said.meta.clone();
            if let Some(reply_to) = &said.replying_to
                && let Some(original) = message_by_provider(conn, inbox, reply_to).await?
            {
                ingest::link_reply(&mut meta, original.id, &original.text);
            }
            match crate::ingest::ingest_batch(
                conn,
                &[&inbound],
                &[&meta],
                &[said.alias.as_deref()],
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
        InboundEvent::Echo(Echoed {
            customer: customer_external_id,
            provider_message_id,
            ours,
            text,
            meta,
            at: sent_at,
        }) => {
            let workspace_id = &item.workspace_id;
            let NewIds {
                message: message_id,
                conversation: new_conversation_id,
                contact: new_contact_id,
            } = &item.ids;
            if let Some(m) = ours_or_provider(conn, *ours, *inbox_id, provider_message_id).await? {
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
                    held_by_bot: false,
                })
            } else {
                let contact_id = match identity_contact(conn, *inbox_id, customer_external_id)
                    .await?
                {
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
                        insert_contact_with(conn, &fresh, *inbox_id, customer_external_id).await?;
                        fresh.id
                    }
                };
                let existing = q(
                    "SELECT * FROM conversations WHERE contact_id = $1 AND inbox_id = $2 FOR UPDATE",
                )
                .bind(contact_id.to_string())
                .bind(inbox_id.to_string())
                .opt(&mut *conn, conversation_row)
            .await?;
                let (created, m) = ingest::page_message(
                    existing.as_ref(),
                    ingest::PageMessage {
                        id: *message_id,
                        workspace_id: *workspace_id,
                        inbox_id: *inbox_id,
                        contact_id,
                        new_conversation_id: *new_conversation_id,
                        text: text.clone(),
                        provider_message_id: provider_message_id.clone(),
                        sent_at: *sent_at,
                    },
                    now,
                );
                if let Some(c) = &created {
                    insert_conversation(conn, c).await?;
                    crate::pool::after_write(conn, None, c, now).await?;
                    drafts.extend(conversation_event(None, c, serde_json::json!({})));
                }
                insert_message(conn, &m).await?;
                q("UPDATE conversations SET last_message_preview = $1, last_activity_at = GREATEST(last_activity_at, $2) WHERE id = $3")
                    .bind(preview(&m.text))
                    .bind(m.created_at.millis())
                    .bind(m.conversation_id.to_string())
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
                    conversation_id: m.conversation_id,
                    contact_id,
                    duplicate: false,
                    // The page wrote first: nothing for routing until the customer answers.
                    entered_pool: false,
                    held_by_bot: false,
                })
            }
        }
        InboundEvent::Receipt {
            customer: customer_external_id,
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
                let rows = q(
                    "SELECT m.* FROM conversations c JOIN messages m ON m.conversation_id = c.id \
                     WHERE c.contact_id = $1 AND c.inbox_id = $2 AND m.direction = 'outbound' \
                     AND m.created_at <= $3 AND m.delivery_status IN ('sent', 'delivered')",
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
                    || !ingest::receipt_moves(m.delivery_status, *status)
                {
                    continue;
                }
                q("UPDATE messages SET delivery_status = $1 WHERE id = $2")
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
        InboundEvent::Status {
            provider_message_id,
            ours,
            status,
            failure,
        } => {
            apply_status(
                conn,
                StatusItem {
                    inbox: *inbox_id,
                    provider_message_id,
                    ours: *ours,
                    status: *status,
                    failure: failure.as_ref(),
                },
                now,
                &mut drafts,
            )
            .await?
        }
        InboundEvent::Reaction {
            customer: customer_external_id,
            target_provider_id,
            reaction,
            at,
        } => {
            let edit = MetaEdit::Reaction(reaction.clone());
            let target = (*inbox_id, target_provider_id.as_str());
            let Some(m) = edit_message(conn, target, None, edit, now, &mut drafts).await? else {
                return Ok(Ok(ChannelOutcome::Nothing));
            };
            let reactor = identity_contact(conn, *inbox_id, customer_external_id).await?;
            if let Some(c) = lock_conversation(conn, m.conversation_id).await?
                && let Some(tr) = ingest::reaction(&c, reactor, *at, now)
            {
                update_conversation(conn, &tr.conversation, c.version).await?;
                crate::pool::after_write(conn, Some(&c), &tr.conversation, now).await?;
                drafts.extend(event::for_transition(Some(&c), &tr));
            }
            ChannelOutcome::Updated(1)
        }
        InboundEvent::Edit {
            provider_message_id,
            text,
            num_edit,
        } => {
            let target = (*inbox_id, provider_message_id.as_str());
            let edit = MetaEdit::Edited(*num_edit);
            edited(change_customer_message(conn, target, text, edit, now, &mut drafts).await?)
        }
        InboundEvent::Unsent {
            provider_message_id,
        } => {
            let target = (*inbox_id, provider_message_id.as_str());
            let edit = MetaEdit::Unsent;
            edited(change_customer_message(conn, target, "", edit, now, &mut drafts).await?)
        }
        InboundEvent::CommentChange {
            provider_message_id,
            verb,
            text,
        } => {
            let target = (*inbox_id, provider_message_id.as_str());
            let text = ingest::comment_text(verb, text.as_deref());
            let edit = MetaEdit::Comment(verb.clone());
            edited(edit_message(conn, target, text, edit, now, &mut drafts).await?)
        }
    };
    flush(ws, drafts, now, events);
    Ok(Ok(outcome))
}

fn edited(m: Option<Message>) -> ChannelOutcome {
    match m {
        Some(_) => ChannelOutcome::Updated(1),
        None => ChannelOutcome::Nothing,
    }
}

/// A customer's edit or unsend: the original message (found by its provider id) takes the new
/// text (empty once unsent) and the mark, and the conversation's preview follows when it is the
/// latest message. Nothing else: no unread count, no window, no new row. `None` when there is no
/// such message of the customer's (an unknown original is acknowledged and ignored).
async fn change_customer_message<C: Conn>(
    conn: &mut C,
    target: (InboxId, &str),
    text: &str,
    edit: MetaEdit,
    now: Timestamp,
    drafts: &mut Vec<EventDraft>,
) -> Result<Option<Message>> {
    match message_by_provider(conn, target.0, target.1).await? {
        Some(m) if ingest::customer_may_change(&m) => {}
        _ => return Ok(None),
    }
    let Some(m) = edit_message(conn, target, Some(text), edit, now, drafts).await? else {
        return Ok(None);
    };
    q(
        "UPDATE conversations SET last_message_preview = $1 WHERE id = $2 AND NOT EXISTS \
       (SELECT 1 FROM messages n WHERE n.conversation_id = $2 AND n.created_at > $3)",
    )
    .bind(preview(&m.text))
    .bind(m.conversation_id.to_string())
    .bind(m.created_at.millis())
    .execute(&mut *conn)
    .await?;
    Ok(Some(m))
}

/// An echo of a message we know (our own send, or a redelivery): mark it sent and link the
/// recipient's id to the conversation's contact if it was not known (a private reply's PSID).
async fn echo_of_known<C: Conn>(
    conn: &mut C,
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
    q("UPDATE outbox SET state = 'sent', provider_message_id = COALESCE(provider_message_id, $1), lease_until = NULL, updated_at = $2 WHERE message_id = $3 AND state IN ('queued', 'sending')")
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
pub(crate) async fn set_provider_id<C: Conn>(conn: &mut C, id: MessageId, mid: &str) -> Result<()> {
    // A unique violation would abort the whole PostgreSQL transaction, so the clash is avoided in
    // the statement instead of caught (a concurrent insert of the same id fails the transaction,
    // which its caller runs again).
    let set = q(
        "UPDATE messages SET provider_message_id = COALESCE(provider_message_id, $1) WHERE id = $2 \
         AND NOT EXISTS (SELECT 1 FROM messages o WHERE o.inbox_id = messages.inbox_id \
                         AND o.provider_message_id = $1 AND o.id <> messages.id)",
    )
    .bind(mid)
    .bind(id.to_string())
    .execute(&mut *conn)
    .await?;
    if set.rows_affected() == 0 {
        tracing::warn!("provider id already stored for another message");
    }
    q("UPDATE messages SET delivery_status = 'sent' WHERE id = $1 AND delivery_status = 'queued'")
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

async fn merge_in<C: Conn>(
    conn: &mut C,
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
    let into_row = q("SELECT workspace_id FROM contacts WHERE id = $1 AND merged_into IS NULL")
        .bind(into.to_string())
        .fetch_optional(&mut *conn)
        .await?
        .ok_or(StoreError::NotFound)?;
    let ws = WorkspaceId(uuid_of(&into_row, "workspace_id")?);
    let mut undo = Undo::default();
    let mut drafts = Vec::new();
    for r in q("SELECT inbox_id, external_id FROM contact_identities WHERE contact_id = $1")
        .bind(from.to_string())
        .fetch_all(&mut *conn)
        .await?
    {
        undo.identities
            .push((r.try_get("inbox_id")?, r.try_get("external_id")?));
    }
    q("UPDATE contact_identities SET contact_id = $1 WHERE contact_id = $2")
        .bind(into.to_string())
        .bind(from.to_string())
        .execute(&mut *conn)
        .await?;
    let convs = q("SELECT * FROM conversations WHERE contact_id = $1 ORDER BY id FOR UPDATE")
        .bind(from.to_string())
        .fetch_all(&mut *conn)
        .await?;
    for r in &convs {
        let a = conversation_row(r)?;
        let target =
            q("SELECT * FROM conversations WHERE contact_id = $1 AND inbox_id = $2 FOR UPDATE")
                .bind(into.to_string())
                .bind(a.inbox_id.to_string())
                .opt(&mut *conn, conversation_row)
                .await?;
        let Some(into_conv) = target else {
            q("UPDATE conversations SET contact_id = $1 WHERE id = $2")
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
        // The one that goes on keeps its id, holder and place; the other's rows move into it.
        let keeps_from = ingest::merge_keeps_from(&a, &into_conv);
        let (a, b) = if keeps_from {
            let mut kept = a;
            kept.contact_id = into;
            (into_conv, kept)
        } else {
            (a, into_conv)
        };
        let aid = a.id.to_string();
        let (preview, unread_count): (Option<String>, i64) =
            q("SELECT last_message_preview, unread_count FROM conversations WHERE id = $1")
                .bind(&aid)
                .fetch_one(&mut *conn)
                .await
                .and_then(|r| Ok((r.try_get(0)?, r.try_get(1)?)))?;
        let ids = q(
            "SELECT 'messages', id FROM messages WHERE conversation_id = $1 \
             UNION ALL SELECT 'actions', id FROM action_log WHERE conversation_id = $1 \
             UNION ALL SELECT 'outbox', message_id FROM outbox WHERE conversation_id = $1",
        )
        .bind(&aid)
        .all(&mut *conn, |r| Ok((r.try_get(0)?, r.try_get(1)?)))
        .await?;
        let of = |kind: &str| -> Vec<String> {
            let of_kind = ids.iter().filter(|(k, _): &&(String, String)| k == kind);
            of_kind.map(|(_, id)| id.clone()).collect()
        };
        let absorbed = Absorbed {
            conversation: a.clone(),
            preview,
            unread_count,
            into: b.id.to_string(),
            messages: of("messages"),
            actions: of("actions"),
            outbox: of("outbox"),
        };
        for sql in [
            "UPDATE messages SET conversation_id = $1 WHERE conversation_id = $2",
            "UPDATE action_log SET conversation_id = $1 WHERE conversation_id = $2",
            "UPDATE outbox SET conversation_id = $1 WHERE conversation_id = $2",
            "UPDATE attachments SET conversation_id = $1 WHERE conversation_id = $2",
        ] {
            q(sql)
                .bind(b.id.to_string())
                .bind(&aid)
                .execute(&mut *conn)
                .await?;
        }
        // The absorbed conversation's timers and place in the pool go with it; the survivor's are
        // planned afresh below.
        for sql in [
            "DELETE FROM conversation_tags WHERE conversation_id = $1",
            "DELETE FROM timers WHERE conversation_id = $1",
            "DELETE FROM routing_pool WHERE conversation_id = $1",
        ] {
            q(sql).bind(&aid).execute(&mut *conn).await?;
        }
        q("DELETE FROM conversations WHERE id = $1")
            .bind(&aid)
            .execute(&mut *conn)
            .await?;
        if keeps_from {
            // `b` was the merged-away contact's: it becomes the survivor's (an undo gives it back).
            q("UPDATE conversations SET contact_id = $1 WHERE id = $2")
                .bind(into.to_string())
                .bind(b.id.to_string())
                .execute(&mut *conn)
                .await?;
            undo.repointed.push(b.id.to_string());
        }
        let after = ingest::absorb(&a, &b);
        update_conversation(conn, &after, b.version).await?;
        crate::pool::after_write(conn, Some(&b), &after, now).await?;
        q("UPDATE conversations SET unread_count = unread_count + $1 WHERE id = $2")
            .bind(absorbed.unread_count)
            .bind(b.id.to_string())
            .execute(&mut *conn)
            .await?;
        insert_actions(
            conn,
            b.id,
            &[Action {
                kind: ActionKind::Merged,
                actor,
                detail: serde_json::json!({"absorbed_conversation_id": a.id, "reason": reason}),
            }],
            now,
        )
        .await?;
        drafts.extend(conversation_event(
            Some(&b),
            &after,
            serde_json::json!({"merged_conversation_id": a.id}),
        ));
        undo.absorbed.push(absorbed);
    }
    q("UPDATE contacts SET merged_into = $1, updated_at = $2 WHERE id = $3")
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
    q("INSERT INTO contact_merges (id, from_contact_id, into_contact_id, reason, actor_id, undo, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7)")
        .bind(merge.id.to_string())
        .bind(from.to_string())
        .bind(into.to_string())
        .bind(reason)
        .bind(actor.map(|a| a.to_string()))
        .bind(json_text(&undo))
        .bind(now.millis())
        .execute(&mut *conn)
        .await?;
    flush(ws, drafts, now, events);
    Ok(merge)
}

async fn undo_in<C: Conn>(
    conn: &mut C,
    id: Uuid,
    now: Timestamp,
    events: &mut Vec<Event>,
) -> Result<ContactMerge> {
    let row = q("SELECT * FROM contact_merges WHERE id = $1")
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
        q("UPDATE contact_identities SET contact_id = $1 WHERE inbox_id = $2 AND external_id = $3 AND contact_id = $4")
            .bind(from.to_string())
            .bind(inbox)
            .bind(ext)
            .bind(into.to_string())
            .execute(&mut *conn)
            .await?;
    }
    for conv in &undo.repointed {
        q("UPDATE conversations SET contact_id = $1 WHERE id = $2")
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
        q("UPDATE conversations SET last_message_preview = $1, unread_count = $2 WHERE id = $3")
            .bind(a.preview.as_deref())
            .bind(a.unread_count)
            .bind(c.id.to_string())
            .execute(&mut *conn)
            .await?;
        sync_tags(conn, c, now).await?;
        let cid = c.id.to_string();
        for (sql, ids) in [
            (
                "UPDATE messages SET conversation_id = $1 WHERE id = ANY($2)",
                &a.messages,
            ),
            (
                "UPDATE action_log SET conversation_id = $1 WHERE id = ANY($2)",
                &a.actions,
            ),
            (
                "UPDATE outbox SET conversation_id = $1 WHERE message_id = ANY($2)",
                &a.outbox,
            ),
            (
                "UPDATE attachments SET conversation_id = $1 WHERE message_id = ANY($2)",
                &a.messages,
            ),
        ] {
            q(sql).bind(&cid).bind(ids).execute(&mut *conn).await?;
        }
        // The survivor's window is what its own remaining customer messages say.
        if let Ok(bid) = a.into.parse::<ConversationId>()
            && let Some(b) = load_conversation(conn, bid).await?
        {
            let last: Option<i64> = q("SELECT MAX(created_at) FROM messages WHERE conversation_id = $1 AND direction = 'inbound'")
                .bind(&a.into)
                .fetch_one(&mut *conn)
                .await?
                .try_get(0)?;
            let after = ingest::unabsorb(&b, last.map(Timestamp));
            update_conversation(conn, &after, b.version).await?;
            crate::pool::after_write(conn, Some(&b), &after, now).await?;
            drafts.extend(conversation_event(
                Some(&b),
                &after,
                serde_json::json!({"unmerged_conversation_id": c.id}),
            ));
        }
        crate::pool::after_write(conn, None, c, now).await?;
        drafts.extend(conversation_event(None, c, serde_json::json!({})));
    }
    q("UPDATE contacts SET merged_into = NULL, updated_at = $1 WHERE id = $2")
        .bind(now.millis())
        .bind(from.to_string())
        .execute(&mut *conn)
        .await?;
    q("UPDATE contact_merges SET undone_at = $1 WHERE id = $2")
        .bind(now.millis())
        .bind(id.to_string())
        .execute(&mut *conn)
        .await?;
    if let Some(ws) = ws {
        flush(ws, drafts, now, events);
    }
    merge.undone_at = Some(now);
    Ok(merge)
}

// ---------------------------------------------------------------- outbox rows

/// Emits `message.updated` for a message after a status change.
async fn status_event<C: Conn>(
    conn: &mut C,
    id: MessageId,
    now: Timestamp,
    events: &mut Vec<Event>,
) -> Result<()> {
    if let Some(m) = message_by_id(conn, id).await? {
        let meta = load_meta(conn, id).await?;
        let ws = workspace_of(conn, m.conversation_id).await?;
        flush(ws, vec![updated_event(&m, meta.as_ref())], now, events);
    }
    Ok(())
}

#[async_trait]
impl<D: Db> OutboxStore for D {
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
        let mut tx = self.begin().await?;
        if let Some(run) = &out.run {
            crate::automation::write_run(&mut *tx, run).await?;
        }
        let mut events = write_change(&mut *tx, out.change)
            .await
            .map_err(conflict_on_deadlock)?;
        if let Some(comment) = &out.private_reply_to {
            let done = q("INSERT INTO comment_private_replies (inbox_id, comment_id, message_id, created_at) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING")
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
        save_meta(&mut *tx, message.id, &out.meta, now).await?;
        q("INSERT INTO outbox (message_id, inbox_id, conversation_id, job, request, state, attempts, next_attempt_at, queued_at, updated_at) VALUES ($1, $2, $3, $4, $5, 'queued', 0, $6, $7, $8)")
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
        commit(self, tx, &mut events)
            .await
            .map_err(conflict_on_deadlock)?;
        Ok(Ok(events))
    }

    #[instrument(skip_all)]
    async fn claim_due(
        &self,
        now: Timestamp,
        lease_until: Timestamp,
        limit: u32,
    ) -> Result<Vec<OutboxRow>> {
        // A row still `sending` belonged to a worker that died mid-send: marked
        // OUTBOX_INTERRUPTED (its request may have reached the provider).
        let mut out = q(
            "UPDATE outbox SET last_error = CASE WHEN state = 'sending' THEN 'interrupted' ELSE last_error END, state = 'sending', lease_until = $1, attempts = attempts + 1, updated_at = $2 \
             WHERE message_id IN (SELECT message_id FROM outbox WHERE (state = 'queued' AND next_attempt_at <= $3) \
               OR (state = 'sending' AND next_attempt_at <= $4 AND lease_until <= $5) \
               LIMIT $6 FOR UPDATE SKIP LOCKED) \
             AND ((state = 'queued' AND next_attempt_at <= $3) OR (state = 'sending' AND next_attempt_at <= $4 AND lease_until <= $5)) \
             RETURNING *",
        )
        .bind(lease_until.millis())
        .bind(now.millis())
        .bind(now.millis())
        .bind(now.millis())
        .bind(now.millis())
        .bind(i64::from(limit))
        .write_all(self, outbox_row)
        .await?;
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
        retried(move || outbox_sent_tx(self, id, provider_message_id, recipient_id, now)).await
    }

    #[instrument(skip_all)]
    async fn outbox_retry(
        &self,
        id: MessageId,
        next_attempt_at: Timestamp,
        error: &str,
        now: Timestamp,
    ) -> Result<()> {
        q("UPDATE outbox SET state = 'queued', next_attempt_at = $1, last_error = $2, lease_until = NULL, updated_at = $3 WHERE message_id = $4 AND state = 'sending'")
            .bind(next_attempt_at.millis())
            .bind(error)
            .bind(now.millis())
            .bind(id.to_string())
            .write(self)
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
        let mut tx = self.begin().await?;
        let done = q("UPDATE outbox SET state = 'failed', last_error = $1, lease_until = NULL, updated_at = $2 WHERE message_id = $3 AND state IN ('queued', 'sending')")
            .bind(reason)
            .bind(now.millis())
            .bind(id.to_string())
            .execute(&mut *tx)
            .await?;
        let mut events = Vec::new();
        if done.rows_affected() == 1 {
            q("UPDATE messages SET delivery_status = 'failed', failure_reason = $1 WHERE id = $2")
                .bind(reason)
                .bind(id.to_string())
                .execute(&mut *tx)
                .await?;
            // A private reply that never went out does not use up the comment's one reply.
            q("DELETE FROM comment_private_replies WHERE message_id = $1")
                .bind(id.to_string())
                .execute(&mut *tx)
                .await?;
            status_event(&mut *tx, id, now, &mut events).await?;
        }
        commit(self, tx, &mut events).await?;
        Ok(events)
    }

    #[instrument(skip_all)]
    async fn outbox_row(&self, id: MessageId) -> Result<Option<OutboxRow>> {
        q("SELECT * FROM outbox WHERE message_id = $1")
            .bind(id.to_string())
            .read_opt(self, outbox_row)
            .await
    }

    #[instrument(skip_all)]
    async fn next_due(&self) -> Result<Option<Timestamp>> {
        Ok(
            q("SELECT MIN(next_attempt_at) FROM outbox WHERE state = 'queued'")
                .fetch_one(&mut *self.read().await?)
                .await?
                .try_get::<Option<i64>, _>(0)?
                .map(Timestamp),
        )
    }
}

#[async_trait]
impl<D: Db> ChannelStore for D {
    #[instrument(skip_all, fields(batch = batch.len()))]
    async fn ingest_channel(
        &self,
        batch: &[Stamped],
        now: Timestamp,
    ) -> Result<Vec<Result<ChannelOutcome, IngestError>>> {
        retried(move || ingest_channel_batch(self, batch, now)).await
    }

    #[instrument(skip_all)]
    async fn inbox_by_account(&self, channel: ChannelKind, account: &str) -> Result<Option<Inbox>> {
        match channel {
            ChannelKind::Messenger => inbox_by_setting(self, channel, "page_id", account).await,
            ChannelKind::Instagram => {
                inbox_by_setting(self, channel, "ig_account_id", account).await
            }
            _ => Ok(None),
        }
    }

    #[instrument(skip_all)]
    async fn message(&self, id: MessageId) -> Result<Option<Message>> {
        let mut conn = self.read().await?;
        message_by_id(&mut *conn, id).await
    }

    #[instrument(skip_all)]
    async fn message_meta(&self, ids: &[MessageId]) -> Result<HashMap<MessageId, MessageMeta>> {
        if ids.is_empty() {
            return Ok(HashMap::new());
        }
        let rows = q("SELECT * FROM message_meta WHERE message_id = ANY($1)")
            .bind(id_strings(ids))
            .fetch_all(&mut *self.read().await?)
            .await?;
        rows.iter()
            .map(|r| Ok((MessageId(uuid_of(r, "message_id")?), meta_row(r)?)))
            .collect()
    }

    #[instrument(skip_all)]
    async fn messaging_id(&self, contact: ContactId, inbox: InboxId) -> Result<Option<String>> {
        q("SELECT external_id FROM contact_identities WHERE contact_id = $1 AND inbox_id = $2 AND external_id NOT LIKE 'commenter:%' ORDER BY created_at DESC LIMIT 1")
            .bind(contact.to_string())
            .bind(inbox.to_string())
            .read_opt(self, first::<String, _>)
            .await
    }

    #[instrument(skip_all)]
    async fn private_reply_of(
        &self,
        inbox: InboxId,
        comment_id: &str,
    ) -> Result<Option<MessageId>> {
        q("SELECT message_id FROM comment_private_replies WHERE inbox_id = $1 AND comment_id = $2")
            .bind(inbox.to_string())
            .bind(comment_id)
            .read_opt(self, |r| uuid_of(r, "message_id").map(MessageId))
            .await
    }

    #[instrument(skip_all)]
    async fn contact_profile(&self, contact: ContactId) -> Result<Option<ContactProfile>> {
        q("SELECT name, name_source, avatar_url, avatar_file, avatar_type, avatar_key, profile_synced_at FROM contacts WHERE id = $1")
            .bind(contact.to_string())
            .read_opt(self, contact_profile_row)
            .await
    }

    #[instrument(skip_all)]
    async fn set_contact_profile(&self, contact: ContactId, w: &ProfileWrite) -> Result<()> {
        let (picture, url, key, file, content_type) = match &w.avatar {
            None => (0_i64, None, None, None, None),
            Some(AvatarWrite::Copied {
                file,
                content_type,
                key,
                url,
            }) => (
                1,
                url.as_deref(),
                Some(key.as_str()),
                Some(file.as_str()),
                Some(content_type.as_str()),
            ),
            Some(AvatarWrite::Linked { url, key }) => {
                (1, Some(url.as_str()), Some(key.as_str()), None, None)
            }
        };
        q("UPDATE contacts SET name = COALESCE($1, name), \
             name_source = CASE WHEN $1 IS NULL THEN name_source ELSE 'channel' END, \
             avatar_url = CASE WHEN $2 = 1 THEN $3 ELSE avatar_url END, \
             avatar_key = CASE WHEN $2 = 1 THEN $4 ELSE avatar_key END, \
             avatar_file = CASE WHEN $2 = 1 THEN $5 ELSE avatar_file END, \
             avatar_type = CASE WHEN $2 = 1 THEN $6 ELSE avatar_type END, \
             profile_synced_at = $7, updated_at = $7 WHERE id = $8")
        .bind(w.name.as_deref())
        .bind(picture)
        .bind(url)
        .bind(key)
        .bind(file)
        .bind(content_type)
        .bind(w.synced_at.millis())
        .bind(contact.to_string())
        .write(self)
        .await?;
        Ok(())
    }

    #[instrument(skip_all)]
    async fn set_contact_name(
        &self,
        contact: ContactId,
        name: Option<&str>,
        source: Option<contact::NameSource>,
        now: Timestamp,
    ) -> Result<()> {
        let done =
            q("UPDATE contacts SET name = $1, name_source = $2, updated_at = $3 WHERE id = $4")
                .bind(name)
                .bind(source.map(contact::NameSource::as_str))
                .bind(now.millis())
                .bind(contact.to_string())
                .write(self)
                .await?;
        done.or(StoreError::NotFound)
    }

    #[instrument(skip_all)]
    async fn set_identity_username(
        &self,
        inbox: InboxId,
        external_id: &str,
        username: Option<&str>,
    ) -> Result<()> {
        q("UPDATE contact_identities SET username = $1 WHERE inbox_id = $2 AND external_id = $3")
            .bind(username)
            .bind(inbox.to_string())
            .bind(external_id)
            .write(self)
            .await?;
        Ok(())
    }

    #[instrument(skip_all)]
    async fn identity_username(&self, inbox: InboxId, external_id: &str) -> Result<Option<String>> {
        Ok(
            q("SELECT username FROM contact_identities WHERE inbox_id = $1 AND external_id = $2")
                .bind(inbox.to_string())
                .bind(external_id)
                .read_opt(self, first::<Option<String>, _>)
                .await?
                .flatten(),
        )
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
        let mut tx = self.begin().await?;
        let mut events = Vec::new();
        let m = merge_in(&mut *tx, from, into, reason, actor, now, &mut events).await?;
        commit(self, tx, &mut events).await?;
        Ok(m)
    }

    #[instrument(skip_all)]
    async fn undo_merge(&self, id: Uuid, now: Timestamp) -> Result<ContactMerge> {
        let mut tx = self.begin().await?;
        let mut events = Vec::new();
        let m = undo_in(&mut *tx, id, now, &mut events).await?;
        commit(self, tx, &mut events).await?;
        Ok(m)
    }

    #[instrument(skip_all)]
    async fn merges_of(&self, contact: ContactId) -> Result<Vec<ContactMerge>> {
        q("SELECT * FROM contact_merges WHERE into_contact_id = $1 UNION ALL SELECT * FROM contact_merges WHERE from_contact_id = $2 ORDER BY created_at")
            .bind(contact.to_string())
            .bind(contact.to_string())
            .read_all(self, merge_row)
            .await
    }

    #[instrument(skip_all)]
    async fn merge_record(&self, id: Uuid) -> Result<Option<ContactMerge>> {
        q("SELECT * FROM contact_merges WHERE id = $1")
            .bind(id.to_string())
            .read_opt(self, merge_row)
            .await
    }
}

async fn ingest_channel_batch<D: Db>(
    d: &D,
    batch: &[Stamped],
    now: Timestamp,
) -> Result<Vec<Result<ChannelOutcome, IngestError>>> {
    let mut tx = d.begin().await?;
    // The customers whose identity, contact or conversation this batch may create.
    let keys = batch
        .iter()
        .filter_map(|item| match &item.event {
            InboundEvent::Customer(m) => Some(sender_key(item.inbox_id, &m.from)),
            InboundEvent::Echo(e) => Some(identity_key(item.inbox_id, &e.customer)),
            _ => None,
        })
        .collect();
    tx.lock_keys(keys).await?;
    let mut events = Vec::with_capacity(batch.len() * 2);
    let mut out = Vec::with_capacity(batch.len());
    let mut rest = batch;
    while let Some(first) = rest.first() {
        // A run of plain customer messages (nearly every webhook) is stored with a fixed
        // number of statements; anything else, item by item, in order.
        let run: Vec<(Inbound, &Said)> = rest
            .iter()
            .map_while(|i| Some((i.inbound()?, i.plain_customer()?)))
            .collect();
        if run.is_empty() {
            out.push(ingest_item(&mut *tx, first, now, &mut events).await?);
            rest = &rest[1..];
        } else {
            rest = &rest[run.len()..];
            let inbounds: Vec<&Inbound> = run.iter().map(|(i, _)| i).collect();
            let metas: Vec<&serde_json::Value> = run.iter().map(|(_, m)| &m.meta).collect();
            let aliases: Vec<Option<&str>> = run.iter().map(|(_, m)| m.alias.as_deref()).collect();
            out.extend(
                crate::ingest::ingest_batch(
                    &mut *tx,
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
    commit(d, tx, &mut events).await?;
    Ok(out)
}

async fn outbox_sent_tx<D: Db>(
    d: &D,
    id: MessageId,
    provider_message_id: &str,
    recipient_id: Option<&str>,
    now: Timestamp,
) -> Result<Vec<Event>> {
    let mut tx = d.begin().await?;
    let row = q("SELECT * FROM outbox WHERE message_id = $1")
        .bind(id.to_string())
        .opt(&mut *tx, outbox_row)
        .await?
        .ok_or(StoreError::NotFound)?;
    // The echo of this very send may be ingested at the same moment, holding the customer's
    // key and then the outbox row: take the key first too, so both go in one order.
    if let Some(rid) = recipient_id.filter(|r| !r.is_empty()) {
        tx.lock_keys(vec![identity_key(row.inbox_id, rid)]).await?;
    }
    q("UPDATE outbox SET state = 'sent', provider_message_id = $1, lease_until = NULL, last_error = NULL, updated_at = $2 WHERE message_id = $3")
            .bind(provider_message_id)
            .bind(now.millis())
            .bind(id.to_string())
            .execute(&mut *tx)
            .await?;
    set_provider_id(&mut *tx, id, provider_message_id).await?;
    let mut events = Vec::new();
    if let Some(rid) = recipient_id.filter(|r| !r.is_empty()) {
        link_messaging_id(
            &mut *tx,
            row.inbox_id,
            rid,
            row.conversation_id,
            now,
            &mut events,
        )
        .await?;
    }
    status_event(&mut *tx, id, now, &mut events).await?;
    commit(d, tx, &mut events).await?;
    Ok(events)
}

/// An `InboundEvent::Status` for one inbox, borrowed.
pub(crate) struct StatusItem<'a> {
    pub inbox: InboxId,
    pub provider_message_id: &'a str,
    pub ours: Option<MessageId>,
    pub status: DeliveryStatus,
    pub failure: Option<&'a (String, serde_json::Value)>,
}

/// Our message, its row locked until commit (two statuses of one message on two nodes apply one
/// after the other, so a status never moves backwards).
pub(crate) async fn lock_message<C: Conn>(conn: &mut C, id: MessageId) -> Result<Option<Message>> {
    q("SELECT * FROM messages WHERE id = $1 FOR UPDATE")
        .bind(id.to_string())
        .opt(conn, message_row)
        .await
}

/// Applies a provider status to our message inside the ingest transaction.
pub(crate) async fn apply_status<C: Conn>(
    conn: &mut C,
    s: StatusItem<'_>,
    now: Timestamp,
    drafts: &mut Vec<EventDraft>,
) -> Result<ChannelOutcome> {
    let mine = ours_or_provider(conn, s.ours, s.inbox, s.provider_message_id).await?;
    let Some(m) = mine.filter(|m| m.direction == Direction::Outbound) else {
        return Ok(ChannelOutcome::Nothing);
    };
    // A status means the provider accepted the message: the outbox must not send it again, even
    // if its HTTP answer was lost. (The outbox row before the message row, like `outbox_sent`.)
    q("UPDATE outbox SET state = 'sent', provider_message_id = COALESCE(provider_message_id, $1), \
       lease_until = NULL, updated_at = $2 WHERE message_id = $3 AND state IN ('queued', 'sending')")
    .bind(s.provider_message_id)
    .bind(now.millis())
    .bind(m.id.to_string())
    .execute(&mut *conn)
    .await?;
    let Some(m) = lock_message(conn, m.id).await? else {
        return Ok(ChannelOutcome::Nothing);
    };
    let mut changed = false;
    if m.provider_message_id.is_none() || m.delivery_status == DeliveryStatus::Queued {
        set_provider_id(conn, m.id, s.provider_message_id).await?;
        changed = true;
    }
    let Some(mut m) = message_by_id(conn, m.id).await? else {
        return Ok(ChannelOutcome::Nothing);
    };
    if ingest::status_moves(m.delivery_status, s.status) {
        let (reason, detail) = match (s.status, s.failure) {
            (DeliveryStatus::Failed, Some(f)) => (Some(f.0.clone()), Some(f.1.clone())),
            (DeliveryStatus::Failed, None) => {
                (Some("provider_error".into()), Some(serde_json::Value::Null))
            }
            _ => (None, None),
        };
        q("UPDATE messages SET delivery_status = $1, failure_reason = COALESCE($2, failure_reason) WHERE id = $3")
            .bind(s.status.as_str())
            .bind(reason.clone())
            .bind(m.id.to_string())
            .execute(&mut *conn)
            .await?;
        m.delivery_status = s.status;
        if let Some(detail) = detail {
            m.failure_reason = reason;
            edit_meta(conn, &m, now, drafts, MetaEdit::ProviderError(detail)).await?;
            return Ok(ChannelOutcome::Updated(1));
        }
        changed = true;
    }
    if changed {
        let meta = load_meta(conn, m.id).await?;
        drafts.push(updated_event(&m, meta.as_ref()));
        return Ok(ChannelOutcome::Updated(1));
    }
    Ok(ChannelOutcome::Nothing)
}
