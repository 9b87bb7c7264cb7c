//! The SQL operations on SQLite (see [`crate::sql`]): the shared SQL text with SQLite's spelling
//! of the few constructs that differ, and many-row writes as multi-row `VALUES`.

use crate::Result;
use crate::sql::{Arg, Conn, Keys, Q, Setting, json_text};
use async_trait::async_trait;
use sqlx::sqlite::SqliteRow;
use sqlx::{AssertSqlSafe, Sqlite, SqliteConnection};
use std::borrow::Cow;

type Query = sqlx::query::Query<'static, Sqlite, <Sqlite as sqlx::Database>::Arguments>;

/// What SQLite spells differently in the shared SQL (PostgreSQL's spelling): a list parameter
/// (`= ANY($n)`, bound as a JSON array) is read through `json_each`; `GREATEST` of two values is
/// `MAX`; `ILIKE` is `LIKE` (ASCII case-insensitive, as the quick-reply codes are); row locks go:
/// the single writer connection already serialises every write.
pub(crate) fn dialect(sql: &str) -> Cow<'_, str> {
    const SWAPS: [(&str, &str); 4] = [
        (" FOR UPDATE SKIP LOCKED", ""),
        (" FOR UPDATE", ""),
        ("GREATEST(", "MAX("),
        (" ILIKE ", " LIKE "),
    ];
    if !sql.contains("= ANY(") && !SWAPS.iter().any(|(from, _)| sql.contains(from)) {
        return Cow::Borrowed(sql);
    }
    let mut s = sql.to_owned();
    for (from, to) in SWAPS {
        if s.contains(from) {
            s = s.replace(from, to);
        }
    }
    while let Some(at) = s.find("= ANY(") {
        let Some(len) = s[at..].find(')') else {
            break;
        };
        let param = s[at + 6..at + len].to_owned();
        s.replace_range(
            at..=at + len,
            &format!("IN (SELECT value FROM json_each({param}))"),
        );
    }
    Cow::Owned(s)
}

fn bind(mut query: Query, args: Vec<Arg>) -> Query {
    for a in args {
        query = match a {
            Arg::Text(v) => query.bind(v),
            Arg::Int(v) => query.bind(v),
            Arg::Bool(v) => query.bind(v),
            Arg::List(v) => query.bind(json_text(&v)),
        };
    }
    query
}

fn prepare(q: Q) -> Query {
    let rewritten = match dialect(&q.sql) {
        Cow::Owned(s) => Some(s),
        Cow::Borrowed(_) => None,
    };
    let sql = rewritten.map_or(q.sql, Cow::Owned);
    bind(
        sqlx::query(AssertSqlSafe(sql)).persistent(q.persistent),
        q.args,
    )
}

/// The most rows one statement carries. Statements are cut in powers of two (64, 32, … 1 rows) so
/// that each table has at most seven distinct statement texts, all kept prepared by sqlx's cache.
const ROWS_PER_STATEMENT: usize = 64;

/// Runs `sql(VALUES (?, …), …)` over `rows` (every row the same width), as few statements as the
/// power-of-two cut allows, and returns the rows changed.
///
/// Why bound values and not one JSON argument read through `json_each`: extracting every column
/// from JSON text cost about as much as the writes themselves (a `perf` profile of the ingest
/// benchmark: `jsonReturnFromBlob`, `jsonExtractFunc` and friends).
async fn write_values(
    conn: &mut SqliteConnection,
    rows: Vec<Vec<Arg>>,
    sql: impl Fn(&str) -> String,
) -> Result<u64> {
    let Some(width) = rows.first().map(Vec::len) else {
        return Ok(0);
    };
    let one = format!("({})", vec!["?"; width].join(", "));
    let mut changed = 0;
    let mut rest = rows.into_iter();
    let mut left = rest.len();
    while left > 0 {
        let n = ROWS_PER_STATEMENT.min(1 << left.ilog2());
        let values = format!("VALUES {}", vec![one.as_str(); n].join(", "));
        let query = bind(
            sqlx::query(AssertSqlSafe(sql(&values))),
            rest.by_ref().take(n).flatten().collect(),
        );
        changed += query.execute(&mut *conn).await?.rows_affected();
        left -= n;
    }
    Ok(changed)
}

fn json_arg(a: &Arg) -> serde_json::Value {
    match a {
        Arg::Text(v) => v.clone().into(),
        Arg::Int(v) => (*v).into(),
        Arg::Bool(v) => (*v).into(),
        Arg::List(v) => v.clone().into(),
    }
}

