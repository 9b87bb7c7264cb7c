//! The one API error: a status and a stable JSON body `{"error": {"code", "message", ...}}`.

use axum::Json;
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{FromRequest, Query};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use switchboard_core::ConversationError;
use switchboard_core::validate::{self, ValidationError};
use switchboard_store::StoreError;

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    /// Extra fields for the error object (e.g. `holder` for `conversation_claimed`).
    pub extra: Option<serde_json::Value>,
    pub retry_after_secs: Option<u64>,
}

pub type ApiResult<T> = Result<T, ApiError>;

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            extra: None,
            retry_after_secs: None,
        }
    }
    pub fn with_extra(mut self, extra: serde_json::Value) -> Self {
        self.extra = Some(extra);
        self
    }
    /// The same answer for "does not exist" and "you may not see it", so nobody learns what exists.
    pub fn not_found(what: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("{what} not found"),
        )
    }
    pub fn unauthorized(message: &str) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "unauthorized", message)
    }
    pub fn forbidden(message: &str) -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden", message)
    }
    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_input", message)
    }
    pub fn rate_limited(retry_after_secs: u64) -> Self {
        Self {
            retry_after_secs: Some(retry_after_secs.max(1)),
            ..Self::new(
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limited",
                "too many requests; slow down",
            )
        }
    }
    /// Text with a NUL or another control character (see [`validate::is_forbidden_control`]).
    pub fn control_characters() -> Self {
        Self::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_characters",
            "the text contains control characters (such as NUL) that cannot be stored",
        )
    }
    pub fn internal() -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "something went wrong on our side",
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut err = serde_json::json!({ "code": self.code, "message": self.message });
        if let (Some(serde_json::Value::Object(extra)), Some(obj)) =
            (self.extra, err.as_object_mut())
        {
            obj.extend(extra);
        }
        if self.code == "invalid_input"
            && let Some(obj) = err.as_object_mut()
        {
            name_the_field(obj, &self.message);
        }
        let mut resp = (self.status, Json(serde_json::json!({ "error": err }))).into_response();
        if let Some(secs) = self.retry_after_secs
            && let Ok(v) = HeaderValue::from_str(&secs.to_string())
        {
            resp.headers_mut().insert(header::RETRY_AFTER, v);
        }
        resp
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound => Self::not_found("resource"),
            StoreError::Conflict(what) => Self::new(
                StatusCode::CONFLICT,
                "already_exists",
                format!("{what} already exists"),
            ),
            StoreError::VersionConflict => Self::new(
                StatusCode::CONFLICT,
                "concurrent_change",
                "changed by someone else; try again",
            ),
            other => {
                tracing::error!(error = %other, "store error");
                Self::internal()
            }
        }
    }
}

/// A 422 names the field it is about (`field`: as given, or the `field: …` its message starts
/// with) and why (`reason`: `required`, `unknown`, `too_long`, `too_short`, `not_member`, `overlap`,
/// `order`, `format` or `invalid`), so a form shows it beside that field, in the agent's language.
fn name_the_field(obj: &mut serde_json::Map<String, serde_json::Value>, message: &str) {
    if !obj.contains_key("field")
        && let Some((head, _)) = message.split_once(": ")
        && !head.is_empty()
        && head
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '_' | '.'))
    {
        obj.insert("field".into(), serde_json::json!(head));
    }
    if obj.contains_key("field") && !obj.contains_key("reason") {
        obj.insert("reason".into(), serde_json::json!(reason_of(message)));
    }
}

/// Why a field was refused, from our own validation messages (their wording is ours and stable).
pub fn reason_of(message: &str) -> &'static str {
    let m = message.to_ascii_lowercase();
    let has = |w: &str| m.contains(w);
    if has("is required") || has("must not be empty") || has("required") {
        "required"
    } else if has("unknown") {
        "unknown"
    } else if has("at most") || has("too long") || has(" 1 to ") {
        "too_long"
    } else if has("at least") || has("too short") {
        "too_short"
    } else if has("not a member") || has("must be a member") {
        "not_member"
    } else if has("overlap") {
        "overlap"
    } else if has("before") || has("after") {
        "order"
    } else if has("must look like") || has("not a valid") {
        "format"
    } else {
        "invalid"
    }
}

impl From<ValidationError> for ApiError {
    fn from(e: ValidationError) -> Self {
        Self::invalid(e.to_string()).with_extra(serde_json::json!({ "field": e.field }))
    }
}

impl From<switchboard_channels::settings::SettingsError> for ApiError {
    fn from(e: switchboard_channels::settings::SettingsError) -> Self {
        use switchboard_channels::settings::SettingsError;
        match e {
            SettingsError::Invalid { message, field } => {
                let err = Self::invalid(message);
                match field {
                    Some(f) => err.with_extra(serde_json::json!({ "field": f })),
                    None => err,
                }
            }
            SettingsError::Internal => Self::internal(),
        }
    }
}

impl From<ConversationError> for ApiError {
    fn from(e: ConversationError) -> Self {
        let status = match e {
            ConversationError::SupervisorRequired | ConversationError::NotHolder => {
                StatusCode::FORBIDDEN
            }
            _ => StatusCode::CONFLICT,
        };
        let mut err = Self::new(status, e.code(), e.to_string());
        if let ConversationError::Claimed { holder } = e {
            err = err.with_extra(serde_json::json!({ "holder_id": holder }));
        }
        err
    }
}

