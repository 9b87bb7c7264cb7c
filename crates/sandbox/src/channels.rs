//! A local stand-in for the WhatsApp Cloud API, the Zalo OA API, the Telegram Bot API and Shopee's
//! seller chat, built to `shared/channels.md` §3–§6, and for their webhook deliveries. Like the
//! Meta sandbox (`crate::meta`) it is an independent implementation of each provider's
//! behaviour — its own window and quota checks, error bodies and pricing labels — so the policy
//! engine and the clients are tested against something else:
//!
//! - WhatsApp: signed webhooks (`X-Hub-Signature-256`, `\uXXXX` escapes), the 24 h customer-service
//!   window (a free-form message outside it is accepted, then fails with a `131047` status — or a
//!   synchronous 400 when configured), templates with their status and parameter count checks
//!   (`132001`, `132015`, `132016`, `132000`), the template list with paging, `sent` / `delivered`
//!   / `read` / `failed` statuses with `pricing` labels, 429 / 5xx / token errors on demand.
//! - Zalo: `X-ZEvent-Signature` macs, `cs` messages with the 8-free-in-48-h quota labels and the
//!   7-day limit (`-230`), `-216` for a stale access token, a single-use rotating refresh token,
//!   OA echoes.
//! - Telegram: `setWebhook` (secret token rules, HTTPS — plain HTTP only to this machine), the
//!   secret-token header on every update, `sendMessage` (4096 characters, 403 before `/start` or
//!   when blocked, 429 with `retry_after` on demand; an inline keyboard of callback buttons kept,
//!   `callback_data` of 1-64 bytes), taps on those buttons as `callback_query` updates that must
//!   be answered, `getUpdates` → 409 while a webhook is set.
//! - Shopee: signed pushes (`Authorization`), `send_message` with the v2 signature and access token
//!   checked.
//!
//! Used in-process by the tests and `switchboard demo`; the `/_sandbox/...` control API plays
//! customers from outside.

