//! Request schemas for the OpenAPI document: the JSON bodies and query parameters each route
//! takes, hand-written to match the handlers' serde structs (`deny_unknown_fields` is
//! `additionalProperties: false`) and the values they accept. A schema fuzzer generates its
//! inputs from these (scripts/schema-fuzz); a test checks that every route with a body has one.

use serde_json::{Value, json};

fn uuid() -> Value {
    json!({"type": "string", "format": "uuid"})
}

fn u32_() -> Value {
    json!({"type": "integer", "minimum": 0, "maximum": 4_294_967_295u64})
}

fn string() -> Value {
    json!({"type": "string"})
}

fn nullable(t: &str) -> Value {
    json!({"type": [t, "null"]})
}

/// A closed object: `required` keys, then every property.
fn object(required: &[&str], props: Value) -> Value {
    json!({"type": "object", "required": required, "properties": props, "additionalProperties": false})
}

fn query(name: &str, schema: Value, required: bool) -> Value {
    json!({"name": name, "in": "query", "required": required, "schema": schema})
}

fn json_body(schema: Value) -> Value {
    json!({"required": true, "content": {"application/json": {"schema": schema}}})
}

/// Minutes settings of the routing rules: null or 1..=30 days.
fn minutes() -> Value {
    json!({"type": ["integer", "null"], "minimum": 1, "maximum": switchboard_core::routing::MAX_MINUTES})
}

fn routing_rules() -> Value {
    let range = object(
        &["start", "end"],
        json!({"start": string(), "end": string()}),
    );
    let day = json!({"type": "array", "items": range});
    let days: serde_json::Map<String, Value> = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
        .iter()
        .map(|d| ((*d).to_owned(), day.clone()))
        .collect();
    object(
        &[],
        json!({
            "strategy": {"type": "string", "enum": ["round_robin", "self_claim", "least_busy"]},
            "include_offline": {"type": "boolean"},
            "sticky": {"type": "boolean"},
            "agent_ids": {"type": ["array", "null"], "items": uuid(), "maxItems": switchboard_core::routing::MAX_AGENT_IDS},
            "default_capacity": {"type": ["integer", "null"], "minimum": 1, "maximum": switchboard_core::routing::MAX_CAPACITY},
            "reply_sla_minutes": minutes(),
            "auto_close": {"oneOf": [{"type": "null"}, object(&[], json!({
                "customer_silence_minutes": minutes(),
                "agent_silence_minutes": minutes(),
                "closing_message": nullable("string"),
            }))]},
            "offline_release_minutes": minutes(),
            "business_hours": {"oneOf": [{"type": "null"}, object(&[], json!({
                "utc_offset_minutes": {"type": "integer"},
                "days": {"type": "object", "properties": days, "additionalProperties": false},
                "holidays": {"type": "array", "items": {"type": "string", "format": "date"}},
                "pause_routing": {"type": "boolean"},
                "auto_reply": nullable("string"),
            }))]},
        }),
    )
}

fn policy() -> Value {
    object(
        &[],
        json!({
            "human_agent_confirmed": {"type": "boolean"},
            "tag": nullable("string"),
            "content": {"type": ["string", "null"], "enum": ["reply", "event_reminder", "order_status", "account_alert", null]},
        }),
    )
}

fn rich_message() -> Value {
    let any = json!({});
    let template_args = object(
        &[],
        json!({
            "header": {"type": "array", "items": string()},
            "header_media_link": nullable("string"),
            "body": {"type": "array", "items": string()},
            "buttons": {"type": "array", "items": object(&["index", "parameters"], json!({
                "index": {"type": "integer", "minimum": 0},
                "parameters": {"type": "array", "items": string()},
            }))},
        }),
    );
    object(
        &["type"],
        json!({
            "type": {"type": "string", "enum": ["template", "interactive", "image", "video", "audio", "document", "sticker"]},
            "template": {"oneOf": [{"type": "null"}, object(&["name", "language"], json!({
                "name": string(), "language": string(), "parameters": template_args,
            }))]},
            "interactive": any, "image": any, "video": any, "audio": any, "document": any, "sticker": any,
            "automated": {"type": "boolean"},
        }),
    )
}

