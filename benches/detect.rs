//! The detector on its own: `Detector::observe` (and `Detector::risk`) per event, without IO.
//!
//! `cargo bench --bench detect` feeds two streams through the built-in rules with the built-in
//! geolocation, each once warmed up and then measured:
//! - `synthetic`: the events of `bench/batch.lua` (1,000 addresses, 20,000 accounts, one in
//!   seven a success, one event per millisecond of event time), the worst case for the
//!   per-address windows;
//! - `auth.log`: the lines of a generated auth.log (`AUTHLOG=path`, for example from
//!   `../shared/tools/gen_authlog.py`), parsed as live ingest parses them; skipped when unset.
//!
//! For the auth.log it first reports the cost of preparing a line as ingest does (framing and
//! parsing, masking for the template miner, the whole of `logs::prepare`) and of encoding the
//! event for the store. It reports µs per event for observing and for assessing a risk. Settings: `EVENTS`
//! (default 1,000,000 synthetic events).

use std::sync::Arc;
use std::time::Instant;

use securify::detect::engine::Detector;
use securify::detect::rules::{DEFAULT_RULES, parse};
use securify::event::Event;
use securify::geo::Geo;
use securify::ingest::logs::{self, LogOptions};
use securify::ingest::parse::miner::mask_tokens;
use securify::ingest::parse::{LineClock, parse_line};
use securify::storage::EncodedEvent;

// The allocator of the appliance, so that allocation costs what it costs there.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn synthetic(count: usize) -> Vec<Event> {
    let base = 1_767_225_600_000_000_i64;
    (0..count)
        .map(|n| {
            let i = n % 1_000;
            Event {
                event_id: format!("s-{n:09}"),
                timestamp: base + n as i64 * 1_000,
                received_at: base,
                source_ip: Some(std::net::IpAddr::from([
                    203,
                    0,
                    (i % 250) as u8,
                    ((i / 250) % 250) as u8,
                ])),
                port: None,
                event_type: "LOGIN_ATTEMPT".into(),
                username: Some(format!("user{}", i * 7 % 20_000)),
                success: Some(i % 7 == 0),
                host: None,
                service: Some("sshd".into()),
                pid: None,
                user_agent: None,
                message: None,
                details: None,
                raw: None,
                template_id: None,
            }
        })
        .collect()
}

fn auth_log(path: &str) -> Vec<Event> {
    let text = std::fs::read_to_string(path).expect("read AUTHLOG");
    let lines: Vec<&str> = text.lines().collect();
    let per_line = |elapsed: std::time::Duration| elapsed.as_secs_f64() * 1e6 / lines.len() as f64;
    // The stages of preparing a line, each alone, then the whole of it.
    let start = Instant::now();
    let parsed = lines
        .iter()
        .filter(|l| parse_line(l).record.is_some())
        .count();
    let parse = per_line(start.elapsed());
    let start = Instant::now();
    let tokens: usize = lines
        .iter()
        .map(|l| mask_tokens(parse_line(l).framed.message).len())
        .sum();
    let mask = per_line(start.elapsed()) - parse;
    let memory = logs::LineMemory::default();
    let mut options = LogOptions {
        host: None,
        source: None,
        clock: LineClock::new(2026, time::UtcOffset::UTC),
    };
    let chunks: Vec<String> = lines.chunks(5_000).map(|c| c.join("\n")).collect();
    let mut events = Vec::new();
    let start = Instant::now();
    for chunk in &chunks {
        let prepared =
            logs::prepare(chunk, &mut options, &memory, securify::now_micros()).expect("lines");
        events.extend(prepared.events);
    }
    let prepare = per_line(start.elapsed());
    let start = Instant::now();
    let encoded: Vec<EncodedEvent> = events.iter().map(EncodedEvent::new).collect();
    let encode = per_line(start.elapsed());
    println!(
        "auth.log lines: {} ({parsed} parsed, {tokens} tokens); µs/line: parse {parse:.2}, \
         mask {mask:.2}, prepare in all {prepare:.2}, encode {encode:.2} ({} events)",
        lines.len(),
        encoded.len(),
    );
    events
}

fn measure(name: &str, events: &[Event]) {
    let geo = Arc::new(Geo::built_in().expect("geo"));
    let rules = parse(DEFAULT_RULES).expect("rules");
    let mut detector = Detector::with_geo(rules, Some(geo));
    let start = Instant::now();
    let mut findings = 0;
    for event in events {
        findings += detector.observe(event).len();
    }
    let observe = start.elapsed();
    let start = Instant::now();
    let mut blocked = 0;
    for event in events.iter().take(100_000) {
        if detector.risk(event, &[]).verdict == "block" {
            blocked += 1;
        }
    }
    let risk = start.elapsed();
    let assessed = events.len().min(100_000);
    println!(
        "{name}: {} events, observe {:.2} µs/event ({:.0} events/s), {findings} findings; \
         risk {:.2} µs/event ({blocked} of {assessed} blocked)",
        events.len(),
        observe.as_secs_f64() * 1e6 / events.len() as f64,
        events.len() as f64 / observe.as_secs_f64(),
        risk.as_secs_f64() * 1e6 / assessed as f64,
    );
}

fn main() {
    let count = std::env::var("EVENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    measure("synthetic", &synthetic(count));
    if let Ok(path) = std::env::var("AUTHLOG") {
        measure("auth.log", &auth_log(&path));
    }
}
