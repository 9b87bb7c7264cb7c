//! Comment rules' stories: rule sets saved with compare-and-set, first comments per person and
//! post, each action planned once per comment, handed to one runner, finished once with the
//! post's counters and the comment's card, and the flow waiting for a private reply's answer.

use super::*;
use switchboard_core::flow::comments::CommentRuleSet;

fn rules(name: &str) -> CommentRuleSet {
    CommentRuleSet::import(&format!(
        r#"{{"rules": [{{"name": "{name}", "when": [{{"type": "has_phone"}}], "do": [{{"type": "hide_comment"}}]}}]}}"#
    ))
    .unwrap()
}

/// A customer's comment on `post`, stored through the channel ingest.
async fn comment(f: &Fixture, who: &str, id: &str, post: &str, at: Timestamp) -> Ingested {
    let mut s = stamped(
        f,
        who,
        &format!("comment:{id}"),
        "0912.345.678 tư vấn em",
        at,
        serde_json::json!({"comment": {"id": id, "post_id": post}}),
        None,
    );
    if let InboundEvent::Customer(said) = &mut s.event {
        said.kind = MessageKind::Comment;
    }
    match f.store.ingest_channel(&[s], at).await.unwrap().remove(0) {
        Ok(ChannelOutcome::Message(m)) => m,
        other => panic!("{other:?}"),
    }
}

fn action(f: &Fixture, m: &Ingested, what: &str, post: &str, now: Timestamp) -> CommentAction {
    CommentAction {
        message_id: m.message_id,
        action: what.into(),
        workspace_id: f.ws,
        inbox_id: f.inbox,
        conversation_id: m.conversation_id,
        post_id: post.into(),
        comment_id: "c".into(),
        payload: serde_json::json!({"rule": "phone", "because": ["has_phone"]}),
        status: CommentActionStatus::Pending,
        attempts: 0,
        due_at: now,
        result: None,
        created_at: now,
        done_at: None,
    }
}

#[tokio::test]
async fn rule_sets_per_page_and_post_with_compare_and_set() {
    for b in backends().await {
        let f = fixture(b.store.clone()).await;
        let s = &f.store;
        let page = s
            .save_comment_rules(f.ws, f.inbox, None, &rules("a"), None, T0)
            .await
            .unwrap();
        assert_eq!(page.version, 1, "{}", b.name);
        let page2 = s
            .save_comment_rules(f.ws, f.inbox, None, &rules("b"), Some(1), T0)
            .await
            .unwrap();
        assert_eq!(page2.version, 2);
        // A stale editor is refused.
        assert!(matches!(
            s.save_comment_rules(f.ws, f.inbox, None, &rules("c"), Some(1), T0)
                .await,
            Err(StoreError::VersionConflict)
        ));
        s.save_comment_rules(f.ws, f.inbox, Some("1_2"), &rules("post"), None, T0)
            .await
            .unwrap();
        let all = s.comment_rules(f.inbox).await.unwrap();
        assert_eq!(all.len(), 2, "{}", b.name);
        assert_eq!(all[0].post_id, None);
        assert_eq!(all[0].rules, rules("b"));
        assert_eq!(all[1].post_id.as_deref(), Some("1_2"));
        assert_eq!(s.all_comment_rules().await.unwrap().len(), 2);
        assert!(s.delete_comment_rules(f.inbox, Some("1_2")).await.unwrap());
        assert!(!s.delete_comment_rules(f.inbox, Some("1_2")).await.unwrap());
        assert_eq!(s.comment_rules(f.inbox).await.unwrap().len(), 1);
    }
}

