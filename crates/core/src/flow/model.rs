//! A flow as it is written, stored, imported and exported: a named, versioned graph of steps with
//! the triggers that start it, scoped to inboxes. JSON with unknown fields refused; [`Flow::import`]
//! parses and validates, naming the step and field of every problem.

use crate::ids::{AgentId, FlowId, InboxId};
use crate::model::ChannelKind;
use crate::outbound::MediaKind;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// A flow, one version of it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Flow {
    pub name: String,
    /// Bumped by the store on every saved change; a run keeps the version it started with.
    pub version: u32,
    /// The inboxes it runs in; empty: every inbox of the workspace.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub inboxes: Vec<InboxId>,
    pub triggers: Vec<Trigger>,
    /// The step a run begins with.
    pub start: String,
    pub steps: Vec<Step>,
    #[serde(default)]
    pub guards: Guards,
}

/// What starts a flow.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Trigger {
    /// The first customer message of a new conversation.
    NewConversation {},
    /// A customer message matching one of the keywords.
    Keyword {
        #[serde(rename = "match")]
        mode: KeywordMode,
        keywords: Vec<String>,
        /// Compare without diacritics (`gia` matches `giá`). Case never matters.
        #[serde(default = "yes", skip_serializing_if = "is_true")]
        ignore_diacritics: bool,
    },
    /// A customer message holding a phone number (Vietnamese formats or `+` international).
    HasPhone {},
    /// A customer message holding an email address.
    HasEmail {},
    /// A button, quick reply or postback with one of these payloads.
    Payload { payloads: Vec<String> },
    /// A referral (m.me link `ref`, an ad); empty `refs`: any referral.
    Referral {
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        refs: Vec<String>,
    },
    /// A customer message while the inbox is outside its business hours.
    OutsideBusinessHours {},
    /// The conversation was resolved.
    Resolved {},
    /// A tag was added to the contact; empty `tags`: any tag.
    TagAdded {
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        tags: Vec<String>,
    },
    /// A contact field changed; empty `fields`: any field.
    FieldChanged {
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        fields: Vec<String>,
    },
    /// An agent may start it from the conversation.
    AgentStart {},
    /// Another flow may start it (a `start_flow` step).
    StartedByFlow {},
    /// It may be attached to a customer as a scheduled flow and run when due.
    ScheduledDue {},
    /// A customer's comment on a Page post or an Instagram media, when every condition holds
    /// (none: any comment). Comment rules are flows with this trigger (`flow::comments`).
    Comment {
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        when: Vec<CommentCondition>,
    },
}

/// A condition on a customer's comment (all of a trigger's must hold).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum CommentCondition {
    /// A phone number (Vietnamese formats: `0912 345 678`, `0912.345.678`, `+84 912…`, `84912…`).
    HasPhone {},
    HasEmail {},
    /// Keywords (or regular expressions with `"match": "regex"`), compared as in a keyword trigger.
    Keywords {
        #[serde(rename = "match", default = "contains")]
        mode: KeywordMode,
        keywords: Vec<String>,
        #[serde(default = "yes", skip_serializing_if = "is_true")]
        ignore_diacritics: bool,
    },
    /// Any comment.
    Any {},
    /// The person's first comment on this post.
    FirstComment {},
    /// The local time (the inbox's offset) is within `from`–`to` (`22:00`–`06:00` crosses
    /// midnight); `days`: 1 = Monday … 7 = Sunday, empty: every day.
    ActiveHours {
        from: String,
        to: String,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        days: Vec<u8>,
    },
}

impl CommentCondition {
    /// The condition's kind as the JSON names it (the reason shown for an automatic action).
    pub const fn kind(&self) -> &'static str {
        match self {
            Self::HasPhone {} => "has_phone",
            Self::HasEmail {} => "has_email",
            Self::Keywords { .. } => "keywords",
            Self::Any {} => "any",
            Self::FirstComment {} => "first_comment",
            Self::ActiveHours { .. } => "active_hours",
        }
    }
}

fn contains() -> KeywordMode {
    KeywordMode::Contains
}

