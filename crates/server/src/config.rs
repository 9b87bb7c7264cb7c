//! Typed configuration: defaults in code → `switchboard.toml` (or the file `SWITCHBOARD_CONFIG`
//! names) → `SWITCHBOARD_*` environment variables (nested keys with `__`, e.g.
//! `SWITCHBOARD_LIMITS__LOGIN_PER_MINUTE`). Unknown keys are rejected.

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::path::PathBuf;

#[derive(Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Address the HTTP server listens on.
    pub bind: SocketAddr,
    /// Where the embedded database and media live.
    pub data_dir: PathBuf,
    /// `sqlite://PATH` or `postgres://…`; defaults to `sqlite://<data_dir>/switchboard.db`.
    pub database_url: Option<String>,
    /// `nats://HOST:PORT`: join the other nodes sharing this PostgreSQL database (scale-out).
    pub nats_url: Option<String>,
    /// The URL browsers reach this server at (used in the widget snippet). Defaults to `http://<bind>`.
    pub public_url: Option<String>,
    /// Mark session cookies `Secure` (set this when serving over HTTPS).
    pub cookie_secure: bool,
    /// How long a login session lasts.
    pub session_ttl_hours: u32,
    /// The key (32 bytes, base64) provider secrets are sealed with in the database. Unset: on
    /// SQLite a key is generated into `<data_dir>/secrets.key`; on PostgreSQL every node needs the
    /// same key, so set it (without one, secrets are stored unsealed and a warning is logged).
    pub secrets_key: Option<String>,
    /// Older keys, still accepted for reading during a rotation (`switchboard secrets rotate`).
    pub secrets_previous_keys: Vec<String>,
    /// Reverse proxies (addresses or networks, e.g. `10.0.0.0/8`) whose `X-Forwarded-For` names
    /// the client for rate limits. Empty: the TCP peer is the client.
    pub trusted_proxies: Vec<String>,
    pub limits: Limits,
    /// Connections: header-read timeout, how many at once, URI and header sizes.
    pub http: HttpConfig,
    /// Routing, timers and presence.
    pub routing: RoutingConfig,
    /// Provider webhooks (Messenger, Instagram).
    pub webhooks: Webhooks,
    /// The outbound queue to providers.
    pub outbox: OutboxConfig,
    /// Downloading the files customers send.
    pub inbound_media: InboundMediaConfig,
    /// WhatsApp cost metering: currency and prices.
    pub billing: BillingConfig,
    /// Web Push to agents' browsers.
    pub push: PushConfig,
    /// Where files live: `<data_dir>/media` by default, an S3-compatible bucket for several nodes.
    pub media: MediaConfig,
    /// `tracing` filter, e.g. `info` or `switchboard=debug`.
    pub log: String,
}

/// Where media (attachments, thumbnails, customers' pictures) are kept.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MediaConfig {
    /// An S3-compatible bucket shared by every node. Unset: files under `<data_dir>/media`
    /// (one node; several nodes need a shared bucket, or each serves only its own uploads).
    pub s3: Option<S3Config>,
}

/// An S3-compatible bucket (AWS S3, MinIO, Garage, Ceph RGW, Cloudflare R2, …).
#[derive(Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct S3Config {
    pub bucket: String,
    /// The service's URL, e.g. `http://127.0.0.1:9000` for a local MinIO. Empty: AWS S3 in
    /// `region`.
    pub endpoint: String,
    pub region: String,
    pub access_key_id: String,
    pub secret_access_key: String,
    /// Let `endpoint` be plain `http://` (a store on the same private network).
    pub allow_http: bool,
    /// Put keys under this prefix (several deployments in one bucket).
    pub prefix: String,
}

impl Default for S3Config {
    fn default() -> Self {
        Self {
            bucket: String::new(),
            endpoint: String::new(),
            region: "us-east-1".into(),
            access_key_id: String::new(),
            secret_access_key: String::new(),
            allow_http: false,
            prefix: String::new(),
        }
    }
}

