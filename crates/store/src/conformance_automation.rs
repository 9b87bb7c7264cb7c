//! Automation's stories: versioned flows, one run going per conversation with compare-and-set
//! saves, due runs and scheduled flows handed to one runner, the FAQ, contact fields and the
//! auto-reply switch.

use super::*;
use switchboard_core::flow::{Flow, RunState, Waiting};

fn flow(name: &str, text: &str) -> Flow {
    Flow::import(&format!(
        r#"{{"name": "{name}", "version": 1, "triggers": [{{"type": "new_conversation"}}], "start": "hi",
            "steps": [{{"id": "hi", "do": {{"type": "send_message", "variants": [{{"text": "{text}"}}]}}}}]}}"#
    ))
    .unwrap()
}

fn takes(f: &Fixture, c: &Conversation, now: Timestamp) -> Change {
    let t = conversation::bot_takes(c, "Chào", None, now);
    Change {
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
    }
}

fn new_run(f: &Fixture, flow_id: FlowId, fl: &Flow, c: &Conversation, now: Timestamp) -> FlowRun {
    FlowRun {
        id: FlowRunId(Uuid::now_v7()),
        workspace_id: f.ws,
        flow_id,
        conversation_id: c.id,
        contact_id: c.contact_id,
        state: RunState::new(fl, now, 0),
        resume: conversation::Resume::of(c),
        revision: 0,
        started_at: now,
        ended_at: None,
    }
}

#[tokio::test]
async fn flows_are_versioned_and_a_run_keeps_its_version() {
    for b in backends().await {
        let f = fixture(b.store.clone()).await;
        let s = &f.store;
        let id = FlowId(Uuid::now_v7());
        let v1 = s
            .create_flow(f.ws, id, &flow("Chào", "Xin chào"), true, T0)
            .await
            .unwrap();
        assert_eq!(v1.flow.version, 1, "{}", b.name);
        let v2 = s
            .update_flow(
                id,
                1,
                &flow("Chào khách", "Chào anh/chị"),
                true,
                T0.plus_secs(1),
            )
            .await
            .unwrap();
        assert_eq!((v2.flow.version, v2.flow.name.as_str()), (2, "Chào khách"));
        // A stale editor's save is refused, not merged.
        assert!(matches!(
            s.update_flow(id, 1, &flow("cũ", "cũ"), true, T0.plus_secs(2))
                .await,
            Err(StoreError::VersionConflict)
        ));
        let old = s.flow_version(id, 1).await.unwrap().unwrap();
        assert_eq!(old.version, 1);
        assert_eq!(old, flow("Chào", "Xin chào"));
        let other = FlowId(Uuid::now_v7());
        s.create_flow(f.ws, other, &flow("A tắt", "x"), false, T0)
            .await
            .unwrap();
        let names = |v: Vec<StoredFlow>| v.into_iter().map(|x| x.flow.name).collect::<Vec<_>>();
        assert_eq!(names(s.flows(f.ws).await.unwrap()), ["A tắt", "Chào khách"]);
        assert_eq!(names(s.active_flows().await.unwrap()), ["Chào khách"]);
        assert!(s.set_flow_active(other, true, T0).await.unwrap());
        assert_eq!(s.active_flows().await.unwrap().len(), 2);
        assert!(s.delete_flow(f.ws, id).await.unwrap());
        assert!(!s.delete_flow(f.ws, id).await.unwrap());
        assert!(s.flow(id).await.unwrap().is_none());
        assert!(
            s.flow_version(id, 2).await.unwrap().is_some(),
            "runs still read it"
        );
    }
}

/// A customer's new conversation, held by a run of a new active flow named `name`.
async fn bot_holds(f: &Fixture, name: &str) -> (Flow, FlowId, Conversation, FlowRun) {
    let s = &f.store;
    let fl = flow(name, "Xin chào");
    let fid = FlowId(Uuid::now_v7());
    s.create_flow(f.ws, fid, &fl, true, T0).await.unwrap();
    let ing = customer_writes(f, ContactId(Uuid::now_v7()), T0).await;
    let c = s.conversation(ing.conversation_id).await.unwrap().unwrap();
    let run = new_run(f, fid, &fl, &c, T0);
    s.start_run(&run, Some(takes(f, &c, T0))).await.unwrap();
    (fl, fid, c, run)
}

