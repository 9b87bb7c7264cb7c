//! The Meta sandbox: a local stand-in for the Graph API (Send API, comment operations, user
//! profiles) and for Meta's webhook deliveries, built to `shared/channels.md` §1 and §2. It posts
//! correctly signed webhooks (bodies with non-ASCII as `\uXXXX`, like Meta), enforces the
//! messaging window with Meta's error codes, retires the dead tags on 2026-04-27, allows one
//! private reply per comment within 7 days, keeps the quick replies a message offers (at most 13,
//! titles up to 20 characters) and lets the customer tap one, and can be told to fail (429, 5xx,
//! timeouts, any error code) so the outbox and the policy are tested against it.
//!
//! Used in-process by the tests and `switchboard demo`, and standalone as `switchboard sandbox`
//! (with a small control API under `/_sandbox` to play customers).

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use switchboard_channels::meta::{Object, signature_header};
use switchboard_core::Timestamp;
use switchboard_core::policy::{DAY_MS, DEAD_TAGS_FROM};
use switchboard_core::time::Clock;
use tokio::task::JoinHandle;

/// The API version path the sandbox serves (as in `https://graph.facebook.com/v26.0`).
pub const VERSION: &str = "v26.0";
/// The app id the sandbox's echoes carry (our own app's sends).
pub const SANDBOX_APP_ID: &str = "1000000000000001";

#[derive(Debug, Clone)]
pub struct PageSpec {
    /// Page id (Messenger) or Instagram account id.
    pub id: String,
    pub object: Object,
    pub token: String,
    pub app_secret: String,
    /// Where webhooks go: `<switchboard>/webhooks/meta`.
    pub webhook_url: String,
    /// Post `message_echoes` for every accepted send.
    pub echoes: bool,
    /// Return `recipient_id` in private-reply answers (Meta does; turn off to test linking by echo).
    pub private_reply_recipient_id: bool,
    /// Report every accepted message as delivered right away (the demo's customers' phones).
    pub auto_delivery: bool,
}

#[derive(Debug, Clone, Default)]
pub struct UserSpec {
    /// PSID (Messenger) or IGSID (Instagram).
    pub id: String,
    pub first_name: String,
    pub last_name: String,
    pub profile_pic: Option<String>,
    /// The id this person has in feed comments (`from.id`); on Instagram it is the IGSID.
    pub commenter_id: Option<String>,
}

/// A failure to answer the next Send API / comment call of a page with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// HTTP 429 with `Retry-After`.
    TooManyRequests { retry_after_secs: u64 },
    /// HTTP 500 with Meta's transient error (code 2).
    ServerError,
    /// Never answers (the caller's timeout fires); nothing is sent.
    Timeout,
    /// Sends (and echoes) the message, then never answers.
    TimeoutAfterAccept,
    /// HTTP 400 with this Graph error.
    GraphError {
        code: i64,
        subcode: Option<i64>,
        message: String,
    },
}

impl Fault {
    pub fn token_expired() -> Self {
        Self::GraphError {
            code: 190,
            subcode: Some(463),
            message: "Error validating access token: Session has expired".into(),
        }
    }
    pub fn page_restricted() -> Self {
        Self::GraphError {
            code: 10,
            subcode: Some(1_893_063),
            message: "This Page is temporarily restricted from sending messages".into(),
        }
    }
}

/// A message the sandbox accepted.
#[derive(Debug, Clone, PartialEq)]
pub struct Sent {
    pub page_id: String,
    pub recipient_id: Option<String>,
    pub comment_id: Option<String>,
    pub messaging_type: Option<String>,
    pub tag: Option<String>,
    pub text: String,
    /// The message's quick replies, in order (empty: none).
    pub quick_replies: Vec<QuickReply>,
    /// A file instead of a text: its `attachment.type` and what the sandbox fetched from its URL.
    pub attachment: Option<(String, crate::media::Received)>,
    pub mid: String,
    pub at: Timestamp,
}

/// A `text` quick reply as the Send API received it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuickReply {
    pub title: String,
    pub payload: String,
}

/// At most 13 quick replies, titles up to 20 characters (channels.md §1.5, §2).
const MAX_QUICK_REPLIES: usize = 13;
const MAX_QUICK_REPLY_TITLE: usize = 20;
/// Meta's quick-reply reference: payloads up to 1000 characters (not in channels.md).
const MAX_QUICK_REPLY_PAYLOAD: usize = 1000;

/// A comment operation the sandbox accepted: (method, comment id, what).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Op {
    pub method: String,
    pub object_id: String,
    pub what: String,
}

struct Comment {
    page_id: String,
    from_id: String,
    at: Timestamp,
    private_replied: bool,
}

#[derive(Default)]
struct World {
    pages: HashMap<String, PageSpec>,
    /// (page, user id) → user
    users: HashMap<(String, String), (UserSpec, Option<Timestamp>)>,
    comments: HashMap<String, Comment>,
    faults: HashMap<String, VecDeque<Fault>>,
    /// Per page: at most this many comment operations per window (ms); more get 429.
    rate_limits: HashMap<String, (u32, i64)>,
    /// Per page: (window start, calls in it).
    rate_used: HashMap<String, (i64, u32)>,
    sent: Vec<Sent>,
    ops: Vec<Op>,
    seq: u64,
    /// Profile pictures downloaded from `/_sandbox/pictures/…`.
    picture_downloads: u32,
}

struct Shared {
    world: Mutex<World>,
    clock: Arc<dyn Clock>,
    http: reqwest::Client,
    pending: Mutex<Vec<JoinHandle<()>>>,
}

