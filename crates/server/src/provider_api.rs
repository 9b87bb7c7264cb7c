//! Calls to the providers' APIs: the outbox's send for every provider of the registry (the
//! provider builds the call and reads the answer; with refresh tokens, one refresh on an expired
//! token, then one retry), profile fetches, Meta's Graph calls for comment actions, Telegram's
//! `setWebhook` and the WhatsApp template sync. Calls are built by `switchboard_channels`; this
//! module only moves bytes and keeps single-use refresh tokens consistent.
//!
//! Tokens travel in headers (or, for Telegram's and Shopee's APIs, in the URL they require) and
//! are never logged.

use crate::clock::Clock;
use crate::error::{ApiError, ApiResult};
use crate::inbox_settings::{api_base_url, setting};
use axum::http::StatusCode;
use futures_util::StreamExt;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use switchboard_channels::meta::{self, Failure, Profile, network_failure};
use switchboard_channels::provider::{
    ApiAnswer, ApiBody, ApiCall, NotSent, Outgoing, PictureSource, Provider, Sent,
};
use switchboard_channels::{telegram, whatsapp};
use switchboard_core::billing::Tariff;
use switchboard_core::{Inbox, InboxId, Timestamp};
use switchboard_store::{OutboxRow, Store, StoredTemplate};

/// The provider clients and what they share: one HTTP client (with the configured timeout), the
/// store (tokens, reachability, templates), the clock and our public URL (webhooks we register).
pub struct Providers {
    /// WhatsApp prices (configuration).
    pub tariff: Tariff,
    http: reqwest::Client,
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    public_url: String,
    /// Signed links to our files, for providers that fetch what we send.
    pub links: crate::media_links::MediaLinks,
    /// The stored files (uploads to providers read them from here).
    media: crate::media_store::MediaStore,
    /// One token refresh at a time per inbox (refresh tokens are single use).
    token_locks: Mutex<HashMap<InboxId, Arc<tokio::sync::Mutex<()>>>>,
}

/// What the setup's connection test found (`POST /inboxes/{id}/check`).
#[derive(Debug, Clone, serde::Serialize)]
pub struct ConnectionCheck {
    pub ok: bool,
    /// The account as the provider names it (the Page, the bot, the OA, the number, the shop).
    pub account_name: Option<String>,
    /// Why not: `credentials_refused`, `account_mismatch`, `credentials_missing`,
    /// `provider_unreachable`, `provider_error`, `not_supported`.
    pub reason: Option<&'static str>,
    pub checked_at: Timestamp,
}

/// A request body.
enum Body<'a> {
    None,
    Json(&'a serde_json::Value),
    Form(&'a [(&'a str, &'a str)]),
    /// `multipart/form-data`, already encoded, with its boundary.
    Multipart(Vec<u8>, &'a str),
}

/// A provider's HTTP answer.
struct Raw {
    status: u16,
    retry_after: Option<String>,
    usage: Option<String>,
    body: Vec<u8>,
}

impl Raw {
    fn answer(&self) -> ApiAnswer<'_> {
        ApiAnswer {
            status: self.status,
            body: &self.body,
            retry_after: self.retry_after.as_deref(),
            usage: self.usage.as_deref(),
        }
    }
}

fn fail(reason: &'static str) -> Failure {
    Failure {
        retry: false,
        reason,
        retry_after_ms: None,
        code: None,
        subcode: None,
    }
}

fn form_encode(pairs: &[(&str, &str)]) -> String {
    fn enc(s: &str) -> String {
        s.bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                    (b as char).to_string()
                }
                _ => format!("%{b:02X}"),
            })
            .collect()
    }
    pairs
        .iter()
        .map(|(k, v)| format!("{}={}", enc(k), enc(v)))
        .collect::<Vec<_>>()
        .join("&")
}

/// The origin (`scheme://host[:port]`) of a URL.
fn origin(url: &str) -> &str {
    let after = url.find("://").map_or(0, |i| i + 3);
    match url[after..].find('/') {
        Some(i) => &url[..after + i],
        None => url,
    }
}

