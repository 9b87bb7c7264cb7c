//! The timer runner. One per node: it leases due timers from the store, re-checks each against the
//! conversation as it is now (`switchboard_core::timers::on_fire`), and applies the effect in the
//! same transaction that deletes the timer — so a timer fires at most once, even with several
//! runners or after a crash, and a timer that no longer applies is dropped without effect.
//!
//! [`Routing::run_due_timers`] is the whole tick and takes `now`: tests advance a manual clock and
//! call it directly; in production [`spawn_runner`] calls it every `timer_poll_ms`.

use crate::app::send::{Purpose, window_facts};
use crate::clock::Clock;
use crate::routing::{Routing, send_automatic};
use std::sync::Arc;
use std::time::Duration;
use switchboard_core::conversation::{Action, ActionKind};
use switchboard_core::event;
use switchboard_core::event::{EventDraft, EventKind};
use switchboard_core::policy;
use switchboard_core::routing::{self, PickInput};
use switchboard_core::timers::{self, FireFacts, Timer, TimerEffect};
use switchboard_core::*;
use switchboard_store::{Change, PointerMove, RoutingChange, RoutingOutcome, StoreError};
use tokio::task::JoinHandle;

/// Timers leased per round.
const CLAIM_BATCH: u32 = 100;
const ATTEMPTS: usize = 5;

/// What one tick did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct TickReport {
    /// Timers whose effect was applied.
    pub fired: usize,
    /// Timers that no longer applied and were deleted.
    pub dropped: usize,
    /// Timers fired elsewhere or rescheduled before this runner got to them.
    pub superseded: usize,
    /// Conversations the backlog sweep assigned.
    pub assigned: usize,
}

enum Fired {
    Applied,
    Dropped,
    Superseded,
    Skipped,
}

impl Routing {
    /// One tick at `now`: fire due timers, report agents gone idle, drain backlogs.
    pub async fn run_due_timers(&self, now: Timestamp) -> Result<TickReport, StoreError> {
        let mut report = TickReport::default();
        let lease_until = now.plus_secs(i64::from(self.config.timer_lease_secs.max(1)));
        loop {
            let due = self
                .store
                .claim_due_timers(now, lease_until, &self.node, CLAIM_BATCH)
                .await?;
            for t in &due {
                match self.fire(t, now).await {
                    Ok(Fired::Applied) => report.fired += 1,
                    Ok(Fired::Dropped) => report.dropped += 1,
                    Ok(Fired::Superseded) => report.superseded += 1,
                    Ok(Fired::Skipped) => {}
                    // The lease runs out and a later tick retries it.
                    Err(e) => tracing::warn!(error = %e, kind = %t.kind, "timer failed"),
                }
            }
            if due.len() < CLAIM_BATCH as usize {
                break;
            }
        }
        for (agent, status) in self.presence.sweep(now) {
            self.presence_changed(agent, status).await;
        }
        for inbox in self.store.inboxes_with_backlog().await? {
            report.assigned += self.drain_inbox(inbox, now).await?;
        }
        Ok(report)
    }

