//! Alerts over the API: the list and one alert with its evidence, status changes and alerts
//! raised by hand (through [`triage`]), the blocklist feed for firewalls, and the allow-list.

use std::collections::HashMap;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, put};
use axum::{Json, Router};

use super::dto::{
    self, AlertDetailDto, AlertDto, AlertPageDto, AlertStatusRequest, AllowDto, AllowlistDto,
    BlockDto, BlocklistDto, EventDto,
};
use super::error::ApiError;
use super::extract::{Caller, JsonBody};
use super::params::DEFAULT_LIMIT;
use crate::alerting::triage;
use crate::auth::Permission;
use crate::event;
use crate::state::AppState;
use crate::storage::{AlertQuery, AlertStatus, StorageError};

/// Most alerts in one page.
const MAX_ALERTS_PAGE: usize = 500;
/// Most members listed with one alert.
const MAX_MEMBERS_LISTED: usize = 10_000;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v1/alerts", get(list_alerts).post(create_alert))
        .route("/api/v1/alerts/{id}", get(get_alert))
        .route("/api/v1/alerts/{id}/status", put(set_alert_status))
        .route("/api/v1/blocklist", get(blocklist))
        .route(
            "/api/v1/allowlist",
            get(allowlist).post(allowlist_add).delete(allowlist_remove),
        )
}

/// `GET /api/v1/alerts`: `status`, `severity`, `rule`, `entity`, `since` (RFC 3339), `limit`,
/// `cursor`; newest first.
async fn list_alerts(
    State(state): State<AppState>,
    caller: Caller,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Json<AlertPageDto>, ApiError> {
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
    Ok(Json(AlertPageDto {
        alerts: alerts.into_iter().map(AlertDto::from).collect(),
        next_cursor,
    }))
}

/// `GET /api/v1/alerts/{id}`: the alert and its evidence events.
async fn get_alert(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<AlertDetailDto>, ApiError> {
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
        Ok::<_, StorageError>(Some((alert, events, members)))
    })
    .await
    .map_err(|e| ApiError::internal(&e))??;
    let (alert, events, members) =
        found.ok_or_else(|| ApiError::not_found(format!("no alert {id}")))?;
    let mut alert = AlertDto::from(alert);
    if let Some((listed, total)) = members {
        alert.members = Some(listed);
        alert.member_count = Some(total);
    }
    Ok(Json(AlertDetailDto {
        alert,
        evidence_events: events,
    }))
}

/// `PUT /api/v1/alerts/{id}/status`: `{status, note}` (analysts and admins).
async fn set_alert_status(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    JsonBody(request): JsonBody<AlertStatusRequest>,
) -> Result<Json<AlertDto>, ApiError> {
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
    let store = state.store.clone();
    let by = principal.label();
    let updated = tokio::task::spawn_blocking(move || {
        triage::set_status(&store, id, status, request.note, by, crate::now_micros())
    })
    .await
    .map_err(|e| ApiError::internal(&e))??;
    let alert = updated.ok_or_else(|| ApiError::not_found(format!("no alert {id}")))?;
    Ok(Json(AlertDto::from(alert)))
}

/// `POST /api/v1/alerts`: an alert raised by an analyst (`title`, `severity`, `entity_type`,
/// `entity`, optional `note`, `evidence` event ids, `attack` ids and `block`).
async fn create_alert(
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
async fn blocklist(
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
        let addresses: Vec<BlockDto> = entries.into_iter().map(BlockDto::from).collect();
        return Ok(Json(BlocklistDto {
            generated_at: event::format_timestamp(now),
            count: addresses.len(),
            addresses,
        })
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
async fn allowlist(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<AllowlistDto>, ApiError> {
    caller.require(Permission::Read)?;
    let store = state.store.clone();
    let stored = tokio::task::spawn_blocking(move || store.allowlist())
        .await
        .map_err(|e| ApiError::internal(&e))??;
    let configured = state.settings.blocklist_allow.iter().map(|n| AllowDto {
        network: n.to_string(),
        note: "from the configuration (blocklist_allow)".into(),
        by: "config".into(),
        at: None,
    });
    let added = stored.into_iter().map(AllowDto::from);
    Ok(Json(AllowlistDto {
        networks: configured.chain(added).collect(),
    }))
}

/// `POST /api/v1/allowlist` `{"network": "192.0.2.0/24", "note": "…"}`: keeps a network off the
/// blocklist.
async fn allowlist_add(
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
    Ok((StatusCode::CREATED, Json(AllowDto::from(entry))))
}

/// `DELETE /api/v1/allowlist?network=192.0.2.0/24`.
async fn allowlist_remove(
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
