//! Comment rules in the service (docs/comment-rules.md). After the group commit (never on the
//! webhook's path) each customer comment goes to a worker — sharded by post, so one post's
//! comments are decided in order and its replies rotate — which decides in memory
//! (`core::flow::comments`, the flow engine running the rule's steps) and records the decision
//! and its actions in one transaction: one ledger row per comment and action, so an action is
//! planned once however often the comment is decided again (a redelivery, a restart, another
//! node). The ledger's pending rows are the comment outbox: [`CommentRules::run_due`] leases
//! them, asks Meta (hide, like) or the one `send` command (public and private replies, which the
//! message outbox then sends with its retries), backs off on 429 / rate-limit answers (for the
//! whole Page), and finishes each row once, with the post's counters, the comment's card and the
//! conversation's history. A sweep decides comments a stopped node left undecided.
//!
//! Phone numbers and emails customers write (in comments and messages) are offered on their
//! profile here too: filled when the field is empty, otherwise kept as a suggestion.

use crate::app::send::{Outgoing, Purpose, SendRequest};
use crate::clock::Clock;
use crate::provider_api::{Answer, Providers};
use crate::routing::Routing;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock, RwLock};
use std::time::Duration;
use switchboard_channels::meta::{self as meta_wire, CommentOp};
use switchboard_core::conversation::{self as conv, Transition};
use switchboard_core::event;
use switchboard_core::flow::comments::{
    self as rules, CommentFacts, CommentRuleSet, CompiledRules, Decision,
};
use switchboard_core::flow::{CommentEffect, Context, Effect, HandoffPhrases, Input, RunState};
use switchboard_core::outbound::{Author, CommentReply, Content};
use switchboard_core::retry::{self, RetryPolicy};
use switchboard_core::*;
use switchboard_store::{
    Change, CommentAction, CommentActionStatus, Finish, SeenComment, Store, StoreError,
    StoredCommentRules,
};
use tokio::sync::{Notify, mpsc};
use tokio::task::JoinHandle;

/// Seconds after which rules are read again (saved on another node).
pub const RELOAD_SECS: i64 = 10;
/// How long a leased action is reserved for the node that took it.
const LEASE_MS: i64 = 60_000;
const CLAIM_BATCH: u32 = 500;
/// Actions carried out at once (Meta's per-Page limits stay in sight).
const CONCURRENCY: usize = 8;
const WORKERS: usize = 4;
/// Comments a worker decides together, their decisions written in one transaction.
const DECIDE_BATCH: usize = 512;
const QUEUE_PER_WORKER: usize = 8192;
/// How far back the sweep looks for comments left undecided.
const SWEEP_BACK_MS: i64 = 24 * 3600 * 1000;
/// How often a node sweeps (the sweep reads the day's comments' index).
const SWEEP_EVERY_MS: i64 = 60_000;
/// Local time for active hours where the inbox has no business hours (Vietnam).
const DEFAULT_UTC_OFFSET_MINUTES: i32 = 420;
/// The longest comment text the rules read (a longer one is judged on its beginning).
const MAX_TEXT_BYTES: usize = 8 * 1024;

/// A customer's comment just stored, as the rules see it.
#[derive(Debug, Clone)]
pub struct CommentArrived {
    pub workspace_id: WorkspaceId,
    pub inbox_id: InboxId,
    pub conversation_id: ConversationId,
    pub contact_id: ContactId,
    pub message_id: MessageId,
    pub text: String,
    /// `meta.comment` as the channel parser wrote it (id, post_id, from_name...).
    pub comment: serde_json::Value,
    /// Who commented (their id on the channel).
    pub person: String,
    pub at: Timestamp,
}

/// What one tick of the runner did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct CommentTick {
    pub done: usize,
    pub retried: usize,
    pub failed: usize,
    /// Comments decided by the sweep (left undecided by a stopped node).
    pub swept: usize,
    /// Private replies put off because the Page's hour was spent.
    pub deferred: usize,
}

struct InboxRules {
    page: Option<CommentRuleSet>,
    posts: HashMap<String, CommentRuleSet>,
}

/// An inbox, and the post whose own rules apply (`None`: the Page's alone).
type RulesKey = (InboxId, Option<String>);

struct Loaded {
    inboxes: HashMap<InboxId, InboxRules>,
    /// Some rule starts a flow when a private reply is answered (then each customer message of
    /// a Meta inbox looks for one).
    answer_flows: bool,
    /// Compiled per (inbox, post with an override or `None`).
    compiled: Mutex<HashMap<RulesKey, Arc<CompiledRules>>>,
    at: Timestamp,
}

