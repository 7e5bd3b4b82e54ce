//! Detection of committed events: the [`Detector`] behind a lock, run by the request that
//! committed the events (no thread hop for a single login, whose reply carries its risk), and
//! the recorder thread that writes what it finds.
//!
//! A finding that opens an alert is written before the request is answered; updates of alerts
//! already open (a count, a last-seen time) and changed account histories are written within
//! a second, all in one transaction: they are derived state, replayed from the events after a
//! crash, and an attack in full swing would otherwise cost a commit per request.

use std::collections::HashSet;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tokio::sync::oneshot;

use crate::detect::engine::{Detector, Risk};
use crate::detect::finding::Finding;
use crate::detect::profile::UserProfile;
use crate::detect::rules::Rule;
use crate::event::Event;
use crate::geo::Geo;
use crate::storage::{AlertUpdate, StorageError, Store, merge_evidence};

/// Updates of open alerts wait at most this long.
const RECORD_EVERY: Duration = Duration::from_secs(1);
/// Time without new events after which the stream counts as quiet (see
/// [`Detector::settle`]).
const QUIET: Duration = Duration::from_secs(3);
/// Changed account histories wait at most this long.
const KEEP_PROFILES_EVERY: Duration = Duration::from_secs(5);
/// Batches larger than this are observed by the batch thread (whose caches stay warm with the
/// detector's state), smaller ones in the request itself (no thread hop for a single login).
const INLINE_EVENTS: usize = 64;
/// Large batches that may wait for the batch thread.
const BATCH_QUEUE: usize = 64;

/// A large batch for the batch thread, and where its answer goes.
struct BatchJob {
    events: Vec<Event>,
    duplicates: Vec<u32>,
    risk: bool,
    reply: oneshot::Sender<Result<(Vec<Risk>, bool), StorageError>>,
}

type Reply = oneshot::Sender<Result<(), Arc<StorageError>>>;

/// What the requests share: the detector, and what it found that is not yet written.
struct Shared {
    state: Mutex<State>,
    store: Arc<Store>,
}

struct State {
    detector: Detector,
    /// (rule, entity) of the alerts known to be open: their findings may wait.
    open: HashSet<(String, String)>,
    pending: Vec<Finding>,
    /// When events were last observed: after [`QUIET`] without any, waits are settled.
    observed_at: Instant,
}

/// A handle on detection; cheap to clone. The recorder thread writes what is pending and
/// stops once every clone is dropped.
#[derive(Clone)]
pub struct Recorder {
    shared: Arc<Shared>,
    /// Wakes the recorder for a finding that opens an alert, with whom to tell once written.
    wake: mpsc::Sender<Reply>,
    batches: mpsc::SyncSender<BatchJob>,
}

impl std::fmt::Debug for Recorder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Recorder").finish_non_exhaustive()
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Recorder {
    /// Starts the recorder thread; `detector` has its state rebuilt from recent events.
    pub fn start(store: Arc<Store>, detector: Detector) -> std::io::Result<(Self, JoinHandle<()>)> {
        let open = store
            .open_alert_keys()
            .inspect_err(|e| tracing::warn!(error = ?e, "cannot list the open alerts"))
            .unwrap_or_default()
            .into_iter()
            .collect();
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                detector,
                open,
                pending: Vec::new(),
                observed_at: Instant::now(),
            }),
            store,
        });
        let (batches, queued) = mpsc::sync_channel::<BatchJob>(BATCH_QUEUE);
        let observer = Arc::clone(&shared);
        let batch_thread =
            std::thread::Builder::new()
                .name("detection".into())
                .spawn(move || {
                    for job in queued {
                        let _ = job.reply.send(observer.observe(
                            &job.events,
                            &job.duplicates,
                            job.risk,
                        ));
                    }
                })?;
        let (wake, woken) = mpsc::channel();
        let recorder = Arc::clone(&shared);
        let handle = std::thread::Builder::new()
            .name("alert-recorder".into())
            .spawn(move || record_loop(&recorder, &woken, batch_thread))?;
        Ok((
            Self {
                shared,
                wake,
                batches,
            },
            handle,
        ))
    }

    /// Detects on `events`, just committed; returns once the alerts they open are durable,
    /// with the risk of each event when `risk` is asked for (empty otherwise).
    pub async fn detect(
        &self,
        events: Vec<Event>,
        duplicates: Vec<u32>,
        risk: bool,
    ) -> Result<Vec<Risk>, Arc<StorageError>> {
        if events.len() == duplicates.len() && !risk {
            return Ok(Vec::new());
        }
        let observed = if events.len() > INLINE_EVENTS {
            let (reply, answer) = oneshot::channel();
            let job = BatchJob {
                events,
                duplicates,
                risk,
                reply,
            };
            // The queue is bounded: a sender waits (off the async workers) while it is full.
            let batches = self.batches.clone();
            let sent = tokio::task::spawn_blocking(move || batches.send(job).is_ok())
                .await
                .unwrap_or(false);
            if !sent {
                return Ok(Vec::new());
            }
            match answer.await {
                Ok(observed) => observed,
                Err(_) => return Ok(Vec::new()),
            }
        } else {
            self.shared.observe(&events, &duplicates, risk)
        };
        let (risks, opens) = observed.map_err(Arc::new)?;
        if opens {
            let (reply, written) = oneshot::channel();
            if self.wake.send(reply).is_ok() {
                written.await.unwrap_or(Ok(()))?;
            }
        }
        Ok(risks)
    }
}

