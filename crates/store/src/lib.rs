//! Persistence behind one [`Store`] trait. SQLite is the embedded default; PostgreSQL is the
//! scale-out backend. The store's logic is written once, over the small set of SQL operations
//! each backend implements ([`sql`]): `sqlite/` and `postgres/` hold only those (and their
//! connections, migrations and text index). Stores persist decisions the core made; they decide
//! nothing themselves beyond what a single transaction must check (uniqueness, compare-and-set on
//! versions).

mod automation;
mod cache;
mod channel;
mod comments;
#[cfg(test)]
mod conformance;
mod conversations;
mod inbound_media;
mod ingest;
pub mod library;
pub mod media;
mod meta;
mod metering;
mod migrate;
mod pool;
pub mod postgres;
mod provider;
mod providers;
pub mod push;
mod routing;
mod rows;
mod search;
pub mod secrets;
mod sql;
pub mod sqlite;
mod types;
mod writes;

pub use automation::*;
pub use channel::*;
pub use comments::*;
pub use inbound_media::{FileOutcome, InboundFile, InboundMediaStore};
pub use library::{LibraryStore, SavedMedia};
pub use media::{Attachment, MediaStore};
pub use provider::*;
pub use push::{PushStore, PushSubscription};
pub use routing::*;
pub use types::*;

use async_trait::async_trait;
use std::sync::Arc;
use switchboard_core::event::Event;
use switchboard_core::*;