#[derive(Clone)]
pub struct CommentRules(Arc<Inner>);

pub struct Inner {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    outgoing: Outgoing,
    routing: Routing,
    providers: OnceLock<Arc<Providers>>,
    node: String,
    retry: RetryPolicy,
    loaded: RwLock<Option<Arc<Loaded>>>,
    /// Public replies per (inbox, post) so far: the next variant.
    rotation: Mutex<HashMap<(InboxId, String), u64>>,
    /// A Page Meta asked to slow down, until when.
    paused: Mutex<HashMap<InboxId, Timestamp>>,
    queue: OnceLock<Vec<mpsc::Sender<CommentArrived>>>,
    pending: AtomicUsize,
    settled: Notify,
    wake: Notify,
    /// When this node last swept (ms).
    swept_at: std::sync::atomic::AtomicI64,
}

impl std::ops::Deref for CommentRules {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}

/// The action's row name for an effect, and what it carries.
fn action_of(effect: &Effect) -> Option<(String, serde_json::Value)> {
    use serde_json::json;
    Some(match effect {
        Effect::Comment(CommentEffect::Hide) => ("hide".into(), json!({})),
        Effect::Comment(CommentEffect::Like) => ("like".into(), json!({})),
        Effect::Comment(CommentEffect::Reply { variants }) => {
            ("reply".into(), json!({ "variants": variants }))
        }
        Effect::Comment(CommentEffect::PrivateReply { text, then_flow }) => (
            "private_reply".into(),
            json!({ "text": text, "then_flow": then_flow }),
        ),
        Effect::AddTag(t) => (format!("tag:{t}"), json!({ "tag": t })),
        Effect::RemoveTag(t) => (format!("untag:{t}"), json!({ "tag": t })),
        Effect::Assign(a) => ("assign".into(), json!({ "agent": a })),
        Effect::SaveField { field, value } => (
            format!("field:{field}"),
            json!({ "field": field, "value": value }),
        ),
        Effect::Handoff { note, .. } => ("handoff".into(), json!({ "note": note })),
        _ => return None,
    })
}

impl CommentRules {
    pub fn new(
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
        outgoing: Outgoing,
        routing: Routing,
        retry: RetryPolicy,
    ) -> Self {
        Self(Arc::new(Inner {
            store,
            clock,
            outgoing,
            routing,
            providers: OnceLock::new(),
            node: crate::random::new_uuid().to_string(),
            retry,
            loaded: RwLock::new(None),
            rotation: Mutex::new(HashMap::new()),
            paused: Mutex::new(HashMap::new()),
            queue: OnceLock::new(),
            pending: AtomicUsize::new(0),
            settled: Notify::new(),
            wake: Notify::new(),
            swept_at: std::sync::atomic::AtomicI64::new(i64::MIN),
        }))
    }

    /// The Graph API client (made after the listener is bound; set once at start-up).
    pub fn set_providers(&self, p: Arc<Providers>) {
        let _ = self.providers.set(p);
    }

    /// Starts the deciding workers (call once, inside the runtime).
    pub fn start_workers(&self) {
        let mut senders = Vec::with_capacity(WORKERS);
        for _ in 0..WORKERS {
            let (tx, mut rx) = mpsc::channel::<CommentArrived>(QUEUE_PER_WORKER);
            senders.push(tx);
            let me = self.clone();
            tokio::spawn(async move {
                let mut batch = Vec::with_capacity(DECIDE_BATCH);
                while rx.recv_many(&mut batch, DECIDE_BATCH).await > 0 {
                    if let Err(e) = me.decide_all(&batch).await {
                        // The sweep decides them again later.
                        tracing::warn!(error = %e, "comment rules: deciding comments failed");
                    }
                    let n = batch.len();
                    batch.clear();
                    if me.pending.fetch_sub(n, Ordering::AcqRel) == n {
                        me.settled.notify_waiters();
                    }
                }
            });
        }
        let _ = self.queue.set(senders);
    }

    /// Hands a stored comment to its post's worker (waiting while that one is full).
    pub async fn enqueue(&self, c: CommentArrived) {
        let Some(queue) = self.queue.get() else {
            if let Err(e) = self.decide(&c).await {
                tracing::warn!(error = %e, "comment rules: deciding a comment failed");
            }
            return;
        };
        let post = c.comment["post_id"].as_str().unwrap_or_default();
        let shard = (fnv(post.as_bytes()) % WORKERS as u64) as usize;
        self.pending.fetch_add(1, Ordering::AcqRel);
        if queue[shard].send(c).await.is_err() {
            self.pending.fetch_sub(1, Ordering::AcqRel);
            tracing::error!("the comment rules worker has stopped");
        }
    }

