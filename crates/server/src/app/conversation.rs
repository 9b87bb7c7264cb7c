//! The conversation commands' common part: decide on the current state, apply with
//! compare-and-set, decide again if someone changed the conversation in between.

use crate::app::send::{PolicyRequest, SendRequest};
use crate::auth::CurrentAgent;
use crate::error::{ApiError, ApiJson, ApiResult};
use crate::state::AppState;
use axum::http::StatusCode;
use switchboard_core::conversation::Transition;
use switchboard_core::event::{self, EventDraft, EventKind};
use switchboard_core::outbound::{Author, Choice, Choices, Content, Interactive};
use switchboard_core::validate::MessageText;
use switchboard_core::*;
use switchboard_store::{Change, StoreError};

/// A conversation the agent may see, or 404 (whether it exists or not).
pub async fn visible(
    st: &AppState,
    me: &CurrentAgent,
    id: ConversationId,
) -> ApiResult<Conversation> {
    st.store
        .conversation(id)
        .await?
        .filter(|c| st.access.can_see(&me.agent, c.inbox_id))
        .ok_or_else(|| ApiError::not_found("conversation"))
}

/// What a command decided: a transition, a message to store, or both.
#[derive(Default)]
pub struct Plan {
    pub transition: Option<Transition>,
    pub message: Option<Message>,
}

/// Runs `decide` on the current state and applies it with compare-and-set, deciding again if
/// someone changed the conversation in between. Returns the conversation as the list shows it.
pub async fn transact(
    st: &AppState,
    me: &CurrentAgent,
    id: ConversationId,
    decide: impl Fn(&Conversation) -> ApiResult<Plan>,
) -> ApiResult<(switchboard_store::ConversationSummary, Option<Message>)> {
    for _ in 0..5 {
        let current = visible(st, me, id).await?;
        let plan = decide(&current)?;
        let transition = plan.transition.filter(|t| t.changed);
        if transition.is_none() && plan.message.is_none() {
            return Ok((summary(st, id).await?, None));
        }
        let mut events: Vec<EventDraft> = Vec::new();
        if let Some(t) = &transition {
            // A reply only moves activity; `message.created` already tells clients that.
            if !t.actions.is_empty() || plan.message.is_none() {
                events.extend(event::for_transition(Some(&current), t));
            }
        }
        if let Some(m) = &plan.message {
            events.push(event::message_created(m));
        }
        let change = Change {
            expected_version: current.version,
            conversation_id: id,
            workspace_id: current.workspace_id,
            actions: transition
                .as_ref()
                .map(|t| t.actions.clone())
                .unwrap_or_default(),
            conversation: transition.map(|t| t.conversation),
            message: plan.message.clone(),
            events,
            now: st.clock.now(),
        };
        match st.store.apply(change).await {
            Ok(_) => return Ok((summary(st, id).await?, plan.message)),
            Err(StoreError::VersionConflict) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(StoreError::VersionConflict.into())
}

pub async fn summary(
    st: &AppState,
    id: ConversationId,
) -> ApiResult<switchboard_store::ConversationSummary> {
    st.store
        .conversation_summary(id)
        .await?
        .ok_or_else(|| ApiError::not_found("conversation"))
}

pub fn to_json<T: serde::Serialize>(v: &T) -> ApiResult<serde_json::Value> {
    serde_json::to_value(v).map_err(|_| ApiError::internal())
}

pub fn outbound_message(
    c: &Conversation,
    me: &CurrentAgent,
    kind: MessageKind,
    text: String,
    now: Timestamp,
) -> Message {
    Message {
        id: MessageId(uuid::Uuid::now_v7()),
        conversation_id: c.id,
        inbox_id: c.inbox_id,
        direction: Direction::Outbound,
        sender_kind: SenderKind::Agent,
        sender_agent_id: Some(me.agent.id),
        kind,
        text,
        provider_message_id: None,
        // Live chat delivers over the visitor's socket as the row commits; private messages stay here.
        delivery_status: DeliveryStatus::Sent,
        failure_reason: None,
        created_at: now,
    }
}

/// An agent that may take part in conversations of `inbox`: exists, active, and a member (or admin).
pub async fn eligible_agent(st: &AppState, inbox: InboxId, id: AgentId) -> ApiResult<Agent> {
    st.store
        .agent(id)
        .await?
        .filter(|a| a.active && st.access.can_see(a, inbox))
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "agent_not_eligible",
                "that agent is not an active member of this inbox",
            )
        })
}

pub fn publish_agent_typing(st: &AppState, agent: &Agent, c: &Conversation) {
    st.bus.publish_ephemeral(
        EventKind::Typing,
        Some(c.inbox_id),
        Some(c.id),
        Some("agent"),
        serde_json::json!({ "actor": "agent", "agent_id": agent.id, "agent_name": agent.name }),
    );
}

