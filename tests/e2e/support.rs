//! Boots a real server and talks to it like a client would.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use futures_util::{SinkExt, StreamExt};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use switchboard_core::Timestamp;
use switchboard_server::clock::{Clock, ManualClock};
use switchboard_server::config::Config;
use switchboard_server::{Application, state::AppState};
use tokio::net::TcpStream;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream, tungstenite::Message as WsMessage};

pub const T0: Timestamp = Timestamp(1_790_000_000_000); // 2026-09-21
pub const PASSWORD: &str = "correct horse battery";
/// The secrets key of the PostgreSQL test runs (32 bytes, base64).
pub const PG_SECRETS_KEY: &str = "c3dpdGNoYm9hcmQtdGVzdHMtc2VjcmV0cy1rZXktMzI=";
/// The automatic messages of [`TestApp::with_automatic_messages`].
pub const OUT_OF_HOURS: &str = "Shop đang nghỉ, sẽ trả lời anh/chị sớm nhất!";
pub const CLOSING: &str = "Cảm ơn anh/chị đã liên hệ!";
/// The Meta app secret of the sandbox pages [`create_page`] makes.
pub const META_APP_SECRET: &str = "app_secret_test";

pub struct TestApp {
    pub base: String,
    pub clock: ManualClock,
    pub state: AppState,
    pub http: reqwest::Client,
    pub admin: String,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
    _dir: Option<tempfile::TempDir>,
}

/// The PostgreSQL server to test against, when `SWITCHBOARD_TEST_DATABASE_URL` names one (CI sets
/// it); otherwise every test runs on SQLite in its own temporary directory.
pub fn test_database_url() -> Option<String> {
    std::env::var("SWITCHBOARD_TEST_DATABASE_URL")
        .ok()
        .filter(|u| !u.is_empty())
}

/// On PostgreSQL each test directory gets a schema of its own (created on first use, found again
/// by a restart in the same directory), so tests stay independent and run in parallel. The name
/// lives in the directory; CI drops the whole test database before each run.
pub async fn pg_schema_url(base: &str, dir: &Path) -> String {
    use sqlx::Connection;
    let file = dir.join("pg-schema");
    let schema = match std::fs::read_to_string(&file) {
        Ok(s) => s.trim().to_owned(),
        Err(_) => {
            let s = format!("t_{}", uuid::Uuid::now_v7().simple());
            std::fs::write(&file, &s).unwrap();
            s
        }
    };
    let mut conn = sqlx::PgConnection::connect(base).await.unwrap();
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "CREATE SCHEMA IF NOT EXISTS {schema}"
    )))
    .execute(&mut conn)
    .await
    .unwrap();
    let sep = if base.contains('?') { '&' } else { '?' };
    format!("{base}{sep}options%5Bsearch_path%5D={schema}")
}

pub async fn config_for(dir: &Path) -> Config {
    let mut c = Config {
        bind: "127.0.0.1:0".parse().unwrap(),
        data_dir: dir.to_path_buf(),
        ..Config::default()
    };
    if let Some(base) = test_database_url() {
        c.database_url = Some(pg_schema_url(&base, dir).await);
        // Several nodes share a PostgreSQL database, so its secrets key is configured (on SQLite
        // the server generates one into the data directory).
        c.secrets_key = Some(PG_SECRETS_KEY.into());
    }
    c.log = "warn".into();
    // Tests drive the timer runner by hand (`TestApp::tick`) on the manual clock, and jump the clock
    // by hours: agents do not turn idle unless a test asks for it (`start_configured`).
    c.routing.timer_poll_ms = 0;
    c.routing.idle_away_minutes = 0;
    // Tests drive the outbox themselves (`Outbox::run_due`) with the manual clock.
    c.outbox.worker = false;
    // ... and the download of customers' files (`MediaFetcher::run_due`).
    c.inbound_media.worker = false;
    c
}

