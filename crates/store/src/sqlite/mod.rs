//! The embedded SQLite store: one file, WAL, one writer connection (so writes never contend and
//! events are published in commit order) and a small pool of readers. The store's logic is
//! written once above [`crate::sql`]; this backend is its connections, its migrations, its SQL
//! spelling (`conn.rs`) and its text index (`search.rs`).
//!
//! **Group commit.** Every write transaction is a savepoint inside a group transaction on the one
//! writer connection. A transaction that ends releases its savepoint and waits; the group commits
//! (one fsync) as soon as nobody is inside it, so writers that queued while a commit was on disk
//! share the next one. Each still learns only when its own work is durable, and one that fails or
//! is dropped is rolled back to its savepoint alone; a failed commit fails every member of its
//! group (none of them was written).
//!
//! **Checkpoints in the background.** The WAL is copied back into the database by a connection of
//! its own, woken every [`CHECKPOINT_EVERY`] commits (`PRAGMA wal_checkpoint(PASSIVE)`, which
//! never blocks the writer), instead of by the commit that happens to cross SQLite's threshold —
//! that commit, and every writer queued behind it, used to wait for tens of megabytes to be copied
//! and synced. SQLite's own threshold stays as a backstop, far above what the checkpointer lets
//! the WAL reach.

use crate::sql::{Db, commit};
use crate::*;
use async_trait::async_trait;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Connection, SqliteConnection};
use std::path::Path;
use std::sync::RwLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use switchboard_core::event::Event;
use tokio::sync::{Mutex, Notify, OwnedMutexGuard, oneshot};

mod conn;
mod search;

pub struct SqliteStore {
    writer: Arc<Writer>,
    read: sqlx::SqlitePool,
    secrets: RwLock<Option<Arc<crate::secrets::SecretBox>>>,
    accounts: crate::cache::AccountCache,
}

/// The writer connection and the commit hook (a group's events are published at its commit).
struct Writer {
    group: Arc<Mutex<Group>>,
    hook: RwLock<Option<CommitHook>>,
    /// Group commits so far; every [`CHECKPOINT_EVERY`]th wakes the checkpointer.
    commits: AtomicU64,
    checkpoint: Arc<Notify>,
    /// Checkpoint passes done (what the tests watch).
    checkpoints: Arc<AtomicU64>,
}

impl Drop for Writer {
    /// The checkpointer wakes, finds the store gone and stops.
    fn drop(&mut self) {
        self.checkpoint.notify_one();
    }
}

/// Commits between two background checkpoint passes.
const CHECKPOINT_EVERY: u64 = 128;
/// SQLite's own checkpoint threshold (pages), a backstop should the checkpointer fall behind.
const WAL_BACKSTOP_PAGES: &str = "100000";

/// The state of the writer connection; its lock is the turn to write.
struct Group {
    conn: SqliteConnection,
    /// `BEGIN` was issued and the group is not committed yet.
    open: bool,
    /// The last member was dropped before it ended: its savepoint is still to be rolled back.
    abandoned: bool,
    /// Members that ended, in order, waiting for the group's commit.
    waiting: Vec<Member>,
}

struct Member {
    events: Vec<Event>,
    done: oneshot::Sender<Result<()>>,
}

const SAVEPOINT: &str = "SAVEPOINT member";
const RELEASE: &str = "RELEASE member";
const ROLLBACK_MEMBER: &str = "ROLLBACK TO member";

async fn exec(conn: &mut SqliteConnection, sql: &'static str) -> Result<()> {
    sqlx::raw_sql(sql).execute(conn).await?;
    Ok(())
}

impl Group {
    /// Rolls back a dropped member's work (its savepoint) before anyone else writes.
    async fn settle(&mut self) {
        if !std::mem::take(&mut self.abandoned) {
            return;
        }
        let rolled_back = match exec(&mut self.conn, ROLLBACK_MEMBER).await {
            Ok(()) => exec(&mut self.conn, RELEASE).await,
            Err(e) => Err(e),
        };
        if let Err(e) = rolled_back {
            // SQLite gave up the whole transaction (an I/O error, a full disk): so does the group.
            self.fail(&e.to_string()).await;
        }
    }

