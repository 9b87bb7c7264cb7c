//! Comment rules' rows (docs/comment-rules.md): the rules of a Page / Instagram account and its
//! posts' overrides; the ledger of actions on each comment — one row per (comment, action), so an
//! action is planned once however often a comment is decided again, and carried out by one node
//! (leases), its outcome written with the counters of the post and the comment's card in one
//! transaction; who commented on which post (the first-comment condition); flows waiting for the
//! answer to a private reply. The core decides (`core::flow::comments`); these persist.

use crate::Result;
use crate::rows::{corrupt, json_of, meta_row, opt_ts, ts, uuid_of};
use crate::sql::{Conn, Db, RowRead, commit, json_text, q};
use async_trait::async_trait;
use serde::Serialize;
use switchboard_core::event::{Event, updated_event};
use switchboard_core::flow::comments::CommentRuleSet;
use switchboard_core::*;
use tracing::instrument;

/// A rule set as stored: the Page's (`post_id: None`) or a post's override.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StoredCommentRules {
    pub workspace_id: WorkspaceId,
    pub inbox_id: InboxId,
    pub post_id: Option<String>,
    pub rules: CommentRuleSet,
    /// Bumped by every save; a save naming an older one is refused.
    pub version: u32,
    pub updated_at: Timestamp,
}

/// Where an action on a comment stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CommentActionStatus {
    /// Planned, to be carried out when due (the comment outbox).
    Pending,
    Done,
    /// Refused for good (Meta's answer, the policy); `result` says why.
    Failed,
}

impl CommentActionStatus {
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Done => "done",
            Self::Failed => "failed",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "pending" => Self::Pending,
            "done" => Self::Done,
            "failed" => Self::Failed,
            _ => return None,
        })
    }
}

/// One action on one comment.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CommentAction {
    /// The comment's message.
    pub message_id: MessageId,
    /// `hide`, `like`, `reply`, `private_reply`, `tag:<name>`, `assign`, ...
    pub action: String,
    pub workspace_id: WorkspaceId,
    pub inbox_id: InboxId,
    pub conversation_id: ConversationId,
    pub post_id: String,
    /// Meta's comment id.
    pub comment_id: String,
    /// What to do (the text, the reply's message id chosen ahead) and why (rule, conditions).
    pub payload: serde_json::Value,
    pub status: CommentActionStatus,
    pub attempts: u32,
    pub due_at: Timestamp,
    /// Why it failed, or the last retry's reason.
    pub result: Option<String>,
    pub created_at: Timestamp,
    pub done_at: Option<Timestamp>,
}

/// A post with what came and what rules did.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CommentPost {
    pub inbox_id: InboxId,
    pub post_id: String,
    pub post_link: Option<String>,
    pub comments: i64,
    pub hidden: i64,
    pub replied: i64,
    pub private_replied: i64,
    pub liked: i64,
    pub first_at: Timestamp,
    pub last_at: Timestamp,
}

/// An action ending, with the line for the conversation's history.
#[derive(Debug, Clone, PartialEq)]
pub struct Finish {
    pub message: MessageId,
    pub action: String,
    pub status: CommentActionStatus,
    pub result: Option<String>,
    /// The action log's detail (kind `comment_rule`); `None`: no line.
    pub history: Option<serde_json::Value>,
}

/// A comment seen by the rules.
#[derive(Debug, Clone, PartialEq)]
pub struct SeenComment {
    pub message_id: MessageId,
    pub workspace_id: WorkspaceId,
    pub inbox_id: InboxId,
    pub post_id: String,
    pub post_link: Option<String>,
    /// Who commented (their id on the channel).
    pub person: String,
    pub at: Timestamp,
}

