//! The ingest scenario: simulated customers on several Facebook Pages and WhatsApp numbers send
//! correctly signed Messenger and WhatsApp Cloud webhooks (realistic bodies, some batched, ~5 %
//! redelivered verbatim) to a running server with agent sockets connected. Measures accepted
//! messages/s, webhook ack latency, webhook→socket latency, and checks afterwards that every
//! acknowledged message is stored exactly once.

use crate::server::Server;
use crate::stats::{Progress, Samples};
use anyhow::Context;
use futures_util::StreamExt;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use switchboard_channels::signing::hmac_sha256_hex;
use tokio::sync::{Mutex, Semaphore};

/// One Meta app serves every Page and WhatsApp number of the run (as for a real business).
pub const APP_SECRET: &str = "bench-app-secret-0123456789";
pub const WABA_ID: &str = "102290129340398";

#[derive(Clone, Debug)]
pub struct Opts {
    pub pages: usize,
    /// WhatsApp numbers (0: Messenger only).
    pub numbers: usize,
    pub customers: usize,
    pub messages: usize,
    pub concurrency: usize,
    /// Webhook requests per second; `None` = as fast as the server answers.
    pub rate: Option<u64>,
    pub agents: usize,
    pub dup_pct: f64,
    pub batch_pct: f64,
    /// The share of webhooks that are WhatsApp's (when there are numbers).
    pub whatsapp_pct: f64,
}

/// One webhook request: where it goes, its body, signature and the sequence numbers of the
/// messages inside.
pub struct Webhook {
    pub path: &'static str,
    pub body: Vec<u8>,
    pub signature: String,
    pub seqs: Vec<u64>,
    pub duplicate: bool,
}

pub fn page_id(i: usize) -> String {
    format!("9100000000{i:05}")
}

pub fn phone_number_id(i: usize) -> String {
    format!("1065403522{i:05}")
}

fn text(seq: u64) -> String {
    format!("bench {seq} — xin chào shop, còn hàng không ạ?")
}

/// The sequence number a message's text carries (see [`text`]).
pub fn seq_of(text: &str) -> Option<u64> {
    text.strip_prefix("bench ")?.split(' ').next()?.parse().ok()
}

fn messenger_item(run: &str, seq: u64, page: &str, customer: usize, ts: i64) -> serde_json::Value {
    serde_json::json!({
        "sender": {"id": format!("7{customer:014}")},
        "recipient": {"id": page},
        "timestamp": ts,
        "message": {"mid": format!("m.{run}.{seq}"), "text": text(seq)},
    })
}

/// One Messenger body: `items` = (page, customer, seq), grouped by Page into `entry[]`.
fn messenger_body(run: &str, items: &[(usize, usize, u64)], now_ms: i64) -> serde_json::Value {
    let mut entries: BTreeMap<String, Vec<serde_json::Value>> = BTreeMap::new();
    for &(page, customer, seq) in items {
        let id = page_id(page);
        let item = messenger_item(run, seq, &id, customer, now_ms + seq as i64);
        entries.entry(id).or_default().push(item);
    }
    let entry: Vec<_> = entries
        .into_iter()
        .map(
            |(id, messaging)| serde_json::json!({"id": id, "time": now_ms, "messaging": messaging}),
        )
        .collect();
    serde_json::json!({"object": "page", "entry": entry})
}

/// One WhatsApp Cloud body (channels.md §3.1): one change per number, with the senders'
/// `contacts[]` and their `messages[]`.
fn whatsapp_body(run: &str, items: &[(usize, usize, u64)], now_ms: i64) -> serde_json::Value {
    let mut by_number: BTreeMap<usize, Vec<(usize, u64)>> = BTreeMap::new();
    for &(number, customer, seq) in items {
        by_number.entry(number).or_default().push((customer, seq));
    }
    let changes: Vec<_> = by_number
        .into_iter()
        .map(|(number, msgs)| {
            let contacts: Vec<_> = msgs
                .iter()
                .map(|(c, _)| serde_json::json!({"profile": {"name": format!("Khách {c}")}, "wa_id": format!("849{c:08}"), "user_id": format!("VN.{c:012}")}))
                .collect();
            let messages: Vec<_> = msgs
                .iter()
                .map(|(c, seq)| serde_json::json!({"from": format!("849{c:08}"), "id": format!("wamid.{run}.{seq}"),
                    "timestamp": ((now_ms + *seq as i64) / 1000).to_string(), "type": "text", "text": {"body": text(*seq)}}))
                .collect();
            serde_json::json!({"field": "messages", "value": {"messaging_product": "whatsapp",
                "metadata": {"display_phone_number": format!("8428{number:07}"), "phone_number_id": phone_number_id(number)},
                "contacts": contacts, "messages": messages}})
        })
        .collect();
    serde_json::json!({"object": "whatsapp_business_account", "entry": [{"id": WABA_ID, "changes": changes}]})
}

