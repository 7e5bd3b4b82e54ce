//! The HTTP surface put together: the API's and the pages' routes, JSON or HTML fallbacks, the
//! body limits, security headers on every response, and the count of requests in flight that
//! graceful shutdown waits for.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderName, HeaderValue, Uri, header};
use axum::response::{IntoResponse, Response};

use super::body::{self, BodyLimits};
use crate::api::error::ApiError;
use crate::state::AppState;
use crate::{api, web};

/// The whole HTTP surface: API, pages, JSON or HTML fallbacks, limits and security headers.
/// `in_flight` counts the requests being handled, for shutdown.
pub(super) fn router(state: AppState, in_flight: Arc<AtomicUsize>) -> Router {
    let limits = Arc::new(BodyLimits {
        max_body_bytes: state.settings.max_body_bytes,
        timeout: state.settings.request_body_timeout,
        bulk: api::takes_bulk_body,
    });
    api::router()
        .merge(web::router())
        .fallback(fallback)
        .method_not_allowed_fallback(method_not_allowed)
        // The gate enforces the limits, per route.
        .layer(DefaultBodyLimit::disable())
        .layer(axum::middleware::from_fn_with_state(limits, body::gate))
        .layer(axum::middleware::map_response(security_headers))
        .layer(axum::middleware::from_fn(
            move |request: axum::extract::Request, next: axum::middleware::Next| {
                let guard = InFlight::enter(&in_flight);
                async move {
                    let response = next.run(request).await;
                    drop(guard);
                    response
                }
            },
        ))
        .with_state(state)
}

/// Counts one request from its head to its response, dropped or not.
struct InFlight(Arc<AtomicUsize>);

impl InFlight {
    fn enter(counter: &Arc<AtomicUsize>) -> Self {
        counter.fetch_add(1, Ordering::SeqCst);
        Self(Arc::clone(counter))
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

async fn fallback(uri: Uri) -> Response {
    let path = uri.path();
    if api::is_api_path(path) {
        ApiError::not_found(format!("no endpoint at {path}")).into_response()
    } else {
        web::not_found()
    }
}

async fn method_not_allowed(uri: Uri) -> Response {
    ApiError::new(
        axum::http::StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        format!("{} does not accept this method", uri.path()),
    )
    .into_response()
}

const SECURITY_HEADERS: [(&str, &str); 7] = [
    (
        "content-security-policy",
        "default-src 'self'; img-src 'self' data:; object-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
    ),
    (
        "strict-transport-security",
        "max-age=31536000; includeSubDomains",
    ),
    ("x-frame-options", "DENY"),
    ("x-content-type-options", "nosniff"),
    ("referrer-policy", "no-referrer"),
    ("cross-origin-opener-policy", "same-origin"),
    ("cross-origin-resource-policy", "same-origin"),
];

async fn security_headers(mut response: Response) -> Response {
    let headers = response.headers_mut();
    for (name, value) in SECURITY_HEADERS {
        headers.insert(
            HeaderName::from_static(name),
            HeaderValue::from_static(value),
        );
    }
    if !headers.contains_key(header::CACHE_CONTROL) {
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    response
}
