//! The HTTP surface: `/api/v1` (agents), `/widget/v1` (website visitors), health, OpenAPI.

pub mod agents;
pub mod auth;
pub mod channel_actions;
pub mod comment_rules;
pub mod contacts;
pub mod conversations;
pub mod files;
pub mod flows;
pub mod inboxes;
pub mod library;
pub mod media;
pub mod provider_send;
pub mod push;
pub mod quick_replies;
pub mod reports;
pub mod routing;
pub mod schemas;
pub mod static_files;
pub mod webhooks;
pub mod widget;
pub mod ws;

use crate::error::{ApiError, ApiJson};
use crate::state::AppState;
use axum::Router;
use axum::extract::{DefaultBodyLimit, Request};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, patch, post, put};

// What the route files share lives outside `routes/` (no route file imports another, and none
// imports the router); these re-exports serve the files not yet switched and must go with them.
pub use crate::random::new_uuid;
/// Every route: (method, path, summary). The OpenAPI document is generated from this table and a
/// test checks that the router serves each entry.
pub const ROUTES: &[(&str, &str, &str)] = &[
    (
        "post",
        "/api/v1/auth/login",
        "Sign in with email and password; returns a bearer token and sets a session cookie",
    ),
    ("post", "/api/v1/auth/logout", "End this session"),
    (
        "get",
        "/api/v1/me",
        "The signed-in agent, with the inboxes they can see",
    ),
    ("get", "/api/v1/agents", "List agents"),
    ("post", "/api/v1/agents", "Create an agent (admin)"),
    ("patch", "/api/v1/agents/{id}", "Change an agent (admin)"),
    ("get", "/api/v1/inboxes", "List the inboxes you can see"),
    ("post", "/api/v1/inboxes", "Create an inbox (admin)"),
    ("get", "/api/v1/inboxes/{id}", "One inbox"),
    ("patch", "/api/v1/inboxes/{id}", "Change an inbox (admin)"),
    ("get", "/api/v1/inboxes/{id}/members", "An inbox's members"),
    (
        "post",
        "/api/v1/inboxes/{id}/check",
        "Test an inbox's connection through its provider (admin): ok, the account's name, or why not",
    ),
    (
        "put",
        "/api/v1/inboxes/{id}/members",
        "Set an inbox's members (admin)",
    ),
    (
        "get",
        "/api/v1/inboxes/{id}/routing",
        "An inbox's routing rules: strategy, eligible agents, reply SLA, auto-close, business hours",
    ),
    (
        "put",
        "/api/v1/inboxes/{id}/routing",
        "Replace an inbox's routing rules (admin)",
    ),
    (
        "get",
        "/api/v1/me/presence",
        "Your presence: online, away or offline",
    ),
    ("put", "/api/v1/me/presence", "Choose away or online"),
    (
        "get",
        "/api/v1/push/key",
        "The server's Web Push (VAPID) public key, for PushManager.subscribe",
    ),
    (
        "post",
        "/api/v1/me/push-subscriptions",
        "Save this browser's Web Push subscription (PushSubscription.toJSON()) for you",
    ),
    (
        "delete",
        "/api/v1/me/push-subscriptions",
        "Forget one of your Web Push subscriptions (?endpoint=)",
    ),
    (
        "get",
        "/api/v1/me/notification-preferences",
        "What you are notified of (sound; assigned, transferred, waiting, answered), on every device",
    ),
    (
        "put",
        "/api/v1/me/notification-preferences",
        "Choose what you are notified of, in the app, in the browser and by Web Push",
    ),
    (
        "get",
        "/api/v1/conversations",
        "List conversations: status, inbox_id, assignee (me|unassigned|id), tag, q, contact_id, cursor, limit",
    ),
    ("get", "/api/v1/conversations/{id}", "One conversation"),
    (
        "get",
        "/api/v1/conversations/{id}/messages",
        "The thread, newest page first (before=cursor)",
    ),
    (
        "post",
        "/api/v1/conversations/{id}/messages",
        "Send a reply, an internal note or an agent-to-agent message",
    ),
    (
        "post",
        "/api/v1/conversations/{id}/claim",
        "Take a conversation from the pool",
    ),
    (
        "post",
        "/api/v1/conversations/{id}/assign",
        "Assign to an agent (supervisor/admin)",
    ),
    (
        "post",
        "/api/v1/conversations/{id}/transfer",
        "Hand over to another agent with a message",
    ),
    (
        "post",
        "/api/v1/conversations/{id}/participants",
        "Invite another agent",
    ),
    (
        "delete",
        "/api/v1/conversations/{id}/participants/me",
        "Leave a conversation you were invited to",
    ),
    (
        "post",
        "/api/v1/conversations/{id}/resolve",
        "End the consultation",
    ),
    (
        "post",
        "/api/v1/conversations/{id}/reopen",
        "Reopen a resolved conversation",
    ),
    (
        "post",
        "/api/v1/conversations/{id}/tags",
        "Add a tag (created if new)",
    ),
    ("delete", "/api/v1/conversations/{id}/tags", "Remove a tag"),
    (
        "get",
        "/api/v1/conversations/{id}/history",
        "The action log",
    ),
    (
        "get",
        "/api/v1/conversations/{id}/timers",
        "Pending timers (reply SLA, auto-close, offline release) with their due times",
    ),
    ("post", "/api/v1/conversations/{id}/read", "Mark as read"),
    (
        "post",
        "/api/v1/conversations/{id}/typing",
        "Tell the customer and colleagues you are typing",
    ),
    (
        "get",
        "/api/v1/conversations/{id}/policy",
        "The messaging window now: mode, window_ends_at, human_agent_until, allowed, reason",
    ),
    (
        "post",
        "/api/v1/conversations/{id}/whatsapp-messages",
        "WhatsApp: send a template (parameters checked first), an interactive message or media by link",
    ),
    (
        "get",
        "/api/v1/inboxes/{id}/templates",
        "WhatsApp templates of an inbox: name, language, category, status, parameters to fill",
    ),
    (
        "post",
        "/api/v1/inboxes/{id}/templates/sync",
        "Fetch an inbox's WhatsApp templates from the provider again (admin)",
    ),
    (
        "get",
        "/api/v1/reports/whatsapp-usage",
        "WhatsApp conversations/messages and cost per category for month=YYYY-MM (inbox_id= optional)",
    ),
    (
        "post",
        "/api/v1/messages/{id}/comment-actions",
        "Act on a customer's comment: reply, private_reply, like, unlike, hide, unhide, delete",
    ),
    (
        "post",
        "/api/v1/contacts/{id}/merge",
        "Merge this contact into another (undoable)",
    ),
    (
        "get",
        "/api/v1/contacts/{id}/merges",
        "Merges this contact took part in",
    ),
    (
        "post",
        "/api/v1/contact-merges/{id}/undo",
        "Undo a contact merge",
    ),
    (
        "get",
        "/api/v1/contacts/{id}",
        "A contact with its channel identities",
    ),
    (
        "patch",
        "/api/v1/contacts/{id}",
        "Edit name, phone, email, notes",
    ),
    (
        "get",
        "/api/v1/contacts/{id}/avatar",
        "The customer's picture (our copy of the channel's)",
    ),
    (
        "post",
        "/api/v1/contacts/{id}/sync-profile",
        "Sync name and picture from the channel now (replaces a typed name)",
    ),
    ("get", "/api/v1/tags", "All tags"),
    ("post", "/api/v1/tags", "Create a tag (supervisor/admin)"),
    (
        "delete",
        "/api/v1/tags/{id}",
        "Delete a tag everywhere (supervisor/admin)",
    ),
    (
        "post",
        "/api/v1/conversations/{id}/attachments",
        "Send a file (raw body; filename= and caption= in the query)",
    ),
    (
        "get",
        "/api/v1/conversations/{id}/attachments",
        "The conversation's files, newest first",
    ),
    ("get", "/api/v1/media/{id}", "Download a file"),
    (
        "get",
        "/api/v1/media/{id}/thumbnail",
        "A customer's picture (or video) as a small JPEG of ours",
    ),
    (
        "post",
        "/api/v1/attachments/{id}/retry",
        "Download a customer's file whose download failed again",
    ),
    (
        "get",
        "/api/v1/library",
        "The saved-media library, newest first (q= searches names, tags and file names)",
    ),
    (
        "post",
        "/api/v1/library",
        "Add a file to the library (raw body; filename=, name=, tags=a,b) (supervisors)",
    ),
    (
        "patch",
        "/api/v1/library/{id}",
        "Rename or retag a library file (supervisors)",
    ),
    (
        "delete",
        "/api/v1/library/{id}",
        "Remove a file from the library (supervisors)",
    ),
    ("get", "/api/v1/library/{id}/file", "A library file's bytes"),
    (
        "post",
        "/api/v1/conversations/{id}/attachments/library",
        "Send a library file to the customer ({library_id, caption?})",
    ),
    (
        "get",
        "/api/v1/quick-replies",
        "Quick replies (prefix= filters by code)",
    ),
    (
        "post",
        "/api/v1/quick-replies",
        "Create a quick reply (supervisor/admin)",
    ),
    (
        "patch",
        "/api/v1/quick-replies/{id}",
        "Change a quick reply (supervisor/admin)",
    ),
    (
        "delete",
        "/api/v1/quick-replies/{id}",
        "Delete a quick reply (supervisor/admin)",
    ),
    (
        "get",
        "/api/v1/ws",
        "WebSocket of realtime events (token= or cookie; since= to catch up)",
    ),
    ("get", "/api/v1/flows", "Automation flows"),
    ("post", "/api/v1/flows", "Create a flow (supervisor/admin)"),
    (
        "post",
        "/api/v1/flows/check",
        "Check a flow without saving it: every problem with its path",
    ),
    (
        "get",
        "/api/v1/flows/{id}",
        "One flow at its current version",
    ),
    (
        "put",
        "/api/v1/flows/{id}",
        "Save a new version of a flow (supervisor/admin; version = the one edited)",
    ),
    (
        "delete",
        "/api/v1/flows/{id}",
        "Delete a flow (supervisor/admin)",
    ),
    (
        "get",
        "/api/v1/automation/signing-secret",
        "The secret flows' HTTP steps are signed with (admin)",
    ),
    ("get", "/api/v1/faq", "The FAQ and handoff phrases"),
    (
        "put",
        "/api/v1/faq",
        "Save the FAQ and handoff phrases (supervisor/admin)",
    ),
    (
        "get",
        "/api/v1/conversations/{id}/automation",
        "The conversation's auto-reply switch, flow runs and captured fields",
    ),
    (
        "put",
        "/api/v1/conversations/{id}/auto-reply",
        "Turn the bot off (or on) for this conversation",
    ),
    (
        "post",
        "/api/v1/conversations/{id}/take-over",
        "Take the conversation from the bot (the flow stops)",
    ),
    (
        "post",
        "/api/v1/conversations/{id}/flows",
        "Start a flow in the conversation",
    ),
    (
        "get",
        "/api/v1/contacts/{id}/scheduled-flows",
        "The customer's scheduled flows",
    ),
    (
        "post",
        "/api/v1/contacts/{id}/scheduled-flows",
        "Attach a scheduled flow (answers whether the window allows it at that time)",
    ),
    (
        "post",
        "/api/v1/scheduled-flows/{id}/send-now",
        "Run a scheduled flow now",
    ),
    (
        "post",
        "/api/v1/scheduled-flows/{id}/cancel",
        "Cancel a scheduled flow",
    ),
    (
        "get",
        "/api/v1/inboxes/{id}/comment-rules",
        "A Page's (Instagram account's) comment rules and its posts' overrides",
    ),
    (
        "put",
        "/api/v1/inboxes/{id}/comment-rules",
        "Save the Page's comment rules (supervisors)",
    ),
    (
        "get",
        "/api/v1/inboxes/{id}/posts",
        "Recent posts with comment counters (hidden, replied, privately replied) and overrides",
    ),
    (
        "put",
        "/api/v1/inboxes/{id}/posts/{post_id}/comment-rules",
        "Save a post's own rules: replace or extend the Page's (supervisors)",
    ),
    (
        "delete",
        "/api/v1/inboxes/{id}/posts/{post_id}/comment-rules",
        "Remove a post's own rules (supervisors)",
    ),
    (
        "get",
        "/api/v1/messages/{id}/rule-actions",
        "What comment rules did (or will do) to a comment",
    ),
    ("get", "/api/v1/openapi.json", "This document"),
    (
        "post",
        "/widget/v1/sessions",
        "Start a visitor session; returns a visitor token",
    ),
    (
        "get",
        "/widget/v1/messages",
        "The visitor's thread (public messages only)",
    ),
    ("post", "/widget/v1/messages", "The visitor writes"),
    (
        "post",
        "/widget/v1/attachments",
        "The visitor sends a file (raw body; filename=, client_message_id=): pictures, video, sound, PDF",
    ),
    (
        "get",
        "/widget/v1/ws",
        "WebSocket of replies and typing for the visitor (token=)",
    ),
    (
        "get",
        "/webhooks/meta",
        "Meta webhook verification (hub.mode, hub.verify_token, hub.challenge)",
    ),
    (
        "post",
        "/webhooks/meta",
        "Meta webhooks (Messenger, Page feed comments, Instagram), signed with X-Hub-Signature-256",
    ),
    (
        "get",
        "/webhooks/whatsapp",
        "WhatsApp webhook verification (hub.mode, hub.verify_token, hub.challenge)",
    ),
    (
        "post",
        "/webhooks/whatsapp",
        "WhatsApp Cloud API webhooks (messages, statuses, templates), signed with X-Hub-Signature-256",
    ),
    (
        "post",
        "/webhooks/zalo",
        "Zalo OA webhooks, signed with X-ZEvent-Signature",
    ),
    (
        "post",
        "/webhooks/telegram/{id}",
        "Telegram bot updates of one inbox, with X-Telegram-Bot-Api-Secret-Token",
    ),
    (
        "post",
        "/webhooks/shopee",
        "Shopee Open Platform pushes, signed with Authorization",
    ),
    ("get", "/healthz", "Liveness"),
    ("get", "/widget.js", "The live-chat widget script"),
    (
        "get",
        "/widget-preview",
        "A page with the widget of ?inbox=ID, to try it",
    ),
];