#[tokio::test]
async fn one_run_goes_per_conversation_and_saves_compare_and_set() {
    for b in backends().await {
        let f = fixture(b.store.clone()).await;
        let s = &f.store;
        let (fl, fid, c, run) = bot_holds(&f, "Chào").await;
        let held = s.conversation(c.id).await.unwrap().unwrap();
        assert_eq!(held.status, ConversationStatus::Bot, "{}", b.name);
        let history = s.history(c.id).await.unwrap();
        assert!(history.iter().any(|h| h.kind == "flow_started"));
        // A second run in the same conversation is refused while the first goes.
        let second = new_run(&f, fid, &fl, &held, T0);
        assert!(matches!(
            s.start_run(&second, None).await,
            Err(StoreError::Conflict("flow_run"))
        ));
        let going = s.running_run(c.id).await.unwrap().unwrap();
        assert_eq!(going.id, run.id);
        let mut waiting = going.state.clone();
        waiting.waiting = Waiting::Timer {
            until: T0.plus_secs(60),
        };
        let save = |revision, state: RunState| RunSave {
            id: run.id,
            expected_revision: revision,
            state,
            now: T0.plus_secs(1),
        };
        assert!(matches!(
            s.save_run(save(7, waiting.clone()), None).await,
            Err(StoreError::VersionConflict)
        ));
        s.save_run(save(0, waiting.clone()), None).await.unwrap();
        assert!(
            matches!(
                s.save_run(save(0, waiting.clone()), None).await,
                Err(StoreError::VersionConflict)
            ),
            "the same decision cannot be saved twice"
        );
        let runs = s.contact_runs(c.contact_id, fid).await.unwrap();
        assert_eq!((runs.running, runs.last_started_at), (true, Some(T0)));
        // Due at +60 s: one of two runners gets it.
        let (a, z) = tokio::join!(
            s.claim_due_runs(T0.plus_secs(61), T0.plus_secs(91), "a", 10),
            s.claim_due_runs(T0.plus_secs(61), T0.plus_secs(91), "b", 10)
        );
        assert_eq!(a.unwrap().len() + z.unwrap().len(), 1);
        assert!(
            s.claim_due_runs(T0.plus_secs(62), T0.plus_secs(92), "c", 10)
                .await
                .unwrap()
                .is_empty()
        );
        let mut ended = waiting;
        ended.waiting = Waiting::Nothing;
        ended.ended = Some(switchboard_core::flow::EndReason::Completed);
        s.save_run(save(1, ended), None).await.unwrap();
        assert!(s.running_run(c.id).await.unwrap().is_none());
        assert!(!s.contact_runs(c.contact_id, fid).await.unwrap().running);
        let all = s.conversation_runs(c.id, 10).await.unwrap();
        assert_eq!(all.len(), 1);
        assert_eq!(all[0].ended_at, Some(T0.plus_secs(1)));
        // Now another may start.
        s.start_run(&second, None).await.unwrap();
    }
}

