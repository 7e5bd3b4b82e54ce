//! `securify import`: an old log file in batches, each prepared exactly as live ingest prepares
//! it (the same rules, miner and event ids), so importing a file and feeding it live store the
//! same events, and importing it twice stores them once.
//!
//! A batch is self-contained: it carries the year its first RFC 3164 line belongs to (the
//! importer follows the file across New Year), so batches may be prepared anywhere: by the
//! running server, reached through its admin socket, or by the command itself on a stopped
//! data directory.

use serde::{Deserialize, Serialize};

use super::json::{self, DecodeError, Format};
use super::logs::{self, LinesError, LogOptions};
use super::parse::LineClock;
use super::parse::miner::Miner;
use crate::event::Event;
use crate::storage::{EncodedEvent, TemplateRecord};
use std::sync::Mutex;

/// What the lines of a file are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ImportFormat {
    /// Log lines (auth.log, syslog), as `POST /api/v1/logs` takes them.
    Syslog,
    /// One JSON event per line, as `POST /ingest` takes them.
    Ndjson,
}

impl ImportFormat {
    /// NDJSON when the first non-blank line is a JSON object, log lines otherwise.
    #[must_use]
    pub fn detect(first_line: &str) -> Self {
        if first_line.trim_start().starts_with('{') {
            Self::Ndjson
        } else {
            Self::Syslog
        }
    }
}

/// One batch of a file.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ImportBatch {
    /// Whole lines, newline-separated.
    pub text: String,
    pub format: ImportFormat,
    pub host: Option<String>,
    pub source: Option<String>,
    /// Year of the batch's first year-less timestamp.
    pub year: i32,
    /// Offset from UTC of timestamps that carry none, in seconds.
    pub utc_offset_secs: i32,
}

/// What a batch (or a whole import) came to.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImportCounts {
    pub lines: usize,
    pub accepted: usize,
    pub duplicates: usize,
    /// Log lines no rule understood (kept as `UNPARSED` events).
    pub unparsed: usize,
    /// NDJSON lines refused (a field missing or invalid); log lines are never refused.
    pub rejected: usize,
}

impl std::ops::AddAssign for ImportCounts {
    fn add_assign(&mut self, other: Self) {
        self.lines += other.lines;
        self.accepted += other.accepted;
        self.duplicates += other.duplicates;
        self.unparsed += other.unparsed;
        self.rejected += other.rejected;
    }
}

/// A batch ready for the store.
#[derive(Debug, Default)]
pub struct PreparedImport {
    /// The events, for detection once they are stored.
    pub events: Vec<Event>,
    /// The same, encoded for the store.
    pub encoded: Vec<EncodedEvent>,
    pub templates: Vec<TemplateRecord>,
    /// Lines, unparsed and rejected; accepted and duplicates come from the store.
    pub counts: ImportCounts,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ImportError {
    #[error(transparent)]
    Lines(#[from] LinesError),
    #[error(transparent)]
    Json(#[from] DecodeError),
    #[error("invalid offset from UTC: {0} s")]
    Offset(i32),
}

/// Prepares `batch`, received at `now` (µs), with `miner`.
pub fn prepare(
    batch: &ImportBatch,
    miner: &Mutex<Miner>,
    now: i64,
) -> Result<PreparedImport, ImportError> {
    match batch.format {
        ImportFormat::Ndjson => {
            let decoded = json::decode(batch.text.as_bytes(), Format::Ndjson, now)?;
            Ok(PreparedImport {
                counts: ImportCounts {
                    lines: decoded.events.len() + decoded.rejected.len(),
                    rejected: decoded.rejected.len(),
                    ..ImportCounts::default()
                },
                encoded: decoded.events.iter().map(EncodedEvent::new).collect(),
                events: decoded.events,
                templates: Vec::new(),
            })
        }
        ImportFormat::Syslog => {
            let offset = time::UtcOffset::from_whole_seconds(batch.utc_offset_secs)
                .map_err(|_| ImportError::Offset(batch.utc_offset_secs))?;
            let mut options = LogOptions {
                host: batch.host.clone(),
                source: batch.source.clone(),
                clock: LineClock::new(batch.year, offset),
            };
            let prepared = logs::prepare(&batch.text, &mut options, miner, now)?;
            Ok(PreparedImport {
                counts: ImportCounts {
                    lines: prepared.events.len(),
                    unparsed: prepared.unparsed,
                    ..ImportCounts::default()
                },
                encoded: prepared.events.iter().map(EncodedEvent::new).collect(),
                events: prepared.events,
                templates: prepared.templates,
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn batch(text: &str, format: ImportFormat, year: i32) -> ImportBatch {
        ImportBatch {
            text: text.into(),
            format,
            host: None,
            source: Some("auth.log".into()),
            year,
            utc_offset_secs: 0,
        }
    }

    #[test]
    fn formats_are_detected_from_the_first_line() {
        assert_eq!(
            ImportFormat::detect(r#"  {"event_id":"x"}"#),
            ImportFormat::Ndjson
        );
        assert_eq!(
            ImportFormat::detect("Mar  2 00:00:03 srv01 sshd[1]: x"),
            ImportFormat::Syslog
        );
    }

    #[test]
    fn batches_prepare_like_live_ingest() {
        let miner = Mutex::new(Miner::default());
        let line = "Dec 31 23:59:59 srv01 sshd[1]: Failed password for root from 192.0.2.1 port 22 ssh2\n\
                    Jan  1 00:00:01 srv01 sshd[1]: Failed password for root from 192.0.2.1 port 22 ssh2\n";
        let prepared = prepare(&batch(line, ImportFormat::Syslog, 2025), &miner, 0).unwrap();
        assert_eq!(prepared.counts.lines, 2);
        assert_eq!(prepared.templates.len(), 1);
        let ndjson = r#"{"timestamp":"2026-01-01T00:00:00Z","source_ip":"192.0.2.1","event_type":"LOGIN","username":"a","success":true}
{"timestamp":"bad","source_ip":"192.0.2.1","event_type":"LOGIN","username":"a","success":true}
"#;
        let prepared = prepare(&batch(ndjson, ImportFormat::Ndjson, 2025), &miner, 0).unwrap();
        assert_eq!((prepared.encoded.len(), prepared.counts.rejected), (1, 1));
        let mut bad = batch(line, ImportFormat::Syslog, 2025);
        bad.utc_offset_secs = 100_000;
        assert_eq!(
            prepare(&bad, &miner, 0).unwrap_err(),
            ImportError::Offset(100_000)
        );
    }
}
