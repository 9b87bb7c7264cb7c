//! Customer actions that are not messages but still count for the messaging window (a reaction,
//! channels.md §1.6). They move `last_customer_message_at` forward and nothing else: a reaction
//! does not reopen a resolved conversation or put it back in the pool.

use crate::conversation::Transition;
use crate::model::Conversation;
use crate::time::Timestamp;

/// The customer acted at `at` (provider time, clamped to `now`). Unchanged when it is not newer.
pub fn customer_action(c: &Conversation, at: Timestamp, now: Timestamp) -> Transition {
    let at = at.clamp_to(now);
    if c.last_customer_message_at.is_some_and(|t| t >= at) {
        return Transition {
            conversation: c.clone(),
            actions: Vec::new(),
            changed: false,
        };
    }
    let mut n = c.clone();
    n.last_customer_message_at = Some(at);
    n.version += 1;
    Transition {
        conversation: n,
        actions: Vec::new(),
        changed: true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::*;
    use crate::model::ConversationStatus;
    use uuid::Uuid;

    #[test]
    fn moves_only_forward_and_never_reopens() {
        let mut c = Conversation::new_from_customer(
            ConversationId(Uuid::from_u128(1)),
            WorkspaceId(Uuid::from_u128(2)),
            InboxId(Uuid::from_u128(3)),
            ContactId(Uuid::from_u128(4)),
            Timestamp(0),
        );
        c.status = ConversationStatus::Resolved;
        c.last_customer_message_at = Some(Timestamp(100));
        let t = customer_action(&c, Timestamp(50), Timestamp(1_000));
        assert!(!t.changed);
        let t = customer_action(&c, Timestamp(5_000), Timestamp(1_000));
        assert!(t.changed);
        assert_eq!(
            t.conversation.last_customer_message_at,
            Some(Timestamp(1_000))
        );
        assert_eq!(t.conversation.status, ConversationStatus::Resolved);
        assert_eq!(t.conversation.version, c.version + 1);
    }
}