impl Shared {
    fn world(&self) -> MutexGuard<'_, World> {
        self.world
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

pub struct Sandbox {
    shared: Arc<Shared>,
    addr: SocketAddr,
}

/// Serialises JSON the way Meta does: non-ASCII as `\uXXXX` escapes (so signatures must be
/// checked over the raw bytes; re-serialising gives different bytes).
pub fn meta_json(v: &serde_json::Value) -> String {
    let plain = v.to_string();
    let mut out = String::with_capacity(plain.len());
    for c in plain.chars() {
        if c.is_ascii() {
            out.push(c);
        } else {
            let mut buf = [0u16; 2];
            for unit in c.encode_utf16(&mut buf) {
                out.push_str(&format!("\\u{unit:04x}"));
            }
        }
    }
    out
}

fn graph_error(status: StatusCode, code: i64, subcode: Option<i64>, message: &str) -> Response {
    let mut e = serde_json::json!({"error": {"message": message, "type": "OAuthException", "code": code, "fbtrace_id": "SandboxTrace"}});
    if let Some(s) = subcode {
        e["error"]["error_subcode"] = serde_json::json!(s);
    }
    (status, axum::Json(e)).into_response()
}

impl Sandbox {
    /// Starts the sandbox's HTTP server on `bind` (port 0 for any).
    pub async fn start(clock: Arc<dyn Clock>, bind: SocketAddr) -> anyhow::Result<Self> {
        let shared = Arc::new(Shared {
            world: Mutex::new(World::default()),
            clock,
            http: crate::http::client(30_000)?,
            pending: Mutex::new(Vec::new()),
        });
        let listener = tokio::net::TcpListener::bind(bind).await?;
        let addr = listener.local_addr()?;
        let app = router(shared.clone());
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(Self { shared, addr })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// What an inbox's `api_base_url` should be to talk to this sandbox.
    pub fn base_url(&self) -> String {
        format!("http://{}/{VERSION}", self.addr)
    }

    /// A profile picture URL this sandbox serves (a PNG), for a [`UserSpec`]'s `profile_pic`
    /// (the CDN's URL, without a version path).
    pub fn picture_url(&self, name: &str) -> String {
        format!("http://{}/_sandbox/pictures/{name}.png", self.addr)
    }

    /// How many times a profile picture was downloaded.
    pub fn picture_downloads(&self) -> u32 {
        self.shared.world().picture_downloads
    }

    /// Changes a user's profile (what the next profile call answers).
    pub fn rename_user(&self, page_id: &str, user_id: &str, first_name: &str, last_name: &str) {
        if let Some((u, _)) = self
            .shared
            .world()
            .users
            .get_mut(&(page_id.to_owned(), user_id.to_owned()))
        {
            u.first_name = first_name.to_owned();
            u.last_name = last_name.to_owned();
        }
    }

    pub fn add_page(&self, page: PageSpec) {
        self.shared.world().pages.insert(page.id.clone(), page);
    }

    pub fn add_user(&self, page_id: &str, user: UserSpec) {
        self.shared
            .world()
            .users
            .insert((page_id.to_owned(), user.id.clone()), (user, None));
    }

    pub fn push_fault(&self, page_id: &str, fault: Fault) {
        self.shared
            .world()
            .faults
            .entry(page_id.to_owned())
            .or_default()
            .push_back(fault);
    }

    /// Answers a page's comment operations (reply, like, hide, delete) with 429 and
    /// `Retry-After` beyond `calls` per `window_ms` of the sandbox's clock, as Meta's rate limits
    /// do (code 4 / 613 are retried by the caller after the hint).
    pub fn set_comment_rate_limit(&self, page_id: &str, calls: u32, window_ms: i64) {
        self.shared
            .world()
            .rate_limits
            .insert(page_id.to_owned(), (calls.max(1), window_ms.max(1)));
    }

    /// Replays a burst of comments on one post as Meta delivers them: several changes per
    /// webhook (`per_webhook`), every `duplicate_every`-th webhook delivered twice (boosted posts
    /// can send duplicates). Returns the comment ids, in order, and the webhooks' statuses.
    pub async fn comment_burst(
        &self,
        page_id: &str,
        post_id: &str,
        comments: &[(String, String)],
        per_webhook: usize,
        duplicate_every: usize,
    ) -> anyhow::Result<(Vec<String>, Vec<u16>)> {
        let mut ids = Vec::with_capacity(comments.len());
        let mut statuses = Vec::new();
        for (n, chunk) in comments.chunks(per_webhook.max(1)).enumerate() {
            let now = self.shared.clock.now();
            let secs = now.millis() / 1000;
            let mut changes = Vec::with_capacity(chunk.len());
            let mut object = Object::Page;
            for (user_id, text) in chunk {
                object = self.touch(page_id, user_id, now)?;
                let comment_id = self.next_id(&format!("{post_id}_c"));
                let (from_id, name) = self.commenter(page_id, user_id);
                self.shared.world().comments.insert(
                    comment_id.clone(),
                    Comment {
                        page_id: page_id.to_owned(),
                        from_id: from_id.clone(),
                        at: now,
                        private_replied: false,
                    },
                );
                changes.push(comment_change(
                    object,
                    &comment_id,
                    post_id,
                    &from_id,
                    &name,
                    text,
                    secs,
                ));
                ids.push(comment_id);
            }
            let body = serde_json::json!({"object": object_name(object), "entry": [{"id": page_id, "time": secs, "changes": changes}]});
            let body = meta_json(&body);
            statuses.push(deliver(&self.shared, page_id, body.clone()).await?);
            if duplicate_every > 0 && (n + 1) % duplicate_every == 0 {
                statuses.push(deliver(&self.shared, page_id, body).await?);
            }
        }
        Ok((ids, statuses))
    }

    /// A commenter's feed id and display name.
    fn commenter(&self, page_id: &str, user_id: &str) -> (String, String) {
        let w = self.shared.world();
        let u = w.users.get(&(page_id.to_owned(), user_id.to_owned()));
        (
            u.and_then(|(u, _)| u.commenter_id.clone())
                .unwrap_or_else(|| user_id.to_owned()),
            u.map(|(u, _)| {
                format!("{} {}", u.first_name, u.last_name)
                    .trim()
                    .to_owned()
            })
            .unwrap_or_default(),
        )
    }

    pub fn sent(&self) -> Vec<Sent> {
        self.shared.world().sent.clone()
    }

    pub fn ops(&self) -> Vec<Op> {
        self.shared.world().ops.clone()
    }

    /// Waits for every webhook the sandbox is still delivering (echoes).
    pub async fn flush(&self) {
        loop {
            let handles: Vec<JoinHandle<()>> = std::mem::take(
                &mut *self
                    .shared
                    .pending
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner),
            );
            if handles.is_empty() {
                return;
            }
            for h in handles {
                let _ = h.await;
            }
        }
    }

