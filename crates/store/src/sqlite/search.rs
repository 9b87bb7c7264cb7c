//! The conversation list's text search on SQLite (see [`crate::search`]): FTS5 indexes
//! (migrations 6 and 8) over message bodies and contacts.

use super::SqliteStore;
use crate::rows::uuid_of;
use crate::search::{DEPTH, WALK_MESSAGES};
use crate::sql::{Db, RowRead, ids_json, q};
use crate::sql::{SearchBackend, TextRow};
use crate::*;
use async_trait::async_trait;

/// The FTS5 query for searched words (folded by `search::words`): every word must match, with
/// `prefix` the last one as a prefix (`0912` finds `0912345678`).
fn fts_query(words: &[String], prefix: bool) -> String {
    let last = words.len().saturating_sub(1);
    words
        .iter()
        .enumerate()
        .map(|(i, w)| format!("\"{w}\"{}", if prefix && i == last { "*" } else { "" }))
        .collect::<Vec<_>>()
        .join(" ")
}

#[async_trait]
impl SearchBackend for SqliteStore {
    async fn texts(&self, ids: &[ConversationId]) -> Result<Vec<TextRow>> {
        let rows = q(
            "SELECT c.id, COALESCE(ct.name, '') || ' ' || COALESCE(ct.phone, '') || ' ' || COALESCE(ct.email, '') AS contact, \
             m.body FROM json_each($1) AS k JOIN conversations c ON c.id = k.value JOIN contacts ct ON ct.id = c.contact_id \
             LEFT JOIN messages m ON m.rowid IN (SELECT rowid FROM messages WHERE conversation_id = c.id \
             ORDER BY created_at DESC, id DESC LIMIT $2)",
        )
        .bind(ids_json(ids))
        .bind(WALK_MESSAGES)
        .fetch_all(&mut *self.read().await?)
        .await?;
        rows.iter()
            .map(|r| {
                Ok((
                    ConversationId(uuid_of(r, "id")?),
                    r.try_get("contact")?,
                    r.try_get("body")?,
                ))
            })
            .collect()
    }

    async fn indexed(
        &self,
        q: &ConversationQuery,
        _text: &str,
        words: &[String],
        take: usize,
    ) -> Result<Vec<ConversationSummary>> {
        // The newest DEPTH matching messages (and contacts) bound the work for common words
        // (rowid order is arrival order). The last word is a prefix — unless, as a whole word, it
        // is common in that index already: FTS5 gathers every indexed word a prefix starts before
        // it can use it (tens of milliseconds for a common one), where a whole word is read
        // lazily, newest first. A common word typed in full is taken as that word.
        let Some(last) = words.last() else {
            return Ok(Vec::new());
        };
        let mut binds = Vec::new();
        for count in [
            "SELECT COUNT(*) FROM (SELECT rowid FROM contacts_fts WHERE contacts_fts MATCH $1 LIMIT $2)",
            "SELECT COUNT(*) FROM (SELECT rowid FROM messages_fts WHERE messages_fts MATCH $1 LIMIT $2)",
        ] {
            let seen: i64 = crate::sql::q(count)
                .bind(fts_query(std::slice::from_ref(last), false))
                .bind(DEPTH + 1)
                .fetch_one(&mut *self.read().await?)
                .await?
                .try_get(0)?;
            binds.push(fts_query(words, seen <= DEPTH).into());
            binds.push(DEPTH.into());
        }
        let extra = " AND (c.contact_id IN (SELECT k.id FROM contacts k WHERE k.rowid IN \
             (SELECT rowid FROM contacts_fts WHERE contacts_fts MATCH ? ORDER BY rowid DESC LIMIT ?)) \
             OR c.id IN (SELECT m.conversation_id FROM messages m WHERE m.rowid IN \
             (SELECT rowid FROM messages_fts WHERE messages_fts MATCH ? ORDER BY rowid DESC LIMIT ?)))";
        crate::search::rows(self, q, Some((extra, binds)), take, true).await
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn typed_words_become_prefix_terms() {
        let q = |s: &str| super::fts_query(&crate::search::words(s), true);
        assert_eq!(q("  Khách  0912 "), "\"khach\" \"0912\"*");
        assert_eq!(q("#123"), "\"123\"*");
        assert_eq!(q("đơn say \"hi\""), "\"don\" \"say\" \"hi\"*");
    }
}
