//! Which flows an event starts. [`FlowMatcher::compile`] does the work once per set of flows
//! (keywords folded, regexes compiled); [`FlowMatcher::matching`] then folds the message once and
//! checks every flow's triggers against it, so many keyword flows cost little per message.
//! [`may_start`] applies the guards (once per contact, no re-trigger within a time).

use super::answer;
use super::comments;
use super::model::{Flow, KeywordMode, Trigger};
use crate::business_hours::BusinessHours;
use crate::ids::InboxId;
use crate::text;
use crate::time::Timestamp;

/// Something that happened which may start a flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TriggerEvent<'a, K> {
    /// A customer message; `first` when it opened a new conversation.
    Message {
        text: &'a str,
        first: bool,
    },
    /// A button, quick reply or postback.
    Payload(&'a str),
    /// A referral (`ref` of an m.me link or an ad).
    Referral(&'a str),
    Resolved,
    TagAdded(&'a str),
    FieldChanged(&'a str),
    /// An agent starts this flow from the conversation.
    AgentStart(&'a K),
    /// A `start_flow` step starts this flow.
    StartedByFlow(&'a K),
    /// A scheduled run of this flow came due.
    ScheduledDue(&'a K),
    /// A customer's comment on a post.
    Comment(&'a comments::CommentFacts<'a>),
}

/// Where the event happened.
#[derive(Debug, Clone, Copy)]
pub struct MatchContext<'a> {
    pub inbox: InboxId,
    /// The inbox's business hours; `None`: always open.
    pub business_hours: Option<&'a BusinessHours>,
    pub now: Timestamp,
}

/// A flow's trigger that matched: which flow (the caller's key) and which of its triggers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Matched<'m, K> {
    pub flow: &'m K,
    pub trigger: usize,
}

/// A regular expression for a keyword trigger: case-insensitive, bounded in size (the regex
/// crate matches in linear time, so a customer's message cannot make it slow).
pub fn compile_regex(pattern: &str) -> Result<regex::Regex, regex::Error> {
    regex::RegexBuilder::new(pattern)
        .case_insensitive(true)
        .size_limit(1 << 20)
        .dfa_size_limit(1 << 20)
        .build()
}

pub(super) enum Keyword {
    /// Words (folded or lower-cased), and the same joined by single spaces.
    Words {
        words: Vec<String>,
        joined: String,
    },
    Regex(regex::Regex),
}

enum Compiled {
    Keyword {
        mode: KeywordMode,
        fold: bool,
        keywords: Vec<Keyword>,
    },
    NewConversation,
    HasPhone,
    HasEmail,
    Payload(Vec<String>),
    Referral(Vec<String>),
    OutsideBusinessHours,
    Resolved,
    TagAdded(Vec<String>),
    FieldChanged(Vec<String>),
    AgentStart,
    StartedByFlow,
    ScheduledDue,
    Comment(comments::Conditions),
}

struct Entry<K> {
    key: K,
    inboxes: Vec<InboxId>,
    triggers: Vec<Compiled>,
}

/// Many flows' triggers, ready to match.
pub struct FlowMatcher<K> {
    flows: Vec<Entry<K>>,
}

/// A message cut once into what every keyword mode compares.
pub(super) struct Prepared {
    folded: Vec<String>,
    folded_joined: String,
    lower: Vec<String>,
    lower_joined: String,
    folded_full: String,
}

impl Prepared {
    pub(super) fn new(message: &str) -> Self {
        let folded = text::words(message);
        let lower = text::lower_words(message);
        Self {
            folded_joined: folded.join(" "),
            lower_joined: lower.join(" "),
            folded,
            lower,
            folded_full: text::fold(message),
        }
    }
}

fn contains_run(haystack: &[String], needle: &[String]) -> bool {
    !needle.is_empty() && haystack.windows(needle.len()).any(|w| w == needle)
}

impl Keyword {
    pub(super) fn matches(&self, mode: KeywordMode, fold: bool, raw: &str, m: &Prepared) -> bool {
        match self {
            Keyword::Regex(re) => re.is_match(raw) || re.is_match(&m.folded_full),
            Keyword::Words { words, joined } => {
                let (have, have_joined) = if fold {
                    (&m.folded, &m.folded_joined)
                } else {
                    (&m.lower, &m.lower_joined)
                };
                match mode {
                    KeywordMode::Exact => have == words,
                    KeywordMode::Contains => have_joined.contains(joined.as_str()),
                    KeywordMode::WholeWord => contains_run(have, words),
                    KeywordMode::StartsWith => have_joined.starts_with(joined.as_str()),
                    // Regex keywords are compiled as `Keyword::Regex`.
                    KeywordMode::Regex => false,
                }
            }
        }
    }
}

/// Keywords compiled for a mode: words folded (or lower-cased), or regexes.
pub(super) fn compile_keywords(mode: KeywordMode, fold: bool, keywords: &[String]) -> Vec<Keyword> {
    keywords
        .iter()
        .filter_map(|k| {
            if mode == KeywordMode::Regex {
                // An invalid regex never matches (validation refuses it on save).
                compile_regex(k).ok().map(Keyword::Regex)
            } else {
                let words = if fold {
                    text::words(k)
                } else {
                    text::lower_words(k)
                };
                (!words.is_empty()).then(|| Keyword::Words {
                    joined: words.join(" "),
                    words,
                })
            }
        })
        .collect()
}

fn compile_trigger(t: &Trigger) -> Compiled {
    match t {
        Trigger::Keyword {
            mode,
            keywords,
            ignore_diacritics,
        } => Compiled::Keyword {
            mode: *mode,
            fold: *ignore_diacritics,
            keywords: compile_keywords(*mode, *ignore_diacritics, keywords),
        },
        Trigger::NewConversation {} => Compiled::NewConversation,
        Trigger::HasPhone {} => Compiled::HasPhone,
        Trigger::HasEmail {} => Compiled::HasEmail,
        Trigger::Payload { payloads } => Compiled::Payload(payloads.clone()),
        Trigger::Referral { refs } => Compiled::Referral(refs.clone()),
        Trigger::OutsideBusinessHours {} => Compiled::OutsideBusinessHours,
        Trigger::Resolved {} => Compiled::Resolved,
        Trigger::TagAdded { tags } => {
            Compiled::TagAdded(tags.iter().map(|t| t.trim().to_lowercase()).collect())
        }
        Trigger::FieldChanged { fields } => Compiled::FieldChanged(fields.clone()),
        Trigger::AgentStart {} => Compiled::AgentStart,
        Trigger::StartedByFlow {} => Compiled::StartedByFlow,
        Trigger::ScheduledDue {} => Compiled::ScheduledDue,
        Trigger::Comment { when } => Compiled::Comment(comments::Conditions::compile(when)),
    }
}

impl<K: PartialEq> FlowMatcher<K> {
    /// Compiles the triggers of these flows (the active version of each), keyed by the caller's
    /// key (a flow id).
    pub fn compile<'f>(flows: impl IntoIterator<Item = (K, &'f Flow)>) -> Self {
        Self {
            flows: flows
                .into_iter()
                .map(|(key, flow)| Entry {
                    key,
                    inboxes: flow.inboxes.clone(),
                    triggers: flow.triggers.iter().map(compile_trigger).collect(),
                })
                .collect(),
        }
    }

    pub fn len(&self) -> usize {
        self.flows.len()
    }

    pub fn is_empty(&self) -> bool {
        self.flows.is_empty()
    }

    /// The flows (with the first trigger of each) that this event starts, in the order they were
    /// compiled. The caller picks one (usually the first) and checks [`may_start`].
    pub fn matching<'m>(
        &'m self,
        event: &TriggerEvent<'_, K>,
        ctx: &MatchContext<'_>,
    ) -> Vec<Matched<'m, K>> {
        let prepared = match event {
            TriggerEvent::Message { text, .. } => Some(Prepared::new(text)),
            _ => None,
        };
        // Computed at most once, and only if a flow asks.
        let mut closed: Option<bool> = None;
        let mut is_closed = || {
            *closed.get_or_insert_with(|| ctx.business_hours.is_some_and(|h| !h.is_open(ctx.now)))
        };
        let mut out = Vec::new();
        for entry in &self.flows {
            if !(entry.inboxes.is_empty() || entry.inboxes.contains(&ctx.inbox)) {
                continue;
            }
            let hit = entry.triggers.iter().position(|t| match (t, event) {
                (
                    Compiled::Keyword {
                        mode,
                        fold,
                        keywords,
                    },
                    TriggerEvent::Message { text, .. },
                ) => prepared
                    .as_ref()
                    .is_some_and(|p| keywords.iter().any(|k| k.matches(*mode, *fold, text, p))),
                (Compiled::NewConversation, TriggerEvent::Message { first, .. }) => *first,
                (Compiled::HasPhone, TriggerEvent::Message { text, .. }) => {
                    answer::find_phone(text).is_some()
                }
                (Compiled::HasEmail, TriggerEvent::Message { text, .. }) => {
                    answer::find_email(text).is_some()
                }
                (Compiled::OutsideBusinessHours, TriggerEvent::Message { .. }) => is_closed(),
                (Compiled::Payload(ps), TriggerEvent::Payload(p)) => ps.iter().any(|x| x == p),
                (Compiled::Referral(refs), TriggerEvent::Referral(r)) => {
                    refs.is_empty() || refs.iter().any(|x| x == r)
                }
                (Compiled::Resolved, TriggerEvent::Resolved) => true,
                (Compiled::TagAdded(tags), TriggerEvent::TagAdded(t)) => {
                    tags.is_empty() || tags.iter().any(|x| *x == t.trim().to_lowercase())
                }
                (Compiled::FieldChanged(fields), TriggerEvent::FieldChanged(f)) => {
                    fields.is_empty() || fields.iter().any(|x| x == f)
                }
                (Compiled::AgentStart, TriggerEvent::AgentStart(k))
                | (Compiled::StartedByFlow, TriggerEvent::StartedByFlow(k))
                | (Compiled::ScheduledDue, TriggerEvent::ScheduledDue(k)) => entry.key == **k,
                (Compiled::Comment(when), TriggerEvent::Comment(facts)) => {
                    when.first_unmet(facts, ctx.now).is_none()
                }
                _ => false,
            });
            if let Some(trigger) = hit {
                out.push(Matched {
                    flow: &entry.key,
                    trigger,
                });
            }
        }
        out
    }
}

