//! The saved-media library: files a workspace uploads once, names and tags, and picks into the
//! composer or a quick reply. The rows say what each file is; the bytes are in the media store.

use crate::Result;
use crate::rows::{opt_uuid_of, ts, uuid_of};
use crate::sql::{Db, RowRead, json_text, q};
use async_trait::async_trait;
use serde::Serialize;
use switchboard_core::*;
use tracing::instrument;
use uuid::Uuid;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SavedMedia {
    pub id: Uuid,
    pub workspace_id: WorkspaceId,
    pub name: String,
    pub tags: Vec<String>,
    pub filename: String,
    pub content_type: String,
    pub size_bytes: i64,
    pub created_by: Option<AgentId>,
    pub created_at: Timestamp,
}

#[async_trait]
pub trait LibraryStore {
    /// Records a file of the library (its bytes are stored first).
    async fn create_saved_media(&self, m: &SavedMedia) -> Result<()>;
    async fn saved_media(&self, id: Uuid) -> Result<Option<SavedMedia>>;
    /// The workspace's library, newest first.
    async fn list_saved_media(&self, ws: WorkspaceId, limit: u32) -> Result<Vec<SavedMedia>>;
    /// Renames and retags a file; false when there is no such file.
    async fn update_saved_media(&self, id: Uuid, name: &str, tags: &[String]) -> Result<bool>;
    /// Removes a file from the library; false when there was none.
    async fn delete_saved_media(&self, id: Uuid) -> Result<bool>;
}

fn saved_media_row(r: &impl RowRead) -> Result<SavedMedia> {
    Ok(SavedMedia {
        id: uuid_of(r, "id")?,
        workspace_id: WorkspaceId(uuid_of(r, "workspace_id")?),
        name: r.try_get("name")?,
        tags: crate::rows::json_of(r, "tags")?,
        filename: r.try_get("filename")?,
        content_type: r.try_get("content_type")?,
        size_bytes: r.try_get("size_bytes")?,
        created_by: opt_uuid_of(r, "created_by")?.map(AgentId),
        created_at: ts(r, "created_at")?,
    })
}

#[async_trait]
impl<D: Db> LibraryStore for D {
    #[instrument(skip_all)]
    async fn create_saved_media(&self, m: &SavedMedia) -> Result<()> {
        q("INSERT INTO saved_media (id, workspace_id, name, tags, filename, content_type, size_bytes, created_by, created_at) \
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)")
        .bind(m.id.to_string())
        .bind(m.workspace_id.to_string())
        .bind(&m.name)
        .bind(json_text(&m.tags))
        .bind(&m.filename)
        .bind(&m.content_type)
        .bind(m.size_bytes)
        .bind(m.created_by.map(|a| a.to_string()))
        .bind(m.created_at.millis())
        .write(self)
        .await?;
        Ok(())
    }

    #[instrument(skip_all)]
    async fn saved_media(&self, id: Uuid) -> Result<Option<SavedMedia>> {
        q("SELECT * FROM saved_media WHERE id = $1")
            .bind(id.to_string())
            .read_opt(self, saved_media_row)
            .await
    }

    #[instrument(skip_all)]
    async fn list_saved_media(&self, ws: WorkspaceId, limit: u32) -> Result<Vec<SavedMedia>> {
        q("SELECT * FROM saved_media WHERE workspace_id = $1 ORDER BY created_at DESC, id DESC LIMIT $2")
            .bind(ws.to_string())
            .bind(i64::from(limit.clamp(1, 1000)))
            .read_all(self, saved_media_row)
            .await
    }

    #[instrument(skip_all)]
    async fn update_saved_media(&self, id: Uuid, name: &str, tags: &[String]) -> Result<bool> {
        Ok(
            q("UPDATE saved_media SET name = $1, tags = $2 WHERE id = $3")
                .bind(name)
                .bind(json_text(&tags))
                .bind(id.to_string())
                .write(self)
                .await?
                .rows_affected()
                > 0,
        )
    }

    #[instrument(skip_all)]
    async fn delete_saved_media(&self, id: Uuid) -> Result<bool> {
        Ok(q("DELETE FROM saved_media WHERE id = $1")
            .bind(id.to_string())
            .write(self)
            .await?
            .rows_affected()
            > 0)
    }
}
