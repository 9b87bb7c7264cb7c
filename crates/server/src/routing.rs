//! Routing in the service: gathers the facts (rules, members, presence, open counts, the rotation
//! pointer), asks `switchboard_core::routing` who gets the conversation, and applies the decision
//! with compare-and-set (conversation version, rotation pointer, the agent's capacity), deciding
//! again on fresh state when someone else changed something first.
//!
//! Routing runs when a conversation enters the pool (new or reopened by the customer), when an
//! agent frees up (resolves, comes online), when a timer takes a conversation back, and on every
//! tick of the timer runner for inboxes with a backlog (which also catches business hours opening).

use crate::app::send::{Outgoing, Purpose, SendRequest};
use crate::bus::Bus;
use crate::clock::Clock;
use crate::config::RoutingConfig;
use crate::presence::Presence;
use std::collections::HashMap;
use std::sync::Arc;
use switchboard_core::event::{self, EventKind};
use switchboard_core::presence::PresenceStatus;
use switchboard_core::routing::{self, Candidate, Pick, PickInput, RoutingRules, Trigger};
use switchboard_core::*;
use switchboard_store::{Change, PointerMove, RoutingChange, RoutingState, Store, StoreError};

/// How many times a decision is retried on fresh state before giving up (the runner's next tick,
/// or the next trigger, tries again).
const ATTEMPTS: usize = 5;
/// Waiting conversations one drain pass looks at.
const DRAIN_BATCH: u32 = 100;

#[derive(Clone)]
pub struct Routing(Arc<Inner>);

pub struct Inner {
    pub store: Arc<dyn Store>,
    pub clock: Arc<dyn Clock>,
    pub bus: Bus,
    pub presence: Arc<Presence>,
    pub config: RoutingConfig,
    /// Automatic messages (out-of-hours reply, closing message) go out through the one `send`.
    pub outgoing: Outgoing,
    /// This node's name on timer leases.
    pub node: String,
}

impl std::ops::Deref for Routing {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}

/// Sends an automatic message (as Switchboard) through the one `send` command: checked by the
/// policy like any other sender; a refusal is stored, failed, with its reason.
pub async fn send_automatic(outgoing: &Outgoing, c: ConversationId, text: &str, purpose: Purpose) {
    let req = SendRequest {
        purpose,
        ..SendRequest::new(
            c,
            switchboard_core::outbound::Author::Automation,
            switchboard_core::outbound::Content::Text(text.to_owned()),
        )
    };
    if let Err(e) = outgoing.send(req).await {
        tracing::warn!(conversation_id = %c, code = e.code, "an automatic message could not be written");
    }
}

/// A decision ready to apply: the change plus the pick it came from.
fn assignment_change(
    c: &Conversation,
    state: &RoutingState,
    candidates: &[Candidate],
    pick: Pick,
    trigger: Trigger,
    now: Timestamp,
) -> Result<RoutingChange, ConversationError> {
    let tr = routing::auto_assign(c, pick, trigger, now)?;
    let events = event::for_routing(c, &tr, pick.reason.as_str());
    Ok(RoutingChange {
        change: Change {
            expected_version: c.version,
            conversation_id: c.id,
            workspace_id: c.workspace_id,
            actions: tr.actions,
            conversation: Some(tr.conversation),
            message: None,
            events,
            now,
        },
        pointer: pick.moves_pointer.then_some(PointerMove {
            inbox_id: c.inbox_id,
            expected_version: state.pointer_version,
            agent_id: pick.agent_id,
        }),
        capacity: capacity_of(candidates, pick.agent_id),
        timer: None,
    })
}

fn capacity_of(candidates: &[Candidate], agent: AgentId) -> Option<(AgentId, u32)> {
    candidates
        .iter()
        .find(|c| c.agent_id == agent)
        .and_then(|c| c.capacity)
        .map(|cap| (agent, cap))
}

impl Routing {
    pub fn new(
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
        bus: Bus,
        presence: Arc<Presence>,
        config: RoutingConfig,
        outgoing: Outgoing,
    ) -> Self {
        Self(Arc::new(Inner {
            store,
            clock,
            bus,
            presence,
            config,
            outgoing,
            node: uuid::Uuid::now_v7().to_string(),
        }))
    }

