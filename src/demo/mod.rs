//! `switchboard demo` and `switchboard user add`: a ready workspace for newcomers, and agents from
//! the command line. `meta` and `channels` connect the demo's provider inboxes to in-process
//! sandboxes and play their customers.

pub mod channels;
pub mod meta;

use anyhow::Context;
use std::fmt::Write;
use std::sync::Arc;
use switchboard_core::*;
use switchboard_server::app::agents::create_agent;
use switchboard_server::auth;
use switchboard_server::clock::Clock;
use switchboard_server::config::Config;
use switchboard_server::random::new_uuid;
use switchboard_server::state::AppState;
use switchboard_store::{Inbound, InboundSender};

pub async fn add_user(
    config: &Config,
    clock: Arc<dyn Clock>,
    email: &str,
    name: &str,
    role: &str,
    password: String,
) -> anyhow::Result<Agent> {
    let store = switchboard_server::open_store(config).await?;
    let ws = store.ensure_workspace("Switchboard", clock.now()).await?;
    create_agent(
        store.as_ref(),
        ws,
        clock.now(),
        email,
        name,
        role,
        None,
        password,
    )
    .await
    .map_err(|e| anyhow::anyhow!("{}: {}", e.code, e.message))
}

/// Seeds the demo workspace on first start and returns what to print.
pub async fn prepare(st: &AppState, url: &str) -> anyhow::Result<String> {
    let mut out = String::new();
    let data = st.config.data_dir.display();
    if !st.store.list_agents(st.workspace_id).await?.is_empty() {
        let _ = writeln!(out, "Switchboard demo at {url}  (data: {data})");
        let _ = writeln!(
            out,
            "The demo workspace exists already; its passwords were printed when it was created."
        );
        let _ = writeln!(out, "Start over with: cargo run --release -- demo --reset");
        return Ok(out);
    }
    let now = st.clock.now();
    let mut creds = Vec::new();
    let mut agents = Vec::new();
    for (email, name, role) in [
        ("admin@demo.switchboard.local", "Quản trị viên", "admin"),
        ("lan@demo.switchboard.local", "Lan Nguyễn", "agent"),
        ("minh@demo.switchboard.local", "Minh Trần", "agent"),
    ] {
        let password = auth::random_token(9);
        let agent = create_agent(
            st.store.as_ref(),
            st.workspace_id,
            now,
            email,
            name,
            role,
            Some(20),
            password.clone(),
        )
        .await
        .map_err(|e| anyhow::anyhow!("{}: {}", e.code, e.message))?;
        creds.push((email, role, password));
        agents.push(agent);
    }
    let settings = serde_json::json!({
        "identity_secret": auth::random_token(24),
        "require_identity": false,
        "greeting": "Xin chào! Shop có thể giúp gì cho bạn? / Hi! How can we help?",
        "prechat_fields": ["name"],
    });
    let inbox = Inbox {
        id: InboxId(new_uuid()),
        workspace_id: st.workspace_id,
        name: "Website chat".into(),
        channel: ChannelKind::Livechat,
        settings,
        created_at: now,
    };
    st.store.create_inbox(&inbox).await?;
    let members: Vec<AgentId> = agents
        .iter()
        .filter(|a| a.role == Role::Agent)
        .map(|a| a.id)
        .collect();
    st.store.set_inbox_members(inbox.id, &members).await?;
    st.access.reload(st.store.as_ref()).await?;
    for (code, text) in [
        ("hello", "Xin chào anh/chị! Em có thể giúp gì ạ?"),
        (
            "ship",
            "Shop giao hàng toàn quốc trong 2–4 ngày, miễn phí cho đơn từ 300.000đ.",
        ),
        (
            "thanks",
            "Cảm ơn anh/chị đã liên hệ. Chúc anh/chị một ngày vui vẻ!",
        ),
    ] {
        let qr = QuickReply {
            id: QuickReplyId(new_uuid()),
            workspace_id: st.workspace_id,
            code: code.into(),
            text: text.into(),
            media: Vec::new(),
        };
        st.store.save_quick_reply(&qr, now, true).await?;
    }
    // A first visitor, so the Unassigned list is not empty.
    let contact = Contact {
        id: ContactId(new_uuid()),
        workspace_id: st.workspace_id,
        name: Some("Khách Hà".into()),
        phone: None,
        email: None,
        notes: None,
        created_at: now,
        updated_at: now,
    };
    let contact = st
        .store
        .upsert_contact_identity(&contact, inbox.id, "visitor:demo-1")
        .await?;
    st.ingest
        .submit(Inbound {
            workspace_id: st.workspace_id,
            inbox_id: inbox.id,
            sender: InboundSender::Contact(contact.id),
            provider_message_id: "demo-1".into(),
            kind: MessageKind::Text,
            text: "Chào shop, áo sơ mi trắng còn size M không ạ?".into(),
            sent_at: now,
            message_id: MessageId(new_uuid()),
            new_conversation_id: ConversationId(new_uuid()),
            new_contact_id: contact.id,
        })
        .await
        .context("seeding the first conversation")?;
    flows(st, now).await.context("seeding the demo flows")?;

    let _ = writeln!(
        out,
        "Switchboard demo is running at {url}  (data: {data})\n"
    );
    let _ = writeln!(
        out,
        "Sign in with (shown only now; start over with `demo --reset`):"
    );
    for (email, role, password) in &creds {
        let _ = writeln!(out, "  {role:<6} {email:<32} {password}");
    }
    let _ = writeln!(
        out,
        "\nTry the chat as a customer: {url}/widget-preview?inbox={}\nLive-chat inbox \"{}\" (id {}). Put this on your site:",
        inbox.id, inbox.name, inbox.id
    );
    let _ = writeln!(
        out,
        "  <script src=\"{url}/widget.js\" data-inbox=\"{}\" async></script>",
        inbox.id
    );
    let _ = writeln!(out, "\nTry the API:");
    let _ = writeln!(
        out,
        "  curl -s {url}/api/v1/auth/login -H 'content-type: application/json' \\"
    );
    let _ = writeln!(
        out,
        "       -d '{{\"email\":\"{}\",\"password\":\"{}\"}}'",
        creds[1].0, creds[1].2
    );
    let _ = writeln!(
        out,
        "  curl -s {url}/api/v1/conversations -H 'authorization: Bearer TOKEN'"
    );
    Ok(out)
}

