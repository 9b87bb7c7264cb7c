//! Running a flow: a pure state machine. The server keeps a [`RunState`] per conversation, and
//! on every input (the start, a customer message, a button, a timer, an HTTP result, an agent
//! taking over) calls [`step`] with the flow version the run started with and the facts of the
//! moment ([`Context`]); it gets the new state and the [`Effect`]s to carry out, in order.
//!
//! Steps run one after another within one call until one needs input (a question, a wait, an
//! HTTP call, the FAQ bot) or the run ends. Every step counts toward the flow's step limit
//! (carried into flows it starts), so a loop ends with [`EndReason::StepLimit`] and says so.

use super::answer;
use super::faq::{Faq, HandoffPhrases};
use super::model::*;
use super::template;
use crate::business_hours::{self, BusinessHours, Range};
use crate::ids::{AgentId, FlowId};
use crate::model::ChannelKind;
use crate::outbound::{Choice, Choices, Content, Interactive, Media, MediaSource};
use crate::text;
use crate::time::Timestamp;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// A run of a flow for one conversation, as the store keeps it between inputs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunState {
    /// The version the run started with; it runs on that version to its end.
    pub flow_version: u32,
    pub started_at: Timestamp,
    /// Steps taken by this run and the runs that started it (the loop guard).
    pub steps_taken: u32,
    /// The step it is waiting in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at: Option<String>,
    pub waiting: Waiting,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ended: Option<EndReason>,
}

/// What a run is waiting for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "for", rename_all = "snake_case")]
pub enum Waiting {
    /// Created, not started: the next input should be [`Input::Start`].
    Start,
    /// An answer to the question at `at`.
    Answer {
        retries_used: u8,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        deadline: Option<Timestamp>,
    },
    /// A wait step's time.
    Timer { until: Timestamp },
    /// The result of the HTTP call; after `deadline` it has failed.
    Http { deadline: Timestamp },
    /// Customer questions for the FAQ bot; `misses` in a row so far.
    Faq { misses: u8 },
    /// Nothing: the run has ended.
    Nothing,
}

/// Why a run ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "reason", rename_all = "snake_case")]
pub enum EndReason {
    /// It reached a step with no `next`.
    Completed,
    /// A stop step.
    Stopped,
    HandedOff,
    Resolved,
    /// It started another flow.
    StartedFlow,
    /// A question got no acceptable answer (time or retries ran out) and has no timeout path.
    NoAnswer,
    /// An HTTP step failed and has no failure path.
    HttpFailed,
    /// The loop guard: this many steps were taken.
    StepLimit {
        limit: u32,
    },
    /// An agent took the conversation over.
    TakenOver,
    /// The server passed another version of the flow than the run started with.
    VersionMismatch {
        running: u32,
        given: u32,
    },
    /// A step the flow does not have (an unvalidated flow).
    MissingStep {
        step: String,
    },
}

/// An HTTP step's result, as the server's client got it.
#[derive(Debug, Clone, PartialEq)]
pub enum HttpOutcome {
    Response {
        status: u16,
        /// The body, if it was JSON.
        body: Option<serde_json::Value>,
    },
    /// No response: connection refused, TLS, timeout.
    Failed { reason: String },
}

