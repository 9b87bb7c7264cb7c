//! The writes every part of the store shares: conversations (compare-and-set on the version,
//! then the timers and pool bookkeeping), messages, contacts and identities, tags, the action log,
//! and the advisory-lock keys of customers.

use crate::rows::*;
use crate::sql::{Arg, Conn, Db, ids_json, json_text, q};
use crate::*;
use switchboard_core::conversation::Action;
use switchboard_core::event::{Event, EventDraft};
use switchboard_core::ingest::batch::{ActionRow, preview};
use uuid::Uuid;

/// Forgets the inbox-by-account answers a store remembers (an inbox was written).
pub(crate) fn forget_accounts(d: &impl Db) {
    if let Some(c) = d.accounts() {
        c.forget();
    }
}

/// The advisory-lock key of the customer an inbound message comes from (see `Conn::lock_keys`).
pub(crate) fn sender_key(inbox: InboxId, sender: &InboundSender) -> String {
    match sender {
        InboundSender::Contact(c) => format!("sender:{inbox}:contact:{c}"),
        InboundSender::Identity { external_id, .. } => identity_key(inbox, external_id),
    }
}

/// The advisory-lock key of a customer's identity on an inbox.
pub(crate) fn identity_key(inbox: InboxId, external_id: &str) -> String {
    format!("sender:{inbox}:id:{external_id}")
}

pub(crate) const CONVERSATION_COLUMNS: &str = "c.id, c.workspace_id, c.inbox_id, c.contact_id, c.status, c.assignee_id, \
     c.last_assignee_id, c.handed_over_by, c.participants, c.tags, c.last_customer_message_at, c.last_agent_reply_at, \
     c.last_activity_at, c.created_at, c.version, c.last_message_preview, c.unread_count";

/// The reply deadline of the conversation `c` (one indexed lookup per row).
pub(crate) const REPLY_DUE_AT: &str = "(SELECT t.due_at FROM timers t WHERE t.conversation_id = c.id AND t.kind = 'reply_sla') AS reply_due_at";

pub(crate) async fn load_conversation<C: Conn>(
    conn: &mut C,
    id: ConversationId,
) -> Result<Option<Conversation>> {
    q("SELECT * FROM conversations c WHERE id = $1")
        .bind(id.to_string())
        .opt(conn, conversation_row)
        .await
}

/// Like [`load_conversation`], holding the row until commit: what is read is what is replaced.
pub(crate) async fn lock_conversation<C: Conn>(
    conn: &mut C,
    id: ConversationId,
) -> Result<Option<Conversation>> {
    q("SELECT * FROM conversations c WHERE id = $1 FOR UPDATE")
        .bind(id.to_string())
        .opt(conn, conversation_row)
        .await
}

/// A conversation's columns, in the order of [`CONVERSATION_ROW`].
pub(crate) fn conversation_args(
    c: &Conversation,
    preview: Option<String>,
    unread: i64,
) -> Vec<Arg> {
    vec![
        c.id.to_string().into(),
        c.workspace_id.to_string().into(),
        c.inbox_id.to_string().into(),
        c.contact_id.to_string().into(),
        c.status.as_str().into(),
        c.assignee_id.map(|a| a.to_string()).into(),
        c.last_assignee_id.map(|a| a.to_string()).into(),
        c.handed_over_by.map(|a| a.to_string()).into(),
        ids_json(&c.participants).into(),
        json_text(&c.tags).into(),
        c.last_customer_message_at.map(Timestamp::millis).into(),
        c.last_agent_reply_at.map(Timestamp::millis).into(),
        c.last_activity_at.millis().into(),
        c.created_at.millis().into(),
        c.version.into(),
        preview.into(),
        unread.into(),
    ]
}

pub(crate) const CONVERSATION_ROW: &str = "id, workspace_id, inbox_id, contact_id, status, assignee_id, last_assignee_id, \
     handed_over_by, participants, tags, last_customer_message_at, last_agent_reply_at, last_activity_at, created_at, version, \
     last_message_preview, unread_count";

