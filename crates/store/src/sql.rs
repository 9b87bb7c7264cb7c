//! What each backend implements, and the query type the store's logic is written in once.
//!
//! The logic (conversations, ingest, channels, routing, providers, media) is SQL text in
//! PostgreSQL's syntax with `$n` parameters, run through a [`Conn`]: a backend connection that binds
//! [`Arg`]s and reads rows through [`RowRead`]. SQLite accepts that text as it is, but for the
//! few constructs it spells differently, which its connection rewrites (`sqlite::dialect`):
//! `= ANY($n)` (a list, bound there as a JSON array), `GREATEST`, `ILIKE`, and row locks
//! (`FOR UPDATE [SKIP LOCKED]`), which its single writer makes unnecessary.
//!
//! What cannot be one text is a [`Conn`] operation: many-row writes (multi-row `VALUES` on SQLite,
//! `unnest()` arrays on PostgreSQL — one statement per table and batch either way), lookups by
//! composite keys, advisory locks, event numbering and a few expressions over JSON settings.
//! A [`Db`] (the store) hands out connections and commits.

use crate::{CommitHook, Result, StoreError};
use async_trait::async_trait;
use sqlx::postgres::PgRow;
use sqlx::sqlite::SqliteRow;
use std::borrow::Cow;
use std::ops::DerefMut;
use std::sync::{Arc, RwLock};
use switchboard_core::event::Event;

/// One bound value.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Arg {
    Text(Option<String>),
    Int(Option<i64>),
    Bool(bool),
    /// A list, tested with `= ANY($n)`.
    List(Vec<String>),
}

macro_rules! arg_from {
    ($($t:ty => |$v:ident| $e:expr),* $(,)?) => {
        $(impl From<$t> for Arg {
            fn from($v: $t) -> Self {
                $e
            }
        })*
    };
}

arg_from! {
    String => |v| Arg::Text(Some(v)),
    &str => |v| Arg::Text(Some(v.to_owned())),
    &String => |v| Arg::Text(Some(v.clone())),
    Option<String> => |v| Arg::Text(v),
    Option<&str> => |v| Arg::Text(v.map(str::to_owned)),
    i64 => |v| Arg::Int(Some(v)),
    Option<i64> => |v| Arg::Int(v),
    bool => |v| Arg::Bool(v),
    Vec<String> => |v| Arg::List(v),
    &Vec<String> => |v| Arg::List(v.clone()),
}

/// A statement with its bound values.
pub(crate) struct Q {
    pub sql: Cow<'static, str>,
    pub args: Vec<Arg>,
    /// Whether the backend may keep the statement prepared (and its plan cached).
    pub persistent: bool,
}

pub(crate) fn q(sql: &'static str) -> Q {
    Q {
        sql: Cow::Borrowed(sql),
        args: Vec::new(),
        persistent: true,
    }
}

/// A statement built at run time (from our own fragments, never from input).
pub(crate) fn q_owned(sql: String) -> Q {
    Q {
        sql: Cow::Owned(sql),
        args: Vec::new(),
        persistent: true,
    }
}

/// What an `execute` changed.
pub(crate) struct Done(pub u64);

impl Done {
    pub fn rows_affected(&self) -> u64 {
        self.0
    }

    /// `Err(or)` when no row changed.
    pub fn or(self, or: StoreError) -> Result<()> {
        if self.0 == 0 { Err(or) } else { Ok(()) }
    }
}

impl Q {
    pub fn bind(mut self, v: impl Into<Arg>) -> Self {
        self.args.push(v.into());
        self
    }

    pub fn persistent(mut self, persistent: bool) -> Self {
        self.persistent = persistent;
        self
    }

    pub async fn execute<C: Conn + ?Sized>(self, c: &mut C) -> Result<Done> {
        Ok(Done(c.run(self).await?))
    }

    pub async fn fetch_all<C: Conn + ?Sized>(self, c: &mut C) -> Result<Vec<C::Row>> {
        c.rows(self).await
    }

    pub async fn fetch_optional<C: Conn + ?Sized>(self, c: &mut C) -> Result<Option<C::Row>> {
        Ok(c.rows(self).await?.into_iter().next())
    }