/// What `(method, path)` takes besides its path id: `parameters` (query), `requestBody`, and
/// `security: []` where no agent token is needed. An empty object when it takes nothing.
pub fn request(method: &str, path: &str) -> Value {
    let public = json!([]);
    match (method, path) {
        // No deny_unknown_fields on the login body: other keys are ignored.
        ("post", "/api/v1/auth/login") => {
            json!({"security": public, "requestBody": json_body(json!({
            "type": "object", "required": ["email", "password"],
            "properties": {"email": string(), "password": string()}}))})
        }
        ("post", "/api/v1/agents") => json!({"requestBody": json_body(object(
            &["email", "name", "role", "password"],
            json!({"email": string(), "name": string(),
                "role": {"type": "string", "enum": ["admin", "supervisor", "agent"]},
                "password": string(), "capacity": {"type": ["integer", "null"], "minimum": 0, "maximum": 4_294_967_295u64}}),
        ))}),
        ("patch", "/api/v1/agents/{id}") => json!({"requestBody": json_body(object(
            &[],
            json!({"email": string(), "name": string(),
                "role": {"type": "string", "enum": ["admin", "supervisor", "agent"]},
                "capacity": {"type": ["integer", "null"], "minimum": 0, "maximum": 4_294_967_295u64},
                "active": {"type": "boolean"}, "password": string()}),
        ))}),
        ("post", "/api/v1/inboxes") => json!({"requestBody": json_body(object(
            &["name", "channel"],
            json!({"name": string(),
                "channel": {"type": "string", "enum": ["livechat", "messenger", "instagram", "whatsapp", "zalo", "telegram", "shopee"]},
                "settings": nullable("object")}),
        ))}),
        ("patch", "/api/v1/inboxes/{id}") => json!({"requestBody": json_body(object(
            &[],
            json!({"name": string(), "settings": nullable("object")}),
        ))}),
        ("put", "/api/v1/inboxes/{id}/members") => json!({"requestBody": json_body(object(
            &["agent_ids"],
            json!({"agent_ids": {"type": "array", "items": uuid()}}),
        ))}),
        ("put", "/api/v1/inboxes/{id}/routing") => {
            json!({"requestBody": json_body(routing_rules())})
        }
        ("put", "/api/v1/me/presence") => json!({"requestBody": json_body(object(
            &["status"],
            json!({"status": {"type": "string", "enum": ["away", "online"]}}),
        ))}),
        ("post", "/api/v1/me/push-subscriptions") => json!({"requestBody": json_body(object(
            &["endpoint", "keys"],
            json!({"endpoint": string(),
                "keys": object(&["p256dh", "auth"], json!({"p256dh": string(), "auth": string()})),
                "expirationTime": nullable("number")}),
        ))}),
        ("put", "/api/v1/me/notification-preferences") => {
            let on = json!({"type": "boolean"});
            json!({"requestBody": json_body(object(
                &["sound", "kinds"],
                json!({"sound": on, "kinds": object(
                    &["assigned", "transferred", "waiting", "answered"],
                    json!({"assigned": on, "transferred": on, "waiting": on, "answered": on}),
                )}),
            ))})
        }
        ("delete", "/api/v1/me/push-subscriptions") => {
            json!({"parameters": [query("endpoint", string(), true)]})
        }
        ("get", "/api/v1/conversations") => json!({"parameters": [
            query("status", json!({"type": "string", "enum": ["bot", "pending", "open", "resolved"]}), false),
            query("inbox_id", uuid(), false),
            query("assignee", json!({"anyOf": [{"type": "string", "enum": ["me", "unassigned"]}, uuid()]}), false),
            query("tag", string(), false),
            query("q", string(), false),
            query("contact_id", uuid(), false),
            query("cursor", string(), false),
            query("limit", u32_(), false),
        ]}),
        ("get", "/api/v1/conversations/{id}/messages") | ("get", "/widget/v1/messages") => {
            json!({"parameters": [query("before", string(), false), query("limit", u32_(), false)]})
        }
        ("post", "/api/v1/conversations/{id}/messages") => json!({"requestBody": json_body(object(
            &["text"],
            json!({"text": string(),
                "kind": {"type": ["string", "null"], "enum": ["reply", "note", "agent_to_agent", null]},
                "policy": {"oneOf": [{"type": "null"}, policy()]},
                "buttons": {"type": ["array", "null"], "items": object(&["id", "title"], json!({
                    "id": string(), "title": string(), "description": nullable("string"),
                })), "description": "Reply buttons under the text (a tap comes back with the button's id in the message's meta): WhatsApp reply buttons (at most 3), Messenger and Instagram quick replies (at most 13, titles up to 20 characters), a Telegram inline keyboard (ids up to 64 bytes); elsewhere, or beyond those limits on Messenger, Instagram and Telegram, a numbered list."},
                "automated": {"type": "boolean"}}),
        ))}),
        ("post", "/api/v1/conversations/{id}/assign")
        | ("post", "/api/v1/conversations/{id}/participants") => {
            json!({"requestBody": json_body(object(&["agent_id"], json!({"agent_id": uuid()})))})
        }
        ("post", "/api/v1/conversations/{id}/transfer") => json!({"requestBody": json_body(object(
            &["agent_id"],
            json!({"agent_id": uuid(), "message": nullable("string")}),
        ))}),
        ("post", "/api/v1/conversations/{id}/tags")
        | ("delete", "/api/v1/conversations/{id}/tags")
        | ("post", "/api/v1/tags") => {
            json!({"requestBody": json_body(object(&["name"], json!({"name": string()})))})
        }
        ("post", "/api/v1/conversations/{id}/whatsapp-messages") => {
            json!({"requestBody": json_body(rich_message())})
        }
        ("get", "/api/v1/reports/whatsapp-usage") => json!({"parameters": [
            query("month", json!({"type": "string", "pattern": "^[0-9]{4}-[0-9]{2}$"}), false),
            query("inbox_id", uuid(), false),
        ]}),
        ("post", "/api/v1/messages/{id}/comment-actions") => {
            json!({"requestBody": json_body(object(
                &["action"],
                json!({"action": {"type": "string", "enum": ["reply", "private_reply", "like", "unlike", "hide", "unhide", "delete"]},
                    "text": nullable("string"), "automated": {"type": "boolean"}}),
            ))})
        }
        ("post", "/api/v1/contacts/{id}/merge") => json!({"requestBody": json_body(object(
            &["into_contact_id"],
            json!({"into_contact_id": uuid()}),
        ))}),
        // A typed name is the agent's (a synced one never replaces it until "sync from channel").
        ("patch", "/api/v1/contacts/{id}") => json!({"requestBody": json_body(object(
            &[],
            json!({"name": nullable("string"), "phone": nullable("string"), "email": nullable("string"), "notes": nullable("string")}),
        ))}),
        ("post", "/api/v1/conversations/{id}/attachments") => json!({
            "parameters": [query("filename", string(), true), query("caption", string(), false)],
            "requestBody": {"required": true, "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}},
        }),
        ("get", "/api/v1/quick-replies") => {
            json!({"parameters": [query("prefix", string(), false)]})
        }
        ("post", "/api/v1/quick-replies") | ("patch", "/api/v1/quick-replies/{id}") => {
            json!({"requestBody": json_body(object(&[], json!({"code": nullable("string"), "text": nullable("string"),
                "media": {"type": ["array", "null"], "items": uuid(), "maxItems": 10}})))})
        }
        ("get", "/api/v1/library") => json!({"parameters": [query("q", string(), false)]}),
        ("post", "/api/v1/library") => json!({
            "parameters": [query("filename", string(), true), query("name", string(), false), query("tags", string(), false)],
            "requestBody": {"required": true, "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}},
        }),
        ("patch", "/api/v1/library/{id}") => json!({"requestBody": json_body(object(
            &[],
            json!({"name": nullable("string"), "tags": {"type": ["array", "null"], "items": string(), "maxItems": 20}}),
        ))}),
        ("post", "/api/v1/conversations/{id}/attachments/library") => {
            json!({"requestBody": json_body(object(
                &["library_id"],
                json!({"library_id": uuid(), "caption": nullable("string")}),
            ))})
        }
        ("get", "/api/v1/ws") => json!({"parameters": [
            query("token", string(), false),
            query("since", json!({"type": "integer", "format": "int64"}), false),
        ]}),
        // The widget's calls carry a visitor token (also a bearer token), or none.
        ("post", "/widget/v1/sessions") => {
            json!({"security": public, "requestBody": json_body(object(
                &["inbox_id"],
                json!({"inbox_id": uuid(), "identifier": nullable("string"), "identifier_hash": nullable("string"),
                    "name": nullable("string"), "email": nullable("string"), "phone": nullable("string")}),
            ))})
        }
        ("post", "/widget/v1/attachments") => json!({
            "parameters": [query("filename", string(), true), query("client_message_id", string(), false)],
            "requestBody": {"required": true, "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}},
        }),
        ("post", "/widget/v1/messages") => json!({"requestBody": json_body(object(
            &["text"],
            json!({"text": string(), "client_message_id": nullable("string")}),
        ))}),
        ("get", "/widget/v1/ws") => {
            json!({"security": public, "parameters": [query("token", string(), true)]})
        }
        ("post", "/api/v1/flows") | ("put", "/api/v1/flows/{id}") => {
            json!({"requestBody": json_body(object(
                &["flow"],
                json!({"flow": {"type": "object"}, "active": {"type": "boolean"}, "version": {"type": ["integer", "null"], "minimum": 0, "maximum": 4_294_967_295u64}}),
            ))})
        }
        ("put", "/api/v1/inboxes/{id}/comment-rules")
        | ("put", "/api/v1/inboxes/{id}/posts/{post_id}/comment-rules") => {
            json!({"requestBody": json_body(object(
                &["rules"],
                json!({"rules": {"type": "object", "description": "rules, default, mode (replace | extend): docs/comment-rules.md"},
                       "version": {"type": ["integer", "null"], "minimum": 0, "maximum": 4_294_967_295u64}}),
            ))})
        }
        ("post", "/api/v1/flows/check") => {
            json!({"requestBody": json_body(object(&["flow"], json!({"flow": {"type": "object"}})))})
        }
        ("post", "/api/v1/flows/simulate") => {
            let input = json!({"oneOf": [
                object(&["type", "text"], json!({"type": {"const": "message"}, "text": string()})),
                object(&["type", "payload"], json!({"type": {"const": "tap"}, "payload": string()})),
                object(&["type"], json!({"type": {"const": "wait"}})),
            ]});
            json!({"requestBody": json_body(object(&["flow"], json!({
                "flow": {"type": "object"},
                "channel": {"type": ["string", "null"], "enum": ["messenger", "instagram", "whatsapp", "zalo", "telegram", "shopee", "livechat", null]},
                "inputs": {"type": "array", "items": input, "maxItems": 50},
                "fields": {"type": "object", "additionalProperties": string()},
                "hours_since_customer": u32_(),
                "call_http": {"type": "boolean"},
            })))})
        }
        ("post", "/api/v1/flows/{id}/dry-run") => {
            json!({"requestBody": json_body(object(&[], json!({
                "days": {"type": ["integer", "null"], "minimum": 0, "maximum": 4_294_967_295u64},
                "limit": {"type": ["integer", "null"], "minimum": 0, "maximum": 4_294_967_295u64},
            })))})
        }
        ("put", "/api/v1/faq") => json!({"requestBody": json_body(object(
            &["entries"],
            json!({
                "entries": {"type": "array", "items": object(&["phrasings", "answer"], json!({
                    "phrasings": {"type": "array", "items": string()}, "answer": string(),
                }))},
                "threshold": {"type": ["number", "null"]},
                "handoff_phrases": {"type": ["array", "null"], "items": string()},
            }),
        ))}),
        ("put", "/api/v1/conversations/{id}/auto-reply") => {
            json!({"requestBody": json_body(object(&["on"], json!({"on": {"type": "boolean"}})))})
        }
        ("post", "/api/v1/conversations/{id}/flows") => {
            json!({"requestBody": json_body(object(&["flow_id"], json!({"flow_id": uuid()})))})
        }
        ("post", "/api/v1/contacts/{id}/scheduled-flows") => {
            json!({"requestBody": json_body(object(
                &["flow_id"],
                json!({
                    "flow_id": uuid(),
                    "conversation_id": {"oneOf": [{"type": "null"}, uuid()]},
                    "send_at": {"type": ["integer", "null"]},
                    "delay_secs": {"type": ["integer", "null"], "minimum": 0, "maximum": 18_446_744_073_709_551_615u64},
                    "within_hours": {"oneOf": [{"type": "null"}, object(&["from", "to"], json!({"from": string(), "to": string()}))]},
                    "dry_run": {"type": "boolean"},
                }),
            ))})
        }
        // Webhooks are signed by the provider, not sent with a token.
        ("get", "/webhooks/meta") | ("get", "/webhooks/whatsapp") => {
            json!({"security": public, "parameters": [
                query("hub.mode", string(), false),
                query("hub.verify_token", string(), false),
                query("hub.challenge", string(), false),
            ]})
        }
        ("post", p) if p.starts_with("/webhooks/") => json!({"security": public, "requestBody": {
            "required": true, "content": {"application/json": {"schema": {"type": "object"}}}}}),
        ("get", "/widget-preview") => {
            json!({"security": public, "parameters": [query("inbox", uuid(), false)]})
        }
        ("get", "/healthz") | ("get", "/widget.js") | ("get", "/api/v1/openapi.json") => {
            json!({"security": public})
        }
        _ => json!({}),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Writes that read no body (`DELETE …/tags` is the one delete that does).
    const NO_BODY: &[&str] = &[
        "/api/v1/auth/logout",
        "/api/v1/conversations/{id}/claim",
        "/api/v1/conversations/{id}/resolve",
        "/api/v1/conversations/{id}/reopen",
        "/api/v1/conversations/{id}/read",
        "/api/v1/conversations/{id}/typing",
        "/api/v1/inboxes/{id}/templates/sync",
        "/api/v1/inboxes/{id}/check",
        "/api/v1/contact-merges/{id}/undo",
        "/api/v1/contacts/{id}/sync-profile",
        "/api/v1/conversations/{id}/take-over",
        "/api/v1/scheduled-flows/{id}/send-now",
        "/api/v1/scheduled-flows/{id}/cancel",
        "/api/v1/attachments/{id}/retry",
    ];

    #[test]
    fn every_route_that_reads_a_body_documents_it() {
        for (method, path, _) in crate::routes::ROUTES {
            let takes_body = (matches!(*method, "post" | "put" | "patch")
                || *path == "/api/v1/conversations/{id}/tags")
                && !NO_BODY.contains(path);
            assert_eq!(
                request(method, path)["requestBody"].is_object(),
                takes_body,
                "{method} {path}"
            );
        }
    }

    #[test]
    fn closed_bodies_allow_no_other_keys() {
        let b = request("post", "/api/v1/conversations/{id}/messages");
        let schema = &b["requestBody"]["content"]["application/json"]["schema"];
        assert_eq!(schema["additionalProperties"], false);
        assert_eq!(schema["required"], json!(["text"]));
    }
}