    /// Abandons the open group: its members learn that nothing of theirs was written.
    async fn fail(&mut self, why: &str) {
        if self.open {
            let _ = exec(&mut self.conn, "ROLLBACK").await;
        }
        self.open = false;
        for m in self.waiting.drain(..) {
            let _ = m.done.send(Err(group_failed(why)));
        }
    }

    /// Commits the group (when it has members that ended) and tells each member, in order.
    async fn commit(&mut self, w: &Writer) {
        let hook = &w.hook;
        self.settle().await;
        if !self.open {
            return;
        }
        if let Err(e) = exec(&mut self.conn, "COMMIT").await {
            self.fail(&e.to_string()).await;
            return;
        }
        if w.commits.fetch_add(1, Ordering::Relaxed) % CHECKPOINT_EVERY == CHECKPOINT_EVERY - 1 {
            w.checkpoint.notify_one();
        }
        self.open = false;
        let members = std::mem::take(&mut self.waiting);
        let events: Vec<Event> = members
            .iter()
            .flat_map(|m| m.events.iter().cloned())
            .collect();
        crate::sql::publish(hook, &events);
        for m in members {
            let _ = m.done.send(Ok(()));
        }
    }
}

fn group_failed(why: &str) -> StoreError {
    StoreError::Db(sqlx::Error::Protocol(format!(
        "the write was rolled back with its commit group: {why}"
    )))
}

/// A write transaction: a savepoint in the writer's open group, holding the turn.
pub(crate) struct SqliteTx {
    turn: OwnedMutexGuard<Group>,
    ended: bool,
}

impl std::ops::Deref for SqliteTx {
    type Target = SqliteConnection;
    fn deref(&self) -> &SqliteConnection {
        &self.turn.conn
    }
}

impl std::ops::DerefMut for SqliteTx {
    fn deref_mut(&mut self) -> &mut SqliteConnection {
        &mut self.turn.conn
    }
}

impl Drop for SqliteTx {
    /// Dropped before it ended (an error, a cancelled caller): its work is rolled back by the next
    /// holder of the turn — or right away, so an idle writer does not keep the group open.
    fn drop(&mut self) {
        if self.ended {
            return;
        }
        self.turn.abandoned = true;
        let group = OwnedMutexGuard::mutex(&self.turn).clone();
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(async move {
                let mut g = group.lock().await;
                g.settle().await;
                if g.open && g.waiting.is_empty() {
                    g.open = false;
                    let _ = exec(&mut g.conn, "ROLLBACK").await;
                }
            });
        }
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
        let conn = SqliteConnection::connect_with(
            &base
                .clone()
                .pragma("wal_autocheckpoint", WAL_BACKSTOP_PAGES),
        )
        .await?;
        let checkpointer = SqliteConnection::connect_with(&base).await?;
        let read = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(base.read_only(false))
            .await?;
        let store = Self {
            writer: Arc::new(Writer {
                group: Arc::new(Mutex::new(Group {
                    conn,
                    open: false,
                    abandoned: false,
                    waiting: Vec::new(),
                })),
                hook: RwLock::new(None),
                commits: AtomicU64::new(0),
                checkpoint: Arc::new(Notify::new()),
                checkpoints: Arc::new(AtomicU64::new(0)),
            }),
            read,
            secrets: RwLock::new(None),
            accounts: Default::default(),
        };
        spawn_checkpointer(checkpointer, &store.writer);
        let mut tx = store.begin().await?;
        crate::migrate::apply(&mut *tx, crate::migrate::SQLITE).await?;
        commit(&store, tx, &mut []).await?;
        Ok(store)
    }
}

/// Runs `PRAGMA wal_checkpoint(PASSIVE)` on its own connection each time the writer wakes it, until
/// the store is dropped.
fn spawn_checkpointer(mut conn: SqliteConnection, writer: &Arc<Writer>) {
    let wake = writer.checkpoint.clone();
    let done = writer.checkpoints.clone();
    let alive = Arc::downgrade(writer);
    tokio::spawn(async move {
        loop {
            wake.notified().await;
            if alive.strong_count() == 0 {
                break;
            }
            match sqlx::raw_sql("PRAGMA wal_checkpoint(PASSIVE)")
                .execute(&mut conn)
                .await
            {
                Ok(_) => {
                    done.fetch_add(1, Ordering::Relaxed);
                }
                Err(e) => tracing::warn!(error = %e, "WAL checkpoint failed"),
            }
        }
        let _ = conn.close().await;
    });
}

