//! The conversation list's text search on PostgreSQL (see [`crate::search`]): GIN indexes
//! (migration 6) over the folded text's `tsvector`.

use super::PgStore;
use crate::rows::uuid_of;
use crate::search::{DEPTH, WALK_MESSAGES};
use crate::sql::{Db, RowRead, id_strings, q_owned};
use crate::sql::{SearchBackend, TextRow};
use crate::*;
use async_trait::async_trait;

/// `expr` lower-cased and without diacritics, in SQL: decomposed (NFD), the combining marks
/// dropped, then lower-cased (the columns are `COLLATE "C"`, whose `lower()` folds ASCII only —
/// enough once the marks are gone), and đ, which does not decompose, made d. A `translate()` over
/// every accented letter did the same at ten times the cost (43 µs a message): it was a fifth of
/// PostgreSQL's work on the ingest benchmark, through the search index.
fn folded_sql(expr: &str) -> String {
    format!(
        "translate(lower(regexp_replace(normalize({expr}, NFD), '[\\u0300-\\u036f]', '', 'g')), 'đĐ', 'dd')"
    )
}

/// The folded text of a contact's name, phone and email (`alias` names the contacts row).
fn contact_text(alias: &str) -> String {
    format!(
        "COALESCE({alias}name, '') || ' ' || COALESCE({alias}phone, '') || ' ' || COALESCE({alias}email, '')"
    )
}

/// The tsvector the search indexes are built on (migration 6): `expr` folded, cut into words.
fn tsvector_sql(expr: &str) -> String {
    format!("to_tsvector('simple'::regconfig, {})", folded_sql(expr))
}

#[async_trait]
impl SearchBackend for PgStore {
    async fn texts(&self, ids: &[ConversationId]) -> Result<Vec<TextRow>> {
        let rows = q_owned(format!(
            "SELECT c.id, {} AS contact, m.body FROM conversations c JOIN contacts ct ON ct.id = c.contact_id \
             LEFT JOIN LATERAL (SELECT body FROM messages WHERE conversation_id = c.id \
             ORDER BY created_at DESC, id DESC LIMIT $2) m ON TRUE WHERE c.id = ANY($1)",
            contact_text("ct.")
        ))
        .bind(id_strings(ids))
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
        text: &str,
        _words: &[String],
        take: usize,
    ) -> Result<Vec<ConversationSummary>> {
        // PostgreSQL's own parser cuts the typed words, as it cut the indexed text; the last one
        // becomes a prefix term.
        let lexemes = q_owned(format!(
            "SELECT quote_literal(lexeme), COALESCE((SELECT max(p) FROM unnest(positions) AS p), 0)::int \
             FROM unnest(to_tsvector('simple'::regconfig, {}))",
            folded_sql("$1")
        ))
        .bind(text)
        .fetch_all(&mut *self.read().await?)
        .await?
        .iter()
        .map(|r| Ok((r.try_get::<String, _>(0)?, r.try_get::<i32, _>(1)?)))
        .collect::<Result<Vec<_>>>()?;
        let Some(last) = lexemes.iter().map(|l| l.1).max() else {
            return Ok(Vec::new());
        };
        let tsq = lexemes
            .iter()
            .map(|(l, at)| format!("{l}{}", if *at == last { ":*" } else { "" }))
            .collect::<Vec<_>>()
            .join(" & ");
        let matches = |tsv: String| format!("{tsv} @@ to_tsquery('simple'::regconfig, ?)");
        let extra = format!(
            " AND c.id IN (SELECT h.conversation_id FROM (SELECT m.conversation_id FROM messages m WHERE {} \
             ORDER BY m.created_at DESC LIMIT ?) h \
             UNION SELECT c2.id FROM conversations c2 WHERE c2.contact_id IN \
             (SELECT k.id FROM contacts k WHERE {} ORDER BY k.created_at DESC LIMIT ?))",
            matches(tsvector_sql("m.body")),
            matches(tsvector_sql(&contact_text("k."))),
        );
        let binds = vec![tsq.clone().into(), DEPTH.into(), tsq.into(), DEPTH.into()];
        // Planned with the words at hand (not a cached generic plan): how common they are
        // decides between the index and a scan.
        crate::search::rows(self, q, Some((&extra, binds)), take, false).await
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_search_indexes_are_built_on_what_the_queries_match() {
        let migration = include_str!("../../migrations/postgres/0006_search.sql");
        for expr in [
            super::tsvector_sql("body"),
            super::tsvector_sql(&super::contact_text("")),
        ] {
            assert!(migration.contains(&expr), "the migration lacks {expr}");
        }
    }
}
