//! Automation in the service: which flow a customer's message (or a tap, a referral, an agent, a
//! schedule, another flow) starts, and running it — the pure engine (`core::flow`) decides, this
//! carries out its effects: messages through the one `send` command as the bot (the policy
//! decides; a refusal is stored with its reason), contact fields, tags, HTTP calls signed with the
//! workspace's secret, handoff to routing, scheduled flows.
//!
//! Concurrency: a run's state is saved with compare-and-set on its `revision` together with what
//! it does to the conversation (compare-and-set on the conversation's version), *before* its
//! messages go out; a node that loses decides again on fresh state, so no step is taken twice.
//! Wake-ups (answers' deadlines, waits, HTTP deadlines) and scheduled flows are leased rows, fired
//! by one node. Active flows and FAQs are compiled in memory once and reloaded when this node
//! saves them, or after [`RELOAD_SECS`] (what another node saved).

use crate::app::send::{Outgoing, Purpose, SendRequest, window_facts};
use crate::clock::Clock;
use crate::routing::Routing;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, RwLock};
use std::time::Duration;
use switchboard_core::conversation::{self as conv, Resume, Transition};
use switchboard_core::event::{self, EventDraft};
use switchboard_core::flow::{
    self, Context, Effect, EndReason, Faq, Flow, FlowMatcher, HandoffPhrases, HttpCall,
    HttpOutcome, Input, MatchContext, RunState, TriggerEvent,
};
use switchboard_core::outbound::{Author, Content};
use switchboard_core::policy::{self, Decision, Requested, Sender};
use switchboard_core::*;
use switchboard_store::{
    Change, FlowRun, RunSave, ScheduledFlow, ScheduledStatus, Store, StoreError, StoredFlow,
};
use tokio::task::JoinHandle;

/// Seconds after which compiled flows and FAQs are read again (changes saved on another node).
pub const RELOAD_SECS: i64 = 10;
/// Decisions retried on fresh state before giving up.
const ATTEMPTS: usize = 5;
/// Rows leased per round.
const CLAIM_BATCH: u32 = 100;
/// The most an HTTP step reads of an answer.
const HTTP_BODY_MAX: usize = 1 << 20;
/// The button that opens a bot's list (WhatsApp shows it under the message).
const LIST_BUTTON: &str = "Chọn";
/// A scheduled flow whose conversation another flow holds is tried again this much later.
const RETRY_SECS: i64 = 60;
/// Local time for scheduled sends' hours where the inbox has no business hours (Vietnam).
const DEFAULT_UTC_OFFSET_MINUTES: i32 = 420;

/// One input to a run, owned (the engine's [`Input`] borrows).
#[derive(Debug, Clone)]
pub enum Feed {
    Start,
    Message(String),
    Payload(String),
    Timer,
    Http(HttpOutcome),
    TakeOver,
}

impl Feed {
    fn input(&self) -> Input<'_> {
        match self {
            Self::Start => Input::Start,
            Self::Message(t) => Input::Message(t),
            Self::Payload(p) => Input::Payload(p),
            Self::Timer => Input::Timer,
            Self::Http(o) => Input::Http(o),
            Self::TakeOver => Input::AgentTakeOver,
        }
    }
}

/// A customer message just stored, as automation sees it.
#[derive(Debug, Clone)]
pub struct CustomerMessage {
    pub workspace_id: WorkspaceId,
    pub inbox_id: InboxId,
    pub conversation_id: ConversationId,
    pub text: String,
    pub meta: serde_json::Value,
    /// It created the conversation or reopened it.
    pub entered_pool: bool,
    /// A flow holds the conversation.
    pub held_by_bot: bool,
    /// A comment rule may have left a flow to start when the customer answers its private reply
    /// (`comment_rules`): looked for first, off the webhook's path.
    pub answer_flow_possible: bool,
}

/// A change to a conversation that flows may start on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConversationEvent<'a> {
    Resolved,
    TagAdded(&'a str),
    FieldChanged(&'a str),
}

impl ConversationEvent<'_> {
    const fn how(self) -> &'static str {
        match self {
            Self::Resolved => "resolved",
            Self::TagAdded(_) => "tag_added",
            Self::FieldChanged(_) => "field_changed",
        }
    }
}

/// Why a flow did not start.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NotStarted {
    #[error("no such flow")]
    NoFlow,
    /// The flow has no trigger for this way of starting (`agent_start`, `started_by_flow`,
    /// `scheduled_due`).
    #[error("this flow cannot be started this way")]
    NotStartable,
    #[error("a flow is already running in this conversation")]
    Running,
    #[error("the conversation changed too often; try again")]
    Busy,
    #[error("could not store the run")]
    Store,
}

/// What one tick of the automation runner did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct AutomationTick {
    /// Runs woken (a wait ended, an answer or an HTTP call timed out).
    pub woken: usize,
    pub scheduled_sent: usize,
    pub scheduled_blocked: usize,
    pub scheduled_failed: usize,
}

/// The flows that triggers may start, compiled.
struct Compiled {
    matcher: FlowMatcher<(WorkspaceId, FlowId)>,
    flows: HashMap<FlowId, Arc<Flow>>,
    /// Some flow starts outside business hours (the inbox's hours must be read).
    needs_hours: bool,
    loaded_at: Timestamp,
}

/// A workspace's FAQ and handoff phrases, compiled.
pub struct Bot {
    pub faq: Option<Faq>,
    pub phrases: HandoffPhrases,
    loaded_at: Timestamp,
}

#[derive(Clone)]
pub struct Automation(Arc<Inner>);

pub struct Inner {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    outgoing: Outgoing,
    routing: Routing,
    http: reqwest::Client,
    /// Signs HTTP steps' requests (`Switchboard-Signature`).
    signing_key: Vec<u8>,
    node: String,
    lease_secs: u32,
    poll_ms: u64,
    compiled: RwLock<Option<Arc<Compiled>>>,
    bots: RwLock<HashMap<WorkspaceId, Arc<Bot>>>,
    /// Flow versions never change once saved.
    versions: RwLock<HashMap<(FlowId, u32), Arc<Flow>>>,
    /// Customer messages waiting for automation, sharded by conversation (one worker each, so a
    /// conversation's messages are taken in order); set once the workers run.
    queue: std::sync::OnceLock<Vec<tokio::sync::mpsc::Sender<CustomerMessage>>>,
    /// Messages queued or being handled, and who waits for none.
    pending: std::sync::atomic::AtomicUsize,
    settled: tokio::sync::Notify,
}

