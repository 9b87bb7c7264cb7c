//! Validation of a flow: every problem with the path of the field that has it
//! (`steps[ask_phone].retries: must be at most 10`), all at once so an editor can mark them.

use super::model::*;
use super::template;
use crate::business_hours::Range;
use std::collections::{BTreeSet, HashSet, VecDeque};
use std::fmt;

pub const MAX_NAME_CHARS: usize = 100;
pub const MAX_STEPS: usize = 100;
pub const MAX_STEP_ID_CHARS: usize = 40;
pub const MAX_TRIGGERS: usize = 20;
pub const MAX_KEYWORDS: usize = 50;
pub const MAX_KEYWORD_CHARS: usize = 100;
pub const MAX_REGEX_CHARS: usize = 200;
pub const MAX_VARIANTS: usize = 10;
pub const MAX_BUTTONS: usize = 10;
pub const MAX_BUTTON_TITLE_CHARS: usize = 80;
pub const MAX_CHOICES: usize = 10;
pub const MAX_TEXT_CHARS: usize = 2000;
pub const MAX_RETRIES: u8 = 10;
pub const MAX_PATHS: usize = 10;
pub const MAX_CONDITION_DEPTH: usize = 4;
pub const MAX_HEADERS: usize = 20;
pub const MAX_SAVED_FIELDS: usize = 20;
pub const MAX_HTTP_TIMEOUT_SECS: u64 = 30;
pub const MAX_FIELD_CHARS: usize = 50;
pub const MAX_MAX_STEPS: u32 = 500;
/// Longest wait, question timeout, re-trigger window or schedule delay: a year.
pub const MAX_DELAY_SECS: u64 = 365 * 24 * 3600;

/// One problem with a flow: where, and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct FlowError {
    /// The field's path: `name`, `triggers[0].keywords[2]`, `steps[ask_phone].retries`.
    pub path: String,
    pub message: String,
}

impl fmt::Display for FlowError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

/// Why an imported flow was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ImportError {
    /// Not the flow format (serde's message says where: line and column, unknown field).
    #[error("not a valid flow: {0}")]
    Json(String),
    #[error("invalid flow: {}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
    Invalid(Vec<FlowError>),
}

impl Flow {
    /// Parses a flow's JSON and validates it.
    pub fn import(json: &str) -> Result<Flow, ImportError> {
        let flow: Flow =
            serde_json::from_str(json).map_err(|e| ImportError::Json(e.to_string()))?;
        flow.validate().map_err(ImportError::Invalid)?;
        Ok(flow)
    }

    /// Every problem with the flow; empty: it may be saved and run.
    pub fn validate(&self) -> Result<(), Vec<FlowError>> {
        let mut c = Checker::default();
        c.flow(self);
        if c.errors.is_empty() {
            Ok(())
        } else {
            Err(c.errors)
        }
    }
}

#[derive(Default)]
struct Checker {
    errors: Vec<FlowError>,
}

fn chars(s: &str) -> usize {
    s.chars().count()
}

/// A contact field a flow may write or read: `name`, `phone`, `email`, or a custom field of
/// lower-case letters, digits and `_`.
pub fn is_field_name(s: &str) -> bool {
    !s.is_empty()
        && chars(s) <= MAX_FIELD_CHARS
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        && s.starts_with(|c: char| c.is_ascii_lowercase())
}

