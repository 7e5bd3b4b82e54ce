//! The event writer on its own: `Store::append_batches` on a fresh database file, without HTTP.
//!
//! `cargo bench --bench store` decodes NDJSON batches of 1,000 events (time-ordered ids, event
//! times advancing), encodes them, and then commits them durably, `BATCHES_PER_COMMIT` batches
//! per transaction as the pipeline merges concurrent requests. It reports events/s and the
//! CPU time per event of the committing thread, which is what bounds batch ingest: the HTTP
//! benchmark (`bench/run.sh`) shares its cores with the load generator, this one does not.
//! Settings: `COMMITS` (default 400), `BATCHES_PER_COMMIT` (4), `ROUNDS` (3, median reported).

use std::fmt::Write as _;
use std::time::Instant;

use securify::ingest::json::{Format, decode};
use securify::storage::{EncodedEvent, Store};

const BATCH: usize = 1_000;

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// CPU time of the calling thread, in µs (user + system).
fn thread_cpu_micros() -> u64 {
    let stat = std::fs::read_to_string("/proc/thread-self/stat").unwrap_or_default();
    // Fields after the command name, which is in parentheses and may contain spaces.
    let rest = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 = [11, 12]
        .iter()
        .filter_map(|&i| fields.get(i).and_then(|v| v.parse::<u64>().ok()))
        .sum();
    // Linux reports these in USER_HZ, which is 100 on every mainstream configuration.
    ticks * 10_000
}

fn body(request: usize) -> Vec<u8> {
    let mut body = String::with_capacity(BATCH * 180);
    let second = 1_767_225_600 + request;
    let (h, m, s) = ((second / 3600) % 24, (second / 60) % 60, second % 60);
    for i in 0..BATCH {
        let _ = writeln!(
            body,
            "{{\"event_id\":\"b-{request:09}-{i:04}\",\"timestamp\":\"2026-01-01T{h:02}:{m:02}:{s:02}Z\",\
             \"source_ip\":\"203.0.{}.{}\",\"event_type\":\"LOGIN_ATTEMPT\",\"username\":\"user{}\",\
             \"success\":{},\"service\":\"sshd\"}}",
            i % 250,
            (i / 250) % 250,
            i * 7 % 20_000,
            i % 7 == 0
        );
    }
    body.into_bytes()
}

fn main() {
    let commits = env("COMMITS", 400);
    let per_commit = env("BATCHES_PER_COMMIT", 4);
    let rounds = env("ROUNDS", 3);
    let mut results = Vec::new();
    for round in 0..rounds {
        let dir = tempfile::tempdir().expect("temporary directory");
        let store = Store::open(&dir.path().join("bench.redb"), 32 << 20).expect("open store");
        let commits_input: Vec<Vec<Vec<EncodedEvent>>> = (0..commits)
            .map(|c| {
                (0..per_commit)
                    .map(|b| {
                        let decoded = decode(&body(c * per_commit + b), Format::Ndjson, 0)
                            .expect("valid NDJSON");
                        decoded.events.iter().map(EncodedEvent::new).collect()
                    })
                    .collect()
            })
            .collect();
        let events = commits * per_commit * BATCH;
        let cpu_before = thread_cpu_micros();
        let started = Instant::now();
        for batches in &commits_input {
            store.append_batches(batches).expect("commit");
        }
        let wall = started.elapsed().as_secs_f64();
        let cpu = (thread_cpu_micros() - cpu_before) as f64;
        let rate = events as f64 / wall;
        let per_event = cpu / events as f64;
        println!(
            "round {}: {events} events in {commits} commits: {rate:.0} events/s, {per_event:.2} µs CPU/event",
            round + 1
        );
        results.push((per_event, rate));
    }
    results.sort_by(|a, b| a.0.total_cmp(&b.0));
    let (per_event, rate) = results[results.len() / 2];
    println!("median: {per_event:.2} µs CPU/event ({rate:.0} events/s)");
}
