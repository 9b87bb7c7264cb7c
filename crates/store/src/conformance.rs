//! The store's conformance suite: stories — sequences of store calls with the results every backend
//! must give. Each story runs on SQLite always and on PostgreSQL when `SWITCHBOARD_TEST_DATABASE_URL`
//! names a server (CI sets it); on PostgreSQL each run gets a schema of its own.
//!
//! The concurrency stories matter most for PostgreSQL, where writes do not go through one writer:
//! exactly one winner among concurrent claims, one contact and conversation for a customer whose
//! first messages arrive together, timers and outbox rows handed to one runner, and event numbers
//! that never appear below a number a reader has already seen.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::*;
use std::collections::HashSet;
use switchboard_core::conversation::{self, Actor};
use switchboard_core::routing::{RoutingRules, Strategy};
use switchboard_core::timers::TimerKind;
use uuid::Uuid;

const T0: Timestamp = Timestamp(1_790_000_000_000);

/// A store under test and what keeps it alive (its directory or schema).
struct Backend {
    name: &'static str,
    store: Arc<dyn Store>,
    _dir: Option<tempfile::TempDir>,
}

async fn backends() -> Vec<Backend> {
    let dir = tempfile::tempdir().unwrap();
    let sqlite = sqlite::SqliteStore::open(&dir.path().join("t.db"))
        .await
        .unwrap();
    let mut v = vec![Backend {
        name: "sqlite",
        store: Arc::new(sqlite),
        _dir: Some(dir),
    }];
    if let Some(base) = std::env::var("SWITCHBOARD_TEST_DATABASE_URL")
        .ok()
        .filter(|u| !u.is_empty())
    {
        use sqlx::Connection;
        let schema = format!("c_{}", Uuid::now_v7().simple());
        let mut conn = sqlx::PgConnection::connect(&base).await.unwrap();
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {schema}")))
            .execute(&mut conn)
            .await
            .unwrap();
        let sep = if base.contains('?') { '&' } else { '?' };
        let url = format!("{base}{sep}options%5Bsearch_path%5D={schema}");
        v.push(Backend {
            name: "postgres",
            store: Arc::new(postgres::PgStore::open(&url).await.unwrap()),
            _dir: None,
        });
    } else {
        eprintln!("SWITCHBOARD_TEST_DATABASE_URL is not set: PostgreSQL not exercised");
    }
    v
}

struct Fixture {
    store: Arc<dyn Store>,
    ws: WorkspaceId,
    inbox: InboxId,
    agent: Agent,
}

fn agent(ws: WorkspaceId, email: &str, name: &str) -> Agent {
    Agent {
        id: AgentId(Uuid::now_v7()),
        workspace_id: ws,
        email: email.into(),
        name: name.into(),
        role: Role::Agent,
        capacity: None,
        active: true,
        created_at: T0,
    }
}

async fn fixture(store: Arc<dyn Store>) -> Fixture {
    fixture_as(store, "a@shop.vn").await
}

/// A fixture with an inbox of its own, in the one workspace, whose agent has this email.
async fn fixture_as(store: Arc<dyn Store>, email: &str) -> Fixture {
    let ws = store.ensure_workspace("W", T0).await.unwrap();
    assert_eq!(
        store.ensure_workspace("again", T0).await.unwrap(),
        ws,
        "one workspace"
    );
    let inbox = Inbox {
        id: InboxId(Uuid::now_v7()),
        workspace_id: ws,
        name: "Web".into(),
        channel: ChannelKind::Livechat,
        settings: serde_json::json!({}),
        created_at: T0,
    };
    store.create_inbox(&inbox).await.unwrap();
    let a = agent(ws, email, "A");
    store.create_agent(&a, "x").await.unwrap();
    store.set_inbox_members(inbox.id, &[a.id]).await.unwrap();
    Fixture {
        store,
        ws,
        inbox: inbox.id,
        agent: a,
    }
}

/// A customer's message on a provider channel, for `f`'s inbox.
fn stamped(
    f: &Fixture,
    external_id: &str,
    provider_id: &str,
    text: &str,
    at: Timestamp,
    meta: serde_json::Value,
    alias: Option<&str>,
) -> Stamped {
    Stamped {
        workspace_id: f.ws,
        inbox_id: f.inbox,
        ids: NewIds {
            message: MessageId(Uuid::now_v7()),
            conversation: ConversationId(Uuid::now_v7()),
            contact: ContactId(Uuid::now_v7()),
        },
        event: InboundEvent::Customer(Said {
            from: InboundSender::identity(external_id, Some("Khách")),
            provider_message_id: provider_id.into(),
            kind: MessageKind::Text,
            text: text.into(),
            at,
            meta,
            replying_to: None,
            alias: alias.map(str::to_owned),
        }),
    }
}

fn inbound(
    f: &Fixture,
    external_id: &str,
    provider_id: &str,
    text: &str,
    at: Timestamp,
) -> Inbound {
    Inbound {
        workspace_id: f.ws,
        inbox_id: f.inbox,
        sender: InboundSender::Identity {
            external_id: external_id.into(),
            name: Some("Khách".into()),
        },
        provider_message_id: provider_id.into(),
        kind: MessageKind::Text,
        text: text.into(),
        sent_at: at,
        message_id: MessageId(Uuid::now_v7()),
        new_conversation_id: ConversationId(Uuid::now_v7()),
        new_contact_id: ContactId(Uuid::now_v7()),
    }
}

async fn customer_writes(f: &Fixture, contact: ContactId, at: Timestamp) -> Ingested {
    let mut item = inbound(
        f,
        &contact.to_string(),
        &Uuid::now_v7().to_string(),
        "alo",
        at,
    );
    item.new_contact_id = contact;
    f.store
        .ingest(&[item], at)
        .await
        .unwrap()
        .remove(0)
        .unwrap()
}

fn claim_change(f: &Fixture, c: &Conversation, who: AgentId, now: Timestamp) -> Option<Change> {
    let actor = Actor {
        agent_id: who,
        role: Role::Agent,
    };
    let t = conversation::claim(c, actor).ok()?;
    Some(Change {
        events: switchboard_core::event::for_transition(Some(c), &t)
            .into_iter()
            .collect(),
        conversation: Some(t.conversation),
        expected_version: c.version,
        conversation_id: c.id,
        workspace_id: f.ws,
        actions: t.actions,
        message: None,
        now,
    })
}

async fn claim(f: &Fixture, id: ConversationId, now: Timestamp) {
    let c = f.store.conversation(id).await.unwrap().unwrap();
    let change = claim_change(f, &c, f.agent.id, now).unwrap();
    f.store.apply(change).await.unwrap();
}

// ------------------------------------------------------------------ stories

#[tokio::test]
async fn agents_inboxes_sessions_settings_and_quick_replies() {
    for b in backends().await {
        let f = fixture(b.store.clone()).await;
        let s = &f.store;
        let dup = agent(f.ws, "a@shop.vn", "Other");
        assert!(
            matches!(
                s.create_agent(&dup, "y").await,
                Err(StoreError::Conflict("email"))
            ),
            "{}",
            b.name
        );
        let (got, hash) = s.agent_credentials("a@shop.vn").await.unwrap().unwrap();
        assert_eq!((got, hash.as_str()), (f.agent.clone(), "x"));
        let mut changed = f.agent.clone();
        changed.capacity = Some(3);
        changed.active = false;
        s.update_agent(&changed, Some("z")).await.unwrap();
        assert_eq!(s.agent(f.agent.id).await.unwrap(), Some(changed.clone()));
        assert_eq!(
            s.agent_credentials("a@shop.vn").await.unwrap().unwrap().1,
            "z"
        );
        let b2 = agent(f.ws, "b@shop.vn", "B");
        s.create_agent(&b2, "x").await.unwrap();
        let names: Vec<String> = s
            .list_agents(f.ws)
            .await
            .unwrap()
            .into_iter()
            .map(|a| a.name)
            .collect();
        assert_eq!(names, vec!["A", "B"], "{}", b.name);

        let session = Session {
            token_hash: "h1".into(),
            agent_id: f.agent.id,
            csrf_token: "c".into(),
            created_at: T0,
            expires_at: T0.plus_minutes(60),
            revoked_at: None,
        };
        s.create_session(&session).await.unwrap();
        assert_eq!(s.session("h1").await.unwrap(), Some(session.clone()));
        s.revoke_agent_sessions(f.agent.id, T0.plus_minutes(1))
            .await
            .unwrap();
        assert_eq!(
            s.session("h1").await.unwrap().unwrap().revoked_at,
            Some(T0.plus_minutes(1))
        );

        assert_eq!(s.setting("k").await.unwrap(), None);
        assert_eq!(s.setting_init("k", "v1").await.unwrap(), "v1");
        assert_eq!(s.setting_init("k", "v2").await.unwrap(), "v1", "set once");

        s.set_inbox_members(f.inbox, &[b2.id, f.agent.id])
            .await
            .unwrap();
        let mut want = vec![f.agent.id, b2.id];
        want.sort();
        assert_eq!(s.inbox_members(f.inbox).await.unwrap(), want);
        assert_eq!(s.memberships().await.unwrap().len(), 2);
        assert_eq!(s.agent_inboxes(b2.id).await.unwrap(), vec![f.inbox]);

        let qr = |code: &str| QuickReply {
            id: QuickReplyId(Uuid::now_v7()),
            workspace_id: f.ws,
            code: code.into(),
            text: format!("text of {code}"),
            media: Vec::new(),
        };
        s.save_quick_reply(&qr("Gia"), T0, true).await.unwrap();
        s.save_quick_reply(&qr("giao_hang"), T0, true)
            .await
            .unwrap();
        s.save_quick_reply(&qr("chao"), T0, true).await.unwrap();
        assert!(matches!(
            s.save_quick_reply(&qr("chao"), T0, true).await,
            Err(StoreError::Conflict("code"))
        ));
        let codes = |v: Vec<QuickReply>| v.into_iter().map(|q| q.code).collect::<Vec<_>>();
        // Prefix search ignores ASCII case and treats `_` literally.
        assert_eq!(
            codes(s.list_quick_replies(f.ws, Some("gi")).await.unwrap()),
            vec!["Gia", "giao_hang"],
            "{}",
            b.name
        );
        assert_eq!(
            codes(s.list_quick_replies(f.ws, Some("giao_")).await.unwrap()),
            vec!["giao_hang"]
        );
    }
}

