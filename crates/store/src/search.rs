//! Text search in the conversation list (`q=`), the same on both stores: every typed word must
//! match a word of the contact's name, phone or email, or of one message — the last typed word as
//! the start of a word, since it may be still being typed — with case and diacritics folded
//! (`khach` finds `Khách`, `don hang` finds `Đơn hàng`, `0912` finds `0912 345 678`).
//!
//! Why only the last word as a prefix: a prefix has to gather every indexed word it starts before
//! the index can use it, which for a common one ("nguyen", "khach", "ship") costs tens of
//! milliseconds on a million conversations; a whole word is looked up directly. Words typed before
//! a space are whole words.
//!
//! Two ways to find the page, because no single index answers both kinds of question fast:
//! 1. **Walk**: the newest [`WALK`] conversations that pass the other filters are checked here,
//!    in memory, against their contact and their newest [`WALK_MESSAGES`] messages. A common word
//!    ("size", "ship", a shop's own name) fills the page from these at once — where an index would
//!    have to gather every one of its hundreds of thousands of matches to sort them by time.
//! 2. **Index**: otherwise the backend's text index (SQLite FTS5, PostgreSQL GIN) finds the
//!    conversations of the newest [`DEPTH`] matching messages and of the matching contacts; a rare
//!    word has few. The two results are merged.
//!
//! The price: a conversation whose only match is an older message (not among its newest
//! [`WALK_MESSAGES`], or beyond the newest [`DEPTH`] matches) is not found for a common word.

use crate::rows::summary_row;
use crate::sql::{Arg, Db, id_strings, numbered, q_owned};
use crate::writes::{CONVERSATION_COLUMNS, REPLY_DUE_AT};
use crate::{
    AssigneeFilter, ConversationQuery, ConversationSummary, Page, Result, merge_newest_first,
    page_of,
};
use std::collections::HashMap;
use switchboard_core::ConversationId;

/// How many of the newest conversations the walk checks.
pub(crate) const WALK: usize = 100;
/// How many of each walked conversation's newest messages are checked.
pub(crate) const WALK_MESSAGES: i64 = 20;
/// How many of the newest matching messages (and contacts) the index search considers.
pub(crate) const DEPTH: i64 = 2000;

/// Words as the search compares them (cut, lower-cased, diacritics folded): the core's folding, so
/// the walk, keyword flows and FAQ answers fold text the same way.
pub(crate) use switchboard_core::text::words;

/// Whether every searched word is a word of `text`, the last one the start of a word.
fn all_match(searched: &[String], text: &str) -> bool {
    let have = words(text);
    let last = searched.len().saturating_sub(1);
    searched.iter().enumerate().all(|(i, w)| {
        have.iter().any(|h| {
            if i == last {
                h.starts_with(w.as_str())
            } else {
                h == w
            }
        })
    })
}

/// The conversation list's conditions for `q` without its text (filters and cursor), with `?`
/// placeholders.
fn list_filters(q: &ConversationQuery) -> (String, Vec<Arg>) {
    let mut sql = String::from("c.workspace_id = ?");
    let mut binds = vec![Arg::from(q.workspace_id.to_string())];
    if let Some(visible) = &q.visible_inboxes {
        sql.push_str(" AND c.inbox_id = ANY(?)");
        binds.push(Arg::List(id_strings(visible)));
    }
    if let Some(s) = q.status {
        sql.push_str(" AND c.status = ?");
        binds.push(Arg::from(s.as_str()));
    }
    if let Some(i) = q.inbox_id {
        sql.push_str(" AND c.inbox_id = ?");
        binds.push(Arg::from(i.to_string()));
    }
    match q.assignee {
        Some(AssigneeFilter::Unassigned) => sql.push_str(" AND c.assignee_id IS NULL"),
        Some(AssigneeFilter::Agent(a)) => {
            sql.push_str(" AND c.assignee_id = ?");
            binds.push(Arg::from(a.to_string()));
        }
        None => {}
    }
    if let Some(ct) = q.contact_id {
        sql.push_str(" AND c.contact_id = ?");
        binds.push(Arg::from(ct.to_string()));
    }
    if let Some(tag) = &q.tag {
        sql.push_str(
            " AND EXISTS (SELECT 1 FROM conversation_tags x JOIN tags t ON t.id = x.tag_id WHERE x.conversation_id = c.id AND t.name = ?)",
        );
        binds.push(Arg::from(tag.clone()));
    }
    if let Some(cur) = q.cursor {
        sql.push_str(" AND (c.last_activity_at < ? OR (c.last_activity_at = ? AND c.id < ?))");
        binds.push(Arg::from(cur.last_activity_at.millis()));
        binds.push(Arg::from(cur.last_activity_at.millis()));
        binds.push(Arg::from(cur.id.to_string()));
    }
    (sql, binds)
}

