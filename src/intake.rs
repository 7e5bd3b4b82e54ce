//! The one way in: whatever a way in received ([`Input`]) is read into events, encoded for the
//! store, stored durably, detected on, and answered with a [`Receipt`]. Every way in (`POST
//! /ingest`, `POST /api/v1/logs`, the syslog listener, `securify import` through the server or
//! on a stopped store, the appliance's own logins) parses only its own framing and shapes its
//! own reply; the sequence in between is written once, here.
//!
//! Two targets share the reading: [`Intake`] stores through the group-commit pipeline of a
//! running server and detects on the recorder's detector; [`DirectIntake`] writes to the store
//! of a stopped data directory itself and runs its own detector in place.
//!
//! This is the only code that builds [`EncodedEvent`]s (tests and benchmarks aside). They are
//! built on the caller's side, never on the writer thread, so the single writer only inserts.

use std::sync::{Arc, Mutex, PoisonError};

use bytes::Bytes;
use serde::Serialize;

use crate::alerting::recorder::{self, Recorder};
use crate::detect::engine::{Detector, Risk};
use crate::detect::rules::Rule;
use crate::event::Event;
use crate::geo::Geo;
use crate::ingest::batch::{ImportBatch, ImportCounts, ImportFormat, OffsetError};
use crate::ingest::json::{self, DecodeError, Format};
use crate::ingest::logs::{self, LineMemory, LinesError, LogOptions};
use crate::ingest::pipeline::{Pipeline, PipelineError, PipelineStats};
use crate::storage::{AppendOutcome, EncodedEvent, StorageError, Store, TemplateRecord};

/// Bodies up to this size are read on the caller's thread; larger ones, and every input that
/// goes through the template miner, on the blocking pool, so executors stay responsive.
const INLINE_BYTES: usize = 256 * 1024;

/// What a way in received.
#[derive(Debug, Clone)]
pub enum Input {
    /// A JSON event, a JSON array of events, or NDJSON (`POST /ingest`).
    Json { body: Bytes, format: Format },
    /// Raw log lines, each text with how to read it (`POST /api/v1/logs` sends one text; the
    /// syslog listener one per sender).
    Lines(Vec<(Bytes, LogOptions)>),
    /// A batch of a file (`securify import`).
    Batch(ImportBatch),
    /// Events the appliance made itself (logins to its own pages and API).
    Events(Vec<Event>),
}

impl Input {
    /// Whether reading it is cheap enough for the caller's thread.
    fn is_light(&self) -> bool {
        match self {
            Self::Json { body, .. } => body.len() <= INLINE_BYTES,
            Self::Events(_) => true,
            Self::Lines(_) | Self::Batch(_) => false,
        }
    }
}

/// An event refused on its own, by its position in the input (0-based).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Rejected {
    pub index: usize,
    pub error: String,
}

/// What became of an input.
#[derive(Debug, Clone, Default)]
pub struct Receipt {
    /// Lines or events read (rejected ones included).
    pub lines: usize,
    /// Events stored now, and events stored before (by `event_id`).
    pub accepted: usize,
    pub duplicates: usize,
    /// Log lines no rule understood (stored as `UNPARSED` events).
    pub unparsed: usize,
    /// JSON events refused (a field missing or invalid); log lines are never refused.
    pub rejected: Vec<Rejected>,
    /// The risk of a single JSON event (`None` for batches, or when detection failed).
    pub risk: Option<Risk>,
}

