//! Search latency on a stopped data directory: `SearchIndex::search` plus reading the hits'
//! events from the store, as `GET /api/v1/search` does (without HTTP).
//!
//! `DATA_DIR=/path/to/data cargo bench --bench search` (fill it first, for example with
//! `securify import` of a generated auth.log, and let the server's index catch up). Reports
//! p50 and p95 over `RUNS` (default 50) runs of each query, over all time and over the newest
//! 24 hours of event time, 100 hits per page as the API's default.

use std::time::Instant;

use securify::search::{SearchIndex, index_dir};
use securify::storage::Store;

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
            let mut times = Vec::with_capacity(runs);
            let mut hits = 0;
            for _ in 0..runs {
                let start = Instant::now();
                let found = search.search(query, from, None, None, 100).expect("search");
                let events = store.events_at(&found).expect("events");
                hits = events.len();
                times.push(start.elapsed().as_secs_f64() * 1e3);
            }
            times.sort_by(f64::total_cmp);
            println!(
                "{name:<18} {span:<8} {:>8.2} {:>8.2}   ({hits} hits) {query}",
                percentile(&times, 0.5),
                percentile(&times, 0.95),
            );
        }
    }
}