#[async_trait]
pub trait CommentStore {
    /// The inbox's rules: the Page's and every post override.
    async fn comment_rules(&self, inbox: InboxId) -> Result<Vec<StoredCommentRules>>;
    /// Every inbox's rules (what the in-memory matcher compiles).
    async fn all_comment_rules(&self) -> Result<Vec<StoredCommentRules>>;
    /// Saves the Page's (`post: None`) or a post's rules. `expected`: the version the editor read
    /// (`VersionConflict` if another save came first); `None`: whatever is there is replaced.
    async fn save_comment_rules(
        &self,
        ws: WorkspaceId,
        inbox: InboxId,
        post: Option<&str>,
        rules: &CommentRuleSet,
        expected: Option<u32>,
        now: Timestamp,
    ) -> Result<StoredCommentRules>;
    async fn delete_comment_rules(&self, inbox: InboxId, post: Option<&str>) -> Result<bool>;
    /// Whether no earlier comment (by time, then id) of this person on this post was decided.
    async fn first_comment_on_post(&self, c: &SeenComment) -> Result<bool>;
    /// Records the decision on a comment in one transaction: the comment as decided (counted on
    /// its post the first time) and its actions, each inserted only if that comment has no such
    /// action yet. Returns, per action, whether it was new.
    async fn record_comment(&self, c: &SeenComment, rows: &[CommentAction]) -> Result<Vec<bool>> {
        let mut out = self.record_comments(&[(c.clone(), rows.to_vec())]).await?;
        Ok(out.pop().unwrap_or_default())
    }
    /// Many decisions in one transaction (a worker's batch: one fsync for all).
    async fn record_comments(
        &self,
        items: &[(SeenComment, Vec<CommentAction>)],
    ) -> Result<Vec<Vec<bool>>>;
    /// Customers' comments stored at or after `since` that no decision was recorded for (a node
    /// stopped between the commit and the decision), oldest first.
    async fn undecided_comments(&self, since: Timestamp, limit: u32) -> Result<Vec<Message>>;
    /// Leases up to `limit` pending actions due at `now` to `node` until `lease_until`.
    async fn claim_due_comment_actions(
        &self,
        now: Timestamp,
        lease_until: Timestamp,
        node: &str,
        limit: u32,
    ) -> Result<Vec<CommentAction>>;
    /// When the earliest pending action is due (`None`: nothing is pending).
    async fn next_comment_action_due(&self) -> Result<Option<Timestamp>>;
    /// Puts pending actions back until `due_at` without counting an attempt (an hourly budget
    /// spent: they have not been tried).
    async fn defer_comment_actions(
        &self,
        items: &[(MessageId, String)],
        due_at: Timestamp,
        reason: &str,
    ) -> Result<()>;
    /// The private replies of an inbox done at or after `since`: how many, and the oldest's time.
    async fn private_replies_since(
        &self,
        inbox: InboxId,
        since: Timestamp,
    ) -> Result<(u64, Option<Timestamp>)>;
    /// Puts a pending action back for later (a 429, a transient failure), counting the attempt.
    async fn retry_comment_action(
        &self,
        message: MessageId,
        action: &str,
        due_at: Timestamp,
        reason: &str,
    ) -> Result<bool>;
    /// Ends a pending action `done` or `failed` — exactly one caller wins. Done, it counts on
    /// the post and is written on the comment's card (`meta.comment.auto`), in one transaction.
    async fn finish_comment_action(
        &self,
        message: MessageId,
        action: &str,
        status: CommentActionStatus,
        result: Option<&str>,
        now: Timestamp,
    ) -> Result<bool> {
        let f = Finish {
            message,
            action: action.to_owned(),
            status,
            result: result.map(str::to_owned),
            history: None,
        };
        Ok(self
            .finish_comment_actions(&[f], now)
            .await?
            .pop()
            .unwrap_or(false))
    }
    /// Many finishes in one transaction; each also writes its history line (`history`: the
    /// action log's detail) when it wins.
    async fn finish_comment_actions(&self, items: &[Finish], now: Timestamp) -> Result<Vec<bool>>;
    /// How many `action` rows were planned on a post (the public replies' rotation resumes there).
    async fn comment_actions_planned(
        &self,
        inbox: InboxId,
        post: &str,
        action: &str,
    ) -> Result<u64>;
    /// The actions on a comment, oldest first.
    async fn comment_actions_of(&self, message: MessageId) -> Result<Vec<CommentAction>>;
    /// The inbox's most recently commented posts.
    async fn comment_posts(&self, inbox: InboxId, limit: u32) -> Result<Vec<CommentPost>>;
    /// A flow to start when the customer answers the private reply in this conversation.
    async fn set_answer_flow(
        &self,
        conv: ConversationId,
        flow: FlowId,
        now: Timestamp,
    ) -> Result<()>;
    /// Takes (and removes) the flow waiting for the customer's answer; one caller gets it.
    async fn take_answer_flow(&self, conv: ConversationId) -> Result<Option<FlowId>>;
}