    fn next_id(&self, prefix: &str) -> String {
        let mut w = self.shared.world();
        w.seq += 1;
        format!("{prefix}{}", w.seq)
    }

    /// Signs and posts a webhook body for `page_id`; returns Switchboard's status code.
    pub async fn post_webhook(&self, page_id: &str, body: String) -> anyhow::Result<u16> {
        deliver(&self.shared, page_id, body).await
    }

    /// A customer writes to the page (a qualifying action). Returns (status, mid).
    pub async fn customer_message(
        &self,
        page_id: &str,
        user_id: &str,
        text: &str,
    ) -> anyhow::Result<(u16, String)> {
        let now = self.shared.clock.now();
        let object = self.touch(page_id, user_id, now)?;
        let mid = self.next_id(if object == Object::Instagram {
            "aWdf_in_"
        } else {
            "m_in_"
        });
        let body = serde_json::json!({"object": object_name(object), "entry": [{"id": page_id, "time": now, "messaging": [{
            "sender": {"id": user_id}, "recipient": {"id": page_id}, "timestamp": now,
            "message": {"mid": mid, "text": text}}]}]});
        Ok((deliver(&self.shared, page_id, meta_json(&body)).await?, mid))
    }

    /// The customer taps the quick reply titled `title` of the latest message the page sent
    /// them (a qualifying action): Meta posts the title as the message's text and the payload in
    /// `message.quick_reply` (§1.4). Fails when that message offered no such quick reply — a
    /// customer can only tap what is on their screen. Returns (status, mid).
    pub async fn customer_taps_quick_reply(
        &self,
        page_id: &str,
        user_id: &str,
        title: &str,
    ) -> anyhow::Result<(u16, String)> {
        let payload = {
            let w = self.shared.world();
            let last = w
                .sent
                .iter()
                .rev()
                .find(|s| s.page_id == page_id && s.recipient_id.as_deref() == Some(user_id))
                .ok_or_else(|| anyhow::anyhow!("the page sent {user_id} nothing"))?;
            last.quick_replies
                .iter()
                .find(|q| q.title == title)
                .map(|q| q.payload.clone())
                .ok_or_else(|| {
                    anyhow::anyhow!("the latest message offered no quick reply {title:?}")
                })?
        };
        let now = self.shared.clock.now();
        let object = self.touch(page_id, user_id, now)?;
        let mid = self.next_id(if object == Object::Instagram {
            "aWdf_in_"
        } else {
            "m_in_"
        });
        let body = serde_json::json!({"object": object_name(object), "entry": [{"id": page_id, "time": now, "messaging": [{
            "sender": {"id": user_id}, "recipient": {"id": page_id}, "timestamp": now,
            "message": {"mid": mid, "text": title, "quick_reply": {"payload": payload}}}]}]});
        Ok((deliver(&self.shared, page_id, meta_json(&body)).await?, mid))
    }

    /// A customer comments on a post (Facebook feed or Instagram media). Returns (status, comment id).
    pub async fn customer_comment(
        &self,
        page_id: &str,
        user_id: &str,
        post_id: &str,
        text: &str,
    ) -> anyhow::Result<(u16, String)> {
        let now = self.shared.clock.now();
        let object = self.touch(page_id, user_id, now)?;
        let (from_id, name) = self.commenter(page_id, user_id);
        let comment_id = self.next_id(&format!("{post_id}_c"));
        self.shared.world().comments.insert(
            comment_id.clone(),
            Comment {
                page_id: page_id.to_owned(),
                from_id: from_id.clone(),
                at: now,
                private_replied: false,
            },
        );
        let secs = now.millis() / 1000;
        let change = comment_change(object, &comment_id, post_id, &from_id, &name, text, secs);
        let body = serde_json::json!({"object": object_name(object), "entry": [{"id": page_id, "time": secs, "changes": [change]}]});
        Ok((
            deliver(&self.shared, page_id, meta_json(&body)).await?,
            comment_id,
        ))
    }

    /// The customer's phone reports delivery / reading (Messenger watermarks).
    pub async fn customer_receipt(
        &self,
        page_id: &str,
        user_id: &str,
        read: bool,
        mids: &[String],
    ) -> anyhow::Result<u16> {
        let now = self.shared.clock.now();
        let item = if read {
            serde_json::json!({"watermark": now})
        } else {
            serde_json::json!({"mids": mids, "watermark": now})
        };
        let key = if read { "read" } else { "delivery" };
        let body = serde_json::json!({"object": "page", "entry": [{"id": page_id, "time": now, "messaging": [{
            "sender": {"id": user_id}, "recipient": {"id": page_id}, "timestamp": now, key: item}]}]});
        deliver(&self.shared, page_id, meta_json(&body)).await
    }

