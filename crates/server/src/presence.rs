//! Who is connected right now: an agent is online while at least one of their sockets is open.

use std::collections::HashMap;
use std::sync::Mutex;
use switchboard_core::AgentId;

#[derive(Default)]
pub struct Presence {
    sockets: Mutex<HashMap<AgentId, usize>>,
}

impl Presence {
    /// Counts a new socket; true if the agent just came online.
    pub fn connect(&self, agent: AgentId) -> bool {
        let Ok(mut m) = self.sockets.lock() else {
            return false;
        };
        let n = m.entry(agent).or_insert(0);
        *n += 1;
        *n == 1
    }

    /// Forgets a socket; true if the agent just went offline.
    pub fn disconnect(&self, agent: AgentId) -> bool {
        let Ok(mut m) = self.sockets.lock() else {
            return false;
        };
        match m.get_mut(&agent) {
            Some(n) if *n > 1 => {
                *n -= 1;
                false
            }
            Some(_) => {
                m.remove(&agent);
                true
            }
            None => false,
        }
    }

    pub fn is_online(&self, agent: AgentId) -> bool {
        self.sockets
            .lock()
            .map(|m| m.contains_key(&agent))
            .unwrap_or(false)
    }
}