    /// The agents routing may consider for `inbox`: the rules' list (or every member), still
    /// members, with presence, open counts and capacity (their own, else the inbox default).
    pub async fn candidates(
        &self,
        inbox: InboxId,
        workspace: WorkspaceId,
        rules: &RoutingRules,
        now: Timestamp,
    ) -> Result<Vec<Candidate>, StoreError> {
        let members = self.store.inbox_members(inbox).await?;
        let ids: Vec<AgentId> = if rules.agent_ids.is_empty() {
            members
        } else {
            rules
                .agent_ids
                .iter()
                .copied()
                .filter(|a| members.contains(a))
                .collect()
        };
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let agents: HashMap<AgentId, Agent> = self
            .store
            .list_agents(workspace)
            .await?
            .into_iter()
            .map(|a| (a.id, a))
            .collect();
        let open = self.store.open_counts(&ids).await?;
        Ok(ids
            .iter()
            .filter_map(|id| agents.get(id))
            .map(|a| Candidate {
                agent_id: a.id,
                active: a.active,
                presence: self.presence.status(a.id, now),
                open: open.get(&a.id).copied().unwrap_or(0),
                capacity: a.capacity.or(rules.default_capacity),
            })
            .collect())
    }

    /// A conversation just entered the pool (created, or reopened by the customer): route it per the
    /// inbox's rules (sticky first), and outside business hours send the automatic reply.
    pub async fn on_entered_pool(&self, id: ConversationId) -> Result<(), StoreError> {
        let mut auto_reply = None;
        for _ in 0..ATTEMPTS {
            let Some(c) = self.store.conversation(id).await? else {
                return Ok(());
            };
            if c.status != ConversationStatus::Pending || c.assignee_id.is_some() {
                break; // someone was quicker
            }
            let now = self.clock.now();
            let state = self.store.routing_state(c.inbox_id).await?;
            let rules = &state.rules;
            auto_reply = rules.outside_hours_reply(now).map(str::to_owned);
            let candidates = self
                .candidates(c.inbox_id, c.workspace_id, rules, now)
                .await?;
            let input = PickInput {
                candidates: &candidates,
                pointer: state.pointer,
                previous: c.last_assignee_id,
                exclude: &[],
            };
            let Some(pick) = routing::pick_agent(rules, input, now) else {
                break;
            };
            let Ok(rc) = assignment_change(&c, &state, &candidates, pick, Trigger::Arrival, now)
            else {
                break;
            };
            match self.store.apply_routing(rc).await {
                Ok(_) => break,
                Err(StoreError::VersionConflict) => continue,
                Err(e) => return Err(e),
            }
        }
        // After the routing decision: the reply goes through the policy like any message.
        if let Some(text) = auto_reply {
            send_automatic(&self.outgoing, id, &text, Purpose::OutsideBusinessHours).await;
        }
        Ok(())
    }

