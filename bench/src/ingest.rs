//! The ingest scenario: simulated customers across several Facebook Pages send correctly signed
//! Messenger webhooks (some batched, ~5 % redelivered) to a running server with agent sockets
//! connected. Measures accepted messages/s, webhook ack latency, webhook→socket latency, and checks
//! afterwards that every acknowledged message is stored exactly once.

use crate::server::Server;
use crate::stats::{Progress, Samples};
use anyhow::{Context, bail};
use futures_util::StreamExt;
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use switchboard_channels::signing::hmac_sha256_hex;
use tokio::sync::{Mutex, Semaphore};

pub const APP_SECRET: &str = "bench-app-secret-0123456789";

#[derive(Clone, Debug)]
pub struct Opts {
    pub pages: usize,
    pub customers: usize,
    pub messages: usize,
    pub concurrency: usize,
    /// Webhook requests per second; `None` = as fast as the server answers.
    pub rate: Option<u64>,
    pub agents: usize,
    pub dup_pct: f64,
    pub batch_pct: f64,
}

/// One webhook request: its body, signature and the sequence numbers of the messages inside.
pub struct Webhook {
    pub body: Vec<u8>,
    pub signature: String,
    pub seqs: Vec<u64>,
    pub duplicate: bool,
}

pub fn page_id(i: usize) -> String {
    format!("9100000000{i:05}")
}

fn item(run: &str, seq: u64, page: &str, customer: usize, ts: i64) -> serde_json::Value {
    serde_json::json!({
        "sender": {"id": format!("7{customer:014}")},
        "recipient": {"id": page},
        "timestamp": ts,
        "message": {"mid": format!("m.{run}.{seq}"), "text": format!("bench {seq} — xin chào shop, còn hàng không ạ?")},
    })
}

/// Builds the request mix: mostly one message per webhook, `batch_pct` with 2–5 messages (Meta
/// batches), and `dup_pct` redeliveries of an earlier request (same bytes).
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
    while (seq as usize) < o.messages {
        if !out.is_empty() && next() < o.dup_pct {
            let i = (next() * out.len() as f64) as usize % out.len();
            let w: &Webhook = &out[i];
            let dup = Webhook {
                body: w.body.clone(),
                signature: w.signature.clone(),
                seqs: w.seqs.clone(),
                duplicate: true,
            };
            out.push(dup);
            continue;
        }
        let n = if next() < o.batch_pct {
            2 + (next() * 4.0) as usize
        } else {
            1
        };
        let mut entries: HashMap<String, Vec<serde_json::Value>> = HashMap::new();
        let mut seqs = Vec::new();
        for _ in 0..n {
            if seq as usize >= o.messages {
                break;
            }
            let customer = (seq as usize * 7919) % o.customers.max(1);
            let page = page_id(customer % o.pages.max(1));
            entries.entry(page.clone()).or_default().push(item(
                run,
                seq,
                &page,
                customer,
                now_ms + seq as i64,
            ));
            seqs.push(seq);
            seq += 1;
        }
        let entry: Vec<_> = entries
            .into_iter()
            .map(|(id, messaging)| serde_json::json!({"id": id, "time": now_ms, "messaging": messaging}))
            .collect();
        let body = serde_json::to_vec(&serde_json::json!({"object": "page", "entry": entry}))
            .unwrap_or_default();
        let signature = format!("sha256={}", hmac_sha256_hex(APP_SECRET.as_bytes(), &body));
        out.push(Webhook {
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

/// Sends the webhooks to `url` with at most `concurrency` in flight (and at `rate` requests/s).
pub async fn load(
    http: &reqwest::Client,
    url: &str,
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
            url.to_owned(),
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

/// Creates the pages (Messenger inboxes sharing one app secret, as one Meta app does).
pub async fn setup_pages(server: &Server, pages: usize) -> anyhow::Result<()> {
    for i in 0..pages {
        let body = serde_json::json!({"name": format!("Bench page {i}"), "channel": "messenger", "settings": {
            "page_id": page_id(i), "page_access_token": "bench-token", "app_secret": APP_SECRET,
            "verify_token": "bench-verify-token", "api_base_url": "http://127.0.0.1:9/v26.0"}});
        server
            .api(reqwest::Method::POST, "/inboxes", &server.admin, Some(body))
            .await?;
    }
    Ok(())
}

pub async fn run(server: &Server, o: &Opts) -> anyhow::Result<IngestReport> {
    setup_pages(server, o.pages).await?;
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
                    && let Some(seq) = v["message"]["text"]
                        .as_str()
                        .and_then(|s| s.split(' ').nth(1))
                        .and_then(|s| s.parse::<u64>().ok())
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
    let load = load(
        &server.http,
        &format!("{}/webhooks/meta", server.base),
        hooks,
        o,
        "ingest",
    )
    .await?;
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
    let pattern = format!("m.{run}.%");
    let sql = "SELECT COUNT(*), COUNT(DISTINCT provider_message_id) FROM messages WHERE provider_message_id LIKE ?";
    match &server.database_url {
        Some(url) if url.starts_with("postgres") => {
            bail!("counting on PostgreSQL needs the postgres build of the bench ({url})")
        }
        _ => {
            let path = server.data_dir.join("switchboard.db");
            let opts = sqlx::sqlite::SqliteConnectOptions::new()
                .filename(path)
                .read_only(true);
            let mut conn = sqlx::ConnectOptions::connect(&opts).await?;
            let row: (i64, i64) = sqlx::query_as(sql)
                .bind(pattern)
                .fetch_one(&mut conn)
                .await?;
            Ok(row)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_mix_has_every_message_once_plus_redeliveries() {
        let o = Opts {
            pages: 3,
            customers: 50,
            messages: 1000,
            concurrency: 1,
            rate: None,
            agents: 1,
            dup_pct: 0.05,
            batch_pct: 0.2,
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
        let h = &hooks[0];
        assert!(switchboard_channels::signing::verify_hex(
            APP_SECRET.as_bytes(),
            &h.body,
            h.signature.trim_start_matches("sha256=")
        ));
    }
}
