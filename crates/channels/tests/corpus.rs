//! The inbound corpus: real payload shapes per provider (from the providers' documentation and
//! `shared/channels.md`), each with the outcome it must have, run through the same path the
//! server takes (`provider::arrivals`: parse, plausible times, provider time order).
//!
//! A case is `tests/corpus/<provider>/<name>.json`:
//! `{"source": "...", "body": <webhook body>, "expect": [<outcome>, ...]}`, one outcome per
//! event, in order. An outcome is matched as a subset (`{"event": "customer", "text": ...}`): every
//! key given must be there with that value (objects recursively). Events are `customer` (a
//! customer message: counts unread and moves the window), `echo`, `edit`, `unsent`, `reaction`,
//! `receipt`, `status`, `comment_change`, or `effect` (nothing stored, only something done around
//! it). An empty `expect` means acknowledged and nothing stored. A customer message is never a
//! bare placeholder ("[message]", "[unsupported message]") unless the case says
//! `"placeholder": true` (the provider itself says it is unsupported).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use serde_json::{Value, json};
use switchboard_channels::provider::{self, Arrival, Effect, Verified, WebhookRequest};
use switchboard_core::ingest::{InboundEvent, InboundSender};
use switchboard_core::{ChannelKind, Inbox, InboxId, Timestamp, WorkspaceId};

/// When the corpus is received (2026-09-21): what implausible provider times fall back to.
const NOW: Timestamp = Timestamp(1_790_000_000_000);

fn inbox(n: u128, channel: ChannelKind, settings: Value) -> Inbox {
    Inbox {
        id: InboxId(uuid::Uuid::from_u128(n)),
        workspace_id: WorkspaceId(uuid::Uuid::from_u128(1)),
        name: format!("{channel}"),
        channel,
        settings,
        created_at: Timestamp(0),
    }
}

/// The inbox each provider's corpus is for (the accounts its payloads name).
fn inbox_for(dir: &str) -> (Inbox, &'static str) {
    match dir {
        "messenger" => (
            inbox(2, ChannelKind::Messenger, json!({"page_id": "111"})),
            "meta",
        ),
        "instagram" => (
            inbox(3, ChannelKind::Instagram, json!({"ig_account_id": "17841"})),
            "meta",
        ),
        "whatsapp" => (
            inbox(
                4,
                ChannelKind::Whatsapp,
                json!({"phone_number_id": "106540352242922", "waba_id": "102290129340398"}),
            ),
            "whatsapp",
        ),
        "telegram" => (inbox(5, ChannelKind::Telegram, json!({})), "telegram"),
        "zalo" => (
            inbox(
                6,
                ChannelKind::Zalo,
                json!({"oa_id": "388613280878808645", "app_id": "360846524940903967"}),
            ),
            "zalo",
        ),
        "shopee" => (
            inbox(7, ChannelKind::Shopee, json!({"shop_id": "789"})),
            "shopee",
        ),
        other => panic!("no inbox for corpus {other}"),
    }
}

fn sender(s: &InboundSender) -> Value {
    match s {
        InboundSender::Identity { external_id, name } => json!({"id": external_id, "name": name}),
        InboundSender::Contact(c) => json!({"contact": c}),
    }
}

/// One arrival as the corpus states outcomes.
fn outcome(a: &Arrival) -> Value {
    let Some(e) = &a.event else {
        let effects: Vec<String> = a
            .effects
            .iter()
            .map(|e| {
                format!("{e:?}")
                    .split([' ', '(', '{'])
                    .next()
                    .unwrap_or("")
                    .to_owned()
            })
            .collect();
        return json!({"event": "effect", "effects": effects});
    };
    let profile = a
        .effects
        .iter()
        .any(|e| matches!(e, Effect::FetchProfile { .. }));
    match e {
        InboundEvent::Customer(m) => json!({
            "event": "customer", "id": m.provider_message_id, "from": sender(&m.from),
            "kind": m.kind.as_str(), "text": m.text, "at": m.at.millis(), "meta": m.meta,
            "replying_to": m.replying_to, "alias": m.alias, "fetch_profile": profile,
        }),
        InboundEvent::Echo(x) => json!({
            "event": "echo", "id": x.provider_message_id, "to": x.customer, "text": x.text,
            "ours": x.ours, "meta": x.meta, "at": x.at.millis(),
        }),
        InboundEvent::Receipt {
            customer,
            provider_message_ids,
            watermark,
            status,
        } => json!({
            "event": "receipt", "from": customer, "ids": provider_message_ids,
            "watermark": watermark.map(Timestamp::millis), "status": status.as_str(),
        }),
        InboundEvent::Reaction {
            customer,
            target_provider_id,
            reaction,
            at,
        } => json!({
            "event": "reaction", "from": customer, "target": target_provider_id,
            "reaction": reaction, "at": at.millis(),
        }),
        InboundEvent::Edit {
            provider_message_id,
            text,
            num_edit,
        } => {
            json!({"event": "edit", "target": provider_message_id, "text": text, "num_edit": num_edit})
        }
        InboundEvent::Unsent {
            provider_message_id,
        } => json!({"event": "unsent", "target": provider_message_id}),
        InboundEvent::Status {
            provider_message_id,
            ours,
            status,
            failure,
        } => json!({
            "event": "status", "id": provider_message_id, "ours": ours, "status": status.as_str(),
            "failure": failure.as_ref().map(|f| f.0.clone()),
        }),
        InboundEvent::CommentChange {
            provider_message_id,
            verb,
            text,
        } => {
            json!({"event": "comment_change", "id": provider_message_id, "verb": verb, "text": text})
        }
    }
}

