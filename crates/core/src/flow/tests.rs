//! Flows end to end in the core: import, validation, triggers, guards and the engine.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::engine::{compare, json_path, within};
use super::model::*;
use super::*;
use crate::business_hours::{BusinessHours, Date, Range, timestamp_at};
use crate::ids::{FlowId, InboxId};
use crate::model::ChannelKind;
use crate::outbound::{Choices, Content};
use crate::time::Timestamp;
use serde_json::json;
use std::collections::{BTreeMap, BTreeSet};

const VN: i32 = 420;
const DOCS: &str = include_str!("../../../../docs/flows.md");

/// The first ```json block of docs/flows.md.
fn docs_example() -> String {
    let start = DOCS.find("```json\n").unwrap() + "```json\n".len();
    let end = DOCS[start..].find("```").unwrap() + start;
    DOCS[start..end].to_owned()
}

/// Monday 21 September 2026, local time.
fn monday(time: &str) -> Timestamp {
    timestamp_at(
        Date::parse("2026-09-21").unwrap(),
        Range::parse_time(time).unwrap(),
        VN,
    )
}

/// Mon–Sat 08:00–17:00.
fn hours() -> BusinessHours {
    let day = vec![Range {
        start: 8 * 60,
        end: 17 * 60,
    }];
    BusinessHours {
        utc_offset_minutes: VN,
        days: [
            day.clone(),
            day.clone(),
            day.clone(),
            day.clone(),
            day.clone(),
            day,
            vec![],
        ],
        holidays: vec![],
        pause_routing: false,
        auto_reply: None,
    }
}

fn flow(v: serde_json::Value) -> Flow {
    let f: Flow = serde_json::from_value(v).unwrap();
    if let Err(e) = f.validate() {
        panic!("invalid test flow: {e:?}");
    }
    f
}

/// A flow of these steps, started by an agent.
fn steps(start: &str, steps: serde_json::Value) -> Flow {
    flow(json!({
        "name": "test", "version": 1, "triggers": [{"type": "agent_start"}],
        "start": start, "steps": steps,
    }))
}

struct World {
    channel: ChannelKind,
    fields: BTreeMap<String, String>,
    tags: BTreeSet<String>,
    hours: Option<BusinessHours>,
    window_open: bool,
    faq: Option<Faq>,
    phrases: HandoffPhrases,
    random: f64,
}

impl World {
    fn new() -> Self {
        Self {
            channel: ChannelKind::Messenger,
            fields: BTreeMap::from([("name".to_owned(), "Lan".to_owned())]),
            tags: BTreeSet::new(),
            hours: None,
            window_open: true,
            faq: None,
            phrases: HandoffPhrases::default(),
            random: 0.0,
        }
    }

    fn step(
        &mut self,
        flow: &Flow,
        state: &RunState,
        input: Input<'_>,
        now: Timestamp,
    ) -> (RunState, Vec<Effect>) {
        let ctx = Context {
            channel: self.channel,
            fields: &self.fields,
            tags: &self.tags,
            business_hours: self.hours.as_ref(),
            utc_offset_minutes: VN,
            window_open: self.window_open,
            faq: self.faq.as_ref(),
            handoff_phrases: &self.phrases,
        };
        let r = self.random;
        let out = step(flow, state, input, &ctx, now, &mut || r);
        // The server saves what the run saved.
        for e in &out.1 {
            match e {
                Effect::SaveField { field, value } => {
                    self.fields.insert(field.clone(), value.clone());
                }
                Effect::AddTag(t) => {
                    self.tags.insert(t.clone());
                }
                Effect::RemoveTag(t) => {
                    self.tags.remove(t);
                }
                _ => {}
            }
        }
        out
    }

    fn start(&mut self, flow: &Flow, now: Timestamp) -> (RunState, Vec<Effect>) {
        self.step(flow, &RunState::new(flow, now, 0), Input::Start, now)
    }
}

/// What the customer would read, one string per message.
fn sent(effects: &[Effect]) -> Vec<String> {
    effects
        .iter()
        .filter_map(|e| match e {
            Effect::Send(Content::Text(t)) => Some(t.clone()),
            Effect::Send(Content::Interactive(i)) => Some(i.body.clone()),
            Effect::Send(Content::Media(m)) => m.caption.clone(),
            _ => None,
        })
        .collect()
}

fn ended(effects: &[Effect]) -> Option<EndReason> {
    effects.iter().find_map(|e| match e {
        Effect::Ended(r) => Some(r.clone()),
        _ => None,
    })
}

fn saved(effects: &[Effect]) -> Vec<(String, String)> {
    effects
        .iter()
        .filter_map(|e| match e {
            Effect::SaveField { field, value } => Some((field.clone(), value.clone())),
            _ => None,
        })
        .collect()
}

// ---- the format ----

#[test]
fn the_documented_example_imports_and_round_trips() {
    let f = Flow::import(&docs_example()).unwrap();
    assert_eq!(f.steps.len(), 11);
    assert_eq!(Flow::import(&f.export()).unwrap(), f);
}

#[test]
fn unknown_fields_are_refused_by_name() {
    for (json, needle) in [
        (
            json!({"name": "x", "version": 1, "triggers": [], "start": "a", "steps": [], "colour": 1}),
            "colour",
        ),
        (
            json!({"name": "x", "version": 1, "triggers": [{"type": "has_phone", "strict": true}], "start": "a", "steps": []}),
            "strict",
        ),
        (
            json!({"name": "x", "version": 1, "triggers": [{"type": "agent_start"}], "start": "a",
                   "steps": [{"id": "a", "do": {"type": "stop", "next": "b"}}]}),
            "next",
        ),
        (
            json!({"name": "x", "version": 1, "triggers": [{"type": "agent_start"}], "start": "a",
                   "steps": [{"id": "a", "do": {"type": "http", "method": "GET", "url": "https://x.vn", "retry": 3}}]}),
            "retry",
        ),
        (
            json!({"name": "x", "version": 1, "triggers": [{"type": "telepathy"}], "start": "a", "steps": []}),
            "telepathy",
        ),
    ] {
        match Flow::import(&json.to_string()) {
            Err(ImportError::Json(m)) => assert!(m.contains(needle), "{m}"),
            other => panic!("{needle}: {other:?}"),
        }
    }
}

