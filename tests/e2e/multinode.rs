//! Two `switchboard serve` processes (the real binary) on different ports, one PostgreSQL database,
//! one NATS server: they must act as one service — and keep serving when NATS goes away. Runs when `SWITCHBOARD_TEST_DATABASE_URL` and
//! `SWITCHBOARD_TEST_NATS_URL` are set (CI sets both); otherwise it says so and passes.
//!
//! Time: the processes run with `--test-clock-file`, a test-only flag (hidden, never set by
//! default) that adds the milliseconds written in a file to the real clock. The test moves time
//! forward for both processes at once by writing the file, so a one-minute reply SLA is due at once
//! without sleeping; the nodes' real timer runners (every 100 ms) fire it. Every wait is for a
//! condition (an event, a status, a count) with a deadline, never a fixed sleep.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::support::{PASSWORD, PG_SECRETS_KEY, Ws, pg_schema_url};
use futures_util::future::join_all;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use sqlx::Row;
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

const DEADLINE: Duration = Duration::from_secs(30);

struct Node {
    base: String,
    child: Child,
    http: reqwest::Client,
}

struct Cluster {
    db_url: String,
    nats_url: String,
    dir: tempfile::TempDir,
    clock_file: PathBuf,
    /// More settings for every node (e.g. a shared media bucket).
    env: Vec<(String, String)>,
}

impl Cluster {
    async fn new(base_db: &str, nats_url: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let db_url = pg_schema_url(base_db, dir.path()).await;
        let clock_file = dir.path().join("clock-offset-ms");
        std::fs::write(&clock_file, "0").unwrap();
        Self {
            db_url,
            nats_url: nats_url.to_owned(),
            dir,
            clock_file,
            env: Vec::new(),
        }
    }

    fn command(&self, name: &str) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_switchboard"));
        let data = self.dir.path().join(name);
        c.env("SWITCHBOARD_DATABASE_URL", &self.db_url)
            .env("SWITCHBOARD_SECRETS_KEY", PG_SECRETS_KEY)
            .env("SWITCHBOARD_NATS_URL", &self.nats_url)
            .env("SWITCHBOARD_DATA_DIR", &data)
            .env("SWITCHBOARD_BIND", "127.0.0.1:0")
            .env("SWITCHBOARD_LOG", "info")
            .env("NO_COLOR", "1")
            .env("SWITCHBOARD_ROUTING__TIMER_POLL_MS", "100")
            .env("SWITCHBOARD_ROUTING__IDLE_AWAY_MINUTES", "0")
            .env("SWITCHBOARD_LIMITS__WIDGET_PER_IP_PER_MINUTE", "1000000")
            .env("SWITCHBOARD_LIMITS__WIDGET_MESSAGES_PER_MINUTE", "1000000")
            .env("SWITCHBOARD_LIMITS__LOGIN_PER_MINUTE", "1000")
            .env_remove("SWITCHBOARD_CONFIG")
            .current_dir(self.dir.path())
            .kill_on_drop(true);
        c.envs(self.env.iter().map(|(k, v)| (k, v)));
        c
    }

    /// Starts `switchboard serve` and waits for it to say where it listens.
    async fn start(&self, name: &str) -> Node {
        let mut child = self
            .command(name)
            .arg("serve")
            .arg("--test-clock-file")
            .arg(&self.clock_file)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let addr = tokio::time::timeout(DEADLINE, async {
            while let Some(line) = lines.next_line().await.unwrap() {
                if let Some(addr) = listening_address(&line) {
                    return addr;
                }
            }
            panic!("{name} exited before serving");
        })
        .await
        .expect("node started");
        // Keep draining its log so it never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Node {
            base: format!("http://{addr}"),
            child,
            http: switchboard_server::outbox::http_client(30_000).unwrap(),
        }
    }

    /// `migrate` on PostgreSQL, then the first admin, as an operator would.
    async fn migrate_and_seed(&self) {
        let migrated = self
            .command("migrate")
            .arg("migrate")
            .stdout(Stdio::null())
            .status()
            .await
            .unwrap();
        assert!(migrated.success());
        seed_admin(self).await;
    }

    /// Moves both nodes' clocks forward.
    fn advance_minutes(&self, m: i64) {
        let now: i64 = std::fs::read_to_string(&self.clock_file)
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        std::fs::write(&self.clock_file, (now + m * 60_000).to_string()).unwrap();
    }

    async fn db(&self) -> sqlx::PgConnection {
        use sqlx::Connection;
        sqlx::PgConnection::connect(&self.db_url).await.unwrap()
    }
}

