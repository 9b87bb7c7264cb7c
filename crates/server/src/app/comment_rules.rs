//! Comment rules' commands: a Page's (Instagram account's) rules and its posts' overrides
//! (supervisors and admins change them; every member of the inbox reads them), the posts view
//! (recent posts, their counters and overrides), and what rules did to one comment.

use crate::app::comments::customer_comment;
use crate::app::inbox::visible_inbox;
use crate::auth::CurrentAgent;
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;
use axum::http::StatusCode;
use serde_json::{Value, json};
use switchboard_core::flow::comments::CommentRuleSet;
use switchboard_core::*;
use switchboard_store::{StoreError, StoredCommentRules};

/// The most a rule set's JSON may weigh.
const MAX_RULES_BYTES: usize = 64 * 1024;
/// The longest post id accepted in a path (Meta's are `<page>_<post>`, well under this).
const MAX_POST_ID: usize = 128;

/// A Meta inbox the caller may see (rules exist only for Pages and Instagram accounts).
async fn meta_inbox(st: &AppState, me: &CurrentAgent, id: InboxId) -> ApiResult<Inbox> {
    let inbox = visible_inbox(st, me, id).await?;
    if !crate::meta::is_meta(inbox.channel) {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "not_supported",
            "comment rules are for Facebook Pages and Instagram accounts",
        ));
    }
    Ok(inbox)
}

fn require_supervisor(me: &CurrentAgent) -> ApiResult<()> {
    super::require_supervisor(me, "comment rules")
}

fn post_id(raw: &str) -> ApiResult<&str> {
    let ok = !raw.is_empty()
        && raw.len() <= MAX_POST_ID
        && raw
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if ok {
        Ok(raw)
    } else {
        Err(ApiError::invalid(
            "post_id: letters, digits, '_' and '-', at most 128",
        ))
    }
}

/// Reads and validates a rule set: every problem with its path.
pub fn parse_rules(v: &Value) -> ApiResult<CommentRuleSet> {
    if serde_json::to_string(v).map_or(0, |s| s.len()) > MAX_RULES_BYTES {
        return Err(ApiError::invalid("rules: at most 64 KiB"));
    }
    if validate::json_has_forbidden_control(v) {
        return Err(ApiError::invalid(
            "rules: control characters are not allowed",
        ));
    }
    let set: CommentRuleSet = serde_json::from_value(v.clone()).map_err(|e| {
        ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_rules",
            format!("rules: {e}"),
        )
    })?;
    set.validate().map_err(|errors| {
        let first = errors
            .first()
            .map(|e| format!("{}: {}", e.path, e.message))
            .unwrap_or_default();
        ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_rules", first)
            .with_extra(json!({ "errors": errors }))
    })?;
    Ok(set)
}

fn rules_json(s: &StoredCommentRules) -> Value {
    json!({
        "post_id": s.post_id,
        "rules": s.rules,
        "version": s.version,
        "updated_at": s.updated_at,
    })
}

/// The inbox's rules: the Page's and the posts' overrides.
pub async fn get(st: &AppState, me: &CurrentAgent, inbox: InboxId) -> ApiResult<Value> {
    let inbox = meta_inbox(st, me, inbox).await?;
    let all = st.store.comment_rules(inbox.id).await?;
    let page = all.iter().find(|r| r.post_id.is_none()).map(rules_json);
    let posts: Vec<Value> = all
        .iter()
        .filter(|r| r.post_id.is_some())
        .map(rules_json)
        .collect();
    Ok(json!({
        "inbox_id": inbox.id,
        "channel": inbox.channel,
        "page": page,
        "posts": posts,
    }))
}

/// Saves the Page's rules (`post: None`) or a post's override.
pub async fn save(
    st: &AppState,
    me: &CurrentAgent,
    inbox: InboxId,
    post: Option<&str>,
    rules: &Value,
    version: Option<u32>,
) -> ApiResult<Value> {
    let inbox = meta_inbox(st, me, inbox).await?;
    require_supervisor(me)?;
    let post = post.map(post_id).transpose()?;
    let set = parse_rules(rules)?;
    for r in set.rules.iter().flat_map(|r| &r.steps).chain(&set.default) {
        if let switchboard_core::flow::Action::Assign { agent, .. } = r
            && !st.store.inbox_members(inbox.id).await?.contains(agent)
        {
            return Err(ApiError::invalid(
                "assign: the agent must be a member of this inbox",
            ));
        }
    }
    let saved = st
        .store
        .save_comment_rules(
            inbox.workspace_id,
            inbox.id,
            post,
            &set,
            version,
            st.clock.now(),
        )
        .await
        .map_err(|e| match e {
            StoreError::VersionConflict => ApiError::new(
                StatusCode::CONFLICT,
                "rules_changed",
                "someone saved these rules meanwhile: load them again",
            ),
            e => e.into(),
        })?;
    st.comment_rules.forget();
    Ok(rules_json(&saved))
}

/// Removes a post's override (the Page's rules apply again).
pub async fn delete(
    st: &AppState,
    me: &CurrentAgent,
    inbox: InboxId,
    post: &str,
) -> ApiResult<Value> {
    let inbox = meta_inbox(st, me, inbox).await?;
    require_supervisor(me)?;
    let post = post_id(post)?;
    if !st.store.delete_comment_rules(inbox.id, Some(post)).await? {
        return Err(ApiError::not_found("post rules"));
    }
    st.comment_rules.forget();
    Ok(json!({ "ok": true }))
}

/// Recent posts with comments: counters and whether a post has its own rules.
pub async fn posts(st: &AppState, me: &CurrentAgent, inbox: InboxId) -> ApiResult<Value> {
    let inbox = meta_inbox(st, me, inbox).await?;
    let overrides: std::collections::HashMap<String, StoredCommentRules> = st
        .store
        .comment_rules(inbox.id)
        .await?
        .into_iter()
        .filter_map(|r| r.post_id.clone().map(|p| (p, r)))
        .collect();
    let posts: Vec<Value> = st
        .store
        .comment_posts(inbox.id, 100)
        .await?
        .into_iter()
        .map(|p| {
            let o = overrides.get(&p.post_id);
            json!({
                "post_id": p.post_id,
                "post_link": p.post_link,
                "comments": p.comments,
                "hidden": p.hidden,
                "replied": p.replied,
                "private_replied": p.private_replied,
                "liked": p.liked,
                "first_at": p.first_at,
                "last_at": p.last_at,
                "override": o.map(|o| json!({"mode": o.rules.mode, "rules": o.rules.rules.len(), "version": o.version})),
            })
        })
        .collect();
    Ok(json!({ "posts": posts }))
}

/// What rules did (or will do) to one comment.
pub async fn of_comment(st: &AppState, me: &CurrentAgent, id: MessageId) -> ApiResult<Value> {
    let c = customer_comment(st, me, id).await?;
    let actions: Vec<Value> = st
        .store
        .comment_actions_of(c.message.id)
        .await?
        .into_iter()
        .map(|a| {
            json!({
                "action": a.action,
                "status": a.status,
                "rule": a.payload["rule"],
                "because": a.payload["because"],
                "text": a.payload["text"],
                "attempts": a.attempts,
                "result": a.result,
                "created_at": a.created_at,
                "done_at": a.done_at,
            })
        })
        .collect();
    Ok(json!({ "actions": actions }))
}