#[test]
fn validation_names_the_step_and_field() {
    let base = || {
        json!({
            "name": "Chào khách", "version": 1,
            "triggers": [{"type": "keyword", "match": "contains", "keywords": ["giá"]}],
            "start": "greet",
            "steps": [
                {"id": "greet", "do": {"type": "send_message", "variants": [{"text": "Chào {{contact.name}}"}], "next": "ask"}},
                {"id": "ask", "do": {"type": "ask", "question": {"text": "SĐT?"}, "answer": {"type": "phone"}, "save_to": "phone"}}
            ]
        })
    };
    assert!(
        serde_json::from_value::<Flow>(base())
            .unwrap()
            .validate()
            .is_ok()
    );
    type Edit = fn(&mut serde_json::Value);
    let cases: Vec<(Edit, &str, &str)> = vec![
        (|f| f["name"] = json!(" "), "name", "must not be empty"),
        (
            |f| f["name"] = json!("x".repeat(101)),
            "name",
            "at most 100",
        ),
        (|f| f["version"] = json!(0), "version", "at least 1"),
        (
            |f| f["triggers"] = json!([]),
            "triggers",
            "between 1 and 20",
        ),
        (
            |f| f["start"] = json!("begin"),
            "start",
            "no step has the id \"begin\"",
        ),
        (
            |f| f["steps"][0]["do"]["next"] = json!("nowhere"),
            "steps[greet].next",
            "no step has the id \"nowhere\"",
        ),
        (
            |f| f["steps"][0]["do"]["next"] = json!(null),
            "steps[ask]",
            "cannot be reached",
        ),
        (
            |f| f["steps"][1]["id"] = json!("greet"),
            "steps[greet].id",
            "used by another step",
        ),
        (
            |f| f["steps"][1]["id"] = json!("hỏi sđt"),
            "steps[hỏi sđt].id",
            "letters, digits",
        ),
        (
            |f| f["steps"][0]["do"]["next"] = json!("greet"),
            "steps[greet].next",
            "back to itself",
        ),
        (
            |f| f["steps"][1]["do"]["retries"] = json!(11),
            "steps[ask].retries",
            "at most 10",
        ),
        (
            |f| f["steps"][1]["do"]["save_to"] = json!("Số ĐT"),
            "steps[ask].save_to",
            "not a field name",
        ),
        (
            |f| f["steps"][0]["do"]["variants"] = json!([]),
            "steps[greet].variants",
            "between 1 and 10",
        ),
        (
            |f| f["steps"][0]["do"]["variants"][0]["text"] = json!("Chào {{name}}"),
            "steps[greet].variants[0].text",
            "is not a variable",
        ),
        (
            |f| f["steps"][0]["do"]["variants"][0] = json!({}),
            "steps[greet].variants[0]",
            "needs a text or a media file",
        ),
        (
            |f| {
                f["steps"][1]["do"]["answer"] =
                    json!({"type": "choice", "choices": [{"title": "S", "value": "S"}]})
            },
            "steps[ask].answer.choices",
            "between 2 and 10",
        ),
        (
            |f| {
                f["triggers"][0] =
                    json!({"type": "keyword", "match": "regex", "keywords": ["gi(á"]})
            },
            "triggers[0].keywords[0]",
            "not a valid regular expression",
        ),
        (
            |f| f["triggers"][0]["keywords"] = json!(["?!"]),
            "triggers[0].keywords[0]",
            "a letter or a digit",
        ),
        (
            |f| f["guards"] = json!({"max_steps": 0}),
            "guards.max_steps",
            "between 1 and 500",
        ),
        (
            |f| {
                f["steps"][1]["do"] =
                    json!({"type": "wait", "seconds": 60, "until_business_hours": true})
            },
            "steps[ask]",
            "exactly one",
        ),
        (
            |f| {
                f["steps"][1]["do"] =
                    json!({"type": "split", "paths": [{"weight": 1, "next": "greet"}]})
            },
            "steps[ask].paths",
            "between 2 and 10",
        ),
        (
            |f| {
                f["steps"][1]["do"] =
                    json!({"type": "http", "method": "GET", "url": "https://{{contact.host}}/x"})
            },
            "steps[ask].url",
            "host must not contain variables",
        ),
        (
            |f| {
                f["steps"][1]["do"] =
                    json!({"type": "http", "method": "GET", "url": "ftp://x.vn", "body": {}})
            },
            "steps[ask].url",
            "https://",
        ),
        (
            |f| {
                f["steps"][1]["do"] =
                    json!({"type": "http", "method": "GET", "url": "https://x.vn", "body": {}})
            },
            "steps[ask].body",
            "GET request has no body",
        ),
        (
            |f| f["steps"][1]["do"] = json!({"type": "http", "method": "POST", "url": "https://x.vn", "timeout_secs": 60}),
            "steps[ask].timeout_secs",
            "between 1 and 30",
        ),
        (
            |f| f["steps"][1]["do"] = json!({"type": "add_tag", "tag": "a,b"}),
            "steps[ask].tag",
            "commas",
        ),
        (
            |f| f["steps"][1]["do"] = json!({"type": "branch", "paths": [{"when": {"type": "field", "field": "total", "op": "gt"}, "next": "greet"}]}),
            "steps[ask].paths[0].when.value",
            "needed",
        ),
        (
            |f| f["steps"][1]["do"] = json!({"type": "schedule_flow", "flow": FlowId(uuid::Uuid::nil()), "delay_secs": 60, "within_hours": {"from": "17:00", "to": "08:00"}}),
            "steps[ask].within_hours",
            "start before it ends",
        ),
    ];
    for (edit, path, message) in cases {
        let mut v = base();
        edit(&mut v);
        let errors = serde_json::from_value::<Flow>(v)
            .unwrap()
            .validate()
            .expect_err(path);
        assert!(
            errors
                .iter()
                .any(|e| e.path == path && e.message.contains(message)),
            "{path}: {message}: got {errors:?}"
        );
    }
}

#[test]
fn limits_on_counts() {
    let many_steps: Vec<_> = (0..101)
        .map(|i| json!({"id": format!("s{i}"), "do": {"type": "stop"}}))
        .collect();
    let f: Flow = serde_json::from_value(json!({
        "name": "x", "version": 1, "triggers": [{"type": "agent_start"}], "start": "s0", "steps": many_steps,
    }))
    .unwrap();
    let errors = f.validate().unwrap_err();
    assert!(
        errors
            .iter()
            .any(|e| e.path == "steps" && e.message.contains("between 1 and 100"))
    );
}

// ---- triggers ----

fn keyword_flow(mode: &str, keywords: &[&str], fold: bool) -> Flow {
    flow(json!({
        "name": "kw", "version": 1,
        "triggers": [{"type": "keyword", "match": mode, "keywords": keywords, "ignore_diacritics": fold}],
        "start": "a", "steps": [{"id": "a", "do": {"type": "stop"}}],
    }))
}

fn matches(
    f: &Flow,
    event: TriggerEvent<'_, u32>,
    hours: Option<&BusinessHours>,
    now: Timestamp,
) -> bool {
    let m = FlowMatcher::compile([(1u32, f)]);
    let ctx = MatchContext {
        inbox: InboxId(uuid::Uuid::nil()),
        business_hours: hours,
        now,
    };
    !m.matching(&event, &ctx).is_empty()
}

fn says(text: &str) -> TriggerEvent<'_, u32> {
    TriggerEvent::Message { text, first: false }
}

#[test]
fn keyword_modes() {
    let now = monday("10:00");
    for (mode, keyword, fold, message, want) in [
        ("exact", "giá", true, "Giá?", true),
        ("exact", "giá", true, "gia", true),
        ("exact", "giá", true, "giá áo", false),
        ("exact", "bao nhiêu", true, "  BAO   NHIÊU  ", true),
        ("contains", "giá", true, "Cho hỏi giá áo", true),
        ("contains", "ship", true, "shipper ơi", true),
        ("contains", "bao nhiêu", true, "áo này bao nhiêu vậy", true),
        ("contains", "giá", true, "hello", false),
        ("whole_word", "giá", true, "Cho hỏi GIÁ áo", true),
        ("whole_word", "ship", true, "shipper ơi", false),
        (
            "whole_word",
            "bao nhiêu tiền",
            true,
            "bao nhiêu tiền vậy",
            true,
        ),
        (
            "whole_word",
            "bao nhiêu tiền",
            true,
            "tiền bao nhiêu",
            false,
        ),
        ("starts_with", "ship", true, "shipper ơi", true),
        ("starts_with", "giá", true, "Cho hỏi giá", false),
        ("starts_with", "đặt hàng", true, "Dat hang 2 ao", true),
        // Diacritics kept: giá is not gia (nor già).
        ("whole_word", "giá", false, "giá bao nhiêu", true),
        ("whole_word", "giá", false, "gia bao nhieu", false),
        ("whole_word", "giá", false, "GIÁ", true),
        // Đ folds to d.
        ("whole_word", "đơn hàng", true, "DON HANG cua em", true),
        // Decomposed input folds like precomposed.
        ("whole_word", "giá", true, "gia\u{301} ao", true),
        (
            "regex",
            r"\bsize\s*(s|m|l|xl)\b",
            true,
            "Em lấy size XL nhé",
            true,
        ),
        ("regex", r"^gia\b", true, "Giá bao nhiêu", true),
        ("regex", r"\d{3,}k", true, "tầm 500k", true),
        ("regex", r"\d{3,}k", true, "tầm 50k", false),
    ] {
        let f = keyword_flow(mode, &[keyword], fold);
        assert_eq!(
            matches(&f, says(message), None, now),
            want,
            "{mode} {keyword:?} (fold {fold}) vs {message:?}"
        );
    }
}

