//! The comment-rules scenario, two servers in one run on the same comment webhooks (a livestream:
//! many customers commenting on one post of each Page, half of them leaving a phone number):
//! 1. no comment rules (the baseline of this run);
//! 2. the Pages' rules hide a comment with a phone number and like the others.
//!
//! Measured: comments acknowledged per second in both runs (the ratio is the cost of rules on
//! ingest), and in the second the time from a comment's webhook being sent to its hide reaching
//! the Graph API — a local stand-in answering at once — next to the webhooks' own ack latency in
//! the same run. Afterwards every phone comment must have been hidden exactly once.

use crate::ingest::{self, APP_SECRET, LoadResult, Opts, Webhook, page_id};
use crate::server::Server;
use crate::stats::Samples;
use axum::Router;
use axum::extract::{Path, State};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use switchboard_channels::signing::hmac_sha256_hex;

pub struct Report {
    pub without: LoadResult,
    pub with: LoadResult,
    /// Webhook sent → hide at the Graph API.
    pub hide: Samples,
    pub phone_comments: usize,
    /// Phone comments hidden, and hide calls in all (a second call for one comment is a defect).
    pub hidden: usize,
    pub hide_calls: usize,
}

type Calls = Arc<Mutex<HashMap<String, (usize, Instant)>>>;

/// The Graph API as far as hiding and liking comments goes: records the first call per comment.
async fn graph() -> anyhow::Result<(String, Calls, tokio::task::JoinHandle<()>)> {
    let calls: Calls = Arc::default();
    async fn hide(State(c): State<Calls>, Path((_v, id)): Path<(String, String)>) -> &'static str {
        if let Ok(mut m) = c.lock() {
            m.entry(id).or_insert((0, Instant::now())).0 += 1;
        }
        r#"{"success":true}"#
    }
    async fn ok() -> &'static str {
        r#"{"success":true}"#
    }
    let app = Router::new()
        .route("/{v}/{id}", axum::routing::post(hide))
        .route("/{v}/{id}/likes", axum::routing::post(ok))
        .with_state(calls.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}/v26.0", listener.local_addr()?);
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Ok((url, calls, task))
}

fn comment_id(run: &str, seq: u64) -> String {
    format!("c{run}{seq}")
}

/// One comment per webhook (Meta batches a few at times: 20 % carry 2–5), every even one with a
/// phone number, on post 1 of its Page.
fn build(run: &str, o: &Opts, now_secs: i64) -> Vec<Webhook> {
    let mut out = Vec::new();
    let mut seq: u64 = 0;
    let mut rng = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        (rng % 10_000) as f64 / 10_000.0
    };
    while (seq as usize) < o.messages {
        let n = if next() < o.batch_pct {
            2 + (next() * 4.0) as usize
        } else {
            1
        };
        let page = (seq as usize) % o.pages.max(1);
        let pid = page_id(page);
        let mut changes = Vec::new();
        let mut seqs = Vec::new();
        for _ in 0..n {
            if seq as usize >= o.messages {
                break;
            }
            let customer = (seq as usize * 7919) % o.customers.max(1);
            let text = if seq.is_multiple_of(2) {
                format!(
                    "bench {seq} 0912.{:03}.{:03} tư vấn em",
                    customer % 1000,
                    seq % 1000
                )
            } else {
                format!("bench {seq} đẹp quá shop ơi")
            };
            changes.push(serde_json::json!({"field": "feed", "value": {
                "item": "comment", "verb": "add", "comment_id": comment_id(run, seq),
                "post_id": format!("{pid}_1"), "parent_id": format!("{pid}_1"),
                "from": {"id": format!("6{customer:014}"), "name": format!("Khách {customer}")},
                "message": text, "created_time": now_secs}}));
            seqs.push(seq);
            seq += 1;
        }
        let body = serde_json::json!({"object": "page", "entry": [{"id": pid, "time": now_secs, "changes": changes}]});
        let body = serde_json::to_vec(&body).unwrap_or_default();
        let signature = format!("sha256={}", hmac_sha256_hex(APP_SECRET.as_bytes(), &body));
        out.push(Webhook {
            path: "/webhooks/meta",
            body,
            signature,
            seqs,
            duplicate: false,
        });
    }
    out
}

