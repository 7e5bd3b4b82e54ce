//! The detection thread: owns the [`Detector`], takes the committed events of every request,
//! runs them through it, and records all the findings of what it took as alerts in one
//! transaction before answering each request.
//!
//! One thread because the detector's state is one: requests never block an async worker on it,
//! and under load one alert commit serves many requests (redb has one writer at a time, so
//! separate commits would queue behind each other).

use std::sync::Arc;
use std::thread::JoinHandle;

use tokio::sync::{mpsc, oneshot};

use crate::detect::engine::{Detector, Finding};
use crate::detect::rules::Rule;
use crate::event::Event;
use crate::storage::{AlertUpdate, StorageError, Store, merge_evidence};

/// Requests that may wait for the thread before senders are held back.
const QUEUE_DEPTH: usize = 1024;

struct Job {
    events: Vec<Event>,
    /// Positions of `events` the store found already stored: not detected on again.
    duplicates: Vec<u32>,
    reply: oneshot::Sender<Result<(), Arc<StorageError>>>,
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

    /// Detects on `events`, just committed; returns once their alerts are durable.
    pub async fn detect(
        &self,
        events: Vec<Event>,
        duplicates: Vec<u32>,
    ) -> Result<(), Arc<StorageError>> {
        if events.len() == duplicates.len() {
            return Ok(());
        }
        let (reply, answer) = oneshot::channel();
        let job = Job {
            events,
            duplicates,
            reply,
        };
        if self.tx.send(job).await.is_err() {
            return Ok(());
        }
        answer.await.unwrap_or(Ok(()))
    }
}

fn run(store: &Store, mut detector: Detector, mut rx: mpsc::Receiver<Job>) {
    while let Some(first) = rx.blocking_recv() {
        let mut jobs = vec![first];
        while let Ok(job) = rx.try_recv() {
            jobs.push(job);
        }
        let mut findings = Vec::new();
        for job in &jobs {
            findings.extend(observe(&mut detector, &job.events, &job.duplicates));
        }
        let result = if findings.is_empty() {
            Ok(())
        } else {
            store
                .record_findings(&alert_updates(findings), crate::now_micros())
                .map(|_| ())
                .map_err(Arc::new)
        };
        for job in jobs {
            let _ = job.reply.send(result.clone());
        }
    }
}

/// Most events replayed into detection on start (the newest), which bounds start-up time.
const REPLAY_LIMIT: usize = 50_000;

/// A detector for `rules` with the state of ongoing attacks: the recent events (the longest
/// rule window plus the lateness allowed, before the newest event) replayed through it
/// without reporting, their findings being alerts already.
pub fn restore(store: &Store, rules: Vec<Rule>) -> Result<Detector, StorageError> {
    let mut detector = Detector::new(rules);
    if let Some(newest) = store.newest_event_time()? {
        let from = newest.saturating_sub(detector.memory_micros());
        let events = store.recent_events(from, REPLAY_LIMIT)?;
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

/// Feeds `events` to the detector, skipping the duplicate positions (ascending).
pub fn observe(detector: &mut Detector, events: &[Event], duplicates: &[u32]) -> Vec<Finding> {
    let mut skip = duplicates.iter().peekable();
    let mut findings = Vec::new();
    for (position, event) in events.iter().enumerate() {
        if skip.peek() == Some(&&(position as u32)) {
            skip.next();
            continue;
        }
        findings.extend(detector.observe(event));
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
    }
}
