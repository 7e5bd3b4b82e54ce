//! Handlers of the JSON API. Each checks the caller's permission first, then parses its input
//! into domain types, then calls the store, pipeline or admin service.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use axum::Json;
use axum::extract::{ConnectInfo, Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::dto::{
    self, AlertDto, AlertStatusRequest, EventDto, EventPageDto, IngestReply, LoginReply,
    LoginRequest, MeReply, RefreshRequest, RejectedDto, TokenCreateRequest, UserCreateRequest,
    UserSummary,
};
use super::error::ApiError;
use super::extract::{Caller, JsonBody, RawBody, media_type, unsupported_media_type};
use crate::admin::{AdminRequest, AdminResponse};
use crate::auth::jwt::Purpose;
use crate::auth::{AuthError, Grant, Permission, Principal};
use crate::event;
use crate::ingest::json::{self, Format};
use crate::ingest::logs::{self, LogOptions};
use crate::ingest::parse::{self, LineClock};
use crate::search::SearchError;
use crate::state::AppState;
use crate::stats;
use crate::storage::{AlertNote, AlertQuery, AlertStatus, EncodedEvent, EventCursor, EventQuery};
use crate::triage;

/// Bodies above this size are decoded on the blocking pool instead of an executor thread.
const INLINE_DECODE_BYTES: usize = 256 * 1024;
/// Default and largest page size of `GET /api/v1/events`.
const DEFAULT_LIMIT: usize = 100;
const MAX_LIMIT: usize = 1000;

pub async fn ingest(
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
    let body_len = body.len();
    let now = crate::now_micros();
    // Decoding and encoding happen here, on the request's thread, so the single writer
    // thread only inserts; big bodies go to the blocking pool to keep executors responsive.
    let prepare = move || {
        json::decode(&body, format, now).map(|decoded| {
            let encoded: Vec<EncodedEvent> = decoded.events.iter().map(EncodedEvent::new).collect();
            (decoded, encoded)
        })
    };
    let (decoded, encoded) = if body_len > INLINE_DECODE_BYTES {
        tokio::task::spawn_blocking(prepare)
            .await
            .map_err(|e| ApiError::internal(&e))??
    } else {
        prepare()?
    };
    if decoded.single
        && let Some(rejection) = decoded.rejected.first()
    {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_event",
            rejection.error.clone(),
        ));
    }
    let mut outcome = state.pipeline.submit(encoded).await?;
    let duplicates = std::mem::take(&mut outcome.duplicate_positions);
    // A single event is assessed as it is detected on: the caller may act on the verdict.
    let single = decoded.single;
    let mut risks = state
        .detect_with_risk(decoded.events, duplicates, single)
        .await;
    let reply = IngestReply {
        risk: risks.pop().filter(|_| single),
        accepted: outcome.accepted,
        duplicates: outcome.duplicates,
        rejected: decoded
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
pub async fn ingest_logs(
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
    let mut options = log_options(&params)?;
    let now = crate::now_micros();
    let miner = Arc::clone(&state.miner);
    let prepare = move || {
        let text = String::from_utf8_lossy(&body);
        logs::prepare(&text, &mut options, &miner, now).map(|prepared| {
            let encoded: Vec<EncodedEvent> =
                prepared.events.iter().map(EncodedEvent::new).collect();
            (prepared, encoded)
        })
    };
    let (prepared, encoded) = tokio::task::spawn_blocking(prepare)
        .await
        .map_err(|e| ApiError::internal(&e))??;
    let lines = encoded.len();
    let mut outcome = state
        .pipeline
        .submit_with_templates(encoded, prepared.templates)
        .await?;
    let duplicates = std::mem::take(&mut outcome.duplicate_positions);
    state.detect(prepared.events, duplicates).await;
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({
            "lines": lines,
            "accepted": outcome.accepted,
            "duplicates": outcome.duplicates,
            "unparsed": prepared.unparsed,
        })),
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

/// Most alerts in one page.
const MAX_ALERTS_PAGE: usize = 500;

/// `GET /api/v1/alerts`: `status`, `severity`, `rule`, `entity`, `since` (RFC 3339), `limit`,
/// `cursor`; newest first.
pub async fn list_alerts(
    State(state): State<AppState>,
    caller: Caller,
    Query(params): Query<HashMap<String, String>>,
) -> Result<impl IntoResponse, ApiError> {
    caller.require(Permission::Read)?;
    let bad = |message: String| ApiError::new(StatusCode::BAD_REQUEST, "invalid_query", message);
    let mut query = AlertQuery {
        limit: DEFAULT_LIMIT,
        ..AlertQuery::default()
    };
    for (key, value) in &params {
        match key.as_str() {
            "status" => {
                query.status = Some(AlertStatus::parse(value).ok_or_else(|| {
                    bad("status: expected open, acknowledged, resolved or false_positive".into())
                })?);
            }
            "severity" => {
                if !["low", "medium", "high", "critical"].contains(&value.as_str()) {
                    return Err(bad(
                        "severity: expected low, medium, high or critical".into()
                    ));
                }
                query.severity = Some(value.clone());
            }
            "rule" => query.rule = Some(value.clone()),
            "entity" => query.entity = Some(value.clone()),
            "since" => {
                query.since =
                    Some(event::parse_timestamp("since", value).map_err(|e| bad(e.to_string()))?);
            }
            "limit" => {
                query.limit = value
                    .parse()
                    .ok()
                    .filter(|n| (1..=MAX_ALERTS_PAGE).contains(n))
                    .ok_or_else(|| bad(format!("limit: expected 1 to {MAX_ALERTS_PAGE}")))?;
            }
            "cursor" => {
                query.before_id = Some(
                    value
                        .parse()
                        .map_err(|_| bad("cursor: not a cursor".into()))?,
                );
            }
            _ => {
                return Err(bad(format!(
                    "unknown parameter `{key}` (expected status, severity, rule, entity, since, limit, cursor)"
                )));
            }
        }
    }
    let limit = query.limit;
    let store = state.store.clone();
    let alerts = tokio::task::spawn_blocking(move || store.alerts(&query))
        .await
        .map_err(|e| ApiError::internal(&e))??;
    let next_cursor = (alerts.len() == limit)
        .then(|| alerts.last().map(|a| a.id.to_string()))
        .flatten();
    let alerts: Vec<AlertDto> = alerts.into_iter().map(AlertDto::from).collect();
    Ok(Json(
        json!({ "alerts": alerts, "next_cursor": next_cursor }),
    ))
}

/// `GET /api/v1/alerts/{id}`: the alert and its evidence events.
pub async fn get_alert(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    caller.require(Permission::Read)?;
    let id: u64 = id
        .parse()
        .map_err(|_| ApiError::not_found(format!("no alert {id}")))?;
    let store = state.store.clone();
    let found = tokio::task::spawn_blocking(move || {
        let Some(alert) = store.alert(id)? else {
            return Ok(None);
        };
        let mut events = Vec::new();
        for event_id in &alert.evidence {
            if let Some(event) = store.get_event(event_id)? {
                events.push(EventDto::from(event));
            }
        }
        let members = if alert.entity_type == "campaign" {
            Some(store.alert_members(id, MAX_MEMBERS_LISTED)?)
        } else {
            None
        };
        Ok::<_, crate::storage::StorageError>(Some((alert, events, members)))
    })
    .await
    .map_err(|e| ApiError::internal(&e))??;
    let (alert, events, members) =
        found.ok_or_else(|| ApiError::not_found(format!("no alert {id}")))?;
    let mut dto = AlertDto::from(alert);
    if let Some((listed, total)) = members {
        dto.members = Some(listed);
        dto.member_count = Some(total);
    }
    let mut body = serde_json::to_value(dto).map_err(|e| ApiError::internal(&e))?;
    body["evidence_events"] = serde_json::to_value(events).map_err(|e| ApiError::internal(&e))?;
    Ok(Json(body))
}

/// `PUT /api/v1/alerts/{id}/status`: `{status, note}` (analysts and admins).
pub async fn set_alert_status(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    JsonBody(request): JsonBody<AlertStatusRequest>,
) -> Result<impl IntoResponse, ApiError> {
    let principal = caller.require(Permission::Triage)?;
    let id: u64 = id
        .parse()
        .map_err(|_| ApiError::not_found(format!("no alert {id}")))?;
    let status = AlertStatus::parse(&request.status).ok_or_else(|| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "status: expected open, acknowledged, resolved or false_positive",
        )
    })?;
    event::check_text("note", &request.note, 4096)
        .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "invalid_request", e.to_string()))?;
    let note = AlertNote {
        at: crate::now_micros(),
        by: principal.label(),
        status,
        text: request.note,
    };
    let store = state.store.clone();
    let updated = tokio::task::spawn_blocking(move || store.set_alert_status(id, status, note))
        .await
        .map_err(|e| ApiError::internal(&e))??;
    let alert = updated.ok_or_else(|| ApiError::not_found(format!("no alert {id}")))?;
    tracing::info!(alert = id, status = status.as_str(), by = %principal.label(), "alert status changed");
    Ok(Json(AlertDto::from(alert)))
}

