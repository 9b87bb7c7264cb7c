//! The inbox-queries scenario: a generated dataset (default 1 M conversations / 10 M messages,
//! written straight into the database — the SQLite file, or a PostgreSQL schema — and reused by
//! later runs), then p50/p99 of the agent's list views and of opening a conversation, through the
//! real API.

use crate::db::{Db, Target};
use crate::server::Server;
use crate::stats::{Progress, Samples};
use anyhow::Context;
use std::path::Path;
use std::time::Instant;

#[derive(Clone, Debug)]
pub struct Opts {
    pub conversations: usize,
    pub messages_per: usize,
    pub samples: usize,
}

pub const AGENTS: usize = 20;
pub const INBOXES: usize = 4;
pub const AGENT_PASSWORD: &str = "bench-agent-password";
const WORDS: &[&str] = &[
    "xin", "chào", "shop", "ơi", "áo", "quần", "size", "màu", "đỏ", "xanh", "giao", "hàng", "bao",
    "lâu", "còn", "không", "ạ", "giá", "bao", "nhiêu", "ship", "cod", "đổi", "trả", "đơn", "mình",
    "đặt", "hôm", "qua", "cảm", "ơn", "nhé",
];

fn marker(o: &Opts) -> String {
    format!("{}x{}", o.conversations, o.messages_per)
}