/// The saved-media library: files listed newest first per workspace, renamed, retagged and
/// removed; a quick reply keeps the library files it carries, in order.
#[tokio::test]
async fn the_media_library_and_quick_replies_with_files() {
    for b in backends().await {
        let f = fixture(b.store.clone()).await;
        let s = &f.store;
        let file = |name: &str, at: i64| SavedMedia {
            id: Uuid::now_v7(),
            workspace_id: f.ws,
            name: name.into(),
            tags: vec!["bảng giá".into(), "tết".into()],
            filename: format!("{name}.jpg"),
            content_type: "image/jpeg".into(),
            size_bytes: 1234,
            created_by: Some(f.agent.id),
            created_at: T0.plus_millis(at),
        };
        let (price, size) = (file("Bảng giá", 1), file("Bảng size", 2));
        s.create_saved_media(&price).await.unwrap();
        s.create_saved_media(&size).await.unwrap();
        let names = |v: Vec<SavedMedia>| v.into_iter().map(|m| m.name).collect::<Vec<_>>();
        assert_eq!(
            names(s.list_saved_media(f.ws, 50).await.unwrap()),
            vec!["Bảng size", "Bảng giá"],
            "{}",
            b.name
        );
        assert_eq!(s.saved_media(price.id).await.unwrap(), Some(price.clone()));
        assert!(
            s.update_saved_media(price.id, "Giá tháng 12", &["giá".into()])
                .await
                .unwrap()
        );
        let got = s.saved_media(price.id).await.unwrap().unwrap();
        assert_eq!(
            (got.name.as_str(), got.tags.clone()),
            ("Giá tháng 12", vec!["giá".to_owned()])
        );
        assert!(
            !s.update_saved_media(Uuid::now_v7(), "x", &[])
                .await
                .unwrap()
        );

        let mut qr = QuickReply {
            id: QuickReplyId(Uuid::now_v7()),
            workspace_id: f.ws,
            code: "banggia".into(),
            text: "Dạ bảng giá đây ạ".into(),
            media: vec![size.id, price.id],
        };
        s.save_quick_reply(&qr, T0, true).await.unwrap();
        assert_eq!(s.quick_reply(qr.id).await.unwrap(), Some(qr.clone()));
        qr.media = vec![price.id];
        s.save_quick_reply(&qr, T0, false).await.unwrap();
        assert_eq!(
            s.quick_reply(qr.id).await.unwrap().unwrap().media,
            vec![price.id]
        );

        assert!(s.delete_saved_media(size.id).await.unwrap());
        assert!(!s.delete_saved_media(size.id).await.unwrap());
        assert_eq!(
            names(s.list_saved_media(f.ws, 50).await.unwrap()),
            vec!["Giá tháng 12"]
        );
    }
}

#[tokio::test]
async fn ingest_lists_threads_claims_and_the_event_log() {
    for b in backends().await {
        let f = fixture(b.store.clone()).await;
        let s = &f.store;
        let before = s.last_event_seq().await.unwrap();
        // One batch: two customers, a duplicate inside the batch, an unknown inbox.
        let mut unknown = inbound(&f, "x", "m0", "?", T0);
        unknown.inbox_id = InboxId(Uuid::now_v7());
        let batch = vec![
            inbound(&f, "psid-1", "m1", "Chào shop", T0),
            inbound(&f, "psid-2", "m2", "Còn hàng không?", T0.plus_millis(1)),
            inbound(&f, "psid-1", "m1", "Chào shop", T0),
            unknown,
            inbound(&f, "psid-1", "m3", "alo", T0.plus_millis(2)),
        ];
        let out = s.ingest(&batch, T0.plus_millis(5)).await.unwrap();
        let ok: Vec<&Ingested> = out.iter().filter_map(|o| o.as_ref().ok()).collect();
        assert_eq!(out[3], Err(IngestError::UnknownInbox), "{}", b.name);
        assert!(!ok[0].duplicate && ok[0].entered_pool);
        assert!(ok[2].duplicate, "same provider id in one batch: {}", b.name);
        assert_eq!(ok[2].message_id, ok[0].message_id);
        assert_eq!(
            ok[3].conversation_id, ok[0].conversation_id,
            "one per customer"
        );
        assert!(!ok[3].entered_pool);
        let again = s
            .ingest(&[inbound(&f, "psid-2", "m2", "Còn hàng không?", T0)], T0)
            .await
            .unwrap();
        assert!(again[0].as_ref().unwrap().duplicate, "redelivery");

        let conv = ok[0].conversation_id;
        let thread = s.messages(conv, None, 10, false).await.unwrap();
        let texts: Vec<&str> = thread.items.iter().map(|m| m.text.as_str()).collect();
        assert_eq!(texts, vec!["Chào shop", "alo"]);
        let page = s.messages(conv, None, 1, false).await.unwrap();
        assert_eq!(page.items[0].text, "alo");
        let cursor = MessageCursor::decode(page.next_cursor.as_deref().unwrap()).unwrap();
        let older = s.messages(conv, Some(cursor), 1, false).await.unwrap();
        assert_eq!(older.items[0].text, "Chào shop");
        assert!(older.next_cursor.is_none());

        let q = ConversationQuery {
            workspace_id: f.ws,
            visible_inboxes: Some(vec![f.inbox]),
            status: Some(ConversationStatus::Pending),
            inbox_id: None,
            assignee: Some(AssigneeFilter::Unassigned),
            tag: None,
            q: None,
            contact_id: None,
            cursor: None,
            limit: 1,
        };
        // Newest activity first, ties by id (descending).
        let mut want = Vec::new();
        for id in [ok[0].conversation_id, ok[1].conversation_id] {
            let c = s.conversation(id).await.unwrap().unwrap();
            want.push((c.last_activity_at, c.id));
        }
        want.sort();
        want.reverse();
        let first = s.list_conversations(&q).await.unwrap();
        assert_eq!(first.items.len(), 1);
        assert_eq!(first.items[0].conversation.id, want[0].1, "{}", b.name);
        let unread = if want[0].1 == ok[0].conversation_id {
            2
        } else {
            1
        };
        assert_eq!(first.items[0].unread_count, unread, "{}", b.name);
        let second = s
            .list_conversations(&ConversationQuery {
                cursor: ListCursor::decode(first.next_cursor.as_deref().unwrap()),
                ..q.clone()
            })
            .await
            .unwrap();
        assert_eq!(second.items[0].conversation.id, want[1].1, "{}", b.name);
        assert!(second.next_cursor.is_none());
        let found = s
            .list_conversations(&ConversationQuery {
                q: Some("CÒN HÀNG".to_lowercase()),
                limit: 10,
                ..q.clone()
            })
            .await
            .unwrap();
        assert_eq!(found.items.len(), 1, "{}", b.name);
        let hidden = s
            .list_conversations(&ConversationQuery {
                visible_inboxes: Some(vec![]),
                limit: 10,
                ..q.clone()
            })
            .await
            .unwrap();
        assert!(hidden.items.is_empty());

        // A claim is compare-and-set: a decision on a stale version is refused.
        let c = s.conversation(conv).await.unwrap().unwrap();
        let first_claim = claim_change(&f, &c, f.agent.id, T0.plus_minutes(1)).unwrap();
        let stale = first_claim.clone();
        s.apply(first_claim).await.unwrap();
        assert!(matches!(
            s.apply(stale).await,
            Err(StoreError::VersionConflict)
        ));
        let mine = s
            .list_conversations(&ConversationQuery {
                status: Some(ConversationStatus::Open),
                assignee: Some(AssigneeFilter::Agent(f.agent.id)),
                limit: 10,
                ..q.clone()
            })
            .await
            .unwrap();
        assert_eq!(mine.items.len(), 1);
        assert!(
            s.history(conv)
                .await
                .unwrap()
                .iter()
                .any(|h| h.kind == "claimed"),
            "{}",
            b.name
        );

        // The event log: contiguous numbers after `before`, replayable per inbox.
        let events = s.events_since(before, None, 100).await.unwrap();
        let seqs: Vec<i64> = events.iter().map(|e| e.seq).collect();
        assert!(!seqs.is_empty());
        assert_eq!(
            seqs,
            (before + 1..=before + seqs.len() as i64).collect::<Vec<_>>(),
            "{}",
            b.name
        );
        assert_eq!(s.last_event_seq().await.unwrap(), *seqs.last().unwrap());
        assert_eq!(
            s.events_since(before, Some(&[f.inbox]), 100)
                .await
                .unwrap()
                .len(),
            events.len()
        );
        assert!(
            s.events_since(before, Some(&[]), 100)
                .await
                .unwrap()
                .is_empty()
        );
    }
}

