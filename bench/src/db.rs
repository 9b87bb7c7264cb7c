//! The database a benchmark runs against, and the harness's own access to it (counting what a run
//! stored, writing the generated queries dataset). SQLite: the server's file in its data
//! directory. PostgreSQL: a schema of its own inside the database named by `--database-url`, so
//! runs never see each other's rows; ingest and fan-out runs drop theirs afterwards, the queries
//! dataset keeps its schema to be reused.

use anyhow::Context;
use sqlx::{ConnectOptions, Connection};
use std::path::{Path, PathBuf};

#[derive(Clone, Debug)]
pub enum Target {
    Sqlite { data_dir: PathBuf },
    Postgres { base: String, schema: String },
}

pub enum Db {
    Sqlite(sqlx::SqliteConnection),
    Postgres(sqlx::PgConnection),
}

impl Target {
    /// `database_url` (`postgres://…`) or, without it, the SQLite file in `data_dir`. On
    /// PostgreSQL `schema` names the schema (created if missing).
    pub async fn new(
        database_url: Option<&str>,
        data_dir: &Path,
        schema: &str,
    ) -> anyhow::Result<Self> {
        match database_url {
            None => Ok(Target::Sqlite {
                data_dir: data_dir.to_path_buf(),
            }),
            Some(url) if url.starts_with("postgres") => {
                let t = Target::Postgres {
                    base: url.to_owned(),
                    schema: schema.to_owned(),
                };
                let mut conn = sqlx::PgConnection::connect(url)
                    .await
                    .with_context(|| format!("connecting to {}", redact(url)))?;
                sqlx::query(sqlx::AssertSqlSafe(format!(
                    "CREATE SCHEMA IF NOT EXISTS {schema}"
                )))
                .execute(&mut conn)
                .await?;
                Ok(t)
            }
            Some(url) => anyhow::bail!("--database-url must be postgres://… (got {})", redact(url)),
        }
    }

    /// A fresh, uniquely named target for one run.
    pub async fn fresh(database_url: Option<&str>, data_dir: &Path) -> anyhow::Result<Self> {
        let schema = format!("bench_{}", &uuid::Uuid::now_v7().simple().to_string()[20..]);
        Self::new(database_url, data_dir, &schema).await
    }

    /// The `SWITCHBOARD_DATABASE_URL` the server gets (`None`: its default SQLite file).
    pub fn server_url(&self) -> Option<String> {
        match self {
            Target::Sqlite { .. } => None,
            Target::Postgres { base, schema } => {
                let sep = if base.contains('?') { '&' } else { '?' };
                Some(format!("{base}{sep}options%5Bsearch_path%5D={schema}"))
            }
        }
    }

    pub fn describe(&self) -> String {
        match self {
            Target::Sqlite { data_dir } => {
                format!("SQLite ({})", data_dir.join("switchboard.db").display())
            }
            Target::Postgres { base, schema } => {
                format!("PostgreSQL ({}, schema {schema})", redact(base))
            }
        }
    }

    pub fn is_postgres(&self) -> bool {
        matches!(self, Target::Postgres { .. })
    }

    /// Whether the server has created its tables here already.
    pub async fn has_schema(&self) -> anyhow::Result<bool> {
        match self {
            Target::Sqlite { data_dir } => Ok(data_dir.join("switchboard.db").exists()),
            Target::Postgres { schema, .. } => {
                let mut db = self.connect().await?;
                let n = db
                    .scalar_i64(format!(
                        "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = '{schema}' AND table_name = 'server_settings'"
                    ))
                    .await?;
                Ok(n > 0)
            }
        }
    }

    pub async fn connect(&self) -> anyhow::Result<Db> {
        match self {
            Target::Sqlite { data_dir } => {
                let opts = sqlx::sqlite::SqliteConnectOptions::new()
                    .filename(data_dir.join("switchboard.db"))
                    .journal_mode(sqlx::sqlite::SqliteJournalMode::Wal)
                    .busy_timeout(std::time::Duration::from_secs(30));
                Ok(Db::Sqlite(opts.connect().await?))
            }
            Target::Postgres { .. } => {
                let url = self.server_url().unwrap_or_default();
                Ok(Db::Postgres(sqlx::PgConnection::connect(&url).await?))
            }
        }
    }

