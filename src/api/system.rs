//! Liveness and readiness: `GET /health` answers while the process serves; `GET /ready`
//! makes a round trip to the database and shows the counts an operator watches (events,
//! commits, the search index's lag, syslog received and dropped).

use std::sync::atomic::Ordering;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};

use super::dto::{HealthDto, IndexDto, ReadyDto, SyslogDto};
use crate::state::AppState;
use crate::storage::StorageError;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/health", get(health))
        .route("/ready", get(ready))
}

async fn health() -> Json<HealthDto> {
    Json(HealthDto { status: "ok" })
}

async fn ready(State(state): State<AppState>) -> impl IntoResponse {
    let store = state.store.clone();
    let checked = tokio::task::spawn_blocking(move || {
        store.ping()?;
        Ok::<_, StorageError>((store.event_count()?, store.next_commit()?))
    })
    .await;
    match checked {
        Ok(Ok((events, next_commit))) => (
            StatusCode::OK,
            Json(ReadyDto {
                status: "ready",
                events,
                commits: state.intake.stats().commits.load(Ordering::Relaxed),
                syslog: state.syslog_addr.map(|addr| SyslogDto {
                    addr: addr.to_string(),
                    received: state.syslog_stats.received.load(Ordering::Relaxed),
                    dropped: state.syslog_stats.dropped.load(Ordering::Relaxed),
                }),
                index: IndexDto {
                    documents: state.search.document_count(),
                    rebuilding: state.search.is_rebuilding(),
                    lag_commits: next_commit.saturating_sub(state.store.indexed_below()),
                },
                uptime_secs: state.started_at.elapsed().as_secs(),
            })
            .into_response(),
        ),
        Ok(Err(err)) => {
            tracing::error!(error = ?err, "readiness check failed");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(HealthDto {
                    status: "unavailable",
                })
                .into_response(),
            )
        }
        Err(err) => {
            tracing::error!(error = ?err, "readiness check panicked");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(HealthDto {
                    status: "unavailable",
                })
                .into_response(),
            )
        }
    }
}
