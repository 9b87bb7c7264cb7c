//! The crash soak: signed Messenger and WhatsApp webhooks at a sustained rate while agents' replies
//! go out through the outbox to the Meta sandbox, and the server is `kill -9`ed at random moments
//! (a seeded RNG) and restarted on the same data and port. Webhooks that fail (in flight at a kill,
//! or sent while the server is down) are delivered again, as a provider does, until answered.
//!
//! Afterwards: every acknowledged message is stored exactly once, and every reply the API accepted
//! ends delivered exactly once at the sandbox or `failed` with a reason (`delivery_unknown` when
//! its send was cut off by a kill), none delivered twice.

use crate::db::{Db, Target};
use crate::ingest::{self, APP_SECRET};
use crate::server::{self, Server};
use crate::stats::Samples;
use anyhow::{Context, bail};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use switchboard_sandbox::meta::{PageSpec, Sandbox};
use tokio::sync::{Mutex, Semaphore};

/// The sandbox Page the replies go to, and its customers.
const SANDBOX_PAGE: &str = "930000000000001";
const SANDBOX_TOKEN: &str = "soak-page-token";
/// How long one webhook is delivered again before the generator gives up on it.
const REDELIVER_FOR: Duration = Duration::from_secs(120);
const MAX_ATTEMPTS: u32 = 600;

#[derive(Clone, Debug)]
pub struct Opts {
    pub kills: usize,
    pub seed: u64,
    /// The server runs a uniformly random time in [min_up_ms, max_up_ms] between two kills.
    pub min_up_ms: u64,
    pub max_up_ms: u64,
    /// Webhook requests per second.
    pub rate: u64,
    pub concurrency: usize,
    /// Agent replies queued per second.
    pub reply_rate: u64,
    /// Sandbox customers the replies go to (one conversation each).
    pub reply_customers: usize,
    /// Longest wait, after the last kill, for every reply to be sent or failed. A send cut off by
    /// a kill stays claimed for the outbox's 5-minute lease, so this must be longer.
    pub settle_secs: u64,
}

/// The sandbox's clock: the wall clock.
struct WallClock;

impl switchboard_core::time::Clock for WallClock {
    fn now(&self) -> switchboard_core::Timestamp {
        let ms = std::time::UNIX_EPOCH
            .elapsed()
            .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
            .unwrap_or(0);
        switchboard_core::Timestamp(ms)
    }
}

/// xorshift64*, seeded: the same seed kills at the same moments (relative to each start).
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        Self(seed ^ 0x9e37_79b9_7f4a_7c15 | 1)
    }
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    /// Uniform in [lo, hi].
    fn between(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next() % (hi.saturating_sub(lo) + 1)
    }
}

#[derive(Default)]
struct IngestTally {
    /// Sequence numbers of the messages in webhooks that got a 2xx.
    acked: HashSet<u64>,
    webhooks_acked: u64,
    /// Failed attempts that were delivered again.
    redeliveries: u64,
    /// Webhooks never answered with a 2xx within [`REDELIVER_FOR`].
    gave_up: u64,
}

#[derive(Default)]
struct ReplyTally {
    /// Reply number → its conversation, for replies the API answered 201.
    queued: BTreeMap<u64, String>,
    /// Replies whose request failed (the server was killed or down): they may or may not exist.
    unacked: BTreeMap<u64, String>,
    /// Replies the API answered 4xx (none expected).
    refused: usize,
}

pub struct Report {
    pub database: &'static str,
    pub kills: usize,
    pub webhooks: u64,
    pub redeliveries: u64,
    pub gave_up: u64,
    pub acknowledged: usize,
    pub stored: usize,
    pub lost: usize,
    pub duplicated: usize,
    pub replies_queued: usize,
    pub replies_delivered: usize,
    pub replies_failed: usize,
    pub failure_reasons: BTreeMap<String, usize>,
    pub replies_unsettled: usize,
    pub replies_unacked: usize,
    pub replies_unacked_stored: usize,
    pub replies_refused: usize,
    pub sent_twice: usize,
    pub replies_missing: usize,
    pub recovery: Samples,
    pub duration: Duration,
    /// The checkout the run started from.
    pub commit: String,
}

