//! The automation scenario, three servers in one run on the same request mix:
//! 1. ingest with no flows (the baseline of this run);
//! 2. ingest with `flows` active keyword flows whose keywords the traffic does not contain (the
//!    cost of matching every message against them);
//! 3. a FAQ bot answering every customer message, at half the rate the first server reached:
//!    the time from a customer's webhook being sent to the bot's reply being queued (its
//!    `message.created` on an agent socket);
//! 4. the same bot as fast as the load generator can send: the most messages per second the
//!    server answers with it (the lower of ingest and replies);
//! 5. the same bot at half of that rate: the reply latency at half the server's own maximum with
//!    a bot on every message.

use crate::ingest::{self, Opts, seq_of};
use crate::server::Server;
use crate::stats::Samples;
use anyhow::Context;
use futures_util::StreamExt;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Mutex;

pub struct Report {
    pub none: ingest::LoadResult,
    pub flows: ingest::LoadResult,
    /// At half the rate of `none`.
    pub bot: BotRun,
    /// As fast as answered.
    pub bot_max: BotRun,
    /// At half the rate `bot_max` sustained.
    pub bot_half_max: BotRun,
    pub flow_count: usize,
}

pub struct BotRun {
    pub load: ingest::LoadResult,
    pub reply: Samples,
    pub replies: usize,
    /// Bot replies per second, from the first to the last one seen.
    pub replies_per_sec: f64,
}

impl BotRun {
    /// Messages per second the server took and answered.
    fn sustained(&self) -> f64 {
        self.load.msgs_per_sec().min(self.replies_per_sec)
    }
}

/// `n` keyword flows of every match mode, none of whose keywords the bench messages contain.
pub async fn keyword_flows(server: &Server, n: usize) -> anyhow::Result<()> {
    let modes = ["contains", "whole_word", "starts_with", "exact", "regex"];
    for i in 0..n {
        let mode = modes[i % modes.len()];
        let keywords: Vec<String> = if mode == "regex" {
            vec![format!(r"ma\s*giam\s*{i}\b"), format!(r"^voucher-{i}$")]
        } else {
            vec![
                format!("khuyến mãi {i}"),
                format!("mã giảm giá số {i}"),
                format!("đổi trả lần {i}"),
            ]
        };
        let flow = serde_json::json!({
            "name": format!("Bench {i:02}"), "version": 1,
            "triggers": [{"type": "keyword", "match": mode, "keywords": keywords}],
            "start": "hi",
            "steps": [{"id": "hi", "do": {"type": "send_message", "variants": [{"text": format!("Dạ chương trình {i} ạ")}]}}]
        });
        server
            .api(
                reqwest::Method::POST,
                "/flows",
                &server.admin,
                Some(serde_json::json!({"flow": flow})),
            )
            .await?;
    }
    Ok(())
}

/// A FAQ that answers the bench's question, and a flow that hands every new conversation to it.
async fn faq_bot(server: &Server) -> anyhow::Result<()> {
    server
        .api(
            reqwest::Method::PUT,
            "/faq",
            &server.admin,
            Some(serde_json::json!({"entries": [
                {"phrasings": ["còn hàng không", "còn hàng"], "answer": "Dạ còn hàng ạ"}
            ]})),
        )
        .await?;
    let flow = serde_json::json!({
        "name": "Bench FAQ", "version": 1,
        "triggers": [{"type": "new_conversation"}],
        "start": "faq",
        "steps": [{"id": "faq", "do": {"type": "faq_bot", "fallback": "Dạ shop chưa rõ ạ", "max_misses": 10}}]
    });
    server
        .api(
            reqwest::Method::POST,
            "/flows",
            &server.admin,
            Some(serde_json::json!({"flow": flow})),
        )
        .await?;
    Ok(())
}

