//! Authentication: argon2id passwords, session tokens (bearer or HttpOnly cookie), CSRF for cookie
//! sessions, and the `CurrentAgent` extractor every agent route starts with.

use crate::error::{ApiError, ApiResult};
use crate::state::AppState;
use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, Method, header};
use sha2::{Digest, Sha256};
use std::sync::OnceLock;
use subtle::ConstantTimeEq;
use switchboard_channels::livechat::{self, VisitorClaims};
use switchboard_core::Agent;
use switchboard_core::conversation::Actor;
use switchboard_store::Session;

pub const SESSION_COOKIE: &str = "sb_session";
pub const CSRF_COOKIE: &str = "sb_csrf";
pub const CSRF_HEADER: &str = "x-csrf-token";

pub use crate::random::random_token;

pub fn token_hash(token: &str) -> String {
    switchboard_channels::signing::hex(&Sha256::digest(token.as_bytes()))
}

/// Hashes a password with argon2id on a blocking thread (it is deliberately slow).
pub async fn hash_password(password: String) -> Result<String, ApiError> {
    tokio::task::spawn_blocking(move || {
        let salt = SaltString::generate(&mut argon2::password_hash::rand_core::OsRng);
        Argon2::default()
            .hash_password(password.as_bytes(), &salt)
            .map(|h| h.to_string())
    })
    .await
    .map_err(|_| ApiError::internal())?
    .map_err(|_| ApiError::internal())
}

/// Verifies on a blocking thread. With no stored hash (unknown email) it verifies against a dummy,
/// so a wrong email and a wrong password take the same time.
pub async fn verify_password(password: String, stored: Option<String>) -> bool {
    tokio::task::spawn_blocking(move || {
        let dummy = dummy_hash();
        let hash = stored.as_deref().unwrap_or(dummy);
        let ok = PasswordHash::new(hash)
            .map(|h| {
                Argon2::default()
                    .verify_password(password.as_bytes(), &h)
                    .is_ok()
            })
            .unwrap_or(false);
        ok && stored.is_some()
    })
    .await
    .unwrap_or(false)
}

fn dummy_hash() -> &'static str {
    static DUMMY: OnceLock<String> = OnceLock::new();
    DUMMY.get_or_init(|| {
        let salt = SaltString::generate(&mut argon2::password_hash::rand_core::OsRng);
        Argon2::default()
            .hash_password(random_token(16).as_bytes(), &salt)
            .map(|h| h.to_string())
            .unwrap_or_default()
    })
}

pub fn validate_password(p: &str) -> Result<(), ApiError> {
    if p.chars().count() < 8 {
        return Err(ApiError::invalid("password: must be at least 8 characters")
            .with_extra(serde_json::json!({"field": "password"})));
    }
    if p.len() > 1024 {
        return Err(ApiError::invalid("password: too long")
            .with_extra(serde_json::json!({"field": "password"})));
    }
    Ok(())
}

pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

pub fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")
        .map(str::trim)
}

/// The signed-in agent of this request.
pub struct CurrentAgent {
    pub agent: Agent,
    pub session: Session,
}

impl CurrentAgent {
    pub fn actor(&self) -> Actor {
        Actor {
            agent_id: self.agent.id,
            role: self.agent.role,
        }
    }
    pub fn require_admin(&self) -> Result<(), ApiError> {
        if self.agent.role == switchboard_core::Role::Admin {
            Ok(())
        } else {
            Err(ApiError::forbidden("only an admin may do this"))
        }
    }
}

/// Looks a session token up and returns the agent, if the session is live.
pub async fn authenticate(state: &AppState, token: &str) -> Result<CurrentAgent, ApiError> {
    authenticate_hash(state, &token_hash(token)).await
}

/// The same check by the token's hash (long-lived sockets re-check their session with it).
pub async fn authenticate_hash(state: &AppState, hash: &str) -> Result<CurrentAgent, ApiError> {
    let now = state.clock.now();
    let session = state
        .store
        .session(hash)
        .await?
        .ok_or_else(|| ApiError::unauthorized("not signed in"))?;
    if session.revoked_at.is_some() || session.expires_at <= now {
        return Err(ApiError::unauthorized(
            "the session has ended; sign in again",
        ));
    }
    let agent = state
        .store
        .agent(session.agent_id)
        .await?
        .filter(|a| a.active)
        .ok_or_else(|| ApiError::unauthorized("not signed in"))?;
    Ok(CurrentAgent { agent, session })
}

impl FromRequestParts<AppState> for CurrentAgent {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        if let Some(token) = bearer(&parts.headers) {
            return authenticate(state, token).await;
        }
        let token = cookie(&parts.headers, SESSION_COOKIE)
            .ok_or_else(|| ApiError::unauthorized("not signed in"))?;
        let current = authenticate(state, token).await?;
        // A cookie rides along on cross-site requests; unsafe methods must prove they came from our page.
        if !matches!(parts.method, Method::GET | Method::HEAD | Method::OPTIONS) {
            let sent = parts
                .headers
                .get(CSRF_HEADER)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("");
            if !bool::from(sent.as_bytes().ct_eq(current.session.csrf_token.as_bytes())) {
                return Err(ApiError::new(
                    axum::http::StatusCode::FORBIDDEN,
                    "csrf_failed",
                    "missing or wrong CSRF token (send the x-csrf-token header)",
                ));
            }
        }
        Ok(current)
    }
}

/// The visitor of this request, from `Authorization: Bearer <visitor token>`.
pub struct Visitor(pub VisitorClaims);

pub fn visitor_from_token(st: &AppState, token: &str) -> ApiResult<VisitorClaims> {
    livechat::verify_visitor_token(&st.visitor_key, token)
        .map_err(|_| ApiError::unauthorized("invalid visitor token"))
}

impl FromRequestParts<AppState> for Visitor {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, st: &AppState) -> Result<Self, ApiError> {
        let token = bearer(&parts.headers)
            .ok_or_else(|| ApiError::unauthorized("missing visitor token"))?;
        visitor_from_token(st, token).map(Visitor)
    }
}