impl Receipt {
    /// The counts of an import batch.
    #[must_use]
    pub fn counts(&self) -> ImportCounts {
        ImportCounts {
            lines: self.lines,
            accepted: self.accepted,
            duplicates: self.duplicates,
            unparsed: self.unparsed,
            rejected: self.rejected.len(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum IntakeError {
    #[error(transparent)]
    Json(#[from] DecodeError),
    #[error(transparent)]
    Lines(#[from] LinesError),
    #[error(transparent)]
    Offset(#[from] OffsetError),
    /// A body of one event whose event is invalid: nothing is stored.
    #[error("{0}")]
    InvalidEvent(String),
    #[error(transparent)]
    Pipeline(#[from] PipelineError),
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// The thread reading the input panicked.
    #[error("reading the input failed: {0}")]
    Worker(String),
}

impl IntakeError {
    /// Whether the input is at fault (rather than the appliance).
    #[must_use]
    pub fn is_invalid_input(&self) -> bool {
        matches!(
            self,
            Self::Json(_) | Self::Lines(_) | Self::Offset(_) | Self::InvalidEvent(_)
        )
    }
}

/// Events read from an input, encoded for the store.
struct Prepared {
    events: Vec<Event>,
    encoded: Vec<EncodedEvent>,
    templates: Vec<TemplateRecord>,
    /// Lines, unparsed and rejected; the store's outcome completes it.
    receipt: Receipt,
    /// A body of one JSON event: its risk is assessed.
    single: bool,
}

impl Prepared {
    fn new(events: Vec<Event>, templates: Vec<TemplateRecord>, receipt: Receipt) -> Self {
        Self {
            encoded: events.iter().map(EncodedEvent::new).collect(),
            events,
            templates,
            receipt,
            single: false,
        }
    }

    /// The receipt, with what the store made of the events.
    fn stored(mut self, outcome: &AppendOutcome) -> (Receipt, Vec<Event>, bool) {
        self.receipt.accepted = outcome.accepted;
        self.receipt.duplicates = outcome.duplicates;
        (self.receipt, self.events, self.single)
    }
}

/// Reads `input`, received at `now` (µs), reading log lines with `memory`.
fn prepare(input: Input, memory: &LineMemory, now: i64) -> Result<Prepared, IntakeError> {
    match input {
        Input::Json { body, format } => decoded(json::decode(&body, format, now)?),
        Input::Lines(parts) => {
            let mut events = Vec::new();
            let mut templates = Vec::new();
            let mut unparsed = 0;
            for (text, mut options) in parts {
                let text = String::from_utf8_lossy(&text);
                let lines = logs::prepare(&text, &mut options, memory, now)?;
                events.extend(lines.events);
                templates.extend(lines.templates);
                unparsed += lines.unparsed;
            }
            Ok(lines(events, templates, unparsed))
        }
        Input::Batch(batch) => match batch.format {
            ImportFormat::Ndjson => {
                decoded(json::decode(batch.text.as_bytes(), Format::Ndjson, now)?)
            }
            ImportFormat::Syslog => {
                let mut options = batch.log_options()?;
                let read = logs::prepare(&batch.text, &mut options, memory, now)?;
                Ok(lines(read.events, read.templates, read.unparsed))
            }
        },
        Input::Events(events) => {
            let receipt = Receipt {
                lines: events.len(),
                ..Receipt::default()
            };
            Ok(Prepared::new(events, Vec::new(), receipt))
        }
    }
}

fn decoded(decoded: json::Decoded) -> Result<Prepared, IntakeError> {
    if decoded.single
        && let Some(rejection) = decoded.rejected.first()
    {
        return Err(IntakeError::InvalidEvent(rejection.error.clone()));
    }
    let receipt = Receipt {
        lines: decoded.events.len() + decoded.rejected.len(),
        rejected: decoded
            .rejected
            .into_iter()
            .map(|r| Rejected {
                index: r.index,
                error: r.error,
            })
            .collect(),
        ..Receipt::default()
    };
    let mut prepared = Prepared::new(decoded.events, Vec::new(), receipt);
    prepared.single = decoded.single;
    Ok(prepared)
}

fn lines(events: Vec<Event>, templates: Vec<TemplateRecord>, unparsed: usize) -> Prepared {
    let receipt = Receipt {
        lines: events.len(),
        unparsed,
        ..Receipt::default()
    };
    Prepared::new(events, templates, receipt)
}

/// The intake of a running server. Cheap to clone; every clone keeps the writer and the
/// recorder threads alive (they exit after the last clone is dropped and their queues are
/// drained, which is how shutdown flushes them).
#[derive(Debug, Clone)]
pub struct Intake {
    /// The group-commit writer.
    pipeline: Pipeline,
    /// Detection on committed events, and the alerts it records.
    recorder: Recorder,
    /// The template miner, loaded from the store at start, and sshd's connections. Held for
    /// the few microseconds per line that reading takes; the templates an input touched travel
    /// with its events to the writer, which stores both in one transaction.
    memory: Arc<LineMemory>,
}

impl Intake {
    #[must_use]
    pub fn new(pipeline: Pipeline, recorder: Recorder, memory: LineMemory) -> Self {
        Self {
            pipeline,
            recorder,
            memory: Arc::new(memory),
        }
    }

    /// The writer's counters (commits, events stored), for `/ready`, pages and live updates.
    #[must_use]
    pub fn stats(&self) -> &Arc<PipelineStats> {
        &self.pipeline.stats
    }

    /// Reads, stores and detects on `input`; returns once its events are durable and the
    /// alerts they open are recorded. A failure of detection is logged: the events are stored
    /// either way.
    pub async fn take(&self, input: Input) -> Result<Receipt, IntakeError> {
        let now = crate::now_micros();
        let prepared = if input.is_light() {
            prepare(input, &self.memory, now)?
        } else {
            let memory = Arc::clone(&self.memory);
            tokio::task::spawn_blocking(move || prepare(input, &memory, now))
                .await
                .map_err(|e| IntakeError::Worker(e.to_string()))??
        };
        self.store(prepared).await
    }

    async fn store(&self, mut prepared: Prepared) -> Result<Receipt, IntakeError> {
        let encoded = std::mem::take(&mut prepared.encoded);
        let templates = std::mem::take(&mut prepared.templates);
        let mut outcome = self.pipeline.submit(encoded, templates).await?;
        let duplicates = std::mem::take(&mut outcome.duplicate_positions);
        let (mut receipt, events, single) = prepared.stored(&outcome);
        match self.recorder.detect(events, duplicates, single).await {
            // A single event is assessed as it is detected on: the caller may act on it.
            Ok(mut risks) => receipt.risk = risks.pop().filter(|_| single),
            Err(e) => tracing::error!(error = ?e, "could not record alerts"),
        }
        Ok(receipt)
    }
}

/// The intake of a stopped data directory (`securify import` without a server): the same
/// reading, written to the store directly, with a detector of its own rebuilt from the
/// store's recent events as a starting server rebuilds it, so an attack under way counts
/// across imports. Shared by the importing threads.
pub struct DirectIntake {
    store: Store,
    memory: LineMemory,
    detector: Mutex<Detector>,
}

impl DirectIntake {
    /// Loads the templates and rebuilds detection state from `store`.
    pub fn open(
        store: Store,
        rules: Vec<Rule>,
        geo: Option<Arc<Geo>>,
    ) -> Result<Self, StorageError> {
        let memory = LineMemory::load(&store)?;
        let detector = recorder::restore(&store, rules, geo)?;
        Ok(Self {
            store,
            memory,
            detector: Mutex::new(detector),
        })
    }

    /// Reads, stores (one transaction) and detects on `input`, in place.
    pub fn take(&self, input: Input) -> Result<Receipt, IntakeError> {
        let mut prepared = prepare(input, &self.memory, crate::now_micros())?;
        let encoded = std::mem::take(&mut prepared.encoded);
        let outcome = self
            .store
            .append(&[encoded], &prepared.templates)?
            .pop()
            .unwrap_or_default();
        let (receipt, events, _) = prepared.stored(&outcome);
        let mut detector = self.detector.lock().unwrap_or_else(PoisonError::into_inner);
        recorder::round(
            &self.store,
            &mut detector,
            &events,
            &outcome.duplicate_positions,
        )?;
        Ok(receipt)
    }

    /// Ends an import: what detection still waits on is decided and written.
    pub fn finish(&self) -> Result<(), IntakeError> {
        let mut detector = self.detector.lock().unwrap_or_else(PoisonError::into_inner);
        recorder::settle(&self.store, &mut detector)?;
        Ok(())
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

    fn prepare_batch(batch: &ImportBatch, memory: &LineMemory) -> Result<Prepared, IntakeError> {
        prepare(Input::Batch(batch.clone()), memory, crate::now_micros())
    }

    #[test]
    fn batches_prepare_like_live_ingest() {
        let miner = LineMemory::default();
        let line = "Dec 31 23:59:59 srv01 sshd[1]: Failed password for root from 192.0.2.1 port 22 ssh2\n\
                    Jan  1 00:00:01 srv01 sshd[1]: Failed password for root from 192.0.2.1 port 22 ssh2\n";
        let prepared = prepare_batch(&batch(line, ImportFormat::Syslog, 2025), &miner).unwrap();
        assert_eq!(prepared.receipt.counts().lines, 2);
        assert_eq!(prepared.templates.len(), 1);
        let ndjson = r#"{"timestamp":"2026-01-01T00:00:00Z","source_ip":"192.0.2.1","event_type":"LOGIN","username":"a","success":true}
{"timestamp":"bad","source_ip":"192.0.2.1","event_type":"LOGIN","username":"a","success":true}
"#;
        let prepared = prepare_batch(&batch(ndjson, ImportFormat::Ndjson, 2025), &miner).unwrap();
        assert_eq!(
            (prepared.encoded.len(), prepared.receipt.counts().rejected),
            (1, 1)
        );
        let mut bad = batch(line, ImportFormat::Syslog, 2025);
        bad.utc_offset_secs = 100_000;
        assert!(matches!(
            prepare_batch(&bad, &miner),
            Err(IntakeError::Offset(OffsetError(100_000)))
        ));
    }

    #[test]
    fn a_single_invalid_event_is_refused_whole_and_a_batch_keeps_the_rest() {
        let miner = LineMemory::default();
        let json = |text: &'static str| Input::Json {
            body: Bytes::from_static(text.as_bytes()),
            format: Format::Json,
        };
        let refused = prepare(json(r#"{"timestamp":"bad"}"#), &miner, crate::now_micros());
        assert!(matches!(refused, Err(IntakeError::InvalidEvent(_))));
        let good = r#"{"timestamp":"2026-01-01T00:00:00Z","source_ip":"192.0.2.1","event_type":"LOGIN","username":"a","success":true}"#;
        let single = prepare(json(good), &miner, crate::now_micros()).unwrap();
        assert!(single.single);
        assert_eq!((single.encoded.len(), single.receipt.lines), (1, 1));
        let array = format!(r#"[{good},{{"timestamp":"bad"}}]"#);
        let mixed = prepare(
            Input::Json {
                body: Bytes::from(array),
                format: Format::Json,
            },
            &miner,
            crate::now_micros(),
        )
        .unwrap();
        assert!(!mixed.single);
        assert_eq!(mixed.encoded.len(), 1);
        assert_eq!(mixed.receipt.rejected[0].index, 1);
    }

    #[test]
    fn lines_of_several_senders_keep_their_own_hosts() {
        let miner = LineMemory::default();
        let options = |host: &str| LogOptions {
            host: Some(host.into()),
            source: Some("syslog".into()),
            clock: crate::ingest::parse::LineClock::new(2026, time::UtcOffset::UTC),
        };
        let line = Bytes::from_static(b"Failed password for root from 192.0.2.1 port 22 ssh2\n");
        let prepared = prepare(
            Input::Lines(vec![
                (line.clone(), options("10.0.0.1")),
                (line, options("10.0.0.2")),
            ]),
            &miner,
            7,
        )
        .unwrap();
        let hosts: Vec<_> = prepared
            .events
            .iter()
            .map(|e| e.host.as_deref().unwrap_or(""))
            .collect();
        assert_eq!(hosts, ["10.0.0.1", "10.0.0.2"]);
        assert_ne!(prepared.events[0].event_id, prepared.events[1].event_id);
        assert_eq!(prepared.encoded.len(), 2);
        // Both lines went to one template, which travels with the events.
        let template = prepared.events[0].template_id;
        assert_eq!(prepared.events[1].template_id, template);
        assert!(prepared.templates.iter().all(|t| Some(t.id) == template));
    }
}
