//! Raw log lines into events: framing, message rules and the template miner per line, with
//! event ids derived from the line so that a line sent twice is stored once.
//!
//! Nothing in a line can fail its batch: a line no rule knows is kept as an `UNPARSED` event
//! with its template, an over-long line is cut (and marked so), and invalid UTF-8 is replaced.

use std::collections::BTreeSet;
use std::sync::{Mutex, MutexGuard, PoisonError};

use serde::Serialize;

use super::parse::connections::{self, Connections};
use super::parse::miner::{Miner, Template};
use super::parse::{self, LineClock, LineTime, Outcome};
use crate::event::{self, Event};
use crate::storage::{StorageError, Store, TemplateRecord};

/// `event_type` of a line no rule understood.
pub const UNPARSED: &str = "UNPARSED";
/// Longest line kept whole, in bytes; longer lines are cut at a character boundary.
pub const MAX_LINE_BYTES: usize = event::MAX_MESSAGE_LEN;
/// Most lines in one request.
pub const MAX_LINES_PER_REQUEST: usize = 100_000;

/// How to read lines that do not say everything themselves.
#[derive(Debug, Clone)]
pub struct LogOptions {
    /// Host of lines without a syslog header.
    pub host: Option<String>,
    /// A label for where the lines come from (`auth.log`, `syslog`), kept in each event.
    pub source: Option<String>,
    /// Resolves RFC 3164 times, which carry no year and no zone.
    pub clock: LineClock,
}

/// Events ready for the store, and the templates they refer to.
#[derive(Debug, Default)]
pub struct PreparedLines {
    pub events: Vec<Event>,
    /// Every template a line of this batch went to, in its current state.
    pub templates: Vec<TemplateRecord>,
    pub unparsed: usize,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LinesError {
    #[error("the body holds no log lines")]
    Empty,
    #[error("too many lines in one request (at most {MAX_LINES_PER_REQUEST})")]
    TooMany,
}

/// What reading lines remembers from one line to the next, across requests: the template
/// miner, and sshd's connections (see [`parse::connections`]). Each is locked for one line at
/// a time, so that batches prepared on several threads overlap in everything else.
#[derive(Debug, Default)]
pub struct LineMemory {
    miner: Mutex<Miner>,
    connections: Mutex<Connections>,
}

impl LineMemory {
    #[must_use]
    pub fn new(miner: Miner) -> Self {
        Self {
            miner: Mutex::new(miner),
            connections: Mutex::default(),
        }
    }

