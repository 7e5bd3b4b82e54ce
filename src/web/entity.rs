//! The page of one source address and of one account: activity over time and over the hours of
//! the day, where it comes from, its alerts, and its newest events.

use std::net::IpAddr;

use askama::Template;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};

use super::alerts::AlertRow;
use super::charts::{BarChart, Column, OUTCOMES, Series};
use super::search::{HitRow, hit_row};
use super::{Nav, Page, blocking, error_page, form_encode, render, require_session, when};
use crate::detect::profile::UserProfile;
use crate::search::{Exact, Find, Histogram, SearchError};
use crate::state::AppState;
use crate::storage::AlertQuery;

const DAY: i64 = 86_400_000_000;
/// Days of the activity chart (ending with the entity's newest event).
const DAYS: i64 = 30;
/// Newest events listed.
const NEWEST_EVENTS: usize = 50;
/// Alerts listed.
const ALERTS: usize = 50;

/// What an entity page shows of its activity.
struct Activity {
    total: u64,
    failures: u64,
    /// The day (UTC) of the oldest event.
    first_day: Option<String>,
    last_seen: Option<String>,
    days: BarChart,
    hours: BarChart,
    events: Vec<HitRow>,
}

/// Reads an entity's activity from the index: all events and failures, by day over the
/// [`DAYS`] up to its newest event, and by hour of the day.
fn activity(state: &AppState, field: Exact, value: &str) -> Result<Activity, SearchError> {
    let find = |outcome| Find::Exact {
        field,
        value,
        outcome,
    };
    let all = state.search.histogram(&find(None), None, None, DAY)?;
    let failed = state
        .search
        .histogram(&find(Some("failure")), None, None, DAY)?;
    let succeeded = state
        .search
        .histogram(&find(Some("success")), None, None, DAY)?;
    let newest_day = all.buckets.keys().next_back().copied().unwrap_or(0);
    let days: Vec<Column> = (0..DAYS)
        .map(|i| {
            let day = newest_day - (DAYS - 1 - i) * DAY;
            let count = |h: &Histogram| h.buckets.get(&day).copied().unwrap_or(0);
            let (failures, successes) = (count(&failed), count(&succeeded));
            Column {
                label: when(day)[5..10].to_string(),
                values: vec![
                    failures,
                    successes,
                    count(&all).saturating_sub(failures + successes),
                ],
            }
        })
        .collect();
    let hours: Vec<Column> = (0..24)
        .map(|h| Column {
            label: format!("{h:02}"),
            values: vec![
                failed.hours[h],
                all.hours[h].saturating_sub(failed.hours[h]),
            ],
        })
        .collect();
    let hits = state
        .search
        .find(&find(None), None, None, None, NEWEST_EVENTS)?;
    let events = state.store.events_at(&hits)?;
    let highlighter = state.search.highlighter("")?;
    Ok(Activity {
        total: all.total,
        failures: failed.total,
        first_day: all
            .buckets
            .keys()
            .next()
            .map(|day| when(*day)[..10].to_string()),
        last_seen: events.first().map(|e| when(e.timestamp)),
        days: BarChart::stacked(
            &OUTCOMES,
            &days,
            6,
            format!("Events per day over the {DAYS} days up to the newest"),
        ),
        hours: BarChart::stacked(
            &OUTCOMES,
            &hours,
            12,
            "Events by hour of the day (UTC)".to_string(),
        ),
        events: events
            .into_iter()
            .map(|e| hit_row(e, &highlighter))
            .collect(),
    })
}

fn related_alerts(state: &AppState, entity: &str) -> Result<Vec<AlertRow>, SearchError> {
    let mut alerts = state.store.alerts(&AlertQuery {
        entity: Some(entity.to_string()),
        limit: ALERTS,
        ..AlertQuery::default()
    })?;
    for id in state.store.alerts_with_member(entity, ALERTS)? {
        if let Some(alert) = state.store.alert(id)? {
            alerts.push(alert);
        }
    }
    alerts.sort_by_key(|a| std::cmp::Reverse(a.id));
    alerts.dedup_by_key(|a| a.id);
    Ok(alerts.into_iter().map(AlertRow::from).collect())
}

