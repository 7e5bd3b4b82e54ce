//! The system page: health, storage sizes, ingest rate, search index lag, syslog.

use std::path::Path;
use std::sync::atomic::Ordering;

use askama::Template;
use axum::extract::State;
use axum::http::HeaderMap;

use super::{Nav, Page, blocking, render, require_session};
use crate::state::AppState;

#[derive(Template)]
#[template(path = "system.html")]
struct SystemPage {
    nav: Option<Nav>,
    version: &'static str,
    uptime: String,
    events: u64,
    commits: u64,
    stored_since_start: u64,
    rate: u64,
    database_bytes: String,
    index_bytes: String,
    index_documents: u64,
    index_lag_commits: u64,
    rebuilding: bool,
    active_alerts: u64,
    templates: usize,
    syslog: Option<(String, u64, u64)>,
    listeners: usize,
    data_dir: String,
}

/// Bytes in a file, or in every file under a directory.
fn size_of(path: &Path) -> u64 {
    let Ok(meta) = std::fs::metadata(path) else {
        return 0;
    };
    if meta.is_dir() {
        std::fs::read_dir(path)
            .into_iter()
            .flatten()
            .flatten()
            .map(|entry| size_of(&entry.path()))
            .sum()
    } else {
        meta.len()
    }
}

/// A byte count for people: `12.3 MiB`.
fn human(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

fn duration(seconds: u64) -> String {
    let (days, hours, minutes) = (seconds / 86_400, seconds / 3_600 % 24, seconds / 60 % 60);
    if days > 0 {
        format!("{days} d {hours} h")
    } else if hours > 0 {
        format!("{hours} h {minutes} min")
    } else {
        format!("{minutes} min {} s", seconds % 60)
    }
}

pub async fn page(State(state): State<AppState>, headers: HeaderMap) -> Page {
    let session = require_session(&state, &headers)?;
    let store = state.store.clone();
    let index_dir = crate::search::index_dir(&state.settings.data_dir);
    let (events, next_commit, active_alerts, templates, database, index) = blocking(move || {
        Ok::<_, crate::storage::StorageError>((
            store.event_count()?,
            store.next_commit()?,
            store.active_alert_count()?,
            store.templates()?.len(),
            size_of(store.path()),
            size_of(&index_dir),
        ))
    })
    .await?;
    let pipeline = state.intake.stats();
    Ok(render(&SystemPage {
        nav: Some(session.nav(&state, "system")),
        version: env!("CARGO_PKG_VERSION"),
        uptime: duration(state.started_at.elapsed().as_secs()),
        events,
        commits: pipeline.commits.load(Ordering::Relaxed),
        stored_since_start: pipeline.stored.load(Ordering::Relaxed),
        rate: state.monitor.rate(),
        database_bytes: human(database),
        index_bytes: human(index),
        index_documents: state.search.document_count(),
        index_lag_commits: next_commit.saturating_sub(state.store.indexed_below()),
        rebuilding: state.search.is_rebuilding(),
        active_alerts,
        templates,
        syslog: state.syslog_addr.map(|addr| {
            (
                addr.to_string(),
                state.syslog_stats.received.load(Ordering::Relaxed),
                state.syslog_stats.dropped.load(Ordering::Relaxed),
            )
        }),
        listeners: state.monitor.listeners(),
        data_dir: state.settings.data_dir.display().to_string(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_durations_read_well() {
        assert_eq!(human(512), "512 B");
        assert_eq!(human(1536), "1.5 KiB");
        assert_eq!(human(5 << 30), "5.0 GiB");
        assert_eq!(duration(59), "0 min 59 s");
        assert_eq!(duration(3_725), "1 h 2 min");
        assert_eq!(duration(200_000), "2 d 7 h");
    }
}
