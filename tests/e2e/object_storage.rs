//! Media in an S3-compatible bucket (`[media.s3]`): what an agent uploads goes to the bucket, not
//! the node's disk, and comes back to agents and the visitor as it went in. Runs against the local
//! S3-compatible server the test script starts (`SWITCHBOARD_TEST_S3_URL`); without one it says so
//! and passes. The multi-node half (two nodes serving each other's files) is in `multinode.rs`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::support::{TestApp, s3_object, test_s3_bucket};
use reqwest::StatusCode;

#[tokio::test]
async fn uploads_live_in_the_bucket_and_are_served_from_it() {
    let Some(s3) = test_s3_bucket().await else {
        eprintln!("object storage test not run: set SWITCHBOARD_TEST_S3_URL");
        return;
    };
    let app = TestApp::start_configured(|c| c.media.s3 = Some(s3.clone())).await;
    let (lan, lan_t) = app.agent("lan@shop.vn", "Lan", "agent").await;
    let inbox = app.inbox("Web", &[&lan]).await;
    let (visitor, conv) = app
        .claimed_visitor_conversation(&inbox, &lan_t, "bảng size?")
        .await;
    // A picture large enough to cross several network reads (3 MiB).
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    png.extend((0..3 * 1024 * 1024).map(|i| (i % 251) as u8));
    let r = app
        .http
        .post(app.url(&format!(
            "/api/v1/conversations/{conv}/attachments?filename=bang-size.png"
        )))
        .bearer_auth(&lan_t)
        .body(png.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let att = r.json::<serde_json::Value>().await.unwrap()["attachments"][0].clone();
    let id = att["id"].as_str().unwrap().to_owned();

    // In the bucket, byte for byte; nothing on this node's disk.
    let stored = s3_object(&s3, &id)
        .await
        .expect("the file is in the bucket");
    assert!(
        stored == png,
        "the bucket holds other bytes than were uploaded"
    );
    assert!(
        !app.state.config.data_dir.join("media").join(&id).exists(),
        "the file must not be kept on the node's disk"
    );
    // Served back from the bucket to the agent and to the conversation's visitor.
    for (url, token) in [
        (format!("/api/v1/media/{id}"), &lan_t),
        (format!("/widget/v1/media/{id}"), &visitor),
    ] {
        let r = app
            .http
            .get(app.url(&url))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK, "{url}");
        assert_eq!(r.headers()["content-type"], "image/png");
        assert_eq!(
            r.headers()["content-length"],
            png.len().to_string().as_str()
        );
        assert!(
            r.bytes().await.unwrap() == png,
            "{url}: other bytes came back"
        );
    }
    // A file that is in the database but gone from the bucket is a plain 404, not a 500.
    switchboard_server::media_store::MediaStore::s3(&s3)
        .unwrap()
        .delete(&id)
        .await
        .unwrap();
    let r = app
        .http
        .get(app.url(&format!("/api/v1/media/{id}")))
        .bearer_auth(&lan_t)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
}

/// A download streamed into the bucket goes up in parts (S3 multipart) and comes back whole;
/// one past its limit leaves nothing in the bucket.
#[tokio::test]
async fn a_large_stream_goes_up_in_parts() {
    use futures_util::StreamExt;
    let Some(s3) = test_s3_bucket().await else {
        eprintln!("object storage test not run: set SWITCHBOARD_TEST_S3_URL");
        return;
    };
    let store = switchboard_server::media_store::MediaStore::s3(&s3).unwrap();
    // 20 MiB in 1 MiB reads, as a provider download arrives.
    let mib = axum::body::Bytes::from(vec![7u8; 1024 * 1024]);
    let stream = || {
        futures_util::stream::iter((0..20).map({
            let mib = mib.clone();
            move |_| Ok::<_, std::io::Error>(mib.clone())
        }))
    };
    let w = store
        .put_stream("big-video", stream(), 25 * 1024 * 1024)
        .await
        .unwrap();
    assert_eq!(w.size, 20 * 1024 * 1024);
    let got = store.get("big-video").await.unwrap();
    assert_eq!(got.size, 20 * 1024 * 1024);
    let mut total = 0usize;
    let mut parts = got.stream;
    while let Some(p) = parts.next().await {
        let p = p.unwrap();
        assert!(p.iter().all(|b| *b == 7));
        total += p.len();
    }
    assert_eq!(total, 20 * 1024 * 1024);
    let over = store
        .put_stream("too-big", stream(), 10 * 1024 * 1024)
        .await;
    assert!(over.is_err());
    assert!(s3_object(&s3, "too-big").await.is_none());
}