/// Runs the request mix against a fresh server prepared by `prepare`.
async fn one(
    bin: &std::path::Path,
    database_url: Option<&str>,
    o: &Opts,
    label: &str,
    prepare: impl AsyncFnOnce(&Server) -> anyhow::Result<()>,
    watch_replies: bool,
) -> anyhow::Result<(ingest::LoadResult, Samples, usize, f64)> {
    let dir = crate::temp_dir()?;
    let target = crate::db::Target::fresh(database_url, dir.path()).await?;
    let server = Server::start(bin, dir.path(), &target, true).await?;
    let result = async {
        ingest::setup_inboxes(&server, o).await?;
        prepare(&server).await?;
        // The socket: each customer message's conversation, then the bot's reply in it.
        let ws_url = format!(
            "{}/api/v1/ws?token={}",
            server.base.replace("http://", "ws://"),
            server.admin
        );
        let (mut ws, _) = tokio_tungstenite::connect_async(&ws_url)
            .await
            .context("agent socket")?;
        type Seen = (HashMap<String, u64>, Vec<(u64, Instant)>);
        let seen: Arc<Mutex<Seen>> = Arc::default();
        let seen_w = seen.clone();
        let reader = tokio::spawn(async move {
            while let Some(Ok(frame)) = ws.next().await {
                if !watch_replies {
                    continue;
                }
                let tokio_tungstenite::tungstenite::Message::Text(t) = frame else {
                    continue;
                };
                let Ok(v) = serde_json::from_str::<serde_json::Value>(t.as_str()) else {
                    continue;
                };
                if v["type"] != "message.created" {
                    continue;
                }
                let m = &v["message"];
                let conv = m["conversation_id"].as_str().unwrap_or_default().to_owned();
                let mut s = seen_w.lock().await;
                match m["sender_kind"].as_str() {
                    Some("customer") => {
                        if let Some(seq) = m["text"].as_str().and_then(seq_of) {
                            s.0.insert(conv, seq);
                        }
                    }
                    Some("bot") => {
                        if let Some(seq) = s.0.remove(&conv) {
                            s.1.push((seq, Instant::now()));
                        }
                    }
                    _ => {}
                }
            }
        });
        let run = uuid::Uuid::now_v7().simple().to_string()[..8].to_owned();
        let now_ms = i64::try_from(
            std::time::UNIX_EPOCH
                .elapsed()
                .map(|d| d.as_millis())
                .unwrap_or(0),
        )
        .unwrap_or(0);
        let (hooks, _) = ingest::build(&run, o, now_ms);
        let load = ingest::load(&server.http, &server.base, hooks, o, label).await?;
        // Replies still being written when the last webhook was answered: up to 10 s more.
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut last = usize::MAX;
        while watch_replies && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(200)).await;
            let n = seen.lock().await.1.len();
            if n == last {
                break;
            }
            last = n;
        }
        reader.abort();
        let mut reply = Samples::default();
        let replies = std::mem::take(&mut seen.lock().await.1);
        let rate = match (
            replies.iter().map(|r| r.1).min(),
            replies.iter().map(|r| r.1).max(),
        ) {
            (Some(a), Some(b)) if b > a => replies.len() as f64 / (b - a).as_secs_f64(),
            _ => 0.0,
        };
        for (seq, at) in &replies {
            if let Some(t0) = load.sent_at.get(seq) {
                reply.push(at.duration_since(*t0));
            }
        }
        anyhow::Ok((load, reply, replies.len(), rate))
    }
    .await;
    server.stop().await;
    target.drop().await?;
    result
}

pub async fn run(
    bin: &std::path::Path,
    database_url: Option<&str>,
    o: &Opts,
    flows: usize,
) -> anyhow::Result<Report> {
    let (none, _, _, _) = one(bin, database_url, o, "no flows", async |_| Ok(()), false).await?;
    let (with_flows, _, _, _) = one(
        bin,
        database_url,
        o,
        "keyword flows",
        async |s| keyword_flows(s, flows).await,
        false,
    )
    .await?;
    let bot_at = async |rate: Option<u64>, label: &str| {
        let o = Opts {
            rate,
            dup_pct: 0.0,
            ..o.clone()
        };
        let (load, reply, replies, replies_per_sec) = one(
            bin,
            database_url,
            &o,
            label,
            async |s| faq_bot(s).await,
            true,
        )
        .await?;
        anyhow::Ok(BotRun {
            load,
            reply,
            replies,
            replies_per_sec,
        })
    };
    // Half the rate the server without flows reached, in webhooks per second.
    let half = ((none.reqs_per_sec() / 2.0) as u64).max(1);
    let bot = bot_at(Some(half), "FAQ bot, half of no-flow max").await?;
    let bot_max = bot_at(None, "FAQ bot, max").await?;
    // Webhooks per second for half the messages per second the bot sustained.
    let per_req = none.messages as f64 / none.requests.max(1) as f64;
    let half_bot = ((bot_max.sustained() / per_req / 2.0) as u64).max(1);
    let bot_half_max = bot_at(Some(half_bot), "FAQ bot, half of its max").await?;
    Ok(Report {
        none,
        flows: with_flows,
        bot,
        bot_max,
        bot_half_max,
        flow_count: flows,
    })
}

pub fn print(r: &Report) {
    ingest::print_loads(
        ("messages", "msg/s"),
        &[
            ("no flows", &r.none),
            (&format!("{} keyword flows", r.flow_count), &r.flows),
            ("FAQ bot, half of no-flow max", &r.bot.load),
            ("FAQ bot, max", &r.bot_max.load),
            ("FAQ bot, half of its max", &r.bot_half_max.load),
        ],
    );
    println!(
        "\nwith {} keyword flows / without = {:.2} (messages/s)",
        r.flow_count,
        r.flows.msgs_per_sec() / r.none.msgs_per_sec()
    );
    println!(
        "FAQ bot sustains {:.0} messages/s answered ({:.0} ingested/s, {:.0} replies/s)",
        r.bot_max.sustained(),
        r.bot_max.load.msgs_per_sec(),
        r.bot_max.replies_per_sec
    );
    for (name, b) in [
        ("half of no-flow max", &r.bot),
        ("half of its own max", &r.bot_half_max),
    ] {
        println!(
            "customer message → bot reply queued, {name}: {} of {} answered ({:.0}/s), p50 {:.1} ms, p99 {:.1} ms (offered {:.0} msg/s)",
            b.replies,
            b.load.messages,
            b.replies_per_sec,
            b.reply.pct(50.0),
            b.reply.pct(99.0),
            b.load.msgs_per_sec()
        );
    }
}
