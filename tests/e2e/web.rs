//! The embedded web UI, files on messages, tags management and the widget's public settings.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::support::*;
use reqwest::{Method, StatusCode};
use serde_json::json;

#[tokio::test]
async fn the_app_and_the_widget_script_are_served() {
    let app = TestApp::start().await;
    for path in ["/", "/conversations/some/deep/link"] {
        let r = app.http.get(app.url(path)).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::OK, "{path}");
        assert!(
            r.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/html")
        );
        let csp = r.headers()["content-security-policy"]
            .to_str()
            .unwrap()
            .to_owned();
        assert!(csp.contains("script-src 'self'"), "{csp}");
        assert!(r.text().await.unwrap().contains("<html"));
    }
    let js = app.http.get(app.url("/widget.js")).send().await.unwrap();
    assert_eq!(js.status(), StatusCode::OK);
    assert!(
        js.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/javascript")
    );
    let body = js.text().await.unwrap();
    assert!(!body.is_empty());
    let id = "01000000-0000-7000-8000-000000000000";
    let preview = app
        .http
        .get(app.url(&format!("/widget-preview?inbox={id}&lang=vi")))
        .send()
        .await
        .unwrap();
    assert_eq!(preview.status(), StatusCode::OK);
    let html = preview.text().await.unwrap();
    assert!(
        html.contains(&format!("data-inbox=\"{id}\"")) && html.contains("data-lang=\"vi\""),
        "{html}"
    );
    let (s, _) = app
        .call(
            Method::GET,
            "/widget-preview?inbox=%22%3E%3Cscript%3E",
            None,
            None,
        )
        .await;
    assert_eq!(
        s,
        StatusCode::BAD_REQUEST,
        "only a real id is echoed into the page"
    );
    // Unknown files and API paths are JSON 404s, not the app.
    for path in ["/assets/nope.js", "/api/v1/nope", "/widget/v1/nope"] {
        let (s, b) = app.call(Method::GET, path, None, None).await;
        assert_eq!(
            (s, b["error"]["code"].as_str()),
            (StatusCode::NOT_FOUND, Some("no_route")),
            "{path}"
        );
    }
}