impl Report {
    pub fn failures(&self, o: &Opts) -> Vec<String> {
        let mut f = Vec::new();
        if self.kills != o.kills {
            f.push(format!("{} kills of {}", self.kills, o.kills));
        }
        if self.lost > 0 {
            f.push(format!("{} acknowledged messages lost", self.lost));
        }
        if self.duplicated > 0 {
            f.push(format!(
                "{} messages stored more than once",
                self.duplicated
            ));
        }
        if self.gave_up > 0 {
            f.push(format!("{} webhooks never acknowledged", self.gave_up));
        }
        if self.sent_twice > 0 {
            f.push(format!("{} replies sent twice", self.sent_twice));
        }
        if self.replies_unsettled > 0 {
            f.push(format!(
                "{} replies neither sent nor failed",
                self.replies_unsettled
            ));
        }
        if self.replies_refused > 0 {
            f.push(format!(
                "{} replies refused by the API",
                self.replies_refused
            ));
        }
        if self.replies_missing > 0 {
            f.push(format!(
                "{} replies reported sent that the sandbox never received",
                self.replies_missing
            ));
        }
        f
    }
}

pub async fn run(bin: &Path, database_url: Option<&str>, o: &Opts) -> anyhow::Result<Report> {
    let started = Instant::now();
    let commit = commit();
    let dir = crate::temp_dir()?;
    let target = Target::fresh(database_url, dir.path()).await?;
    println!("store: {}", target.describe());
    let result = soak(bin, dir.path(), &target, o, started).await;
    target.drop().await?;
    result.map(|r| Report { commit, ..r })
}

