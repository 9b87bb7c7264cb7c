//! Inboxes by provider account, remembered: every webhook names its account (a Page id, a WhatsApp
//! phone number id...) and looking it up was a query per entry on the hot path. Only the SQLite
//! store uses it — it is the one process writing its database, so invalidating on its own writes is
//! complete; PostgreSQL nodes share a database another node may change, so they always ask it.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use switchboard_core::{ChannelKind, Inbox};

/// Past this many remembered accounts (unknown ids included) the cache starts over, so a flood of
/// made-up account ids cannot grow it without bound.
const MAX_ENTRIES: usize = 4096;

type Entries = HashMap<(ChannelKind, String), Option<Inbox>>;

#[derive(Default)]
pub(crate) struct AccountCache {
    /// A generation, bumped by every inbox write, and the entries read since.
    inner: Mutex<(u64, Entries)>,
}

impl AccountCache {
    /// The remembered answer, or the generation to pass to [`AccountCache::put`] after asking the
    /// database.
    pub fn get(&self, channel: ChannelKind, account: &str) -> Result<Option<Inbox>, u64> {
        let g = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        match g.1.get(&(channel, account.to_owned())) {
            Some(hit) => Ok(hit.clone()),
            None => Err(g.0),
        }
    }

    /// Remembers an answer read at `generation`, unless an inbox was written since (the answer
    /// may be stale then).
    pub fn put(&self, generation: u64, channel: ChannelKind, account: &str, inbox: Option<Inbox>) {
        let mut g = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        if g.0 != generation {
            return;
        }
        if g.1.len() >= MAX_ENTRIES {
            g.1.clear();
        }
        g.1.insert((channel, account.to_owned()), inbox);
    }

    /// Forgets everything: call after any write to an inbox.
    pub fn forget(&self) {
        let mut g = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        g.0 += 1;
        g.1.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_answer_read_before_a_write_is_not_remembered_after_it() {
        let c = AccountCache::default();
        let Err(generation) = c.get(ChannelKind::Messenger, "p1") else {
            panic!("empty cache hit");
        };
        c.forget(); // an inbox changed while the database was being asked
        c.put(generation, ChannelKind::Messenger, "p1", None);
        assert!(
            c.get(ChannelKind::Messenger, "p1").is_err(),
            "stale answer kept"
        );
        let Err(generation) = c.get(ChannelKind::Messenger, "p1") else {
            panic!("hit");
        };
        c.put(generation, ChannelKind::Messenger, "p1", None);
        assert_eq!(c.get(ChannelKind::Messenger, "p1"), Ok(None));
        assert!(c.get(ChannelKind::Instagram, "p1").is_err(), "per channel");
    }

    #[test]
    fn made_up_accounts_cannot_grow_it_without_bound() {
        let c = AccountCache::default();
        for i in 0..(MAX_ENTRIES * 3) {
            c.put(0, ChannelKind::Whatsapp, &i.to_string(), None);
        }
        let g = c.inner.lock().unwrap_or_else(PoisonError::into_inner);
        assert!(g.1.len() <= MAX_ENTRIES);
    }
}
