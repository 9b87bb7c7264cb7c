//! The conversation commands an agent gives: claim, assign, transfer, invite, leave, resolve,
//! reopen, tag and untag. Each asks `core::conversation` on the current state and applies the
//! answer with compare-and-set (`transact`); each returns the conversation as the list shows it.

use crate::app::conversation::{Plan, eligible_agent, name_holder, outbound_message, transact};
use crate::app::visible;
use crate::auth::CurrentAgent;
use crate::automation::ConversationEvent;
use crate::error::ApiResult;
use crate::state::AppState;
use switchboard_core::conversation::{self as conv, Transition};
use switchboard_core::validate::{MessageText, TagName};
use switchboard_core::*;
use switchboard_store::ConversationSummary;

/// Applies a transition decided on the current state (deciding again after a concurrent change);
/// a `conversation_claimed` refusal names the holder.
async fn apply(
    st: &AppState,
    me: &CurrentAgent,
    id: ConversationId,
    decide: impl Fn(&Conversation) -> ApiResult<Transition>,
) -> ApiResult<ConversationSummary> {
    let plan = |c: &Conversation| {
        Ok(Plan {
            transition: Some(decide(c)?),
            message: None,
        })
    };
    match transact(st, me, id, plan).await {
        Ok((summary, _)) => Ok(summary),
        Err(e) => Err(name_holder(st, e).await),
    }
}

/// Takes a conversation from the pool.
pub async fn claim(
    st: &AppState,
    me: &CurrentAgent,
    id: ConversationId,
) -> ApiResult<ConversationSummary> {
    let actor = me.actor();
    apply(st, me, id, |c| Ok(conv::claim(c, actor)?)).await
}

/// Assigns to an agent of the inbox (supervisors and admins).
pub async fn assign(
    st: &AppState,
    me: &CurrentAgent,
    id: ConversationId,
    agent: AgentId,
) -> ApiResult<ConversationSummary> {
    let c = visible(st, me, id).await?;
    eligible_agent(st, c.inbox_id, agent).await?;
    let actor = me.actor();
    apply(st, me, id, |c| Ok(conv::assign(c, actor, agent)?)).await
}

/// Hands over to another agent of the inbox, with an optional message that goes into the thread
/// as an agent-to-agent message.
pub async fn transfer(
    st: &AppState,
    me: &CurrentAgent,
    id: ConversationId,
    agent: AgentId,
    message: Option<&str>,
) -> ApiResult<ConversationSummary> {
    let c = visible(st, me, id).await?;
    eligible_agent(st, c.inbox_id, agent).await?;
    let note = message
        .map(str::trim)
        .filter(|m| !m.is_empty())
        .map(|m| MessageText::parse(m).map(MessageText::into_inner))
        .transpose()?;
    let actor = me.actor();
    let now = st.clock.now();
    let decide = |c: &Conversation| {
        let t = conv::transfer(c, actor, agent, note.as_deref().unwrap_or(""))?;
        let message = note
            .clone()
            .map(|text| outbound_message(c, me, MessageKind::AgentToAgent, text, now));
        Ok(Plan {
            transition: Some(t),
            message,
        })
    };
    match transact(st, me, id, decide).await {
        Ok((summary, _)) => Ok(summary),
        Err(e) => Err(name_holder(st, e).await),
    }
}

/// Invites another agent of the inbox into the conversation.
pub async fn add_participant(
    st: &AppState,
    me: &CurrentAgent,
    id: ConversationId,
    agent: AgentId,
) -> ApiResult<ConversationSummary> {
    let c = visible(st, me, id).await?;
    eligible_agent(st, c.inbox_id, agent).await?;
    let actor = me.actor();
    apply(st, me, id, |c| Ok(conv::add_participant(c, actor, agent)?)).await
}

/// Leaves a conversation the agent was invited to.
pub async fn leave(
    st: &AppState,
    me: &CurrentAgent,
    id: ConversationId,
) -> ApiResult<ConversationSummary> {
    let actor = me.actor();
    apply(st, me, id, |c| Ok(conv::leave(c, actor)?)).await
}

/// Ends the consultation. The holder has room again: the backlog of their inboxes moves to them
/// (capacity permitting).
pub async fn resolve(
    st: &AppState,
    me: &CurrentAgent,
    id: ConversationId,
) -> ApiResult<ConversationSummary> {
    let actor = me.actor();
    let now = st.clock.now();
    let holder = visible(st, me, id).await?.assignee_id;
    let resolved = apply(st, me, id, |c| Ok(conv::resolve(c, actor, now)?)).await?;
    if let Some(agent) = holder {
        st.routing.agent_freed(agent).await;
    }
    st.automation
        .on_event(id, ConversationEvent::Resolved)
        .await;
    Ok(resolved)
}

/// Reopens a resolved conversation.
pub async fn reopen(
    st: &AppState,
    me: &CurrentAgent,
    id: ConversationId,
) -> ApiResult<ConversationSummary> {
    let actor = me.actor();
    let now = st.clock.now();
    apply(st, me, id, |c| Ok(conv::reopen(c, actor, now)?)).await
}

/// Adds a tag (created if new).
pub async fn tag(
    st: &AppState,
    me: &CurrentAgent,
    id: ConversationId,
    name: &str,
) -> ApiResult<ConversationSummary> {
    let name = TagName::parse(name)?.into_inner();
    let actor = me.actor();
    let had = visible(st, me, id).await?.tags.contains(&name);
    let tagged = apply(st, me, id, |c| Ok(conv::tag(c, actor, &name))).await?;
    if !had {
        st.automation
            .on_event(id, ConversationEvent::TagAdded(&name))
            .await;
    }
    Ok(tagged)
}

/// Removes a tag.
pub async fn untag(
    st: &AppState,
    me: &CurrentAgent,
    id: ConversationId,
    name: &str,
) -> ApiResult<ConversationSummary> {
    let name = TagName::parse(name)?.into_inner();
    let actor = me.actor();
    apply(st, me, id, |c| Ok(conv::untag(c, actor, &name))).await
}