use crate::meta::meta_json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use std::collections::{HashMap, HashSet, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use switchboard_channels::{shopee, whatsapp, zalo};
use switchboard_core::Timestamp;
use switchboard_core::time::Clock;
use tokio::task::JoinHandle;

/// The Graph API version path served for WhatsApp.
pub const VERSION: &str = "v26.0";
const DAY: i64 = 86_400_000;

// Pricing dates as the provider applies them (channels.md §3.5), written out independently of
// `core::billing`.
const CBP_SERVICE_FREE_FROM: i64 = 1_730_419_200_000; // 2024-11-01
const PMP_FROM: i64 = 1_751_328_000_000; // 2025-07-01
const SERVICE_CHARGED_FROM: i64 = 1_790_812_800_000; // 2026-10-01

/// A failure to answer the next call for one account (number, OA, bot token, shop) with.
#[derive(Debug, Clone, PartialEq)]
pub enum ChannelFault {
    /// This HTTP answer (and `Retry-After`, if given).
    Http {
        status: u16,
        body: serde_json::Value,
        retry_after: Option<u64>,
    },
    /// Never answers.
    Timeout,
}

impl ChannelFault {
    /// A WhatsApp / Graph error body.
    pub fn whatsapp(status: u16, code: i64, message: &str) -> Self {
        Self::Http {
            status,
            body: serde_json::json!({"error": {"message": format!("(#{code}) {message}"), "type": "OAuthException", "code": code,
                "error_data": {"messaging_product": "whatsapp", "details": message}, "fbtrace_id": "SandboxTrace"}}),
            retry_after: None,
        }
    }
    /// Telegram's 429 with `parameters.retry_after`.
    pub fn telegram_429(retry_after_secs: u64) -> Self {
        Self::Http {
            status: 429,
            body: serde_json::json!({"ok": false, "error_code": 429,
                "description": format!("Too Many Requests: retry after {retry_after_secs}"),
                "parameters": {"retry_after": retry_after_secs}}),
            retry_after: None,
        }
    }
    /// A Zalo error (HTTP 200, `error` ≠ 0).
    pub fn zalo(code: i64, message: &str) -> Self {
        Self::Http {
            status: 200,
            body: serde_json::json!({"error": code, "message": message}),
            retry_after: None,
        }
    }
    pub fn server_error() -> Self {
        Self::Http {
            status: 500,
            body: serde_json::json!({"error": {"message": "An unexpected error has occurred. Please retry your request later.", "type": "OAuthException", "code": 2}}),
            retry_after: None,
        }
    }
}

#[derive(Debug, Clone)]
pub struct WaNumberSpec {
    pub phone_number_id: String,
    pub waba_id: String,
    pub display_phone_number: String,
    pub token: String,
    pub app_secret: String,
    /// `<switchboard>/webhooks/whatsapp`.
    pub webhook_url: String,
    /// Report every accepted message as delivered right away (the demo's phones).
    pub auto_delivery: bool,
    /// Refuse a free-form message outside the window with a synchronous 400 `131047` instead of
    /// accepting it and sending a `failed` status.
    pub sync_window_errors: bool,
}

/// A message the WhatsApp sandbox accepted.
#[derive(Debug, Clone, PartialEq)]
pub struct WaSent {
    pub phone_number_id: String,
    pub to: String,
    pub kind: String,
    pub body: serde_json::Value,
    pub wamid: String,
    pub at: Timestamp,
    /// `false`: accepted, then failed (outside the window).
    pub delivered: bool,
    /// Media by `link`: what WhatsApp fetched from it.
    pub file: Option<crate::media::Received>,
}

#[derive(Debug, Clone, Default)]
struct WaUser {
    last_inbound: Option<Timestamp>,
    ad_at: Option<Timestamp>,
    fep_until: Option<Timestamp>,
}

#[derive(Debug, Clone)]
pub struct ZaloOaSpec {
    pub oa_id: String,
    pub app_id: String,
    pub app_secret: String,
    pub oa_secret_key: String,
    pub access_token: String,
    pub refresh_token: String,
    /// `<switchboard>/webhooks/zalo`.
    pub webhook_url: String,
    /// Post `oa_send_text` echoes of accepted messages.
    pub echoes: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ZaloSent {
    pub oa_id: String,
    pub user_id: String,
    pub text: String,
    pub msg_id: String,
    /// `reply` (free) or `purchase_quota` (paid).
    pub quota_type: String,
    pub at: Timestamp,
    /// An uploaded file instead of a text: `image` (media template) or `file`, with what the
    /// upload carried.
    pub file: Option<(String, crate::media::Received)>,
}

#[derive(Debug, Clone, Default)]
struct ZaloUser {
    last_interaction: Option<Timestamp>,
    sent_since: u32,
    /// The user's Zalo name (`None`: `Zalo <id>`).
    display_name: Option<String>,
}

/// A Telegram user's profile as `getChat` answers it.
#[derive(Debug, Clone, Default)]
struct TgProfile {
    first_name: String,
    last_name: Option<String>,
    username: Option<String>,
    /// The profile photo's version (`None`: no photo, or hidden by the user's privacy settings).
    photo: Option<u32>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct TgSent {
    pub token: String,
    pub chat_id: String,
    pub text: String,
    pub message_id: i64,
    /// `reply_markup.inline_keyboard`, row by row (empty: none).
    pub inline_keyboard: Vec<Vec<TgButton>>,
    /// `sendPhoto` / `sendVideo` / `sendAudio` / `sendDocument`: the method, the caption (in
    /// `text`) and what Telegram fetched from the URL.
    pub file: Option<(String, crate::media::Received)>,
}

/// An inline keyboard button with `callback_data`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TgButton {
    pub text: String,
    pub callback_data: String,
}

#[derive(Debug, Clone, Default)]
struct TgBot {
    webhook: Option<(String, String)>,
    /// `allowed_updates` as given to `setWebhook` (`None`: Telegram's default).
    allowed_updates: Option<Vec<String>>,
    started: HashSet<String>,
    blocked: HashSet<String>,
    next_update: i64,
    next_message: i64,
    /// Callback queries posted, by id: answered yet (`answerCallbackQuery`)?
    callbacks: HashMap<String, bool>,
    /// Users' profiles, by chat id.
    profiles: HashMap<String, TgProfile>,
}

#[derive(Debug, Clone)]
pub struct ShopeeShopSpec {
    pub shop_id: String,
    pub partner_id: String,
    pub partner_key: String,
    pub access_token: String,
    /// The callback URL configured at Shopee (pushes are signed with it).
    pub push_url: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ShopeeSent {
    pub shop_id: String,
    pub to_id: String,
    pub text: String,
    pub message_id: String,
    /// `message_type:"image"`: the uploaded image its `image_url` names.
    pub image: Option<crate::media::Received>,
}

#[derive(Default)]
struct World {
    wa: HashMap<String, WaNumberSpec>,
    wa_templates: HashMap<String, Vec<serde_json::Value>>,
    wa_users: HashMap<(String, String), WaUser>,
    wa_sent: Vec<WaSent>,
    zalo: HashMap<String, ZaloOaSpec>,
    zalo_users: HashMap<(String, String), ZaloUser>,
    zalo_sent: Vec<ZaloSent>,
    zalo_refreshes: HashMap<String, u32>,
    tg: HashMap<String, TgBot>,
    tg_sent: Vec<TgSent>,
    shopee: HashMap<String, ShopeeShopSpec>,
    shopee_sent: Vec<ShopeeSent>,
    /// Files uploaded (Zalo's attachment ids and tokens, Shopee's image URLs) by their handle.
    uploads: HashMap<String, crate::media::Received>,
    faults: HashMap<String, VecDeque<ChannelFault>>,
    seq: u64,
    /// Profile pictures downloaded (Zalo's avatar URLs, Telegram's file downloads).
    picture_downloads: u32,
    /// Files customers sent, by name (a CDN name, a WhatsApp media id, a Telegram file id).
    media: HashMap<String, SbMedia>,
}

impl World {
    fn next(&mut self) -> u64 {
        self.seq += 1;
        self.seq
    }
}

struct Shared {
    world: Mutex<World>,
    clock: Arc<dyn Clock>,
    http: reqwest::Client,
    pending: Mutex<Vec<JoinHandle<()>>>,
    base: Mutex<String>,
}

impl Shared {
    fn world(&self) -> MutexGuard<'_, World> {
        self.world
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
    fn now(&self) -> Timestamp {
        self.clock.now()
    }
    fn spawn(&self, f: impl std::future::Future<Output = ()> + Send + 'static) {
        let h = tokio::spawn(f);
        self.pending
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(h);
    }
}

pub struct ChannelSandbox {
    shared: Arc<Shared>,
    addr: SocketAddr,
}

fn json(status: StatusCode, v: serde_json::Value) -> Response {
    (status, axum::Json(v)).into_response()
}

/// Posts a webhook; returns the receiver's status.
async fn send_webhook(
    http: &reqwest::Client,
    url: &str,
    headers: &[(&str, String)],
    body: String,
) -> anyhow::Result<u16> {
    let mut req = http
        .post(url)
        .header("content-type", "application/json")
        .body(body);
    for (k, v) in headers {
        req = req.header(*k, v);
    }
    Ok(req.send().await?.status().as_u16())
}

impl ChannelSandbox {
    /// Starts the sandbox's HTTP server on `bind` (port 0 for any).
    pub async fn start(clock: Arc<dyn Clock>, bind: SocketAddr) -> anyhow::Result<Self> {
        let listener = tokio::net::TcpListener::bind(bind).await?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            world: Mutex::new(World::default()),
            clock,
            http: crate::http::client(30_000)?,
            pending: Mutex::new(Vec::new()),
            base: Mutex::new(format!("http://{addr}")),
        });
        let app = router(shared.clone());
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(Self { shared, addr })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The base URL for every channel's `api_base_url` (WhatsApp: with the version path).
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn whatsapp_base_url(&self) -> String {
        format!("http://{}/{VERSION}", self.addr)
    }

    pub fn push_fault(&self, account: &str, fault: ChannelFault) {
        self.shared
            .world()
            .faults
            .entry(account.to_owned())
            .or_default()
            .push_back(fault);
    }

    /// Waits for every webhook the sandbox is still delivering (statuses, echoes).
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

    // -------------------------------------------------------------- WhatsApp

    pub fn add_whatsapp_number(&self, n: WaNumberSpec) {
        self.shared.world().wa.insert(n.phone_number_id.clone(), n);
    }

    /// Adds a template (the Graph API's template object: name, language, status, category,
    /// components) to a business account.
    pub fn add_whatsapp_template(&self, waba_id: &str, template: serde_json::Value) {
        let mut w = self.shared.world();
        let id = w.next();
        let mut t = template;
        if t.get("id").is_none() {
            t["id"] = serde_json::json!(format!("9{id:014}"));
        }
        w.wa_templates
            .entry(waba_id.to_owned())
            .or_default()
            .push(t);
    }

    pub fn whatsapp_sent(&self) -> Vec<WaSent> {
        self.shared.world().wa_sent.clone()
    }

    /// Signs and posts a WhatsApp webhook body for this number; returns Switchboard's status.
    pub async fn whatsapp_post(&self, phone_number_id: &str, body: String) -> anyhow::Result<u16> {
        wa_deliver(&self.shared, phone_number_id, body).await
    }

    /// A customer writes: `message` is the message object without `id`, `from` and `timestamp`
    /// (e.g. `{"type": "text", "text": {"body": "hi"}}`; add `referral` for an ad). `wa_id` and/or
    /// a business-scoped `user_id`. Returns (status, wamid).
    pub async fn whatsapp_customer(
        &self,
        phone_number_id: &str,
        wa_id: Option<&str>,
        user_id: Option<&str>,
        name: &str,
        message: serde_json::Value,
    ) -> anyhow::Result<(u16, String)> {
        let now = self.shared.now();
        let (waba, display, wamid) = {
            let mut w = self.shared.world();
            let n =
                w.wa.get(phone_number_id)
                    .cloned()
                    .ok_or_else(|| anyhow::anyhow!("unknown sandbox number {phone_number_id}"))?;
            let seq = w.next();
            let opens = message["type"].as_str() != Some("system");
            for key in [wa_id, user_id].into_iter().flatten() {
                let u = w
                    .wa_users
                    .entry((phone_number_id.to_owned(), key.to_owned()))
                    .or_default();
                if opens {
                    u.last_inbound = Some(now);
                }
                if message.get("referral").is_some() {
                    u.ad_at = Some(now);
                }
            }
            (n.waba_id, n.display_phone_number, format!("wamid.in{seq}"))
        };
        let mut m = message;
        m["id"] = serde_json::json!(wamid);
        m["timestamp"] = serde_json::json!((now.millis() / 1000).to_string());
        let mut contact = serde_json::json!({"profile": {"name": name}});
        if let Some(w) = wa_id {
            m["from"] = serde_json::json!(w);
            contact["wa_id"] = serde_json::json!(w);
        }
        if let Some(u) = user_id {
            m["from_user_id"] = serde_json::json!(u);
            contact["user_id"] = serde_json::json!(u);
        }
        let body = serde_json::json!({"object": "whatsapp_business_account", "entry": [{"id": waba, "changes": [{"field": "messages", "value": {
            "messaging_product": "whatsapp",
            "metadata": {"display_phone_number": display, "phone_number_id": phone_number_id},
            "contacts": [contact], "messages": [m]}}]}]});
        let status = wa_deliver(&self.shared, phone_number_id, meta_json(&body)).await?;
        Ok((status, wamid))
    }

    /// The customer's phone reports a status for one of our messages (`delivered`, `read`, ...).
    pub async fn whatsapp_status(
        &self,
        phone_number_id: &str,
        wamid: &str,
        status: &str,
    ) -> anyhow::Result<u16> {
        let sent = self
            .shared
            .world()
            .wa_sent
            .iter()
            .find(|s| s.wamid == wamid)
            .cloned()
            .ok_or_else(|| anyhow::anyhow!("unknown wamid {wamid}"))?;
        let body = wa_status_body(&self.shared, &sent, status, None, self.shared.now());
        wa_deliver(&self.shared, phone_number_id, meta_json(&body)).await
    }

    // -------------------------------------------------------------- Zalo

    pub fn add_zalo_oa(&self, oa: ZaloOaSpec) {
        self.shared.world().zalo.insert(oa.oa_id.clone(), oa);
    }

    pub fn zalo_sent(&self) -> Vec<ZaloSent> {
        self.shared.world().zalo_sent.clone()
    }

    /// How many times the OA's tokens were refreshed.
    pub fn zalo_refreshes(&self, oa_id: &str) -> u32 {
        self.shared
            .world()
            .zalo_refreshes
            .get(oa_id)
            .copied()
            .unwrap_or(0)
    }

    /// Zalo expires the OA's access token: the next send with it gets `-216`.
    pub fn zalo_expire_token(&self, oa_id: &str) {
        let mut w = self.shared.world();
        let seq = w.next();
        if let Some(oa) = w.zalo.get_mut(oa_id) {
            oa.access_token = format!("zat_rotated_{seq}");
        }
    }

    /// The OA's current tokens (access, refresh).
    pub fn zalo_tokens(&self, oa_id: &str) -> Option<(String, String)> {
        self.shared
            .world()
            .zalo
            .get(oa_id)
            .map(|o| (o.access_token.clone(), o.refresh_token.clone()))
    }

    /// Sets a follower's Zalo name (what the user detail API answers).
    pub fn zalo_set_profile(&self, oa_id: &str, user_id: &str, display_name: &str) {
        self.shared
            .world()
            .zalo_users
            .entry((oa_id.to_owned(), user_id.to_owned()))
            .or_default()
            .display_name = Some(display_name.to_owned());
    }

    /// How many profile pictures were downloaded (Zalo avatars, Telegram photo files).
    pub fn picture_downloads(&self) -> u32 {
        self.shared.world().picture_downloads
    }

    /// Signs and posts a Zalo event (its `app_id` and `timestamp` are filled in if missing).
    pub async fn zalo_event(&self, oa_id: &str, event: serde_json::Value) -> anyhow::Result<u16> {
        zalo_deliver(&self.shared, oa_id, event).await
    }

    /// A follower writes text to the OA. Returns (status, msg_id).
    pub async fn zalo_user_text(
        &self,
        oa_id: &str,
        user_id: &str,
        text: &str,
    ) -> anyhow::Result<(u16, String)> {
        let msg_id = {
            let mut w = self.shared.world();
            let seq = w.next();
            let u = w
                .zalo_users
                .entry((oa_id.to_owned(), user_id.to_owned()))
                .or_default();
            u.last_interaction = Some(self.shared.now());
            u.sent_since = 0;
            format!("zin{seq:016x}")
        };
        let ev = serde_json::json!({"event_name": "user_send_text", "sender": {"id": user_id}, "recipient": {"id": oa_id},
            "user_id_by_app": format!("app{user_id}"), "message": {"text": text, "msg_id": msg_id}});
        Ok((zalo_deliver(&self.shared, oa_id, ev).await?, msg_id))
    }

    // -------------------------------------------------------------- Telegram

    pub fn add_telegram_bot(&self, token: &str) {
        self.shared
            .world()
            .tg
            .insert(token.to_owned(), TgBot::default());
    }

    pub fn telegram_sent(&self) -> Vec<TgSent> {
        self.shared.world().tg_sent.clone()
    }

    /// The webhook URL and secret token the bot was given with `setWebhook`.
    pub fn telegram_webhook(&self, token: &str) -> Option<(String, String)> {
        self.shared
            .world()
            .tg
            .get(token)
            .and_then(|b| b.webhook.clone())
    }

    /// The `allowed_updates` the bot asked for with `setWebhook` (`None`: never said).
    pub fn telegram_allowed_updates(&self, token: &str) -> Option<Vec<String>> {
        self.shared
            .world()
            .tg
            .get(token)
            .and_then(|b| b.allowed_updates.clone())
    }

    /// Posts an update (its `update_id` is assigned if missing) with the bot's secret token.
    /// Telegram delivers only the kinds the bot asked for (by default every kind but
    /// `chat_member`, `message_reaction` and `message_reaction_count`): another kind is an error
    /// here, so a test cannot rely on an update the real Telegram would never send.
    /// Returns (status, update_id, response body).
    pub async fn telegram_update(
        &self,
        token: &str,
        mut update: serde_json::Value,
    ) -> anyhow::Result<(u16, i64, String)> {
        let (url, secret, id) = {
            let mut w = self.shared.world();
            let bot =
                w.tg.get_mut(token)
                    .ok_or_else(|| anyhow::anyhow!("unknown sandbox bot"))?;
            let (url, secret) = bot
                .webhook
                .clone()
                .ok_or_else(|| anyhow::anyhow!("the bot has no webhook"))?;
            let kind = update
                .as_object()
                .and_then(|o| o.keys().find(|k| *k != "update_id").cloned())
                .unwrap_or_default();
            let asked = match &bot.allowed_updates {
                Some(list) => list.contains(&kind),
                None => !matches!(
                    kind.as_str(),
                    "chat_member" | "message_reaction" | "message_reaction_count"
                ),
            };
            if !asked {
                anyhow::bail!("the bot did not ask for `{kind}` updates (allowed_updates)");
            }
            let id = match update["update_id"].as_i64() {
                Some(id) => id,
                None => {
                    bot.next_update += 1;
                    10_000 + bot.next_update
                }
            };
            (url, secret, id)
        };
        update["update_id"] = serde_json::json!(id);
        let resp = self
            .shared
            .http
            .post(url)
            .header("content-type", "application/json")
            .header("x-telegram-bot-api-secret-token", secret)
            .body(update.to_string())
            .send()
            .await?;
        let status = resp.status().as_u16();
        Ok((status, id, resp.text().await.unwrap_or_default()))
    }

    /// Sets a user's Telegram profile (`getChat`): their name, public username and whether they
    /// have a profile photo (a changed photo gets a new file).
    pub fn telegram_set_profile(
        &self,
        token: &str,
        chat_id: i64,
        first_name: &str,
        last_name: Option<&str>,
        username: Option<&str>,
        photo: bool,
    ) {
        let mut w = self.shared.world();
        let seq = u32::try_from(w.next()).unwrap_or(0);
        if let Some(bot) = w.tg.get_mut(token) {
            let p = bot.profiles.entry(chat_id.to_string()).or_default();
            p.first_name = first_name.to_owned();
            p.last_name = last_name.map(str::to_owned);
            p.username = username.map(str::to_owned);
            p.photo = match (photo, p.photo) {
                (false, _) => None,
                (true, Some(v)) => Some(v),
                (true, None) => Some(seq),
            };
        }
    }

    /// A user writes to the bot (and so has started it). Returns (status, update_id, message_id).
    pub async fn telegram_user_text(
        &self,
        token: &str,
        chat_id: i64,
        first_name: &str,
        text: &str,
    ) -> anyhow::Result<(u16, i64, i64)> {
        let message_id = {
            let mut w = self.shared.world();
            let bot =
                w.tg.get_mut(token)
                    .ok_or_else(|| anyhow::anyhow!("unknown sandbox bot"))?;
            bot.started.insert(chat_id.to_string());
            bot.blocked.remove(&chat_id.to_string());
            bot.next_message += 1;
            let profile = bot.profiles.entry(chat_id.to_string()).or_default();
            if profile.first_name.is_empty() {
                profile.first_name = first_name.to_owned();
            }
            (bot.next_message, profile.clone())
        };
        let (message_id, profile) = message_id;
        let now = self.shared.now().millis() / 1000;
        // The update carries the user as they are now (a username only when they have one).
        let mut from = serde_json::json!({"id": chat_id, "is_bot": false, "first_name": first_name, "language_code": "vi"});
        let mut chat =
            serde_json::json!({"id": chat_id, "type": "private", "first_name": first_name});
        for v in [&mut from, &mut chat] {
            if let Some(l) = &profile.last_name {
                v["last_name"] = serde_json::json!(l);
            }
            if let Some(u) = &profile.username {
                v["username"] = serde_json::json!(u);
            }
        }
        let update = serde_json::json!({"message": {"message_id": message_id, "date": now,
            "from": from, "chat": chat, "text": text}});
        let (status, id, _) = self.telegram_update(token, update).await?;
        Ok((status, id, message_id))
    }

    /// The user taps the inline button with `callback_data` under the bot's message
    /// `message_id`: a `callback_query` update. Fails when that message has no such button — a
    /// user can only tap what the bot sent. Returns (status, callback query id, response body);
    /// an `answerCallbackQuery` in the response answers the query, as Telegram reads it.
    pub async fn telegram_tap(
        &self,
        token: &str,
        first_name: &str,
        message_id: i64,
        callback_data: &str,
    ) -> anyhow::Result<(u16, String, String)> {
        let (chat_id, text, keyboard, id) = {
            let mut w = self.shared.world();
            let sent = w
                .tg_sent
                .iter()
                .find(|s| s.token == token && s.message_id == message_id)
                .ok_or_else(|| anyhow::anyhow!("the bot sent no message {message_id}"))?;
            if !sent
                .inline_keyboard
                .iter()
                .flatten()
                .any(|b| b.callback_data == callback_data)
            {
                anyhow::bail!("message {message_id} has no button {callback_data:?}");
            }
            let (chat_id, text) = (sent.chat_id.clone(), sent.text.clone());
            let keyboard: Vec<Vec<serde_json::Value>> = sent
                .inline_keyboard
                .iter()
                .map(|row| {
                    row.iter()
                        .map(|b| serde_json::json!({"text": b.text, "callback_data": b.callback_data}))
                        .collect()
                })
                .collect();
            let n = w.next();
            let id = format!("cbq-{n}");
            let bot =
                w.tg.get_mut(token)
                    .ok_or_else(|| anyhow::anyhow!("unknown sandbox bot"))?;
            bot.callbacks.insert(id.clone(), false);
            (chat_id, text, keyboard, id)
        };
        let chat: i64 = chat_id.parse().unwrap_or(0);
        let now = self.shared.now().millis() / 1000;
        let update = serde_json::json!({"callback_query": {"id": id, "chat_instance": "sandbox",
            "from": {"id": chat, "is_bot": false, "first_name": first_name},
            "message": {"message_id": message_id, "date": now, "text": text,
                "chat": {"id": chat, "type": "private", "first_name": first_name},
                "reply_markup": {"inline_keyboard": keyboard}},
            "data": callback_data}});
        let (status, _, body) = self.telegram_update(token, update).await?;
        let answer: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
        if answer["method"] == "answerCallbackQuery" && answer["callback_query_id"] == id.as_str() {
            self.answer_callback(token, &id);
        }
        Ok((status, id, body))
    }

    /// Whether the bot answered this callback query (the user's button stops spinning).
    pub fn telegram_callback_answered(&self, token: &str, id: &str) -> bool {
        self.shared
            .world()
            .tg
            .get(token)
            .and_then(|b| b.callbacks.get(id).copied())
            .unwrap_or(false)
    }

    fn answer_callback(&self, token: &str, id: &str) {
        answer_callback(&mut self.shared.world(), token, id);
    }

    /// The user blocks the bot: sends fail with 403 and a `my_chat_member` update is posted.
    pub async fn telegram_block(&self, token: &str, chat_id: i64) -> anyhow::Result<u16> {
        if let Some(b) = self.shared.world().tg.get_mut(token) {
            b.blocked.insert(chat_id.to_string());
        }
        let now = self.shared.now().millis() / 1000;
        let update = serde_json::json!({"my_chat_member": {"chat": {"id": chat_id, "type": "private"}, "from": {"id": chat_id},
            "date": now, "old_chat_member": {"status": "member"}, "new_chat_member": {"status": "kicked"}}});
        Ok(self.telegram_update(token, update).await?.0)
    }

    // -------------------------------------------------------------- Shopee

    pub fn add_shopee_shop(&self, s: ShopeeShopSpec) {
        self.shared.world().shopee.insert(s.shop_id.clone(), s);
    }

    pub fn shopee_sent(&self) -> Vec<ShopeeSent> {
        self.shared.world().shopee_sent.clone()
    }

    /// A buyer writes to the shop. Returns (status, message id).
    pub async fn shopee_buyer_text(
        &self,
        shop_id: &str,
        buyer_id: i64,
        buyer_name: &str,
        text: &str,
    ) -> anyhow::Result<(u16, String)> {
        let (_spec, seq) = {
            let mut w = self.shared.world();
            let spec = w
                .shopee
                .get(shop_id)
                .cloned()
                .ok_or_else(|| anyhow::anyhow!("unknown sandbox shop"))?;
            (spec, w.next())
        };
        let now = self.shared.now().millis() / 1000;
        let message_id = format!("20{seq:016}");
        let content = serde_json::json!({"conversation_id": format!("77{buyer_id}"), "from_id": buyer_id,
            "from_user_name": buyer_name, "to_id": shop_id.parse::<i64>().unwrap_or(0), "message_id": message_id,
            "message_type": "text", "content": {"text": text}, "created_timestamp": now});
        let body = serde_json::json!({"shop_id": shop_id.parse::<i64>().unwrap_or(0), "code": 10, "timestamp": now,
            "data": {"type": "message", "content": content}})
        .to_string();
        Ok((self.shopee_push(shop_id, body).await?, message_id))
    }

    /// Signs (with the shop's partner key and push URL) and posts a push body.
    pub async fn shopee_push(&self, shop_id: &str, body: String) -> anyhow::Result<u16> {
        let spec = self
            .shared
            .world()
            .shopee
            .get(shop_id)
            .cloned()
            .ok_or_else(|| anyhow::anyhow!("unknown sandbox shop"))?;
        let sig = shopee::push_signature(&spec.partner_key, &spec.push_url, body.as_bytes());
        send_webhook(
            &self.shared.http,
            &spec.push_url,
            &[("authorization", sig)],
            body,
        )
        .await
    }
}

// ------------------------------------------------------------------ WhatsApp

async fn wa_deliver(shared: &Shared, phone_number_id: &str, body: String) -> anyhow::Result<u16> {
    let (url, secret) = {
        let w = shared.world();
        let n =
            w.wa.get(phone_number_id)
                .ok_or_else(|| anyhow::anyhow!("unknown sandbox number {phone_number_id}"))?;
        (n.webhook_url.clone(), n.app_secret.clone())
    };
    let sig = whatsapp::signature_header(&secret, body.as_bytes());
    send_webhook(&shared.http, &url, &[("x-hub-signature-256", sig)], body).await
}

/// The `pricing` label the provider puts on a status (its own rules, §3.5).
fn pricing(sent: &WaSent, user: &WaUser) -> serde_json::Value {
    let at = sent.at.millis();
    let category = if sent.kind == "template" {
        sent.body["_category"]
            .as_str()
            .unwrap_or("utility")
            .to_owned()
    } else {
        "service".to_owned()
    };
    let in_window = user
        .last_inbound
        .is_some_and(|l| at - l.millis() <= DAY && at >= l.millis());
    let fep = user.fep_until.is_some_and(|u| at <= u.millis());
    let model = if at < PMP_FROM { "CBP" } else { "PMP" };
    let free_service =
        category == "service" && (CBP_SERVICE_FREE_FROM..SERVICE_CHARGED_FROM).contains(&at);
    let free_utility =
        category == "utility" && in_window && (PMP_FROM..SERVICE_CHARGED_FROM).contains(&at);
    let kind = if fep {
        "free_entry_point"
    } else if free_service || free_utility {
        "free_customer_service"
    } else {
        "regular"
    };
    serde_json::json!({"billable": kind == "regular", "pricing_model": model, "type": kind, "category": category})
}

fn wa_status_body(
    shared: &Shared,
    sent: &WaSent,
    status: &str,
    error: Option<(i64, &str, &str)>,
    now: Timestamp,
) -> serde_json::Value {
    let (waba, display, user) = {
        let w = shared.world();
        let n = w.wa.get(&sent.phone_number_id);
        (
            n.map(|n| n.waba_id.clone()).unwrap_or_default(),
            n.map(|n| n.display_phone_number.clone())
                .unwrap_or_default(),
            w.wa_users
                .get(&(sent.phone_number_id.clone(), sent.to.clone()))
                .cloned()
                .unwrap_or_default(),
        )
    };
    let mut s = serde_json::json!({"id": sent.wamid, "status": status, "timestamp": (now.millis() / 1000).to_string()});
    if sent.to.contains('.') {
        s["recipient_user_id"] = serde_json::json!(sent.to);
    } else {
        s["recipient_id"] = serde_json::json!(sent.to);
    }
    if let Some(cb) = sent.body["biz_opaque_callback_data"].as_str() {
        s["biz_opaque_callback_data"] = serde_json::json!(cb);
    }
    match error {
        Some((code, title, details)) => {
            s["errors"] = serde_json::json!([{"code": code, "title": title, "message": title,
                "error_data": {"details": details}, "href": "https://developers.facebook.com/docs/whatsapp/cloud-api/support/error-codes/"}]);
        }
        None => {
            let p = pricing(sent, &user);
            if status == "sent" && p["pricing_model"] == "CBP" {
                s["conversation"] = serde_json::json!({"id": format!("conv{}", sent.wamid),
                    "expiration_timestamp": ((now.millis() + DAY) / 1000).to_string(),
                    "origin": {"type": if p["type"] == "free_entry_point" { serde_json::json!("referral_conversion") } else { p["category"].clone() }}});
            }
            s["pricing"] = p;
        }
    }
    serde_json::json!({"object": "whatsapp_business_account", "entry": [{"id": waba, "changes": [{"field": "messages", "value": {
        "messaging_product": "whatsapp",
        "metadata": {"display_phone_number": display, "phone_number_id": sent.phone_number_id},
        "statuses": [s]}}]}]})
}

fn graph_error(status: StatusCode, code: i64, message: &str) -> Response {
    json(
        status,
        serde_json::json!({"error": {"message": format!("(#{code}) {message}"), "type": "OAuthException", "code": code,
            "error_data": {"messaging_product": "whatsapp", "details": message}, "fbtrace_id": "SandboxTrace"}}),
    )
}

fn bearer(headers: &HeaderMap) -> Option<String> {
    headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::to_owned)
}

/// Applies a queued fault for `account`: `Some(response)` when the call fails.
async fn take_fault(shared: &Shared, account: &str) -> Option<Response> {
    let fault = shared
        .world()
        .faults
        .get_mut(account)
        .and_then(VecDeque::pop_front)?;
    match fault {
        ChannelFault::Timeout => {
            std::future::pending::<()>().await;
            None
        }
        ChannelFault::Http {
            status,
            body,
            retry_after,
        } => {
            let mut r = json(
                StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
                body,
            );
            if let Some(v) = retry_after.and_then(|s| s.to_string().parse().ok()) {
                r.headers_mut().insert("retry-after", v);
            }
            Some(r)
        }
    }
}

fn placeholder_count(text: &str) -> usize {
    let mut n = 0;
    let mut rest = text;
    let mut seen: Vec<String> = Vec::new();
    while let Some(i) = rest.find("{{") {
        let after = &rest[i + 2..];
        let Some(j) = after.find("}}") else { break };
        let name = after[..j].trim().to_owned();
        if !seen.contains(&name) {
            seen.push(name);
            n += 1;
        }
        rest = &after[j + 2..];
    }
    n
}

/// `POST /{version}/{phone-number-id}/messages` (§3.2, §3.3, §3.4).
/// A media object (§3.2; the sizes and types are the Cloud API's documented media limits):
/// `link` is fetched as WhatsApp does (image jpeg/png ≤5 MB, video mp4 ≤16 MB, audio ≤16 MB,
/// document ≤100 MB), `id` names media uploaded to WhatsApp; a caption is at most 1024
/// characters.
async fn wa_media(
    http: &reqwest::Client,
    kind: &str,
    o: &serde_json::Value,
) -> Result<Option<crate::media::Received>, Response> {
    use crate::media::MB;
    if o["caption"]
        .as_str()
        .is_some_and(|c| c.chars().count() > 1024)
    {
        return Err(graph_error(
            StatusCode::BAD_REQUEST,
            100,
            "Invalid parameter: caption must be at most 1024 characters",
        ));
    }
    if o["id"].is_string() {
        return Ok(None);
    }
    let Some(link) = o["link"].as_str() else {
        return Err(graph_error(
            StatusCode::BAD_REQUEST,
            131_008,
            "Required parameter is missing: link or id",
        ));
    };
    let (max, types): (usize, &[&str]) = match kind {
        "image" => (5 * MB, &["image/png", "image/jpeg"]),
        "video" => (16 * MB, &["video/mp4"]),
        "audio" => (16 * MB, &["audio/mpeg", "audio/mp4", "audio/ogg"]),
        _ => (100 * MB, &[]),
    };
    let upload_error = || graph_error(StatusCode::BAD_REQUEST, 131_053, "Media upload error");
    let f = crate::media::fetch(http, link, max)
        .await
        .map_err(|_| upload_error())?;
    if !types.is_empty() && !types.contains(&f.content_type.as_str()) {
        return Err(upload_error());
    }
    Ok(Some(f))
}

async fn wa_send(
    State(shared): State<Arc<Shared>>,
    Path((_v, pnid)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let number = {
        let w = shared.world();
        w.wa.get(&pnid).cloned()
    };
    let Some(number) = number.filter(|n| bearer(&headers).as_deref() == Some(n.token.as_str()))
    else {
        return graph_error(
            StatusCode::UNAUTHORIZED,
            190,
            "Error validating access token: Session has expired",
        );
    };
    if let Some(r) = take_fault(&shared, &pnid).await {
        return r;
    }
    let b: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
    if b["messaging_product"] != "whatsapp" {
        return graph_error(
            StatusCode::BAD_REQUEST,
            100,
            "Invalid parameter: messaging_product",
        );
    }
    let Some(to) = b["to"]
        .as_str()
        .or_else(|| b["recipient"].as_str())
        .map(str::to_owned)
    else {
        return graph_error(
            StatusCode::BAD_REQUEST,
            131_008,
            "Required parameter is missing: to",
        );
    };
    let kind = b["type"].as_str().unwrap_or("text").to_owned();
    let now = shared.now();
    let mut stored = b.clone();
    if kind == "text" {
        let n = b["text"]["body"].as_str().map_or(0, |t| t.chars().count());
        if n == 0 || n > 4096 {
            return graph_error(
                StatusCode::BAD_REQUEST,
                100,
                "Invalid parameter: text.body must be 1 to 4096 characters",
            );
        }
    }
    let mut file = None;
    if ["image", "video", "audio", "document"].contains(&kind.as_str()) {
        match wa_media(&shared.http, &kind, &b[kind.as_str()]).await {
            Ok(f) => file = f,
            Err(r) => return r,
        }
    }
    if kind == "template" {
        let name = b["template"]["name"].as_str().unwrap_or("");
        let lang = b["template"]["language"]["code"].as_str().unwrap_or("");
        let found = shared
            .world()
            .wa_templates
            .get(&number.waba_id)
            .and_then(|ts| {
                ts.iter()
                    .find(|t| t["name"] == name && t["language"] == lang)
                    .cloned()
            });
        let Some(t) = found else {
            return graph_error(
                StatusCode::NOT_FOUND,
                132_001,
                "Template name does not exist in the translation",
            );
        };
        match t["status"].as_str().unwrap_or("") {
            "APPROVED" => {}
            "PAUSED" => return graph_error(StatusCode::BAD_REQUEST, 132_015, "Template is paused"),
            "DISABLED" => {
                return graph_error(StatusCode::BAD_REQUEST, 132_016, "Template is disabled");
            }
            _ => {
                return graph_error(
                    StatusCode::NOT_FOUND,
                    132_001,
                    "Template name does not exist in the translation",
                );
            }
        }
        let components = t["components"].as_array().cloned().unwrap_or_default();
        for part in ["BODY", "HEADER"] {
            let expected = components
                .iter()
                .find(|c| c["type"] == part)
                .filter(|c| part == "BODY" || c["format"].as_str().unwrap_or("TEXT") == "TEXT")
                .map_or(0, |c| placeholder_count(c["text"].as_str().unwrap_or("")));
            let given = b["template"]["components"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|c| {
                    c["type"]
                        .as_str()
                        .is_some_and(|k| k.eq_ignore_ascii_case(part))
                })
                .map_or(0, |c| {
                    c["parameters"]
                        .as_array()
                        .map_or(0, |p| p.iter().filter(|p| p["type"] == "text").count())
                });
            if expected != given {
                return graph_error(
                    StatusCode::BAD_REQUEST,
                    132_000,
                    "Number of parameters does not match the expected number of params",
                );
            }
        }
        stored["_category"] = serde_json::json!(
            t["category"]
                .as_str()
                .unwrap_or("UTILITY")
                .to_ascii_lowercase()
        );
    }
    // The window (§3.3): only templates outside 24 h since the customer's last message.
    let (user, wamid) = {
        let mut w = shared.world();
        let seq = w.next();
        let user = w
            .wa_users
            .get(&(pnid.clone(), to.clone()))
            .cloned()
            .unwrap_or_default();
        (user, format!("wamid.sb{seq}"))
    };
    let in_window = user
        .last_inbound
        .is_some_and(|l| now.millis() - l.millis() <= DAY);
    let outside = kind != "template" && !in_window;
    if outside && number.sync_window_errors {
        return graph_error(StatusCode::BAD_REQUEST, 131_047, "Re-engagement message");
    }
    // The free entry point opens with the first answer within 24 h of an ad message.
    {
        let mut w = shared.world();
        if let Some(u) = w.wa_users.get_mut(&(pnid.clone(), to.clone()))
            && let Some(ad) = u.ad_at
            && now.millis() - ad.millis() <= DAY
            && u.fep_until.is_none_or(|f| f < ad)
            && !outside
        {
            u.fep_until = Some(now.plus_millis(72 * 3_600_000));
        }
    }
    let sent = WaSent {
        phone_number_id: pnid.clone(),
        to: to.clone(),
        kind,
        body: stored,
        wamid: wamid.clone(),
        at: now,
        delivered: !outside,
        file,
    };
    shared.world().wa_sent.push(sent.clone());
    let s2 = shared.clone();
    let auto = number.auto_delivery;
    shared.spawn(async move {
        tokio::task::yield_now().await;
        let bodies: Vec<serde_json::Value> = if outside {
            vec![wa_status_body(
                &s2,
                &sent,
                "failed",
                Some((131_047, "Re-engagement message", "Message failed to send because more than 24 hours have passed since the customer last replied to this number.")),
                now,
            )]
        } else {
            let mut v = vec![wa_status_body(&s2, &sent, "sent", None, now)];
            if auto {
                v.push(wa_status_body(&s2, &sent, "delivered", None, now));
            }
            v
        };
        for body in bodies {
            if let Err(e) = wa_deliver(&s2, &sent.phone_number_id, meta_json(&body)).await {
                tracing::warn!(error = %e, "sandbox: whatsapp status delivery failed");
            }
        }
    });
    json(
        StatusCode::OK,
        serde_json::json!({"messaging_product": "whatsapp", "contacts": [{"input": to, "wa_id": to}],
            "messages": [{"id": wamid, "message_status": "accepted"}]}),
    )
}

#[derive(Deserialize)]
struct Paging {
    limit: Option<usize>,
    after: Option<String>,
}

/// `GET /{version}/{waba-id}/message_templates` with cursor paging.
async fn wa_templates(
    State(shared): State<Arc<Shared>>,
    Path((v, waba)): Path<(String, String)>,
    Query(p): Query<Paging>,
    headers: HeaderMap,
) -> Response {
    let token = bearer(&headers);
    let (authorised, all) = {
        let w = shared.world();
        (
            w.wa.values()
                .any(|n| n.waba_id == waba && Some(&n.token) == token.as_ref()),
            w.wa_templates.get(&waba).cloned().unwrap_or_default(),
        )
    };
    if !authorised {
        return graph_error(StatusCode::UNAUTHORIZED, 190, "Invalid OAuth access token");
    }
    // At most 3 per page whatever is asked (providers may return fewer than the limit), so
    // clients must follow `paging.next`.
    let limit = p.limit.unwrap_or(25).clamp(1, 3);
    let start = p
        .after
        .as_deref()
        .and_then(|a| a.parse().ok())
        .unwrap_or(0usize);
    let page: Vec<_> = all.iter().skip(start).take(limit).cloned().collect();
    let end = start + page.len();
    let base = shared
        .base
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .clone();
    let mut paging =
        serde_json::json!({"cursors": {"before": start.to_string(), "after": end.to_string()}});
    if end < all.len() {
        paging["next"] = serde_json::json!(format!(
            "{base}/{v}/{waba}/message_templates?fields=id,name,language,status,category,components&limit={limit}&after={end}"
        ));
    }
    json(
        StatusCode::OK,
        serde_json::json!({"data": page, "paging": paging}),
    )
}

// ------------------------------------------------------------------ Zalo

async fn zalo_deliver(
    shared: &Shared,
    oa_id: &str,
    mut event: serde_json::Value,
) -> anyhow::Result<u16> {
    let (url, app_id, key) = {
        let w = shared.world();
        let oa = w
            .zalo
            .get(oa_id)
            .ok_or_else(|| anyhow::anyhow!("unknown sandbox OA {oa_id}"))?;
        (
            oa.webhook_url.clone(),
            oa.app_id.clone(),
            oa.oa_secret_key.clone(),
        )
    };
    if event.get("app_id").is_none() {
        event["app_id"] = serde_json::json!(app_id);
    }
    if event.get("timestamp").is_none() {
        event["timestamp"] = serde_json::json!(shared.now().millis().to_string());
    }
    let ts = event["timestamp"]
        .as_str()
        .map_or_else(|| event["timestamp"].to_string(), str::to_owned);
    let app = event["app_id"].as_str().unwrap_or("").to_owned();
    let body = event.to_string();
    let mac = zalo::signature_header(&app, body.as_bytes(), &ts, &key);
    send_webhook(&shared.http, &url, &[("x-zevent-signature", mac)], body).await
}

/// `POST /v3.0/oa/message/{cs|transaction|promotion}` (§4.2, §4.3).
/// `GET /{version}/{phone_number_id}`: the number itself (the setup's connection check).
async fn wa_number(
    State(shared): State<Arc<Shared>>,
    Path((_v, pnid)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    let w = shared.world();
    let token = bearer(&headers);
    if !w
        .wa
        .values()
        .any(|n| Some(n.token.as_str()) == token.as_deref())
    {
        return graph_error(
            StatusCode::UNAUTHORIZED,
            190,
            "Error validating access token: Session has expired",
        );
    }
    if let Some(m) = w.media.get(&pnid).filter(|m| m.whatsapp) {
        return wa_media_info(&shared, &pnid, m);
    }
    match w.wa.get(&pnid) {
        Some(n) if Some(n.token.as_str()) == token.as_deref() => json(
            StatusCode::OK,
            serde_json::json!({"id": n.phone_number_id, "display_phone_number": n.display_phone_number, "verified_name": format!("Sandbox {}", n.display_phone_number)}),
        ),
        _ => graph_error(
            StatusCode::BAD_REQUEST,
            100,
            "Unsupported get request. Object does not exist or cannot be loaded due to missing permissions",
        ),
    }
}

/// `GET /v3.0/oa/user/detail?data={"user_id":"…"}`: a follower's profile (Zalo's OA API v3; not
/// in channels.md). Errors come back as HTTP 200 with `error` ≠ 0, as every Zalo answer.
async fn zalo_user_detail(
    State(shared): State<Arc<Shared>>,
    Query(q): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    let token = headers
        .get("access_token")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let base = shared
        .base
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .clone();
    let w = shared.world();
    let Some(oa) = w.zalo.values().find(|o| o.access_token == token) else {
        return json(
            StatusCode::OK,
            serde_json::json!({"error": -216, "message": "Access token is invalid"}),
        );
    };
    let data: serde_json::Value = q
        .get("data")
        .and_then(|d| serde_json::from_str(d).ok())
        .unwrap_or_default();
    let Some(user_id) = data["user_id"].as_str() else {
        return json(
            StatusCode::OK,
            serde_json::json!({"error": -201, "message": "Parameters are invalid"}),
        );
    };
    let Some(u) = w.zalo_users.get(&(oa.oa_id.clone(), user_id.to_owned())) else {
        return json(
            StatusCode::OK,
            serde_json::json!({"error": -213, "message": "User has not followed OA"}),
        );
    };
    let name = u
        .display_name
        .clone()
        .unwrap_or_else(|| format!("Zalo {user_id}"));
    let avatar = |size: u32| format!("{base}/_sandbox/pictures/zalo-{size}-{user_id}.jpg");
    json(
        StatusCode::OK,
        serde_json::json!({"error": 0, "message": "Success", "data": {
            "user_id": user_id, "user_id_by_app": format!("app{user_id}"), "display_name": name,
            "user_alias": "", "is_sensitive": false, "user_is_follower": true,
            "avatar": avatar(120), "avatars": {"120": avatar(120), "240": avatar(240)}}}),
    )
}

/// A profile picture on the provider's CDN.
async fn sandbox_picture(State(shared): State<Arc<Shared>>) -> Response {
    shared.world().picture_downloads += 1;
    crate::picture()
}

/// `GET /file/bot<token>/<file_path>`: a file `getFile` pointed at (only profile photos here).
async fn tg_file(
    State(shared): State<Arc<Shared>>,
    Path((bot, path)): Path<(String, String)>,
) -> Response {
    if let (Some(token), Some(file_id)) = (bot.strip_prefix("bot"), path.strip_prefix("documents/"))
    {
        return tg_download(&shared, token, file_id);
    }
    let mut w = shared.world();
    let Some(bot) = bot.strip_prefix("bot").and_then(|t| w.tg.get(t)) else {
        return tg(StatusCode::UNAUTHORIZED, "Unauthorized");
    };
    let known = bot
        .profiles
        .values()
        .filter_map(|p| p.photo)
        .any(|v| path == format!("profile_photos/file_{v}.jpg"));
    if !known {
        return tg(StatusCode::NOT_FOUND, "Not Found");
    }
    w.picture_downloads += 1;
    crate::picture()
}

/// `GET /v2.0/oa/getoa`: the OA of the access token.
async fn zalo_getoa(State(shared): State<Arc<Shared>>, headers: HeaderMap) -> Response {
    let token = headers
        .get("access_token")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let w = shared.world();
    match w.zalo.values().find(|o| o.access_token == token) {
        Some(oa) => json(
            StatusCode::OK,
            serde_json::json!({"error": 0, "message": "Success", "data": {"oa_id": oa.oa_id, "name": format!("Sandbox OA {}", oa.oa_id), "is_verified": false}}),
        ),
        None => json(
            StatusCode::OK,
            serde_json::json!({"error": -216, "message": "Access token is invalid"}),
        ),
    }
}

/// `GET /api/v2/shop/get_shop_info`, signed like every v2 shop call.
async fn shopee_shop_info(
    State(shared): State<Arc<Shared>>,
    Query(q): Query<ShopeeQuery>,
) -> Response {
    match shopee_shop(
        &shared,
        &q,
        switchboard_channels::check::SHOPEE_SHOP_INFO_PATH,
    ) {
        Ok(shop) => json(
            StatusCode::OK,
            serde_json::json!({"request_id": "sbreq", "error": "", "message": "", "shop_name": format!("Sandbox shop {}", shop.shop_id), "region": "VN", "status": "NORMAL"}),
        ),
        Err(r) => *r,
    }
}

/// The OA whose access token the `access_token` header carries.
fn zalo_oa(shared: &Shared, headers: &HeaderMap) -> Option<ZaloOaSpec> {
    let token = headers.get("access_token")?.to_str().ok()?;
    shared
        .world()
        .zalo
        .values()
        .find(|o| o.access_token == token)
        .cloned()
}

async fn zalo_send(
    State(shared): State<Arc<Shared>>,
    Path(kind): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let ok = |v| json(StatusCode::OK, v);
    let Some(oa) = zalo_oa(&shared, &headers) else {
        return ok(serde_json::json!({"error": -216, "message": "Access token is invalid"}));
    };
    if let Some(r) = take_fault(&shared, &oa.oa_id).await {
        return r;
    }
    if kind != "cs" {
        return ok(
            serde_json::json!({"error": -201, "message": "The sandbox emulates consultation (cs) messages only"}),
        );
    }
    let b: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
    let file = if b["message"]["attachment"].is_object() {
        let Some(f) = zalo_attachment(&shared.world(), &b["message"]["attachment"]) else {
            return ok(serde_json::json!({"error": -201, "message": "Attachment is invalid"}));
        };
        Some(f)
    } else {
        None
    };
    let text_or_file = b["message"]["text"]
        .as_str()
        .map(str::to_owned)
        .or_else(|| file.as_ref().map(|_| String::new()));
    let (Some(user), Some(text)) = (
        b["recipient"]["user_id"].as_str().map(str::to_owned),
        text_or_file,
    ) else {
        return ok(serde_json::json!({"error": -201, "message": "Parameters are invalid"}));
    };
    if file.is_none() && (text.is_empty() || text.chars().count() > 2000) {
        return ok(serde_json::json!({"error": -201, "message": "Text length is invalid"}));
    }
    let now = shared.now();
    let (quota_type, msg_id) = {
        let mut w = shared.world();
        let seq = w.next();
        let Some(u) = w.zalo_users.get_mut(&(oa.oa_id.clone(), user.clone())) else {
            return ok(
                serde_json::json!({"error": -213, "message": "User has not interacted with the OA"}),
            );
        };
        let elapsed = u
            .last_interaction
            .map_or(i64::MAX, |l| now.millis() - l.millis());
        if elapsed > 7 * DAY {
            return ok(
                serde_json::json!({"error": -230, "message": "User has not interacted with the OA in the past 7 days"}),
            );
        }
        let free = elapsed <= 2 * DAY && u.sent_since < 8;
        u.sent_since += 1;
        let q = if free { "reply" } else { "purchase_quota" };
        (q.to_owned(), format!("zout{seq:016x}"))
    };
    shared.world().zalo_sent.push(ZaloSent {
        oa_id: oa.oa_id.clone(),
        user_id: user.clone(),
        text: text.clone(),
        msg_id: msg_id.clone(),
        quota_type: quota_type.clone(),
        at: now,
        file: file.clone(),
    });
    if oa.echoes && file.is_none() {
        let s2 = shared.clone();
        let echo = serde_json::json!({"event_name": "oa_send_text", "sender": {"id": oa.oa_id}, "recipient": {"id": user},
            "message": {"text": text, "msg_id": msg_id}});
        let oa_id = oa.oa_id.clone();
        shared.spawn(async move {
            tokio::task::yield_now().await;
            if let Err(e) = zalo_deliver(&s2, &oa_id, echo).await {
                tracing::warn!(error = %e, "sandbox: zalo echo failed");
            }
        });
    }
    ok(
        serde_json::json!({"error": 0, "message": "Success", "data": {"message_id": msg_id, "user_id": user,
        "quota": {"quota_type": quota_type}}}),
    )
}

/// A consultation message's file (§4.2): the `media` template with an uploaded image's
/// `attachment_id`, or `file` with an uploaded file's `token`.
fn zalo_attachment(w: &World, a: &serde_json::Value) -> Option<(String, crate::media::Received)> {
    let p = &a["payload"];
    let (kind, handle) = match a["type"].as_str()? {
        "template" if p["template_type"] == "media" => {
            let e = p["elements"].as_array()?.first()?;
            (e["media_type"] == "image").then_some(())?;
            ("image", e["attachment_id"].as_str()?)
        }
        "file" => ("file", p["token"].as_str()?),
        _ => return None,
    };
    let f = w.uploads.get(&format!("zalo:{kind}:{handle}"))?;
    Some((kind.to_owned(), f.clone()))
}

/// `POST /v2.0/oa/upload/{image|file}` (§4.2), multipart with the file in `file`: an image
/// (jpg/png, at most 1 MB) answers an `attachment_id`, a file (PDF here; Zalo also takes
/// doc/docx, at most 5 MB) a `token` — Zalo's documented upload limits.
async fn zalo_upload(
    State(shared): State<Arc<Shared>>,
    Path(what): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    use crate::media::MB;
    let ok = |v| json(StatusCode::OK, v);
    if zalo_oa(&shared, &headers).is_none() {
        return ok(serde_json::json!({"error": -216, "message": "Access token is invalid"}));
    }
    let ct = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let Some(f) = crate::media::multipart_file(ct, &body, "file") else {
        return ok(serde_json::json!({"error": -201, "message": "File is missing"}));
    };
    let (max, types, key): (usize, &[&str], &str) = match what.as_str() {
        "image" => (MB, &["image/png", "image/jpeg"], "attachment_id"),
        "file" => (5 * MB, &["application/pdf"], "token"),
        _ => return ok(serde_json::json!({"error": -201, "message": "Unknown upload"})),
    };
    if f.size > max {
        return ok(serde_json::json!({"error": -201, "message": "File size exceeds the limit"}));
    }
    if !types.contains(&f.content_type.as_str()) {
        return ok(serde_json::json!({"error": -201, "message": "File type is not supported"}));
    }
    let mut w = shared.world();
    let handle = format!("z{what}{:08}", w.next());
    w.uploads.insert(format!("zalo:{what}:{handle}"), f);
    ok(serde_json::json!({"error": 0, "message": "Success", "data": {key: handle}}))
}

/// `POST /v4/oa/access_token` (§4.2): form fields, the app secret in `secret_key`, a single-use
/// refresh token that rotates on every call.
async fn zalo_refresh(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let ok = |v| json(StatusCode::OK, v);
    let form: HashMap<String, String> = String::from_utf8_lossy(&body)
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.to_owned(), percent_decode(v)))
        .collect();
    let secret = headers
        .get("secret_key")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let mut w = shared.world();
    let seq = w.next();
    let Some(oa) = w
        .zalo
        .values_mut()
        .find(|o| Some(&o.app_id) == form.get("app_id") && o.app_secret == secret)
    else {
        return ok(
            serde_json::json!({"error": -14002, "error_name": "Invalid app id or secret key"}),
        );
    };
    if form.get("grant_type").map(String::as_str) != Some("refresh_token")
        || form.get("refresh_token") != Some(&oa.refresh_token)
    {
        return ok(
            serde_json::json!({"error": -14014, "error_name": "Invalid refresh token",
            "error_description": "The refresh token is invalid or was used already"}),
        );
    }
    oa.access_token = format!("zat_{seq}");
    oa.refresh_token = format!("zrt_{seq}");
    let (access, refresh, id) = (
        oa.access_token.clone(),
        oa.refresh_token.clone(),
        oa.oa_id.clone(),
    );
    *w.zalo_refreshes.entry(id).or_default() += 1;
    ok(serde_json::json!({"access_token": access, "refresh_token": refresh, "expires_in": "90000"}))
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' if i + 2 < b.len() => {
                let hex = std::str::from_utf8(&b[i + 1..i + 3]).unwrap_or("");
                match u8::from_str_radix(hex, 16) {
                    Ok(v) => {
                        out.push(v);
                        i += 3;
                    }
                    Err(_) => {
                        out.push(b'%');
                        i += 1;
                    }
                }
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

// ------------------------------------------------------------------ Telegram

fn tg(status: StatusCode, description: &str) -> Response {
    json(
        status,
        serde_json::json!({"ok": false, "error_code": status.as_u16(), "description": description}),
    )
}

/// Marks a callback query answered; `false` when the bot never received it.
fn answer_callback(w: &mut World, token: &str, id: &str) -> bool {
    match w.tg.get_mut(token).and_then(|b| b.callbacks.get_mut(id)) {
        Some(answered) => {
            *answered = true;
            true
        }
        None => false,
    }
}

/// The most buttons one inline keyboard takes (the Bot API's limit; not in channels.md).
const TG_MAX_BUTTONS: usize = 100;

/// `reply_markup` checked as the Bot API does for an inline keyboard of callback buttons: rows
/// of buttons, each with a text and `callback_data` of 1-64 bytes (`BUTTON_DATA_INVALID`).
/// Other keyboards and button kinds are not emulated.
fn read_inline_keyboard(v: &serde_json::Value) -> Result<Vec<Vec<TgButton>>, &'static str> {
    if v.is_null() {
        return Ok(Vec::new());
    }
    let Some(rows) = v["inline_keyboard"].as_array() else {
        return Err("Bad Request: can't parse reply keyboard markup JSON object");
    };
    let mut count = 0;
    let mut keyboard = Vec::with_capacity(rows.len());
    for row in rows {
        let Some(buttons) = row.as_array() else {
            return Err(
                "Bad Request: can't parse inline keyboard button: Field \"inline_keyboard\" of the InlineKeyboardMarkup should be an Array of Arrays",
            );
        };
        count += buttons.len();
        if count > TG_MAX_BUTTONS {
            return Err("Bad Request: reply markup is too long");
        }
        let mut out = Vec::with_capacity(buttons.len());
        for b in buttons {
            let text = b["text"].as_str().unwrap_or("");
            if text.is_empty() {
                return Err("Bad Request: BUTTON_TEXT_INVALID");
            }
            let Some(data) = b["callback_data"].as_str() else {
                return Err("Bad Request: text buttons are unallowed in the inline keyboard");
            };
            if data.is_empty() || data.len() > 64 {
                return Err("Bad Request: BUTTON_DATA_INVALID");
            }
            out.push(TgButton {
                text: text.to_owned(),
                callback_data: data.to_owned(),
            });
        }
        keyboard.push(out);
    }
    Ok(keyboard)
}

/// `POST /bot<token>/<method>` (§5).
/// The file of a `send*` method (Bot API): here a URL, fetched as Telegram does — at most 5 MB
/// for photos (jpeg/png/webp) and 20 MB for other files; by URL `sendVideo` takes mp4,
/// `sendAudio` mp3/m4a and `sendDocument` PDF (or ZIP). A caption is 0-1024 characters.
async fn tg_file_of(
    http: &reqwest::Client,
    method: &str,
    b: &serde_json::Value,
) -> Result<Option<crate::media::Received>, Response> {
    use crate::media::MB;
    let (field, max, types): (&str, usize, &[&str]) = match method {
        "sendPhoto" => ("photo", 5 * MB, &["image/png", "image/jpeg", "image/webp"]),
        "sendVideo" => ("video", 20 * MB, &["video/mp4"]),
        "sendAudio" => ("audio", 20 * MB, &["audio/mpeg", "audio/mp4"]),
        "sendDocument" => ("document", 20 * MB, &["application/pdf"]),
        _ => return Ok(None),
    };
    if b["caption"]
        .as_str()
        .is_some_and(|c| c.chars().count() > 1024)
    {
        return Err(tg(
            StatusCode::BAD_REQUEST,
            "Bad Request: message caption is too long",
        ));
    }
    let Some(url) = b[field].as_str() else {
        return Err(tg(
            StatusCode::BAD_REQUEST,
            "Bad Request: there is no file in the request",
        ));
    };
    let f = crate::media::fetch(http, url, max).await.map_err(|_| {
        tg(
            StatusCode::BAD_REQUEST,
            "Bad Request: failed to get HTTP URL content",
        )
    })?;
    if !types.contains(&f.content_type.as_str()) {
        return Err(tg(
            StatusCode::BAD_REQUEST,
            "Bad Request: wrong type of the web page content",
        ));
    }
    Ok(Some(f))
}

async fn tg_method(
    State(shared): State<Arc<Shared>>,
    Path((bot, method)): Path<(String, String)>,
    body: Bytes,
) -> Response {
    let Some(token) = bot.strip_prefix("bot").map(str::to_owned) else {
        return tg(StatusCode::NOT_FOUND, "Not Found");
    };
    if !shared.world().tg.contains_key(&token) {
        return tg(StatusCode::UNAUTHORIZED, "Unauthorized");
    }
    let b: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
    let ok = |v| json(StatusCode::OK, serde_json::json!({"ok": true, "result": v}));
    match method.as_str() {
        "setWebhook" => {
            let url = b["url"].as_str().unwrap_or("");
            let secret = b["secret_token"].as_str().unwrap_or("");
            if !secret.is_empty() && !switchboard_channels::telegram::valid_secret_token(secret) {
                return tg(
                    StatusCode::BAD_REQUEST,
                    "Bad Request: secret token contains unallowed characters",
                );
            }
            let local = url.starts_with("http://127.0.0.1") || url.starts_with("http://localhost");
            if !url.starts_with("https://") && !local {
                return tg(
                    StatusCode::BAD_REQUEST,
                    "Bad Request: bad webhook: HTTPS url must be provided for webhook",
                );
            }
            // An empty or missing list keeps the previous setting, as Telegram does.
            let allowed: Option<Vec<String>> = b["allowed_updates"]
                .as_array()
                .filter(|l| !l.is_empty())
                .map(|l| {
                    l.iter()
                        .filter_map(|u| u.as_str().map(str::to_owned))
                        .collect()
                });
            if let Some(b) = shared.world().tg.get_mut(&token) {
                b.webhook = Some((url.to_owned(), secret.to_owned()));
                if allowed.is_some() {
                    b.allowed_updates = allowed;
                }
            }
            json(
                StatusCode::OK,
                serde_json::json!({"ok": true, "result": true, "description": "Webhook was set"}),
            )
        }
        "getMe" => {
            let id: i64 = token
                .split_once(':')
                .and_then(|(id, _)| id.parse().ok())
                .unwrap_or(0);
            ok(
                serde_json::json!({"id": id, "is_bot": true, "first_name": "Sandbox bot", "username": format!("sandbox_{id}_bot"), "can_join_groups": true}),
            )
        }
        "deleteWebhook" => {
            if let Some(b) = shared.world().tg.get_mut(&token) {
                b.webhook = None;
            }
            ok(serde_json::json!(true))
        }
        "getWebhookInfo" => {
            let url = shared
                .world()
                .tg
                .get(&token)
                .and_then(|b| b.webhook.as_ref().map(|w| w.0.clone()))
                .unwrap_or_default();
            ok(
                serde_json::json!({"url": url, "has_custom_certificate": false, "pending_update_count": 0}),
            )
        }
        // The user's profile (Bot API `getChat`): name, username, the photo's file ids.
        "getChat" => {
            let chat = match &b["chat_id"] {
                serde_json::Value::Number(n) => n.to_string(),
                serde_json::Value::String(s) => s.clone(),
                _ => String::new(),
            };
            let w = shared.world();
            let Some(p) = w.tg.get(&token).and_then(|bot| bot.profiles.get(&chat)) else {
                return tg(StatusCode::BAD_REQUEST, "Bad Request: chat not found");
            };
            let id: i64 = chat.parse().unwrap_or(0);
            let mut r = serde_json::json!({"id": id, "type": "private", "first_name": p.first_name,
                "accent_color_id": 0, "max_reaction_count": 11});
            if let Some(l) = &p.last_name {
                r["last_name"] = serde_json::json!(l);
            }
            if let Some(u) = &p.username {
                r["username"] = serde_json::json!(u);
            }
            if let Some(v) = p.photo {
                r["photo"] = serde_json::json!({"small_file_id": format!("AQADsmall{v}"), "small_file_unique_id": format!("AQADsu{v}"),
                    "big_file_id": format!("AQADbig{v}"), "big_file_unique_id": format!("AQADbu{v}")});
            }
            ok(r)
        }
        // Where a file is (`getFile`): only profile photos exist here.
        "getFile" => {
            let file_id = b["file_id"].as_str().unwrap_or("");
            if let Some(r) = tg_get_file(&shared, &token, file_id) {
                return r;
            }
            let w = shared.world();
            let photo = w.tg.get(&token).and_then(|bot| {
                bot.profiles.values().filter_map(|p| p.photo).find(|v| {
                    file_id == format!("AQADbig{v}") || file_id == format!("AQADsmall{v}")
                })
            });
            match photo {
                Some(v) => ok(
                    serde_json::json!({"file_id": file_id, "file_unique_id": format!("AQADbu{v}"),
                    "file_size": crate::PICTURE_PNG.len(), "file_path": format!("profile_photos/file_{v}.jpg")}),
                ),
                None => tg(StatusCode::BAD_REQUEST, "Bad Request: invalid file_id"),
            }
        }
        "getUpdates" => {
            let hooked = shared
                .world()
                .tg
                .get(&token)
                .is_some_and(|b| b.webhook.is_some());
            if hooked {
                return tg(
                    StatusCode::CONFLICT,
                    "Conflict: can't use getUpdates method while webhook is active; use deleteWebhook to delete the webhook first",
                );
            }
            ok(serde_json::json!([]))
        }
        "answerCallbackQuery" => {
            let id = b["callback_query_id"].as_str().unwrap_or("");
            if !answer_callback(&mut shared.world(), &token, id) {
                return tg(
                    StatusCode::BAD_REQUEST,
                    "Bad Request: query is too old and response timeout expired or query ID is invalid",
                );
            }
            ok(serde_json::json!(true))
        }
        "sendMessage" | "sendPhoto" | "sendVideo" | "sendAudio" | "sendDocument" => {
            if let Some(r) = take_fault(&shared, &token).await {
                return r;
            }
            let file = match tg_file_of(&shared.http, &method, &b).await {
                Ok(f) => f,
                Err(r) => return r,
            };
            let chat = match &b["chat_id"] {
                serde_json::Value::Number(n) => n.to_string(),
                serde_json::Value::String(s) => s.clone(),
                _ => return tg(StatusCode::BAD_REQUEST, "Bad Request: chat not found"),
            };
            let n = b["text"].as_str().map_or(0, |t| t.chars().count());
            if n == 0 && file.is_none() {
                return tg(
                    StatusCode::BAD_REQUEST,
                    "Bad Request: message text is empty",
                );
            }
            if n > 4096 {
                return tg(StatusCode::BAD_REQUEST, "Bad Request: message is too long");
            }
            let inline_keyboard = match read_inline_keyboard(&b["reply_markup"]) {
                Ok(k) => k,
                Err(description) => return tg(StatusCode::BAD_REQUEST, description),
            };
            let mut w = shared.world();
            let Some(bot) = w.tg.get_mut(&token) else {
                return tg(StatusCode::UNAUTHORIZED, "Unauthorized");
            };
            if bot.blocked.contains(&chat) {
                return tg(
                    StatusCode::FORBIDDEN,
                    "Forbidden: bot was blocked by the user",
                );
            }
            if !bot.started.contains(&chat) {
                return tg(
                    StatusCode::FORBIDDEN,
                    "Forbidden: bot can't initiate conversation with a user",
                );
            }
            bot.next_message += 1;
            let id = bot.next_message;
            let text = b["text"]
                .as_str()
                .or(b["caption"].as_str())
                .unwrap_or("")
                .to_owned();
            w.tg_sent.push(TgSent {
                token: token.clone(),
                chat_id: chat.clone(),
                text: text.clone(),
                message_id: id,
                inline_keyboard,
                file: file.map(|f| (method.clone(), f)),
            });
            let date = shared.now().millis() / 1000;
            ok(
                serde_json::json!({"message_id": id, "date": date, "chat": {"id": chat.parse::<i64>().unwrap_or(0), "type": "private"}, "text": text}),
            )
        }
        _ => tg(StatusCode::NOT_FOUND, "Not Found: method not found"),
    }
}

// ------------------------------------------------------------------ Shopee

#[derive(Deserialize)]
struct ShopeeQuery {
    partner_id: Option<String>,
    timestamp: Option<i64>,
    access_token: Option<String>,
    shop_id: Option<String>,
    sign: Option<String>,
}

fn shopee_error(status: StatusCode, e: &str, m: &str) -> Response {
    json(
        status,
        serde_json::json!({"request_id": "sbreq", "error": e, "message": m}),
    )
}

/// The shop a v2 shop call is for, once its partner, signature (over `path`) and access token
/// check out; else Shopee's refusal.
fn shopee_shop(
    shared: &Shared,
    q: &ShopeeQuery,
    path: &str,
) -> Result<ShopeeShopSpec, Box<Response>> {
    let shop = q
        .shop_id
        .as_ref()
        .and_then(|s| shared.world().shopee.get(s).cloned());
    let Some(shop) = shop.filter(|s| q.partner_id.as_deref() == Some(s.partner_id.as_str())) else {
        return Err(Box::new(shopee_error(
            StatusCode::FORBIDDEN,
            "error_param",
            "Invalid partner_id or shop_id.",
        )));
    };
    let want = shopee::api_sign(
        &shop.partner_key,
        &shop.partner_id,
        path,
        q.timestamp.unwrap_or(0),
        q.access_token.as_deref().unwrap_or(""),
        &shop.shop_id,
    );
    if q.sign.as_deref() != Some(want.as_str()) {
        return Err(Box::new(shopee_error(
            StatusCode::FORBIDDEN,
            "error_sign",
            "Wrong sign.",
        )));
    }
    if q.access_token.as_deref() != Some(shop.access_token.as_str()) {
        return Err(Box::new(shopee_error(
            StatusCode::FORBIDDEN,
            "invalid_access_token",
            "Invalid access_token.",
        )));
    }
    Ok(shop)
}

/// `POST /api/v2/sellerchat/upload_image` with the v2 signature (§6), multipart with the image
/// in `file` (png/jpeg, at most 10 MB as integrators report Shopee's limit): answers the URL a
/// `send_message` of type `image` carries.
async fn shopee_upload(
    State(shared): State<Arc<Shared>>,
    Query(q): Query<ShopeeQuery>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let shop = match shopee_shop(&shared, &q, shopee::UPLOAD_IMAGE_PATH) {
        Ok(s) => s,
        Err(r) => return *r,
    };
    let ct = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let bad = |m| shopee_error(StatusCode::BAD_REQUEST, "error_param", m);
    let Some(f) = crate::media::multipart_file(ct, &body, "file") else {
        return bad("Missing file.");
    };
    if f.size > 10 * crate::media::MB {
        return bad("Image size exceeds the limit.");
    }
    if !["image/png", "image/jpeg"].contains(&f.content_type.as_str()) {
        return bad("Unsupported image type.");
    }
    let mut w = shared.world();
    let seq = w.next();
    let url = format!("https://cf.shopee.sandbox/file/{}_{seq}", shop.shop_id);
    w.uploads.insert(format!("shopee:{url}"), f);
    json(
        StatusCode::OK,
        serde_json::json!({"request_id": format!("sbreq{seq}"), "error": "", "message": "",
            "response": {"url": url, "thumbnail": url}}),
    )
}

/// `POST /api/v2/sellerchat/send_message` with the v2 signature (§6).
async fn shopee_send(
    State(shared): State<Arc<Shared>>,
    Query(q): Query<ShopeeQuery>,
    body: Bytes,
) -> Response {
    let err = shopee_error;
    let shop = match shopee_shop(&shared, &q, shopee::SEND_MESSAGE_PATH) {
        Ok(s) => s,
        Err(r) => return *r,
    };
    let ts = q.timestamp.unwrap_or(0);
    if (shared.now().millis() / 1000 - ts).abs() > 300 {
        return err(
            StatusCode::FORBIDDEN,
            "error_param",
            "Timestamp is expired.",
        );
    }
    if let Some(r) = take_fault(&shared, &shop.shop_id).await {
        return r;
    }
    let b: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
    let to = b["to_id"].to_string().trim_matches('"').to_owned();
    let text = b["content"]["text"].as_str().unwrap_or("").to_owned();
    let mut w = shared.world();
    let image = match b["message_type"].as_str() {
        Some("image") => {
            let url = b["content"]["image_url"].as_str().unwrap_or("");
            match w.uploads.get(&format!("shopee:{url}")) {
                Some(f) => Some(f.clone()),
                None => {
                    return err(StatusCode::BAD_REQUEST, "error_param", "Invalid image_url.");
                }
            }
        }
        _ => None,
    };
    if (image.is_none() && (b["message_type"] != "text" || text.is_empty())) || to == "null" {
        return err(StatusCode::BAD_REQUEST, "error_param", "Invalid message.");
    }
    let seq = w.next();
    let message_id = format!("21{seq:016}");
    w.shopee_sent.push(ShopeeSent {
        shop_id: shop.shop_id.clone(),
        to_id: to.clone(),
        text: text.clone(),
        message_id: message_id.clone(),
        image,
    });
    json(
        StatusCode::OK,
        serde_json::json!({"request_id": format!("sbreq{seq}"), "error": "", "message": "",
            "response": {"to_id": to.parse::<i64>().unwrap_or(0), "message_id": message_id, "message_type": "text",
                "content": {"text": text}, "conversation_id": format!("77{to}"), "created_timestamp": shared.now().millis() / 1000}}),
    )
}

// ------------------------------------------------------------------ control API (demo, standalone)

#[derive(Deserialize)]
struct ControlMessage {
    channel: String,
    /// The number (`phone_number_id`), OA (`oa_id`), bot token or shop id.
    account: String,
    /// The customer: `wa_id`, Zalo user id, Telegram chat id, Shopee buyer id.
    customer: String,
    #[serde(default)]
    name: String,
    text: String,
}

async fn control_message(
    State(shared): State<Arc<Shared>>,
    axum::Json(b): axum::Json<ControlMessage>,
) -> Response {
    let sb = ChannelSandbox {
        shared,
        addr: SocketAddr::from(([127, 0, 0, 1], 0)),
    };
    let r = match b.channel.as_str() {
        "whatsapp" => sb
            .whatsapp_customer(
                &b.account,
                Some(&b.customer),
                None,
                &b.name,
                serde_json::json!({"type": "text", "text": {"body": b.text}}),
            )
            .await
            .map(|(s, id)| serde_json::json!({"webhook_status": s, "id": id})),
        "zalo" => sb
            .zalo_user_text(&b.account, &b.customer, &b.text)
            .await
            .map(|(s, id)| serde_json::json!({"webhook_status": s, "id": id})),
        "telegram" => sb
            .telegram_user_text(
                &b.account,
                b.customer.parse().unwrap_or(0),
                &b.name,
                &b.text,
            )
            .await
            .map(|(s, u, id)| serde_json::json!({"webhook_status": s, "update_id": u, "id": id})),
        "shopee" => sb
            .shopee_buyer_text(
                &b.account,
                b.customer.parse().unwrap_or(0),
                &b.name,
                &b.text,
            )
            .await
            .map(|(s, id)| serde_json::json!({"webhook_status": s, "id": id})),
        _ => Err(anyhow::anyhow!(
            "channel: whatsapp, zalo, telegram or shopee"
        )),
    };
    match r {
        Ok(v) => json(StatusCode::OK, v),
        Err(e) => (StatusCode::BAD_REQUEST, e.to_string()).into_response(),
    }
}

async fn control_sent(State(shared): State<Arc<Shared>>) -> Response {
    let w = shared.world();
    json(
        StatusCode::OK,
        serde_json::json!({
            "whatsapp": w.wa_sent.iter().map(|s| serde_json::json!({"phone_number_id": s.phone_number_id, "to": s.to, "type": s.kind, "wamid": s.wamid, "at": s.at})).collect::<Vec<_>>(),
            "zalo": w.zalo_sent.iter().map(|s| serde_json::json!({"oa_id": s.oa_id, "user_id": s.user_id, "text": s.text, "quota_type": s.quota_type})).collect::<Vec<_>>(),
            "telegram": w.tg_sent.iter().map(|s| serde_json::json!({"chat_id": s.chat_id, "text": s.text, "message_id": s.message_id,
                "inline_keyboard": s.inline_keyboard.iter().map(|row| row.iter()
                    .map(|b| serde_json::json!({"text": b.text, "callback_data": b.callback_data})).collect::<Vec<_>>()).collect::<Vec<_>>()})).collect::<Vec<_>>(),
            "shopee": w.shopee_sent.iter().map(|s| serde_json::json!({"shop_id": s.shop_id, "to_id": s.to_id, "text": s.text})).collect::<Vec<_>>(),
        }),
    )
}

fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/v3.0/oa/user/detail", get(zalo_user_detail))
        .route("/_sandbox/pictures/{name}", get(sandbox_picture))
        .route("/_sandbox/cdn/{name}", get(cdn_media))
        .route("/_sandbox/wa-media/{id}", get(wa_media_download))
        .route("/file/{bot}/{*path}", get(tg_file))
        .route("/{version}/{id}/messages", post(wa_send))
        .route("/{version}/{id}/message_templates", get(wa_templates))
        .route("/v3.0/oa/message/{kind}", post(zalo_send))
        .route("/v4/oa/access_token", post(zalo_refresh))
        .route("/api/v2/sellerchat/send_message", post(shopee_send))
        .route("/api/v2/sellerchat/upload_image", post(shopee_upload))
        .route("/v2.0/oa/upload/{what}", post(zalo_upload))
        .route("/_sandbox/messages", post(control_message))
        .route("/_sandbox/sent", get(control_sent))
        .route("/v2.0/oa/getoa", get(zalo_getoa))
        .route("/api/v2/shop/get_shop_info", get(shopee_shop_info))
        .route("/{bot}/{method}", post(tg_method).get(wa_number))
        // Uploads up to the providers' own limits (axum's default is 2 MB).
        .layer(axum::extract::DefaultBodyLimit::max(128 * 1024 * 1024))
        .with_state(shared)
}