/// Workers taking customer messages, and how many each may have waiting (then ingest waits).
/// A conversation always goes to the same worker (its messages in order); many workers let the
/// steps of different conversations share the store's group commits instead of queueing behind
/// one another's fsyncs.
/// A step waits for a commit or two (a few ms each on a quiet disk, far more on a busy one), so
/// throughput is about `WORKERS / (2 × commit latency)`.
const WORKERS: usize = 128;
const QUEUE_PER_WORKER: usize = 128;

impl std::ops::Deref for Automation {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}

impl Automation {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
        outgoing: Outgoing,
        routing: Routing,
        http: reqwest::Client,
        signing_key: Vec<u8>,
        lease_secs: u32,
        poll_ms: u64,
    ) -> Self {
        Self(Arc::new(Inner {
            store,
            clock,
            outgoing,
            routing,
            http,
            signing_key,
            node: crate::random::new_uuid().to_string(),
            lease_secs: lease_secs.max(1),
            poll_ms,
            compiled: RwLock::new(None),
            bots: RwLock::new(HashMap::new()),
            versions: RwLock::new(HashMap::new()),
            queue: std::sync::OnceLock::new(),
            pending: std::sync::atomic::AtomicUsize::new(0),
            settled: tokio::sync::Notify::new(),
        }))
    }

    /// Starts the workers that take customer messages off the webhook's path (call once, inside
    /// the runtime).
    pub fn start_workers(&self) {
        let mut senders = Vec::with_capacity(WORKERS);
        for _ in 0..WORKERS {
            let (tx, mut rx) = tokio::sync::mpsc::channel::<CustomerMessage>(QUEUE_PER_WORKER);
            senders.push(tx);
            let me = self.clone();
            tokio::spawn(async move {
                while let Some(m) = rx.recv().await {
                    let held = me.on_customer_message(&m).await;
                    // Not taken by a flow: the conversation it created or reopened is routed.
                    if !held && m.entered_pool {
                        me.routed(m.conversation_id).await;
                    }
                    if me.pending.fetch_sub(1, std::sync::atomic::Ordering::AcqRel) == 1 {
                        me.settled.notify_waiters();
                    }
                }
            });
        }
        let _ = self.queue.set(senders);
    }

    /// Whether automation has work for this message (a flow holds the conversation, or a trigger
    /// may start one): then it goes to [`Self::enqueue`] and routing waits for its answer.
    /// In memory, but for inbox hours when a flow starts outside them.
    pub async fn wants(&self, m: &CustomerMessage) -> bool {
        if m.held_by_bot || m.answer_flow_possible {
            return true;
        }
        match self.candidates(m).await {
            Ok(c) => !c.is_empty(),
            Err(e) => {
                tracing::warn!(error = %e, "automation: matching a message failed");
                false
            }
        }
    }

    /// Hands a customer message to its conversation's worker (waiting while that one is full).
    pub async fn enqueue(&self, m: CustomerMessage) {
        let Some(queue) = self.queue.get() else {
            // No workers (a tool that runs no server): handle it here.
            let held = self.on_customer_message(&m).await;
            if !held && m.entered_pool {
                self.routed(m.conversation_id).await;
            }
            return;
        };
        let shard = (m.conversation_id.0.as_u128() % WORKERS as u128) as usize;
        self.pending
            .fetch_add(1, std::sync::atomic::Ordering::AcqRel);
        if let Err(e) = queue[shard].send(m).await {
            self.pending
                .fetch_sub(1, std::sync::atomic::Ordering::AcqRel);
            tracing::error!(conversation_id = %e.0.conversation_id, "the automation worker has stopped");
        }
    }

    /// Resolves once no customer message is queued or being handled (tests; graceful stops).
    pub async fn idle(&self) {
        loop {
            let settled = self.settled.notified();
            if self.pending.load(std::sync::atomic::Ordering::Acquire) == 0 {
                return;
            }
            settled.await;
        }
    }

    /// Flows or the FAQ changed on this node: compile again on next use.
    pub fn forget(&self) {
        if let Ok(mut c) = self.compiled.write() {
            *c = None;
        }
        if let Ok(mut b) = self.bots.write() {
            b.clear();
        }
    }

    /// The secret HTTP steps are signed with.
    pub fn signing_key(&self) -> &[u8] {
        &self.signing_key
    }

    async fn compiled(&self, now: Timestamp) -> Result<Arc<Compiled>, StoreError> {
        if let Some(c) = self.compiled.read().ok().and_then(|c| c.clone())
            && now.millis() - c.loaded_at.millis() < RELOAD_SECS * 1000
        {
            return Ok(c);
        }
        let active = self.store.active_flows().await?;
        let compiled = Arc::new(compile(&active, now));
        if let Ok(mut c) = self.compiled.write() {
            *c = Some(compiled.clone());
        }
        Ok(compiled)
    }

    /// The workspace's FAQ and handoff phrases, compiled.
    pub async fn bot(&self, ws: WorkspaceId, now: Timestamp) -> Result<Arc<Bot>, StoreError> {
        if let Some(b) = self.bots.read().ok().and_then(|b| b.get(&ws).cloned())
            && now.millis() - b.loaded_at.millis() < RELOAD_SECS * 1000
        {
            return Ok(b);
        }
        let saved = self.store.faq(ws).await?;
        let bot = Arc::new(Bot {
            faq: saved
                .as_ref()
                .filter(|s| !s.faq.entries.is_empty())
                .map(|s| Faq::compile(&s.faq)),
            phrases: match saved.and_then(|s| s.handoff_phrases) {
                Some(p) => HandoffPhrases::new(p),
                None => HandoffPhrases::default(),
            },
            loaded_at: now,
        });
        if let Ok(mut b) = self.bots.write() {
            b.insert(ws, bot.clone());
        }
        Ok(bot)
    }

    async fn version(&self, id: FlowId, version: u32) -> Result<Option<Arc<Flow>>, StoreError> {
        if let Some(f) = self
            .versions
            .read()
            .ok()
            .and_then(|v| v.get(&(id, version)).cloned())
        {
            return Ok(Some(f));
        }
        let Some(flow) = self.store.flow_version(id, version).await? else {
            return Ok(None);
        };
        let flow = Arc::new(flow);
        if let Ok(mut v) = self.versions.write() {
            v.insert((id, version), flow.clone());
        }
        Ok(Some(flow))
    }

    // ------------------------------------------------------------------ customer messages

    /// A customer message was stored. Returns true when automation holds the conversation (a
    /// running flow took the message, or a trigger started one): routing must leave it alone.
    pub async fn on_customer_message(&self, m: &CustomerMessage) -> bool {
        // The answer to a comment rule's private reply starts the rule's flow (taken once).
        if m.answer_flow_possible && !m.held_by_bot {
            match self.store.take_answer_flow(m.conversation_id).await {
                Ok(Some(flow)) => {
                    match self
                        .start(m.conversation_id, flow, None, "comment_answer", 0)
                        .await
                    {
                        Ok(()) => return true,
                        Err(e) => {
                            tracing::info!(error = %e, "the flow after a private reply did not start");
                        }
                    }
                }
                Ok(None) => {}
                Err(e) => tracing::warn!(error = %e, "automation: reading a waiting flow failed"),
            }
        }
        match self.customer_message(m).await {
            Ok(held) => held,
            Err(e) => {
                tracing::warn!(error = %e, conversation_id = %m.conversation_id, "automation on a customer message failed");
                m.held_by_bot
            }
        }
    }

    /// The flows a customer message (its text, tap or referral) may start, in order.
    async fn candidates(&self, m: &CustomerMessage) -> Result<Vec<FlowId>, StoreError> {
        let now = self.clock.now();
        let compiled = self.compiled(now).await?;
        if compiled.matcher.is_empty() {
            return Ok(Vec::new());
        }
        let tapped = flow::tapped(&m.meta);
        let hours = if compiled.needs_hours {
            self.store
                .routing_state(m.inbox_id)
                .await?
                .rules
                .business_hours
        } else {
            None
        };
        let ctx = MatchContext {
            inbox: m.inbox_id,
            business_hours: hours.as_ref(),
            now,
        };
        let mut events = Vec::with_capacity(3);
        if let Some(p) = tapped.payload {
            events.push(TriggerEvent::Payload(p));
        }
        if let Some(r) = tapped.referral {
            events.push(TriggerEvent::Referral(r));
        }
        events.push(TriggerEvent::Message {
            text: &m.text,
            first: m.entered_pool,
        });
        let mut candidates: Vec<FlowId> = Vec::new();
        for e in &events {
            for hit in compiled.matcher.matching(e, &ctx) {
                let (ws, id) = *hit.flow;
                if ws == m.workspace_id && !candidates.contains(&id) {
                    candidates.push(id);
                }
            }
        }
        Ok(candidates)
    }

    async fn customer_message(&self, m: &CustomerMessage) -> Result<bool, StoreError> {
        let tapped = flow::tapped(&m.meta);
        if m.held_by_bot {
            let feed = match tapped.payload {
                Some(p) => Feed::Payload(p.to_owned()),
                None => Feed::Message(m.text.clone()),
            };
            self.drive(m.conversation_id, feed).await?;
            return Ok(true);
        }
        let candidates = self.candidates(m).await?;
        if candidates.is_empty() {
            return Ok(false);
        }
        let now = self.clock.now();
        let compiled = self.compiled(now).await?;
        // A customer's words start a flow only where nobody holds the conversation.
        let Some(c) = self.store.conversation(m.conversation_id).await? else {
            return Ok(false);
        };
        if c.status != ConversationStatus::Pending || c.assignee_id.is_some() {
            return Ok(false);
        }
        if self.store.auto_reply_off(c.id).await? {
            return Ok(false);
        }
        for id in candidates {
            let Some(flow) = compiled.flows.get(&id) else {
                continue;
            };
            let runs = self.store.contact_runs(c.contact_id, id).await?;
            if flow::may_start(flow, runs, now).is_err() {
                continue;
            }
            match self.start(c.id, id, None, "trigger", 0).await {
                Ok(()) => {
                    // A flow that goes straight to answering questions answers this one.
                    if let Some(run) = self.store.running_run(c.id).await?
                        && matches!(run.state.waiting, flow::Waiting::Faq { .. })
                    {
                        self.drive(c.id, Feed::Message(m.text.clone())).await?;
                    }
                    return Ok(true);
                }
                Err(NotStarted::Running) => return Ok(true),
                Err(e) => {
                    tracing::warn!(error = %e, flow_id = %id, "a triggered flow did not start");
                }
            }
        }
        Ok(false)
    }

    /// Something happened to a conversation that may start a flow (resolved, tagged, a contact
    /// field changed). Starts the first matching flow the guards allow, unless a flow already
    /// runs there or its auto-reply is off. Failures are logged: the change itself stands.
    pub async fn on_event(&self, conversation: ConversationId, event: ConversationEvent<'_>) {
        if let Err(e) = self.event(conversation, event).await {
            tracing::warn!(error = %e, %conversation, "automation on a conversation event failed");
        }
    }

    async fn event(
        &self,
        conversation: ConversationId,
        event: ConversationEvent<'_>,
    ) -> Result<(), StoreError> {
        let now = self.clock.now();
        let compiled = self.compiled(now).await?;
        if compiled.matcher.is_empty() {
            return Ok(());
        }
        let Some(c) = self.store.conversation(conversation).await? else {
            return Ok(());
        };
        if c.status == ConversationStatus::Bot {
            return Ok(());
        }
        let trigger = match event {
            ConversationEvent::Resolved => TriggerEvent::Resolved,
            ConversationEvent::TagAdded(t) => TriggerEvent::TagAdded(t),
            ConversationEvent::FieldChanged(f) => TriggerEvent::FieldChanged(f),
        };
        let ctx = MatchContext {
            inbox: c.inbox_id,
            business_hours: None,
            now,
        };
        let candidates: Vec<FlowId> = compiled
            .matcher
            .matching(&trigger, &ctx)
            .into_iter()
            .filter(|m| m.flow.0 == c.workspace_id)
            .map(|m| m.flow.1)
            .collect();
        if candidates.is_empty() || self.store.auto_reply_off(c.id).await? {
            return Ok(());
        }
        for id in candidates {
            let Some(flow) = compiled.flows.get(&id) else {
                continue;
            };
            let runs = self.store.contact_runs(c.contact_id, id).await?;
            if flow::may_start(flow, runs, now).is_err() {
                continue;
            }
            match self.start(c.id, id, None, event.how(), 0).await {
                Ok(()) | Err(NotStarted::Running) => return Ok(()),
                Err(e) => {
                    tracing::warn!(error = %e, flow_id = %id, "a triggered flow did not start")
                }
            }
        }
        Ok(())
    }

    // ------------------------------------------------------------------ starting and driving

    /// Starts `flow` (its current version) in the conversation: the bot takes it, then the run
    /// goes as far as it can. `carried`: steps taken by the flow that started this one.
    pub async fn start(
        &self,
        conversation: ConversationId,
        flow: FlowId,
        by: Option<AgentId>,
        how: &str,
        carried: u32,
    ) -> Result<(), NotStarted> {
        let mut next = Some((flow, carried, how.to_owned()));
        let mut first = true;
        while let Some((flow, carried, how)) = next.take() {
            self.start_one(
                conversation,
                flow,
                if first { by } else { None },
                &how,
                carried,
            )
            .await?;
            first = false;
            next = self
                .drive(conversation, Feed::Start)
                .await
                .map_err(|_| NotStarted::Store)?
                .map(|(f, c)| (f, c, "started_by_flow".to_owned()));
        }
        Ok(())
    }

    async fn start_one(
        &self,
        conversation: ConversationId,
        flow_id: FlowId,
        by: Option<AgentId>,
        how: &str,
        carried: u32,
    ) -> Result<(), NotStarted> {
        let stored = self
            .store
            .flow(flow_id)
            .await
            .map_err(|_| NotStarted::Store)?
            .ok_or(NotStarted::NoFlow)?;
        if !startable(&stored.flow, how) {
            return Err(NotStarted::NotStartable);
        }
        for _ in 0..ATTEMPTS {
            let c = self
                .store
                .conversation(conversation)
                .await
                .map_err(|_| NotStarted::Store)?
                .ok_or(NotStarted::NoFlow)?;
            let now = self.clock.now();
            // A flow started by a flow inherits the conversation as the first one found it.
            let resume = if c.status == ConversationStatus::Bot {
                self.store
                    .conversation_runs(c.id, 1)
                    .await
                    .map_err(|_| NotStarted::Store)?
                    .first()
                    .map_or(Resume::of(&c), |r| r.resume)
            } else {
                Resume::of(&c)
            };
            let mut tr = conv::bot_takes(&c, &stored.flow.name, by, now);
            if let Some(a) = tr.actions.first_mut() {
                a.detail["how"] = serde_json::json!(how);
                a.detail["flow_id"] = serde_json::json!(flow_id);
            }
            let change = change_of(&c, tr, Vec::new(), now);
            let run = FlowRun {
                id: FlowRunId(crate::random::new_uuid()),
                workspace_id: c.workspace_id,
                flow_id,
                conversation_id: c.id,
                contact_id: c.contact_id,
                state: RunState::new(&stored.flow, now, carried),
                resume,
                revision: 0,
                started_at: now,
                ended_at: None,
            };
            match self.store.start_run(&run, change).await {
                Ok(()) => return Ok(()),
                Err(StoreError::VersionConflict) => continue,
                Err(StoreError::Conflict(_)) => return Err(NotStarted::Running),
                Err(e) => {
                    tracing::warn!(error = %e, "starting a flow run failed");
                    return Err(NotStarted::Store);
                }
            }
        }
        Err(NotStarted::Busy)
    }

    /// Feeds the conversation's running flow one input and carries out what it does. Returns the
    /// flow to start next when the run ended by starting another.
    pub async fn drive(
        &self,
        conversation: ConversationId,
        feed: Feed,
    ) -> Result<Option<(FlowId, u32)>, StoreError> {
        for _ in 0..ATTEMPTS {
            let Some(run) = self.store.running_run(conversation).await? else {
                return Ok(None);
            };
            let Some(c) = self.store.conversation(conversation).await? else {
                return Ok(None);
            };
            let now = self.clock.now();
            let flow = match self.version(run.flow_id, run.state.flow_version).await? {
                Some(f) => f,
                None => return self.abandon(&run, &c, now).await.map(|()| None),
            };
            let facts = self.facts(&c, now).await?;
            let bot = self.bot(c.workspace_id, now).await?;
            let ctx = Context {
                channel: facts.channel,
                fields: &facts.fields,
                tags: &facts.tags,
                business_hours: facts.hours.as_ref(),
                utc_offset_minutes: facts.utc_offset,
                window_open: facts.window_open,
                faq: bot.faq.as_ref(),
                handoff_phrases: &bot.phrases,
            };
            let mut random = || rand::random::<f64>();
            let (state, effects) =
                flow::step(&flow, &run.state, feed.input(), &ctx, now, &mut random);
            let (change, after) = plan(&c, &run, &flow, &effects, now);
            let save = RunSave {
                id: run.id,
                expected_revision: run.revision,
                state,
                now,
            };
            // A step that only answers (a FAQ hit, a message step) is written with its reply: one
            // commit on the way from the customer's message to the bot's answer.
            let history_only = change.as_ref().is_none_or(|ch| ch.conversation.is_none());
            if after == After::Nothing
                && history_only
                && let Some(content) = lone_send(&effects)
            {
                let rider = crate::app::send::RunRider {
                    save: save.clone(),
                    change: change.clone(),
                };
                match self
                    .send_with(c.id, facts.channel, content, Some(rider))
                    .await
                {
                    Ok(()) => return Ok(None),
                    Err(crate::app::send::StepError::StaleRun) => continue,
                    // Nothing could be written for the message: the step still moves on (a
                    // conflict here means it was saved already).
                    Err(crate::app::send::StepError::Api(_)) => {
                        return match self.store.save_run(save, change).await {
                            Ok(()) | Err(StoreError::VersionConflict) => Ok(None),
                            Err(e) => Err(e),
                        };
                    }
                }
            }
            match self.store.save_run(save, change).await {
                Ok(()) => {}
                Err(StoreError::VersionConflict) => continue,
                Err(e) => return Err(e),
            }
            return Ok(self.carry_out(&c, facts.channel, effects, after).await);
        }
        Err(StoreError::VersionConflict)
    }

    /// The run's flow version is gone (it cannot be: versions are kept): end it, hand off.
    async fn abandon(
        &self,
        run: &FlowRun,
        c: &Conversation,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        let state = run.state.ended_by(EndReason::MissingStep {
            step: String::new(),
        });
        let tr = conv::hand_off(c, "flow_missing", None, now);
        let change = change_of(c, tr, Vec::new(), now);
        self.store
            .save_run(
                RunSave {
                    id: run.id,
                    expected_revision: run.revision,
                    state,
                    now,
                },
                change,
            )
            .await?;
        self.routed(c.id).await;
        Ok(())
    }

    /// What the run reads about the conversation now.
    async fn facts(&self, c: &Conversation, now: Timestamp) -> Result<Facts, StoreError> {
        let inbox = self
            .store
            .inbox(c.inbox_id)
            .await?
            .ok_or(StoreError::NotFound)?;
        let contact = self.store.contact(c.contact_id).await?;
        let mut fields = self.store.contact_fields(c.contact_id).await?;
        if let Some(ct) = contact {
            for (k, v) in [("name", ct.name), ("phone", ct.phone), ("email", ct.email)] {
                if let Some(v) = v.filter(|v| !v.is_empty()) {
                    fields.insert(k.to_owned(), v);
                }
            }
        }
        let hours = self
            .store
            .routing_state(c.inbox_id)
            .await?
            .rules
            .business_hours;
        let utc_offset = hours
            .as_ref()
            .map_or(DEFAULT_UTC_OFFSET_MINUTES, |h| h.utc_offset_minutes);
        let window_open = automation_may_send(self.store.as_ref(), inbox.channel, c, now).await?;
        Ok(Facts {
            channel: inbox.channel,
            fields,
            tags: c.tags.iter().map(|t| t.to_lowercase()).collect(),
            hours,
            utc_offset,
            window_open,
        })
    }

    /// Carries out a saved step's effects, in order. Returns the flow to start next.
    async fn carry_out(
        &self,
        c: &Conversation,
        channel: ChannelKind,
        effects: Vec<Effect>,
        after: After,
    ) -> Option<(FlowId, u32)> {
        let mut next = None;
        let now = self.clock.now();
        for e in effects {
            match e {
                Effect::Send(content) => self.send(c.id, channel, content).await,
                Effect::SaveField { field, value } => {
                    if let Err(e) = self.save_field(c.contact_id, &field, &value, now).await {
                        tracing::warn!(error = %e, "a flow could not save a contact field");
                    }
                }
                Effect::CallHttp(call) => self.call_later(c.id, call),
                Effect::StartFlow {
                    flow,
                    carried_steps,
                } => next = Some((flow, carried_steps)),
                Effect::ScheduleFlow { flow, send_at } => {
                    let s = ScheduledFlow {
                        id: ScheduledFlowId(crate::random::new_uuid()),
                        workspace_id: c.workspace_id,
                        contact_id: c.contact_id,
                        conversation_id: c.id,
                        flow_id: flow,
                        attached_at: now,
                        attached_by: None,
                        send_at,
                        within_hours: None,
                        status: ScheduledStatus::Scheduled,
                        reason: None,
                        done_at: None,
                    };
                    if let Err(e) = self.store.attach_scheduled(&s).await {
                        tracing::warn!(error = %e, "a flow could not schedule a flow");
                    }
                }
                Effect::CancelScheduledFlow { flow } => {
                    if let Err(e) = self
                        .store
                        .cancel_scheduled_of(c.contact_id, flow, "cancelled by a flow", now)
                        .await
                    {
                        tracing::warn!(error = %e, "a flow could not cancel scheduled flows");
                    }
                }
                // Kept in the run (`wakes_at`), the history and the conversation's change.
                Effect::WakeAt(_)
                | Effect::Log(_)
                | Effect::AddTag(_)
                | Effect::RemoveTag(_)
                | Effect::Handoff { .. }
                | Effect::Resolve
                | Effect::Assign(_)
                | Effect::Ended(_) => {}
                // Only comment rules have a comment to act on (validation refuses these steps
                // elsewhere).
                Effect::Comment(_) => {}
            }
        }
        if after == After::Route {
            self.routed(c.id).await;
        }
        next
    }

    async fn routed(&self, id: ConversationId) {
        if let Err(e) = self.routing.on_entered_pool(id).await {
            tracing::warn!(error = %e, "routing a handed-off conversation failed");
        }
    }

    async fn send(&self, conversation: ConversationId, channel: ChannelKind, content: Content) {
        let _ = self.send_with(conversation, channel, content, None).await;
    }

    /// A flow's message through the send command; with `rider`, the step that sends it is saved
    /// with it. Failures other than a stale run are logged here.
    async fn send_with(
        &self,
        conversation: ConversationId,
        channel: ChannelKind,
        content: Content,
        rider: Option<crate::app::send::RunRider>,
    ) -> Result<(), crate::app::send::StepError> {
        // Buttons the channel refuses are reshaped (a list, or the numbered list): a bot has nobody
        // to shorten them.
        let content = switchboard_core::outbound::for_automation(channel, content, LIST_BUTTON);
        let req = SendRequest {
            purpose: Purpose::Flow,
            run: rider,
            ..SendRequest::new(conversation, Author::Bot, content)
        };
        match self.outgoing.send_step(req).await {
            Ok(_) => Ok(()),
            Err(crate::app::send::StepError::StaleRun) => {
                Err(crate::app::send::StepError::StaleRun)
            }
            Err(crate::app::send::StepError::Api(e)) => {
                tracing::warn!(conversation_id = %conversation, code = e.code, "a flow's message could not be written");
                Err(crate::app::send::StepError::Api(e))
            }
        }
    }

    async fn save_field(
        &self,
        contact: ContactId,
        field: &str,
        value: &str,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        if matches!(field, "name" | "phone" | "email") {
            let Some(mut c) = self.store.contact(contact).await? else {
                return Ok(());
            };
            let v = Some(value.to_owned());
            match field {
                "name" => c.name = v,
                "phone" => c.phone = v,
                _ => c.email = v,
            }
            c.updated_at = now;
            return self.store.update_contact(&c).await;
        }
        self.store
            .set_contact_field(contact, field, value, now)
            .await
    }

    /// Makes an HTTP step's call off the caller's path, then feeds the run its outcome (the run's
    /// deadline covers a node that stops meanwhile).
    fn call_later(&self, conversation: ConversationId, call: HttpCall) {
        let me = self.clone();
        tokio::spawn(async move {
            let outcome = me.call(&call).await;
            if let Err(e) = me.drive(conversation, Feed::Http(outcome)).await {
                tracing::warn!(error = %e, "feeding an HTTP step's answer failed");
            }
        });
    }

    /// One HTTP step's request, signed: `Switchboard-Signature: t=<unix seconds>,v1=<hex
    /// HMAC-SHA256(secret, t + "." + body)>`.
    pub async fn call(&self, call: &HttpCall) -> HttpOutcome {
        let method = match call.method {
            flow::model::HttpMethod::Get => reqwest::Method::GET,
            flow::model::HttpMethod::Post => reqwest::Method::POST,
            flow::model::HttpMethod::Put => reqwest::Method::PUT,
            flow::model::HttpMethod::Patch => reqwest::Method::PATCH,
            flow::model::HttpMethod::Delete => reqwest::Method::DELETE,
        };
        let body = call
            .body
            .as_ref()
            .map(|b| serde_json::to_vec(b).unwrap_or_default())
            .unwrap_or_default();
        let t = self.clock.now().millis() / 1000;
        let mut signed = format!("{t}.").into_bytes();
        signed.extend_from_slice(&body);
        let signature = switchboard_channels::signing::hmac_sha256_hex(&self.signing_key, &signed);
        let mut req = self
            .http
            .request(method, &call.url)
            .timeout(Duration::from_millis(
                u64::try_from(call.timeout_ms.max(1)).unwrap_or(10_000),
            ))
            .header("switchboard-signature", format!("t={t},v1={signature}"))
            .header("user-agent", "Switchboard-Flow/1");
        for (k, v) in &call.headers {
            req = req.header(k.as_str(), v.as_str());
        }
        if call.body.is_some() {
            req = req.header("content-type", "application/json").body(body);
        }
        match req.send().await {
            Ok(mut resp) => {
                let status = resp.status().as_u16();
                let mut buf = Vec::new();
                loop {
                    match resp.chunk().await {
                        Ok(Some(chunk)) if buf.len() + chunk.len() <= HTTP_BODY_MAX => {
                            buf.extend_from_slice(&chunk);
                        }
                        Ok(Some(_)) => {
                            return HttpOutcome::Failed {
                                reason: "the answer is larger than 1 MiB".into(),
                            };
                        }
                        Ok(None) => break,
                        Err(e) => {
                            return HttpOutcome::Failed {
                                reason: format!("reading the answer failed: {}", short(&e)),
                            };
                        }
                    }
                }
                HttpOutcome::Response {
                    status,
                    body: serde_json::from_slice(&buf).ok(),
                }
            }
            Err(e) => HttpOutcome::Failed {
                reason: if e.is_timeout() {
                    "no answer in time".into()
                } else {
                    format!("no answer: {}", short(&e))
                },
            },
        }
    }

    // ------------------------------------------------------------------ agents

    /// An agent takes the conversation from the bot: the flow stops (one transaction with the
    /// conversation's change).
    pub async fn take_over(
        &self,
        conversation: ConversationId,
        actor: conv::Actor,
    ) -> Result<Transition, TakeOverError> {
        for _ in 0..ATTEMPTS {
            let c = self
                .store
                .conversation(conversation)
                .await?
                .ok_or(StoreError::NotFound)?;
            let now = self.clock.now();
            let tr = conv::take_over(&c, actor, now)?;
            let Some(run) = self.store.running_run(conversation).await? else {
                let change =
                    change_of(&c, tr.clone(), Vec::new(), now).ok_or(StoreError::NotFound)?;
                match self.store.apply(change).await {
                    Ok(_) => return Ok(tr),
                    Err(StoreError::VersionConflict) => continue,
                    Err(e) => return Err(e.into()),
                }
            };
            let state = run.state.ended_by(EndReason::TakenOver);
            let ended = conv::Action {
                kind: ActionKind::FlowEnded,
                actor: Some(actor.agent_id),
                detail: serde_json::json!({"reason": "taken_over", "flow_id": run.flow_id}),
            };
            let change = change_of(&c, tr.clone(), vec![ended], now);
            let save = RunSave {
                id: run.id,
                expected_revision: run.revision,
                state,
                now,
            };
            match self.store.save_run(save, change).await {
                Ok(()) => return Ok(tr),
                Err(StoreError::VersionConflict) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(StoreError::VersionConflict.into())
    }

    /// The auto-reply switch: off stops a running flow and hands the conversation to humans.
    pub async fn switch_auto_reply(
        &self,
        conversation: ConversationId,
        on: bool,
        by: AgentId,
    ) -> Result<bool, StoreError> {
        let now = self.clock.now();
        let changed = self
            .store
            .set_auto_reply(conversation, on, Some(by), now)
            .await?;
        if changed {
            let c = self
                .store
                .conversation(conversation)
                .await?
                .ok_or(StoreError::NotFound)?;
            let note = conv::Action {
                kind: ActionKind::AutoReplySwitched,
                actor: Some(by),
                detail: serde_json::json!({"on": on}),
            };
            self.log(&c, vec![note], now).await?;
        }
        if !on {
            self.stop(conversation, "auto_reply_off").await?;
        }
        Ok(changed)
    }

    /// Ends the conversation's running flow (if any) and hands the conversation to humans.
    async fn stop(&self, conversation: ConversationId, reason: &str) -> Result<(), StoreError> {
        for _ in 0..ATTEMPTS {
            let Some(run) = self.store.running_run(conversation).await? else {
                return Ok(());
            };
            let c = self
                .store
                .conversation(conversation)
                .await?
                .ok_or(StoreError::NotFound)?;
            let now = self.clock.now();
            let state = run.state.ended_by(EndReason::Stopped);
            let tr = conv::hand_off(&c, reason, None, now);
            let handed = tr.changed;
            let change = change_of(&c, tr, Vec::new(), now);
            let save = RunSave {
                id: run.id,
                expected_revision: run.revision,
                state,
                now,
            };
            match self.store.save_run(save, change).await {
                Ok(()) => {
                    if handed {
                        self.routed(conversation).await;
                    }
                    return Ok(());
                }
                Err(StoreError::VersionConflict) => continue,
                Err(e) => return Err(e),
            }
        }
        Err(StoreError::VersionConflict)
    }

    /// Writes history lines only (no state change), deciding again on a concurrent change.
    async fn log(
        &self,
        c: &Conversation,
        actions: Vec<conv::Action>,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        let mut current = c.clone();
        for _ in 0..ATTEMPTS {
            let change = Change {
                expected_version: current.version,
                conversation_id: current.id,
                workspace_id: current.workspace_id,
                actions: actions.clone(),
                conversation: None,
                message: None,
                events: vec![history_changed(&current)],
                now,
            };
            match self.store.apply(change).await {
                Ok(_) => return Ok(()),
                Err(StoreError::VersionConflict) => {
                    current = self
                        .store
                        .conversation(c.id)
                        .await?
                        .ok_or(StoreError::NotFound)?;
                }
                Err(e) => return Err(e),
            }
        }
        Err(StoreError::VersionConflict)
    }

    // ------------------------------------------------------------------ the runner

    /// One tick at `now`: wake runs whose time came, fire due scheduled flows.
    pub async fn run_due(&self, now: Timestamp) -> Result<AutomationTick, StoreError> {
        let mut tick = AutomationTick::default();
        let lease = now.plus_secs(i64::from(self.lease_secs));
        loop {
            let due = self
                .store
                .claim_due_runs(now, lease, &self.node, CLAIM_BATCH)
                .await?;
            for run in &due {
                match self.drive(run.conversation_id, Feed::Timer).await {
                    Ok(next) => {
                        tick.woken += 1;
                        if let Some((flow, carried)) = next
                            && let Err(e) = self
                                .start(run.conversation_id, flow, None, "started_by_flow", carried)
                                .await
                        {
                            tracing::warn!(error = %e, "a flow's next flow did not start");
                        }
                    }
                    Err(e) => tracing::warn!(error = %e, "waking a flow run failed"),
                }
            }
            if due.len() < CLAIM_BATCH as usize {
                break;
            }
        }
        loop {
            let due = self
                .store
                .claim_due_scheduled(now, lease, &self.node, CLAIM_BATCH)
                .await?;
            for s in &due {
                match self.fire_scheduled(s, now).await {
                    Ok(ScheduledStatus::Sent) => tick.scheduled_sent += 1,
                    Ok(ScheduledStatus::BlockedByWindow) => tick.scheduled_blocked += 1,
                    Ok(ScheduledStatus::Failed) => tick.scheduled_failed += 1,
                    Ok(_) => {}
                    Err(e) => tracing::warn!(error = %e, "a scheduled flow failed"),
                }
            }
            if due.len() < CLAIM_BATCH as usize {
                break;
            }
        }
        Ok(tick)
    }

    /// A scheduled flow came due: the policy decides again now; a refusal is `blocked_by_window`
    /// with the reason and nothing reaches the provider.
    async fn fire_scheduled(
        &self,
        s: &ScheduledFlow,
        now: Timestamp,
    ) -> Result<ScheduledStatus, StoreError> {
        let Some(c) = self.store.conversation(s.conversation_id).await? else {
            return self
                .finish(s, ScheduledStatus::Failed, Some("conversation_gone"), now)
                .await;
        };
        let inbox = self
            .store
            .inbox(c.inbox_id)
            .await?
            .ok_or(StoreError::NotFound)?;
        let facts = window_facts(self.store.as_ref(), inbox.channel, &c).await?;
        let decision = bot_decision(inbox.channel, facts, now);
        if let Decision::Refused { reason, .. } = &decision {
            let code = refusal_code(*reason);
            let status = self
                .finish(s, ScheduledStatus::BlockedByWindow, Some(code), now)
                .await?;
            if status == ScheduledStatus::BlockedByWindow {
                let line = conv::Action {
                    kind: ActionKind::FlowStep,
                    actor: None,
                    detail: serde_json::json!({"event": "scheduled.blocked_by_window", "flow_id": s.flow_id, "scheduled_id": s.id, "reason": code}),
                };
                self.log(&c, vec![line], now).await?;
            }
            return Ok(status);
        }
        // Exactly one node wins the row; only the winner starts the flow.
        if self.finish(s, ScheduledStatus::Sent, None, now).await? != ScheduledStatus::Sent {
            return Ok(ScheduledStatus::Cancelled);
        }
        match self.start(c.id, s.flow_id, None, "scheduled", 0).await {
            Ok(()) => Ok(ScheduledStatus::Sent),
            // Another flow holds the conversation: try again in a minute.
            Err(NotStarted::Running | NotStarted::Busy) => {
                self.store
                    .finish_scheduled(
                        s.id,
                        ScheduledStatus::Sent,
                        ScheduledStatus::Scheduled,
                        Some("waiting for another flow"),
                        now,
                    )
                    .await?;
                self.store
                    .reschedule(s.id, now.plus_secs(RETRY_SECS))
                    .await?;
                Ok(ScheduledStatus::Scheduled)
            }
            Err(e) => {
                let code = match e {
                    NotStarted::NoFlow => "flow_deleted",
                    NotStarted::NotStartable => "not_schedulable",
                    NotStarted::Running | NotStarted::Busy | NotStarted::Store => "not_started",
                };
                self.store
                    .finish_scheduled(
                        s.id,
                        ScheduledStatus::Sent,
                        ScheduledStatus::Failed,
                        Some(code),
                        now,
                    )
                    .await?;
                Ok(ScheduledStatus::Failed)
            }
        }
    }

    async fn finish(
        &self,
        s: &ScheduledFlow,
        to: ScheduledStatus,
        reason: Option<&str>,
        now: Timestamp,
    ) -> Result<ScheduledStatus, StoreError> {
        let won = self
            .store
            .finish_scheduled(s.id, ScheduledStatus::Scheduled, to, reason, now)
            .await?;
        Ok(if won { to } else { ScheduledStatus::Cancelled })
    }

    pub fn node(&self) -> &str {
        &self.node
    }

    pub fn poll_ms(&self) -> u64 {
        self.poll_ms
    }
}

/// Why an agent could not take over.
#[derive(Debug, thiserror::Error)]
pub enum TakeOverError {
    #[error(transparent)]
    Conversation(#[from] ConversationError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The facts a run reads.
struct Facts {
    channel: ChannelKind,
    fields: BTreeMap<String, String>,
    tags: BTreeSet<String>,
    hours: Option<business_hours::BusinessHours>,
    utc_offset: i32,
    window_open: bool,
}

/// What follows a saved step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum After {
    Nothing,
    /// The conversation went to the pool: route it.
    Route,
}

/// What a step's effects do to the conversation (tags, handoff, resolve, the end of the run) and
/// its history, as one change; and whether the conversation must be routed afterwards.
fn plan(
    c: &Conversation,
    run: &FlowRun,
    flow: &Flow,
    effects: &[Effect],
    now: Timestamp,
) -> (Option<Change>, After) {
    let mut current = c.clone();
    let mut actions: Vec<conv::Action> = Vec::new();
    let mut changed = false;
    let mut after = After::Nothing;
    let mut apply =
        |tr: Transition, current: &mut Conversation, actions: &mut Vec<conv::Action>| {
            if tr.changed {
                changed = true;
                actions.extend(tr.actions);
                *current = tr.conversation;
            }
        };
    let flow_ref = serde_json::json!({"flow_id": run.flow_id, "flow": flow.name});
    for e in effects {
        match e {
            Effect::AddTag(t) => {
                apply(conv::bot_tag(&current, t, true), &mut current, &mut actions)
            }
            Effect::RemoveTag(t) => apply(
                conv::bot_tag(&current, t, false),
                &mut current,
                &mut actions,
            ),
            Effect::Handoff { reason, note } => {
                let why = serde_json::to_value(reason)
                    .ok()
                    .and_then(|v| v["reason"].as_str().map(str::to_owned))
                    .unwrap_or_else(|| "step".into());
                let tr = conv::hand_off(&current, &why, note.as_deref(), now);
                if tr.changed {
                    after = After::Route;
                }
                apply(tr, &mut current, &mut actions);
            }
            Effect::Resolve => apply(
                conv::bot_resolves(&current, now),
                &mut current,
                &mut actions,
            ),
            Effect::Assign(agent) => apply(
                conv::automation_assigns(&current, *agent, "flow"),
                &mut current,
                &mut actions,
            ),
            Effect::Log(l) => {
                let mut detail = serde_json::to_value(l).unwrap_or_default();
                merge(&mut detail, &flow_ref);
                actions.push(conv::Action {
                    kind: ActionKind::FlowStep,
                    actor: None,
                    detail,
                });
            }
            Effect::Ended(reason) => {
                let why = end_reason(reason);
                // Ends that leave the bot holding it give the conversation back.
                if current.status == ConversationStatus::Bot
                    && !matches!(reason, EndReason::StartedFlow | EndReason::TakenOver)
                {
                    let tr = conv::bot_ends(&current, run.resume, &why, now);
                    if tr.conversation.status == ConversationStatus::Pending {
                        after = After::Route;
                    }
                    apply(tr, &mut current, &mut actions);
                    if let Some(a) = actions.last_mut() {
                        merge(&mut a.detail, &flow_ref);
                    }
                } else {
                    let mut detail = serde_json::json!({"reason": why});
                    merge(&mut detail, &flow_ref);
                    actions.push(conv::Action {
                        kind: ActionKind::FlowEnded,
                        actor: None,
                        detail,
                    });
                }
            }
            _ => {}
        }
    }
    if actions.is_empty() {
        return (None, after);
    }
    let mut events: Vec<EventDraft> = Vec::new();
    let conversation = if changed {
        current.version = c.version + 1;
        let tr = Transition {
            conversation: current.clone(),
            actions: actions.clone(),
            changed: true,
        };
        events.extend(event::for_transition(Some(c), &tr));
        Some(current)
    } else {
        events.push(history_changed(c));
        None
    };
    (
        Some(Change {
            expected_version: c.version,
            conversation_id: c.id,
            workspace_id: c.workspace_id,
            actions,
            conversation,
            message: None,
            events,
            now,
        }),
        after,
    )
}

/// The one message a step sends when sending is all it does outside its run and history (its
/// other effects are history lines and its next wake-up).
fn lone_send(effects: &[Effect]) -> Option<Content> {
    let mut sent = None;
    for e in effects {
        match e {
            Effect::Send(c) if sent.is_none() => sent = Some(c.clone()),
            Effect::Log(_) | Effect::WakeAt(_) => {}
            _ => return None,
        }
    }
    sent
}

fn merge(into: &mut serde_json::Value, from: &serde_json::Value) {
    if let (Some(a), Some(b)) = (into.as_object_mut(), from.as_object()) {
        for (k, v) in b {
            a.entry(k.clone()).or_insert_with(|| v.clone());
        }
    }
}

fn end_reason(r: &EndReason) -> String {
    serde_json::to_value(r)
        .ok()
        .and_then(|v| v["reason"].as_str().map(str::to_owned))
        .unwrap_or_else(|| "ended".into())
}

/// A transition (plus extra history lines) as a change; `None` when nothing changed.
fn change_of(
    c: &Conversation,
    tr: Transition,
    extra: Vec<conv::Action>,
    now: Timestamp,
) -> Option<Change> {
    if !tr.changed && extra.is_empty() {
        return None;
    }
    let events = if tr.changed {
        event::for_transition(Some(c), &tr).into_iter().collect()
    } else {
        vec![history_changed(c)]
    };
    let mut actions = tr.actions;
    actions.extend(extra);
    Some(Change {
        expected_version: c.version,
        conversation_id: c.id,
        workspace_id: c.workspace_id,
        actions,
        conversation: tr.changed.then_some(tr.conversation),
        message: None,
        events,
        now,
    })
}

/// Tells clients the conversation's history has new lines.
fn history_changed(c: &Conversation) -> EventDraft {
    EventDraft {
        inbox_id: Some(c.inbox_id),
        conversation_id: Some(c.id),
        kind: event::EventKind::ConversationUpdated,
        payload: serde_json::json!({
            "conversation": event::conversation_json(c),
            "reason": "automation",
        }),
    }
}

/// The messaging-window policy's answer for a bot's free-form message at `at` (automation:
/// never `HUMAN_AGENT`).
pub fn bot_decision(channel: ChannelKind, facts: policy::Facts, at: Timestamp) -> Decision {
    policy::decide(
        &policy::rules_for(channel),
        facts,
        at,
        Sender::Automation,
        policy::Content::Reply,
        Requested::default(),
    )
}

/// Whether automation may send a free-form message in the conversation at `at` (with what the
/// store knows now).
pub async fn automation_may_send(
    store: &dyn Store,
    channel: ChannelKind,
    c: &Conversation,
    at: Timestamp,
) -> Result<bool, StoreError> {
    let facts = window_facts(store, channel, c).await?;
    Ok(matches!(
        bot_decision(channel, facts, at),
        Decision::Allowed { .. }
    ))
}

/// The stable code of a policy refusal, as stored with a blocked scheduled flow.
pub fn refusal_code(r: policy::RefusalReason) -> &'static str {
    use policy::RefusalReason as R;
    match r {
        R::TemplateRequired => "template_required",
        R::TagNotAvailable | R::TagRetired | R::TagNotApplicable => "tag_not_allowed",
        R::HumanAgentOnly | R::NoCustomerMessage | R::WindowClosed => "window_closed",
    }
}

/// Whether `flow` may be started this way: by an agent, another flow or a schedule only if it has
/// that trigger; triggers matched by the matcher already say so.
pub fn startable(flow: &Flow, how: &str) -> bool {
    use flow::Trigger as T;
    flow.triggers.iter().any(|t| match how {
        "agent" => matches!(t, T::AgentStart {}),
        "started_by_flow" => matches!(t, T::StartedByFlow {}),
        "scheduled" => matches!(t, T::ScheduledDue {}),
        _ => true,
    })
}

fn compile(active: &[StoredFlow], now: Timestamp) -> Compiled {
    let matcher = FlowMatcher::compile(active.iter().map(|s| ((s.workspace_id, s.id), &s.flow)));
    let needs_hours = active.iter().any(|s| {
        s.flow
            .triggers
            .iter()
            .any(|t| matches!(t, flow::Trigger::OutsideBusinessHours {}))
    });
    Compiled {
        matcher,
        flows: active
            .iter()
            .map(|s| (s.id, Arc::new(s.flow.clone())))
            .collect(),
        needs_hours,
        loaded_at: now,
    }
}

fn short(e: &reqwest::Error) -> String {
    let s = e.to_string();
    s.chars().take(200).collect()
}

/// Runs [`Automation::run_due`] every `poll_ms` until aborted; `None` when turned off.
pub fn spawn_runner(automation: Automation, clock: Arc<dyn Clock>) -> Option<JoinHandle<()>> {
    let every = automation.poll_ms;
    crate::timers::spawn_every(every, "automation tick failed", move || {
        let (automation, clock) = (automation.clone(), clock.clone());
        async move { automation.run_due(clock.now()).await.map(|_| ()) }
    })
}