impl From<JsonRejection> for ApiError {
    fn from(r: JsonRejection) -> Self {
        let (status, code) = match r.status() {
            StatusCode::PAYLOAD_TOO_LARGE => (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large"),
            StatusCode::UNSUPPORTED_MEDIA_TYPE => {
                (StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type")
            }
            StatusCode::UNPROCESSABLE_ENTITY => (StatusCode::UNPROCESSABLE_ENTITY, "invalid_input"),
            _ => (StatusCode::BAD_REQUEST, "bad_json"),
        };
        Self::new(status, code, r.body_text())
    }
}

/// A plain request (no `Upgrade: websocket`) to a WebSocket route: our error shape, not axum's
/// text (schema fuzzing found it).
impl From<axum::extract::ws::rejection::WebSocketUpgradeRejection> for ApiError {
    fn from(r: axum::extract::ws::rejection::WebSocketUpgradeRejection) -> Self {
        Self::new(r.status(), "websocket_required", r.body_text())
    }
}

impl From<QueryRejection> for ApiError {
    fn from(r: QueryRejection) -> Self {
        Self::bad_request("bad_query", r.body_text())
    }
}

/// `Json` that answers with our error shape, and refuses (422 `invalid_characters`) a body with a
/// NUL or another control character in any string: no text of a person's reaches the store with
/// one (PostgreSQL refuses NUL outright).
#[derive(Debug, Clone, Copy, Default)]
pub struct ApiJson<T>(pub T);

impl<S, T> FromRequest<S> for ApiJson<T>
where
    S: Send + Sync,
    T: serde::de::DeserializeOwned,
{
    type Rejection = ApiError;

    async fn from_request(req: axum::extract::Request, state: &S) -> Result<Self, ApiError> {
        let Json(value) = Json::<serde_json::Value>::from_request(req, state).await?;
        if validate::json_has_forbidden_control(&value) {
            return Err(ApiError::control_characters());
        }
        serde_json::from_value(value)
            .map(ApiJson)
            .map_err(|e| ApiError::invalid(format!("the JSON body does not fit: {e}")))
    }
}

impl<T: serde::Serialize> IntoResponse for ApiJson<T> {
    fn into_response(self) -> Response {
        Json(self.0).into_response()
    }
}

/// `Query` that answers with our error shape and, like [`ApiJson`], refuses control characters.
#[derive(Debug, Clone, Copy, Default)]
pub struct ApiQuery<T>(pub T);

impl<S, T> axum::extract::FromRequestParts<S> for ApiQuery<T>
where
    S: Send + Sync,
    T: serde::de::DeserializeOwned,
{
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        _state: &S,
    ) -> Result<Self, ApiError> {
        let pairs = Query::<Vec<(String, String)>>::try_from_uri(&parts.uri)?;
        if pairs
            .0
            .iter()
            .any(|(k, v)| validate::has_forbidden_control(k) || validate::has_forbidden_control(v))
        {
            return Err(ApiError::control_characters());
        }
        Ok(ApiQuery(Query::<T>::try_from_uri(&parts.uri)?.0))
    }
}

impl From<axum::extract::rejection::PathRejection> for ApiError {
    fn from(_: axum::extract::rejection::PathRejection) -> Self {
        // A malformed id names nothing that exists.
        Self::not_found("resource")
    }
}

/// `Path` that answers a malformed id with our 404.
#[derive(Debug, Clone, Copy, Default, axum::extract::FromRequestParts)]
#[from_request(via(axum::extract::Path), rejection(ApiError))]
pub struct ApiPath<T>(pub T);

#[cfg(test)]
mod tests {
    use super::*;

    fn body(e: ApiError) -> serde_json::Value {
        let mut obj = serde_json::json!({ "code": e.code, "message": e.message });
        if let (Some(serde_json::Value::Object(extra)), Some(o)) = (e.extra, obj.as_object_mut()) {
            o.extend(extra);
        }
        if let Some(o) = obj.as_object_mut() {
            name_the_field(o, &e.message.clone());
        }
        obj
    }

    #[test]
    fn a_refused_value_names_its_field_and_why_so_the_form_can_say_it_beside_the_field() {
        let e = body(ApiError::from(ValidationError::new(
            "name",
            "must not be empty",
        )));
        assert_eq!(
            (e["field"].as_str(), e["reason"].as_str()),
            (Some("name"), Some("required"))
        );
        let e = body(ApiError::invalid(
            "send_at: must be between now and a year from now",
        ));
        assert_eq!(
            (e["field"].as_str(), e["reason"].as_str()),
            (Some("send_at"), Some("invalid"))
        );
        let e = body(ApiError::invalid(
            "business_hours.days.sat: start must be before end",
        ));
        assert_eq!(
            (e["field"].as_str(), e["reason"].as_str()),
            (Some("business_hours.days.sat"), Some("order"))
        );
        let e = body(ApiError::from(
            switchboard_channels::settings::SettingsError::Invalid {
                message: "settings: `app_id` is required".into(),
                field: Some("app_id".into()),
            },
        ));
        assert_eq!(
            (e["field"].as_str(), e["reason"].as_str()),
            (Some("app_id"), Some("required"))
        );
        // A sentence that names no field stays a message for the whole form.
        let e = body(ApiError::invalid("the file is empty"));
        assert!(e.get("field").is_none() && e.get("reason").is_none(), "{e}");
    }
}
