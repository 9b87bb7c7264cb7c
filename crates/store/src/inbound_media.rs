//! Files customers send: their attachment rows (written with the message, in the ingest
//! transaction) and the download worker's queue over them. Which files and when to retry are
//! `core::inbound_media`'s decisions; these are the small SQL operations around them.

use crate::Result;
use crate::meta::{flush, lock_message, workspace_of};
use crate::rows::{attachment_row, opt_ts, uuid_of};
use crate::sql::{Arg, Conn, Db, RowRead, commit, q};
use async_trait::async_trait;
use serde::Serialize;
use switchboard_core::event::{EventDraft, EventKind, message_json};
use switchboard_core::inbound_media::{FileState, files_of};
use switchboard_core::*;
use tracing::instrument;
use uuid::Uuid;

use crate::Attachment;

/// A customer's file: where it comes from and how its download goes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct InboundFile {
    /// `pending`, `ready`, `failed` or `remote` (`core::inbound_media::FileState`).
    pub state: String,
    /// `image`, `sticker`, `video`, `audio` or `file`.
    pub kind: String,
    /// `url`, `whatsapp_media` or `telegram_file`.
    pub source_kind: String,
    /// The URL or the provider's id (a remote file's URL is shown; ids never are).
    pub source: String,
    pub inbox_id: InboxId,
    pub attempts: i64,
    pub next_attempt_at: Option<Timestamp>,
    pub last_error: Option<String>,
    /// Our thumbnail of it, in the media store.
    pub thumbnail_key: Option<String>,
    /// A video's own thumbnail at the provider, as `<source_kind>:<source>`.
    pub thumbnail_source: Option<String>,
}

/// How a download attempt ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileOutcome {
    /// Our copy is stored: its type (from its bytes), size and thumbnail.
    Ready {
        content_type: String,
        size_bytes: i64,
        thumbnail_key: Option<String>,
    },
    /// Try again at this time.
    Retry { at: Timestamp, error: String },
    /// Given up: an agent may retry.
    Failed { error: String },
}

pub(crate) fn inbound_row(r: &impl RowRead) -> Result<Option<InboundFile>> {
    let Some(source_kind) = r.try_get::<Option<String>, _>("source_kind")? else {
        return Ok(None);
    };
    Ok(Some(InboundFile {
        state: r.try_get("state")?,
        kind: r
            .try_get::<Option<String>, _>("media_kind")?
            .unwrap_or_else(|| "file".into()),
        source_kind,
        source: r
            .try_get::<Option<String>, _>("source")?
            .unwrap_or_default(),
        inbox_id: InboxId(uuid_of(r, "inbox_id")?),
        attempts: r.try_get("attempts")?,
        next_attempt_at: opt_ts(r, "next_attempt_at")?,
        last_error: r.try_get("last_error")?,
        thumbnail_key: r.try_get("thumbnail_key")?,
        thumbnail_source: r.try_get("thumbnail_source")?,
    }))
}

/// The attachment rows of new inbound messages' files (`core::inbound_media::files_of` their
/// extras), written by ingest with the messages: one multi-row insert per batch.
pub(crate) async fn write_inbound_files<C: Conn>(
    conn: &mut C,
    messages: &[Message],
    metas: &[(MessageId, event::MessageMeta)],
    now: Timestamp,
) -> Result<()> {
    let mut rows: Vec<Vec<Arg>> = Vec::new();
    for (id, meta) in metas {
        let files = files_of(&meta.meta);
        if files.is_empty() {
            continue;
        }
        let Some(m) = messages.iter().find(|m| m.id == *id) else {
            continue;
        };
        for f in files {
            let due = (f.state == FileState::Pending).then_some(now.millis());
            rows.push(vec![
                Uuid::now_v7().to_string().into(),
                m.conversation_id.to_string().into(),
                m.id.to_string().into(),
                f.filename.unwrap_or_else(|| f.kind.to_owned()).into(),
                switchboard_core::media::OPAQUE.into(),
                0_i64.into(),
                now.millis().into(),
                f.state.as_str().into(),
                f.kind.into(),
                f.source.kind().into(),
                f.source.value().into(),
                m.inbox_id.to_string().into(),
                i64::from(f.position).into(),
                due.into(),
                f.thumbnail
                    .map(|t| format!("{}:{}", t.kind(), t.value()))
                    .into(),
            ]);
        }
    }
    conn.insert_rows(
        "INSERT INTO attachments (id, conversation_id, message_id, filename, content_type, size_bytes, \
           created_at, state, media_kind, source_kind, source, inbox_id, position, next_attempt_at, \
           thumbnail_source)",
        "ON CONFLICT DO NOTHING",
        rows,
    )
    .await?;
    Ok(())
}

