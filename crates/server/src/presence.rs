//! Who is here right now. An agent is online while at least one of their sockets is open and
//! active, away by choice or after `idle_away_minutes` without client activity, offline otherwise
//! (the rule itself is `switchboard_core::presence::status`). Kept in this node's memory: after a
//! restart everyone is offline until their app reconnects, which it does on its own.
//!
//! Every method returns the agent's new status when it changed, so the caller can publish it and
//! let routing react (drain the backlog when someone comes online, schedule releases when they go).

use std::collections::HashMap;
use std::sync::Mutex;
use switchboard_core::presence::{self, PresenceStatus};
use switchboard_core::{AgentId, Timestamp};

#[derive(Debug, Clone, Copy)]
struct Entry {
    sockets: usize,
    away_by_choice: bool,
    last_activity: Timestamp,
    /// The status last reported, to tell when it changes.
    shown: PresenceStatus,
}

pub struct Presence {
    idle_after_minutes: Option<u32>,
    agents: Mutex<HashMap<AgentId, Entry>>,
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
            agents: Mutex::new(HashMap::new()),
        }
    }

    fn compute(&self, e: &Entry, now: Timestamp) -> PresenceStatus {
        presence::status(
            e.sockets > 0,
            e.away_by_choice,
            e.last_activity,
            self.idle_after_minutes,
            now,
        )
    }

    fn update(
        &self,
        agent: AgentId,
        now: Timestamp,
        create: bool,
        f: impl FnOnce(&mut Entry),
    ) -> Option<PresenceStatus> {
        let mut m = self.agents.lock().ok()?;
        if !create && !m.contains_key(&agent) {
            return None;
        }
        let e = m.entry(agent).or_insert(Entry {
            sockets: 0,
            away_by_choice: false,
            last_activity: now,
            shown: PresenceStatus::Offline,
        });
        f(e);
        let new = self.compute(e, now);
        let changed = new != e.shown;
        e.shown = new;
        if e.sockets == 0 && !e.away_by_choice {
            m.remove(&agent);
        }
        changed.then_some(new)
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
            if !away {
                e.last_activity = now;
            }
        })
    }

    pub fn status(&self, agent: AgentId, now: Timestamp) -> PresenceStatus {
        self.agents
            .lock()
            .ok()
            .and_then(|m| m.get(&agent).map(|e| self.compute(e, now)))
            .unwrap_or(PresenceStatus::Offline)
    }

    /// At least one socket is open (whatever the status).
    pub fn is_online(&self, agent: AgentId) -> bool {
        self.agents
            .lock()
            .map(|m| m.get(&agent).is_some_and(|e| e.sockets > 0))
            .unwrap_or(false)
    }

    /// Statuses that changed with time alone (agents gone idle), to publish.
    pub fn sweep(&self, now: Timestamp) -> Vec<(AgentId, PresenceStatus)> {
        let Ok(mut m) = self.agents.lock() else {
            return Vec::new();
        };
        let mut changed = Vec::new();
        for (agent, e) in m.iter_mut() {
            let new = self.compute(e, now);
            if new != e.shown {
                e.shown = new;
                changed.push((*agent, new));
            }
        }
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
}