    /// Runs alone, committed before it returns.
    pub async fn write<D: Db>(self, d: &D) -> Result<Done> {
        if let Some(mut conn) = d.autocommit().await? {
            return self.execute(&mut *conn).await;
        }
        let mut tx = d.begin().await?;
        let done = self.execute(&mut *tx).await?;
        d.end(tx, &[]).await?;
        Ok(done)
    }

    /// [`Q::all`] for a statement that writes (`UPDATE … RETURNING`), committed before it returns.
    pub async fn write_all<D: Db, T>(
        self,
        d: &D,
        f: impl Fn(&<D::Conn as Conn>::Row) -> Result<T> + Send,
    ) -> Result<Vec<T>> {
        if let Some(mut conn) = d.autocommit().await? {
            return self.all(&mut *conn, f).await;
        }
        let mut tx = d.begin().await?;
        let rows = self.all(&mut *tx, f).await?;
        d.end(tx, &[]).await?;
        Ok(rows)
    }

    /// The rows, each read by `f`.
    pub async fn all<C: Conn + ?Sized, T>(
        self,
        c: &mut C,
        f: impl Fn(&C::Row) -> Result<T> + Send,
    ) -> Result<Vec<T>> {
        c.rows(self).await?.iter().map(f).collect()
    }

    /// The first row, read by `f`.
    pub async fn opt<C: Conn + ?Sized, T>(
        self,
        c: &mut C,
        f: impl FnOnce(&C::Row) -> Result<T> + Send,
    ) -> Result<Option<T>> {
        c.rows(self).await?.first().map(f).transpose()
    }

    /// [`Q::all`] on a read connection of `d`.
    pub async fn read_all<D: Db, T>(
        self,
        d: &D,
        f: impl Fn(&<D::Conn as Conn>::Row) -> Result<T> + Send,
    ) -> Result<Vec<T>> {
        self.all(&mut *d.read().await?, f).await
    }

    /// [`Q::opt`] on a read connection of `d`.
    pub async fn read_opt<D: Db, T>(
        self,
        d: &D,
        f: impl FnOnce(&<D::Conn as Conn>::Row) -> Result<T> + Send,
    ) -> Result<Option<T>> {
        self.opt(&mut *d.read().await?, f).await
    }

    pub async fn fetch_one<C: Conn + ?Sized>(self, c: &mut C) -> Result<C::Row> {
        self.fetch_optional(c)
            .await?
            .ok_or(StoreError::Db(sqlx::Error::RowNotFound))
    }
}

/// A value both backends decode.
pub(crate) trait Value:
    for<'r> sqlx::Decode<'r, sqlx::Sqlite>
    + sqlx::Type<sqlx::Sqlite>
    + for<'r> sqlx::Decode<'r, sqlx::Postgres>
    + sqlx::Type<sqlx::Postgres>
{
}
impl<T> Value for T where
    T: for<'r> sqlx::Decode<'r, sqlx::Sqlite>
        + sqlx::Type<sqlx::Sqlite>
        + for<'r> sqlx::Decode<'r, sqlx::Postgres>
        + sqlx::Type<sqlx::Postgres>
{
}

/// A column index (name or position) both backends accept.
pub(crate) trait Index: sqlx::ColumnIndex<SqliteRow> + sqlx::ColumnIndex<PgRow> {}
impl<T: sqlx::ColumnIndex<SqliteRow> + sqlx::ColumnIndex<PgRow>> Index for T {}

/// A result row of either backend.
pub(crate) trait RowRead: Send + Sync + 'static {
    fn try_get<T: Value, I: Index>(&self, i: I) -> std::result::Result<T, sqlx::Error>;
}

impl RowRead for SqliteRow {
    fn try_get<T: Value, I: Index>(&self, i: I) -> std::result::Result<T, sqlx::Error> {
        sqlx::Row::try_get(self, i)
    }
}

impl RowRead for PgRow {
    fn try_get<T: Value, I: Index>(&self, i: I) -> std::result::Result<T, sqlx::Error> {
        sqlx::Row::try_get(self, i)
    }
}