    /// Resolves once no comment is queued or being decided (tests; graceful stops).
    pub async fn idle(&self) {
        loop {
            let settled = self.settled.notified();
            if self.pending.load(Ordering::Acquire) == 0 {
                return;
            }
            settled.await;
        }
    }

    /// Rules changed on this node: read them again now.
    pub fn forget(&self) {
        if let Ok(mut l) = self.loaded.write() {
            *l = None;
        }
        let me = self.clone();
        tokio::spawn(async move {
            let _ = me.preload().await;
        });
    }

    /// Reads and compiles every inbox's rules (at start-up, after a change).
    pub async fn preload(&self) -> Result<(), StoreError> {
        self.loaded(self.clock.now()).await.map(|_| ())
    }

    async fn loaded(&self, now: Timestamp) -> Result<Arc<Loaded>, StoreError> {
        if let Ok(l) = self.loaded.read()
            && let Some(l) = l.as_ref()
            && now.millis() - l.at.millis() < RELOAD_SECS * 1000
        {
            return Ok(l.clone());
        }
        let all = self.store.all_comment_rules().await?;
        let mut inboxes: HashMap<InboxId, InboxRules> = HashMap::new();
        for StoredCommentRules {
            inbox_id,
            post_id,
            rules,
            ..
        } in all
        {
            let e = inboxes.entry(inbox_id).or_insert_with(|| InboxRules {
                page: None,
                posts: HashMap::new(),
            });
            match post_id {
                Some(p) => {
                    e.posts.insert(p, rules);
                }
                None => e.page = Some(rules),
            }
        }
        let answer_flows = inboxes.values().any(|r| {
            r.page.iter().chain(r.posts.values()).any(|set| {
                set.rules
                    .iter()
                    .flat_map(|r| &r.steps)
                    .chain(&set.default)
                    .any(|a| {
                        matches!(
                            a,
                            flow::Action::PrivateReply {
                                then_flow: Some(_),
                                ..
                            }
                        )
                    })
            })
        });
        let l = Arc::new(Loaded {
            answer_flows,
            inboxes,
            compiled: Mutex::new(HashMap::new()),
            at: now,
        });
        if let Ok(mut w) = self.loaded.write() {
            *w = Some(l.clone());
        }
        Ok(l)
    }

    fn compiled(l: &Loaded, inbox: InboxId, post: &str) -> Option<Arc<CompiledRules>> {
        let rules = l.inboxes.get(&inbox)?;
        let post_rules = rules.posts.get(post);
        let key = (inbox, post_rules.map(|_| post.to_owned()));
        let mut cache = l.compiled.lock().ok()?;
        Some(
            cache
                .entry(key)
                .or_insert_with(|| {
                    Arc::new(CompiledRules::compile(rules.page.as_ref(), post_rules))
                })
                .clone(),
        )
    }

    /// Decides one comment and records the decision with its actions.
    pub async fn decide(&self, c: &CommentArrived) -> Result<(), StoreError> {
        self.decide_all(std::slice::from_ref(c)).await
    }

    /// Decides comments (in order) and records every decision with its actions in one
    /// transaction.
    pub async fn decide_all(&self, comments: &[CommentArrived]) -> Result<(), StoreError> {
        let now = self.clock.now();
        let loaded = self.loaded(now).await?;
        let mut items = Vec::with_capacity(comments.len());
        // Who already commented on a post in this batch (not yet recorded).
        let mut in_batch: std::collections::HashSet<(InboxId, String, String)> =
            std::collections::HashSet::new();
        for c in comments {
            let seen = seen_of(c);
            self.offer(c.contact_id, &c.text, now).await;
            let rows = match Self::compiled(&loaded, c.inbox_id, &seen.post_id) {
                None => Vec::new(),
                Some(compiled) => {
                    let key = (c.inbox_id, seen.post_id.clone(), seen.person.clone());
                    let first =
                        !in_batch.contains(&key) && self.store.first_comment_on_post(&seen).await?;
                    in_batch.insert(key);
                    self.rows_for(c, &compiled, &seen, first, now).await?
                }
            };
            items.push((seen, rows));
        }
        let planned = self.store.record_comments(&items).await?;
        if planned.iter().flatten().any(|n| *n) {
            self.wake.notify_one();
        }
        Ok(())
    }