fn post_key(post: Option<&str>) -> &str {
    post.unwrap_or("")
}

fn rules_row(r: &impl RowRead) -> Result<StoredCommentRules> {
    let post: String = r.try_get("post_id")?;
    Ok(StoredCommentRules {
        workspace_id: WorkspaceId(uuid_of(r, "workspace_id")?),
        inbox_id: InboxId(uuid_of(r, "inbox_id")?),
        post_id: (!post.is_empty()).then_some(post),
        rules: json_of(r, "rules")?,
        version: u32::try_from(r.try_get::<i64, _>("version")?).map_err(|_| corrupt("version"))?,
        updated_at: ts(r, "updated_at")?,
    })
}

fn action_row(r: &impl RowRead) -> Result<CommentAction> {
    let status: String = r.try_get("status")?;
    Ok(CommentAction {
        message_id: MessageId(uuid_of(r, "message_id")?),
        action: r.try_get("action")?,
        workspace_id: WorkspaceId(uuid_of(r, "workspace_id")?),
        inbox_id: InboxId(uuid_of(r, "inbox_id")?),
        conversation_id: ConversationId(uuid_of(r, "conversation_id")?),
        post_id: r.try_get("post_id")?,
        comment_id: r.try_get("comment_id")?,
        payload: json_of(r, "payload")?,
        status: CommentActionStatus::parse(&status).ok_or_else(|| corrupt("status"))?,
        attempts: u32::try_from(r.try_get::<i64, _>("attempts")?).unwrap_or(u32::MAX),
        due_at: ts(r, "due_at")?,
        result: r.try_get("result")?,
        created_at: ts(r, "created_at")?,
        done_at: opt_ts(r, "done_at")?,
    })
}

fn post_row(r: &impl RowRead) -> Result<CommentPost> {
    Ok(CommentPost {
        inbox_id: InboxId(uuid_of(r, "inbox_id")?),
        post_id: r.try_get("post_id")?,
        post_link: r.try_get("post_link")?,
        comments: r.try_get("comments")?,
        hidden: r.try_get("hidden")?,
        replied: r.try_get("replied")?,
        private_replied: r.try_get("private_replied")?,
        liked: r.try_get("liked")?,
        first_at: ts(r, "first_at")?,
        last_at: ts(r, "last_at")?,
    })
}

/// The post counter a done action adds to.
fn counter_of(action: &str) -> Option<&'static str> {
    Some(match action {
        "hide" => "hidden",
        "reply" => "replied",
        "private_reply" => "private_replied",
        "like" => "liked",
        _ => return None,
    })
}

/// Writes what rules did on the comment's card: `meta.comment.auto.<action>` (and `hidden` for
/// a hide, as Meta's own webhook would), with the `message.updated` event.
async fn mark_card<C: Conn>(
    conn: &mut C,
    a: &CommentAction,
    status: CommentActionStatus,
    result: Option<&str>,
    now: Timestamp,
    events: &mut Vec<Event>,
) -> Result<()> {
    let Some(m) = crate::meta::message_by_id(conn, a.message_id).await? else {
        return Ok(());
    };
    let mut meta = q("SELECT * FROM message_meta WHERE message_id = $1")
        .bind(a.message_id.to_string())
        .opt(conn, meta_row)
        .await?
        .unwrap_or_default();
    if !meta.meta.is_object() {
        meta.meta = serde_json::json!({});
    }
    let comment = &mut meta.meta["comment"];
    if !comment.is_object() {
        *comment = serde_json::json!({});
    }
    if !comment["auto"].is_object() {
        comment["auto"] = serde_json::json!({});
    }
    comment["auto"][a.action.as_str()] = serde_json::json!({
        "status": status.as_str(),
        "rule": a.payload["rule"],
        "because": a.payload["because"],
        "result": result,
        "at": now,
    });
    if a.action == "hide" && status == CommentActionStatus::Done {
        comment["hidden"] = serde_json::Value::Bool(true);
    }
    if a.action == "like" && status == CommentActionStatus::Done {
        comment["liked"] = serde_json::Value::Bool(true);
    }
    crate::meta::save_meta(conn, a.message_id, &meta, now).await?;
    crate::meta::flush(
        a.workspace_id,
        vec![updated_event(&m, Some(&meta))],
        now,
        events,
    );
    Ok(())
}