/// How a keyword is compared with a message (both folded first).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KeywordMode {
    /// The whole message is the keyword (punctuation and spacing aside).
    Exact,
    /// The keyword appears anywhere, even inside a word.
    Contains,
    /// The keyword's words appear in a row as whole words.
    WholeWord,
    /// The message begins with the keyword.
    StartsWith,
    /// A regular expression (case-insensitive), tried on the message and on its folded form.
    Regex,
}

/// Guards against runaway and repetitive flows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Guards {
    /// Most steps one run (with the runs it starts) may take; then it ends and says why.
    #[serde(default = "default_max_steps")]
    pub max_steps: u32,
    /// Not started again for the same contact within this many seconds of its last start.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retrigger_after_secs: Option<u64>,
    /// Runs at most once per contact, ever.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub once_per_contact: bool,
}

impl Default for Guards {
    fn default() -> Self {
        Self {
            max_steps: default_max_steps(),
            retrigger_after_secs: None,
            once_per_contact: false,
        }
    }
}

pub const DEFAULT_MAX_STEPS: u32 = 50;
fn default_max_steps() -> u32 {
    DEFAULT_MAX_STEPS
}
fn yes() -> bool {
    true
}
fn is_true(b: &bool) -> bool {
    *b
}

/// One step: its id (what `next` fields name) and what it does.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Step {
    pub id: String,
    #[serde(rename = "do")]
    pub action: Action,
}

/// What a step does. A missing `next` ends the run after the step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Action {
    /// Sends one of the variants, chosen at random.
    SendMessage {
        variants: Vec<MessageSpec>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        next: Option<String>,
    },
    /// Asks a question and saves the answer into a contact field.
    Ask {
        question: MessageSpec,
        answer: AnswerKind,
        save_to: String,
        /// How many more times a wrong answer is asked again before the timeout path.
        #[serde(default = "default_retries")]
        retries: u8,
        /// Sent (instead of the question) after a wrong answer.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        retry_text: Option<String>,
        /// How long to wait for an answer.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        timeout_secs: Option<u64>,
        /// Taken when the time runs out or the retries are used up; none: the run ends.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        timeout_next: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        next: Option<String>,
    },
    AddTag {
        tag: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        next: Option<String>,
    },
    RemoveTag {
        tag: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        next: Option<String>,
    },
    /// Sets a contact field to a value (variables allowed).
    SetField {
        field: String,
        value: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        next: Option<String>,
    },
    /// Goes to the first path whose condition holds, else to `otherwise`.
    Branch {
        paths: Vec<BranchPath>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        otherwise: Option<String>,
    },
    /// Waits a duration, or until the inbox's business hours (exactly one).
    Wait {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        seconds: Option<u64>,
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        until_business_hours: bool,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        next: Option<String>,
    },
    /// Goes down one path, chosen at random by weight.
    Split { paths: Vec<SplitPath> },
    /// Calls an HTTP endpoint; success (2xx) maps response values into fields.
    Http(HttpSpec),
    /// Hands the conversation to a human (the inbox's routing); the run ends.
    Handoff {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        note: Option<String>,
    },
    /// Resolves the conversation; the run ends.
    Resolve {},
    /// Answers from the workspace's FAQ until the customer asks for a human or the bot misses
    /// `max_misses` times in a row (then hands off).
    FaqBot {
        /// Sent when no answer scores above the threshold.
        fallback: String,
        #[serde(default = "default_max_misses")]
        max_misses: u8,
    },
    /// Ends this run and starts another flow (the step count carries on: the loop guard).
    StartFlow { flow: FlowId },
    /// Attaches a scheduled flow to the contact.
    ScheduleFlow {
        flow: FlowId,
        delay_secs: u64,
        /// Only send within these local hours (the inbox's offset), e.g. 08:00–17:00.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        within_hours: Option<HoursSpec>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        next: Option<String>,
    },
    /// Cancels the contact's scheduled runs of a flow.
    CancelScheduledFlow {
        flow: FlowId,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        next: Option<String>,
    },
    /// Ends the run.
    Stop {},
    /// Hides the comment that started the run (it stays in the thread, marked why).
    HideComment {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        next: Option<String>,
    },
    /// Likes the comment (Facebook only: Instagram has no like, the step is skipped there).
    LikeComment {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        next: Option<String>,
    },
    /// Replies publicly under the comment with the variants in rotation (identical replies get a
    /// Page comment-locked). `{{name}}` is the commenter's name.
    ReplyComment {
        variants: Vec<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        next: Option<String>,
    },
    /// The one private message Meta allows per comment (within 7 days); `then_flow` starts when
    /// the customer answers it.
    PrivateReply {
        text: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        then_flow: Option<FlowId>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        next: Option<String>,
    },
    /// Assigns the conversation to an agent of the inbox.
    Assign {
        agent: AgentId,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        next: Option<String>,
    },
}

