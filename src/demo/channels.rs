//! The demo's WhatsApp number and Zalo Official Account: an in-process channel sandbox connected to
//! a `whatsapp` and a `zalo` inbox, with templates and a few simulated customers who write now and
//! then, so a newcomer sees the 24 h window, the template picker, Zalo's free-reply count and
//! delivery ticks without a Meta or Zalo account.

use std::fmt::Write;
use std::sync::Arc;
use std::time::Duration;
use switchboard_core::*;
use switchboard_sandbox::channels::{ChannelSandbox, WaNumberSpec, ZaloOaSpec};
use switchboard_server::auth;
use switchboard_server::random::new_uuid;
use switchboard_server::state::AppState;

pub const DEMO_PHONE_NUMBER_ID: &str = "100000000000101";
pub const DEMO_WABA_ID: &str = "100000000000100";
pub const DEMO_OA_ID: &str = "100000000000201";
const DEMO_ZALO_APP_ID: &str = "100000000000200";

const WA_CUSTOMERS: &[(&str, &str)] = &[("84901000001", "Thu Trần"), ("84901000002", "Bảo Lê")];
const ZALO_USERS: &[&str] = &["6000000000000001", "6000000000000002"];

const WA_LINES: &[&str] = &[
    "Shop ơi, đơn hàng #1024 của mình giao chưa ạ?",
    "Mình muốn đổi size áo sang L được không?",
    "Cho mình xin số tài khoản để chuyển khoản nhé",
];
const ZALO_LINES: &[&str] = &[
    "Chào shop, son màu 03 còn hàng không?",
    "Shop có giao COD không ạ?",
    "Mình đặt 2 hộp thì có giảm giá không?",
];

fn templates() -> Vec<serde_json::Value> {
    vec![
        serde_json::json!({"name": "cap_nhat_don_hang", "language": "vi", "status": "APPROVED", "category": "UTILITY",
            "components": [{"type": "BODY", "text": "Chào {{1}}, đơn hàng {{2}} của bạn đã được giao cho đơn vị vận chuyển."}]}),
        serde_json::json!({"name": "khuyen_mai_cuoi_tuan", "language": "vi", "status": "APPROVED", "category": "MARKETING",
            "components": [{"type": "HEADER", "format": "TEXT", "text": "Ưu đãi {{1}}"},
                          {"type": "BODY", "text": "Giảm {{1}} cho mọi đơn cuối tuần này. Hẹn gặp {{2}}!"},
                          {"type": "FOOTER", "text": "Trả lời STOP để ngừng nhận tin"}]}),
        serde_json::json!({"name": "ma_xac_thuc", "language": "vi", "status": "APPROVED", "category": "AUTHENTICATION",
            "components": [{"type": "BODY", "text": "Mã xác thực của bạn là {{1}}."}]}),
        serde_json::json!({"name": "order_update", "language": "en_US", "status": "APPROVED", "category": "UTILITY",
            "components": [{"type": "BODY", "text": "Hi {{1}}, your order {{2}} has shipped."}]}),
    ]
}

