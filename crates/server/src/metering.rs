//! WhatsApp cost metering through a group-commit writer: the charges of every webhook queued at
//! the moment go in one transaction (one disk flush), and each caller is answered after the
//! commit — as for ingest ([`crate::channel_ingest`]). Metering a message in a transaction of its
//! own cost a flush per message and capped WhatsApp ingest far below Messenger's.

use crate::channel_ingest::IngestFailure;
use std::sync::Arc;
use switchboard_core::billing::{Charge, Tariff};
use switchboard_store::{MeterEvent, Store};
use tokio::sync::{mpsc, oneshot};

type Reply = oneshot::Sender<Result<Vec<Charge>, IngestFailure>>;

#[derive(Clone)]
pub struct MeterWriter {
    tx: mpsc::Sender<(Vec<MeterEvent>, Reply)>,
}

impl MeterWriter {
    pub fn start(store: Arc<dyn Store>, tariff: Tariff, batch_max: usize) -> std::io::Result<Self> {
        let (tx, rx) = mpsc::channel(batch_max.max(1) * 8);
        crate::writer_thread::spawn("sb-meter", run(store, tariff, rx, batch_max.max(1)))?;
        Ok(Self { tx })
    }

    /// Meters the events (in order, after any queued before them) and waits for the commit.
    pub async fn meter(&self, events: Vec<MeterEvent>) -> Result<Vec<Charge>, IngestFailure> {
        if events.is_empty() {
            return Ok(Vec::new());
        }
        let (reply, wait) = oneshot::channel();
        self.tx
            .send((events, reply))
            .await
            .map_err(|_| IngestFailure::Stopped)?;
        wait.await.map_err(|_| IngestFailure::Stopped)?
    }
}

async fn run(
    store: Arc<dyn Store>,
    tariff: Tariff,
    mut rx: mpsc::Receiver<(Vec<MeterEvent>, Reply)>,
    batch_max: usize,
) {
    let mut queued = Vec::new();
    while rx.recv_many(&mut queued, batch_max).await > 0 {
        let (lists, replies): (Vec<Vec<MeterEvent>>, Vec<Reply>) = queued.drain(..).unzip();
        let sizes: Vec<usize> = lists.iter().map(Vec::len).collect();
        let events: Vec<MeterEvent> = lists.into_iter().flatten().collect();
        match store.meter_whatsapp_many(&events, &tariff).await {
            Ok(charges) => {
                let mut charges = charges.into_iter();
                for (reply, n) in replies.into_iter().zip(sizes) {
                    let _ = reply.send(Ok(charges.by_ref().take(n).collect()));
                }
            }
            Err(e) => {
                tracing::error!(error = %e, batch = events.len(), "metering batch failed");
                for reply in replies {
                    let _ = reply.send(Err(IngestFailure::Store));
                }
            }
        }
    }
}

/// The template category of one of our WhatsApp messages (for metering), from its extras.
pub fn template_category(
    meta: Option<&switchboard_store::MessageMeta>,
) -> Option<switchboard_core::billing::Category> {
    meta.and_then(|m| m.meta["template"]["category"].as_str())
        .and_then(switchboard_core::billing::Category::of_template)
}