/// One decision inside the caller's transaction.
async fn record_in<C: Conn>(
    tx: &mut C,
    c: &SeenComment,
    rows: &[CommentAction],
) -> Result<Vec<bool>> {
    let new = q("INSERT INTO comment_seen (message_id, inbox_id, post_id, person, at) VALUES ($1, $2, $3, $4, $5) ON CONFLICT (message_id) DO NOTHING")
            .bind(c.message_id.to_string())
            .bind(c.inbox_id.to_string())
            .bind(&c.post_id)
            .bind(&c.person)
            .bind(c.at.millis())
            .execute(&mut *tx)
            .await?
            .rows_affected()
            > 0;
    if new {
        q("INSERT INTO comment_posts (inbox_id, post_id, workspace_id, post_link, comments, hidden, replied, private_replied, liked, first_at, last_at) \
               VALUES ($1, $2, $3, $4, 1, 0, 0, 0, 0, $5, $5) \
               ON CONFLICT (inbox_id, post_id) DO UPDATE SET comments = comment_posts.comments + 1, \
               last_at = GREATEST(comment_posts.last_at, excluded.last_at), \
               post_link = COALESCE(comment_posts.post_link, excluded.post_link)")
                .bind(c.inbox_id.to_string())
                .bind(&c.post_id)
                .bind(c.workspace_id.to_string())
                .bind(c.post_link.clone())
                .bind(c.at.millis())
                .execute(&mut *tx)
                .await?;
    }
    let mut out = Vec::with_capacity(rows.len());
    for a in rows {
        let n = q("INSERT INTO comment_actions (message_id, action, workspace_id, inbox_id, conversation_id, post_id, comment_id, \
                       payload, status, attempts, due_at, result, created_at, done_at) \
                       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14) \
                       ON CONFLICT (message_id, action) DO NOTHING")
                .bind(a.message_id.to_string())
                .bind(&a.action)
                .bind(a.workspace_id.to_string())
                .bind(a.inbox_id.to_string())
                .bind(a.conversation_id.to_string())
                .bind(&a.post_id)
                .bind(&a.comment_id)
                .bind(json_text(&a.payload))
                .bind(a.status.as_str())
                .bind(i64::from(a.attempts))
                .bind(a.due_at.millis())
                .bind(a.result.clone())
                .bind(a.created_at.millis())
                .bind(a.done_at.map(Timestamp::millis))
                .execute(&mut *tx)
                .await?
                .rows_affected();
        out.push(n > 0);
    }
    Ok(out)
}

#[async_trait]
impl<D: Db> CommentStore for D {
    #[instrument(skip_all)]
    async fn comment_rules(&self, inbox: InboxId) -> Result<Vec<StoredCommentRules>> {
        q("SELECT * FROM comment_rules WHERE inbox_id = $1 ORDER BY post_id")
            .bind(inbox.to_string())
            .read_all(self, rules_row)
            .await
    }

    #[instrument(skip_all)]
    async fn all_comment_rules(&self) -> Result<Vec<StoredCommentRules>> {
        q("SELECT * FROM comment_rules ORDER BY inbox_id, post_id")
            .read_all(self, rules_row)
            .await
    }

