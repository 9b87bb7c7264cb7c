//! The embedded SQLite store: one file, WAL, one writer connection (so writes never contend and
//! events are published in commit order) and a small pool of readers.

use crate::batch::preview;
use crate::migrate;
use crate::*;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteRow, SqliteSynchronous,
};
use sqlx::{AssertSqlSafe, Connection, Row, SqliteConnection, SqlitePool};
use std::path::Path;
use std::sync::RwLock;
use std::time::Duration;
use switchboard_core::event::{self, Event, EventDraft, EventKind};
use tracing::instrument;
use uuid::Uuid;

// Routing and timers: a child module so it shares this file's private row helpers.
mod routing;
// Provider channels (Messenger, Instagram) and the outbox: likewise.
mod meta;
// WhatsApp, Zalo, Telegram, Shopee: templates, metering, statuses, reachability.
mod providers;
// The group-commit ingest of customer messages: a fixed number of statements per batch.
mod ingest;
// The SQL operations the shared logic is written in (`crate::sql`).
mod conn;

pub struct SqliteStore {
    write: SqlitePool,
    read: SqlitePool,
    hook: RwLock<Option<CommitHook>>,
    accounts: crate::cache::AccountCache,
    /// Held from a write transaction's start until its events are published, so they reach the
    /// commit hook in `seq` order (the writer connection goes back to its pool at commit).
    turn: Arc<tokio::sync::Mutex<()>>,
}

/// A write transaction on the writer connection, holding the turn (see [`SqliteStore`]).
pub(crate) struct SqliteTx {
    tx: sqlx::Transaction<'static, sqlx::Sqlite>,
    _turn: tokio::sync::OwnedMutexGuard<()>,
}

impl std::ops::Deref for SqliteTx {
    type Target = SqliteConnection;
    fn deref(&self) -> &SqliteConnection {
        &self.tx
    }
}

impl std::ops::DerefMut for SqliteTx {
    fn deref_mut(&mut self) -> &mut SqliteConnection {
        &mut self.tx
    }
}

#[async_trait]
impl crate::sql::Db for SqliteStore {
    type Conn = SqliteConnection;
    type Tx = SqliteTx;
    type Pooled = sqlx::pool::PoolConnection<sqlx::Sqlite>;

    async fn begin(&self) -> Result<SqliteTx> {
        let turn = self.turn.clone().lock_owned().await;
        Ok(SqliteTx {
            tx: self.write.begin().await?,
            _turn: turn,
        })
    }

    async fn end(&self, tx: SqliteTx, events: &[Event]) -> Result<()> {
        tx.tx.commit().await?;
        crate::sql::publish(&self.hook, events);
        Ok(())
    }

    async fn read(&self) -> Result<Self::Pooled> {
        Ok(self.read.acquire().await?)
    }

    async fn write(&self) -> Result<Self::Pooled> {
        Ok(self.write.acquire().await?)
    }

    fn hook(&self) -> &RwLock<Option<CommitHook>> {
        &self.hook
    }

    fn accounts(&self) -> Option<&crate::cache::AccountCache> {
        Some(&self.accounts)
    }
}

impl SqliteStore {
    /// The inbox connected to a provider account, remembered until an inbox is written.
    async fn inbox_by_account_cached(
        &self,
        channel: ChannelKind,
        account: &str,
        sql: &'static str,
    ) -> Result<Option<Inbox>> {
        let generation = match self.accounts.get(channel, account) {
            Ok(hit) => return Ok(hit),
            Err(g) => g,
        };
        let inbox = sqlx::query(sql)
            .bind(account)
            .fetch_optional(&self.read)
            .await?
            .map(|r| inbox_row(&r))
            .transpose()?;
        self.accounts
            .put(generation, channel, account, inbox.clone());
        Ok(inbox)
    }

    /// Opens (creating if needed) the database file and applies pending migrations.
    pub async fn open(path: &Path) -> Result<Self> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| {
                StoreError::Corrupt(format!("cannot create {}: {e}", dir.display()))
            })?;
        }
        let base = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // FULL: a commit is on disk before we acknowledge a webhook. Group commit makes it cheap.
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(10))
            .pragma("cache_size", "-65536")
            .pragma("temp_store", "memory");
        let write = SqlitePoolOptions::new()
            .max_connections(1)
            .min_connections(1)
            .connect_with(base.clone().pragma("wal_autocheckpoint", "10000"))
            .await?;
        let read = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(base.read_only(false))
            .await?;
        let store = Self {
            write,
            read,
            hook: RwLock::new(None),
            accounts: Default::default(),
            turn: Default::default(),
        };
        store.migrate().await?;
        Ok(store)
    }

    async fn migrate(&self) -> Result<()> {
        let mut conn = self.write.acquire().await?;
        sqlx::query("CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL)")
            .execute(&mut *conn)
            .await?;
        let done: Vec<i64> = sqlx::query("SELECT version FROM schema_migrations")
            .fetch_all(&mut *conn)
            .await?
            .iter()
            .map(|r| r.try_get::<i64, _>(0))
            .collect::<Result<_, _>>()?;
        for m in migrate::SQLITE
            .iter()
            .filter(|m| !done.contains(&m.version))
        {
            // A migration over a large database can take minutes (rebuilding an index): say so.
            tracing::info!(version = m.version, name = m.name, "applying migration");
            let mut tx = conn.begin().await?;
            for stmt in migrate::statements(m.sql) {
                sqlx::query(AssertSqlSafe(stmt)).execute(&mut *tx).await?;
            }
            sqlx::query(
                "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, 0)",
            )
            .bind(m.version)
            .bind(m.name)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
        }
        Ok(())
    }

    /// The single writer connection: every write goes through it, so writes never contend.
    pub(crate) async fn writer(&self) -> Result<sqlx::pool::PoolConnection<sqlx::Sqlite>> {
        Ok(self.write.acquire().await?)
    }

    pub(crate) fn reader(&self) -> &SqlitePool {
        &self.read
    }

    fn publish(&self, events: &[Event]) {
        if events.is_empty() {
            return;
        }
        let hook = self.hook.read().ok().and_then(|h| h.clone());
        if let Some(hook) = hook {
            hook(events);
        }
    }
}

// ---------------------------------------------------------------- row mapping