    /// The actions the rules decide for one comment.
    async fn rows_for(
        &self,
        c: &CommentArrived,
        compiled: &CompiledRules,
        seen: &SeenComment,
        first: bool,
        now: Timestamp,
    ) -> Result<Vec<CommentAction>, StoreError> {
        let Some(inbox) = self.store.inbox(c.inbox_id).await? else {
            return Ok(Vec::new());
        };
        let hours = self
            .store
            .routing_state(c.inbox_id)
            .await?
            .rules
            .business_hours;
        let utc_offset = hours
            .as_ref()
            .map_or(DEFAULT_UTC_OFFSET_MINUTES, |h| h.utc_offset_minutes);
        let facts = CommentFacts {
            text: cut(&c.text, MAX_TEXT_BYTES),
            first_on_post: first,
            utc_offset_minutes: utc_offset,
        };
        let Some(decision) = compiled.decide(&facts, now) else {
            return Ok(Vec::new());
        };
        let comment_id = c.comment["id"].as_str().unwrap_or_default();
        self.plan(c, &decision, inbox.channel, &seen.post_id, comment_id, now)
            .await
    }

    /// The decision's actions as ledger rows: the rule's steps run by the engine.
    async fn plan(
        &self,
        c: &CommentArrived,
        d: &Decision<'_>,
        channel: ChannelKind,
        post: &str,
        comment_id: &str,
        now: Timestamp,
    ) -> Result<Vec<CommentAction>, StoreError> {
        let mut fields = BTreeMap::new();
        // The name Meta gave with the comment; the contact's only when it gave none.
        let name = match c.comment["from_name"].as_str() {
            Some(n) => Some(n.to_owned()),
            None => self.store.contact(c.contact_id).await?.and_then(|k| k.name),
        };
        if let Some(n) = name.filter(|n| !n.trim().is_empty()) {
            fields.insert("name".to_owned(), n);
        }
        let tags = BTreeSet::new();
        let phrases = HandoffPhrases::default();
        let ctx = Context {
            channel,
            fields: &fields,
            tags: &tags,
            business_hours: None,
            utc_offset_minutes: DEFAULT_UTC_OFFSET_MINUTES,
            window_open: false,
            faq: None,
            handoff_phrases: &phrases,
        };
        let state = RunState::new(d.flow, now, 0);
        let (_, effects) = flow::step(d.flow, &state, Input::Start, &ctx, now, &mut || 0.0);
        let why = serde_json::json!({
            "rule": d.rule.unwrap_or("default"),
            "because": if d.because.is_empty() { vec!["no_rule_matched"] } else { d.because.clone() },
            "source": d.source,
        });
        let mut rows = Vec::new();
        for e in &effects {
            let Some((action, mut payload)) = action_of(e) else {
                continue;
            };
            if let Effect::Comment(CommentEffect::Reply { variants }) = e {
                let n = self.next_rotation(c.inbox_id, post).await;
                let text = variants
                    .get(rules::rotate(variants.len(), n))
                    .cloned()
                    .unwrap_or_default();
                payload = serde_json::json!({ "text": text, "variant": rules::rotate(variants.len(), n) });
            }
            if matches!(
                e,
                Effect::Comment(CommentEffect::Reply { .. } | CommentEffect::PrivateReply { .. })
            ) {
                // The message's id is chosen now: carried out again after a stop, the same
                // message is found instead of a second one queued.
                payload["message_id"] = serde_json::json!(crate::random::new_uuid());
            }
            if let (Some(p), Some(w)) = (payload.as_object_mut(), why.as_object()) {
                p.extend(w.clone());
            }
            rows.push(CommentAction {
                message_id: c.message_id,
                action,
                workspace_id: c.workspace_id,
                inbox_id: c.inbox_id,
                conversation_id: c.conversation_id,
                post_id: post.to_owned(),
                comment_id: comment_id.to_owned(),
                payload,
                status: CommentActionStatus::Pending,
                attempts: 0,
                due_at: now,
                result: None,
                created_at: now,
                done_at: None,
            });
        }
        Ok(rows)
    }

    /// The number of public replies planned on the post so far (then one more).
    async fn next_rotation(&self, inbox: InboxId, post: &str) -> u64 {
        let key = (inbox, post.to_owned());
        let known = self.rotation.lock().ok().and_then(|r| r.get(&key).copied());
        let n = match known {
            Some(n) => n,
            None => self
                .store
                .comment_actions_planned(inbox, post, "reply")
                .await
                .unwrap_or(0),
        };
        if let Ok(mut r) = self.rotation.lock() {
            r.insert(key, n + 1);
        }
        n
    }