pub fn router(st: AppState) -> Router {
    use conversations as c;
    let api = Router::new()
        .route("/auth/login", post(auth::login))
        .route("/auth/logout", post(auth::logout))
        .route("/me", get(auth::me))
        .route("/agents", get(agents::list).post(agents::create))
        .route("/agents/{id}", patch(agents::update))
        .route("/inboxes", get(inboxes::list).post(inboxes::create))
        .route("/inboxes/{id}", get(inboxes::get).patch(inboxes::update))
        .route(
            "/inboxes/{id}/members",
            get(inboxes::members).put(inboxes::set_members),
        )
        .route("/inboxes/{id}/check", post(inboxes::check))
        .route("/inboxes/{id}/routing", get(routing::get).put(routing::put))
        .route(
            "/me/presence",
            get(routing::my_presence).put(routing::set_presence),
        )
        .route("/push/key", get(push::key))
        .route(
            "/me/push-subscriptions",
            post(push::subscribe).delete(push::unsubscribe),
        )
        .route(
            "/me/notification-preferences",
            get(push::preferences).put(push::set_preferences),
        )
        .route("/conversations", get(c::list))
        .route("/conversations/{id}", get(c::get))
        .route(
            "/conversations/{id}/messages",
            get(c::messages).post(c::post_message),
        )
        .route("/conversations/{id}/claim", post(c::claim))
        .route("/conversations/{id}/assign", post(c::assign))
        .route("/conversations/{id}/transfer", post(c::transfer))
        .route("/conversations/{id}/participants", post(c::add_participant))
        .route("/conversations/{id}/participants/me", delete(c::leave))
        .route("/conversations/{id}/resolve", post(c::resolve))
        .route("/conversations/{id}/reopen", post(c::reopen))
        .route(
            "/conversations/{id}/tags",
            post(c::add_tag).delete(c::remove_tag),
        )
        .route("/conversations/{id}/history", get(c::history))
        .route("/conversations/{id}/timers", get(routing::timers))
        .route("/conversations/{id}/read", post(c::mark_read))
        .route("/conversations/{id}/typing", post(c::typing))
        .route(
            "/conversations/{id}/policy",
            get(channel_actions::get_policy),
        )
        .route(
            "/messages/{id}/comment-actions",
            post(channel_actions::comment_action),
        )
        .route(
            "/conversations/{id}/whatsapp-messages",
            post(provider_send::whatsapp_message),
        )
        .route(
            "/inboxes/{id}/templates",
            get(provider_send::list_templates),
        )
        .route(
            "/inboxes/{id}/templates/sync",
            post(provider_send::sync_templates),
        )
        .route("/reports/whatsapp-usage", get(reports::whatsapp_usage))
        .route("/contacts/{id}/merge", post(channel_actions::merge))
        .route("/contacts/{id}/merges", get(channel_actions::merges))
        .route(
            "/contact-merges/{id}/undo",
            post(channel_actions::undo_merge),
        )
        .route("/contacts/{id}", get(contacts::get).patch(contacts::update))
        .route("/contacts/{id}/avatar", get(contacts::avatar))
        .route("/contacts/{id}/sync-profile", post(contacts::sync_profile))
        .route(
            "/tags",
            get(quick_replies::tags).post(quick_replies::create_tag),
        )
        .route("/tags/{id}", delete(quick_replies::delete_tag))
        .route(
            "/conversations/{id}/attachments",
            post(media::upload)
                .layer(DefaultBodyLimit::max(st.config.limits.max_upload_bytes))
                .get(media::gallery),
        )
        .route(
            "/conversations/{id}/attachments/library",
            post(library::send),
        )
        .route(
            "/library",
            get(library::list)
                .post(library::add)
                .layer(DefaultBodyLimit::max(st.config.limits.max_upload_bytes)),
        )
        .route(
            "/library/{id}",
            patch(library::update).delete(library::remove),
        )
        .route("/library/{id}/file", get(library::file))
        .route("/media/{id}", get(media::download))
        .route("/media/{id}/thumbnail", get(files::thumbnail))
        .route("/attachments/{id}/retry", post(files::retry))
        .route(
            "/quick-replies",
            get(quick_replies::list).post(quick_replies::create),
        )
        .route(
            "/quick-replies/{id}",
            patch(quick_replies::update).delete(quick_replies::delete),
        )
        .route(
            "/inboxes/{id}/comment-rules",
            get(comment_rules::get).put(comment_rules::save),
        )
        .route("/inboxes/{id}/posts", get(comment_rules::posts))
        .route(
            "/inboxes/{id}/posts/{post_id}/comment-rules",
            put(comment_rules::save_post).delete(comment_rules::delete_post),
        )
        .route(
            "/messages/{id}/rule-actions",
            get(comment_rules::of_comment),
        )
        .route("/flows", get(flows::list).post(flows::create))
        .route("/flows/check", post(flows::check))
        .route("/flows/simulate", post(flows::simulate))
        .route("/flows/{id}/dry-run", post(flows::dry_run))
        .route(
            "/flows/{id}",
            get(flows::get).put(flows::update).delete(flows::delete),
        )
        .route("/faq", get(flows::faq).put(flows::save_faq))
        .route("/automation/signing-secret", get(flows::signing_secret))
        .route("/conversations/{id}/automation", get(flows::automation))
        .route("/conversations/{id}/auto-reply", put(flows::auto_reply))
        .route("/conversations/{id}/take-over", post(flows::take_over))
        .route("/conversations/{id}/flows", post(flows::start))
        .route(
            "/contacts/{id}/scheduled-flows",
            get(flows::scheduled).post(flows::schedule),
        )
        .route("/scheduled-flows/{id}/send-now", post(flows::send_now))
        .route("/scheduled-flows/{id}/cancel", post(flows::cancel))
        .route("/ws", get(ws::agent_ws))
        .route("/openapi.json", get(openapi))
        .fallback(no_route)
        .method_not_allowed_fallback(wrong_method);
    let widget = Router::new()
        .route("/sessions", post(widget::create_session))
        .route(
            "/messages",
            get(widget::list_messages).post(widget::post_message),
        )
        .route("/ws", get(widget::visitor_ws))
        .route("/inboxes/{id}", get(widget::inbox_config))
        .route("/media/{id}", get(media::visitor_download))
        .route(
            "/attachments",
            post(widget::upload).layer(DefaultBodyLimit::max(st.config.limits.max_upload_bytes)),
        )
        .fallback(no_route)
        .method_not_allowed_fallback(wrong_method)
        .layer(middleware::from_fn(widget_cors));
    let webhooks = webhooks::router()
        .layer(DefaultBodyLimit::max(st.config.webhooks.max_body_bytes))
        .fallback(no_route)
        .method_not_allowed_fallback(wrong_method);
    Router::new()
        .nest("/api/v1", api)
        .nest("/webhooks", webhooks)
        .nest("/widget/v1", widget)
        .route(
            "/healthz",
            get(|| async { ApiJson(serde_json::json!({"status": "ok"})) }),
        )
        .route("/widget.js", get(static_files::widget_js))
        .route("/widget-preview", get(static_files::widget_preview))
        // Signed, expiring links providers fetch the files we send from (no session).
        .route("/media/s/{id}", get(media::signed_download))
        .fallback(static_files::app)
        .method_not_allowed_fallback(wrong_method)
        .layer(DefaultBodyLimit::max(st.config.limits.max_body_bytes))
        .layer(middleware::from_fn_with_state(
            std::sync::Arc::new(st.config.http.clone()),
            crate::http::limits,
        ))
        .with_state(st)
}

