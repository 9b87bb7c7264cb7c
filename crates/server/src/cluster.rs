//! Several stateless nodes acting as one service: PostgreSQL holds the state, NATS carries the
//! realtime fan-out and the signals between nodes. Nothing here is a source of truth: the store is.
//!
//! * **Committed events** are published on `sb.<workspace>.inbox.<inbox>` (or `sb.<workspace>.events`
//!   when they belong to no inbox). Every node delivers them to its own sockets through the
//!   [`Sequencer`], strictly in `seq` order and without gaps: an event that arrives early waits a
//!   moment for the ones before it, and a gap that does not fill (a message lost while NATS was
//!   away, a node that died between commit and publish) is read from the store — which the
//!   PostgreSQL store's event counter makes safe: once seq N is committed, every lower seq is too.
//!   A one-second poll of the counter catches up a node that heard nothing at all (NATS down).
//! * **Typing** is published on `sb.<workspace>.inbox.<inbox>.typing` (ephemeral, never stored).
//! * **Control** (`sb.<workspace>.control`): a session ended, an agent changed, memberships changed —
//!   so every node's sockets and access cache follow.
//! * **Presence** (`sb.<workspace>.presence`): each node announces its own agents' entries (sockets,
//!   away choice, activity) when they change and all of them every [`HEARTBEAT`]; a node not heard
//!   from for [`FORGET_AFTER`] is forgotten (its agents' sockets no longer count). Every node works
//!   out statuses from all entries and lets routing react, so presence-dependent decisions (who gets
//!   a conversation, offline release) see agents on every node.
//!
//! Only core NATS publish/subscribe is used (Debian's nats-server is 2.9; no JetStream needed: the
//! store is the durable log). The connection is made in the background and re-made after a loss;
//! the node keeps serving meanwhile.

use crate::bus::{Bus, Control, Peers};
use crate::presence::Entry;
use crate::state::AppState;
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;
use switchboard_core::event::{Event, EventKind};
use switchboard_core::*;
use switchboard_store::Store;
use tokio::sync::{Notify, mpsc};
// Transport timing only (how long to wait for a missing event, when a silent node counts as gone):
// tokio's monotonic clock, which tests can pause. Domain time always comes from the injected Clock.
use tokio::time::Instant;

/// How often a node announces all its agents' presence.
pub const HEARTBEAT: Duration = Duration::from_secs(2);
/// A node silent this long is taken as gone.
pub const FORGET_AFTER: Duration = Duration::from_secs(10);
/// How long an event that arrived ahead of its predecessors waits for them before the store is asked.
const GAP_WAIT: Duration = Duration::from_millis(50);
/// How often the sequencer checks the store's counter for events it never heard of.
const POLL: Duration = Duration::from_secs(1);
/// Messages waiting to be published; beyond this (NATS unreachable for long) they are dropped —
/// the other nodes read committed events from the store anyway.
const OUTGOING: usize = 16_384;

// ------------------------------------------------------------------ wire formats

#[derive(Serialize, Deserialize)]
struct WireEvent {
    seq: i64,
    workspace_id: WorkspaceId,
    inbox_id: Option<InboxId>,
    conversation_id: Option<ConversationId>,
    kind: String,
    payload: serde_json::Value,
    created_at: Timestamp,
}

impl WireEvent {
    fn of(e: &Event) -> Self {
        Self {
            seq: e.seq,
            workspace_id: e.workspace_id,
            inbox_id: e.inbox_id,
            conversation_id: e.conversation_id,
            kind: e.kind.as_str().to_owned(),
            payload: e.payload.clone(),
            created_at: e.created_at,
        }
    }

    fn into_event(self) -> Option<Event> {
        Some(Event {
            seq: self.seq,
            workspace_id: self.workspace_id,
            inbox_id: self.inbox_id,
            conversation_id: self.conversation_id,
            kind: EventKind::parse(&self.kind)?,
            payload: self.payload,
            created_at: self.created_at,
        })
    }
}

#[derive(Serialize, Deserialize)]
struct WireEphemeral {
    kind: String,
    inbox_id: Option<InboxId>,
    conversation_id: Option<ConversationId>,
    typing_actor: Option<String>,
    payload: serde_json::Value,
}

#[derive(Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum Signal {
    SessionEnded { token_hash: String },
    AgentChanged { agent_id: AgentId },
    MembershipsChanged,
}