// -------------------------------------------------------------- customers' files

/// The Bot API's download limit: `getFile` refuses larger files.
const TG_DOWNLOAD_LIMIT: usize = 20 * 1024 * 1024;

/// A file a customer sent, as the provider holds it.
#[derive(Debug, Clone, Default)]
struct SbMedia {
    bytes: Bytes,
    content_type: String,
    /// A WhatsApp media id: `GET /{media-id}` with a number's token says where it is, and its
    /// download needs that token too.
    whatsapp: bool,
    /// A Telegram file id of this bot: `getFile` says where it is.
    telegram_bot: Option<String>,
    /// Downloads still to fail (500) before one succeeds.
    fail: u32,
    downloads: u32,
}

impl ChannelSandbox {
    fn add_media(&self, name: &str, m: SbMedia) {
        self.shared.world().media.insert(name.to_owned(), m);
    }

    /// A file on the provider's CDN (Messenger, Instagram, Zalo): its URL.
    pub fn add_cdn_media(&self, name: &str, bytes: Vec<u8>, content_type: &str) -> String {
        let m = SbMedia {
            bytes: bytes.into(),
            content_type: content_type.into(),
            ..SbMedia::default()
        };
        self.add_media(name, m);
        format!("{}/_sandbox/cdn/{name}", self.base_url())
    }

