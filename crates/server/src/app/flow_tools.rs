//! Trying a flow before it runs: the **simulator** (chat with a flow as a customer of a chosen
//! channel: what each message looks like there — native buttons, a numbered list, refused — and
//! whether the messaging window lets the bot send it) and the **dry run** (which of the last days'
//! conversations would have started the flow, and what it would have sent first). Both run the
//! engine in memory and store nothing.

use crate::app::flows::parse_flow;
use crate::app::send::thread_text;
use crate::auth::CurrentAgent;
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;
use serde::Deserialize;
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use switchboard_core::flow::{
    self, Context, Effect, Flow, FlowMatcher, HttpOutcome, Input, MatchContext, RunState,
    TriggerEvent,
};
use switchboard_core::outbound::{self, Content, Fit, Unfit};
use switchboard_core::policy::{Decision, Facts};
use switchboard_core::*;

/// At most this many inputs in one simulation, and conversations in one dry run.
pub const MAX_INPUTS: usize = 50;
pub const MAX_DRY_RUN: u32 = 500;

/// One thing the simulated customer does.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum SimInput {
    /// Writes a message.
    Message { text: String },
    /// Taps a button or quick reply.
    Tap { payload: String },
    /// Waits until the run's next wake-up (a wait step, a question's timeout).
    Wait {},
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SimulateBody {
    pub flow: Value,
    /// `messenger` (default), `instagram`, `whatsapp`, `zalo`, `telegram`, `shopee`, `livechat`.
    pub channel: Option<String>,
    #[serde(default)]
    pub inputs: Vec<SimInput>,
    /// The simulated customer's fields (`name`, `phone`, custom ones).
    #[serde(default)]
    pub fields: BTreeMap<String, String>,
    /// Hours since the customer's last message when the simulation starts (the window).
    #[serde(default)]
    pub hours_since_customer: u32,
    /// Really call HTTP steps' endpoints (signed); otherwise they fail with "not called".
    #[serde(default)]
    pub call_http: bool,
}

/// How a message would look on the channel.
fn rendering(channel: ChannelKind, content: &Content) -> Value {
    match outbound::fit(channel, content) {
        Ok(Fit::AsIs) => match content {
            Content::Interactive(i) => json!({
                "form": "buttons",
                "buttons": i.all_choices().iter().map(|c| c.title.clone()).collect::<Vec<_>>(),
            }),
            Content::Media(_) => json!({"form": "media"}),
            _ => json!({"form": "text"}),
        },
        Ok(Fit::NumberedList { text, because }) => json!({
            "form": "numbered_list", "text": text, "because": because.map(unfit_code),
        }),
        Err(u) => json!({"form": "refused", "reason": unfit_code(u)}),
    }
}

const fn unfit_code(u: Unfit) -> &'static str {
    match u {
        Unfit::TextTooLong(_) => "text_too_long",
        Unfit::NotSupported(_) => "not_supported",
        Unfit::TooManyChoices { .. } => "too_many_choices",
        Unfit::ChoiceTitleTooLong { .. } => "choice_title_too_long",
        Unfit::ChoiceIdTooLong { .. } => "choice_id_too_long",
    }
}

/// The window's answer for the bot at `now`.
fn window(channel: ChannelKind, last_customer: Option<Timestamp>, now: Timestamp) -> Value {
    match crate::automation::bot_decision(channel, Facts::since(last_customer), now) {
        Decision::Allowed { .. } => json!({"allowed": true}),
        Decision::Refused { reason, .. } => {
            json!({"allowed": false, "reason": crate::automation::refusal_code(reason)})
        }
        Decision::NeedsConfirmation { .. } => json!({"allowed": false, "reason": "window_closed"}),
    }
}

/// A simulated customer: their fields and tags, the window, the clock.
struct Sim<'a> {
    st: &'a AppState,
    channel: ChannelKind,
    fields: BTreeMap<String, String>,
    tags: BTreeSet<String>,
    last_customer: Option<Timestamp>,
    now: Timestamp,
    call_http: bool,
    transcript: Vec<Value>,
}

