//! The Switchboard service: HTTP API, realtime, the widget API, the ingest writer and config.
//! `Application::build` binds (port 0 in tests) and wires everything; `run_until_stopped` serves.

pub mod access;
pub mod app;
pub mod auth;
pub mod automation;
pub mod bus;
pub mod channel_ingest;
pub mod client;
pub mod clock;
pub mod cluster;
pub mod comment_rules;
pub mod config;
pub mod error;
pub mod http;
pub mod inbox_settings;
pub mod ingest;
pub mod keys;
#[cfg(test)]
mod layout;
pub mod media_fetch;
pub mod media_links;
pub mod media_store;
pub mod meta;
pub mod metering;
pub mod outbox;
pub mod presence;
pub mod profiles;
pub mod provider_api;
pub mod push;
pub mod random;
pub mod ratelimit;
pub mod responses;
pub mod routes;
pub mod routing;
pub mod state;
mod thumbnails;
pub mod timers;
pub mod writer_thread;

use anyhow::Context;
use clock::Clock;
use config::Config;
use ratelimit::RateLimiter;
use state::{AppState, Inner, Limiters};
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use switchboard_store::Store;
use tokio::net::TcpListener;

/// Opens the configured store (applying migrations).
/// Opens the configured store (applying migrations), with the key that seals provider secrets;
/// secrets stored before (plain, or under an older key) are sealed again with the current key.
pub async fn open_store(config: &Config) -> anyhow::Result<Arc<dyn Store>> {
    let store = switchboard_store::open(&config.database_url())
        .await
        .context("opening the database")?;
    if let Some(secrets) = keys::secret_box(config)? {
        store.set_secrets(Arc::new(secrets));
        let n = store.reseal_secrets().await.context(
            "sealing provider secrets (is a previous key missing from secrets_previous_keys?)",
        )?;
        if n > 0 {
            tracing::info!(inboxes = n, "provider secrets sealed with the current key");
        }
    }
    Ok(store)
}

pub struct Application {
    listener: TcpListener,
    state: AppState,
}

