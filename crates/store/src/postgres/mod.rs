//! The PostgreSQL store (scale-out): the same [`Store`] as SQLite, for several stateless nodes
//! sharing one database. The store's logic is written once above [`crate::sql`]; this backend is
//! its connections, its migrations, its SQL operations (`conn.rs`) and its text index
//! (`search.rs`). Where SQLite relies on its single writer connection, the shared SQL takes row
//! locks, which only this backend keeps: compare-and-set `UPDATE … WHERE version = $n`,
//! `FOR UPDATE` on the rows a decision depends on, `FOR UPDATE SKIP LOCKED` to hand timers and
//! outbox rows to exactly one node, and transaction-scoped advisory locks where a row that does not
//! exist yet must be created once (a customer's first message arriving on two nodes at once).
//!
//! **Event numbering.** Events are rows whose `seq` is the clients' cursor, and a client resuming
//! with `since=N` must never miss an event that commits later with a number below N. A sequence
//! cannot promise that (numbers are taken at insert time, transactions commit in any order), so
//! events are numbered from one counter row (`event_counter`), updated as the *last* statement of
//! every transaction that writes events (`Conn::reserve_seqs`, from `sql::commit`). Its row lock is
//! held until commit, so event-producing commits are serialised in `seq` order: when seq N is
//! visible, every lower seq is visible too. Because the counter is always the last lock taken, it
//! cannot deadlock with the row locks taken before it, and it is held only for the commit itself
//! (group commit keeps that rare).

use crate::sql::{Db, commit};
use crate::*;
use async_trait::async_trait;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{PgConnection, PgPool};
use std::str::FromStr;
use std::sync::RwLock;
use std::time::Duration;
use switchboard_core::event::Event;

mod conn;
mod search;

/// Connections per node. Each node has its own pool; size PostgreSQL's `max_connections` for
/// `nodes × this` plus headroom.
const POOL_SIZE: u32 = 16;

pub struct PgStore {
    pool: PgPool,
    hook: RwLock<Option<CommitHook>>,
    secrets: RwLock<Option<Arc<crate::secrets::SecretBox>>>,
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
            pool,
            hook: RwLock::new(None),
            secrets: RwLock::new(None),
        };
        let mut tx = store.begin().await?;
        // Nodes starting together: one migrates, the others wait here and then find nothing to do.
        // (Per schema: deployments, or tests, in other schemas of the same database do not wait.)
        crate::sql::q(
            "SELECT pg_advisory_xact_lock(hashtextextended('switchboard-migrate:' || current_schema(), 0))",
        )
        .execute(&mut *tx)
        .await?;
        crate::migrate::apply(&mut *tx, crate::migrate::POSTGRES).await?;
        commit(&store, tx, &mut []).await?;
        Ok(store)
    }
}

#[async_trait]
impl Db for PgStore {
    type Conn = PgConnection;
    type Tx = sqlx::Transaction<'static, sqlx::Postgres>;
    type Pooled = sqlx::pool::PoolConnection<sqlx::Postgres>;

    async fn begin(&self) -> Result<Self::Tx> {
        Ok(self.pool.begin().await?)
    }

    /// Events reach the hook in commit order per node only; across nodes the bus re-orders by
    /// `seq` (and fills gaps from the store), which the counter makes safe.
    async fn end(&self, tx: Self::Tx, events: &[Event]) -> Result<()> {
        tx.commit().await?;
        crate::sql::publish(&self.hook, events);
        Ok(())
    }

    async fn read(&self) -> Result<Self::Pooled> {
        Ok(self.pool.acquire().await?)
    }

    async fn autocommit(&self) -> Result<Option<Self::Pooled>> {
        Ok(Some(self.pool.acquire().await?))
    }

    fn hook(&self) -> &RwLock<Option<CommitHook>> {
        &self.hook
    }

    fn secrets(&self) -> &RwLock<Option<Arc<crate::secrets::SecretBox>>> {
        &self.secrets
    }

    fn accounts(&self) -> Option<&crate::cache::AccountCache> {
        None
    }
}
