//! What every handler shares.

use crate::access::Access;
use crate::bus::Bus;
use crate::clock::Clock;
use crate::config::Config;
use crate::ingest::Ingest;
use crate::presence::Presence;
use crate::ratelimit::RateLimiter;
use crate::routing::Routing;
use std::ops::Deref;
use std::sync::Arc;
use switchboard_core::WorkspaceId;
use switchboard_store::Store;

#[derive(Clone)]
pub struct AppState(Arc<Inner>);

pub struct Inner {
    pub config: Config,
    pub store: Arc<dyn Store>,
    /// Where files live (a directory, or an S3-compatible bucket).
    pub media: crate::media_store::MediaStore,
    pub clock: Arc<dyn Clock>,
    pub bus: Bus,
    pub access: Access,
    pub ingest: Ingest,
    pub presence: Arc<Presence>,
    /// Routing, presence changes and the timer runner.
    pub routing: Routing,
    /// Flows: bots, handoff, scheduled flows.
    pub automation: crate::automation::Automation,
    /// Comment rules: deciding comments, the comment outbox.
    pub comment_rules: crate::comment_rules::CommentRules,
    /// Provider events (Messenger, Instagram) through their own group-commit writer.
    pub channel_ingest: crate::channel_ingest::ChannelIngest,
    /// WhatsApp cost metering, group-committed like ingest.
    pub meter: crate::metering::MeterWriter,
    /// Outbound provider messages.
    pub outbox: Arc<crate::outbox::Outbox>,
    /// Downloads the files customers send.
    pub media_fetch: Arc<crate::media_fetch::MediaFetcher>,
    /// The one `send` command.
    pub outgoing: crate::app::send::Outgoing,
    /// WhatsApp, Zalo, Telegram and Shopee clients (and the WhatsApp price list).
    pub providers: Arc<crate::provider_api::Providers>,
    /// Web Push to agents' browsers.
    pub push: Arc<crate::push::Pusher>,
    pub workspace_id: WorkspaceId,
    /// Signs widget visitor tokens; generated once and kept in the store.
    pub visitor_key: Vec<u8>,
    pub limits: Limiters,
    /// Who is the client behind a reverse proxy (rate limits).
    pub trusted_proxies: crate::client::TrustedProxies,
}

pub struct Limiters {
    pub login_ip: RateLimiter,
    pub login_email: RateLimiter,
    pub widget_ip: RateLimiter,
    pub widget_visitor: RateLimiter,
}

impl AppState {
    pub fn new(inner: Inner) -> Self {
        Self(Arc::new(inner))
    }
}

impl Deref for AppState {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}

/// The trusted proxies, for the client-address extractor.
impl axum::extract::FromRef<AppState> for crate::client::TrustedProxies {
    fn from_ref(st: &AppState) -> Self {
        st.trusted_proxies.clone()
    }
}