    /// With every stored template, as the store's writers resume it.
    pub fn load(store: &Store) -> Result<Self, StorageError> {
        let templates = store.templates()?;
        Ok(Self::new(Miner::with_templates(
            templates.into_iter().map(template).collect(),
        )))
    }
}

/// Turns `body` (one log line per line) into events received at `received_at` (µs).
pub fn prepare(
    body: &str,
    options: &mut LogOptions,
    memory: &LineMemory,
    received_at: i64,
) -> Result<PreparedLines, LinesError> {
    let lines: Vec<&str> = body
        .split('\n')
        .map(|line| line.trim_end_matches('\r'))
        .filter(|line| !line.trim().is_empty())
        .collect();
    if lines.is_empty() {
        return Err(LinesError::Empty);
    }
    if lines.len() > MAX_LINES_PER_REQUEST {
        return Err(LinesError::TooMany);
    }
    let mut prepared = PreparedLines {
        events: Vec::with_capacity(lines.len()),
        ..PreparedLines::default()
    };
    let mut touched = BTreeSet::new();
    let mut seen: rustc_hash::FxHashMap<&str, u32> = rustc_hash::FxHashMap::default();
    for line in lines {
        let occurrence = seen.entry(line).or_insert(0);
        *occurrence += 1;
        let (kept, truncated) = cut(line);
        let event = line_event(kept, truncated, *occurrence, options, memory, received_at);
        if event.event_type == UNPARSED {
            prepared.unparsed += 1;
        }
        if let Some(template) = event.template_id {
            touched.insert(template);
        }
        prepared.events.push(event);
    }
    let miner = lock(&memory.miner);
    prepared.templates = touched
        .into_iter()
        .filter_map(|id| miner.template(id))
        .map(record)
        .collect();
    Ok(prepared)
}

fn lock<T>(memory: &Mutex<T>) -> MutexGuard<'_, T> {
    memory.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The stored form of a template.
#[must_use]
pub fn record(template: &Template) -> TemplateRecord {
    TemplateRecord {
        id: template.id,
        tokens: template.tokens.clone(),
        count: template.count,
    }
}

/// A template from its stored form.
#[must_use]
pub fn template(record: TemplateRecord) -> Template {
    Template {
        id: record.id,
        tokens: record.tokens,
        count: record.count,
    }
}

fn cut(line: &str) -> (&str, bool) {
    if line.len() <= MAX_LINE_BYTES {
        return (line, false);
    }
    let mut end = MAX_LINE_BYTES;
    while !line.is_char_boundary(end) {
        end -= 1;
    }
    (&line[..end], true)
}

/// `L`, ten hex digits of the time the line states, and 32 hex digits of SHA-256 over the
/// default host, the line and which occurrence of that line in the request it is: the same
/// line sent again, live or in an import, whatever its `source` label, is a duplicate. The time
/// comes first so that the ids of a log, which runs forward, land next to each other in the
/// id index (random ids would touch a different index page for every line). It is read from
/// the line's own text (an RFC 3164 time as the second of its year), never from `year` or
/// `tz`, so the id depends on the line alone.
const HEX: &[u8; 16] = b"0123456789abcdef";

fn line_id(options: &LogOptions, line: &str, time: Option<LineTime>, occurrence: u32) -> String {
    let order = match time {
        None => 0,
        Some(LineTime::Absolute(micros)) => micros.div_euclid(1_000_000).max(0),
        Some(LineTime::WithoutYear {
            month,
            day,
            hour,
            minute,
            second,
            ..
        }) => {
            ((i64::from(month) * 31 + i64::from(day)) * 24 + i64::from(hour)) * 3600
                + i64::from(minute) * 60
                + i64::from(second)
        }
    };
    let mut context = aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA256);
    for part in [options.host.as_deref().unwrap_or(""), line] {
        context.update(&(part.len() as u64).to_le_bytes());
        context.update(part.as_bytes());
    }
    context.update(&occurrence.to_le_bytes());
    let digest = context.finish();
    let mut id = String::with_capacity(43);
    id.push('L');
    for shift in (0..10).rev() {
        id.push(char::from(HEX[((order >> (shift * 4)) & 0xf) as usize]));
    }
    for byte in &digest.as_ref()[..16] {
        id.push(char::from(HEX[usize::from(byte >> 4)]));
        id.push(char::from(HEX[usize::from(byte & 0xf)]));
    }
    id
}

fn bounded(text: &str, max: usize) -> String {
    let mut end = text.len().min(max);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text[..end].to_string()
}

/// The `details` of a log event, its keys in alphabetical order as a JSON object keeps them.
#[derive(Serialize)]
struct Details<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    command: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    count: Option<u32>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    invalid_user: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    method: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    parser: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    remote_host: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    source: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    target: Option<&'a str>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    truncated: bool,
}

impl Details<'_> {
    fn to_json(&self) -> Option<String> {
        let text = serde_json::to_string(self).ok()?;
        (text != "{}").then_some(text)
    }
}

