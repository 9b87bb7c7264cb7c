//! Attachments (files on messages) and workspace tags management.

use crate::Result;
use async_trait::async_trait;
use serde::Serialize;
use switchboard_core::*;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Attachment {
    pub id: uuid::Uuid,
    pub conversation_id: ConversationId,
    pub message_id: MessageId,
    pub filename: String,
    pub content_type: String,
    pub size_bytes: i64,
    pub created_at: Timestamp,
    /// A file a customer sent: where it comes from and how its download goes (`None`: a file we
    /// stored ourselves).
    pub inbound: Option<crate::inbound_media::InboundFile>,
}

#[async_trait]
pub trait MediaStore {
    /// Records an attachment; write it before the message that carries it.
    async fn create_attachment(&self, a: &Attachment) -> Result<()>;
    async fn attachment(&self, id: uuid::Uuid) -> Result<Option<Attachment>>;
    async fn attachments_for_messages(&self, ids: &[MessageId]) -> Result<Vec<Attachment>>;
    /// The conversation's files, newest first (the media gallery).
    async fn conversation_attachments(
        &self,
        conv: ConversationId,
        limit: u32,
    ) -> Result<Vec<Attachment>>;
    /// Creates a tag (or returns the existing one of that name).
    async fn create_tag(&self, ws: WorkspaceId, name: &str, now: Timestamp) -> Result<Tag>;
    /// Deletes a tag and removes it from every conversation. Returns false if it did not exist.
    async fn delete_tag(&self, ws: WorkspaceId, id: TagId) -> Result<bool>;
}

use crate::rows::{attachment_row, uuid_of};
use crate::sql::{Conn, Db, q};
use tracing::instrument;
use uuid::Uuid;

#[async_trait]
impl<D: Db> MediaStore for D {
    #[instrument(skip_all)]
    async fn create_attachment(&self, a: &Attachment) -> Result<()> {
        q("INSERT INTO attachments (id, conversation_id, message_id, filename, content_type, size_bytes, created_at) \
           VALUES ($1, $2, $3, $4, $5, $6, $7)")
        .bind(a.id.to_string())
        .bind(a.conversation_id.to_string())
        .bind(a.message_id.to_string())
        .bind(&a.filename)
        .bind(&a.content_type)
        .bind(a.size_bytes)
        .bind(a.created_at.millis())
        .write(self)
        .await?;
        Ok(())
    }

    #[instrument(skip_all)]
    async fn attachment(&self, id: Uuid) -> Result<Option<Attachment>> {
        q("SELECT * FROM attachments WHERE id = $1")
            .bind(id.to_string())
            .read_opt(self, attachment_row)
            .await
    }

    #[instrument(skip_all)]
    async fn attachments_for_messages(&self, ids: &[MessageId]) -> Result<Vec<Attachment>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        q("SELECT * FROM attachments WHERE message_id = ANY($1) ORDER BY created_at, id")
            .bind(crate::sql::id_strings(ids))
            .read_all(self, attachment_row)
            .await
    }

    #[instrument(skip_all)]
    async fn conversation_attachments(
        &self,
        conv: ConversationId,
        limit: u32,
    ) -> Result<Vec<Attachment>> {
        q(
            "SELECT a.* FROM attachments a JOIN messages m ON m.id = a.message_id \
           WHERE a.conversation_id = $1 ORDER BY a.created_at DESC, a.id DESC LIMIT $2",
        )
        .bind(conv.to_string())
        .bind(i64::from(limit.clamp(1, 500)))
        .read_all(self, attachment_row)
        .await
    }

    #[instrument(skip_all)]
    async fn create_tag(&self, ws: WorkspaceId, name: &str, now: Timestamp) -> Result<Tag> {
        let mut tx = self.begin().await?;
        q(
            "INSERT INTO tags (id, workspace_id, name, created_at) VALUES ($1, $2, $3, $4) \
           ON CONFLICT (workspace_id, name) DO NOTHING",
        )
        .bind(Uuid::now_v7().to_string())
        .bind(ws.to_string())
        .bind(name)
        .bind(now.millis())
        .execute(&mut *tx)
        .await?;
        let r = q("SELECT id, name FROM tags WHERE workspace_id = $1 AND name = $2")
            .bind(ws.to_string())
            .bind(name)
            .fetch_one(&mut *tx)
            .await?;
        let tag = Tag {
            id: TagId(uuid_of(&r, "id")?),
            name: crate::sql::RowRead::try_get(&r, "name")?,
        };
        crate::sql::commit(self, tx, &mut []).await?;
        Ok(tag)
    }

    #[instrument(skip_all)]
    async fn delete_tag(&self, ws: WorkspaceId, id: TagId) -> Result<bool> {
        let mut tx = self.begin().await?;
        let Some(r) = q("SELECT name FROM tags WHERE id = $1 AND workspace_id = $2")
            .bind(id.to_string())
            .bind(ws.to_string())
            .fetch_optional(&mut *tx)
            .await?
        else {
            return Ok(false);
        };
        let name: String = crate::sql::RowRead::try_get(&r, "name")?;
        // Drop it from the conversations' tag lists too, so lists and filters agree.
        q(<D::Conn as Conn>::UNTAG)
            .bind(&name)
            .bind(id.to_string())
            .execute(&mut *tx)
            .await?;
        q("DELETE FROM conversation_tags WHERE tag_id = $1")
            .bind(id.to_string())
            .execute(&mut *tx)
            .await?;
        q("DELETE FROM tags WHERE id = $1")
            .bind(id.to_string())
            .execute(&mut *tx)
            .await?;
        crate::sql::commit(self, tx, &mut []).await?;
        Ok(true)
    }
}
