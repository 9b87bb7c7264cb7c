//! Comment rules: what happens by itself when a customer comments on a Page post or an Instagram
//! media. A rule is a flow with a [`Trigger::Comment`] and comment steps (`hide_comment`,
//! `like_comment`, `reply_comment`, `private_reply`, with `add_tag`, `assign`...) — the same
//! engine runs it ([`CommentRule::flow`] builds the flow, `engine::step` yields the effects).
//!
//! A Page (or Instagram account) has one [`CommentRuleSet`]; a post may have its own, which
//! replaces the Page's or extends it (the post's rules first). The first rule whose conditions
//! all hold applies; none: the set's default steps. [`CompiledRules`] does the folding and regex
//! compiling once, so a burst of comments costs one pass per comment.

use super::check::{FlowError, MAX_NAME_CHARS};
use super::matching::{Keyword, Prepared, compile_keywords};
use super::model::*;
use crate::business_hours::{Range, local_time};
use crate::flow::answer;
use crate::time::Timestamp;
use serde::{Deserialize, Serialize};

pub const MAX_RULES: usize = 50;
pub const MAX_RULE_STEPS: usize = 10;
pub const MAX_CONDITIONS: usize = 10;
/// A Meta comment reply is cut by us at this many characters.
pub const MAX_REPLY_CHARS: usize = 1000;
/// `{{name}}` in a comment rule's texts: the commenter's name, `bạn` ("you") when unknown.
const NAME_VARIABLE: &str = "{{name}}";
const NAME_TEMPLATE: &str = "{{contact.name | bạn}}";

/// Whether a post's rules replace the Page's or come before them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OverrideMode {
    #[default]
    Replace,
    Extend,
}

/// The rules of a Page / Instagram account, or a post's override.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CommentRuleSet {
    #[serde(default)]
    pub rules: Vec<CommentRule>,
    /// Steps for a comment no rule matches; empty: nothing happens.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub default: Vec<Action>,
    /// A post's override only: replace the Page's rules or extend them.
    #[serde(default)]
    pub mode: OverrideMode,
}

/// One rule: when its conditions all hold (none: any comment), its steps run, in order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CommentRule {
    pub name: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub when: Vec<CommentCondition>,
    #[serde(rename = "do")]
    pub steps: Vec<Action>,
}

/// What is known of a comment when rules are decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CommentFacts<'a> {
    pub text: &'a str,
    /// The person's first comment on this post.
    pub first_on_post: bool,
    /// The inbox's offset from UTC in minutes (active hours are local).
    pub utc_offset_minutes: i32,
}

/// A rule's conditions, compiled.
pub struct Conditions(Vec<Compiled>);

enum Compiled {
    HasPhone,
    HasEmail,
    Keywords {
        mode: KeywordMode,
        fold: bool,
        keywords: Vec<Keyword>,
    },
    Any,
    FirstComment,
    /// Minutes after local midnight, `[from, to)`, crossing midnight when `from > to`; days
    /// 0 = Monday; `None`: malformed (never holds).
    ActiveHours(Option<(u16, u16)>, Vec<usize>),
}

impl Conditions {
    pub fn compile(when: &[CommentCondition]) -> Self {
        Self(
            when.iter()
                .map(|c| match c {
                    CommentCondition::HasPhone {} => Compiled::HasPhone,
                    CommentCondition::HasEmail {} => Compiled::HasEmail,
                    CommentCondition::Keywords {
                        mode,
                        keywords,
                        ignore_diacritics,
                    } => Compiled::Keywords {
                        mode: *mode,
                        fold: *ignore_diacritics,
                        keywords: compile_keywords(*mode, *ignore_diacritics, keywords),
                    },
                    CommentCondition::Any {} => Compiled::Any,
                    CommentCondition::FirstComment {} => Compiled::FirstComment,
                    CommentCondition::ActiveHours { from, to, days } => Compiled::ActiveHours(
                        Range::parse_time(from).zip(Range::parse_time(to)),
                        days.iter()
                            .filter(|d| (1..=7).contains(*d))
                            .map(|d| usize::from(*d - 1))
                            .collect(),
                    ),
                })
                .collect(),
        )
    }