    /// Records a qualifying action of `user_id` at `now`; returns the page's object kind.
    fn touch(&self, page_id: &str, user_id: &str, now: Timestamp) -> anyhow::Result<Object> {
        let mut w = self.shared.world();
        let object = w
            .pages
            .get(page_id)
            .map(|p| p.object)
            .ok_or_else(|| anyhow::anyhow!("unknown sandbox page {page_id}"))?;
        let entry = w
            .users
            .entry((page_id.to_owned(), user_id.to_owned()))
            .or_insert_with(|| {
                (
                    UserSpec {
                        id: user_id.to_owned(),
                        ..UserSpec::default()
                    },
                    None,
                )
            });
        entry.1 = Some(now);
        Ok(object)
    }
}

/// One comment as the `feed` (Facebook) or `comments` (Instagram) webhook field carries it.
fn comment_change(
    object: Object,
    comment_id: &str,
    post_id: &str,
    from_id: &str,
    name: &str,
    text: &str,
    secs: i64,
) -> serde_json::Value {
    match object {
        Object::Page => serde_json::json!({"field": "feed", "value": {
            "item": "comment", "verb": "add", "comment_id": comment_id, "post_id": post_id, "parent_id": post_id,
            "from": {"id": from_id, "name": name}, "message": text, "created_time": secs,
            "post": {"id": post_id, "status_type": "mobile_status_update", "is_published": true}}}),
        Object::Instagram => serde_json::json!({"field": "comments", "value": {
            "id": comment_id, "text": text, "from": {"id": from_id, "username": name.to_lowercase().replace(' ', "")},
            "media": {"id": post_id, "media_product_type": "FEED"}}}),
    }
}

/// A comment operation over the page's rate limit: 429 with `Retry-After` (seconds to the
/// window's end, at least 1).
fn over_rate_limit(shared: &Shared, page_id: &str) -> Option<Response> {
    let now = shared.clock.now().millis();
    let mut w = shared.world();
    let (calls, window) = *w.rate_limits.get(page_id)?;
    let start = now - now.rem_euclid(window);
    let used = w.rate_used.entry(page_id.to_owned()).or_insert((start, 0));
    if used.0 != start {
        *used = (start, 0);
    }
    if used.1 >= calls {
        let secs = ((start + window - now) + 999) / 1000;
        let mut r = graph_error(
            StatusCode::TOO_MANY_REQUESTS,
            613,
            None,
            "(#613) Calls to this api have exceeded the rate limit.",
        );
        if let Ok(v) = secs.max(1).to_string().parse() {
            r.headers_mut().insert("retry-after", v);
        }
        return Some(r);
    }
    used.1 += 1;
    None
}

fn object_name(o: Object) -> &'static str {
    match o {
        Object::Page => "page",
        Object::Instagram => "instagram",
    }
}

async fn deliver(shared: &Shared, page_id: &str, body: String) -> anyhow::Result<u16> {
    let (url, secret) = {
        let w = shared.world();
        let p = w
            .pages
            .get(page_id)
            .ok_or_else(|| anyhow::anyhow!("unknown sandbox page {page_id}"))?;
        (p.webhook_url.clone(), p.app_secret.clone())
    };
    let sig = signature_header(&secret, body.as_bytes());
    let resp = shared
        .http
        .post(url)
        .header("content-type", "application/json")
        .header("x-hub-signature-256", sig)
        .body(body)
        .send()
        .await?;
    Ok(resp.status().as_u16())
}

fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/{version}/{id}/messages", post(send_api))
        .route("/{version}/{id}/comments", post(comment_reply))
        .route("/{version}/{id}/replies", post(comment_reply))
        .route("/{version}/{id}/likes", post(like).delete(like))
        .route("/{version}/{id}/subscribed_apps", post(subscribed))
        .route(
            "/{version}/{id}",
            get(profile).post(moderate).delete(moderate),
        )
        .route("/_sandbox/messages", post(control_message))
        .route("/_sandbox/pictures/{name}", get(sandbox_picture))
        .route("/_sandbox/comments", post(control_comment))
        .route("/_sandbox/faults", post(control_fault))
        .route("/_sandbox/sent", get(control_sent))
        .with_state(shared)
}

/// The page a call is made for, by its token (Bearer header or `access_token`).
fn page_by_token(w: &World, headers: &HeaderMap, q: &HashMap<String, String>) -> Option<PageSpec> {
    let token = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::to_owned)
        .or_else(|| q.get("access_token").cloned())?;
    w.pages.values().find(|p| p.token == token).cloned()
}

fn invalid_token() -> Response {
    graph_error(
        StatusCode::BAD_REQUEST,
        190,
        None,
        "Invalid OAuth access token - Cannot parse access token",
    )
}

/// Applies a queued fault; `Some(response)` when the call fails. `accept_then_hang` is returned
/// for `TimeoutAfterAccept`, which the caller handles after accepting.
async fn take_fault(shared: &Shared, page_id: &str) -> Result<bool, Response> {
    let fault = shared
        .world()
        .faults
        .get_mut(page_id)
        .and_then(VecDeque::pop_front);
    match fault {
        None => Ok(false),
        Some(Fault::TimeoutAfterAccept) => Ok(true),
        Some(Fault::Timeout) => {
            std::future::pending::<()>().await;
            Ok(false)
        }
        Some(Fault::TooManyRequests { retry_after_secs }) => {
            let mut r = graph_error(
                StatusCode::TOO_MANY_REQUESTS,
                4,
                None,
                "(#4) Application request limit reached",
            );
            if let Ok(v) = retry_after_secs.to_string().parse() {
                r.headers_mut().insert("retry-after", v);
            }
            Err(r)
        }
        Some(Fault::ServerError) => Err(graph_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            2,
            None,
            "An unexpected error has occurred. Please retry your request later.",
        )),
        Some(Fault::GraphError {
            code,
            subcode,
            message,
        }) => Err(graph_error(
            StatusCode::BAD_REQUEST,
            code,
            subcode,
            &message,
        )),
    }
}

