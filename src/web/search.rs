//! The search page: the query language of `GET /api/v1/search` over a time range, matches
//! highlighted, pages of older hits, and a live tail in the script.

use std::collections::HashMap;

use askama::Template;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};

use super::{Nav, Page, RANGES, blocking, form_encode, param, render_with, require_session, when};
use crate::api::dto;
use crate::event::Event;
use crate::search::{Highlighter, SearchError};
use crate::state::AppState;

/// Hits per page.
const PAGE_SIZE: usize = 50;

/// A piece of a line, marked when the query matched it.
pub(super) struct Piece {
    pub text: String,
    pub marked: bool,
}

/// Cuts `text` into pieces at the highlighted ranges.
pub(super) fn pieces(text: &str, highlighter: &Highlighter) -> Vec<Piece> {
    let mut out = Vec::new();
    let mut at = 0;
    for range in highlighter.ranges(text) {
        if range.start < at || range.end > text.len() {
            continue;
        }
        if range.start > at {
            out.push(Piece {
                text: text[at..range.start].to_string(),
                marked: false,
            });
        }
        out.push(Piece {
            text: text[range.clone()].to_string(),
            marked: true,
        });
        at = range.end;
    }
    if at < text.len() {
        out.push(Piece {
            text: text[at..].to_string(),
            marked: false,
        });
    }
    out
}

pub(super) struct HitRow {
    pub event_id: String,
    pub time: String,
    pub host: String,
    pub ip: String,
    pub user: String,
    pub outcome: &'static str,
    pub line: Vec<Piece>,
}

pub(super) fn hit_row(event: Event, highlighter: &Highlighter) -> HitRow {
    let line = event.raw.clone().unwrap_or_else(|| {
        let mut text = event.event_type.clone();
        if let Some(message) = &event.message {
            text.push(' ');
            text.push_str(message);
        }
        text
    });
    HitRow {
        time: when(event.timestamp),
        event_id: event.event_id,
        host: event.host.unwrap_or_default(),
        ip: event.source_ip.map(|ip| ip.to_string()).unwrap_or_default(),
        user: event.username.unwrap_or_default(),
        outcome: match event.success {
            Some(true) => "success",
            Some(false) => "failure",
            None => "",
        },
        line: pieces(&line, highlighter),
    }
}

struct RangeOption {
    name: &'static str,
    label: &'static str,
}

#[derive(Template)]
#[template(path = "search.html")]
struct SearchPage {
    nav: Option<Nav>,
    q: String,
    range: String,
    ranges: Vec<RangeOption>,
    hits: Vec<HitRow>,
    next: Option<String>,
    /// The query's error and where it is (the query up to the error, and the rest).
    error: Option<(String, String, String)>,
    /// The newest hit's time, where the live tail continues from.
    newest: String,
}

pub async fn page(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(params): Query<HashMap<String, String>>,
) -> Page {
    let session = require_session(&state, &headers)?;
    let q = params.get("q").cloned().unwrap_or_default();
    let mut range = param(&params, "range");
    let span = RANGES.iter().find(|r| r.name == range).map(|r| r.micros);
    if span.is_none() {
        range = "all".into();
    }
    let before = params.get("cursor").and_then(|c| dto::decode_cursor(c));
    let from = span.map(|s| crate::now_micros() - s);
    let index = state.search.clone();
    let store = state.store.clone();
    let text = q.clone();
    let found = blocking(move || {
        let run = || -> Result<_, SearchError> {
            let hits = index.search(&text, from, None, before, PAGE_SIZE)?;
            let highlighter = index.highlighter(&text)?;
            let events = store.events_at(&hits)?;
            Ok((hits, highlighter, events))
        };
        match run() {
            Err(SearchError::Query { message, position }) => Ok(Err((message, position))),
            Err(e) => Err(e),
            Ok(found) => Ok(Ok(found)),
        }
    })
    .await?;
    let ranges = RANGES
        .iter()
        .map(|r| RangeOption {
            name: r.name,
            label: r.label,
        })
        .chain(std::iter::once(RangeOption {
            name: "all",
            label: "All time",
        }))
        .collect();
    let nav = Some(session.nav(&state, "search"));
    let (hits, highlighter, events) = match found {
        Ok(found) => found,
        Err((message, position)) => {
            let cut = q.char_indices().nth(position).map_or(q.len(), |(i, _)| i);
            let error = Some((message, q[..cut].to_string(), q[cut..].to_string()));
            return Ok(render_with(
                StatusCode::BAD_REQUEST,
                &SearchPage {
                    nav,
                    q,
                    range,
                    ranges,
                    hits: Vec::new(),
                    next: None,
                    error,
                    newest: String::new(),
                },
            ));
        }
    };
    let next = hits.last().filter(|_| hits.len() == PAGE_SIZE).map(|last| {
        format!(
            "/search?q={}&range={range}&cursor={}",
            form_encode(&q),
            dto::encode_cursor(*last)
        )
    });
    let newest = events
        .first()
        .map(|e| when(e.timestamp))
        .unwrap_or_default();
    Ok(render_with(
        StatusCode::OK,
        &SearchPage {
            nav,
            range,
            ranges,
            hits: events
                .into_iter()
                .map(|e| hit_row(e, &highlighter))
                .collect(),
            next,
            error: None,
            newest,
            q,
        },
    ))
}
