//! The download worker for the files customers send (photos, videos, voice notes, files,
//! stickers): every inbound file is an attachment row written with its message (in the ingest
//! transaction), `pending` until this worker has copied its bytes into our media store.
//!
//! Durable and leased like the outbox: a file is *claimed* (its next attempt moved past a lease)
//! in one write before it is downloaded, so two workers (two nodes, or a worker and a test) never
//! fetch the same file at once, and a worker that dies leaves it to the next after the lease.
//! Failed attempts are retried with exponential backoff and jitter (`core::inbound_media`), then
//! the file is `failed` and an agent may retry it. `run_due(now)` is the deterministic entry point
//! tests drive; `start` runs it in a loop.
//!
//! The bytes stream into the media store (`media_store`: a directory or an S3 bucket) part by
//! part (never whole in memory), bounded by `inbound_media.max_bytes` while streaming; the type comes from the first bytes
//! (`core::media::sniff`), never from the provider's claim. Pictures get a small JPEG thumbnail,
//! decoded with limits (a decompression bomb is refused, not expanded). There is no video decoder
//! here: a video gets the provider's own thumbnail where it sends one (Telegram, Zalo), made into
//! ours the same way; otherwise the thread shows the browser's first frame.
//! Instagram's files are never here: they stay `remote` (`core::inbound_media`).

use crate::clock::Clock;
use crate::config::InboundMediaConfig;
use crate::media_store::{MediaError, MediaStore};
use crate::provider_api::{Providers, transport_failure};
use futures_util::StreamExt;
use std::sync::Arc;
use std::time::Duration;
use switchboard_channels::meta::Failure;
use switchboard_channels::provider::{ApiCall, refused};
use switchboard_core::Timestamp;
use switchboard_core::inbound_media::{self, Source};
use switchboard_store::{Attachment, FileOutcome, Store};
use tokio::sync::Notify;

/// How long a claimed file is reserved for the worker that claimed it.
const LEASE_MS: i64 = 10 * 60 * 1000;
const BATCH: u32 = 20;
/// Downloads at once.
const AT_ONCE: usize = 4;
/// The thumbnail's longest side.
const THUMB_PX: u32 = 320;
/// Pictures larger than this (bytes) get no thumbnail (their decode would be too costly).
const THUMB_MAX_BYTES: u64 = 25 * 1024 * 1024;
/// The largest provider thumbnail of a video we read (they are a few KB).
const PROVIDER_THUMB_MAX: usize = 2 * 1024 * 1024;

/// What one `run_due` did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct FetchReport {
    pub ready: usize,
    pub retried: usize,
    pub failed: usize,
}

pub struct MediaFetcher {
    store: Arc<dyn Store>,
    providers: Arc<Providers>,
    clock: Arc<dyn Clock>,
    http: reqwest::Client,
    media: MediaStore,
    cfg: InboundMediaConfig,
    notify: Notify,
}

fn failure(reason: &'static str, retry: bool) -> Failure {
    Failure {
        retry,
        ..refused(reason)
    }
}

/// The key of a file's thumbnail.
pub fn thumbnail_key(id: uuid::Uuid) -> String {
    format!("thumbs/{id}")
}

impl MediaFetcher {
    pub fn new(
        cfg: &InboundMediaConfig,
        store: Arc<dyn Store>,
        providers: Arc<Providers>,
        clock: Arc<dyn Clock>,
        media: MediaStore,
    ) -> anyhow::Result<Self> {
        Ok(Self {
            store,
            providers,
            clock,
            http: crate::provider_api::http_client(cfg.download_timeout_ms)?,
            media,
            cfg: cfg.clone(),
            notify: Notify::new(),
        })
    }

    /// Something became due (an agent's retry): let the production loop look now.
    pub fn wake(&self) {
        self.notify.notify_one();
    }