    /// The index of the first condition that does not hold; `None`: they all hold.
    pub fn first_unmet(&self, facts: &CommentFacts<'_>, now: Timestamp) -> Option<usize> {
        // The comment is folded once, and only if a keyword asks.
        let mut prepared: Option<Prepared> = None;
        self.0.iter().position(|c| !match c {
            Compiled::HasPhone => answer::find_phone(facts.text).is_some(),
            Compiled::HasEmail => answer::find_email(facts.text).is_some(),
            Compiled::Keywords {
                mode,
                fold,
                keywords,
            } => {
                let p = prepared.get_or_insert_with(|| Prepared::new(facts.text));
                keywords
                    .iter()
                    .any(|k| k.matches(*mode, *fold, facts.text, p))
            }
            Compiled::Any => true,
            Compiled::FirstComment => facts.first_on_post,
            Compiled::ActiveHours(range, days) => {
                let local = local_time(now, facts.utc_offset_minutes);
                let day_ok = days.is_empty() || days.contains(&local.weekday);
                day_ok && range.is_some_and(|(from, to)| within(from, to, local.minute))
            }
        })
    }
}

/// Whether `minute` falls within `[from, to)`, the range crossing midnight when `from > to`;
/// `from == to`: all day.
fn within(from: u16, to: u16, minute: u16) -> bool {
    match from.cmp(&to) {
        std::cmp::Ordering::Less => from <= minute && minute < to,
        std::cmp::Ordering::Greater => minute >= from || minute < to,
        std::cmp::Ordering::Equal => true,
    }
}

/// Which set a decision came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    Page,
    Post,
}

/// The rules that apply to a comment: the flow to run, and why (shown on the comment card).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Decision<'r> {
    pub source: Source,
    /// The rule's name; `None`: the default steps.
    pub rule: Option<&'r str>,
    /// The rule's conditions' kinds (`has_phone`, `keywords`...); empty for the default.
    pub because: Vec<&'static str>,
    #[serde(skip)]
    pub flow: &'r Flow,
}

struct CompiledRule {
    name: String,
    when: Conditions,
    because: Vec<&'static str>,
    flow: Flow,
}

/// One set compiled.
struct CompiledSet {
    rules: Vec<CompiledRule>,
    default: Option<Flow>,
    mode: OverrideMode,
}

impl CompiledSet {
    fn compile(set: &CommentRuleSet) -> Self {
        Self {
            rules: set
                .rules
                .iter()
                .map(|r| CompiledRule {
                    name: r.name.clone(),
                    when: Conditions::compile(&r.when),
                    because: r.when.iter().map(CommentCondition::kind).collect(),
                    flow: r.flow(),
                })
                .collect(),
            default: (!set.default.is_empty()).then(|| {
                CommentRule {
                    name: "default".into(),
                    when: Vec::new(),
                    steps: set.default.clone(),
                }
                .flow()
            }),
            mode: set.mode,
        }
    }

    fn first_match(
        &self,
        facts: &CommentFacts<'_>,
        now: Timestamp,
        source: Source,
    ) -> Option<Decision<'_>> {
        self.rules
            .iter()
            .find(|r| r.when.first_unmet(facts, now).is_none())
            .map(|r| Decision {
                source,
                rule: Some(&r.name),
                because: r.because.clone(),
                flow: &r.flow,
            })
    }

    fn default(&self, source: Source) -> Option<Decision<'_>> {
        self.default.as_ref().map(|flow| Decision {
            source,
            rule: None,
            because: Vec::new(),
            flow,
        })
    }
}

/// A Page's rules with one post's override, compiled.
pub struct CompiledRules {
    page: Option<CompiledSet>,
    post: Option<CompiledSet>,
}