#[tokio::test]
async fn files_go_to_the_customer_and_stay_out_of_reach_of_others() {
    let app = TestApp::start().await;
    let (lan, lan_t) = app.agent("lan@shop.vn", "Lan", "agent").await;
    let (other, other_t) = app.agent("other@shop.vn", "Other", "agent").await;
    let inbox = app.inbox("Web", &[&lan]).await;
    app.inbox("Other", &[&other]).await;
    let v = app.visitor(&inbox).await;
    let conv = app.visitor_says(&v, "gửi ảnh giúp mình").await["message"]["conversation_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let png: &[u8] = b"\x89PNG\r\n\x1a\nfake image bytes";
    let upload = |token: &str| {
        app.http
            .post(app.url(&format!("/api/v1/conversations/{conv}/attachments?filename=%C3%A1o.png&caption=M%E1%BA%ABu%20m%E1%BB%9Bi")))
            .bearer_auth(token)
            .header("content-type", "image/png")
            .body(png.to_vec())
    };
    // Unclaimed: refused before anything is written.
    let r = upload(&lan_t).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::CONFLICT);
    app.ok(
        Method::POST,
        &format!("/api/v1/conversations/{conv}/claim"),
        &lan_t,
        None,
    )
    .await;
    let r = upload(&lan_t).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let m: serde_json::Value = r.json().await.unwrap();
    assert_eq!(
        (m["kind"].as_str(), m["text"].as_str()),
        (Some("media"), Some("Mẫu mới"))
    );
    let att = m["attachments"][0].clone();
    assert_eq!(
        (att["filename"].as_str(), att["size_bytes"].as_i64()),
        (Some("áo.png"), Some(png.len() as i64))
    );

    let url = att["url"].as_str().unwrap().to_owned();
    let got = app
        .http
        .get(app.url(&url))
        .bearer_auth(&lan_t)
        .send()
        .await
        .unwrap();
    assert_eq!(got.status(), StatusCode::OK);
    assert_eq!(got.headers()["content-type"], "image/png");
    assert_eq!(got.headers()["x-content-type-options"], "nosniff");
    assert_eq!(got.bytes().await.unwrap().as_ref(), png);
    let denied = app
        .http
        .get(app.url(&url))
        .bearer_auth(&other_t)
        .send()
        .await
        .unwrap();
    assert_eq!(denied.status(), StatusCode::NOT_FOUND);

    // The visitor sees it in their thread and can fetch it with their token; another visitor cannot.
    let (_, thread) = app
        .call(Method::GET, "/widget/v1/messages", Some(&v), None)
        .await;
    let vatt = thread["items"][1]["attachments"][0].clone();
    assert_eq!(vatt["filename"], "áo.png");
    let vurl = vatt["url"].as_str().unwrap();
    let r = app
        .http
        .get(app.url(vurl))
        .bearer_auth(&v)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let stranger = app.visitor(&inbox).await;
    let r = app
        .http
        .get(app.url(vurl))
        .bearer_auth(&stranger)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);

    let gallery = app
        .ok(
            Method::GET,
            &format!("/api/v1/conversations/{conv}/attachments"),
            &lan_t,
            None,
        )
        .await;
    assert_eq!(gallery["items"].as_array().unwrap().len(), 1);

    // An HTML file is served as a download, never rendered.
    let r = app
        .http
        .post(app.url(&format!(
            "/api/v1/conversations/{conv}/attachments?filename=x.html"
        )))
        .bearer_auth(&lan_t)
        .header("content-type", "text/html")
        .body("<script>alert(1)</script>")
        .send()
        .await
        .unwrap();
    let html_url = r.json::<serde_json::Value>().await.unwrap()["attachments"][0]["url"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = app
        .http
        .get(app.url(&html_url))
        .bearer_auth(&lan_t)
        .send()
        .await
        .unwrap();
    assert!(
        r.headers()["content-disposition"]
            .to_str()
            .unwrap()
            .starts_with("attachment")
    );
}