    /// Assigns the inbox's waiting conversations, longest waiting first, while someone eligible has
    /// room (round-robin and least-busy inboxes only; self-claim pools wait for a claim). Returns
    /// how many were assigned.
    pub async fn drain_inbox(&self, inbox: InboxId, now: Timestamp) -> Result<usize, StoreError> {
        let mut assigned = 0;
        'fresh: for _ in 0..ATTEMPTS {
            let mut state = self.store.routing_state(inbox).await?;
            if !state.rules.strategy.assigns() || state.rules.routing_paused(now) {
                return Ok(assigned);
            }
            let waiting = self.store.waiting(inbox, DRAIN_BATCH).await?;
            let Some(first) = waiting.first() else {
                return Ok(assigned);
            };
            let mut candidates = self
                .candidates(inbox, first.conversation.workspace_id, &state.rules, now)
                .await?;
            for w in &waiting {
                // Never straight back to who lost it, nor to who transferred it away.
                let exclude = routing::never_back_to(&w.conversation, w.excluded_agent_id);
                let input = PickInput {
                    candidates: &candidates,
                    pointer: state.pointer,
                    previous: w.conversation.last_assignee_id,
                    exclude: &exclude,
                };
                let Some(pick) = routing::pick_agent(&state.rules, input, now) else {
                    if exclude.is_empty() {
                        return Ok(assigned); // nobody has room for anyone
                    }
                    continue; // only the excluded agent had room: try the next conversation
                };
                let Ok(rc) = assignment_change(
                    &w.conversation,
                    &state,
                    &candidates,
                    pick,
                    Trigger::Backlog,
                    now,
                ) else {
                    continue;
                };
                match self.store.apply_routing(rc).await {
                    Ok(_) => {
                        assigned += 1;
                        if pick.moves_pointer {
                            state.pointer = Some(pick.agent_id);
                            state.pointer_version += 1;
                        }
                        if let Some(c) = candidates.iter_mut().find(|c| c.agent_id == pick.agent_id)
                        {
                            c.open += 1;
                        }
                    }
                    // Someone claimed, resolved or routed meanwhile: start over on fresh state.
                    Err(StoreError::VersionConflict) => continue 'fresh,
                    Err(e) => return Err(e),
                }
            }
            if waiting.len() < DRAIN_BATCH as usize {
                return Ok(assigned);
            }
        }
        Ok(assigned)
    }

    /// An agent has room again (resolved, came online): drain the backlog of their inboxes.
    pub async fn drain_for_agent(&self, agent: AgentId) -> Result<usize, StoreError> {
        let now = self.clock.now();
        let mut n = 0;
        for inbox in self.store.agent_inboxes(agent).await? {
            n += self.drain_inbox(inbox, now).await?;
        }
        Ok(n)
    }

    /// Like [`Self::drain_for_agent`], for callers that answer a request: a failure is logged, not
    /// returned (the runner's backlog sweep retries).
    pub async fn agent_freed(&self, agent: AgentId) {
        if let Err(e) = self.drain_for_agent(agent).await {
            tracing::warn!(error = %e, "backlog drain failed");
        }
    }

    // ------------------------------------------------------------------ presence

    /// Lets routing react to a presence change, then publishes it: online → cancel pending
    /// releases and drain the backlog; offline → schedule releases where the inbox asks for them.
    /// (Publishing last means a client that sees the event sees the consequences too.)
    pub async fn presence_changed(&self, agent: AgentId, status: PresenceStatus) {
        let now = self.clock.now();
        let result = match status {
            PresenceStatus::Online => match self.store.cancel_offline_release(agent).await {
                Ok(()) => self.drain_for_agent(agent).await.map(|_| ()),
                Err(e) => Err(e),
            },
            PresenceStatus::Offline => self
                .store
                .schedule_offline_release(agent, now)
                .await
                .map(|_| ()),
            PresenceStatus::Away => Ok(()),
        };
        if let Err(e) = result {
            tracing::warn!(error = %e, %status, "presence change: routing follow-up failed");
        }
        self.bus.publish_ephemeral(
            EventKind::Presence,
            None,
            None,
            None,
            serde_json::json!({"agent_id": agent, "status": status}),
        );
    }

    /// Tells the other nodes (if any) what this node now holds for `agent`.
    fn announce(&self, agent: AgentId) {
        if let Some(link) = self.bus.cluster() {
            link.presence(agent, self.presence.local_entry(agent));
        }
    }

    pub async fn agent_connected(&self, agent: AgentId) {
        let changed = self.presence.connect(agent, self.clock.now());
        self.announce(agent);
        if let Some(s) = changed {
            self.presence_changed(agent, s).await;
        }
    }

    pub async fn agent_disconnected(&self, agent: AgentId) {
        let changed = self.presence.disconnect(agent, self.clock.now());
        self.announce(agent);
        if let Some(s) = changed {
            self.presence_changed(agent, s).await;
        }
    }

    pub async fn agent_active(&self, agent: AgentId) {
        // Activity alone travels with the periodic announcement; a status change goes at once.
        if let Some(s) = self.presence.activity(agent, self.clock.now()) {
            self.announce(agent);
            self.presence_changed(agent, s).await;
        }
    }

    /// The agent chose `away` or `online`. Returns their status now.
    pub async fn set_away(&self, agent: AgentId, away: bool) -> PresenceStatus {
        let now = self.clock.now();
        let changed = self.presence.set_away(agent, away, now);
        self.announce(agent);
        if let Some(s) = changed {
            self.presence_changed(agent, s).await;
        }
        self.presence.status(agent, now)
    }
}