#[test]
fn other_trigger_kinds() {
    let now = monday("10:00");
    let night = monday("22:00");
    let h = hours();
    let t = |trigger: serde_json::Value| {
        flow(json!({
            "name": "t", "version": 1, "triggers": [trigger], "start": "a",
            "steps": [{"id": "a", "do": {"type": "stop"}}],
        }))
    };
    let key = 1u32;
    let other = 2u32;
    for (trigger, event, at, want) in [
        (
            json!({"type": "new_conversation"}),
            TriggerEvent::Message {
                text: "hi",
                first: true,
            },
            now,
            true,
        ),
        (json!({"type": "new_conversation"}), says("hi"), now, false),
        (
            json!({"type": "has_phone"}),
            says("sđt em 0912 345 678 ạ"),
            now,
            true,
        ),
        (
            json!({"type": "has_phone"}),
            says("mã đơn 123456"),
            now,
            false,
        ),
        (
            json!({"type": "has_email"}),
            says("mail: lan@shop.vn"),
            now,
            true,
        ),
        (
            json!({"type": "has_email"}),
            says("không có mail"),
            now,
            false,
        ),
        (
            json!({"type": "payload", "payloads": ["GET_STARTED"]}),
            TriggerEvent::Payload("GET_STARTED"),
            now,
            true,
        ),
        (
            json!({"type": "payload", "payloads": ["GET_STARTED"]}),
            TriggerEvent::Payload("OTHER"),
            now,
            false,
        ),
        (
            json!({"type": "payload", "payloads": ["GET_STARTED"]}),
            says("GET_STARTED"),
            now,
            false,
        ),
        (
            json!({"type": "referral", "refs": ["ads-tet"]}),
            TriggerEvent::Referral("ads-tet"),
            now,
            true,
        ),
        (
            json!({"type": "referral", "refs": ["ads-tet"]}),
            TriggerEvent::Referral("other"),
            now,
            false,
        ),
        (
            json!({"type": "referral"}),
            TriggerEvent::Referral("anything"),
            now,
            true,
        ),
        (
            json!({"type": "outside_business_hours"}),
            says("alo"),
            night,
            true,
        ),
        (
            json!({"type": "outside_business_hours"}),
            says("alo"),
            now,
            false,
        ),
        (
            json!({"type": "resolved"}),
            TriggerEvent::Resolved,
            now,
            true,
        ),
        (json!({"type": "resolved"}), says("x"), now, false),
        (
            json!({"type": "tag_added", "tags": ["vip"]}),
            TriggerEvent::TagAdded("VIP"),
            now,
            true,
        ),
        (
            json!({"type": "tag_added", "tags": ["vip"]}),
            TriggerEvent::TagAdded("new"),
            now,
            false,
        ),
        (
            json!({"type": "tag_added"}),
            TriggerEvent::TagAdded("new"),
            now,
            true,
        ),
        (
            json!({"type": "field_changed", "fields": ["phone"]}),
            TriggerEvent::FieldChanged("phone"),
            now,
            true,
        ),
        (
            json!({"type": "field_changed", "fields": ["phone"]}),
            TriggerEvent::FieldChanged("email"),
            now,
            false,
        ),
        (
            json!({"type": "agent_start"}),
            TriggerEvent::AgentStart(&key),
            now,
            true,
        ),
        (
            json!({"type": "agent_start"}),
            TriggerEvent::AgentStart(&other),
            now,
            false,
        ),
        (
            json!({"type": "agent_start"}),
            TriggerEvent::StartedByFlow(&key),
            now,
            false,
        ),
        (
            json!({"type": "started_by_flow"}),
            TriggerEvent::StartedByFlow(&key),
            now,
            true,
        ),
        (
            json!({"type": "scheduled_due"}),
            TriggerEvent::ScheduledDue(&key),
            now,
            true,
        ),
        (
            json!({"type": "scheduled_due"}),
            TriggerEvent::AgentStart(&key),
            now,
            false,
        ),
    ] {
        let f = t(trigger.clone());
        assert_eq!(
            matches(&f, event, Some(&h), at),
            want,
            "{trigger} vs {event:?}"
        );
    }
}

#[test]
fn the_matcher_keeps_to_inboxes_and_reports_every_matching_flow() {
    let shop = InboxId(uuid::Uuid::from_u128(1));
    let other = InboxId(uuid::Uuid::from_u128(2));
    let mut scoped = keyword_flow("contains", &["giá"], true);
    scoped.inboxes = vec![shop];
    let everywhere = keyword_flow("whole_word", &["bao nhiêu", "giá"], true);
    let unrelated = keyword_flow("exact", &["ship"], true);
    let m = FlowMatcher::compile([
        ("scoped", &scoped),
        ("everywhere", &everywhere),
        ("unrelated", &unrelated),
    ]);
    assert_eq!(m.len(), 3);
    let ctx = |inbox| MatchContext {
        inbox,
        business_hours: None,
        now: monday("10:00"),
    };
    let keys = |inbox| {
        m.matching(
            &TriggerEvent::Message {
                text: "Giá bao nhiêu?",
                first: false,
            },
            &ctx(inbox),
        )
        .into_iter()
        .map(|h| *h.flow)
        .collect::<Vec<_>>()
    };
    assert_eq!(keys(shop), ["scoped", "everywhere"]);
    assert_eq!(keys(other), ["everywhere"]);
    // Fifty keyword flows: each message is folded once and checked against all of them.
    let flows: Vec<Flow> = (0..50)
        .map(|i| keyword_flow("whole_word", &[&format!("mã {i}"), "khuyến mãi"], true))
        .collect();
    let m = FlowMatcher::compile(flows.iter().enumerate());
    let hits = m.matching(
        &TriggerEvent::Message {
            text: "Mã 7 còn KHUYEN MAI ko",
            first: false,
        },
        &ctx(shop),
    );
    assert_eq!(hits.len(), 50);
    let hits = m.matching(
        &TriggerEvent::Message {
            text: "mã 7",
            first: false,
        },
        &ctx(shop),
    );
    assert_eq!(hits.iter().map(|h| *h.flow).collect::<Vec<_>>(), [7]);
}