#[tokio::test]
async fn scheduled_flows_fire_once_and_cancel() {
    for b in backends().await {
        let f = fixture(b.store.clone()).await;
        let s = &f.store;
        let fid = FlowId(Uuid::now_v7());
        s.create_flow(f.ws, fid, &flow("Nhắc", "Nhắc lịch"), true, T0)
            .await
            .unwrap();
        let ing = customer_writes(&f, ContactId(Uuid::now_v7()), T0).await;
        let attach = |send_at: Timestamp| ScheduledFlow {
            id: ScheduledFlowId(Uuid::now_v7()),
            workspace_id: f.ws,
            contact_id: ing.contact_id,
            conversation_id: ing.conversation_id,
            flow_id: fid,
            attached_at: T0,
            attached_by: Some(f.agent.id),
            send_at,
            within_hours: Some(serde_json::json!({"from": "08:00", "to": "17:00"})),
            status: ScheduledStatus::Scheduled,
            reason: None,
            done_at: None,
        };
        let soon = attach(T0.plus_secs(3600));
        let later = attach(T0.plus_secs(7200));
        s.attach_scheduled(&soon).await.unwrap();
        s.attach_scheduled(&later).await.unwrap();
        assert_eq!(
            s.scheduled(soon.id).await.unwrap().unwrap(),
            soon,
            "{}",
            b.name
        );
        assert!(
            s.claim_due_scheduled(T0, T0.plus_secs(30), "a", 10)
                .await
                .unwrap()
                .is_empty()
        );
        let (x, y) = tokio::join!(
            s.claim_due_scheduled(T0.plus_secs(3600), T0.plus_secs(3630), "a", 10),
            s.claim_due_scheduled(T0.plus_secs(3600), T0.plus_secs(3630), "b", 10)
        );
        let got: Vec<_> = x
            .unwrap()
            .into_iter()
            .chain(y.unwrap())
            .map(|d| d.id)
            .collect();
        assert_eq!(got, [soon.id], "leased to one runner");
        assert!(
            s.finish_scheduled(
                soon.id,
                ScheduledStatus::Scheduled,
                ScheduledStatus::Sent,
                None,
                T0.plus_secs(3600)
            )
            .await
            .unwrap()
        );
        assert!(
            !s.finish_scheduled(
                soon.id,
                ScheduledStatus::Scheduled,
                ScheduledStatus::Failed,
                Some("x"),
                T0.plus_secs(3601)
            )
            .await
            .unwrap()
        );
        // "Send now" makes the other due; cancelling the flow's runs stops it first.
        assert!(s.reschedule(later.id, T0.plus_secs(3700)).await.unwrap());
        assert!(!s.reschedule(soon.id, T0).await.unwrap(), "already sent");
        assert_eq!(
            s.cancel_scheduled_of(ing.contact_id, fid, "flow step", T0.plus_secs(3650))
                .await
                .unwrap(),
            1
        );
        assert!(
            s.claim_due_scheduled(T0.plus_secs(9000), T0.plus_secs(9030), "a", 10)
                .await
                .unwrap()
                .is_empty()
        );
        let list = s.contact_scheduled(ing.contact_id).await.unwrap();
        let statuses: HashSet<_> = list.iter().map(|x| x.status).collect();
        assert_eq!(
            statuses,
            HashSet::from([ScheduledStatus::Sent, ScheduledStatus::Cancelled])
        );
    }
}

#[tokio::test]
async fn faq_contact_fields_and_the_auto_reply_switch() {
    for b in backends().await {
        let f = fixture(b.store.clone()).await;
        let s = &f.store;
        assert!(s.faq(f.ws).await.unwrap().is_none(), "{}", b.name);
        let settings = FaqSettings {
            faq: serde_json::from_value(serde_json::json!({
                "entries": [{"phrasings": ["giá bao nhiêu"], "answer": "199.000đ ạ"}]
            }))
            .unwrap(),
            handoff_phrases: Some(vec!["gặp chủ shop".into()]),
            updated_at: T0,
        };
        s.save_faq(f.ws, &settings).await.unwrap();
        s.save_faq(f.ws, &settings).await.unwrap();
        assert_eq!(s.faq(f.ws).await.unwrap().unwrap(), settings);
        let ing = customer_writes(&f, ContactId(Uuid::now_v7()), T0).await;
        s.set_contact_field(ing.contact_id, "size", "M", T0)
            .await
            .unwrap();
        s.set_contact_field(ing.contact_id, "size", "L", T0)
            .await
            .unwrap();
        s.set_contact_field(ing.contact_id, "city", "Huế", T0)
            .await
            .unwrap();
        let fields = s.contact_fields(ing.contact_id).await.unwrap();
        assert_eq!(fields.get("size").map(String::as_str), Some("L"));
        assert_eq!(fields.len(), 2);
        let conv = ing.conversation_id;
        // The dry run's replay: conversations started since a time, with their first message.
        let later = customer_writes(&f, ing.contact_id, T0.plus_secs(5)).await;
        assert_eq!(later.conversation_id, conv, "one conversation per customer");
        let started = s.conversations_started_since(f.ws, T0, 10).await.unwrap();
        assert_eq!(started.len(), 1);
        assert_eq!(started[0].1.as_ref().map(|m| m.created_at), Some(T0));
        assert!(
            s.conversations_started_since(f.ws, T0.plus_secs(1), 10)
                .await
                .unwrap()
                .is_empty()
        );
        assert!(!s.auto_reply_off(conv).await.unwrap());
        assert!(
            s.set_auto_reply(conv, false, Some(f.agent.id), T0)
                .await
                .unwrap()
        );
        assert!(
            !s.set_auto_reply(conv, false, Some(f.agent.id), T0)
                .await
                .unwrap()
        );
        assert!(s.auto_reply_off(conv).await.unwrap());
        assert!(s.set_auto_reply(conv, true, None, T0).await.unwrap());
        assert!(!s.auto_reply_off(conv).await.unwrap());
    }
}

