//! The group-commit writer for provider channel events (Messenger, Instagram...): like
//! [`crate::ingest`], one task commits whatever is queued in one transaction and answers each
//! caller after the commit, so a webhook is acknowledged only once its events are on disk. A
//! webhook's items travel together and land in one batch, in order.

use crate::automation::{Automation, CustomerMessage};
use crate::clock::Clock;
use crate::comment_rules::{CommentArrived, CommentRules};
use crate::routing::Routing;
use std::future::Future;
use std::sync::Arc;
use switchboard_core::{ContactId, ConversationId, InboxId, MessageId, MessageKind, WorkspaceId};
use switchboard_store::{
    ChannelOutcome, InboundEvent, IngestError, NewIds, Stamped, Store, StoreError,
};
use tokio::sync::{mpsc, oneshot};

/// Why submitted items were not (all) stored.
#[derive(Debug, Clone, thiserror::Error)]
pub enum IngestFailure {
    #[error(transparent)]
    Rejected(#[from] IngestError),
    #[error("could not store the message")]
    Store,
    #[error("the ingest writer has stopped")]
    Stopped,
}

type Outcomes = Vec<Result<ChannelOutcome, IngestError>>;
type Reply = oneshot::Sender<Result<Outcomes, IngestFailure>>;

/// An event for an inbox, with fresh ids for the rows it may create.
pub fn stamp(workspace_id: WorkspaceId, inbox_id: InboxId, event: InboundEvent) -> Stamped {
    let id = uuid::Uuid::now_v7;
    Stamped {
        workspace_id,
        inbox_id,
        ids: NewIds {
            message: MessageId(id()),
            conversation: ConversationId(id()),
            contact: ContactId(id()),
        },
        event,
    }
}

#[derive(Clone)]
pub struct ChannelIngest {
    tx: mpsc::Sender<(Vec<Stamped>, Reply)>,
    routing: Routing,
    automation: Automation,
    comments: CommentRules,
}

impl ChannelIngest {
    /// `batch_max`: the most callers (webhooks) one batch takes.
    pub fn start(
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
        batch_max: usize,
        routing: Routing,
        automation: Automation,
        comments: CommentRules,
    ) -> std::io::Result<Self> {
        let (tx, rx) = mpsc::channel(batch_max.max(1) * 8);
        crate::writer_thread::spawn("sb-ingest", run(store, clock, rx, batch_max.max(1)))?;
        Ok(Self {
            tx,
            routing,
            automation,
            comments,
        })
    }