async fn soak(
    bin: &Path,
    dir: &Path,
    target: &Target,
    o: &Opts,
    started: Instant,
) -> anyhow::Result<Report> {
    let mut server = Server::start(bin, dir, target, true).await?;
    let port: u16 = server
        .base
        .rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .context("server port")?;
    let (base, admin, http) = (
        server.base.clone(),
        server.admin.clone(),
        server.http.clone(),
    );
    // The ingest side: Pages and WhatsApp numbers whose Graph API is a closed port.
    let io = ingest::Opts {
        pages: 3,
        numbers: 2,
        customers: 500,
        // Enough for the whole run at `rate`; the generator stops after the last kill.
        messages: usize::try_from(o.rate).unwrap_or(100)
            * (o.kills * usize::try_from(o.max_up_ms).unwrap_or(1000) / 1000 + 60),
        concurrency: o.concurrency,
        rate: Some(o.rate),
        agents: 0,
        dup_pct: 0.05,
        batch_pct: 0.2,
        whatsapp_pct: 0.5,
    };
    ingest::setup_inboxes(&server, &io).await?;
    // The reply side: a sandbox Page with customers who wrote first (the messaging window is open).
    let sandbox = Arc::new(
        Sandbox::start(
            Arc::new(WallClock),
            "127.0.0.1:0".parse().context("sandbox address")?,
        )
        .await?,
    );
    sandbox.add_page(PageSpec {
        id: SANDBOX_PAGE.to_owned(),
        object: switchboard_channels::meta::Object::Page,
        token: SANDBOX_TOKEN.to_owned(),
        app_secret: APP_SECRET.to_owned(),
        webhook_url: format!("{base}/webhooks/meta"),
        echoes: true,
        private_reply_recipient_id: true,
        auto_delivery: true,
    });
    let inbox = server
        .api(
            reqwest::Method::POST,
            "/inboxes",
            &admin,
            Some(serde_json::json!({"name": "Soak sandbox page", "channel": "messenger", "settings": {
                "page_id": SANDBOX_PAGE, "page_access_token": SANDBOX_TOKEN, "app_secret": APP_SECRET,
                "verify_token": "soak-verify-token", "api_base_url": sandbox.base_url()}})),
        )
        .await?;
    let inbox_id = inbox["id"].as_str().context("inbox id")?.to_owned();
    for i in 0..o.reply_customers {
        let (status, _) = sandbox
            .customer_message(SANDBOX_PAGE, &format!("6{i:014}"), "chào shop")
            .await?;
        if status != 200 {
            bail!("the sandbox customer's first message got {status}");
        }
    }
    let list = server
        .api(
            reqwest::Method::GET,
            &format!("/conversations?inbox_id={inbox_id}&limit=200"),
            &admin,
            None,
        )
        .await?;
    let conversations: Vec<String> = list["items"]
        .as_array()
        .context("conversation list")?
        .iter()
        .filter_map(|c| c["id"].as_str().map(str::to_owned))
        .collect();
    if conversations.len() != o.reply_customers {
        bail!(
            "{} sandbox conversations for {} customers",
            conversations.len(),
            o.reply_customers
        );
    }
    // The admin takes them (replying needs the conversation taken).
    for c in &conversations {
        server
            .api(
                reqwest::Method::POST,
                &format!("/conversations/{c}/claim"),
                &admin,
                None,
            )
            .await?;
    }

    let run = uuid::Uuid::now_v7().simple().to_string()[..8].to_owned();
    let now_ms = i64::try_from(
        std::time::UNIX_EPOCH
            .elapsed()
            .map(|d| d.as_millis())
            .unwrap_or(0),
    )
    .unwrap_or(0);
    let (hooks, _) = ingest::build(&run, &io, now_ms);
    let stop_ingest = Arc::new(AtomicBool::new(false));
    let stop_replies = Arc::new(AtomicBool::new(false));

    // 1. Webhooks at `rate`, each delivered again until answered 2xx (bounded).
    let tally = Arc::new(Mutex::new(IngestTally::default()));
    let ingest_task = {
        let (http, base, stop, tally) = (
            http.clone(),
            base.clone(),
            stop_ingest.clone(),
            tally.clone(),
        );
        let (rate, concurrency) = (o.rate.max(1), o.concurrency.max(1));
        tokio::spawn(async move {
            let sem = Arc::new(Semaphore::new(concurrency));
            let mut tick = tokio::time::interval(Duration::from_micros(1_000_000 / rate));
            let mut tasks = Vec::new();
            for h in hooks {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                tick.tick().await;
                let Ok(permit) = sem.clone().acquire_owned().await else {
                    break;
                };
                let (http, url, tally) = (http.clone(), format!("{base}{}", h.path), tally.clone());
                tasks.push(tokio::spawn(async move {
                    deliver_until_acked(&http, &url, h, &tally).await;
                    drop(permit);
                }));
            }
            for t in tasks {
                let _ = t.await;
            }
        })
    };

    // 2. Replies at `reply_rate` to the sandbox customers, never retried (a retry without an
    // idempotency key is a second reply).
    let replies = Arc::new(Mutex::new(ReplyTally::default()));
    let reply_task = {
        let (http, base, admin, stop, replies, convs) = (
            http.clone(),
            base.clone(),
            admin.clone(),
            stop_replies.clone(),
            replies.clone(),
            conversations.clone(),
        );
        let (rate, run, seed) = (o.reply_rate.max(1), run.clone(), o.seed);
        tokio::spawn(async move {
            let mut rng = Rng::new(seed.wrapping_add(1));
            let mut tick = tokio::time::interval(Duration::from_micros(1_000_000 / rate));
            // Bounded: at most an hour's worth.
            for k in 0..rate * 3600 {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                tick.tick().await;
                let conv = convs[rng.next() as usize % convs.len()].clone();
                let r = http
                    .post(format!("{base}/api/v1/conversations/{conv}/messages"))
                    .bearer_auth(&admin)
                    .json(&serde_json::json!({"text": reply_text(&run, k)}))
                    .timeout(Duration::from_secs(10))
                    .send()
                    .await;
                let mut t = replies.lock().await;
                match r {
                    Ok(resp) if resp.status() == reqwest::StatusCode::CREATED => {
                        t.queued.insert(k, conv);
                    }
                    Ok(resp) if resp.status().is_client_error() => {
                        // The API refused it: nothing queued, and the soak cannot go on sensibly.
                        let status = resp.status();
                        let body = resp.text().await.unwrap_or_default();
                        eprintln!("reply {k} refused: {status} {body}");
                        t.refused += 1;
                    }
                    _ => {
                        t.unacked.insert(k, conv);
                    }
                }
            }
        })
    };

    // 3. The kills: a random time up, SIGKILL, restart on the same data and port.
    let mut rng = Rng::new(o.seed);
    let mut recovery = Samples::default();
    let mut kills = 0;
    let kill_result: anyhow::Result<()> = async {
        for k in 0..o.kills {
            let up = rng.between(o.min_up_ms, o.max_up_ms);
            tokio::time::sleep(Duration::from_millis(up)).await;
            server.child.start_kill().context("kill -9")?;
            let _ = tokio::time::timeout(Duration::from_secs(10), server.child.wait()).await;
            kills += 1;
            let t0 = Instant::now();
            server.child = server::spawn_serve(bin, dir, target, port)?;
            server::wait_healthy(&http, &base)
                .await
                .with_context(|| format!("restart after kill {}", k + 1))?;
            recovery.push(t0.elapsed());
            let t = tally.lock().await;
            eprintln!(
                "kill {:>2}/{} after {:>5} ms up; back in {:>4} ms; {} messages acknowledged so far",
                k + 1,
                o.kills,
                up,
                t0.elapsed().as_millis(),
                t.acked.len()
            );
        }
        Ok(())
    }
    .await;
    // A little more traffic on the last start, then stop generating and let redeliveries finish.
    tokio::time::sleep(Duration::from_secs(2)).await;
    stop_ingest.store(true, Ordering::Relaxed);
    stop_replies.store(true, Ordering::Relaxed);
    let _ = reply_task.await;
    let _ = ingest_task.await;
    kill_result?;

    // 4. The outbox settles: every accepted reply sent or failed (bounded by settle_secs).
    let deadline = Instant::now() + Duration::from_secs(o.settle_secs);
    let replies = std::mem::take(&mut *replies.lock().await);
    let statuses = loop {
        let s = reply_statuses(&http, &base, &admin, &conversations, &run).await?;
        let pending = replies
            .queued
            .keys()
            .chain(replies.unacked.keys())
            .filter(|k| {
                s.get(k)
                    .is_some_and(|(st, _)| st == "queued" || st == "sending")
            })
            .count();
        let missing = replies.queued.keys().filter(|k| !s.contains_key(k)).count();
        if (pending == 0 && missing == 0) || Instant::now() >= deadline {
            break s;
        }
        eprintln!("waiting for the outbox: {pending} replies still queued");
        tokio::time::sleep(Duration::from_secs(5)).await;
    };
    // Let the sandbox's last echoes and delivery receipts land before stopping.
    sandbox.flush().await;

    // 5. Count.
    let mut db = target.connect().await?;
    let stored_counts = stored_counts(&mut db, &run).await?;
    let t = std::mem::take(&mut *tally.lock().await);
    let lost = t
        .acked
        .iter()
        .filter(|s| !stored_counts.contains_key(s))
        .count();
    let duplicated = stored_counts.values().filter(|n| **n > 1).count();
    let mut at_sandbox: HashMap<u64, usize> = HashMap::new();
    let prefix = format!("soak reply {run} ");
    for s in sandbox.sent() {
        if let Some(k) = s
            .text
            .strip_prefix(&prefix)
            .and_then(|k| k.parse::<u64>().ok())
        {
            *at_sandbox.entry(k).or_default() += 1;
        }
    }
    let sent_twice = at_sandbox.values().filter(|n| **n > 1).count();
    let (mut delivered, mut failed, mut unsettled, mut missing) = (0, 0, 0, 0);
    let mut reasons: BTreeMap<String, usize> = BTreeMap::new();
    for k in replies.queued.keys() {
        match statuses.get(k) {
            Some((st, _)) if st == "sent" || st == "delivered" || st == "read" => {
                match at_sandbox.get(k).copied().unwrap_or(0) {
                    0 => missing += 1,
                    1 => delivered += 1,
                    // Counted in `sent_twice`.
                    _ => {}
                }
            }
            Some((st, Some(reason))) if st == "failed" && !reason.is_empty() => {
                failed += 1;
                *reasons.entry(reason.clone()).or_default() += 1;
            }
            _ => unsettled += 1,
        }
    }
    let unacked_stored = replies
        .unacked
        .keys()
        .filter(|k| statuses.contains_key(k))
        .count();
    let replies_unsettled = unsettled
        + replies
            .unacked
            .keys()
            .filter(|k| {
                statuses
                    .get(k)
                    .is_some_and(|(st, _)| st == "queued" || st == "sending")
            })
            .count();
    server.stop().await;
    Ok(Report {
        database: if target.is_postgres() {
            "PostgreSQL"
        } else {
            "SQLite"
        },
        kills,
        webhooks: t.webhooks_acked,
        redeliveries: t.redeliveries,
        gave_up: t.gave_up,
        acknowledged: t.acked.len(),
        stored: stored_counts.len(),
        lost,
        duplicated,
        replies_queued: replies.queued.len(),
        replies_delivered: delivered,
        replies_failed: failed,
        failure_reasons: reasons,
        replies_unsettled,
        replies_unacked: replies.unacked.len(),
        replies_unacked_stored: unacked_stored,
        replies_refused: replies.refused,
        sent_twice,
        replies_missing: missing,
        recovery,
        duration: started.elapsed(),
        commit: String::new(),
    })
}