    /// A WhatsApp media id (§3.1: `GET /{media-id}`, then a download with the Bearer token).
    pub fn add_whatsapp_media(&self, media_id: &str, bytes: Vec<u8>, content_type: &str) {
        let m = SbMedia {
            bytes: bytes.into(),
            content_type: content_type.into(),
            whatsapp: true,
            ..SbMedia::default()
        };
        self.add_media(media_id, m);
    }

    /// A Telegram file id of the bot (`getFile`, then `/file/bot<token>/<file_path>`).
    pub fn add_telegram_file(
        &self,
        token: &str,
        file_id: &str,
        bytes: Vec<u8>,
        content_type: &str,
    ) {
        let m = SbMedia {
            bytes: bytes.into(),
            content_type: content_type.into(),
            telegram_bot: Some(token.into()),
            ..SbMedia::default()
        };
        self.add_media(file_id, m);
    }

    /// The next `times` downloads of the file fail with a 500.
    pub fn fail_media(&self, name: &str, times: u32) {
        if let Some(m) = self.shared.world().media.get_mut(name) {
            m.fail = times;
        }
    }

    /// The file's downloads that succeeded.
    pub fn media_downloads(&self, name: &str) -> u32 {
        self.shared
            .world()
            .media
            .get(name)
            .map_or(0, |m| m.downloads)
    }
}