/// Hardening finding 1: a picture whose type the uploader chose ran script on our origin.
#[tokio::test]
async fn a_file_is_served_with_the_type_its_bytes_have_never_the_uploaders() {
    let app = TestApp::start().await;
    let (lan, lan_t) = app.agent("lan@shop.vn", "Lan", "agent").await;
    let inbox = app.inbox("Web", &[&lan]).await;
    let (v, conv) = app
        .claimed_visitor_conversation(&inbox, &lan_t, "ảnh đây")
        .await;
    let svg = r#"<svg xmlns="http://www.w3.org/2000/svg" onload="fetch('/api/v1/agents')"/>"#;
    let upload = |claimed: &'static str, body: Vec<u8>| {
        app.http
            .post(app.url(&format!(
                "/api/v1/conversations/{conv}/attachments?filename=anh.png"
            )))
            .bearer_auth(&lan_t)
            .header("content-type", claimed)
            .body(body)
            .send()
    };
    let fetch = |url: String, token: String| {
        let req = app.http.get(app.url(&url)).bearer_auth(token);
        async move {
            let r = req.send().await.unwrap();
            assert_eq!(r.status(), StatusCode::OK);
            let h = r.headers().clone();
            let header = |name: &str| h[name].to_str().unwrap().to_owned();
            (
                header("content-type"),
                header("content-disposition"),
                header("content-security-policy"),
                header("x-content-type-options"),
            )
        }
    };
    for claimed in [
        "image/SVG+xml",
        "image/png,text/html",
        "image/x;a=b,application/xml",
    ] {
        let r = upload(claimed, svg.as_bytes().to_vec()).await.unwrap();
        assert_eq!(r.status(), StatusCode::CREATED, "{claimed}");
        let att = r.json::<serde_json::Value>().await.unwrap()["attachments"][0].clone();
        assert_eq!(att["content_type"], "application/octet-stream", "{claimed}");
        let url = att["url"].as_str().unwrap().to_owned();
        let (ty, disposition, csp, nosniff) = fetch(url.clone(), lan_t.clone()).await;
        assert_eq!(ty, "application/octet-stream", "{claimed}");
        assert!(
            disposition.starts_with("attachment;"),
            "{claimed}: {disposition}"
        );
        assert!(csp.starts_with("sandbox"), "{claimed}: {csp}");
        assert_eq!(nosniff, "nosniff");
        // The visitor's copy comes with the same headers.
        let vurl = url.replace("/api/v1/media/", "/widget/v1/media/");
        let (vty, vdisposition, vcsp, _) = fetch(vurl, v.clone()).await;
        assert_eq!(
            (vty.as_str(), &vdisposition[..10], &vcsp[..7]),
            ("application/octet-stream", "attachment", "sandbox")
        );
    }
    // A real picture is a picture whatever it was called, and keeps its Vietnamese name.
    let png = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR".to_vec();
    let r = upload("text/html", png).await.unwrap();
    let att = r.json::<serde_json::Value>().await.unwrap()["attachments"][0].clone();
    assert_eq!(att["content_type"], "image/png");
    let (ty, disposition, csp, _) = fetch(att["url"].as_str().unwrap().into(), lan_t.clone()).await;
    assert_eq!(ty, "image/png");
    assert!(disposition.starts_with("inline;"), "{disposition}");
    assert!(
        disposition.contains("filename*=UTF-8''anh.png"),
        "{disposition}"
    );
    assert!(csp.starts_with("sandbox"));

    // A file stored before types were derived keeps its uploader's string in the database: it is
    // still served (and listed) as opaque bytes.
    let old = switchboard_store::Attachment {
        id: uuid::Uuid::now_v7(),
        conversation_id: serde_json::from_value(json!(conv)).unwrap(),
        message_id: switchboard_core::MessageId(uuid::Uuid::now_v7()),
        filename: "cũ.png".into(),
        content_type: "image/png,text/html".into(),
        size_bytes: 3,
        created_at: T0,
        inbound: None,
    };
    app.state.store.create_attachment(&old).await.unwrap();
    std::fs::write(
        app.state
            .config
            .data_dir
            .join("media")
            .join(old.id.to_string()),
        "<b>",
    )
    .unwrap();
    let (ty, disposition, _, _) = fetch(format!("/api/v1/media/{}", old.id), lan_t.clone()).await;
    assert_eq!(ty, "application/octet-stream");
    assert!(disposition.starts_with("attachment;"));
    assert!(
        disposition.contains("filename*=UTF-8''c%C5%A9.png"),
        "{disposition}"
    );
    let gallery = app
        .ok(
            Method::GET,
            &format!("/api/v1/conversations/{conv}/attachments"),
            &lan_t,
            None,
        )
        .await;
    assert!(
        gallery["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|a| a["content_type"] != "image/png,text/html")
    );
}