fn reply_text(run: &str, k: u64) -> String {
    format!("soak reply {run} {k}")
}

/// Posts one webhook until it is answered 2xx, waiting a little longer after each failure (as
/// Meta does, faster), at most [`MAX_ATTEMPTS`] times within [`REDELIVER_FOR`].
async fn deliver_until_acked(
    http: &reqwest::Client,
    url: &str,
    h: ingest::Webhook,
    tally: &Mutex<IngestTally>,
) {
    let until = Instant::now() + REDELIVER_FOR;
    let mut wait = Duration::from_millis(50);
    for _ in 0..MAX_ATTEMPTS {
        let r = http
            .post(url)
            .header("content-type", "application/json")
            .header("x-hub-signature-256", &h.signature)
            .body(h.body.clone())
            .timeout(Duration::from_secs(10))
            .send()
            .await;
        if let Ok(resp) = r
            && resp.status().is_success()
        {
            let mut t = tally.lock().await;
            t.webhooks_acked += 1;
            t.acked.extend(h.seqs.iter().copied());
            return;
        }
        if Instant::now() >= until {
            break;
        }
        tally.lock().await.redeliveries += 1;
        tokio::time::sleep(wait).await;
        wait = (wait * 2).min(Duration::from_secs(1));
    }
    tally.lock().await.gave_up += 1;
}

