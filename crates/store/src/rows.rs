//! Rows into domain values, once for both backends (through [`RowRead`]).

use crate::sql::RowRead;
use crate::*;
use switchboard_core::billing::{Category, Charge, ChargeKind, FreeReason, PricingModel};
use switchboard_core::event::{Event, EventKind};
use switchboard_core::timers::{Timer, TimerKind};
use uuid::Uuid;

pub(crate) fn corrupt(what: &str) -> StoreError {
    StoreError::Corrupt(what.to_owned())
}

pub(crate) fn uuid_of(row: &impl RowRead, col: &str) -> Result<Uuid> {
    let s: String = row.try_get(col)?;
    Uuid::parse_str(&s).map_err(|_| corrupt(col))
}

pub(crate) fn opt_uuid_of(row: &impl RowRead, col: &str) -> Result<Option<Uuid>> {
    let s: Option<String> = row.try_get(col)?;
    s.map(|s| Uuid::parse_str(&s).map_err(|_| corrupt(col)))
        .transpose()
}

pub(crate) fn ts(row: &impl RowRead, col: &str) -> Result<Timestamp> {
    Ok(Timestamp(row.try_get::<i64, _>(col)?))
}

pub(crate) fn opt_ts(row: &impl RowRead, col: &str) -> Result<Option<Timestamp>> {
    Ok(row.try_get::<Option<i64>, _>(col)?.map(Timestamp))
}

pub(crate) fn json_of<T: serde::de::DeserializeOwned>(row: &impl RowRead, col: &str) -> Result<T> {
    let s: String = row.try_get(col)?;
    serde_json::from_str(&s).map_err(|_| corrupt(col))
}

pub(crate) fn enum_of<T>(row: &impl RowRead, col: &str, parse: fn(&str) -> Option<T>) -> Result<T> {
    let s: String = row.try_get(col)?;
    parse(&s).ok_or_else(|| corrupt(col))
}

pub(crate) fn agent_row(r: &impl RowRead) -> Result<Agent> {
    Ok(Agent {
        id: AgentId(uuid_of(r, "id")?),
        workspace_id: WorkspaceId(uuid_of(r, "workspace_id")?),
        email: r.try_get("email")?,
        name: r.try_get("name")?,
        role: enum_of(r, "role", Role::parse)?,
        capacity: r
            .try_get::<Option<i64>, _>("capacity")?
            .map(|c| c.clamp(0, i64::from(u32::MAX)) as u32),
        active: r.try_get::<i64, _>("active")? != 0,
        created_at: ts(r, "created_at")?,
    })
}

pub(crate) fn inbox_row(r: &impl RowRead) -> Result<Inbox> {
    Ok(Inbox {
        id: InboxId(uuid_of(r, "id")?),
        workspace_id: WorkspaceId(uuid_of(r, "workspace_id")?),
        name: r.try_get("name")?,
        channel: enum_of(r, "channel", ChannelKind::parse)?,
        settings: json_of(r, "settings")?,
        created_at: ts(r, "created_at")?,
    })
}

pub(crate) fn contact_row(r: &impl RowRead) -> Result<Contact> {
    Ok(Contact {
        id: ContactId(uuid_of(r, "id")?),
        workspace_id: WorkspaceId(uuid_of(r, "workspace_id")?),
        name: r.try_get("name")?,
        phone: r.try_get("phone")?,
        email: r.try_get("email")?,
        notes: r.try_get("notes")?,
        created_at: ts(r, "created_at")?,
        updated_at: ts(r, "updated_at")?,
    })
}

pub(crate) fn contact_profile_row(r: &impl RowRead) -> Result<crate::ContactProfile> {
    let source: Option<String> = r.try_get("name_source")?;
    Ok(crate::ContactProfile {
        name: r.try_get("name")?,
        name_source: source
            .as_deref()
            .and_then(switchboard_core::contact::NameSource::parse),
        avatar_url: r.try_get("avatar_url")?,
        avatar_file: r.try_get("avatar_file")?,
        avatar_type: r.try_get("avatar_type")?,
        avatar_key: r.try_get("avatar_key")?,
        synced_at: opt_ts(r, "profile_synced_at")?,
    })
}