/// Rows found by composite keys: `table`'s rows `x` with `x.<column> <op> <key part>` for every
/// part of one of `keys` (each key a row of values, one per `on` entry).
pub(crate) struct Keys<'a> {
    pub table: &'static str,
    pub on: &'a [(&'static str, &'static str)],
    pub keys: Vec<Vec<Arg>>,
    /// Lock the rows found until commit (PostgreSQL: in `id` order).
    pub lock: bool,
}

/// A JSON setting of an inbox in SQL, by a name in the text or a bound parameter (`$3`).
pub(crate) enum Setting<'a> {
    Named(&'a str),
    Param(&'a str),
}

/// A backend connection (or transaction): the small set of SQL operations.
#[async_trait]
pub(crate) trait Conn: Send {
    type Row: RowRead;

    /// Runs a statement; the rows it changed.
    async fn run(&mut self, q: Q) -> Result<u64>;
    async fn rows(&mut self, q: Q) -> Result<Vec<Self::Row>>;
    /// `{head} <rows> {tail}`: inserts `rows` (every row the same width and kinds) with as few
    /// statements as the backend can; the rows changed.
    async fn insert_rows(&mut self, head: &str, tail: &str, rows: Vec<Vec<Arg>>) -> Result<u64>;
    /// `WITH u({names}) AS (<rows>) {body}`: a statement over `rows` as the table `u`.
    async fn with_rows(&mut self, names: &str, body: &str, rows: Vec<Vec<Arg>>) -> Result<u64>;
    async fn by_keys(&mut self, k: Keys<'_>) -> Result<Vec<Self::Row>>;
    /// Transaction-scoped locks on names, for rows that may not exist yet and must be created
    /// once (SQLite's single writer needs none).
    async fn lock_keys(&mut self, keys: Vec<String>) -> Result<()>;
    /// Reserves `n` event numbers; returns the last number before them. Called last before commit.
    async fn reserve_seqs(&mut self, n: i64) -> Result<i64>;
    /// The last event number committed.
    async fn last_seq(&mut self) -> Result<i64>;
    /// An inbox's JSON setting as SQL text.
    fn setting_sql(s: Setting<'_>) -> String
    where
        Self: Sized;
    /// Removes tag `$1` from the tag list of every conversation holding tag id `$2`.
    const UNTAG: &'static str;
}

/// A store: connections, commits, and what it keeps in memory.
#[async_trait]
pub(crate) trait Db: SearchBackend + Send + Sync + 'static {
    type Conn: Conn + Sized;
    type Tx: DerefMut<Target = Self::Conn> + Send;
    type Pooled: DerefMut<Target = Self::Conn> + Send;

    /// A write transaction.
    async fn begin(&self) -> Result<Self::Tx>;
    /// Commits, then hands the (numbered) events to the commit hook, in commit order.
    async fn end(&self, tx: Self::Tx, events: &[Event]) -> Result<()>;
    async fn read(&self) -> Result<Self::Pooled>;
    /// A connection where each statement commits alone, where the backend has one; `None`: a
    /// write is a transaction of its own (SQLite, whose writes share group commits).
    async fn autocommit(&self) -> Result<Option<Self::Pooled>>;
    fn hook(&self) -> &RwLock<Option<CommitHook>>;
    /// The key(s) provider secrets are sealed with, once configured.
    fn secrets(&self) -> &RwLock<Option<Arc<crate::secrets::SecretBox>>>;
    /// The inbox-by-account cache, where a store may keep one (one node: SQLite).
    fn accounts(&self) -> Option<&crate::cache::AccountCache>;
}

/// Numbers the transaction's events (the last statement before commit), commits and publishes.
pub(crate) async fn commit<D: Db>(d: &D, mut tx: D::Tx, events: &mut [Event]) -> Result<()> {
    if !events.is_empty() {
        number_events(&mut *tx, events).await?;
    }
    d.end(tx, events).await
}

pub(crate) fn publish(hook: &RwLock<Option<CommitHook>>, events: &[Event]) {
    if events.is_empty() {
        return;
    }
    let hook = hook.read().ok().and_then(|h| h.clone());
    if let Some(hook) = hook {
        hook(events);
    }
}

async fn number_events<C: Conn>(conn: &mut C, events: &mut [Event]) -> Result<()> {
    let n = i64::try_from(events.len()).unwrap_or(i64::MAX);
    let mut seq = conn.reserve_seqs(n).await?;
    let mut rows = Vec::with_capacity(events.len());
    for e in events.iter_mut() {
        seq += 1;
        e.seq = seq;
        rows.push(vec![
            e.seq.into(),
            e.workspace_id.to_string().into(),
            e.inbox_id.map(|i| i.to_string()).into(),
            e.conversation_id.map(|c| c.to_string()).into(),
            e.kind.as_str().into(),
            json_text(&e.payload).into(),
            e.created_at.millis().into(),
        ]);
    }
    conn.insert_rows(
        "INSERT INTO events (seq, workspace_id, inbox_id, conversation_id, kind, payload, created_at)",
        "",
        rows,
    )
    .await?;
    Ok(())
}

/// Whether an error is the database giving up on one of two transactions that waited on each other
/// (PostgreSQL's deadlock or serialization failure): the transaction can simply be run again.
pub(crate) fn retryable(e: &StoreError) -> bool {
    matches!(e, StoreError::Db(sqlx::Error::Database(d))
        if matches!(d.code().as_deref(), Some("40P01" | "40001")))
}

/// Runs a transaction again (up to four times) when it lost a deadlock: nothing of it was written.
pub(crate) async fn retried<T, F, Fut>(mut run: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T>>,
{
    let mut attempt = 0;
    loop {
        attempt += 1;
        match run().await {
            Err(e) if attempt < 4 && retryable(&e) => continue,
            other => return other,
        }
    }
}

/// Callers of compare-and-set writes decide again on `VersionConflict`; a deadlock the database
/// broke by aborting us is the same situation.
pub(crate) fn conflict_on_deadlock(e: StoreError) -> StoreError {
    if retryable(&e) {
        StoreError::VersionConflict
    } else {
        e
    }
}

pub(crate) fn unique_violation(e: &StoreError) -> bool {
    matches!(e, StoreError::Db(sqlx::Error::Database(d)) if d.is_unique_violation())
}

/// A uniqueness rule's refusal as `Conflict(what)`.
pub(crate) fn conflict_on_unique(what: &'static str) -> impl FnOnce(StoreError) -> StoreError {
    move |e| {
        if unique_violation(&e) {
            StoreError::Conflict(what)
        } else {
            e
        }
    }
}

pub(crate) fn json_text<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_string(v).unwrap_or_else(|_| "null".into())
}

pub(crate) fn id_strings<T: std::fmt::Display>(ids: &[T]) -> Vec<String> {
    ids.iter().map(ToString::to_string).collect()
}

pub(crate) fn ids_json<T: std::fmt::Display>(ids: &[T]) -> String {
    json_text(&id_strings(ids))
}

/// Numbers the `?` placeholders of a query built from parts (`$1`, `$2`, …). Our SQL has no `?`
/// anywhere else (no jsonb operators, no literals with question marks).
pub(crate) fn numbered(sql: &str) -> String {
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

/// (conversation, contact text, one message's text): what the text search reads.
pub(crate) type TextRow = (switchboard_core::ConversationId, String, Option<String>);

/// What a backend provides for the search: its text index.
#[async_trait]
pub(crate) trait SearchBackend {
    /// For each conversation, its contact's name/phone/email and each of its newest
    /// `search::WALK_MESSAGES` messages (`None`: it has none): one row a message.
    async fn texts(&self, ids: &[switchboard_core::ConversationId]) -> Result<Vec<TextRow>>;
    /// Through the text index: the rows for `q` whose contact or one of the newest `search::DEPTH`
    /// matching messages has every word of `text` (`words` holds them, folded), newest first, at
    /// most `take`.
    async fn indexed(
        &self,
        q: &crate::ConversationQuery,
        text: &str,
        words: &[String],
        take: usize,
    ) -> Result<Vec<crate::ConversationSummary>>;
}