#[tokio::test]
async fn tags_and_attachments() {
    for b in backends().await {
        let f = fixture(b.store.clone()).await;
        let s = &f.store;
        let conv = customer_writes(&f, ContactId(Uuid::now_v7()), T0)
            .await
            .conversation_id;
        let vip = s.create_tag(f.ws, "vip", T0).await.unwrap();
        assert_eq!(
            s.create_tag(f.ws, "vip", T0).await.unwrap(),
            vip,
            "idempotent"
        );
        let c = s.conversation(conv).await.unwrap().unwrap();
        let mut tagged = c.clone();
        tagged.tags = vec!["vip".into(), "sỉ".into()];
        tagged.version += 1;
        s.apply(Change {
            conversation: Some(tagged),
            expected_version: c.version,
            conversation_id: conv,
            workspace_id: f.ws,
            actions: vec![conversation::Action {
                kind: conversation::ActionKind::Tagged,
                actor: None,
                detail: serde_json::json!({"tag": "vip"}),
            }],
            message: None,
            events: vec![],
            now: T0,
        })
        .await
        .unwrap();
        let names: Vec<String> = s
            .list_tags(f.ws)
            .await
            .unwrap()
            .into_iter()
            .map(|t| t.name)
            .collect();
        assert_eq!(names, vec!["sỉ", "vip"], "{}", b.name);
        assert!(s.delete_tag(f.ws, vip.id).await.unwrap());
        assert!(!s.delete_tag(f.ws, vip.id).await.unwrap());
        let after = s.conversation(conv).await.unwrap().unwrap();
        assert_eq!(after.tags, vec!["sỉ".to_owned()], "{}", b.name);
        assert_eq!(after.version, c.version + 2);

        let m = s.messages(conv, None, 1, false).await.unwrap().items[0].id;
        let a = Attachment {
            id: Uuid::now_v7(),
            conversation_id: conv,
            message_id: m,
            filename: "a.png".into(),
            content_type: "image/png".into(),
            size_bytes: 42,
            created_at: T0,
            inbound: None,
        };
        s.create_attachment(&a).await.unwrap();
        assert_eq!(s.attachment(a.id).await.unwrap(), Some(a.clone()));
        assert_eq!(
            s.attachments_for_messages(&[m]).await.unwrap(),
            vec![a.clone()]
        );
        assert_eq!(s.conversation_attachments(conv, 10).await.unwrap(), vec![a]);
    }
}

#[tokio::test]
async fn timers_follow_the_conversation_and_fire_once() {
    for b in backends().await {
        let f = fixture(b.store.clone()).await;
        let rules = RoutingRules {
            strategy: Strategy::SelfClaim,
            reply_sla_minutes: Some(5),
            ..RoutingRules::default()
        };
        f.store
            .set_routing_rules(f.inbox, &rules, T0)
            .await
            .unwrap();
        let contact = ContactId(Uuid::now_v7());
        let ing = customer_writes(&f, contact, T0).await;
        assert!(ing.entered_pool);
        let conv = ing.conversation_id;
        assert!(
            f.store.conversation_timers(conv).await.unwrap().is_empty(),
            "nobody holds it"
        );
        let waiting = f.store.waiting(f.inbox, 10).await.unwrap();
        assert_eq!(waiting.len(), 1);
        assert_eq!(waiting[0].waiting_since, T0);

        claim(&f, conv, T0.plus_minutes(1)).await;
        assert!(
            f.store.waiting(f.inbox, 10).await.unwrap().is_empty(),
            "left the pool"
        );
        let timers = f.store.conversation_timers(conv).await.unwrap();
        assert_eq!(timers.len(), 1);
        assert_eq!(timers[0].kind, TimerKind::ReplySla);
        assert_eq!(timers[0].due_at, T0.plus_minutes(6));

        // Not due one ms early; claimed exactly at due; a second runner gets nothing while leased,
        // and gets it once the lease has run out (its holder died).
        let due = T0.plus_minutes(6);
        let lease = due.plus_minutes(1);
        assert!(
            f.store
                .claim_due_timers(due.plus_millis(-1), lease, "n1", 10)
                .await
                .unwrap()
                .is_empty()
        );
        let claimed = f
            .store
            .claim_due_timers(due, lease, "n1", 10)
            .await
            .unwrap();
        assert_eq!(claimed.len(), 1, "{}", b.name);
        assert!(
            f.store
                .claim_due_timers(due, lease, "n2", 10)
                .await
                .unwrap()
                .is_empty()
        );
        let retaken = f
            .store
            .claim_due_timers(lease, lease.plus_minutes(1), "n2", 10)
            .await
            .unwrap();
        assert_eq!(retaken.len(), 1, "after the lease: {}", b.name);

        // The customer writes again in the same turn: the first deadline stands, same generation.
        customer_writes(&f, contact, T0.plus_minutes(2)).await;
        let again = f.store.conversation_timers(conv).await.unwrap();
        assert_eq!(
            (again[0].due_at, again[0].generation),
            (due, claimed[0].generation)
        );

        // Fired once: the second attempt with the same (id, generation) finds nothing.
        let t = &claimed[0];
        let c = f.store.conversation(conv).await.unwrap().unwrap();
        let take = |c: &Conversation| {
            let tr = switchboard_core::routing::take_back(
                c,
                None,
                switchboard_core::routing::Trigger::ReplySla,
                due,
            )
            .unwrap();
            RoutingChange {
                change: Change {
                    conversation: Some(tr.conversation),
                    expected_version: c.version,
                    conversation_id: c.id,
                    workspace_id: f.ws,
                    actions: tr.actions,
                    message: None,
                    events: vec![],
                    now: due,
                },
                pointer: None,
                capacity: None,
                timer: Some((t.id, t.generation)),
            }
        };
        assert!(matches!(
            f.store.apply_routing(take(&c)).await.unwrap(),
            RoutingOutcome::Applied(_)
        ));
        assert_eq!(
            f.store.apply_routing(take(&c)).await.unwrap(),
            RoutingOutcome::TimerGone
        );
        let history = f.store.history(conv).await.unwrap();
        assert_eq!(
            history
                .iter()
                .filter(|h| h.kind == "returned_to_pool")
                .count(),
            1
        );
        let back = f.store.waiting(f.inbox, 10).await.unwrap();
        assert_eq!(
            back[0].excluded_agent_id,
            Some(f.agent.id),
            "not straight back to who missed it"
        );
        assert!(f.store.conversation_timers(conv).await.unwrap().is_empty());
    }
}