/// The demo's automation, none of it starting by itself (the tour's first customer waits for an
/// agent): an FAQ, a FAQ bot to switch on, and a reminder to start from a conversation or schedule.
async fn flows(st: &AppState, now: switchboard_core::Timestamp) -> anyhow::Result<()> {
    use switchboard_core::flow::{FaqList, Flow};
    let faq: FaqList = serde_json::from_value(serde_json::json!({"entries": [
        {"phrasings": ["giá bao nhiêu", "bao nhiêu tiền", "giá áo"], "answer": "Dạ áo sơ mi 349.000đ, áo thun 199.000đ ạ."},
        {"phrasings": ["ship mấy ngày", "giao hàng bao lâu", "phí ship"], "answer": "Dạ shop giao 2–4 ngày, miễn phí từ 300.000đ ạ."},
        {"phrasings": ["đổi trả", "đổi size"], "answer": "Dạ shop đổi size trong 7 ngày nếu còn tem mác ạ."}
    ]}))?;
    st.store
        .save_faq(
            st.workspace_id,
            &switchboard_store::FaqSettings {
                faq,
                handoff_phrases: None,
                updated_at: now,
            },
        )
        .await?;
    let bot = serde_json::json!({
        "name": "Trả lời câu hỏi (FAQ)", "version": 1,
        "triggers": [{"type": "new_conversation"}, {"type": "agent_start"}],
        "start": "hi",
        "steps": [
            {"id": "hi", "do": {"type": "send_message", "variants": [{"text": "Chào {{contact.name | anh/chị}} ạ! Anh/chị cần hỏi gì ạ?"}], "next": "faq"}},
            {"id": "faq", "do": {"type": "faq_bot", "fallback": "Dạ câu này em chưa rõ, anh/chị nhắn \"gặp nhân viên\" để được tư vấn nhé.", "max_misses": 2}}
        ]
    });
    let remind = serde_json::json!({
        "name": "Nhắc khách quay lại", "version": 1,
        "triggers": [{"type": "scheduled_due"}, {"type": "agent_start"}],
        "start": "ask",
        "steps": [
            {"id": "ask", "do": {"type": "ask", "question": {"text": "Anh/chị còn quan tâm mẫu áo hôm trước không ạ?"},
                "answer": {"type": "choice", "choices": [{"title": "Còn ạ", "value": "yes", "next": "human"}, {"title": "Không ạ", "value": "no"}]},
                "save_to": "interested"}},
            {"id": "human", "do": {"type": "handoff", "note": "Khách còn quan tâm mẫu áo"}}
        ]
    });
    for (flow, active) in [(bot, false), (remind, true)] {
        let flow = Flow::import(&flow.to_string()).map_err(|e| anyhow::anyhow!("{e:?}"))?;
        st.store
            .create_flow(st.workspace_id, FlowId(new_uuid()), &flow, active, now)
            .await?;
    }
    Ok(())
}
