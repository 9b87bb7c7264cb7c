//! The SQL operations on PostgreSQL (see [`crate::sql`]): the shared SQL text as it is, many-row
//! writes and key lookups through `unnest()` arrays (per-row statements cost a round trip each and
//! stall at ~10k rows/s, `shared/perf-limits.md`), advisory locks, and the event counter.

use crate::Result;
use crate::sql::{Arg, Conn, Keys, Q, Setting};
use async_trait::async_trait;
use sqlx::postgres::PgRow;
use sqlx::{AssertSqlSafe, PgConnection, Postgres};

type Query = sqlx::query::Query<'static, Postgres, <Postgres as sqlx::Database>::Arguments>;

fn bind(mut query: Query, args: Vec<Arg>) -> Query {
    for a in args {
        query = match a {
            Arg::Text(v) => query.bind(v),
            Arg::Int(v) => query.bind(v),
            Arg::Bool(v) => query.bind(v),
            Arg::List(v) => query.bind(v),
        };
    }
    query
}

/// `rows` as one array per column (`unnest($1::text[], $2::bigint[], …)`), the kinds of the
/// first row deciding each array's type.
fn unnest(rows: Vec<Vec<Arg>>, first_param: usize) -> (String, Vec<Column>) {
    let mut columns: Vec<Column> = rows
        .first()
        .map(|r| {
            r.iter()
                .map(|a| match a {
                    Arg::Int(_) => Column::Int(Vec::with_capacity(rows.len())),
                    Arg::Bool(_) => Column::Bool(Vec::with_capacity(rows.len())),
                    Arg::Text(_) | Arg::List(_) => Column::Text(Vec::with_capacity(rows.len())),
                })
                .collect()
        })
        .unwrap_or_default();
    for row in rows {
        for (col, a) in columns.iter_mut().zip(row) {
            match (col, a) {
                (Column::Int(v), Arg::Int(x)) => v.push(x),
                (Column::Bool(v), Arg::Bool(x)) => v.push(x),
                (Column::Text(v), Arg::Text(x)) => v.push(x),
                (Column::Text(v), Arg::List(x)) => v.push(Some(crate::sql::json_text(&x))),
                (Column::Int(v), _) => v.push(None),
                (Column::Bool(v), _) => v.push(false),
                (Column::Text(v), _) => v.push(None),
            }
        }
    }
    let params = columns
        .iter()
        .enumerate()
        .map(|(i, c)| format!("${}::{}[]", first_param + i, c.sql_type()))
        .collect::<Vec<_>>()
        .join(", ");
    (format!("unnest({params})"), columns)
}

enum Column {
    Text(Vec<Option<String>>),
    Int(Vec<Option<i64>>),
    Bool(Vec<bool>),
}

impl Column {
    fn sql_type(&self) -> &'static str {
        match self {
            Column::Text(_) => "text",
            Column::Int(_) => "bigint",
            Column::Bool(_) => "boolean",
        }
    }
}

fn bind_columns(mut query: Query, columns: Vec<Column>) -> Query {
    for c in columns {
        query = match c {
            Column::Text(v) => query.bind(v),
            Column::Int(v) => query.bind(v),
            Column::Bool(v) => query.bind(v),
        };
    }
    query
}

#[async_trait]
impl Conn for PgConnection {
    type Row = PgRow;

    async fn run(&mut self, q: Q) -> Result<u64> {
        let query = bind(
            sqlx::query(AssertSqlSafe(q.sql)).persistent(q.persistent),
            q.args,
        );
        Ok(query.execute(self).await?.rows_affected())
    }

    async fn rows(&mut self, q: Q) -> Result<Vec<PgRow>> {
        let query = bind(
            sqlx::query(AssertSqlSafe(q.sql)).persistent(q.persistent),
            q.args,
        );
        Ok(query.fetch_all(self).await?)
    }

    async fn insert_rows(&mut self, head: &str, tail: &str, rows: Vec<Vec<Arg>>) -> Result<u64> {
        if rows.is_empty() {
            return Ok(0);
        }
        let (source, columns) = unnest(rows, 1);
        let sql = format!("{head} SELECT * FROM {source} {tail}");
        let query = bind_columns(sqlx::query(AssertSqlSafe(sql)), columns);
        Ok(query.execute(self).await?.rows_affected())
    }