#[test]
fn guards_once_per_contact_and_no_retrigger_within_the_time() {
    let now = monday("10:00");
    let mut f = keyword_flow("contains", &["giá"], true);
    let never = ContactRuns::default();
    let ran = |ago_secs: i64| ContactRuns {
        last_started_at: Some(now.plus_secs(-ago_secs)),
        running: false,
    };
    assert_eq!(may_start(&f, never, now), Ok(()));
    assert_eq!(may_start(&f, ran(1), now), Ok(()));
    assert_eq!(
        may_start(
            &f,
            ContactRuns {
                running: true,
                ..ran(1)
            },
            now
        ),
        Err(NotStarted::AlreadyRunning)
    );
    f.guards.retrigger_after_secs = Some(3600);
    assert_eq!(
        may_start(&f, ran(3599), now),
        Err(NotStarted::TooSoon {
            until: now.plus_secs(1)
        })
    );
    assert_eq!(may_start(&f, ran(3600), now), Ok(()));
    assert_eq!(may_start(&f, never, now), Ok(()));
    f.guards.once_per_contact = true;
    assert_eq!(
        may_start(&f, ran(365 * 86400), now),
        Err(NotStarted::AlreadyRan)
    );
    assert_eq!(may_start(&f, never, now), Ok(()));
}

// ---- the engine ----

#[test]
fn send_message_renders_variables_and_picks_variants_at_random() {
    let f = steps(
        "hi",
        json!([{"id": "hi", "do": {"type": "send_message", "variants": [
            {"text": "Chào {{contact.name | bạn}}!"},
            {"text": "Shop chào {{contact.name | bạn}} ạ"},
            {"text": "Xin chào"}
        ]}}]),
    );
    let now = monday("10:00");
    for (random, fields, want) in [
        (0.0, true, "Chào Lan!"),
        (0.34, true, "Shop chào Lan ạ"),
        (0.99, true, "Xin chào"),
        (1.0, true, "Xin chào"),
        (0.0, false, "Chào bạn!"),
    ] {
        let mut w = World::new();
        w.random = random;
        if !fields {
            w.fields.clear();
        }
        let (state, effects) = w.start(&f, now);
        assert_eq!(sent(&effects), [want], "random {random}");
        assert_eq!(state.ended, Some(EndReason::Completed));
        assert_eq!(effects.last(), Some(&Effect::Ended(EndReason::Completed)));
    }
}

#[test]
fn buttons_and_media() {
    let f = steps(
        "a",
        json!([
            {"id": "a", "do": {"type": "send_message", "variants": [{"text": "Chọn nhé", "buttons": [
                {"payload": "MUA", "title": "Mua ngay"}, {"payload": "HOI", "title": "Hỏi thêm"}]}], "next": "b"}},
            {"id": "b", "do": {"type": "send_message", "variants": [{"text": "Mẫu mới của {{contact.name}}", "media": {"kind": "image", "url": "https://cdn.shop.vn/ao.jpg"}}]}}
        ]),
    );
    let (_, effects) = World::new().start(&f, monday("10:00"));
    let sends: Vec<&Content> = effects
        .iter()
        .filter_map(|e| match e {
            Effect::Send(c) => Some(c),
            _ => None,
        })
        .collect();
    match sends[0] {
        Content::Interactive(i) => {
            assert_eq!(i.body, "Chọn nhé");
            let Choices::Buttons(b) = &i.choices else {
                panic!()
            };
            assert_eq!(
                b.iter()
                    .map(|c| (c.id.as_str(), c.title.as_str()))
                    .collect::<Vec<_>>(),
                [("MUA", "Mua ngay"), ("HOI", "Hỏi thêm")]
            );
        }
        other => panic!("{other:?}"),
    }
    match sends[1] {
        Content::Media(m) => {
            assert_eq!(m.caption.as_deref(), Some("Mẫu mới của Lan"));
            assert_eq!(
                m.source,
                crate::outbound::MediaSource::Link("https://cdn.shop.vn/ao.jpg".into())
            );
        }
        other => panic!("{other:?}"),
    }
}

fn phone_flow(retries: u8) -> Flow {
    steps(
        "ask",
        json!([
            {"id": "ask", "do": {"type": "ask", "question": {"text": "Cho shop xin SĐT ạ?"},
                "answer": {"type": "phone"}, "save_to": "phone", "retries": retries,
                "retry_text": "Số chưa đúng, nhập lại giúp shop nhé", "timeout_secs": 600,
                "timeout_next": "later", "next": "thanks"}},
            {"id": "thanks", "do": {"type": "send_message", "variants": [{"text": "Shop sẽ gọi {{contact.phone}} ạ"}]}},
            {"id": "later", "do": {"type": "send_message", "variants": [{"text": "Khi nào tiện anh/chị nhắn shop nhé"}]}}
        ]),
    )
}

#[test]
fn a_phone_question_re_asks_then_saves_e164() {
    let f = phone_flow(2);
    let mut w = World::new();
    let t0 = monday("10:00");
    let (s, e) = w.start(&f, t0);
    assert_eq!(sent(&e), ["Cho shop xin SĐT ạ?"]);
    assert!(e.contains(&Effect::WakeAt(t0.plus_secs(600))));
    assert_eq!(s.wakes_at(), Some(t0.plus_secs(600)));
    let (s, e) = w.step(&f, &s, Input::Message("abc"), t0.plus_secs(10));
    assert_eq!(sent(&e), ["Số chưa đúng, nhập lại giúp shop nhé"]);
    assert!(saved(&e).is_empty());
    assert!(!s.is_ended());
    let (s, e) = w.step(&f, &s, Input::Message("0912 345 678"), t0.plus_secs(20));
    assert_eq!(saved(&e), [("phone".to_owned(), "+84912345678".to_owned())]);
    assert_eq!(sent(&e), ["Shop sẽ gọi +84912345678 ạ"]);
    assert_eq!(s.ended, Some(EndReason::Completed));
}

#[test]
fn wrong_answers_use_up_the_retries_then_take_the_timeout_path() {
    for retries in [0u8, 1, 2, 3] {
        let f = phone_flow(retries);
        let mut w = World::new();
        let t0 = monday("10:00");
        let (mut s, _) = w.start(&f, t0);
        for attempt in 0..retries {
            let (next, e) = w.step(&f, &s, Input::Message("abc"), t0);
            assert_eq!(
                sent(&e),
                ["Số chưa đúng, nhập lại giúp shop nhé"],
                "retries {retries}, attempt {attempt}"
            );
            s = next;
        }
        let (s, e) = w.step(&f, &s, Input::Message("abc"), t0);
        assert_eq!(
            sent(&e),
            ["Khi nào tiện anh/chị nhắn shop nhé"],
            "retries {retries}"
        );
        assert_eq!(s.ended, Some(EndReason::Completed));
    }
}

#[test]
fn a_question_times_out_only_at_its_deadline() {
    let f = phone_flow(2);
    let mut w = World::new();
    let t0 = monday("10:00");
    let (s, _) = w.start(&f, t0);
    // An early (stale) timer does nothing.
    let (early, e) = w.step(&f, &s, Input::Timer, t0.plus_secs(599));
    assert!(e.is_empty());
    assert_eq!(early, s);
    let (s, e) = w.step(&f, &s, Input::Timer, t0.plus_secs(600));
    assert_eq!(sent(&e), ["Khi nào tiện anh/chị nhắn shop nhé"]);
    assert!(s.is_ended());
    // Without a timeout path, the run ends with no answer.
    let mut bare = phone_flow(0);
    bare.steps.truncate(2);
    if let Action::Ask { timeout_next, .. } = &mut bare.steps[0].action {
        *timeout_next = None;
    }
    let (s, _) = w.start(&bare, t0);
    let (s, e) = w.step(&bare, &s, Input::Message("không"), t0);
    assert_eq!(s.ended, Some(EndReason::NoAnswer));
    assert_eq!(ended(&e), Some(EndReason::NoAnswer));
}

