//! Checks on the shape of `routes/` that keep handlers thin (STYLE.md, habit 6): every `pub async
//! fn` handler is at most `MAX_HANDLER_LINES` long (its logic lives in an `app/` command, `core` or
//! the store), no route file imports another route file or the router (`routes/mod.rs`), and no
//! command in `app/` imports a route file.

use std::path::{Path, PathBuf};

const MAX_HANDLER_LINES: usize = 30;

/// Handlers still over the limit while they are being reshaped. This list must shrink to empty:
/// add nothing to it.
const LONG_HANDLERS_BEING_MOVED: &[(&str, &str)] = &[];

/// Route files that still take shared helpers through the router's re-exports (`routes/mod.rs`)
/// instead of `crate::responses` / `crate::random`. This list must shrink to empty too.
const STILL_IMPORTING_THE_ROUTER: &[&str] = &[];

fn matches(pattern: &str, name: &str) -> bool {
    match pattern.strip_suffix('*') {
        Some(prefix) => name.starts_with(prefix),
        None => pattern == name,
    }
}

/// A source file's text before its first `#[cfg(test)]` (tests may reach anywhere).
fn without_tests(text: &str) -> &str {
    text.find("#[cfg(test)]").map_or(text, |i| &text[..i])
}

/// `(name, lines)` of every `pub async fn` at the top level of a (rustfmt'd) file, from its
/// signature to its closing brace.
pub fn handler_lengths(text: &str) -> Vec<(String, usize)> {
    let lines: Vec<&str> = text.lines().collect();
    let mut out = Vec::new();
    for (start, line) in lines.iter().enumerate() {
        let Some(rest) = line.strip_prefix("pub async fn ") else {
            continue;
        };
        let name: String = rest
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect();
        let end = lines[start..]
            .iter()
            .position(|l| l.starts_with('}'))
            .map_or(lines.len(), |i| start + i);
        out.push((name, end - start + 1));
    }
    out
}

/// The first path segments a file names after `routes::` or `super::` (groups included), e.g.
/// `use crate::routes::{created, agents::create};` → `created`, `agents`.
pub fn route_paths(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    for prefix in ["routes::", "super::"] {
        let mut rest = text;
        while let Some(i) = rest.find(prefix) {
            let before = rest[..i].chars().next_back();
            rest = &rest[i + prefix.len()..];
            if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
                continue; // e.g. `my_routes::`
            }
            let segments: Vec<&str> = match rest.strip_prefix('{') {
                Some(group) => group.split('}').next().unwrap_or("").split(',').collect(),
                None => vec![rest],
            };
            for s in segments {
                let ident: String = s
                    .trim_start()
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect();
                if !ident.is_empty() {
                    out.push(ident);
                }
            }
        }
    }
    out
}

fn rust_files(dir: &Path) -> Vec<(String, String)> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|d| d.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    files.sort();
    files
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "rs"))
        .filter_map(|p| {
            let stem = p.file_stem()?.to_str()?.to_owned();
            Some((stem, std::fs::read_to_string(&p).ok()?))
        })
        .collect()
}

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

#[test]
fn handlers_are_at_most_30_lines() {
    let files = rust_files(&src().join("routes"));
    assert!(files.len() > 10, "found the route files");
    let mut long = Vec::new();
    for (file, text) in &files {
        for (name, lines) in handler_lengths(without_tests(text)) {
            let allowed = LONG_HANDLERS_BEING_MOVED
                .iter()
                .any(|(f, n)| matches(f, file) && *n == name);
            if lines > MAX_HANDLER_LINES && !allowed {
                long.push(format!("routes/{file}.rs {name}: {lines} lines"));
            }
        }
    }
    assert!(
        long.is_empty(),
        "handlers over {MAX_HANDLER_LINES} lines (move the logic into an app/ command, core or \
         the store):\n{}",
        long.join("\n")
    );
}

#[test]
fn no_route_file_imports_another_or_the_router() {
    let files = rust_files(&src().join("routes"));
    let stems: Vec<&str> = files.iter().map(|(s, _)| s.as_str()).collect();
    let mut found = Vec::new();
    for (file, text) in files.iter().filter(|(f, _)| f != "mod") {
        for name in route_paths(without_tests(text)) {
            if stems.contains(&name.as_str()) && name != "mod" {
                found.push(format!("routes/{file}.rs imports routes/{name}.rs"));
            } else if !STILL_IMPORTING_THE_ROUTER.iter().any(|f| matches(f, file)) {
                found.push(format!(
                    "routes/{file}.rs imports `{name}` from routes/mod.rs (the router)"
                ));
            }
        }
    }
    assert!(found.is_empty(), "{}", found.join("\n"));
}

#[test]
fn no_command_imports_a_route() {
    let found: Vec<String> = rust_files(&src().join("app"))
        .iter()
        .filter(|(_, text)| without_tests(text).contains("routes::"))
        .map(|(file, _)| format!("app/{file}.rs"))
        .collect();
    assert!(found.is_empty(), "commands importing routes: {found:?}");
}

#[test]
fn the_checks_see_what_they_look_for() {
    let text = "use crate::routes::{created, agents::create};\nuse super::inboxes;\n\
                pub async fn a() {\n    x();\n}\n\npub async fn b_2(\n) {\n}\n";
    assert_eq!(
        route_paths(text),
        ["created", "agents", "inboxes"].map(String::from)
    );
    assert_eq!(
        handler_lengths(text),
        [("a".to_owned(), 3), ("b_2".to_owned(), 3)]
    );
    assert!(route_paths("use my_routes::x; // no").is_empty());
    assert!(matches("webhooks_*", "webhooks_zalo") && !matches("media", "media_x"));
}
