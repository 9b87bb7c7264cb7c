//! The demo's Facebook Page: an in-process Meta sandbox connected to a `messenger` inbox, with a few
//! simulated customers who DM and comment, so a newcomer sees live channel traffic (policy
//! countdown, comments, private replies, delivery ticks) without a Meta app.

use std::fmt::Write;
use std::sync::Arc;
use std::time::Duration;
use switchboard_channels::meta::Object;
use switchboard_core::*;
use switchboard_sandbox::meta::{PageSpec, Sandbox, UserSpec};
use switchboard_server::auth;
use switchboard_server::random::new_uuid;
use switchboard_server::state::AppState;

pub const DEMO_PAGE_ID: &str = "100000000000001";
const POST_ID: &str = "100000000000001_2001";

const CUSTOMERS: &[(&str, &str, &str, &str)] = &[
    ("5550001", "7770001", "Thu", "Trần"),
    ("5550002", "7770002", "Bảo", "Lê"),
    ("5550003", "7770003", "Mai", "Phạm"),
];

const LINES: &[&str] = &[
    "Shop ơi, váy hoa còn size S không ạ?",
    "Ship về Đà Nẵng mất mấy ngày vậy shop?",
    "Mình muốn đổi sang màu xanh được không?",
    "Đơn của mình tới đâu rồi ạ?",
    "Có freeship cho đơn 2 món không shop?",
];

/// Starts the sandbox and connects (or reconnects, after a restart) the demo Page's inbox to it.
/// Keep the returned sandbox alive as long as the server runs.
pub async fn start(st: &AppState, url: &str) -> anyhow::Result<(Sandbox, String)> {
    let sandbox = Sandbox::start(st.clock.clone(), "127.0.0.1:0".parse()?).await?;
    let existing = st
        .store
        .inbox_by_account(ChannelKind::Messenger, DEMO_PAGE_ID)
        .await?;
    let inbox = match existing {
        Some(mut i) => {
            // The sandbox listens on a new port each run.
            if let Some(o) = i.settings.as_object_mut() {
                o.insert("api_base_url".into(), serde_json::json!(sandbox.base_url()));
            }
            st.store.update_inbox(&i).await?;
            i
        }
        None => {
            let i = Inbox {
                id: InboxId(new_uuid()),
                workspace_id: st.workspace_id,
                name: "Facebook Page (sandbox)".into(),
                channel: ChannelKind::Messenger,
                settings: serde_json::json!({
                    "page_id": DEMO_PAGE_ID,
                    "page_access_token": auth::random_token(24),
                    "app_secret": auth::random_token(24),
                    "verify_token": auth::random_token(12),
                    "api_base_url": sandbox.base_url(),
                }),
                created_at: st.clock.now(),
            };
            st.store.create_inbox(&i).await?;
            let agents: Vec<AgentId> = st
                .store
                .list_agents(st.workspace_id)
                .await?
                .iter()
                .filter(|a| a.role == Role::Agent)
                .map(|a| a.id)
                .collect();
            st.store.set_inbox_members(i.id, &agents).await?;
            st.access.reload(st.store.as_ref()).await?;
            i
        }
    };
    let setting = |k: &str| {
        inbox.settings[k]
            .as_str()
            .map(str::to_owned)
            .unwrap_or_default()
    };
    sandbox.add_page(PageSpec {
        id: DEMO_PAGE_ID.into(),
        object: Object::Page,
        token: setting("page_access_token"),
        app_secret: setting("app_secret"),
        webhook_url: format!("{url}/webhooks/meta"),
        echoes: true,
        private_reply_recipient_id: true,
        auto_delivery: true,
    });
    for (psid, commenter, first, last) in CUSTOMERS {
        sandbox.add_user(
            DEMO_PAGE_ID,
            UserSpec {
                id: (*psid).into(),
                first_name: (*first).into(),
                last_name: (*last).into(),
                profile_pic: None,
                commenter_id: Some((*commenter).into()),
            },
        );
    }
    let mut out = String::new();
    let _ = writeln!(
        out,
        "\nFacebook Page \"{}\" (inbox {}) is connected to a local Meta sandbox at {}.",
        inbox.name,
        inbox.id,
        sandbox.base_url()
    );
    let _ = writeln!(
        out,
        "Simulated customers DM and comment on a post every minute or so; reply, react to comments,\nand watch the 24-hour window in GET /api/v1/conversations/{{id}}/policy."
    );
    Ok((sandbox, out))
}

/// Plays the simulated customers: one DM and one comment right away, then a message now and then.
pub fn simulate(sandbox: Arc<Sandbox>) {
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_secs(2)).await;
        let (p0, _, _, _) = CUSTOMERS[0];
        let (p1, _, _, _) = CUSTOMERS[1];
        if let Err(e) = sandbox.customer_message(DEMO_PAGE_ID, p0, LINES[0]).await {
            tracing::warn!(error = %e, "demo: sandbox customer could not write");
        }
        let _ = sandbox
            .customer_comment(DEMO_PAGE_ID, p1, POST_ID, "Giá bộ này bao nhiêu vậy shop?")
            .await;
        let mut n: usize = 1;
        loop {
            tokio::time::sleep(Duration::from_secs(60)).await;
            let (psid, _, _, _) = CUSTOMERS[n % CUSTOMERS.len()];
            let line = LINES[n % LINES.len()];
            let _ = sandbox.customer_message(DEMO_PAGE_ID, psid, line).await;
            n += 1;
        }
    });
}
