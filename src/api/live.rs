//! `GET /api/v1/monitor/ws`: a WebSocket streaming new alerts and event counts (published by
//! [`crate::live`]) to the pages and to API clients. A client that falls behind the channel,
//! or that does not take a message within [`SEND_TIMEOUT`], is disconnected.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade, close_code};
use axum::http::{HeaderMap, header};
use axum::response::Response;
use axum::routing::get;
use tokio::sync::broadcast;

use super::dto::{AlertDto, LiveMessage};
use super::error::ApiError;
use super::extract::Caller;
use crate::auth::Permission;
use crate::event::format_timestamp;
use crate::live::Update;
use crate::state::AppState;

/// Longest wait for a client to take one message.
const SEND_TIMEOUT: Duration = Duration::from_secs(10);

pub fn routes() -> Router<AppState> {
    Router::new().route("/api/v1/monitor/ws", get(ws))
}

/// `GET /api/v1/monitor/ws`: upgrades to a WebSocket that receives `alert` and `counts`
/// messages (JSON text). Readers only; a page connects with its session cookie, whose origin
/// must be this server.
async fn ws(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    upgrade: WebSocketUpgrade,
) -> Result<Response, ApiError> {
    caller.require(Permission::Read)?;
    if !same_origin(&headers) {
        return Err(ApiError::forbidden());
    }
    let rx = state.monitor.subscribe();
    let hello = text(&LiveMessage::Hello {
        stored_total: state.intake.stats().stored.load(Ordering::Relaxed),
        rate_per_sec: state.monitor.rate(),
    });
    Ok(upgrade
        .max_message_size(4096)
        .on_upgrade(move |socket| forward(socket, rx, hello)))
}

/// A browser's `Origin`, when sent, must name the host the request was sent to, so that no
/// other site's page can open the stream with the user's cookie.
fn same_origin(headers: &HeaderMap) -> bool {
    let Some(origin) = headers.get(header::ORIGIN) else {
        return true;
    };
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok());
    let origin_host = origin
        .to_str()
        .ok()
        .and_then(|o| o.strip_prefix("https://"));
    matches!((origin_host, host), (Some(o), Some(h)) if o.eq_ignore_ascii_case(h))
}

/// A published update as the message sent.
fn live_message(update: &Update) -> LiveMessage {
    match update {
        Update::Alert(alert) => LiveMessage::Alert {
            alert: Box::new(AlertDto::from(alert.clone())),
        },
        Update::Counts {
            at,
            stored_total,
            events,
            failures,
            successes,
            rate_per_sec,
            active_alerts,
        } => LiveMessage::Counts {
            at: format_timestamp(*at),
            stored_total: *stored_total,
            events: *events,
            failures: *failures,
            successes: *successes,
            rate_per_sec: *rate_per_sec,
            active_alerts: *active_alerts,
        },
    }
}

fn text(message: &LiveMessage) -> String {
    serde_json::to_string(message).unwrap_or_else(|_| "{}".into())
}

async fn forward(mut socket: WebSocket, mut rx: broadcast::Receiver<Arc<Update>>, hello: String) {
    if send(&mut socket, &hello).await.is_err() {
        return;
    }
    loop {
        tokio::select! {
            message = rx.recv() => match message {
                Ok(update) => {
                    if send(&mut socket, &text(&live_message(&update))).await.is_err() {
                        return;
                    }
                }
                Err(broadcast::error::RecvError::Lagged(missed)) => {
                    tracing::info!(missed, "dropping a monitor client that fell behind");
                    close(&mut socket, close_code::POLICY, "too slow: messages were missed").await;
                    return;
                }
                Err(broadcast::error::RecvError::Closed) => {
                    close(&mut socket, close_code::AWAY, "server shutting down").await;
                    return;
                }
            },
            incoming = socket.recv() => match incoming {
                // Pings are answered by the library; anything else a client sends is ignored.
                Some(Ok(Message::Close(_)) | Err(_)) | None => return,
                Some(Ok(_)) => {}
            },
        }
    }
}

async fn send(socket: &mut WebSocket, text: &str) -> Result<(), ()> {
    match tokio::time::timeout(SEND_TIMEOUT, socket.send(Message::Text(text.into()))).await {
        Ok(Ok(())) => Ok(()),
        _ => Err(()),
    }
}

async fn close(socket: &mut WebSocket, code: u16, reason: &str) {
    let frame = CloseFrame {
        code,
        reason: reason.into(),
    };
    let _ = tokio::time::timeout(SEND_TIMEOUT, socket.send(Message::Close(Some(frame)))).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(header::HeaderName, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(name, value.parse().unwrap());
        }
        map
    }

    #[test]
    fn only_this_servers_pages_may_open_the_stream() {
        assert!(same_origin(&headers(&[])), "API clients send no Origin");
        assert!(same_origin(&headers(&[
            (header::ORIGIN, "https://appliance:8443"),
            (header::HOST, "appliance:8443"),
        ])));
        for origin in ["https://evil.example", "http://appliance:8443", "null"] {
            assert!(
                !same_origin(&headers(&[
                    (header::ORIGIN, origin),
                    (header::HOST, "appliance:8443"),
                ])),
                "{origin}"
            );
        }
    }
}
