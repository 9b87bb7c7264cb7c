//! Web Push: an agent's browser subscription gets a push when a conversation is assigned to them,
//! VAPID-signed (RFC 8292) and encrypted with `aes128gcm` (RFC 8291). The push service is a local
//! one on port 0; the test plays the browser: it has its own keys, checks the signature against
//! the server's public key and decrypts what arrives.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::support::*;
use aes_gcm::aead::Aead;
use aes_gcm::{Aes128Gcm, KeyInit, Nonce};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use hkdf::Hkdf;
use p256::ecdsa::signature::Verifier;
use p256::ecdsa::{Signature, VerifyingKey};
use p256::elliptic_curve::sec1::ToEncodedPoint;
use p256::{PublicKey, SecretKey};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use sha2::Sha256;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::mpsc;

/// What the push service received.
struct Received {
    path: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Received {
    fn header(&self, name: &str) -> &str {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .unwrap_or_else(|| panic!("no {name} header"))
    }
}

/// A push service answering the requests it gets, in turn, with `answers`.
async fn push_service(answers: Vec<u16>) -> (String, mpsc::UnboundedReceiver<Received>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        for status in answers {
            let (mut sock, _) = listener.accept().await.unwrap();
            let mut buf = Vec::new();
            let mut chunk = [0u8; 8192];
            let head_end = loop {
                let n = sock.read(&mut chunk).await.unwrap();
                assert!(n > 0, "the connection closed before the request ended");
                buf.extend_from_slice(&chunk[..n]);
                if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                    break i + 4;
                }
            };
            let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
            let mut lines = head.split("\r\n");
            let path = lines.next().unwrap().split(' ').nth(1).unwrap().to_owned();
            let headers: Vec<(String, String)> = lines
                .filter_map(|l| l.split_once(':'))
                .map(|(k, v)| (k.trim().to_lowercase(), v.trim().to_owned()))
                .collect();
            let len: usize = headers
                .iter()
                .find(|(k, _)| k == "content-length")
                .map(|(_, v)| v.parse().unwrap())
                .unwrap_or(0);
            let mut body = buf[head_end..].to_vec();
            while body.len() < len {
                let n = sock.read(&mut chunk).await.unwrap();
                assert!(n > 0);
                body.extend_from_slice(&chunk[..n]);
            }
            let reason = if status == 201 { "Created" } else { "Gone" };
            sock.write_all(
                format!(
                    "HTTP/1.1 {status} {reason}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
                )
                .as_bytes(),
            )
            .await
            .unwrap();
            let _ = tx.send(Received {
                path,
                headers,
                body,
            });
        }
    });
    (base, rx)
}

/// The browser's side of a subscription.
struct Browser {
    secret: SecretKey,
    public: Vec<u8>,
    auth: [u8; 16],
}

fn browser() -> Browser {
    let secret = SecretKey::random(&mut rand::rngs::OsRng);
    let public = secret
        .public_key()
        .to_encoded_point(false)
        .as_bytes()
        .to_vec();
    let mut auth = [0u8; 16];
    rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut auth);
    Browser {
        secret,
        public,
        auth,
    }
}

/// What a browser does with a push (RFC 8291 §3.4, RFC 8188 §2): the header, then one record.
fn decrypt(b: &Browser, body: &[u8]) -> Vec<u8> {
    let (salt, rest) = body.split_at(16);
    assert_eq!(
        u32::from_be_bytes(rest[..4].try_into().unwrap()),
        4096,
        "record size"
    );
    assert_eq!(rest[4], 65, "the key id is the sender's public key");
    let (sender, ciphertext) = rest[5..].split_at(65);
    let shared = p256::ecdh::diffie_hellman(
        b.secret.to_nonzero_scalar(),
        PublicKey::from_sec1_bytes(sender).unwrap().as_affine(),
    );
    let mut info = b"WebPush: info\0".to_vec();
    info.extend_from_slice(&b.public);
    info.extend_from_slice(sender);
    let mut ikm = [0u8; 32];
    Hkdf::<Sha256>::new(Some(&b.auth), shared.raw_secret_bytes())
        .expand(&info, &mut ikm)
        .unwrap();
    let prk = Hkdf::<Sha256>::new(Some(salt), &ikm);
    let (mut cek, mut nonce) = ([0u8; 16], [0u8; 12]);
    prk.expand(b"Content-Encoding: aes128gcm\0", &mut cek)
        .unwrap();
    prk.expand(b"Content-Encoding: nonce\0", &mut nonce)
        .unwrap();
    let mut plain = Aes128Gcm::new_from_slice(&cek)
        .unwrap()
        .decrypt(Nonce::from_slice(&nonce), ciphertext)
        .expect("the push decrypts with the browser's keys");
    while plain.last() == Some(&0) {
        plain.pop();
    }
    assert_eq!(plain.pop(), Some(2), "one last record");
    plain
}

