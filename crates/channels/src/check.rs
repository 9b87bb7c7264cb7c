//! Connection checks: one read-only call per provider that proves an inbox's account and
//! credentials work, and what its answer means (channels.md, "connection check" of each
//! provider). The setup runs it after an inbox is created or its settings change, and on demand.
//! Pure: the server makes the call.

use crate::provider::{Account, ApiAnswer, ApiCall, CheckFailure, account_name, base_url, setting};
use crate::{settings, shopee, telegram};
use serde_json::Value;
use switchboard_core::{ChannelKind, Inbox, Timestamp};

/// The path of Shopee's shop profile (`v2.shop.get_shop_info`).
pub const SHOPEE_SHOP_INFO_PATH: &str = "/api/v2/shop/get_shop_info";

/// The node the Graph API is asked for, and the fields that carry its name.
fn graph_node(channel: ChannelKind) -> Option<(&'static str, &'static str, &'static str)> {
    Some(match channel {
        ChannelKind::Messenger => ("page_id", "page_access_token", "id,name"),
        ChannelKind::Instagram => ("ig_account_id", "page_access_token", "id,username,name"),
        ChannelKind::Whatsapp => (
            "phone_number_id",
            "access_token",
            "id,verified_name,display_phone_number",
        ),
        _ => return None,
    })
}

/// `GET /{account}?fields=…` with the inbox's token as a Bearer header (Messenger, Instagram,
/// WhatsApp).
pub fn graph_call(inbox: &Inbox) -> Option<ApiCall> {
    let (account_key, token_key, fields) = graph_node(inbox.channel)?;
    let account = setting(inbox, account_key)?;
    let token = setting(inbox, token_key)?;
    let base = base_url(inbox, settings::META_API_BASE_URL).trim_end_matches('/');
    Some(
        ApiCall::get(format!("{base}/{account}?fields={fields}"))
            .header("authorization", format!("Bearer {token}")),
    )
}

/// A Graph API answer: the node must be the inbox's own account. Error 190 (and any 401) is a
/// refused token; 100 and 803 (no such object, or not one this token may read) a token of
/// another account.
pub fn graph_checked(inbox: &Inbox, answer: &ApiAnswer<'_>) -> Result<Account, CheckFailure> {
    let (account_key, _, _) = graph_node(inbox.channel).ok_or(CheckFailure::ProviderError)?;
    let v = answer.json();
    if !answer.ok() {
        let code = v["error"]["code"].as_i64();
        return Err(match code {
            Some(190) => CheckFailure::CredentialsRefused,
            _ if answer.status == 401 => CheckFailure::CredentialsRefused,
            Some(100 | 803) => CheckFailure::AccountMismatch,
            _ => CheckFailure::ProviderError,
        });
    }
    let id = match &v["id"] {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        _ => return Err(CheckFailure::ProviderError),
    };
    if setting(inbox, account_key) != Some(id.as_str()) {
        return Err(CheckFailure::AccountMismatch);
    }
    let name = account_name(&v["name"])
        .or_else(|| account_name(&v["verified_name"]))
        .or_else(|| account_name(&v["username"]).map(|u| format!("@{u}")));
    Ok(Account { name })
}

/// Telegram `getMe` (§5).
pub fn telegram_call(inbox: &Inbox) -> Option<ApiCall> {
    let token = setting(inbox, "bot_token")?;
    let base = base_url(inbox, settings::TELEGRAM_API_BASE_URL);
    Some(ApiCall::post(
        telegram::method_url(base, token, "getMe"),
        serde_json::json!({}),
    ))
}

pub fn telegram_checked(answer: &ApiAnswer<'_>) -> Result<Account, CheckFailure> {
    let v = answer.json();
    if answer.status == 401 || answer.status == 404 {
        return Err(CheckFailure::CredentialsRefused);
    }
    if v["ok"].as_bool() != Some(true) || !answer.ok() {
        return Err(CheckFailure::ProviderError);
    }
    let bot = &v["result"];
    let name = account_name(&bot["username"])
        .map(|u| format!("@{u}"))
        .or_else(|| account_name(&bot["first_name"]));
    Ok(Account { name })
}