async fn pages(server: &Server, o: &Opts, graph: &str, rules: bool) -> anyhow::Result<()> {
    for i in 0..o.pages {
        let v = server
            .api(
                reqwest::Method::POST,
                "/inboxes",
                &server.admin,
                Some(serde_json::json!({"name": format!("Bench page {i}"), "channel": "messenger", "settings": {
                    "page_id": page_id(i), "page_access_token": "bench-token", "app_secret": APP_SECRET,
                    "verify_token": "bench-verify-token", "api_base_url": graph}})),
            )
            .await?;
        if rules {
            let id = v["id"].as_str().unwrap_or_default();
            server
                .api(
                    reqwest::Method::PUT,
                    &format!("/inboxes/{id}/comment-rules"),
                    &server.admin,
                    Some(serde_json::json!({"rules": {"rules": [
                        {"name": "Ẩn số điện thoại", "when": [{"type": "has_phone"}], "do": [{"type": "hide_comment"}]},
                        {"name": "Hỏi giá", "when": [{"type": "keywords", "keywords": ["giá", "bao nhiêu", "ib"]}], "do": [{"type": "like_comment"}]}
                    ], "default": [{"type": "like_comment"}]}})),
                )
                .await?;
        }
    }
    Ok(())
}

async fn one(
    bin: &std::path::Path,
    database_url: Option<&str>,
    o: &Opts,
    rules: bool,
) -> anyhow::Result<(LoadResult, Samples, usize, usize, usize)> {
    let dir = crate::temp_dir()?;
    let target = crate::db::Target::fresh(database_url, dir.path()).await?;
    let server = Server::start(bin, dir.path(), &target, true).await?;
    let (graph_url, calls, graph_task) = graph().await?;
    let result = async {
        pages(&server, o, &graph_url, rules).await?;
        let run = uuid::Uuid::now_v7().simple().to_string()[..8].to_owned();
        let now_secs = i64::try_from(
            std::time::UNIX_EPOCH
                .elapsed()
                .map(|d| d.as_secs())
                .unwrap_or(0),
        )
        .unwrap_or(0);
        let hooks = build(&run, o, now_secs);
        let label = if rules { "with rules" } else { "no rules" };
        let load = ingest::load(&server.http, &server.base, hooks, o, label).await?;
        let phones = load.messages.div_ceil(2);
        let mut hide = Samples::default();
        let (mut hidden, mut hide_calls) = (0, 0);
        if rules {
            // Hides still on their way when the last webhook was answered: until all came, or
            // nothing more came for 10 s.
            let mut last = (usize::MAX, Instant::now());
            loop {
                tokio::time::sleep(Duration::from_millis(100)).await;
                let n = calls.lock().map(|m| m.len()).unwrap_or(0);
                if n >= phones || last.1.elapsed() > Duration::from_secs(10) {
                    break;
                }
                if n != last.0 {
                    last = (n, Instant::now());
                }
            }
            let calls = calls.lock().map(|m| m.clone()).unwrap_or_default();
            for seq in (0..load.messages as u64).step_by(2) {
                if let (Some((n, at)), Some(t0)) =
                    (calls.get(&comment_id(&run, seq)), load.sent_at.get(&seq))
                {
                    hidden += 1;
                    hide_calls += n;
                    hide.push(at.duration_since(*t0));
                }
            }
        }
        anyhow::Ok((load, hide, phones, hidden, hide_calls))
    }
    .await;
    graph_task.abort();
    server.stop().await;
    target.drop().await?;
    result
}

pub async fn run(
    bin: &std::path::Path,
    database_url: Option<&str>,
    o: &Opts,
) -> anyhow::Result<Report> {
    let (without, _, _, _, _) = one(bin, database_url, o, false).await?;
    let (with, hide, phone_comments, hidden, hide_calls) = one(bin, database_url, o, true).await?;
    Ok(Report {
        without,
        with,
        hide,
        phone_comments,
        hidden,
        hide_calls,
    })
}

pub fn print(r: &Report) {
    ingest::print_loads(
        ("comments", "comments/s"),
        &[("no comment rules", &r.without), ("comment rules", &r.with)],
    );
    println!(
        "\nwith rules / without = {:.2} (comments/s)",
        r.with.msgs_per_sec() / r.without.msgs_per_sec()
    );
    println!(
        "comment → hide at the Graph API: {} of {} phone comments hidden ({} calls), p50 {:.1} ms, p99 {:.1} ms; \
         same run's webhook ack p99 {:.1} ms (ratio {:.1})",
        r.hidden,
        r.phone_comments,
        r.hide_calls,
        r.hide.pct(50.0),
        r.hide.pct(99.0),
        r.with.ack.pct(99.0),
        r.hide.pct(99.0) / r.with.ack.pct(99.0).max(0.001)
    );
}