pub(crate) async fn insert_conversation<C: Conn>(conn: &mut C, c: &Conversation) -> Result<()> {
    let head = format!("INSERT INTO conversations ({CONVERSATION_ROW})");
    conn.insert_rows(&head, "", vec![conversation_args(c, None, 0)])
        .await?;
    Ok(())
}

/// Compare-and-set: writes `c` only if the stored version is still `expected`.
pub(crate) async fn update_conversation<C: Conn>(
    conn: &mut C,
    c: &Conversation,
    expected: i64,
) -> Result<()> {
    let done = q(
        "UPDATE conversations SET status = $1, assignee_id = $2, last_assignee_id = $3, participants = $4, tags = $5, \
         last_customer_message_at = $6, last_agent_reply_at = $7, last_activity_at = $8, version = $9, handed_over_by = $12 \
         WHERE id = $10 AND version = $11",
    )
    .bind(c.status.as_str())
    .bind(c.assignee_id.map(|a| a.to_string()))
    .bind(c.last_assignee_id.map(|a| a.to_string()))
    .bind(ids_json(&c.participants))
    .bind(json_text(&c.tags))
    .bind(c.last_customer_message_at.map(Timestamp::millis))
    .bind(c.last_agent_reply_at.map(Timestamp::millis))
    .bind(c.last_activity_at.millis())
    .bind(c.version)
    .bind(c.id.to_string())
    .bind(expected)
    .bind(c.handed_over_by.map(|a| a.to_string()))
    .execute(conn)
    .await?;
    done.or(StoreError::VersionConflict)
}