#[test]
fn answers_of_every_kind() {
    let ask = |answer: serde_json::Value| {
        steps(
            "q",
            json!([
                {"id": "q", "do": {"type": "ask", "question": {"text": "?"}, "answer": answer, "save_to": "x", "retries": 0, "timeout_next": "bad", "next": "ok"}},
                {"id": "ok", "do": {"type": "stop"}},
                {"id": "bad", "do": {"type": "stop"}}
            ]),
        )
    };
    for (answer, reply, want) in [
        (
            json!({"type": "text"}),
            "Nguyễn Thị Lan",
            Some("Nguyễn Thị Lan"),
        ),
        (json!({"type": "number"}), "1.500.000", Some("1500000")),
        (json!({"type": "number"}), "hai", None),
        (
            json!({"type": "phone"}),
            "+84 912 345 678",
            Some("+84912345678"),
        ),
        (
            json!({"type": "phone"}),
            "84912345678",
            Some("+84912345678"),
        ),
        (
            json!({"type": "phone"}),
            "0912.345.678",
            Some("+84912345678"),
        ),
        (json!({"type": "phone"}), "12345", None),
        (json!({"type": "email"}), "Lan@Shop.vn", Some("lan@shop.vn")),
        (json!({"type": "email"}), "lan at shop", None),
        (
            json!({"type": "choice", "choices": [{"title": "Size S", "value": "S"}, {"title": "Size M", "value": "M"}]}),
            "size m",
            Some("M"),
        ),
        (
            json!({"type": "choice", "choices": [{"title": "Size S", "value": "S"}, {"title": "Size M", "value": "M"}]}),
            "1",
            Some("S"),
        ),
        (
            json!({"type": "choice", "choices": [{"title": "Size S", "value": "S"}, {"title": "Size M", "value": "M"}]}),
            "XL",
            None,
        ),
    ] {
        let f = ask(answer.clone());
        let mut w = World::new();
        let (s, _) = w.start(&f, monday("10:00"));
        let (_, e) = w.step(&f, &s, Input::Message(reply), monday("10:01"));
        let got = saved(&e).into_iter().next().map(|(_, v)| v);
        assert_eq!(got.as_deref(), want, "{answer} ← {reply:?}");
        let path = if want.is_some() { "ok" } else { "bad" };
        assert!(
            e.iter().any(|e| matches!(e, Effect::Log(l) if l.step.as_deref() == Some(path) && l.event == "step.stop")),
            "{answer} ← {reply:?}: {e:?}"
        );
    }
}

#[test]
fn a_choice_question_sends_buttons_and_follows_the_choice() {
    let f = steps(
        "q",
        json!([
            {"id": "q", "do": {"type": "ask", "question": {"text": "Giao hàng thế nào ạ?"},
                "answer": {"type": "choice", "choices": [
                    {"title": "Giao nhanh", "value": "fast", "next": "fast"},
                    {"title": "Tại cửa hàng", "value": "pickup"}]},
                "save_to": "delivery", "next": "done"}},
            {"id": "fast", "do": {"type": "send_message", "variants": [{"text": "Phí giao nhanh 30k ạ"}]}},
            {"id": "done", "do": {"type": "send_message", "variants": [{"text": "Dạ vâng"}]}}
        ]),
    );
    let mut w = World::new();
    let (s, e) = w.start(&f, monday("10:00"));
    let Some(Effect::Send(Content::Interactive(i))) =
        e.iter().find(|e| matches!(e, Effect::Send(_)))
    else {
        panic!("{e:?}");
    };
    assert_eq!(
        i.all_choices()
            .iter()
            .map(|c| c.id.as_str())
            .collect::<Vec<_>>(),
        ["fast", "pickup"]
    );
    // A tap sends the payload; a typed number works where buttons became a numbered list.
    for (input, want) in [
        (Input::Payload("fast"), "Phí giao nhanh 30k ạ"),
        (Input::Message("2"), "Dạ vâng"),
    ] {
        let (_, e) = w.step(&f, &s, input, monday("10:01"));
        assert_eq!(sent(&e), [want], "{input:?}");
    }
    // A payload while nothing is asked does nothing.
    let (done, _) = w.step(&f, &s, Input::Payload("fast"), monday("10:01"));
    let (_, e) = w.step(&f, &done, Input::Payload("fast"), monday("10:02"));
    assert!(e.is_empty());
}

#[test]
fn tags_fields_and_branches() {
    let f = steps(
        "tag",
        json!([
            {"id": "tag", "do": {"type": "add_tag", "tag": "Khách VIP", "next": "untag"}},
            {"id": "untag", "do": {"type": "remove_tag", "tag": "mới", "next": "set"}},
            {"id": "set", "do": {"type": "set_field", "field": "greeting", "value": "Chào {{contact.name}}", "next": "b"}},
            {"id": "b", "do": {"type": "branch", "paths": [
                {"when": {"type": "all", "of": [{"type": "has_tag", "tag": "khách vip"}, {"type": "not", "of": {"type": "has_tag", "tag": "mới"}}]}, "next": "vip"}
            ], "otherwise": "normal"}},
            {"id": "vip", "do": {"type": "send_message", "variants": [{"text": "{{contact.greeting}}, quà VIP"}]}},
            {"id": "normal", "do": {"type": "send_message", "variants": [{"text": "thường"}]}}
        ]),
    );
    let mut w = World::new();
    w.tags.insert("mới".into());
    let (_, e) = w.start(&f, monday("10:00"));
    assert!(e.contains(&Effect::AddTag("khách vip".into())));
    assert!(e.contains(&Effect::RemoveTag("mới".into())));
    // The branch sees this run's own changes at once.
    assert_eq!(sent(&e), ["Chào Lan, quà VIP"]);
    assert_eq!(w.tags, BTreeSet::from(["khách vip".to_owned()]));
}

#[test]
fn branch_conditions() {
    let h = hours();
    let cases: Vec<(serde_json::Value, &str, bool)> = vec![
        (
            json!({"type": "field", "field": "total", "op": "gte", "value": "500000"}),
            "10:00",
            true,
        ),
        (
            json!({"type": "field", "field": "total", "op": "gt", "value": "600.000"}),
            "10:00",
            false,
        ),
        (
            json!({"type": "field", "field": "city", "op": "eq", "value": "ha noi"}),
            "10:00",
            true,
        ),
        (
            json!({"type": "field", "field": "city", "op": "contains", "value": "NỘI"}),
            "10:00",
            true,
        ),
        (
            json!({"type": "field", "field": "email", "op": "is_set"}),
            "10:00",
            false,
        ),
        (
            json!({"type": "field", "field": "email", "op": "is_empty"}),
            "10:00",
            true,
        ),
        (json!({"type": "has_tag", "tag": "VIP"}), "10:00", true),
        (json!({"type": "has_tag", "tag": "spam"}), "10:00", false),
        (
            json!({"type": "channel", "channels": ["zalo", "messenger"]}),
            "10:00",
            true,
        ),
        (
            json!({"type": "channel", "channels": ["telegram"]}),
            "10:00",
            false,
        ),
        (json!({"type": "within_business_hours"}), "10:00", true),
        (json!({"type": "within_business_hours"}), "17:00", false),
        (json!({"type": "window_open"}), "10:00", true),
        (
            json!({"type": "any", "of": [{"type": "has_tag", "tag": "spam"}, {"type": "window_open"}]}),
            "10:00",
            true,
        ),
        (
            json!({"type": "not", "of": {"type": "window_open"}}),
            "10:00",
            false,
        ),
    ];
    for (when, time, want) in cases {
        let f = steps(
            "b",
            json!([
                {"id": "b", "do": {"type": "branch", "paths": [{"when": when, "next": "yes"}], "otherwise": "no"}},
                {"id": "yes", "do": {"type": "send_message", "variants": [{"text": "yes"}]}},
                {"id": "no", "do": {"type": "send_message", "variants": [{"text": "no"}]}}
            ]),
        );
        let mut w = World::new();
        w.hours = Some(h.clone());
        w.fields.insert("total".into(), "550000".into());
        w.fields.insert("city".into(), "Hà Nội".into());
        w.tags.insert("vip".into());
        let (_, e) = w.start(&f, monday(time));
        assert_eq!(
            sent(&e),
            [if want { "yes" } else { "no" }],
            "{when} at {time}"
        );
    }
}

