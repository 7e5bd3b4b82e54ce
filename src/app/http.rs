//! The HTTP surface put together: the API's and the pages' routes, JSON or HTML fallbacks, the
//! body limits, security headers on every response, and the count of requests in flight that
//! graceful shutdown waits for.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::extract::{Request, State};
use axum::http::{HeaderName, HeaderValue, Method, StatusCode, Uri, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::body::{self, BodyLimits};
use crate::api::error::ApiError;
use crate::state::AppState;
use crate::{api, web};

/// The whole HTTP surface: API, pages, JSON or HTML fallbacks, limits and security headers.
/// `in_flight` counts the requests being handled, for shutdown.
pub(super) fn router(state: AppState, in_flight: Arc<AtomicUsize>) -> Router {
    let edge = Arc::new(Edge {
        limits: BodyLimits {
            max_body_bytes: state.settings.max_body_bytes,
            timeout: state.settings.request_body_timeout,
            bulk: api::takes_bulk_body,
        },
        in_flight,
    });
    api::router()
        .merge(web::router())
        .fallback(fallback)
        .method_not_allowed_fallback(method_not_allowed)
        // The gate in `edge` enforces the limits, per route.
        .layer(DefaultBodyLimit::disable())
        .layer(axum::middleware::from_fn_with_state(edge, edge_of))
        .with_state(state)
}

/// What every request passes through before its route.
struct Edge {
    limits: BodyLimits,
    /// Requests being handled, for shutdown.
    in_flight: Arc<AtomicUsize>,
}

/// One middleware for every request (one layer costs less than several): counted in flight,
/// refused when another site sent it, its body gated, its reply given the security headers.
async fn edge_of(State(edge): State<Arc<Edge>>, request: Request, next: Next) -> Response {
    let guard = InFlight::enter(&edge.in_flight);
    let response = match cross_origin(&request) {
        Some(reason) => refuse_cross_origin(request.uri().path(), reason),
        None => body::gate(&edge.limits, request, next).await,
    };
    drop(guard);
    security_headers(response)
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

/// A state-changing request that a browser sent from another site is refused
/// (`Sec-Fetch-Site` other than `same-origin` or `none`, typed by the user; or an `Origin`
/// other than this server's own). Requests carrying neither (command-line clients, shippers)
/// pass; the forms' CSRF tokens and the API's bearer tokens still apply to everything that
/// passes.
fn refuse_cross_origin(path: &str, reason: &'static str) -> Response {
    tracing::info!(path, reason, "cross-origin request refused");
    body::early_answer(
        path,
        StatusCode::FORBIDDEN,
        "cross_origin",
        "Refused",
        reason,
    )
}

/// Why a state-changing request comes from another site, if it does.
fn cross_origin(request: &Request) -> Option<&'static str> {
    if matches!(
        *request.method(),
        Method::GET | Method::HEAD | Method::OPTIONS
    ) {
        return None;
    }
    let headers = request.headers();
    if let Some(site) = headers.get("sec-fetch-site") {
        // Browsers that send it say exactly where the request comes from.
        return (!matches!(site.as_bytes(), b"same-origin" | b"none"))
            .then_some("the request was sent by another site");
    }
    let origin = headers.get(header::ORIGIN)?;
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .or_else(|| {
            request
                .uri()
                .authority()
                .map(axum::http::uri::Authority::as_str)
        })?;
    let expected = format!("https://{host}");
    if origin.as_bytes().eq_ignore_ascii_case(expected.as_bytes()) {
        None
    } else {
        Some("the request's Origin is not this server")
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
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        format!("{} does not accept this method", uri.path()),
    )
    .into_response()
}

/// The headers of every reply (`raw_replies` adds them to hyper's own).
pub(super) const SECURITY_HEADERS: [(&str, &str); 7] = [
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
    // Not `no-referrer`: with it, browsers send `Origin: null` on the pages' own form posts.
    ("referrer-policy", "same-origin"),
    ("cross-origin-opener-policy", "same-origin"),
    ("cross-origin-resource-policy", "same-origin"),
];

fn security_headers(mut response: Response) -> Response {
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