/// Creates the dataset in `target` unless the same one is there already (agent i is a member of
/// inboxes i % 4 and (i + 1) % 4). The schema, the admin, agents, inboxes and tags are made
/// through the product itself; the bulk rows are written straight into the database.
pub async fn generate(
    bin: &Path,
    data_dir: &Path,
    target: &Target,
    o: &Opts,
) -> anyhow::Result<()> {
    if target.has_schema().await? {
        let mut db = target.connect().await?;
        let m = db.setting("bench_dataset").await?;
        if m.as_deref() == Some(marker(o).as_str()) {
            eprintln!("dataset {} already in {}", marker(o), target.describe());
            return Ok(());
        }
        anyhow::bail!(
            "{} holds another or an unfinished dataset; remove it or pick another --data-dir",
            target.describe()
        );
    }
    std::fs::create_dir_all(data_dir)?;
    eprintln!("generating dataset {} in {}", marker(o), target.describe());
    let server = Server::start(bin, data_dir, target, true).await?;
    let mut agent_ids = Vec::new();
    for i in 0..AGENTS {
        let a = server
            .api(reqwest::Method::POST, "/agents", &server.admin, Some(serde_json::json!({"email": format!("agent{i}@bench.local"), "name": format!("Agent {i}"), "role": "agent", "password": AGENT_PASSWORD})))
            .await?;
        agent_ids.push(a["id"].as_str().context("agent id")?.to_owned());
    }
    let mut inbox_ids = Vec::new();
    for b in 0..INBOXES {
        let i = server
            .api(
                reqwest::Method::POST,
                "/inboxes",
                &server.admin,
                Some(serde_json::json!({"name": format!("Shop {b}"), "channel": "livechat"})),
            )
            .await?;
        inbox_ids.push(i["id"].as_str().context("inbox id")?.to_owned());
    }
    for (b, inbox) in inbox_ids.iter().enumerate() {
        let members: Vec<&String> = agent_ids
            .iter()
            .enumerate()
            .filter(|(i, _)| i % INBOXES == b || (i + 1) % INBOXES == b)
            .map(|(_, a)| a)
            .collect();
        server
            .api(
                reqwest::Method::PUT,
                &format!("/inboxes/{inbox}/members"),
                &server.admin,
                Some(serde_json::json!({"agent_ids": members})),
            )
            .await?;
    }
    for tag in ["vip", "order"] {
        server
            .api(
                reqwest::Method::POST,
                "/tags",
                &server.admin,
                Some(serde_json::json!({"name": tag})),
            )
            .await?;
    }
    server.stop().await;

    let mut db = target.connect().await?;
    // Loading speed only: the dataset is rebuilt if the load does not finish (no marker).
    let indexes = if target.is_postgres() {
        db.exec("SET synchronous_commit = off".into()).await?;
        db.exec("SET maintenance_work_mem = '512MB'".into()).await?;
        // Secondary indexes are built once after the load instead of row by row.
        let defs = db
            .strings(
                "SELECT indexname::text, indexdef::text FROM pg_indexes WHERE schemaname = current_schema() \
                 AND tablename IN ('contacts', 'contact_identities', 'conversations', 'conversation_tags', 'messages') \
                 AND indexname NOT LIKE '%_pkey'"
                    .into(),
            )
            .await?;
        for (name, _) in &defs {
            db.exec(format!("DROP INDEX {name}")).await?;
        }
        defs
    } else {
        db.exec("PRAGMA synchronous = OFF".into()).await?;
        db.exec("PRAGMA cache_size = -262144".into()).await?;
        Vec::new()
    };
    let ws = db
        .strings("SELECT id, name FROM workspaces LIMIT 1".into())
        .await?
        .pop()
        .context("no workspace")?
        .0;
    let tags = db.strings("SELECT id, name FROM tags".into()).await?;
    let tag_id = |name: &str| {
        tags.iter()
            .find(|t| t.1 == name)
            .map(|t| t.0.clone())
            .unwrap_or_default()
    };
    let (vip, order) = (tag_id("vip"), tag_id("order"));
    let now = i64::try_from(std::time::UNIX_EPOCH.elapsed()?.as_millis())?;
    let total = (o.conversations * (o.messages_per + 1)) as u64;
    let mut progress = Progress::new("generating dataset", total);
    let mut done = 0u64;
    const CHUNK: usize = 1000;
    let mut start = 0;
    while start < o.conversations {
        let end = (start + CHUNK).min(o.conversations);
        db.begin().await?;
        let mut contacts = String::from(
            "INSERT INTO contacts (id, workspace_id, name, phone, created_at, updated_at) VALUES ",
        );
        let mut idents = String::from(
            "INSERT INTO contact_identities (inbox_id, external_id, contact_id, created_at) VALUES ",
        );
        let mut convs = String::from(
            "INSERT INTO conversations (id, workspace_id, inbox_id, contact_id, status, assignee_id, last_assignee_id, participants, tags, \
             last_customer_message_at, last_agent_reply_at, last_activity_at, last_message_preview, unread_count, created_at, version) VALUES ",
        );
        let mut ctags =
            String::from("INSERT INTO conversation_tags (tag_id, conversation_id) VALUES ");
        let mut any_tag = false;
        for i in start..end {
            let cid = conversation_id(i);
            let kid = format!("{:08x}-0000-7000-9000-{:012x}", i, i);
            let inbox = &inbox_ids[i % INBOXES];
            let at = now - (i as i64) * 2000;
            let (status, assignee) = match i % 10 {
                0 => ("pending", None),
                1..=3 => ("open", Some(&agent_ids[member_agent(i)])),
                _ => ("resolved", None),
            };
            let mut tag_names = Vec::new();
            if i % 20 == 0 {
                tag_names.push("vip");
                ctags.push_str(&format!("('{vip}','{cid}'),"));
                any_tag = true;
            }
            if i % 7 == 0 {
                tag_names.push("order");
                ctags.push_str(&format!("('{order}','{cid}'),"));
                any_tag = true;
            }
            let sep = if i == start { "" } else { "," };
            contacts.push_str(&format!(
                "{sep}('{kid}','{ws}','Khách {i}','09{:08}',{at},{at})",
                i % 100_000_000
            ));
            idents.push_str(&format!(
                "{sep}('{inbox}','visitor:bench-{i}','{kid}',{at})"
            ));
            let a = assignee
                .map(|a| format!("'{a}'"))
                .unwrap_or_else(|| "NULL".into());
            convs.push_str(&format!(
                "{sep}('{cid}','{ws}','{inbox}','{kid}','{status}',{a},{a},'[]','{}',{at},{at},{at},'mã đơn #{i}',0,{at},1)",
                serde_json::to_string(&tag_names)?
            ));
        }
        for sql in [contacts, idents, convs] {
            db.exec(sql).await?;
        }
        if any_tag {
            ctags.pop();
            db.exec(ctags).await?;
        }
        done += (end - start) as u64;
        // Messages: `messages_per` per conversation, in statements of ~1,000 rows.
        let mut rows = Vec::with_capacity(1000);
        for i in start..end {
            let cid = conversation_id(i);
            let inbox = &inbox_ids[i % INBOXES];
            let at0 = now - (i as i64) * 2000 - (o.messages_per as i64) * 10;
            for k in 0..o.messages_per {
                let mid = format!("{:08x}-{:04x}-7000-a000-{:012x}", i, k, i);
                let (dir, sender) = if k % 2 == 0 {
                    ("inbound", "customer")
                } else {
                    ("outbound", "agent")
                };
                let w = |n: usize| WORDS[(i * 31 + k * 7 + n * 13) % WORDS.len()];
                let body = if k == 0 {
                    format!("{} {} {} mã đơn #{i}", w(0), w(1), w(2))
                } else {
                    format!("{} {} {} {} {}", w(0), w(1), w(2), w(3), w(4))
                };
                let pid = if dir == "inbound" {
                    format!("'bench-{i}-{k}'")
                } else {
                    "NULL".into()
                };
                rows.push(format!("('{mid}','{cid}','{inbox}','{dir}','{sender}',NULL,'text','{body}',{pid},'sent',NULL,{})", at0 + k as i64 * 10));
                if rows.len() == 1000 {
                    insert_messages(&mut db, &mut rows).await?;
                }
            }
            done += o.messages_per as u64;
        }
        insert_messages(&mut db, &mut rows).await?;
        db.commit().await?;
        progress.update(done);
        start = end;
    }
    progress.finish(done);
    for (name, def) in &indexes {
        eprint!("building index {name}… ");
        db.exec(def.clone()).await?;
        eprintln!("done");
    }
    eprint!("analyzing… ");
    db.exec("ANALYZE".into()).await?;
    if !target.is_postgres() {
        db.exec("PRAGMA wal_checkpoint(TRUNCATE)".into()).await?;
    }
    db.set_setting("bench_dataset", &marker(o)).await?;
    eprintln!("done");
    Ok(())
}

