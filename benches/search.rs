//! Search and overview latency on a stopped data directory, without HTTP:
//! - `SearchIndex::search` plus reading the hits' events from the store, as
//!   `GET /api/v1/search` does, over all time and over the newest 24 hours of event time, 100
//!   hits per page as the API's default;
//! - what the overview page reads per range: the timeline of per-minute counts and each top
//!   list from the hourly tallies.
//!
//! `DATA_DIR=/path/to/data cargo bench --bench search` (fill it first, for example with
//! `bench/search.sh`, or `securify import` of a generated auth.log with the server's index
//! caught up). Reports p50 and p95 in ms over `RUNS` (default 50) runs of each.

use std::time::Instant;

use securify::search::{SearchIndex, index_dir};
use securify::stats::{self, Ranked};
use securify::storage::{Dimension, Store};

const QUERIES: [(&str, &str); 5] = [
    ("term", "failed"),
    ("two terms (AND)", "invalid preauth"),
    ("phrase", "\"invalid user\""),
    ("field", "user:root"),
    (
        "phrase and field",
        "\"failed password\" AND outcome:failure",
    ),
];

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index.min(sorted.len() - 1)]
}

/// p50 and p95 in ms of `runs` calls of `work`.
fn measure(runs: usize, mut work: impl FnMut()) -> (f64, f64) {
    let mut times = Vec::with_capacity(runs);
    for _ in 0..runs {
        let start = Instant::now();
        work();
        times.push(start.elapsed().as_secs_f64() * 1e3);
    }
    times.sort_by(f64::total_cmp);
    (percentile(&times, 0.5), percentile(&times, 0.95))
}

fn main() {
    let Ok(data_dir) = std::env::var("DATA_DIR") else {
        eprintln!("search bench: set DATA_DIR to a stopped data directory; skipped");
        return;
    };
    let runs: usize = std::env::var("RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(50);
    let data_dir = std::path::PathBuf::from(data_dir);
    let store = Store::open(&data_dir.join("securify.redb"), 32 << 20).expect("open the store");
    let (search, checkpoint) = SearchIndex::open(&index_dir(&data_dir)).expect("open the index");
    assert!(
        checkpoint.is_some(),
        "the index has no checkpoint: start the server once to build it"
    );
    let newest = search
        .search("", None, None, None, 1)
        .expect("newest")
        .first()
        .map_or(0, |hit| hit.timestamp);
    let day = 24 * 3600 * 1_000_000;
    println!(
        "{} documents; p50 / p95 in ms over {runs} runs, 100 hits per page",
        search.document_count()
    );
    for (name, query) in QUERIES {
        for (span, from) in [("all time", None), ("24 h", Some(newest - day))] {
            let mut hits = 0;
            let (p50, p95) = measure(runs, || {
                let found = search.search(query, from, None, None, 100).expect("search");
                hits = store.events_at(&found).expect("events").len();
            });
            println!("{name:<18} {span:<8} {p50:>8.2} {p95:>8.2}   ({hits} hits) {query}");
        }
    }
    overview(&store, newest, runs);
}

/// What the overview reads for each of its ranges ending at `newest`.
fn overview(store: &Store, newest: i64, runs: usize) {
    let geo = securify::geo::Geo::built_in().ok();
    let hour = 3600 * 1_000_000;
    println!("overview of the range ending at the newest event; p50 / p95 in ms");
    for (range, span, step) in [
        ("1h", hour, 1),
        ("24h", 24 * hour, 30),
        ("7d", 7 * 24 * hour, 360),
        ("30d", 30 * 24 * hour, 1440),
    ] {
        let from = newest - span + 1;
        let (p50, p95) = measure(runs, || {
            stats::timeline(store, from, newest, step).expect("timeline");
        });
        println!("{range:<4} timeline        {p50:>8.2} {p95:>8.2}");
        for (name, ranked) in [
            ("top addresses", Ranked::Stored(Dimension::Address)),
            ("top accounts", Ranked::Stored(Dimension::Account)),
            ("top countries", Ranked::Country),
            ("top hosts", Ranked::Stored(Dimension::Host)),
        ] {
            let (p50, p95) = measure(runs, || {
                stats::top(store, geo.as_ref(), ranked, from, newest, 10).expect("top");
            });
            println!("{range:<4} {name:<15} {p50:>8.2} {p95:>8.2}");
        }
    }
}