/// Whether `want` is a subset of `got` (objects by key, arrays item by item with the same
/// length, recursively; anything else equal).
fn subset(want: &Value, got: &Value) -> bool {
    match (want, got) {
        (Value::Object(w), Value::Object(g)) => w
            .iter()
            .all(|(k, v)| g.get(k).is_some_and(|gv| subset(v, gv))),
        (Value::Array(w), Value::Array(g)) => {
            w.len() == g.len() && w.iter().zip(g).all(|(w, g)| subset(w, g))
        }
        _ => want == got,
    }
}

fn run_case(dir: &str, path: &std::path::Path, shown: &mut Vec<String>) -> Result<(), String> {
    let case: Value = serde_json::from_slice(&std::fs::read(path).map_err(|e| e.to_string())?)
        .map_err(|e| format!("not JSON: {e}"))?;
    let (inbox, name) = inbox_for(dir);
    let p = switchboard_channels::by_name(name).ok_or("no provider")?;
    let body = serde_json::to_vec(&case["body"]).map_err(|e| e.to_string())?;
    let req = WebhookRequest {
        body: &body,
        headers: Vec::new(),
        inbox: Some(inbox.id),
        public_url: "https://example.com",
    };
    let mut verified = Verified::default();
    for c in p.claims_of(&inbox) {
        verified.add(c, inbox.clone());
    }
    verified.add(provider::Claim::Inbox(inbox.id), inbox.clone());
    let arrivals = provider::arrivals(p, &req, &verified, NOW).map_err(|e| e.0)?;
    let got: Vec<Value> = arrivals.iter().map(outcome).collect();
    shown.push(format!("{}: {}", path.display(), Value::from(got.clone())));
    let want = case["expect"].as_array().ok_or("no expect")?;
    if got.len() != want.len() {
        return Err(format!(
            "{} outcomes, {} expected: {}",
            got.len(),
            want.len(),
            serde_json::to_string_pretty(&got).unwrap_or_default()
        ));
    }
    for (i, (w, g)) in want.iter().zip(&got).enumerate() {
        if !subset(w, g) {
            return Err(format!(
                "outcome {i}: want {w}\n got {}",
                serde_json::to_string_pretty(g).unwrap_or_default()
            ));
        }
        let placeholder = matches!(
            g["text"].as_str(),
            Some("[message]" | "[unsupported message]")
        );
        if g["event"] == "customer" && placeholder && case["placeholder"] != true {
            return Err(format!("outcome {i} is a bare placeholder: {g}"));
        }
        // Every time the corpus stores is plausible (never 1970, never far ahead).
        if let Some(at) = g["at"].as_i64()
            && switchboard_core::ingest::plausible_time(Timestamp(at), NOW) != Timestamp(at)
        {
            return Err(format!("outcome {i} keeps an implausible time {at}"));
        }
    }
    Ok(())
}

#[test]
fn every_corpus_payload_has_its_stated_outcome() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus");
    let mut failures = Vec::new();
    let mut per_provider = Vec::new();
    let mut shown = Vec::new();
    let mut dirs: Vec<_> = std::fs::read_dir(&root)
        .unwrap()
        .map(|d| d.unwrap().path())
        .collect();
    dirs.sort();
    for dir in dirs {
        let name = dir.file_name().unwrap().to_string_lossy().into_owned();
        let mut files: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|f| f.unwrap().path())
            .filter(|f| f.extension().is_some_and(|e| e == "json"))
            .collect();
        files.sort();
        per_provider.push((name.clone(), files.len()));
        for f in files {
            if let Err(e) = run_case(&name, &f, &mut shown) {
                failures.push(format!("{}: {e}", f.display()));
            }
        }
    }
    if std::env::var_os("CORPUS_SHOW").is_some() {
        shown.iter().for_each(|s| println!("{s}"));
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
    for (provider, n) in per_provider {
        assert!(n >= 8, "{provider}: only {n} payloads in the corpus");
    }
}