/// Most members listed with one alert.
const MAX_MEMBERS_LISTED: usize = 10_000;

/// `POST /api/v1/alerts`: an alert raised by an analyst (`title`, `severity`, `entity_type`,
/// `entity`, optional `note`, `evidence` event ids, `attack` ids and `block`).
pub async fn create_alert(
    State(state): State<AppState>,
    caller: Caller,
    JsonBody(request): JsonBody<dto::ManualAlertRequest>,
) -> Result<impl IntoResponse, ApiError> {
    let principal = caller.require(Permission::Triage)?;
    let alert = triage::ManualAlert {
        title: request.title,
        severity: request.severity,
        entity_type: request.entity_type,
        entity: request.entity,
        note: request.note,
        evidence: request.evidence,
        block: request.block,
        attack: request.attack,
    };
    let store = state.store.clone();
    let label = principal.label();
    let alert = tokio::task::spawn_blocking(move || {
        triage::raise(&store, alert, label, crate::now_micros())
    })
    .await
    .map_err(|e| ApiError::internal(&e))??;
    tracing::info!(alert = alert.id, by = %principal.label(), "alert raised by hand");
    Ok((StatusCode::CREATED, Json(AlertDto::from(alert))))
}

/// `GET /api/v1/blocklist`: the addresses to block now, one per line (`text/plain`), or with
/// reason and expiry as JSON (`format=json` or `Accept: application/json`).
pub async fn blocklist(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    caller.require(Permission::Read)?;
    let json_wanted = match params.get("format").map(String::as_str) {
        Some("json") => true,
        Some("text") => false,
        Some(other) => {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid_query",
                format!("format: expected text or json, not `{other}`"),
            ));
        }
        None => headers
            .get(header::ACCEPT)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.contains("application/json")),
    };
    if let Some(key) = params.keys().find(|k| k.as_str() != "format") {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_query",
            format!("unknown parameter `{key}` (expected format)"),
        ));
    }
    let now = crate::now_micros();
    let store = state.store.clone();
    let settings = state.settings.clone();
    let entries = tokio::task::spawn_blocking(move || triage::blocklist(&store, &settings, now))
        .await
        .map_err(|e| ApiError::internal(&e))??
        .blocked;
    if json_wanted {
        let listed: Vec<_> = entries
            .iter()
            .map(|e| {
                json!({
                    "ip": e.ip,
                    "reason": e.reason,
                    "rule": e.rule,
                    "alert_id": e.alert_id,
                    "expires_at": event::format_timestamp(e.expires_at),
                })
            })
            .collect();
        return Ok(Json(json!({
            "generated_at": event::format_timestamp(now),
            "count": listed.len(),
            "addresses": listed,
        }))
        .into_response());
    }
    let mut text = String::with_capacity(entries.len() * 16);
    for entry in &entries {
        text.push_str(&entry.ip);
        text.push('\n');
    }
    Ok(([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], text).into_response())
}