/// What the store knows about a flow and a contact, for the guards.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ContactRuns {
    /// When this flow last started for the contact.
    pub last_started_at: Option<Timestamp>,
    /// A run of this flow for the contact is still going.
    pub running: bool,
}

/// Why a matched flow does not start.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case", tag = "reason")]
pub enum NotStarted {
    /// It is already running for this contact.
    AlreadyRunning,
    /// A once-per-contact flow that already ran.
    AlreadyRan,
    /// Started too recently; may start again from `until`.
    TooSoon { until: Timestamp },
}

/// Whether the flow's guards let it start for this contact now.
pub fn may_start(flow: &Flow, runs: ContactRuns, now: Timestamp) -> Result<(), NotStarted> {
    if runs.running {
        return Err(NotStarted::AlreadyRunning);
    }
    let Some(last) = runs.last_started_at else {
        return Ok(());
    };
    if flow.guards.once_per_contact {
        return Err(NotStarted::AlreadyRan);
    }
    if let Some(secs) = flow.guards.retrigger_after_secs {
        let until = last.plus_secs(i64::try_from(secs).unwrap_or(i64::MAX));
        if now < until {
            return Err(NotStarted::TooSoon { until });
        }
    }
    Ok(())
}

/// What a customer tapped, or the link or ad they came from, as a message's extras record it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Tapped<'a> {
    /// A quick reply's or postback's payload (Messenger, Instagram), a callback's data
    /// (Telegram), a reply button's or list row's id or a template button's payload (WhatsApp).
    pub payload: Option<&'a str>,
    /// The `ref` of an m.me link or an ad (Messenger), on its own or with a postback.
    pub referral: Option<&'a str>,
}

/// Reads [`Tapped`] from a customer message's extras (as the channel parsers write them).
pub fn tapped(meta: &serde_json::Value) -> Tapped<'_> {
    let payload = [
        &meta["quick_reply_payload"],
        &meta["postback"]["payload"],
        &meta["callback_data"],
        &meta["interactive"]["id"],
        &meta["button"]["payload"],
    ]
    .into_iter()
    .find_map(non_empty);
    let referral = [
        &meta["referral"]["ref"],
        &meta["postback"]["referral"]["ref"],
    ]
    .into_iter()
    .find_map(non_empty);
    Tapped { payload, referral }
}

fn non_empty(v: &serde_json::Value) -> Option<&str> {
    v.as_str().filter(|s| !s.is_empty())
}
