//! Who is here right now. An agent is online while at least one of their sockets is open and
//! active, away by choice or after `idle_away_minutes` without client activity, offline otherwise
//! (the rule itself is `switchboard_core::presence::status`).
//!
//! Each node keeps its own agents' entries (sockets, the away choice, last activity) in memory.
//! With several nodes, each also keeps the entries the others announce over the bus (see
//! `cluster.rs`): an agent's status is computed from all of them — sockets add up, the latest
//! away/online choice wins, the latest activity counts. A node that stops announcing itself is
//! forgotten after a while, so the agents it served go offline. After a restart everyone is offline
//! until their app reconnects, which it does on its own.
//!
//! Every method returns the agent's new status when it changed, so the caller can publish it and
//! let routing react (drain the backlog when someone comes online, schedule releases when they go).

use serde::{Deserialize, Serialize};
use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use switchboard_core::presence::{self, PresenceStatus};
use switchboard_core::{AgentId, Timestamp};

/// One node's view of one agent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    pub sockets: usize,
    pub away_by_choice: bool,
    /// When the agent last chose away/online on this node (the latest choice on any node wins).
    pub choice_at: Timestamp,
    pub last_activity: Timestamp,
}

#[derive(Default)]
struct Remote {
    agents: HashMap<AgentId, Entry>,
}

#[derive(Default)]
struct State {
    local: HashMap<AgentId, Entry>,
    /// Other nodes' entries, by node id.
    remote: HashMap<String, Remote>,
    /// The status last reported per agent, to tell when it changes.
    shown: HashMap<AgentId, PresenceStatus>,
}

pub struct Presence {
    idle_after_minutes: Option<u32>,
    state: Mutex<State>,
}

impl Default for Presence {
    fn default() -> Self {
        Self::new(None)
    }
}

impl Presence {
    pub fn new(idle_after_minutes: Option<u32>) -> Self {
        Self {
            idle_after_minutes,
            state: Mutex::new(State::default()),
        }
    }

    /// The agent's status from every node's entry.
    fn compute(&self, s: &State, agent: AgentId, now: Timestamp) -> PresenceStatus {
        let entries = s
            .local
            .get(&agent)
            .into_iter()
            .chain(s.remote.values().filter_map(|r| r.agents.get(&agent)));
        let mut sockets = 0;
        let mut choice: Option<(Timestamp, bool)> = None;
        let mut last_activity: Option<Timestamp> = None;
        for e in entries {
            sockets += e.sockets;
            if choice.is_none_or(|(at, _)| e.choice_at > at) {
                choice = Some((e.choice_at, e.away_by_choice));
            }
            last_activity = Some(last_activity.map_or(e.last_activity, |t| t.max(e.last_activity)));
        }
        let Some(last_activity) = last_activity else {
            return PresenceStatus::Offline;
        };
        presence::status(
            sockets > 0,
            choice.is_some_and(|(_, away)| away),
            last_activity,
            self.idle_after_minutes,
            now,
        )
    }

    /// Recomputes `agent` and records the new status; `Some` when it changed.
    fn refresh(&self, s: &mut State, agent: AgentId, now: Timestamp) -> Option<PresenceStatus> {
        let new = self.compute(s, agent, now);
        let old = s
            .shown
            .get(&agent)
            .copied()
            .unwrap_or(PresenceStatus::Offline);
        if new == PresenceStatus::Offline {
            s.shown.remove(&agent);
        } else {
            s.shown.insert(agent, new);
        }
        (new != old).then_some(new)
    }

    fn update(
        &self,
        agent: AgentId,
        now: Timestamp,
        create: bool,
        f: impl FnOnce(&mut Entry),
    ) -> Option<PresenceStatus> {
        let mut s = self.state.lock().ok()?;
        if !create && !s.local.contains_key(&agent) {
            return None;
        }
        let e = s.local.entry(agent).or_insert(Entry {
            sockets: 0,
            away_by_choice: false,
            choice_at: Timestamp(0),
            last_activity: now,
        });
        f(e);
        // Kept while it says something: a socket, or a choice (which must outvote older ones
        // made on other nodes).
        if e.sockets == 0 && !e.away_by_choice && e.choice_at == Timestamp(0) {
            s.local.remove(&agent);
        }
        self.refresh(&mut s, agent, now)
    }