/// Checks `Authorization: vapid t=<JWT>, k=<key>` (RFC 8292) and returns the token's claims.
fn vapid_claims(authorization: &str, server_key: &str) -> Value {
    let params = authorization
        .strip_prefix("vapid ")
        .expect("the vapid scheme");
    let param = |name: &str| {
        params
            .split(',')
            .map(str::trim)
            .find_map(|p| p.strip_prefix(name))
            .unwrap_or_else(|| panic!("no {name} in {params}"))
    };
    let (token, k) = (param("t="), param("k="));
    assert_eq!(k, server_key, "k is the key browsers subscribed with");
    let parts: Vec<&str> = token.split('.').collect();
    assert_eq!(parts.len(), 3);
    let header: Value = serde_json::from_slice(&B64.decode(parts[0]).unwrap()).unwrap();
    assert_eq!(header["alg"], "ES256");
    assert_eq!(header["typ"], "JWT");
    let signature = Signature::from_slice(&B64.decode(parts[2]).unwrap()).unwrap();
    VerifyingKey::from_sec1_bytes(&B64.decode(k).unwrap())
        .unwrap()
        .verify(format!("{}.{}", parts[0], parts[1]).as_bytes(), &signature)
        .expect("the token is signed by the server's VAPID key");
    serde_json::from_slice(&B64.decode(parts[1]).unwrap()).unwrap()
}

async fn next_push(pushes: &mut mpsc::UnboundedReceiver<Received>) -> Received {
    tokio::time::timeout(Duration::from_secs(10), pushes.recv())
        .await
        .expect("a push within 10 s")
        .expect("the push service is running")
}

