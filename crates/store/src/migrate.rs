//! A small embedded migration runner: numbered SQL files compiled into the binary, applied in order,
//! in one transaction, recorded in `schema_migrations`. (sqlx's `migrate!` needs its macros
//! feature, which doubles the clean build on two cores.)

use crate::Result;
use crate::sql::{Conn, RowRead, q, q_owned};

pub(crate) struct Migration {
    pub version: i64,
    pub name: &'static str,
    pub sql: &'static str,
}

/// The migrations of a backend folder: the same numbers and names for both backends, each file
/// written in its backend's SQL (a step one backend does not need is a file with comments only).
macro_rules! migrations {
    ($backend:literal: $($version:literal $name:literal $file:literal),* $(,)?) => {
        &[$(Migration {
            version: $version,
            name: $name,
            sql: include_str!(concat!("../migrations/", $backend, "/", $file, ".sql")),
        }),*]
    };
}

macro_rules! all_migrations {
    ($backend:literal) => {
        migrations!($backend:
            1 "init" "0001_init",
            2 "routing" "0002_routing",
            3 "meta" "0003_meta",
            4 "media" "0004_media",
            5 "channels" "0005_channels",
            6 "search" "0006_search",
            7 "usage_counts" "0007_usage_counts",
            8 "search_fold" "0008_search_fold",
            9 "reply_deadline" "0009_reply_deadline",
            10 "automation" "0010_automation",
            11 "push_subscriptions" "0011_push_subscriptions",
            12 "comment_rules" "0012_comment_rules",
            13 "agent_preferences" "0013_agent_preferences",
            14 "contact_profiles" "0014_contact_profiles",
            15 "inbound_media" "0015_inbound_media",
            16 "media_library" "0016_media_library",
            17 "private_reply_budget" "0017_private_reply_budget",
        )
    };
}

pub(crate) const SQLITE: &[Migration] = all_migrations!("sqlite");
pub(crate) const POSTGRES: &[Migration] = all_migrations!("postgres");

