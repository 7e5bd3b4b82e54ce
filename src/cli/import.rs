//! `securify import`: reads a log file in batches and stores them through the running server's
//! admin socket, or directly on a stopped data directory, with a progress bar on a terminal.
//!
//! The command follows the file's year-less timestamps across New Year itself and gives every
//! batch the year it starts in, so batches are prepared the same wherever they are prepared.

use std::io::{BufRead, BufReader, Read};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::{Mutex, PoisonError};
use std::time::Instant;

use anyhow::Context;
use indicatif::{ProgressBar, ProgressStyle};

use crate::admin::{self, AdminRequest, AdminResponse};
use crate::config::Settings;
use crate::ingest::batch::{ImportBatch, ImportCounts, ImportFormat};
use crate::ingest::parse::{LineClock, LineTime, syslog};
use crate::intake::{DirectIntake, Input};

/// Bytes of lines per batch (a batch is one admin-socket request or one transaction).
const BATCH_BYTES: usize = 1 << 19;
/// Lines per batch at most.
const BATCH_LINES: usize = 5_000;

/// What `securify import` was asked to do.
#[derive(Debug, Clone)]
pub struct ImportOptions {
    pub input: PathBuf,
    /// `None`: detect from the first line.
    pub format: Option<ImportFormat>,
    pub host: Option<String>,
    pub source: Option<String>,
    pub year: Option<i32>,
    pub utc_offset: time::UtcOffset,
}

/// Batches in flight at once, so that preparing, committing and detecting overlap (three
/// half-MiB batches measured faster, and smaller in memory, than two of a MiB).
const WORKERS: usize = 3;

/// Where batches go. Shared by the worker threads.
enum Target {
    /// The running server, through its admin socket.
    Server(PathBuf),
    /// The database itself; the server is not running.
    Direct(Box<DirectIntake>),
}

impl Target {
    fn send(&self, batch: ImportBatch) -> anyhow::Result<ImportCounts> {
        match self {
            Self::Server(socket) => {
                let request = AdminRequest::Import(batch);
                let reply = admin::call_socket(socket, &request).with_context(|| {
                    format!("cannot talk to the server at {}", socket.display())
                })?;
                match reply {
                    Some(AdminResponse::Imported { counts }) => Ok(counts),
                    Some(AdminResponse::Error { message, .. }) => anyhow::bail!(message),
                    Some(_) => anyhow::bail!("unexpected reply from the server"),
                    None => anyhow::bail!(
                        "the server stopped during the import; run the command again (lines \
                         already stored are recognised and skipped)"
                    ),
                }
            }
            Self::Direct(intake) => Ok(intake.take(Input::Batch(batch))?.counts()),
        }
    }

    fn direct(settings: &Settings) -> anyhow::Result<Self> {
        let store = super::open_existing_store(settings)?;
        // The same state a starting server has: an attack under way counts across imports.
        let geo = crate::app::load_geo(settings)?;
        let intake = DirectIntake::open(store, settings.rules.clone(), geo)?;
        Ok(Self::Direct(Box::new(intake)))
    }
}

/// Reads whole lines into batches, following year-less timestamps across New Year.
struct Batcher<R> {
    lines: BufReader<R>,
    format: Option<ImportFormat>,
    clock: LineClock,
    progress: ProgressBar,
    line: Vec<u8>,
}

impl<R: Read> Batcher<R> {
    /// The next batch's text, format and starting year; `None` at the end of the input.
    fn next_batch(&mut self) -> anyhow::Result<Option<(String, ImportFormat, i32)>> {
        let mut text = String::new();
        let mut count = 0;
        let mut year = None;
        while text.len() < BATCH_BYTES && count < BATCH_LINES {
            self.line.clear();
            let read = self
                .lines
                .read_until(b'\n', &mut self.line)
                .context("cannot read the input")?;
            if read == 0 {
                break;
            }
            self.progress.inc(read as u64);
            let decoded = String::from_utf8_lossy(&self.line);
            if decoded.trim().is_empty() {
                continue;
            }
            let format = *self
                .format
                .get_or_insert_with(|| ImportFormat::detect(&decoded));
            let time = (format == ImportFormat::Syslog)
                .then(|| syslog::split(&decoded).time)
                .flatten();
            if let Some(time @ LineTime::WithoutYear { .. }) = time {
                let _ = self.clock.resolve(time);
                year.get_or_insert(self.clock.year());
            }
            text.push_str(decoded.trim_end_matches(['\n', '\r']));
            text.push('\n');
            count += 1;
        }
        if count == 0 {
            return Ok(None);
        }
        let format = self.format.unwrap_or(ImportFormat::Syslog);
        Ok(Some((
            text,
            format,
            year.unwrap_or_else(|| self.clock.year()),
        )))
    }
}