fn is_step_id(s: &str) -> bool {
    !s.is_empty()
        && chars(s) <= MAX_STEP_ID_CHARS
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

/// Whether `from`–`to` are two local times `HH:MM`, the first before the second.
pub fn hours_valid(h: &super::model::HoursSpec) -> bool {
    matches!((Range::parse_time(&h.from), Range::parse_time(&h.to)), (Some(a), Some(b)) if a < b)
}

/// At most this many FAQ questions, phrasings per question, handoff phrases.
pub const MAX_FAQ_ENTRIES: usize = 500;
pub const MAX_PHRASINGS: usize = 20;
pub const MAX_HANDOFF_PHRASES: usize = 50;

impl super::faq::FaqList {
    /// Every problem with the FAQ: counts, blank or overlong texts, control characters, the
    /// threshold outside 0–1.
    pub fn validate(&self) -> Result<(), Vec<FlowError>> {
        let mut c = Checker::default();
        if self.entries.len() > MAX_FAQ_ENTRIES {
            c.err("entries", format!("must have at most {MAX_FAQ_ENTRIES}"));
        }
        if !(0.0..=1.0).contains(&self.threshold) {
            c.err("threshold", "must be between 0 and 1");
        }
        for (i, e) in self.entries.iter().take(MAX_FAQ_ENTRIES).enumerate() {
            if e.phrasings.is_empty() || e.phrasings.len() > MAX_PHRASINGS {
                c.err(
                    format!("entries[{i}].phrasings"),
                    format!("must have between 1 and {MAX_PHRASINGS}"),
                );
            }
            for (j, p) in e.phrasings.iter().take(MAX_PHRASINGS).enumerate() {
                c.text(&format!("entries[{i}].phrasings[{j}]"), p, 200);
            }
            c.text(&format!("entries[{i}].answer"), &e.answer, 2000);
        }
        c.finish()
    }
}

/// Checks configured handoff phrases.
pub fn validate_phrases(phrases: &[String]) -> Result<(), Vec<FlowError>> {
    let mut c = Checker::default();
    if phrases.len() > MAX_HANDOFF_PHRASES {
        c.err(
            "handoff_phrases",
            format!("must have at most {MAX_HANDOFF_PHRASES}"),
        );
    }
    for (i, p) in phrases.iter().take(MAX_HANDOFF_PHRASES).enumerate() {
        c.text(&format!("handoff_phrases[{i}]"), p, 100);
    }
    c.finish()
}

impl Checker {
    fn finish(self) -> Result<(), Vec<FlowError>> {
        if self.errors.is_empty() {
            Ok(())
        } else {
            Err(self.errors)
        }
    }

    fn err(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.errors.push(FlowError {
            path: path.into(),
            message: message.into(),
        });
    }

    fn text(&mut self, path: &str, s: &str, max: usize) {
        if s.trim().is_empty() {
            self.err(path, "must not be empty");
        } else if chars(s) > max {
            self.err(path, format!("must be at most {max} characters"));
        } else if crate::validate::has_forbidden_control(s) {
            self.err(path, "must not contain control characters");
        }
    }

    fn template(&mut self, path: &str, s: &str, max: usize) {
        self.text(path, s, max);
        if let Err(e) = template::check(s) {
            self.err(path, e);
        }
    }

    fn field(&mut self, path: &str, s: &str) {
        if !is_field_name(s) {
            self.err(
                path,
                format!(
                    "{s:?} is not a field name (a-z, 0-9 and _, starting with a letter, at most {MAX_FIELD_CHARS})"
                ),
            );
        }
    }

    fn tag(&mut self, path: &str, s: &str) {
        if let Err(e) = crate::validate::TagName::parse(s) {
            self.err(path, e.message);
        }
    }

    fn secs(&mut self, path: &str, s: u64) {
        if s == 0 || s > MAX_DELAY_SECS {
            self.err(
                path,
                format!("must be between 1 and {MAX_DELAY_SECS} seconds"),
            );
        }
    }

    fn count(&mut self, path: &str, n: usize, min: usize, max: usize) {
        if n < min || n > max {
            self.err(
                path,
                if min == max {
                    format!("must have exactly {min}")
                } else {
                    format!("must have between {min} and {max}, not {n}")
                },
            );
        }
    }

    fn flow(&mut self, f: &Flow) {
        self.text("name", &f.name, MAX_NAME_CHARS);
        if f.version == 0 {
            self.err("version", "must be at least 1");
        }
        self.count("triggers", f.triggers.len(), 1, MAX_TRIGGERS);
        for (i, t) in f.triggers.iter().enumerate() {
            self.trigger(&format!("triggers[{i}]"), t);
        }
        // A comment step acts on the comment that started the run: only a comment trigger has one.
        let on_comment = f
            .triggers
            .iter()
            .all(|t| matches!(t, Trigger::Comment { .. }));
        for s in &f.steps {
            if s.action.is_comment_step() && !on_comment {
                self.err(
                    format!("steps[{}]", s.id),
                    "acts on a comment: only a flow started by a comment (a comment rule) has one",
                );
            }
        }
        if !(1..=MAX_MAX_STEPS).contains(&f.guards.max_steps) {
            self.err(
                "guards.max_steps",
                format!("must be between 1 and {MAX_MAX_STEPS}"),
            );
        }
        if let Some(s) = f.guards.retrigger_after_secs {
            self.secs("guards.retrigger_after_secs", s);
        }
        self.count("steps", f.steps.len(), 1, MAX_STEPS);
        let mut ids = HashSet::new();
        for s in &f.steps {
            if !is_step_id(&s.id) {
                self.err(
                    format!("steps[{}].id", s.id),
                    format!("must be 1 to {MAX_STEP_ID_CHARS} of letters, digits, '_' and '-'"),
                );
            }
            if !ids.insert(s.id.as_str()) {
                self.err(format!("steps[{}].id", s.id), "is used by another step");
            }
        }
        if f.step(&f.start).is_none() {
            self.err("start", format!("no step has the id {:?}", f.start));
        }
        for s in &f.steps {
            let at = format!("steps[{}]", s.id);
            self.action(&at, &s.action);
            for (field, target) in s.action.targets() {
                if !ids.contains(target) {
                    self.err(
                        format!("{at}.{field}"),
                        format!("no step has the id {target:?}"),
                    );
                }
                if target == s.id
                    && !matches!(
                        s.action,
                        Action::Wait { .. } | Action::Ask { .. } | Action::Http(_)
                    )
                {
                    self.err(
                        format!("{at}.{field}"),
                        "a step cannot lead straight back to itself",
                    );
                }
            }
        }
        // Reachability from the start.
        let mut seen: BTreeSet<&str> = BTreeSet::new();
        let mut queue: VecDeque<&str> = VecDeque::new();
        if ids.contains(f.start.as_str()) {
            queue.push_back(f.start.as_str());
        }
        while let Some(id) = queue.pop_front() {
            if !seen.insert(id) {
                continue;
            }
            if let Some(step) = f.step(id) {
                queue.extend(step.action.targets().into_iter().map(|(_, t)| t));
            }
        }
        if ids.contains(f.start.as_str()) {
            for s in &f.steps {
                if !seen.contains(s.id.as_str()) {
                    self.err(
                        format!("steps[{}]", s.id),
                        "cannot be reached from the start step",
                    );
                }
            }
        }
    }

    fn trigger(&mut self, at: &str, t: &Trigger) {
        match t {
            Trigger::Keyword { mode, keywords, .. } => {
                self.count(&format!("{at}.keywords"), keywords.len(), 1, MAX_KEYWORDS);
                for (i, k) in keywords.iter().enumerate() {
                    let path = format!("{at}.keywords[{i}]");
                    if *mode == KeywordMode::Regex {
                        self.text(&path, k, MAX_REGEX_CHARS);
                        if let Err(e) = super::matching::compile_regex(k) {
                            self.err(&path, format!("is not a valid regular expression: {e}"));
                        }
                    } else {
                        self.text(&path, k, MAX_KEYWORD_CHARS);
                        if !k.trim().is_empty() && crate::text::words(k).is_empty() {
                            self.err(&path, "must contain a letter or a digit");
                        }
                    }
                }
            }
            Trigger::Payload { payloads } => {
                self.count(&format!("{at}.payloads"), payloads.len(), 1, MAX_KEYWORDS);
                for (i, p) in payloads.iter().enumerate() {
                    self.text(&format!("{at}.payloads[{i}]"), p, MAX_KEYWORD_CHARS);
                }
            }
            Trigger::Referral { refs } => {
                self.count(&format!("{at}.refs"), refs.len(), 0, MAX_KEYWORDS);
                for (i, r) in refs.iter().enumerate() {
                    self.text(&format!("{at}.refs[{i}]"), r, MAX_KEYWORD_CHARS);
                }
            }
            Trigger::TagAdded { tags } => {
                self.count(&format!("{at}.tags"), tags.len(), 0, MAX_KEYWORDS);
                for (i, t) in tags.iter().enumerate() {
                    self.tag(&format!("{at}.tags[{i}]"), t);
                }
            }
            Trigger::FieldChanged { fields } => {
                self.count(&format!("{at}.fields"), fields.len(), 0, MAX_KEYWORDS);
                for (i, f) in fields.iter().enumerate() {
                    self.field(&format!("{at}.fields[{i}]"), f);
                }
            }
            Trigger::NewConversation {}
            | Trigger::HasPhone {}
            | Trigger::HasEmail {}
            | Trigger::OutsideBusinessHours {}
            | Trigger::Resolved {}
            | Trigger::AgentStart {}
            | Trigger::StartedByFlow {}
            | Trigger::ScheduledDue {} => {}
            Trigger::Comment { when } => {
                self.count(&format!("{at}.when"), when.len(), 0, MAX_TRIGGERS);
                for (i, c) in when.iter().enumerate() {
                    self.comment_condition(&format!("{at}.when[{i}]"), c);
                }
            }
        }
    }

    fn comment_condition(&mut self, at: &str, c: &CommentCondition) {
        match c {
            CommentCondition::Keywords { mode, keywords, .. } => {
                self.count(&format!("{at}.keywords"), keywords.len(), 1, MAX_KEYWORDS);
                for (i, k) in keywords.iter().enumerate() {
                    let path = format!("{at}.keywords[{i}]");
                    if *mode == KeywordMode::Regex {
                        self.text(&path, k, MAX_REGEX_CHARS);
                        if let Err(e) = super::matching::compile_regex(k) {
                            self.err(&path, format!("is not a valid regular expression: {e}"));
                        }
                    } else {
                        self.text(&path, k, MAX_KEYWORD_CHARS);
                        if !k.trim().is_empty() && crate::text::words(k).is_empty() {
                            self.err(&path, "must contain a letter or a digit");
                        }
                    }
                }
            }
            CommentCondition::ActiveHours { from, to, days } => {
                for (name, v) in [("from", from), ("to", to)] {
                    if Range::parse_time(v).is_none() {
                        self.err(format!("{at}.{name}"), "must be a time HH:MM (00:00–24:00)");
                    }
                }
                if days.iter().any(|d| !(1..=7).contains(d)) {
                    self.err(format!("{at}.days"), "days are 1 (Monday) to 7 (Sunday)");
                }
            }
            CommentCondition::HasPhone {}
            | CommentCondition::HasEmail {}
            | CommentCondition::Any {}
            | CommentCondition::FirstComment {} => {}
        }
    }

    fn message(&mut self, at: &str, m: &MessageSpec) {
        match (&m.text, &m.media) {
            (None, None) => self.err(at, "needs a text or a media file"),
            (Some(t), _) => self.template(&format!("{at}.text"), t, MAX_TEXT_CHARS),
            (None, Some(_)) => {}
        }
        if let Some(media) = &m.media {
            let path = format!("{at}.media.url");
            if !(media.url.starts_with("https://") || media.url.starts_with("http://")) {
                self.err(&path, "must be an http(s) link");
            }
            self.text(&path, &media.url, 2000);
            if !m.buttons.is_empty() {
                self.err(format!("{at}.buttons"), "cannot go with a media file");
            }
        }
        self.count(&format!("{at}.buttons"), m.buttons.len(), 0, MAX_BUTTONS);
        let mut payloads = HashSet::new();
        for (i, b) in m.buttons.iter().enumerate() {
            self.text(
                &format!("{at}.buttons[{i}].title"),
                &b.title,
                MAX_BUTTON_TITLE_CHARS,
            );
            self.text(
                &format!("{at}.buttons[{i}].payload"),
                &b.payload,
                MAX_KEYWORD_CHARS,
            );
            if !payloads.insert(b.payload.as_str()) {
                self.err(
                    format!("{at}.buttons[{i}].payload"),
                    "is used by another button",
                );
            }
        }
    }

    fn condition(&mut self, at: &str, c: &Condition, depth: usize) {
        if depth > MAX_CONDITION_DEPTH {
            self.err(at, format!("nests more than {MAX_CONDITION_DEPTH} deep"));
            return;
        }
        match c {
            Condition::Field { field, op, value } => {
                self.field(&format!("{at}.field"), field);
                match (op.needs_value(), value) {
                    (true, None) => self.err(format!("{at}.value"), "is needed for this op"),
                    (false, Some(_)) => self.err(format!("{at}.value"), "is not used by this op"),
                    (true, Some(v)) => {
                        if chars(v) > MAX_TEXT_CHARS {
                            self.err(
                                format!("{at}.value"),
                                format!("must be at most {MAX_TEXT_CHARS} characters"),
                            );
                        }
                    }
                    (false, None) => {}
                }
            }
            Condition::HasTag { tag } => self.tag(&format!("{at}.tag"), tag),
            Condition::Channel { channels } => {
                self.count(&format!("{at}.channels"), channels.len(), 1, 10)
            }
            Condition::WithinBusinessHours {} | Condition::WindowOpen {} => {}
            Condition::All { of } | Condition::Any { of } => {
                self.count(&format!("{at}.of"), of.len(), 1, MAX_PATHS);
                for (i, c) in of.iter().enumerate() {
                    self.condition(&format!("{at}.of[{i}]"), c, depth + 1);
                }
            }
            Condition::Not { of } => self.condition(&format!("{at}.of"), of, depth + 1),
        }
    }

    fn action(&mut self, at: &str, a: &Action) {
        match a {
            Action::SendMessage { variants, .. } => {
                self.count(&format!("{at}.variants"), variants.len(), 1, MAX_VARIANTS);
                for (i, m) in variants.iter().enumerate() {
                    self.message(&format!("{at}.variants[{i}]"), m);
                }
            }
            Action::Ask {
                question,
                answer,
                save_to,
                retries,
                retry_text,
                timeout_secs,
                ..
            } => {
                self.message(&format!("{at}.question"), question);
                if question.text.is_none() {
                    self.err(format!("{at}.question.text"), "a question needs a text");
                }
                self.field(&format!("{at}.save_to"), save_to);
                if *retries > MAX_RETRIES {
                    self.err(
                        format!("{at}.retries"),
                        format!("must be at most {MAX_RETRIES}"),
                    );
                }
                if let Some(t) = retry_text {
                    self.template(&format!("{at}.retry_text"), t, MAX_TEXT_CHARS);
                }
                if let Some(s) = timeout_secs {
                    self.secs(&format!("{at}.timeout_secs"), *s);
                }
                if let AnswerKind::Choice { choices } = answer {
                    let path = format!("{at}.answer.choices");
                    self.count(&path, choices.len(), 2, MAX_CHOICES);
                    let mut values = HashSet::new();
                    for (i, c) in choices.iter().enumerate() {
                        self.text(
                            &format!("{path}[{i}].title"),
                            &c.title,
                            MAX_BUTTON_TITLE_CHARS,
                        );
                        self.text(&format!("{path}[{i}].value"), &c.value, MAX_KEYWORD_CHARS);
                        if !values.insert(c.value.as_str()) {
                            self.err(format!("{path}[{i}].value"), "is used by another choice");
                        }
                    }
                    if !question.buttons.is_empty() {
                        self.err(
                            format!("{at}.question.buttons"),
                            "a choice question makes its buttons from its choices",
                        );
                    }
                }
            }
            Action::AddTag { tag, .. } | Action::RemoveTag { tag, .. } => {
                self.tag(&format!("{at}.tag"), tag)
            }
            Action::SetField { field, value, .. } => {
                self.field(&format!("{at}.field"), field);
                if chars(value) > MAX_TEXT_CHARS {
                    self.err(
                        format!("{at}.value"),
                        format!("must be at most {MAX_TEXT_CHARS} characters"),
                    );
                }
                if let Err(e) = template::check(value) {
                    self.err(format!("{at}.value"), e);
                }
            }
            Action::Branch { paths, .. } => {
                self.count(&format!("{at}.paths"), paths.len(), 1, MAX_PATHS);
                for (i, p) in paths.iter().enumerate() {
                    self.condition(&format!("{at}.paths[{i}].when"), &p.when, 1);
                }
            }
            Action::Wait {
                seconds,
                until_business_hours,
                ..
            } => match (seconds, until_business_hours) {
                (Some(s), false) => self.secs(&format!("{at}.seconds"), *s),
                (None, true) => {}
                _ => self.err(at, "needs exactly one of seconds and until_business_hours"),
            },
            Action::Split { paths } => {
                self.count(&format!("{at}.paths"), paths.len(), 2, MAX_PATHS);
                for (i, p) in paths.iter().enumerate() {
                    if p.weight == 0 || p.weight > 1000 {
                        self.err(
                            format!("{at}.paths[{i}].weight"),
                            "must be between 1 and 1000",
                        );
                    }
                }
            }
            Action::Http(h) => self.http(at, h),
            Action::Handoff { note } => {
                if let Some(n) = note {
                    self.template(&format!("{at}.note"), n, MAX_TEXT_CHARS);
                }
            }
            Action::FaqBot {
                fallback,
                max_misses,
            } => {
                self.template(&format!("{at}.fallback"), fallback, MAX_TEXT_CHARS);
                if *max_misses == 0 || *max_misses > MAX_RETRIES {
                    self.err(
                        format!("{at}.max_misses"),
                        format!("must be between 1 and {MAX_RETRIES}"),
                    );
                }
            }
            Action::ScheduleFlow {
                delay_secs,
                within_hours,
                ..
            } => {
                if *delay_secs > MAX_DELAY_SECS {
                    self.err(
                        format!("{at}.delay_secs"),
                        format!("must be at most {MAX_DELAY_SECS} seconds"),
                    );
                }
                if let Some(h) = within_hours {
                    match (Range::parse_time(&h.from), Range::parse_time(&h.to)) {
                        (Some(a), Some(b)) if a < b => {}
                        (Some(_), Some(_)) => {
                            self.err(format!("{at}.within_hours"), "must start before it ends")
                        }
                        _ => self.err(format!("{at}.within_hours"), "must be two times HH:MM"),
                    }
                }
            }
            Action::ReplyComment { variants, .. } => {
                self.count(&format!("{at}.variants"), variants.len(), 1, MAX_VARIANTS);
                for (i, v) in variants.iter().enumerate() {
                    self.template(&format!("{at}.variants[{i}]"), v, MAX_TEXT_CHARS);
                }
            }
            Action::PrivateReply { text, .. } => {
                self.template(&format!("{at}.text"), text, MAX_TEXT_CHARS)
            }
            Action::HideComment { .. } | Action::LikeComment { .. } | Action::Assign { .. } => {}
            Action::Resolve {}
            | Action::StartFlow { .. }
            | Action::CancelScheduledFlow { .. }
            | Action::Stop {} => {}
        }
    }

    fn http(&mut self, at: &str, h: &HttpSpec) {
        let url = format!("{at}.url");
        self.template(&url, &h.url, 2000);
        if !(h.url.starts_with("https://") || h.url.starts_with("http://")) {
            self.err(&url, "must start with https:// or http://");
        } else if h.url.split("://").nth(1).is_some_and(|rest| {
            rest.split(['/', '?', '#'])
                .next()
                .is_some_and(|host| host.contains("{{"))
        }) {
            // A variable in the host would let a customer's answer pick the server we call.
            self.err(&url, "the host must not contain variables");
        }
        if !(1..=MAX_HTTP_TIMEOUT_SECS).contains(&h.timeout_secs) {
            self.err(
                format!("{at}.timeout_secs"),
                format!("must be between 1 and {MAX_HTTP_TIMEOUT_SECS}"),
            );
        }
        self.count(&format!("{at}.headers"), h.headers.len(), 0, MAX_HEADERS);
        for (k, v) in &h.headers {
            let path = format!("{at}.headers.{k}");
            let token = !k.is_empty()
                && k.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c));
            if !token {
                self.err(&path, "is not a valid header name");
            }
            if v.contains(['\r', '\n']) {
                self.err(&path, "must be one line");
            }
            if let Err(e) = template::check(v) {
                self.err(&path, e);
            }
        }
        if let Some(body) = &h.body {
            if h.method == HttpMethod::Get {
                self.err(format!("{at}.body"), "a GET request has no body");
            }
            if let Err(e) = template::check_json(body) {
                self.err(format!("{at}.body"), e);
            }
        }
        self.count(&format!("{at}.save"), h.save.len(), 0, MAX_SAVED_FIELDS);
        for (i, s) in h.save.iter().enumerate() {
            self.text(&format!("{at}.save[{i}].path"), &s.path, 200);
            self.field(&format!("{at}.save[{i}].field"), &s.field);
        }
    }
}