#[test]
fn compare_table() {
    use CompareOp::*;
    for (have, op, value, want) in [
        (Some("10"), Eq, Some("10.0"), true),
        (Some("9"), Lt, Some("10"), true),
        (Some("1.500.000"), Gt, Some("999999"), true),
        (Some("Hà Nội"), Eq, Some("HA NOI"), true),
        (Some("Hà Nội"), Ne, Some("Huế"), true),
        (None, Eq, Some("x"), false),
        (None, Ne, Some("x"), true),
        (Some("  "), IsEmpty, None, true),
        (Some("x"), IsSet, None, true),
        (Some("b"), Gte, Some("a"), true),
        (Some("a"), Lte, Some("a"), true),
    ] {
        assert_eq!(compare(have, op, value), want, "{have:?} {op:?} {value:?}");
    }
}

#[test]
fn waits_for_a_duration_or_until_business_hours() {
    let f = steps(
        "w",
        json!([
            {"id": "w", "do": {"type": "wait", "seconds": 3600, "next": "after"}},
            {"id": "after", "do": {"type": "send_message", "variants": [{"text": "Anh/chị còn quan tâm không ạ?"}]}}
        ]),
    );
    let mut w = World::new();
    let t0 = monday("10:00");
    let (s, e) = w.start(&f, t0);
    assert!(sent(&e).is_empty());
    assert!(e.contains(&Effect::WakeAt(t0.plus_hours(1))));
    // A message while waiting changes nothing.
    let (same, e) = w.step(&f, &s, Input::Message("alo"), t0.plus_secs(5));
    assert!(e.is_empty());
    assert_eq!(same, s);
    let (s, e) = w.step(&f, &s, Input::Timer, t0.plus_hours(1));
    assert_eq!(sent(&e), ["Anh/chị còn quan tâm không ạ?"]);
    assert!(s.is_ended());

    let f = steps(
        "w",
        json!([
            {"id": "w", "do": {"type": "wait", "until_business_hours": true, "next": "after"}},
            {"id": "after", "do": {"type": "send_message", "variants": [{"text": "Chào buổi sáng"}]}}
        ]),
    );
    w.hours = Some(hours());
    for (now, wakes) in [
        (monday("22:00"), Some(monday("08:00").plus_days(1))),
        (monday("07:00"), Some(monday("08:00"))),
        (monday("09:00"), None),
    ] {
        let (s, e) = w.start(&f, now);
        assert_eq!(s.wakes_at(), wakes);
        assert_eq!(sent(&e).is_empty(), wakes.is_some());
    }
    // No business hours configured: open, go on.
    w.hours = None;
    let (_, e) = w.start(&f, monday("22:00"));
    assert_eq!(sent(&e), ["Chào buổi sáng"]);
}

#[test]
fn a_b_split_by_weight_and_the_injected_number() {
    let f = steps(
        "s",
        json!([
            {"id": "s", "do": {"type": "split", "paths": [{"weight": 1, "next": "a"}, {"weight": 3, "next": "b"}]}},
            {"id": "a", "do": {"type": "send_message", "variants": [{"text": "A"}]}},
            {"id": "b", "do": {"type": "send_message", "variants": [{"text": "B"}]}}
        ]),
    );
    for (random, want) in [
        (0.0, "A"),
        (0.24, "A"),
        (0.25, "B"),
        (0.99, "B"),
        (f64::NAN, "A"),
    ] {
        let mut w = World::new();
        w.random = random;
        let (_, e) = w.start(&f, monday("10:00"));
        assert_eq!(sent(&e), [want], "{random}");
    }
}

fn http_flow() -> Flow {
    steps(
        "call",
        json!([
            {"id": "call", "do": {"type": "http", "method": "POST",
                "url": "https://shop.example.vn/don-hang?ten={{contact.name}}",
                "headers": {"X-Khach": "{{contact.name}}"},
                "body": {"phone": "{{contact.phone}}", "qty": 2},
                "timeout_secs": 5,
                "save": [{"path": "data.status", "field": "order_status"}, {"path": "$.data.items.0.eta", "field": "eta"}, {"path": "data.nope", "field": "nope"}],
                "next": "tell", "on_failure": "sorry"}},
            {"id": "tell", "do": {"type": "send_message", "variants": [{"text": "Đơn của {{contact.name}}: {{contact.order_status}}, giao {{contact.eta}}"}]}},
            {"id": "sorry", "do": {"type": "handoff", "note": "Tra đơn lỗi"}}
        ]),
    )
}

#[test]
fn http_success_saves_response_values_used_by_the_next_message() {
    let f = http_flow();
    let mut w = World::new();
    w.fields.insert("name".into(), "Lê Lan".into());
    w.fields.insert("phone".into(), "+84912345678".into());
    let t0 = monday("10:00");
    let (s, e) = w.start(&f, t0);
    let Some(Effect::CallHttp(call)) = e.iter().find(|e| matches!(e, Effect::CallHttp(_))) else {
        panic!("{e:?}");
    };
    assert_eq!(call.method, HttpMethod::Post);
    assert_eq!(
        call.url,
        "https://shop.example.vn/don-hang?ten=L%C3%AA%20Lan"
    );
    assert_eq!(
        call.headers.get("X-Khach").map(String::as_str),
        Some("Lê Lan")
    );
    assert_eq!(call.body, Some(json!({"phone": "+84912345678", "qty": 2})));
    assert_eq!(call.timeout_ms, 5000);
    assert_eq!(s.wakes_at(), Some(t0.plus_secs(5)));
    let ok = HttpOutcome::Response {
        status: 200,
        body: Some(json!({"data": {"status": "đang giao", "items": [{"eta": "thứ Tư"}]}})),
    };
    let (s, e) = w.step(&f, &s, Input::Http(&ok), t0.plus_secs(1));
    assert_eq!(
        saved(&e),
        [
            ("order_status".to_owned(), "đang giao".to_owned()),
            ("eta".to_owned(), "thứ Tư".to_owned())
        ]
    );
    assert_eq!(sent(&e), ["Đơn của Lê Lan: đang giao, giao thứ Tư"]);
    assert!(
        e.iter()
            .any(|e| matches!(e, Effect::Log(l) if l.event == "http.missing_value"))
    );
    assert_eq!(s.ended, Some(EndReason::Completed));
    // The timer after the answer is stale.
    let (_, e) = w.step(&f, &s, Input::Timer, t0.plus_secs(5));
    assert!(e.is_empty());
}

