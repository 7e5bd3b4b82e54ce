//! `securify import`: reads a log file in batches and stores them through the running server's
//! admin socket, or directly on a stopped data directory, with a progress bar on a terminal.
//!
//! The command follows the file's year-less timestamps across New Year itself and gives every
//! batch the year it starts in, so batches are prepared the same wherever they are prepared.

use std::io::{BufRead, BufReader, Read};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::Context;
use indicatif::{ProgressBar, ProgressStyle};

use crate::admin::{self, AdminRequest, AdminResponse};
use crate::config::Settings;
use crate::ingest::import::{self, ImportBatch, ImportCounts, ImportFormat};
use crate::ingest::logs;
use crate::ingest::parse::miner::Miner;
use crate::ingest::parse::{LineClock, LineTime, syslog};
use crate::storage::Store;

/// Bytes of lines per batch (a batch is one admin-socket request or one transaction).
const BATCH_BYTES: usize = 1 << 20;
/// Lines per batch at most.
const BATCH_LINES: usize = 10_000;

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

/// Where batches go.
enum Target {
    /// The running server, through its admin socket.
    Server(PathBuf),
    /// The database itself; the server is not running.
    Direct { store: Store, miner: Miner },
}

impl Target {
    fn send(&mut self, batch: ImportBatch, settings: &Settings) -> anyhow::Result<ImportCounts> {
        if let Self::Server(socket) = self {
            let request = AdminRequest::Import(batch);
            let reply = admin::call_socket(socket, &request)
                .with_context(|| format!("cannot talk to the server at {}", socket.display()))?;
            match reply {
                Some(AdminResponse::Imported { counts }) => return Ok(counts),
                Some(AdminResponse::Error { message, .. }) => anyhow::bail!(message),
                Some(_) => anyhow::bail!("unexpected reply from the server"),
                // The server stopped: carry on with the database itself.
                None => {
                    *self = Self::direct(settings)?;
                    let AdminRequest::Import(batch) = request else {
                        unreachable!("the request was built above")
                    };
                    return self.send(batch, settings);
                }
            }
        }
        let Self::Direct { store, miner } = self else {
            unreachable!("the server case returned above")
        };
        let prepared = import::prepare(&batch, miner, crate::now_micros())?;
        let mut counts = prepared.counts;
        let outcome = store
            .append(&[prepared.events], &prepared.templates)?
            .pop()
            .unwrap_or_default();
        counts.accepted = outcome.accepted;
        counts.duplicates = outcome.duplicates;
        Ok(counts)
    }

    fn direct(settings: &Settings) -> anyhow::Result<Self> {
        let path = settings.database_path();
        if !path.exists() {
            anyhow::bail!(
                "no database at {} (run `securify serve` once, or pass --data-dir)",
                path.display()
            );
        }
        let store = Store::open(&path, settings.cache_bytes)?;
        let templates = store.templates()?;
        let miner = Miner::with_templates(templates.into_iter().map(logs::template).collect());
        Ok(Self::Direct { store, miner })
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
    let mut target = if admin::call_socket(&settings.admin_socket_path(), &AdminRequest::TokenList)
        .ok()
        .flatten()
        .is_some()
    {
        Target::Server(settings.admin_socket_path())
    } else {
        Target::direct(settings)?
    };
    let mut clock = match options.year {
        Some(year) => LineClock::new(year, options.utc_offset),
        None => LineClock::new(time::OffsetDateTime::now_utc().year(), options.utc_offset)
            .not_after(crate::now_micros() + 86_400_000_000),
    };
    let started = Instant::now();
    let mut totals = ImportCounts::default();
    let mut format = options.format;
    let mut lines = BufReader::new(reader);
    let mut text = String::new();
    let mut line = Vec::new();
    loop {
        text.clear();
        let mut count = 0;
        let mut year = None;
        while text.len() < BATCH_BYTES && count < BATCH_LINES {
            line.clear();
            let read = lines
                .read_until(b'\n', &mut line)
                .context("cannot read the input")?;
            if read == 0 {
                break;
            }
            progress.inc(read as u64);
            let decoded = String::from_utf8_lossy(&line);
            if decoded.trim().is_empty() {
                continue;
            }
            let format = *format.get_or_insert_with(|| ImportFormat::detect(&decoded));
            let time = (format == ImportFormat::Syslog)
                .then(|| syslog::split(&decoded).time)
                .flatten();
            if let Some(time @ LineTime::WithoutYear { .. }) = time {
                let _ = clock.resolve(time);
                year.get_or_insert(clock.year());
            }
            text.push_str(decoded.trim_end_matches(['\n', '\r']));
            text.push('\n');
            count += 1;
        }
        if count == 0 {
            break;
        }
        let batch = ImportBatch {
            text: std::mem::take(&mut text),
            format: format.unwrap_or(ImportFormat::Syslog),
            host: options.host.clone(),
            source: source.clone(),
            year: year.unwrap_or_else(|| clock.year()),
            utc_offset_secs: options.utc_offset.whole_seconds(),
        };
        totals += target.send(batch, settings)?;
        progress.set_message(format!("{} lines", totals.lines));
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