    /// Whether some rule may have left a flow waiting for an answer (in memory; true until the
    /// rules were read once).
    pub fn may_await_answers(&self) -> bool {
        self.loaded
            .read()
            .ok()
            .and_then(|l| l.as_ref().map(|l| l.answer_flows))
            .unwrap_or(true)
    }

    /// A phone number or email the customer wrote: filled in when the contact has none,
    /// otherwise kept as a suggestion (`suggested_phone`, `suggested_email`) the agent accepts
    /// with one click.
    pub async fn offer(&self, contact: ContactId, text: &str, now: Timestamp) {
        // Most messages hold neither: no read at all then.
        if !text.bytes().any(|b| b.is_ascii_digit() || b == b'@') {
            return;
        }
        let text = cut(text, MAX_TEXT_BYTES);
        let Ok(Some(mut c)) = self.store.contact(contact).await else {
            return;
        };
        let offers = rules::offers(text, c.phone.as_deref(), c.email.as_deref());
        if offers.is_empty() {
            return;
        }
        let mut fill = false;
        for o in offers {
            if o.fill {
                fill = true;
                match o.field {
                    "phone" => c.phone = Some(o.value),
                    _ => c.email = Some(o.value),
                }
            } else if let Err(e) = self
                .store
                .set_contact_field(contact, &format!("suggested_{}", o.field), &o.value, now)
                .await
            {
                tracing::warn!(error = %e, "comment rules: keeping a suggestion failed");
            }
        }
        if fill {
            c.updated_at = now;
            if let Err(e) = self.store.update_contact(&c).await {
                tracing::warn!(error = %e, "comment rules: filling a contact field failed");
            }
        }
    }

    // ------------------------------------------------------------------ the comment outbox

    /// One tick at `now`: carry out due actions; decide comments left undecided.
    pub async fn run_due(&self, now: Timestamp) -> Result<CommentTick, StoreError> {
        use futures_util::StreamExt;
        let mut tick = CommentTick::default();
        let last = self.swept_at.load(Ordering::Acquire);
        let sweep = now.millis().saturating_sub(last) >= SWEEP_EVERY_MS;
        if sweep {
            self.swept_at.store(now.millis(), Ordering::Release);
        }
        let undecided = if sweep {
            self.store
                .undecided_comments(now.plus_millis(-SWEEP_BACK_MS), 500)
                .await?
        } else {
            Vec::new()
        };
        for m in undecided {
            // Still in a worker's queue, probably: only the old ones are the sweep's.
            if now.millis() - m.created_at.millis() < LEASE_MS {
                continue;
            }
            if let Some(c) = self.arrived_of(&m).await? {
                self.decide(&c).await?;
                tick.swept += 1;
            }
        }
        loop {
            let due = self
                .store
                .claim_due_comment_actions(now, now.plus_millis(LEASE_MS), &self.node, CLAIM_BATCH)
                .await?;
            if due.is_empty() {
                break;
            }
            let claimed = due.len();
            let due = self.within_reply_budget(due, now).await?;
            tick.deferred += claimed - due.len();
            let n = due.len();
            let outcomes: Vec<Option<Finish>> = futures_util::stream::iter(due)
                .map(|a| async move { self.carry_out(a, now).await })
                .buffer_unordered(CONCURRENCY)
                .collect()
                .await;
            // Every finished action of the batch, with its counters, card and history line,
            // in one transaction.
            let finishes: Vec<Finish> = outcomes.into_iter().flatten().collect();
            tick.retried += n - finishes.len();
            for f in &finishes {
                if f.status == CommentActionStatus::Done {
                    tick.done += 1;
                } else {
                    tick.failed += 1;
                }
            }
            self.store.finish_comment_actions(&finishes, now).await?;
            if claimed < CLAIM_BATCH as usize {
                break;
            }
        }
        Ok(tick)
    }