fn body_json(headers: &HeaderMap, body: &Bytes) -> serde_json::Value {
    let is_form = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|c| c.starts_with("application/x-www-form-urlencoded"));
    if is_form {
        let map: HashMap<String, String> = String::from_utf8_lossy(body)
            .split('&')
            .filter_map(|kv| kv.split_once('='))
            .map(|(k, v)| (k.to_owned(), v.replace('+', " ")))
            .collect();
        serde_json::json!(map)
    } else {
        serde_json::from_slice(body).unwrap_or(serde_json::Value::Null)
    }
}

/// `POST /{version}/{page-id | me}/messages` (channels.md §1.5, §1.6, §1.7, §1.9, §2).
/// A Send API attachment (§1.5): `{type: image|audio|video|file, payload: {url, is_reusable}}`,
/// fetched from its URL as Meta does: at most 25 MB; on Instagram (§2) images are png/jpeg up
/// to 8 MB, audio and video up to 25 MB, and files are not sent.
async fn fetch_attachment(
    http: &reqwest::Client,
    ig: bool,
    a: &serde_json::Value,
) -> Result<(String, crate::media::Received), Response> {
    use crate::media::MB;
    let bad = |m: &str| graph_error(StatusCode::BAD_REQUEST, 100, None, m);
    let kind = a["type"].as_str().unwrap_or("");
    if !["image", "audio", "video", "file"].contains(&kind) || (ig && kind == "file") {
        return Err(bad("(#100) Invalid attachment type"));
    }
    let Some(url) = a["payload"]["url"].as_str().filter(|u| !u.is_empty()) else {
        return Err(bad(
            "(#100) param message[attachment][payload][url] must be non-empty",
        ));
    };
    let max = if ig && kind == "image" {
        8 * MB
    } else {
        25 * MB
    };
    let fetch_failed = || {
        graph_error(
            StatusCode::BAD_REQUEST,
            100,
            Some(2_018_008),
            "(#100) Failed to fetch the file from the url",
        )
    };
    let file = crate::media::fetch(http, url, max)
        .await
        .map_err(|_| fetch_failed())?;
    let typed = match kind {
        "image" if ig => ["image/png", "image/jpeg"].contains(&file.content_type.as_str()),
        "image" | "audio" | "video" => file.content_type.starts_with(kind),
        _ => true,
    };
    if !typed {
        return Err(bad("(#100) The attachment's type does not match its file"));
    }
    Ok((kind.to_owned(), file))
}

