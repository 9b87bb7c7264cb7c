//! The embedded SQLite store: one file, WAL, one writer connection (so writes never contend and
//! events are published in commit order) and a small pool of readers. The store's logic is
//! written once above [`crate::sql`]; this backend is its connections, its migrations, its SQL
//! spelling (`conn.rs`) and its text index (`search.rs`).

use crate::sql::{Db, commit};
use crate::*;
use async_trait::async_trait;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{SqliteConnection, SqlitePool};
use std::path::Path;
use std::sync::RwLock;
use std::time::Duration;
use switchboard_core::event::Event;

mod conn;
mod search;

pub struct SqliteStore {
    write: SqlitePool,
    read: SqlitePool,
    hook: RwLock<Option<CommitHook>>,
    secrets: RwLock<Option<Arc<crate::secrets::SecretBox>>>,
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

impl SqliteStore {
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
            secrets: RwLock::new(None),
            accounts: Default::default(),
            turn: Default::default(),
        };
        let mut tx = store.begin().await?;
        crate::migrate::apply(&mut *tx, crate::migrate::SQLITE).await?;
        commit(&store, tx, &mut []).await?;
        Ok(store)
    }
}

#[async_trait]
impl Db for SqliteStore {
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

    /// The single writer connection: every write goes through it, so writes never contend.
    async fn write(&self) -> Result<Self::Pooled> {
        Ok(self.write.acquire().await?)
    }

    fn hook(&self) -> &RwLock<Option<CommitHook>> {
        &self.hook
    }

    fn secrets(&self) -> &RwLock<Option<Arc<crate::secrets::SecretBox>>> {
        &self.secrets
    }

    fn accounts(&self) -> Option<&crate::cache::AccountCache> {
        Some(&self.accounts)
    }
}
