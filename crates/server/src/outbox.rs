//! The outbox worker: sends queued provider messages (Send API, comment replies) with retries,
//! records the provider's id or a clear failure reason, and never sends one row twice.
//!
//! A row is *claimed* (state `sending`, with a lease) in one write before its request goes out,
//! so two workers (or a worker and a test) never send the same row. `run_due(now)` is the
//! deterministic entry point tests drive; `start` runs it in a loop for production. New customer
//! profiles (name, picture) are fetched here too, off the webhook's hot path.

use crate::clock::Clock;
use crate::config::OutboxConfig;
use crate::provider_api::Providers;
pub use crate::provider_api::{RESPONSE_LOST, http_client, transport_failure};
use futures_util::StreamExt;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use switchboard_core::retry::{self, RetryPolicy};
use switchboard_core::{ConversationId, DeliveryStatus, Direction, InboxId, MessageId, Timestamp};
use switchboard_store::{OutboxRow, Store};
use tokio::sync::Notify;

/// How long a claimed row is reserved for the worker that claimed it.
const LEASE_MS: i64 = 5 * 60 * 1000;
const BATCH: u32 = 50;
/// Runs of the production loop at once.
const RUNS: usize = 4;
/// Conversations of one inbox sent at once (a provider's per-account limits stay in sight).
const PER_INBOX: usize = 4;
/// Recent messages looked at for an earlier unsent one of the same conversation.
const EARLIER_LOOKBACK: u32 = 50;
/// How long a send whose answer was lost waits for the provider's echo or status before it is
/// reported `delivery_unknown` (echoes and statuses come within seconds when they come at all).
const HOLD_FOR_ECHO_MS: i64 = 10 * 60 * 1000;
/// The note on a row held behind an earlier message of its conversation.
const WAITING_FOR_EARLIER: &str = "waiting_for_earlier";

pub use crate::profiles::ProfileJob;

/// What one `run_due` did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct RunReport {
    pub sent: usize,
    pub retried: usize,
    pub failed: usize,
    pub profiles: usize,
}

pub struct Outbox {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    providers: Arc<Providers>,
    notify: Arc<Notify>,
    retry: RetryPolicy,
    profiles: Mutex<Vec<ProfileJob>>,
    profile_sync: Arc<crate::profiles::ProfileSync>,
    worker: bool,
}

impl RunReport {
    fn add(&mut self, o: RunReport) {
        self.sent += o.sent;
        self.retried += o.retried;
        self.failed += o.failed;
        self.profiles += o.profiles;
    }
}

/// The claimed rows per inbox, per conversation, each conversation's in the order queued.
fn by_inbox_and_conversation(rows: Vec<OutboxRow>) -> Vec<Vec<Vec<OutboxRow>>> {
    let mut inboxes: std::collections::BTreeMap<
        InboxId,
        std::collections::BTreeMap<ConversationId, Vec<OutboxRow>>,
    > = std::collections::BTreeMap::new();
    for row in rows {
        inboxes
            .entry(row.inbox_id)
            .or_default()
            .entry(row.conversation_id)
            .or_default()
            .push(row);
    }
    inboxes
        .into_values()
        .map(|convs| {
            convs
                .into_values()
                .map(|mut rows| {
                    rows.sort_by_key(|r| (r.queued_at, r.message_id));
                    rows
                })
                .collect()
        })
        .collect()
}

impl Outbox {
    /// `notify`: what wakes the production loop (the `send` command holds it too).
    pub fn new(
        cfg: &OutboxConfig,
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
        providers: Arc<Providers>,
        notify: Arc<Notify>,
        profile_sync: Arc<crate::profiles::ProfileSync>,
    ) -> Self {
        let ms = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
        Self {
            store,
            clock,
            providers,
            notify,
            retry: RetryPolicy {
                base_ms: ms(cfg.retry_base_ms),
                max_ms: ms(cfg.retry_max_ms),
                give_up_after_ms: ms(cfg.give_up_after_secs).saturating_mul(1000),
            },
            profiles: Mutex::new(Vec::new()),
            profile_sync,
            worker: cfg.worker,
        }
    }

    /// Something was queued: let the production loop look now.
    pub fn wake(&self) {
        self.notify.notify_one();
    }

    pub fn want_profile(&self, job: ProfileJob) {
        if let Ok(mut p) = self.profiles.lock()
            && !p.contains(&job)
        {
            p.push(job);
        }
        self.wake();
    }

