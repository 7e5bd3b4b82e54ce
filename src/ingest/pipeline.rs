//! Group commit: many concurrent requests, one durable redb transaction.
//!
//! Each request hands its events to a single writer thread through a bounded channel and waits.
//! The writer takes everything queued (up to [`MAX_EVENTS_PER_COMMIT`]), writes it in one
//! transaction, commits with fsync, and only then answers each request with its own outcome.
//! So no request is acknowledged before its events are on disk, and under load one fsync
//! serves many requests. A full channel makes callers wait: that is the back-pressure.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread::JoinHandle;

use tokio::sync::{mpsc, oneshot};

use crate::storage::{AppendOutcome, EncodedEvent, StorageError, Store};

/// Most events written in one transaction; bounds commit latency and memory.
pub const MAX_EVENTS_PER_COMMIT: usize = 50_000;
/// Requests that may wait for the writer before senders are held back.
const QUEUE_DEPTH: usize = 4096;

#[derive(Debug, Clone, thiserror::Error)]
pub enum PipelineError {
    #[error("the event store is shutting down")]
    Closed,
    #[error("the event store failed: {0}")]
    Storage(Arc<StorageError>),
}

/// The outcome of a job, with its (emptied-out) buffer handed back so that the memory is freed
/// on the caller's thread rather than on the writer, the bottleneck under load.
type Reply = (Result<AppendOutcome, PipelineError>, Vec<EncodedEvent>);

struct Job {
    events: Vec<EncodedEvent>,
    reply: oneshot::Sender<Reply>,
}

/// Counters of the writer, for `/ready` and benchmarks.
#[derive(Debug, Default)]
pub struct PipelineStats {
    /// Transactions committed.
    pub commits: AtomicU64,
    /// Events written (duplicates excluded).
    pub events: AtomicU64,
}

/// The sending side; cheap to clone. The writer stops once every clone is dropped and the
/// queue is drained.
#[derive(Clone)]
pub struct Pipeline {
    tx: mpsc::Sender<Job>,
    pub stats: Arc<PipelineStats>,
}

impl std::fmt::Debug for Pipeline {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pipeline")
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

impl Pipeline {
    /// Starts the writer thread.
    pub fn start(store: Arc<Store>) -> std::io::Result<(Self, JoinHandle<()>)> {
        let (tx, rx) = mpsc::channel(QUEUE_DEPTH);
        let stats = Arc::new(PipelineStats::default());
        let writer_stats = Arc::clone(&stats);
        let handle = std::thread::Builder::new()
            .name("event-writer".into())
            .spawn(move || write_loop(&store, rx, &writer_stats))?;
        Ok((Self { tx, stats }, handle))
    }

    /// Stores `events`; returns once they are durable (or known duplicates).
    pub async fn submit(&self, events: Vec<EncodedEvent>) -> Result<AppendOutcome, PipelineError> {
        if events.is_empty() {
            return Ok(AppendOutcome::default());
        }
        let (reply, answer) = oneshot::channel();
        self.tx
            .send(Job { events, reply })
            .await
            .map_err(|_| PipelineError::Closed)?;
        let (outcome, consumed) = answer.await.map_err(|_| PipelineError::Closed)?;
        drop(consumed);
        outcome
    }
}

fn write_loop(store: &Store, mut rx: mpsc::Receiver<Job>, stats: &PipelineStats) {
    while let Some(first) = rx.blocking_recv() {
        let mut queued = first.events.len();
        let mut jobs = vec![first];
        while queued < MAX_EVENTS_PER_COMMIT {
            match rx.try_recv() {
                Ok(job) => {
                    queued += job.events.len();
                    jobs.push(job);
                }
                Err(_) => break,
            }
        }
        let batches: Vec<Vec<EncodedEvent>> = jobs
            .iter_mut()
            .map(|job| std::mem::take(&mut job.events))
            .collect();
        let outcomes: Vec<Result<AppendOutcome, PipelineError>> = match store
            .append_batches(&batches)
        {
            Ok(outcomes) => {
                stats.commits.fetch_add(1, Ordering::Relaxed);
                let written: usize = outcomes.iter().map(|o| o.accepted).sum();
                stats.events.fetch_add(written as u64, Ordering::Relaxed);
                outcomes.into_iter().map(Ok).collect()
            }
            Err(err) => {
                tracing::error!(error = ?err, events = queued, "event commit failed; nothing acknowledged");
                let err = Arc::new(err);
                jobs.iter()
                    .map(|_| Err(PipelineError::Storage(Arc::clone(&err))))
                    .collect()
            }
        };
        for ((job, outcome), batch) in jobs.into_iter().zip(outcomes).zip(batches) {
            // A caller that gave up waiting still has its events stored; nothing to undo.
            let _ = job.reply.send((outcome, batch));
        }
    }
}
