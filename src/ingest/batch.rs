//! A batch of an old log file (`securify import`), self-contained so that it is read exactly as
//! live ingest reads its lines (the same rules, miner and event ids): importing a file and
//! feeding it live store the same events, and importing it twice stores them once.
//!
//! A batch is self-contained: it carries the year its first RFC 3164 line belongs to (the
//! importer follows the file across New Year), so batches may be prepared anywhere: by the
//! running server, reached through its admin socket, or by the command itself on a stopped
//! data directory.

use serde::{Deserialize, Serialize};

use super::logs::LogOptions;
use super::parse::LineClock;

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

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid offset from UTC: {0} s")]
pub struct OffsetError(pub i32);

impl ImportBatch {
    /// How to read the batch's log lines: its host and source, and a clock starting in its
    /// year.
    pub fn log_options(&self) -> Result<LogOptions, OffsetError> {
        let offset = time::UtcOffset::from_whole_seconds(self.utc_offset_secs)
            .map_err(|_| OffsetError(self.utc_offset_secs))?;
        Ok(LogOptions {
            host: self.host.clone(),
            source: self.source.clone(),
            clock: LineClock::new(self.year, offset),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
