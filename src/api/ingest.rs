//! Ways in over HTTPS: `POST /ingest` (JSON events, with the risk verdict of a single one) and
//! `POST /api/v1/logs` (raw log lines). Each reads its framing and its options, hands the body
//! to the intake and shapes the reply.

use std::collections::HashMap;

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::post;
use axum::{Json, Router};

use super::dto::{IngestReply, LogsReply, RejectedDto};
use super::error::ApiError;
use super::extract::{Caller, RawBody, media_type, unsupported_media_type};
use crate::auth::Permission;
use crate::event;
use crate::ingest::json::Format;
use crate::ingest::logs::LogOptions;
use crate::ingest::parse::{self, LineClock};
use crate::intake::Input;
use crate::state::AppState;

/// The routes that take bulk data, up to `max_body_bytes`.
pub const BULK_PATHS: [&str; 2] = ["/ingest", "/api/v1/logs"];

pub fn routes() -> Router<AppState> {
    Router::new()
        .route(BULK_PATHS[0], post(ingest))
        .route(BULK_PATHS[1], post(ingest_logs))
}

/// `POST /ingest`: one JSON event, an array of them, or NDJSON.
async fn ingest(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    RawBody(body): RawBody,
) -> Result<impl IntoResponse, ApiError> {
    caller.require(Permission::Ingest)?;
    let format = match media_type(&headers).as_deref() {
        Some("application/json") => Format::Json,
        Some("application/x-ndjson" | "application/ndjson" | "application/jsonl") => Format::Ndjson,
        _ => {
            return Err(unsupported_media_type(
                "application/json or application/x-ndjson",
            ));
        }
    };
    let receipt = state.intake.take(Input::Json { body, format }).await?;
    let reply = IngestReply {
        risk: receipt.risk,
        accepted: receipt.accepted,
        duplicates: receipt.duplicates,
        rejected: receipt
            .rejected
            .into_iter()
            .map(|r| RejectedDto {
                index: r.index,
                error: r.error,
            })
            .collect(),
    };
    Ok((StatusCode::ACCEPTED, Json(reply)))
}

/// `POST /api/v1/logs`: raw log lines (`text/plain`), one per line.
async fn ingest_logs(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Query(params): Query<HashMap<String, String>>,
    RawBody(body): RawBody,
) -> Result<impl IntoResponse, ApiError> {
    caller.require(Permission::Ingest)?;
    if media_type(&headers).as_deref() != Some("text/plain") {
        return Err(unsupported_media_type("text/plain"));
    }
    let options = log_options(&params)?;
    let receipt = state
        .intake
        .take(Input::Lines(vec![(body, options)]))
        .await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(LogsReply {
            lines: receipt.lines,
            accepted: receipt.accepted,
            duplicates: receipt.duplicates,
            unparsed: receipt.unparsed,
        }),
    ))
}

/// The query of `POST /api/v1/logs`: `host`, `source`, `year`, `tz`.
fn log_options(params: &HashMap<String, String>) -> Result<LogOptions, ApiError> {
    let bad = |message: String| ApiError::new(StatusCode::BAD_REQUEST, "invalid_query", message);
    let mut host = None;
    let mut source = None;
    let mut year = None;
    let mut offset = time::UtcOffset::UTC;
    for (key, value) in params {
        match key.as_str() {
            "host" => {
                event::check_name("host", value, event::MAX_NAME_LEN)
                    .map_err(|e| bad(e.to_string()))?;
                host = Some(value.clone());
            }
            "source" => {
                event::check_name("source", value, event::MAX_NAME_LEN)
                    .map_err(|e| bad(e.to_string()))?;
                source = Some(value.clone());
            }
            "year" => {
                year = Some(
                    value
                        .parse::<i32>()
                        .ok()
                        .filter(|y| (1970..=9999).contains(y))
                        .ok_or_else(|| bad(format!("year: expected 1970-9999, got {value:?}")))?,
                );
            }
            "tz" => {
                offset = parse::parse_utc_offset(value).ok_or_else(|| {
                    bad(format!(
                        "tz: expected UTC or an offset like +02:00, got {value:?}"
                    ))
                })?;
            }
            _ => {
                return Err(bad(format!(
                    "unknown parameter `{key}` (expected host, source, year, tz)"
                )));
            }
        }
    }
    Ok(LogOptions {
        host,
        source,
        clock: LineClock::for_year(year, offset),
    })
}