#[derive(Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum PresenceMsg {
    /// One agent's entry on `node` changed (`None`: the node holds nothing for them now).
    Entry {
        node: String,
        agent_id: AgentId,
        entry: Option<Entry>,
    },
    /// Everything `node` holds (the heartbeat).
    Snapshot {
        node: String,
        agents: Vec<(AgentId, Entry)>,
    },
    /// `node` just started: everyone announces a snapshot.
    Hello { node: String },
}

// ------------------------------------------------------------------ sending

/// This node's side of the cluster: what it publishes. Cheap to clone.
#[derive(Clone)]
pub struct Link {
    node: String,
    /// `sb.<workspace>`
    prefix: String,
    out: mpsc::Sender<(String, Vec<u8>)>,
}

impl Link {
    fn send(&self, subject: String, body: &impl Serialize) {
        let Ok(bytes) = serde_json::to_vec(body) else {
            return;
        };
        if self.out.try_send((subject, bytes)).is_err() {
            tracing::debug!("cluster: outgoing queue full, message dropped (the store has it)");
        }
    }

    fn snapshot(&self, agents: Vec<(AgentId, Entry)>) {
        self.send(
            format!("{}.presence", self.prefix),
            &PresenceMsg::Snapshot {
                node: self.node.clone(),
                agents,
            },
        );
    }
}

impl Peers for Link {
    /// Committed events, each on its inbox's subject.
    fn events(&self, events: &[Event]) {
        for e in events {
            let subject = match e.inbox_id {
                Some(i) => format!("{}.inbox.{i}", self.prefix),
                None => format!("{}.events", self.prefix),
            };
            self.send(subject, &WireEvent::of(e));
        }
    }
    fn control(&self, c: &Control) {
        let s = match c {
            Control::SessionEnded(h) => Signal::SessionEnded {
                token_hash: h.clone(),
            },
            Control::AgentChanged(a) => Signal::AgentChanged { agent_id: *a },
        };
        self.send(format!("{}.control", self.prefix), &s);
    }
    /// Inbox memberships changed: the other nodes reload their access cache.
    fn memberships_changed(&self) {
        self.send(
            format!("{}.control", self.prefix),
            &Signal::MembershipsChanged,
        );
    }
    fn ephemeral(
        &self,
        kind: EventKind,
        inbox_id: Option<InboxId>,
        conversation_id: Option<ConversationId>,
        typing_actor: Option<&'static str>,
        payload: &serde_json::Value,
    ) {
        let subject = match inbox_id {
            Some(i) => format!("{}.inbox.{i}.{}", self.prefix, kind.as_str()),
            None => format!("{}.{}", self.prefix, kind.as_str()),
        };
        self.send(
            subject,
            &WireEphemeral {
                kind: kind.as_str().to_owned(),
                inbox_id,
                conversation_id,
                typing_actor: typing_actor.map(str::to_owned),
                payload: payload.clone(),
            },
        );
    }
    /// This node's entry for `agent` changed.
    fn presence(&self, agent_id: AgentId, entry: Option<Entry>) {
        self.send(
            format!("{}.presence", self.prefix),
            &PresenceMsg::Entry {
                node: self.node.clone(),
                agent_id,
                entry,
            },
        );
    }
}

// ------------------------------------------------------------------ ordered delivery

/// Delivers committed events to this node's sockets in `seq` order, each once, none skipped.
#[derive(Clone)]
pub struct Sequencer {
    tx: mpsc::UnboundedSender<Vec<Event>>,
    kick: Arc<Notify>,
}

impl Sequencer {
    /// Starts delivering events after `last` (the store's last event when the node starts).
    pub fn start(store: Arc<dyn Store>, bus: Bus, last: i64) -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        let kick = Arc::new(Notify::new());
        tokio::spawn(sequence(store, bus, last, rx, kick.clone()));
        Self { tx, kick }
    }

    /// Events committed here or elsewhere, in any order, possibly twice.
    pub fn push(&self, events: Vec<Event>) {
        let _ = self.tx.send(events);
    }

    /// Something may have been missed (e.g. NATS came back): read the store now.
    pub fn kick(&self) {
        self.kick.notify_one();
    }
}