async fn send_api(
    State(shared): State<Arc<Shared>>,
    Path((_v, id)): Path<(String, String)>,
    Query(q): Query<HashMap<String, String>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Some(page) = page_by_token(&shared.world(), &headers, &q) else {
        return invalid_token();
    };
    if id != "me" && id != page.id {
        return graph_error(
            StatusCode::BAD_REQUEST,
            100,
            None,
            "(#100) The page id does not match the access token",
        );
    }
    let hang_after = match take_fault(&shared, &page.id).await {
        Ok(h) => h,
        Err(r) => return r,
    };
    let b = body_json(&headers, &body);
    let now = shared.clock.now();
    let ig = page.object == Object::Instagram;
    let text = b["message"]["text"].as_str().unwrap_or("").to_owned();
    let mt = b["messaging_type"].as_str().map(str::to_owned);
    let tag = b["tag"].as_str().map(str::to_owned);
    let window_error = || {
        if ig {
            graph_error(
                StatusCode::BAD_REQUEST,
                10,
                Some(2_534_022),
                "This message is sent outside of allowed window.",
            )
        } else {
            graph_error(
                StatusCode::BAD_REQUEST,
                10,
                Some(2_018_278),
                "(#10) This message is sent outside of allowed window.",
            )
        }
    };
    let attachment = if b["message"]["attachment"].is_object() {
        match fetch_attachment(&shared.http, ig, &b["message"]["attachment"]).await {
            Ok(a) => Some(a),
            Err(r) => return r,
        }
    } else {
        None
    };
    if text.is_empty() && attachment.is_none() {
        return graph_error(
            StatusCode::BAD_REQUEST,
            100,
            None,
            "(#100) The parameter message is required",
        );
    }
    if (!ig && text.chars().count() >= 2000) || (ig && text.len() > 1000) {
        return graph_error(
            StatusCode::BAD_REQUEST,
            100,
            None,
            "(#100) Length of param message[text] must be less than or equal to 2000",
        );
    }
    let quick_replies = match read_quick_replies(&b["message"]["quick_replies"]) {
        Ok(q) => q,
        Err((code, subcode, message)) => {
            return graph_error(StatusCode::BAD_REQUEST, code, subcode, &message);
        }
    };
    let recipient_id;
    let mut comment_id = None;
    {
        let mut w = shared.world();
        if let Some(c) = b["recipient"]["comment_id"].as_str() {
            // Private reply: one per comment, within 7 days (channels.md §1.9; the Messenger subcode is [U]).
            let Some(comment) = w.comments.get_mut(c).filter(|x| x.page_id == page.id) else {
                return graph_error(
                    StatusCode::BAD_REQUEST,
                    100,
                    Some(2_534_025),
                    "(#100) Comment is invalid for private reply",
                );
            };
            if comment.private_replied || now.millis() - comment.at.millis() > 7 * DAY_MS {
                return graph_error(
                    StatusCode::BAD_REQUEST,
                    100,
                    Some(2_534_025),
                    "(#100) Comment is invalid for private reply",
                );
            }
            comment.private_replied = true;
            let from = comment.from_id.clone();
            comment_id = Some(c.to_owned());
            recipient_id = w
                .users
                .iter()
                .find(|((p, _), (u, _))| {
                    *p == page.id
                        && (u.commenter_id.as_deref() == Some(from.as_str()) || u.id == from)
                })
                .map(|(_, (u, _))| u.id.clone());
        } else if let Some(r) = b["recipient"]["id"].as_str() {
            let last = w
                .users
                .get(&(page.id.clone(), r.to_owned()))
                .and_then(|(_, t)| *t);
            let Some(last) = last else {
                return if ig {
                    graph_error(
                        StatusCode::BAD_REQUEST,
                        100,
                        Some(2_534_014),
                        "No matching Instagram user",
                    )
                } else {
                    graph_error(
                        StatusCode::BAD_REQUEST,
                        100,
                        Some(2_018_001),
                        "(#100) No matching user found",
                    )
                };
            };
            let elapsed = now.millis() - last.clamp_to(now).millis();
            let dead = [
                "CONFIRMED_EVENT_UPDATE",
                "ACCOUNT_UPDATE",
                "POST_PURCHASE_UPDATE",
            ];
            match (mt.as_deref(), tag.as_deref()) {
                (None, _) if !ig => {
                    return graph_error(
                        StatusCode::BAD_REQUEST,
                        100,
                        None,
                        "(#100) param messaging_type must be non-empty",
                    );
                }
                (None | Some("RESPONSE" | "UPDATE"), None) => {
                    if elapsed > DAY_MS {
                        return window_error();
                    }
                }
                (Some("MESSAGE_TAG"), Some("HUMAN_AGENT")) => {
                    if elapsed > 7 * DAY_MS {
                        return window_error();
                    }
                }
                (Some("MESSAGE_TAG"), Some(t))
                    if !ig && dead.contains(&t) && now < DEAD_TAGS_FROM => {}
                _ => {
                    return graph_error(
                        StatusCode::BAD_REQUEST,
                        100,
                        None,
                        "(#100) Invalid parameter",
                    );
                }
            }
            recipient_id = Some(r.to_owned());
        } else {
            return graph_error(
                StatusCode::BAD_REQUEST,
                100,
                None,
                "(#100) param recipient must be non-empty",
            );
        }
    }
    let mid = {
        let mut w = shared.world();
        w.seq += 1;
        let mid = if ig {
            format!("aWdf_out_{}", w.seq)
        } else {
            format!("m_out_{}", w.seq)
        };
        w.sent.push(Sent {
            page_id: page.id.clone(),
            recipient_id: recipient_id.clone(),
            comment_id: comment_id.clone(),
            messaging_type: mt,
            tag,
            text: text.clone(),
            quick_replies,
            attachment: attachment.clone(),
            mid: mid.clone(),
            at: now,
        });
        mid
    };
    if page.echoes
        && let Some(to) = recipient_id.clone()
    {
        let mut msg = serde_json::json!({"mid": mid, "is_echo": true, "app_id": SANDBOX_APP_ID, "text": text});
        if let Some((kind, file)) = &attachment {
            msg = serde_json::json!({"mid": mid, "is_echo": true, "app_id": SANDBOX_APP_ID,
                "attachments": [{"type": kind, "payload": {"url": file.url}}]});
        }
        if let Some(m) = b["message"]["metadata"].as_str() {
            msg["metadata"] = serde_json::json!(m);
        }
        let echo = serde_json::json!({"object": object_name(page.object), "entry": [{"id": page.id, "time": now, "messaging": [{
            "sender": {"id": page.id}, "recipient": {"id": to}, "timestamp": now, "message": msg}]}]});
        let s2 = shared.clone();
        let pid = page.id.clone();
        let handle = tokio::spawn(async move {
            if let Err(e) = deliver(&s2, &pid, meta_json(&echo)).await {
                tracing::warn!(error = %e, "sandbox: echo delivery failed");
            }
        });
        shared
            .pending
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(handle);
    }
    if page.auto_delivery
        && let Some(to) = recipient_id.clone()
    {
        let receipt = serde_json::json!({"object": object_name(page.object), "entry": [{"id": page.id, "time": now, "messaging": [{
            "sender": {"id": to}, "recipient": {"id": page.id}, "timestamp": now,
            "delivery": {"mids": [mid], "watermark": now}}]}]});
        let s2 = shared.clone();
        let pid = page.id.clone();
        let handle = tokio::spawn(async move {
            // After the echo, as a phone would.
            tokio::task::yield_now().await;
            if let Err(e) = deliver(&s2, &pid, meta_json(&receipt)).await {
                tracing::warn!(error = %e, "sandbox: delivery receipt failed");
            }
        });
        shared
            .pending
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(handle);
    }
    if hang_after {
        std::future::pending::<()>().await;
    }
    let mut out = serde_json::json!({"message_id": mid});
    if let Some(r) =
        recipient_id.filter(|_| comment_id.is_none() || page.private_reply_recipient_id)
    {
        out["recipient_id"] = serde_json::json!(r);
    }
    axum::Json(out).into_response()
}

/// A Graph error to answer with: (code, subcode, message).
type GraphRefusal = (i64, Option<i64>, String);