/// What a walked conversation is checked against.
#[derive(Default)]
struct Texts {
    /// The contact's name, phone and email.
    contact: String,
    /// Its newest messages' text.
    messages: Vec<String>,
}

/// The conversation list's rows: the filters of `q` and its cursor, plus `extra` (SQL with `?`
/// placeholders, and its binds), newest first, at most `take`; `persistent: false` plans the
/// statement with the values at hand (not a cached generic plan).
pub(crate) async fn rows<D: Db>(
    d: &D,
    q: &ConversationQuery,
    extra: Option<(&str, Vec<Arg>)>,
    take: usize,
    persistent: bool,
) -> Result<Vec<ConversationSummary>> {
    let (filters, mut binds) = list_filters(q);
    let mut sql = format!(
        "SELECT {CONVERSATION_COLUMNS}, {REPLY_DUE_AT}, ct.name AS contact_name, ct.avatar_file AS contact_avatar_file, ct.avatar_url AS contact_avatar_src, i.channel AS channel, i.name AS inbox_name \
         FROM conversations c JOIN contacts ct ON ct.id = c.contact_id JOIN inboxes i ON i.id = c.inbox_id \
         WHERE {filters}"
    );
    if let Some((more, more_binds)) = extra {
        sql.push_str(more);
        binds.extend(more_binds);
    }
    sql.push_str(" ORDER BY c.last_activity_at DESC, c.id DESC LIMIT ?");
    binds.push(i64::try_from(take).unwrap_or(i64::MAX).into());
    let mut query = q_owned(numbered(&sql)).persistent(persistent);
    query.args = binds;
    query
        .fetch_all(&mut *d.read().await?)
        .await?
        .iter()
        .map(summary_row)
        .collect()
}

/// A page of the conversation list, searched when `q.q` holds words.
pub(crate) async fn list<D: Db>(b: &D, q: &ConversationQuery) -> Result<Page<ConversationSummary>> {
    let limit = q.limit.clamp(1, 200) as usize;
    let Some(text) = q.q.as_deref().map(str::trim).filter(|t| !t.is_empty()) else {
        return Ok(page_of(rows(b, q, None, limit + 1, true).await?, limit));
    };
    let searched = words(text);
    if searched.is_empty() {
        // Nothing searchable (only punctuation): nothing matches.
        return Ok(page_of(Vec::new(), limit));
    }
    let recent = rows(b, q, None, WALK, true).await?;
    let ids: Vec<ConversationId> = recent.iter().map(|s| s.conversation.id).collect();
    let mut texts: HashMap<ConversationId, Texts> = HashMap::new();
    for (id, contact, body) in b.texts(&ids).await? {
        let t = texts.entry(id).or_default();
        t.contact = contact;
        t.messages.extend(body);
    }
    let found: Vec<ConversationSummary> = recent
        .into_iter()
        .filter(|s| {
            texts.get(&s.conversation.id).is_some_and(|t| {
                all_match(&searched, &t.contact)
                    || t.messages.iter().any(|m| all_match(&searched, m))
            })
        })
        .take(limit + 1)
        .collect();
    if found.len() > limit {
        return Ok(page_of(found, limit));
    }
    let indexed = b.indexed(q, text, &searched, limit + 1).await?;
    Ok(page_of(
        merge_newest_first(found, indexed, limit + 1),
        limit,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_are_cut_folded_and_lower_cased() {
        assert_eq!(
            words("Đơn hàng #123 của Khách, SĐT 0912-345"),
            ["don", "hang", "123", "cua", "khach", "sdt", "0912", "345"]
        );
        assert_eq!(words("an@shop.vn"), ["an", "shop", "vn"]);
        assert!(words(" # ! ").is_empty());
    }

    #[test]
    fn every_word_must_start_a_word_of_one_text() {
        let w = words("khach 0912");
        assert!(all_match(&w, "Khách Lan 0912345678"));
        assert!(!all_match(&w, "Khách Lan"), "both words");
        assert!(
            !all_match(&words("han"), "Khách"),
            "a word's start, not its middle"
        );
        assert!(all_match(&words("don hang"), "ĐƠN HÀNG đã giao"));
    }
}
