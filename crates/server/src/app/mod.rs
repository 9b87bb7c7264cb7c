//! Commands: one function per state change, called by the routes, the widget, the timers and
//! the routing alike (and, next, by bots, flows and integrations). A route extracts, authorises,
//! calls a command and responds; what the command decides is the same whoever asked.

pub mod comments;
pub mod conversation;
pub mod inbox;
pub mod media;
pub mod send;

pub use conversation::publish_agent_typing;

use crate::auth::CurrentAgent;
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;
use switchboard_core::{Conversation, ConversationId};

/// A conversation the agent may see, or 404 (whether it exists or not).
pub async fn visible(
    st: &AppState,
    me: &CurrentAgent,
    id: ConversationId,
) -> ApiResult<Conversation> {
    st.store
        .conversation(id)
        .await?
        .filter(|c| st.access.can_see(&me.agent, c.inbox_id))
        .ok_or_else(|| ApiError::not_found("conversation"))
}