/// `message.quick_replies` checked as the Send API does: an array of 1 to 13 `text` quick
/// replies, each with a title of at most 20 characters and a payload. (Meta documents the
/// limits; the error texts for breaking them are the sandbox's own.)
fn read_quick_replies(v: &serde_json::Value) -> Result<Vec<QuickReply>, GraphRefusal> {
    let bad = |message: String, subcode: Option<i64>| (100, subcode, message);
    let items = match v {
        serde_json::Value::Null => return Ok(Vec::new()),
        serde_json::Value::Array(items) => items,
        _ => {
            return Err(bad(
                "(#100) param message[quick_replies] must be an array.".into(),
                None,
            ));
        }
    };
    if items.is_empty() {
        return Err((
            194,
            None,
            "(#194) param message[quick_replies] has too few elements.".into(),
        ));
    }
    if items.len() > MAX_QUICK_REPLIES {
        return Err(bad(
            "(#100) param message[quick_replies] has too many elements: at most 13.".into(),
            None,
        ));
    }
    let param = |n: usize, what: &str| format!("(#100) param message[quick_replies][{n}]{what}");
    items
        .iter()
        .enumerate()
        .map(|(n, q)| {
            match q["content_type"].as_str() {
                Some("text") => {}
                Some(_) => {
                    return Err(bad(param(n, "[content_type]: only text is emulated"), None));
                }
                None => return Err(bad(param(n, "[content_type] is required"), None)),
            }
            let field = |k: &str| q[k].as_str().filter(|t| !t.is_empty()).map(str::to_owned);
            let Some(title) = field("title") else {
                return Err(bad(
                    "(#100) Title is required for this quick reply content type".into(),
                    Some(2_018_098),
                ));
            };
            let Some(payload) = field("payload") else {
                return Err(bad(
                    "(#100) Payload is required for this quick reply content type".into(),
                    Some(2_018_099),
                ));
            };
            if title.chars().count() > MAX_QUICK_REPLY_TITLE {
                return Err(bad(
                    param(n, "[title] must be at most 20 characters."),
                    None,
                ));
            }
            if payload.chars().count() > MAX_QUICK_REPLY_PAYLOAD {
                return Err(bad(
                    param(n, "[payload] must be at most 1000 characters."),
                    None,
                ));
            }
            Ok(QuickReply { title, payload })
        })
        .collect()
}

async fn comment_reply(
    State(shared): State<Arc<Shared>>,
    Path((_v, id)): Path<(String, String)>,
    Query(q): Query<HashMap<String, String>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Some(page) = page_by_token(&shared.world(), &headers, &q) else {
        return invalid_token();
    };
    if let Err(r) = take_fault(&shared, &page.id).await {
        return r;
    }
    if let Some(r) = over_rate_limit(&shared, &page.id) {
        return r;
    }
    let b = body_json(&headers, &body);
    let Some(text) = b["message"]
        .as_str()
        .filter(|t| !t.is_empty())
        .map(str::to_owned)
    else {
        return graph_error(
            StatusCode::BAD_REQUEST,
            100,
            None,
            "(#100) The parameter message is required",
        );
    };
    let mut w = shared.world();
    if w.comments.get(&id).is_none_or(|c| c.page_id != page.id) {
        return graph_error(
            StatusCode::BAD_REQUEST,
            100,
            Some(33),
            "(#100) Object does not exist",
        );
    }
    w.seq += 1;
    let reply_id = format!("{id}_r{}", w.seq);
    w.ops.push(Op {
        method: "POST".into(),
        object_id: id,
        what: format!("reply:{text}"),
    });
    axum::Json(serde_json::json!({"id": reply_id})).into_response()
}

async fn like(
    State(shared): State<Arc<Shared>>,
    method: axum::http::Method,
    Path((_v, id)): Path<(String, String)>,
    Query(q): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    let Some(page) = page_by_token(&shared.world(), &headers, &q) else {
        return invalid_token();
    };
    if let Err(r) = take_fault(&shared, &page.id).await {
        return r;
    }
    if let Some(r) = over_rate_limit(&shared, &page.id) {
        return r;
    }
    // Instagram's comment API has no like (channels.md §2: reply, hide, delete).
    if page.object == Object::Instagram {
        return graph_error(
            StatusCode::BAD_REQUEST,
            100,
            None,
            "(#100) Unsupported post request: liking an Instagram comment is not supported",
        );
    }
    let mut w = shared.world();
    if !w.comments.contains_key(&id) {
        return graph_error(
            StatusCode::BAD_REQUEST,
            100,
            Some(33),
            "(#100) Object does not exist",
        );
    }
    let what = if method == axum::http::Method::DELETE {
        "unlike"
    } else {
        "like"
    };
    w.ops.push(Op {
        method: method.to_string(),
        object_id: id,
        what: what.into(),
    });
    axum::Json(serde_json::json!({"success": true})).into_response()
}

/// `POST /{comment-id}` with `is_hidden` (Facebook) or `hide` (Instagram); `DELETE /{comment-id}`.
async fn moderate(
    State(shared): State<Arc<Shared>>,
    method: axum::http::Method,
    Path((_v, id)): Path<(String, String)>,
    Query(q): Query<HashMap<String, String>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Some(page) = page_by_token(&shared.world(), &headers, &q) else {
        return invalid_token();
    };
    if let Err(r) = take_fault(&shared, &page.id).await {
        return r;
    }
    if let Some(r) = over_rate_limit(&shared, &page.id) {
        return r;
    }
    let b = body_json(&headers, &body);
    let mut w = shared.world();
    if w.comments.get(&id).is_none_or(|c| c.page_id != page.id) {
        return graph_error(
            StatusCode::BAD_REQUEST,
            100,
            Some(33),
            "(#100) Object does not exist",
        );
    }
    let key = if page.object == Object::Instagram {
        "hide"
    } else {
        "is_hidden"
    };
    let what = if method == axum::http::Method::DELETE {
        w.comments.remove(&id);
        "delete".to_owned()
    } else {
        match b[key]
            .as_bool()
            .or_else(|| b[key].as_str().map(|s| s == "true"))
        {
            Some(true) => "hide".to_owned(),
            Some(false) => "unhide".to_owned(),
            None => {
                return graph_error(
                    StatusCode::BAD_REQUEST,
                    100,
                    None,
                    "(#100) Invalid parameter",
                );
            }
        }
    };
    w.ops.push(Op {
        method: method.to_string(),
        object_id: id,
        what,
    });
    axum::Json(serde_json::json!({"success": true})).into_response()
}