// The secret key never reaches logs.
impl std::fmt::Debug for S3Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Config")
            .field("bucket", &self.bucket)
            .field("endpoint", &self.endpoint)
            .field("region", &self.region)
            .field("access_key_id", &self.access_key_id)
            .field(
                "secret_access_key",
                &(!self.secret_access_key.is_empty()).then_some("***"),
            )
            .field("allow_http", &self.allow_http)
            .field("prefix", &self.prefix)
            .finish()
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct InboundMediaConfig {
    /// Run the background downloader. (Tests switch it off and drive
    /// `MediaFetcher::run_due` themselves.)
    pub worker: bool,
    /// The largest customer file we download; a larger one is `failed` (`file_too_large`).
    pub max_bytes: u64,
    /// How long one download (the whole file) may take before the attempt counts as failed.
    pub download_timeout_ms: u64,
}

impl Default for InboundMediaConfig {
    fn default() -> Self {
        Self {
            worker: true,
            max_bytes: switchboard_channels::provider::MAX_MEDIA_BYTES,
            download_timeout_ms: 120_000,
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpConfig {
    /// A client that has not sent a request's whole header block within this time (also a
    /// kept-alive connection waiting for its next request) is disconnected.
    pub header_read_timeout_ms: u64,
    /// Connections served at once; more are answered 503 and closed. Keep it under the process's
    /// open-file limit (`ulimit -n`), with room for the database and provider calls.
    pub max_connections: usize,
    /// Longest request target (path and query); longer gets 414.
    pub max_uri_bytes: usize,
    /// Most request headers, and their total size; more gets 431.
    pub max_headers: usize,
    pub max_header_bytes: usize,
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            header_read_timeout_ms: 10_000,
            max_connections: 16_384,
            max_uri_bytes: 8 * 1024,
            max_headers: 100,
            max_header_bytes: 32 * 1024,
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RoutingConfig {
    /// How often (milliseconds) this node's timer runner looks for due timers, presence changes and
    /// the backlog; 0 turns the background runner off (tests drive it by hand).
    pub timer_poll_ms: u64,
    /// How long a runner holds a claimed timer (seconds); if it dies, another runner retries after.
    pub timer_lease_secs: u32,
    /// An agent whose client shows no activity for this many minutes is `away`; 0 = never.
    pub idle_away_minutes: u32,
}

impl Default for RoutingConfig {
    fn default() -> Self {
        Self {
            timer_poll_ms: 1000,
            timer_lease_secs: 60,
            idle_away_minutes: 15,
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// Login attempts per minute per client address (and per email).
    pub login_per_minute: u32,
    /// Messages per minute one widget visitor may send.
    pub widget_messages_per_minute: u32,
    /// Widget requests (sessions + messages) per minute from one client address.
    pub widget_per_ip_per_minute: u32,
    /// Largest accepted request body in bytes (API and widget).
    pub max_body_bytes: usize,
    /// Largest file an agent may attach, in bytes.
    pub max_upload_bytes: usize,
    /// How many webhooks (or widget messages) the ingest writer commits in one transaction at most;
    /// a webhook's events always go in together.
    pub ingest_batch_max: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            login_per_minute: 10,
            widget_messages_per_minute: 30,
            widget_per_ip_per_minute: 120,
            max_body_bytes: 64 * 1024,
            max_upload_bytes: 20 * 1024 * 1024,
            ingest_batch_max: 500,
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Webhooks {
    /// Largest accepted webhook body in bytes (Meta batches up to 1000 updates); larger gets 413.
    pub max_body_bytes: usize,
    /// Fetch a new customer's name and picture from the provider.
    pub profile_sync: bool,
}

impl Default for Webhooks {
    fn default() -> Self {
        Self {
            max_body_bytes: 4 * 1024 * 1024,
            profile_sync: true,
        }
    }
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PushConfig {
    /// Who runs this server, as push services want to know (VAPID `sub`): a `mailto:` or
    /// `https:` URL. Empty: `public_url` when it is https, else `mailto:admin@localhost`.
    pub subject: String,
    /// Accept push endpoints over plain http (only for a local push service in tests).
    pub allow_http_endpoints: bool,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OutboxConfig {
    /// Run the background sender. (Tests switch it off and drive `Outbox::run_due` themselves.)
    pub worker: bool,
    /// How long one provider call may take before it counts as failed (and is retried).
    pub http_timeout_ms: u64,
    /// First retry after about this long; doubles each time (with jitter).
    pub retry_base_ms: u64,
    /// Longest wait between two tries (a provider's own Retry-After may be longer).
    pub retry_max_ms: u64,
    /// Give up (message `failed`) when a message could not be sent this long after it was queued.
    pub give_up_after_secs: u64,
}

impl Default for OutboxConfig {
    fn default() -> Self {
        Self {
            worker: true,
            http_timeout_ms: 10_000,
            retry_base_ms: 2_000,
            retry_max_ms: 600_000,
            give_up_after_secs: 86_400,
        }
    }
}

/// Prices for WhatsApp cost metering (`core::billing`). Meta's prices change (on the first day of
/// a quarter) and differ per market, so none are built in: configure yours.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BillingConfig {
    /// The currency of the prices (reports only echo it).
    pub currency: String,
    /// [U] Free service messages per phone number per month from 2026-10-01 (reported by some
    /// providers, absent from Meta's announcement). 0 = none.
    pub free_service_messages_per_month_from_2026_10: u32,
    pub rates: Vec<RateConfig>,
}

impl Default for BillingConfig {
    fn default() -> Self {
        Self {
            currency: "USD".into(),
            free_service_messages_per_month_from_2026_10: 0,
            rates: Vec::new(),
        }
    }
}

/// One price: per conversation (conversation-based model) or per message (per-message model).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateConfig {
    /// ISO country code (`VN`, `US`, ...) or `*` for every other market.
    pub market: String,
    /// `marketing`, `utility`, `authentication` or `service`.
    pub category: String,
    /// `conversation_based` or `per_message`; absent: both.
    #[serde(default)]
    pub model: Option<String>,
    /// `YYYY-MM-DD` (UTC) from which the price applies; absent: always.
    #[serde(default)]
    pub from: Option<String>,
    /// In the currency's units, e.g. `0.0114`.
    pub price: f64,
}

impl BillingConfig {
    /// The prices as `core::billing` takes them; an error names the bad entry.
    pub fn tariff(&self) -> Result<switchboard_core::billing::Tariff, String> {
        use switchboard_core::billing::{Category, PricingModel, Rate, Tariff};
        let mut rates = Vec::with_capacity(self.rates.len());
        for (i, r) in self.rates.iter().enumerate() {
            let bad = |what: &str| format!("billing.rates[{i}]: {what}");
            let market = r.market.trim().to_ascii_uppercase();
            if market != "*"
                && (market.len() != 2 || !market.chars().all(|c| c.is_ascii_alphabetic()))
            {
                return Err(bad("market must be an ISO country code or *"));
            }
            let category = Category::parse(&r.category).ok_or_else(|| {
                bad("category must be marketing, utility, authentication or service")
            })?;
            let model = r
                .model
                .as_deref()
                .map(|m| {
                    PricingModel::parse(m)
                        .ok_or_else(|| bad("model must be conversation_based or per_message"))
                })
                .transpose()?;
            let from = r
                .from
                .as_deref()
                .map(|d| {
                    switchboard_core::business_hours::Date::parse(d)
                        .map(|d| switchboard_core::Timestamp(d.days_since_epoch() * 86_400_000))
                        .ok_or_else(|| bad("from must be YYYY-MM-DD"))
                })
                .transpose()?;
            if !r.price.is_finite() || r.price < 0.0 || r.price > 1_000.0 {
                return Err(bad("price must be between 0 and 1000"));
            }
            #[allow(clippy::cast_possible_truncation)]
            let micros = (r.price * 1_000_000.0).round() as i64;
            rates.push(Rate {
                market,
                category,
                model,
                from,
                micros,
            });
        }
        Ok(Tariff {
            currency: self.currency.clone(),
            rates,
            free_service_messages_per_month_from_2026_10: self
                .free_service_messages_per_month_from_2026_10,
        })
    }
}

impl Default for Config {
    fn default() -> Self {
        Self {
            bind: SocketAddr::from(([127, 0, 0, 1], 8080)),
            data_dir: PathBuf::from("./switchboard-data"),
            database_url: None,
            nats_url: None,
            public_url: None,
            cookie_secure: false,
            session_ttl_hours: 24 * 30,
            secrets_key: None,
            secrets_previous_keys: Vec::new(),
            trusted_proxies: Vec::new(),
            http: HttpConfig::default(),
            limits: Limits::default(),
            routing: RoutingConfig::default(),
            webhooks: Webhooks::default(),
            outbox: OutboxConfig::default(),
            inbound_media: InboundMediaConfig::default(),
            billing: BillingConfig::default(),
            push: PushConfig::default(),
            media: MediaConfig::default(),
            log: "info".into(),
        }
    }
}

// Secrets (none today but the database URL's password) never reach logs.
impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("bind", &self.bind)
            .field("data_dir", &self.data_dir)
            .field(
                "database_url",
                &self.database_url.as_deref().map(redact_url),
            )
            .field("nats_url", &self.nats_url.as_deref().map(redact_url))
            .field("public_url", &self.public_url)
            .field("cookie_secure", &self.cookie_secure)
            .field("session_ttl_hours", &self.session_ttl_hours)
            .field("secrets_key", &self.secrets_key.as_ref().map(|_| "***"))
            .field(
                "secrets_previous_keys",
                &format!("{} key(s)", self.secrets_previous_keys.len()),
            )
            .field("trusted_proxies", &self.trusted_proxies)
            .field("limits", &self.limits)
            .field("http", &self.http)
            .field("routing", &self.routing)
            .field("webhooks", &self.webhooks)
            .field("outbox", &self.outbox)
            .field("inbound_media", &self.inbound_media)
            .field("billing", &self.billing)
            .field("push", &self.push)
            .field("media", &self.media)
            .field("log", &self.log)
            .finish()
    }
}

fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => format!("{}://***@{}", &url[..s], &url[at + 1..]),
        _ => url.to_owned(),
    }
}

/// Environment variables with our prefix that are not configuration keys.
const NOT_CONFIG: &[&str] = &["config", "skip_web_build"];

impl Config {
    /// Loads defaults → TOML file (if present) → environment.
    pub fn load() -> Result<Self, Box<figment::Error>> {
        let file =
            std::env::var("SWITCHBOARD_CONFIG").unwrap_or_else(|_| "switchboard.toml".into());
        Self::figment(
            Figment::from(Serialized::defaults(Config::default())).merge(Toml::file(file)),
        )
        .extract()
        .map_err(Box::new)
    }

    fn figment(f: Figment) -> Figment {
        f.merge(Env::prefixed("SWITCHBOARD_").split("__").filter(|k| {
            // Keys arrive as written in the environment (upper case).
            let k = k.as_str().to_ascii_lowercase();
            !NOT_CONFIG.contains(&k.as_str()) && !k.starts_with("test_")
        }))
    }

    pub fn database_url(&self) -> String {
        self.database_url.clone().unwrap_or_else(|| {
            format!(
                "sqlite://{}",
                self.data_dir.join("switchboard.db").display()
            )
        })
    }

    /// The VAPID subject: `push.subject`, else an https `public_url`, else a local mailbox.
    pub fn push_subject(&self) -> String {
        let url = self.public_url();
        if !self.push.subject.is_empty() {
            self.push.subject.clone()
        } else if url.starts_with("https://") {
            url
        } else {
            "mailto:admin@localhost".into()
        }
    }

    pub fn public_url(&self) -> String {
        self.public_url
            .clone()
            .unwrap_or_else(|| format!("http://{}", self.bind))
            .trim_end_matches('/')
            .to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_keys_are_rejected_and_known_ones_read() {
        let ok: Result<Config, _> = Figment::from(Serialized::defaults(Config::default()))
            .merge(Toml::string(
                "bind = \"0.0.0.0:9000\"\n[limits]\nlogin_per_minute = 3",
            ))
            .extract();
        let ok = ok.map_err(|e| e.to_string());
        assert_eq!(
            ok.as_ref()
                .map(|c| (c.bind.port(), c.limits.login_per_minute)),
            Ok((9000, 3))
        );
        let bad: Result<Config, _> = Figment::from(Serialized::defaults(Config::default()))
            .merge(Toml::string("bnd = \"x\""))
            .extract();
        assert!(bad.is_err());
    }

    #[test]
    fn the_example_config_is_valid_and_matches_the_defaults() {
        let example: Result<Config, _> = Figment::from(Serialized::defaults(Config::default()))
            .merge(Toml::string(include_str!(
                "../../../switchboard.example.toml"
            )))
            .extract();
        let example = example.map_err(|e| e.to_string());
        let (got, want) = (
            example.map(|c| format!("{c:?}")),
            format!("{:?}", Config::default()),
        );
        assert_eq!(got, Ok(want));
    }

    #[test]
    fn billing_rates_are_checked() {
        let ok = BillingConfig {
            rates: vec![RateConfig {
                market: "vn".into(),
                category: "marketing".into(),
                model: Some("per_message".into()),
                from: Some("2025-07-01".into()),
                price: 0.0114,
            }],
            ..BillingConfig::default()
        };
        let t = ok.tariff().map_err(|e| e.to_string());
        assert_eq!(
            t.as_ref()
                .map(|t| (t.rates[0].market.as_str(), t.rates[0].micros)),
            Ok(("VN", 11_400))
        );
        let mut bad = ok.clone();
        bad.rates[0].category = "promo".into();
        assert!(bad.tariff().is_err());
        let mut bad = ok;
        bad.rates[0].from = Some("2025-13-01".into());
        assert!(bad.tariff().is_err());
    }

    #[test]
    fn debug_redacts_database_password() {
        let c = Config {
            database_url: Some("postgres://sb:hunter2@db/sb".into()),
            ..Config::default()
        };
        let s = format!("{c:?}");
        assert!(!s.contains("hunter2"), "{s}");
        assert!(s.contains("postgres://***@db/sb"));
        let c = Config {
            media: MediaConfig {
                s3: Some(S3Config {
                    bucket: "b".into(),
                    secret_access_key: "wJalrXUtnFEMI".into(),
                    ..S3Config::default()
                }),
            },
            ..Config::default()
        };
        let s = format!("{c:?}");
        assert!(!s.contains("wJalrXUtnFEMI"), "{s}");
    }

    #[test]
    fn an_s3_bucket_is_configured_from_the_environment_shape() {
        let c: Result<Config, _> = Figment::from(Serialized::defaults(Config::default()))
            .merge(Toml::string(
                "[media.s3]\nbucket = \"sb\"\nendpoint = \"http://127.0.0.1:9000\"\nallow_http = true",
            ))
            .extract();
        let s3 = c.map_err(|e| e.to_string()).map(|c| c.media.s3);
        let s3 = s3.as_ref().map(|s| {
            s.as_ref()
                .map(|s| (s.bucket.as_str(), s.region.as_str(), s.allow_http))
        });
        assert_eq!(s3, Ok(Some(("sb", "us-east-1", true))));
        let bad: Result<Config, _> = Figment::from(Serialized::defaults(Config::default()))
            .merge(Toml::string("[media.s3]\nbuckt = \"sb\""))
            .extract();
        assert!(bad.is_err());
    }
}