    /// Private replies beyond a Page's hourly budget wait until the hour frees a place, counted
    /// ahead: the ones done in the last hour and the ones of this batch (Meta's 750 an hour, on
    /// the store so every node counts the same replies; two nodes claiming at the same instant may
    /// overshoot by one batch).
    async fn within_reply_budget(
        &self,
        due: Vec<CommentAction>,
        now: Timestamp,
    ) -> Result<Vec<CommentAction>, StoreError> {
        use switchboard_core::flow::comments::{HOUR_MS, private_reply_budget};
        let mut waiting: HashMap<InboxId, u64> = HashMap::new();
        for a in due.iter().filter(|a| a.action == "private_reply") {
            *waiting.entry(a.inbox_id).or_default() += 1;
        }
        if waiting.is_empty() {
            return Ok(due);
        }
        let mut budget = HashMap::new();
        for (inbox, n) in waiting {
            let (sent, oldest) = self
                .store
                .private_replies_since(inbox, now.plus_millis(-HOUR_MS))
                .await?;
            budget.insert(inbox, private_reply_budget(n, sent, oldest, now));
        }
        let mut keep = Vec::with_capacity(due.len());
        let mut wait: HashMap<InboxId, Vec<(MessageId, String)>> = HashMap::new();
        for a in due {
            match budget.get_mut(&a.inbox_id) {
                Some(b) if a.action == "private_reply" && b.now == 0 => {
                    wait.entry(a.inbox_id)
                        .or_default()
                        .push((a.message_id, a.action));
                }
                Some(b) if a.action == "private_reply" => {
                    b.now -= 1;
                    keep.push(a);
                }
                _ => keep.push(a),
            }
        }
        for (inbox, items) in wait {
            let until = budget
                .get(&inbox)
                .and_then(|b| b.later)
                .unwrap_or_else(|| now.plus_millis(60_000));
            tracing::info!(
                waiting = items.len(),
                "comment rules: the Page's private replies for this hour are spent; the rest wait"
            );
            self.store
                .defer_comment_actions(&items, until, "hourly_limit")
                .await?;
        }
        Ok(keep)
    }

    /// A stored comment message as it arrived (for the sweep).
    async fn arrived_of(&self, m: &Message) -> Result<Option<CommentArrived>, StoreError> {
        let Some(conv) = self.store.conversation(m.conversation_id).await? else {
            return Ok(None);
        };
        let meta = self.store.message_meta(&[m.id]).await?;
        let comment = meta
            .get(&m.id)
            .map(|x| x.meta["comment"].clone())
            .unwrap_or_default();
        let ids = self.store.contact_identities(conv.contact_id).await?;
        let person = ids
            .iter()
            .find(|i| i.inbox_id == m.inbox_id)
            .map(|i| i.external_id.clone())
            .unwrap_or_default();
        Ok(Some(CommentArrived {
            workspace_id: conv.workspace_id,
            inbox_id: m.inbox_id,
            conversation_id: conv.id,
            contact_id: conv.contact_id,
            message_id: m.id,
            text: m.text.clone(),
            comment,
            person,
            at: m.created_at,
        }))
    }

    fn paused_until(&self, inbox: InboxId, now: Timestamp) -> Option<Timestamp> {
        self.paused
            .lock()
            .ok()
            .and_then(|p| p.get(&inbox).copied())
            .filter(|t| *t > now)
    }

    fn pause(&self, inbox: InboxId, until: Timestamp) {
        if let Ok(mut p) = self.paused.lock() {
            let e = p.entry(inbox).or_insert(until);
            *e = (*e).max(until);
        }
    }

