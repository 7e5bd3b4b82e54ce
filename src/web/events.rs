//! The events page: stored events by user, address and outcome, newest first.

use std::collections::HashMap;
use std::fmt::Write;

use askama::Template;
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::Response;

use super::{Nav, form_encode, internal, param, render, require_session, when};
use crate::api::dto;
use crate::event;
use crate::state::AppState;
use crate::storage::EventQuery;

/// Events per page.
const PAGE_SIZE: usize = 100;

/// One row of the events table.
struct EventRow {
    timestamp: String,
    source_ip: String,
    username: String,
    event_type: String,
    /// "success", "failure", "told" (a failure whose attempt an earlier line of its connection
    /// counted), or empty for neither.
    outcome: &'static str,
    host: String,
}

#[derive(Template)]
#[template(path = "events.html")]
struct EventsPage {
    nav: Option<Nav>,
    total: u64,
    events: Vec<EventRow>,
    next: Option<String>,
    error: Option<String>,
    filter_username: String,
    filter_source_ip: String,
    filter_success: String,
}

pub async fn page(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(params): Query<HashMap<String, String>>,
) -> Response {
    let session = match require_session(&state, &headers) {
        Ok(s) => s,
        Err(response) => return response,
    };
    let (username, source_ip, success) = (
        param(&params, "username"),
        param(&params, "source_ip"),
        param(&params, "success"),
    );
    let mut query = EventQuery {
        limit: PAGE_SIZE,
        ..EventQuery::default()
    };
    let mut error = None;
    if !username.is_empty() {
        query.username = Some(username.clone());
    }
    if !source_ip.is_empty() {
        match event::parse_ip("source_ip", &source_ip) {
            Ok(ip) => query.source_ip = Some(ip),
            Err(e) => error = Some(format!("Source IP: {}", e.reason)),
        }
    }
    query.success = match success.as_str() {
        "true" => Some(true),
        "false" => Some(false),
        _ => None,
    };
    query.before = params.get("cursor").and_then(|c| dto::decode_cursor(c));
    let store = state.store.clone();
    let run = error.is_none();
    let result = tokio::task::spawn_blocking(move || -> Result<_, crate::storage::StorageError> {
        let page = if run {
            store.query_events(&query)?
        } else {
            crate::storage::EventPage::default()
        };
        Ok((page, store.event_count()?))
    })
    .await;
    let (page, total) = match result {
        Ok(Ok(found)) => found,
        Ok(Err(e)) => return internal(&e),
        Err(e) => return internal(&e),
    };
    let next = page.next.map(|cursor| {
        let mut link = format!("/events?cursor={}", dto::encode_cursor(cursor));
        for (name, value) in [
            ("username", &username),
            ("source_ip", &source_ip),
            ("success", &success),
        ] {
            if !value.is_empty() {
                let _ = write!(link, "&{name}={}", form_encode(value));
            }
        }
        link
    });
    render(&EventsPage {
        nav: Some(session.nav(&state, "events")),
        total,
        events: page
            .events
            .into_iter()
            .map(|e| EventRow {
                outcome: match e.success {
                    Some(true) => "success",
                    Some(false) if e.tells_counted_failure() => "told",
                    Some(false) => "failure",
                    None => "",
                },
                timestamp: when(e.timestamp),
                source_ip: e.source_ip.map(|ip| ip.to_string()).unwrap_or_default(),
                username: e.username.unwrap_or_default(),
                event_type: e.event_type,
                host: e.host.unwrap_or_default(),
            })
            .collect(),
        next,
        error,
        filter_username: username,
        filter_source_ip: source_ip,
        filter_success: success,
    })
}