    /// Downloads every file due at `now`. Deterministic: tests call it with the manual clock's
    /// time (a failed attempt is due again later, so one run tries each file once).
    pub async fn run_due(&self, now: Timestamp) -> FetchReport {
        let mut report = FetchReport::default();
        loop {
            let files = match self
                .store
                .claim_due_files(now, now.plus_millis(LEASE_MS), BATCH)
                .await
            {
                Ok(f) => f,
                Err(e) => {
                    tracing::error!(error = %e, "media: claiming files failed");
                    break;
                }
            };
            if files.is_empty() {
                break;
            }
            let outcomes: Vec<_> = futures_util::stream::iter(files)
                .map(|a| async move {
                    let outcome = self.attempt(&a, now).await;
                    (a, outcome)
                })
                .buffer_unordered(AT_ONCE)
                .collect()
                .await;
            for (a, outcome) in outcomes {
                match &outcome {
                    FileOutcome::Ready { .. } => report.ready += 1,
                    FileOutcome::Retry { error, .. } => {
                        tracing::warn!(attachment = %a.id, reason = %error, "media: download will be retried");
                        report.retried += 1;
                    }
                    FileOutcome::Failed { error } => {
                        tracing::warn!(attachment = %a.id, reason = %error, "media: download failed");
                        report.failed += 1;
                    }
                }
                if let Err(e) = self.store.file_fetched(a.id, &outcome, now).await {
                    tracing::error!(error = %e, "media: recording a download failed");
                }
            }
        }
        report
    }

    /// One download attempt of a claimed file, and what it comes to.
    async fn attempt(&self, a: &Attachment, now: Timestamp) -> FileOutcome {
        let attempts = a
            .inbound
            .as_ref()
            .map_or(1, |i| u32::try_from(i.attempts).unwrap_or(u32::MAX));
        match self.fetch(a).await {
            Ok(ready) => ready,
            Err(f) => match f
                .retry
                .then(|| inbound_media::next_attempt(attempts, now, rand::random()))
                .flatten()
            {
                Some(at) => FileOutcome::Retry {
                    at,
                    error: f.reason.to_owned(),
                },
                None => FileOutcome::Failed {
                    error: f.reason.to_owned(),
                },
            },
        }
    }

    async fn fetch(&self, a: &Attachment) -> Result<FileOutcome, Failure> {
        let inbound = a.inbound.as_ref().ok_or_else(|| refused("not_inbound"))?;
        let source = Source::parse(&inbound.source_kind, &inbound.source)
            .ok_or_else(|| refused("media_unavailable"))?;
        let inbox = self
            .store
            .inbox(inbound.inbox_id)
            .await
            .map_err(|_| failure("store_failed", true))?
            .ok_or_else(|| refused("inbox_missing"))?;
        let call = self.providers.media_request(&inbox, &source).await?;
        let key = a.id.to_string();
        let (size, content_type) = self.download(&call, &key).await?;
        let provider_thumbnail = inbound
            .thumbnail_source
            .as_deref()
            .and_then(|s| s.split_once(':'))
            .and_then(|(k, v)| Source::parse(k, v));
        let thumbnail_key = if content_type.starts_with("image/") && size <= THUMB_MAX_BYTES {
            match self.media.bytes(&key, THUMB_MAX_BYTES).await {
                Ok(bytes) => self.thumbnail(a.id, bytes).await,
                Err(_) => None,
            }
        } else if let Some(src) = provider_thumbnail {
            // A video: the provider's own picture of it (we cannot decode video).
            match self.small_download(&inbox, &src).await {
                Ok(bytes) => self.thumbnail(a.id, bytes).await,
                Err(f) => {
                    tracing::info!(attachment = %a.id, reason = f.reason, "media: no provider thumbnail");
                    None
                }
            }
        } else {
            None
        };
        Ok(FileOutcome::Ready {
            content_type: content_type.to_owned(),
            size_bytes: i64::try_from(size).unwrap_or(i64::MAX),
            thumbnail_key,
        })
    }

