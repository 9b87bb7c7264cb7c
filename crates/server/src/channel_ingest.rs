//! The group-commit writer for provider channel events (Messenger, Instagram...): like
//! [`crate::ingest`], one task commits whatever is queued in one transaction and answers each
//! caller after the commit, so a webhook is acknowledged only once its events are on disk. A
//! webhook's items travel together and land in one batch, in order.

use crate::clock::Clock;
use crate::ingest::IngestFailure;
use crate::routing::Routing;
use std::sync::Arc;
use switchboard_store::{ChannelItem, ChannelOutcome, IngestError, Store};
use tokio::sync::{mpsc, oneshot};

type Outcomes = Vec<Result<ChannelOutcome, IngestError>>;
type Reply = oneshot::Sender<Result<Outcomes, IngestFailure>>;

#[derive(Clone)]
pub struct ChannelIngest {
    tx: mpsc::Sender<(Vec<ChannelItem>, Reply)>,
    routing: Routing,
}

impl ChannelIngest {
    /// `batch_max`: the most callers (webhooks) one batch takes.
    pub fn start(
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
        batch_max: usize,
        routing: Routing,
    ) -> std::io::Result<Self> {
        let (tx, rx) = mpsc::channel(batch_max.max(1) * 8);
        crate::writer_thread::spawn("sb-ingest", run(store, clock, rx, batch_max.max(1)))?;
        Ok(Self { tx, routing })
    }

    /// Queues the items (in order, in one batch) and waits until all of them are durably stored.
    /// A store failure fails the whole call: the provider retries and duplicates collapse.
    pub async fn submit_all(&self, items: Vec<ChannelItem>) -> Result<Outcomes, IngestFailure> {
        if items.is_empty() {
            return Ok(Vec::new());
        }
        let (reply, wait) = oneshot::channel();
        self.tx
            .send((items, reply))
            .await
            .map_err(|_| IngestFailure::Stopped)?;
        let out = wait.await.map_err(|_| IngestFailure::Stopped)??;
        // As for live chat: a conversation a customer message created or reopened is routed now;
        // a failure is logged and the runner's backlog sweep routes it later.
        for o in &out {
            if let Ok(ChannelOutcome::Message(done)) = o
                && done.entered_pool
                && let Err(e) = self.routing.on_entered_pool(done.conversation_id).await
            {
                tracing::warn!(error = %e, "routing a new conversation failed");
            }
        }
        Ok(out)
    }
}

async fn run(
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    mut rx: mpsc::Receiver<(Vec<ChannelItem>, Reply)>,
    batch_max: usize,
) {
    let mut queued = Vec::with_capacity(batch_max);
    while rx.recv_many(&mut queued, batch_max).await > 0 {
        let (lists, replies): (Vec<Vec<ChannelItem>>, Vec<Reply>) = queued.drain(..).unzip();
        let sizes: Vec<usize> = lists.iter().map(Vec::len).collect();
        let items: Vec<ChannelItem> = lists.into_iter().flatten().collect();
        match store.ingest_channel(&items, clock.now()).await {
            Ok(outcomes) => {
                let mut outcomes = outcomes.into_iter();
                for (reply, n) in replies.into_iter().zip(sizes) {
                    let _ = reply.send(Ok(outcomes.by_ref().take(n).collect()));
                }
            }
            Err(e) => {
                tracing::error!(error = %e, batch = items.len(), "channel ingest batch failed");
                for reply in replies {
                    let _ = reply.send(Err(IngestFailure::Store));
                }
            }
        }
    }
}