/// Called with the events of every commit, in commit order, while the store still holds its write
/// lock, so subscribers see events in `seq` order.
pub type CommitHook = Arc<dyn Fn(&[Event]) + Send + Sync>;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("not found")]
    NotFound,
    /// A uniqueness rule refused the write; the string names what clashed (e.g. `email`).
    #[error("{0} already exists")]
    Conflict(&'static str),
    /// Someone else changed the row since it was read; reload and decide again.
    #[error("changed concurrently")]
    VersionConflict,
    /// A flow run's step was saved by someone else first: the run is read and stepped again
    /// (nothing of the write that carried it was stored).
    #[error("the flow run changed concurrently")]
    StaleRun,
    #[error("stored data is not readable: {0}")]
    Corrupt(String),
    #[error("{0}")]
    Unsupported(String),
    #[error("database error: {0}")]
    Db(#[from] sqlx::Error),
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

#[async_trait]
pub trait Store:
    MediaStore
    + InboundMediaStore
    + LibraryStore
    + RoutingStore
    + ChannelStore
    + OutboxStore
    + ProviderStore
    + BillingStore
    + AutomationStore
    + CommentStore
    + PushStore
    + Send
    + Sync
    + 'static
{
    /// Sets the hook that receives committed events. Set once at start-up.
    fn set_commit_hook(&self, hook: CommitHook);
    /// Seals provider secrets in inbox settings from now on (and opens sealed ones). Set once at
    /// start-up, before inboxes are read.
    fn set_secrets(&self, secrets: Arc<secrets::SecretBox>);
    /// Seals every inbox's secrets again with the current key (after a key rotation, or to seal
    /// values stored before encryption was on); returns how many inboxes were rewritten.
    async fn reseal_secrets(&self) -> Result<usize>;

    // --- workspace and server settings
    async fn ensure_workspace(&self, name: &str, now: Timestamp) -> Result<WorkspaceId>;
    async fn setting(&self, key: &str) -> Result<Option<String>>;
    /// Sets `key` only if it is unset; returns the value in force afterwards.
    async fn setting_init(&self, key: &str, value: &str) -> Result<String>;

    // --- agents and sessions
    async fn create_agent(&self, agent: &Agent, password_hash: &str) -> Result<()>;
    async fn update_agent(&self, agent: &Agent, password_hash: Option<&str>) -> Result<()>;
    async fn agent(&self, id: AgentId) -> Result<Option<Agent>>;
    async fn agent_credentials(&self, email: &str) -> Result<Option<(Agent, String)>>;
    async fn list_agents(&self, ws: WorkspaceId) -> Result<Vec<Agent>>;
    async fn create_session(&self, s: &Session) -> Result<()>;
    async fn session(&self, token_hash: &str) -> Result<Option<Session>>;
    async fn revoke_session(&self, token_hash: &str, now: Timestamp) -> Result<()>;
    async fn revoke_agent_sessions(&self, agent: AgentId, now: Timestamp) -> Result<()>;

    // --- inboxes and membership
    async fn create_inbox(&self, inbox: &Inbox) -> Result<()>;
    async fn update_inbox(&self, inbox: &Inbox) -> Result<()>;
    async fn inbox(&self, id: InboxId) -> Result<Option<Inbox>>;
    async fn list_inboxes(&self, ws: WorkspaceId) -> Result<Vec<Inbox>>;
    async fn set_inbox_members(&self, inbox: InboxId, agents: &[AgentId]) -> Result<()>;
    async fn inbox_members(&self, inbox: InboxId) -> Result<Vec<AgentId>>;
    /// Every (agent, inbox) membership: the access cache loads this.
    async fn memberships(&self) -> Result<Vec<(AgentId, InboxId)>>;

    // --- contacts
    async fn contact(&self, id: ContactId) -> Result<Option<Contact>>;
    async fn update_contact(&self, c: &Contact) -> Result<()>;
    /// Returns the contact known by `identity`, creating `fresh` with that identity if there is none.
    async fn upsert_contact_identity(
        &self,
        fresh: &Contact,
        inbox: InboxId,
        external_id: &str,
    ) -> Result<Contact>;
    async fn contact_identities(&self, id: ContactId) -> Result<Vec<Identity>>;

    // --- conversations and messages
    async fn conversation(&self, id: ConversationId) -> Result<Option<Conversation>>;
    async fn conversation_summary(&self, id: ConversationId)
    -> Result<Option<ConversationSummary>>;
    async fn conversation_of(
        &self,
        contact: ContactId,
        inbox: InboxId,
    ) -> Result<Option<Conversation>>;
    async fn list_conversations(&self, q: &ConversationQuery) -> Result<Page<ConversationSummary>>;
    async fn messages(
        &self,
        conv: ConversationId,
        before: Option<MessageCursor>,
        limit: u32,
        public_only: bool,
    ) -> Result<Page<Message>>;
    async fn history(&self, conv: ConversationId) -> Result<Vec<ActionLogEntry>>;
    /// Applies one agent command atomically: compare-and-set on the conversation version, then the
    /// action log, the message and the events. `VersionConflict` means: reload and decide again.
    async fn apply(&self, change: Change) -> Result<Vec<Event>>;
    async fn mark_read(&self, conv: ConversationId) -> Result<()>;
    /// Customer messages, many in one transaction (group commit). Each item gets its own outcome.
    async fn ingest(
        &self,
        batch: &[Inbound],
        now: Timestamp,
    ) -> Result<Vec<Result<Ingested, IngestError>>>;

    // --- tags and quick replies
    async fn list_tags(&self, ws: WorkspaceId) -> Result<Vec<Tag>>;
    async fn list_quick_replies(
        &self,
        ws: WorkspaceId,
        prefix: Option<&str>,
    ) -> Result<Vec<QuickReply>>;
    async fn quick_reply(&self, id: QuickReplyId) -> Result<Option<QuickReply>>;
    async fn save_quick_reply(&self, qr: &QuickReply, now: Timestamp, create: bool) -> Result<()>;
    async fn delete_quick_reply(&self, id: QuickReplyId) -> Result<bool>;

    // --- realtime log
    /// Events after `since` in the given inboxes (`None` = all), oldest first.
    async fn events_since(
        &self,
        since: i64,
        inboxes: Option<&[InboxId]>,
        limit: u32,
    ) -> Result<Vec<Event>>;
    async fn last_event_seq(&self) -> Result<i64>;
}

/// Opens the store a URL names: `postgres://…` (scale-out), else `sqlite://PATH` (or a bare path).
pub async fn open(url: &str) -> Result<Arc<dyn Store>> {
    if is_postgres(url) {
        return Ok(Arc::new(postgres::PgStore::open(url).await?));
    }
    let path = url.strip_prefix("sqlite://").unwrap_or(url);
    Ok(Arc::new(
        sqlite::SqliteStore::open(std::path::Path::new(path)).await?,
    ))
}

/// Whether a store URL names PostgreSQL.
pub fn is_postgres(url: &str) -> bool {
    url.starts_with("postgres://") || url.starts_with("postgresql://")
}