/// Finds the demo inbox of `channel` by its account, or creates it; either way points it at the
/// sandbox (it listens on a new port each run) and gives it the agents.
async fn inbox(
    st: &AppState,
    channel: ChannelKind,
    account: &str,
    name: &str,
    fresh: serde_json::Value,
    base: &[(&str, String)],
) -> anyhow::Result<Inbox> {
    let mut inbox = match st.store.inbox_for_account(channel, account).await? {
        Some(i) => i,
        None => {
            let i = Inbox {
                id: InboxId(new_uuid()),
                workspace_id: st.workspace_id,
                name: name.into(),
                channel,
                settings: fresh,
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
    if let Some(o) = inbox.settings.as_object_mut() {
        for (k, v) in base {
            o.insert((*k).into(), serde_json::json!(v));
        }
    }
    st.store.update_inbox(&inbox).await?;
    Ok(inbox)
}

fn s(i: &Inbox, k: &str) -> String {
    i.settings[k].as_str().unwrap_or_default().to_owned()
}

/// Starts the sandbox and connects the demo's WhatsApp number and Zalo OA to it. Keep the
/// returned sandbox alive as long as the server runs.
pub async fn start(st: &AppState, url: &str) -> anyhow::Result<(ChannelSandbox, String)> {
    let sandbox = ChannelSandbox::start(st.clock.clone(), "127.0.0.1:0".parse()?).await?;
    let wa = inbox(
        st,
        ChannelKind::Whatsapp,
        DEMO_PHONE_NUMBER_ID,
        "WhatsApp (sandbox)",
        serde_json::json!({
            "phone_number_id": DEMO_PHONE_NUMBER_ID, "waba_id": DEMO_WABA_ID,
            "access_token": auth::random_token(24), "app_secret": auth::random_token(24),
            "verify_token": auth::random_token(12),
        }),
        &[("api_base_url", sandbox.whatsapp_base_url())],
    )
    .await?;
    sandbox.add_whatsapp_number(WaNumberSpec {
        phone_number_id: DEMO_PHONE_NUMBER_ID.into(),
        waba_id: DEMO_WABA_ID.into(),
        display_phone_number: "84280000101".into(),
        token: s(&wa, "access_token"),
        app_secret: s(&wa, "app_secret"),
        webhook_url: format!("{url}/webhooks/whatsapp"),
        auto_delivery: true,
        sync_window_errors: false,
    });
    for t in templates() {
        sandbox.add_whatsapp_template(DEMO_WABA_ID, t);
    }
    if let Err(e) = st.providers.sync_templates(&wa).await {
        tracing::warn!(error = %e.message, "demo: template sync failed");
    }
    let zalo = inbox(
        st,
        ChannelKind::Zalo,
        DEMO_OA_ID,
        "Zalo OA (sandbox)",
        serde_json::json!({
            "oa_id": DEMO_OA_ID, "app_id": DEMO_ZALO_APP_ID, "app_secret": auth::random_token(24),
            "oa_secret_key": auth::random_token(24), "access_token": auth::random_token(24),
            "refresh_token": auth::random_token(24),
        }),
        &[
            ("api_base_url", sandbox.base_url()),
            ("oauth_base_url", sandbox.base_url()),
        ],
    )
    .await?;
    // The tokens rotate on refresh and are stored: the sandbox starts from the stored ones.
    sandbox.add_zalo_oa(ZaloOaSpec {
        oa_id: DEMO_OA_ID.into(),
        app_id: DEMO_ZALO_APP_ID.into(),
        app_secret: s(&zalo, "app_secret"),
        oa_secret_key: s(&zalo, "oa_secret_key"),
        access_token: s(&zalo, "access_token"),
        refresh_token: s(&zalo, "refresh_token"),
        webhook_url: format!("{url}/webhooks/zalo"),
        echoes: true,
    });
    let mut out = String::new();
    let _ = writeln!(
        out,
        "WhatsApp number \"{}\" (inbox {}) and Zalo OA \"{}\" (inbox {}) are connected to a local channel\nsandbox at {}. Simulated customers write every minute or so: watch the 24-hour window and the\ntemplate picker (GET /api/v1/inboxes/{}/templates), Zalo's free replies (GET /api/v1/conversations/{{id}}/policy)\nand the month's usage (GET /api/v1/reports/whatsapp-usage; prices come from [billing] in the config).",
        wa.name,
        wa.id,
        zalo.name,
        zalo.id,
        sandbox.base_url(),
        wa.id
    );
    Ok((sandbox, out))
}

/// Plays the simulated customers: one WhatsApp and one Zalo message right away, then now and then.
pub fn simulate(sandbox: Arc<ChannelSandbox>) {
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_secs(3)).await;
        let mut n: usize = 0;
        loop {
            let (wa_id, name) = WA_CUSTOMERS[n % WA_CUSTOMERS.len()];
            let text = WA_LINES[n % WA_LINES.len()];
            if let Err(e) = sandbox
                .whatsapp_customer(
                    DEMO_PHONE_NUMBER_ID,
                    Some(wa_id),
                    None,
                    name,
                    serde_json::json!({"type": "text", "text": {"body": text}}),
                )
                .await
            {
                tracing::warn!(error = %e, "demo: sandbox WhatsApp customer could not write");
            }
            let user = ZALO_USERS[n % ZALO_USERS.len()];
            if let Err(e) = sandbox
                .zalo_user_text(DEMO_OA_ID, user, ZALO_LINES[n % ZALO_LINES.len()])
                .await
            {
                tracing::warn!(error = %e, "demo: sandbox Zalo user could not write");
            }
            n += 1;
            tokio::time::sleep(Duration::from_secs(75)).await;
        }
    });
}