fn line_event(
    line: &str,
    truncated: bool,
    occurrence: u32,
    options: &mut LogOptions,
    memory: &LineMemory,
    received_at: i64,
) -> Event {
    let mut parsed = parse::parse_line(line);
    let framed = &parsed.framed;
    let event_id = line_id(options, line, framed.time, occurrence);
    let masked = super::parse::miner::mask_tokens(framed.message);
    let (template_id, _) = lock(&memory.miner).place(&masked);
    // A time before 1970 or more than a day ahead is a wrong clock or a forgery: the line is
    // kept, at the time it arrived.
    let timestamp = framed
        .time
        .and_then(|time| options.clock.resolve(time))
        .filter(|&t| event::is_plausible_time(t, received_at))
        .unwrap_or(received_at);
    if let (Some(record), Some(key)) = (
        parsed.record.as_mut(),
        connections::key_of(framed, options.host.as_deref()),
    ) {
        lock(&memory.connections).follow(key, timestamp, record);
    }
    let record = parsed.record.as_ref();
    let details = Details {
        command: record.and_then(|r| r.command.as_deref()),
        count: record.map(|r| r.count).filter(|&c| c != 1),
        invalid_user: record.is_some_and(|r| r.invalid_user),
        method: record.and_then(|r| r.method.as_deref()),
        parser: record.map(|r| r.parser),
        remote_host: record.and_then(|r| r.remote_host.as_deref()),
        source: options.source.as_deref(),
        target: record.and_then(|r| r.target.as_deref()),
        truncated,
    };
    // Names are what `/ingest` accepts: no control characters (the line itself keeps them).
    let name = |text: &str| {
        let kept = bounded(text, event::MAX_NAME_LEN);
        if kept.contains(char::is_control) {
            kept.chars()
                .map(|c| if c.is_control() { '\u{fffd}' } else { c })
                .collect()
        } else {
            kept
        }
    };
    Event {
        event_id,
        timestamp,
        received_at,
        source_ip: record.and_then(|r| r.source_ip),
        port: record.and_then(|r| r.port),
        event_type: record.map_or(UNPARSED, |r| r.kind.as_str()).to_string(),
        username: record.and_then(|r| r.user.as_deref()).map(name),
        success: record.and_then(|r| match r.outcome {
            Outcome::Success => Some(true),
            Outcome::Failure => Some(false),
            Outcome::Neutral => None,
        }),
        host: framed.host.map(name).or_else(|| options.host.clone()),
        service: framed.program.map(name),
        pid: framed.pid,
        user_agent: None,
        // The message is the raw line without its syslog header: stored once, in `raw`.
        message: None,
        details: details.to_json(),
        raw: Some(line.to_string()),
        template_id: Some(template_id),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options() -> LogOptions {
        LogOptions {
            host: Some("edge1".into()),
            source: Some("auth.log".into()),
            clock: LineClock::new(2026, time::UtcOffset::UTC),
        }
    }

    #[test]
    fn lines_become_events_and_nothing_fails_the_batch() {
        let long = format!(
            "Mar  2 00:00:09 srv01 app[1]: {}",
            "é".repeat(MAX_LINE_BYTES)
        );
        let body = format!(
            "Mar  2 00:00:03 srv01 sshd[7]: Failed password for root from 203.0.113.9 port 4444 ssh2\r\n\
             \n\
             garbage \u{1}\u{2} that no rule knows\n\
             Failed password for root from 203.0.113.9 port 4444 ssh2\n\
             {long}\n"
        );
        let miner = LineMemory::default();
        let now = crate::now_micros();
        let prepared = prepare(&body, &mut options(), &miner, now).unwrap();
        assert_eq!(prepared.events.len(), 4);
        assert_eq!(prepared.unparsed, 2);
        let failed = &prepared.events[0];
        assert_eq!(failed.event_type, "LOGIN_FAILED");
        assert_eq!(failed.username.as_deref(), Some("root"));
        assert_eq!(failed.source_ip, "203.0.113.9".parse().ok());
        assert_eq!(failed.port, Some(4444));
        assert_eq!(failed.success, Some(false));
        assert_eq!(failed.host.as_deref(), Some("srv01"));
        assert_eq!(failed.service.as_deref(), Some("sshd"));
        assert_eq!(failed.pid, Some(7));
        assert_eq!(
            event::format_timestamp(failed.timestamp),
            "2026-03-02T00:00:03Z"
        );
        assert!(
            failed
                .details
                .as_deref()
                .unwrap()
                .contains(r#""parser":"sshd""#)
        );
        // A bare line: received time, the default host, the same template as the framed one.
        let bare = &prepared.events[2];
        assert_eq!((bare.timestamp, bare.host.as_deref()), (now, Some("edge1")));
        assert_eq!(bare.template_id, failed.template_id);
        let unparsed = &prepared.events[1];
        assert_eq!(unparsed.event_type, UNPARSED);
        assert_eq!(unparsed.success, None);
        let cut = &prepared.events[3];
        assert!(cut.raw.as_ref().unwrap().len() <= MAX_LINE_BYTES);
        assert!(
            cut.details
                .as_deref()
                .unwrap()
                .contains(r#""truncated":true"#)
        );
        // Every template the batch used comes with it.
        let ids: Vec<u32> = prepared.templates.iter().map(|t| t.id).collect();
        assert_eq!(ids, [1, 2, 3]);
    }

    #[test]
    fn the_same_line_gets_the_same_id_and_repeats_in_one_batch_differ() {
        let body =
            "Mar  2 00:00:03 srv01 sshd[7]: Connection closed by 10.0.0.2 port 1 [preauth]\n";
        let miner = LineMemory::default();
        let first = prepare(body, &mut options(), &miner, 1).unwrap();
        let again = prepare(body, &mut options(), &miner, 2).unwrap();
        assert_eq!(first.events[0].event_id, again.events[0].event_id);
        let twice = prepare(&body.repeat(2), &mut options(), &miner, 3).unwrap();
        assert_eq!(twice.events[0].event_id, first.events[0].event_id);
        assert_ne!(twice.events[1].event_id, twice.events[0].event_id);
        let mut elsewhere = options();
        elsewhere.host = Some("edge2".into());
        let other = prepare(body, &mut elsewhere, &miner, 4).unwrap();
        assert_ne!(other.events[0].event_id, first.events[0].event_id);
    }

    #[test]
    fn a_line_from_before_1970_or_the_future_is_kept_at_its_arrival() {
        let now = crate::now_micros();
        let body = "9999-12-31T23:59:59-23:59 srv01 sshd[7]: Failed password for root from 203.0.113.9 port 1 ssh2\n\
                    1969-12-31T23:59:59Z srv01 sshd[8]: Failed password for root from 203.0.113.9 port 2 ssh2\n\
                    2026-03-02T00:00:03Z srv01 sshd[9]: Failed password for root from 203.0.113.9 port 3 ssh2\n";
        let prepared = prepare(body, &mut options(), &LineMemory::default(), now).unwrap();
        let times: Vec<i64> = prepared.events.iter().map(|e| e.timestamp).collect();
        assert_eq!(times[..2], [now, now]);
        assert_eq!(event::format_timestamp(times[2]), "2026-03-02T00:00:03Z");
    }

    #[test]
    fn names_hold_no_control_characters() {
        let body = "Mar  2 00:00:03 srv01 sshd[7]: Invalid user a\u{0}b\u{1b}[31m from 203.0.113.9 port 1\n";
        let prepared = prepare(body, &mut options(), &LineMemory::default(), 1).unwrap();
        let event = &prepared.events[0];
        let user = event.username.as_deref().unwrap();
        assert_eq!(user, "a\u{fffd}b\u{fffd}[31m");
        assert!(event::check_name("username", user, event::MAX_NAME_LEN).is_ok());
        assert!(event.raw.as_deref().unwrap().contains('\u{0}'));
    }

    #[test]
    fn empty_and_oversized_bodies_are_refused() {
        let miner = LineMemory::default();
        assert_eq!(
            prepare(" \n\r\n", &mut options(), &miner, 1).unwrap_err(),
            LinesError::Empty
        );
        let many = "x\n".repeat(MAX_LINES_PER_REQUEST + 1);
        assert_eq!(
            prepare(&many, &mut options(), &miner, 1).unwrap_err(),
            LinesError::TooMany
        );
    }
}