#[tokio::test]
async fn uploads_over_the_limit_are_refused_and_store_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config_for(dir.path()).await;
    cfg.limits.max_upload_bytes = 1024;
    let app = TestApp::start_with(cfg, switchboard_server::clock::ManualClock::new(T0))
        .await
        .with_admin()
        .await;
    let token = app.admin.clone();
    let inbox = app
        .ok(
            Method::POST,
            "/api/v1/inboxes",
            &token,
            Some(json!({"name": "W", "channel": "livechat"})),
        )
        .await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let v = app.visitor(&inbox).await;
    let conv = app.visitor_says(&v, "hi").await["message"]["conversation_id"]
        .as_str()
        .unwrap()
        .to_owned();
    app.ok(
        Method::POST,
        &format!("/api/v1/conversations/{conv}/claim"),
        &token,
        None,
    )
    .await;
    let r = app
        .http
        .post(app.url(&format!(
            "/api/v1/conversations/{conv}/attachments?filename=big.bin"
        )))
        .bearer_auth(&token)
        .body(vec![0u8; 4096])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::PAYLOAD_TOO_LARGE);
    // The documented JSON error (hardening finding 8: it was text/plain), with the limit.
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/json")
    );
    let err: serde_json::Value = r.json().await.unwrap();
    assert_eq!(
        (
            err["error"]["code"].as_str(),
            err["error"]["max_bytes"].as_i64()
        ),
        (Some("file_too_large"), Some(1024))
    );
    let gallery = app
        .ok(
            Method::GET,
            &format!("/api/v1/conversations/{conv}/attachments"),
            &token,
            None,
        )
        .await;
    assert!(gallery["items"].as_array().unwrap().is_empty());
    assert!(
        !dir.path().join("media").exists()
            || std::fs::read_dir(dir.path().join("media"))
                .unwrap()
                .next()
                .is_none()
    );
    let me = app.ok(Method::GET, "/api/v1/me", &token, None).await;
    assert_eq!(me["limits"]["max_upload_bytes"], 1024);
    app.stop().await;
}

#[tokio::test]
async fn tags_can_be_managed_and_deleting_one_untags_everywhere() {
    let app = TestApp::start().await;
    let (lan, lan_t) = app.agent("lan@shop.vn", "Lan", "agent").await;
    let inbox = app.inbox("Web", &[&lan]).await;
    let v = app.visitor(&inbox).await;
    let conv = app.visitor_says(&v, "hi").await["message"]["conversation_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (s, _) = app
        .post("/api/v1/tags", &lan_t, json!({"name": "vip"}))
        .await;
    assert_eq!(
        s,
        StatusCode::FORBIDDEN,
        "agents tag conversations; supervisors manage the list"
    );
    let tag = app
        .ok(
            Method::POST,
            "/api/v1/tags",
            &app.admin,
            Some(json!({"name": "VIP"})),
        )
        .await;
    assert_eq!(tag["name"], "vip");
    app.ok(
        Method::POST,
        &format!("/api/v1/conversations/{conv}/tags"),
        &lan_t,
        Some(json!({"name": "vip"})),
    )
    .await;
    assert_eq!(app.conversations(&lan_t, "?tag=vip").await.len(), 1);
    app.ok(
        Method::DELETE,
        &format!("/api/v1/tags/{}", tag["id"].as_str().unwrap()),
        &app.admin,
        None,
    )
    .await;
    assert!(app.conversations(&lan_t, "?tag=vip").await.is_empty());
    let c = app
        .ok(
            Method::GET,
            &format!("/api/v1/conversations/{conv}"),
            &lan_t,
            None,
        )
        .await;
    assert_eq!(c["tags"], json!([]));
}

#[tokio::test]
async fn the_widget_reads_its_public_settings_without_a_session() {
    let app = TestApp::start().await;
    let inbox = app
        .ok(Method::POST, "/api/v1/inboxes", &app.admin, Some(json!({"name": "Shop", "channel": "livechat", "settings": {"greeting": "Xin chào!", "prechat_fields": ["name", "phone"]}})))
        .await;
    let id = inbox["id"].as_str().unwrap();
    let (s, cfg) = app
        .call(Method::GET, &format!("/widget/v1/inboxes/{id}"), None, None)
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(cfg["greeting"], "Xin chào!");
    assert_eq!(cfg["prechat_fields"], json!(["name", "phone"]));
    assert!(
        cfg.get("settings").is_none() && !cfg.to_string().contains("identity_secret"),
        "no secrets: {cfg}"
    );
    let (s, b) = app
        .call(
            Method::POST,
            "/widget/v1/sessions",
            None,
            Some(json!({"inbox_id": id, "name": "Hà", "phone": "12"})),
        )
        .await;
    assert_eq!(
        (s, b["error"]["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("phone"))
    );
}
