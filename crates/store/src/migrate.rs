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
    Migration {
        version: 6,
        name: "search",
        sql: include_str!("../migrations/sqlite/0006_search.sql"),
    },
    Migration {
        version: 7,
        name: "usage_counts",
        sql: include_str!("../migrations/sqlite/0007_usage_counts.sql"),
    },
    Migration {
        version: 8,
        name: "search_fold",
        sql: include_str!("../migrations/sqlite/0008_search_fold.sql"),
    },
];

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
mod tests {
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