struct Order {
    store: Arc<dyn Store>,
    bus: Bus,
    last: i64,
    early: BTreeMap<i64, Event>,
}

impl Order {
    fn take(&mut self, events: Vec<Event>) {
        for e in events {
            if e.seq > self.last {
                self.early.insert(e.seq, e);
            }
        }
        self.release();
    }

    /// Delivers whatever is next in line.
    fn release(&mut self) {
        let mut ready = Vec::new();
        while let Some(e) = self.early.remove(&(self.last + 1)) {
            self.last = e.seq;
            ready.push(e);
        }
        if !ready.is_empty() {
            self.bus.publish_committed(&ready);
        }
    }

    /// Reads everything after `last` from the store (a gap, or events nobody told us about).
    async fn catch_up(&mut self) {
        loop {
            let batch = match self.store.events_since(self.last, None, 1000).await {
                Ok(b) => b,
                Err(e) => {
                    tracing::warn!(error = %e, "cluster: reading missed events failed; retrying later");
                    return;
                }
            };
            let n = batch.len();
            if let Some(e) = batch.last() {
                self.last = e.seq;
                self.bus.publish_committed(&batch);
            }
            if n < 1000 {
                break;
            }
        }
        let last = self.last;
        self.early.retain(|seq, _| *seq > last);
        self.release();
    }
}

async fn sequence(
    store: Arc<dyn Store>,
    bus: Bus,
    last: i64,
    mut rx: mpsc::UnboundedReceiver<Vec<Event>>,
    kick: Arc<Notify>,
) {
    let mut o = Order {
        store,
        bus,
        last,
        early: BTreeMap::new(),
    };
    let mut poll = tokio::time::interval(POLL);
    poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut gap_since: Option<Instant> = None;
    loop {
        let gap_deadline = gap_since.map(|t| t + GAP_WAIT);
        tokio::select! {
            got = rx.recv() => match got {
                Some(events) => o.take(events),
                None => return,
            },
            () = async {
                if let Some(d) = gap_deadline {
                    tokio::time::sleep_until(d).await;
                }
            }, if gap_deadline.is_some() => o.catch_up().await,
            _ = poll.tick() => {
                if o.store.last_event_seq().await.is_ok_and(|s| s > o.last) {
                    o.catch_up().await;
                }
            }
            () = kick.notified() => o.catch_up().await,
        }
        gap_since = match (o.early.is_empty(), gap_since) {
            (true, _) => None,
            (false, None) => Some(Instant::now()),
            (false, Some(t)) => Some(t),
        };
    }
}

// ------------------------------------------------------------------ joining