fn corrupt(what: &str) -> StoreError {
    StoreError::Corrupt(what.to_owned())
}

fn uuid_of(row: &SqliteRow, col: &str) -> Result<Uuid> {
    let s: String = row.try_get(col)?;
    Uuid::parse_str(&s).map_err(|_| corrupt(col))
}

fn opt_uuid_of(row: &SqliteRow, col: &str) -> Result<Option<Uuid>> {
    let s: Option<String> = row.try_get(col)?;
    s.map(|s| Uuid::parse_str(&s).map_err(|_| corrupt(col)))
        .transpose()
}

fn ts(row: &SqliteRow, col: &str) -> Result<Timestamp> {
    Ok(Timestamp(row.try_get::<i64, _>(col)?))
}

fn opt_ts(row: &SqliteRow, col: &str) -> Result<Option<Timestamp>> {
    Ok(row.try_get::<Option<i64>, _>(col)?.map(Timestamp))
}

fn json_of<T: serde::de::DeserializeOwned>(row: &SqliteRow, col: &str) -> Result<T> {
    let s: String = row.try_get(col)?;
    serde_json::from_str(&s).map_err(|_| corrupt(col))
}

fn enum_of<T>(row: &SqliteRow, col: &str, parse: fn(&str) -> Option<T>) -> Result<T> {
    let s: String = row.try_get(col)?;
    parse(&s).ok_or_else(|| corrupt(col))
}

