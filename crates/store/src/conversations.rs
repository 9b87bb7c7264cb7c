//! Workspaces, agents, sessions, inboxes, contacts, conversations and their messages: the
//! [`Store`] trait written once over [`crate::sql`], and the conversation writes every other part
//! shares (compare-and-set on the version, timers and pool through routing, tags, the action log).

use crate::rows::*;
use crate::sql::{
    Conn, Db, RowRead, commit, conflict_on_deadlock, conflict_on_unique, id_strings, json_text,
    numbered, q, q_owned, retried, unique_violation,
};
use crate::*;
use switchboard_core::event::Event;
use tracing::instrument;
use uuid::Uuid;

use crate::writes::*;

#[async_trait]
impl<D: Db> Store for D {
    fn set_commit_hook(&self, hook: CommitHook) {
        if let Ok(mut h) = self.hook().write() {
            *h = Some(hook);
        }
    }

    fn set_secrets(&self, secrets: std::sync::Arc<secrets::SecretBox>) {
        if let Ok(mut s) = self.secrets().write() {
            *s = Some(secrets);
        }
        forget_accounts(self);
    }

    #[instrument(skip_all)]
    async fn reseal_secrets(&self) -> Result<usize> {
        let rows = q("SELECT * FROM inboxes ORDER BY id")
            .read_all(self, inbox_row)
            .await?;
        let mut n = 0;
        for raw in rows {
            if !needs_reseal(self, &raw.settings) {
                continue;
            }
            let inbox = opened(self, raw)?;
            q("UPDATE inboxes SET settings = $1 WHERE id = $2")
                .bind(json_text(&sealed(self, &inbox.settings)))
                .bind(inbox.id.to_string())
                .write(self)
                .await?;
            n += 1;
        }
        forget_accounts(self);
        Ok(n)
    }

    #[instrument(skip_all)]
    async fn ensure_workspace(&self, name: &str, now: Timestamp) -> Result<WorkspaceId> {
        let mut conn = self.begin().await?;
        // Nodes starting together: one creates the workspace, the others find it.
        conn.lock_keys(vec!["workspace".into()]).await?;
        if let Some(r) = q("SELECT id FROM workspaces ORDER BY created_at LIMIT 1")
            .fetch_optional(&mut *conn)
            .await?
        {
            return Ok(WorkspaceId(uuid_of(&r, "id")?));
        }
        let id = WorkspaceId(Uuid::now_v7());
        q("INSERT INTO workspaces (id, name, created_at) VALUES ($1, $2, $3)")
            .bind(id.to_string())
            .bind(name)
            .bind(now.millis())
            .execute(&mut *conn)
            .await?;
        commit(self, conn, &mut []).await?;
        Ok(id)
    }

    #[instrument(skip_all)]
    async fn setting(&self, key: &str) -> Result<Option<String>> {
        q("SELECT value FROM server_settings WHERE key = $1")
            .bind(key)
            .read_opt(self, first::<String, _>)
            .await
    }

    #[instrument(skip_all)]
    async fn setting_init(&self, key: &str, value: &str) -> Result<String> {
        let mut tx = self.begin().await?;
        q("INSERT INTO server_settings (key, value) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING")
            .bind(key)
            .bind(value)
            .execute(&mut *tx)
            .await?;
        let stored = q("SELECT value FROM server_settings WHERE key = $1")
            .bind(key)
            .fetch_one(&mut *tx)
            .await?
            .try_get(0)?;
        commit(self, tx, &mut []).await?;
        Ok(stored)
    }