impl Sim<'_> {
    /// Steps the run with `input`, and again with each HTTP result, recording what it does.
    async fn step(
        &mut self,
        flow: &Flow,
        state: RunState,
        input: Input<'_>,
    ) -> (RunState, Option<FlowId>) {
        let bot = self
            .st
            .automation
            .bot(self.st.workspace_id, self.now)
            .await
            .ok();
        let phrases = flow::HandoffPhrases::default();
        let window_open = window(self.channel, self.last_customer, self.now)["allowed"] == true;
        let ctx = Context {
            channel: self.channel,
            fields: &self.fields,
            tags: &self.tags,
            business_hours: None,
            utc_offset_minutes: 420,
            window_open,
            faq: bot.as_ref().and_then(|b| b.faq.as_ref()),
            handoff_phrases: bot.as_ref().map_or(&phrases, |b| &b.phrases),
        };
        let mut random = || rand::random::<f64>();
        let (next, effects) = flow::step(flow, &state, input, &ctx, self.now, &mut random);
        let mut http = None;
        let mut started = None;
        for e in effects {
            match e {
                Effect::Send(content) => self.transcript.push(json!({
                    "from": "bot",
                    "text": thread_text(&content),
                    "rendering": rendering(self.channel, &content),
                    "window": window(self.channel, self.last_customer, self.now),
                })),
                Effect::SaveField { field, value } => {
                    self.transcript.push(json!({"from": "system", "event": "field_saved", "field": field, "value": value}));
                    self.fields.insert(field, value);
                }
                Effect::AddTag(t) => {
                    self.transcript.push(json!({"from": "system", "event": "tag_added", "tag": t}));
                    self.tags.insert(t.to_lowercase());
                }
                Effect::RemoveTag(t) => {
                    self.transcript.push(json!({"from": "system", "event": "tag_removed", "tag": t}));
                    self.tags.remove(&t.to_lowercase());
                }
                Effect::CallHttp(call) => {
                    self.transcript.push(json!({"from": "system", "event": "http", "method": call.method, "url": call.url}));
                    http = Some(call);
                }
                Effect::Handoff { reason, note } => self.transcript.push(
                    json!({"from": "system", "event": "handoff", "reason": reason, "note": note}),
                ),
                Effect::Resolve => self.transcript.push(json!({"from": "system", "event": "resolve"})),
                Effect::StartFlow { flow, .. } => {
                    self.transcript.push(json!({"from": "system", "event": "start_flow", "flow_id": flow}));
                    started = Some(flow);
                }
                Effect::ScheduleFlow { flow, send_at } => self.transcript.push(
                    json!({"from": "system", "event": "schedule_flow", "flow_id": flow, "send_at": send_at}),
                ),
                Effect::CancelScheduledFlow { flow } => self.transcript.push(
                    json!({"from": "system", "event": "cancel_scheduled_flow", "flow_id": flow}),
                ),
                Effect::Log(l) => self.transcript.push(json!({"from": "system", "event": l.event, "step": l.step, "detail": l.detail})),
                Effect::Ended(r) => self.transcript.push(json!({"from": "system", "event": "ended", "reason": r})),
                Effect::WakeAt(t) => self.transcript.push(json!({"from": "system", "event": "waits_until", "at": t})),
                Effect::Assign(a) => self.transcript.push(json!({"from": "system", "event": "assign", "agent_id": a})),
                Effect::Comment(c) => self.transcript.push(json!({"from": "system", "event": "comment", "action": format!("{c:?}")})),
            }
        }
        if let Some(call) = http {
            let outcome = if self.call_http {
                self.st.automation.call(&call).await
            } else {
                HttpOutcome::Failed {
                    reason: "not called in the simulator".into(),
                }
            };
            self.transcript.push(
                json!({"from": "system", "event": "http_result", "result": outcome_json(&outcome)}),
            );
            return Box::pin(self.step(flow, next, Input::Http(&outcome))).await;
        }
        (next, started)
    }
}

fn outcome_json(o: &HttpOutcome) -> Value {
    match o {
        HttpOutcome::Response { status, body } => json!({"status": status, "body": body}),
        HttpOutcome::Failed { reason } => json!({"failed": reason}),
    }
}