/// Installs rustls' ring provider once (reqwest is built without a default provider).
pub fn tls_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// The HTTP client every provider call uses (with the configured timeout).
pub fn http_client(timeout_ms: u64) -> anyhow::Result<reqwest::Client> {
    tls_provider();
    Ok(reqwest::Client::builder()
        .timeout(Duration::from_millis(timeout_ms.max(1)))
        .connect_timeout(Duration::from_millis(timeout_ms.clamp(1, 10_000)))
        .build()?)
}

/// The outcome of one Graph API call.
pub enum Answer {
    Ok(serde_json::Value),
    Failed(Failure),
}

/// The failure reason of a request that was sent but whose answer never came (the provider may
/// have accepted it).
pub const RESPONSE_LOST: &str = "response_lost";

/// A failed request: refused before it left (safe to retry), or sent with no answer (ambiguous:
/// the provider may have accepted it).
pub fn transport_failure(e: &reqwest::Error) -> Failure {
    if e.is_connect() || e.is_builder() {
        meta::network_failure()
    } else {
        Failure {
            retry: true,
            reason: RESPONSE_LOST,
            retry_after_ms: None,
            code: None,
            subcode: None,
        }
    }
}

impl Providers {
    pub fn new(
        tariff: Tariff,
        http: reqwest::Client,
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
        public_url: String,
        links: crate::media_links::MediaLinks,
        media: crate::media_store::MediaStore,
    ) -> Self {
        Self {
            tariff,
            http,
            store,
            clock,
            public_url,
            links,
            media,
            token_locks: Mutex::new(HashMap::new()),
        }
    }

    /// One Graph API call with the inbox's token (as a Bearer header, never in the URL).
    pub async fn graph(
        &self,
        inbox: &Inbox,
        method: &str,
        url: &str,
        body: Option<&serde_json::Value>,
    ) -> Answer {
        let Some(token) = crate::meta::token(inbox) else {
            return Answer::Failed(Failure {
                retry: false,
                reason: "token_expired",
                retry_after_ms: None,
                code: None,
                subcode: None,
            });
        };
        let m = reqwest::Method::from_bytes(method.as_bytes()).unwrap_or(reqwest::Method::POST);
        let mut req = self.http.request(m, url).bearer_auth(token);
        if let Some(b) = body {
            req = req.json(b);
        }
        let resp = match req.send().await {
            Ok(r) => r,
            Err(e) => return Answer::Failed(transport_failure(&e)),
        };
        let status = resp.status().as_u16();
        let header = |n: &str| {
            resp.headers()
                .get(n)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        let (retry_after, buc) = (header("retry-after"), header("x-business-use-case-usage"));
        let bytes = match resp.bytes().await {
            Ok(b) => b,
            Err(e) => return Answer::Failed(transport_failure(&e)),
        };
        if (200..300).contains(&status) {
            return Answer::Ok(serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null));
        }
        Answer::Failed(meta::classify_error(
            status,
            &bytes,
            retry_after.as_deref(),
            buc.as_deref(),
        ))
    }