/// What happened to the run.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Input<'a> {
    /// Begin at the start step.
    Start,
    /// A customer message.
    Message(&'a str),
    /// A button, quick reply or postback payload.
    Payload(&'a str),
    /// The time the run asked to be woken at ([`Effect::WakeAt`]) came; a timer firing before
    /// the run's deadline, or for a run no longer waiting, does nothing.
    Timer,
    Http(&'a HttpOutcome),
    /// An agent took the conversation over: the run ends at once.
    AgentTakeOver,
}

/// The facts a run reads: the contact, the channel, the inbox's hours, the messaging window,
/// the FAQ and the handoff phrases.
#[derive(Debug, Clone, Copy)]
pub struct Context<'a> {
    pub channel: ChannelKind,
    /// The contact's fields by name, `name`, `phone` and `email` among them.
    pub fields: &'a BTreeMap<String, String>,
    /// The contact's tags, lower-cased.
    pub tags: &'a BTreeSet<String>,
    /// `None`: always open.
    pub business_hours: Option<&'a BusinessHours>,
    /// The inbox's offset from UTC in minutes (scheduled sends' hours are local).
    pub utc_offset_minutes: i32,
    /// Whether the channel's messaging window lets automation send a free-form message now
    /// (`core::policy`).
    pub window_open: bool,
    pub faq: Option<&'a Faq>,
    pub handoff_phrases: &'a HandoffPhrases,
}

/// An HTTP request for the server to make (it signs it with the workspace's secret).
#[derive(Debug, Clone, PartialEq)]
pub struct HttpCall {
    pub method: HttpMethod,
    pub url: String,
    pub headers: BTreeMap<String, String>,
    pub body: Option<serde_json::Value>,
    pub timeout_ms: i64,
}

/// Why the conversation goes to a human.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(tag = "reason", rename_all = "snake_case")]
pub enum HandoffReason {
    /// A handoff step.
    Step,
    /// The customer wrote a handoff phrase.
    AskedForHuman,
    /// The FAQ bot missed this many times in a row.
    NotUnderstood { misses: u8 },
}

/// A line for the conversation's action history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FlowLog {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub step: Option<String>,
    /// `flow.started`, `step.<kind>`, `answer.rejected`, `answer.timeout`, `faq.answered`,
    /// `faq.missed`, `http.failed`, `flow.ended`, …
    pub event: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// What the server does for a run, in order.
#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    /// Send through the send command as automation (the policy decides).
    Send(Content),
    SaveField {
        field: String,
        value: String,
    },
    AddTag(String),
    RemoveTag(String),
    /// Call [`step`] with [`Input::Timer`] at this time (a durable timer).
    WakeAt(Timestamp),
    CallHttp(HttpCall),
    /// Route the conversation to humans by the inbox's rules.
    Handoff {
        reason: HandoffReason,
        note: Option<String>,
    },
    Resolve,
    /// Start this flow for the conversation with `RunState::new(…, carried_steps)`.
    StartFlow {
        flow: FlowId,
        carried_steps: u32,
    },
    /// Attach a scheduled run of this flow to the contact.
    ScheduleFlow {
        flow: FlowId,
        send_at: Timestamp,
    },
    CancelScheduledFlow {
        flow: FlowId,
    },
    /// The run ended (always the last effect).
    Ended(EndReason),
    Log(FlowLog),
    /// Act on the comment that started the run (a comment rule's step).
    Comment(CommentEffect),
    /// Assign the conversation to this agent.
    Assign(AgentId),
}

/// What a comment step asks of the comment that started the run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CommentEffect {
    Hide,
    Like,
    /// A public reply: one of these (rendered) variants, in rotation (`comments::rotate`).
    Reply {
        variants: Vec<String>,
    },
    /// The private reply; `then_flow` starts when the customer answers it.
    PrivateReply {
        text: String,
        then_flow: Option<FlowId>,
    },
}

impl RunState {
    /// A run of `flow` about to start; `carried_steps`: the steps taken by the run that started
    /// it (0 for a trigger).
    pub fn new(flow: &Flow, now: Timestamp, carried_steps: u32) -> Self {
        Self {
            flow_version: flow.version,
            started_at: now,
            steps_taken: carried_steps,
            at: None,
            waiting: Waiting::Start,
            ended: None,
        }
    }

    /// The run ended from outside the engine (an agent took over, auto-reply was switched off).
    pub fn ended_by(&self, reason: EndReason) -> Self {
        Self {
            waiting: Waiting::Nothing,
            ended: Some(reason),
            ..self.clone()
        }
    }