/// Connects to NATS (in the background; the node serves meanwhile), subscribes to the workspace's
/// subjects and starts the publisher and the presence heartbeat.
pub async fn join(url: &str, st: AppState, sequencer: Option<Sequencer>) -> anyhow::Result<()> {
    let node = st.routing.node.clone();
    let prefix = format!("sb.{}", st.workspace_id);
    let reconnected = Arc::new(Notify::new());
    let signal = reconnected.clone();
    let client = async_nats::ConnectOptions::new()
        .name(format!("switchboard {node}"))
        // Our own messages are delivered locally already.
        .no_echo()
        .retry_on_initial_connect()
        .max_reconnects(None)
        .event_callback(move |ev| {
            let signal = signal.clone();
            async move {
                match ev {
                    async_nats::Event::Connected => signal.notify_one(),
                    async_nats::Event::Disconnected => {
                        tracing::warn!(
                            "cluster: NATS connection lost; serving on, catching up from the store"
                        );
                    }
                    _ => {}
                }
            }
        })
        .connect(url)
        .await?;
    let (out, mut outgoing) = mpsc::channel::<(String, Vec<u8>)>(OUTGOING);
    let link = Link {
        node: node.clone(),
        prefix: prefix.clone(),
        out,
    };
    st.bus.join(Arc::new(link.clone()));

    // Publisher: one task, so a stalled connection never blocks a request.
    let publisher = client.clone();
    tokio::spawn(async move {
        while let Some((subject, body)) = outgoing.recv().await {
            if let Err(e) = publisher.publish(subject, body.into()).await {
                tracing::debug!(error = %e, "cluster: publish failed");
            }
        }
    });

    let mut sub = client.subscribe(format!("{prefix}.>")).await?;
    let heard: Arc<std::sync::Mutex<HashMap<String, Instant>>> = Arc::default();
    {
        let st = st.clone();
        let link = link.clone();
        let heard = heard.clone();
        let sequencer = sequencer.clone();
        let prefix = prefix.clone();
        tokio::spawn(async move {
            while let Some(msg) = sub.next().await {
                receive(
                    &st,
                    &link,
                    &prefix,
                    &msg.subject,
                    &msg.payload,
                    &heard,
                    sequencer.as_ref(),
                )
                .await;
            }
        });
    }

    // On every (re)connection: say hello (others answer with their snapshots), announce ours, read
    // whatever was committed while we could not hear, and reload the access cache. (Sign-outs and
    // agent changes missed meanwhile are caught by every socket's periodic session check.)
    {
        let link = link.clone();
        let st = st.clone();
        let sequencer = sequencer.clone();
        tokio::spawn(async move {
            loop {
                reconnected.notified().await;
                tracing::info!("cluster: connected to NATS");
                link.send(
                    format!("{}.presence", link.prefix),
                    &PresenceMsg::Hello {
                        node: link.node.clone(),
                    },
                );
                link.snapshot(st.presence.local_snapshot());
                if let Some(s) = &sequencer {
                    s.kick();
                }
                // Membership changes announced while we could not hear.
                if let Err(e) = st.access.reload(st.store.as_ref()).await {
                    tracing::warn!(error = %e, "cluster: reloading memberships failed");
                }
            }
        });
    }

    // Heartbeat: announce our agents; forget nodes gone silent.
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(HEARTBEAT);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            link.snapshot(st.presence.local_snapshot());
            let silent: Vec<String> = heard
                .lock()
                .map(|mut h| {
                    let gone: Vec<String> = h
                        .iter()
                        .filter(|(_, at)| at.elapsed() > FORGET_AFTER)
                        .map(|(n, _)| n.clone())
                        .collect();
                    for n in &gone {
                        h.remove(n);
                    }
                    gone
                })
                .unwrap_or_default();
            for n in silent {
                for (agent, status) in st.presence.forget_node(&n, st.clock.now()) {
                    st.routing.presence_changed(agent, status).await;
                }
            }
        }
    });
    Ok(())
}