fn agent_row(r: &SqliteRow) -> Result<Agent> {
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

fn inbox_row(r: &SqliteRow) -> Result<Inbox> {
    Ok(Inbox {
        id: InboxId(uuid_of(r, "id")?),
        workspace_id: WorkspaceId(uuid_of(r, "workspace_id")?),
        name: r.try_get("name")?,
        channel: enum_of(r, "channel", ChannelKind::parse)?,
        settings: json_of(r, "settings")?,
        created_at: ts(r, "created_at")?,
    })
}

fn contact_row(r: &SqliteRow) -> Result<Contact> {
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

fn conversation_row(r: &SqliteRow) -> Result<Conversation> {
    Ok(Conversation {
        id: ConversationId(uuid_of(r, "id")?),
        workspace_id: WorkspaceId(uuid_of(r, "workspace_id")?),
        inbox_id: InboxId(uuid_of(r, "inbox_id")?),
        contact_id: ContactId(uuid_of(r, "contact_id")?),
        status: enum_of(r, "status", ConversationStatus::parse)?,
        assignee_id: opt_uuid_of(r, "assignee_id")?.map(AgentId),
        last_assignee_id: opt_uuid_of(r, "last_assignee_id")?.map(AgentId),
        participants: json_of(r, "participants")?,
        tags: json_of(r, "tags")?,
        last_customer_message_at: opt_ts(r, "last_customer_message_at")?,
        last_agent_reply_at: opt_ts(r, "last_agent_reply_at")?,
        last_activity_at: ts(r, "last_activity_at")?,
        created_at: ts(r, "created_at")?,
        version: r.try_get("version")?,
    })
}

fn summary_row(r: &SqliteRow) -> Result<ConversationSummary> {
    Ok(ConversationSummary {
        conversation: conversation_row(r)?,
        contact_name: r.try_get("contact_name")?,
        channel: enum_of(r, "channel", ChannelKind::parse)?,
        inbox_name: r.try_get("inbox_name")?,
        last_message_preview: r.try_get("last_message_preview")?,
        unread_count: r.try_get("unread_count")?,
    })
}

fn message_row(r: &SqliteRow) -> Result<Message> {
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

fn event_row(r: &SqliteRow) -> Result<Event> {
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

fn unique_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(d) if d.is_unique_violation())
}

fn json_text<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_string(v).unwrap_or_else(|_| "null".into())
}

fn ids_json<T: std::fmt::Display>(ids: &[T]) -> String {
    json_text(&ids.iter().map(ToString::to_string).collect::<Vec<_>>())
}

/// One bound value of a multi-row write.
enum Arg {
    Text(Option<String>),
    Int(Option<i64>),
}

impl From<String> for Arg {
    fn from(v: String) -> Self {
        Arg::Text(Some(v))
    }
}
impl From<&str> for Arg {
    fn from(v: &str) -> Self {
        Arg::Text(Some(v.to_owned()))
    }
}
impl From<Option<String>> for Arg {
    fn from(v: Option<String>) -> Self {
        Arg::Text(v)
    }
}
impl From<i64> for Arg {
    fn from(v: i64) -> Self {
        Arg::Int(Some(v))
    }
}
impl From<Option<i64>> for Arg {
    fn from(v: Option<i64>) -> Self {
        Arg::Int(v)
    }
}

/// The most rows one statement carries. Statements are cut in powers of two (64, 32, … 1 rows) so
/// that each table has at most seven distinct statement texts, all kept prepared by sqlx's cache.
const ROWS_PER_STATEMENT: usize = 64;

/// Runs `{head} VALUES (?, …), … {tail}` over `rows` (every row the same width), as few
/// statements as the power-of-two cut allows, and returns the rows changed.
///
/// Why bound values and not one JSON argument read through `json_each`: extracting every column
/// from JSON text cost about as much as the writes themselves (a `perf` profile of the ingest
/// benchmark: `jsonReturnFromBlob`, `jsonExtractFunc` and friends).
async fn write_values(
    conn: &mut SqliteConnection,
    head: &str,
    tail: &str,
    rows: Vec<Vec<Arg>>,
) -> Result<u64> {
    let Some(width) = rows.first().map(Vec::len) else {
        return Ok(0);
    };
    let one = format!("({})", vec!["?"; width].join(", "));
    let mut changed = 0;
    let mut rest = rows.into_iter().peekable();
    let mut left = rest.len();
    while left > 0 {
        let n = ROWS_PER_STATEMENT.min(1 << left.ilog2());
        let sql = format!("{head} VALUES {} {tail}", vec![one.as_str(); n].join(", "));
        let mut query = sqlx::query(AssertSqlSafe(sql));
        for arg in rest.by_ref().take(n).flatten() {
            query = match arg {
                Arg::Text(v) => query.bind(v),
                Arg::Int(v) => query.bind(v),
            };
        }
        changed += query.execute(&mut *conn).await?.rows_affected();
        left -= n;
    }
    Ok(changed)
}

// ---------------------------------------------------------------- writes inside a transaction

const CONVERSATION_COLUMNS: &str = "c.id, c.workspace_id, c.inbox_id, c.contact_id, c.status, c.assignee_id, \
     c.last_assignee_id, c.participants, c.tags, c.last_customer_message_at, c.last_agent_reply_at, \
     c.last_activity_at, c.created_at, c.version, c.last_message_preview, c.unread_count";

async fn load_conversation(
    conn: &mut SqliteConnection,
    id: ConversationId,
) -> Result<Option<Conversation>> {
    sqlx::query("SELECT * FROM conversations c WHERE id = ?")
        .bind(id.to_string())
        .fetch_optional(conn)
        .await?
        .map(|r| conversation_row(&r))
        .transpose()
}

async fn insert_conversation(conn: &mut SqliteConnection, c: &Conversation) -> Result<()> {
    sqlx::query(
        "INSERT INTO conversations (id, workspace_id, inbox_id, contact_id, status, assignee_id, last_assignee_id, \
         participants, tags, last_customer_message_at, last_agent_reply_at, last_activity_at, created_at, version) \
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(c.id.to_string())
    .bind(c.workspace_id.to_string())
    .bind(c.inbox_id.to_string())
    .bind(c.contact_id.to_string())
    .bind(c.status.as_str())
    .bind(c.assignee_id.map(|a| a.to_string()))
    .bind(c.last_assignee_id.map(|a| a.to_string()))
    .bind(ids_json(&c.participants))
    .bind(json_text(&c.tags))
    .bind(c.last_customer_message_at.map(Timestamp::millis))
    .bind(c.last_agent_reply_at.map(Timestamp::millis))
    .bind(c.last_activity_at.millis())
    .bind(c.created_at.millis())
    .bind(c.version)
    .execute(conn)
    .await?;
    Ok(())
}

/// Compare-and-set: writes `c` only if the stored version is still `expected`.
async fn update_conversation(
    conn: &mut SqliteConnection,
    c: &Conversation,
    expected: i64,
) -> Result<()> {
    let done = sqlx::query(
        "UPDATE conversations SET status = ?, assignee_id = ?, last_assignee_id = ?, participants = ?, tags = ?, \
         last_customer_message_at = ?, last_agent_reply_at = ?, last_activity_at = ?, version = ? \
         WHERE id = ? AND version = ?",
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
    .execute(conn)
    .await?;
    if done.rows_affected() == 0 {
        Err(StoreError::VersionConflict)
    } else {
        Ok(())
    }
}

/// Keeps the tag index (used by the tag filter) in step with the conversation's tag list,
/// creating tags that do not exist yet.
async fn sync_tags(conn: &mut SqliteConnection, c: &Conversation, now: Timestamp) -> Result<()> {
    sqlx::query("DELETE FROM conversation_tags WHERE conversation_id = ?")
        .bind(c.id.to_string())
        .execute(&mut *conn)
        .await?;
    for name in &c.tags {
        sqlx::query("INSERT INTO tags (id, workspace_id, name, created_at) VALUES (?, ?, ?, ?) ON CONFLICT (workspace_id, name) DO NOTHING")
            .bind(Uuid::now_v7().to_string())
            .bind(c.workspace_id.to_string())
            .bind(name)
            .bind(now.millis())
            .execute(&mut *conn)
            .await?;
        sqlx::query(
            "INSERT INTO conversation_tags (tag_id, conversation_id) \
             SELECT id, ? FROM tags WHERE workspace_id = ? AND name = ? ON CONFLICT DO NOTHING",
        )
        .bind(c.id.to_string())
        .bind(c.workspace_id.to_string())
        .bind(name)
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

async fn insert_message(conn: &mut SqliteConnection, m: &Message) -> Result<bool> {
    let done = sqlx::query(
        "INSERT INTO messages (id, conversation_id, inbox_id, direction, sender_kind, sender_agent_id, kind, body, \
         provider_message_id, delivery_status, failure_reason, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) \
         ON CONFLICT (inbox_id, provider_message_id) DO NOTHING",
    )
    .bind(m.id.to_string())
    .bind(m.conversation_id.to_string())
    .bind(m.inbox_id.to_string())
    .bind(m.direction.as_str())
    .bind(m.sender_kind.as_str())
    .bind(m.sender_agent_id.map(|a| a.to_string()))
    .bind(m.kind.as_str())
    .bind(&m.text)
    .bind(m.provider_message_id.as_deref())
    .bind(m.delivery_status.as_str())
    .bind(m.failure_reason.as_deref())
    .bind(m.created_at.millis())
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

async fn insert_actions(
    conn: &mut SqliteConnection,
    conv: ConversationId,
    actions: &[Action],
    now: Timestamp,
) -> Result<()> {
    for a in actions {
        sqlx::query("INSERT INTO action_log (id, conversation_id, kind, actor_id, detail, created_at) VALUES (?, ?, ?, ?, ?, ?)")
            .bind(Uuid::now_v7().to_string())
            .bind(conv.to_string())
            .bind(a.kind.as_str())
            .bind(a.actor.map(|x| x.to_string()))
            .bind(json_text(&a.detail))
            .bind(now.millis())
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}

async fn insert_events(
    conn: &mut SqliteConnection,
    ws: WorkspaceId,
    drafts: Vec<EventDraft>,
    now: Timestamp,
    out: &mut Vec<Event>,
) -> Result<()> {
    for d in drafts {
        let row = sqlx::query(
            "INSERT INTO events (workspace_id, inbox_id, conversation_id, kind, payload, created_at) VALUES (?, ?, ?, ?, ?, ?) RETURNING seq",
        )
        .bind(ws.to_string())
        .bind(d.inbox_id.map(|i| i.to_string()))
        .bind(d.conversation_id.map(|c| c.to_string()))
        .bind(d.kind.as_str())
        .bind(json_text(&d.payload))
        .bind(now.millis())
        .fetch_one(&mut *conn)
        .await?;
        out.push(Event {
            seq: row.try_get(0)?,
            workspace_id: ws,
            inbox_id: d.inbox_id,
            conversation_id: d.conversation_id,
            kind: d.kind,
            payload: d.payload,
            created_at: now,
        });
    }
    Ok(())
}

async fn insert_contact(conn: &mut SqliteConnection, c: &Contact) -> Result<()> {
    sqlx::query("INSERT INTO contacts (id, workspace_id, name, phone, email, notes, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)")
        .bind(c.id.to_string())
        .bind(c.workspace_id.to_string())
        .bind(c.name.as_deref())
        .bind(c.phone.as_deref())
        .bind(c.email.as_deref())
        .bind(c.notes.as_deref())
        .bind(c.created_at.millis())
        .bind(c.updated_at.millis())
        .execute(conn)
        .await?;
    Ok(())
}

async fn insert_identity(
    conn: &mut SqliteConnection,
    inbox: InboxId,
    external_id: &str,
    contact: ContactId,
    now: Timestamp,
) -> Result<()> {
    sqlx::query("INSERT INTO contact_identities (inbox_id, external_id, contact_id, created_at) VALUES (?, ?, ?, ?)")
        .bind(inbox.to_string())
        .bind(external_id)
        .bind(contact.to_string())
        .bind(now.millis())
        .execute(conn)
        .await?;
    Ok(())
}

/// Writes one decided change inside the caller's transaction: compare-and-set on the conversation,
/// its timers and pool entry (routing), the message, the action log and the events.
async fn write_change(conn: &mut SqliteConnection, change: Change) -> Result<Vec<Event>> {
    if let Some(c) = &change.conversation {
        let before = load_conversation(conn, c.id).await?;
        update_conversation(conn, c, change.expected_version).await?;
        routing::after_write(conn, before.as_ref(), c, change.now).await?;
        let retagged = change
            .actions
            .iter()
            .any(|a| matches!(a.kind, ActionKind::Tagged | ActionKind::Untagged));
        if retagged {
            sync_tags(conn, c, change.now).await?;
        }
    } else {
        // Message-only change: still refuse if the conversation moved on (e.g. it was resolved).
        let current = load_conversation(conn, change.conversation_id)
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
            sqlx::query("UPDATE conversations SET last_message_preview = ?, unread_count = CASE WHEN ? THEN 0 ELSE unread_count END WHERE id = ?")
                .bind(preview(&m.text))
                .bind(unread_reset)
                .bind(m.conversation_id.to_string())
                .execute(&mut *conn)
                .await?;
        }
    }
    insert_actions(conn, change.conversation_id, &change.actions, change.now).await?;
    let mut events = Vec::with_capacity(change.events.len());
    insert_events(
        conn,
        change.workspace_id,
        change.events,
        change.now,
        &mut events,
    )
    .await?;
    Ok(events)
}

/// The FTS5 query for searched words (folded by `search::words`): every word must match, with
/// `prefix` the last one as a prefix (`0912` finds `0912345678`).
fn fts_query(words: &[String], prefix: bool) -> String {
    let last = words.len().saturating_sub(1);
    words
        .iter()
        .enumerate()
        .map(|(i, w)| format!("\"{w}\"{}", if prefix && i == last { "*" } else { "" }))
        .collect::<Vec<_>>()
        .join(" ")
}

impl SqliteStore {
    /// The conversation list's rows: the filters of `q` and its cursor, plus `extra` (SQL, with
    /// its binds), newest first, at most `take`.
    async fn list_rows(
        &self,
        q: &ConversationQuery,
        extra: Option<(&str, Vec<Bind>)>,
        take: usize,
    ) -> Result<Vec<ConversationSummary>> {
        let (filters, list_binds) =
            crate::search::list_filters(q, "IN (SELECT value FROM json_each(?))");
        let mut sql = format!(
            "SELECT {CONVERSATION_COLUMNS}, ct.name AS contact_name, i.channel AS channel, i.name AS inbox_name \
             FROM conversations c JOIN contacts ct ON ct.id = c.contact_id JOIN inboxes i ON i.id = c.inbox_id \
             WHERE {filters}"
        );
        let mut binds: Vec<Bind> = list_binds
            .into_iter()
            .map(|b| match b {
                crate::search::ListBind::Text(s) => Bind::Text(s),
                crate::search::ListBind::Int(i) => Bind::Int(i),
                crate::search::ListBind::Ids(v) => Bind::Text(json_text(&v)),
            })
            .collect();
        if let Some((more, more_binds)) = extra {
            sql.push_str(more);
            binds.extend(more_binds);
        }
        sql.push_str(" ORDER BY c.last_activity_at DESC, c.id DESC LIMIT ?");
        binds.push(Bind::Int(i64::try_from(take).unwrap_or(i64::MAX)));
        let mut query = sqlx::query(AssertSqlSafe(sql));
        for b in binds {
            query = match b {
                Bind::Text(s) => query.bind(s),
                Bind::Int(i) => query.bind(i),
            };
        }
        let rows = query.fetch_all(&self.read).await?;
        rows.iter().map(summary_row).collect()
    }
}

#[async_trait]
impl crate::search::SearchBackend for SqliteStore {
    async fn rows(&self, q: &ConversationQuery, take: usize) -> Result<Vec<ConversationSummary>> {
        self.list_rows(q, None, take).await
    }

    async fn texts(&self, ids: &[ConversationId]) -> Result<Vec<crate::search::TextRow>> {
        let rows = sqlx::query(
            "SELECT c.id, COALESCE(ct.name, '') || ' ' || COALESCE(ct.phone, '') || ' ' || COALESCE(ct.email, '') AS contact, \
             m.body FROM json_each(?) AS k JOIN conversations c ON c.id = k.value JOIN contacts ct ON ct.id = c.contact_id \
             LEFT JOIN messages m ON m.rowid IN (SELECT rowid FROM messages WHERE conversation_id = c.id \
             ORDER BY created_at DESC, id DESC LIMIT ?)",
        )
        .bind(ids_json(ids))
        .bind(crate::search::WALK_MESSAGES)
        .fetch_all(&self.read)
        .await?;
        rows.iter()
            .map(|r| {
                Ok((
                    ConversationId(uuid_of(r, "id")?),
                    r.try_get("contact")?,
                    r.try_get("body")?,
                ))
            })
            .collect()
    }

    async fn indexed(
        &self,
        q: &ConversationQuery,
        _text: &str,
        words: &[String],
        take: usize,
    ) -> Result<Vec<ConversationSummary>> {
        // The newest DEPTH matching messages (and contacts) bound the work for common words
        // (rowid order is arrival order). The last word is a prefix — unless, as a whole word, it
        // is common in that index already: FTS5 gathers every indexed word a prefix starts before
        // it can use it (tens of milliseconds for a common one), where a whole word is read
        // lazily, newest first. A common word typed in full is taken as that word.
        let Some(last) = words.last() else {
            return Ok(Vec::new());
        };
        let mut binds = Vec::new();
        for table in ["contacts_fts", "messages_fts"] {
            let seen: i64 = sqlx::query_scalar(AssertSqlSafe(format!(
                "SELECT COUNT(*) FROM (SELECT rowid FROM {table} WHERE {table} MATCH ? LIMIT ?)"
            )))
            .bind(fts_query(std::slice::from_ref(last), false))
            .bind(crate::search::DEPTH + 1)
            .fetch_one(&self.read)
            .await?;
            binds.push(Bind::Text(fts_query(words, seen <= crate::search::DEPTH)));
            binds.push(Bind::Int(crate::search::DEPTH));
        }
        let extra = " AND (c.contact_id IN (SELECT k.id FROM contacts k WHERE k.rowid IN \
             (SELECT rowid FROM contacts_fts WHERE contacts_fts MATCH ? ORDER BY rowid DESC LIMIT ?)) \
             OR c.id IN (SELECT m.conversation_id FROM messages m WHERE m.rowid IN \
             (SELECT rowid FROM messages_fts WHERE messages_fts MATCH ? ORDER BY rowid DESC LIMIT ?)))";
        self.list_rows(q, Some((extra, binds)), take).await
    }
}

enum Bind {
    Text(String),
    Int(i64),
}

#[async_trait]
impl Store for SqliteStore {
    fn set_commit_hook(&self, hook: CommitHook) {
        if let Ok(mut h) = self.hook.write() {
            *h = Some(hook);
        }
    }

    #[instrument(skip_all)]
    async fn ensure_workspace(&self, name: &str, now: Timestamp) -> Result<WorkspaceId> {
        let mut conn = self.write.acquire().await?;
        if let Some(r) = sqlx::query("SELECT id FROM workspaces ORDER BY created_at LIMIT 1")
            .fetch_optional(&mut *conn)
            .await?
        {
            return Ok(WorkspaceId(uuid_of(&r, "id")?));
        }
        let id = WorkspaceId(Uuid::now_v7());
        sqlx::query("INSERT INTO workspaces (id, name, created_at) VALUES (?, ?, ?)")
            .bind(id.to_string())
            .bind(name)
            .bind(now.millis())
            .execute(&mut *conn)
            .await?;
        Ok(id)
    }

    #[instrument(skip_all)]
    async fn setting(&self, key: &str) -> Result<Option<String>> {
        Ok(
            sqlx::query("SELECT value FROM server_settings WHERE key = ?")
                .bind(key)
                .fetch_optional(&self.read)
                .await?
                .map(|r| r.try_get::<String, _>(0))
                .transpose()?,
        )
    }

    #[instrument(skip_all)]
    async fn setting_init(&self, key: &str, value: &str) -> Result<String> {
        let mut conn = self.write.acquire().await?;
        sqlx::query(
            "INSERT INTO server_settings (key, value) VALUES (?, ?) ON CONFLICT (key) DO NOTHING",
        )
        .bind(key)
        .bind(value)
        .execute(&mut *conn)
        .await?;
        Ok(
            sqlx::query("SELECT value FROM server_settings WHERE key = ?")
                .bind(key)
                .fetch_one(&mut *conn)
                .await?
                .try_get(0)?,
        )
    }

    #[instrument(skip_all)]
    async fn create_agent(&self, a: &Agent, password_hash: &str) -> Result<()> {
        let mut conn = self.write.acquire().await?;
        sqlx::query(
            "INSERT INTO agents (id, workspace_id, email, name, role, password_hash, capacity, active, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(a.id.to_string())
        .bind(a.workspace_id.to_string())
        .bind(&a.email)
        .bind(&a.name)
        .bind(a.role.as_str())
        .bind(password_hash)
        .bind(a.capacity.map(i64::from))
        .bind(i64::from(a.active))
        .bind(a.created_at.millis())
        .execute(&mut *conn)
        .await
        .map_err(|e| if unique_violation(&e) { StoreError::Conflict("email") } else { e.into() })?;
        Ok(())
    }

    #[instrument(skip_all)]
    async fn update_agent(&self, a: &Agent, password_hash: Option<&str>) -> Result<()> {
        let mut conn = self.write.acquire().await?;
        let done = sqlx::query(
            "UPDATE agents SET email = ?, name = ?, role = ?, capacity = ?, active = ?, password_hash = COALESCE(?, password_hash) WHERE id = ?",
        )
        .bind(&a.email)
        .bind(&a.name)
        .bind(a.role.as_str())
        .bind(a.capacity.map(i64::from))
        .bind(i64::from(a.active))
        .bind(password_hash)
        .bind(a.id.to_string())
        .execute(&mut *conn)
        .await
        .map_err(|e| if unique_violation(&e) { StoreError::Conflict("email") } else { e.into() })?;
        if done.rows_affected() == 0 {
            Err(StoreError::NotFound)
        } else {
            Ok(())
        }
    }

    #[instrument(skip_all)]
    async fn agent(&self, id: AgentId) -> Result<Option<Agent>> {
        sqlx::query("SELECT * FROM agents WHERE id = ?")
            .bind(id.to_string())
            .fetch_optional(&self.read)
            .await?
            .map(|r| agent_row(&r))
            .transpose()
    }

    #[instrument(skip_all)]
    async fn agent_credentials(&self, email: &str) -> Result<Option<(Agent, String)>> {
        let Some(r) = sqlx::query("SELECT * FROM agents WHERE email = ?")
            .bind(email)
            .fetch_optional(&self.read)
            .await?
        else {
            return Ok(None);
        };
        Ok(Some((agent_row(&r)?, r.try_get("password_hash")?)))
    }

    #[instrument(skip_all)]
    async fn list_agents(&self, ws: WorkspaceId) -> Result<Vec<Agent>> {
        sqlx::query("SELECT * FROM agents WHERE workspace_id = ? ORDER BY name, id")
            .bind(ws.to_string())
            .fetch_all(&self.read)
            .await?
            .iter()
            .map(agent_row)
            .collect()
    }

    #[instrument(skip_all)]
    async fn create_session(&self, s: &Session) -> Result<()> {
        let mut conn = self.write.acquire().await?;
        sqlx::query("INSERT INTO sessions (token_hash, agent_id, csrf_token, created_at, expires_at) VALUES (?, ?, ?, ?, ?)")
            .bind(&s.token_hash)
            .bind(s.agent_id.to_string())
            .bind(&s.csrf_token)
            .bind(s.created_at.millis())
            .bind(s.expires_at.millis())
            .execute(&mut *conn)
            .await?;
        Ok(())
    }

    #[instrument(skip_all)]
    async fn session(&self, token_hash: &str) -> Result<Option<Session>> {
        let Some(r) = sqlx::query("SELECT * FROM sessions WHERE token_hash = ?")
            .bind(token_hash)
            .fetch_optional(&self.read)
            .await?
        else {
            return Ok(None);
        };
        Ok(Some(Session {
            token_hash: r.try_get("token_hash")?,
            agent_id: AgentId(uuid_of(&r, "agent_id")?),
            csrf_token: r.try_get("csrf_token")?,
            created_at: ts(&r, "created_at")?,
            expires_at: ts(&r, "expires_at")?,
            revoked_at: opt_ts(&r, "revoked_at")?,
        }))
    }

    #[instrument(skip_all)]
    async fn revoke_session(&self, token_hash: &str, now: Timestamp) -> Result<()> {
        let mut conn = self.write.acquire().await?;
        sqlx::query(
            "UPDATE sessions SET revoked_at = ? WHERE token_hash = ? AND revoked_at IS NULL",
        )
        .bind(now.millis())
        .bind(token_hash)
        .execute(&mut *conn)
        .await?;
        Ok(())
    }

    #[instrument(skip_all)]
    async fn revoke_agent_sessions(&self, agent: AgentId, now: Timestamp) -> Result<()> {
        let mut conn = self.write.acquire().await?;
        sqlx::query("UPDATE sessions SET revoked_at = ? WHERE agent_id = ? AND revoked_at IS NULL")
            .bind(now.millis())
            .bind(agent.to_string())
            .execute(&mut *conn)
            .await?;
        Ok(())
    }

    #[instrument(skip_all)]
    async fn create_inbox(&self, i: &Inbox) -> Result<()> {
        let mut conn = self.write.acquire().await?;
        sqlx::query("INSERT INTO inboxes (id, workspace_id, name, channel, settings, created_at) VALUES (?, ?, ?, ?, ?, ?)")
            .bind(i.id.to_string())
            .bind(i.workspace_id.to_string())
            .bind(&i.name)
            .bind(i.channel.as_str())
            .bind(json_text(&i.settings))
            .bind(i.created_at.millis())
            .execute(&mut *conn)
            .await?;
        self.accounts.forget();
        Ok(())
    }

    #[instrument(skip_all)]
    async fn update_inbox(&self, i: &Inbox) -> Result<()> {
        let mut conn = self.write.acquire().await?;
        let done = sqlx::query("UPDATE inboxes SET name = ?, settings = ? WHERE id = ?")
            .bind(&i.name)
            .bind(json_text(&i.settings))
            .bind(i.id.to_string())
            .execute(&mut *conn)
            .await?;
        self.accounts.forget();
        if done.rows_affected() == 0 {
            Err(StoreError::NotFound)
        } else {
            Ok(())
        }
    }

    #[instrument(skip_all)]
    async fn inbox(&self, id: InboxId) -> Result<Option<Inbox>> {
        sqlx::query("SELECT * FROM inboxes WHERE id = ?")
            .bind(id.to_string())
            .fetch_optional(&self.read)
            .await?
            .map(|r| inbox_row(&r))
            .transpose()
    }

    #[instrument(skip_all)]
    async fn list_inboxes(&self, ws: WorkspaceId) -> Result<Vec<Inbox>> {
        sqlx::query("SELECT * FROM inboxes WHERE workspace_id = ? ORDER BY name, id")
            .bind(ws.to_string())
            .fetch_all(&self.read)
            .await?
            .iter()
            .map(inbox_row)
            .collect()
    }

    #[instrument(skip_all)]
    async fn set_inbox_members(&self, inbox: InboxId, agents: &[AgentId]) -> Result<()> {
        let mut conn = self.write.acquire().await?;
        let mut tx = conn.begin().await?;
        sqlx::query("DELETE FROM inbox_members WHERE inbox_id = ?")
            .bind(inbox.to_string())
            .execute(&mut *tx)
            .await?;
        for a in agents {
            sqlx::query("INSERT INTO inbox_members (inbox_id, agent_id) VALUES (?, ?) ON CONFLICT DO NOTHING")
                .bind(inbox.to_string())
                .bind(a.to_string())
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    #[instrument(skip_all)]
    async fn inbox_members(&self, inbox: InboxId) -> Result<Vec<AgentId>> {
        sqlx::query("SELECT agent_id FROM inbox_members WHERE inbox_id = ? ORDER BY agent_id")
            .bind(inbox.to_string())
            .fetch_all(&self.read)
            .await?
            .iter()
            .map(|r| uuid_of(r, "agent_id").map(AgentId))
            .collect()
    }

    #[instrument(skip_all)]
    async fn memberships(&self) -> Result<Vec<(AgentId, InboxId)>> {
        sqlx::query("SELECT agent_id, inbox_id FROM inbox_members")
            .fetch_all(&self.read)
            .await?
            .iter()
            .map(|r| {
                Ok((
                    AgentId(uuid_of(r, "agent_id")?),
                    InboxId(uuid_of(r, "inbox_id")?),
                ))
            })
            .collect()
    }

    #[instrument(skip_all)]
    async fn contact(&self, id: ContactId) -> Result<Option<Contact>> {
        sqlx::query("SELECT * FROM contacts WHERE id = ?")
            .bind(id.to_string())
            .fetch_optional(&self.read)
            .await?
            .map(|r| contact_row(&r))
            .transpose()
    }

    #[instrument(skip_all)]
    async fn update_contact(&self, c: &Contact) -> Result<()> {
        let mut conn = self.write.acquire().await?;
        let done = sqlx::query(
            "UPDATE contacts SET phone = ?, email = ?, notes = ?, updated_at = ? WHERE id = ?",
        )
        .bind(c.phone.as_deref())
        .bind(c.email.as_deref())
        .bind(c.notes.as_deref())
        .bind(c.updated_at.millis())
        .bind(c.id.to_string())
        .execute(&mut *conn)
        .await?;
        if done.rows_affected() == 0 {
            Err(StoreError::NotFound)
        } else {
            Ok(())
        }
    }

    #[instrument(skip_all)]
    async fn upsert_contact_identity(
        &self,
        fresh: &Contact,
        inbox: InboxId,
        external_id: &str,
    ) -> Result<Contact> {
        let mut conn = self.write.acquire().await?;
        let mut tx = conn.begin().await?;
        let known = sqlx::query("SELECT c.* FROM contact_identities i JOIN contacts c ON c.id = i.contact_id WHERE i.inbox_id = ? AND i.external_id = ?")
            .bind(inbox.to_string())
            .bind(external_id)
            .fetch_optional(&mut *tx)
            .await?;
        if let Some(r) = known {
            return contact_row(&r);
        }
        insert_contact(&mut tx, fresh).await?;
        insert_identity(&mut tx, inbox, external_id, fresh.id, fresh.created_at).await?;
        tx.commit().await?;
        Ok(fresh.clone())
    }

    #[instrument(skip_all)]
    async fn contact_identities(&self, id: ContactId) -> Result<Vec<Identity>> {
        sqlx::query("SELECT * FROM contact_identities WHERE contact_id = ? ORDER BY created_at")
            .bind(id.to_string())
            .fetch_all(&self.read)
            .await?
            .iter()
            .map(|r| {
                Ok(Identity {
                    inbox_id: InboxId(uuid_of(r, "inbox_id")?),
                    external_id: r.try_get("external_id")?,
                    contact_id: ContactId(uuid_of(r, "contact_id")?),
                })
            })
            .collect()
    }

    #[instrument(skip_all)]
    async fn conversation(&self, id: ConversationId) -> Result<Option<Conversation>> {
        let mut conn = self.read.acquire().await?;
        load_conversation(&mut conn, id).await
    }

    #[instrument(skip_all)]
    async fn conversation_summary(
        &self,
        id: ConversationId,
    ) -> Result<Option<ConversationSummary>> {
        let sql = format!(
            "SELECT {CONVERSATION_COLUMNS}, ct.name AS contact_name, i.channel AS channel, i.name AS inbox_name \
             FROM conversations c JOIN contacts ct ON ct.id = c.contact_id JOIN inboxes i ON i.id = c.inbox_id WHERE c.id = ?"
        );
        sqlx::query(AssertSqlSafe(sql))
            .bind(id.to_string())
            .fetch_optional(&self.read)
            .await?
            .map(|r| summary_row(&r))
            .transpose()
    }

    #[instrument(skip_all)]
    async fn conversation_of(
        &self,
        contact: ContactId,
        inbox: InboxId,
    ) -> Result<Option<Conversation>> {
        sqlx::query("SELECT * FROM conversations WHERE contact_id = ? AND inbox_id = ?")
            .bind(contact.to_string())
            .bind(inbox.to_string())
            .fetch_optional(&self.read)
            .await?
            .map(|r| conversation_row(&r))
            .transpose()
    }

    #[instrument(skip_all)]
    async fn list_conversations(&self, q: &ConversationQuery) -> Result<Page<ConversationSummary>> {
        crate::search::list(self, q).await
    }

    #[instrument(skip_all)]
    async fn messages(
        &self,
        conv: ConversationId,
        before: Option<MessageCursor>,
        limit: u32,
        public_only: bool,
    ) -> Result<Page<Message>> {
        let limit = limit.clamp(1, 200);
        let mut sql = String::from("SELECT * FROM messages WHERE conversation_id = ?");
        if public_only {
            sql.push_str(" AND kind NOT IN ('note', 'agent_to_agent')");
        }
        if before.is_some() {
            sql.push_str(" AND (created_at < ? OR (created_at = ? AND id < ?))");
        }
        sql.push_str(" ORDER BY created_at DESC, id DESC LIMIT ?");
        let mut query = sqlx::query(AssertSqlSafe(sql)).bind(conv.to_string());
        if let Some(b) = before {
            query = query
                .bind(b.created_at.millis())
                .bind(b.created_at.millis())
                .bind(b.id.to_string());
        }
        let rows = query
            .bind(i64::from(limit) + 1)
            .fetch_all(&self.read)
            .await?;
        let mut items = rows.iter().map(message_row).collect::<Result<Vec<_>>>()?;
        let next_cursor = if items.len() > limit as usize {
            items.truncate(limit as usize);
            items.last().map(|m| {
                MessageCursor {
                    created_at: m.created_at,
                    id: m.id,
                }
                .encode()
            })
        } else {
            None
        };
        items.reverse();
        Ok(Page { items, next_cursor })
    }

    #[instrument(skip_all)]
    async fn history(&self, conv: ConversationId) -> Result<Vec<ActionLogEntry>> {
        sqlx::query("SELECT * FROM action_log WHERE conversation_id = ? ORDER BY created_at, id")
            .bind(conv.to_string())
            .fetch_all(&self.read)
            .await?
            .iter()
            .map(|r| {
                Ok(ActionLogEntry {
                    id: uuid_of(r, "id")?,
                    conversation_id: ConversationId(uuid_of(r, "conversation_id")?),
                    kind: r.try_get("kind")?,
                    actor_id: opt_uuid_of(r, "actor_id")?.map(AgentId),
                    detail: json_of(r, "detail")?,
                    created_at: ts(r, "created_at")?,
                })
            })
            .collect()
    }

    #[instrument(skip_all)]
    async fn apply(&self, change: Change) -> Result<Vec<Event>> {
        let mut conn = self.write.acquire().await?;
        let mut tx = conn.begin().await?;
        let events = write_change(&mut tx, change).await?;
        tx.commit().await?;
        self.publish(&events);
        Ok(events)
    }

    #[instrument(skip_all)]
    async fn mark_read(&self, conv: ConversationId) -> Result<()> {
        let mut conn = self.write.acquire().await?;
        sqlx::query("UPDATE conversations SET unread_count = 0 WHERE id = ?")
            .bind(conv.to_string())
            .execute(&mut *conn)
            .await?;
        Ok(())
    }

    #[instrument(skip_all, fields(batch = batch.len()))]
    async fn ingest(
        &self,
        batch: &[Inbound],
        now: Timestamp,
    ) -> Result<Vec<Result<Ingested, IngestError>>> {
        let mut conn = self.write.acquire().await?;
        let mut tx = conn.begin().await?;
        let mut events = Vec::with_capacity(batch.len() * 2);
        let items: Vec<&Inbound> = batch.iter().collect();
        let out = ingest::ingest_batch(&mut tx, &items, &[], &[], now, &mut events).await?;
        tx.commit().await?;
        self.publish(&events);
        Ok(out)
    }

    #[instrument(skip_all)]
    async fn list_tags(&self, ws: WorkspaceId) -> Result<Vec<Tag>> {
        sqlx::query("SELECT id, name FROM tags WHERE workspace_id = ? ORDER BY name")
            .bind(ws.to_string())
            .fetch_all(&self.read)
            .await?
            .iter()
            .map(|r| {
                Ok(Tag {
                    id: TagId(uuid_of(r, "id")?),
                    name: r.try_get("name")?,
                })
            })
            .collect()
    }

    #[instrument(skip_all)]
    async fn list_quick_replies(
        &self,
        ws: WorkspaceId,
        prefix: Option<&str>,
    ) -> Result<Vec<QuickReply>> {
        let pattern = format!(
            "{}%",
            prefix
                .unwrap_or("")
                .replace('\\', "\\\\")
                .replace('%', "\\%")
                .replace('_', "\\_")
        );
        sqlx::query("SELECT * FROM quick_replies WHERE workspace_id = ? AND code LIKE ? ESCAPE '\\' ORDER BY code")
            .bind(ws.to_string())
            .bind(pattern)
            .fetch_all(&self.read)
            .await?
            .iter()
            .map(quick_reply_row)
            .collect()
    }

    #[instrument(skip_all)]
    async fn quick_reply(&self, id: QuickReplyId) -> Result<Option<QuickReply>> {
        sqlx::query("SELECT * FROM quick_replies WHERE id = ?")
            .bind(id.to_string())
            .fetch_optional(&self.read)
            .await?
            .map(|r| quick_reply_row(&r))
            .transpose()
    }

    #[instrument(skip_all)]
    async fn save_quick_reply(&self, qr: &QuickReply, now: Timestamp, create: bool) -> Result<()> {
        let mut conn = self.write.acquire().await?;
        let res = if create {
            sqlx::query("INSERT INTO quick_replies (id, workspace_id, code, body, created_at) VALUES (?, ?, ?, ?, ?)")
                .bind(qr.id.to_string())
                .bind(qr.workspace_id.to_string())
                .bind(&qr.code)
                .bind(&qr.text)
                .bind(now.millis())
                .execute(&mut *conn)
                .await
        } else {
            sqlx::query("UPDATE quick_replies SET code = ?, body = ? WHERE id = ?")
                .bind(&qr.code)
                .bind(&qr.text)
                .bind(qr.id.to_string())
                .execute(&mut *conn)
                .await
        };
        let done = res.map_err(|e| {
            if unique_violation(&e) {
                StoreError::Conflict("code")
            } else {
                e.into()
            }
        })?;
        if done.rows_affected() == 0 {
            Err(StoreError::NotFound)
        } else {
            Ok(())
        }
    }

    #[instrument(skip_all)]
    async fn delete_quick_reply(&self, id: QuickReplyId) -> Result<bool> {
        let mut conn = self.write.acquire().await?;
        Ok(sqlx::query("DELETE FROM quick_replies WHERE id = ?")
            .bind(id.to_string())
            .execute(&mut *conn)
            .await?
            .rows_affected()
            > 0)
    }

    #[instrument(skip_all)]
    async fn events_since(
        &self,
        since: i64,
        inboxes: Option<&[InboxId]>,
        limit: u32,
    ) -> Result<Vec<Event>> {
        let rows = match inboxes {
            None => {
                sqlx::query("SELECT * FROM events WHERE seq > ? ORDER BY seq LIMIT ?")
                    .bind(since)
                    .bind(i64::from(limit))
                    .fetch_all(&self.read)
                    .await?
            }
            Some(ids) => {
                sqlx::query("SELECT * FROM events WHERE seq > ? AND inbox_id IN (SELECT value FROM json_each(?)) ORDER BY seq LIMIT ?")
                    .bind(since)
                    .bind(ids_json(ids))
                    .bind(i64::from(limit))
                    .fetch_all(&self.read)
                    .await?
            }
        };
        rows.iter().map(event_row).collect()
    }

    #[instrument(skip_all)]
    async fn last_event_seq(&self) -> Result<i64> {
        Ok(sqlx::query("SELECT COALESCE(MAX(seq), 0) FROM events")
            .fetch_one(&self.read)
            .await?
            .try_get(0)?)
    }
}

fn quick_reply_row(r: &SqliteRow) -> Result<QuickReply> {
    Ok(QuickReply {
        id: QuickReplyId(uuid_of(r, "id")?),
        workspace_id: WorkspaceId(uuid_of(r, "workspace_id")?),
        code: r.try_get("code")?,
        text: r.try_get("body")?,
    })
}

#[cfg(test)]
mod search_tests {
    #[test]
    fn typed_words_become_prefix_terms() {
        let q = |s: &str| super::fts_query(&crate::search::words(s), true);
        assert_eq!(q("  Khách  0912 "), "\"khach\" \"0912\"*");
        assert_eq!(q("#123"), "\"123\"*");
        assert_eq!(q("đơn say \"hi\""), "\"don\" \"say\" \"hi\"*");
    }
}