pub(crate) fn conversation_row(r: &impl RowRead) -> Result<Conversation> {
    Ok(Conversation {
        id: ConversationId(uuid_of(r, "id")?),
        workspace_id: WorkspaceId(uuid_of(r, "workspace_id")?),
        inbox_id: InboxId(uuid_of(r, "inbox_id")?),
        contact_id: ContactId(uuid_of(r, "contact_id")?),
        status: enum_of(r, "status", ConversationStatus::parse)?,
        assignee_id: opt_uuid_of(r, "assignee_id")?.map(AgentId),
        last_assignee_id: opt_uuid_of(r, "last_assignee_id")?.map(AgentId),
        handed_over_by: opt_uuid_of(r, "handed_over_by")?.map(AgentId),
        participants: json_of(r, "participants")?,
        tags: json_of(r, "tags")?,
        last_customer_message_at: opt_ts(r, "last_customer_message_at")?,
        last_agent_reply_at: opt_ts(r, "last_agent_reply_at")?,
        last_activity_at: ts(r, "last_activity_at")?,
        created_at: ts(r, "created_at")?,
        version: r.try_get("version")?,
    })
}

pub(crate) fn summary_row(r: &impl RowRead) -> Result<ConversationSummary> {
    Ok(ConversationSummary {
        conversation: conversation_row(r)?,
        contact_name: r.try_get("contact_name")?,
        contact_avatar_url: {
            let file: Option<String> = r.try_get("contact_avatar_file")?;
            let url: Option<String> = r.try_get("contact_avatar_src")?;
            switchboard_core::contact::avatar_url(
                ContactId(uuid_of(r, "contact_id")?),
                file.as_deref(),
                url.as_deref(),
            )
        },
        channel: enum_of(r, "channel", ChannelKind::parse)?,
        inbox_name: r.try_get("inbox_name")?,
        last_message_preview: r.try_get("last_message_preview")?,
        unread_count: r.try_get("unread_count")?,
        reply_due_at: opt_ts(r, "reply_due_at")?,
    })
}

pub(crate) fn message_row(r: &impl RowRead) -> Result<Message> {
    Ok(Message {
        id: MessageId(uuid_of(r, "id")?),
        conversation_id: ConversationId(uuid_of(r, "conversation_id")?),
        inbox_id: InboxId(uuid_of(r, "inbox_id")?),
        direction: enum_of(r, "direction", Direction::parse)?,
        sender_kind: enum_of(r, "sender_kind", SenderKind::parse)?,
        sender_agent_id: opt_uuid_of(r, "sender_agent_id")?.map(AgentId),
        kind: enum_of(r, "kind", MessageKind::parse)?,
        text: r.try_get("body")?,
        provider_message_id: r.try_get("provider_message_id")?,
        delivery_status: enum_of(r, "delivery_status", DeliveryStatus::parse)?,
        failure_reason: r.try_get("failure_reason")?,
        created_at: ts(r, "created_at")?,
    })
}

pub(crate) fn event_row(r: &impl RowRead) -> Result<Event> {
    Ok(Event {
        seq: r.try_get("seq")?,
        workspace_id: WorkspaceId(uuid_of(r, "workspace_id")?),
        inbox_id: opt_uuid_of(r, "inbox_id")?.map(InboxId),
        conversation_id: opt_uuid_of(r, "conversation_id")?.map(ConversationId),
        kind: enum_of(r, "kind", EventKind::parse)?,
        payload: json_of(r, "payload")?,
        created_at: ts(r, "created_at")?,
    })
}

pub(crate) fn quick_reply_row(r: &impl RowRead) -> Result<QuickReply> {
    Ok(QuickReply {
        id: QuickReplyId(uuid_of(r, "id")?),
        workspace_id: WorkspaceId(uuid_of(r, "workspace_id")?),
        code: r.try_get("code")?,
        text: r.try_get("body")?,
        media: json_of(r, "media")?,
    })
}

pub(crate) fn session_row(r: &impl RowRead) -> Result<Session> {
    Ok(Session {
        token_hash: r.try_get("token_hash")?,
        agent_id: AgentId(uuid_of(r, "agent_id")?),
        csrf_token: r.try_get("csrf_token")?,
        created_at: ts(r, "created_at")?,
        expires_at: ts(r, "expires_at")?,
        revoked_at: opt_ts(r, "revoked_at")?,
    })
}

pub(crate) fn meta_row(r: &impl RowRead) -> Result<MessageMeta> {
    Ok(MessageMeta {
        meta: json_of(r, "meta")?,
        messaging_type: r.try_get("messaging_type")?,
        tag: r.try_get("tag")?,
    })
}