    async fn call(
        &self,
        method: reqwest::Method,
        url: &str,
        headers: &[(&str, &str)],
        body: Body<'_>,
    ) -> Result<Raw, Failure> {
        let mut req = self.http.request(method, url);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        req = match body {
            Body::None => req,
            Body::Json(v) => req.json(v),
            Body::Form(pairs) => req
                .header("content-type", "application/x-www-form-urlencoded")
                .body(form_encode(pairs)),
            Body::Multipart(bytes, boundary) => req
                .header(
                    "content-type",
                    format!("multipart/form-data; boundary={boundary}"),
                )
                .body(bytes),
        };
        let resp = req.send().await.map_err(|e| transport_failure(&e))?;
        let status = resp.status().as_u16();
        let header = |n: &str| {
            resp.headers()
                .get(n)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        let (retry_after, usage) = (header("retry-after"), header("x-business-use-case-usage"));
        let body = resp
            .bytes()
            .await
            .map_err(|e| transport_failure(&e))?
            .to_vec();
        Ok(Raw {
            status,
            retry_after,
            usage,
            body,
        })
    }

    /// Makes one call a provider built (its tokens stay in the headers or, where the provider's
    /// API requires it, the URL; neither is logged).
    async fn call_api(&self, c: &ApiCall) -> Result<Raw, Failure> {
        self.call_with_file(c, None).await
    }

    /// [`Providers::call_api`], with the row's file for a multipart body.
    async fn call_with_file(
        &self,
        c: &ApiCall,
        file: Option<(&switchboard_channels::provider::OutFile, uuid::Uuid)>,
    ) -> Result<Raw, Failure> {
        let method =
            reqwest::Method::from_bytes(c.method.as_bytes()).unwrap_or(reqwest::Method::POST);
        let headers: Vec<(&str, &str)> = c.headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let form: Vec<(&str, &str)>;
        let boundary = format!("switchboard-{}", uuid::Uuid::now_v7().simple());
        let body = match &c.body {
            ApiBody::None => Body::None,
            ApiBody::Json(v) => Body::Json(v),
            ApiBody::Form(pairs) => {
                form = pairs.iter().map(|(k, v)| (*k, v.as_str())).collect();
                Body::Form(&form)
            }
            ApiBody::Multipart { fields, file_field } => {
                let (file, id) = file.ok_or_else(|| fail("file_missing"))?;
                let bytes = self
                    .multipart(fields, file_field, file, id, &boundary)
                    .await?;
                Body::Multipart(bytes, &boundary)
            }
        };
        self.call(method, &c.url, &headers, body).await
    }

    /// A multipart body with the stored file streamed from the media store straight into it
    /// (the file is in memory once, never twice).
    async fn multipart(
        &self,
        fields: &[(&'static str, String)],
        file_field: &str,
        file: &switchboard_channels::provider::OutFile,
        id: uuid::Uuid,
        boundary: &str,
    ) -> Result<Vec<u8>, Failure> {
        let mut head = String::new();
        for (k, v) in fields {
            head.push_str(&format!(
                "--{boundary}\r\ncontent-disposition: form-data; name=\"{k}\"\r\n\r\n{v}\r\n"
            ));
        }
        let name: String = file
            .filename
            .chars()
            .map(|c| if c == '"' || c.is_control() { '_' } else { c })
            .collect();
        head.push_str(&format!(
            "--{boundary}\r\ncontent-disposition: form-data; name=\"{file_field}\"; filename=\"{name}\"\r\ncontent-type: {}\r\n\r\n",
            file.content_type
        ));
        let tail = format!("\r\n--{boundary}--\r\n");
        let mut stored = self
            .media
            .get(&id.to_string())
            .await
            .map_err(|_| fail("file_missing"))?;
        let size = usize::try_from(stored.size).unwrap_or(0);
        let mut body = Vec::with_capacity(head.len() + size + tail.len());
        body.extend_from_slice(head.as_bytes());
        while let Some(chunk) = stored.stream.next().await {
            body.extend_from_slice(&chunk.map_err(|_| network_failure())?);
        }
        body.extend_from_slice(tail.as_bytes());
        Ok(body)
    }

    /// The file an outbox row sends (an upload to Switchboard), with a fresh signed link.
    async fn out_file(
        &self,
        row: &OutboxRow,
        now: Timestamp,
    ) -> Result<Option<(switchboard_channels::provider::OutFile, uuid::Uuid)>, Failure> {
        let Some(id) = row.request["file"]["attachment_id"]
            .as_str()
            .and_then(|s| uuid::Uuid::parse_str(s).ok())
        else {
            return Ok(None);
        };
        let a = match self.store.attachment(id).await {
            Ok(Some(a)) => a,
            Ok(None) => return Err(fail("file_missing")),
            Err(_) => return Err(network_failure()),
        };
        let file = switchboard_channels::provider::OutFile {
            url: self.links.url(id, now),
            filename: a.filename,
            content_type: a.content_type,
            size: u64::try_from(a.size_bytes).unwrap_or(0),
        };
        Ok(Some((file, id)))
    }

    /// Sends one outbox row through its inbox's provider: one call, its answer read by the
    /// provider; with an expired access token (providers with refresh tokens), one refresh and one
    /// more try. A customer who blocked the business is marked unreachable.
    pub async fn send(
        &self,
        inbox: &Inbox,
        row: &OutboxRow,
        now: Timestamp,
    ) -> Result<Sent, Failure> {
        let p = switchboard_channels::for_channel(inbox.channel)
            .ok_or_else(|| fail("not_supported"))?;
        let file = self.out_file(row, now).await?;
        let out = Outgoing {
            job: row.job,
            request: &row.request,
            message_id: row.message_id,
            file: file.as_ref().map(|(f, _)| f),
            uploaded: None,
        };
        let mut inbox = if p.refreshes_tokens() {
            self.fresh_token(p, inbox.id, None, now).await?
        } else {
            inbox.clone()
        };
        let mut handle: Option<serde_json::Value> = None;
        for attempt in 0..2 {
            // Providers that take files by upload: upload first (once), then send with its handle.
            if handle.is_none()
                && let Some(call) = p.upload_call(&inbox, &out, now)
            {
                let file = file.as_ref().map(|(f, id)| (f, *id));
                // An upload sends no message: an upload whose answer was lost is safe to retry.
                let r = self
                    .call_with_file(&call?, file)
                    .await
                    .map_err(|f| match f.reason {
                        RESPONSE_LOST => network_failure(),
                        _ => f,
                    })?;
                match p.uploaded(&r.answer()) {
                    Ok(h) => handle = Some(h),
                    Err(NotSent::TokenExpired) if attempt == 0 && p.refreshes_tokens() => {
                        let stale = p.access_token(&inbox).map(str::to_owned);
                        inbox = self.fresh_token(p, inbox.id, stale.as_deref(), now).await?;
                        continue;
                    }
                    Err(NotSent::TokenExpired) => return Err(fail("token_expired")),
                    Err(NotSent::Failed(f)) => return Err(f),
                }
            }
            let out = Outgoing {
                uploaded: handle.as_ref(),
                ..out
            };
            let call = p.send_call(&inbox, &out, now)?;
            let r = self.call_api(&call).await?;
            match p.sent(&out, &r.answer()) {
                Ok(sent) => {
                    if let Some(patch) = &sent.meta
                        && let Err(e) = self
                            .store
                            .merge_message_meta(row.message_id, patch.clone(), now)
                            .await
                    {
                        tracing::warn!(error = %e, "outbox: recording what the provider said failed");
                    }
                    return Ok(sent);
                }
                Err(NotSent::TokenExpired) if attempt == 0 && p.refreshes_tokens() => {
                    let stale = p.access_token(&inbox).map(str::to_owned);
                    inbox = self.fresh_token(p, inbox.id, stale.as_deref(), now).await?;
                }
                Err(NotSent::TokenExpired) => return Err(fail("token_expired")),
                Err(NotSent::Failed(f)) => {
                    if f.reason == "user_blocked" {
                        self.blocked(&inbox, row, now).await;
                    }
                    return Err(f);
                }
            }
        }
        Err(fail("token_expired"))
    }

    /// The customer of an outbox row blocked the business: they cannot be messaged until they
    /// write again.
    async fn blocked(&self, inbox: &Inbox, row: &OutboxRow, now: Timestamp) {
        let customer = match self.store.conversation(row.conversation_id).await {
            Ok(Some(c)) => self.store.identities_in(c.contact_id, inbox.id).await.ok(),
            _ => None,
        };
        let Some(id) = customer.and_then(|ids| ids.into_iter().next()) else {
            return;
        };
        if let Err(e) = self
            .store
            .set_reachability(inbox.id, &id, Some("user_blocked"), now)
            .await
        {
            tracing::warn!(error = %e, "recording a blocked customer failed");
        }
    }

    fn token_lock(&self, inbox: InboxId) -> Arc<tokio::sync::Mutex<()>> {
        let mut m = self
            .token_locks
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        m.entry(inbox).or_default().clone()
    }

    /// The inbox with a usable access token: refreshed when it has expired, or when `stale` (a
    /// token the provider just refused) is still the current one. Refresh tokens are single use:
    /// one refresh at a time per inbox here, and a compare-and-set on it in the store (another
    /// node may have refreshed first: then its new token is used).
    async fn fresh_token(
        &self,
        p: &dyn Provider,
        inbox_id: InboxId,
        stale: Option<&str>,
        now: Timestamp,
    ) -> Result<Inbox, Failure> {
        let lock = self.token_lock(inbox_id);
        let _held = lock.lock().await;
        let inbox = self.inbox(inbox_id).await?;
        match (p.access_token(&inbox), stale) {
            (Some(c), Some(s)) if c != s => return Ok(inbox),
            (Some(_), None) if !p.token_expired(&inbox, now) => return Ok(inbox),
            _ => {}
        }
        let (Some(call), Some(old)) = (p.refresh_call(&inbox), setting(&inbox, "refresh_token"))
        else {
            return Err(fail("token_expired"));
        };
        // No message was sent by this call: whatever happened, the send may be tried again.
        let r = self.call_api(&call).await.map_err(|_| network_failure())?;
        let Some(settings) = p.refreshed(&inbox, &r.answer(), now) else {
            tracing::warn!(inbox_id = %inbox_id, status = r.status, "token refresh refused");
            return Err(fail("token_expired"));
        };
        match self
            .store
            .replace_settings_if(inbox_id, "refresh_token", old, &settings)
            .await
        {
            Ok(true) => {
                tracing::info!(inbox_id = %inbox_id, "access token refreshed");
                Ok(Inbox { settings, ..inbox })
            }
            // Someone else rotated it in between: use theirs.
            Ok(false) => self.inbox(inbox_id).await,
            Err(e) => {
                tracing::error!(error = %e, "storing refreshed tokens failed");
                Err(network_failure())
            }
        }
    }

    async fn inbox(&self, id: InboxId) -> Result<Inbox, Failure> {
        self.store
            .inbox(id)
            .await
            .ok()
            .flatten()
            .ok_or_else(|| fail("inbox_missing"))
    }

    /// A customer's name and picture from the provider's profile API (a Zalo token that has
    /// expired is refreshed first, as a send would).
    pub async fn profile(&self, inbox: &Inbox, customer: &str) -> Result<Profile, Failure> {
        let p = switchboard_channels::for_channel(inbox.channel)
            .ok_or_else(|| fail("not_supported"))?;
        let inbox = if p.refreshes_tokens() {
            self.fresh_token(p, inbox.id, None, self.clock.now())
                .await?
        } else {
            inbox.clone()
        };
        let call = p
            .profile_call(&inbox, customer)
            .ok_or_else(|| fail("not_supported"))?;
        let r = self.call_api(&call).await?;
        p.profile(&inbox, &r.answer())
            .ok_or_else(|| meta::classify_error(r.status, &r.body, r.retry_after.as_deref(), None))
    }

    /// Where a customer's picture is downloaded from (Telegram: `getFile` first). The URL may
    /// carry a token: never logged.
    pub async fn picture_url(
        &self,
        inbox: &Inbox,
        source: &PictureSource,
    ) -> Result<String, Failure> {
        match source {
            PictureSource::Url(u) => Ok(u.clone()),
            PictureSource::File(id) => {
                let p = switchboard_channels::for_channel(inbox.channel)
                    .ok_or_else(|| fail("not_supported"))?;
                let call = p
                    .picture_call(inbox, id)
                    .ok_or_else(|| fail("not_supported"))?;
                let r = self.call_api(&call).await?;
                p.picture_url(inbox, &r.answer())
                    .ok_or_else(|| fail("picture_unavailable"))
            }
        }
    }

    /// The request that downloads a customer's file: its CDN URL as is, or (WhatsApp media ids,
    /// Telegram file ids) what the provider's lookup answers (its URL and headers may carry the
    /// token: never logged).
    pub async fn media_request(
        &self,
        inbox: &Inbox,
        source: &switchboard_core::inbound_media::Source,
    ) -> Result<ApiCall, Failure> {
        use switchboard_core::inbound_media::{Source, is_web_url};
        let id = match source {
            Source::Url(u) if is_web_url(u) => return Ok(ApiCall::get(u.clone())),
            Source::Url(_) => return Err(fail("media_unavailable")),
            Source::WhatsAppMedia(id) | Source::TelegramFile(id) => id,
        };
        let p = switchboard_channels::for_channel(inbox.channel)
            .ok_or_else(|| fail("not_supported"))?;
        let call = p
            .media_call(inbox, id)
            .ok_or_else(|| fail("media_unavailable"))?;
        let r = self.call_api(&call).await?;
        p.media_download(inbox, &r.answer())
    }

    /// Downloads a picture: `http(s)` only, at most `max` bytes (read chunk by chunk, never
    /// more), and an image by its own bytes (PNG, JPEG, GIF, WebP) whatever the server claimed.
    pub async fn download_picture(
        &self,
        url: &str,
        max: usize,
    ) -> Result<(Vec<u8>, &'static str), Failure> {
        if !(url.starts_with("https://") || url.starts_with("http://")) {
            return Err(fail("picture_unavailable"));
        }
        let mut resp = self
            .http
            .get(url)
            .send()
            .await
            .map_err(|e| transport_failure(&e))?;
        if !resp.status().is_success() {
            return Err(fail("picture_unavailable"));
        }
        if resp
            .content_length()
            .is_some_and(|n| n > u64::try_from(max).unwrap_or(u64::MAX))
        {
            return Err(fail("picture_too_large"));
        }
        let mut bytes = Vec::new();
        while let Some(chunk) = resp.chunk().await.map_err(|e| transport_failure(&e))? {
            if bytes.len() + chunk.len() > max {
                return Err(fail("picture_too_large"));
            }
            bytes.extend_from_slice(&chunk);
        }
        let content_type = switchboard_core::media::sniff(&bytes);
        if !matches!(
            content_type,
            "image/png" | "image/jpeg" | "image/gif" | "image/webp"
        ) {
            return Err(fail("not_a_picture"));
        }
        Ok((bytes, content_type))
    }

    /// The setup's connection test: one read-only call that proves the inbox's account and
    /// credentials work (a Zalo token that has expired is refreshed first, as a send would).
    pub async fn check(&self, inbox: &Inbox) -> ConnectionCheck {
        let checked_at = self.clock.now();
        let failed = |reason: &'static str| ConnectionCheck {
            ok: false,
            account_name: None,
            reason: Some(reason),
            checked_at,
        };
        let Some(p) = switchboard_channels::for_channel(inbox.channel) else {
            return failed("not_supported");
        };
        let inbox = if p.refreshes_tokens() {
            match self.fresh_token(p, inbox.id, None, checked_at).await {
                Ok(i) => i,
                Err(f) if f.reason == "token_expired" => return failed("credentials_refused"),
                Err(_) => return failed("provider_unreachable"),
            }
        } else {
            inbox.clone()
        };
        let Some(call) = p.check_call(&inbox, checked_at) else {
            return failed("credentials_missing");
        };
        let r = match self.call_api(&call).await {
            Ok(r) => r,
            Err(_) => return failed("provider_unreachable"),
        };
        match p.checked(&inbox, &r.answer()) {
            Ok(account) => ConnectionCheck {
                ok: true,
                account_name: account.name,
                reason: None,
                checked_at,
            },
            Err(why) => {
                tracing::info!(inbox_id = %inbox.id, status = r.status, reason = why.code(), "connection check failed");
                failed(why.code())
            }
        }
    }

    /// Telegram `setWebhook` with our URL for this inbox and its secret token (§5).
    pub async fn set_telegram_webhook(
        &self,
        settings: &serde_json::Value,
        inbox: InboxId,
    ) -> ApiResult<()> {
        let s = |k: &str| settings[k].as_str().unwrap_or("");
        let url = format!("{}/webhooks/telegram/{inbox}", self.public_url);
        let body = telegram::set_webhook_body(&url, s("secret_token"));
        let endpoint = telegram::method_url(s("api_base_url"), s("bot_token"), "setWebhook");
        let refused = |why: String| {
            ApiError::new(
                StatusCode::BAD_GATEWAY,
                "provider_error",
                format!("Telegram refused setWebhook: {why}"),
            )
        };
        let r = self
            .call(reqwest::Method::POST, &endpoint, &[], Body::Json(&body))
            .await
            .map_err(|f| refused(f.reason.to_owned()))?;
        let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap_or_default();
        if v["ok"].as_bool() == Some(true) {
            return Ok(());
        }
        Err(refused(
            v["description"]
                .as_str()
                .unwrap_or("no answer")
                .chars()
                .take(200)
                .collect(),
        ))
    }

    /// Fetches every template of the inbox's WhatsApp Business Account (following `paging.next`
    /// on the same host) and stores them.
    pub async fn sync_templates(&self, inbox: &Inbox) -> ApiResult<Vec<StoredTemplate>> {
        let (Some(token), Some(waba)) = (setting(inbox, "access_token"), setting(inbox, "waba_id"))
        else {
            return Err(ApiError::invalid(
                "this inbox has no WhatsApp access token or waba_id",
            ));
        };
        let base = api_base_url(inbox);
        let bearer = format!("Bearer {token}");
        let mut url = whatsapp::templates_url(base, waba);
        let mut all = Vec::new();
        let now = self.clock.now();
        for _ in 0..100 {
            let r = self
                .call(
                    reqwest::Method::GET,
                    &url,
                    &[("authorization", &bearer)],
                    Body::None,
                )
                .await
                .map_err(|f| {
                    ApiError::new(
                        StatusCode::BAD_GATEWAY,
                        "provider_error",
                        format!("WhatsApp is unreachable: {}", f.reason),
                    )
                })?;
            if !(200..300).contains(&r.status) {
                let f = whatsapp::classify_error(r.status, &r.body, None);
                return Err(ApiError::new(
                    StatusCode::BAD_GATEWAY,
                    "provider_error",
                    format!("WhatsApp refused the template list: {}", f.reason),
                )
                .with_extra(serde_json::json!({"reason": f.reason, "code": f.code})));
            }
            let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap_or_default();
            let (page, next) = whatsapp::parse_templates_page(&v);
            all.extend(page.into_iter().map(|t| StoredTemplate {
                name: t.name,
                language: t.language,
                template_id: t.id,
                category: t.category,
                status: t.status,
                components: t.components,
                parameter_format: t.parameter_format,
                synced_at: now,
            }));
            match next.filter(|n| origin(n) == origin(base)) {
                Some(n) => url = n,
                None => break,
            }
        }
        self.store.replace_templates(inbox.id, &all).await?;
        Ok(all)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_encoding_and_origins() {
        assert_eq!(
            form_encode(&[
                ("refresh_token", "a b+c/="),
                ("grant_type", "refresh_token")
            ]),
            "refresh_token=a%20b%2Bc%2F%3D&grant_type=refresh_token"
        );
        assert_eq!(
            origin("https://graph.facebook.com/v26.0/1/x?y"),
            "https://graph.facebook.com"
        );
        assert_eq!(origin("http://127.0.0.1:9/v26.0"), "http://127.0.0.1:9");
        assert_eq!(origin("http://h"), "http://h");
    }
}