    async fn with_rows(&mut self, names: &str, body: &str, rows: Vec<Vec<Arg>>) -> Result<u64> {
        if rows.is_empty() {
            return Ok(0);
        }
        let (source, columns) = unnest(rows, 1);
        let sql = format!("WITH u({names}) AS (SELECT * FROM {source}) {body}");
        let query = bind_columns(sqlx::query(AssertSqlSafe(sql)), columns);
        Ok(query.execute(self).await?.rows_affected())
    }

    /// Each key is looked up on its own (`LATERAL`): joined as sets, PostgreSQL hashed whole
    /// tables while they were young and kept that plan as they grew.
    async fn by_keys(&mut self, k: Keys<'_>) -> Result<Vec<PgRow>> {
        if k.keys.is_empty() {
            return Ok(Vec::new());
        }
        let names = (0..k.on.len())
            .map(|i| format!("k{i}"))
            .collect::<Vec<_>>()
            .join(", ");
        let on =
            k.on.iter()
                .enumerate()
                .map(|(i, (col, op))| format!("y.{col} {op} k.k{i}"))
                .collect::<Vec<_>>()
                .join(" AND ");
        let table = k.table;
        let (source, columns) = unnest(k.keys, 1);
        let sql = if k.lock {
            format!(
                "SELECT x.* FROM {table} x WHERE x.id IN (SELECT y.id FROM {source} AS k({names}) \
                 CROSS JOIN LATERAL (SELECT id FROM {table} y WHERE {on}) y) ORDER BY x.id FOR UPDATE"
            )
        } else {
            format!(
                "SELECT x.* FROM {source} AS k({names}) CROSS JOIN LATERAL \
                 (SELECT * FROM {table} y WHERE {on}) x"
            )
        };
        let query = bind_columns(sqlx::query(AssertSqlSafe(sql)), columns);
        Ok(query.fetch_all(self).await?)
    }

    /// Takes transaction-scoped advisory locks on `keys` in one sorted order (so two transactions
    /// never wait on each other in a cycle).
    async fn lock_keys(&mut self, mut keys: Vec<String>) -> Result<()> {
        if keys.is_empty() {
            return Ok(());
        }
        keys.sort();
        keys.dedup();
        sqlx::query(
            "SELECT count(pg_advisory_xact_lock(hashtextextended(k, 0))) \
             FROM (SELECT k FROM unnest($1::text[]) AS u(k) ORDER BY k COLLATE \"C\") AS s",
        )
        .bind(keys)
        .fetch_one(self)
        .await?;
        Ok(())
    }

    /// One counter update, whose row lock serialises event-producing commits (see the module docs
    /// of `postgres`): the last statement before `COMMIT`.
    async fn reserve_seqs(&mut self, n: i64) -> Result<i64> {
        let row = sqlx::query(
            "UPDATE event_counter SET last_seq = last_seq + $1 WHERE id = 1 RETURNING last_seq",
        )
        .bind(n)
        .fetch_one(self)
        .await?;
        let last: i64 = sqlx::Row::try_get(&row, 0)?;
        Ok(last - n)
    }

    /// The counter, not MAX(seq): it is only ever moved by committed transactions.
    async fn last_seq(&mut self) -> Result<i64> {
        let row = sqlx::query("SELECT last_seq FROM event_counter WHERE id = 1")
            .fetch_one(self)
            .await?;
        Ok(sqlx::Row::try_get(&row, 0)?)
    }

    /// As the expression indexes of migration 5 spell it (for `Named`).
    fn setting_sql(s: Setting<'_>) -> String {
        match s {
            Setting::Named(key) => format!("(settings::json ->> '{key}')"),
            Setting::Param(p) => format!("(settings::json ->> {p})"),
        }
    }

    const UNTAG: &'static str = "UPDATE conversations SET tags = (SELECT COALESCE(json_agg(t.value ORDER BY t.ord), '[]'::json)::text \
         FROM json_array_elements_text(conversations.tags::json) WITH ORDINALITY AS t(value, ord) WHERE t.value <> $1), \
         version = version + 1 WHERE id IN (SELECT conversation_id FROM conversation_tags WHERE tag_id = $2)";
}