    /// Sends every row due at `now` (and fetches pending profiles). Deterministic: tests call it
    /// with the manual clock's time. Conversations are sent concurrently (up to
    /// [`PER_INBOX`] at once per inbox, every inbox at once), each conversation's messages one
    /// after the other in the order they were queued: a slow provider or inbox never holds up
    /// another, and a customer never gets replies out of order.
    pub async fn run_due(&self, now: Timestamp) -> RunReport {
        let mut report = RunReport::default();
        loop {
            let rows = match self
                .store
                .claim_due(now, now.plus_millis(LEASE_MS), BATCH)
                .await
            {
                Ok(r) => r,
                Err(e) => {
                    tracing::error!(error = %e, "outbox: claiming rows failed");
                    break;
                }
            };
            if rows.is_empty() {
                break;
            }
            let inboxes = by_inbox_and_conversation(rows);
            let done = futures_util::future::join_all(inboxes.into_iter().map(|convs| {
                futures_util::stream::iter(convs)
                    .map(|rows| self.send_conversation(rows, now))
                    .buffer_unordered(PER_INBOX)
                    .collect::<Vec<RunReport>>()
            }))
            .await;
            for r in done.into_iter().flatten() {
                report.add(r);
            }
        }
        let jobs: Vec<ProfileJob> = self
            .profiles
            .lock()
            .map(|mut p| std::mem::take(&mut *p))
            .unwrap_or_default();
        for job in jobs {
            if self.sync_profile(&job).await {
                report.profiles += 1;
            }
        }
        report
    }

    /// One conversation's due rows, oldest first. Once one has to wait (a retry, an unanswered
    /// send held for its echo), the later ones wait behind it; and none goes out while an
    /// earlier message of the conversation, not claimed in this batch, is still unsent.
    async fn send_conversation(&self, rows: Vec<OutboxRow>, now: Timestamp) -> RunReport {
        let mut report = RunReport::default();
        let mut wait_until = self.earlier_unsent(&rows, now).await;
        for row in rows {
            if let Some(at) = wait_until {
                self.reschedule(&row, at, WAITING_FOR_EARLIER, now, &mut report)
                    .await;
                continue;
            }
            wait_until = self.send_one(&row, now, &mut report).await;
        }
        report
    }

    /// When an earlier outbound message of the rows' conversation is still unsent (queued for a
    /// retry, or being sent by another worker): just after its next attempt.
    async fn earlier_unsent(&self, rows: &[OutboxRow], now: Timestamp) -> Option<Timestamp> {
        let first = rows.first()?;
        let ours: std::collections::HashSet<MessageId> =
            rows.iter().map(|r| r.message_id).collect();
        let recent = self
            .store
            .messages(first.conversation_id, None, EARLIER_LOOKBACK, false)
            .await
            .ok()?;
        let mut until: Option<Timestamp> = None;
        // Earlier by (time, id): messages queued in the same millisecond (a burst of automatic
        // replies) are ordered too, so two rows never wait for each other.
        for m in recent.items.iter().filter(|m| {
            m.direction == Direction::Outbound
                && m.delivery_status == DeliveryStatus::Queued
                && (m.created_at, m.id) < (first.queued_at, first.message_id)
                && !ours.contains(&m.id)
        }) {
            let at = match self.store.outbox_row(m.id).await {
                Ok(Some(r)) if r.state == "queued" => r.next_attempt_at,
                // Being sent by another worker right now: look again shortly.
                Ok(Some(r)) if r.state == "sending" => now.plus_millis(self.retry.base_ms),
                _ => continue,
            };
            until = Some(until.map_or(at, |u| u.max(at)));
        }
        // Strictly after it, so the earlier one is claimed (and sent) first.
        until.map(|t| t.max(now).plus_millis(1))
    }

    async fn reschedule(
        &self,
        row: &OutboxRow,
        at: Timestamp,
        why: &str,
        now: Timestamp,
        report: &mut RunReport,
    ) {
        match self.store.outbox_retry(row.message_id, at, why, now).await {
            Ok(()) => report.retried += 1,
            Err(e) => tracing::error!(error = %e, "outbox: rescheduling failed"),
        }
    }

