//! The one mapping from failures to JSON error responses.
//!
//! Every error body is `{"error":{"code":"…","message":"…"}}` with a stable `snake_case` code.
//! Internal failures are logged in full and answered with a generic message, so responses
//! never leak paths, database details or whether a credential belonged to a real user.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::admin::AdminError;
use crate::alerting::triage::TriageError;
use crate::auth::AuthError;
use crate::ingest::json::DecodeError;
use crate::ingest::pipeline::PipelineError;
use crate::intake::IntakeError;
use crate::storage::StorageError;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    /// Seconds to wait before trying again (`Retry-After`), for a throttled request.
    pub retry_after: Option<u64>,
}

#[derive(Serialize)]
struct Body<'a> {
    error: Inner<'a>,
}

#[derive(Serialize)]
struct Inner<'a> {
    code: &'a str,
    message: &'a str,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            retry_after: None,
        }
    }

    /// 429: too many login attempts from the caller's address.
    #[must_use]
    pub fn throttled(wait: std::time::Duration) -> Self {
        let seconds = wait.as_secs().max(1);
        Self {
            retry_after: Some(seconds),
            ..Self::new(
                StatusCode::TOO_MANY_REQUESTS,
                "too_many_attempts",
                format!("too many login attempts from this address; try again in {seconds} s"),
            )
        }
    }

    pub fn invalid_parameter(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_parameter", message)
    }

    pub fn invalid_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_request", message)
    }

    #[must_use]
    pub fn unauthorized() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "missing, invalid, expired or revoked credentials",
        )
    }

    #[must_use]
    pub fn forbidden() -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            "these credentials do not grant this operation",
        )
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", message)
    }

    /// Logs the cause with its whole chain and answers with a generic 500.
    pub fn internal(cause: &dyn std::fmt::Debug) -> Self {
        tracing::error!(error = ?cause, "internal error");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "internal error; the server log has details",
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = Body {
            error: Inner {
                code: self.code,
                message: &self.message,
            },
        };
        let mut response = (self.status, Json(body)).into_response();
        if let Some(seconds) = self.retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        if self.status == StatusCode::UNAUTHORIZED {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}

impl From<AuthError> for ApiError {
    fn from(err: AuthError) -> Self {
        match err {
            AuthError::Missing | AuthError::Invalid => Self::unauthorized(),
            AuthError::Forbidden => Self::forbidden(),
            AuthError::Throttled(wait) => Self::throttled(wait),
            AuthError::Storage(e) => Self::internal(&e),
        }
    }
}

impl From<StorageError> for ApiError {
    fn from(err: StorageError) -> Self {
        Self::internal(&err)
    }
}

impl From<TriageError> for ApiError {
    fn from(e: TriageError) -> Self {
        match e {
            TriageError::Invalid(message) => {
                Self::new(StatusCode::BAD_REQUEST, "invalid_request", message)
            }
            TriageError::Storage(e) => e.into(),
        }
    }
}

impl From<IntakeError> for ApiError {
    fn from(err: IntakeError) -> Self {
        match err {
            IntakeError::Json(e) => e.into(),
            IntakeError::Lines(e) => e.into(),
            IntakeError::Offset(e) => Self::invalid_request(e.to_string()),
            IntakeError::InvalidEvent(message) => {
                Self::new(StatusCode::BAD_REQUEST, "invalid_event", message)
            }
            IntakeError::Pipeline(e) => e.into(),
            IntakeError::Storage(e) => Self::internal(&e),
            IntakeError::Worker(e) => Self::internal(&e),
        }
    }
}

impl From<DecodeError> for ApiError {
    fn from(err: DecodeError) -> Self {
        let code = match err {
            DecodeError::Syntax { .. } | DecodeError::NotObjectOrArray => "invalid_json",
            DecodeError::Empty => "empty_body",
            DecodeError::TooMany => "too_many_events",
        };
        Self::new(StatusCode::BAD_REQUEST, code, err.to_string())
    }
}

impl From<crate::ingest::logs::LinesError> for ApiError {
    fn from(e: crate::ingest::logs::LinesError) -> Self {
        use crate::ingest::logs::LinesError;
        match e {
            LinesError::Empty => Self::new(StatusCode::BAD_REQUEST, "empty_body", e.to_string()),
            LinesError::TooMany => Self::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "too_many_lines",
                e.to_string(),
            ),
        }
    }
}

impl From<PipelineError> for ApiError {
    fn from(err: PipelineError) -> Self {
        match err {
            PipelineError::Closed => Self::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                "the server is shutting down; retry",
            ),
            PipelineError::Storage(e) => {
                tracing::error!(error = ?e, "event store failure");
                Self::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "storage_unavailable",
                    "events could not be stored; nothing was acknowledged, retry later",
                )
            }
        }
    }
}

impl From<AdminError> for ApiError {
    fn from(err: AdminError) -> Self {
        match err {
            AdminError::Invalid(m) => Self::invalid_request(m),
            AdminError::NotFound(m) => Self::not_found(m),
            AdminError::Conflict(m) => Self::new(StatusCode::CONFLICT, "conflict", m),
            AdminError::Storage(e) => Self::internal(&e),
            AdminError::Failed(e) => Self::internal(&e),
        }
    }
}