    #[instrument(skip_all)]
    async fn create_agent(&self, a: &Agent, password_hash: &str) -> Result<()> {
        q(
            "INSERT INTO agents (id, workspace_id, email, name, role, password_hash, capacity, active, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(a.id.to_string())
        .bind(a.workspace_id.to_string())
        .bind(&a.email)
        .bind(&a.name)
        .bind(a.role.as_str())
        .bind(password_hash)
        .bind(a.capacity.map(i64::from))
        .bind(i64::from(a.active))
        .bind(a.created_at.millis())
        .write(self)
        .await
        .map_err(conflict_on_unique("email"))?;
        Ok(())
    }

    #[instrument(skip_all)]
    async fn update_agent(&self, a: &Agent, password_hash: Option<&str>) -> Result<()> {
        let done = q(
            "UPDATE agents SET email = $1, name = $2, role = $3, capacity = $4, active = $5, password_hash = COALESCE($6, password_hash) WHERE id = $7",
        )
        .bind(&a.email)
        .bind(&a.name)
        .bind(a.role.as_str())
        .bind(a.capacity.map(i64::from))
        .bind(i64::from(a.active))
        .bind(password_hash)
        .bind(a.id.to_string())
        .write(self)
        .await
        .map_err(conflict_on_unique("email"))?;
        done.or(StoreError::NotFound)
    }

    #[instrument(skip_all)]
    async fn agent(&self, id: AgentId) -> Result<Option<Agent>> {
        q("SELECT * FROM agents WHERE id = $1")
            .bind(id.to_string())
            .read_opt(self, agent_row)
            .await
    }

    #[instrument(skip_all)]
    async fn agent_credentials(&self, email: &str) -> Result<Option<(Agent, String)>> {
        let Some(r) = q("SELECT * FROM agents WHERE email = $1")
            .bind(email)
            .fetch_optional(&mut *self.read().await?)
            .await?
        else {
            return Ok(None);
        };
        Ok(Some((agent_row(&r)?, r.try_get("password_hash")?)))
    }

    #[instrument(skip_all)]
    async fn list_agents(&self, ws: WorkspaceId) -> Result<Vec<Agent>> {
        q("SELECT * FROM agents WHERE workspace_id = $1 ORDER BY name, id")
            .bind(ws.to_string())
            .read_all(self, agent_row)
            .await
    }

    #[instrument(skip_all)]
    async fn create_session(&self, s: &Session) -> Result<()> {
        q("INSERT INTO sessions (token_hash, agent_id, csrf_token, created_at, expires_at) VALUES ($1, $2, $3, $4, $5)")
            .bind(&s.token_hash)
            .bind(s.agent_id.to_string())
            .bind(&s.csrf_token)
            .bind(s.created_at.millis())
            .bind(s.expires_at.millis())
            .write(self)
            .await?;
        Ok(())
    }

    #[instrument(skip_all)]
    async fn session(&self, token_hash: &str) -> Result<Option<Session>> {
        let Some(r) = q("SELECT * FROM sessions WHERE token_hash = $1")
            .bind(token_hash)
            .fetch_optional(&mut *self.read().await?)
            .await?
        else {
            return Ok(None);
        };
        Ok(Some(session_row(&r)?))
    }

    #[instrument(skip_all)]
    async fn revoke_session(&self, token_hash: &str, now: Timestamp) -> Result<()> {
        q("UPDATE sessions SET revoked_at = $1 WHERE token_hash = $2 AND revoked_at IS NULL")
            .bind(now.millis())
            .bind(token_hash)
            .write(self)
            .await?;
        Ok(())
    }

    #[instrument(skip_all)]
    async fn revoke_agent_sessions(&self, agent: AgentId, now: Timestamp) -> Result<()> {
        q("UPDATE sessions SET revoked_at = $1 WHERE agent_id = $2 AND revoked_at IS NULL")
            .bind(now.millis())
            .bind(agent.to_string())
            .write(self)
            .await?;
        Ok(())
    }

    #[instrument(skip_all)]
    async fn create_inbox(&self, i: &Inbox) -> Result<()> {
        q("INSERT INTO inboxes (id, workspace_id, name, channel, settings, created_at) VALUES ($1, $2, $3, $4, $5, $6)")
            .bind(i.id.to_string())
            .bind(i.workspace_id.to_string())
            .bind(&i.name)
            .bind(i.channel.as_str())
            .bind(json_text(&sealed(self, &i.settings)))
            .bind(i.created_at.millis())
            .write(self)
            .await?;
        forget_accounts(self);
        Ok(())
    }

    #[instrument(skip_all)]
    async fn update_inbox(&self, i: &Inbox) -> Result<()> {
        let done = q("UPDATE inboxes SET name = $1, settings = $2 WHERE id = $3")
            .bind(&i.name)
            .bind(json_text(&sealed(self, &i.settings)))
            .bind(i.id.to_string())
            .write(self)
            .await?;
        forget_accounts(self);
        done.or(StoreError::NotFound)
    }

    #[instrument(skip_all)]
    async fn inbox(&self, id: InboxId) -> Result<Option<Inbox>> {
        q("SELECT * FROM inboxes WHERE id = $1")
            .bind(id.to_string())
            .read_opt(self, inbox_row)
            .await?
            .map(|i| opened(self, i))
            .transpose()
    }

    #[instrument(skip_all)]
    async fn list_inboxes(&self, ws: WorkspaceId) -> Result<Vec<Inbox>> {
        q("SELECT * FROM inboxes WHERE workspace_id = $1 ORDER BY name, id")
            .bind(ws.to_string())
            .read_all(self, inbox_row)
            .await?
            .into_iter()
            .map(|i| opened(self, i))
            .collect()
    }

    #[instrument(skip_all)]
    async fn set_inbox_members(&self, inbox: InboxId, agents: &[AgentId]) -> Result<()> {
        let mut tx = self.begin().await?;
        q("DELETE FROM inbox_members WHERE inbox_id = $1")
            .bind(inbox.to_string())
            .execute(&mut *tx)
            .await?;
        for a in agents {
            q("INSERT INTO inbox_members (inbox_id, agent_id) VALUES ($1, $2) ON CONFLICT DO NOTHING")
                .bind(inbox.to_string())
                .bind(a.to_string())
                .execute(&mut *tx)
                .await?;
        }
        commit(self, tx, &mut []).await?;
        Ok(())
    }

    #[instrument(skip_all)]
    async fn inbox_members(&self, inbox: InboxId) -> Result<Vec<AgentId>> {
        q("SELECT agent_id FROM inbox_members WHERE inbox_id = $1 ORDER BY agent_id")
            .bind(inbox.to_string())
            .read_all(self, |r| uuid_of(r, "agent_id").map(AgentId))
            .await
    }

    #[instrument(skip_all)]
    async fn memberships(&self) -> Result<Vec<(AgentId, InboxId)>> {
        q("SELECT agent_id, inbox_id FROM inbox_members")
            .read_all(self, |r| {
                Ok((
                    AgentId(uuid_of(r, "agent_id")?),
                    InboxId(uuid_of(r, "inbox_id")?),
                ))
            })
            .await
    }

    #[instrument(skip_all)]
    async fn contact(&self, id: ContactId) -> Result<Option<Contact>> {
        q("SELECT * FROM contacts WHERE id = $1")
            .bind(id.to_string())
            .read_opt(self, contact_row)
            .await
    }

    #[instrument(skip_all)]
    async fn update_contact(&self, c: &Contact) -> Result<()> {
        let done = q(
            "UPDATE contacts SET phone = $1, email = $2, notes = $3, updated_at = $4 WHERE id = $5",
        )
        .bind(c.phone.as_deref())
        .bind(c.email.as_deref())
        .bind(c.notes.as_deref())
        .bind(c.updated_at.millis())
        .bind(c.id.to_string())
        .write(self)
        .await?;
        done.or(StoreError::NotFound)
    }

    #[instrument(skip_all)]
    async fn upsert_contact_identity(
        &self,
        fresh: &Contact,
        inbox: InboxId,
        external_id: &str,
    ) -> Result<Contact> {
        let mut tx = self.begin().await?;
        tx.lock_keys(vec![identity_key(inbox, external_id)]).await?;
        let known = q("SELECT c.* FROM contact_identities i JOIN contacts c ON c.id = i.contact_id WHERE i.inbox_id = $1 AND i.external_id = $2")
            .bind(inbox.to_string())
            .bind(external_id)
            .fetch_optional(&mut *tx)
            .await?;
        if let Some(r) = known {
            return contact_row(&r);
        }
        insert_contact_with(&mut *tx, fresh, inbox, external_id).await?;
        commit(self, tx, &mut []).await?;
        Ok(fresh.clone())
    }

    #[instrument(skip_all)]
    async fn contact_identities(&self, id: ContactId) -> Result<Vec<Identity>> {
        q("SELECT * FROM contact_identities WHERE contact_id = $1 ORDER BY created_at")
            .bind(id.to_string())
            .read_all(self, |r| {
                Ok(Identity {
                    inbox_id: InboxId(uuid_of(r, "inbox_id")?),
                    external_id: r.try_get("external_id")?,
                    contact_id: ContactId(uuid_of(r, "contact_id")?),
                })
            })
            .await
    }

    #[instrument(skip_all)]
    async fn conversation(&self, id: ConversationId) -> Result<Option<Conversation>> {
        let mut conn = self.read().await?;
        load_conversation(&mut *conn, id).await
    }

    #[instrument(skip_all)]
    async fn conversation_summary(
        &self,
        id: ConversationId,
    ) -> Result<Option<ConversationSummary>> {
        let sql = format!(
            "SELECT {CONVERSATION_COLUMNS}, {REPLY_DUE_AT}, ct.name AS contact_name, ct.avatar_file AS contact_avatar_file, ct.avatar_url AS contact_avatar_src, i.channel AS channel, i.name AS inbox_name \
             FROM conversations c JOIN contacts ct ON ct.id = c.contact_id JOIN inboxes i ON i.id = c.inbox_id WHERE c.id = $1"
        );
        q_owned(sql)
            .bind(id.to_string())
            .read_opt(self, summary_row)
            .await
    }

    #[instrument(skip_all)]
    async fn conversation_of(
        &self,
        contact: ContactId,
        inbox: InboxId,
    ) -> Result<Option<Conversation>> {
        q("SELECT * FROM conversations WHERE contact_id = $1 AND inbox_id = $2")
            .bind(contact.to_string())
            .bind(inbox.to_string())
            .read_opt(self, conversation_row)
            .await
    }

    #[instrument(skip_all)]
    async fn list_conversations(&self, q: &ConversationQuery) -> Result<Page<ConversationSummary>> {
        crate::search::list(self, q).await
    }

    #[instrument(skip_all)]
    async fn messages(
        &self,
        conv: ConversationId,
        before: Option<MessageCursor>,
        limit: u32,
        public_only: bool,
    ) -> Result<Page<Message>> {
        let limit = limit.clamp(1, 200);
        let mut sql = String::from("SELECT * FROM messages WHERE conversation_id = ?");
        if public_only {
            sql.push_str(" AND kind NOT IN ('note', 'agent_to_agent')");
        }
        if before.is_some() {
            sql.push_str(" AND (created_at < ? OR (created_at = ? AND id < ?))");
        }
        sql.push_str(" ORDER BY created_at DESC, id DESC LIMIT ?");
        let mut query = q_owned(numbered(&sql)).bind(conv.to_string());
        if let Some(b) = before {
            query = query
                .bind(b.created_at.millis())
                .bind(b.created_at.millis())
                .bind(b.id.to_string());
        }
        let rows = query
            .bind(i64::from(limit) + 1)
            .fetch_all(&mut *self.read().await?)
            .await?;
        let mut items = rows.iter().map(message_row).collect::<Result<Vec<_>>>()?;
        let next_cursor = if items.len() > limit as usize {
            items.truncate(limit as usize);
            items.last().map(|m| {
                MessageCursor {
                    created_at: m.created_at,
                    id: m.id,
                }
                .encode()
            })
        } else {
            None
        };
        items.reverse();
        Ok(Page { items, next_cursor })
    }

    #[instrument(skip_all)]
    async fn history(&self, conv: ConversationId) -> Result<Vec<ActionLogEntry>> {
        q("SELECT * FROM action_log WHERE conversation_id = $1 ORDER BY created_at, id")
            .bind(conv.to_string())
            .read_all(self, |r| {
                Ok(ActionLogEntry {
                    id: uuid_of(r, "id")?,
                    conversation_id: ConversationId(uuid_of(r, "conversation_id")?),
                    kind: r.try_get("kind")?,
                    actor_id: opt_uuid_of(r, "actor_id")?.map(AgentId),
                    detail: json_of(r, "detail")?,
                    created_at: ts(r, "created_at")?,
                })
            })
            .await
    }

    #[instrument(skip_all)]
    async fn apply(&self, change: Change) -> Result<Vec<Event>> {
        let mut tx = self.begin().await?;
        let mut events = write_change(&mut *tx, change)
            .await
            .map_err(conflict_on_deadlock)?;
        commit(self, tx, &mut events)
            .await
            .map_err(conflict_on_deadlock)?;
        Ok(events)
    }

    #[instrument(skip_all)]
    async fn mark_read(&self, conv: ConversationId) -> Result<()> {
        q("UPDATE conversations SET unread_count = 0 WHERE id = $1")
            .bind(conv.to_string())
            .write(self)
            .await?;
        Ok(())
    }

    #[instrument(skip_all, fields(batch = batch.len()))]
    async fn ingest(
        &self,
        batch: &[Inbound],
        now: Timestamp,
    ) -> Result<Vec<Result<Ingested, IngestError>>> {
        // A batch that lost a deadlock to another node's transaction is simply run again: nothing
        // of it was written, and its waiters are answered only after a commit.
        let items: Vec<&Inbound> = batch.iter().collect();
        let items = &items;
        retried(move || async move {
            let mut tx = self.begin().await?;
            let mut events = Vec::with_capacity(items.len() * 2);
            let out =
                crate::ingest::ingest_batch(&mut *tx, items, &[], &[], now, &mut events).await?;
            commit(self, tx, &mut events).await?;
            Ok(out)
        })
        .await
    }

    #[instrument(skip_all)]
    async fn list_tags(&self, ws: WorkspaceId) -> Result<Vec<Tag>> {
        q("SELECT id, name FROM tags WHERE workspace_id = $1 ORDER BY name")
            .bind(ws.to_string())
            .read_all(self, |r| {
                Ok(Tag {
                    id: TagId(uuid_of(r, "id")?),
                    name: r.try_get("name")?,
                })
            })
            .await
    }

    #[instrument(skip_all)]
    async fn list_quick_replies(
        &self,
        ws: WorkspaceId,
        prefix: Option<&str>,
    ) -> Result<Vec<QuickReply>> {
        let pattern = format!(
            "{}%",
            prefix
                .unwrap_or("")
                .replace('\\', "\\\\")
                .replace('%', "\\%")
                .replace('_', "\\_")
        );
        q("SELECT * FROM quick_replies WHERE workspace_id = $1 AND code ILIKE $2 ESCAPE '\\' ORDER BY code")
            .bind(ws.to_string())
            .bind(pattern)
            .read_all(self, quick_reply_row)
            .await
    }

    #[instrument(skip_all)]
    async fn quick_reply(&self, id: QuickReplyId) -> Result<Option<QuickReply>> {
        q("SELECT * FROM quick_replies WHERE id = $1")
            .bind(id.to_string())
            .read_opt(self, quick_reply_row)
            .await
    }

    #[instrument(skip_all)]
    async fn save_quick_reply(&self, qr: &QuickReply, now: Timestamp, create: bool) -> Result<()> {
        let res = if create {
            q("INSERT INTO quick_replies (id, workspace_id, code, body, media, created_at) VALUES ($1, $2, $3, $4, $5, $6)")
                .bind(qr.id.to_string())
                .bind(qr.workspace_id.to_string())
                .bind(&qr.code)
                .bind(&qr.text)
                .bind(crate::sql::json_text(&qr.media))
                .bind(now.millis())
                .write(self)
                .await
        } else {
            q("UPDATE quick_replies SET code = $1, body = $2, media = $3 WHERE id = $4")
                .bind(&qr.code)
                .bind(&qr.text)
                .bind(crate::sql::json_text(&qr.media))
                .bind(qr.id.to_string())
                .write(self)
                .await
        };
        let done = res.map_err(|e| {
            if unique_violation(&e) {
                StoreError::Conflict("code")
            } else {
                e
            }
        })?;
        done.or(StoreError::NotFound)
    }

    #[instrument(skip_all)]
    async fn delete_quick_reply(&self, id: QuickReplyId) -> Result<bool> {
        Ok(q("DELETE FROM quick_replies WHERE id = $1")
            .bind(id.to_string())
            .write(self)
            .await?
            .rows_affected()
            > 0)
    }

    #[instrument(skip_all)]
    async fn events_since(
        &self,
        since: i64,
        inboxes: Option<&[InboxId]>,
        limit: u32,
    ) -> Result<Vec<Event>> {
        let rows = match inboxes {
            None => {
                q("SELECT * FROM events WHERE seq > $1 ORDER BY seq LIMIT $2")
                    .bind(since)
                    .bind(i64::from(limit))
                    .fetch_all(&mut *self.read().await?)
                    .await?
            }
            Some(ids) => q(
                "SELECT * FROM events WHERE seq > $1 AND inbox_id = ANY($2) ORDER BY seq LIMIT $3",
            )
            .bind(since)
            .bind(id_strings(ids))
            .bind(i64::from(limit))
            .fetch_all(&mut *self.read().await?)
            .await?,
        };
        rows.iter().map(event_row).collect()
    }

    #[instrument(skip_all)]
    async fn last_event_seq(&self) -> Result<i64> {
        self.read().await?.last_seq().await
    }
}