/// Builds the request mix: mostly one message per webhook, `batch_pct` with 2–5 messages (Meta
/// batches, sometimes several Pages or numbers in one body), `dup_pct` redeliveries of an earlier
/// request (same bytes), and `whatsapp_pct` of the webhooks from WhatsApp numbers. Customers are
/// split between the channels (odd ones write on WhatsApp when there are numbers).
pub fn build(run: &str, o: &Opts, now_ms: i64) -> (Vec<Webhook>, usize) {
    let mut out = Vec::new();
    let mut seq: u64 = 0;
    let mut rng = 0x2545_f491_4f6c_dd1du64;
    let mut next = move || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        (rng % 10_000) as f64 / 10_000.0
    };
    let customers = o.customers.max(2);
    while (seq as usize) < o.messages {
        if !out.is_empty() && next() < o.dup_pct {
            let i = (next() * out.len() as f64) as usize % out.len();
            let w: &Webhook = &out[i];
            let dup = Webhook {
                path: w.path,
                body: w.body.clone(),
                signature: w.signature.clone(),
                seqs: w.seqs.clone(),
                duplicate: true,
            };
            out.push(dup);
            continue;
        }
        let whatsapp = o.numbers > 0 && next() < o.whatsapp_pct;
        let n = if next() < o.batch_pct {
            2 + (next() * 4.0) as usize
        } else {
            1
        };
        let mut items = Vec::new();
        let mut seqs = Vec::new();
        for _ in 0..n {
            if seq as usize >= o.messages {
                break;
            }
            // Odd customers are on WhatsApp, even ones on Messenger (all of them without numbers).
            let mut customer = (seq as usize * 7919) % customers;
            if o.numbers > 0 && (customer % 2 == 1) != whatsapp {
                customer = (customer + 1) % customers;
            }
            let account = if whatsapp {
                (customer / 2) % o.numbers
            } else {
                customer % o.pages.max(1)
            };
            items.push((account, customer, seq));
            seqs.push(seq);
            seq += 1;
        }
        let (path, body) = if whatsapp {
            ("/webhooks/whatsapp", whatsapp_body(run, &items, now_ms))
        } else {
            ("/webhooks/meta", messenger_body(run, &items, now_ms))
        };
        let body = serde_json::to_vec(&body).unwrap_or_default();
        let signature = format!("sha256={}", hmac_sha256_hex(APP_SECRET.as_bytes(), &body));
        out.push(Webhook {
            path,
            body,
            signature,
            seqs,
            duplicate: false,
        });
    }
    (out, seq as usize)
}

#[derive(Default)]
pub struct LoadResult {
    pub requests: usize,
    pub messages: usize,
    pub errors: usize,
    pub elapsed: Duration,
    pub ack: Samples,
    /// When each message's webhook was sent (for the socket latency).
    pub sent_at: HashMap<u64, Instant>,
}

impl LoadResult {
    pub fn msgs_per_sec(&self) -> f64 {
        self.messages as f64 / self.elapsed.as_secs_f64()
    }
    pub fn reqs_per_sec(&self) -> f64 {
        self.requests as f64 / self.elapsed.as_secs_f64()
    }
}

/// One table row per load run: what was sent, errors, the rate and the ack latency. `unit` names
/// the things counted and their rate (`("messages", "msg/s")`).
pub fn print_loads(unit: (&str, &str), rows: &[(&str, &LoadResult)]) {
    println!(
        "\n| run | {} | errors | {} | ack p50 | ack p99 |",
        unit.0, unit.1
    );
    println!("|---|---|---|---|---|---|");
    for (name, l) in rows {
        println!(
            "| {name} | {} | {} | {:.0} | {:.2} ms | {:.2} ms |",
            l.messages,
            l.errors,
            l.msgs_per_sec(),
            l.ack.pct(50.0),
            l.ack.pct(99.0)
        );
    }
}