/// Zalo `GET /v2.0/oa/getoa` with the `access_token` header (§4).
pub fn zalo_call(inbox: &Inbox) -> Option<ApiCall> {
    let token = setting(inbox, "access_token")?;
    let base = base_url(inbox, settings::ZALO_API_BASE_URL).trim_end_matches('/');
    Some(ApiCall::get(format!("{base}/v2.0/oa/getoa")).header("access_token", token))
}

/// Zalo answers 200 with `error` 0 and the OA, or a negative `error` (-216: the access token is
/// invalid; -124 and -118 too are about the token).
pub fn zalo_checked(inbox: &Inbox, answer: &ApiAnswer<'_>) -> Result<Account, CheckFailure> {
    let v = answer.json();
    match v["error"].as_i64() {
        Some(0) if answer.ok() => {}
        Some(-216 | -124 | -118) => return Err(CheckFailure::CredentialsRefused),
        _ => return Err(CheckFailure::ProviderError),
    }
    let oa = &v["data"];
    let id = match &oa["oa_id"] {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        _ => return Err(CheckFailure::ProviderError),
    };
    if setting(inbox, "oa_id") != Some(id.as_str()) {
        return Err(CheckFailure::AccountMismatch);
    }
    Ok(Account {
        name: account_name(&oa["name"]),
    })
}

/// Shopee `GET /api/v2/shop/get_shop_info`, signed like every v2 shop call (§6).
pub fn shopee_call(inbox: &Inbox, now: Timestamp) -> Option<ApiCall> {
    let partner_id = setting(inbox, "partner_id")?;
    let partner_key = setting(inbox, "partner_key")?;
    let shop_id = setting(inbox, "shop_id")?;
    let token = setting(inbox, "access_token")?;
    let ts = now.millis() / 1000;
    let sign = shopee::api_sign(
        partner_key,
        partner_id,
        SHOPEE_SHOP_INFO_PATH,
        ts,
        token,
        shop_id,
    );
    let base = base_url(inbox, settings::SHOPEE_API_BASE_URL).trim_end_matches('/');
    Some(ApiCall::get(format!(
        "{base}{SHOPEE_SHOP_INFO_PATH}?partner_id={partner_id}&timestamp={ts}&access_token={token}&shop_id={shop_id}&sign={sign}"
    )))
}

