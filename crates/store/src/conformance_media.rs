//! Customers' files: written once with their message (a redelivery adds nothing), leased to one
//! download worker at a time, retried, given up, retried by an agent, and told to the thread.

use super::*;
use serde_json::json;
use switchboard_core::event::EventKind;

#[tokio::test]
async fn inbound_files_are_written_once_leased_once_and_finish_once() {
    for b in backends().await {
        let f = fixture(b.store.clone()).await;
        let s = &f.store;
        let meta = json!({"attachments": [
            {"type": "image", "media_id": "MID-1"},
            {"type": "location"},
            {"type": "image", "url": "https://lookaside.fbsbx.com/ig", "bytes_kept": false},
        ]});
        let item = || stamped(&f, "khach", "wamid.1", "[image]", T0, meta.clone(), None);
        let first = s.ingest_channel(&[item()], T0).await.unwrap();
        let Ok(ChannelOutcome::Message(m)) = &first[0] else {
            panic!("{first:?}")
        };
        // The same webhook again: nothing new.
        s.ingest_channel(&[item()], T0.plus_minutes(1))
            .await
            .unwrap();
        let files = s.attachments_for_messages(&[m.message_id]).await.unwrap();
        assert_eq!(files.len(), 2, "{}", b.name);
        let (fetch, linked) = (&files[0], &files[1]);
        let inbound = fetch.inbound.clone().unwrap();
        assert_eq!(
            (
                inbound.state.as_str(),
                inbound.kind.as_str(),
                inbound.source_kind.as_str()
            ),
            ("pending", "image", "whatsapp_media"),
            "{}",
            b.name
        );
        assert_eq!(inbound.source, "MID-1");
        assert_eq!(linked.inbound.as_ref().unwrap().state, "remote");
        assert_eq!(s.next_file_due().await.unwrap(), Some(T0), "{}", b.name);

        // One worker leases it; a second sees nothing until the lease ends.
        let lease = T0.plus_minutes(5);
        let got = s.claim_due_files(T0, lease, 10).await.unwrap();
        assert_eq!(got.len(), 1, "{}", b.name);
        assert_eq!(got[0].inbound.as_ref().unwrap().attempts, 1);
        assert!(s.claim_due_files(T0, lease, 10).await.unwrap().is_empty());
        // A retry, then given up: the thread hears of the end only.
        let seq = s.last_event_seq().await.unwrap();
        let retry_at = T0.plus_minutes(1);
        let retry = FileOutcome::Retry {
            at: retry_at,
            error: "provider_error".into(),
        };
        assert!(s.file_fetched(fetch.id, &retry, T0).await.unwrap());
        assert!(s.claim_due_files(T0, lease, 10).await.unwrap().is_empty());
        let again = s.claim_due_files(retry_at, lease, 10).await.unwrap();
        assert_eq!(again[0].inbound.as_ref().unwrap().attempts, 2, "{}", b.name);
        let failed = FileOutcome::Failed {
            error: "media_unavailable".into(),
        };
        assert!(s.file_fetched(fetch.id, &failed, T0).await.unwrap());
        let a = s.attachment(fetch.id).await.unwrap().unwrap();
        let i = a.inbound.unwrap();
        assert_eq!(
            (i.state.as_str(), i.last_error.as_deref()),
            ("failed", Some("media_unavailable"))
        );
        let events = s.events_since(seq, None, 10).await.unwrap();
        assert_eq!(events.len(), 1, "{}", b.name);
        assert_eq!(events[0].kind, EventKind::MessageUpdated);
        assert_eq!(events[0].payload["attachments_changed"], true);
        assert_eq!(s.next_file_due().await.unwrap(), None);

        // An agent retries it: pending now, from the first attempt; then it is ready.
        assert!(s.retry_file(fetch.id, T0.plus_minutes(9)).await.unwrap());
        assert!(
            !s.retry_file(fetch.id, T0.plus_minutes(9)).await.unwrap(),
            "only a failed one"
        );
        let got = s
            .claim_due_files(T0.plus_minutes(9), lease, 10)
            .await
            .unwrap();
        assert_eq!(got[0].inbound.as_ref().unwrap().attempts, 1, "{}", b.name);
        let ready = FileOutcome::Ready {
            content_type: "image/jpeg".into(),
            size_bytes: 1234,
            thumbnail_key: Some(format!("thumbs/{}", fetch.id)),
        };
        assert!(s.file_fetched(fetch.id, &ready, T0).await.unwrap());
        assert!(
            !s.file_fetched(fetch.id, &failed, T0).await.unwrap(),
            "ended once"
        );
        let a = s.attachment(fetch.id).await.unwrap().unwrap();
        assert_eq!(
            (a.content_type.as_str(), a.size_bytes),
            ("image/jpeg", 1234)
        );
        assert_eq!(a.inbound.unwrap().state, "ready");
        // The gallery lists both.
        let gallery = s
            .conversation_attachments(m.conversation_id, 10)
            .await
            .unwrap();
        assert_eq!(gallery.len(), 2, "{}", b.name);
    }
}
