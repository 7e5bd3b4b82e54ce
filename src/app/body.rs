//! Request bodies under limits: a size per route, a time to arrive, and what is left of a body
//! the handler did not read.
//!
//! [`gate`] wraps every request's body before any handler sees it. A body larger than its
//! route allows is refused with 413, before a byte of it is read when `Content-Length` says so.
//! A body must arrive within the body timeout, extended by one second for every
//! [`RATE_FLOOR`] bytes received, so a large upload on a slow link passes while a client
//! trickling a few bytes at a time is answered 408 and its connection closed. When a handler
//! answers without reading the whole body (a bad token, a throttled login), the rest is read
//! and dropped, within [`DRAIN_TIME`] and a few times the largest body, before the answer goes out:
//! HTTP/2 clients such as curl otherwise see the stream reset (`RST_STREAM`) that ends the
//! upload as an error and never show the answer.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::Request;
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http_body::{Body as _, Frame, SizeHint};
use tokio::time::{Instant, Sleep};

use crate::api::error::ApiError;
use crate::{api, web};

/// Largest body of a route that takes no bulk data (a login, a form, a JSON command).
pub const SMALL_BODY_BYTES: usize = 64 * 1024;
/// Bytes per second that earn a body one more second to arrive.
pub const RATE_FLOOR: usize = 16 * 1024;
/// Longest time spent reading an unread body before answering…
const DRAIN_TIME: Duration = Duration::from_secs(3);
/// …and most bytes, in largest bodies.
const DRAIN_BODIES: usize = 4;

/// The limits [`gate`] applies.
#[derive(Debug, Clone)]
pub struct BodyLimits {
    /// The limit of the routes that take bulk data.
    pub max_body_bytes: usize,
    /// Time a body has to arrive, before its rate extends it.
    pub timeout: Duration,
    /// Whether a path takes bulk data (up to `max_body_bytes`) rather than a small body.
    pub bulk: fn(&str) -> bool,
}

