//! SQLite implementation of [`MediaStore`].

use super::SqliteStore;
use crate::media::{Attachment, MediaStore};
use crate::{Result, StoreError};
use async_trait::async_trait;
use sqlx::Row;
use sqlx::sqlite::SqliteRow;
use switchboard_core::*;
use tracing::instrument;
use uuid::Uuid;

fn attachment_row(r: &SqliteRow) -> Result<Attachment> {
    let uuid = |c: &str| -> Result<Uuid> {
        let s: String = r.try_get(c)?;
        Uuid::parse_str(&s).map_err(|_| StoreError::Corrupt(c.to_owned()))
    };
    Ok(Attachment {
        id: uuid("id")?,
        conversation_id: ConversationId(uuid("conversation_id")?),
        message_id: MessageId(uuid("message_id")?),
        filename: r.try_get("filename")?,
        content_type: r.try_get("content_type")?,
        size_bytes: r.try_get("size_bytes")?,
        created_at: Timestamp(r.try_get("created_at")?),
    })
}

#[async_trait]
impl MediaStore for SqliteStore {
    #[instrument(skip_all)]
    async fn create_attachment(&self, a: &Attachment) -> Result<()> {
        let mut conn = self.writer().await?;
        sqlx::query(
            "INSERT INTO attachments (id, conversation_id, message_id, filename, content_type, size_bytes, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(a.id.to_string())
        .bind(a.conversation_id.to_string())
        .bind(a.message_id.to_string())
        .bind(&a.filename)
        .bind(&a.content_type)
        .bind(a.size_bytes)
        .bind(a.created_at.millis())
        .execute(&mut *conn)
        .await?;
        Ok(())
    }

    #[instrument(skip_all)]
    async fn attachment(&self, id: Uuid) -> Result<Option<Attachment>> {
        sqlx::query("SELECT * FROM attachments WHERE id = ?")
            .bind(id.to_string())
            .fetch_optional(self.reader())
            .await?
            .map(|r| attachment_row(&r))
            .transpose()
    }

    #[instrument(skip_all)]
    async fn attachments_for_messages(&self, ids: &[MessageId]) -> Result<Vec<Attachment>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let json = serde_json::to_string(&ids.iter().map(ToString::to_string).collect::<Vec<_>>())
            .unwrap_or_else(|_| "[]".into());
        sqlx::query("SELECT * FROM attachments WHERE message_id IN (SELECT value FROM json_each(?)) ORDER BY created_at, id")
            .bind(json)
            .fetch_all(self.reader())
            .await?
            .iter()
            .map(attachment_row)
            .collect()
    }

    #[instrument(skip_all)]
    async fn conversation_attachments(
        &self,
        conv: ConversationId,
        limit: u32,
    ) -> Result<Vec<Attachment>> {
        sqlx::query(
            "SELECT a.* FROM attachments a JOIN messages m ON m.id = a.message_id \
             WHERE a.conversation_id = ? ORDER BY a.created_at DESC, a.id DESC LIMIT ?",
        )
        .bind(conv.to_string())
        .bind(i64::from(limit.clamp(1, 500)))
        .fetch_all(self.reader())
        .await?
        .iter()
        .map(attachment_row)
        .collect()
    }

    #[instrument(skip_all)]
    async fn create_tag(&self, ws: WorkspaceId, name: &str, now: Timestamp) -> Result<Tag> {
        let mut conn = self.writer().await?;
        sqlx::query("INSERT INTO tags (id, workspace_id, name, created_at) VALUES (?, ?, ?, ?) ON CONFLICT (workspace_id, name) DO NOTHING")
            .bind(Uuid::now_v7().to_string())
            .bind(ws.to_string())
            .bind(name)
            .bind(now.millis())
            .execute(&mut *conn)
            .await?;
        let r = sqlx::query("SELECT id, name FROM tags WHERE workspace_id = ? AND name = ?")
            .bind(ws.to_string())
            .bind(name)
            .fetch_one(&mut *conn)
            .await?;
        let id: String = r.try_get("id")?;
        Ok(Tag {
            id: TagId(Uuid::parse_str(&id).map_err(|_| StoreError::Corrupt("id".into()))?),
            name: r.try_get("name")?,
        })
    }

    #[instrument(skip_all)]
    async fn delete_tag(&self, ws: WorkspaceId, id: TagId) -> Result<bool> {
        let mut conn = self.writer().await?;
        let mut tx = sqlx::Connection::begin(&mut *conn).await?;
        let Some(r) = sqlx::query("SELECT name FROM tags WHERE id = ? AND workspace_id = ?")
            .bind(id.to_string())
            .bind(ws.to_string())
            .fetch_optional(&mut *tx)
            .await?
        else {
            return Ok(false);
        };
        let name: String = r.try_get("name")?;
        // Drop it from the conversations' tag lists too, so lists and filters agree.
        sqlx::query(
            "UPDATE conversations SET tags = (SELECT COALESCE(json_group_array(value), '[]') FROM json_each(conversations.tags) WHERE value <> ?), \
             version = version + 1 WHERE id IN (SELECT conversation_id FROM conversation_tags WHERE tag_id = ?)",
        )
        .bind(&name)
        .bind(id.to_string())
        .execute(&mut *tx)
        .await?;
        sqlx::query("DELETE FROM conversation_tags WHERE tag_id = ?")
            .bind(id.to_string())
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM tags WHERE id = ?")
            .bind(id.to_string())
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(true)
    }
}