    /// Carries one action out: `None` if it was put back for later, else how it ended.
    async fn carry_out(&self, a: CommentAction, now: Timestamp) -> Option<Finish> {
        let result = match self.act(&a, now).await {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(error = %e, action = %a.action, "comment rules: an action failed on the store");
                Act::Retry {
                    reason: "store".into(),
                    hint_ms: None,
                }
            }
        };
        let (status, reason) = match result {
            Act::Done => (CommentActionStatus::Done, None),
            Act::Failed(r) => (CommentActionStatus::Failed, Some(r)),
            Act::Retry { reason, hint_ms } => {
                let jitter: f64 = rand::random();
                match retry::next_attempt(
                    &self.retry,
                    a.attempts + 1,
                    a.created_at,
                    now,
                    hint_ms,
                    jitter,
                ) {
                    Some(at) => {
                        if let Err(e) = self
                            .store
                            .retry_comment_action(a.message_id, &a.action, at, &reason)
                            .await
                        {
                            tracing::warn!(error = %e, "comment rules: putting an action back failed");
                        }
                        return None;
                    }
                    None => (CommentActionStatus::Failed, Some(reason)),
                }
            }
        };
        let history = serde_json::json!({
            "action": a.action.split(':').next().unwrap_or_default(),
            "tag": a.payload["tag"],
            "rule": a.payload["rule"],
            "because": a.payload["because"],
            "status": status.as_str(),
            "result": reason,
            "comment_message_id": a.message_id,
        });
        Some(Finish {
            message: a.message_id,
            action: a.action,
            status,
            result: reason,
            history: Some(history),
        })
    }

    async fn act(&self, a: &CommentAction, now: Timestamp) -> Result<Act, StoreError> {
        match a.action.as_str() {
            "hide" | "like" => {
                if let Some(until) = self.paused_until(a.inbox_id, now) {
                    return Ok(Act::Retry {
                        reason: "rate_limited".into(),
                        hint_ms: Some(until.millis() - now.millis()),
                    });
                }
                let op = if a.action == "hide" {
                    CommentOp::Hide
                } else {
                    CommentOp::Like
                };
                self.graph(a, op, now).await
            }
            "reply" | "private_reply" => self.reply(a).await,
            "assign" => self.assign(a, now).await,
            other if other.starts_with("tag:") || other.starts_with("untag:") => {
                let tag = a.payload["tag"].as_str().unwrap_or_default();
                let add = other.starts_with("tag:");
                self.transition(a, now, |c| conv::bot_tag(c, tag, add))
                    .await
            }
            "handoff" => {
                let note = a.payload["note"].as_str().map(str::to_owned);
                let r = self
                    .transition(a, now, |c| {
                        conv::hand_off(c, "comment_rule", note.as_deref(), now)
                    })
                    .await;
                if let Err(e) = self.routing.on_entered_pool(a.conversation_id).await {
                    tracing::warn!(error = %e, "routing a handed-off conversation failed");
                }
                r
            }
            other if other.starts_with("field:") => {
                let field = a.payload["field"].as_str().unwrap_or_default();
                let value = a.payload["value"].as_str().unwrap_or_default();
                let Some(conv) = self.store.conversation(a.conversation_id).await? else {
                    return Ok(Act::Failed("no_conversation".into()));
                };
                if matches!(field, "name" | "phone" | "email") {
                    if let Some(mut c) = self.store.contact(conv.contact_id).await? {
                        let v = Some(value.to_owned());
                        match field {
                            "name" => c.name = v,
                            "phone" => c.phone = v,
                            _ => c.email = v,
                        }
                        c.updated_at = now;
                        self.store.update_contact(&c).await?;
                    }
                } else {
                    self.store
                        .set_contact_field(conv.contact_id, field, value, now)
                        .await?;
                }
                Ok(Act::Done)
            }
            _ => Ok(Act::Failed("unknown_action".into())),
        }
    }

    /// Hide or like at Meta, with the Page token.
    async fn graph(
        &self,
        a: &CommentAction,
        op: CommentOp,
        now: Timestamp,
    ) -> Result<Act, StoreError> {
        let Some(providers) = self.providers.get() else {
            return Ok(Act::Retry {
                reason: "starting".into(),
                hint_ms: None,
            });
        };
        let Some(inbox) = self.store.inbox(a.inbox_id).await? else {
            return Ok(Act::Failed("no_inbox".into()));
        };
        let Some((method, url, body)) = meta_wire::comment_request(
            crate::meta::object(inbox.channel),
            crate::meta::api_base_url(&inbox),
            &a.comment_id,
            op,
            None,
        ) else {
            return Ok(Act::Failed("not_supported".into()));
        };
        match providers.graph(&inbox, method, &url, body.as_ref()).await {
            Answer::Ok(_) => Ok(Act::Done),
            Answer::Failed(f) if f.retry => {
                if f.reason == "rate_limited" {
                    let wait = f.retry_after_ms.unwrap_or(1000).max(1);
                    self.pause(a.inbox_id, now.plus_millis(wait));
                }
                Ok(Act::Retry {
                    reason: f.reason.to_owned(),
                    hint_ms: f.retry_after_ms,
                })
            }
            Answer::Failed(f) => Ok(Act::Failed(f.reason.to_owned())),
        }
    }

    /// A public or private reply through the one `send` command (the message outbox sends it).
    async fn reply(&self, a: &CommentAction) -> Result<Act, StoreError> {
        let private = a.action == "private_reply";
        let Some(id) = a.payload["message_id"]
            .as_str()
            .and_then(|s| s.parse::<uuid::Uuid>().ok())
            .map(MessageId)
        else {
            return Ok(Act::Failed("invalid_action".into()));
        };
        // Queued already (by a node that stopped before finishing the row).
        if let Some(m) = self.store.message(id).await? {
            return Ok(sent_outcome(&m));
        }
        let Some(comment) = self.store.message(a.message_id).await? else {
            return Ok(Act::Failed("no_comment".into()));
        };
        let text = a.payload["text"].as_str().unwrap_or_default();
        let Ok(text) = validate::MessageText::parse(text) else {
            return Ok(Act::Failed("invalid_text".into()));
        };
        let content = Content::CommentReply(CommentReply {
            comment_id: a.comment_id.clone(),
            message_id: a.message_id,
            commented_at: comment.created_at,
            private,
            text: text.into_inner(),
        });
        let req = SendRequest {
            id,
            purpose: Purpose::CommentRule,
            ..SendRequest::new(a.conversation_id, Author::Automation, content)
        };
        match self.outgoing.send(req).await {
            Ok(sent) => {
                let out = sent_outcome(&sent.message);
                if private
                    && matches!(out, Act::Done)
                    && let Some(flow) = a.payload["then_flow"]
                        .as_str()
                        .and_then(|s| s.parse::<uuid::Uuid>().ok())
                {
                    self.store
                        .set_answer_flow(a.conversation_id, FlowId(flow), self.clock.now())
                        .await?;
                }
                Ok(out)
            }
            Err(e) if e.status.is_server_error() => Ok(Act::Retry {
                reason: e.code.to_owned(),
                hint_ms: None,
            }),
            Err(e) => Ok(Act::Failed(e.code.to_owned())),
        }
    }

    async fn assign(&self, a: &CommentAction, now: Timestamp) -> Result<Act, StoreError> {
        let Some(agent) = a.payload["agent"]
            .as_str()
            .and_then(|s| s.parse::<uuid::Uuid>().ok())
            .map(AgentId)
        else {
            return Ok(Act::Failed("invalid_action".into()));
        };
        let members = self.store.inbox_members(a.inbox_id).await?;
        let active = self.store.agent(agent).await?.is_some_and(|g| g.active);
        if !members.contains(&agent) || !active {
            return Ok(Act::Failed("agent_not_in_inbox".into()));
        }
        self.transition(a, now, |c| {
            conv::automation_assigns(c, agent, "comment_rule")
        })
        .await
    }

    /// Applies a transition decided on the current conversation (again after a concurrent
    /// change).
    async fn transition(
        &self,
        a: &CommentAction,
        now: Timestamp,
        decide: impl Fn(&Conversation) -> Transition,
    ) -> Result<Act, StoreError> {
        for _ in 0..5 {
            let Some(c) = self.store.conversation(a.conversation_id).await? else {
                return Ok(Act::Failed("no_conversation".into()));
            };
            let t = decide(&c);
            if !t.changed {
                return Ok(Act::Done);
            }
            let change = Change {
                expected_version: c.version,
                conversation_id: c.id,
                workspace_id: c.workspace_id,
                actions: t.actions.clone(),
                events: event::for_transition(Some(&c), &t).into_iter().collect(),
                conversation: Some(t.conversation),
                message: None,
                now,
            };
            match self.store.apply(change).await {
                Ok(_) => return Ok(Act::Done),
                Err(StoreError::VersionConflict) => continue,
                Err(e) => return Err(e),
            }
        }
        Err(StoreError::VersionConflict)
    }

    pub fn node(&self) -> &str {
        &self.node
    }

    pub fn now(&self) -> Timestamp {
        self.clock.now()
    }
}