/// Applies the pending migrations inside the caller's transaction, recording each in
/// `schema_migrations`.
///
/// PostgreSQL databases created before both backends shared numbers recorded `usage_counts` as 6
/// and `search` as 7 (SQLite's order is the other way round, and SQLite had an 8 PostgreSQL did
/// not need). Their two rows are swapped to the shared numbers first, by name, so nothing runs
/// twice; on any other database the swap matches no row.
pub(crate) async fn apply<C: Conn>(conn: &mut C, list: &[Migration]) -> Result<()> {
    q("CREATE TABLE IF NOT EXISTS schema_migrations (version BIGINT PRIMARY KEY, name TEXT NOT NULL, applied_at BIGINT NOT NULL)")
        .execute(&mut *conn)
        .await?;
    for swap in [
        "UPDATE schema_migrations SET version = -6 WHERE version = 6 AND name = 'usage_counts'",
        "UPDATE schema_migrations SET version = 6 WHERE version = 7 AND name = 'search'",
        "UPDATE schema_migrations SET version = 7 WHERE version = -6 AND name = 'usage_counts'",
    ] {
        q(swap).execute(&mut *conn).await?;
    }
    let done: Vec<i64> = q("SELECT version FROM schema_migrations")
        .fetch_all(&mut *conn)
        .await?
        .iter()
        .map(|r| r.try_get::<i64, _>(0))
        .collect::<Result<_, _>>()?;
    for m in list.iter().filter(|m| !done.contains(&m.version)) {
        // A migration over a large database can take minutes (rebuilding an index): say so.
        tracing::info!(version = m.version, name = m.name, "applying migration");
        for stmt in statements(m.sql) {
            q_owned(stmt).execute(&mut *conn).await?;
        }
        q("INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, 0)")
            .bind(m.version)
            .bind(m.name)
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}

/// Splits a migration file into statements: whole-line `--` comments are dropped first, then the
/// text is cut at `;` — except inside a `CREATE TRIGGER … BEGIN … END` body, which is one statement.
/// Our migrations keep `;` out of string literals.
pub(crate) fn statements(sql: &str) -> Vec<String> {
    let code: Vec<&str> = sql
        .lines()
        .filter(|l| !l.trim_start().starts_with("--"))
        .collect();
    let mut out = Vec::new();
    let mut current = String::new();
    for piece in code.join("\n").split_inclusive(';') {
        current.push_str(piece);
        let upper = current.trim_start().to_uppercase();
        let in_trigger = upper.starts_with("CREATE TRIGGER")
            && !upper
                .trim_end()
                .trim_end_matches(';')
                .trim_end()
                .ends_with("END");
        if !in_trigger {
            let stmt = current.trim().trim_end_matches(';').trim().to_owned();
            if !stmt.is_empty() {
                out.push(stmt);
            }
            current.clear();
        }
    }
    let rest = current.trim().to_owned();
    if !rest.is_empty() {
        out.push(rest);
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use crate::sql::{Db, RowRead, q};

    async fn versions<D: Db>(d: &D) -> Vec<(i64, String)> {
        q("SELECT version, name FROM schema_migrations ORDER BY version")
            .read_all(d, |r| Ok((r.try_get(0)?, r.try_get(1)?)))
            .await
            .unwrap()
    }

    fn shared() -> Vec<(i64, String)> {
        super::SQLITE
            .iter()
            .zip(super::POSTGRES)
            .map(|(s, p)| {
                assert_eq!((s.version, s.name), (p.version, p.name));
                (s.version, s.name.to_owned())
            })
            .collect()
    }

    /// A database migrated by an older release opens with the shared numbers and runs nothing
    /// twice (a migration run again would fail: its tables and indexes exist).
    #[tokio::test]
    async fn databases_of_older_releases_keep_working_with_the_shared_numbers() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        let sqlite = crate::sqlite::SqliteStore::open(&path).await.unwrap();
        assert_eq!(versions(&sqlite).await, shared());
        drop(sqlite);
        let sqlite = crate::sqlite::SqliteStore::open(&path).await.unwrap();
        assert_eq!(
            versions(&sqlite).await,
            shared(),
            "SQLite's numbers never changed"
        );

        let Some(base) = std::env::var("SWITCHBOARD_TEST_DATABASE_URL")
            .ok()
            .filter(|u| !u.is_empty())
        else {
            eprintln!("SWITCHBOARD_TEST_DATABASE_URL is not set: PostgreSQL not exercised");
            return;
        };
        use sqlx::Connection;
        let schema = format!("m_{}", uuid::Uuid::now_v7().simple());
        let mut conn = sqlx::PgConnection::connect(&base).await.unwrap();
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {schema}")))
            .execute(&mut conn)
            .await
            .unwrap();
        let sep = if base.contains('?') { '&' } else { '?' };
        let url = format!("{base}{sep}options%5Bsearch_path%5D={schema}");
        let pg = crate::postgres::PgStore::open(&url).await.unwrap();
        assert_eq!(versions(&pg).await, shared());
        drop(pg);

        // A database of the last release before both backends shared numbers: its schema is
        // migrations 1–8 (8 is a no-op on PostgreSQL), recorded in the old numbering — 6
        // usage_counts, 7 search, no 8. Later migrations must then run once, on top of it.
        let old_schema = format!("{schema}_old");
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {old_schema}")))
            .execute(&mut conn)
            .await
            .unwrap();
        let old_url = format!("{base}{sep}options%5Bsearch_path%5D={old_schema}");
        let old = [
            (1, "init"),
            (2, "routing"),
            (3, "meta"),
            (4, "media"),
            (5, "channels"),
            (6, "usage_counts"),
            (7, "search"),
        ];
        let mut old_conn = sqlx::PgConnection::connect(&old_url).await.unwrap();
        let mut tx = old_conn.begin().await.unwrap();
        let released = super::POSTGRES
            .iter()
            .take_while(|m| m.version <= 8)
            .count();
        super::apply(&mut *tx, &super::POSTGRES[..released])
            .await
            .unwrap();
        q("DELETE FROM schema_migrations")
            .execute(&mut *tx)
            .await
            .unwrap();
        for (v, name) in old {
            q("INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, 0)")
                .bind(v)
                .bind(name)
                .execute(&mut *tx)
                .await
                .unwrap();
        }
        tx.commit().await.unwrap();
        drop(old_conn);
        let pg = crate::postgres::PgStore::open(&old_url).await.unwrap();
        assert_eq!(versions(&pg).await, shared());
    }

    #[test]
    fn a_trigger_body_is_one_statement() {
        let s = super::statements(
            "CREATE TABLE t (x INT);\nCREATE TRIGGER tr AFTER INSERT ON t BEGIN\n  INSERT INTO u VALUES (1);\n  INSERT INTO u VALUES (2);\nEND;\nCREATE INDEX i ON t (x);",
        );
        assert_eq!(s.len(), 3, "{s:?}");
        assert!(
            s[1].starts_with("CREATE TRIGGER") && s[1].ends_with("END"),
            "{}",
            s[1]
        );
        assert_eq!(s[2], "CREATE INDEX i ON t (x)");
    }

    #[test]
    fn comments_with_semicolons_do_not_split_statements() {
        let s = super::statements(
            "-- a; b\nCREATE TABLE t (x INT);\n-- c;\nCREATE INDEX i ON t (x);\n",
        );
        assert_eq!(
            s,
            vec![
                "CREATE TABLE t (x INT)".to_owned(),
                "CREATE INDEX i ON t (x)".to_owned()
            ]
        );
    }
}