async fn subscribed(
    State(shared): State<Arc<Shared>>,
    Query(q): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    match page_by_token(&shared.world(), &headers, &q) {
        Some(_) => axum::Json(serde_json::json!({"success": true})).into_response(),
        None => invalid_token(),
    }
}

/// The user profile: Messenger `first_name,last_name,profile_pic`; Instagram `name,username,profile_pic`.
async fn profile(
    State(shared): State<Arc<Shared>>,
    Path((_v, id)): Path<(String, String)>,
    Query(q): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    let w = shared.world();
    let Some(page) = page_by_token(&w, &headers, &q) else {
        return invalid_token();
    };
    if id == page.id {
        // The Page (or Instagram account) itself: what the setup's connection check reads.
        let v = match page.object {
            Object::Page => {
                serde_json::json!({"id": page.id, "name": format!("Sandbox Page {}", page.id)})
            }
            Object::Instagram => {
                serde_json::json!({"id": page.id, "username": format!("sandbox_{}", page.id)})
            }
        };
        return axum::Json(v).into_response();
    }
    let Some((u, _)) = w.users.get(&(page.id.clone(), id.clone())) else {
        return graph_error(
            StatusCode::BAD_REQUEST,
            100,
            Some(2_018_001),
            "(#100) No matching user found",
        );
    };
    let v = match page.object {
        Object::Page => {
            serde_json::json!({"first_name": u.first_name, "last_name": u.last_name, "profile_pic": u.profile_pic, "id": u.id})
        }
        Object::Instagram => serde_json::json!({
            "name": format!("{} {}", u.first_name, u.last_name).trim(),
            "username": u.first_name.to_lowercase(),
            "profile_pic": u.profile_pic, "id": u.id}),
    };
    axum::Json(v).into_response()
}

/// A profile picture on the "CDN" (the URL a profile answer names).
async fn sandbox_picture(State(shared): State<Arc<Shared>>) -> Response {
    shared.world().picture_downloads += 1;
    crate::picture()
}

// ------------------------------------------------------------------ control API (standalone)

#[derive(Deserialize)]
struct ControlMessage {
    page_id: String,
    user_id: String,
    text: String,
}

fn sandbox_of(shared: Arc<Shared>) -> Sandbox {
    Sandbox {
        shared,
        addr: SocketAddr::from(([127, 0, 0, 1], 0)),
    }
}

async fn control_message(
    State(shared): State<Arc<Shared>>,
    axum::Json(b): axum::Json<ControlMessage>,
) -> Response {
    match sandbox_of(shared)
        .customer_message(&b.page_id, &b.user_id, &b.text)
        .await
    {
        Ok((status, mid)) => {
            axum::Json(serde_json::json!({"webhook_status": status, "mid": mid})).into_response()
        }
        Err(e) => (StatusCode::BAD_REQUEST, e.to_string()).into_response(),
    }
}

#[derive(Deserialize)]
struct ControlComment {
    page_id: String,
    user_id: String,
    post_id: String,
    text: String,
}

async fn control_comment(
    State(shared): State<Arc<Shared>>,
    axum::Json(b): axum::Json<ControlComment>,
) -> Response {
    match sandbox_of(shared)
        .customer_comment(&b.page_id, &b.user_id, &b.post_id, &b.text)
        .await
    {
        Ok((status, id)) => {
            axum::Json(serde_json::json!({"webhook_status": status, "comment_id": id}))
                .into_response()
        }
        Err(e) => (StatusCode::BAD_REQUEST, e.to_string()).into_response(),
    }
}

#[derive(Deserialize)]
struct ControlFault {
    page_id: String,
    /// `429`, `500`, `timeout`, `token_expired`, `page_restricted`.
    fault: String,
}

async fn control_fault(
    State(shared): State<Arc<Shared>>,
    axum::Json(b): axum::Json<ControlFault>,
) -> Response {
    let fault = match b.fault.as_str() {
        "429" => Fault::TooManyRequests {
            retry_after_secs: 5,
        },
        "500" => Fault::ServerError,
        "timeout" => Fault::Timeout,
        "token_expired" => Fault::token_expired(),
        "page_restricted" => Fault::page_restricted(),
        _ => {
            return (
                StatusCode::BAD_REQUEST,
                "fault: 429, 500, timeout, token_expired or page_restricted",
            )
                .into_response();
        }
    };
    sandbox_of(shared).push_fault(&b.page_id, fault);
    axum::Json(serde_json::json!({"ok": true})).into_response()
}

async fn control_sent(State(shared): State<Arc<Shared>>) -> Response {
    let sent: Vec<_> = shared
        .world()
        .sent
        .iter()
        .map(|s| serde_json::json!({"page_id": s.page_id, "recipient_id": s.recipient_id, "comment_id": s.comment_id,
            "messaging_type": s.messaging_type, "tag": s.tag, "text": s.text, "mid": s.mid, "at": s.at,
            "quick_replies": s.quick_replies.iter().map(|q| serde_json::json!({"title": q.title, "payload": q.payload})).collect::<Vec<_>>()}))
        .collect();
    axum::Json(serde_json::json!({"items": sent})).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn meta_json_escapes_non_ascii_like_meta() {
        let v = serde_json::json!({"t": "äöå 😀"});
        assert_eq!(meta_json(&v), r#"{"t":"\u00e4\u00f6\u00e5 \ud83d\ude00"}"#);
        let back: serde_json::Value = serde_json::from_str(&meta_json(&v)).unwrap_or_default();
        assert_eq!(back, v);
    }
}
