//! The detection thread: owns the [`Detector`], takes the committed events of every request,
//! runs them through it, and records all the findings of what it took as alerts in one
//! transaction. A finding that opens an alert is durable before the request is answered;
//! updates of alerts already open (and account histories) are written within a second.
//!
//! One thread because the detector's state is one: requests never block an async worker on it,
//! and under load one alert commit serves many requests (redb has one writer at a time, so
//! separate commits would queue behind each other).

use std::sync::Arc;
use std::thread::JoinHandle;

use tokio::sync::{mpsc, oneshot};

use crate::detect::engine::{Detector, Finding, Risk};
use crate::detect::rules::Rule;
use crate::event::Event;
use crate::geo::Geo;
use crate::storage::{AlertUpdate, StorageError, Store, merge_evidence};

/// Requests that may wait for the thread before senders are held back.
const QUEUE_DEPTH: usize = 1024;

struct Job {
    events: Vec<Event>,
    /// Positions of `events` the store found already stored: not detected on again.
    duplicates: Vec<u32>,
    /// Whether the sender wants the risk of each event.
    risk: bool,
    reply: oneshot::Sender<Result<Vec<Risk>, Arc<StorageError>>>,
}

/// The sending side; cheap to clone. The thread stops once every clone is dropped.
#[derive(Clone)]
pub struct Detection {
    tx: mpsc::Sender<Job>,
}

impl std::fmt::Debug for Detection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Detection").finish_non_exhaustive()
    }
}

impl Detection {
    /// Starts the thread with `detector` (its state rebuilt from recent events).
    pub fn start(store: Arc<Store>, detector: Detector) -> std::io::Result<(Self, JoinHandle<()>)> {
        let (tx, rx) = mpsc::channel(QUEUE_DEPTH);
        let handle = std::thread::Builder::new()
            .name("detection".into())
            .spawn(move || run(&store, detector, rx))?;
        Ok((Self { tx }, handle))
    }

    /// Detects on `events`, just committed; returns once their alerts are durable, with the
    /// risk of each event when `risk` is asked for (empty otherwise).
    pub async fn detect(
        &self,
        events: Vec<Event>,
        duplicates: Vec<u32>,
        risk: bool,
    ) -> Result<Vec<Risk>, Arc<StorageError>> {
        if events.len() == duplicates.len() && !risk {
            return Ok(Vec::new());
        }
        let (reply, answer) = oneshot::channel();
        let job = Job {
            events,
            duplicates,
            risk,
            reply,
        };
        if self.tx.send(job).await.is_err() {
            return Ok(Vec::new());
        }
        answer.await.unwrap_or(Ok(Vec::new()))
    }
}

fn run(store: &Store, mut detector: Detector, mut rx: mpsc::Receiver<Job>) {
    let mut recorder = Recorder::new(store);
    while let Some(first) = rx.blocking_recv() {
        let mut jobs = vec![first];
        while let Ok(job) = rx.try_recv() {
            jobs.push(job);
        }
        let batches: Vec<Batch<'_>> = jobs
            .iter()
            .map(|job| Batch {
                events: &job.events,
                duplicates: &job.duplicates,
                risk: job.risk,
            })
            .collect();
        let result = observe_all(store, &mut detector, &batches)
            .and_then(|(findings, risks)| {
                recorder.record(store, &mut detector, findings)?;
                Ok(risks)
            })
            .map_err(Arc::new);
        drop(batches);
        match result {
            Ok(risks) => {
                for (job, risk) in jobs.into_iter().zip(risks) {
                    let _ = job.reply.send(Ok(risk));
                }
            }
            Err(e) => {
                for job in jobs {
                    let _ = job.reply.send(Err(Arc::clone(&e)));
                }
            }
        }
    }
    // Stopping: what is pending, and the histories changed since they were last kept.
    if let Err(e) = recorder.flush(store, &mut detector) {
        tracing::error!(error = ?e, "could not record the last alerts");
    }
}