pub(crate) fn merge_row(r: &impl RowRead) -> Result<ContactMerge> {
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

pub(crate) fn outbox_row(r: &impl RowRead) -> Result<OutboxRow> {
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

pub(crate) fn timer_row(r: &impl RowRead) -> Result<Timer> {
    Ok(Timer {
        id: TimerId(uuid_of(r, "id")?),
        kind: enum_of(r, "kind", TimerKind::parse)?,
        conversation_id: ConversationId(uuid_of(r, "conversation_id")?),
        agent_id: opt_uuid_of(r, "agent_id")?.map(AgentId),
        due_at: ts(r, "due_at")?,
        generation: r.try_get("generation")?,
    })
}

pub(crate) fn template_row(r: &impl RowRead) -> Result<StoredTemplate> {
    Ok(StoredTemplate {
        name: r.try_get("name")?,
        language: r.try_get("language")?,
        template_id: r.try_get("template_id")?,
        category: r.try_get("category")?,
        status: r.try_get("status")?,
        components: json_of(r, "components")?,
        parameter_format: r.try_get("parameter_format")?,
        synced_at: ts(r, "synced_at")?,
    })
}

pub(crate) fn charge_row(r: &impl RowRead) -> Result<Charge> {
    Ok(Charge {
        at: ts(r, "at")?,
        model: enum_of(r, "model", PricingModel::parse)?,
        kind: enum_of(r, "kind", ChargeKind::parse)?,
        category: enum_of(r, "category", Category::parse)?,
        billable: r.try_get::<i64, _>("billable")? != 0,
        free_reason: r
            .try_get::<Option<String>, _>("free_reason")?
            .map(|s| FreeReason::parse(&s).ok_or_else(|| corrupt("free_reason")))
            .transpose()?,
        until: opt_ts(r, "until")?,
        market: r.try_get("market")?,
        cost_micros: r.try_get("cost_micros")?,
        unpriced: r.try_get::<i64, _>("unpriced")? != 0,
        entry_point: r.try_get::<i64, _>("entry_point")? != 0,
    })
}

pub(crate) fn attachment_row(r: &impl RowRead) -> Result<Attachment> {
    Ok(Attachment {
        id: uuid_of(r, "id")?,
        conversation_id: ConversationId(uuid_of(r, "conversation_id")?),
        message_id: MessageId(uuid_of(r, "message_id")?),
        filename: r.try_get("filename")?,
        content_type: r.try_get("content_type")?,
        size_bytes: r.try_get("size_bytes")?,
        created_at: ts(r, "created_at")?,
        inbound: crate::inbound_media::inbound_row(r)?,
    })
}

/// The first column.
pub(crate) fn first<T: crate::sql::Value, R: RowRead>(r: &R) -> Result<T> {
    Ok(r.try_get(0)?)
}

/// The secrets configured on a store, if any.
fn secret_box_of<D: crate::sql::Db>(d: &D) -> Option<std::sync::Arc<crate::secrets::SecretBox>> {
    d.secrets().read().ok().and_then(|s| s.clone())
}

/// An inbox as read from the database, its secrets opened.
pub(crate) fn opened<D: crate::sql::Db>(
    d: &D,
    mut inbox: switchboard_core::Inbox,
) -> crate::Result<switchboard_core::Inbox> {
    if let Some(b) = secret_box_of(d) {
        inbox.settings = b
            .open_settings(&inbox.settings)
            .map_err(|e| crate::StoreError::Corrupt(format!("inbox {}: {e}", inbox.id)))?;
    }
    Ok(inbox)
}

/// Whether stored settings should be sealed again (plain, or sealed with an older key).
pub(crate) fn needs_reseal<D: crate::sql::Db>(d: &D, stored: &serde_json::Value) -> bool {
    secret_box_of(d).is_some_and(|b| b.needs_reseal(stored))
}

/// Settings as they are written: secrets sealed when a key is configured.
pub(crate) fn sealed<D: crate::sql::Db>(d: &D, settings: &serde_json::Value) -> serde_json::Value {
    match secret_box_of(d) {
        Some(b) => b.seal_settings(settings),
        None => settings.clone(),
    }
}

/// The plain value of one stored setting (for compare-and-set on a secret).
pub(crate) fn open_value<D: crate::sql::Db>(d: &D, stored: &str) -> crate::Result<String> {
    match secret_box_of(d) {
        Some(b) => b
            .open(stored)
            .map_err(|e| crate::StoreError::Corrupt(e.to_string())),
        None => Ok(stored.to_owned()),
    }
}