pub const DEFAULT_RETRIES: u8 = 2;
fn default_retries() -> u8 {
    DEFAULT_RETRIES
}
pub const DEFAULT_MAX_MISSES: u8 = 3;
fn default_max_misses() -> u8 {
    DEFAULT_MAX_MISSES
}

/// A message a step sends: text (with `{{contact.field}}` variables), optionally buttons, or a
/// media file with the text as its caption.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MessageSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media: Option<MediaSpec>,
    /// Quick replies / reply buttons; a channel without them gets a numbered list.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub buttons: Vec<ButtonSpec>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MediaSpec {
    pub kind: MediaKind,
    /// A public link the provider fetches.
    pub url: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ButtonSpec {
    /// The payload the customer's tap sends back.
    pub payload: String,
    pub title: String,
}

/// What a question expects.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum AnswerKind {
    Text {},
    Number {},
    /// Saved as E.164 (`0912 345 678` → `+84912345678`).
    Phone {},
    Email {},
    /// One of the choices, by button, number or title; saved as the choice's `value`.
    Choice {
        choices: Vec<ChoiceSpec>,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChoiceSpec {
    pub title: String,
    /// What is saved (and the button's payload).
    pub value: String,
    /// Where this choice leads; none: the question's `next`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BranchPath {
    pub when: Condition,
    pub next: String,
}

/// A condition on the contact and the conversation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Condition {
    Field {
        field: String,
        op: CompareOp,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        value: Option<String>,
    },
    HasTag {
        tag: String,
    },
    Channel {
        channels: Vec<ChannelKind>,
    },
    WithinBusinessHours {},
    /// The channel's messaging window lets automation send a free-form message now.
    WindowOpen {},
    All {
        of: Vec<Condition>,
    },
    Any {
        of: Vec<Condition>,
    },
    Not {
        of: Box<Condition>,
    },
}

/// How a field is compared. Ordering compares numbers when both sides are numbers, else text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CompareOp {
    Eq,
    Ne,
    /// Contains, diacritics- and case-insensitively.
    Contains,
    Gt,
    Gte,
    Lt,
    Lte,
    IsSet,
    IsEmpty,
}