/// The file's bytes, or a 500 while it is set to fail.
fn serve_media(shared: &Shared, name: &str) -> Response {
    let mut w = shared.world();
    let Some(m) = w.media.get_mut(name) else {
        return (StatusCode::NOT_FOUND, "not found").into_response();
    };
    if m.fail > 0 {
        m.fail -= 1;
        return (StatusCode::INTERNAL_SERVER_ERROR, "temporarily unavailable").into_response();
    }
    m.downloads += 1;
    ([("content-type", m.content_type.clone())], m.bytes.clone()).into_response()
}

/// `GET /_sandbox/cdn/{name}`: a CDN URL (no token).
async fn cdn_media(State(shared): State<Arc<Shared>>, Path(name): Path<String>) -> Response {
    serve_media(&shared, &name)
}

/// `GET /{version}/{media-id}` (the token was checked): where the media is.
fn wa_media_info(shared: &Shared, id: &str, m: &SbMedia) -> Response {
    let base = shared
        .base
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .clone();
    json(
        StatusCode::OK,
        serde_json::json!({"messaging_product": "whatsapp", "url": format!("{base}/_sandbox/wa-media/{id}"),
            "mime_type": m.content_type, "sha256": "", "file_size": m.bytes.len(), "id": id}),
    )
}

/// The WhatsApp media download: only with a number's Bearer token.
async fn wa_media_download(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let token = bearer(&headers);
    let known = shared
        .world()
        .wa
        .values()
        .any(|n| Some(n.token.as_str()) == token.as_deref());
    if !known {
        return graph_error(StatusCode::UNAUTHORIZED, 190, "Invalid OAuth access token");
    }
    serve_media(&shared, &id)
}

