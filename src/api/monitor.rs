//! Live updates: `GET /api/v1/monitor/ws`, a WebSocket streaming new alerts and event counts to
//! the pages and to API clients.
//!
//! One task looks at the store once a second and publishes what changed to a bounded broadcast
//! channel; each connection forwards it. A client that falls behind by more than the channel
//! holds, or that does not take a message within [`SEND_TIMEOUT`], is disconnected: memory
//! never grows with a slow reader. The same task measures the ingest rate the system page
//! shows.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade, close_code};
use axum::http::{HeaderMap, header};
use axum::response::Response;
use serde_json::json;
use tokio::sync::{broadcast, watch};

use super::dto::AlertDto;
use super::error::ApiError;
use super::extract::Caller;
use crate::auth::Permission;
use crate::event::format_timestamp;
use crate::state::AppState;

/// Messages a connection may fall behind by before it is dropped.
const BACKLOG: usize = 256;
/// Longest wait for a client to take one message.
const SEND_TIMEOUT: Duration = Duration::from_secs(10);
/// How often the store is looked at.
const TICK: Duration = Duration::from_secs(1);
/// Alerts published per tick at most (a burst beyond that follows on the next ticks).
const ALERTS_PER_TICK: usize = 100;
/// The ingest rate is averaged over this many ticks.
const RATE_TICKS: usize = 10;

/// The publishing side, shared by every request.
#[derive(Debug)]
pub struct Monitor {
    tx: broadcast::Sender<Arc<str>>,
    /// Events stored per second, averaged over the last [`RATE_TICKS`] seconds.
    rate: AtomicU64,
}

impl Default for Monitor {
    fn default() -> Self {
        Self {
            tx: broadcast::channel(BACKLOG).0,
            rate: AtomicU64::new(0),
        }
    }
}

impl Monitor {
    /// Events stored per second, over the last ten seconds.
    #[must_use]
    pub fn rate(&self) -> u64 {
        self.rate.load(Ordering::Relaxed)
    }

    /// Connections listening now.
    #[must_use]
    pub fn listeners(&self) -> usize {
        self.tx.receiver_count()
    }
}

/// Publishes until `stop` turns true.
pub async fn run(state: AppState, mut stop: watch::Receiver<bool>) {
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let pipeline = Arc::clone(&state.pipeline.stats);
    let counters = || {
        [&pipeline.stored, &pipeline.failures, &pipeline.successes]
            .map(|c| c.load(Ordering::Relaxed))
    };
    let mut last = counters();
    let mut samples: VecDeque<(Instant, u64)> = VecDeque::with_capacity(RATE_TICKS + 1);
    let mut newest_alert = None;
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.changed() => return,
        }
        let now = counters();
        samples.push_back((Instant::now(), now[0]));
        if samples.len() > RATE_TICKS {
            samples.pop_front();
        }
        if let (Some(first), Some(latest)) = (samples.front(), samples.back()) {
            let seconds = latest.0.duration_since(first.0).as_secs_f64();
            if seconds > 0.0 {
                let rate = (latest.1 - first.1) as f64 / seconds;
                state
                    .monitor
                    .rate
                    .store(rate.round() as u64, Ordering::Relaxed);
            }
        }
        let listening = state.monitor.tx.receiver_count() > 0;
        let store = Arc::clone(&state.store);
        let since = newest_alert;
        let read = tokio::task::spawn_blocking(move || {
            let newest = store.newest_alert_id()?;
            let alerts = match since {
                Some(id) if listening => store.alerts_after(id, ALERTS_PER_TICK)?,
                _ => Vec::new(),
            };
            let active = if listening {
                store.active_alert_count()?
            } else {
                0
            };
            Ok::<_, crate::storage::StorageError>((newest, alerts, active))
        })
        .await;
        let (newest, alerts, active) = match read {
            Ok(Ok(read)) => read,
            Ok(Err(e)) => {
                tracing::warn!(error = ?e, "monitor could not read the store");
                continue;
            }
            Err(e) => {
                tracing::warn!(error = ?e, "monitor read failed");
                continue;
            }
        };
        if !listening {
            newest_alert = Some(newest);
            last = now;
            continue;
        }
        newest_alert = Some(
            alerts
                .last()
                .map_or(newest.max(since.unwrap_or(0)), |a| a.id),
        );
        for alert in alerts {
            publish(
                &state.monitor,
                &json!({"type": "alert", "alert": AlertDto::from(alert)}),
            );
        }
        publish(
            &state.monitor,
            &json!({
                "type": "counts",
                "at": format_timestamp(crate::now_micros()),
                "stored_total": now[0],
                "events": now[0] - last[0],
                "failures": now[1] - last[1],
                "successes": now[2] - last[2],
                "rate_per_sec": state.monitor.rate(),
                "active_alerts": active,
            }),
        );
        last = now;
    }
}

fn publish(monitor: &Monitor, message: &serde_json::Value) {
    // Nobody listening is not an error.
    let _ = monitor.tx.send(Arc::from(message.to_string()));
}

/// `GET /api/v1/monitor/ws`: upgrades to a WebSocket that receives `alert` and `counts`
/// messages (JSON text). Readers only; a page connects with its session cookie, whose origin
/// must be this server.
pub async fn ws(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    upgrade: WebSocketUpgrade,
) -> Result<Response, ApiError> {
    caller.require(Permission::Read)?;
    if !same_origin(&headers) {
        return Err(ApiError::forbidden());
    }
    let rx = state.monitor.tx.subscribe();
    let hello = json!({
        "type": "hello",
        "stored_total": state.pipeline.stats.stored.load(Ordering::Relaxed),
        "rate_per_sec": state.monitor.rate(),
    })
    .to_string();
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

async fn forward(mut socket: WebSocket, mut rx: broadcast::Receiver<Arc<str>>, hello: String) {
    if send(&mut socket, &hello).await.is_err() {
        return;
    }
    loop {
        tokio::select! {
            message = rx.recv() => match message {
                Ok(text) => {
                    if send(&mut socket, &text).await.is_err() {
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
