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
    pub limits: Limits,
    /// Routing, timers and presence.
    pub routing: RoutingConfig,
    /// Provider webhooks (Messenger, Instagram).
    pub webhooks: Webhooks,
    /// The outbound queue to providers.
    pub outbox: OutboxConfig,
    /// `tracing` filter, e.g. `info` or `switchboard=debug`.
    pub log: String,
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
    /// How many inbound messages the ingest writer commits in one transaction at most.
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
            limits: Limits::default(),
            routing: RoutingConfig::default(),
            webhooks: Webhooks::default(),
            outbox: OutboxConfig::default(),
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
            .field("limits", &self.limits)
            .field("routing", &self.routing)
            .field("webhooks", &self.webhooks)
            .field("outbox", &self.outbox)
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
    fn debug_redacts_database_password() {
        let c = Config {
            database_url: Some("postgres://sb:hunter2@db/sb".into()),
            ..Config::default()
        };
        let s = format!("{c:?}");
        assert!(!s.contains("hunter2"), "{s}");
        assert!(s.contains("postgres://***@db/sb"));
    }
}