    /// Streams the download into the media store under `key`: at most `max_bytes` (counted as
    /// it comes, whatever the provider announced), typed by its first bytes.
    async fn download(&self, call: &ApiCall, key: &str) -> Result<(u64, &'static str), Failure> {
        let mut req = self.http.get(&call.url);
        for (k, v) in &call.headers {
            req = req.header(*k, v);
        }
        let resp = req.send().await.map_err(|e| transport_failure(&e))?;
        let status = resp.status().as_u16();
        if !resp.status().is_success() {
            // The CDN's URL expired (403/404/410) or the token was refused: not worth retrying.
            let retry = status == 408 || status == 429 || status >= 500;
            return Err(failure("download_failed", retry));
        }
        let max = self.cfg.max_bytes;
        if resp.content_length().is_some_and(|n| n > max) {
            return Err(refused("file_too_large"));
        }
        let chunks = futures_util::stream::unfold(Some(resp), |r| async move {
            let mut r = r?;
            match r.chunk().await {
                Ok(Some(c)) => Some((Ok(c), Some(r))),
                Ok(None) => None,
                Err(e) => Some((Err(e), None)),
            }
        });
        match self.media.put_stream(key, chunks, max).await {
            Ok(w) => Ok((w.size, switchboard_core::media::sniff(&w.head))),
            Err(MediaError::TooLarge(_)) => Err(refused("file_too_large")),
            // Cut short on the way: the next attempt may get it whole.
            Err(MediaError::Source(_)) => Err(failure("download_interrupted", true)),
            Err(e) => {
                tracing::error!(error = %e, "media: storing a download failed");
                Err(failure("store_failed", true))
            }
        }
    }

    /// A provider's thumbnail of a video: small, read whole (at most [`PROVIDER_THUMB_MAX`]).
    async fn small_download(
        &self,
        inbox: &switchboard_core::Inbox,
        src: &Source,
    ) -> Result<axum::body::Bytes, Failure> {
        let call = self.providers.media_request(inbox, src).await?;
        let mut req = self.http.get(&call.url);
        for (k, v) in &call.headers {
            req = req.header(*k, v);
        }
        let mut resp = req.send().await.map_err(|e| transport_failure(&e))?;
        if !resp.status().is_success() {
            return Err(refused("download_failed"));
        }
        let mut out = Vec::new();
        while let Some(chunk) = resp.chunk().await.map_err(|e| transport_failure(&e))? {
            if out.len() + chunk.len() > PROVIDER_THUMB_MAX {
                return Err(refused("file_too_large"));
            }
            out.extend_from_slice(&chunk);
        }
        Ok(out.into())
    }

    /// Our small JPEG of a picture (stored as the file's thumbnail), or none when it cannot be
    /// decoded within limits.
    async fn thumbnail(&self, id: uuid::Uuid, bytes: axum::body::Bytes) -> Option<String> {
        let key = thumbnail_key(id);
        let made = tokio::task::spawn_blocking(move || {
            crate::thumbnails::jpeg_thumbnail(&bytes, THUMB_PX)
        })
        .await;
        let jpeg = match made {
            Ok(Ok(j)) => j,
            Ok(Err(e)) => {
                tracing::info!(attachment = %id, error = %e, "media: no thumbnail");
                return None;
            }
            Err(_) => return None,
        };
        match self.media.put(&key, jpeg.into()).await {
            Ok(()) => Some(key),
            Err(e) => {
                tracing::warn!(attachment = %id, error = %e, "media: storing a thumbnail failed");
                None
            }
        }
    }

    /// The production loop: download what is due, then wait for a wake-up or the next due file
    /// (files of new messages are due at once: look again within a second).
    pub fn start(self: Arc<Self>) {
        if !self.cfg.worker {
            return;
        }
        tokio::spawn(async move {
            loop {
                let report = self.run_due(self.clock.now()).await;
                if report != FetchReport::default() {
                    continue;
                }
                let wait_ms = match self.store.next_file_due().await {
                    Ok(Some(t)) => (t.millis() - self.clock.now().millis()).clamp(10, 1_000),
                    _ => 1_000,
                };
                let wait = Duration::from_millis(u64::try_from(wait_ms).unwrap_or(1_000));
                tokio::select! {
                    _ = self.notify.notified() => {}
                    _ = tokio::time::sleep(wait) => {}
                }
            }
        });
    }
}