    async fn send_one(
        &self,
        row: &OutboxRow,
        now: Timestamp,
        report: &mut RunReport,
    ) -> Option<Timestamp> {
        // Sent once already, but the provider's answer never came, and neither did its echo or
        // status since; or the worker sending it died (a crash, `kill -9`) and its lease ran out:
        // sending again could reach the customer twice. Say so instead.
        if matches!(
            row.last_error.as_deref(),
            Some(RESPONSE_LOST | switchboard_store::OUTBOX_INTERRUPTED)
        ) {
            tracing::warn!(message_id = %row.message_id, "outbox: no answer, echo or status for a sent request");
            self.fail(row, "delivery_unknown", now, report).await;
            return None;
        }
        let inbox = match self.store.inbox(row.inbox_id).await {
            Ok(Some(i)) => i,
            _ => {
                self.fail(row, "inbox_missing", now, report).await;
                return None;
            }
        };
        match self.providers.send(&inbox, row, now).await {
            Ok(sent) => {
                match self
                    .store
                    .outbox_sent(
                        row.message_id,
                        &sent.provider_message_id,
                        sent.recipient.as_deref(),
                        now,
                    )
                    .await
                {
                    Ok(_) => {
                        report.sent += 1;
                        tracing::info!(message_id = %row.message_id, job = row.job.as_str(), "outbox: sent");
                    }
                    Err(e) => {
                        tracing::error!(error = %e, message_id = %row.message_id, "outbox: recording a send failed")
                    }
                }
                None
            }
            // The request went out and no answer came: the provider may have accepted it. Hold
            // the row until its echo or status (which mark it sent) can arrive; never resend.
            Err(f) if f.reason == RESPONSE_LOST => {
                let at = now.plus_millis(HOLD_FOR_ECHO_MS);
                tracing::warn!(message_id = %row.message_id, "outbox: no answer after sending; waiting for the provider's echo or status");
                self.reschedule(row, at, RESPONSE_LOST, now, report).await;
                Some(at)
            }
            Err(f) if f.retry => {
                let jitter: f64 = rand::random();
                match retry::next_attempt(
                    &self.retry,
                    row.attempts,
                    row.queued_at,
                    now,
                    f.retry_after_ms,
                    jitter,
                ) {
                    Some(at) => {
                        tracing::warn!(message_id = %row.message_id, reason = f.reason, code = ?f.code, attempt = row.attempts, "outbox: will retry");
                        self.reschedule(row, at, f.reason, now, report).await;
                        Some(at)
                    }
                    None => {
                        self.fail(row, f.reason, now, report).await;
                        None
                    }
                }
            }
            Err(f) => {
                tracing::warn!(message_id = %row.message_id, reason = f.reason, code = ?f.code, subcode = ?f.subcode, "outbox: failed");
                self.fail(row, f.reason, now, report).await;
                None
            }
        }
    }

    async fn fail(&self, row: &OutboxRow, reason: &str, now: Timestamp, report: &mut RunReport) {
        match self.store.outbox_failed(row.message_id, reason, now).await {
            Ok(_) => report.failed += 1,
            Err(e) => tracing::error!(error = %e, "outbox: recording a failure failed"),
        }
    }

    async fn sync_profile(&self, job: &ProfileJob) -> bool {
        match self.profile_sync.run(job).await {
            Ok(_) => true,
            Err(f) => {
                tracing::warn!(reason = f.reason, "profile sync failed");
                false
            }
        }
    }

    /// Syncs one profile now (the agent's "sync from channel").
    pub async fn sync_profile_now(
        &self,
        job: &ProfileJob,
    ) -> Result<crate::profiles::Synced, switchboard_channels::meta::Failure> {
        self.profile_sync.run(job).await
    }

    /// The production loop: start a run of what is due (up to [`RUNS`] at once, so a run stuck
    /// on a hanging provider leaves room for the next), then wait for a wake-up or the next due
    /// row. Runs never share a row: each claims its own.
    pub fn start(self: Arc<Self>) {
        if !self.worker {
            return;
        }
        let runs = Arc::new(tokio::sync::Semaphore::new(RUNS));
        tokio::spawn(async move {
            loop {
                if let Ok(permit) = runs.clone().try_acquire_owned() {
                    let outbox = self.clone();
                    tokio::spawn(async move {
                        let now = outbox.clock.now();
                        let report = outbox.run_due(now).await;
                        drop(permit);
                        // More may have come due while this run was busy.
                        if report != RunReport::default() {
                            outbox.wake();
                        }
                    });
                }
                let wait_ms = match self.store.next_due().await {
                    Ok(Some(t)) => (t.millis() - self.clock.now().millis()).clamp(10, 5_000),
                    _ => 5_000,
                };
                let wait = Duration::from_millis(u64::try_from(wait_ms).unwrap_or(5_000));
                tokio::select! {
                    _ = self.notify.notified() => {}
                    _ = tokio::time::sleep(wait) => {}
                }
            }
        });
    }
}