#[async_trait]
impl Db for SqliteStore {
    type Conn = SqliteConnection;
    type Tx = SqliteTx;
    type Pooled = sqlx::pool::PoolConnection<sqlx::Sqlite>;

    async fn begin(&self) -> Result<SqliteTx> {
        let mut g = self.writer.group.clone().lock_owned().await;
        g.settle().await;
        if !g.open {
            exec(&mut g.conn, "BEGIN").await?;
            g.open = true;
        }
        exec(&mut g.conn, SAVEPOINT).await?;
        Ok(SqliteTx {
            turn: g,
            ended: false,
        })
    }

    /// Releases the savepoint, then waits for the group's commit: the first member to find the
    /// turn free commits everyone that ended before it (in a task of its own, so a caller that
    /// stops waiting does not leave the group open).
    async fn end(&self, mut tx: SqliteTx, events: &[Event]) -> Result<()> {
        exec(&mut tx, RELEASE).await?;
        let (done, committed) = oneshot::channel();
        tx.turn.waiting.push(Member {
            events: events.to_vec(),
            done,
        });
        tx.ended = true;
        drop(tx);
        let writer = self.writer.clone();
        tokio::spawn(async move {
            let mut g = writer.group.lock().await;
            if !g.waiting.is_empty() {
                g.commit(&writer).await;
            }
        });
        committed
            .await
            .unwrap_or_else(|_| Err(group_failed("the writer stopped")))
    }

    async fn read(&self) -> Result<Self::Pooled> {
        Ok(self.read.acquire().await?)
    }

    /// None: every write goes through the writer's group commits.
    async fn autocommit(&self) -> Result<Option<Self::Pooled>> {
        Ok(None)
    }

    fn hook(&self) -> &RwLock<Option<CommitHook>> {
        &self.writer.hook
    }

    fn secrets(&self) -> &RwLock<Option<Arc<crate::secrets::SecretBox>>> {
        &self.secrets
    }

