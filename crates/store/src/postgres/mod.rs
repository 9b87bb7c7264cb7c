//! The PostgreSQL store (scale-out): the same [`Store`] as SQLite, for several stateless nodes
//! sharing one database. Where SQLite relies on its single writer connection, this backend uses
//! row locks: compare-and-set `UPDATE … WHERE version = $n`, `FOR UPDATE` on the rows a decision
//! depends on, `FOR UPDATE SKIP LOCKED` to hand timers and outbox rows to exactly one node, and
//! transaction-scoped advisory locks where a row that does not exist yet must be created once
//! (a customer's first message arriving on two nodes at once).
//!
//! **Event numbering.** Events are rows whose `seq` is the clients' cursor, and a client resuming
//! with `since=N` must never miss an event that commits later with a number below N. A sequence
//! cannot promise that (numbers are taken at insert time, transactions commit in any order), so
//! events are numbered from one counter row (`event_counter`), updated as the *last* statement of
//! every transaction that writes events ([`number_events`]). Its row lock is held until commit, so
//! event-producing commits are serialised in `seq` order: when seq N is visible, every lower seq is
//! visible too. Because the counter is always the last lock taken, it cannot deadlock with the row
//! locks taken before it, and it is held only for the commit itself (group commit keeps that rare).

use crate::batch::preview;
use crate::migrate;
use crate::*;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions, PgRow};
use sqlx::{AssertSqlSafe, Connection, PgConnection, PgPool, Row};
use std::str::FromStr;
use std::sync::RwLock;
use std::time::Duration;
use switchboard_core::event::{self, Event, EventDraft, EventKind};
use tracing::instrument;
use uuid::Uuid;

// Routing and timers: a child module so it shares this file's private row helpers.
mod routing;
// Provider channels (Messenger, Instagram) and the outbox: likewise.
mod meta;
// The group-commit ingest of customer messages: a fixed number of statements per batch.
mod ingest;
// WhatsApp, Zalo OA, Telegram and Shopee: statuses, lookups by account, templates, metering.
mod providers;
// The SQL operations the shared logic is written in (`crate::sql`).
mod conn;

pub(crate) const MIGRATIONS: &[migrate::Migration] = &[
    migrate::Migration {
        version: 1,
        name: "init",
        sql: include_str!("../../migrations/postgres/0001_init.sql"),
    },
    migrate::Migration {
        version: 2,
        name: "routing",
        sql: include_str!("../../migrations/postgres/0002_routing.sql"),
    },
    migrate::Migration {
        version: 3,
        name: "meta",
        sql: include_str!("../../migrations/postgres/0003_meta.sql"),
    },
    migrate::Migration {
        version: 4,
        name: "media",
        sql: include_str!("../../migrations/postgres/0004_media.sql"),
    },
    migrate::Migration {
        version: 5,
        name: "channels",
        sql: include_str!("../../migrations/postgres/0005_channels.sql"),
    },
    migrate::Migration {
        version: 6,
        name: "usage_counts",
        sql: include_str!("../../migrations/postgres/0006_usage_counts.sql"),
    },
    migrate::Migration {
        version: 7,
        name: "search",
        sql: include_str!("../../migrations/postgres/0007_search.sql"),
    },
];

/// Connections per node. Each node has its own pool; size PostgreSQL's `max_connections` for
/// `nodes × this` plus headroom.
const POOL_SIZE: u32 = 16;

pub struct PgStore {
    // One pool; `write` and `read` name the same connections (unlike SQLite, PostgreSQL has no
    // single writer) so the code reads like the SQLite store it mirrors.
    write: PgPool,
    read: PgPool,
    hook: RwLock<Option<CommitHook>>,
}

#[async_trait]
impl crate::sql::Db for PgStore {
    type Conn = PgConnection;
    type Tx = sqlx::Transaction<'static, sqlx::Postgres>;
    type Pooled = sqlx::pool::PoolConnection<sqlx::Postgres>;

    async fn begin(&self) -> Result<Self::Tx> {
        Ok(self.write.begin().await?)
    }

    /// Events reach the hook in commit order per node only; across nodes the bus re-orders by
    /// `seq` (and fills gaps from the store), which the counter makes safe.
    async fn end(&self, tx: Self::Tx, events: &[Event]) -> Result<()> {
        tx.commit().await?;
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
        None
    }
}

impl PgStore {
    /// Connects and applies pending migrations (several nodes starting at once take turns).
    pub async fn open(url: &str) -> Result<Self> {
        // Every query here is a short interactive one. JIT compilation (on by default above a cost
        // estimate) and parallel workers each added more than they saved: a text search that runs
        // in under a millisecond took ~460 ms with JIT and ~12 ms with worker start-up (the
        // benchmark's 1 M-conversation dataset, BENCHMARKS.md).
        let opts = PgConnectOptions::from_str(url)?
            .application_name("switchboard")
            .options([("jit", "off"), ("max_parallel_workers_per_gather", "0")]);
        let pool = PgPoolOptions::new()
            .max_connections(POOL_SIZE)
            .acquire_timeout(Duration::from_secs(30))
            .connect_with(opts)
            .await?;
        let store = Self {
            write: pool.clone(),
            read: pool,
            hook: RwLock::new(None),
        };
        store.migrate().await?;
        Ok(store)
    }