impl CompiledRules {
    pub fn compile(page: Option<&CommentRuleSet>, post: Option<&CommentRuleSet>) -> Self {
        Self {
            page: page.map(CompiledSet::compile),
            post: post.map(CompiledSet::compile),
        }
    }

    /// The rule (or default) that applies to this comment at `now`; `None`: nothing happens.
    /// A post override that replaces the Page's rules is all there is; one that extends them is
    /// tried first, and its default (if it has one) wins over the Page's.
    pub fn decide(&self, facts: &CommentFacts<'_>, now: Timestamp) -> Option<Decision<'_>> {
        let page = self.page.as_ref();
        match &self.post {
            Some(post) if post.mode == OverrideMode::Replace => post
                .first_match(facts, now, Source::Post)
                .or_else(|| post.default(Source::Post)),
            Some(post) => post
                .first_match(facts, now, Source::Post)
                .or_else(|| page.and_then(|p| p.first_match(facts, now, Source::Page)))
                .or_else(|| post.default(Source::Post))
                .or_else(|| page.and_then(|p| p.default(Source::Page))),
            None => page.and_then(|p| {
                p.first_match(facts, now, Source::Page)
                    .or_else(|| p.default(Source::Page))
            }),
        }
    }
}

/// `{{name}}` as the flow templates write it.
fn with_name(s: &str) -> String {
    s.replace(NAME_VARIABLE, NAME_TEMPLATE)
}

impl CommentRule {
    /// The rule as a flow: one comment trigger, its steps in a row (`s1` → `s2` → …).
    pub fn flow(&self) -> Flow {
        let n = self.steps.len();
        let steps = self
            .steps
            .iter()
            .enumerate()
            .map(|(i, a)| {
                let action = match a.clone() {
                    Action::ReplyComment { variants, next } => Action::ReplyComment {
                        variants: variants.iter().map(|v| with_name(v)).collect(),
                        next,
                    },
                    Action::PrivateReply {
                        text,
                        then_flow,
                        next,
                    } => Action::PrivateReply {
                        text: with_name(&text),
                        then_flow,
                        next,
                    },
                    other => other,
                };
                Step {
                    id: format!("s{}", i + 1),
                    action: action.with_next((i + 1 < n).then(|| format!("s{}", i + 2))),
                }
            })
            .collect();
        Flow {
            name: self.name.clone(),
            version: 1,
            inboxes: Vec::new(),
            triggers: vec![Trigger::Comment {
                when: self.when.clone(),
            }],
            start: "s1".into(),
            steps,
            guards: Guards::default(),
        }
    }
}

/// Steps a comment rule may take: those that finish at once (no question, wait or HTTP call),
/// in a row (no branching).
const fn allowed_in_rule(a: &Action) -> bool {
    matches!(
        a,
        Action::HideComment { .. }
            | Action::LikeComment { .. }
            | Action::ReplyComment { .. }
            | Action::PrivateReply { .. }
            | Action::AddTag { .. }
            | Action::RemoveTag { .. }
            | Action::SetField { .. }
            | Action::Assign { .. }
            | Action::Handoff { .. }
    )
}

impl CommentRuleSet {
    /// Parses a rule set's JSON and validates it.
    pub fn import(json: &str) -> Result<Self, Vec<FlowError>> {
        let set: Self = serde_json::from_str(json).map_err(|e| {
            vec![FlowError {
                path: String::new(),
                message: format!("not a valid rule set: {e}"),
            }]
        })?;
        set.validate()?;
        Ok(set)
    }