/// Updates of alerts already open (a count, a last-seen time), and account histories, are
/// written at least this often, and at once when a finding opens an alert. They are derived
/// state (replayed from the events after a crash), so an attack in full swing costs one
/// commit per interval rather than one per request.
const RECORD_EVERY: std::time::Duration = std::time::Duration::from_secs(1);
/// Account histories changed in memory are written at least this often (and with alerts).
const KEEP_PROFILES_EVERY: std::time::Duration = std::time::Duration::from_secs(5);

/// Committed events for one round of detection.
#[derive(Debug, Clone, Copy)]
pub struct Batch<'a> {
    pub events: &'a [Event],
    /// Positions of `events` stored before (ascending): not observed again.
    pub duplicates: &'a [u32],
    /// Whether to assess the risk of each event.
    pub risk: bool,
}

/// What the detection thread has found and not yet written.
struct Recorder {
    pending: Vec<Finding>,
    /// (rule, entity) of the alerts known to be open: their findings may wait.
    open: std::collections::HashSet<(String, String)>,
    recorded_at: std::time::Instant,
    kept_at: std::time::Instant,
}

impl Recorder {
    fn new(store: &Store) -> Self {
        let open = store
            .open_alert_keys()
            .inspect_err(|e| tracing::warn!(error = ?e, "cannot list the open alerts"))
            .unwrap_or_default()
            .into_iter()
            .collect();
        let now = std::time::Instant::now();
        Self {
            pending: Vec::new(),
            open,
            recorded_at: now,
            kept_at: now,
        }
    }

    /// Takes a round's findings: written at once if one opens an alert, else with the next
    /// write (within [`RECORD_EVERY`]).
    fn record(
        &mut self,
        store: &Store,
        detector: &mut Detector,
        findings: Vec<Finding>,
    ) -> Result<(), StorageError> {
        let opens = findings
            .iter()
            .any(|f| !self.open.contains(&(f.rule.clone(), f.entity.clone())));
        self.pending.extend(findings);
        let due = self.recorded_at.elapsed() >= RECORD_EVERY && !self.pending.is_empty();
        if opens || due || self.kept_at.elapsed() >= KEEP_PROFILES_EVERY {
            self.flush(store, detector)?;
        }
        Ok(())
    }

    fn flush(&mut self, store: &Store, detector: &mut Detector) -> Result<(), StorageError> {
        let findings = std::mem::take(&mut self.pending);
        for f in &findings {
            self.open.insert((f.rule.clone(), f.entity.clone()));
        }
        record(store, detector, findings)?;
        let now = std::time::Instant::now();
        self.recorded_at = now;
        self.kept_at = now;
        Ok(())
    }
}

/// Account histories held in memory at most; the others wait in the store.
const PROFILES_HELD: usize = 100_000;