    fn accounts(&self) -> Option<&crate::cache::AccountCache> {
        Some(&self.accounts)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::sql::{Db, RowRead, q};
    use std::sync::Mutex as StdMutex;

    async fn store() -> (tempfile::TempDir, Arc<SqliteStore>) {
        let dir = tempfile::tempdir().unwrap();
        let s = SqliteStore::open(&dir.path().join("t.db")).await.unwrap();
        (dir, Arc::new(s))
    }

    /// Whether `done` comes true within 20 s (work of a background task).
    async fn until(done: impl Fn() -> bool) -> bool {
        tokio::time::timeout(Duration::from_secs(20), async {
            while !done() {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
        .await
        .is_ok()
    }

    async fn keys(s: &SqliteStore) -> Vec<String> {
        q("SELECT key FROM server_settings WHERE key LIKE 'k%' ORDER BY key")
            .read_all(s, |r| Ok(r.try_get(0)?))
            .await
            .unwrap()
    }

    /// The WAL is checkpointed by the background connection as commits go by (not by the commit
    /// that crosses a threshold), and the checkpointer stops with the store.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_wal_is_checkpointed_in_the_background_every_so_many_commits() {
        let (_dir, s) = store().await;
        for i in 0..(3 * CHECKPOINT_EVERY) {
            let mut tx = s.begin().await.unwrap();
            q("INSERT INTO server_settings (key, value) VALUES ($1, 'v')")
                .bind(format!("k{i:04}"))
                .execute(&mut *tx)
                .await
                .unwrap();
            s.end(tx, &[]).await.unwrap();
        }
        let passes = s.writer.checkpoints.clone();
        assert!(
            until(|| passes.load(Ordering::Relaxed) >= 1).await,
            "a checkpoint pass"
        );
        // Everything is still there, and the writer still writes.
        assert_eq!(keys(&s).await.len() as u64, 3 * CHECKPOINT_EVERY);
        let wake = s.writer.checkpoint.clone();
        drop(s);
        // The writer is gone: the checkpointer wakes, finds nothing to do and lets go.
        assert!(
            until(|| Arc::strong_count(&wake) == 1).await,
            "the checkpointer let go of the store"
        );
    }

    /// Writers that arrive together share commits; the ones that fail or are dropped leave no
    /// trace, and the others are all there — on disk when each one's `end` returns.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_writers_share_commits_and_a_dropped_one_takes_only_its_own_work() {
        let (_dir, s) = store().await;
        let mut tasks = Vec::new();
        for i in 0..60 {
            let s = s.clone();
            tasks.push(tokio::spawn(async move {
                let mut tx = s.begin().await.unwrap();
                q("INSERT INTO server_settings (key, value) VALUES ($1, 'v')")
                    .bind(format!("k{i:02}"))
                    .execute(&mut *tx)
                    .await
                    .unwrap();
                if i % 3 == 0 {
                    drop(tx); // abandoned: an error on the way, or a caller that went away
                    return false;
                }
                s.end(tx, &[]).await.unwrap();
                // Committed: a reader on another connection sees it at once.
                let seen = q("SELECT COUNT(*) FROM server_settings WHERE key = $1")
                    .bind(format!("k{i:02}"))
                    .read_opt(&*s, |r| Ok(r.try_get::<i64, _>(0)?))
                    .await
                    .unwrap();
                assert_eq!(seen, Some(1), "k{i:02} is readable once its end returned");
                true
            }));
        }
        let mut expected = Vec::new();
        for (i, t) in tasks.into_iter().enumerate() {
            if t.await.unwrap() {
                expected.push(format!("k{i:02}"));
            }
        }
        // The dropped ones' rollback runs in the background: the next write settles it first.
        q("INSERT INTO server_settings (key, value) VALUES ('z', 'v')")
            .write(&*s)
            .await
            .unwrap();
        assert_eq!(keys(&s).await, expected);
    }

    /// A statement that fails inside a transaction (here a duplicate key) fails only its caller;
    /// a write that ends is still committed with the group.
    #[tokio::test]
    async fn a_failed_statement_fails_only_its_own_transaction() {
        let (_dir, s) = store().await;
        q("INSERT INTO server_settings (key, value) VALUES ('k1', 'v')")
            .write(&*s)
            .await
            .unwrap();
        let mut bad = s.begin().await.unwrap();
        q("INSERT INTO server_settings (key, value) VALUES ('k2', 'v')")
            .execute(&mut *bad)
            .await
            .unwrap();
        let clash = q("INSERT INTO server_settings (key, value) VALUES ('k1', 'again')")
            .execute(&mut *bad)
            .await;
        assert!(clash.is_err());
        drop(bad);
        q("INSERT INTO server_settings (key, value) VALUES ('k3', 'v')")
            .write(&*s)
            .await
            .unwrap();
        assert_eq!(keys(&s).await, ["k1", "k3"]);
    }

    /// Events reach the commit hook once, in `seq` order, however the commits were grouped.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn events_are_published_in_seq_order_across_groups() {
        let (_dir, s) = store().await;
        let seen = Arc::new(StdMutex::new(Vec::new()));
        let sink = seen.clone();
        *s.hook().write().unwrap() = Some(Arc::new(move |events: &[Event]| {
            sink.lock().unwrap().extend(events.iter().map(|e| e.seq));
        }));
        let ws = switchboard_core::WorkspaceId(uuid::Uuid::now_v7());
        let mut tasks = Vec::new();
        for _ in 0..40 {
            let s = s.clone();
            tasks.push(tokio::spawn(async move {
                let tx = s.begin().await.unwrap();
                let mut events = vec![Event {
                    seq: 0,
                    workspace_id: ws,
                    inbox_id: None,
                    conversation_id: None,
                    kind: switchboard_core::event::EventKind::Presence,
                    payload: serde_json::json!({}),
                    created_at: switchboard_core::Timestamp::from_millis(1),
                }];
                commit(&*s, tx, &mut events).await.unwrap();
                events[0].seq
            }));
        }
        let mut mine = Vec::new();
        for t in tasks {
            mine.push(t.await.unwrap());
        }
        mine.sort_unstable();
        let published = seen.lock().unwrap().clone();
        assert_eq!(published, (1..=40).collect::<Vec<i64>>());
        assert_eq!(mine, published);
    }
}
