//! Request extractors: the authenticated principal and JSON bodies with our error format.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, Method, StatusCode, header};
use serde::de::DeserializeOwned;

use super::error::ApiError;
use crate::auth::{AuthError, Permission, Principal};
use crate::state::AppState;

/// Name of the dashboard session cookie. The `__Host-` prefix makes browsers refuse it unless
/// it is Secure, has `Path=/` and no `Domain`, so no sibling host can plant or read it.
pub const SESSION_COOKIE: &str = "__Host-securify_session";

/// The caller of an API request, authenticated by a Bearer header (or the same token as the
/// password of HTTP Basic, for tools that can only put credentials in a URL, such as a
/// firewall fetching the blocklist from `https://any:TOKEN@appliance/…`) or, for reads only,
/// by the dashboard cookie (a state-changing API call never rides on ambient cookie
/// credentials).
#[derive(Debug, Clone)]
pub struct Caller(pub Principal);

impl Caller {
    /// Fails with 403 unless the caller holds `permission`.
    pub fn require(&self, permission: Permission) -> Result<&Principal, ApiError> {
        if self.0.allows(permission) {
            Ok(&self.0)
        } else {
            Err(ApiError::forbidden())
        }
    }
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        if let Some(value) = parts.headers.get(header::AUTHORIZATION) {
            let value = value.to_str().map_err(|_| ApiError::unauthorized())?;
            if let Some(basic) = value
                .strip_prefix("Basic ")
                .or_else(|| value.strip_prefix("basic "))
            {
                let token = basic_password(basic.trim()).ok_or_else(ApiError::unauthorized)?;
                return Ok(Self(state.auth.authenticate_bearer(&token)?));
            }
            let token = value
                .strip_prefix("Bearer ")
                .or_else(|| value.strip_prefix("bearer "))
                .ok_or_else(ApiError::unauthorized)?
                .trim();
            return Ok(Self(state.auth.authenticate_bearer(token)?));
        }
        let safe = matches!(parts.method, Method::GET | Method::HEAD);
        match cookie(&parts.headers, SESSION_COOKIE) {
            Some(session) if safe => Ok(Self(state.auth.authenticate_session(session)?)),
            _ => Err(AuthError::Missing.into()),
        }
    }
}

/// A login its client's address may try now (see `Auth::admit`). A throttled client is
/// answered 429 before its body is read.
pub struct LoginAdmitted(pub std::net::IpAddr);

impl FromRequestParts<AppState> for LoginAdmitted {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let axum::extract::ConnectInfo(peer) = parts
            .extensions
            .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
            .copied()
            .ok_or_else(|| ApiError::internal(&"request without a client address"))?;
        state.auth.admit(peer.ip())?;
        Ok(Self(peer.ip()))
    }
}

/// The password of an HTTP Basic credential (`base64(user:password)`); the user is ignored.
fn basic_password(encoded: &str) -> Option<String> {
    use base64::Engine;
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (_, password) = text.split_once(':')?;
    Some(password.to_string())
}

/// The value of a cookie, if the request carries it.
#[must_use]
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// The raw body (its size and time limits are the gate's, in `app::body`).
pub struct RawBody(pub Bytes);

impl FromRequest<AppState> for RawBody {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, ApiError> {
        match Bytes::from_request(req, state).await {
            Ok(bytes) => Ok(Self(bytes)),
            Err(rejection) => Err(body_error(&rejection)),
        }
    }
}

/// A body that could not be read: too large or too slow bodies are answered by the gate in
/// `app::body`, which replaces this reply.
fn body_error(_: &BytesRejection) -> ApiError {
    ApiError::invalid_request("could not read the request body")
}

/// A JSON request body of type `T`; requires `Content-Type: application/json`.
pub struct JsonBody<T>(pub T);

impl<T: DeserializeOwned> FromRequest<AppState> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, ApiError> {
        if media_type(req.headers()).as_deref() != Some("application/json") {
            return Err(unsupported_media_type("application/json"));
        }
        let RawBody(bytes) = RawBody::from_request(req, state).await?;
        serde_json::from_slice(&bytes).map(Self).map_err(|e| {
            let code = if e.is_data() {
                "invalid_request"
            } else {
                "invalid_json"
            };
            ApiError::new(StatusCode::BAD_REQUEST, code, e.to_string())
        })
    }
}

/// The lower-cased media type of the request, without parameters such as `charset`.
#[must_use]
pub fn media_type(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(header::CONTENT_TYPE)?.to_str().ok()?;
    let essence = value.split(';').next()?.trim().to_ascii_lowercase();
    (!essence.is_empty()).then_some(essence)
}

#[must_use]
pub fn unsupported_media_type(expected: &str) -> ApiError {
    ApiError::new(
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported_media_type",
        format!("expected Content-Type: {expected}"),
    )
}