    /// Queues the items (in order, in one batch) and waits until all of them are durably stored.
    /// Every string loses its NUL and other control characters first (see
    /// [`InboundEvent::strip_controls`]). A store failure fails the whole call (and only this call,
    /// not the others in its batch): the provider retries and duplicates collapse.
    pub async fn submit_all(&self, items: Vec<Stamped>) -> Result<Outcomes, IngestFailure> {
        if items.is_empty() {
            return Ok(Vec::new());
        }
        let mut items = items;
        items.iter_mut().for_each(|i| i.event.strip_controls());
        let (reply, wait) = oneshot::channel();
        let (tx_items, customer) = split_customer(items);
        self.tx
            .send((tx_items, reply))
            .await
            .map_err(|_| IngestFailure::Stopped)?;
        let out = wait.await.map_err(|_| IngestFailure::Stopped)??;
        // After the commit: a message a flow may take goes to automation, off this path (its
        // worker routes the conversation if no flow takes it); any other conversation the message
        // created or reopened is routed now (a routing failure is logged and the runner's backlog
        // sweep routes it later).
        for (o, said) in out.iter().zip(customer) {
            let Ok(ChannelOutcome::Message(done)) = o else {
                continue;
            };
            if done.duplicate {
                continue;
            }
            // Comment rules decide off this path (their workers); a phone or email in a message
            // is offered on the profile (no read at all for a message without digits or `@`).
            if let Some(s) = &said {
                if s.kind == MessageKind::Comment {
                    self.comments
                        .enqueue(CommentArrived {
                            workspace_id: s.workspace_id,
                            inbox_id: s.inbox_id,
                            conversation_id: done.conversation_id,
                            contact_id: done.contact_id,
                            message_id: done.message_id,
                            text: s.text.clone(),
                            comment: s.meta["comment"].clone(),
                            person: s.person.clone(),
                            at: s.at,
                        })
                        .await;
                }
                if s.kind != MessageKind::Comment
                    && s.text.bytes().any(|b| b.is_ascii_digit() || b == b'@')
                {
                    let (comments, contact, text) =
                        (self.comments.clone(), done.contact_id, s.text.clone());
                    tokio::spawn(async move {
                        let now = comments.now();
                        comments.offer(contact, &text, now).await;
                    });
                }
            }
            let is_comment = said
                .as_ref()
                .is_some_and(|s| s.kind == MessageKind::Comment);
            if let Some(Said {
                workspace_id,
                inbox_id,
                text,
                meta,
                ..
            }) = said
            {
                let m = CustomerMessage {
                    workspace_id,
                    inbox_id,
                    conversation_id: done.conversation_id,
                    text,
                    meta,
                    entered_pool: done.entered_pool,
                    held_by_bot: done.held_by_bot,
                    answer_flow_possible: !is_comment && self.comments.may_await_answers(),
                };
                if self.automation.wants(&m).await {
                    self.automation.enqueue(m).await;
                    continue;
                }
            }
            if done.entered_pool
                && let Err(e) = self.routing.on_entered_pool(done.conversation_id).await
            {
                tracing::warn!(error = %e, "routing a new conversation failed");
            }
        }
        Ok(out)
    }
}

/// What automation and comment rules need of each customer message, beside the items (which
/// go to the writer).
struct Said {
    workspace_id: WorkspaceId,
    inbox_id: InboxId,
    text: String,
    meta: serde_json::Value,
    kind: MessageKind,
    person: String,
    at: switchboard_core::Timestamp,
}

fn split_customer(items: Vec<Stamped>) -> (Vec<Stamped>, Vec<Option<Said>>) {
    let said = items
        .iter()
        .map(|i| match &i.event {
            InboundEvent::Customer(s) => Some(Said {
                workspace_id: i.workspace_id,
                inbox_id: i.inbox_id,
                text: s.text.clone(),
                meta: s.meta.clone(),
                kind: s.kind,
                person: i.event.customer().unwrap_or_default().to_owned(),
                at: s.at,
            }),
            _ => None,
        })
        .collect();
    (items, said)
}

async fn run(
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    mut rx: mpsc::Receiver<(Vec<Stamped>, Reply)>,
    batch_max: usize,
) {
    let mut queued = Vec::with_capacity(batch_max);
    while rx.recv_many(&mut queued, batch_max).await > 0 {
        let (lists, replies): (Vec<Vec<Stamped>>, Vec<Reply>) = queued.drain(..).unzip();
        let sizes: Vec<usize> = lists.iter().map(Vec::len).collect();
        let items: Vec<Stamped> = lists.into_iter().flatten().collect();
        let now = clock.now();
        let results = commit(&items, &sizes, |part| store.ingest_channel(part, now)).await;
        for (reply, result) in replies.into_iter().zip(results) {
            let _ = reply.send(result);
        }
    }
}

/// Commits the callers' items (`sizes[i]` of them for caller `i`, in order) in one transaction.
/// If that fails, each caller's items are committed alone, so an event the store refuses fails
/// only the webhook or widget message it came in — never its neighbours in the batch.
async fn commit<'a, F, Fut>(
    items: &'a [Stamped],
    sizes: &[usize],
    ingest: F,
) -> Vec<Result<Outcomes, IngestFailure>>
where
    F: Fn(&'a [Stamped]) -> Fut,
    Fut: Future<Output = Result<Outcomes, StoreError>> + 'a,
{
    match ingest(items).await {
        Ok(outcomes) => {
            let mut outcomes = outcomes.into_iter();
            return sizes
                .iter()
                .map(|&n| Ok(outcomes.by_ref().take(n).collect()))
                .collect();
        }
        Err(e) if sizes.len() > 1 => {
            tracing::warn!(error = %e, batch = items.len(), "channel ingest batch failed; committing each caller's items alone");
        }
        Err(e) => {
            tracing::error!(error = %e, batch = items.len(), "channel ingest failed");
            return vec![Err(IngestFailure::Store)];
        }
    }
    let mut results = Vec::with_capacity(sizes.len());
    let mut start = 0;
    for &n in sizes {
        let part = &items[start..start + n];
        start += n;
        results.push(ingest(part).await.map_err(|e| {
            tracing::error!(error = %e, items = n, "channel ingest failed");
            IngestFailure::Store
        }));
    }
    results
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use std::cell::RefCell;
    use switchboard_core::*;
    use switchboard_store::{InboundSender, Said};

    fn item(text: &str) -> Stamped {
        let nil = uuid::Uuid::nil();
        stamp(
            WorkspaceId(nil),
            InboxId(nil),
            InboundEvent::Customer(Said {
                from: InboundSender::identity("psid", None),
                provider_message_id: text.into(),
                kind: MessageKind::Text,
                text: text.into(),
                at: Timestamp(0),
                meta: serde_json::Value::Null,
                replying_to: None,
                alias: None,
            }),
        )
    }

    fn text(i: &Stamped) -> &str {
        match &i.event {
            InboundEvent::Customer(m) => &m.text,
            _ => "",
        }
    }

    #[tokio::test]
    async fn one_refused_event_fails_only_its_own_caller() {
        // Three callers (a two-event webhook, a bad widget message, a webhook) in one batch; the
        // store refuses any transaction holding the bad one.
        let items = [item("a1"), item("a2"), item("bad"), item("c1")];
        let calls = RefCell::new(Vec::new());
        let results = commit(&items, &[2, 1, 1], |part| {
            calls.borrow_mut().push(part.len());
            let refused = part.iter().any(|i| text(i) == "bad");
            let n = part.len();
            async move {
                if refused {
                    Err(StoreError::Unsupported("refused".into()))
                } else {
                    Ok((0..n).map(|_| Ok(ChannelOutcome::Nothing)).collect())
                }
            }
        })
        .await;
        assert_eq!(calls.into_inner(), vec![4, 2, 1, 1]);
        assert_eq!(results.len(), 3);
        assert_eq!(results[0].as_ref().unwrap().len(), 2);
        assert!(matches!(results[1], Err(IngestFailure::Store)));
        assert_eq!(results[2].as_ref().unwrap().len(), 1);
    }

    #[tokio::test]
    async fn a_good_batch_is_one_transaction_split_back_to_its_callers() {
        let items = [item("a"), item("b"), item("c")];
        let calls = RefCell::new(0);
        let results = commit(&items, &[1, 2], |part| {
            *calls.borrow_mut() += 1;
            let n = part.len();
            async move { Ok((0..n).map(|_| Ok(ChannelOutcome::Updated(1))).collect()) }
        })
        .await;
        assert_eq!(*calls.borrow(), 1);
        assert_eq!(
            results
                .iter()
                .map(|r| r.as_ref().unwrap().len())
                .collect::<Vec<_>>(),
            vec![1, 2]
        );
    }
}