impl Shared {
    /// Observes a batch under the lock; returns the risks asked for and whether a finding
    /// opens an alert (then it must be written before the caller is answered).
    fn observe(
        &self,
        events: &[Event],
        duplicates: &[u32],
        risk: bool,
    ) -> Result<(Vec<Risk>, bool), StorageError> {
        let mut state = self.lock();
        let batch = Batch {
            events,
            duplicates,
            risk,
        };
        let mut risks = Vec::new();
        state.observed_at = Instant::now();
        let findings = observe_batch(&self.store, &mut state.detector, &batch, &mut risks)?;
        let mut opens = false;
        for finding in &findings {
            let key = (finding.rule.clone(), finding.entity.clone());
            if !state.open.contains(&key) {
                opens = true;
                state.open.insert(key);
            }
        }
        state.pending.extend(findings);
        Ok((risks, opens))
    }
}

/// The recorder thread: writes what is pending when woken for a new alert, and at least every
/// [`RECORD_EVERY`]; writes everything left once every handle is gone.
fn record_loop(shared: &Shared, woken: &mpsc::Receiver<Reply>, batch_thread: JoinHandle<()>) {
    let mut kept_at = Instant::now();
    let mut batch_thread = Some(batch_thread);
    loop {
        let (mut waiting, last) = match woken.recv_timeout(RECORD_EVERY) {
            Ok(reply) => (vec![reply], false),
            Err(RecvTimeoutError::Timeout) => (Vec::new(), false),
            Err(RecvTimeoutError::Disconnected) => {
                // Every handle is gone; the batch thread finishes what it holds first.
                if let Some(thread) = batch_thread.take()
                    && thread.join().is_err()
                {
                    tracing::error!("the detection batch thread panicked");
                }
                (Vec::new(), true)
            }
        };
        waiting.extend(woken.try_iter());
        let keep = last || kept_at.elapsed() >= KEEP_PROFILES_EVERY;
        let (findings, profiles) = {
            let mut state = shared.lock();
            if state.observed_at.elapsed() >= QUIET {
                let settled = state.detector.settle(crate::now_micros());
                state.pending.extend(settled);
            }
            let findings = std::mem::take(&mut state.pending);
            let profiles = if keep || !findings.is_empty() {
                state.detector.profiles_mut().take_changed()
            } else {
                Vec::new()
            };
            (findings, profiles)
        };
        if keep {
            kept_at = Instant::now();
        }
        let result = write(&shared.store, findings, &profiles).map_err(Arc::new);
        if let Err(e) = &result {
            tracing::error!(error = ?e, "could not record alerts");
        }
        shared
            .lock()
            .detector
            .profiles_mut()
            .shrink_to(PROFILES_HELD);
        for reply in waiting {
            let _ = reply.send(result.clone());
        }
        if last {
            return;
        }
    }
}

/// Committed events for one round of detection.
#[derive(Debug, Clone, Copy)]
struct Batch<'a> {
    events: &'a [Event],
    /// Positions of `events` stored before (ascending): not observed again.
    duplicates: &'a [u32],
    /// Whether to assess the risk of each event.
    risk: bool,
}

/// Account histories held in memory at most; the others wait in the store.
const PROFILES_HELD: usize = 100_000;

/// Detection of committed events (`duplicates`: the positions stored before, ascending) done
/// in place, for a process without the server (`securify import` on a stopped data
/// directory): the events observed, then their findings and the changed account histories
/// written in one transaction.
pub fn round(
    store: &Store,
    detector: &mut Detector,
    events: &[Event],
    duplicates: &[u32],
) -> Result<(), StorageError> {
    let batch = Batch {
        events,
        duplicates,
        risk: false,
    };
    let findings = observe_batch(store, detector, &batch, &mut Vec::new())?;
    let profiles = detector.profiles_mut().take_changed();
    write(store, findings, &profiles)?;
    detector.profiles_mut().shrink_to(PROFILES_HELD);
    Ok(())
}

/// The end of an import in place: the waits it left are settled and their findings written.
pub fn settle(store: &Store, detector: &mut Detector) -> Result<(), StorageError> {
    let findings = detector.settle(crate::now_micros());
    if findings.is_empty() {
        return Ok(());
    }
    write(store, findings, &detector.profiles_mut().take_changed())
}

/// Observes a batch, the kept histories of the accounts that log in loaded first.
fn observe_batch(
    store: &Store,
    detector: &mut Detector,
    batch: &Batch<'_>,
    risks: &mut Vec<Risk>,
) -> Result<Vec<Finding>, StorageError> {
    load_profiles(store, detector, batch.events.iter())?;
    Ok(observe(detector, batch, risks))
}

/// Writes findings as alerts, with account histories, in one transaction.
fn write(
    store: &Store,
    findings: Vec<Finding>,
    profiles: &[(String, UserProfile)],
) -> Result<(), StorageError> {
    store
        .record_detection(&alert_updates(findings), profiles, crate::now_micros())
        .map(|_| ())
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