#[derive(Template)]
#[template(path = "entity.html")]
struct EntityPage {
    nav: Option<Nav>,
    kind: &'static str,
    name: String,
    search_link: String,
    facts: Vec<(&'static str, String)>,
    activity: Activity,
    alerts: Vec<AlertRow>,
    /// For an account: its successful logins by hour, from its history.
    habit: Option<BarChart>,
    /// For an account: countries with when last seen there, and addresses.
    countries: Vec<(String, String)>,
    addresses: Vec<String>,
}

pub async fn address(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(text): Path<String>,
) -> Page {
    let session = require_session(&state, &headers)?;
    let Ok(ip) = text.parse::<IpAddr>() else {
        return Err(error_page(
            StatusCode::NOT_FOUND,
            "Not an address",
            "The address in the link is not an IPv4 or IPv6 address.",
            Some(session.nav(&state, "")),
        ));
    };
    let ip_text = ip.to_string();
    let held = state.clone();
    let name = ip_text.clone();
    let (activity, alerts, blocked, allowed) = blocking(move || {
        let activity = activity(&held, Exact::Address, &name)?;
        let alerts = related_alerts(&held, &name)?;
        let list =
            crate::alerting::triage::blocklist(&held.store, &held.settings, crate::now_micros())?;
        let blocked = list.blocked.into_iter().find(|e| e.ip == name);
        let allowed = list.spared.iter().any(|e| e.ip == name);
        Ok::<_, SearchError>((activity, alerts, blocked, allowed))
    })
    .await?;
    let location = state.geo.as_ref().map_or_else(
        || "unknown".to_string(),
        |g| g.locate(ip).as_str().to_string(),
    );
    let mut facts = vec![("Location", location)];
    facts.push((
        "Blocklist",
        match (blocked, allowed) {
            (Some(entry), _) => format!(
                "blocked until {} UTC ({})",
                when(entry.expires_at)
                    .get(..19)
                    .unwrap_or_default()
                    .replace('T', " "),
                entry.reason
            ),
            (None, true) => "kept off by the allow-list".to_string(),
            (None, false) => "not blocked".to_string(),
        },
    ));
    Ok(render(&EntityPage {
        nav: Some(session.nav(&state, "")),
        kind: "Address",
        search_link: format!("/search?q={}", form_encode(&format!("ip:\"{ip_text}\""))),
        name: ip_text,
        facts,
        activity,
        alerts,
        habit: None,
        countries: Vec::new(),
        addresses: Vec::new(),
    }))
}

pub async fn account(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(name): Path<String>,
) -> Page {
    let session = require_session(&state, &headers)?;
    let held = state.clone();
    let user = name.clone();
    let (activity, alerts, profile) = blocking(move || {
        let activity = activity(&held, Exact::Account, &user)?;
        let alerts = related_alerts(&held, &user)?;
        let profile = held
            .store
            .user_profiles(&[user.as_str()])?
            .pop()
            .map(|(_, p)| p);
        Ok::<_, SearchError>((activity, alerts, profile))
    })
    .await?;
    let profile: UserProfile = profile.unwrap_or_default();
    let habit = (profile.logins > 0).then(|| {
        let columns: Vec<Column> = (0..24)
            .map(|h| Column {
                label: format!("{h:02}"),
                values: vec![u64::from(profile.hours[h])],
            })
            .collect();
        BarChart::stacked(
            &[Series {
                class: "ok",
                label: "successful logins",
            }],
            &columns,
            12,
            format!(
                "{} successful logins by hour of the day (UTC)",
                profile.logins
            ),
        )
    });
    let countries = profile
        .countries
        .iter()
        .map(|(code, at)| (String::from_utf8_lossy(code).into_owned(), when(*at)))
        .collect();
    let facts = vec![("Successful logins remembered", profile.logins.to_string())];
    Ok(render(&EntityPage {
        nav: Some(session.nav(&state, "")),
        kind: "Account",
        search_link: format!(
            "/search?q={}",
            form_encode(&format!("user:\"{}\"", name.replace('"', "\\\"")))
        ),
        name,
        facts,
        activity,
        alerts,
        habit,
        countries,
        addresses: profile.addresses,
    }))
}