    /// Every problem with the rules, with the path of the field that has it.
    pub fn validate(&self) -> Result<(), Vec<FlowError>> {
        let mut errors = Vec::new();
        let mut err = |path: String, message: &str| {
            errors.push(FlowError {
                path,
                message: message.to_owned(),
            })
        };
        if self.rules.len() > MAX_RULES {
            err("rules".into(), "too many rules (at most 50)");
        }
        let default = CommentRule {
            name: "default".into(),
            when: Vec::new(),
            steps: self.default.clone(),
        };
        let all = self
            .rules
            .iter()
            .enumerate()
            .map(|(i, r)| (format!("rules[{i}]"), r))
            .chain((!self.default.is_empty()).then(|| ("default".to_owned(), &default)));
        let mut flow_errors = Vec::new();
        for (at, r) in all {
            if r.name.trim().is_empty() || r.name.chars().count() > MAX_NAME_CHARS {
                err(format!("{at}.name"), "must be 1 to 100 characters");
            }
            if r.when.len() > MAX_CONDITIONS {
                err(format!("{at}.when"), "too many conditions (at most 10)");
            }
            if r.steps.is_empty() || r.steps.len() > MAX_RULE_STEPS {
                err(format!("{at}.do"), "must have 1 to 10 steps");
            }
            for (i, s) in r.steps.iter().enumerate() {
                if !allowed_in_rule(s) {
                    err(
                        format!("{at}.do[{i}]"),
                        "a comment rule may hide, like, reply, reply privately, tag, set a field, assign or hand off",
                    );
                }
                if !s.targets().is_empty() {
                    err(
                        format!("{at}.do[{i}].next"),
                        "steps of a rule run in order: leave out `next`",
                    );
                }
                if let Action::ReplyComment { variants, .. } = s
                    && variants.iter().any(|v| v.chars().count() > MAX_REPLY_CHARS)
                {
                    err(
                        format!("{at}.do[{i}].variants"),
                        "a reply is at most 1000 characters",
                    );
                }
            }
            if let Err(es) = r.flow().validate() {
                flow_errors.extend(es.into_iter().map(|e| FlowError {
                    path: format!("{at}.{}", e.path),
                    message: e.message,
                }));
            }
        }
        errors.extend(flow_errors);
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors)
        }
    }
}

/// Which of a reply's variants goes out after `replied` replies on the same post: each in turn,
/// so two comments in a row never get the same words.
pub fn rotate(variants: usize, replied: u64) -> usize {
    if variants == 0 {
        return 0;
    }
    (replied % variants as u64) as usize
}

/// Private replies Meta takes from one Page or Instagram account in an hour (channels.md: "Private
/// replies: 750/h"; Instagram Live's 100/s is far above it).
pub const PRIVATE_REPLIES_PER_HOUR: u64 = 750;
/// The hour of [`PRIVATE_REPLIES_PER_HOUR`], in milliseconds.
pub const HOUR_MS: i64 = 3_600_000;

/// How many of `waiting` private replies may go now, counted ahead: `sent` went out in the last
/// hour, the oldest of them at `oldest`. The rest wait until the oldest leaves the hour.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReplyBudget {
    pub now: u64,
    /// When the ones that must wait may try again (`None`: none waits).
    pub later: Option<Timestamp>,
}

pub fn private_reply_budget(
    waiting: u64,
    sent: u64,
    oldest: Option<Timestamp>,
    now: Timestamp,
) -> ReplyBudget {
    let room = PRIVATE_REPLIES_PER_HOUR.saturating_sub(sent);
    let go = waiting.min(room);
    let later = (go < waiting).then(|| {
        // The hour frees a place when its oldest reply leaves it; with nothing on record (a
        // budget spent by this very batch) the next try is a minute away.
        oldest
            .map(|o| o.plus_millis(HOUR_MS))
            .filter(|t| *t > now)
            .unwrap_or_else(|| now.plus_millis(60_000))
    });
    ReplyBudget { now: go, later }
}

/// A contact field a message's text offers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Offer {
    /// `phone` or `email`.
    pub field: &'static str,
    pub value: String,
    /// The field is empty: fill it; otherwise the agent is offered it (one click).
    pub fill: bool,
}

