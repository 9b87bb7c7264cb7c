//! Calls to the WhatsApp, Zalo OA, Telegram and Shopee APIs: the outbox's send for each (with
//! Zalo's token refresh: one refresh on `-216`, then one retry), Telegram's `setWebhook`, and the
//! WhatsApp template sync. Bodies are built by `switchboard_channels`; this module only moves
//! bytes, maps answers, and keeps the single-use Zalo refresh token consistent.
//!
//! Tokens travel in headers (or, for Telegram's and Shopee's APIs, in the URL they require) and
//! are never logged.

use crate::clock::Clock;
use crate::error::{ApiError, ApiResult};
use crate::inbox_settings::{api_base_url, setting};
use axum::http::StatusCode;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use switchboard_channels::meta::{self, Failure, network_failure};
use switchboard_channels::{shopee, telegram, whatsapp, zalo};
use switchboard_core::billing::Tariff;
use switchboard_core::{ChannelKind, Inbox, InboxId, Timestamp};
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
    /// One Zalo token refresh at a time per inbox (the refresh token is single use).
    zalo_locks: Mutex<HashMap<InboxId, Arc<tokio::sync::Mutex<()>>>>,
}

/// A request body.
enum Body<'a> {
    None,
    Json(&'a serde_json::Value),
    Form(&'a [(&'a str, &'a str)]),
}

/// A provider's HTTP answer.
struct Raw {
    status: u16,
    retry_after: Option<String>,
    body: Vec<u8>,
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
fn tls_provider() {
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
    ) -> Self {
        Self {
            tariff,
            http,
            store,
            clock,
            public_url,
            zalo_locks: Mutex::new(HashMap::new()),
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
        };
        let resp = req.send().await.map_err(|e| transport_failure(&e))?;
        let status = resp.status().as_u16();
        let retry_after = resp
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let body = resp
            .bytes()
            .await
            .map_err(|e| transport_failure(&e))?
            .to_vec();
        Ok(Raw {
            status,
            retry_after,
            body,
        })
    }

    /// Sends one outbox row of a WhatsApp, Zalo, Telegram or Shopee inbox.
    pub async fn send(&self, inbox: &Inbox, row: &OutboxRow, now: Timestamp) -> Answer {
        let out = match inbox.channel {
            ChannelKind::Whatsapp => self.send_whatsapp(inbox, row).await,
            ChannelKind::Zalo => self.send_zalo(inbox, row, now).await,
            ChannelKind::Telegram => self.send_telegram(inbox, row, now).await,
            ChannelKind::Shopee => self.send_shopee(inbox, row, now).await,
            _ => Err(fail("not_supported")),
        };
        match out {
            Ok(provider_id) => Answer::Ok(serde_json::json!({ "message_id": provider_id })),
            Err(f) => Answer::Failed(f),
        }
    }

    async fn send_whatsapp(&self, inbox: &Inbox, row: &OutboxRow) -> Result<String, Failure> {
        let token = setting(inbox, "access_token").ok_or_else(|| fail("token_expired"))?;
        let pnid = setting(inbox, "phone_number_id").ok_or_else(|| fail("inbox_missing"))?;
        let url = whatsapp::messages_url(api_base_url(inbox), pnid);
        let bearer = format!("Bearer {token}");
        let r = self
            .call(
                reqwest::Method::POST,
                &url,
                &[("authorization", &bearer)],
                Body::Json(&row.request["body"]),
            )
            .await?;
        if (200..300).contains(&r.status) {
            let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap_or_default();
            return whatsapp::parse_send_ok(&v)
                .map(|(id, _)| id)
                .ok_or_else(|| fail("provider_error"));
        }
        Err(whatsapp::classify_error(
            r.status,
            &r.body,
            r.retry_after.as_deref(),
        ))
    }

    fn zalo_lock(&self, inbox: InboxId) -> Arc<tokio::sync::Mutex<()>> {
        let mut m = self
            .zalo_locks
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        m.entry(inbox).or_default().clone()
    }

    /// The inbox's Zalo access token: refreshed when it has expired, or when `stale` (a token
    /// Zalo just refused with -216) is still the current one. The refresh token is single use:
    /// one refresh at a time per inbox here, and a compare-and-set on it in the store (another
    /// node may have refreshed first: then its new token is used).
    async fn zalo_token(
        &self,
        inbox_id: InboxId,
        stale: Option<&str>,
        now: Timestamp,
    ) -> Result<String, Failure> {
        let lock = self.zalo_lock(inbox_id);
        let _held = lock.lock().await;
        let inbox = self
            .store
            .inbox(inbox_id)
            .await
            .ok()
            .flatten()
            .ok_or_else(|| fail("inbox_missing"))?;
        let current = setting(&inbox, "access_token").map(str::to_owned);
        let expired = inbox.settings["access_token_expires_at"]
            .as_i64()
            .is_some_and(|t| t <= now.millis());
        match (&current, stale) {
            (Some(c), Some(s)) if c != s => return Ok(c.clone()),
            (Some(c), None) if !expired => return Ok(c.clone()),
            _ => {}
        }
        let (Some(app_id), Some(secret), Some(refresh)) = (
            setting(&inbox, "app_id"),
            setting(&inbox, "app_secret"),
            setting(&inbox, "refresh_token"),
        ) else {
            return Err(fail("token_expired"));
        };
        let oauth = setting(&inbox, "oauth_base_url").unwrap_or(zalo::DEFAULT_OAUTH_BASE_URL);
        let form = zalo::refresh_form(app_id, refresh);
        let r = self
            .call(
                reqwest::Method::POST,
                &zalo::refresh_url(oauth),
                &[("secret_key", secret)],
                Body::Form(&form),
            )
            .await
            // No message was sent by this call: whatever happened, the send may be tried again.
            .map_err(|_| network_failure())?;
        let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap_or_default();
        let Some((access, new_refresh, expires_in)) = zalo::parse_refresh(&v) else {
            tracing::warn!(inbox_id = %inbox_id, status = r.status, "zalo: token refresh refused");
            return Err(fail("token_expired"));
        };
        let mut settings = inbox.settings.clone();
        if let Some(o) = settings.as_object_mut() {
            o.insert("access_token".into(), serde_json::json!(access));
            o.insert("refresh_token".into(), serde_json::json!(new_refresh));
            o.insert(
                "access_token_expires_at".into(),
                serde_json::json!(now.plus_secs(expires_in).millis()),
            );
        }
        match self
            .store
            .replace_settings_if(inbox_id, "refresh_token", refresh, &settings)
            .await
        {
            Ok(true) => {
                tracing::info!(inbox_id = %inbox_id, "zalo: access token refreshed");
                Ok(access)
            }
            // Someone else rotated it in between: use theirs.
            Ok(false) => self
                .store
                .inbox(inbox_id)
                .await
                .ok()
                .flatten()
                .and_then(|i| setting(&i, "access_token").map(str::to_owned))
                .ok_or_else(|| fail("token_expired")),
            Err(e) => {
                tracing::error!(error = %e, "zalo: storing refreshed tokens failed");
                Err(network_failure())
            }
        }
    }

    async fn send_zalo(
        &self,
        inbox: &Inbox,
        row: &OutboxRow,
        now: Timestamp,
    ) -> Result<String, Failure> {
        let endpoint = row.request["endpoint"].as_str().unwrap_or("cs");
        let url = zalo::message_url(api_base_url(inbox), endpoint);
        let mut token = self.zalo_token(inbox.id, None, now).await?;
        for attempt in 0..2 {
            let r = self
                .call(
                    reqwest::Method::POST,
                    &url,
                    &[("access_token", &token)],
                    Body::Json(&row.request["body"]),
                )
                .await?;
            match zalo::classify(r.status, &r.body) {
                zalo::Answer::Sent(s) => {
                    if let Some(q) = &s.quota_type {
                        let patch = serde_json::json!({ "zalo_quota_type": q });
                        if let Err(e) = self
                            .store
                            .merge_message_meta(row.message_id, patch, now)
                            .await
                        {
                            tracing::warn!(error = %e, "zalo: recording the quota type failed");
                        }
                    }
                    return Ok(s.message_id);
                }
                zalo::Answer::TokenExpired if attempt == 0 => {
                    token = self.zalo_token(inbox.id, Some(&token), now).await?;
                }
                zalo::Answer::TokenExpired => return Err(fail("token_expired")),
                zalo::Answer::Failed(f) => return Err(f),
            }
        }
        Err(fail("token_expired"))
    }

    async fn send_telegram(
        &self,
        inbox: &Inbox,
        row: &OutboxRow,
        now: Timestamp,
    ) -> Result<String, Failure> {
        let token = setting(inbox, "bot_token").ok_or_else(|| fail("token_invalid"))?;
        let url = telegram::method_url(api_base_url(inbox), token, "sendMessage");
        let r = self
            .call(
                reqwest::Method::POST,
                &url,
                &[],
                Body::Json(&row.request["body"]),
            )
            .await?;
        let chat = row.request["body"]["chat_id"]
            .to_string()
            .trim_matches('"')
            .to_owned();
        match telegram::classify(r.status, &r.body) {
            Ok(id) => Ok(format!("{chat}:{id}")),
            Err(f) => {
                if f.reason == "user_blocked"
                    && let Err(e) = self
                        .store
                        .set_reachability(inbox.id, &chat, Some("user_blocked"), now)
                        .await
                {
                    tracing::warn!(error = %e, "telegram: recording a blocked chat failed");
                }
                Err(f)
            }
        }
    }

    async fn send_shopee(
        &self,
        inbox: &Inbox,
        row: &OutboxRow,
        now: Timestamp,
    ) -> Result<String, Failure> {
        let (Some(partner_id), Some(partner_key), Some(shop_id), Some(token)) = (
            setting(inbox, "partner_id"),
            setting(inbox, "partner_key"),
            setting(inbox, "shop_id"),
            setting(inbox, "access_token"),
        ) else {
            return Err(fail("token_expired"));
        };
        let req = shopee::SendRequest {
            base: api_base_url(inbox),
            partner_id,
            partner_key,
            shop_id,
            access_token: token,
            timestamp: now.millis() / 1000,
        };
        let (url, body) = shopee::send_text(
            &req,
            row.request["to_id"].as_str().unwrap_or(""),
            row.request["text"].as_str().unwrap_or(""),
        );
        let r = self
            .call(reqwest::Method::POST, &url, &[], Body::Json(&body))
            .await?;
        shopee::classify(r.status, &r.body)
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