    async fn migrate(&self) -> Result<()> {
        let mut conn = self.write.acquire().await?;
        let mut tx = conn.begin().await?;
        // Nodes starting together: one migrates, the others wait here and then find nothing to do.
        // (Per schema: deployments, or tests, in other schemas of the same database do not wait.)
        sqlx::query(
            "SELECT pg_advisory_xact_lock(hashtextextended('switchboard-migrate:' || current_schema(), 0))",
        )
        .execute(&mut *tx)
        .await?;
        sqlx::query("CREATE TABLE IF NOT EXISTS schema_migrations (version BIGINT PRIMARY KEY, name TEXT NOT NULL, applied_at BIGINT NOT NULL)")
            .execute(&mut *tx)
            .await?;
        let done: Vec<i64> = sqlx::query("SELECT version FROM schema_migrations")
            .fetch_all(&mut *tx)
            .await?
            .iter()
            .map(|r| r.try_get::<i64, _>(0))
            .collect::<Result<_, _>>()?;
        for m in MIGRATIONS.iter().filter(|m| !done.contains(&m.version)) {
            // A migration over a large database can take minutes (building an index): say so.
            tracing::info!(version = m.version, name = m.name, "applying migration");
            for stmt in migrate::statements(m.sql) {
                sqlx::query(AssertSqlSafe(stmt)).execute(&mut *tx).await?;
            }
            sqlx::query(
                "INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, 0)",
            )
            .bind(m.version)
            .bind(m.name)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    pub(crate) async fn writer(&self) -> Result<sqlx::pool::PoolConnection<sqlx::Postgres>> {
        Ok(self.write.acquire().await?)
    }

    pub(crate) fn reader(&self) -> &PgPool {
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

    /// Numbers the transaction's events, commits, then hands them to the commit hook. Events reach
    /// the hook in commit order per node only; across nodes the bus re-orders by `seq` (and fills
    /// gaps from the store), which the counter makes safe.
    async fn commit(
        &self,
        mut tx: sqlx::Transaction<'_, sqlx::Postgres>,
        events: &mut [Event],
    ) -> Result<()> {
        number_events(&mut tx, events).await?;
        tx.commit().await?;
        self.publish(events);
        Ok(())
    }
}

/// Whether an error is PostgreSQL giving up on one of two transactions that waited on each other
/// (deadlock or serialization failure): the transaction can simply be run again.
pub(crate) fn retryable(e: &StoreError) -> bool {
    matches!(e, StoreError::Db(sqlx::Error::Database(d))
        if matches!(d.code().as_deref(), Some("40P01" | "40001")))
}

// ---------------------------------------------------------------- row mapping

fn corrupt(what: &str) -> StoreError {
    StoreError::Corrupt(what.to_owned())
}

fn uuid_of(row: &PgRow, col: &str) -> Result<Uuid> {
    let s: String = row.try_get(col)?;
    Uuid::parse_str(&s).map_err(|_| corrupt(col))
}

fn opt_uuid_of(row: &PgRow, col: &str) -> Result<Option<Uuid>> {
    let s: Option<String> = row.try_get(col)?;
    s.map(|s| Uuid::parse_str(&s).map_err(|_| corrupt(col)))
        .transpose()
}

fn ts(row: &PgRow, col: &str) -> Result<Timestamp> {
    Ok(Timestamp(row.try_get::<i64, _>(col)?))
}

fn opt_ts(row: &PgRow, col: &str) -> Result<Option<Timestamp>> {
    Ok(row.try_get::<Option<i64>, _>(col)?.map(Timestamp))
}

fn json_of<T: serde::de::DeserializeOwned>(row: &PgRow, col: &str) -> Result<T> {
    let s: String = row.try_get(col)?;
    serde_json::from_str(&s).map_err(|_| corrupt(col))
}

fn enum_of<T>(row: &PgRow, col: &str, parse: fn(&str) -> Option<T>) -> Result<T> {
    let s: String = row.try_get(col)?;
    parse(&s).ok_or_else(|| corrupt(col))
}

fn agent_row(r: &PgRow) -> Result<Agent> {
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

fn inbox_row(r: &PgRow) -> Result<Inbox> {
    Ok(Inbox {
        id: InboxId(uuid_of(r, "id")?),
        workspace_id: WorkspaceId(uuid_of(r, "workspace_id")?),
        name: r.try_get("name")?,
        channel: enum_of(r, "channel", ChannelKind::parse)?,
        settings: json_of(r, "settings")?,
        created_at: ts(r, "created_at")?,
    })
}

fn contact_row(r: &PgRow) -> Result<Contact> {
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

fn conversation_row(r: &PgRow) -> Result<Conversation> {
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

fn summary_row(r: &PgRow) -> Result<ConversationSummary> {
    Ok(ConversationSummary {
        conversation: conversation_row(r)?,
        contact_name: r.try_get("contact_name")?,
        channel: enum_of(r, "channel", ChannelKind::parse)?,
        inbox_name: r.try_get("inbox_name")?,
        last_message_preview: r.try_get("last_message_preview")?,
        unread_count: r.try_get("unread_count")?,
    })
}

fn message_row(r: &PgRow) -> Result<Message> {
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

fn event_row(r: &PgRow) -> Result<Event> {
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
    json_text(&id_strings(ids))
}

/// Ids as a `text[]` parameter (`= ANY($n)`).
fn id_strings<T: std::fmt::Display>(ids: &[T]) -> Vec<String> {
    ids.iter().map(ToString::to_string).collect()
}

/// Takes transaction-scoped advisory locks on `keys` in one sorted order (so two batches never
/// wait on each other in a cycle). Used where a row that may not exist yet must be created once:
/// a customer's identity, contact and conversation when their messages reach two nodes at once.
async fn lock_keys(conn: &mut PgConnection, mut keys: Vec<String>) -> Result<()> {
    if keys.is_empty() {
        return Ok(());
    }
    keys.sort();
    keys.dedup();
    sqlx::query(
        "SELECT count(pg_advisory_xact_lock(hashtextextended(k, 0)))          FROM (SELECT k FROM unnest($1::text[]) AS u(k) ORDER BY k COLLATE \"C\") AS s",
    )
    .bind(keys)
    .fetch_one(&mut *conn)
    .await?;
    Ok(())
}

/// The advisory-lock key of the customer an inbound message comes from.
fn sender_key(inbox: InboxId, sender: &InboundSender) -> String {
    match sender {
        InboundSender::Contact(c) => format!("sender:{inbox}:contact:{c}"),
        InboundSender::Identity { external_id, .. } => format!("sender:{inbox}:id:{external_id}"),
    }
}

// ---------------------------------------------------------------- writes inside a transaction

const CONVERSATION_COLUMNS: &str = "c.id, c.workspace_id, c.inbox_id, c.contact_id, c.status, c.assignee_id, \
     c.last_assignee_id, c.participants, c.tags, c.last_customer_message_at, c.last_agent_reply_at, \
     c.last_activity_at, c.created_at, c.version, c.last_message_preview, c.unread_count";

async fn load_conversation(
    conn: &mut PgConnection,
    id: ConversationId,
) -> Result<Option<Conversation>> {
    sqlx::query("SELECT * FROM conversations c WHERE id = $1")
        .bind(id.to_string())
        .fetch_optional(conn)
        .await?
        .map(|r| conversation_row(&r))
        .transpose()
}

/// Like [`load_conversation`], holding the row until commit: what is read is what is replaced.
async fn lock_conversation(
    conn: &mut PgConnection,
    id: ConversationId,
) -> Result<Option<Conversation>> {
    sqlx::query("SELECT * FROM conversations c WHERE id = $1 FOR UPDATE")
        .bind(id.to_string())
        .fetch_optional(conn)
        .await?
        .map(|r| conversation_row(&r))
        .transpose()
}

async fn insert_conversation(conn: &mut PgConnection, c: &Conversation) -> Result<()> {
    sqlx::query(
        "INSERT INTO conversations (id, workspace_id, inbox_id, contact_id, status, assignee_id, last_assignee_id, \
         participants, tags, last_customer_message_at, last_agent_reply_at, last_activity_at, created_at, version) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)",
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
    conn: &mut PgConnection,
    c: &Conversation,
    expected: i64,
) -> Result<()> {
    let done = sqlx::query(
        "UPDATE conversations SET status = $1, assignee_id = $2, last_assignee_id = $3, participants = $4, tags = $5, \
         last_customer_message_at = $6, last_agent_reply_at = $7, last_activity_at = $8, version = $9 \
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
async fn sync_tags(conn: &mut PgConnection, c: &Conversation, now: Timestamp) -> Result<()> {
    sqlx::query("DELETE FROM conversation_tags WHERE conversation_id = $1")
        .bind(c.id.to_string())
        .execute(&mut *conn)
        .await?;
    for name in &c.tags {
        sqlx::query("INSERT INTO tags (id, workspace_id, name, created_at) VALUES ($1, $2, $3, $4) ON CONFLICT (workspace_id, name) DO NOTHING")
            .bind(Uuid::now_v7().to_string())
            .bind(c.workspace_id.to_string())
            .bind(name)
            .bind(now.millis())
            .execute(&mut *conn)
            .await?;
        sqlx::query(
            "INSERT INTO conversation_tags (tag_id, conversation_id) \
             SELECT id, $1 FROM tags WHERE workspace_id = $2 AND name = $3 ON CONFLICT DO NOTHING",
        )
        .bind(c.id.to_string())
        .bind(c.workspace_id.to_string())
        .bind(name)
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

async fn insert_message(conn: &mut PgConnection, m: &Message) -> Result<bool> {
    let done = sqlx::query(
        "INSERT INTO messages (id, conversation_id, inbox_id, direction, sender_kind, sender_agent_id, kind, body, \
         provider_message_id, delivery_status, failure_reason, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) \
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
    conn: &mut PgConnection,
    conv: ConversationId,
    actions: &[Action],
    now: Timestamp,
) -> Result<()> {
    if actions.is_empty() {
        return Ok(());
    }
    let mut rows = PendingRows::default();
    rows.actions(conv, actions, now);
    rows.write(conn).await
}

/// An action-log row: id, conversation, kind, actor, detail (JSON), time.
type ActionRow = (
    Uuid,
    ConversationId,
    &'static str,
    Option<AgentId>,
    String,
    Timestamp,
);

/// Messages and action-log rows of a batch, written with one multi-row statement each
/// (`unnest()` arrays: per-row statements cost a round trip each, see `shared/perf-limits.md`).
#[derive(Default)]
pub(crate) struct PendingRows {
    messages: Vec<Message>,
    actions: Vec<ActionRow>,
}

impl PendingRows {
    fn actions(&mut self, conv: ConversationId, actions: &[Action], now: Timestamp) {
        for a in actions {
            self.actions.push((
                Uuid::now_v7(),
                conv,
                a.kind.as_str(),
                a.actor,
                json_text(&a.detail),
                now,
            ));
        }
    }

    pub(crate) async fn write(&mut self, conn: &mut PgConnection) -> Result<()> {
        if !self.messages.is_empty() {
            let ms = std::mem::take(&mut self.messages);
            sqlx::query(
                "INSERT INTO messages (id, conversation_id, inbox_id, direction, sender_kind, sender_agent_id, kind, body, \
                 provider_message_id, delivery_status, failure_reason, created_at) \
                 SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], \
                 $8::text[], $9::text[], $10::text[], $11::text[], $12::bigint[]) \
                 ON CONFLICT (inbox_id, provider_message_id) DO NOTHING",
            )
            .bind(ms.iter().map(|m| m.id.to_string()).collect::<Vec<_>>())
            .bind(ms.iter().map(|m| m.conversation_id.to_string()).collect::<Vec<_>>())
            .bind(ms.iter().map(|m| m.inbox_id.to_string()).collect::<Vec<_>>())
            .bind(ms.iter().map(|m| m.direction.as_str()).collect::<Vec<_>>())
            .bind(ms.iter().map(|m| m.sender_kind.as_str()).collect::<Vec<_>>())
            .bind(ms.iter().map(|m| m.sender_agent_id.map(|a| a.to_string())).collect::<Vec<_>>())
            .bind(ms.iter().map(|m| m.kind.as_str()).collect::<Vec<_>>())
            .bind(ms.iter().map(|m| m.text.clone()).collect::<Vec<_>>())
            .bind(ms.iter().map(|m| m.provider_message_id.clone()).collect::<Vec<_>>())
            .bind(ms.iter().map(|m| m.delivery_status.as_str()).collect::<Vec<_>>())
            .bind(ms.iter().map(|m| m.failure_reason.clone()).collect::<Vec<_>>())
            .bind(ms.iter().map(|m| m.created_at.millis()).collect::<Vec<_>>())
            .execute(&mut *conn)
            .await?;
        }
        if !self.actions.is_empty() {
            let acts = std::mem::take(&mut self.actions);
            sqlx::query(
                "INSERT INTO action_log (id, conversation_id, kind, actor_id, detail, created_at) \
                 SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::bigint[])",
            )
            .bind(acts.iter().map(|a| a.0.to_string()).collect::<Vec<_>>())
            .bind(acts.iter().map(|a| a.1.to_string()).collect::<Vec<_>>())
            .bind(acts.iter().map(|a| a.2).collect::<Vec<_>>())
            .bind(acts.iter().map(|a| a.3.map(|x| x.to_string())).collect::<Vec<_>>())
            .bind(acts.iter().map(|a| a.4.clone()).collect::<Vec<_>>())
            .bind(acts.iter().map(|a| a.5.millis()).collect::<Vec<_>>())
            .execute(&mut *conn)
            .await?;
        }
        Ok(())
    }
}

/// Collects a transaction's events; they are numbered and written by [`number_events`] just before
/// commit (with `seq` 0 until then).
async fn insert_events(
    _conn: &mut PgConnection,
    ws: WorkspaceId,
    drafts: Vec<EventDraft>,
    now: Timestamp,
    out: &mut Vec<Event>,
) -> Result<()> {
    out.extend(drafts.into_iter().map(|d| Event {
        seq: 0,
        workspace_id: ws,
        inbox_id: d.inbox_id,
        conversation_id: d.conversation_id,
        kind: d.kind,
        payload: d.payload,
        created_at: now,
    }));
    Ok(())
}

/// Numbers and writes the transaction's events: one counter update (whose row lock serialises
/// event-producing commits, see the module docs) and one multi-row insert. Must be the last
/// statement before `COMMIT`.
async fn number_events(conn: &mut PgConnection, events: &mut [Event]) -> Result<()> {
    if events.is_empty() {
        return Ok(());
    }
    let n = i64::try_from(events.len()).unwrap_or(i64::MAX);
    let last: i64 = sqlx::query(
        "UPDATE event_counter SET last_seq = last_seq + $1 WHERE id = 1 RETURNING last_seq",
    )
    .bind(n)
    .fetch_one(&mut *conn)
    .await?
    .try_get(0)?;
    let mut seq = last - n;
    let (mut seqs, mut wss, mut inboxes, mut convs, mut kinds, mut payloads, mut ats) = (
        Vec::with_capacity(events.len()),
        Vec::with_capacity(events.len()),
        Vec::with_capacity(events.len()),
        Vec::with_capacity(events.len()),
        Vec::with_capacity(events.len()),
        Vec::with_capacity(events.len()),
        Vec::with_capacity(events.len()),
    );
    for e in events.iter_mut() {
        seq += 1;
        e.seq = seq;
        seqs.push(seq);
        wss.push(e.workspace_id.to_string());
        inboxes.push(e.inbox_id.map(|i| i.to_string()));
        convs.push(e.conversation_id.map(|c| c.to_string()));
        kinds.push(e.kind.as_str());
        payloads.push(json_text(&e.payload));
        ats.push(e.created_at.millis());
    }
    sqlx::query(
        "INSERT INTO events (seq, workspace_id, inbox_id, conversation_id, kind, payload, created_at) \
         SELECT * FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::bigint[])",
    )
    .bind(seqs)
    .bind(wss)
    .bind(inboxes)
    .bind(convs)
    .bind(kinds)
    .bind(payloads)
    .bind(ats)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

async fn insert_contact(conn: &mut PgConnection, c: &Contact) -> Result<()> {
    sqlx::query("INSERT INTO contacts (id, workspace_id, name, phone, email, notes, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)")
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
    conn: &mut PgConnection,
    inbox: InboxId,
    external_id: &str,
    contact: ContactId,
    now: Timestamp,
) -> Result<()> {
    sqlx::query("INSERT INTO contact_identities (inbox_id, external_id, contact_id, created_at) VALUES ($1, $2, $3, $4)")
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
async fn write_change(conn: &mut PgConnection, change: Change) -> Result<Vec<Event>> {
    if let Some(c) = &change.conversation {
        let before = lock_conversation(conn, c.id).await?;
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
            sqlx::query("UPDATE conversations SET last_message_preview = $1, unread_count = CASE WHEN $2 THEN 0 ELSE unread_count END WHERE id = $3")
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

enum Bind {
    Text(String),
    Int(i64),
    Texts(Vec<String>),
}

/// Numbers the `?` placeholders of a query built from parts (`$1`, `$2`, …). Our SQL has no `?`
/// anywhere else (no jsonb operators, no literals with question marks).
fn numbered(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len() + 16);
    let mut n = 0;
    for ch in sql.chars() {
        if ch == '?' {
            n += 1;
            out.push('$');
            out.push_str(&n.to_string());
        } else {
            out.push(ch);
        }
    }
    out
}

/// `expr` lower-cased and without diacritics, in SQL: decomposed (NFD), the combining marks
/// dropped, then lower-cased (the columns are `COLLATE "C"`, whose `lower()` folds ASCII only —
/// enough once the marks are gone), and đ, which does not decompose, made d. A `translate()` over
/// every accented letter did the same at ten times the cost (43 µs a message): it was a fifth of
/// PostgreSQL's work on the ingest benchmark, through the search index.
fn folded_sql(expr: &str) -> String {
    format!(
        "translate(lower(regexp_replace(normalize({expr}, NFD), '[\\u0300-\\u036f]', '', 'g')), 'đĐ', 'dd')"
    )
}

/// The folded text of a contact's name, phone and email (`alias` names the contacts row).
fn contact_text(alias: &str) -> String {
    format!(
        "COALESCE({alias}name, '') || ' ' || COALESCE({alias}phone, '') || ' ' || COALESCE({alias}email, '')"
    )
}

/// The tsvector the search indexes are built on (migration 7): `expr` folded, cut into words.
fn tsvector_sql(expr: &str) -> String {
    format!("to_tsvector('simple'::regconfig, {})", folded_sql(expr))
}

impl PgStore {
    /// The conversation list's rows: the filters of `q` and its cursor, plus `extra` (SQL, with
    /// its binds), newest first, at most `take`.
    async fn list_rows(
        &self,
        q: &ConversationQuery,
        extra: Option<(String, Vec<Bind>)>,
        take: usize,
        persistent: bool,
    ) -> Result<Vec<ConversationSummary>> {
        let (filters, list_binds) = crate::search::list_filters(q, "= ANY(?)");
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
                crate::search::ListBind::Ids(v) => Bind::Texts(v),
            })
            .collect();
        if let Some((more, more_binds)) = extra {
            sql.push_str(&more);
            binds.extend(more_binds);
        }
        sql.push_str(" ORDER BY c.last_activity_at DESC, c.id DESC LIMIT ?");
        binds.push(Bind::Int(i64::try_from(take).unwrap_or(i64::MAX)));
        let mut query = sqlx::query(AssertSqlSafe(numbered(&sql))).persistent(persistent);
        for b in binds {
            query = match b {
                Bind::Text(s) => query.bind(s),
                Bind::Int(i) => query.bind(i),
                Bind::Texts(v) => query.bind(v),
            };
        }
        let rows = query.fetch_all(&self.read).await?;
        rows.iter().map(summary_row).collect()
    }
}

#[async_trait]
impl crate::search::SearchBackend for PgStore {
    async fn rows(&self, q: &ConversationQuery, take: usize) -> Result<Vec<ConversationSummary>> {
        self.list_rows(q, None, take, true).await
    }

    async fn texts(&self, ids: &[ConversationId]) -> Result<Vec<crate::search::TextRow>> {
        let rows = sqlx::query(AssertSqlSafe(format!(
            "SELECT c.id, {} AS contact, m.body FROM conversations c JOIN contacts ct ON ct.id = c.contact_id \
             LEFT JOIN LATERAL (SELECT body FROM messages WHERE conversation_id = c.id \
             ORDER BY created_at DESC, id DESC LIMIT $2) m ON TRUE WHERE c.id = ANY($1)",
            contact_text("ct.")
        )))
        .bind(id_strings(ids))
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
        text: &str,
        _words: &[String],
        take: usize,
    ) -> Result<Vec<ConversationSummary>> {
        // PostgreSQL's own parser cuts the typed words, as it cut the indexed text; the last one
        // becomes a prefix term.
        let lexemes: Vec<(String, i32)> = sqlx::query_as(AssertSqlSafe(format!(
            "SELECT quote_literal(lexeme), COALESCE((SELECT max(p) FROM unnest(positions) AS p), 0)::int \
             FROM unnest(to_tsvector('simple'::regconfig, {}))",
            folded_sql("$1")
        )))
        .bind(text)
        .fetch_all(&self.read)
        .await?;
        let Some(last) = lexemes.iter().map(|l| l.1).max() else {
            return Ok(Vec::new());
        };
        let tsq = lexemes
            .iter()
            .map(|(l, at)| format!("{l}{}", if *at == last { ":*" } else { "" }))
            .collect::<Vec<_>>()
            .join(" & ");
        let matches = |tsv: String| format!("{tsv} @@ to_tsquery('simple'::regconfig, ?)");
        let extra = format!(
            " AND c.id IN (SELECT h.conversation_id FROM (SELECT m.conversation_id FROM messages m WHERE {} \
             ORDER BY m.created_at DESC LIMIT ?) h \
             UNION SELECT c2.id FROM conversations c2 WHERE c2.contact_id IN \
             (SELECT k.id FROM contacts k WHERE {} ORDER BY k.created_at DESC LIMIT ?))",
            matches(tsvector_sql("m.body")),
            matches(tsvector_sql(&contact_text("k."))),
        );
        let binds = vec![
            Bind::Text(tsq.clone()),
            Bind::Int(crate::search::DEPTH),
            Bind::Text(tsq),
            Bind::Int(crate::search::DEPTH),
        ];
        // Planned with the words at hand (not a cached generic plan): how common they are
        // decides between the index and a scan.
        self.list_rows(q, Some((extra, binds)), take, false).await
    }
}

#[async_trait]
impl Store for PgStore {
    fn set_commit_hook(&self, hook: CommitHook) {
        if let Ok(mut h) = self.hook.write() {
            *h = Some(hook);
        }
    }

    #[instrument(skip_all)]
    async fn ensure_workspace(&self, name: &str, now: Timestamp) -> Result<WorkspaceId> {
        let mut pooled = self.write.acquire().await?;
        let mut conn = pooled.begin().await?;
        // Nodes starting together: one creates the workspace, the others find it.
        lock_keys(&mut conn, vec!["workspace".into()]).await?;
        if let Some(r) = sqlx::query("SELECT id FROM workspaces ORDER BY created_at LIMIT 1")
            .fetch_optional(&mut *conn)
            .await?
        {
            return Ok(WorkspaceId(uuid_of(&r, "id")?));
        }
        let id = WorkspaceId(Uuid::now_v7());
        sqlx::query("INSERT INTO workspaces (id, name, created_at) VALUES ($1, $2, $3)")
            .bind(id.to_string())
            .bind(name)
            .bind(now.millis())
            .execute(&mut *conn)
            .await?;
        conn.commit().await?;
        Ok(id)
    }

    #[instrument(skip_all)]
    async fn setting(&self, key: &str) -> Result<Option<String>> {
        Ok(
            sqlx::query("SELECT value FROM server_settings WHERE key = $1")
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
            "INSERT INTO server_settings (key, value) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING",
        )
        .bind(key)
        .bind(value)
        .execute(&mut *conn)
        .await?;
        Ok(
            sqlx::query("SELECT value FROM server_settings WHERE key = $1")
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
            "INSERT INTO agents (id, workspace_id, email, name, role, password_hash, capacity, active, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
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
            "UPDATE agents SET email = $1, name = $2, role = $3, capacity = $4, active = $5, password_hash = COALESCE($6, password_hash) WHERE id = $7",
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
        sqlx::query("SELECT * FROM agents WHERE id = $1")
            .bind(id.to_string())
            .fetch_optional(&self.read)
            .await?
            .map(|r| agent_row(&r))
            .transpose()
    }

    #[instrument(skip_all)]
    async fn agent_credentials(&self, email: &str) -> Result<Option<(Agent, String)>> {
        let Some(r) = sqlx::query("SELECT * FROM agents WHERE email = $1")
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
        sqlx::query("SELECT * FROM agents WHERE workspace_id = $1 ORDER BY name, id")
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
        sqlx::query("INSERT INTO sessions (token_hash, agent_id, csrf_token, created_at, expires_at) VALUES ($1, $2, $3, $4, $5)")
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
        let Some(r) = sqlx::query("SELECT * FROM sessions WHERE token_hash = $1")
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
            "UPDATE sessions SET revoked_at = $1 WHERE token_hash = $2 AND revoked_at IS NULL",
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
        sqlx::query(
            "UPDATE sessions SET revoked_at = $1 WHERE agent_id = $2 AND revoked_at IS NULL",
        )
        .bind(now.millis())
        .bind(agent.to_string())
        .execute(&mut *conn)
        .await?;
        Ok(())
    }

    #[instrument(skip_all)]
    async fn create_inbox(&self, i: &Inbox) -> Result<()> {
        let mut conn = self.write.acquire().await?;
        sqlx::query("INSERT INTO inboxes (id, workspace_id, name, channel, settings, created_at) VALUES ($1, $2, $3, $4, $5, $6)")
            .bind(i.id.to_string())
            .bind(i.workspace_id.to_string())
            .bind(&i.name)
            .bind(i.channel.as_str())
            .bind(json_text(&i.settings))
            .bind(i.created_at.millis())
            .execute(&mut *conn)
            .await?;
        Ok(())
    }

    #[instrument(skip_all)]
    async fn update_inbox(&self, i: &Inbox) -> Result<()> {
        let mut conn = self.write.acquire().await?;
        let done = sqlx::query("UPDATE inboxes SET name = $1, settings = $2 WHERE id = $3")
            .bind(&i.name)
            .bind(json_text(&i.settings))
            .bind(i.id.to_string())
            .execute(&mut *conn)
            .await?;
        if done.rows_affected() == 0 {
            Err(StoreError::NotFound)
        } else {
            Ok(())
        }
    }

    #[instrument(skip_all)]
    async fn inbox(&self, id: InboxId) -> Result<Option<Inbox>> {
        sqlx::query("SELECT * FROM inboxes WHERE id = $1")
            .bind(id.to_string())
            .fetch_optional(&self.read)
            .await?
            .map(|r| inbox_row(&r))
            .transpose()
    }

    #[instrument(skip_all)]
    async fn list_inboxes(&self, ws: WorkspaceId) -> Result<Vec<Inbox>> {
        sqlx::query("SELECT * FROM inboxes WHERE workspace_id = $1 ORDER BY name, id")
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
        sqlx::query("DELETE FROM inbox_members WHERE inbox_id = $1")
            .bind(inbox.to_string())
            .execute(&mut *tx)
            .await?;
        for a in agents {
            sqlx::query("INSERT INTO inbox_members (inbox_id, agent_id) VALUES ($1, $2) ON CONFLICT DO NOTHING")
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
        sqlx::query("SELECT agent_id FROM inbox_members WHERE inbox_id = $1 ORDER BY agent_id")
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
        sqlx::query("SELECT * FROM contacts WHERE id = $1")
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
            "UPDATE contacts SET phone = $1, email = $2, notes = $3, updated_at = $4 WHERE id = $5",
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
        lock_keys(
            &mut tx,
            vec![sender_key(
                inbox,
                &InboundSender::Identity {
                    external_id: external_id.to_owned(),
                    name: None,
                },
            )],
        )
        .await?;
        let known = sqlx::query("SELECT c.* FROM contact_identities i JOIN contacts c ON c.id = i.contact_id WHERE i.inbox_id = $1 AND i.external_id = $2")
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
        sqlx::query("SELECT * FROM contact_identities WHERE contact_id = $1 ORDER BY created_at")
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
             FROM conversations c JOIN contacts ct ON ct.id = c.contact_id JOIN inboxes i ON i.id = c.inbox_id WHERE c.id = $1"
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
        sqlx::query("SELECT * FROM conversations WHERE contact_id = $1 AND inbox_id = $2")
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
        let mut query = sqlx::query(AssertSqlSafe(numbered(&sql))).bind(conv.to_string());
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
        sqlx::query("SELECT * FROM action_log WHERE conversation_id = $1 ORDER BY created_at, id")
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
        let mut events = write_change(&mut tx, change)
            .await
            .map_err(conflict_on_deadlock)?;
        self.commit(tx, &mut events)
            .await
            .map_err(conflict_on_deadlock)?;
        Ok(events)
    }

    #[instrument(skip_all)]
    async fn mark_read(&self, conv: ConversationId) -> Result<()> {
        let mut conn = self.write.acquire().await?;
        sqlx::query("UPDATE conversations SET unread_count = 0 WHERE id = $1")
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
        // A batch that lost a deadlock to another node's transaction is simply run again: nothing
        // of it was written, and its waiters are answered only after a commit.
        let mut attempt = 0;
        loop {
            attempt += 1;
            match self.ingest_batch(batch, now).await {
                Err(e) if attempt < 4 && retryable(&e) => continue,
                other => return other,
            }
        }
    }

    #[instrument(skip_all)]
    async fn list_tags(&self, ws: WorkspaceId) -> Result<Vec<Tag>> {
        sqlx::query("SELECT id, name FROM tags WHERE workspace_id = $1 ORDER BY name")
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
        sqlx::query("SELECT * FROM quick_replies WHERE workspace_id = $1 AND code ILIKE $2 ESCAPE '\\' ORDER BY code")
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
        sqlx::query("SELECT * FROM quick_replies WHERE id = $1")
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
            sqlx::query("INSERT INTO quick_replies (id, workspace_id, code, body, created_at) VALUES ($1, $2, $3, $4, $5)")
                .bind(qr.id.to_string())
                .bind(qr.workspace_id.to_string())
                .bind(&qr.code)
                .bind(&qr.text)
                .bind(now.millis())
                .execute(&mut *conn)
                .await
        } else {
            sqlx::query("UPDATE quick_replies SET code = $1, body = $2 WHERE id = $3")
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
        Ok(sqlx::query("DELETE FROM quick_replies WHERE id = $1")
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
                sqlx::query("SELECT * FROM events WHERE seq > $1 ORDER BY seq LIMIT $2")
                    .bind(since)
                    .bind(i64::from(limit))
                    .fetch_all(&self.read)
                    .await?
            }
            Some(ids) => sqlx::query(
                "SELECT * FROM events WHERE seq > $1 AND inbox_id = ANY($2) ORDER BY seq LIMIT $3",
            )
            .bind(since)
            .bind(id_strings(ids))
            .bind(i64::from(limit))
            .fetch_all(&self.read)
            .await?,
        };
        rows.iter().map(event_row).collect()
    }

    #[instrument(skip_all)]
    async fn last_event_seq(&self) -> Result<i64> {
        // The counter, not MAX(seq): it is only ever moved by committed transactions.
        Ok(
            sqlx::query("SELECT last_seq FROM event_counter WHERE id = 1")
                .fetch_one(&self.read)
                .await?
                .try_get(0)?,
        )
    }
}

impl PgStore {
    async fn ingest_batch(
        &self,
        batch: &[Inbound],
        now: Timestamp,
    ) -> Result<Vec<Result<Ingested, IngestError>>> {
        let mut conn = self.write.acquire().await?;
        let mut tx = conn.begin().await?;
        let mut events = Vec::with_capacity(batch.len() * 2);
        let out = ingest::ingest_batch(
            &mut tx,
            &batch.iter().collect::<Vec<_>>(),
            &[],
            &[],
            now,
            &mut events,
        )
        .await?;
        self.commit(tx, &mut events).await?;
        Ok(out)
    }
}

/// Callers of compare-and-set writes decide again on `VersionConflict`; a deadlock PostgreSQL broke
/// by aborting us is the same situation.
fn conflict_on_deadlock(e: StoreError) -> StoreError {
    if retryable(&e) {
        StoreError::VersionConflict
    } else {
        e
    }
}

fn quick_reply_row(r: &PgRow) -> Result<QuickReply> {
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
    fn the_search_indexes_are_built_on_what_the_queries_match() {
        let migration = include_str!("../../migrations/postgres/0007_search.sql");
        for expr in [
            super::tsvector_sql("body"),
            super::tsvector_sql(&super::contact_text("")),
        ] {
            assert!(migration.contains(&expr), "the migration lacks {expr}");
        }
    }
}