#[tokio::test]
async fn a_rescheduled_timer_cannot_be_fired_from_an_old_copy() {
    for b in backends().await {
        let f = fixture(b.store.clone()).await;
        let rules = RoutingRules {
            reply_sla_minutes: Some(5),
            ..RoutingRules::default()
        };
        f.store
            .set_routing_rules(f.inbox, &rules, T0)
            .await
            .unwrap();
        let contact = ContactId(Uuid::now_v7());
        let conv = customer_writes(&f, contact, T0).await.conversation_id;
        claim(&f, conv, T0).await;
        let old = f.store.conversation_timers(conv).await.unwrap().remove(0);
        // The agent replies (clears), the customer writes again (a new turn, a new row).
        let c = f.store.conversation(conv).await.unwrap().unwrap();
        let actor = Actor {
            agent_id: f.agent.id,
            role: Role::Agent,
        };
        let r = conversation::reply(&c, actor, T0.plus_minutes(1)).unwrap();
        f.store
            .apply(Change {
                conversation: Some(r.conversation),
                expected_version: c.version,
                conversation_id: conv,
                workspace_id: f.ws,
                actions: vec![],
                message: None,
                events: vec![],
                now: T0.plus_minutes(1),
            })
            .await
            .unwrap();
        assert!(
            f.store.conversation_timers(conv).await.unwrap().is_empty(),
            "a reply clears it: {}",
            b.name
        );
        customer_writes(&f, contact, T0.plus_minutes(2)).await;
        let new = f.store.conversation_timers(conv).await.unwrap().remove(0);
        assert_eq!(new.due_at, T0.plus_minutes(7));
        assert!(
            !f.store.discard_timer(old.id, old.generation).await.unwrap(),
            "old copy"
        );
        assert_eq!(f.store.conversation_timers(conv).await.unwrap().len(), 1);

        // Switching the SLA off removes running timers at once.
        f.store
            .set_routing_rules(f.inbox, &RoutingRules::default(), T0.plus_minutes(3))
            .await
            .unwrap();
        assert!(f.store.conversation_timers(conv).await.unwrap().is_empty());
    }
}

#[tokio::test]
async fn pointer_and_capacity_are_compare_and_set() {
    for b in backends().await {
        let f = fixture(b.store.clone()).await;
        let rules = RoutingRules {
            strategy: Strategy::RoundRobin,
            ..RoutingRules::default()
        };
        f.store
            .set_routing_rules(f.inbox, &rules, T0)
            .await
            .unwrap();
        let state = f.store.routing_state(f.inbox).await.unwrap();
        assert_eq!((state.pointer, state.pointer_version), (None, 0));
        let conv = customer_writes(&f, ContactId(Uuid::now_v7()), T0)
            .await
            .conversation_id;
        assert_eq!(f.store.inboxes_with_backlog().await.unwrap(), vec![f.inbox]);
        let c = f.store.conversation(conv).await.unwrap().unwrap();
        let pick = switchboard_core::routing::Pick {
            agent_id: f.agent.id,
            reason: switchboard_core::routing::PickReason::RoundRobin,
            moves_pointer: true,
        };
        let assign = |expected_version: i64, capacity: Option<u32>| {
            let tr = switchboard_core::routing::auto_assign(
                &c,
                pick,
                switchboard_core::routing::Trigger::Arrival,
                T0,
            )
            .unwrap();
            RoutingChange {
                change: Change {
                    conversation: Some(tr.conversation),
                    expected_version: c.version,
                    conversation_id: c.id,
                    workspace_id: f.ws,
                    actions: tr.actions,
                    message: None,
                    events: vec![],
                    now: T0,
                },
                pointer: Some(PointerMove {
                    inbox_id: f.inbox,
                    expected_version,
                    agent_id: f.agent.id,
                }),
                capacity: capacity.map(|n| (f.agent.id, n)),
                timer: None,
            }
        };
        assert!(
            matches!(
                f.store.apply_routing(assign(7, None)).await,
                Err(StoreError::VersionConflict)
            ),
            "stale pointer: {}",
            b.name
        );
        assert!(
            matches!(
                f.store.apply_routing(assign(0, Some(0))).await,
                Err(StoreError::VersionConflict)
            ),
            "full"
        );
        assert!(matches!(
            f.store.apply_routing(assign(0, Some(1))).await,
            Ok(RoutingOutcome::Applied(_))
        ));
        let state = f.store.routing_state(f.inbox).await.unwrap();
        assert_eq!(
            (state.pointer, state.pointer_version),
            (Some(f.agent.id), 1)
        );
        assert_eq!(
            f.store
                .open_counts(&[f.agent.id])
                .await
                .unwrap()
                .get(&f.agent.id),
            Some(&1)
        );
        assert_eq!(
            f.store.inboxes_with_backlog().await.unwrap(),
            Vec::<InboxId>::new()
        );
    }
}

#[tokio::test]
async fn the_outbox_hands_each_row_to_one_worker() {
    for b in backends().await {
        let f = fixture(b.store.clone()).await;
        let s = &f.store;
        let conv = customer_writes(&f, ContactId(Uuid::now_v7()), T0)
            .await
            .conversation_id;
        claim(&f, conv, T0).await;
        let mut ids = Vec::new();
        for i in 0..20 {
            let c = s.conversation(conv).await.unwrap().unwrap();
            let m = Message {
                id: MessageId(Uuid::now_v7()),
                conversation_id: conv,
                inbox_id: f.inbox,
                direction: Direction::Outbound,
                sender_kind: SenderKind::Agent,
                sender_agent_id: Some(f.agent.id),
                kind: MessageKind::Text,
                text: format!("reply {i}"),
                provider_message_id: None,
                delivery_status: DeliveryStatus::Queued,
                failure_reason: None,
                created_at: T0,
            };
            ids.push(m.id);
            let out = Outbound {
                change: Change {
                    events: vec![switchboard_core::event::message_created(&m)],
                    conversation: None,
                    expected_version: c.version,
                    conversation_id: conv,
                    workspace_id: f.ws,
                    actions: vec![],
                    message: Some(m),
                    now: T0,
                },
                job: OutboxJob::Send,
                request: serde_json::json!({"recipient": "psid", "text": "hi"}),
                meta: MessageMeta::default(),
                private_reply_to: if i == 0 {
                    Some("comment-1".into())
                } else {
                    None
                },
                run: None,
            };
            s.queue_outbound(out).await.unwrap().unwrap();
        }
        assert_eq!(s.next_due().await.unwrap(), Some(T0));
        // Four workers claim at once: every row exactly once.
        let lease = T0.plus_minutes(5);
        let workers: Vec<_> = (0..4)
            .map(|_| {
                let s = s.clone();
                tokio::spawn(async move { s.claim_due(T0, lease, 7).await.unwrap() })
            })
            .collect();
        let mut seen = HashSet::new();
        let mut n = 0;
        for w in workers {
            for r in w.await.unwrap() {
                n += 1;
                assert!(seen.insert(r.message_id), "handed out twice: {}", b.name);
            }
        }
        while n < ids.len() {
            let more = s.claim_due(T0, lease, 7).await.unwrap();
            assert!(!more.is_empty(), "{}", b.name);
            for r in more {
                n += 1;
                assert!(seen.insert(r.message_id));
            }
        }
        assert!(
            s.claim_due(T0, lease, 100).await.unwrap().is_empty(),
            "leased"
        );
        s.outbox_sent(ids[0], "mid.1", None, T0).await.unwrap();
        s.outbox_retry(ids[1], T0.plus_minutes(10), "rate_limited", T0)
            .await
            .unwrap();
        s.outbox_failed(ids[2], "window_closed", T0).await.unwrap();
        assert_eq!(s.outbox_row(ids[0]).await.unwrap().unwrap().state, "sent");
        assert_eq!(
            s.message(ids[2]).await.unwrap().unwrap().delivery_status,
            DeliveryStatus::Failed
        );
        assert_eq!(
            s.private_reply_of(f.inbox, "comment-1").await.unwrap(),
            Some(ids[0])
        );
        // Leases run out: the rows of a dead worker go to the next one.
        let retaken = s
            .claim_due(lease, lease.plus_minutes(5), 100)
            .await
            .unwrap();
        assert_eq!(retaken.len(), ids.len() - 3, "{}", b.name);
        // Their request may have gone out: they say so, and the next claim does not clear it.
        for r in &retaken {
            assert_eq!(
                r.last_error.as_deref(),
                Some(crate::OUTBOX_INTERRUPTED),
                "{}",
                b.name
            );
        }
    }
}

