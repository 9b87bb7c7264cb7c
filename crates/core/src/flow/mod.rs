//! Automation flows, pure: the flow model and its JSON ([`model`], validated by [`check`]),
//! which flows an event starts ([`matching`]), running a flow as a state machine ([`engine`]),
//! FAQ answers and handoff phrases ([`faq`]), reading answers ([`answer`]) and variables in
//! texts ([`template`]). The store keeps flows and runs; the server calls these and carries out
//! the effects (docs/flows.md).

pub mod answer;
pub mod check;
pub mod comments;
pub mod engine;
pub mod faq;
pub mod matching;
pub mod model;
pub mod template;

pub use check::{FlowError, ImportError};
pub use engine::{
    CommentEffect, Context, Effect, EndReason, FlowLog, HandoffReason, HttpCall, HttpOutcome,
    Input, RunState, Waiting, step,
};
pub use faq::{Faq, FaqEntry, FaqList, HandoffPhrases};
pub use matching::{
    ContactRuns, FlowMatcher, MatchContext, Matched, NotStarted, Tapped, TriggerEvent, may_start,
    tapped,
};
pub use model::{Action, CommentCondition, Flow, Guards, Step, Trigger};

#[cfg(test)]
mod tests;
