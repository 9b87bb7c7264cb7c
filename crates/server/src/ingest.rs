//! The ingest writer: every inbound message, from any channel, goes through one task that commits
//! whatever is queued in one transaction (group commit) and answers each caller after the commit.
//! A caller that gets `Ok` may acknowledge its webhook: the message is on disk.

use crate::clock::Clock;
use crate::routing::Routing;
use std::sync::Arc;
use switchboard_store::{Inbound, IngestError, Ingested, Store};
use tokio::sync::{mpsc, oneshot};

type Reply = oneshot::Sender<Result<Ingested, IngestFailure>>;

#[derive(Debug, Clone, thiserror::Error)]
pub enum IngestFailure {
    #[error(transparent)]
    Rejected(#[from] IngestError),
    #[error("could not store the message")]
    Store,
    #[error("the ingest writer has stopped")]
    Stopped,
}

#[derive(Clone)]
pub struct Ingest {
    tx: mpsc::Sender<(Inbound, Reply)>,
    routing: Routing,
}

impl Ingest {
    /// Starts the writer task. `batch_max` bounds one transaction.
    pub fn start(
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
        batch_max: usize,
        routing: Routing,
    ) -> Self {
        let (tx, rx) = mpsc::channel(batch_max.max(1) * 8);
        tokio::spawn(run(store, clock, rx, batch_max.max(1)));
        Self { tx, routing }
    }

    /// Queues one message and waits until it is durably stored (or refused). A conversation the
    /// message created or reopened is routed before this returns (in the caller's task, so the
    /// writer keeps batching); a routing failure is logged, the message stays stored, and the
    /// runner's backlog sweep routes it later.
    pub async fn submit(&self, item: Inbound) -> Result<Ingested, IngestFailure> {
        let (reply, wait) = oneshot::channel();
        self.tx
            .send((item, reply))
            .await
            .map_err(|_| IngestFailure::Stopped)?;
        let done = wait.await.map_err(|_| IngestFailure::Stopped)??;
        if done.entered_pool
            && let Err(e) = self.routing.on_entered_pool(done.conversation_id).await
        {
            tracing::warn!(error = %e, "routing a new conversation failed");
        }
        Ok(done)
    }
}

async fn run(
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    mut rx: mpsc::Receiver<(Inbound, Reply)>,
    batch_max: usize,
) {
    let mut queued = Vec::with_capacity(batch_max);
    while rx.recv_many(&mut queued, batch_max).await > 0 {
        let (items, replies): (Vec<Inbound>, Vec<Reply>) = queued.drain(..).unzip();
        match store.ingest(&items, clock.now()).await {
            Ok(outcomes) => {
                for (reply, outcome) in replies.into_iter().zip(outcomes) {
                    let _ = reply.send(outcome.map_err(IngestFailure::from));
                }
            }
            Err(e) => {
                // Nothing of this batch was committed: every caller hears so and its provider retries.
                tracing::error!(error = %e, batch = items.len(), "ingest batch failed");
                for reply in replies {
                    let _ = reply.send(Err(IngestFailure::Store));
                }
            }
        }
    }
}