#[tokio::test]
async fn each_action_once_per_comment_finished_once_with_counters_and_card() {
    for b in backends().await {
        let f = fixture(b.store.clone()).await;
        let s = &f.store;
        let m1 = comment(&f, "commenter:9", "c1", "1_2", T0).await;
        let m2 = comment(&f, "commenter:9", "c2", "1_2", T0.plus_secs(1)).await;
        let seen = |m: &Ingested, at: Timestamp| SeenComment {
            message_id: m.message_id,
            workspace_id: f.ws,
            inbox_id: f.inbox,
            post_id: "1_2".into(),
            post_link: Some("https://www.facebook.com/1_2".into()),
            person: "commenter:9".into(),
            at,
        };
        // Nothing decided yet: both look first; once the first is decided, the second is not.
        assert!(
            s.first_comment_on_post(&seen(&m2, T0.plus_secs(1)))
                .await
                .unwrap(),
            "{}",
            b.name
        );
        let undecided = s.undecided_comments(T0, 10).await.unwrap();
        assert_eq!(undecided.len(), 2, "{}", b.name);
        let planned = s
            .record_comment(
                &seen(&m1, T0),
                &[
                    action(&f, &m1, "hide", "1_2", T0),
                    action(&f, &m1, "reply", "1_2", T0),
                ],
            )
            .await
            .unwrap();
        assert_eq!(planned, [true, true], "{}", b.name);
        assert!(s.first_comment_on_post(&seen(&m1, T0)).await.unwrap());
        assert!(
            !s.first_comment_on_post(&seen(&m2, T0.plus_secs(1)))
                .await
                .unwrap(),
            "{}",
            b.name
        );
        // Decided again (a redelivery, another node, a restart): nothing new, counted once.
        let again = s
            .record_comment(&seen(&m1, T0), &[action(&f, &m1, "hide", "1_2", T0)])
            .await
            .unwrap();
        assert_eq!(again, [false], "{}", b.name);
        s.record_comment(
            &seen(&m2, T0.plus_secs(1)),
            &[action(&f, &m2, "hide", "1_2", T0)],
        )
        .await
        .unwrap();
        assert!(
            s.undecided_comments(T0, 10).await.unwrap().is_empty(),
            "{}",
            b.name
        );
        // One runner gets each due row.
        let lease = T0.plus_secs(60);
        let got = s
            .claim_due_comment_actions(T0, lease, "n1", 10)
            .await
            .unwrap();
        assert_eq!(got.len(), 3, "{}", b.name);
        assert!(
            s.claim_due_comment_actions(T0, lease, "n2", 10)
                .await
                .unwrap()
                .is_empty()
        );
        // A 429: back later, the attempt counted; claimed again only when due.
        assert!(
            s.retry_comment_action(m2.message_id, "hide", T0.plus_secs(30), "rate_limited")
                .await
                .unwrap()
        );
        assert!(
            s.claim_due_comment_actions(T0.plus_secs(10), lease, "n2", 10)
                .await
                .unwrap()
                .is_empty()
        );
        let later = s
            .claim_due_comment_actions(T0.plus_secs(30), T0.plus_secs(90), "n2", 10)
            .await
            .unwrap();
        assert_eq!(later.len(), 1);
        assert_eq!(
            (later[0].attempts, later[0].result.as_deref()),
            (1, Some("rate_limited"))
        );
        // Finished once: the second finish loses.
        let done = |m: MessageId, a: &'static str| {
            s.finish_comment_action(m, a, CommentActionStatus::Done, None, T0.plus_secs(31))
        };
        assert!(done(m1.message_id, "hide").await.unwrap());
        assert!(!done(m1.message_id, "hide").await.unwrap());
        assert!(done(m1.message_id, "reply").await.unwrap());
        assert!(done(m2.message_id, "hide").await.unwrap());
        let posts = s.comment_posts(f.inbox, 10).await.unwrap();
        assert_eq!(posts.len(), 1, "{}", b.name);
        let p = &posts[0];
        assert_eq!(
            (p.comments, p.hidden, p.replied, p.private_replied),
            (2, 2, 1, 0),
            "{}",
            b.name
        );
        // The card says why.
        let meta = s.message_meta(&[m1.message_id]).await.unwrap();
        let c = &meta[&m1.message_id].meta["comment"];
        assert_eq!(c["hidden"], true, "{}", b.name);
        assert_eq!(c["auto"]["hide"]["rule"], "phone");
        assert_eq!(c["auto"]["hide"]["because"][0], "has_phone");
        let acts = s.comment_actions_of(m1.message_id).await.unwrap();
        assert_eq!(acts.len(), 2);
        assert!(acts.iter().all(|a| a.status == CommentActionStatus::Done));
        // A refusal is recorded as failed, with its reason, and counts nothing.
        s.record_comment(
            &seen(&m2, T0.plus_secs(1)),
            &[action(&f, &m2, "private_reply", "1_2", T0)],
        )
        .await
        .unwrap();
        assert!(
            s.finish_comment_action(
                m2.message_id,
                "private_reply",
                CommentActionStatus::Failed,
                Some("private_reply_expired"),
                T0
            )
            .await
            .unwrap()
        );
        assert_eq!(
            s.comment_posts(f.inbox, 10).await.unwrap()[0].private_replied,
            0
        );
    }
}