#[test]
fn http_failures_take_the_failure_path() {
    let f = http_flow();
    let t0 = monday("10:00");
    for (input_kind, at) in [("500", 1), ("refused", 1), ("timer", 5)] {
        let mut w = World::new();
        let (s, _) = w.start(&f, t0);
        let outcome = match input_kind {
            "500" => HttpOutcome::Response {
                status: 500,
                body: None,
            },
            _ => HttpOutcome::Failed {
                reason: "connection refused".into(),
            },
        };
        let input = if input_kind == "timer" {
            Input::Timer
        } else {
            Input::Http(&outcome)
        };
        let (s, e) = w.step(&f, &s, input, t0.plus_secs(at));
        assert!(
            e.contains(&Effect::Handoff {
                reason: HandoffReason::Step,
                note: Some("Tra đơn lỗi".into())
            }),
            "{input_kind}: {e:?}"
        );
        assert_eq!(s.ended, Some(EndReason::HandedOff));
        // A late answer after the run moved on changes nothing.
        let late = HttpOutcome::Response {
            status: 200,
            body: None,
        };
        let (_, e) = w.step(&f, &s, Input::Http(&late), t0.plus_secs(9));
        assert!(e.is_empty());
    }
}

#[test]
fn handoff_resolve_start_schedule_cancel_and_stop() {
    let other = FlowId(uuid::Uuid::from_u128(7));
    let now = monday("16:30");
    let run = |step: serde_json::Value| {
        let f = steps("s", json!([{"id": "s", "do": step}]));
        World::new().start(&f, now)
    };
    let (s, e) = run(json!({"type": "handoff", "note": "Khách {{contact.name}} cần tư vấn"}));
    assert!(e.contains(&Effect::Handoff {
        reason: HandoffReason::Step,
        note: Some("Khách Lan cần tư vấn".into())
    }));
    assert_eq!(s.ended, Some(EndReason::HandedOff));
    let (s, e) = run(json!({"type": "resolve"}));
    assert!(e.contains(&Effect::Resolve));
    assert_eq!(s.ended, Some(EndReason::Resolved));
    let (s, e) = run(json!({"type": "start_flow", "flow": other}));
    assert!(e.contains(&Effect::StartFlow {
        flow: other,
        carried_steps: 1
    }));
    assert_eq!(s.ended, Some(EndReason::StartedFlow));
    let (s, e) = run(json!({"type": "stop"}));
    assert_eq!(s.ended, Some(EndReason::Stopped));
    assert!(sent(&e).is_empty());
    // 16:30 + 1 h is after 17:00: moved to 08:00 the next day.
    let (_, e) = run(
        json!({"type": "schedule_flow", "flow": other, "delay_secs": 3600, "within_hours": {"from": "08:00", "to": "17:00"}}),
    );
    assert!(
        e.contains(&Effect::ScheduleFlow {
            flow: other,
            send_at: monday("08:00").plus_days(1)
        }),
        "{e:?}"
    );
    let (_, e) = run(json!({"type": "schedule_flow", "flow": other, "delay_secs": 600}));
    assert!(e.contains(&Effect::ScheduleFlow {
        flow: other,
        send_at: now.plus_secs(600)
    }));
    let (_, e) = run(json!({"type": "cancel_scheduled_flow", "flow": other}));
    assert!(e.contains(&Effect::CancelScheduledFlow { flow: other }));
}

#[test]
fn scheduled_sends_fall_within_the_hours() {
    let h = HoursSpec {
        from: "08:00".into(),
        to: "17:00".into(),
    };
    for (at, want) in [
        (monday("10:00"), monday("10:00")),
        (monday("06:00"), monday("08:00")),
        (monday("17:00"), monday("08:00").plus_days(1)),
        (monday("23:59"), monday("08:00").plus_days(1)),
    ] {
        assert_eq!(within(at, &h, VN), want);
    }
}

fn faq() -> Faq {
    Faq::compile(&FaqList {
        entries: vec![
            FaqEntry {
                phrasings: vec!["giá bao nhiêu".into(), "bao nhiêu tiền".into()],
                answer: "Dạ áo 250k ạ".into(),
            },
            FaqEntry {
                phrasings: vec!["shop ở đâu".into()],
                answer: "Dạ 12 Hàng Bạc ạ".into(),
            },
        ],
        threshold: faq::DEFAULT_THRESHOLD,
    })
}

#[test]
fn the_faq_bot_answers_falls_back_and_hands_off_after_misses() {
    let f = steps(
        "faq",
        json!([{"id": "faq", "do": {"type": "faq_bot", "fallback": "Dạ shop chưa hiểu ạ", "max_misses": 2}}]),
    );
    let mut w = World::new();
    w.faq = Some(faq());
    let t0 = monday("10:00");
    let (s, e) = w.start(&f, t0);
    assert!(sent(&e).is_empty());
    let (s, e) = w.step(&f, &s, Input::Message("Giá bao nhiêu vậy shop?"), t0);
    assert_eq!(sent(&e), ["Dạ áo 250k ạ"]);
    let (s, e) = w.step(&f, &s, Input::Message("hôm nay trời đẹp"), t0);
    assert_eq!(sent(&e), ["Dạ shop chưa hiểu ạ"]);
    // An answer resets the misses in a row.
    let (s, _) = w.step(&f, &s, Input::Message("shop ở đâu"), t0);
    let (s, e) = w.step(&f, &s, Input::Message("abc"), t0);
    assert_eq!(sent(&e), ["Dạ shop chưa hiểu ạ"]);
    let (s, e) = w.step(&f, &s, Input::Message("xyz"), t0);
    assert!(sent(&e).is_empty());
    assert!(e.contains(&Effect::Handoff {
        reason: HandoffReason::NotUnderstood { misses: 2 },
        note: None
    }));
    assert_eq!(s.ended, Some(EndReason::HandedOff));
}

#[test]
fn asking_for_a_human_hands_off_in_any_step() {
    let mut w = World::new();
    let f = phone_flow(2);
    let (s, _) = w.start(&f, monday("10:00"));
    let (s, e) = w.step(
        &f,
        &s,
        Input::Message("cho em gặp nhân viên"),
        monday("10:01"),
    );
    assert_eq!(
        e.first(),
        Some(&Effect::Handoff {
            reason: HandoffReason::AskedForHuman,
            note: None
        })
    );
    assert_eq!(s.ended, Some(EndReason::HandedOff));
    // With the phrases turned off, it is just a wrong answer.
    w.phrases = HandoffPhrases::none();
    let (s, _) = w.start(&f, monday("10:00"));
    let (s, e) = w.step(
        &f,
        &s,
        Input::Message("cho em gặp nhân viên"),
        monday("10:01"),
    );
    assert_eq!(sent(&e), ["Số chưa đúng, nhập lại giúp shop nhé"]);
    assert!(!s.is_ended());
}

