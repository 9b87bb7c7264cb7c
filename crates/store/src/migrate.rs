//! A small embedded migration runner: numbered SQL files compiled into the binary, applied in order,
//! each in its own transaction, recorded in `schema_migrations`. (sqlx's `migrate!` needs its macros
//! feature, which doubles the clean build on two cores.)

pub(crate) struct Migration {
    pub version: i64,
    pub name: &'static str,
    pub sql: &'static str,
}

pub(crate) const SQLITE: &[Migration] = &[
    Migration {
        version: 1,
        name: "init",
        sql: include_str!("../migrations/sqlite/0001_init.sql"),
    },
    Migration {
        version: 2,
        name: "routing",
        sql: include_str!("../migrations/sqlite/0002_routing.sql"),
    },
    Migration {
        version: 3,
        name: "meta",
        sql: include_str!("../migrations/sqlite/0003_meta.sql"),
    },
    Migration {
        version: 4,
        name: "media",
        sql: include_str!("../migrations/sqlite/0004_media.sql"),
    },
    Migration {
        version: 5,
        name: "channels",
        sql: include_str!("../migrations/sqlite/0005_channels.sql"),
    },
];

/// Splits a migration file into statements: whole-line `--` comments are dropped first, then the
/// text is cut at `;`. Our migrations keep `;` out of strings and triggers.
pub(crate) fn statements(sql: &str) -> Vec<String> {
    let code: Vec<&str> = sql
        .lines()
        .filter(|l| !l.trim_start().starts_with("--"))
        .collect();
    code.join("\n")
        .split(';')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

#[cfg(test)]
mod tests {
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