    /// Drops a PostgreSQL run's schema (SQLite runs live in a temporary directory).
    pub async fn drop(&self) -> anyhow::Result<()> {
        if let Target::Postgres { base, schema } = self {
            let mut conn = sqlx::PgConnection::connect(base).await?;
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "DROP SCHEMA IF EXISTS {schema} CASCADE"
            )))
            .execute(&mut conn)
            .await?;
        }
        Ok(())
    }
}

/// A URL without its password, for messages.
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => format!("{}://…{}", &url[..s], &url[at..]),
        _ => url.to_owned(),
    }
}

impl Db {
    /// Runs a statement built by the harness itself (generated data, no outside input).
    pub async fn exec(&mut self, sql: String) -> anyhow::Result<u64> {
        Ok(match self {
            Db::Sqlite(c) => sqlx::query(sqlx::AssertSqlSafe(sql))
                .execute(c)
                .await?
                .rows_affected(),
            Db::Postgres(c) => sqlx::query(sqlx::AssertSqlSafe(sql))
                .execute(c)
                .await?
                .rows_affected(),
        })
    }

    pub async fn scalar_i64(&mut self, sql: String) -> anyhow::Result<i64> {
        Ok(match self {
            Db::Sqlite(c) => {
                sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
                    .fetch_one(c)
                    .await?
            }
            Db::Postgres(c) => {
                sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
                    .fetch_one(c)
                    .await?
            }
        })
    }

    pub async fn strings(&mut self, sql: String) -> anyhow::Result<Vec<(String, String)>> {
        Ok(match self {
            Db::Sqlite(c) => {
                sqlx::query_as(sqlx::AssertSqlSafe(sql))
                    .fetch_all(c)
                    .await?
            }
            Db::Postgres(c) => {
                sqlx::query_as(sqlx::AssertSqlSafe(sql))
                    .fetch_all(c)
                    .await?
            }
        })
    }

    pub async fn setting(&mut self, key: &str) -> anyhow::Result<Option<String>> {
        let sql = format!("SELECT key, value FROM server_settings WHERE key = '{key}'");
        Ok(self.strings(sql).await?.pop().map(|(_, v)| v))
    }

    pub async fn set_setting(&mut self, key: &str, value: &str) -> anyhow::Result<()> {
        self.exec(format!(
            "INSERT INTO server_settings (key, value) VALUES ('{key}', '{value}') \
             ON CONFLICT (key) DO UPDATE SET value = excluded.value"
        ))
        .await?;
        Ok(())
    }

    /// A run's messages (provider ids `m.<run>.<seq>`, `wamid.<run>.<seq>`): (rows, distinct ids).
    pub async fn count_messages(&mut self, run: &str) -> anyhow::Result<(i64, i64)> {
        let sql = format!(
            "SELECT COUNT(*), COUNT(DISTINCT provider_message_id) FROM messages \
             WHERE provider_message_id LIKE 'm.{run}.%' OR provider_message_id LIKE 'wamid.{run}.%'"
        );
        Ok(match self {
            Db::Sqlite(c) => {
                sqlx::query_as(sqlx::AssertSqlSafe(sql))
                    .fetch_one(c)
                    .await?
            }
            Db::Postgres(c) => {
                sqlx::query_as(sqlx::AssertSqlSafe(sql))
                    .fetch_one(c)
                    .await?
            }
        })
    }

    pub async fn begin(&mut self) -> anyhow::Result<()> {
        self.exec("BEGIN".into()).await.map(|_| ())
    }

    pub async fn commit(&mut self) -> anyhow::Result<()> {
        self.exec("COMMIT".into()).await.map(|_| ())
    }
}