#[test]
fn the_loop_guard_ends_runaway_flows_and_says_so() {
    // Two steps leading to each other, no input between: one call runs until the limit.
    let mut f = steps(
        "a",
        json!([
            {"id": "a", "do": {"type": "add_tag", "tag": "x", "next": "b"}},
            {"id": "b", "do": {"type": "remove_tag", "tag": "x", "next": "a"}}
        ]),
    );
    f.guards.max_steps = 10;
    let (s, e) = World::new().start(&f, monday("10:00"));
    assert_eq!(s.ended, Some(EndReason::StepLimit { limit: 10 }));
    assert_eq!(s.steps_taken, 10);
    assert_eq!(
        e.iter()
            .filter(|e| matches!(e, Effect::AddTag(_) | Effect::RemoveTag(_)))
            .count(),
        10
    );
    assert!(e.iter().any(|e| matches!(e, Effect::Log(l) if l.event == "flow.ended" && l.detail.as_deref() == Some("step_limit"))));

    // A flow that starts itself: the count carries into each new run.
    let me = FlowId(uuid::Uuid::from_u128(1));
    let f = steps(
        "hi",
        json!([
            {"id": "hi", "do": {"type": "send_message", "variants": [{"text": "lặp"}], "next": "again"}},
            {"id": "again", "do": {"type": "start_flow", "flow": me}}
        ]),
    );
    let mut w = World::new();
    let mut carried = 0;
    let mut runs = 0;
    let reason = loop {
        runs += 1;
        let (s, e) = w.step(
            &f,
            &RunState::new(&f, monday("10:00"), carried),
            Input::Start,
            monday("10:00"),
        );
        match e.iter().find_map(|e| match e {
            Effect::StartFlow {
                flow,
                carried_steps,
            } => Some((*flow, *carried_steps)),
            _ => None,
        }) {
            Some((flow, steps)) => {
                assert_eq!(flow, me);
                carried = steps;
            }
            None => break s.ended,
        }
        assert!(runs < 100, "the guard never stopped it");
    };
    assert_eq!(
        reason,
        Some(EndReason::StepLimit {
            limit: model::DEFAULT_MAX_STEPS
        })
    );
    assert_eq!(runs, 26);
}

#[test]
fn a_run_keeps_its_version() {
    let v1 = phone_flow(2);
    let mut w = World::new();
    let t0 = monday("10:00");
    let (s, _) = w.start(&v1, t0);
    assert_eq!(s.flow_version, 1);
    // The flow is edited meanwhile: v2 renames the steps.
    let mut v2 = v1.clone();
    v2.version = 2;
    for st in &mut v2.steps {
        st.id = format!("new_{}", st.id);
    }
    // The server must pass the version the run started with; v1 goes on as before.
    let (done, e) = w.step(&v1, &s, Input::Message("0912345678"), t0);
    assert_eq!(sent(&e), ["Shop sẽ gọi +84912345678 ạ"]);
    assert!(done.is_ended());
    let (s2, e) = w.step(&v2, &s, Input::Message("0912345678"), t0);
    assert_eq!(
        s2.ended,
        Some(EndReason::VersionMismatch {
            running: 1,
            given: 2
        })
    );
    assert!(sent(&e).is_empty());
}

#[test]
fn an_agent_taking_over_ends_the_run_and_an_ended_run_ignores_everything() {
    let f = phone_flow(2);
    let mut w = World::new();
    let (s, _) = w.start(&f, monday("10:00"));
    let (s, e) = w.step(&f, &s, Input::AgentTakeOver, monday("10:01"));
    assert_eq!(s.ended, Some(EndReason::TakenOver));
    assert_eq!(ended(&e), Some(EndReason::TakenOver));
    assert!(
        !e.iter()
            .any(|e| matches!(e, Effect::Handoff { .. } | Effect::Send(_)))
    );
    for input in [
        Input::Message("0912345678"),
        Input::Timer,
        Input::Start,
        Input::AgentTakeOver,
    ] {
        let (after, e) = w.step(&f, &s, input, monday("11:00"));
        assert!(e.is_empty(), "{input:?}");
        assert_eq!(after, s);
    }
}

#[test]
fn the_run_state_is_stored_as_json() {
    let f = phone_flow(2);
    let mut w = World::new();
    let (s, _) = w.start(&f, monday("10:00"));
    let (s, _) = w.step(&f, &s, Input::Message("abc"), monday("10:01"));
    let stored = serde_json::to_value(&s).unwrap();
    assert_eq!(stored["flow_version"], 1);
    assert_eq!(stored["at"], "ask");
    assert_eq!(stored["waiting"]["for"], "answer");
    assert_eq!(stored["waiting"]["retries_used"], 1);
    let back: RunState = serde_json::from_value(stored).unwrap();
    assert_eq!(back, s);
}

#[test]
fn json_paths_into_responses() {
    let body = json!({"data": {"status": "ok", "n": 3, "paid": true, "none": null, "items": [{"name": "Áo"}]}});
    for (path, want) in [
        ("data.status", Some("ok")),
        ("$.data.n", Some("3")),
        ("data.paid", Some("true")),
        ("data.items.0.name", Some("Áo")),
        ("data.items.1.name", None),
        ("data.none", None),
        ("data", None),
        ("data.status.x", None),
        ("missing", None),
    ] {
        assert_eq!(json_path(&body, path).as_deref(), want, "{path}");
    }
}

#[test]
fn taps_and_referrals_are_read_from_every_channels_extras() {
    use crate::flow::tapped;
    let cases = [
        (
            json!({"quick_reply_payload": "SIZE_M"}),
            Some("SIZE_M"),
            None,
        ),
        (
            json!({"postback": {"title": "Bắt đầu", "payload": "GET_STARTED", "referral": {"ref": "ads-ao"}}}),
            Some("GET_STARTED"),
            Some("ads-ao"),
        ),
        (
            json!({"referral": {"ref": "quang-cao-ao-thun", "source": "SHORTLINK"}}),
            None,
            Some("quang-cao-ao-thun"),
        ),
        (json!({"callback_data": "GAP_NV"}), Some("GAP_NV"), None),
        (
            json!({"interactive": {"type": "button_reply", "id": "YES", "title": "Có"}}),
            Some("YES"),
            None,
        ),
        (
            json!({"button": {"payload": "STOP", "text": "Dừng"}}),
            Some("STOP"),
            None,
        ),
        (json!({"quick_reply_payload": ""}), None, None),
        (json!(null), None, None),
        (json!({"attachments": [{"type": "image"}]}), None, None),
    ];
    for (meta, payload, referral) in cases {
        let t = tapped(&meta);
        assert_eq!((t.payload, t.referral), (payload, referral), "{meta}");
    }
}

#[test]
fn faq_and_handoff_phrases_are_checked_before_saving() {
    use crate::flow::check::{hours_valid, validate_phrases};
    let ok: FaqList = serde_json::from_value(json!({
        "entries": [{"phrasings": ["giá bao nhiêu", "bao nhiêu tiền"], "answer": "199k ạ"}]
    }))
    .unwrap();
    assert!(ok.validate().is_ok());
    let bad: FaqList = serde_json::from_value(json!({
        "entries": [{"phrasings": [], "answer": " "}, {"phrasings": ["a\u{0007}b"], "answer": "x"}],
        "threshold": 1.5
    }))
    .unwrap();
    let paths: Vec<String> = bad
        .validate()
        .unwrap_err()
        .into_iter()
        .map(|e| e.path)
        .collect();
    assert_eq!(
        paths,
        [
            "threshold",
            "entries[0].phrasings",
            "entries[0].answer",
            "entries[1].phrasings[0]"
        ]
    );
    assert!(validate_phrases(&["gặp chủ shop".into()]).is_ok());
    assert_eq!(
        validate_phrases(&["".into()]).unwrap_err()[0].path,
        "handoff_phrases[0]"
    );
    let h = |from: &str, to: &str| HoursSpec {
        from: from.into(),
        to: to.into(),
    };
    assert!(hours_valid(&h("08:00", "17:00")));
    assert!(!hours_valid(&h("17:00", "08:00")));
    assert!(!hours_valid(&h("8h", "17:00")));
}