/// `GET /api/v1/allowlist`: the networks kept off the blocklist (the configuration's and those
/// added here).
pub async fn allowlist(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<Value>, ApiError> {
    caller.require(Permission::Read)?;
    let store = state.store.clone();
    let stored = tokio::task::spawn_blocking(move || store.allowlist())
        .await
        .map_err(|e| ApiError::internal(&e))??;
    let configured = state.settings.blocklist_allow.iter().map(|n| {
        json!({"network": n.to_string(), "note": "from the configuration (blocklist_allow)", "by": "config", "at": null})
    });
    let added = stored.into_iter().map(|e| {
        json!({"network": e.network, "note": e.note, "by": e.by, "at": event::format_timestamp(e.at)})
    });
    Ok(Json(
        json!({ "networks": configured.chain(added).collect::<Vec<_>>() }),
    ))
}

/// `POST /api/v1/allowlist` `{"network": "192.0.2.0/24", "note": "…"}`: keeps a network off the
/// blocklist.
pub async fn allowlist_add(
    State(state): State<AppState>,
    caller: Caller,
    JsonBody(request): JsonBody<dto::AllowRequest>,
) -> Result<impl IntoResponse, ApiError> {
    let principal = caller.require(Permission::Triage)?;
    let store = state.store.clone();
    let by = principal.label();
    let entry = tokio::task::spawn_blocking(move || {
        triage::allow(
            &store,
            &request.network,
            &request.note,
            by,
            crate::now_micros(),
        )
    })
    .await
    .map_err(|e| ApiError::internal(&e))??;
    tracing::info!(network = %entry.network, by = %principal.label(), "network allow-listed");
    Ok((
        StatusCode::CREATED,
        Json(
            json!({"network": entry.network, "note": entry.note, "by": entry.by, "at": event::format_timestamp(entry.at)}),
        ),
    ))
}

/// `DELETE /api/v1/allowlist?network=192.0.2.0/24`.
pub async fn allowlist_remove(
    State(state): State<AppState>,
    caller: Caller,
    Query(params): Query<HashMap<String, String>>,
) -> Result<StatusCode, ApiError> {
    let principal = caller.require(Permission::Triage)?;
    let text = params
        .get("network")
        .ok_or_else(|| ApiError::invalid_parameter("`network` is required"))?;
    let network = triage::parse_network(text)
        .map_err(|e| ApiError::invalid_parameter(format!("`network`: {e}")))?
        .to_string();
    let store = state.store.clone();
    let key = network.clone();
    let removed = tokio::task::spawn_blocking(move || store.disallow(&key))
        .await
        .map_err(|e| ApiError::internal(&e))??;
    if !removed {
        return Err(ApiError::not_found(format!(
            "{network} is not on the allow-list kept by the appliance"
        )));
    }
    tracing::info!(network = %network, by = %principal.label(), "network removed from the allow-list");
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /api/v1/templates`: the template miner's templates, as stored.
pub async fn list_templates(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<impl IntoResponse, ApiError> {
    caller.require(Permission::Read)?;
    let store = state.store.clone();
    let templates = tokio::task::spawn_blocking(move || store.templates())
        .await
        .map_err(|e| ApiError::internal(&e))??;
    let templates: Vec<_> = templates
        .into_iter()
        .map(|t| json!({"id": t.id, "template": t.tokens.join(" "), "count": t.count}))
        .collect();
    Ok(Json(json!({ "templates": templates })))
}

pub async fn health() -> impl IntoResponse {
    Json(json!({ "status": "ok" }))
}

pub async fn ready(State(state): State<AppState>) -> impl IntoResponse {
    let store = state.store.clone();
    let checked = tokio::task::spawn_blocking(move || {
        store.ping()?;
        Ok::<_, crate::storage::StorageError>((store.event_count()?, store.next_commit()?))
    })
    .await;
    match checked {
        Ok(Ok((events, next_commit))) => (
            StatusCode::OK,
            Json(json!({
                "status": "ready",
                "events": events,
                "commits": state.pipeline.stats.commits.load(Ordering::Relaxed),
                "syslog": state.syslog_addr.map(|addr| json!({
                    "addr": addr.to_string(),
                    "received": state.syslog_stats.received.load(Ordering::Relaxed),
                    "dropped": state.syslog_stats.dropped.load(Ordering::Relaxed),
                })),
                "index": {
                    "documents": state.search.document_count(),
                    "rebuilding": state.search.is_rebuilding(),
                    // Store commits whose events are not searchable yet.
                    "lag_commits": next_commit.saturating_sub(state.store.indexed_below()),
                },
                "uptime_secs": state.started_at.elapsed().as_secs(),
            })),
        ),
        Ok(Err(err)) => {
            tracing::error!(error = ?err, "readiness check failed");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(json!({ "status": "unavailable" })),
            )
        }
        Err(err) => {
            tracing::error!(error = ?err, "readiness check panicked");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(json!({ "status": "unavailable" })),
            )
        }
    }
}

/// A time parameter (RFC 3339) in µs.
fn time_param(key: &'static str, value: &str) -> Result<i64, ApiError> {
    event::parse_timestamp(key, value)
        .map_err(|e| ApiError::invalid_parameter(format!("`{key}`: {}", e.reason)))
}

/// A page size from 1 to [`MAX_LIMIT`].
fn limit_param(key: &str, value: &str) -> Result<usize, ApiError> {
    value
        .parse()
        .ok()
        .filter(|n| (1..=MAX_LIMIT).contains(n))
        .ok_or_else(|| {
            ApiError::invalid_parameter(format!("`{key}`: expected a number from 1 to {MAX_LIMIT}"))
        })
}

/// A cursor from a previous page of events.
fn cursor_param(key: &str, value: &str) -> Result<EventCursor, ApiError> {
    dto::decode_cursor(value).ok_or_else(|| {
        ApiError::invalid_parameter(format!("`{key}`: not a cursor from a previous page"))
    })
}

/// Parses the query string of `GET /api/v1/events` into an [`EventQuery`].
fn event_query(params: &HashMap<String, String>) -> Result<EventQuery, ApiError> {
    let mut query = EventQuery {
        limit: DEFAULT_LIMIT,
        ..EventQuery::default()
    };
    for (key, value) in params {
        let bad = |what: &str| ApiError::invalid_parameter(format!("`{key}`: {what}"));
        match key.as_str() {
            "from" => query.from = Some(time_param("from", value)?),
            "to" => query.to = Some(time_param("to", value)?),
            "source_ip" => {
                query.source_ip =
                    Some(event::parse_ip("source_ip", value).map_err(|e| bad(&e.reason))?);
            }
            "username" => query.username = Some(value.clone()),
            "event_type" => query.event_type = Some(value.to_ascii_uppercase()),
            "success" => {
                query.success = Some(match value.as_str() {
                    "true" => true,
                    "false" => false,
                    _ => return Err(bad("expected true or false")),
                });
            }
            "limit" => query.limit = limit_param(key, value)?,
            "cursor" => query.before = Some(cursor_param(key, value)?),
            _ => {
                return Err(ApiError::invalid_parameter(format!(
                    "unknown parameter `{key}` (expected from, to, source_ip, username, event_type, success, limit, cursor)"
                )));
            }
        }
    }
    if let (Some(from), Some(to)) = (query.from, query.to)
        && from > to
    {
        return Err(ApiError::invalid_parameter("`from` is after `to`"));
    }
    Ok(query)
}

pub async fn list_events(
    State(state): State<AppState>,
    caller: Caller,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Json<EventPageDto>, ApiError> {
    caller.require(Permission::Read)?;
    let query = event_query(&params)?;
    let store = state.store.clone();
    let page = tokio::task::spawn_blocking(move || store.query_events(&query))
        .await
        .map_err(|e| ApiError::internal(&e))??;
    Ok(Json(EventPageDto {
        events: page.events.into_iter().map(EventDto::from).collect(),
        next_cursor: page.next.map(dto::encode_cursor),
    }))
}

/// `GET /api/v1/search`: events matching a query of the search language, newest first.
pub async fn search(
    State(state): State<AppState>,
    caller: Caller,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Json<EventPageDto>, ApiError> {
    caller.require(Permission::Read)?;
    let mut text = String::new();
    let mut limit = DEFAULT_LIMIT;
    let (mut from, mut to, mut before) = (None, None, None);
    for (key, value) in &params {
        match key.as_str() {
            "q" => text.clone_from(value),
            "from" => from = Some(time_param("from", value)?),
            "to" => to = Some(time_param("to", value)?),
            "limit" => limit = limit_param(key, value)?,
            "cursor" => before = Some(cursor_param(key, value)?),
            _ => {
                return Err(ApiError::invalid_parameter(format!(
                    "unknown parameter `{key}` (expected q, from, to, limit, cursor)"
                )));
            }
        }
    }
    if let (Some(from), Some(to)) = (from, to)
        && from > to
    {
        return Err(ApiError::invalid_parameter("`from` is after `to`"));
    }
    let found = tokio::task::spawn_blocking(move || {
        let hits = state.search.search(&text, from, to, before, limit)?;
        let events = state.store.events_at(&hits)?;
        // A full page continues after its last hit.
        let next = hits.last().copied().filter(|_| hits.len() == limit);
        Ok::<_, SearchError>((next, events))
    })
    .await
    .map_err(|e| ApiError::internal(&e))?;
    let (next, events) = match found {
        Ok(found) => found,
        Err(SearchError::Query { message, position }) => {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid_query",
                format!("at character {position} of `q`: {message}"),
            ));
        }
        Err(e) => return Err(ApiError::internal(&e)),
    };
    Ok(Json(EventPageDto {
        events: events.into_iter().map(EventDto::from).collect(),
        next_cursor: next.map(dto::encode_cursor),
    }))
}

/// `GET /api/v1/stats/timeline`: events, failures and successes, and alerts opened by
/// severity, per bucket of event time, from the per-minute counts stored with them.
pub async fn timeline(
    State(state): State<AppState>,
    caller: Caller,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    caller.require(Permission::Read)?;
    let now = crate::now_micros();
    let (mut from, mut to, mut step) = (now - 3_600_000_000, now, 1i64);
    for (key, value) in &params {
        match key.as_str() {
            "from" => from = time_param("from", value)?,
            "to" => to = time_param("to", value)?,
            "step_minutes" => {
                step = value
                    .parse()
                    .ok()
                    .filter(|n| (1..=stats::MAX_BUCKETS).contains(n))
                    .ok_or_else(|| {
                        ApiError::invalid_parameter(format!(
                            "`{key}`: expected a number from 1 to {}",
                            stats::MAX_BUCKETS
                        ))
                    })?;
            }
            _ => {
                return Err(ApiError::invalid_parameter(format!(
                    "unknown parameter `{key}` (expected from, to, step_minutes)"
                )));
            }
        }
    }
    let store = state.store.clone();
    let buckets = tokio::task::spawn_blocking(move || stats::timeline(&store, from, to, step))
        .await
        .map_err(|e| ApiError::internal(&e))?
        .map_err(|e| match e {
            stats::TimelineError::Storage(e) => ApiError::from(e),
            e => ApiError::invalid_parameter(e.to_string()),
        })?;
    let buckets: Vec<Value> = buckets
        .into_iter()
        .map(|b| {
            let [low, medium, high, critical] = b.alerts;
            json!({
                "start": event::format_timestamp(b.start),
                "events": b.events,
                "failures": b.failures,
                "successes": b.successes,
                "alerts": {"low": low, "medium": medium, "high": high, "critical": critical},
            })
        })
        .collect();
    Ok(Json(json!({ "step_minutes": step, "buckets": buckets })))
}

/// `GET /api/v1/stats/top`: the addresses, accounts, hosts or countries with the most failed
/// (then all) events over the hours of a time range.
pub async fn top(
    State(state): State<AppState>,
    caller: Caller,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    caller.require(Permission::Read)?;
    let now = crate::now_micros();
    let (mut from, mut to, mut limit, mut by) = (now - 86_400_000_000, now, 10, None);
    for (key, value) in &params {
        match key.as_str() {
            "from" => from = time_param("from", value)?,
            "to" => to = time_param("to", value)?,
            "limit" => limit = limit_param("limit", value)?,
            "by" => {
                by = Some(stats::Ranked::parse(value).ok_or_else(|| {
                    ApiError::invalid_parameter("`by`: expected ip, user, host or country")
                })?);
            }
            _ => {
                return Err(ApiError::invalid_parameter(format!(
                    "unknown parameter `{key}` (expected by, from, to, limit)"
                )));
            }
        }
    }
    let by = by.ok_or_else(|| {
        ApiError::invalid_parameter("`by` is required: ip, user, host or country")
    })?;
    if from > to {
        return Err(ApiError::invalid_parameter("`from` is after `to`"));
    }
    let store = state.store.clone();
    let geo = state.geo.clone();
    let tallies = tokio::task::spawn_blocking(move || {
        stats::top(&store, geo.as_deref(), by, from, to, limit)
    })
    .await
    .map_err(|e| ApiError::internal(&e))??;
    let items: Vec<Value> = tallies
        .into_iter()
        .map(|t| json!({"key": t.key, "events": t.events, "failures": t.failures}))
        .collect();
    Ok(Json(json!({ "items": items })))
}

pub async fn get_event(
    State(state): State<AppState>,
    caller: Caller,
    Path(event_id): Path<String>,
) -> Result<Json<EventDto>, ApiError> {
    caller.require(Permission::Read)?;
    let store = state.store.clone();
    let id = event_id.clone();
    let found = tokio::task::spawn_blocking(move || store.get_event(&id))
        .await
        .map_err(|e| ApiError::internal(&e))??;
    found
        .map(|e| Json(EventDto::from(e)))
        .ok_or_else(|| ApiError::not_found(format!("no event with event_id `{event_id}`")))
}

fn login_reply(grant: Grant) -> Result<Json<LoginReply>, ApiError> {
    let refresh_token = grant
        .refresh_token
        .ok_or_else(|| ApiError::internal(&"API grant without a refresh token"))?;
    Ok(Json(LoginReply {
        access_token: grant.token,
        token_type: "Bearer",
        expires_in: grant.expires_in,
        refresh_token,
        user: UserSummary {
            username: grant.username,
            role: grant.role,
        },
    }))
}

pub async fn login(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<std::net::SocketAddr>,
    JsonBody(request): JsonBody<LoginRequest>,
) -> Result<Json<LoginReply>, ApiError> {
    let auth = state.auth.clone();
    let client = peer.ip();
    let username = request.username.clone();
    let result = tokio::task::spawn_blocking(move || {
        auth.login(
            &request.username,
            &request.password,
            Purpose::ApiAccess,
            Some(client),
        )
    })
    .await
    .map_err(|e| ApiError::internal(&e))?;
    match &result {
        Ok(_) => state.record_own_login(client, &username, true, "api"),
        Err(AuthError::Invalid) => state.record_own_login(client, &username, false, "api"),
        Err(_) => {}
    }
    match result {
        Ok(grant) => login_reply(grant),
        Err(AuthError::Invalid) => Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "invalid_credentials",
            "invalid user name or password",
        )),
        Err(other) => Err(other.into()),
    }
}

pub async fn refresh(
    State(state): State<AppState>,
    JsonBody(request): JsonBody<RefreshRequest>,
) -> Result<Json<LoginReply>, ApiError> {
    let auth = state.auth.clone();
    let grant = tokio::task::spawn_blocking(move || auth.refresh(&request.refresh_token))
        .await
        .map_err(|e| ApiError::internal(&e))??;
    login_reply(grant)
}

pub async fn logout(State(state): State<AppState>, caller: Caller) -> Result<StatusCode, ApiError> {
    match caller.0 {
        Principal::User { session_id, .. } => {
            state.auth.logout(&session_id)?;
            Ok(StatusCode::NO_CONTENT)
        }
        Principal::ApiToken { .. } => Err(ApiError::invalid_request(
            "API tokens have no session; revoke the token instead",
        )),
    }
}

pub async fn me(caller: Caller) -> Json<MeReply> {
    Json(match caller.0 {
        Principal::User { username, role, .. } => MeReply::User { username, role },
        Principal::ApiToken { id, name, scopes } => MeReply::Token { id, name, scopes },
    })
}

fn unexpected(response: &AdminResponse) -> ApiError {
    ApiError::internal(&format!("unexpected admin response {response:?}"))
}

pub async fn create_token(
    State(state): State<AppState>,
    caller: Caller,
    JsonBody(request): JsonBody<TokenCreateRequest>,
) -> Result<impl IntoResponse, ApiError> {
    let principal = caller.require(Permission::Admin)?;
    let response = state
        .admin(AdminRequest::TokenCreate {
            name: request.name,
            scopes: request.scopes,
            expires_in_days: request.expires_in_days,
            created_by: principal.label(),
        })
        .await?;
    match response {
        AdminResponse::TokenCreated { token, info } => {
            tracing::info!(by = %principal.label(), token_id = %info.id, "API token created");
            Ok((
                StatusCode::CREATED,
                Json(json!({ "token": token, "info": info })),
            ))
        }
        other => Err(unexpected(&other)),
    }
}

pub async fn list_tokens(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<impl IntoResponse, ApiError> {
    caller.require(Permission::Admin)?;
    match state.admin(AdminRequest::TokenList).await? {
        AdminResponse::Tokens { tokens } => Ok(Json(json!({ "tokens": tokens }))),
        other => Err(unexpected(&other)),
    }
}

pub async fn revoke_token(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    let principal = caller.require(Permission::Admin)?;
    match state.admin(AdminRequest::TokenRevoke { id }).await? {
        AdminResponse::TokenRevoked { info } => {
            tracing::info!(by = %principal.label(), token_id = %info.id, "API token revoked");
            Ok(Json(json!({ "info": info })))
        }
        other => Err(unexpected(&other)),
    }
}

pub async fn list_users(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<impl IntoResponse, ApiError> {
    caller.require(Permission::Admin)?;
    match state.admin(AdminRequest::UserList).await? {
        AdminResponse::Users { users } => Ok(Json(json!({ "users": users }))),
        other => Err(unexpected(&other)),
    }
}

pub async fn create_user(
    State(state): State<AppState>,
    caller: Caller,
    JsonBody(request): JsonBody<UserCreateRequest>,
) -> Result<impl IntoResponse, ApiError> {
    let principal = caller.require(Permission::Admin)?;
    let response = state
        .admin(AdminRequest::UserAdd {
            username: request.username,
            password: request.password,
            role: request.role,
        })
        .await?;
    match response {
        AdminResponse::UserAdded { user } => {
            tracing::info!(by = %principal.label(), user = %user.username, "user created");
            Ok((StatusCode::CREATED, Json(json!({ "user": user }))))
        }
        other => Err(unexpected(&other)),
    }
}