/// A bot's step and the reply it sends are one write: both or neither. A step someone else saved
/// first (a stale revision) leaves no message and no outbox row behind.
#[tokio::test]
async fn a_step_and_its_reply_are_written_together_or_not_at_all() {
    for b in backends().await {
        let f = fixture(b.store.clone()).await;
        let s = &f.store;
        let (_, _, c, run) = bot_holds(&f, "Hỏi đáp").await;
        let reply = |text: &str, revision: i64, c: &Conversation| {
            let m = Message {
                id: MessageId(Uuid::now_v7()),
                conversation_id: c.id,
                inbox_id: f.inbox,
                direction: Direction::Outbound,
                sender_kind: SenderKind::Bot,
                sender_agent_id: None,
                kind: MessageKind::Text,
                text: text.into(),
                provider_message_id: None,
                delivery_status: DeliveryStatus::Queued,
                failure_reason: None,
                created_at: T0.plus_secs(1),
            };
            let mut state = run.state.clone();
            state.waiting = Waiting::Timer {
                until: T0.plus_secs(60),
            };
            Outbound {
                change: Change {
                    events: vec![switchboard_core::event::message_created(&m)],
                    conversation: None,
                    expected_version: c.version,
                    conversation_id: c.id,
                    workspace_id: f.ws,
                    actions: vec![],
                    message: Some(m),
                    now: T0.plus_secs(1),
                },
                job: OutboxJob::Send,
                request: serde_json::json!({"recipient": "psid", "text": text}),
                meta: MessageMeta::default(),
                private_reply_to: None,
                run: Some(RunSave {
                    id: run.id,
                    expected_revision: revision,
                    state,
                    now: T0.plus_secs(1),
                }),
            }
        };
        let held = s.conversation(c.id).await.unwrap().unwrap();
        s.queue_outbound(reply("Shop mở cửa 8h–21h", 0, &held))
            .await
            .unwrap()
            .unwrap();
        let going = s.running_run(c.id).await.unwrap().unwrap();
        assert_eq!(going.revision, 1, "{}", b.name);
        assert!(matches!(going.state.waiting, Waiting::Timer { .. }));
        let texts = |ms: Vec<Message>| ms.into_iter().map(|m| m.text).collect::<Vec<_>>();
        let before = texts(s.messages(c.id, None, 50, false).await.unwrap().items);
        assert!(
            before.contains(&"Shop mở cửa 8h–21h".to_owned()),
            "{before:?}"
        );
        // The same step again (revision 0 is stale now): nothing of it is written.
        let held = s.conversation(c.id).await.unwrap().unwrap();
        assert!(matches!(
            s.queue_outbound(reply("lần hai", 0, &held)).await,
            Err(StoreError::StaleRun)
        ));
        let after = texts(s.messages(c.id, None, 50, false).await.unwrap().items);
        assert_eq!(after, before, "{}", b.name);
        let due = s
            .claim_due(T0.plus_secs(2), T0.plus_minutes(5), 10)
            .await
            .unwrap();
        assert_eq!(due.len(), 1, "one outbox row: the first reply's");
        assert_eq!(s.running_run(c.id).await.unwrap().unwrap().revision, 1);
    }
}