    #[instrument(skip_all)]
    async fn save_comment_rules(
        &self,
        ws: WorkspaceId,
        inbox: InboxId,
        post: Option<&str>,
        rules: &CommentRuleSet,
        expected: Option<u32>,
        now: Timestamp,
    ) -> Result<StoredCommentRules> {
        let mut tx = self.begin().await?;
        let current =
            q("SELECT * FROM comment_rules WHERE inbox_id = $1 AND post_id = $2 FOR UPDATE")
                .bind(inbox.to_string())
                .bind(post_key(post))
                .opt(&mut *tx, rules_row)
                .await?;
        let version = match (&current, expected) {
            (Some(c), Some(e)) if c.version != e => {
                return Err(crate::StoreError::VersionConflict);
            }
            (None, Some(e)) if e != 0 => return Err(crate::StoreError::VersionConflict),
            (Some(c), _) => c.version + 1,
            (None, _) => 1,
        };
        if current.is_some() {
            q("UPDATE comment_rules SET rules = $1, version = $2, updated_at = $3 WHERE inbox_id = $4 AND post_id = $5")
                .bind(json_text(rules))
                .bind(i64::from(version))
                .bind(now.millis())
                .bind(inbox.to_string())
                .bind(post_key(post))
                .execute(&mut *tx)
                .await?;
        } else {
            q("INSERT INTO comment_rules (inbox_id, post_id, workspace_id, rules, version, updated_at) VALUES ($1, $2, $3, $4, $5, $6)")
                .bind(inbox.to_string())
                .bind(post_key(post))
                .bind(ws.to_string())
                .bind(json_text(rules))
                .bind(i64::from(version))
                .bind(now.millis())
                .execute(&mut *tx)
                .await
                .map_err(crate::sql::conflict_on_unique("comment rules"))?;
        }
        commit(self, tx, &mut [])
            .await
            .map_err(crate::sql::conflict_on_deadlock)?;
        Ok(StoredCommentRules {
            workspace_id: ws,
            inbox_id: inbox,
            post_id: post.map(str::to_owned),
            rules: rules.clone(),
            version,
            updated_at: now,
        })
    }

    #[instrument(skip_all)]
    async fn delete_comment_rules(&self, inbox: InboxId, post: Option<&str>) -> Result<bool> {
        Ok(
            q("DELETE FROM comment_rules WHERE inbox_id = $1 AND post_id = $2")
                .bind(inbox.to_string())
                .bind(post_key(post))
                .write(self)
                .await?
                .rows_affected()
                > 0,
        )
    }

    #[instrument(skip_all)]
    async fn first_comment_on_post(&self, c: &SeenComment) -> Result<bool> {
        let earlier: i64 = q("SELECT COUNT(*) AS n FROM comment_seen WHERE inbox_id = $1 AND post_id = $2 AND person = $3 \
                               AND (at < $4 OR (at = $4 AND message_id < $5))")
            .bind(c.inbox_id.to_string())
            .bind(&c.post_id)
            .bind(&c.person)
            .bind(c.at.millis())
            .bind(c.message_id.to_string())
            .read_opt(self, |r| Ok(r.try_get::<i64, _>("n")?))
            .await?
            .unwrap_or(0);
        Ok(earlier == 0)
    }

    #[instrument(skip_all)]
    async fn record_comments(
        &self,
        items: &[(SeenComment, Vec<CommentAction>)],
    ) -> Result<Vec<Vec<bool>>> {
        if items.is_empty() {
            return Ok(Vec::new());
        }
        let mut tx = self.begin().await?;
        let mut all = Vec::with_capacity(items.len());
        for (c, rows) in items {
            all.push(record_in(&mut *tx, c, rows).await?);
        }
        commit(self, tx, &mut [])
            .await
            .map_err(crate::sql::conflict_on_deadlock)?;
        Ok(all)
    }

    #[instrument(skip_all)]
    async fn undecided_comments(&self, since: Timestamp, limit: u32) -> Result<Vec<Message>> {
        q("SELECT m.* FROM messages m WHERE m.kind = 'comment' AND m.direction = 'inbound' AND m.created_at >= $1 \
           AND NOT EXISTS (SELECT 1 FROM comment_seen s WHERE s.message_id = m.id) \
           ORDER BY m.created_at, m.id LIMIT $2")
            .bind(since.millis())
            .bind(i64::from(limit.clamp(1, 1000)))
            .read_all(self, crate::rows::message_row)
            .await
    }