    pub fn is_ended(&self) -> bool {
        self.ended.is_some()
    }

    /// When the run wants a [`Input::Timer`] (the server's durable timer).
    pub fn wakes_at(&self) -> Option<Timestamp> {
        match self.waiting {
            Waiting::Answer { deadline, .. } => deadline,
            Waiting::Timer { until } => Some(until),
            Waiting::Http { deadline } => Some(deadline),
            _ => None,
        }
    }
}

/// Advances a run by one input. `random` returns numbers in `[0, 1)` (message variants, A/B
/// splits); the core has no random source of its own.
pub fn step(
    flow: &Flow,
    state: &RunState,
    input: Input<'_>,
    ctx: &Context<'_>,
    now: Timestamp,
    random: &mut dyn FnMut() -> f64,
) -> (RunState, Vec<Effect>) {
    let mut run = Run {
        flow,
        ctx,
        now,
        random,
        state: state.clone(),
        effects: Vec::new(),
        fields: BTreeMap::new(),
        tags_added: BTreeSet::new(),
        tags_removed: BTreeSet::new(),
    };
    if state.is_ended() {
        return (run.state, run.effects);
    }
    if flow.version != state.flow_version {
        run.end(EndReason::VersionMismatch {
            running: state.flow_version,
            given: flow.version,
        });
        return (run.state, run.effects);
    }
    run.input(input);
    (run.state, run.effects)
}

/// What a step leads to.
enum Then {
    /// The next step; `None`: the run is complete.
    Go(Option<String>),
    /// The run waits for input.
    Wait,
    /// The run ended.
    Ended,
}

struct Run<'r, 'c> {
    flow: &'r Flow,
    ctx: &'r Context<'c>,
    now: Timestamp,
    random: &'r mut dyn FnMut() -> f64,
    state: RunState,
    effects: Vec<Effect>,
    /// Fields and tags changed during this call (the context shows them as they were before).
    fields: BTreeMap<String, String>,
    tags_added: BTreeSet<String>,
    tags_removed: BTreeSet<String>,
}

fn secs_to_ms(s: u64) -> i64 {
    i64::try_from(s)
        .unwrap_or(i64::MAX / 1000)
        .saturating_mul(1000)
}