/// `getFile` of a customer's file: its path, or "file is too big" past the Bot API's limit.
fn tg_get_file(shared: &Shared, token: &str, file_id: &str) -> Option<Response> {
    let w = shared.world();
    let m = w
        .media
        .get(file_id)
        .filter(|m| m.telegram_bot.as_deref() == Some(token))?;
    if m.bytes.len() > TG_DOWNLOAD_LIMIT {
        return Some(tg(StatusCode::BAD_REQUEST, "Bad Request: file is too big"));
    }
    Some(json(
        StatusCode::OK,
        serde_json::json!({"ok": true, "result": {"file_id": file_id, "file_unique_id": format!("u{file_id}"),
            "file_size": m.bytes.len(), "file_path": format!("documents/{file_id}")}}),
    ))
}

/// `GET /file/bot<token>/documents/<file>`.
fn tg_download(shared: &Shared, token: &str, file_id: &str) -> Response {
    let mine = shared
        .world()
        .media
        .get(file_id)
        .is_some_and(|m| m.telegram_bot.as_deref() == Some(token));
    if !mine {
        return tg(StatusCode::NOT_FOUND, "Not Found");
    }
    serve_media(shared, file_id)
}

#[cfg(test)]
mod tests {
    #[test]
    fn percent_decoding_and_placeholders() {
        assert_eq!(super::percent_decode("a%20b%2Bc+d"), "a b+c d");
        assert_eq!(super::percent_decode("100%"), "100%");
        assert_eq!(super::placeholder_count("Hi {{1}}, order {{2}} {{1}}"), 2);
    }
}