/// The comment as the ledger's `comment_seen` row records it.
fn seen_of(c: &CommentArrived) -> SeenComment {
    SeenComment {
        message_id: c.message_id,
        workspace_id: c.workspace_id,
        inbox_id: c.inbox_id,
        post_id: c.comment["post_id"]
            .as_str()
            .or_else(|| c.comment["media_id"].as_str())
            .unwrap_or_default()
            .to_owned(),
        post_link: c.comment["post_link"].as_str().map(str::to_owned),
        person: c.person.clone(),
        at: c.at,
    }
}

/// What a reply's message row says about it.
fn sent_outcome(m: &Message) -> Act {
    if m.delivery_status == DeliveryStatus::Failed {
        Act::Failed(m.failure_reason.clone().unwrap_or_else(|| "refused".into()))
    } else {
        Act::Done
    }
}

enum Act {
    Done,
    Failed(String),
    Retry {
        reason: String,
        hint_ms: Option<i64>,
    },
}

/// The longest prefix of `s` within `max` bytes, on a character boundary.
fn cut(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

fn fnv(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// Runs the comment outbox: when woken (something was planned) or every `poll_ms`.
pub fn spawn_runner(rules: CommentRules, clock: Arc<dyn Clock>, poll_ms: u64) -> JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            let now = clock.now();
            match rules.run_due(now).await {
                Ok(t) if t.done + t.failed + t.retried + t.swept > 0 => {
                    tracing::debug!(?t, "comment rules tick");
                }
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "comment rules tick failed"),
            }
            let _ = tokio::time::timeout(
                Duration::from_millis(poll_ms.max(10)),
                rules.wake.notified(),
            )
            .await;
        }
    })
}
