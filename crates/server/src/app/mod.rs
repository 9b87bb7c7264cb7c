//! Commands: one function per state change, called by the routes, the widget, the timers and
//! the routing alike (and, next, by bots, flows and integrations). A route extracts, authorises,
//! calls a command and responds; what the command decides is the same whoever asked.

pub mod agents;
pub mod auth;
pub mod comment_rules;
pub mod comments;
pub mod contacts;
pub mod conversation;
pub mod conversation_list;
pub mod flow_tools;
pub mod flows;
pub mod inbound_media;
pub mod inbox;
pub mod library;
pub mod media;
pub mod push;
pub mod quick_replies;
pub mod reports;
pub mod send;
pub mod transitions;
pub mod usage;
pub mod webhook;
pub mod widget;

pub use conversation::{publish_agent_typing, visible};

/// Supervisors and admins change what the whole team uses (flows, rules, quick replies, the
/// library); `what` names it in the refusal.
pub fn require_supervisor(
    me: &crate::auth::CurrentAgent,
    what: &str,
) -> crate::error::ApiResult<()> {
    if me.agent.role.supervises() {
        Ok(())
    } else {
        Err(crate::error::ApiError::forbidden(&format!(
            "only a supervisor or admin may change {what}"
        )))
    }
}
