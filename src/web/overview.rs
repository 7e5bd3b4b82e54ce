//! The overview: key figures, events and alerts over time, the top attacking addresses,
//! targeted accounts, countries and sources, and the newest alerts (kept live by the script).

use std::collections::HashMap;

use askama::Template;
use axum::extract::{Query, State};
use axum::http::HeaderMap;

use super::alerts::AlertRow;
use super::charts::{BarChart, Column, OUTCOMES, Series};
use super::{Nav, Page, RANGES, Range, blocking, form_encode, render, require_session, when};
use crate::event::{format_timestamp, parse_timestamp};
use crate::state::AppState;
use crate::stats::{self, Bucket, Ranked};
use crate::storage::{AlertQuery, Dimension, Tally};

/// Rows of each top list.
const TOP: usize = 10;
/// Alerts listed.
const NEWEST_ALERTS: usize = 10;

/// A ranked row with its link.
pub(super) struct TopRow {
    pub key: String,
    pub link: Option<String>,
    pub events: u64,
    pub failures: u64,
    /// Share of the list's largest failure count, in percent (for the bar behind the row).
    pub share: u64,
}

fn top_rows(tallies: Vec<Tally>, link: impl Fn(&str) -> Option<String>) -> Vec<TopRow> {
    let most = tallies.iter().map(|t| t.failures.max(1)).max().unwrap_or(1);
    tallies
        .into_iter()
        .map(|t| TopRow {
            link: link(&t.key),
            share: t.failures * 100 / most,
            key: t.key,
            events: t.events,
            failures: t.failures,
        })
        .collect()
}

struct RangeLink {
    label: &'static str,
    href: String,
    current: bool,
}

#[derive(Template)]
#[template(path = "overview.html")]
struct OverviewPage {
    nav: Option<Nav>,
    range: Range,
    ranges: Vec<RangeLink>,
    from: String,
    to: String,
    events: u64,
    failures: u64,
    successes: u64,
    failure_rate: String,
    alerts_opened: u64,
    active_alerts: u64,
    events_chart: BarChart,
    alerts_chart: BarChart,
    addresses: Vec<TopRow>,
    accounts: Vec<TopRow>,
    countries: Vec<TopRow>,
    hosts: Vec<TopRow>,
    alerts: Vec<AlertRow>,
    /// When nothing happened in the range but events are stored: the newest one's time and a
    /// link to the range ending there.
    newest: Option<(String, String)>,
    /// The end of the range, when it is not now (the `until` parameter).
    until: Option<String>,
    /// The range ends now, so the script refreshes the key figures while events arrive.
    live: bool,
}

/// What the overview reads from the store, in one blocking call.
struct Figures {
    buckets: Vec<Bucket>,
    tops: [Vec<Tally>; 4],
    alerts: Vec<crate::storage::AlertRecord>,
    active_alerts: u64,
    newest: Option<i64>,
}