    /// A socket opened: counts as activity.
    pub fn connect(&self, agent: AgentId, now: Timestamp) -> Option<PresenceStatus> {
        self.update(agent, now, true, |e| {
            e.sockets += 1;
            e.last_activity = now;
        })
    }

    /// A socket closed.
    pub fn disconnect(&self, agent: AgentId, now: Timestamp) -> Option<PresenceStatus> {
        self.update(agent, now, false, |e| {
            e.sockets = e.sockets.saturating_sub(1)
        })
    }

    /// The agent's app showed activity (any frame it sends).
    pub fn activity(&self, agent: AgentId, now: Timestamp) -> Option<PresenceStatus> {
        self.update(agent, now, false, |e| e.last_activity = now)
    }

    /// The agent chose `away` (true) or `online` (false); choosing online counts as activity.
    pub fn set_away(&self, agent: AgentId, away: bool, now: Timestamp) -> Option<PresenceStatus> {
        self.update(agent, now, true, |e| {
            e.away_by_choice = away;
            e.choice_at = now;
            if !away {
                e.last_activity = now;
            }
        })
    }

    pub fn status(&self, agent: AgentId, now: Timestamp) -> PresenceStatus {
        self.state
            .lock()
            .map(|s| self.compute(&s, agent, now))
            .unwrap_or(PresenceStatus::Offline)
    }

    /// At least one socket is open on any node (whatever the status).
    pub fn is_online(&self, agent: AgentId) -> bool {
        self.state
            .lock()
            .map(|s| {
                s.local.get(&agent).is_some_and(|e| e.sockets > 0)
                    || s.remote
                        .values()
                        .any(|r| r.agents.get(&agent).is_some_and(|e| e.sockets > 0))
            })
            .unwrap_or(false)
    }

    /// Statuses that changed with time alone (agents gone idle), to publish.
    pub fn sweep(&self, now: Timestamp) -> Vec<(AgentId, PresenceStatus)> {
        let Ok(mut s) = self.state.lock() else {
            return Vec::new();
        };
        let agents: Vec<AgentId> = s.shown.keys().copied().collect();
        let mut changed: Vec<_> = agents
            .into_iter()
            .filter_map(|a| self.refresh(&mut s, a, now).map(|st| (a, st)))
            .collect();
        changed.sort_by_key(|(a, _)| *a);
        changed
    }

    // ------------------------------------------------------------------ other nodes

    /// This node's entry for `agent` (`None` = nothing here), to announce to the others.
    pub fn local_entry(&self, agent: AgentId) -> Option<Entry> {
        self.state
            .lock()
            .ok()
            .and_then(|s| s.local.get(&agent).copied())
    }

    /// Everything this node holds, for its periodic announcement.
    pub fn local_snapshot(&self) -> Vec<(AgentId, Entry)> {
        let mut v: Vec<_> = self
            .state
            .lock()
            .map(|s| s.local.iter().map(|(a, e)| (*a, *e)).collect())
            .unwrap_or_default();
        v.sort_by_key(|(a, _)| *a);
        v
    }

    /// Another node announced its entry for one agent (`None`: it holds nothing for them now).
    pub fn remote_entry(
        &self,
        node: &str,
        agent: AgentId,
        entry: Option<Entry>,
        now: Timestamp,
    ) -> Option<PresenceStatus> {
        let mut s = self.state.lock().ok()?;
        let r = s.remote.entry(node.to_owned()).or_default();
        match entry {
            Some(e) => r.agents.insert(agent, e),
            None => r.agents.remove(&agent),
        };
        self.refresh(&mut s, agent, now)
    }

    /// Another node announced everything it holds; replaces what we knew of it.
    pub fn remote_snapshot(
        &self,
        node: &str,
        entries: Vec<(AgentId, Entry)>,
        now: Timestamp,
    ) -> Vec<(AgentId, PresenceStatus)> {
        let Ok(mut s) = self.state.lock() else {
            return Vec::new();
        };
        let fresh: HashMap<AgentId, Entry> = entries.into_iter().collect();
        let mut touched: HashSet<AgentId> = fresh.keys().copied().collect();
        if let Some(old) = s.remote.insert(node.to_owned(), Remote { agents: fresh }) {
            touched.extend(old.agents.keys().copied());
        }
        let mut changed: Vec<_> = touched
            .into_iter()
            .filter_map(|a| self.refresh(&mut s, a, now).map(|st| (a, st)))
            .collect();
        changed.sort_by_key(|(a, _)| *a);
        changed
    }

