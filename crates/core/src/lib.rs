//! Switchboard's domain, pure and synchronous.
//!
//! Everything here is a value or a function of values: no I/O, no async, no clock. Functions that
//! depend on time take `now: Timestamp`; functions that create things take the new ids as
//! arguments. The server loads state, asks the core for a decision, and persists the decision.

pub mod activity;
pub mod billing;
pub mod business_hours;
pub mod contact;
pub mod conversation;
pub mod event;
pub mod flow;
pub mod ids;
pub mod inbound_media;
pub mod ingest;
pub mod media;
pub mod media_limits;
pub mod model;
pub mod notifications;
pub mod outbound;
pub mod policy;
pub mod presence;
pub mod retry;
pub mod routing;
pub mod text;
pub mod time;
pub mod timers;
pub mod validate;

pub use conversation::{Action, ActionKind, ConversationError, Transition};
pub use ids::*;
pub use model::*;
pub use time::Timestamp;