#[async_trait]
pub trait InboundMediaStore {
    /// Leases up to `limit` files due at `now` for one download attempt each (attempts + 1;
    /// another worker sees them again only after `lease_until`, should this one die).
    async fn claim_due_files(
        &self,
        now: Timestamp,
        lease_until: Timestamp,
        limit: u32,
    ) -> Result<Vec<Attachment>>;
    /// Records how an attempt ended (only for a file still pending) and tells the thread.
    async fn file_fetched(&self, id: Uuid, outcome: &FileOutcome, now: Timestamp) -> Result<bool>;
    /// A failed file is tried again now (an agent's retry). False if it was not failed.
    async fn retry_file(&self, id: Uuid, now: Timestamp) -> Result<bool>;
    /// When the next pending file is due.
    async fn next_file_due(&self) -> Result<Option<Timestamp>>;
}

/// Tells the open thread that a message's files changed (clients fetch the message again).
async fn files_changed<D: Db>(
    d: &D,
    mut tx: D::Tx,
    message: MessageId,
    now: Timestamp,
) -> Result<()> {
    let Some(m) = lock_message(&mut *tx, message).await? else {
        return commit(d, tx, &mut []).await;
    };
    let ws = workspace_of(&mut *tx, m.conversation_id).await?;
    let draft = EventDraft {
        inbox_id: Some(m.inbox_id),
        conversation_id: Some(m.conversation_id),
        kind: EventKind::MessageUpdated,
        payload: serde_json::json!({ "message": message_json(&m), "attachments_changed": true }),
    };
    let mut events = Vec::new();
    flush(ws, vec![draft], now, &mut events);
    commit(d, tx, &mut events).await
}

#[async_trait]
impl<D: Db> InboundMediaStore for D {
    #[instrument(skip_all)]
    async fn claim_due_files(
        &self,
        now: Timestamp,
        lease_until: Timestamp,
        limit: u32,
    ) -> Result<Vec<Attachment>> {
        q(
            "UPDATE attachments SET attempts = attempts + 1, next_attempt_at = $1 WHERE id IN ( \
             SELECT id FROM attachments WHERE state = 'pending' AND next_attempt_at <= $2 \
             ORDER BY next_attempt_at, id LIMIT $3 FOR UPDATE SKIP LOCKED) \
           AND state = 'pending' AND next_attempt_at <= $2 RETURNING *",
        )
        .bind(lease_until.millis())
        .bind(now.millis())
        .bind(i64::from(limit))
        .write_all(self, attachment_row)
        .await
    }

    #[instrument(skip_all)]
    async fn file_fetched(&self, id: Uuid, outcome: &FileOutcome, now: Timestamp) -> Result<bool> {
        let mut tx = self.begin().await?;
        let query = match outcome {
            FileOutcome::Ready {
                content_type,
                size_bytes,
                thumbnail_key,
            } => q(
                "UPDATE attachments SET state = 'ready', content_type = $2, size_bytes = $3, \
                   thumbnail_key = $4, next_attempt_at = NULL, last_error = NULL \
                 WHERE id = $1 AND state = 'pending' RETURNING message_id",
            )
            .bind(id.to_string())
            .bind(content_type.as_str())
            .bind(*size_bytes)
            .bind(thumbnail_key.as_deref()),
            FileOutcome::Retry { at, error } => q(
                "UPDATE attachments SET next_attempt_at = $2, last_error = $3 \
                 WHERE id = $1 AND state = 'pending' RETURNING message_id",
            )
            .bind(id.to_string())
            .bind(at.millis())
            .bind(error.as_str()),
            FileOutcome::Failed { error } => q(
                "UPDATE attachments SET state = 'failed', next_attempt_at = NULL, last_error = $2 \
                 WHERE id = $1 AND state = 'pending' RETURNING message_id",
            )
            .bind(id.to_string())
            .bind(error.as_str()),
        };
        let Some(message) = query
            .opt(&mut *tx, |r| Ok(MessageId(uuid_of(r, "message_id")?)))
            .await?
        else {
            commit(self, tx, &mut []).await?;
            return Ok(false);
        };
        // A retry is not news for the thread; an end (ready, failed) is.
        if matches!(outcome, FileOutcome::Retry { .. }) {
            commit(self, tx, &mut []).await?;
        } else {
            files_changed(self, tx, message, now).await?;
        }
        Ok(true)
    }

    #[instrument(skip_all)]
    async fn retry_file(&self, id: Uuid, now: Timestamp) -> Result<bool> {
        let mut tx = self.begin().await?;
        let Some(message) = q("UPDATE attachments SET state = 'pending', attempts = 0, \
               next_attempt_at = $2, last_error = NULL WHERE id = $1 AND state = 'failed' \
             RETURNING message_id")
        .bind(id.to_string())
        .bind(now.millis())
        .opt(&mut *tx, |r| Ok(MessageId(uuid_of(r, "message_id")?)))
        .await?
        else {
            commit(self, tx, &mut []).await?;
            return Ok(false);
        };
        files_changed(self, tx, message, now).await?;
        Ok(true)
    }

    #[instrument(skip_all)]
    async fn next_file_due(&self) -> Result<Option<Timestamp>> {
        let t = q("SELECT MIN(next_attempt_at) AS t FROM attachments WHERE state = 'pending'")
            .read_opt(self, |r| opt_ts(r, "t"))
            .await?;
        Ok(t.flatten())
    }
}