impl CompareOp {
    pub const fn needs_value(self) -> bool {
        !matches!(self, Self::IsSet | Self::IsEmpty)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SplitPath {
    /// Relative weight (e.g. 50 / 50, or 1 / 3).
    pub weight: u32,
    pub next: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpSpec {
    pub method: HttpMethod,
    /// Variables allowed; their values are percent-encoded.
    pub url: String,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
    /// A JSON template: every string in it may hold variables.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<serde_json::Value>,
    #[serde(default = "default_http_timeout")]
    pub timeout_secs: u64,
    /// Response values to save: a dotted path into the JSON body (`data.order.status`,
    /// `items.0.name`) → a contact field.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub save: Vec<ResponseField>,
    /// After a 2xx answer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next: Option<String>,
    /// After any other status, a transport error or the timeout.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_failure: Option<String>,
}

pub const DEFAULT_HTTP_TIMEOUT_SECS: u64 = 10;
fn default_http_timeout() -> u64 {
    DEFAULT_HTTP_TIMEOUT_SECS
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum HttpMethod {
    Get,
    Post,
    Put,
    Patch,
    Delete,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResponseField {
    pub path: String,
    pub field: String,
}

/// Local hours `HH:MM`–`HH:MM` a scheduled send must fall within.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HoursSpec {
    pub from: String,
    pub to: String,
}

impl Action {
    /// Every step this one may lead to, with the field that names it.
    pub fn targets(&self) -> Vec<(&'static str, &str)> {
        fn opt<'a>(
            out: &mut Vec<(&'static str, &'a str)>,
            field: &'static str,
            t: &'a Option<String>,
        ) {
            if let Some(t) = t {
                out.push((field, t.as_str()));
            }
        }
        let mut out: Vec<(&'static str, &str)> = Vec::new();
        match self {
            Self::SendMessage { next, .. }
            | Self::AddTag { next, .. }
            | Self::RemoveTag { next, .. }
            | Self::SetField { next, .. }
            | Self::Wait { next, .. }
            | Self::ScheduleFlow { next, .. }
            | Self::CancelScheduledFlow { next, .. }
            | Self::HideComment { next }
            | Self::LikeComment { next }
            | Self::ReplyComment { next, .. }
            | Self::PrivateReply { next, .. }
            | Self::Assign { next, .. } => opt(&mut out, "next", next),
            Self::Ask {
                answer,
                next,
                timeout_next,
                ..
            } => {
                opt(&mut out, "next", next);
                opt(&mut out, "timeout_next", timeout_next);
                if let AnswerKind::Choice { choices } = answer {
                    for c in choices {
                        opt(&mut out, "answer.choices.next", &c.next);
                    }
                }
            }
            Self::Branch { paths, otherwise } => {
                for p in paths {
                    out.push(("paths.next", p.next.as_str()));
                }
                opt(&mut out, "otherwise", otherwise);
            }
            Self::Split { paths } => {
                for p in paths {
                    out.push(("paths.next", p.next.as_str()));
                }
            }
            Self::Http(h) => {
                opt(&mut out, "next", &h.next);
                opt(&mut out, "on_failure", &h.on_failure);
            }
            Self::Handoff { .. }
            | Self::Resolve {}
            | Self::FaqBot { .. }
            | Self::StartFlow { .. }
            | Self::Stop {} => {}
        }
        out
    }

    /// The step's kind as the JSON names it.
    pub const fn kind(&self) -> &'static str {
        match self {
            Self::SendMessage { .. } => "send_message",
            Self::Ask { .. } => "ask",
            Self::AddTag { .. } => "add_tag",
            Self::RemoveTag { .. } => "remove_tag",
            Self::SetField { .. } => "set_field",
            Self::Branch { .. } => "branch",
            Self::Wait { .. } => "wait",
            Self::Split { .. } => "split",
            Self::Http(_) => "http",
            Self::Handoff { .. } => "handoff",
            Self::Resolve {} => "resolve",
            Self::FaqBot { .. } => "faq_bot",
            Self::StartFlow { .. } => "start_flow",
            Self::ScheduleFlow { .. } => "schedule_flow",
            Self::CancelScheduledFlow { .. } => "cancel_scheduled_flow",
            Self::Stop {} => "stop",
            Self::HideComment { .. } => "hide_comment",
            Self::LikeComment { .. } => "like_comment",
            Self::ReplyComment { .. } => "reply_comment",
            Self::PrivateReply { .. } => "private_reply",
            Self::Assign { .. } => "assign",
        }
    }

    /// Whether the step acts on the comment that started the run (only comment flows have one).
    pub const fn is_comment_step(&self) -> bool {
        matches!(
            self,
            Self::HideComment { .. }
                | Self::LikeComment { .. }
                | Self::ReplyComment { .. }
                | Self::PrivateReply { .. }
        )
    }

    /// The same step leading to `to` (steps that end a run or choose their own path are
    /// returned as they are).
    pub fn with_next(mut self, to: Option<String>) -> Self {
        match &mut self {
            Self::SendMessage { next, .. }
            | Self::AddTag { next, .. }
            | Self::RemoveTag { next, .. }
            | Self::SetField { next, .. }
            | Self::ScheduleFlow { next, .. }
            | Self::CancelScheduledFlow { next, .. }
            | Self::HideComment { next }
            | Self::LikeComment { next }
            | Self::ReplyComment { next, .. }
            | Self::PrivateReply { next, .. }
            | Self::Assign { next, .. } => *next = to,
            _ => {}
        }
        self
    }
}

impl Flow {
    /// The step with this id.
    pub fn step(&self, id: &str) -> Option<&Step> {
        self.steps.iter().find(|s| s.id == id)
    }

    /// Whether the flow runs in this inbox.
    pub fn in_scope(&self, inbox: InboxId) -> bool {
        self.inboxes.is_empty() || self.inboxes.contains(&inbox)
    }

    /// The flow as pretty JSON (the export format).
    pub fn export(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_default()
    }
}