/// Sends the webhooks to `base` + their path with at most `concurrency` in flight (and at `rate`
/// requests/s).
pub async fn load(
    http: &reqwest::Client,
    base: &str,
    hooks: Vec<Webhook>,
    o: &Opts,
    label: &str,
) -> anyhow::Result<LoadResult> {
    let total = hooks.len() as u64;
    let sem = Arc::new(Semaphore::new(o.concurrency.max(1)));
    let done = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(AtomicU64::new(0));
    let acks = Arc::new(Mutex::new(Samples::default()));
    let sent_at = Arc::new(Mutex::new(HashMap::new()));
    let unique: usize = hooks
        .iter()
        .filter(|h| !h.duplicate)
        .map(|h| h.seqs.len())
        .sum();
    let mut progress = Progress::new(label, total);
    let mut ticker = o
        .rate
        .map(|r| tokio::time::interval(Duration::from_secs_f64(1.0 / r.max(1) as f64)));
    let start = Instant::now();
    let mut tasks = Vec::with_capacity(hooks.len());
    for h in hooks {
        if let Some(t) = ticker.as_mut() {
            t.tick().await;
        }
        let permit = sem.clone().acquire_owned().await?;
        let (http, url, done_t, errors, acks, sent_at) = (
            http.clone(),
            format!("{base}{}", h.path),
            done.clone(),
            errors.clone(),
            acks.clone(),
            sent_at.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let t0 = Instant::now();
            if !h.duplicate {
                let mut s = sent_at.lock().await;
                for q in &h.seqs {
                    s.insert(*q, t0);
                }
            }
            let r = http
                .post(url)
                .header("content-type", "application/json")
                .header("x-hub-signature-256", h.signature)
                .body(h.body)
                .send()
                .await;
            match r {
                Ok(resp) if resp.status().is_success() => acks.lock().await.push(t0.elapsed()),
                _ => {
                    errors.fetch_add(1, Ordering::Relaxed);
                }
            }
            done_t.fetch_add(1, Ordering::Relaxed);
            drop(permit);
        }));
        progress.update(done.load(Ordering::Relaxed));
    }
    for t in tasks {
        t.await?;
        progress.update(done.load(Ordering::Relaxed));
    }
    let elapsed = start.elapsed();
    progress.finish(total);
    let ack = std::mem::take(&mut *acks.lock().await);
    let sent_at = std::mem::take(&mut *sent_at.lock().await);
    Ok(LoadResult {
        requests: total as usize,
        messages: unique,
        errors: errors.load(Ordering::Relaxed) as usize,
        elapsed,
        ack,
        sent_at,
    })
}

pub struct IngestReport {
    pub load: LoadResult,
    pub e2e: Samples,
    pub delivered: usize,
    pub stored: i64,
    pub stored_distinct: i64,
}

/// Creates the Pages and WhatsApp numbers: inboxes sharing one app secret, as one Meta app's do.
/// Their Graph API address is a closed local port: nothing in the run calls out.
pub async fn setup_inboxes(server: &Server, o: &Opts) -> anyhow::Result<()> {
    let graph = "http://127.0.0.1:9/v26.0";
    let pages = (0..o.pages).map(|i| {
        serde_json::json!({"name": format!("Bench page {i}"), "channel": "messenger", "settings": {
            "page_id": page_id(i), "page_access_token": "bench-token", "app_secret": APP_SECRET,
            "verify_token": "bench-verify-token", "api_base_url": graph}})
    });
    let numbers = (0..o.numbers).map(|i| {
        serde_json::json!({"name": format!("Bench WhatsApp {i}"), "channel": "whatsapp", "settings": {
            "phone_number_id": phone_number_id(i), "waba_id": WABA_ID, "access_token": "bench-token",
            "app_secret": APP_SECRET, "verify_token": "bench-verify-token", "api_base_url": graph}})
    });
    for body in pages.chain(numbers) {
        server
            .api(reqwest::Method::POST, "/inboxes", &server.admin, Some(body))
            .await?;
    }
    Ok(())
}