#[tokio::test]
async fn concurrent_claims_have_exactly_one_winner() {
    for b in backends().await {
        let f = fixture(b.store.clone()).await;
        let mut agents = Vec::new();
        for i in 0..8 {
            let a = agent(f.ws, &format!("x{i}@shop.vn"), &format!("X{i}"));
            f.store.create_agent(&a, "x").await.unwrap();
            agents.push(a.id);
        }
        let mut convs = Vec::new();
        for _ in 0..10 {
            convs.push(
                customer_writes(&f, ContactId(Uuid::now_v7()), T0)
                    .await
                    .conversation_id,
            );
        }
        let mut tasks = Vec::new();
        for &conv in &convs {
            for &who in &agents {
                let store = f.store.clone();
                let ws = f.ws;
                tasks.push(tokio::spawn(async move {
                    // Decide and retry like the API does: a conflict means "reload".
                    for _ in 0..5 {
                        let c = store.conversation(conv).await.unwrap().unwrap();
                        let Ok(t) = conversation::claim(
                            &c,
                            Actor {
                                agent_id: who,
                                role: Role::Agent,
                            },
                        ) else {
                            return false; // someone else holds it
                        };
                        let change = Change {
                            conversation: Some(t.conversation),
                            expected_version: c.version,
                            conversation_id: conv,
                            workspace_id: ws,
                            actions: t.actions,
                            message: None,
                            events: vec![],
                            now: T0,
                        };
                        match store.apply(change).await {
                            Ok(_) => return true,
                            Err(StoreError::VersionConflict) => continue,
                            Err(e) => panic!("{e}"),
                        }
                    }
                    false
                }));
            }
        }
        let mut wins = 0;
        for t in tasks {
            wins += usize::from(t.await.unwrap());
        }
        assert_eq!(wins, convs.len(), "one winner per conversation: {}", b.name);
        for conv in convs {
            let h = f.store.history(conv).await.unwrap();
            assert_eq!(h.iter().filter(|e| e.kind == "claimed").count(), 1);
        }
    }
}

#[tokio::test]
async fn a_customer_writing_from_many_places_at_once_is_one_contact_and_one_conversation() {
    for b in backends().await {
        let f = Arc::new(fixture(b.store.clone()).await);
        let tasks: Vec<_> = (0..12)
            .map(|i| {
                let f = f.clone();
                tokio::spawn(async move {
                    let item = inbound(&f, "psid-same", &format!("m{i}"), "alo", T0);
                    f.store
                        .ingest(&[item], T0)
                        .await
                        .unwrap()
                        .remove(0)
                        .unwrap()
                })
            })
            .collect();
        let mut convs = HashSet::new();
        let mut contacts = HashSet::new();
        for t in tasks {
            let ing = t.await.unwrap();
            assert!(!ing.duplicate);
            convs.insert(ing.conversation_id);
            contacts.insert(ing.contact_id);
        }
        assert_eq!((convs.len(), contacts.len()), (1, 1), "{}", b.name);
        let conv = convs.into_iter().next().unwrap();
        assert_eq!(
            f.store
                .messages(conv, None, 100, false)
                .await
                .unwrap()
                .items
                .len(),
            12
        );
        let summary = f.store.conversation_summary(conv).await.unwrap().unwrap();
        assert_eq!(summary.unread_count, 12, "{}", b.name);
    }
}

/// The cursor contract: once a reader has seen event N, no event numbered below N can appear
/// later. Writers commit concurrently while a reader tails the log.
#[tokio::test]
async fn event_numbers_never_appear_below_what_a_reader_has_seen() {
    for b in backends().await {
        let f = Arc::new(fixture(b.store.clone()).await);
        let start = f.store.last_event_seq().await.unwrap();
        let writers: Vec<_> = (0..8)
            .map(|w| {
                let f = f.clone();
                tokio::spawn(async move {
                    for i in 0..15 {
                        let item = inbound(&f, &format!("c{w}-{i}"), &format!("w{w}m{i}"), "x", T0);
                        f.store.ingest(&[item], T0).await.unwrap();
                    }
                })
            })
            .collect();
        let target = Arc::new(std::sync::atomic::AtomicI64::new(-1));
        let reader = {
            let f = f.clone();
            let target = target.clone();
            tokio::spawn(async move {
                let mut cursor = start;
                let mut seen = 0;
                loop {
                    for e in f.store.events_since(cursor, None, 1000).await.unwrap() {
                        assert_eq!(e.seq, cursor + 1, "a gap that filled in later");
                        cursor = e.seq;
                        seen += 1;
                    }
                    let t = target.load(std::sync::atomic::Ordering::SeqCst);
                    if t >= 0 && cursor >= t {
                        return seen;
                    }
                    tokio::task::yield_now().await;
                }
            })
        };
        for w in writers {
            w.await.unwrap();
        }
        let last = f.store.last_event_seq().await.unwrap();
        target.store(last, std::sync::atomic::Ordering::SeqCst);
        let seen = tokio::time::timeout(std::time::Duration::from_secs(60), reader)
            .await
            .expect("reader finished")
            .unwrap();
        assert!(seen >= 120, "{}", b.name);
        assert_eq!(start + seen, last, "{}", b.name);
    }
}