#[tokio::test]
async fn an_assignment_is_pushed_to_the_agents_browser_signed_and_encrypted() {
    let app = TestApp::start_configured(|c| {
        c.push.allow_http_endpoints = true;
        c.push.subject = "mailto:ops@shop.vn".into();
    })
    .await;
    let (lan, lan_token) = app.agent("lan@shop.vn", "Lan", "agent").await;
    let inbox = app.inbox("Web", &[&lan]).await;
    let (service, mut pushes) = push_service(vec![201, 410]).await;
    let endpoint = format!("{service}/push/lan-phone");
    let b = browser();
    let keys = json!({"p256dh": B64.encode(&b.public), "auth": B64.encode(b.auth)});

    // What the browser sends is checked.
    let (s, v) = app
        .post(
            "/api/v1/me/push-subscriptions",
            &lan_token,
            json!({"endpoint": endpoint, "keys": {"p256dh": "BAAA", "auth": keys["auth"]}}),
        )
        .await;
    assert_eq!(
        (s, v["error"]["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("p256dh")),
        "{v}"
    );
    let (s, v) = app
        .post(
            "/api/v1/me/push-subscriptions",
            &lan_token,
            json!({"endpoint": endpoint, "keys": keys, "expirationTime": null}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let server_key = app.get("/api/v1/push/key", &lan_token).await.1["public_key"]
        .as_str()
        .unwrap()
        .to_owned();

    // A customer writes; the admin assigns the conversation to Lan: her phone gets a push.
    let (_, conv) = app.new_customer(&inbox, "Chào shop").await;
    app.ok(
        Method::POST,
        &format!("/api/v1/conversations/{conv}/assign"),
        &app.admin,
        Some(json!({"agent_id": lan})),
    )
    .await;
    let push = next_push(&mut pushes).await;
    assert_eq!(push.path, "/push/lan-phone");
    assert_eq!(push.header("content-encoding"), "aes128gcm");
    assert!(push.header("ttl").parse::<u32>().unwrap() > 0);
    let claims = vapid_claims(push.header("authorization"), &server_key);
    let now = T0.millis() / 1000;
    let exp = claims["exp"].as_i64().unwrap();
    assert_eq!(
        claims["aud"],
        service.as_str(),
        "the audience is the push service's origin"
    );
    assert_eq!(claims["sub"], "mailto:ops@shop.vn");
    assert!(
        exp > now && exp <= now + 24 * 3600,
        "expires within 24 hours: {exp}"
    );
    let payload: Value = serde_json::from_slice(&decrypt(&b, &push.body)).unwrap();
    let name = app.conversation(&conv).await["contact_name"].clone();
    assert!(name.is_string(), "{name}");
    assert_eq!(
        payload,
        json!({"kind": "assigned", "conversation_id": conv, "name": name})
    );

    // Taking a customer yourself is no news: the next push is for the one the admin assigns.
    let (_, own) = app.new_customer(&inbox, "Còn hàng không?").await;
    app.ok(
        Method::POST,
        &format!("/api/v1/conversations/{own}/claim"),
        &lan_token,
        None,
    )
    .await;
    let (_, third) = app.new_customer(&inbox, "Giao hàng mấy ngày?").await;
    app.ok(
        Method::POST,
        &format!("/api/v1/conversations/{third}/assign"),
        &app.admin,
        Some(json!({"agent_id": lan})),
    )
    .await;
    let push = next_push(&mut pushes).await;
    let payload: Value = serde_json::from_slice(&decrypt(&b, &push.body)).unwrap();
    assert_eq!(payload["conversation_id"], third.as_str());

    // That time the push service answered 410 Gone: the subscription is forgotten.
    let agent = switchboard_core::AgentId(uuid::Uuid::parse_str(&lan).unwrap());
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !app
        .state
        .store
        .push_subscriptions(agent)
        .await
        .unwrap()
        .is_empty()
    {
        assert!(
            std::time::Instant::now() < deadline,
            "the gone subscription is still there"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // An agent removes only their own.
    let (s, v) = app
        .call(
            Method::DELETE,
            &format!(
                "/api/v1/me/push-subscriptions?endpoint={}",
                urlencode(&endpoint)
            ),
            Some(&lan_token),
            None,
        )
        .await;
    assert_eq!((s, &v["removed"]), (StatusCode::OK, &json!(false)), "{v}");
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[tokio::test]
async fn an_agent_who_turned_a_kind_off_gets_no_push_of_it_on_any_device() {
    let app = TestApp::start_configured(|c| c.push.allow_http_endpoints = true).await;
    let (lan, lan_token) = app.agent("lan@shop.vn", "Lan", "agent").await;
    let (minh, _) = app.agent("minh@shop.vn", "Minh", "agent").await;
    let inbox = app.inbox("Web", &[&lan, &minh]).await;
    let (service, mut pushes) = push_service(vec![201]).await;
    let b = browser();
    let keys = json!({"p256dh": B64.encode(&b.public), "auth": B64.encode(b.auth)});
    app.ok(
        Method::POST,
        "/api/v1/me/push-subscriptions",
        &lan_token,
        Some(json!({"endpoint": format!("{service}/push/lan"), "keys": keys})),
    )
    .await;

    // Everything is on until she chooses; then her choice is what every device reads.
    let prefs = app
        .ok(
            Method::GET,
            "/api/v1/me/notification-preferences",
            &lan_token,
            None,
        )
        .await;
    assert_eq!(
        prefs,
        json!({"sound": true, "kinds": {"assigned": true, "transferred": true, "waiting": true, "answered": true}})
    );
    let quiet = json!({"sound": false, "kinds": {"assigned": false, "transferred": true, "waiting": true, "answered": true}});
    app.ok(
        Method::PUT,
        "/api/v1/me/notification-preferences",
        &lan_token,
        Some(quiet.clone()),
    )
    .await;
    assert_eq!(
        app.ok(
            Method::GET,
            "/api/v1/me/notification-preferences",
            &lan_token,
            None
        )
        .await,
        quiet
    );
    let (s, v) = app
        .call(
            Method::PUT,
            "/api/v1/me/notification-preferences",
            Some(&lan_token),
            Some(json!({"sound": true, "kinds": {"assigned": true}})),
        )
        .await;
    assert_eq!(
        s,
        StatusCode::UNPROCESSABLE_ENTITY,
        "every kind is named: {v}"
    );

    // Assigned to her: no push. Handed over from Minh: pushed (the first and only one).
    let (_, first) = app.new_customer(&inbox, "Chào shop").await;
    let assign = |conv: String, to: String| {
        let app = &app;
        async move {
            app.ok(
                Method::POST,
                &format!("/api/v1/conversations/{conv}/assign"),
                &app.admin,
                Some(json!({"agent_id": to})),
            )
            .await
        }
    };
    assign(first.clone(), lan.clone()).await;
    let (_, second) = app.new_customer(&inbox, "Còn size M không?").await;
    assign(second.clone(), minh.clone()).await;
    assign(second.clone(), lan.clone()).await;
    let push = next_push(&mut pushes).await;
    let payload: Value = serde_json::from_slice(&decrypt(&b, &push.body)).unwrap();
    assert_eq!(
        (
            payload["kind"].as_str(),
            payload["conversation_id"].as_str()
        ),
        (Some("transferred"), Some(second.as_str()))
    );
}