fn listening_address(line: &str) -> Option<String> {
    if !line.contains("serving") {
        return None;
    }
    let at = line.find("addr=")? + "addr=".len();
    Some(
        line[at..]
            .chars()
            .take_while(|c| c.is_ascii_digit() || *c == '.' || *c == ':')
            .collect(),
    )
}

impl Node {
    async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut req = self.http.request(method, format!("{}{path}", self.base));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status();
        let text = resp.text().await.unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    async fn ok(&self, method: Method, path: &str, token: &str, body: Option<Value>) -> Value {
        let (s, v) = self.call(method, path, Some(token), body).await;
        assert!(s.is_success(), "{path}: {s} {v}");
        v
    }

    async fn login(&self, email: &str) -> String {
        let (s, v) = self
            .call(
                Method::POST,
                "/api/v1/auth/login",
                None,
                Some(json!({"email": email, "password": PASSWORD})),
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{v}");
        v["token"].as_str().unwrap().to_owned()
    }

    async fn visitor(&self, inbox: &str) -> String {
        let (s, v) = self
            .call(
                Method::POST,
                "/widget/v1/sessions",
                None,
                Some(json!({"inbox_id": inbox, "name": "Khách"})),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
        v["token"].as_str().unwrap().to_owned()
    }

    async fn says(&self, visitor: &str, text: &str) -> Value {
        let (s, v) = self
            .call(
                Method::POST,
                "/widget/v1/messages",
                Some(visitor),
                Some(json!({"text": text})),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
        v
    }

    async fn online(&self, token: &str) -> Ws {
        let url = format!(
            "{}/api/v1/ws?token={token}",
            self.base.replace("http://", "ws://")
        );
        let (stream, _) = tokio_tungstenite::connect_async(url).await.unwrap();
        let mut ws = Ws { stream };
        ws.next_of("hello").await;
        ws
    }
}

impl Node {
    /// An agent's presence as this node sees it.
    async fn presence_of(&self, admin: &str, agent: &str) -> String {
        let v = self.ok(Method::GET, "/api/v1/agents", admin, None).await;
        v["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|x| x["id"] == agent)
            .map(|x| x["presence"].as_str().unwrap().to_owned())
            .unwrap()
    }
}

/// Sends a signal (`STOP`, `CONT`) to a node's process.
async fn signal(node: &Node, sig: &str) {
    let pid = node.child.id().unwrap();
    let sent = Command::new("kill")
        .args([format!("-{sig}"), pid.to_string()])
        .status()
        .await
        .unwrap();
    assert!(sent.success(), "kill -{sig}");
}

/// Polls `check` until it returns `Some`, or fails after [`DEADLINE`].
async fn eventually<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let until = tokio::time::Instant::now() + DEADLINE;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(
            tokio::time::Instant::now() < until,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn seed_admin(cluster: &Cluster) {
    let mut c = cluster
        .command("seed")
        .args([
            "user",
            "add",
            "--email",
            "admin@shop.vn",
            "--name",
            "Admin",
            "--role",
            "admin",
            "--password-stdin",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    use tokio::io::AsyncWriteExt;
    let mut stdin = c.stdin.take().unwrap();
    stdin.write_all(PASSWORD.as_bytes()).await.unwrap();
    drop(stdin);
    assert!(c.wait().await.unwrap().success(), "user add");
}

/// With one S3-compatible bucket configured on both nodes, a file uploaded through one node is
/// served by the other (its disk never had it).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_serve_each_others_files_from_one_bucket() {
    let (Some((db, nats)), Some(s3)) = (settings(), crate::support::test_s3_bucket().await) else {
        eprintln!(
            "multi-node media test not run: set SWITCHBOARD_TEST_DATABASE_URL, SWITCHBOARD_TEST_NATS_URL and SWITCHBOARD_TEST_S3_URL"
        );
        return;
    };
    let mut cluster = Cluster::new(&db, &nats).await;
    cluster.env = [
        ("BUCKET", s3.bucket.as_str()),
        ("ENDPOINT", &s3.endpoint),
        ("ACCESS_KEY_ID", &s3.access_key_id),
        ("SECRET_ACCESS_KEY", &s3.secret_access_key),
        ("ALLOW_HTTP", "true"),
    ]
    .iter()
    .map(|(k, v)| (format!("SWITCHBOARD_MEDIA__S3__{k}"), (*v).to_owned()))
    .collect();
    cluster.migrate_and_seed().await;
    let a = cluster.start("a").await;
    let b = cluster.start("b").await;
    let admin_a = a.login("admin@shop.vn").await;
    let admin_b = b.login("admin@shop.vn").await;
    let inbox = a
        .ok(
            Method::POST,
            "/api/v1/inboxes",
            &admin_a,
            Some(json!({"name": "Web", "channel": "livechat"})),
        )
        .await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let visitor = a.visitor(&inbox).await;
    let conv = a.says(&visitor, "cho xem ảnh").await["message"]["conversation_id"]
        .as_str()
        .unwrap()
        .to_owned();
    a.ok(
        Method::POST,
        &format!("/api/v1/conversations/{conv}/claim"),
        &admin_a,
        None,
    )
    .await;
    let pdf = b"%PDF-1.7\n bang gia thang 12".to_vec();
    let up = a
        .http
        .post(format!(
            "{}/api/v1/conversations/{conv}/attachments?filename=bang-gia.pdf",
            a.base
        ))
        .bearer_auth(&admin_a)
        .body(pdf.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(up.status(), StatusCode::CREATED);
    let id = up.json::<Value>().await.unwrap()["attachments"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    // Node B serves it (to the agent and to the visitor) although only node A received it.
    for (path, token) in [
        (format!("/api/v1/media/{id}"), &admin_b),
        (format!("/widget/v1/media/{id}"), &visitor),
    ] {
        let r = b
            .http
            .get(format!("{}{path}", b.base))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK, "{path}");
        assert_eq!(r.headers()["content-type"], "application/pdf");
        assert!(
            r.bytes().await.unwrap() == pdf,
            "{path}: other bytes came back"
        );
    }
    assert!(!cluster.dir.path().join("a/media").join(&id).exists());
}

fn settings() -> Option<(String, String)> {
    let db = std::env::var("SWITCHBOARD_TEST_DATABASE_URL")
        .ok()
        .filter(|s| !s.is_empty())?;
    let nats = std::env::var("SWITCHBOARD_TEST_NATS_URL")
        .ok()
        .filter(|s| !s.is_empty())?;
    Some((db, nats))
}

async fn count(db: &mut sqlx::PgConnection, sql: &'static str, arg: &str) -> i64 {
    sqlx::query(sql)
        .bind(arg)
        .fetch_one(db)
        .await
        .unwrap()
        .try_get(0)
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_nodes_act_as_one_service() {
    let Some((db, nats)) = settings() else {
        eprintln!(
            "multi-node test not run: set SWITCHBOARD_TEST_DATABASE_URL and SWITCHBOARD_TEST_NATS_URL"
        );
        return;
    };
    let cluster = Cluster::new(&db, &nats).await;
    cluster.migrate_and_seed().await;
    let mut a = cluster.start("a").await;
    let b = cluster.start("b").await;
    let admin_a = a.login("admin@shop.vn").await;
    let admin_b = b.login("admin@shop.vn").await;

    // ---- set up on node A: five agents and a self-claim inbox with a one-minute reply SLA.
    let mut agents = Vec::new();
    for i in 0..5 {
        let v = a
            .ok(
                Method::POST,
                "/api/v1/agents",
                &admin_a,
                Some(
                    json!({"email": format!("a{i}@shop.vn"), "name": format!("Agent {i}"),
                            "role": "agent", "password": PASSWORD}),
                ),
            )
            .await;
        agents.push(v["id"].as_str().unwrap().to_owned());
    }
    let inbox = a
        .ok(
            Method::POST,
            "/api/v1/inboxes",
            &admin_a,
            Some(json!({"name": "Web", "channel": "livechat"})),
        )
        .await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    a.ok(
        Method::PUT,
        &format!("/api/v1/inboxes/{inbox}/members"),
        &admin_a,
        Some(json!({"agent_ids": agents})),
    )
    .await;
    a.ok(
        Method::PUT,
        &format!("/api/v1/inboxes/{inbox}/routing"),
        &admin_a,
        Some(json!({"strategy": "self_claim", "reply_sla_minutes": 1})),
    )
    .await;
    let mut tokens = Vec::new();
    for i in 0..5 {
        // Sign in on alternate nodes: sessions live in the database.
        let node = if i % 2 == 0 { &a } else { &b };
        tokens.push(node.login(&format!("a{i}@shop.vn")).await);
    }

    // Node B learned about the membership change made on A (over NATS): agent 0 sees the inbox.
    let list = format!("/api/v1/conversations?inbox_id={inbox}");
    eventually("node B to see the new membership", || async {
        (b.call(Method::GET, &list, Some(&tokens[0]), None).await.0 == StatusCode::OK).then_some(())
    })
    .await;

    // ---- a message posted to node A reaches an agent's socket on node B.
    let mut ws_b = b.online(&tokens[0]).await;
    // Presence crosses nodes too: node A sees agent 0 (connected to B) online.
    eventually("node A to see agent 0 online", || async {
        (a.presence_of(&admin_a, &agents[0]).await == "online").then_some(())
    })
    .await;
    let visitor = a.visitor(&inbox).await;
    a.says(&visitor, "xin chào từ node A").await;
    let ev = loop {
        let ev = ws_b.next_of("message.created").await;
        if ev["message"]["text"] == "xin chào từ node A" {
            break ev;
        }
    };
    assert!(ev["cursor"].as_i64().unwrap() > 0);

    // ---- round-robin across nodes: agents 1 and 3 are connected to A, agent 2 to B; 30 customers
    // arrive at once, half through each node. The shared rotation pointer (compare-and-set) gives
    // each agent 10, whichever node routed them.
    let rr = a
        .ok(
            Method::POST,
            "/api/v1/inboxes",
            &admin_a,
            Some(json!({"name": "Round robin", "channel": "livechat"})),
        )
        .await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    a.ok(
        Method::PUT,
        &format!("/api/v1/inboxes/{rr}/members"),
        &admin_a,
        Some(json!({"agent_ids": [agents[1], agents[2], agents[3]]})),
    )
    .await;
    a.ok(
        Method::PUT,
        &format!("/api/v1/inboxes/{rr}/routing"),
        &admin_a,
        Some(json!({"strategy": "round_robin"})),
    )
    .await;
    let _ws1 = a.online(&tokens[1]).await;
    let _ws2 = b.online(&tokens[2]).await;
    let _ws3 = a.online(&tokens[3]).await;
    for node in [&a, &b] {
        let admin = if std::ptr::eq(node, &a) {
            &admin_a
        } else {
            &admin_b
        };
        for agent in &agents[1..4] {
            eventually("both nodes to see agents 1-3 online", || async {
                (node.presence_of(admin, agent).await == "online").then_some(())
            })
            .await;
        }
    }
    let arrivals = (0..30).map(|i| {
        let (a, b, rr) = (&a, &b, &rr);
        async move {
            let node = if i % 2 == 0 { a } else { b };
            let v = node.visitor(rr).await;
            node.says(&v, &format!("rr {i}")).await;
        }
    });
    join_all(arrivals).await;
    let per_agent = "SELECT assignee_id, COUNT(*) FROM conversations WHERE inbox_id = $1 \
                     AND assignee_id IS NOT NULL GROUP BY assignee_id ORDER BY assignee_id";
    let split: Vec<i64> = eventually("all 30 to be assigned", || async {
        let mut db = cluster.db().await;
        let rows = sqlx::query(per_agent)
            .bind(&rr)
            .fetch_all(&mut db)
            .await
            .unwrap();
        let counts: Vec<i64> = rows.iter().map(|r| r.try_get(1).unwrap()).collect();
        (counts.iter().sum::<i64>() == 30).then_some(counts)
    })
    .await;
    assert_eq!(split, vec![10, 10, 10], "an even split across nodes");

    // ---- signing out on A ends the session's socket on B.
    let mut ws4 = b.online(&tokens[4]).await;
    let (s, _) = a
        .call(Method::POST, "/api/v1/auth/logout", Some(&tokens[4]), None)
        .await;
    assert!(s.is_success());
    ws4.next_of("session.ended").await;

    // ---- 200 concurrent claims, split over both nodes: exactly one winner per conversation.
    let mut convs = Vec::new();
    for i in 0..40 {
        let node = if i % 2 == 0 { &a } else { &b };
        let v = node.visitor(&inbox).await;
        let m = node.says(&v, &format!("khách {i}")).await;
        convs.push(m["message"]["conversation_id"].as_str().unwrap().to_owned());
    }
    tokens[4] = b.login("a4@shop.vn").await;
    let claims = convs.iter().enumerate().flat_map(|(ci, conv)| {
        let (a, b, tokens) = (&a, &b, &tokens);
        (0..5).map(move |ai| async move {
            let node = if (ci + ai) % 2 == 0 { a } else { b };
            let (s, _) = node
                .call(
                    Method::POST,
                    &format!("/api/v1/conversations/{conv}/claim"),
                    Some(&tokens[ai]),
                    None,
                )
                .await;
            (ci, s)
        })
    });
    let results = join_all(claims).await;
    assert_eq!(results.len(), 200);
    let mut winners = vec![0; convs.len()];
    for (ci, s) in &results {
        match *s {
            StatusCode::OK => winners[*ci] += 1,
            StatusCode::CONFLICT => {}
            other => panic!("claim answered {other}"),
        }
    }
    assert!(winners.iter().all(|w| *w == 1), "{winners:?}");
    let mut db_conn = cluster.db().await;
    for conv in &convs {
        assert_eq!(
            count(
                &mut db_conn,
                "SELECT COUNT(*) FROM action_log WHERE conversation_id = $1 AND kind = 'claimed'",
                conv
            )
            .await,
            1
        );
    }

    // ---- the reply SLA: 40 timers, one minute; both nodes' runners race; each fires once.
    cluster.advance_minutes(2);
    let sla_fired =
        "SELECT COUNT(*) FROM action_log WHERE kind = 'returned_to_pool' AND detail LIKE $1";
    eventually("every reply-SLA timer to fire", || async {
        let mut db = cluster.db().await;
        let timers: i64 = sqlx::query("SELECT COUNT(*) FROM timers")
            .fetch_one(&mut db)
            .await
            .unwrap()
            .try_get(0)
            .unwrap();
        let fired = count(&mut db, sla_fired, "%reply_sla%").await;
        (timers == 0 && fired == 40).then_some(())
    })
    .await;
    for conv in &convs {
        assert_eq!(
            count(
                &mut db_conn,
                "SELECT COUNT(*) FROM action_log WHERE conversation_id = $1 AND kind = 'returned_to_pool'",
                conv
            )
            .await,
            1,
            "fired exactly once"
        );
    }

    // ---- node A holds pending timers (claims made through A), then dies mid-stream.
    for (i, conv) in convs.iter().enumerate().take(10) {
        let (s, v) = a
            .call(
                Method::POST,
                &format!("/api/v1/conversations/{conv}/claim"),
                Some(&tokens[i % 5]),
                None,
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{v}");
    }
    let pending: i64 = sqlx::query("SELECT COUNT(*) FROM timers WHERE kind = 'reply_sla'")
        .fetch_one(&mut db_conn)
        .await
        .unwrap()
        .try_get(0)
        .unwrap();
    assert_eq!(pending, 10);

    // Node A's runner leases them and dies before firing them. To make that happen on purpose,
    // not by luck: B is paused (SIGSTOP) so A is the only runner when they fall due, and the test
    // holds the ten conversations' rows, so A's firing waits on them after leasing.
    let mut locker = cluster.db().await;
    sqlx::query("BEGIN").execute(&mut locker).await.unwrap();
    let ten: Vec<String> = convs[..10].to_vec();
    sqlx::query("SELECT 1 FROM conversations WHERE id = ANY($1) FOR UPDATE")
        .bind(&ten)
        .execute(&mut locker)
        .await
        .unwrap();
    signal(&b, "STOP").await;
    cluster.advance_minutes(2);
    let leased_by: String = eventually("node A to lease the ten timers", || async {
        let mut db = cluster.db().await;
        let rows = sqlx::query(
            "SELECT locked_by FROM timers WHERE kind = 'reply_sla' AND locked_by IS NOT NULL",
        )
        .fetch_all(&mut db)
        .await
        .unwrap();
        let by: HashSet<String> = rows.iter().map(|r| r.try_get(0).unwrap()).collect();
        (rows.len() == 10 && by.len() == 1).then(|| by.into_iter().next().unwrap())
    })
    .await;
    signal(&b, "CONT").await;

    // A stream of customer messages to both nodes; A is killed (SIGKILL) in the middle of it.
    let mut streamers = Vec::new();
    for i in 0..8 {
        let node = if i % 2 == 0 { &a } else { &b };
        streamers.push((node.base.clone(), node.visitor(&inbox).await));
    }
    let (kill_tx, kill_rx) = tokio::sync::watch::channel(false);
    let tasks: Vec<_> = streamers
        .into_iter()
        .enumerate()
        .map(|(i, (base, visitor))| {
            let b_base = b.base.clone();
            let kill_rx = kill_rx.clone();
            tokio::spawn(async move {
                let http = switchboard_server::outbox::http_client(30_000).unwrap();
                let post = |target: String, text: String, id: String| {
                    let http = http.clone();
                    let visitor = visitor.clone();
                    async move {
                        http.post(format!("{target}/widget/v1/messages"))
                            .bearer_auth(&visitor)
                            .json(&json!({"text": text, "client_message_id": id}))
                            .timeout(Duration::from_secs(10))
                            .send()
                            .await
                            .is_ok_and(|r| r.status() == StatusCode::CREATED)
                    }
                };
                let mut acked = Vec::new();
                let (mut on_a, mut retried) = (0, 0);
                for n in 0..60 {
                    let text = format!("stream {i}-{n}");
                    let id = format!("c{i}-{n}");
                    // After the kill, A's visitors go to B (as a load balancer would send them).
                    let target = if *kill_rx.borrow() {
                        b_base.clone()
                    } else {
                        base.clone()
                    };
                    let mut ok = post(target.clone(), text.clone(), id.clone()).await;
                    if ok && target != b_base {
                        on_a += 1;
                    }
                    if !ok && target != b_base {
                        retried += 1;
                        // A did not answer (it is being killed): the widget retries the same
                        // message (same client_message_id) on the surviving node.
                        let mut k = kill_rx.clone();
                        let _ = k.wait_for(|killed| *killed).await;
                        ok = post(b_base.clone(), text.clone(), id).await;
                    }
                    if ok {
                        acked.push(text);
                    }
                }
                (acked, on_a, retried)
            })
        })
        .collect();
    // Kill A once the stream is well under way (some messages stored), not at a fixed time.
    eventually("the stream to be under way", || async {
        let mut db = cluster.db().await;
        (count(
            &mut db,
            "SELECT COUNT(*) FROM messages WHERE body LIKE $1",
            "stream %",
        )
        .await
            >= 40)
            .then_some(())
    })
    .await;
    a.child.start_kill().unwrap(); // SIGKILL
    a.child.wait().await.unwrap();
    kill_tx.send(true).unwrap();
    // A died mid-fire: its transaction is gone with its connection; the leases stay.
    sqlx::query("ROLLBACK").execute(&mut locker).await.unwrap();
    let (mut acked, mut on_a, mut retried) = (Vec::new(), 0, 0);
    for t in tasks {
        let (a, n, r) = t.await.unwrap();
        acked.extend(a);
        on_a += n;
        retried += r;
    }
    eprintln!(
        "stream: {} acknowledged, {on_a} of them by node A before it was killed, {retried} retried on B",
        acked.len()
    );
    assert!(on_a > 0, "node A took part in the stream before it died");
    let stored: HashSet<String> =
        sqlx::query("SELECT body FROM messages WHERE body LIKE 'stream %'")
            .fetch_all(&mut db_conn)
            .await
            .unwrap()
            .iter()
            .map(|r| r.try_get::<String, _>(0).unwrap())
            .collect();
    let lost: Vec<&String> = acked.iter().filter(|t| !stored.contains(*t)).collect();
    assert!(lost.is_empty(), "acknowledged but not stored: {lost:?}");
    assert!(
        acked.len() >= 40,
        "the stream ran: {} acknowledged",
        acked.len()
    );
    let dupes: i64 = sqlx::query(
        "SELECT COUNT(*) - COUNT(DISTINCT body) FROM messages WHERE body LIKE 'stream %'",
    )
    .fetch_one(&mut db_conn)
    .await
    .unwrap()
    .try_get(0)
    .unwrap();
    assert_eq!(dupes, 0, "a retried message is stored once");

    // The agents whose sockets were on A are offline for B once A is silent; agent 2 (on B) is not.
    for agent in [&agents[1], &agents[3]] {
        eventually("node B to forget the agents of the dead node", || async {
            (b.presence_of(&admin_b, agent).await == "offline").then_some(())
        })
        .await;
    }
    assert_eq!(b.presence_of(&admin_b, &agents[2]).await, "online");

    // B respects A's leases while they last, then fires the timers A left behind, once each.
    let still_leased = count(
        &mut db_conn,
        "SELECT COUNT(*) FROM timers WHERE kind = 'reply_sla' AND locked_by = $1",
        &leased_by,
    )
    .await;
    assert_eq!(
        still_leased, 10,
        "B does not touch timers leased by A before the lease ends"
    );
    cluster.advance_minutes(2);
    eventually("node B to fire A's timers", || async {
        let mut db = cluster.db().await;
        let left: i64 = sqlx::query("SELECT COUNT(*) FROM timers WHERE kind = 'reply_sla'")
            .fetch_one(&mut db)
            .await
            .unwrap()
            .try_get(0)
            .unwrap();
        (left == 0).then_some(())
    })
    .await;
    for conv in convs.iter().take(10) {
        assert_eq!(
            count(
                &mut db_conn,
                "SELECT COUNT(*) FROM action_log WHERE conversation_id = $1 AND kind = 'returned_to_pool'",
                conv
            )
            .await,
            2,
            "the second miss fired once, on B"
        );
    }
    // B still serves, and its socket still receives what B commits.
    let v = b.visitor(&inbox).await;
    b.says(&v, "sau khi A chết").await;
    loop {
        let ev = ws_b.next_of("message.created").await;
        if ev["message"]["text"] == "sau khi A chết" {
            break;
        }
    }
    drop(b);
}

/// A NATS server of the test's own, so the test can take it away and bring it back.
struct PrivateNats {
    port: u16,
    child: Option<Child>,
}

impl PrivateNats {
    fn binary() -> String {
        std::env::var("SWITCHBOARD_TEST_NATS_SERVER").unwrap_or_else(|_| {
            if Path::new("/usr/sbin/nats-server").exists() {
                "/usr/sbin/nats-server".into()
            } else {
                "nats-server".into()
            }
        })
    }

    async fn start() -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut n = Self { port, child: None };
        n.restart().await;
        n
    }

    fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    async fn restart(&mut self) {
        let child = Command::new(Self::binary())
            .args(["-a", "127.0.0.1", "-p", &self.port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("nats-server (set SWITCHBOARD_TEST_NATS_SERVER to its path)");
        self.child = Some(child);
        let addr = format!("127.0.0.1:{}", self.port);
        eventually("nats-server to listen", || async {
            tokio::net::TcpStream::connect(&addr).await.ok().map(|_| ())
        })
        .await;
    }

    async fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            c.start_kill().unwrap();
            c.wait().await.unwrap();
        }
    }
}

/// NATS goes away: both nodes keep serving, and a socket on B still receives what A commits (read
/// from the store); when NATS is back, what travels only over NATS (membership changes, presence)
/// works again.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_node_that_loses_nats_keeps_serving_and_catches_up() {
    let Some((db, _)) = settings() else {
        eprintln!(
            "NATS-loss test not run: set SWITCHBOARD_TEST_DATABASE_URL and SWITCHBOARD_TEST_NATS_URL"
        );
        return;
    };
    let mut nats = PrivateNats::start().await;
    let cluster = Cluster::new(&db, &nats.url()).await;
    seed_admin(&cluster).await;
    let a = cluster.start("a").await;
    let b = cluster.start("b").await;
    let admin_a = a.login("admin@shop.vn").await;
    let admin_b = b.login("admin@shop.vn").await;
    let agent = a
        .ok(
            Method::POST,
            "/api/v1/agents",
            &admin_a,
            Some(json!({"email": "lan@shop.vn", "name": "Lan", "role": "agent", "password": PASSWORD})),
        )
        .await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let make_inbox = |name: &'static str| {
        let (a, admin_a, agent) = (&a, &admin_a, &agent);
        async move {
            let id = a
                .ok(
                    Method::POST,
                    "/api/v1/inboxes",
                    admin_a,
                    Some(json!({"name": name, "channel": "livechat"})),
                )
                .await["id"]
                .as_str()
                .unwrap()
                .to_owned();
            a.ok(
                Method::PUT,
                &format!("/api/v1/inboxes/{id}/members"),
                admin_a,
                Some(json!({"agent_ids": [agent]})),
            )
            .await;
            id
        }
    };
    let inbox = make_inbox("Web").await;
    let lan = b.login("lan@shop.vn").await;
    let sees = |inbox: String| {
        let (b, lan) = (&b, &lan);
        async move {
            b.call(
                Method::GET,
                &format!("/api/v1/conversations?inbox_id={inbox}"),
                Some(lan),
                None,
            )
            .await
            .0 == StatusCode::OK
        }
    };
    eventually("node B to see the membership", || {
        let f = sees(inbox.clone());
        async move { f.await.then_some(()) }
    })
    .await;
    let mut ws = b.online(&lan).await;
    eventually("node A to see Lan online", || async {
        (a.presence_of(&admin_a, &agent).await == "online").then_some(())
    })
    .await;

    nats.kill().await;
    // Both nodes keep serving; B's socket gets A's message from the store.
    let visitor = a.visitor(&inbox).await;
    a.says(&visitor, "NATS đâu rồi?").await;
    loop {
        let ev = ws.next_of("message.created").await;
        if ev["message"]["text"] == "NATS đâu rồi?" {
            break;
        }
    }
    let (s, _) = b
        .call(Method::GET, "/api/v1/agents", Some(&admin_b), None)
        .await;
    assert_eq!(s, StatusCode::OK);

    // A membership change while NATS is away is not lost: a node reloads what it may have missed
    // when it reconnects.
    let second = make_inbox("Zalo-like").await;
    nats.restart().await;
    eventually(
        "node B to learn the change made while NATS was away",
        || {
            let f = sees(second.clone());
            async move { f.await.then_some(()) }
        },
    )
    .await;
    a.says(&visitor, "đã có lại").await;
    loop {
        let ev = ws.next_of("message.created").await;
        if ev["message"]["text"] == "đã có lại" {
            break;
        }
    }
}

/// Scheduled flows attached on one node are fired by the two nodes' runners together: each runs
/// exactly once (leased rows, finished with compare-and-set).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn scheduled_flows_fire_once_across_two_nodes() {
    let Some((db, nats)) = settings() else {
        eprintln!(
            "two-node scheduled flows not run: set SWITCHBOARD_TEST_DATABASE_URL and SWITCHBOARD_TEST_NATS_URL"
        );
        return;
    };
    let cluster = Cluster::new(&db, &nats).await;
    seed_admin(&cluster).await;
    let a = cluster.start("a").await;
    let b = cluster.start("b").await;
    let admin_a = a.login("admin@shop.vn").await;
    let admin_b = b.login("admin@shop.vn").await;
    let inbox = a
        .ok(
            Method::POST,
            "/api/v1/inboxes",
            &admin_a,
            Some(json!({"name": "Web", "channel": "livechat"})),
        )
        .await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let flow = a
        .ok(
            Method::POST,
            "/api/v1/flows",
            &admin_a,
            Some(json!({"flow": {"name": "Nhắc", "version": 1, "triggers": [{"type": "scheduled_due"}], "start": "s",
                "steps": [{"id": "s", "do": {"type": "send_message", "variants": [{"text": "Nhắc lịch hẹn ạ"}]}}]}})),
        )
        .await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut convs = Vec::new();
    for i in 0..6 {
        let visitor = a.visitor(&inbox).await;
        let sent = a.says(&visitor, &format!("khách {i}")).await;
        let conv = sent["message"]["conversation_id"]
            .as_str()
            .unwrap()
            .to_owned();
        let c = a
            .ok(
                Method::GET,
                &format!("/api/v1/conversations/{conv}"),
                &admin_a,
                None,
            )
            .await;
        let contact = c["contact_id"].as_str().unwrap().to_owned();
        // Two per customer, attached through either node.
        for node in [(&a, &admin_a), (&b, &admin_b)] {
            node.0
                .ok(
                    Method::POST,
                    &format!("/api/v1/contacts/{contact}/scheduled-flows"),
                    node.1,
                    Some(json!({"flow_id": flow, "delay_secs": 60})),
                )
                .await;
        }
        convs.push((conv, contact));
    }
    use sqlx::Connection;
    // Time passes (a customer's second one waits a minute while the first runs); a row is marked
    // sent as its flow starts and a run's message is written after its step is saved: wait for the
    // rows, the runs and twelve messages — then there must be exactly twelve.
    let quiet = "SELECT COUNT(*) FROM scheduled_flows WHERE status <> $1 \
                 UNION ALL SELECT COUNT(*) FROM flow_runs WHERE ended_at IS NULL \
                 UNION ALL SELECT 12 - COUNT(*) FROM messages WHERE sender_kind = 'bot'";
    eventually("every scheduled flow to run and end", || {
        cluster.advance_minutes(2);
        let url = cluster.db_url.clone();
        async move {
            let mut db = sqlx::PgConnection::connect(&url).await.unwrap();
            let left: Vec<i64> = sqlx::query_scalar(quiet)
                .bind("sent")
                .fetch_all(&mut db)
                .await
                .unwrap();
            left.iter().all(|n| *n <= 0).then_some(())
        }
    })
    .await;
    let mut db = sqlx::PgConnection::connect(&cluster.db_url).await.unwrap();
    // Every run's message was written once: two per customer.
    let sent = count(
        &mut db,
        "SELECT COUNT(*) FROM messages WHERE body = $1 AND sender_kind = 'bot'",
        "Nhắc lịch hẹn ạ",
    )
    .await;
    assert_eq!(sent, 12);
    for (conv, _) in &convs {
        let runs = a
            .ok(
                Method::GET,
                &format!("/api/v1/conversations/{conv}/automation"),
                &admin_a,
                None,
            )
            .await;
        assert!(runs["running"].is_null(), "{runs}");
    }
}