/// The phone number (E.164) and email a customer wrote, against the contact's current ones:
/// empty fields are filled, different values offered, equal ones ignored.
pub fn offers(text: &str, phone: Option<&str>, email: Option<&str>) -> Vec<Offer> {
    let mut out = Vec::new();
    let empty = |v: Option<&str>| v.is_none_or(|v| v.trim().is_empty());
    if let Some(p) = answer::find_phone(text) {
        let same = phone.is_some_and(|c| answer::phone_e164(c).as_deref() == Some(&p) || c == p);
        if !same {
            out.push(Offer {
                field: "phone",
                fill: empty(phone),
                value: p,
            });
        }
    }
    if let Some(e) = answer::find_email(text)
        && !email.is_some_and(|c| c.eq_ignore_ascii_case(&e))
    {
        out.push(Offer {
            field: "email",
            fill: empty(email),
            value: e,
        });
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {

    #[test]
    fn private_replies_are_counted_ahead_within_the_hour() {
        let now = Timestamp::from_millis(10 * HOUR_MS);
        let oldest = Some(now.plus_millis(-HOUR_MS + 5_000));
        for (waiting, sent, want_now, want_later) in [
            (10, 0, 10, None),
            (10, 740, 10, None),
            (11, 740, 10, oldest.map(|o| o.plus_millis(HOUR_MS))),
            (1, 750, 0, oldest.map(|o| o.plus_millis(HOUR_MS))),
            (5, 900, 0, oldest.map(|o| o.plus_millis(HOUR_MS))),
            (0, 750, 0, None),
        ] {
            assert_eq!(
                private_reply_budget(waiting, sent, oldest, now),
                ReplyBudget {
                    now: want_now,
                    later: want_later
                },
                "{waiting} waiting, {sent} sent"
            );
        }
        // Spent with nothing on record to wait for: a minute.
        assert_eq!(
            private_reply_budget(3, 750, None, now).later,
            Some(now.plus_millis(60_000))
        );
    }

    use super::*;
    use crate::flow::engine::{CommentEffect, Context, Effect, Input, RunState, step};
    use crate::flow::faq::HandoffPhrases;
    use crate::model::ChannelKind;
    use std::collections::{BTreeMap, BTreeSet};

    fn facts(text: &str) -> CommentFacts<'_> {
        CommentFacts {
            text,
            first_on_post: false,
            utc_offset_minutes: 420,
        }
    }

    /// 2026-12-07 (a Monday) at this local (UTC+7) time.
    fn at(h: i64, m: i64) -> Timestamp {
        // 2026-12-07T00:00:00Z = 1796601600000 ms.
        Timestamp(1_796_601_600_000 + ((h - 7) * 60 + m) * 60_000)
    }

    fn set(json: &str) -> CommentRuleSet {
        match CommentRuleSet::import(json) {
            Ok(s) => s,
            Err(e) => panic!("{e:?}"),
        }
    }

    fn page() -> CommentRuleSet {
        set(r#"{
          "rules": [
            {"name": "phone", "when": [{"type": "has_phone"}],
             "do": [{"type": "hide_comment"},
                    {"type": "private_reply", "text": "Shop đã inbox {{name}} ạ"},
                    {"type": "reply_comment", "variants": ["Shop inbox {{name}} rồi nhé", "Bạn {{name}} xem tin nhắn nhé"]}]},
            {"name": "price", "when": [{"type": "keywords", "keywords": ["giá", "bao nhiêu"]}],
             "do": [{"type": "like_comment"}, {"type": "add_tag", "tag": "hỏi giá"}]}
          ],
          "default": [{"type": "like_comment"}]
        }"#)
    }

    #[test]
    fn conditions_table() {
        let hours = |from: &str, to: &str| CommentCondition::ActiveHours {
            from: from.into(),
            to: to.into(),
            days: vec![],
        };
        let kw = |mode: KeywordMode, k: &str| CommentCondition::Keywords {
            mode,
            keywords: vec![k.into()],
            ignore_diacritics: true,
        };
        let cases: Vec<(CommentCondition, &str, bool, Timestamp, bool)> = vec![
            (
                CommentCondition::HasPhone {},
                "0912 345 678 tư vấn",
                false,
                at(10, 0),
                true,
            ),
            (
                CommentCondition::HasPhone {},
                "0912.345.678 tư vấn em",
                false,
                at(10, 0),
                true,
            ),
            (
                CommentCondition::HasPhone {},
                "+84 912 345 678",
                false,
                at(10, 0),
                true,
            ),
            (
                CommentCondition::HasPhone {},
                "sđt 84912345678 nhé",
                false,
                at(10, 0),
                true,
            ),
            (
                CommentCondition::HasPhone {},
                "size 38 giá 350k",
                false,
                at(10, 0),
                false,
            ),
            (
                CommentCondition::HasPhone {},
                "mã 0912345",
                false,
                at(10, 0),
                false,
            ),
            (
                CommentCondition::HasEmail {},
                "mail em: lan@example.vn",
                false,
                at(10, 0),
                true,
            ),
            (
                CommentCondition::HasEmail {},
                "lan at example",
                false,
                at(10, 0),
                false,
            ),
            (
                kw(KeywordMode::Contains, "gia"),
                "Giá bao nhiêu ạ?",
                false,
                at(10, 0),
                true,
            ),
            (
                kw(KeywordMode::Contains, "giá"),
                "GIA BAO NHIEU",
                false,
                at(10, 0),
                true,
            ),
            (
                kw(KeywordMode::WholeWord, "size"),
                "sizes?",
                false,
                at(10, 0),
                false,
            ),
            (
                kw(KeywordMode::Regex, r"^ib\b"),
                "ib em",
                false,
                at(10, 0),
                true,
            ),
            (
                kw(KeywordMode::Regex, r"^ib\b"),
                "em ib",
                false,
                at(10, 0),
                false,
            ),
            (CommentCondition::Any {}, "", false, at(10, 0), true),
            (
                CommentCondition::FirstComment {},
                "hi",
                true,
                at(10, 0),
                true,
            ),
            (
                CommentCondition::FirstComment {},
                "hi",
                false,
                at(10, 0),
                false,
            ),
            (hours("08:00", "22:00"), "x", false, at(8, 0), true),
            (hours("08:00", "22:00"), "x", false, at(7, 59), false),
            (hours("08:00", "22:00"), "x", false, at(21, 59), true),
            (hours("08:00", "22:00"), "x", false, at(22, 0), false),
            (hours("22:00", "06:00"), "x", false, at(23, 30), true),
            (hours("22:00", "06:00"), "x", false, at(5, 59), true),
            (hours("22:00", "06:00"), "x", false, at(6, 0), false),
            (hours("25:00", "06:00"), "x", false, at(1, 0), false),
        ];
        for (c, text, first, now, want) in cases {
            let compiled = Conditions::compile(std::slice::from_ref(&c));
            let f = CommentFacts {
                first_on_post: first,
                ..facts(text)
            };
            assert_eq!(
                compiled.first_unmet(&f, now).is_none(),
                want,
                "{c:?} on {text:?}"
            );
        }
        // Days: 2026-12-07 is a Monday (1); Sunday-only does not hold.
        let days = |d: Vec<u8>| CommentCondition::ActiveHours {
            from: "00:00".into(),
            to: "24:00".into(),
            days: d,
        };
        assert!(
            Conditions::compile(&[days(vec![1])])
                .first_unmet(&facts("x"), at(10, 0))
                .is_none()
        );
        assert!(
            Conditions::compile(&[days(vec![7])])
                .first_unmet(&facts("x"), at(10, 0))
                .is_some()
        );
    }

    #[test]
    fn first_matching_rule_else_default() {
        let page = page();
        let rules = CompiledRules::compile(Some(&page), None);
        let d = rules
            .decide(&facts("0912.345.678 tư vấn em"), at(10, 0))
            .unwrap();
        assert_eq!(
            (d.source, d.rule, d.because.clone()),
            (Source::Page, Some("phone"), vec!["has_phone"])
        );
        let d = rules.decide(&facts("gia bao nhieu"), at(10, 0)).unwrap();
        assert_eq!(d.rule, Some("price"));
        let d = rules.decide(&facts("đẹp quá"), at(10, 0)).unwrap();
        assert_eq!(d.rule, None);
        // No rules at all: nothing happens.
        assert!(
            CompiledRules::compile(None, None)
                .decide(&facts("x"), at(10, 0))
                .is_none()
        );
    }

    #[test]
    fn post_override_replaces_or_extends() {
        let page = page();
        let replace = set(
            r#"{"mode": "replace", "rules": [{"name": "live", "when": [{"type": "keywords", "keywords": ["chốt"]}], "do": [{"type": "hide_comment"}]}]}"#,
        );
        let extend = set(
            r#"{"mode": "extend", "rules": [{"name": "live", "when": [{"type": "keywords", "keywords": ["chốt"]}], "do": [{"type": "hide_comment"}]}]}"#,
        );
        let r = CompiledRules::compile(Some(&page), Some(&replace));
        assert_eq!(
            r.decide(&facts("chốt đơn"), at(10, 0)).unwrap().rule,
            Some("live")
        );
        assert_eq!(
            r.decide(&facts("Chot 0912345678"), at(10, 0))
                .unwrap()
                .source,
            Source::Post
        );
        // Replaced: the Page's phone rule and default no longer apply.
        assert!(r.decide(&facts("0912345678"), at(10, 0)).is_none());
        let r = CompiledRules::compile(Some(&page), Some(&extend));
        assert_eq!(
            r.decide(&facts("chốt 0912345678"), at(10, 0)).unwrap().rule,
            Some("live")
        );
        assert_eq!(
            r.decide(&facts("0912345678"), at(10, 0)).unwrap().rule,
            Some("phone")
        );
        let d = r.decide(&facts("ok"), at(10, 0)).unwrap();
        assert_eq!((d.source, d.rule), (Source::Page, None));
    }

    #[test]
    fn outside_active_hours_the_default_applies() {
        let s = set(
            r#"{"rules": [{"name": "day", "when": [{"type": "any"}, {"type": "active_hours", "from": "08:00", "to": "21:00"}],
                       "do": [{"type": "reply_comment", "variants": ["Shop trả lời ngay"]}]}],
                       "default": [{"type": "reply_comment", "variants": ["Shop sẽ trả lời sáng mai"]}]}"#,
        );
        let r = CompiledRules::compile(Some(&s), None);
        assert_eq!(
            r.decide(&facts("hi"), at(20, 59)).unwrap().rule,
            Some("day")
        );
        assert_eq!(r.decide(&facts("hi"), at(21, 0)).unwrap().rule, None);
    }

    fn run(flow: &Flow, channel: ChannelKind, name: Option<&str>) -> Vec<Effect> {
        let mut fields = BTreeMap::new();
        if let Some(n) = name {
            fields.insert("name".to_owned(), n.to_owned());
        }
        let tags = BTreeSet::new();
        let phrases = HandoffPhrases::default();
        let ctx = Context {
            channel,
            fields: &fields,
            tags: &tags,
            business_hours: None,
            utc_offset_minutes: 420,
            window_open: false,
            faq: None,
            handoff_phrases: &phrases,
        };
        let now = at(10, 0);
        let (state, effects) = step(
            flow,
            &RunState::new(flow, now, 0),
            Input::Start,
            &ctx,
            now,
            &mut || 0.0,
        );
        assert!(state.is_ended());
        effects
            .into_iter()
            .filter(|e| !matches!(e, Effect::Log(_) | Effect::Ended(_)))
            .collect()
    }

    #[test]
    fn the_engine_runs_a_rule_and_skips_like_on_instagram() {
        let page = page();
        let phone = page.rules[0].flow();
        assert_eq!(
            run(&phone, ChannelKind::Messenger, Some("Lan")),
            vec![
                Effect::Comment(CommentEffect::Hide),
                Effect::Comment(CommentEffect::PrivateReply {
                    text: "Shop đã inbox Lan ạ".into(),
                    then_flow: None
                }),
                Effect::Comment(CommentEffect::Reply {
                    variants: vec![
                        "Shop inbox Lan rồi nhé".into(),
                        "Bạn Lan xem tin nhắn nhé".into()
                    ]
                }),
            ]
        );
        // No name: "bạn".
        let e = run(&phone, ChannelKind::Messenger, None);
        assert_eq!(
            e[1],
            Effect::Comment(CommentEffect::PrivateReply {
                text: "Shop đã inbox bạn ạ".into(),
                then_flow: None
            })
        );
        let price = page.rules[1].flow();
        assert_eq!(
            run(&price, ChannelKind::Messenger, None),
            vec![
                Effect::Comment(CommentEffect::Like),
                Effect::AddTag("hỏi giá".into())
            ]
        );
        assert_eq!(
            run(&price, ChannelKind::Instagram, None),
            vec![Effect::AddTag("hỏi giá".into())]
        );
    }

    #[test]
    fn rules_are_validated() {
        let bad = [
            (
                r#"{"rules": [{"name": "", "do": [{"type": "hide_comment"}]}]}"#,
                "rules[0].name",
            ),
            (r#"{"rules": [{"name": "x", "do": []}]}"#, "rules[0].do"),
            (
                r#"{"rules": [{"name": "x", "do": [{"type": "wait", "seconds": 5}]}]}"#,
                "rules[0].do[0]",
            ),
            (
                r#"{"rules": [{"name": "x", "do": [{"type": "hide_comment", "next": "s9"}]}]}"#,
                "rules[0].do[0].next",
            ),
            (
                r#"{"rules": [{"name": "x", "when": [{"type": "keywords", "match": "regex", "keywords": ["(a"]}], "do": [{"type": "hide_comment"}]}]}"#,
                "rules[0].triggers[0]",
            ),
            (
                r#"{"rules": [{"name": "x", "when": [{"type": "active_hours", "from": "8h", "to": "22:00"}], "do": [{"type": "hide_comment"}]}]}"#,
                "rules[0].triggers[0]",
            ),
            (
                r#"{"rules": [{"name": "x", "do": [{"type": "reply_comment", "variants": []}]}]}"#,
                "rules[0].steps[s1].variants",
            ),
            (
                r#"{"default": [{"type": "private_reply", "text": "{{oops}}"}]}"#,
                "default.steps[s1].text",
            ),
            (r#"{"rules": [], "extra": 1}"#, ""),
        ];
        for (json, path) in bad {
            let errs = CommentRuleSet::import(json).expect_err(json);
            assert!(
                errs.iter().any(|e| e.path.starts_with(path)),
                "{json}: {errs:?}"
            );
        }
    }

    #[test]
    fn variants_rotate() {
        assert_eq!(
            (0..5).map(|n| rotate(3, n)).collect::<Vec<_>>(),
            vec![0, 1, 2, 0, 1]
        );
        assert_eq!(rotate(0, 7), 0);
        assert_eq!(rotate(1, 7), 0);
    }

    #[test]
    fn contact_offers() {
        let o = offers(
            "0912.345.678 tư vấn em, mail lan@example.vn",
            None,
            Some(""),
        );
        assert_eq!(
            o,
            vec![
                Offer {
                    field: "phone",
                    value: "+84912345678".into(),
                    fill: true
                },
                Offer {
                    field: "email",
                    value: "lan@example.vn".into(),
                    fill: true
                },
            ]
        );
        // The same number, written another way: nothing to offer.
        assert!(offers("0912 345 678", Some("+84912345678"), None).is_empty());
        assert!(offers("0912 345 678", Some("0912345678"), None).is_empty());
        // Another number: offered, not filled.
        assert_eq!(
            offers("số mới 0987 654 321", Some("+84912345678"), None),
            vec![Offer {
                field: "phone",
                value: "+84987654321".into(),
                fill: false
            }]
        );
        assert!(offers("không có gì", None, None).is_empty());
    }
}
