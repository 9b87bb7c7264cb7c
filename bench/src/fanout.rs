//! The fan-out scenario: many agent sockets connected to one server; customer messages pushed to
//! all of them. Measures delivered frames/s, send→receive lag, and the server's memory — and the
//! same against the bare broadcast server (`baseline`), in the same run.

use crate::server::Server;
use crate::stats::{Progress, Samples};
use anyhow::Context;
use futures_util::StreamExt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::Mutex;

#[derive(Clone, Debug)]
pub struct Opts {
    pub sockets: usize,
    pub events: usize,
    /// Customer messages per second.
    pub rate: u64,
}

pub struct Report {
    pub sockets: usize,
    pub events: usize,
    pub frames: u64,
    pub expected_frames: u64,
    pub frames_per_sec: f64,
    pub lag: Samples,
    pub rss_idle_mib: f64,
    pub rss_connected_mib: f64,
    pub rss_after_mib: f64,
}

/// How many sockets record per-event latency (the rest only count).
const SAMPLED: usize = 50;

/// Where the sockets connect and the events come from.
pub enum Target<'a> {
    /// The real server: agent sockets; a website visitor's messages.
    Switchboard(&'a Server),
    /// The bare broadcast server: `POST /publish`.
    Baseline(&'a crate::baseline::Process),
}

/// How one event is made to happen.
enum Publish {
    Widget { url: String, visitor: String },
    Bare { url: String },
}

impl Publish {
    async fn send(&self, http: &reqwest::Client, seq: u64) -> reqwest::Result<reqwest::StatusCode> {
        let body = serde_json::json!({"text": format!("fan {seq}")});
        let req = match self {
            Publish::Widget { url, visitor } => http.post(url).bearer_auth(visitor),
            Publish::Bare { url } => http.post(url),
        };
        Ok(req.json(&body).send().await?.status())
    }
}

pub async fn run(target: Target<'_>, o: &Opts) -> anyhow::Result<Report> {
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(512)
        .build()?;
    let rss = || match &target {
        Target::Switchboard(s) => s.rss_mib(),
        Target::Baseline(b) => b.rss_mib(),
    };
    let rss_idle_mib = rss();
    let ws_url = match &target {
        Target::Switchboard(server) => format!(
            "{}/api/v1/ws?token={}",
            server.base.replace("http://", "ws://"),
            server.admin
        ),
        Target::Baseline(b) => format!("{}/ws", b.base.replace("http://", "ws://")),
    };
    let frames = Arc::new(AtomicU64::new(0));
    let received: Arc<Mutex<Vec<(u64, Instant)>>> = Arc::new(Mutex::new(Vec::new()));
    let mut progress = Progress::new("connecting sockets", o.sockets as u64);
    let mut readers = Vec::with_capacity(o.sockets);
    for k in 0..o.sockets {
        let (mut ws, _) = tokio_tungstenite::connect_async(&ws_url)
            .await
            .with_context(|| format!("socket {k}"))?;
        let (frames, received) = (frames.clone(), received.clone());
        readers.push(tokio::spawn(async move {
            while let Some(Ok(frame)) = ws.next().await {
                let tokio_tungstenite::tungstenite::Message::Text(t) = frame else {
                    continue;
                };
                if !t.as_str().contains("\"message.created\"") {
                    continue;
                }
                frames.fetch_add(1, Ordering::Relaxed);
                if k < SAMPLED
                    && let Ok(v) = serde_json::from_str::<serde_json::Value>(t.as_str())
                    && let Some(seq) = v["message"]["text"]
                        .as_str()
                        .and_then(|s| s.strip_prefix("fan "))
                        .and_then(|s| s.parse::<u64>().ok())
                {
                    received.lock().await.push((seq, Instant::now()));
                }
            }
        }));
        progress.update(k as u64 + 1);
    }
    progress.finish(o.sockets as u64);
    tokio::time::sleep(Duration::from_secs(1)).await;
    let rss_connected_mib = rss();

    // One visitor writes `events` messages at `rate`/s through the widget API (or the bare
    // server is told to publish them).
    let publish = Arc::new(match &target {
        Target::Switchboard(server) => {
            let inbox = server
                .api(
                    reqwest::Method::POST,
                    "/inboxes",
                    &server.admin,
                    Some(serde_json::json!({"name": "Fan-out", "channel": "livechat"})),
                )
                .await?;
            let inbox = inbox["id"].as_str().context("inbox id")?.to_owned();
            let session: serde_json::Value = http
                .post(format!("{}/widget/v1/sessions", server.base))
                .json(&serde_json::json!({"inbox_id": inbox}))
                .send()
                .await?
                .json()
                .await?;
            Publish::Widget {
                url: format!("{}/widget/v1/messages", server.base),
                visitor: session["token"]
                    .as_str()
                    .context("visitor token")?
                    .to_owned(),
            }
        }
        Target::Baseline(b) => Publish::Bare {
            url: format!("{}/publish", b.base),
        },
    });
    let mut sent = Vec::with_capacity(o.events);
    let mut ticker = tokio::time::interval(Duration::from_secs_f64(1.0 / o.rate.max(1) as f64));
    let mut progress = Progress::new("publishing", o.events as u64);
    let start = Instant::now();
    let mut posts = Vec::new();
    for seq in 0..o.events as u64 {
        ticker.tick().await;
        sent.push(Instant::now());
        let (http, publish) = (http.clone(), publish.clone());
        posts.push(tokio::spawn(async move { publish.send(&http, seq).await }));
        progress.update(seq + 1);
    }
    progress.finish(o.events as u64);
    for p in posts {
        let status = p.await??;
        anyhow::ensure!(
            status.is_success(),
            "a customer message was refused: {status}"
        );
    }
    let expected_frames = (o.sockets * o.events) as u64;
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut progress = Progress::new("delivering", expected_frames);
    while frames.load(Ordering::Relaxed) < expected_frames && Instant::now() < deadline {
        progress.update(frames.load(Ordering::Relaxed));
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let elapsed = start.elapsed();
    let total = frames.load(Ordering::Relaxed);
    progress.finish(total);
    let rss_after_mib = rss();
    let mut lag = Samples::default();
    for (seq, at) in received.lock().await.iter() {
        if let Some(t0) = sent.get(*seq as usize) {
            lag.push(at.duration_since(*t0));
        }
    }
    for r in readers {
        r.abort();
    }
    Ok(Report {
        sockets: o.sockets,
        events: o.events,
        frames: total,
        expected_frames,
        frames_per_sec: total as f64 / elapsed.as_secs_f64(),
        lag,
        rss_idle_mib,
        rss_connected_mib,
        rss_after_mib,
    })
}