/// One round of detection on committed events (each batch with its duplicate positions):
/// the histories of the accounts that logged in are loaded, the events observed, and the
/// findings and the changed histories recorded in one transaction.
pub fn round(
    store: &Store,
    detector: &mut Detector,
    batches: &[Batch<'_>],
) -> Result<Vec<Vec<Risk>>, StorageError> {
    let (findings, risks) = observe_all(store, detector, batches)?;
    record(store, detector, findings)?;
    Ok(risks)
}

/// Observes every batch (the histories of the accounts that log in loaded first); returns the
/// findings and, per batch, the risks it asked for.
fn observe_all(
    store: &Store,
    detector: &mut Detector,
    batches: &[Batch<'_>],
) -> Result<(Vec<Finding>, Vec<Vec<Risk>>), StorageError> {
    load_profiles(store, detector, batches.iter().flat_map(|b| b.events))?;
    let mut findings = Vec::new();
    let mut risks = Vec::with_capacity(batches.len());
    for batch in batches {
        let mut risk = Vec::new();
        findings.extend(observe(detector, batch, &mut risk));
        risks.push(risk);
    }
    Ok((findings, risks))
}

/// Writes findings as alerts, with the changed account histories, in one transaction.
fn record(
    store: &Store,
    detector: &mut Detector,
    findings: Vec<Finding>,
) -> Result<(), StorageError> {
    let profiles = detector.profiles_mut().take_changed();
    store.record_detection(&alert_updates(findings), &profiles, crate::now_micros())?;
    detector.profiles_mut().shrink_to(PROFILES_HELD);
    Ok(())
}

/// Loads the kept histories of the accounts that log in successfully in `events` and are
/// not in memory.
fn load_profiles<'a>(
    store: &Store,
    detector: &mut Detector,
    events: impl Iterator<Item = &'a Event>,
) -> Result<(), StorageError> {
    let profiles = detector.profiles_mut();
    let mut missing: Vec<&str> = events
        .filter(|e| e.success == Some(true))
        .filter_map(|e| e.username.as_deref())
        .filter(|user| !profiles.contains(user))
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    missing.sort_unstable();
    missing.dedup();
    for (user, profile) in store.user_profiles(&missing)? {
        profiles.load(user, profile);
    }
    Ok(())
}

/// Most events replayed into detection on start (the newest), which bounds start-up time.
const REPLAY_LIMIT: usize = 50_000;

/// A detector for `rules` with the state of ongoing attacks: the recent events (the longest
/// rule window plus the lateness allowed, before the newest event) replayed through it
/// without reporting, their findings being alerts already.
pub fn restore(
    store: &Store,
    rules: Vec<Rule>,
    geo: Option<Arc<Geo>>,
) -> Result<Detector, StorageError> {
    let mut detector = Detector::with_geo(rules, geo);
    if let Some(newest) = store.newest_event_time()? {
        let from = newest.saturating_sub(detector.memory_micros());
        let events = store.recent_events(from, REPLAY_LIMIT)?;
        load_profiles(store, &mut detector, events.iter())?;
        for event in &events {
            detector.absorb(event);
        }
        tracing::info!(
            events = events.len(),
            "detection state rebuilt from recent events"
        );
    }
    Ok(detector)
}

/// Feeds a batch to the detector, skipping its duplicate positions; adds the risk of each
/// event to `risks` if the batch asks for it.
fn observe(detector: &mut Detector, batch: &Batch<'_>, risks: &mut Vec<Risk>) -> Vec<Finding> {
    let mut skip = batch.duplicates.iter().peekable();
    let mut findings = Vec::new();
    for (position, event) in batch.events.iter().enumerate() {
        let found = if skip.peek() == Some(&&(position as u32)) {
            skip.next();
            Vec::new()
        } else {
            detector.observe(event)
        };
        if batch.risk {
            risks.push(detector.risk(event, &found));
        }
        findings.extend(found);
    }
    findings
}

/// The alert updates of `findings`: one per rule and entity, merging the findings of a round
/// (an attack in full swing completes a finding with every event).
#[must_use]
pub fn alert_updates(findings: Vec<Finding>) -> Vec<AlertUpdate> {
    let mut merged: Vec<AlertUpdate> = Vec::new();
    let mut index: std::collections::HashMap<(String, String), usize> =
        std::collections::HashMap::new();
    for finding in findings {
        let key = (finding.rule.clone(), finding.entity.clone());
        if let Some(&i) = index.get(&key) {
            let update = &mut merged[i];
            update.first_seen = update.first_seen.min(finding.first_seen);
            update.last_seen = update.last_seen.max(finding.last_seen);
            update.count = update.count.max(finding.count as u64);
            update.matches += 1;
            merge_evidence(&mut update.evidence, &finding.evidence);
            update.members.extend(finding.members);
        } else {
            index.insert(key, merged.len());
            merged.push(alert_update(finding));
        }
    }
    merged
}

/// The alert a finding updates or opens.
fn alert_update(finding: Finding) -> AlertUpdate {
    AlertUpdate {
        rule: finding.rule,
        title: finding.title,
        severity: finding.severity.as_str().to_string(),
        entity_type: finding.entity_type.to_string(),
        entity: finding.entity,
        first_seen: finding.first_seen,
        last_seen: finding.last_seen,
        count: finding.count as u64,
        matches: 1,
        attack: finding.attack,
        evidence: finding.evidence,
        members: finding.members,
    }
}