#[tokio::test]
async fn a_flow_waits_for_the_answer_to_a_private_reply_once() {
    for b in backends().await {
        let f = fixture(b.store.clone()).await;
        let s = &f.store;
        let m = comment(&f, "commenter:7", "c7", "1_3", T0).await;
        let flow = FlowId(Uuid::now_v7());
        s.set_answer_flow(m.conversation_id, flow, T0)
            .await
            .unwrap();
        assert_eq!(
            s.take_answer_flow(m.conversation_id).await.unwrap(),
            Some(flow),
            "{}",
            b.name
        );
        assert_eq!(
            s.take_answer_flow(m.conversation_id).await.unwrap(),
            None,
            "{}",
            b.name
        );
    }
}

/// Private replies done in the last hour are counted per Page (Meta's 750 an hour); one deferred
/// for the budget waits without an attempt counted.
#[tokio::test]
async fn private_replies_are_counted_per_hour_and_deferred_without_an_attempt() {
    for b in backends().await {
        let f = fixture(b.store.clone()).await;
        let s = &f.store;
        let mut ms = Vec::new();
        for i in 0..4 {
            let m = comment(&f, &format!("p:{i}"), &format!("pc{i}"), "1_4", T0).await;
            let seen = SeenComment {
                message_id: m.message_id,
                workspace_id: f.ws,
                inbox_id: f.inbox,
                post_id: "1_4".into(),
                post_link: None,
                person: format!("p:{i}"),
                at: T0,
            };
            s.record_comment(&seen, &[action(&f, &m, "private_reply", "1_4", T0)])
                .await
                .unwrap();
            ms.push(m);
        }
        let done = |m: &Ingested, at: Timestamp| {
            s.finish_comment_action(
                m.message_id,
                "private_reply",
                CommentActionStatus::Done,
                None,
                at,
            )
        };
        assert!(done(&ms[0], T0.plus_secs(10)).await.unwrap());
        assert!(done(&ms[1], T0.plus_secs(20)).await.unwrap());
        assert!(
            s.finish_comment_action(
                ms[2].message_id,
                "private_reply",
                CommentActionStatus::Failed,
                Some("x"),
                T0.plus_secs(30)
            )
            .await
            .unwrap()
        );
        assert_eq!(
            s.private_replies_since(f.inbox, T0).await.unwrap(),
            (2, Some(T0.plus_secs(10))),
            "{}",
            b.name
        );
        assert_eq!(
            s.private_replies_since(f.inbox, T0.plus_secs(15))
                .await
                .unwrap(),
            (1, Some(T0.plus_secs(20)))
        );
        assert_eq!(
            s.private_replies_since(InboxId(Uuid::now_v7()), T0)
                .await
                .unwrap(),
            (0, None)
        );
        // The fourth waits for the budget: not claimable before then, no attempt counted.
        let got = s
            .claim_due_comment_actions(T0.plus_secs(40), T0.plus_secs(100), "n1", 10)
            .await
            .unwrap();
        assert_eq!(got.len(), 1, "{}", b.name);
        s.defer_comment_actions(
            &[(ms[3].message_id, "private_reply".into())],
            T0.plus_secs(3_600),
            "hourly_limit",
        )
        .await
        .unwrap();
        assert!(
            s.claim_due_comment_actions(T0.plus_secs(200), T0.plus_secs(260), "n2", 10)
                .await
                .unwrap()
                .is_empty()
        );
        let later = s
            .claim_due_comment_actions(T0.plus_secs(3_600), T0.plus_secs(3_660), "n2", 10)
            .await
            .unwrap();
        assert_eq!(later.len(), 1);
        assert_eq!(
            (later[0].attempts, later[0].result.as_deref()),
            (0, Some("hourly_limit"))
        );
    }
}