impl<'r> Run<'r, '_> {
    fn log(&mut self, step: Option<&str>, event: impl Into<String>, detail: Option<String>) {
        self.effects.push(Effect::Log(FlowLog {
            step: step.map(str::to_owned),
            event: event.into(),
            detail,
        }));
    }

    fn end(&mut self, reason: EndReason) {
        self.log(
            self.state.at.clone().as_deref(),
            "flow.ended",
            serde_json::to_value(&reason)
                .ok()
                .and_then(|v| v.get("reason").and_then(|r| r.as_str()).map(str::to_owned)),
        );
        self.state.at = None;
        self.state.waiting = Waiting::Nothing;
        self.state.ended = Some(reason.clone());
        self.effects.push(Effect::Ended(reason));
    }

    fn field(&self, name: &str) -> Option<String> {
        self.fields
            .get(name)
            .or_else(|| self.ctx.fields.get(name))
            .cloned()
    }

    fn has_tag(&self, tag: &str) -> bool {
        let tag = tag.trim().to_lowercase();
        !self.tags_removed.contains(&tag)
            && (self.tags_added.contains(&tag) || self.ctx.tags.contains(&tag))
    }

    fn render(&self, s: &str) -> String {
        template::render(s, &|f| self.field(f), false)
    }

    fn save(&mut self, field: &str, value: String) {
        self.fields.insert(field.to_owned(), value.clone());
        self.effects.push(Effect::SaveField {
            field: field.to_owned(),
            value,
        });
    }

    fn input(&mut self, input: Input<'_>) {
        match (input, self.state.waiting.clone()) {
            (Input::AgentTakeOver, _) => self.end(EndReason::TakenOver),
            (Input::Start, Waiting::Start) => {
                self.log(None, "flow.started", Some(self.flow.name.clone()));
                self.run_from(Some(self.flow.start.clone()));
            }
            (Input::Message(text), waiting) if waiting != Waiting::Start => {
                if self.ctx.handoff_phrases.asks_for_human(text) {
                    self.handoff(HandoffReason::AskedForHuman, None);
                    return;
                }
                match waiting {
                    Waiting::Answer { retries_used, .. } => self.answer(text, retries_used),
                    Waiting::Faq { misses } => self.faq(text, misses),
                    // A message during a wait or an HTTP call changes nothing.
                    _ => {}
                }
            }
            (Input::Payload(p), Waiting::Answer { retries_used, .. }) => {
                self.answer(p, retries_used)
            }
            (
                Input::Timer,
                Waiting::Answer {
                    deadline: Some(d), ..
                },
            ) if self.now >= d => {
                let at = self.state.at.clone();
                self.log(at.as_deref(), "answer.timeout", None);
                self.timeout_path();
            }
            (Input::Timer, Waiting::Timer { until }) if self.now >= until => {
                let next = self.current_next();
                self.run_from(next);
            }
            (Input::Timer, Waiting::Http { deadline }) if self.now >= deadline => {
                self.http_failed("timed out".into());
            }
            (Input::Http(outcome), Waiting::Http { .. }) => self.http_result(outcome),
            // Stale timers, late HTTP results, payloads nobody asked for.
            _ => {}
        }
    }

    fn current(&self) -> Option<&'r Step> {
        let flow: &'r Flow = self.flow;
        self.state.at.as_deref().and_then(|id| flow.step(id))
    }

    /// The `next` of the step the run waits in.
    fn current_next(&self) -> Option<String> {
        match self.current().map(|s| &s.action) {
            Some(
                Action::Wait { next, .. }
                | Action::Ask { next, .. }
                | Action::SendMessage { next, .. },
            ) => next.clone(),
            Some(Action::Http(h)) => h.next.clone(),
            _ => None,
        }
    }

    /// Runs steps from `next` until one waits or the run ends.
    fn run_from(&mut self, mut next: Option<String>) {
        self.state.at = None;
        self.state.waiting = Waiting::Nothing;
        while let Some(id) = next {
            let limit = self.flow.guards.max_steps;
            if self.state.steps_taken >= limit {
                self.state.at = Some(id);
                self.end(EndReason::StepLimit { limit });
                return;
            }
            self.state.steps_taken += 1;
            let flow: &Flow = self.flow;
            let Some(step) = flow.step(&id) else {
                self.end(EndReason::MissingStep { step: id });
                return;
            };
            self.log(Some(&id), format!("step.{}", step.action.kind()), None);
            self.state.at = Some(id.clone());
            match self.execute(&id, &step.action) {
                Then::Go(n) => next = n,
                Then::Wait | Then::Ended => return,
            }
        }
        self.end(EndReason::Completed);
    }

    fn content(&mut self, m: &MessageSpec, choices: Option<Vec<Choice>>) -> Content {
        let text = m.text.as_deref().map(|t| self.render(t));
        if let Some(media) = &m.media {
            return Content::Media(Media {
                kind: media.kind,
                source: MediaSource::Link(media.url.clone()),
                caption: text,
                filename: None,
            });
        }
        let body = text.unwrap_or_default();
        let buttons = choices.unwrap_or_else(|| {
            m.buttons
                .iter()
                .map(|b| Choice {
                    id: b.payload.clone(),
                    title: self.render(&b.title),
                    description: None,
                })
                .collect()
        });
        if buttons.is_empty() {
            Content::Text(body)
        } else {
            Content::Interactive(Interactive {
                header: None,
                body,
                footer: None,
                choices: Choices::Buttons(buttons),
            })
        }
    }

    fn pick(&mut self, n: usize) -> usize {
        let r = (self.random)();
        let r = if r.is_finite() {
            r.clamp(0.0, 1.0)
        } else {
            0.0
        };
        ((r * n as f64) as usize).min(n.saturating_sub(1))
    }

    fn execute(&mut self, id: &str, action: &Action) -> Then {
        match action {
            Action::SendMessage { variants, next } => {
                if !variants.is_empty() {
                    let i = self.pick(variants.len());
                    let c = self.content(&variants[i], None);
                    self.effects.push(Effect::Send(c));
                }
                Then::Go(next.clone())
            }
            Action::Ask {
                question,
                answer,
                timeout_secs,
                ..
            } => {
                let c = self.content(question, question_choices(answer));
                self.effects.push(Effect::Send(c));
                let deadline = timeout_secs.map(|s| self.now.plus_millis(secs_to_ms(s)));
                if let Some(d) = deadline {
                    self.effects.push(Effect::WakeAt(d));
                }
                self.state.waiting = Waiting::Answer {
                    retries_used: 0,
                    deadline,
                };
                Then::Wait
            }
            Action::AddTag { tag, next } => {
                let tag = tag.trim().to_lowercase();
                self.tags_removed.remove(&tag);
                self.tags_added.insert(tag.clone());
                self.effects.push(Effect::AddTag(tag));
                Then::Go(next.clone())
            }
            Action::RemoveTag { tag, next } => {
                let tag = tag.trim().to_lowercase();
                self.tags_added.remove(&tag);
                self.tags_removed.insert(tag.clone());
                self.effects.push(Effect::RemoveTag(tag));
                Then::Go(next.clone())
            }
            Action::SetField { field, value, next } => {
                let v = self.render(value);
                self.save(field, v);
                Then::Go(next.clone())
            }
            Action::Branch { paths, otherwise } => {
                let chosen = paths
                    .iter()
                    .find(|p| self.holds(&p.when))
                    .map(|p| Some(p.next.clone()));
                Then::Go(chosen.unwrap_or_else(|| otherwise.clone()))
            }
            Action::Wait {
                seconds,
                until_business_hours,
                next,
            } => {
                let until = match (seconds, until_business_hours) {
                    (Some(s), _) => Some(self.now.plus_millis(secs_to_ms(*s))),
                    (None, true) => self.ctx.business_hours.and_then(|h| h.next_open(self.now)),
                    (None, false) => None,
                };
                match until {
                    Some(until) if until > self.now => {
                        self.effects.push(Effect::WakeAt(until));
                        self.state.waiting = Waiting::Timer { until };
                        Then::Wait
                    }
                    // Already open (or no hours, or never open): go on.
                    _ => Then::Go(next.clone()),
                }
            }
            Action::Split { paths } => {
                let total: u64 = paths.iter().map(|p| u64::from(p.weight)).sum();
                let r = (self.random)();
                let r = if r.is_finite() {
                    r.clamp(0.0, 1.0)
                } else {
                    0.0
                };
                let mut point = (r * total as f64) as u64;
                let mut chosen = paths.last().map(|p| p.next.clone());
                for p in paths {
                    if point < u64::from(p.weight) {
                        chosen = Some(p.next.clone());
                        break;
                    }
                    point -= u64::from(p.weight);
                }
                self.log(Some(id), "split.path", chosen.clone());
                Then::Go(chosen)
            }
            Action::Http(h) => {
                let timeout_ms = secs_to_ms(h.timeout_secs);
                let call = HttpCall {
                    method: h.method,
                    url: template::render(&h.url, &|f| self.field(f), true),
                    headers: h
                        .headers
                        .iter()
                        .map(|(k, v)| (k.clone(), self.render(v)))
                        .collect(),
                    body: h
                        .body
                        .as_ref()
                        .map(|b| template::render_json(b, &|f| self.field(f))),
                    timeout_ms,
                };
                let deadline = self.now.plus_millis(timeout_ms);
                self.effects.push(Effect::CallHttp(call));
                self.effects.push(Effect::WakeAt(deadline));
                self.state.waiting = Waiting::Http { deadline };
                Then::Wait
            }
            Action::Handoff { note } => {
                let note = note.as_deref().map(|n| self.render(n));
                self.handoff(HandoffReason::Step, note);
                Then::Ended
            }
            Action::HideComment { next } => {
                self.effects.push(Effect::Comment(CommentEffect::Hide));
                Then::Go(next.clone())
            }
            Action::LikeComment { next } => {
                if self.ctx.channel == ChannelKind::Instagram {
                    // Instagram has no like for comments: never attempted there.
                    self.log(Some(id), "comment.like_not_supported", None);
                } else {
                    self.effects.push(Effect::Comment(CommentEffect::Like));
                }
                Then::Go(next.clone())
            }
            Action::ReplyComment { variants, next } => {
                let variants: Vec<String> = variants.iter().map(|v| self.render(v)).collect();
                if !variants.is_empty() {
                    self.effects
                        .push(Effect::Comment(CommentEffect::Reply { variants }));
                }
                Then::Go(next.clone())
            }
            Action::PrivateReply {
                text,
                then_flow,
                next,
            } => {
                let text = self.render(text);
                self.effects
                    .push(Effect::Comment(CommentEffect::PrivateReply {
                        text,
                        then_flow: *then_flow,
                    }));
                Then::Go(next.clone())
            }
            Action::Assign { agent, next } => {
                self.effects.push(Effect::Assign(*agent));
                Then::Go(next.clone())
            }
            Action::Resolve {} => {
                self.effects.push(Effect::Resolve);
                self.end(EndReason::Resolved);
                Then::Ended
            }
            Action::FaqBot { .. } => {
                self.state.waiting = Waiting::Faq { misses: 0 };
                Then::Wait
            }
            Action::StartFlow { flow } => {
                self.effects.push(Effect::StartFlow {
                    flow: *flow,
                    carried_steps: self.state.steps_taken,
                });
                self.end(EndReason::StartedFlow);
                Then::Ended
            }
            Action::ScheduleFlow {
                flow,
                delay_secs,
                within_hours,
                next,
            } => {
                let at = self.now.plus_millis(secs_to_ms(*delay_secs));
                let send_at = match within_hours {
                    Some(h) => within(at, h, self.ctx.utc_offset_minutes),
                    None => at,
                };
                self.effects.push(Effect::ScheduleFlow {
                    flow: *flow,
                    send_at,
                });
                Then::Go(next.clone())
            }
            Action::CancelScheduledFlow { flow, next } => {
                self.effects
                    .push(Effect::CancelScheduledFlow { flow: *flow });
                Then::Go(next.clone())
            }
            Action::Stop {} => {
                self.end(EndReason::Stopped);
                Then::Ended
            }
        }
    }

    fn handoff(&mut self, reason: HandoffReason, note: Option<String>) {
        self.effects.push(Effect::Handoff { reason, note });
        self.end(EndReason::HandedOff);
    }

    fn answer(&mut self, text: &str, retries_used: u8) {
        let Some(step) = self.current() else {
            return;
        };
        let Action::Ask {
            question,
            answer,
            save_to,
            retries,
            retry_text,
            next,
            ..
        } = &step.action
        else {
            return;
        };
        let id = step.id.clone();
        match answer::accept(answer, text) {
            Ok((value, choice)) => {
                self.log(Some(&id), "answer.accepted", None);
                self.save(save_to, value);
                let next = choice.and_then(|c| c.next.clone()).or_else(|| next.clone());
                self.run_from(next);
            }
            Err(why) => {
                self.log(Some(&id), "answer.rejected", Some(format!("{why:?}")));
                let used = retries_used.saturating_add(1);
                if used > *retries {
                    self.timeout_path();
                    return;
                }
                let again = match retry_text {
                    Some(t) => {
                        let body = self.render(t);
                        match self.content(question, question_choices(answer)) {
                            Content::Interactive(mut i) => {
                                i.body = body;
                                Content::Interactive(i)
                            }
                            _ => Content::Text(body),
                        }
                    }
                    None => self.content(question, question_choices(answer)),
                };
                self.effects.push(Effect::Send(again));
                if let Waiting::Answer { retries_used, .. } = &mut self.state.waiting {
                    *retries_used = used;
                }
            }
        }
    }

    /// The question's timeout path (time ran out, or the retries did).
    fn timeout_path(&mut self) {
        let next = match self.current().map(|s| &s.action) {
            Some(Action::Ask { timeout_next, .. }) => timeout_next.clone(),
            _ => None,
        };
        match next {
            Some(n) => self.run_from(Some(n)),
            None => self.end(EndReason::NoAnswer),
        }
    }

    fn faq(&mut self, text: &str, misses: u8) {
        let Some(step) = self.current() else {
            return;
        };
        let Action::FaqBot {
            fallback,
            max_misses,
        } = &step.action
        else {
            return;
        };
        let (id, fallback, max_misses) = (step.id.clone(), fallback.clone(), *max_misses);
        if let Some(hit) = self.ctx.faq.and_then(|f| f.answer(text)) {
            let answer = self.render(hit.answer);
            self.log(
                Some(&id),
                "faq.answered",
                Some(format!("entry {} score {:.2}", hit.entry, hit.score)),
            );
            self.effects.push(Effect::Send(Content::Text(answer)));
            self.state.waiting = Waiting::Faq { misses: 0 };
            return;
        }
        let misses = misses.saturating_add(1);
        self.log(
            Some(&id),
            "faq.missed",
            Some(format!("{misses}/{max_misses}")),
        );
        if misses >= max_misses {
            self.handoff(HandoffReason::NotUnderstood { misses }, None);
            return;
        }
        let body = self.render(&fallback);
        self.effects.push(Effect::Send(Content::Text(body)));
        self.state.waiting = Waiting::Faq { misses };
    }

    fn http_result(&mut self, outcome: &HttpOutcome) {
        match outcome {
            HttpOutcome::Response { status, body } if (200..300).contains(status) => {
                let Some(Action::Http(h)) = self.current().map(|s| s.action.clone()) else {
                    return;
                };
                let at = self.state.at.clone();
                self.log(at.as_deref(), "http.succeeded", Some(status.to_string()));
                for s in &h.save {
                    match body.as_ref().and_then(|b| json_path(b, &s.path)) {
                        Some(v) => self.save(&s.field, v),
                        None => self.log(at.as_deref(), "http.missing_value", Some(s.path.clone())),
                    }
                }
                self.run_from(h.next.clone());
            }
            HttpOutcome::Response { status, .. } => self.http_failed(format!("status {status}")),
            HttpOutcome::Failed { reason } => self.http_failed(reason.clone()),
        }
    }

    fn http_failed(&mut self, reason: String) {
        let at = self.state.at.clone();
        self.log(at.as_deref(), "http.failed", Some(reason));
        let next = match self.current().map(|s| &s.action) {
            Some(Action::Http(h)) => h.on_failure.clone(),
            _ => None,
        };
        match next {
            Some(n) => self.run_from(Some(n)),
            None => self.end(EndReason::HttpFailed),
        }
    }

    fn holds(&self, c: &Condition) -> bool {
        match c {
            Condition::Field { field, op, value } => {
                compare(self.field(field).as_deref(), *op, value.as_deref())
            }
            Condition::HasTag { tag } => self.has_tag(tag),
            Condition::Channel { channels } => channels.contains(&self.ctx.channel),
            Condition::WithinBusinessHours {} => {
                self.ctx.business_hours.is_none_or(|h| h.is_open(self.now))
            }
            Condition::WindowOpen {} => self.ctx.window_open,
            Condition::All { of } => of.iter().all(|c| self.holds(c)),
            Condition::Any { of } => of.iter().any(|c| self.holds(c)),
            Condition::Not { of } => !self.holds(of),
        }
    }
}