    /// Forgets a node that stopped announcing itself (stopped, killed or cut off): its agents'
    /// statuses are recomputed without it.
    pub fn forget_node(&self, node: &str, now: Timestamp) -> Vec<(AgentId, PresenceStatus)> {
        let Ok(mut s) = self.state.lock() else {
            return Vec::new();
        };
        let Some(r) = s.remote.remove(node) else {
            return Vec::new();
        };
        let mut changed: Vec<_> = r
            .agents
            .into_keys()
            .filter_map(|a| self.refresh(&mut s, a, now).map(|st| (a, st)))
            .collect();
        changed.sort_by_key(|(a, _)| *a);
        changed
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use PresenceStatus::*;

    #[test]
    fn transitions_are_reported_once() {
        let p = Presence::new(Some(10));
        let a = AgentId(uuid::Uuid::from_u128(1));
        let t0 = Timestamp(1_000_000);
        assert_eq!(p.status(a, t0), Offline);
        assert_eq!(p.connect(a, t0), Some(Online));
        assert_eq!(p.connect(a, t0), None, "a second tab changes nothing");
        assert_eq!(p.sweep(t0.plus_minutes(9)), vec![]);
        assert_eq!(p.sweep(t0.plus_minutes(10)), vec![(a, Away)], "idle");
        assert_eq!(p.sweep(t0.plus_minutes(11)), vec![], "reported once");
        assert_eq!(p.activity(a, t0.plus_minutes(12)), Some(Online));
        assert_eq!(p.set_away(a, true, t0.plus_minutes(13)), Some(Away));
        assert_eq!(
            p.activity(a, t0.plus_minutes(14)),
            None,
            "away by choice stays away"
        );
        assert_eq!(p.set_away(a, false, t0.plus_minutes(15)), Some(Online));
        assert_eq!(
            p.disconnect(a, t0.plus_minutes(16)),
            None,
            "one tab still open"
        );
        assert_eq!(p.disconnect(a, t0.plus_minutes(16)), Some(Offline));
        assert!(!p.is_online(a));
        assert_eq!(
            p.activity(a, t0.plus_minutes(17)),
            None,
            "no socket, no presence"
        );
        assert_eq!(p.status(a, t0.plus_minutes(17)), Offline);
    }

    #[test]
    fn other_nodes_count_and_can_be_forgotten() {
        let p = Presence::new(Some(10));
        let a = AgentId(uuid::Uuid::from_u128(1));
        let t0 = Timestamp(1_000_000);
        let there = Entry {
            sockets: 1,
            away_by_choice: false,
            choice_at: Timestamp(0),
            last_activity: t0,
        };
        assert_eq!(
            p.remote_entry("b", a, Some(there), t0),
            Some(Online),
            "a socket on node b"
        );
        assert!(p.is_online(a));
        assert_eq!(p.connect(a, t0), None, "and one here: still online");
        assert_eq!(p.disconnect(a, t0), None, "b still holds one");
        // The agent chose away on node b later than anything here: away everywhere.
        let away = Entry {
            away_by_choice: true,
            choice_at: t0.plus_minutes(1),
            ..there
        };
        assert_eq!(
            p.remote_snapshot("b", vec![(a, away)], t0.plus_minutes(1)),
            vec![(a, Away)]
        );
        // Choosing online here, later, wins over b's older choice.
        assert_eq!(p.set_away(a, false, t0.plus_minutes(2)), Some(Online));
        assert_eq!(p.local_entry(a).map(|e| e.sockets), Some(0));
        // Node b goes silent: forgotten, and with it the agent's only socket.
        assert_eq!(
            p.forget_node("b", t0.plus_minutes(3)),
            vec![(a, Offline)],
            "b went silent: forgotten, and with it the agent's only socket"
        );
    }
}