async fn no_route() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "no_route", "no such endpoint")
}

async fn wrong_method() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "this endpoint does not take that method",
    )
}

/// The widget runs on customers' own sites: allow any origin, without cookies (it uses a bearer token).
async fn widget_cors(req: Request, next: Next) -> Response {
    let preflight = req.method() == Method::OPTIONS;
    let mut resp = if preflight {
        StatusCode::NO_CONTENT.into_response()
    } else {
        next.run(req).await
    };
    let h = resp.headers_mut();
    h.insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        HeaderValue::from_static("*"),
    );
    if preflight {
        h.insert(
            header::ACCESS_CONTROL_ALLOW_METHODS,
            HeaderValue::from_static("GET, POST, OPTIONS"),
        );
        h.insert(
            header::ACCESS_CONTROL_ALLOW_HEADERS,
            HeaderValue::from_static("authorization, content-type"),
        );
        h.insert(
            header::ACCESS_CONTROL_MAX_AGE,
            HeaderValue::from_static("86400"),
        );
    }
    resp
}

pub fn openapi_document() -> serde_json::Value {
    let mut paths = serde_json::Map::new();
    for (method, path, summary) in ROUTES {
        let error = serde_json::json!({"$ref": "#/components/responses/Error"});
        let mut op = serde_json::json!({
            "summary": summary,
            "responses": {"200": {"description": "OK"}, "4XX": error.clone(), "5XX": error},
        });
        let mut parameters = Vec::new();
        if path.contains("{id}") {
            parameters.push(serde_json::json!({"name": "id", "in": "path", "required": true, "schema": {"type": "string", "format": "uuid"}}));
        }
        if path.contains("{post_id}") {
            parameters.push(serde_json::json!({"name": "post_id", "in": "path", "required": true, "schema": {"type": "string", "maxLength": 128, "pattern": "^[A-Za-z0-9_-]+$"}}));
        }
        let extra = schemas::request(method, path);
        if let Some(q) = extra["parameters"].as_array() {
            parameters.extend(q.iter().cloned());
        }
        if !parameters.is_empty() {
            op["parameters"] = serde_json::Value::Array(parameters);
        }
        for key in ["requestBody", "security"] {
            if let Some(v) = extra.get(key) {
                op[key] = v.clone();
            }
        }
        let entry = paths
            .entry(path.to_string())
            .or_insert_with(|| serde_json::json!({}));
        entry[*method] = op;
    }
    serde_json::json!({
        "openapi": "3.1.0",
        "info": {"title": "Switchboard API", "version": env!("CARGO_PKG_VERSION")},
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": {"Error": {"type": "object", "required": ["error"], "properties": {"error": {
                "type": "object", "required": ["code", "message"],
                "properties": {"code": {"type": "string"}, "message": {"type": "string"}}}}}},
            "responses": {"Error": {"description": "An error", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}},
        },
        "security": [{"bearer": []}],
        "paths": paths,
    })
}

async fn openapi() -> ApiJson<serde_json::Value> {
    ApiJson(openapi_document())
}