/// A choice question's buttons.
fn question_choices(answer: &AnswerKind) -> Option<Vec<Choice>> {
    match answer {
        AnswerKind::Choice { choices } => Some(
            choices
                .iter()
                .map(|c| Choice {
                    id: c.value.clone(),
                    title: c.title.clone(),
                    description: None,
                })
                .collect(),
        ),
        _ => None,
    }
}

/// Compares a field's value: numbers as numbers when both sides are, text folded (case and
/// diacritics aside).
pub fn compare(field: Option<&str>, op: CompareOp, value: Option<&str>) -> bool {
    let have = field.map(str::trim).filter(|v| !v.is_empty());
    match op {
        CompareOp::IsSet => return have.is_some(),
        CompareOp::IsEmpty => return have.is_none(),
        _ => {}
    }
    let want = value.unwrap_or("").trim();
    let Some(have) = have else {
        // A missing field equals nothing and is unequal to everything.
        return op == CompareOp::Ne;
    };
    let num = |s: &str| answer::number(s).and_then(|n| n.parse::<f64>().ok());
    let ordering = match (num(have), num(want)) {
        (Some(a), Some(b)) => a.partial_cmp(&b),
        _ => Some(text::fold(have).cmp(&text::fold(want))),
    };
    match op {
        CompareOp::Eq => ordering == Some(std::cmp::Ordering::Equal),
        CompareOp::Ne => ordering != Some(std::cmp::Ordering::Equal),
        CompareOp::Contains => text::fold(have).contains(&text::fold(want)),
        CompareOp::Gt => ordering == Some(std::cmp::Ordering::Greater),
        CompareOp::Gte => ordering.is_some_and(|o| o != std::cmp::Ordering::Less),
        CompareOp::Lt => ordering == Some(std::cmp::Ordering::Less),
        CompareOp::Lte => ordering.is_some_and(|o| o != std::cmp::Ordering::Greater),
        CompareOp::IsSet | CompareOp::IsEmpty => false,
    }
}

