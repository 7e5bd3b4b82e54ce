//! Reading events over the API: listing and fetching them, full-text search, the per-bucket
//! timeline and top lists of the charts, and the template miner's templates.

use std::collections::HashMap;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};

use super::dto::{
    self, BucketDto, EventDto, EventPageDto, TallyDto, TemplateDto, TemplatesDto, TimelineDto,
    TopDto,
};
use super::error::ApiError;
use super::extract::Caller;
use super::params::{DEFAULT_LIMIT, cursor_param, limit_param, time_param};
use crate::auth::Permission;
use crate::event;
use crate::search::SearchError;
use crate::state::AppState;
use crate::stats;
use crate::storage::EventQuery;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v1/events", get(list_events))
        .route("/api/v1/events/{event_id}", get(get_event))
        .route("/api/v1/search", get(search))
        .route("/api/v1/stats/timeline", get(timeline))
        .route("/api/v1/stats/top", get(top))
        .route("/api/v1/templates", get(list_templates))
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

async fn list_events(
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
async fn search(
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
async fn timeline(
    State(state): State<AppState>,
    caller: Caller,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Json<TimelineDto>, ApiError> {
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
    Ok(Json(TimelineDto {
        step_minutes: step,
        buckets: buckets.into_iter().map(BucketDto::from).collect(),
    }))
}

/// `GET /api/v1/stats/top`: the addresses, accounts, hosts or countries with the most failed
/// (then all) events over the hours of a time range.
async fn top(
    State(state): State<AppState>,
    caller: Caller,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Json<TopDto>, ApiError> {
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
    Ok(Json(TopDto {
        items: tallies.into_iter().map(TallyDto::from).collect(),
    }))
}

async fn get_event(
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

/// `GET /api/v1/templates`: the template miner's templates, as stored.
async fn list_templates(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<TemplatesDto>, ApiError> {
    caller.require(Permission::Read)?;
    let store = state.store.clone();
    let templates = tokio::task::spawn_blocking(move || store.templates())
        .await
        .map_err(|e| ApiError::internal(&e))??;
    Ok(Json(TemplatesDto {
        templates: templates
            .into_iter()
            .map(|t| TemplateDto {
                id: t.id,
                template: t.tokens.join(" "),
                count: t.count,
            })
            .collect(),
    }))
}
