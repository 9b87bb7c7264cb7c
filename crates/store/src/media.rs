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