/// Runs a command that writes a message; returns the stored message.
pub async fn transact_message(
    st: &AppState,
    me: &CurrentAgent,
    id: ConversationId,
    decide: impl Fn(&Conversation) -> ApiResult<Plan>,
) -> ApiResult<Message> {
    match transact(st, me, id, decide).await {
        Ok((_, Some(m))) => Ok(m),
        Ok((_, None)) => Err(ApiError::internal()),
        Err(e) => Err(name_holder(st, e).await),
    }
}

pub async fn respond(
    st: &AppState,
    me: &CurrentAgent,
    id: ConversationId,
    decide: impl Fn(&Conversation) -> ApiResult<Plan>,
) -> ApiResult<ApiJson<serde_json::Value>> {
    match transact(st, me, id, decide).await {
        Ok((summary, _)) => Ok(ApiJson(to_json(&summary)?)),
        Err(e) => Err(name_holder(st, e).await),
    }
}

/// Names the holder in a `conversation_claimed` error so the UI can say who has it.
pub async fn name_holder(st: &AppState, mut err: ApiError) -> ApiError {
    let holder = err
        .extra
        .as_ref()
        .and_then(|e| e.get("holder_id"))
        .and_then(|h| h.as_str())
        .and_then(|h| h.parse::<AgentId>().ok());
    if let Some(h) = holder
        && let Ok(Some(agent)) = st.store.agent(h).await
        && let Some(serde_json::Value::Object(extra)) = err.extra.as_mut()
    {
        extra.insert("holder_name".into(), serde_json::json!(agent.name));
    }
    err
}

/// What `POST /conversations/{id}/messages` takes.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewMessage {
    text: String,
    #[serde(default)]
    kind: Option<String>,
    /// Provider channels: the messaging-window options (`human_agent_confirmed`, `tag`, `content`).
    #[serde(default)]
    policy: Option<PolicyRequest>,
    /// Reply buttons under the text (a numbered list where the channel has no buttons).
    #[serde(default)]
    buttons: Option<Vec<Choice>>,
    /// Sent by automation (a bot or an integration), not typed by a person: the policy is stricter.
    #[serde(default)]
    automated: bool,
}

fn invalid_field(field: &str, message: &str) -> ApiError {
    ApiError::invalid(message).with_extra(serde_json::json!({"field": field}))
}

/// Checked choices: at least one, each with an id and a title of plain text.
fn choices(buttons: Vec<Choice>) -> ApiResult<Vec<Choice>> {
    if buttons.is_empty() {
        return Err(invalid_field("buttons", "buttons: at least one"));
    }
    buttons
        .into_iter()
        .map(|b| {
            let plain = |s: &str| MessageText::parse(s).map(MessageText::into_inner);
            let (id, title) = (plain(&b.id), plain(&b.title));
            match (id, title) {
                (Ok(id), Ok(title)) if id.chars().count() <= 256 => Ok(Choice {
                    id,
                    title,
                    description: b.description,
                }),
                _ => Err(invalid_field(
                    "buttons",
                    "buttons: each has an id (1 to 256 characters) and a title",
                )),
            }
        })
        .collect()
}

/// Writes a message: a reply goes to the customer through `send` (as the agent, or their bot);
/// a note or an agent-to-agent message stays in the thread.
pub async fn post(
    st: &AppState,
    me: &CurrentAgent,
    id: ConversationId,
    b: NewMessage,
) -> ApiResult<serde_json::Value> {
    let text = MessageText::parse(&b.text)?.into_inner();
    let kind = match b.kind.as_deref().unwrap_or("reply") {
        "reply" => MessageKind::Text,
        "note" => MessageKind::Note,
        "agent_to_agent" => MessageKind::AgentToAgent,
        _ => {
            return Err(invalid_field(
                "kind",
                "kind: must be reply, note or agent_to_agent",
            ));
        }
    };
    visible(st, me, id).await?;
    if kind == MessageKind::Text {
        let content = match b.buttons {
            Some(buttons) => Content::Interactive(Interactive {
                header: None,
                body: text,
                footer: None,
                choices: Choices::Buttons(choices(buttons)?),
            }),
            None => Content::Text(text),
        };
        let author = Author::Agent {
            actor: me.actor(),
            automated: b.automated,
        };
        let req = SendRequest {
            policy: b.policy.unwrap_or_default(),
            ..SendRequest::new(id, author, content)
        };
        return match st.outgoing.send(req).await {
            Ok(sent) => Ok(sent.json),
            Err(e) => Err(name_holder(st, e).await),
        };
    }
    if b.buttons.is_some() {
        return Err(invalid_field(
            "buttons",
            "buttons: only on a reply to the customer",
        ));
    }
    let now = st.clock.now();
    let message = transact_message(st, me, id, |c| {
        Ok(Plan {
            transition: None,
            message: Some(outbound_message(c, me, kind, text.clone(), now)),
        })
    })
    .await?;
    Ok(event::message_json(&message))
}