impl TestApp {
    pub async fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let cfg = config_for(dir.path()).await;
        let mut app = Self::start_with(cfg, ManualClock::new(T0)).await;
        app.admin = app.seed_admin().await;
        app._dir = Some(dir);
        app
    }

    /// Like [`TestApp::start`], with the configuration adjusted first.
    pub async fn start_configured(adjust: impl FnOnce(&mut Config)) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mut cfg = config_for(dir.path()).await;
        adjust(&mut cfg);
        let mut app = Self::start_with(cfg, ManualClock::new(T0)).await;
        app.admin = app.seed_admin().await;
        app._dir = Some(dir);
        app
    }

    /// Starts a server on `cfg` (reusing whatever data is there).
    pub async fn start_with(cfg: Config, clock: ManualClock) -> Self {
        let app = Application::build(cfg, Arc::new(clock.clone()))
            .await
            .unwrap();
        let base = format!("http://127.0.0.1:{}", app.port());
        let state = app.state();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            app.run_until_stopped(async {
                let _ = rx.await;
            })
            .await
            .unwrap();
        });
        Self {
            base,
            clock,
            state,
            http: reqwest::Client::new(),
            admin: String::new(),
            stop: Some(tx),
            task: Some(task),
            _dir: None,
        }
    }

    pub async fn stop(mut self) -> Option<tempfile::TempDir> {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.task.take() {
            let _ = tokio::time::timeout(Duration::from_secs(10), t).await;
        }
        self._dir.take()
    }

    /// Creates the admin (`admin@shop.vn`) and signs them in; `self.admin` is their token.
    pub async fn with_admin(mut self) -> Self {
        self.admin = self.seed_admin().await;
        self
    }

    /// Starts a server on `dir` (kept by the caller, so a second start sees the same data) with an
    /// admin: created when `fresh`, otherwise signed in again.
    pub async fn start_in(dir: &Path, clock: ManualClock, fresh: bool) -> Self {
        let mut app = Self::start_with(config_for(dir).await, clock).await;
        app.admin = if fresh {
            app.seed_admin().await
        } else {
            app.login("admin@shop.vn").await
        };
        app
    }

    /// One tick of the timer runner at the manual clock's time.
    pub async fn tick(&self) -> switchboard_server::timers::TickReport {
        self.state
            .routing
            .run_due_timers(self.clock.now())
            .await
            .unwrap()
    }

    /// One tick of the automation runner (flow wake-ups, scheduled flows) at the clock's time.
    pub async fn flows_tick(&self) -> switchboard_server::automation::AutomationTick {
        self.state
            .automation
            .run_due(self.clock.now())
            .await
            .unwrap()
    }

    pub fn advance_minutes(&self, m: i64) {
        self.clock.advance_millis(m * 60_000);
    }

    /// Replaces an inbox's routing rules as the admin; returns the stored rules.
    pub async fn set_routing(&self, inbox: &str, rules: Value) -> Value {
        self.ok(
            Method::PUT,
            &format!("/api/v1/inboxes/{inbox}/routing"),
            &self.admin,
            Some(rules),
        )
        .await
    }

    /// Both automatic messages on: the inbox is outside business hours all week (the out-of-hours
    /// reply [`OUT_OF_HOURS`]) and resolves after `silence_minutes` of customer silence (the
    /// closing message [`CLOSING`]).
    pub async fn with_automatic_messages(&self, inbox: &str, silence_minutes: u32) {
        self.set_routing(
            inbox,
            json!({"strategy": "self_claim",
                "business_hours": {"utc_offset_minutes": 420, "days": {}, "auto_reply": OUT_OF_HOURS},
                "auto_close": {"customer_silence_minutes": silence_minutes, "closing_message": CLOSING}}),
        )
        .await;
    }

    /// The agent answers (which starts the customer-silence clock), the customer stays silent for
    /// `minutes`, and the timer resolves the conversation.
    pub async fn reply_then_silence(&self, token: &str, conv: &str, minutes: i64) {
        let (s, v) = self
            .post(
                &format!("/api/v1/conversations/{conv}/messages"),
                token,
                json!({"text": "Dạ shop đây ạ"}),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
        self.advance_minutes(minutes);
        assert_eq!(self.tick().await.fired, 1);
        assert_eq!(self.conversation(conv).await["status"], "resolved");
    }

    /// The thread's automatic messages (sent by Switchboard): (text, delivery status, reason).
    pub async fn automatic_messages(
        &self,
        token: &str,
        conv: &str,
    ) -> Vec<(String, String, Option<String>)> {
        let v = self
            .ok(
                Method::GET,
                &format!("/api/v1/conversations/{conv}/messages?limit=200"),
                token,
                None,
            )
            .await;
        v["items"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|m| m["sender_kind"] == "system")
            .map(|m| {
                (
                    m["text"].as_str().unwrap().to_owned(),
                    m["delivery_status"].as_str().unwrap().to_owned(),
                    m["failure_reason"].as_str().map(str::to_owned),
                )
            })
            .collect()
    }

    /// Connects the agent's socket and waits for `hello`: from then on they are online (and any
    /// backlog their arrival drained is already assigned).
    pub async fn online(&self, token: &str) -> Ws {
        let mut ws = self.ws(&format!("/api/v1/ws?token={token}")).await;
        ws.next_of("hello").await;
        ws
    }

    /// A conversation as the admin sees it.
    pub async fn conversation(&self, id: &str) -> Value {
        self.ok(
            Method::GET,
            &format!("/api/v1/conversations/{id}"),
            &self.admin,
            None,
        )
        .await
    }

    /// The action log of a conversation.
    pub async fn history(&self, id: &str) -> Vec<Value> {
        self.ok(
            Method::GET,
            &format!("/api/v1/conversations/{id}/history"),
            &self.admin,
            None,
        )
        .await["items"]
            .as_array()
            .unwrap()
            .clone()
    }

    /// How many action-log entries of `kind` a conversation has.
    pub async fn count_actions(&self, id: &str, kind: &str) -> usize {
        self.history(id)
            .await
            .iter()
            .filter(|h| h["kind"] == kind)
            .count()
    }

    /// An agent writes in a conversation (`reply` or `note`).
    pub async fn write(&self, token: &str, conv: &str, kind: &str, text: &str) -> Value {
        self.ok(
            Method::POST,
            &format!("/api/v1/conversations/{conv}/messages"),
            token,
            Some(json!({"text": text, "kind": kind})),
        )
        .await
    }

    /// A visitor of `inbox` writes; returns (visitor token, conversation id).
    pub async fn new_customer(&self, inbox: &str, text: &str) -> (String, String) {
        let v = self.visitor(inbox).await;
        let conv = self.visitor_says(&v, text).await["message"]["conversation_id"]
            .as_str()
            .unwrap()
            .to_owned();
        (v, conv)
    }

    async fn seed_admin(&self) -> String {
        let st = &self.state;
        switchboard_server::app::agents::create_agent(
            st.store.as_ref(),
            st.workspace_id,
            T0,
            "admin@shop.vn",
            "Admin",
            "admin",
            None,
            PASSWORD.into(),
        )
        .await
        .unwrap();
        self.login("admin@shop.vn").await
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// A request with a bearer token (or none) and a JSON body (or none).
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut req = self.http.request(method, self.url(path));
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

    /// What the composer may do now on `conv` (`GET /conversations/{id}/policy`), as `token`.
    pub async fn policy(&self, token: &str, conv: &str) -> Value {
        self.ok(
            Method::GET,
            &format!("/api/v1/conversations/{conv}/policy"),
            token,
            None,
        )
        .await
    }

    pub async fn get(&self, path: &str, token: &str) -> (StatusCode, Value) {
        self.call(Method::GET, path, Some(token), None).await
    }

    pub async fn post(&self, path: &str, token: &str, body: Value) -> (StatusCode, Value) {
        self.call(Method::POST, path, Some(token), Some(body)).await
    }

    pub async fn ok(&self, method: Method, path: &str, token: &str, body: Option<Value>) -> Value {
        let (s, v) = self.call(method.clone(), path, Some(token), body).await;
        assert!(s.is_success(), "{method} {path} → {s}: {v}");
        v
    }

    pub async fn login(&self, email: &str) -> String {
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

    /// Creates an agent and returns (id, token).
    pub async fn agent(&self, email: &str, name: &str, role: &str) -> (String, String) {
        let v = self
            .ok(
                Method::POST,
                "/api/v1/agents",
                &self.admin,
                Some(json!({"email": email, "name": name, "role": role, "password": PASSWORD})),
            )
            .await;
        (
            v["id"].as_str().unwrap().to_owned(),
            self.login(email).await,
        )
    }

    /// Creates a live-chat inbox with these members; returns its id.
    pub async fn inbox(&self, name: &str, members: &[&str]) -> String {
        self.channel_inbox(name, "livechat", json!({}), members)
            .await
    }

    /// An inbox of `channel` with these settings and members; returns its id.
    pub async fn channel_inbox(
        &self,
        name: &str,
        channel: &str,
        settings: Value,
        members: &[&str],
    ) -> String {
        let v = self
            .ok(
                Method::POST,
                "/api/v1/inboxes",
                &self.admin,
                Some(json!({"name": name, "channel": channel, "settings": settings})),
            )
            .await;
        let id = v["id"].as_str().unwrap().to_owned();
        self.ok(
            Method::PUT,
            &format!("/api/v1/inboxes/{id}/members"),
            &self.admin,
            Some(json!({"agent_ids": members})),
        )
        .await;
        id
    }

    /// A new anonymous widget visitor of `inbox`; returns the visitor token.
    pub async fn visitor(&self, inbox: &str) -> String {
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

    /// A new visitor of `inbox` writes `text` and the agent holding `token` claims the
    /// conversation; returns the visitor token and the conversation id.
    pub async fn claimed_visitor_conversation(
        &self,
        inbox: &str,
        token: &str,
        text: &str,
    ) -> (String, String) {
        let v = self.visitor(inbox).await;
        let conv = self.visitor_says(&v, text).await["message"]["conversation_id"]
            .as_str()
            .unwrap()
            .to_owned();
        self.ok(
            Method::POST,
            &format!("/api/v1/conversations/{conv}/claim"),
            token,
            None,
        )
        .await;
        (v, conv)
    }

    /// The visitor writes; returns the response body.
    pub async fn visitor_says(&self, token: &str, text: &str) -> Value {
        let (s, v) = self
            .call(
                Method::POST,
                "/widget/v1/messages",
                Some(token),
                Some(json!({"text": text})),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
        v
    }

    pub async fn conversations(&self, token: &str, query: &str) -> Vec<Value> {
        let v = self
            .ok(
                Method::GET,
                &format!("/api/v1/conversations{query}"),
                token,
                None,
            )
            .await;
        v["items"].as_array().unwrap().clone()
    }

    pub async fn ws(&self, path_and_query: &str) -> Ws {
        let url = format!(
            "{}{}",
            self.base.replace("http://", "ws://"),
            path_and_query
        );
        let (stream, _) = tokio_tungstenite::connect_async(url).await.unwrap();
        Ws { stream }
    }

    /// Rows in a table, straight from the database file (to prove nothing was stored).
    pub async fn count_messages(&self) -> usize {
        let v = self.conversations(&self.admin, "?limit=200").await;
        let mut n = 0;
        for c in v {
            let id = c["id"].as_str().unwrap();
            let m = self
                .ok(
                    Method::GET,
                    &format!("/api/v1/conversations/{id}/messages?limit=200"),
                    &self.admin,
                    None,
                )
                .await;
            n += m["items"].as_array().unwrap().len();
        }
        n
    }
}

pub struct Ws {
    pub stream: WebSocketStream<MaybeTlsStream<TcpStream>>,
}

impl Ws {
    /// The next JSON frame (pings skipped), or panics after 10 s: a missing event is a failure.
    pub async fn next(&mut self) -> Value {
        loop {
            let frame = tokio::time::timeout(Duration::from_secs(10), self.stream.next())
                .await
                .expect("timed out waiting for an event");
            match frame.expect("socket closed").expect("socket error") {
                WsMessage::Text(t) => return serde_json::from_str(t.as_str()).unwrap(),
                WsMessage::Close(_) => panic!("socket closed"),
                _ => {}
            }
        }
    }

    /// The next frame of this type, skipping others (presence, typing, ...).
    pub async fn next_of(&mut self, kind: &str) -> Value {
        loop {
            let v = self.next().await;
            if v["type"] == kind {
                return v;
            }
        }
    }

    pub async fn send(&mut self, v: Value) {
        self.stream
            .send(WsMessage::Text(v.to_string().into()))
            .await
            .unwrap();
    }

    pub async fn close(mut self) {
        let _ = self.stream.close(None).await;
    }

    /// Asserts no frame of `kind` arrives before a marker event that the caller triggers after.
    pub async fn collect_until(&mut self, stop: impl Fn(&Value) -> bool) -> Vec<Value> {
        let mut seen = Vec::new();
        loop {
            let v = self.next().await;
            let done = stop(&v);
            seen.push(v);
            if done {
                return seen;
            }
        }
    }
}

/// A Facebook Page (or Instagram account) inbox against the Meta sandbox, with these members.
pub async fn create_page(
    app: &TestApp,
    sb: &switchboard_sandbox::meta::Sandbox,
    page: &str,
    channel: &str,
    members: &[&str],
) -> String {
    let key = if channel == "instagram" {
        "ig_account_id"
    } else {
        "page_id"
    };
    let v = app
        .ok(
            Method::POST,
            "/api/v1/inboxes",
            &app.admin,
            Some(
                json!({"name": format!("Page {page}"), "channel": channel, "settings": {
                    key: page, "page_access_token": format!("token-{page}"), "app_secret": META_APP_SECRET,
                    "verify_token": "tok", "api_base_url": sb.base_url(),
                }}),
            ),
        )
        .await;
    let id = v["id"].as_str().unwrap().to_owned();
    app.ok(
        Method::PUT,
        &format!("/api/v1/inboxes/{id}/members"),
        &app.admin,
        Some(json!({"agent_ids": members})),
    )
    .await;
    sb.add_page(switchboard_sandbox::meta::PageSpec {
        id: page.into(),
        object: if channel == "instagram" {
            switchboard_channels::meta::Object::Instagram
        } else {
            switchboard_channels::meta::Object::Page
        },
        token: format!("token-{page}"),
        app_secret: META_APP_SECRET.into(),
        webhook_url: app.url("/webhooks/meta"),
        echoes: true,
        private_reply_recipient_id: true,
        auto_delivery: false,
    });
    id
}

/// A fresh bucket on the S3-compatible server the test script starts (`SWITCHBOARD_TEST_S3_URL`),
/// or `None` when no such server is configured.
pub async fn test_s3_bucket() -> Option<switchboard_server::config::S3Config> {
    let endpoint = std::env::var("SWITCHBOARD_TEST_S3_URL")
        .ok()
        .filter(|s| !s.is_empty())?;
    let endpoint = endpoint.trim_end_matches('/').to_owned();
    let bucket = format!("sb-{}", uuid::Uuid::now_v7().simple());
    switchboard_server::provider_api::tls_provider();
    // The local server takes an unsigned bucket creation (a real S3 would want the operator to
    // make the bucket beforehand).
    let made = reqwest::Client::new()
        .put(format!("{endpoint}/{bucket}"))
        .send()
        .await
        .unwrap();
    assert!(made.status().is_success(), "creating {bucket}: {made:?}");
    Some(switchboard_server::config::S3Config {
        bucket,
        endpoint,
        access_key_id: "test".into(),
        secret_access_key: "test".into(),
        allow_http: true,
        ..Default::default()
    })
}

/// The bytes of an object in a test bucket, read from the bucket itself (not through the app).
pub async fn s3_object(s3: &switchboard_server::config::S3Config, key: &str) -> Option<Vec<u8>> {
    let bucket = switchboard_server::media_store::MediaStore::s3(s3).unwrap();
    match bucket.bytes(key, u64::MAX).await {
        Ok(b) => Some(b.to_vec()),
        Err(switchboard_server::media_store::MediaError::NotFound) => None,
        Err(e) => panic!("reading {key} from the bucket: {e}"),
    }
}