impl BodyLimits {
    fn for_path(&self, path: &str) -> usize {
        if (self.bulk)(path) {
            self.max_body_bytes
        } else {
            SMALL_BODY_BYTES.min(self.max_body_bytes)
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    /// Still arriving, or complete.
    Reading,
    TooLarge,
    TimedOut,
}

/// Why a body could not be read.
#[derive(Debug, thiserror::Error)]
enum BodyError {
    #[error("the request body exceeds {0} bytes")]
    TooLarge(usize),
    #[error("the request body did not arrive in time")]
    TimedOut,
}

struct Gate {
    /// The body as it arrives; `None` once it ended or timed out.
    inner: Option<Body>,
    limit: usize,
    received: usize,
    /// The deadline of an empty body: arrival plus the body timeout.
    base: Instant,
    /// The timer, made the first time the body is not there yet (most small bodies arrive
    /// whole, and a timer costs a registration).
    deadline: Option<Pin<Box<Sleep>>>,
    outcome: Outcome,
}

impl Gate {
    /// When the body must have arrived, given what has.
    fn deadline_now(&self) -> Instant {
        self.base + Duration::from_secs((self.received / RATE_FLOOR) as u64)
    }

    fn poll_frame(
        &mut self,
        cx: &mut Context<'_>,
        enforce: bool,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        let Some(inner) = self.inner.as_mut() else {
            return Poll::Ready(None);
        };
        match Pin::new(inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    self.received += data.len();
                    let deadline = self.deadline_now();
                    if let Some(timer) = self.deadline.as_mut()
                        && deadline != timer.deadline()
                    {
                        timer.as_mut().reset(deadline);
                    }
                    if enforce && self.received > self.limit {
                        self.outcome = Outcome::TooLarge;
                        return Poll::Ready(Some(Err(axum::Error::new(BodyError::TooLarge(
                            self.limit,
                        )))));
                    }
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(None) => {
                self.inner = None;
                Poll::Ready(None)
            }
            Poll::Ready(Some(Err(e))) => {
                self.inner = None;
                Poll::Ready(Some(Err(e)))
            }
            Poll::Pending => {
                let deadline = self.deadline_now();
                let timer = self
                    .deadline
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
                if timer.as_mut().poll(cx).is_ready() {
                    self.inner = None;
                    self.outcome = Outcome::TimedOut;
                    return Poll::Ready(Some(Err(axum::Error::new(BodyError::TimedOut))));
                }
                Poll::Pending
            }
        }
    }
}

/// The handler's view of a gated body.
struct Gated(Arc<Mutex<Gate>>);

impl Gated {
    fn lock(&self) -> std::sync::MutexGuard<'_, Gate> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl http_body::Body for Gated {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        let mut gate = self.lock();
        if gate.outcome == Outcome::TooLarge {
            return Poll::Ready(Some(Err(axum::Error::new(BodyError::TooLarge(gate.limit)))));
        }
        gate.poll_frame(cx, true)
    }

    fn is_end_stream(&self) -> bool {
        self.lock().inner.as_ref().is_none_or(Body::is_end_stream)
    }

    fn size_hint(&self) -> SizeHint {
        self.lock()
            .inner
            .as_ref()
            .map_or_else(|| SizeHint::with_exact(0), Body::size_hint)
    }
}

/// The limits above, on a request on its way to `next`.
pub async fn gate(limits: &BodyLimits, request: Request, next: Next) -> Response {
    if request.body().is_end_stream() {
        // Nothing to limit, time or drain (most GETs).
        return next.run(request).await;
    }
    let path = request.uri().path().to_string();
    let limit = limits.for_path(&path);
    let setting = (limits.bulk)(&path).then_some("max_body_bytes");
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let (parts, body) = request.into_parts();
    let shared = Arc::new(Mutex::new(Gate {
        inner: Some(body),
        limit,
        received: 0,
        base: Instant::now() + limits.timeout,
        deadline: None,
        outcome: Outcome::Reading,
    }));
    let response = if declared.is_some_and(|n| n > limit as u64) {
        refusal(&path, Outcome::TooLarge, limit, setting)
    } else {
        let request = Request::from_parts(parts, Body::new(Gated(Arc::clone(&shared))));
        let response = next.run(request).await;
        let outcome = shared
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .outcome;
        if outcome == Outcome::Reading {
            response
        } else {
            refusal(&path, outcome, limit, setting)
        }
    };
    let finished = drain(&shared, DRAIN_BODIES * limits.max_body_bytes.max(limit)).await;
    if finished {
        response
    } else {
        close_after(response)
    }
}

/// Reads and drops what is left of the body, within [`DRAIN_TIME`] and `budget` bytes; true
/// when the body ended.
async fn drain(shared: &Arc<Mutex<Gate>>, budget: usize) -> bool {
    let gated = Gated(Arc::clone(shared));
    if http_body::Body::is_end_stream(&gated) {
        return true;
    }
    let reading = async {
        let mut read = 0usize;
        loop {
            let frame = std::future::poll_fn(|cx| gated.lock().poll_frame(cx, false)).await;
            match frame {
                None => return true,
                Some(Ok(frame)) => {
                    read += frame.data_ref().map_or(0, Bytes::len);
                    if read > budget {
                        return false;
                    }
                }
                Some(Err(_)) => return false,
            }
        }
    };
    tokio::time::timeout(DRAIN_TIME, reading)
        .await
        .unwrap_or(false)
}

/// Asks an HTTP/1.1 client to open a new connection for its next request (the unread rest of
/// this body would be taken for one).
fn close_after(mut response: Response) -> Response {
    response
        .headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    response
}

/// The 408 or 413 answer; `setting` names the option that sets the limit, if one does.
fn refusal(path: &str, outcome: Outcome, limit: usize, setting: Option<&str>) -> Response {
    let response = if outcome == Outcome::TimedOut {
        early_answer(
            path,
            StatusCode::REQUEST_TIMEOUT,
            "request_timeout",
            "Request timed out",
            "the request body did not arrive in time",
        )
    } else {
        let message = match setting {
            Some(name) => format!("the request body exceeds the {limit} bytes of {name}"),
            None => format!("the request body exceeds the {limit} bytes this endpoint accepts"),
        };
        early_answer(
            path,
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            "Request too large",
            &message,
        )
    };
    close_after(response)
}

/// An answer made before any handler ran, in the format of the path's caller: the API's JSON
/// error (`code`, `message`) or an error page (`title`, `message`).
pub(super) fn early_answer(
    path: &str,
    status: StatusCode,
    code: &'static str,
    title: &str,
    message: &str,
) -> Response {
    if api::is_api_path(path) {
        ApiError::new(status, code, message).into_response()
    } else {
        web::plain_error(status, title, message)
    }
}