fn conversation_id(i: usize) -> String {
    format!("{:08x}-0000-7000-8000-{:012x}", i, i)
}

/// An agent who is a member of conversation `i`'s inbox.
fn member_agent(i: usize) -> usize {
    let b = i % INBOXES;
    // Agents j with j % 4 == b are members; pick one of the five by i.
    b + INBOXES * ((i / 10) % (AGENTS / INBOXES))
}

async fn insert_messages(db: &mut Db, rows: &mut Vec<String>) -> anyhow::Result<()> {
    if rows.is_empty() {
        return Ok(());
    }
    db.exec(format!(
        "INSERT INTO messages (id, conversation_id, inbox_id, direction, sender_kind, sender_agent_id, kind, body, provider_message_id, delivery_status, failure_reason, created_at) VALUES {}",
        rows.join(",")
    ))
    .await?;
    rows.clear();
    Ok(())
}

pub struct View {
    pub name: &'static str,
    pub samples: Samples,
    pub rows: usize,
}

/// Times each list view `samples` times (sequentially: latency, not throughput).
pub async fn measure(server: &Server, o: &Opts) -> anyhow::Result<Vec<View>> {
    let login = |email: String| {
        let http = server.http.clone();
        let base = server.base.clone();
        async move {
            let v: serde_json::Value = http
                .post(format!("{base}/api/v1/auth/login"))
                .json(&serde_json::json!({"email": email, "password": AGENT_PASSWORD}))
                .send()
                .await?
                .json()
                .await?;
            anyhow::Ok(v["token"].as_str().context("agent login")?.to_owned())
        }
    };
    let agent = login("agent0@bench.local".into()).await?;
    let admin = server.admin.clone();
    let n = o.conversations.max(1);
    let rare = n / 3;
    let views: Vec<(&'static str, String, String)> = vec![
        (
            "Mine (agent)",
            "/conversations?assignee=me&status=open".into(),
            agent.clone(),
        ),
        (
            "Unassigned (agent)",
            "/conversations?status=pending".into(),
            agent.clone(),
        ),
        ("All (admin)", "/conversations".into(), admin.clone()),
        (
            "By tag (agent)",
            "/conversations?tag=vip".into(),
            agent.clone(),
        ),
        (
            "Search, common word (agent)",
            "/conversations?q=size".into(),
            agent.clone(),
        ),
        (
            "Search, one order (admin)",
            format!("/conversations?q=%23{rare}"),
            admin.clone(),
        ),
    ];
    let mut out = Vec::new();
    for (name, path, token) in views {
        let mut samples = Samples::default();
        let mut rows = 0;
        let mut progress = Progress::new(name, o.samples as u64);
        for k in 0..o.samples {
            let t0 = Instant::now();
            let v = server
                .api(reqwest::Method::GET, &path, &token, None)
                .await?;
            samples.push(t0.elapsed());
            rows = v["items"].as_array().map_or(0, Vec::len);
            progress.update(k as u64 + 1);
        }
        progress.finish(o.samples as u64);
        out.push(View {
            name,
            samples,
            rows,
        });
    }
    // Opening a conversation: its summary and its latest messages, for conversations spread over the set.
    let mut samples = Samples::default();
    let mut progress = Progress::new("Open a conversation", o.samples as u64);
    for k in 0..o.samples {
        let i = (k * 7919) % n;
        let cid = conversation_id(i);
        let t0 = Instant::now();
        server
            .api(
                reqwest::Method::GET,
                &format!("/conversations/{cid}"),
                &admin,
                None,
            )
            .await?;
        server
            .api(
                reqwest::Method::GET,
                &format!("/conversations/{cid}/messages"),
                &admin,
                None,
            )
            .await?;
        samples.push(t0.elapsed());
        progress.update(k as u64 + 1);
    }
    progress.finish(o.samples as u64);
    out.push(View {
        name: "Open (summary + thread)",
        samples,
        rows: 0,
    });
    Ok(out)
}

/// The same number of sequential requests to the bare server's `GET /list`.
pub async fn measure_floor(bare: &crate::baseline::Process, o: &Opts) -> anyhow::Result<Samples> {
    let http = reqwest::Client::new();
    let url = format!("{}/list", bare.base);
    let mut samples = Samples::default();
    let mut progress = Progress::new("baseline", o.samples as u64);
    for k in 0..o.samples {
        let t0 = Instant::now();
        let body = http.get(&url).send().await?.bytes().await?;
        samples.push(t0.elapsed());
        anyhow::ensure!(!body.is_empty(), "the baseline answered nothing");
        progress.update(k as u64 + 1);
    }
    progress.finish(o.samples as u64);
    Ok(samples)
}