/// Every soak reply in the sandbox conversations, through the API: number → (status, reason).
async fn reply_statuses(
    http: &reqwest::Client,
    base: &str,
    admin: &str,
    conversations: &[String],
    run: &str,
) -> anyhow::Result<HashMap<u64, (String, Option<String>)>> {
    let prefix = format!("soak reply {run} ");
    let mut out = HashMap::new();
    for conv in conversations {
        let mut before: Option<String> = None;
        // Bounded: 10,000 pages of 100.
        for _ in 0..10_000 {
            let mut url = format!("{base}/api/v1/conversations/{conv}/messages?limit=100");
            if let Some(b) = &before {
                url.push_str(&format!("&before={b}"));
            }
            let page: serde_json::Value = http
                .get(url)
                .bearer_auth(admin)
                .send()
                .await?
                .error_for_status()?
                .json()
                .await?;
            for m in page["items"].as_array().into_iter().flatten() {
                if let Some(k) = m["text"]
                    .as_str()
                    .and_then(|t| t.strip_prefix(&prefix))
                    .and_then(|k| k.parse::<u64>().ok())
                {
                    out.insert(
                        k,
                        (
                            m["delivery_status"].as_str().unwrap_or("").to_owned(),
                            m["failure_reason"].as_str().map(str::to_owned),
                        ),
                    );
                }
            }
            match page["next_cursor"].as_str() {
                Some(c) => before = Some(c.to_owned()),
                None => break,
            }
        }
    }
    Ok(out)
}