/// Runs the import; prints a summary on standard error.
pub fn run(settings: &Settings, options: ImportOptions) -> anyhow::Result<ExitCode> {
    let (reader, total): (Box<dyn Read>, Option<u64>) = if options.input.as_os_str() == "-" {
        (Box::new(std::io::stdin().lock()), None)
    } else {
        let file = std::fs::File::open(&options.input)
            .with_context(|| format!("cannot open {}", options.input.display()))?;
        let total = file.metadata().map(|m| m.len()).ok();
        (Box::new(file), total)
    };
    let source = options.source.clone().or_else(|| {
        options
            .input
            .file_name()
            .filter(|_| options.input.as_os_str() != "-")
            .map(|name| name.to_string_lossy().into_owned())
    });
    let progress = progress_bar(total);
    let target = if admin::call_socket(&settings.admin_socket_path(), &AdminRequest::TokenList)
        .ok()
        .flatten()
        .is_some()
    {
        Target::Server(settings.admin_socket_path())
    } else {
        Target::direct(settings)?
    };
    let clock = LineClock::for_year(options.year, options.utc_offset);
    let mut batcher = Batcher {
        lines: BufReader::new(reader),
        format: options.format,
        clock,
        progress: progress.clone(),
        line: Vec::new(),
    };
    let started = Instant::now();
    let totals = match store_batches(&target, &mut batcher, &options, source.as_ref(), &progress) {
        Ok(totals) => totals,
        Err(e) => {
            progress.abandon();
            return Err(e);
        }
    };
    if let Target::Direct(intake) = &target {
        intake.finish()?;
    }
    progress.finish_and_clear();
    let seconds = started.elapsed().as_secs_f64();
    eprintln!(
        "imported {}: {} lines, {} stored, {} already stored, {} not understood (kept), {} refused; {:.1} s, {:.0} lines/s",
        options.input.display(),
        totals.lines,
        totals.accepted,
        totals.duplicates,
        totals.unparsed,
        totals.rejected,
        seconds,
        totals.lines as f64 / seconds.max(1e-9),
    );
    Ok(ExitCode::SUCCESS)
}

/// Reads batches on this thread and stores them on [`WORKERS`] threads; the first error stops
/// both.
fn store_batches<R: Read>(
    target: &Target,
    batcher: &mut Batcher<R>,
    options: &ImportOptions,
    source: Option<&String>,
    progress: &ProgressBar,
) -> anyhow::Result<ImportCounts> {
    let totals = Mutex::new(ImportCounts::default());
    let failure: Mutex<Option<anyhow::Error>> = Mutex::new(None);
    let (tx, rx) = std::sync::mpsc::sync_channel::<ImportBatch>(WORKERS);
    let rx = Mutex::new(rx);
    std::thread::scope(|scope| {
        for _ in 0..WORKERS {
            scope.spawn(|| {
                loop {
                    let next = rx.lock().unwrap_or_else(PoisonError::into_inner).recv();
                    let Ok(batch) = next else { return };
                    match target.send(batch) {
                        Ok(counts) => {
                            let mut totals = totals.lock().unwrap_or_else(PoisonError::into_inner);
                            *totals += counts;
                            progress.set_message(format!("{} lines", totals.lines));
                        }
                        Err(e) => {
                            failure
                                .lock()
                                .unwrap_or_else(PoisonError::into_inner)
                                .get_or_insert(e);
                            return;
                        }
                    }
                }
            });
        }
        loop {
            let failed = failure
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .is_some();
            let batch = if failed {
                Ok(None)
            } else {
                batcher.next_batch()
            };
            match batch {
                Ok(Some((text, format, year))) => {
                    let batch = ImportBatch {
                        text,
                        format,
                        host: options.host.clone(),
                        source: source.cloned(),
                        year,
                        utc_offset_secs: options.utc_offset.whole_seconds(),
                    };
                    if tx.send(batch).is_err() {
                        break;
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    failure
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .get_or_insert(e);
                    break;
                }
            }
        }
        drop(tx);
    });
    if let Some(e) = failure.into_inner().unwrap_or_else(PoisonError::into_inner) {
        return Err(e);
    }
    Ok(totals.into_inner().unwrap_or_else(PoisonError::into_inner))
}

fn progress_bar(total: Option<u64>) -> ProgressBar {
    let bar = match total {
        Some(total) => ProgressBar::new(total),
        None => ProgressBar::new_spinner(),
    };
    let template = if total.is_some() {
        "{bar:40} {bytes}/{total_bytes} {bytes_per_sec} eta {eta} {msg}"
    } else {
        "{spinner} {bytes} {bytes_per_sec} {msg}"
    };
    if let Ok(style) = ProgressStyle::with_template(template) {
        bar.set_style(style);
    }
    bar
}