/// Chats with a flow as a customer of a channel; nothing is stored or sent.
pub async fn simulate(st: &AppState, me: &CurrentAgent, b: SimulateBody) -> ApiResult<Value> {
    if !me.agent.role.supervises() {
        return Err(ApiError::forbidden(
            "only a supervisor or admin may try flows",
        ));
    }
    let flow = parse_flow(&b.flow)?;
    let channel = match b.channel.as_deref() {
        None => ChannelKind::Messenger,
        Some(c) => {
            ChannelKind::parse(c).ok_or_else(|| ApiError::invalid("channel: unknown channel"))?
        }
    };
    if b.inputs.len() > MAX_INPUTS || b.fields.len() > MAX_INPUTS {
        return Err(ApiError::invalid(format!(
            "inputs, fields: at most {MAX_INPUTS} each"
        )));
    }
    for i in &b.inputs {
        let t = match i {
            SimInput::Message { text } => text,
            SimInput::Tap { payload } => payload,
            SimInput::Wait {} => continue,
        };
        switchboard_core::validate::MessageText::parse(t)?;
    }
    let now = st.clock.now();
    let mut sim = Sim {
        st,
        channel,
        fields: b.fields,
        tags: BTreeSet::new(),
        last_customer: Some(now.plus_secs(-i64::from(b.hours_since_customer) * 3600)),
        now,
        call_http: b.call_http,
        transcript: Vec::new(),
    };
    let mut state = RunState::new(&flow, now, 0);
    let (s, chained) = sim.step(&flow, state, Input::Start).await;
    state = s;
    note_chain(&mut sim, chained);
    for input in &b.inputs {
        if state.is_ended() {
            break;
        }
        let (s, chained) = match input {
            SimInput::Message { text } => {
                sim.transcript
                    .push(json!({"from": "customer", "text": text}));
                sim.last_customer = Some(sim.now);
                sim.step(&flow, state, Input::Message(text)).await
            }
            SimInput::Tap { payload } => {
                sim.transcript
                    .push(json!({"from": "customer", "tap": payload}));
                sim.last_customer = Some(sim.now);
                sim.step(&flow, state, Input::Payload(payload)).await
            }
            SimInput::Wait {} => {
                sim.now = state
                    .wakes_at()
                    .unwrap_or(sim.now.plus_secs(3600))
                    .max(sim.now);
                sim.transcript
                    .push(json!({"from": "system", "event": "time_passes", "now": sim.now}));
                sim.step(&flow, state, Input::Timer).await
            }
        };
        state = s;
        note_chain(&mut sim, chained);
    }
    Ok(json!({
        "channel": channel,
        "transcript": sim.transcript,
        "fields": sim.fields,
        "tags": sim.tags,
        "state": state,
    }))
}

fn note_chain(sim: &mut Sim<'_>, chained: Option<FlowId>) {
    if let Some(f) = chained {
        sim.transcript.push(json!({"from": "system", "event": "simulation_stops", "reason": "another flow would start", "flow_id": f}));
    }
}

/// Which conversations of the last `days` would have started the flow (by their first customer
/// message), and what the flow would have sent them first.
pub async fn dry_run(
    st: &AppState,
    me: &CurrentAgent,
    id: FlowId,
    days: u32,
    limit: u32,
) -> ApiResult<Value> {
    if !me.agent.role.supervises() {
        return Err(ApiError::forbidden(
            "only a supervisor or admin may try flows",
        ));
    }
    let stored = st
        .store
        .flow(id)
        .await?
        .filter(|f| f.workspace_id == st.workspace_id)
        .ok_or_else(|| ApiError::not_found("flow"))?;
    let days = days.clamp(1, 90);
    let now = st.clock.now();
    let since = now.plus_secs(-i64::from(days) * 86_400);
    let started = st
        .store
        .conversations_started_since(st.workspace_id, since, limit.clamp(1, MAX_DRY_RUN))
        .await?;
    let matcher = FlowMatcher::compile([(id, &stored.flow)]);
    let mut items = Vec::new();
    let scanned = started.len();
    for (c, first) in started {
        let Some(m) = first else { continue };
        let ctx = MatchContext {
            inbox: c.inbox_id,
            business_hours: None,
            now: m.created_at,
        };
        let hits = matcher.matching(
            &TriggerEvent::Message {
                text: &m.text,
                first: true,
            },
            &ctx,
        );
        let Some(hit) = hits.first() else { continue };
        let channel = st
            .store
            .inbox(c.inbox_id)
            .await?
            .map_or(ChannelKind::Livechat, |i| i.channel);
        let contact = st.store.contact(c.contact_id).await?;
        let mut fields = st.store.contact_fields(c.contact_id).await?;
        if let Some(name) = contact.as_ref().and_then(|c| c.name.clone()) {
            fields.insert("name".into(), name);
        }
        let mut sim = Sim {
            st,
            channel,
            fields,
            tags: c.tags.iter().map(|t| t.to_lowercase()).collect(),
            last_customer: Some(m.created_at),
            now: m.created_at,
            call_http: false,
            transcript: Vec::new(),
        };
        sim.step(
            &stored.flow,
            RunState::new(&stored.flow, m.created_at, 0),
            Input::Start,
        )
        .await;
        let sends: Vec<Value> = sim
            .transcript
            .into_iter()
            .filter(|e| e["from"] == "bot")
            .collect();
        items.push(json!({
            "conversation_id": c.id,
            "contact_name": contact.and_then(|c| c.name),
            "channel": channel,
            "first_message": m.text,
            "at": m.created_at,
            "trigger": stored.flow.triggers.get(hit.trigger),
            "would_send": sends,
        }));
    }
    Ok(json!({
        "flow_id": id, "days": days, "scanned": scanned, "matched": items.len(), "items": items,
        "limits": "first customer messages only (taps and referrals are not replayed); FAQ answers use today's FAQ",
    }))
}