pub async fn run(server: &Server, o: &Opts) -> anyhow::Result<IngestReport> {
    setup_inboxes(server, o).await?;
    let run = uuid::Uuid::now_v7().simple().to_string()[..8].to_owned();
    // Agent sockets: the first records webhook→event latency, the others just keep up.
    let ws_url = format!(
        "{}/api/v1/ws?token={}",
        server.base.replace("http://", "ws://"),
        server.admin
    );
    let seen: Arc<Mutex<HashMap<u64, Instant>>> = Arc::new(Mutex::new(HashMap::new()));
    let mut readers = Vec::new();
    for k in 0..o.agents.max(1) {
        let (mut ws, _) = tokio_tungstenite::connect_async(&ws_url)
            .await
            .context("agent socket")?;
        let seen = seen.clone();
        readers.push(tokio::spawn(async move {
            while let Some(Ok(frame)) = ws.next().await {
                if k != 0 {
                    continue;
                }
                if let tokio_tungstenite::tungstenite::Message::Text(t) = frame
                    && let Ok(v) = serde_json::from_str::<serde_json::Value>(t.as_str())
                    && v["type"] == "message.created"
                    && let Some(seq) = v["message"]["text"].as_str().and_then(seq_of)
                {
                    seen.lock().await.entry(seq).or_insert_with(Instant::now);
                }
            }
        }));
    }
    let now_ms = i64::try_from(
        std::time::UNIX_EPOCH
            .elapsed()
            .map(|d| d.as_millis())
            .unwrap_or(0),
    )
    .unwrap_or(0);
    let (hooks, unique) = build(&run, o, now_ms);
    let load = load(&server.http, &server.base, hooks, o, "ingest").await?;
    // Give the sockets until every acknowledged message was pushed (or 30 s) to report latency.
    let deadline = Instant::now() + Duration::from_secs(30);
    while seen.lock().await.len() < unique && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut e2e = Samples::default();
    let seen = std::mem::take(&mut *seen.lock().await);
    for (seq, at) in &seen {
        if let Some(t0) = load.sent_at.get(seq) {
            e2e.push(at.duration_since(*t0));
        }
    }
    for r in readers {
        r.abort();
    }
    let (stored, stored_distinct) = count_stored(server, &run).await?;
    Ok(IngestReport {
        delivered: seen.len(),
        load,
        e2e,
        stored,
        stored_distinct,
    })
}

/// Counts the run's messages straight from the database: every acknowledged message exactly once.
pub async fn count_stored(server: &Server, run: &str) -> anyhow::Result<(i64, i64)> {
    let mut db = server.target.connect().await?;
    db.count_messages(run).await
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn the_mix_has_every_message_once_plus_redeliveries() {
        let o = Opts {
            pages: 3,
            numbers: 2,
            customers: 50,
            messages: 1000,
            concurrency: 1,
            rate: None,
            agents: 1,
            dup_pct: 0.05,
            batch_pct: 0.2,
            whatsapp_pct: 0.5,
        };
        let (hooks, unique) = build("r", &o, 0);
        assert_eq!(unique, 1000);
        let mut seqs: Vec<u64> = hooks
            .iter()
            .filter(|h| !h.duplicate)
            .flat_map(|h| h.seqs.clone())
            .collect();
        seqs.sort_unstable();
        assert_eq!(seqs, (0..1000).collect::<Vec<_>>());
        let dups = hooks.iter().filter(|h| h.duplicate).count();
        assert!(
            dups > 0 && (dups as f64) < hooks.len() as f64 * 0.1,
            "{dups}"
        );
        assert!(hooks.iter().any(|h| h.seqs.len() > 1), "some batched");
        let wa = hooks
            .iter()
            .filter(|h| h.path == "/webhooks/whatsapp")
            .count();
        assert!(
            wa > hooks.len() / 3 && wa < hooks.len() * 2 / 3,
            "about half from WhatsApp: {wa} of {}",
            hooks.len()
        );
        // Each customer writes on one channel only: one conversation per customer.
        let mut channel_of: HashMap<String, &str> = HashMap::new();
        for h in &hooks {
            let v: serde_json::Value = serde_json::from_slice(&h.body).unwrap();
            let senders: Vec<String> = if h.path == "/webhooks/whatsapp" {
                v["entry"][0]["changes"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .flat_map(|c| {
                        c["value"]["messages"].as_array().unwrap().iter().map(|m| {
                            m["from"].as_str().unwrap()[3..]
                                .trim_start_matches('0')
                                .to_owned()
                        })
                    })
                    .collect()
            } else {
                v["entry"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .flat_map(|e| {
                        e["messaging"].as_array().unwrap().iter().map(|m| {
                            m["sender"]["id"].as_str().unwrap()[1..]
                                .trim_start_matches('0')
                                .to_owned()
                        })
                    })
                    .collect()
            };
            for s in senders {
                assert_eq!(*channel_of.entry(s).or_insert(h.path), h.path);
            }
        }
        assert_eq!(seq_of(&text(42)), Some(42));
        let h = &hooks[0];
        assert!(switchboard_channels::signing::verify_hex(
            APP_SECRET.as_bytes(),
            &h.body,
            h.signature.trim_start_matches("sha256=")
        ));
    }
}
