//! Comment commands on a customer's comment (Pages, Instagram): the public and the private reply
//! go out through the one `send` command (the private one under its own policy rule); like,
//! unlike, hide, unhide and delete are asked of the Graph API and recorded as the webhook would.

use crate::app::send::SendRequest;
use crate::app::visible;
use crate::auth::CurrentAgent;
use crate::error::{ApiError, ApiResult};
use crate::provider_api::Answer;
use crate::state::AppState;
use axum::http::StatusCode;
use switchboard_channels::meta::{self, CommentOp};
use switchboard_core::conversation as conv;
use switchboard_core::outbound::{Author, CommentReply, Content};
use switchboard_core::*;
use switchboard_store::{InboundEvent, message_with_meta};

/// A customer's comment: its message, its conversation (visible to the agent) and its provider id.
pub struct Comment {
    pub message: Message,
    pub conversation: Conversation,
    pub comment_id: String,
}

/// The comment message `id`, or 404 / 422 `not_a_comment`.
pub async fn customer_comment(
    st: &AppState,
    me: &CurrentAgent,
    id: MessageId,
) -> ApiResult<Comment> {
    let m = st
        .store
        .message(id)
        .await?
        .ok_or_else(|| ApiError::not_found("message"))?;
    let c = visible(st, me, m.conversation_id).await?;
    let comment_id = m
        .provider_message_id
        .as_deref()
        .and_then(|p| p.strip_prefix("comment:"))
        .filter(|_| m.kind == MessageKind::Comment && m.direction == Direction::Inbound)
        .map(str::to_owned)
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "not_a_comment",
                "this message is not a customer's comment",
            )
        })?;
    Ok(Comment {
        message: m,
        conversation: c,
        comment_id,
    })
}

/// Answers a comment in public (under it) or in private (one message to the commenter), as
/// `author`: through `send`, so the policy, the queue and the refusal mapping are the one every
/// message uses.
pub async fn reply(
    st: &AppState,
    comment: &Comment,
    author: Author,
    private: bool,
    text: Option<&str>,
) -> ApiResult<serde_json::Value> {
    let text = validate::MessageText::parse(text.unwrap_or(""))?.into_inner();
    let content = Content::CommentReply(CommentReply {
        comment_id: comment.comment_id.clone(),
        message_id: comment.message.id,
        commented_at: comment.message.created_at,
        private,
        text,
    });
    let req = SendRequest::new(comment.conversation.id, author, content);
    Ok(st.outgoing.send(req).await?.json)
}

/// Like, unlike, hide, unhide or delete a comment: by the conversation's holder or a supervisor.
/// Done at Meta first, then recorded as Meta's own webhook would record it.
pub async fn moderate(
    st: &AppState,
    me: &CurrentAgent,
    comment: Comment,
    op: CommentOp,
) -> ApiResult<serde_json::Value> {
    let Comment {
        message: m,
        conversation: c,
        comment_id,
    } = comment;
    if conv::reply(&c, me.actor(), st.clock.now()).is_err() && !me.agent.role.supervises() {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "claim_required",
            "take this conversation (or be a supervisor) to moderate its comments",
        ));
    }
    let inbox = st
        .store
        .inbox(c.inbox_id)
        .await?
        .ok_or_else(|| ApiError::not_found("inbox"))?;
    let Some((method, url, body)) = meta::comment_request(
        crate::meta::object(inbox.channel),
        crate::meta::api_base_url(&inbox),
        &comment_id,
        op,
        None,
    ) else {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "not_supported",
            format!(
                "{} does not support `{}` on comments",
                inbox.channel,
                op_name(op)
            ),
        ));
    };
    if let Answer::Failed(f) = st
        .providers
        .graph(&inbox, method, &url, body.as_ref())
        .await
    {
        return Err(ApiError::new(
            StatusCode::BAD_GATEWAY,
            "provider_error",
            format!("Meta refused: {}", f.reason),
        )
        .with_extra(
            serde_json::json!({"reason": f.reason, "code": f.code, "subcode": f.subcode}),
        ));
    }
    let verb = match op {
        CommentOp::Like => "like",
        CommentOp::Unlike => "unlike",
        CommentOp::Hide => "hide",
        CommentOp::Unhide => "unhide",
        _ => "remove",
    };
    st.channel_ingest
        .submit_all(vec![crate::channel_ingest::stamp(
            inbox.workspace_id,
            inbox.id,
            InboundEvent::CommentChange {
                provider_message_id: format!("comment:{comment_id}"),
                verb: verb.to_owned(),
                text: None,
            },
        )])
        .await
        .map_err(|_| {
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                "done at Meta, but not recorded here; retry",
            )
        })?;
    let meta = st.store.message_meta(&[m.id]).await?;
    let fresh = st.store.message(m.id).await?.unwrap_or(m);
    Ok(message_with_meta(&fresh, meta.get(&fresh.id)))
}

/// The action's name as the API spells it.
const fn op_name(op: CommentOp) -> &'static str {
    match op {
        CommentOp::Reply => "reply",
        CommentOp::Like => "like",
        CommentOp::Unlike => "unlike",
        CommentOp::Hide => "hide",
        CommentOp::Unhide => "unhide",
        CommentOp::Delete => "delete",
    }
}

/// `action` on a comment: `reply`, `private_reply` (with `text`), or a moderation verb. A bot or
/// an integration (`automated`) answers under the stricter rules and shows as a bot.
pub async fn act(
    st: &AppState,
    me: &CurrentAgent,
    id: MessageId,
    action: &str,
    text: Option<&str>,
    automated: bool,
) -> ApiResult<serde_json::Value> {
    let comment = customer_comment(st, me, id).await?;
    let author = Author::Agent {
        actor: me.actor(),
        automated,
    };
    match action {
        "reply" => reply(st, &comment, author, false, text).await,
        "private_reply" => reply(st, &comment, author, true, text).await,
        other => {
            let op = CommentOp::parse(other)
                .filter(|o| *o != CommentOp::Reply)
                .ok_or_else(|| {
                    ApiError::invalid(
                        "action: must be reply, private_reply, like, unlike, hide, unhide or delete",
                    )
                })?;
            moderate(st, me, comment, op).await
        }
    }
}