    async fn fire(&self, t: &Timer, now: Timestamp) -> Result<Fired, StoreError> {
        let mut closing = None;
        for _ in 0..ATTEMPTS {
            let Some(c) = self.store.conversation(t.conversation_id).await? else {
                self.store.discard_timer(t.id, t.generation).await?;
                return Ok(Fired::Dropped);
            };
            let state = self.store.routing_state(c.inbox_id).await?;
            let rules = &state.rules;
            let holder_online = t.agent_id.is_some_and(|a| {
                self.presence.status(a, now) == switchboard_core::presence::PresenceStatus::Online
            });
            // Whether anyone could answer the customer now: the channel's window, by the policy.
            let channel = self
                .store
                .inbox(c.inbox_id)
                .await?
                .ok_or(StoreError::NotFound)?
                .channel;
            let facts = FireFacts {
                holder_online,
                channel: policy::rules_for(channel),
                window: window_facts(self.store.as_ref(), channel, &c).await?,
            };
            let rc = match timers::on_fire(t, &c, rules, &facts, now) {
                TimerEffect::NotDue => return Ok(Fired::Skipped),
                TimerEffect::Drop => {
                    self.store.discard_timer(t.id, t.generation).await?;
                    return Ok(Fired::Dropped);
                }
                TimerEffect::Lapse => lapse(&c, t, now),
                TimerEffect::TakeBack { from, trigger } => {
                    // Round-robin / least-busy: the next eligible agent — never the one who missed
                    // it, nor the one who transferred it away.
                    let (candidates, pick) = if rules.strategy.assigns() {
                        let candidates = self
                            .candidates(c.inbox_id, c.workspace_id, rules, now)
                            .await?;
                        let exclude = routing::never_back_to(&c, Some(from));
                        let input = PickInput {
                            candidates: &candidates,
                            pointer: state.pointer,
                            previous: None,
                            exclude: &exclude,
                        };
                        let pick = routing::pick_agent(rules, input, now);
                        (candidates, pick)
                    } else {
                        (Vec::new(), None)
                    };
                    let Ok(tr) = routing::take_back(&c, pick.map(|p| p.agent_id), trigger, now)
                    else {
                        self.store.discard_timer(t.id, t.generation).await?;
                        return Ok(Fired::Dropped);
                    };
                    let events = event::for_routing(&c, &tr, trigger.as_str());
                    RoutingChange {
                        change: change(&c, tr, None, events, now),
                        pointer: pick.filter(|p| p.moves_pointer).map(|p| PointerMove {
                            inbox_id: c.inbox_id,
                            expected_version: state.pointer_version,
                            agent_id: p.agent_id,
                        }),
                        capacity: pick.and_then(|p| {
                            candidates
                                .iter()
                                .find(|x| x.agent_id == p.agent_id)
                                .and_then(|x| x.capacity)
                                .map(|cap| (p.agent_id, cap))
                        }),
                        timer: Some((t.id, t.generation)),
                    }
                }
                TimerEffect::Resolve {
                    reason,
                    closing_message,
                } => {
                    let Ok(tr) = routing::auto_resolve(&c, reason, now) else {
                        self.store.discard_timer(t.id, t.generation).await?;
                        return Ok(Fired::Dropped);
                    };
                    closing = closing_message;
                    let events = event::for_routing(&c, &tr, reason.as_str());
                    RoutingChange {
                        change: change(&c, tr, None, events, now),
                        pointer: None,
                        capacity: None,
                        timer: Some((t.id, t.generation)),
                    }
                }
            };
            let freed = c.assignee_id;
            match self.store.apply_routing(rc).await {
                Ok(RoutingOutcome::Applied(_)) => {
                    // Resolved: the closing message goes out through the policy like any message.
                    if let Some(text) = closing.take() {
                        send_automatic(&self.outgoing, c.id, &text, Purpose::ClosingMessage).await;
                    }
                    // The holder has room again: their backlog may move (not this conversation —
                    // the pool remembers who just lost it).
                    if let Some(agent) = freed {
                        self.agent_freed(agent).await;
                    }
                    return Ok(Fired::Applied);
                }
                Ok(RoutingOutcome::TimerGone) => return Ok(Fired::Superseded),
                Err(StoreError::VersionConflict) => continue,
                Err(e) => return Err(e),
            }
        }
        Err(StoreError::VersionConflict)
    }
}

/// The reply deadline lapsed (nobody could message the customer): the timer goes, the holder
/// stays, and the history says why.
fn lapse(c: &Conversation, t: &Timer, now: Timestamp) -> RoutingChange {
    let actions = vec![Action {
        kind: ActionKind::ReplyDeadlineLapsed,
        actor: None,
        detail: serde_json::json!({"agent_id": t.agent_id, "reason": "customer_unreachable"}),
    }];
    // The list drops the row's deadline: tell the clients the conversation changed.
    let events = vec![EventDraft {
        inbox_id: Some(c.inbox_id),
        conversation_id: Some(c.id),
        kind: EventKind::ConversationUpdated,
        payload: serde_json::json!({
            "conversation": event::conversation_json(c),
            "reason": "reply_deadline_lapsed",
        }),
    }];
    RoutingChange {
        change: Change {
            expected_version: c.version,
            conversation_id: c.id,
            workspace_id: c.workspace_id,
            actions,
            conversation: None,
            message: None,
            events,
            now,
        },
        pointer: None,
        capacity: None,
        timer: Some((t.id, t.generation)),
    }
}

fn change(
    c: &Conversation,
    tr: conversation::Transition,
    message: Option<Message>,
    events: Vec<event::EventDraft>,
    now: Timestamp,
) -> Change {
    Change {
        expected_version: c.version,
        conversation_id: c.id,
        workspace_id: c.workspace_id,
        actions: tr.actions,
        conversation: Some(tr.conversation),
        message,
        events,
        now,
    }
}

/// Runs [`Routing::run_due_timers`] every `timer_poll_ms` until aborted; `None` when turned off.
pub fn spawn_runner(routing: Routing, clock: Arc<dyn Clock>) -> Option<JoinHandle<()>> {
    let every = routing.config.timer_poll_ms;
    spawn_every(every, "timer tick failed", move || {
        let (routing, clock) = (routing.clone(), clock.clone());
        async move { routing.run_due_timers(clock.now()).await.map(|_| ()) }
    })
}

/// Runs `tick` every `every_ms` milliseconds until aborted (a tick that overruns delays the
/// next); a failure is logged with `what`. `None` when `every_ms` is 0 (tests tick by hand).
pub fn spawn_every<F, Fut>(every_ms: u64, what: &'static str, tick: F) -> Option<JoinHandle<()>>
where
    F: Fn() -> Fut + Send + 'static,
    Fut: std::future::Future<Output = Result<(), StoreError>> + Send,
{
    if every_ms == 0 {
        return None;
    }
    Some(tokio::spawn(async move {
        let mut interval = tokio::time::interval(Duration::from_millis(every_ms));
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            interval.tick().await;
            if let Err(e) = tick().await {
                tracing::warn!(error = %e, "{what}");
            }
        }
    }))
}