#[tokio::test]
async fn metering_counts_the_free_tier_exactly_under_concurrent_writers() {
    use switchboard_core::billing::{self, FreeReason, Tariff, Traffic};
    let tariff = Tariff {
        currency: "USD".into(),
        rates: Vec::new(),
        free_service_messages_per_month_from_2026_10: 5,
    };
    // A day into the per-message era with free service messages per number and month.
    let at = Timestamp(billing::SERVICE_CHARGED_FROM.millis() + 86_400_000);
    for b in backends().await {
        let f = fixture(b.store.clone()).await;
        let event = |i: usize| MeterEvent {
            inbox_id: f.inbox,
            business_id: "waba-1".into(),
            user_id: format!("8490000{i:04}"),
            market: "VN".into(),
            event_key: format!("status:wamid.{i}:delivered"),
            message_id: None,
            traffic: Traffic::Delivered { at, template: None },
            provider_pricing: None,
        };
        let mut tasks = Vec::new();
        // 20 events, each metered twice at once (a webhook redelivered to another node).
        for i in 0..40 {
            let store = f.store.clone();
            let e = event(i % 20);
            let tariff = tariff.clone();
            tasks.push(tokio::spawn(async move {
                store.meter_whatsapp(&e, &tariff).await.unwrap()
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        let month = billing::month_of(at);
        let rows = f
            .store
            .whatsapp_usage(&month, Some(&[f.inbox][..]))
            .await
            .unwrap();
        assert_eq!(rows.len(), 20, "{}: one row per event", b.name);
        let free = rows
            .iter()
            .filter(|c| c.free_reason == Some(FreeReason::FreeTier))
            .count();
        assert_eq!(free, 5, "{}: the free tier counted exactly", b.name);
        assert_eq!(rows.iter().filter(|c| c.billable).count(), 15, "{}", b.name);
    }
}

/// What a customer's conversation looks like after a script, without the ids that differ
/// between two runs of it.
#[derive(Debug, PartialEq)]
struct Seen {
    status: ConversationStatus,
    held: bool,
    preview: Option<String>,
    unread: i64,
    texts: Vec<String>,
    metas: Vec<serde_json::Value>,
    timers: Vec<(TimerKind, Timestamp, i64)>,
    waiting_since: Option<Timestamp>,
}

/// Runs the same script of customer messages on `f`'s inbox, either as one group commit or one
/// item per commit, after the same history; returns the outcomes, each customer's conversation
/// and the kinds of the events the script produced.
async fn ingest_script(
    f: &Fixture,
    one_batch: bool,
) -> (
    Vec<String>,
    Vec<(String, Seen)>,
    Vec<switchboard_core::event::EventKind>,
) {
    let rules = RoutingRules {
        reply_sla_minutes: Some(5),
        auto_close: switchboard_core::routing::AutoClose {
            agent_silence_minutes: Some(60),
            ..Default::default()
        },
        ..RoutingRules::default()
    };
    f.store
        .set_routing_rules(f.inbox, &rules, T0)
        .await
        .unwrap();
    // History: one customer held by an agent, one resolved, one plain.
    let before = |ext: &str| inbound(f, ext, &format!("{ext}-1"), "trước", T0);
    let held = f.store.ingest(&[before("held")], T0).await.unwrap()[0]
        .clone()
        .unwrap();
    claim(f, held.conversation_id, T0.plus_minutes(1)).await;
    let done = f.store.ingest(&[before("done")], T0).await.unwrap()[0]
        .clone()
        .unwrap();
    let c = f
        .store
        .conversation(done.conversation_id)
        .await
        .unwrap()
        .unwrap();
    let actor = Actor {
        agent_id: f.agent.id,
        role: Role::Agent,
    };
    let t = conversation::resolve(&c, actor, T0.plus_minutes(2)).unwrap();
    f.store
        .apply(Change {
            events: Vec::new(),
            conversation: Some(t.conversation),
            expected_version: c.version,
            conversation_id: c.id,
            workspace_id: f.ws,
            actions: t.actions,
            message: None,
            now: T0.plus_minutes(2),
        })
        .await
        .unwrap();
    f.store.ingest(&[before("old")], T0).await.unwrap();
    let from_seq = f.store.last_event_seq().await.unwrap();

    let t1 = T0.plus_minutes(10);
    let customer = |ext: &str, pid: &str, text: &str, meta: serde_json::Value| {
        stamped(f, ext, pid, text, t1, meta, None)
    };
    // For an inbox that does not exist: refused alone.
    let mut stranger = customer("?", "s-1", "ai đây", serde_json::Value::Null);
    stranger.inbox_id = InboxId(Uuid::now_v7());
    let script = vec![
        customer("n1", "n1-1", "một", serde_json::Value::Null),
        customer(
            "n1",
            "n1-2",
            "hai",
            serde_json::json!({"type": "text", "ad": {"ref": "tet"}}),
        ),
        customer("held", "held-2", "còn hàng không?", serde_json::json!({})),
        customer("done", "done-2", "lại nữa", serde_json::Value::Null),
        customer("n1", "n1-1", "một", serde_json::Value::Null),
        customer("old", "old-1", "trước", serde_json::Value::Null),
        stranger,
        customer("n2", "n2-1", "ba", serde_json::json!({"type": "image"})),
    ];
    let outcomes = if one_batch {
        f.store.ingest_channel(&script, t1).await.unwrap()
    } else {
        let mut v = Vec::new();
        for item in &script {
            v.extend(
                f.store
                    .ingest_channel(std::slice::from_ref(item), t1)
                    .await
                    .unwrap(),
            );
        }
        v
    };
    let shown: Vec<String> = outcomes
        .iter()
        .map(|o| match o {
            Ok(ChannelOutcome::Message(i)) => {
                format!("dup={} pool={}", i.duplicate, i.entered_pool)
            }
            other => format!("{other:?}"),
        })
        .collect();

    let waiting = f.store.waiting(f.inbox, 100).await.unwrap();
    let mut seen = Vec::new();
    for ext in ["n1", "n2", "held", "done", "old"] {
        let contact = f
            .store
            .contact_by_identity(f.inbox, ext)
            .await
            .unwrap()
            .unwrap();
        let c = f
            .store
            .conversation_of(contact, f.inbox)
            .await
            .unwrap()
            .unwrap();
        let sum = f.store.conversation_summary(c.id).await.unwrap().unwrap();
        let msgs = f
            .store
            .messages(c.id, None, 100, false)
            .await
            .unwrap()
            .items;
        let metas = f
            .store
            .message_meta(&msgs.iter().map(|m| m.id).collect::<Vec<_>>())
            .await
            .unwrap();
        let mut timers: Vec<_> = f
            .store
            .conversation_timers(c.id)
            .await
            .unwrap()
            .into_iter()
            .map(|t| (t.kind, t.due_at, t.generation))
            .collect();
        timers.sort_by_key(|t| t.0.as_str());
        seen.push((
            ext.to_owned(),
            Seen {
                status: c.status,
                held: c.assignee_id.is_some(),
                preview: sum.last_message_preview,
                unread: sum.unread_count,
                texts: msgs.iter().map(|m| m.text.clone()).collect(),
                metas: msgs
                    .iter()
                    .filter_map(|m| metas.get(&m.id).map(|x| x.meta.clone()))
                    .collect(),
                timers,
                waiting_since: waiting
                    .iter()
                    .find(|w| w.conversation.id == c.id)
                    .map(|w| w.waiting_since),
            },
        ));
    }
    let kinds = f
        .store
        .events_since(from_seq, Some(&[f.inbox]), 1000)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.kind)
        .collect();
    (shown, seen, kinds)
}

#[tokio::test]
async fn one_group_commit_stores_what_one_message_at_a_time_stores() {
    for b in backends().await {
        let alone = fixture(b.store.clone()).await;
        let together = fixture_as(b.store.clone(), "b@shop.vn").await;
        let (out_a, seen_a, kinds_a) = ingest_script(&alone, false).await;
        let (out_b, seen_b, kinds_b) = ingest_script(&together, true).await;
        assert_eq!(out_a, out_b, "{}: outcomes", b.name);
        assert_eq!(seen_a, seen_b, "{}: conversations", b.name);
        assert_eq!(kinds_a, kinds_b, "{}: events", b.name);
        // And what that is: new customers wait, a redelivery changes nothing, the resolved
        // conversation reopened, the held one kept its agent and its reply deadline (counted
        // from the first unanswered message), the stranger was refused, extras were kept.
        assert_eq!(
            out_b,
            [
                "dup=false pool=true",
                "dup=false pool=false",
                "dup=false pool=false",
                "dup=false pool=true",
                "dup=true pool=false",
                "dup=true pool=false",
                "Err(UnknownInbox)",
                "dup=false pool=true",
            ],
            "{}",
            b.name
        );
        let by = |ext: &str| &seen_b.iter().find(|(e, _)| e == ext).unwrap().1;
        assert_eq!(by("n1").texts, ["một", "hai"]);
        assert_eq!(by("n1").unread, 2);
        assert_eq!(by("n1").preview.as_deref(), Some("hai"));
        assert_eq!(
            by("n1").metas,
            [serde_json::json!({"type": "text", "ad": {"ref": "tet"}})]
        );
        assert_eq!(by("n1").waiting_since, Some(T0.plus_minutes(10)));
        assert!(by("held").held);
        assert!(
            by("held")
                .timers
                .iter()
                .any(|t| t.0 == TimerKind::ReplySla && t.1 == T0.plus_minutes(6)),
            "{:?}",
            by("held").timers
        );
        assert_eq!(by("done").status, ConversationStatus::Pending);
        assert_eq!(by("old").texts, ["trước"]);
        assert_eq!(by("old").unread, 1);
        assert!(
            kinds_b.contains(&switchboard_core::event::EventKind::MessageUpdated),
            "extras announced"
        );
    }
}

#[tokio::test]
async fn an_alias_is_linked_with_its_message_and_names_the_same_customer() {
    for b in backends().await {
        let f = fixture(b.store.clone()).await;
        let t = T0.plus_minutes(1);
        let says = |ext: &str, alias: Option<&str>, pid: &str| {
            stamped(&f, ext, pid, "chào shop", t, serde_json::Value::Null, alias)
        };
        let contact = |o: &Result<ChannelOutcome, IngestError>| match o {
            Ok(ChannelOutcome::Message(m)) => m.contact_id,
            other => panic!("{other:?}"),
        };
        // One group commit: a phone number with its business-scoped id, then that id alone.
        let out = f
            .store
            .ingest_channel(
                &[
                    says("84901234567", Some("VN.1"), "w1"),
                    says("VN.1", None, "w2"),
                ],
                t,
            )
            .await
            .unwrap();
        let kim = contact(&out[0]);
        assert_eq!(contact(&out[1]), kim, "{}: one customer", b.name);
        let mut ids = f.store.identities_in(kim, f.inbox).await.unwrap();
        ids.sort();
        assert_eq!(ids, ["84901234567", "VN.1"], "{}", b.name);
        // An id linked already stays with its customer.
        let out = f
            .store
            .ingest_channel(&[says("84907654321", Some("VN.1"), "w3")], t)
            .await
            .unwrap();
        assert_ne!(contact(&out[0]), kim, "{}", b.name);
        assert_eq!(
            f.store.contact_by_identity(f.inbox, "VN.1").await.unwrap(),
            Some(kim),
            "{}",
            b.name
        );
    }
}

#[tokio::test]
async fn one_metering_batch_decides_each_event_as_if_it_came_alone() {
    use switchboard_core::billing::{self, FreeReason, Tariff, Traffic};
    let tariff = Tariff {
        currency: "USD".into(),
        rates: Vec::new(),
        free_service_messages_per_month_from_2026_10: 5,
    };
    let at = Timestamp(billing::SERVICE_CHARGED_FROM.millis() + 86_400_000);
    for b in backends().await {
        let f = fixture(b.store.clone()).await;
        let event = |i: usize| MeterEvent {
            inbox_id: f.inbox,
            business_id: "waba-1".into(),
            user_id: format!("8490000{i:04}"),
            market: "VN".into(),
            event_key: format!("status:wamid.{i}:delivered"),
            message_id: None,
            traffic: Traffic::Delivered {
                at: at.plus_minutes(i as i64),
                template: None,
            },
            provider_pricing: None,
        };
        // Two metered before, then one batch: those two again, six new ones, one of them twice.
        for i in 0..2 {
            f.store.meter_whatsapp(&event(i), &tariff).await.unwrap();
        }
        let batch: Vec<MeterEvent> = [0, 1, 2, 3, 4, 5, 6, 4, 7].map(event).into();
        let charges = f.store.meter_whatsapp_many(&batch, &tariff).await.unwrap();
        assert_eq!(charges.len(), batch.len(), "{}: a charge per event", b.name);
        assert_eq!(charges[4], charges[7], "{}: the repeat is the same", b.name);
        let free: Vec<bool> = charges
            .iter()
            .map(|c| c.free_reason == Some(FreeReason::FreeTier))
            .collect();
        assert_eq!(
            free,
            [true, true, true, true, true, false, false, true, false],
            "{}: five free per month, counted in order across the batch",
            b.name
        );
        let rows = f
            .store
            .whatsapp_usage(&billing::month_of(at), Some(&[f.inbox][..]))
            .await
            .unwrap();
        assert_eq!(rows.len(), 8, "{}: one row per event", b.name);
        // The counter carries on into the next batch.
        let next = f
            .store
            .meter_whatsapp_many(&[event(8)], &tariff)
            .await
            .unwrap();
        assert!(next[0].billable, "{}", b.name);
    }
}

#[tokio::test]
async fn search_pages_common_words_by_walking_and_finds_rare_ones_through_the_index() {
    for b in backends().await {
        let f = fixture(b.store.clone()).await;
        // 300 customers, one conversation each, the newest last: most ask about sizes; number 3
        // (old: beyond the walk) quoted an order; number 7's contact carries the rare name.
        let mut batch = Vec::new();
        for i in 0..300i64 {
            let text = match i {
                3 => "Đơn #4471 đã giao chưa ạ?".to_owned(),
                _ if i % 5 == 0 => format!("cảm ơn shop {i}"),
                _ => format!("size M còn không {i}"),
            };
            let mut item = inbound(
                &f,
                &format!("c{i}"),
                &format!("p{i}"),
                &text,
                T0.plus_millis(i),
            );
            if let InboundSender::Identity { name, .. } = &mut item.sender {
                *name = Some(if i == 7 {
                    "Bảo Đăng".into()
                } else {
                    format!("Khách {i}")
                });
            }
            batch.push(item);
        }
        f.store.ingest(&batch, T0.plus_minutes(1)).await.unwrap();
        let search = |q: &str, cursor: Option<ListCursor>| ConversationQuery {
            workspace_id: f.ws,
            visible_inboxes: Some(vec![f.inbox]),
            status: None,
            inbox_id: None,
            assignee: None,
            tag: None,
            q: Some(q.into()),
            contact_id: None,
            cursor,
            limit: 50,
        };
        let previews = |p: &Page<ConversationSummary>| -> Vec<String> {
            p.items
                .iter()
                .map(|s| s.last_message_preview.clone().unwrap_or_default())
                .collect()
        };
        // A common word: the newest 50 that match, newest first, then the next 50 after them.
        let sizes: Vec<String> = (0..300i64)
            .rev()
            .filter(|i| *i != 3 && i % 5 != 0)
            .map(|i| format!("size M còn không {i}"))
            .collect();
        let first = f
            .store
            .list_conversations(&search("SIZE", None))
            .await
            .unwrap();
        assert_eq!(previews(&first), sizes[..50], "{}", b.name);
        let cursor = ListCursor::decode(first.next_cursor.as_deref().unwrap());
        let second = f
            .store
            .list_conversations(&search("size", cursor))
            .await
            .unwrap();
        assert_eq!(previews(&second), sizes[50..100], "{}", b.name);
        // Rare words, typed without diacritics: an old message, a contact's name.
        let order = f
            .store
            .list_conversations(&search("don 4471", None))
            .await
            .unwrap();
        assert_eq!(
            previews(&order),
            ["Đơn #4471 đã giao chưa ạ?"],
            "{}",
            b.name
        );
        let named = f
            .store
            .list_conversations(&search("bao dang", None))
            .await
            .unwrap();
        assert_eq!(named.items.len(), 1, "{}", b.name);
        assert_eq!(named.items[0].contact_name.as_deref(), Some("Bảo Đăng"));
        // Every word must match: one in the contact and one in a message is not a match.
        let mixed = f
            .store
            .list_conversations(&search("bao size", None))
            .await
            .unwrap();
        assert!(mixed.items.is_empty(), "{}", b.name);
        assert!(
            f.store
                .list_conversations(&search("4472", None))
                .await
                .unwrap()
                .items
                .is_empty(),
            "{}",
            b.name
        );
    }
}

#[tokio::test]
async fn provider_secrets_are_sealed_at_rest_and_keys_rotate() {
    use crate::secrets::SecretBox;
    for b in backends().await {
        let s = &b.store;
        let ws = s.ensure_workspace("W", T0).await.unwrap();
        let old = SecretBox::generate_key();
        s.set_secrets(Arc::new(SecretBox::new(&old, &[]).unwrap()));
        let settings = serde_json::json!({"oa_id": "388", "access_token": "zat_0",
            "refresh_token": "zrt_0", "app_secret": "s"});
        let inbox = Inbox {
            id: InboxId(Uuid::now_v7()),
            workspace_id: ws,
            name: "Zalo".into(),
            channel: ChannelKind::Zalo,
            settings: settings.clone(),
            created_at: T0,
        };
        s.create_inbox(&inbox).await.unwrap();
        // Every way of reading an inbox gives the plain secrets.
        assert_eq!(
            s.inbox(inbox.id).await.unwrap().unwrap().settings,
            settings,
            "{}",
            b.name
        );
        assert_eq!(
            s.inbox_for_account(ChannelKind::Zalo, "388")
                .await
                .unwrap()
                .unwrap()
                .settings,
            settings,
            "{}",
            b.name
        );
        // The single-use refresh token's compare-and-set compares plain values.
        let mut next = settings.clone();
        next["refresh_token"] = serde_json::json!("zrt_1");
        assert!(
            !s.replace_settings_if(inbox.id, "refresh_token", "zrt_x", &next)
                .await
                .unwrap()
        );
        assert!(
            s.replace_settings_if(inbox.id, "refresh_token", "zrt_0", &next)
                .await
                .unwrap()
        );
        assert!(
            !s.replace_settings_if(inbox.id, "refresh_token", "zrt_0", &next)
                .await
                .unwrap(),
            "{}",
            b.name
        );
        assert_eq!(s.inbox(inbox.id).await.unwrap().unwrap().settings, next);

        // Rotation: the new key seals everything again; then the old key can go.
        let new = SecretBox::generate_key();
        s.set_secrets(Arc::new(
            SecretBox::new(&new, std::slice::from_ref(&old)).unwrap(),
        ));
        assert!(s.reseal_secrets().await.unwrap() >= 1, "{}", b.name);
        assert_eq!(
            s.reseal_secrets().await.unwrap(),
            0,
            "nothing left to reseal"
        );
        s.set_secrets(Arc::new(SecretBox::new(&new, &[]).unwrap()));
        assert_eq!(
            s.inbox(inbox.id).await.unwrap().unwrap().settings,
            next,
            "{}",
            b.name
        );
        // Without any key that sealed them, reading says so instead of handing out ciphertext.
        s.set_secrets(Arc::new(SecretBox::new(&old, &[]).unwrap()));
        assert!(
            matches!(s.inbox(inbox.id).await, Err(StoreError::Corrupt(_))),
            "{}",
            b.name
        );
    }
}

#[path = "conformance_automation.rs"]
mod automation;
#[path = "conformance_comments.rs"]
mod comments;
#[path = "conformance_media.rs"]
mod inbound_media;
#[tokio::test]
async fn notification_preferences_are_the_agents_own_and_default_to_everything_on() {
    use switchboard_core::notifications::NotificationPrefs;
    for b in backends().await {
        let f = fixture(b.store.clone()).await;
        let s = &f.store;
        let other = agent(f.ws, "prefs-b@shop.vn", "B");
        s.create_agent(&other, "x").await.unwrap();
        assert_eq!(
            s.notification_prefs(f.agent.id).await.unwrap(),
            NotificationPrefs::default()
        );
        let d = NotificationPrefs::default();
        let mut quiet = NotificationPrefs {
            sound: false,
            kinds: switchboard_core::notifications::Kinds {
                waiting: false,
                ..d.kinds
            },
        };
        s.set_notification_prefs(f.agent.id, &quiet, T0)
            .await
            .unwrap();
        assert_eq!(
            s.notification_prefs(f.agent.id).await.unwrap(),
            quiet,
            "{}",
            b.name
        );
        assert_eq!(
            s.notification_prefs(other.id).await.unwrap(),
            NotificationPrefs::default(),
            "another agent's are untouched"
        );
        quiet.kinds.waiting = true;
        s.set_notification_prefs(f.agent.id, &quiet, Timestamp(T0.0 + 1))
            .await
            .unwrap();
        assert!(
            s.notification_prefs(f.agent.id)
                .await
                .unwrap()
                .kinds
                .waiting
        );
    }
}

#[tokio::test]
async fn push_subscriptions_per_agent_one_row_per_endpoint() {
    for b in backends().await {
        let f = fixture(b.store.clone()).await;
        let s = &f.store;
        let other = agent(f.ws, "push-b@shop.vn", "B");
        s.create_agent(&other, "x").await.unwrap();
        let sub = |endpoint: &str, agent: AgentId, at: i64| PushSubscription {
            endpoint: endpoint.into(),
            agent_id: agent,
            p256dh: format!("key-{endpoint}"),
            auth: "secret".into(),
            created_at: Timestamp(T0.0 + at),
        };
        s.save_push_subscription(&sub("https://push.example/2", f.agent.id, 2))
            .await
            .unwrap();
        s.save_push_subscription(&sub("https://push.example/1", f.agent.id, 1))
            .await
            .unwrap();
        s.save_push_subscription(&sub("https://push.example/3", other.id, 3))
            .await
            .unwrap();
        let endpoints =
            |v: Vec<PushSubscription>| v.into_iter().map(|x| x.endpoint).collect::<Vec<_>>();
        assert_eq!(
            endpoints(s.push_subscriptions(f.agent.id).await.unwrap()),
            ["https://push.example/1", "https://push.example/2"],
            "{}",
            b.name
        );
        // The same browser subscribes again for the other agent: it moves.
        s.save_push_subscription(&sub("https://push.example/2", other.id, 4))
            .await
            .unwrap();
        assert_eq!(
            endpoints(s.push_subscriptions(f.agent.id).await.unwrap()),
            ["https://push.example/1"],
            "{}",
            b.name
        );
        assert_eq!(
            s.push_subscriptions(other.id).await.unwrap(),
            vec![
                sub("https://push.example/3", other.id, 3),
                sub("https://push.example/2", other.id, 4)
            ],
            "{}",
            b.name
        );
        // An agent removes only their own; the sender forgets any that the push service refused.
        assert!(
            !s.delete_push_subscription("https://push.example/3", Some(f.agent.id))
                .await
                .unwrap(),
            "{}",
            b.name
        );
        assert!(
            s.delete_push_subscription("https://push.example/3", Some(other.id))
                .await
                .unwrap(),
            "{}",
            b.name
        );
        assert!(
            s.delete_push_subscription("https://push.example/1", None)
                .await
                .unwrap(),
            "{}",
            b.name
        );
        assert!(
            !s.delete_push_subscription("https://push.example/1", None)
                .await
                .unwrap(),
            "{}",
            b.name
        );
        assert_eq!(
            endpoints(s.push_subscriptions(other.id).await.unwrap()),
            ["https://push.example/2"],
            "{}",
            b.name
        );
    }
}

/// A customer's edit or unsend changes the original message (its text, the mark, the preview when
/// it is the latest), publishes `message.updated`, and nothing else: no new row, no unread, no
/// window. An edit of a message we do not have, or of one of ours, changes nothing.
#[tokio::test]
async fn an_edit_or_unsend_changes_the_original_and_counts_for_nothing() {
    use serde_json::json;
    use switchboard_core::event::EventKind;
    use switchboard_core::ingest::Echoed;
    for b in backends().await {
        let f = fixture(b.store.clone()).await;
        let t = T0.plus_minutes(1);
        let mut reply = stamped(&f, "84901", "m2", "ok", t.plus_secs(5), json!({}), None);
        if let InboundEvent::Customer(s) = &mut reply.event {
            s.replying_to = Some("m1".into());
        }
        let out = f
            .store
            .ingest_channel(
                &[
                    stamped(&f, "84901", "m1", "còn size M?", t, json!({}), None),
                    reply,
                ],
                t.plus_secs(10),
            )
            .await
            .unwrap();
        let Ok(ChannelOutcome::Message(first)) = &out[0] else {
            panic!("{out:?}");
        };
        let conv = first.conversation_id;
        // Our own message, as the page's echo stores it.
        let echo = Stamped {
            event: InboundEvent::Echo(Echoed {
                customer: "84901".into(),
                provider_message_id: "ours-1".into(),
                ours: None,
                text: "Dạ còn ạ".into(),
                meta: json!({}),
                at: t.plus_secs(6),
            }),
            ..stamped(&f, "84901", "x", "x", t, json!({}), None)
        };
        f.store
            .ingest_channel(&[echo], t.plus_secs(10))
            .await
            .unwrap();
        let state = |store: Arc<dyn Store>| async move {
            let c = store.conversation(conv).await.unwrap().unwrap();
            let sum = store.conversation_summary(conv).await.unwrap().unwrap();
            let msgs = store.messages(conv, None, 100, false).await.unwrap().items;
            let metas = store
                .message_meta(&msgs.iter().map(|m| m.id).collect::<Vec<_>>())
                .await
                .unwrap();
            let shown: Vec<(String, serde_json::Value)> = msgs
                .iter()
                .map(|m| {
                    let meta = metas.get(&m.id).map(|x| x.meta.clone()).unwrap_or_default();
                    (m.text.clone(), meta)
                })
                .collect();
            (
                c.last_customer_message_at,
                sum.unread_count,
                sum.last_message_preview,
                shown,
            )
        };
        let (window, unread, _, before) = state(f.store.clone()).await;
        assert_eq!(before.len(), 3, "{}: {before:?}", b.name);
        assert_eq!(
            before[1].1["reply_to_message_id"],
            json!(first.message_id),
            "{}: a reply links to what it answers",
            b.name
        );
        assert_eq!(before[1].1["reply_to_text"], "còn size M?", "{}", b.name);
        let seq = f.store.last_event_seq().await.unwrap();
        let change = |event: InboundEvent| Stamped {
            event,
            ..stamped(&f, "84901", "x", "x", t, json!({}), None)
        };
        let later = t.plus_hours(30);
        let out = f
            .store
            .ingest_channel(
                &[
                    change(InboundEvent::Edit {
                        provider_message_id: "m1".into(),
                        text: "còn size L?".into(),
                        num_edit: 0,
                    }),
                    change(InboundEvent::Edit {
                        provider_message_id: "m1".into(),
                        text: "còn size XL?".into(),
                        num_edit: 0,
                    }),
                    change(InboundEvent::Unsent {
                        provider_message_id: "m2".into(),
                    }),
                    change(InboundEvent::Edit {
                        provider_message_id: "unknown".into(),
                        text: "?".into(),
                        num_edit: 0,
                    }),
                    change(InboundEvent::Edit {
                        provider_message_id: "ours-1".into(),
                        text: "hijacked".into(),
                        num_edit: 0,
                    }),
                    change(InboundEvent::Unsent {
                        provider_message_id: "ours-1".into(),
                    }),
                ],
                later,
            )
            .await
            .unwrap();
        let shown: Vec<String> = out.iter().map(|o| format!("{o:?}")).collect();
        assert_eq!(
            shown,
            [
                "Ok(Updated(1))",
                "Ok(Updated(1))",
                "Ok(Updated(1))",
                "Ok(Nothing)",
                "Ok(Nothing)",
                "Ok(Nothing)"
            ],
            "{}",
            b.name
        );
        let (window_after, unread_after, preview, after) = state(f.store.clone()).await;
        assert_eq!(after.len(), 3, "{}: no new message", b.name);
        assert_eq!(after[0].0, "còn size XL?", "{}", b.name);
        assert_eq!(after[0].1["edited"], 2, "{}", b.name);
        assert_eq!(after[1].0, "", "{}: an unsent text is gone", b.name);
        assert_eq!(after[1].1["deleted"], true, "{}", b.name);
        assert_eq!(after[2].0, "Dạ còn ạ", "{}: ours untouched", b.name);
        assert!(after[2].1.get("edited").is_none(), "{}", b.name);
        assert_eq!(
            (window_after, unread_after),
            (window, unread),
            "{}: no window, no unread",
            b.name
        );
        assert_eq!(preview.as_deref(), Some("Dạ còn ạ"), "{}", b.name);
        let kinds: Vec<EventKind> = f
            .store
            .events_since(seq, Some(&[f.inbox]), 100)
            .await
            .unwrap()
            .into_iter()
            .map(|e| e.kind)
            .collect();
        assert_eq!(kinds, [EventKind::MessageUpdated; 3], "{}", b.name);
        // The latest message edited: the conversation's preview follows.
        let out = f
            .store
            .ingest_channel(
                &[stamped(&f, "84901", "m3", "thôi", later, json!({}), None)],
                later,
            )
            .await
            .unwrap();
        assert!(
            matches!(out[0], Ok(ChannelOutcome::Message(_))),
            "{}",
            b.name
        );
        f.store
            .ingest_channel(
                &[change(InboundEvent::Edit {
                    provider_message_id: "m3".into(),
                    text: "thôi, lấy size M".into(),
                    num_edit: 1,
                })],
                later,
            )
            .await
            .unwrap();
        let (_, _, preview, _) = state(f.store.clone()).await;
        assert_eq!(preview.as_deref(), Some("thôi, lấy size M"), "{}", b.name);
    }
}