impl Application {
    pub async fn build(config: Config, clock: Arc<dyn Clock>) -> anyhow::Result<Self> {
        let store = open_store(&config).await?;
        // Web Push to agents' browsers, fed with this node's own commits (the hook below), so an
        // assignment is pushed once however many nodes run.
        let push = push::Pusher::start(
            store.clone(),
            clock.clone(),
            provider_api::http_client(config.outbox.http_timeout_ms)?,
            config.push_subject(),
        )
        .await?;
        let hook_push = push.clone();
        let bus = bus::Bus::new(4096);
        let hook_bus = bus.clone();
        // SQLite publishes in commit order under its single writer. PostgreSQL commits on many
        // connections and nodes at once: its events go through the sequencer, which delivers them
        // in `seq` order (see cluster.rs), and to the other nodes.
        let sequencer = if switchboard_store::is_postgres(&config.database_url()) {
            let seq = cluster::Sequencer::start(
                store.clone(),
                bus.clone(),
                store.last_event_seq().await?,
            );
            let pushed = seq.clone();
            store.set_commit_hook(Arc::new(move |events| {
                pushed.push(events.to_vec());
                hook_push.committed(events);
                if let Some(link) = hook_bus.cluster() {
                    link.events(events);
                }
            }));
            Some(seq)
        } else {
            store.set_commit_hook(Arc::new(move |events| {
                hook_bus.publish_committed(events);
                hook_push.committed(events);
            }));
            None
        };
        let workspace_id = store.ensure_workspace("Switchboard", clock.now()).await?;
        let key = store
            .setting_init("visitor_token_key", &random::random_token(32))
            .await?;
        let access = access::Access::default();
        access.reload(store.as_ref()).await?;
        let idle = Some(config.routing.idle_away_minutes).filter(|m| *m > 0);
        let presence = Arc::new(presence::Presence::new(idle));
        // One way out: every sender (agents, timers, routing) sends through this; it wakes the
        // outbox when it queues something.
        let outbox_wake = Arc::new(tokio::sync::Notify::new());
        let outgoing = app::send::Outgoing::new(store.clone(), clock.clone(), outbox_wake.clone());
        let routing = routing::Routing::new(
            store.clone(),
            clock.clone(),
            bus.clone(),
            presence.clone(),
            config.routing.clone(),
            outgoing.clone(),
        );
        // Flows: bots, scheduled flows; HTTP steps are signed with the workspace's secret.
        let flow_secret = store
            .setting_init("automation_signing_secret", &random::random_token(32))
            .await?;
        let automation = automation::Automation::new(
            store.clone(),
            clock.clone(),
            outgoing.clone(),
            routing.clone(),
            provider_api::http_client(30_000)?,
            flow_secret.into_bytes(),
            config.routing.timer_lease_secs,
            config.routing.timer_poll_ms,
        );
        automation.start_workers();
        // Comment rules: decided after the commit by their own workers; their actions are the
        // comment outbox (hide and like at Meta, replies through `send`).
        let ms = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
        let comment_rules = comment_rules::CommentRules::new(
            store.clone(),
            clock.clone(),
            outgoing.clone(),
            routing.clone(),
            switchboard_core::retry::RetryPolicy {
                base_ms: ms(config.outbox.retry_base_ms),
                max_ms: ms(config.outbox.retry_max_ms),
                give_up_after_ms: ms(config.outbox.give_up_after_secs).saturating_mul(1000),
            },
        );
        comment_rules.start_workers();
        comment_rules.preload().await?;
        // One group-commit writer for every channel's inbound traffic.
        let channel_ingest = channel_ingest::ChannelIngest::start(
            store.clone(),
            clock.clone(),
            config.limits.ingest_batch_max,
            routing.clone(),
            automation.clone(),
            comment_rules.clone(),
        )?;
        let ingest = ingest::Ingest::new(channel_ingest.clone());
        let tariff = config
            .billing
            .tariff()
            .map_err(|e| anyhow::anyhow!("configuration: {e}"))?;
        let meter = metering::MeterWriter::start(
            store.clone(),
            tariff.clone(),
            config.limits.ingest_batch_max,
        )?;
        let trusted_proxies = client::TrustedProxies::parse(&config.trusted_proxies)
            .map_err(|e| anyhow::anyhow!("configuration: {e}"))?;
        let l = &config.limits;
        let limits = Limiters {
            login_ip: RateLimiter::per_minute(clock.clone(), l.login_per_minute),
            login_email: RateLimiter::per_minute(clock.clone(), l.login_per_minute),
            widget_ip: RateLimiter::per_minute(clock.clone(), l.widget_per_ip_per_minute),
            widget_visitor: RateLimiter::per_minute(clock.clone(), l.widget_messages_per_minute),
        };
        let listener = TcpListener::bind(config.bind)
            .await
            .with_context(|| format!("binding {}", config.bind))?;
        // Bound to "any port" without a public URL: the URL providers call back (Telegram's
        // webhook, Shopee's push) is the port we actually got.
        let mut config = config;
        if config.public_url.is_none() && config.bind.port() == 0 {
            config.public_url = Some(format!("http://{}", listener.local_addr()?));
        }
        let media = media_store::MediaStore::open(&config.media, &config.data_dir)?;
        tracing::info!(store = ?media, "media");
        let providers = Arc::new(provider_api::Providers::new(
            tariff,
            provider_api::http_client(config.outbox.http_timeout_ms)?,
            store.clone(),
            clock.clone(),
            config.public_url(),
            media_links::MediaLinks::new(key.as_bytes(), &config.public_url()),
            media.clone(),
        ));
        comment_rules.set_providers(providers.clone());
        let outbox = Arc::new(outbox::Outbox::new(
            &config.outbox,
            store.clone(),
            clock.clone(),
            providers.clone(),
            outbox_wake,
            Arc::new(profiles::ProfileSync::new(
                store.clone(),
                providers.clone(),
                clock.clone(),
                media.clone(),
            )),
        ));
        let media_fetch = Arc::new(media_fetch::MediaFetcher::new(
            &config.inbound_media,
            store.clone(),
            providers.clone(),
            clock.clone(),
            media.clone(),
        )?);
        let state = AppState::new(Inner {
            media_fetch,
            config,
            store,
            media,
            clock,
            bus,
            access,
            ingest,
            presence,
            routing,
            automation,
            comment_rules,
            channel_ingest,
            meter,
            outbox,
            outgoing,
            providers,
            push,
            workspace_id,
            visitor_key: key.into_bytes(),
            limits,
            trusted_proxies,
        });
        state.outbox.clone().start();
        state.media_fetch.clone().start();
        if let Some(url) = state.config.nats_url.clone() {
            cluster::join(&url, state.clone(), sequencer)
                .await
                .context("joining the cluster (NATS)")?;
        }
        Ok(Self { listener, state })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .unwrap_or_else(|_| self.state.config.bind)
    }

    pub fn port(&self) -> u16 {
        self.local_addr().port()
    }

    pub fn state(&self) -> AppState {
        self.state.clone()
    }

    /// Serves until `shutdown` resolves, then lets in-flight requests finish.
    pub async fn run_until_stopped(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let app = routes::router(self.state.clone());
        tracing::info!(addr = %self.local_addr(), "serving");
        let runner = timers::spawn_runner(self.state.routing.clone(), self.state.clock.clone());
        let flows =
            automation::spawn_runner(self.state.automation.clone(), self.state.clock.clone());
        let comments = self.state.config.outbox.worker.then(|| {
            comment_rules::spawn_runner(
                self.state.comment_rules.clone(),
                self.state.clock.clone(),
                self.state.config.routing.timer_poll_ms,
            )
        });
        http::serve(self.listener, app, &self.state.config.http, shutdown).await;
        let served = Ok(());
        // A stopped server fires no more timers; another node (or the next start) will.
        for r in [runner, flows, comments].into_iter().flatten() {
            r.abort();
        }
        served
    }
}

/// Resolves on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        if let Ok(mut s) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        {
            s.recv().await;
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
}

pub fn init_tracing(filter: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(filter));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        .try_init();
}