/// Shopee answers with an empty `error` and the shop, or an error name: the sign, the token or
/// the partner refused (`error_sign`, `error_auth`, `invalid_access_token`), or a shop this
/// partner may not read (`error_param`, `error_shop`).
pub fn shopee_checked(answer: &ApiAnswer<'_>) -> Result<Account, CheckFailure> {
    let v = answer.json();
    match v["error"].as_str().unwrap_or("") {
        "" if answer.ok() => Ok(Account {
            name: account_name(&v["shop_name"]),
        }),
        "error_sign" | "error_auth" | "invalid_access_token" | "error_permission" => {
            Err(CheckFailure::CredentialsRefused)
        }
        "error_param" | "error_shop" => Err(CheckFailure::AccountMismatch),
        _ => Err(CheckFailure::ProviderError),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::expect_used)]
    use super::*;
    use switchboard_core::{InboxId, WorkspaceId};

    fn inbox(channel: ChannelKind, settings: Value) -> Inbox {
        Inbox {
            id: InboxId(uuid::Uuid::nil()),
            workspace_id: WorkspaceId(uuid::Uuid::nil()),
            name: "x".into(),
            channel,
            settings,
            created_at: Timestamp::from_millis(0),
        }
    }

    fn answer(status: u16, body: &str) -> ApiAnswer<'_> {
        ApiAnswer {
            status,
            body: body.as_bytes(),
            retry_after: None,
            usage: None,
        }
    }

    #[test]
    fn graph_checks_name_the_account_and_tell_a_refused_token_from_another_account() {
        let page = inbox(
            ChannelKind::Messenger,
            serde_json::json!({"page_id": "42", "page_access_token": "tok", "api_base_url": "http://h/v26.0/"}),
        );
        let call = graph_call(&page).expect("a call");
        assert_eq!(call.url, "http://h/v26.0/42?fields=id,name");
        assert_eq!(
            call.headers,
            vec![("authorization", "Bearer tok".to_owned())]
        );
        assert_eq!(
            graph_checked(
                &page,
                &answer(200, r#"{"id":"42","name":" Shop Hoa \u0000"}"#)
            ),
            Ok(Account {
                name: Some("Shop Hoa".into())
            })
        );
        assert_eq!(
            graph_checked(&page, &answer(200, r#"{"id":"43","name":"Other"}"#)),
            Err(CheckFailure::AccountMismatch)
        );
        assert_eq!(
            graph_checked(
                &page,
                &answer(400, r#"{"error":{"code":190,"message":"expired"}}"#)
            ),
            Err(CheckFailure::CredentialsRefused)
        );
        assert_eq!(
            graph_checked(&page, &answer(400, r#"{"error":{"code":100}}"#)),
            Err(CheckFailure::AccountMismatch)
        );
        assert_eq!(
            graph_checked(&page, &answer(500, "<html>")),
            Err(CheckFailure::ProviderError)
        );
        let wa = inbox(
            ChannelKind::Whatsapp,
            serde_json::json!({"phone_number_id": "7", "access_token": "t"}),
        );
        assert_eq!(
            graph_checked(
                &wa,
                &answer(
                    200,
                    r#"{"id":"7","verified_name":"Shop","display_phone_number":"+84 90"}"#
                )
            )
            .map(|a| a.name),
            Ok(Some("Shop".into()))
        );
        let no_token = inbox(
            ChannelKind::Instagram,
            serde_json::json!({"ig_account_id": "9"}),
        );
        assert!(graph_call(&no_token).is_none());
    }

    #[test]
    fn telegram_zalo_and_shopee_checks_read_their_answers() {
        assert_eq!(
            telegram_checked(&answer(
                200,
                r#"{"ok":true,"result":{"id":1,"is_bot":true,"first_name":"Shop","username":"shop_bot"}}"#
            ))
            .map(|a| a.name),
            Ok(Some("@shop_bot".into()))
        );
        assert_eq!(
            telegram_checked(&answer(
                401,
                r#"{"ok":false,"error_code":401,"description":"Unauthorized"}"#
            )),
            Err(CheckFailure::CredentialsRefused)
        );
        let oa = inbox(
            ChannelKind::Zalo,
            serde_json::json!({"oa_id": "55", "access_token": "a"}),
        );
        assert_eq!(
            zalo_checked(
                &oa,
                &answer(200, r#"{"error":0,"data":{"oa_id":"55","name":"OA"}}"#)
            )
            .map(|a| a.name),
            Ok(Some("OA".into()))
        );
        assert_eq!(
            zalo_checked(
                &oa,
                &answer(200, r#"{"error":0,"data":{"oa_id":"56","name":"OA"}}"#)
            ),
            Err(CheckFailure::AccountMismatch)
        );
        assert_eq!(
            zalo_checked(
                &oa,
                &answer(200, r#"{"error":-216,"message":"Access token is invalid"}"#)
            ),
            Err(CheckFailure::CredentialsRefused)
        );
        let shop = inbox(
            ChannelKind::Shopee,
            serde_json::json!({"partner_id": "1", "partner_key": "k", "shop_id": "2", "access_token": "t"}),
        );
        let call = shopee_call(&shop, Timestamp::from_millis(1_700_000_000_000)).expect("a call");
        let sign = shopee::api_sign("k", "1", SHOPEE_SHOP_INFO_PATH, 1_700_000_000, "t", "2");
        assert!(call.url.ends_with(&format!("&sign={sign}")), "{}", call.url);
        assert_eq!(
            shopee_checked(&answer(200, r#"{"error":"","shop_name":"Shop"}"#)).map(|a| a.name),
            Ok(Some("Shop".into()))
        );
        assert_eq!(
            shopee_checked(&answer(
                403,
                r#"{"error":"error_sign","message":"Wrong sign."}"#
            )),
            Err(CheckFailure::CredentialsRefused)
        );
    }
}