    #[instrument(skip_all)]
    async fn claim_due_comment_actions(
        &self,
        now: Timestamp,
        lease_until: Timestamp,
        node: &str,
        limit: u32,
    ) -> Result<Vec<CommentAction>> {
        let mut due = q(
            "UPDATE comment_actions SET locked_by = $1, locked_until = $2 WHERE (message_id, action) IN ( \
               SELECT message_id, action FROM comment_actions WHERE status = 'pending' AND due_at <= $3 \
                 AND (locked_until IS NULL OR locked_until <= $3) \
               ORDER BY due_at, message_id LIMIT $4 FOR UPDATE SKIP LOCKED) \
             AND status = 'pending' AND due_at <= $3 AND (locked_until IS NULL OR locked_until <= $3) \
             RETURNING *",
        )
        .bind(node)
        .bind(lease_until.millis())
        .bind(now.millis())
        .bind(i64::from(limit))
        .write_all(self, action_row)
        .await?;
        due.sort_by(|a, b| {
            (a.due_at, a.message_id, &a.action).cmp(&(b.due_at, b.message_id, &b.action))
        });
        Ok(due)
    }

    #[instrument(skip_all)]
    async fn next_comment_action_due(&self) -> Result<Option<Timestamp>> {
        q("SELECT due_at FROM comment_actions WHERE status = 'pending' ORDER BY due_at, message_id LIMIT 1")
            .read_opt(self, |r| ts(r, "due_at"))
            .await
    }

    #[instrument(skip_all)]
    async fn defer_comment_actions(
        &self,
        items: &[(MessageId, String)],
        due_at: Timestamp,
        reason: &str,
    ) -> Result<()> {
        for (message, action) in items {
            q("UPDATE comment_actions SET due_at = $1, result = $2, locked_by = NULL, locked_until = NULL \
               WHERE message_id = $3 AND action = $4 AND status = 'pending'")
            .bind(due_at.millis())
            .bind(reason)
            .bind(message.to_string())
            .bind(action.as_str())
            .write(self)
            .await?;
        }
        Ok(())
    }

    #[instrument(skip_all)]
    async fn private_replies_since(
        &self,
        inbox: InboxId,
        since: Timestamp,
    ) -> Result<(u64, Option<Timestamp>)> {
        q(
            "SELECT COUNT(*) AS n, MIN(done_at) AS oldest FROM comment_actions \
           WHERE inbox_id = $1 AND action = 'private_reply' AND status = 'done' AND done_at >= $2",
        )
        .bind(inbox.to_string())
        .bind(since.millis())
        .read_opt(self, |r| {
            let n: i64 = r.try_get("n")?;
            let oldest: Option<i64> = r.try_get("oldest")?;
            Ok((
                u64::try_from(n).unwrap_or(0),
                oldest.map(Timestamp::from_millis),
            ))
        })
        .await
        .map(Option::unwrap_or_default)
    }

    #[instrument(skip_all)]
    async fn retry_comment_action(
        &self,
        message: MessageId,
        action: &str,
        due_at: Timestamp,
        reason: &str,
    ) -> Result<bool> {
        Ok(q("UPDATE comment_actions SET due_at = $1, attempts = attempts + 1, result = $2, \
              locked_by = NULL, locked_until = NULL WHERE message_id = $3 AND action = $4 AND status = 'pending'")
            .bind(due_at.millis())
            .bind(reason)
            .bind(message.to_string())
            .bind(action)
            .write(self)
            .await?
            .rows_affected()
            > 0)
    }