/// A value in a JSON document by a dotted path (`data.items.0.name`; a leading `$.` is allowed),
/// as text: strings as they are, numbers and booleans written out; `null`, objects and arrays
/// give nothing.
pub fn json_path(body: &serde_json::Value, path: &str) -> Option<String> {
    let path = path.strip_prefix("$.").unwrap_or(path);
    let mut v = body;
    for part in path.split('.').filter(|p| !p.is_empty()) {
        v = match v {
            serde_json::Value::Object(m) => m.get(part)?,
            serde_json::Value::Array(a) => a.get(part.parse::<usize>().ok()?)?,
            _ => return None,
        };
    }
    match v {
        serde_json::Value::String(s) => Some(s.clone()),
        serde_json::Value::Number(n) => Some(n.to_string()),
        serde_json::Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// `at`, or the next moment within the local hours `h` (`from`–`to`, the inbox's offset).
pub fn within(at: Timestamp, h: &HoursSpec, utc_offset_minutes: i32) -> Timestamp {
    let (Some(from), Some(to)) = (Range::parse_time(&h.from), Range::parse_time(&h.to)) else {
        return at;
    };
    let local = business_hours::local_time(at, utc_offset_minutes);
    if (from..to).contains(&local.minute) {
        at
    } else if local.minute < from {
        business_hours::timestamp_at(local.date, from, utc_offset_minutes)
    } else {
        let tomorrow =
            business_hours::Date::from_days_since_epoch(local.date.days_since_epoch() + 1);
        business_hours::timestamp_at(tomorrow, from, utc_offset_minutes)
    }
}
