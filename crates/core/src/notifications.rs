//! What each agent wants to be told of, kept with the agent (not in one browser): the sound in
//! the app, and which kinds of new work notify — in the app, in the browser and by Web Push.

use serde::{Deserialize, Serialize};

/// The kinds of new work an agent can be notified of.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Kinds {
    /// A conversation assigned to you (by routing or by a colleague).
    pub assigned: bool,
    /// A conversation a colleague handed over to you.
    pub transferred: bool,
    /// A new customer waiting in the pool of one of your inboxes.
    pub waiting: bool,
    /// A customer answering a conversation you hold.
    pub answered: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NotificationPrefs {
    pub sound: bool,
    pub kinds: Kinds,
}

impl Default for NotificationPrefs {
    /// Everything on: new work must not be missed until the agent says otherwise.
    fn default() -> Self {
        Self {
            sound: true,
            kinds: Kinds {
                assigned: true,
                transferred: true,
                waiting: true,
                answered: true,
            },
        }
    }
}

impl NotificationPrefs {
    /// Whether this kind of new work (`assigned`, `transferred`, `waiting`, `answered`) notifies.
    pub fn wants(&self, kind: &str) -> bool {
        match kind {
            "assigned" => self.kinds.assigned,
            "transferred" => self.kinds.transferred,
            "waiting" => self.kinds.waiting,
            "answered" => self.kinds.answered,
            _ => false,
        }
    }

    /// Stored preferences; anything unreadable is the default (a preference is never worth an
    /// error on the way to a notification).
    pub fn from_stored(s: Option<&str>) -> Self {
        s.and_then(|s| serde_json::from_str(s).ok())
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_kind_is_its_own_choice_and_unreadable_ones_fall_back_to_everything_on() {
        let mut p = NotificationPrefs::default();
        p.kinds.assigned = false;
        assert!(!p.wants("assigned"));
        assert!(p.wants("transferred") && p.wants("waiting") && p.wants("answered"));
        assert!(!p.wants("something else"));
        let stored = serde_json::to_string(&p).unwrap_or_default();
        assert_eq!(NotificationPrefs::from_stored(Some(&stored)), p);
        assert_eq!(
            NotificationPrefs::from_stored(Some("{\"sound\":1}")),
            NotificationPrefs::default()
        );
        assert_eq!(
            NotificationPrefs::from_stored(None),
            NotificationPrefs::default()
        );
        assert!(
            serde_json::from_str::<NotificationPrefs>(
                r#"{"sound":true,"kinds":{"assigned":true,"transferred":true,"waiting":true,"answered":true,"x":true}}"#
            )
            .is_err(),
            "unknown keys are refused"
        );
    }
}
