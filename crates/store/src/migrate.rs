//! A small embedded migration runner: numbered SQL files compiled into the binary, applied in order,
//! each in its own transaction, recorded in `schema_migrations`. (sqlx's `migrate!` needs its macros
//! feature, which doubles the clean build on two cores.)

pub(crate) struct Migration {
    pub version: i64,
    pub name: &'static str,
    pub sql: &'static str,
}

pub(crate) const SQLITE: &[Migration] = &[Migration {
    version: 1,
    name: "init",
    sql: include_str!("../migrations/sqlite/0001_init.sql"),
}];

/// Splits a migration file into statements. Our migrations have no `;` inside strings or triggers.
pub(crate) fn statements(sql: &str) -> impl Iterator<Item = String> + '_ {
    sql.split(';')
        .map(|s| s.lines().filter(|l| !l.trim_start().starts_with("--")).collect::<Vec<_>>().join("\n"))
        .filter(|s| !s.trim().is_empty())
}