/// The run's stored messages straight from the database: sequence number → rows.
async fn stored_counts(db: &mut Db, run: &str) -> anyhow::Result<HashMap<u64, i64>> {
    let rows = db
        .strings(format!(
            "SELECT provider_message_id, CAST(COUNT(*) AS TEXT) FROM messages \
             WHERE provider_message_id LIKE 'm.{run}.%' OR provider_message_id LIKE 'wamid.{run}.%' \
             GROUP BY provider_message_id"
        ))
        .await?;
    let mut out: HashMap<u64, i64> = HashMap::new();
    for (pid, n) in rows {
        if let Some(seq) = pid.rsplit('.').next().and_then(|s| s.parse::<u64>().ok()) {
            *out.entry(seq).or_default() += n.parse::<i64>().unwrap_or(0);
        }
    }
    Ok(out)
}

pub fn commit() -> String {
    std::process::Command::new("git")
        .args(["rev-parse", "--short", "HEAD"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_else(|| "unknown".to_owned())
}

pub fn print(reports: &[Report], o: &Opts) {
    println!(
        "\n| database | kills | webhooks acked (redeliveries) | messages acknowledged | stored | lost | duplicated | replies queued | delivered once | failed with a reason | sent twice | restart p50 / max | duration |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|---|");
    for r in reports {
        let reasons = r
            .failure_reasons
            .iter()
            .map(|(k, v)| format!("{v} {k}"))
            .collect::<Vec<_>>()
            .join(", ");
        let max = r.recovery.0.iter().max().copied().unwrap_or(0) as f64 / 1000.0;
        println!(
            "| {} | {} | {} ({}) | {} | {} | {} | {} | {} | {} | {}{} | {} | {:.0} / {:.0} ms | {:.0} s |",
            r.database,
            r.kills,
            r.webhooks,
            r.redeliveries,
            r.acknowledged,
            r.stored,
            r.lost,
            r.duplicated,
            r.replies_queued,
            r.replies_delivered,
            r.replies_failed,
            if reasons.is_empty() {
                String::new()
            } else {
                format!(" ({reasons})")
            },
            r.sent_twice,
            r.recovery.pct(50.0),
            max,
            r.duration.as_secs_f64()
        );
    }
    for r in reports {
        println!(
            "{}: {} reply requests cut off by a kill ({} of them stored and settled); {} webhooks given up; {} unsettled",
            r.database, r.replies_unacked, r.replies_unacked_stored, r.gave_up, r.replies_unsettled
        );
    }
    println!(
        "seed {}, {} webhooks/s, {} replies/s, up {}–{} ms between kills, commit {}",
        o.seed,
        o.rate,
        o.reply_rate,
        o.min_up_ms,
        o.max_up_ms,
        reports.first().map_or("unknown", |r| r.commit.as_str())
    );
}