async fn receive(
    st: &AppState,
    link: &Link,
    prefix: &str,
    subject: &str,
    payload: &[u8],
    heard: &std::sync::Mutex<HashMap<String, Instant>>,
    sequencer: Option<&Sequencer>,
) {
    let Some(rest) = subject
        .strip_prefix(prefix)
        .and_then(|r| r.strip_prefix('.'))
    else {
        return;
    };
    let parts: Vec<&str> = rest.split('.').collect();
    match parts.as_slice() {
        ["inbox", _] | ["events"] => {
            if let Ok(w) = serde_json::from_slice::<WireEvent>(payload)
                && let Some(e) = w.into_event()
            {
                match sequencer {
                    Some(s) => s.push(vec![e]),
                    None => st.bus.publish_committed(&[e]),
                }
            }
        }
        ["control"] => match serde_json::from_slice::<Signal>(payload) {
            Ok(Signal::SessionEnded { token_hash }) => {
                st.bus.control_local(Control::SessionEnded(token_hash));
            }
            Ok(Signal::AgentChanged { agent_id }) => {
                st.bus.control_local(Control::AgentChanged(agent_id));
            }
            Ok(Signal::MembershipsChanged) => {
                if let Err(e) = st.access.reload(st.store.as_ref()).await {
                    tracing::warn!(error = %e, "cluster: reloading memberships failed");
                }
            }
            Err(_) => {}
        },
        ["presence"] => {
            let Ok(msg) = serde_json::from_slice::<PresenceMsg>(payload) else {
                return;
            };
            let now = st.clock.now();
            let node = match &msg {
                PresenceMsg::Entry { node, .. }
                | PresenceMsg::Snapshot { node, .. }
                | PresenceMsg::Hello { node } => node.clone(),
            };
            if let Ok(mut h) = heard.lock() {
                h.insert(node.clone(), Instant::now());
            }
            let changed = match msg {
                PresenceMsg::Entry {
                    agent_id, entry, ..
                } => st
                    .presence
                    .remote_entry(&node, agent_id, entry, now)
                    .map(|s| vec![(agent_id, s)])
                    .unwrap_or_default(),
                PresenceMsg::Snapshot { agents, .. } => {
                    st.presence.remote_snapshot(&node, agents, now)
                }
                PresenceMsg::Hello { .. } => {
                    link.snapshot(st.presence.local_snapshot());
                    Vec::new()
                }
            };
            for (agent, status) in changed {
                st.routing.presence_changed(agent, status).await;
            }
        }
        [.., kind] => {
            let Ok(w) = serde_json::from_slice::<WireEphemeral>(payload) else {
                return;
            };
            let Some(kind) = EventKind::parse(kind).filter(|k| *k == EventKind::Typing) else {
                return;
            };
            let actor = match w.typing_actor.as_deref() {
                Some("agent") => Some("agent"),
                Some("customer") => Some("customer"),
                _ => None,
            };
            st.bus
                .publish_ephemeral_local(kind, w.inbox_id, w.conversation_id, actor, w.payload);
        }
        [] => {}
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use switchboard_store::{Inbound, InboundSender};

    const T0: Timestamp = Timestamp(1_790_000_000_000);

    async fn next_seq(rx: &mut tokio::sync::broadcast::Receiver<Arc<crate::bus::BusEvent>>) -> i64 {
        tokio::time::timeout(Duration::from_secs(10), rx.recv())
            .await
            .expect("an event")
            .unwrap()
            .seq
    }

    async fn customer_writes(store: &dyn Store, ws: WorkspaceId, inbox: InboxId, n: usize) {
        let item = Inbound {
            workspace_id: ws,
            inbox_id: inbox,
            sender: InboundSender::Identity {
                external_id: format!("c{n}"),
                name: None,
            },
            provider_message_id: format!("m{n}"),
            kind: MessageKind::Text,
            text: "alo".into(),
            sent_at: T0,
            message_id: MessageId(uuid::Uuid::now_v7()),
            new_conversation_id: ConversationId(uuid::Uuid::now_v7()),
            new_contact_id: ContactId(uuid::Uuid::now_v7()),
        };
        store.ingest(&[item], T0).await.unwrap();
    }

    /// Events arriving out of order, twice, or not at all (lost on the way) reach sockets once
    /// each, in `seq` order: early ones wait, missing ones are read from the store.
    #[tokio::test]
    async fn the_sequencer_delivers_in_order_once_and_fills_gaps_from_the_store() {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn Store> =
            switchboard_store::open(&format!("sqlite://{}", dir.path().join("t.db").display()))
                .await
                .unwrap();
        let ws = store.ensure_workspace("W", T0).await.unwrap();
        let inbox = Inbox {
            id: InboxId(uuid::Uuid::now_v7()),
            workspace_id: ws,
            name: "Web".into(),
            channel: ChannelKind::Livechat,
            settings: serde_json::json!({}),
            created_at: T0,
        };
        store.create_inbox(&inbox).await.unwrap();
        for n in 0..3 {
            customer_writes(store.as_ref(), ws, inbox.id, n).await;
        }
        let events = store.events_since(0, None, 100).await.unwrap();
        let last = events.last().unwrap().seq;
        assert!(last >= 3);

        let bus = Bus::new(64);
        let mut rx = bus.subscribe();
        let seq = Sequencer::start(store.clone(), bus, 0);
        // The third arrives first, then the first twice; the second never arrives on its own.
        seq.push(vec![events[2].clone()]);
        seq.push(vec![events[0].clone(), events[0].clone()]);
        for want in 1..=last {
            assert_eq!(next_seq(&mut rx).await, want);
        }
        // Old news is dropped; what is committed next follows on.
        seq.push(events.clone());
        customer_writes(store.as_ref(), ws, inbox.id, 9).await;
        let newer = store.events_since(last, None, 100).await.unwrap();
        seq.push(newer.clone());
        for e in &newer {
            assert_eq!(next_seq(&mut rx).await, e.seq);
        }
        // Nothing pushed at all: the periodic check of the store catches up.
        customer_writes(store.as_ref(), ws, inbox.id, 10).await;
        let unheard = store
            .events_since(newer.last().unwrap().seq, None, 100)
            .await
            .unwrap();
        for e in &unheard {
            assert_eq!(next_seq(&mut rx).await, e.seq);
        }
    }
}