pub async fn page(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(params): Query<HashMap<String, String>>,
) -> Page {
    let session = require_session(&state, &headers)?;
    let range = Range::from_param(&params);
    let until = params
        .get("until")
        .and_then(|v| parse_timestamp("until", v).ok());
    let to = until.unwrap_or_else(crate::now_micros);
    let from = to - range.micros + 1;
    let live = until.is_none();
    let store = state.store.clone();
    let geo = state.geo.clone();
    let figures = blocking(move || read_figures(&store, geo.as_deref(), from, to, range)).await?;
    let sum = |f: fn(&Bucket) -> u64| figures.buckets.iter().map(f).sum::<u64>();
    let (events, failures, successes) =
        (sum(|b| b.events), sum(|b| b.failures), sum(|b| b.successes));
    let alerts_opened = sum(|b| b.alerts.iter().sum());
    let events_chart = events_chart(&figures.buckets, range, events, failures);
    let alerts_chart = alerts_chart(&figures.buckets, range, alerts_opened);
    let [addresses, accounts, countries, hosts] = figures.tops;
    let newest = figures
        .newest
        .filter(|t| events == 0 && *t < from)
        .map(|t| {
            let iso = when(t);
            let link = format!("/?range=30d&until={}", form_encode(&iso));
            (iso, link)
        });
    let until_text = until.map(when);
    let ranges = RANGES
        .iter()
        .map(|r| RangeLink {
            label: r.label,
            href: match &until_text {
                Some(u) => format!("/?range={}&until={}", r.name, form_encode(u)),
                None => format!("/?range={}", r.name),
            },
            current: r.name == range.name,
        })
        .collect();
    Ok(render(&OverviewPage {
        nav: Some(session.nav(&state, "overview")),
        range,
        ranges,
        from: when(from),
        to: when(to),
        events,
        failures,
        successes,
        failure_rate: if failures + successes == 0 {
            "–".to_string()
        } else {
            format!(
                "{:.1} %",
                failures as f64 * 100.0 / (failures + successes) as f64
            )
        },
        alerts_opened,
        active_alerts: figures.active_alerts,
        events_chart,
        alerts_chart,
        addresses: top_rows(addresses, |k| Some(format!("/ip/{}", form_encode(k)))),
        accounts: top_rows(accounts, |k| Some(format!("/user/{}", form_encode(k)))),
        countries: top_rows(countries, |_| None),
        hosts: top_rows(hosts, |k| {
            Some(format!(
                "/search?q={}",
                form_encode(&format!("host:\"{k}\""))
            ))
        }),
        alerts: figures.alerts.into_iter().map(AlertRow::from).collect(),
        newest,
        until: until_text,
        live,
    }))
}

/// Everything the overview shows of the range from `from` to `to`, in one blocking call.
fn read_figures(
    store: &crate::storage::Store,
    geo: Option<&crate::geo::Geo>,
    from: i64,
    to: i64,
    range: Range,
) -> Result<Figures, stats::TimelineError> {
    let buckets = stats::timeline(store, from, to, range.step_minutes)?;
    let top = |dimension| stats::top(store, geo, Ranked::Stored(dimension), from, to, TOP);
    // The addresses' tallies are read once for both their list and the countries'.
    let mut addresses = store.tallies(Dimension::Address, from, to)?;
    let mut countries = stats::by_country(geo, &addresses);
    addresses.truncate(TOP);
    countries.truncate(TOP);
    let tops = [
        addresses,
        top(Dimension::Account)?,
        countries,
        top(Dimension::Host)?,
    ];
    let alerts = store.alerts(&AlertQuery {
        limit: NEWEST_ALERTS,
        ..AlertQuery::default()
    })?;
    Ok(Figures {
        buckets,
        tops,
        alerts,
        active_alerts: store.active_alert_count()?,
        newest: store.newest_event_time()?,
    })
}

/// A bucket's label: its day for buckets of a day or more, else its time of day (UTC).
fn label(bucket: &Bucket, range: Range) -> String {
    let text = format_timestamp(bucket.start);
    if range.step_minutes >= 1440 {
        text[5..10].to_string()
    } else {
        text[11..16].to_string()
    }
}

fn events_chart(buckets: &[Bucket], range: Range, events: u64, failures: u64) -> BarChart {
    let columns: Vec<Column> = buckets
        .iter()
        .map(|b| Column {
            label: label(b, range),
            values: vec![
                b.failures,
                b.successes,
                b.events.saturating_sub(b.failures + b.successes),
            ],
        })
        .collect();
    let summary = format!(
        "Events per {} minutes: {events} in all, {failures} failed logins",
        range.step_minutes
    );
    BarChart::stacked(&OUTCOMES, &columns, 8, summary)
}

fn alerts_chart(buckets: &[Bucket], range: Range, opened: u64) -> BarChart {
    let series = ["low", "medium", "high", "critical"].map(|severity| Series {
        class: match severity {
            "low" => "low",
            "medium" => "medium",
            "high" => "high",
            _ => "critical",
        },
        label: severity,
    });
    let columns: Vec<Column> = buckets
        .iter()
        .map(|b| Column {
            label: label(b, range),
            values: b.alerts.to_vec(),
        })
        .collect();
    let summary = format!(
        "Alerts opened per {} minutes: {opened} in all",
        range.step_minutes
    );
    BarChart::stacked(&series, &columns, 8, summary)
}