#[async_trait]
impl Conn for SqliteConnection {
    type Row = SqliteRow;

    async fn run(&mut self, q: Q) -> Result<u64> {
        Ok(prepare(q).execute(self).await?.rows_affected())
    }

    async fn rows(&mut self, q: Q) -> Result<Vec<SqliteRow>> {
        Ok(prepare(q).fetch_all(self).await?)
    }

    async fn insert_rows(&mut self, head: &str, tail: &str, rows: Vec<Vec<Arg>>) -> Result<u64> {
        write_values(self, rows, |values| format!("{head} {values} {tail}")).await
    }

    async fn with_rows(&mut self, names: &str, body: &str, rows: Vec<Vec<Arg>>) -> Result<u64> {
        write_values(self, rows, |values| {
            format!("WITH u({names}) AS ({values}) {}", dialect(body))
        })
        .await
    }

    async fn by_keys(&mut self, k: Keys<'_>) -> Result<Vec<SqliteRow>> {
        // The keys as one JSON array of arrays, joined through `json_each`.
        let on =
            k.on.iter()
                .enumerate()
                .map(|(i, (col, op))| format!("x.{col} {op} k.value ->> {i}"))
                .collect::<Vec<_>>()
                .join(" AND ");
        let keys: Vec<Vec<serde_json::Value>> = k
            .keys
            .iter()
            .map(|key| key.iter().map(json_arg).collect())
            .collect();
        let sql = format!(
            "SELECT x.* FROM json_each($1) AS k JOIN {} x ON {on}",
            k.table
        );
        Ok(sqlx::query(AssertSqlSafe(sql))
            .bind(json_text(&keys))
            .fetch_all(self)
            .await?)
    }

    async fn lock_keys(&mut self, _keys: Vec<String>) -> Result<()> {
        Ok(())
    }

    /// The writer connection is the only one, so the next numbers are known: `AUTOINCREMENT`'s
    /// high-water mark, which never goes back.
    async fn reserve_seqs(&mut self, _n: i64) -> Result<i64> {
        let row = sqlx::query(
            "SELECT MAX(COALESCE((SELECT seq FROM sqlite_sequence WHERE name = 'events'), 0), \
             COALESCE((SELECT MAX(seq) FROM events), 0))",
        )
        .fetch_one(self)
        .await?;
        Ok(sqlx::Row::try_get(&row, 0)?)
    }

    async fn last_seq(&mut self) -> Result<i64> {
        let row = sqlx::query("SELECT COALESCE(MAX(seq), 0) FROM events")
            .fetch_one(self)
            .await?;
        Ok(sqlx::Row::try_get(&row, 0)?)
    }

    /// As the expression indexes of migration 5 spell it (for `Named`).
    fn setting_sql(s: Setting<'_>) -> String {
        match s {
            Setting::Named(key) => format!("json_extract(settings, '$.{key}')"),
            Setting::Param(p) => format!("json_extract(settings, '$.' || {p})"),
        }
    }

    const UNTAG: &'static str = "UPDATE conversations SET tags = (SELECT COALESCE(json_group_array(value), '[]') \
         FROM json_each(conversations.tags) WHERE value <> $1), version = version + 1 \
         WHERE id IN (SELECT conversation_id FROM conversation_tags WHERE tag_id = $2)";
}

#[cfg(test)]
mod tests {
    #[test]
    fn shared_sql_is_spelled_for_sqlite() {
        let d = |s: &'static str| super::dialect(s).into_owned();
        assert_eq!(
            d("SELECT * FROM t WHERE id = ANY($1) AND x = ANY($2) FOR UPDATE"),
            "SELECT * FROM t WHERE id IN (SELECT value FROM json_each($1)) AND x IN (SELECT value FROM json_each($2))"
        );
        assert_eq!(
            d(
                "UPDATE t SET a = GREATEST(a, $1) WHERE id IN (SELECT id FROM t LIMIT 1 FOR UPDATE SKIP LOCKED)"
            ),
            "UPDATE t SET a = MAX(a, $1) WHERE id IN (SELECT id FROM t LIMIT 1)"
        );
        assert_eq!(d("SELECT 1 WHERE c ILIKE $1"), "SELECT 1 WHERE c LIKE $1");
        assert!(matches!(
            super::dialect("SELECT 1"),
            std::borrow::Cow::Borrowed(_)
        ));
    }
}