/// Keeps the tag index (used by the tag filter) in step with the conversation's tag list,
/// creating tags that do not exist yet.
pub(crate) async fn sync_tags<C: Conn>(
    conn: &mut C,
    c: &Conversation,
    now: Timestamp,
) -> Result<()> {
    q("DELETE FROM conversation_tags WHERE conversation_id = $1")
        .bind(c.id.to_string())
        .execute(&mut *conn)
        .await?;
    for name in &c.tags {
        q("INSERT INTO tags (id, workspace_id, name, created_at) VALUES ($1, $2, $3, $4) ON CONFLICT (workspace_id, name) DO NOTHING")
            .bind(Uuid::now_v7().to_string())
            .bind(c.workspace_id.to_string())
            .bind(name)
            .bind(now.millis())
            .execute(&mut *conn)
            .await?;
        q("INSERT INTO conversation_tags (tag_id, conversation_id) \
             SELECT id, $1 FROM tags WHERE workspace_id = $2 AND name = $3 ON CONFLICT DO NOTHING")
        .bind(c.id.to_string())
        .bind(c.workspace_id.to_string())
        .bind(name)
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

/// Whether the message was new (its provider id not stored yet).
pub(crate) async fn insert_message<C: Conn>(conn: &mut C, m: &Message) -> Result<bool> {
    Ok(write_messages(conn, std::slice::from_ref(m)).await? == 1)
}

pub(crate) async fn insert_actions<C: Conn>(
    conn: &mut C,
    conv: ConversationId,
    actions: &[Action],
    now: Timestamp,
) -> Result<()> {
    write_actions(conn, &ActionRow::of(conv, actions, now, &mut Uuid::now_v7)).await
}

/// Messages, with one multi-row statement; how many were new.
pub(crate) async fn write_messages<C: Conn>(conn: &mut C, messages: &[Message]) -> Result<u64> {
    conn.insert_rows(
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
    .await
}

/// Action-log rows, with one multi-row statement.
pub(crate) async fn write_actions<C: Conn>(conn: &mut C, actions: &[ActionRow]) -> Result<()> {
    conn.insert_rows(
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

/// A transaction's events from drafts, unnumbered: [`crate::sql::commit`] numbers and writes
/// them just before commit.
pub(crate) fn unnumbered(ws: WorkspaceId, drafts: Vec<EventDraft>, now: Timestamp) -> Vec<Event> {
    drafts
        .into_iter()
        .map(|d| switchboard_core::ingest::batch::unnumbered(ws, d, now))
        .collect()
}

/// Contacts, with one multi-row statement.
pub(crate) async fn write_contacts<C: Conn>(conn: &mut C, contacts: &[Contact]) -> Result<()> {
    conn.insert_rows(
        "INSERT INTO contacts (id, workspace_id, name, phone, email, notes, created_at, updated_at)",
        "",
        contacts
            .iter()
            .map(|c| {
                vec![
                    c.id.to_string().into(),
                    c.workspace_id.to_string().into(),
                    c.name.clone().into(),
                    c.phone.clone().into(),
                    c.email.clone().into(),
                    c.notes.clone().into(),
                    c.created_at.millis().into(),
                    c.updated_at.millis().into(),
                ]
            })
            .collect(),
    )
    .await?;
    Ok(())
}

/// Identities (inbox, external id, contact, created), with one multi-row statement; `tail`:
/// e.g. `ON CONFLICT DO NOTHING`.
pub(crate) async fn write_identities<C: Conn>(
    conn: &mut C,
    identities: impl Iterator<Item = (InboxId, &str, ContactId, Timestamp)>,
    tail: &str,
) -> Result<()> {
    conn.insert_rows(
        "INSERT INTO contact_identities (inbox_id, external_id, contact_id, created_at)",
        tail,
        identities
            .map(|(inbox, external, contact, at)| {
                vec![
                    inbox.to_string().into(),
                    external.into(),
                    contact.to_string().into(),
                    at.millis().into(),
                ]
            })
            .collect(),
    )
    .await?;
    Ok(())
}

/// A new contact known by one identity.
pub(crate) async fn insert_contact_with<C: Conn>(
    conn: &mut C,
    c: &Contact,
    inbox: InboxId,
    external_id: &str,
) -> Result<()> {
    write_contacts(conn, std::slice::from_ref(c)).await?;
    let identity = (inbox, external_id, c.id, c.created_at);
    write_identities(conn, std::iter::once(identity), "").await
}

pub(crate) async fn insert_identity<C: Conn>(
    conn: &mut C,
    inbox: InboxId,
    external_id: &str,
    contact: ContactId,
    now: Timestamp,
) -> Result<()> {
    write_identities(
        conn,
        std::iter::once((inbox, external_id, contact, now)),
        "",
    )
    .await
}

/// Writes one decided change inside the caller's transaction: compare-and-set on the conversation,
/// its timers and pool entry (routing), the message, the action log and the events.
pub(crate) async fn write_change<C: Conn>(conn: &mut C, change: Change) -> Result<Vec<Event>> {
    if let Some(c) = &change.conversation {
        let before = lock_conversation(conn, c.id).await?;
        update_conversation(conn, c, change.expected_version).await?;
        crate::pool::after_write(conn, before.as_ref(), c, change.now).await?;
        let retagged = change
            .actions
            .iter()
            .any(|a| matches!(a.kind, ActionKind::Tagged | ActionKind::Untagged));
        if retagged {
            sync_tags(conn, c, change.now).await?;
        }
    } else {
        // Message-only change: still refuse if the conversation moved on (e.g. it was resolved).
        let current = lock_conversation(conn, change.conversation_id)
            .await?
            .ok_or(StoreError::NotFound)?;
        if current.version != change.expected_version {
            return Err(StoreError::VersionConflict);
        }
    }
    if let Some(m) = &change.message {
        insert_message(conn, m).await?;
        if !m.is_private() {
            let unread_reset = m.direction == Direction::Outbound;
            q("UPDATE conversations SET last_message_preview = $1, unread_count = CASE WHEN $2 THEN 0 ELSE unread_count END WHERE id = $3")
                .bind(preview(&m.text))
                .bind(unread_reset)
                .bind(m.conversation_id.to_string())
                .execute(&mut *conn)
                .await?;
        }
    }
    insert_actions(conn, change.conversation_id, &change.actions, change.now).await?;
    Ok(unnumbered(change.workspace_id, change.events, change.now))
}