    #[instrument(skip_all)]
    async fn finish_comment_actions(&self, items: &[Finish], now: Timestamp) -> Result<Vec<bool>> {
        if items.is_empty() {
            return Ok(Vec::new());
        }
        let mut tx = self.begin().await?;
        let mut events = Vec::new();
        let mut history = Vec::new();
        let mut out = Vec::with_capacity(items.len());
        for f in items {
            let row = q("UPDATE comment_actions SET status = $1, result = $2, done_at = $3, locked_by = NULL, locked_until = NULL \
                         WHERE message_id = $4 AND action = $5 AND status = 'pending' RETURNING *")
                .bind(f.status.as_str())
                .bind(f.result.clone())
                .bind(now.millis())
                .bind(f.message.to_string())
                .bind(&f.action)
                .opt(&mut *tx, action_row)
                .await?;
            let Some(a) = row else {
                out.push(false);
                continue;
            };
            if f.status == CommentActionStatus::Done
                && let Some(col) = counter_of(&f.action)
            {
                q(match col {
                    "hidden" => "UPDATE comment_posts SET hidden = hidden + 1 WHERE inbox_id = $1 AND post_id = $2",
                    "replied" => "UPDATE comment_posts SET replied = replied + 1 WHERE inbox_id = $1 AND post_id = $2",
                    "private_replied" => "UPDATE comment_posts SET private_replied = private_replied + 1 WHERE inbox_id = $1 AND post_id = $2",
                    _ => "UPDATE comment_posts SET liked = liked + 1 WHERE inbox_id = $1 AND post_id = $2",
                })
                .bind(a.inbox_id.to_string())
                .bind(&a.post_id)
                .execute(&mut *tx)
                .await?;
            }
            mark_card(
                &mut *tx,
                &a,
                f.status,
                f.result.as_deref(),
                now,
                &mut events,
            )
            .await?;
            if let Some(detail) = &f.history {
                history.push(switchboard_core::ingest::batch::ActionRow {
                    id: uuid::Uuid::now_v7(),
                    conversation_id: a.conversation_id,
                    kind: switchboard_core::conversation::ActionKind::CommentRule.as_str(),
                    actor: None,
                    detail: json_text(detail),
                    at: now,
                });
            }
            out.push(true);
        }
        if !history.is_empty() {
            crate::writes::write_actions(&mut *tx, &history).await?;
        }
        commit(self, tx, &mut events)
            .await
            .map_err(crate::sql::conflict_on_deadlock)?;
        Ok(out)
    }

    #[instrument(skip_all)]
    async fn comment_actions_planned(
        &self,
        inbox: InboxId,
        post: &str,
        action: &str,
    ) -> Result<u64> {
        let n: i64 = q("SELECT COUNT(*) AS n FROM comment_actions WHERE inbox_id = $1 AND post_id = $2 AND action = $3")
            .bind(inbox.to_string())
            .bind(post)
            .bind(action)
            .read_opt(self, |r| Ok(r.try_get::<i64, _>("n")?))
            .await?
            .unwrap_or(0);
        Ok(u64::try_from(n).unwrap_or(0))
    }

    #[instrument(skip_all)]
    async fn comment_actions_of(&self, message: MessageId) -> Result<Vec<CommentAction>> {
        q("SELECT * FROM comment_actions WHERE message_id = $1 ORDER BY created_at, action")
            .bind(message.to_string())
            .read_all(self, action_row)
            .await
    }

    #[instrument(skip_all)]
    async fn comment_posts(&self, inbox: InboxId, limit: u32) -> Result<Vec<CommentPost>> {
        q("SELECT * FROM comment_posts WHERE inbox_id = $1 ORDER BY last_at DESC, post_id LIMIT $2")
            .bind(inbox.to_string())
            .bind(i64::from(limit.clamp(1, 500)))
            .read_all(self, post_row)
            .await
    }

    #[instrument(skip_all)]
    async fn set_answer_flow(
        &self,
        conv: ConversationId,
        flow: FlowId,
        now: Timestamp,
    ) -> Result<()> {
        q("INSERT INTO comment_answer_flows (conversation_id, flow_id, created_at) VALUES ($1, $2, $3) \
           ON CONFLICT (conversation_id) DO UPDATE SET flow_id = excluded.flow_id, created_at = excluded.created_at")
            .bind(conv.to_string())
            .bind(flow.to_string())
            .bind(now.millis())
            .write(self)
            .await?;
        Ok(())
    }

    #[instrument(skip_all)]
    async fn take_answer_flow(&self, conv: ConversationId) -> Result<Option<FlowId>> {
        Ok(
            q("DELETE FROM comment_answer_flows WHERE conversation_id = $1 RETURNING flow_id")
                .bind(conv.to_string())
                .write_all(self, |r| uuid_of(r, "flow_id").map(FlowId))
                .await?
                .into_iter()
                .next(),
        )
    }
}
