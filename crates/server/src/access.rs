//! Who may see which inbox. Loaded from the store, refreshed whenever memberships change; checked
//! on every conversation read and write and on every pushed event.

use std::collections::{HashMap, HashSet};
use std::sync::RwLock;
use switchboard_core::{Agent, AgentId, InboxId};
use switchboard_store::{Store, StoreError};

#[derive(Default)]
pub struct Access {
    members: RwLock<HashMap<AgentId, HashSet<InboxId>>>,
}

impl Access {
    pub async fn reload(&self, store: &dyn Store) -> Result<(), StoreError> {
        let mut map: HashMap<AgentId, HashSet<InboxId>> = HashMap::new();
        for (agent, inbox) in store.memberships().await? {
            map.entry(agent).or_default().insert(inbox);
        }
        if let Ok(mut m) = self.members.write() {
            *m = map;
        }
        Ok(())
    }

    pub fn can_see(&self, agent: &Agent, inbox: InboxId) -> bool {
        agent.role.sees_all_inboxes()
            || self
                .members
                .read()
                .map(|m| m.get(&agent.id).is_some_and(|s| s.contains(&inbox)))
                .unwrap_or(false)
    }

    /// The inboxes an agent may see; `None` means all (admins).
    pub fn visible(&self, agent: &Agent) -> Option<Vec<InboxId>> {
        if agent.role.sees_all_inboxes() {
            return None;
        }
        let mut v: Vec<InboxId> = self
            .members
            .read()
            .map(|m| {
                m.get(&agent.id)
                    .map(|s| s.iter().copied().collect())
                    .unwrap_or_default()
            })
            .unwrap_or_default();
        v.sort();
        Some(v)
    }
}
