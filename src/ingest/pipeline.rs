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

use tokio::sync::{Semaphore, mpsc, oneshot};

use crate::storage::{AppendOutcome, EncodedEvent, StorageError, Store, TemplateRecord};

/// Most events written in one transaction; bounds commit latency and memory.
pub const MAX_EVENTS_PER_COMMIT: usize = 50_000;
/// Requests that may wait for the writer before senders are held back.
const QUEUE_DEPTH: usize = 4096;
/// Events that may be queued or in the writer at once; beyond it, requests wait for room.
/// This bounds memory however large and numerous the batches are.
pub const MAX_QUEUED_EVENTS: usize = 200_000;

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
    /// Templates the events refer to, written in the same transaction.
    templates: Vec<TemplateRecord>,
    reply: oneshot::Sender<Reply>,
}

/// Counters of the writer, for `/ready` and benchmarks.
#[derive(Debug, Default)]
pub struct PipelineStats {
    /// Transactions committed.
    pub commits: AtomicU64,
    /// Events stored (not duplicates), and of those the failures and successes.
    pub stored: AtomicU64,
    pub failures: AtomicU64,
    pub successes: AtomicU64,
}

/// The sending side; cheap to clone. The writer stops once every clone is dropped and the
/// queue is drained.
#[derive(Clone)]
pub struct Pipeline {
    tx: mpsc::Sender<Job>,
    /// One permit per event queued or being written; a request holds its permits until its
    /// reply arrives.
    room: Arc<Semaphore>,
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
        let room = Arc::new(Semaphore::new(MAX_QUEUED_EVENTS));
        Ok((Self { tx, room, stats }, handle))
    }

    /// Stores `events` and the templates they refer to in one transaction; returns once they
    /// are durable (or known duplicates).
    pub async fn submit(
        &self,
        events: Vec<EncodedEvent>,
        templates: Vec<TemplateRecord>,
    ) -> Result<AppendOutcome, PipelineError> {
        if events.is_empty() && templates.is_empty() {
            return Ok(AppendOutcome::default());
        }
        // A batch larger than the whole budget takes all of it and so runs alone.
        let wanted = events.len().min(MAX_QUEUED_EVENTS) as u32;
        let _room = self
            .room
            .acquire_many(wanted)
            .await
            .map_err(|_| PipelineError::Closed)?;
        let (reply, answer) = oneshot::channel();
        self.tx
            .send(Job {
                events,
                templates,
                reply,
            })
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
        // Later jobs carry the later state of a template they share with earlier ones.
        let templates: Vec<TemplateRecord> = jobs
            .iter_mut()
            .flat_map(|job| std::mem::take(&mut job.templates))
            .collect();
        let outcomes: Vec<Result<AppendOutcome, PipelineError>> = match store
            .append(&batches, &templates)
        {
            Ok(outcomes) => {
                stats.commits.fetch_add(1, Ordering::Relaxed);
                for (counter, count) in [
                    (
                        &stats.stored,
                        outcomes.iter().map(|o| o.accepted).sum::<usize>(),
                    ),
                    (&stats.failures, outcomes.iter().map(|o| o.failures).sum()),
                    (&stats.successes, outcomes.iter().map(|o| o.successes).sum()),
                ] {
                    counter.fetch_add(count as u64, Ordering::Relaxed);
                }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Event;

    fn encoded(id: &str) -> EncodedEvent {
        EncodedEvent::new(&Event::sample(id, 1))
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_submits_share_commits_and_get_their_own_outcomes() {
        let (_dir, store) = Store::temporary();
        let store = Arc::new(store);
        let (pipeline, writer) = Pipeline::start(Arc::clone(&store)).unwrap();
        let jobs: Vec<_> = (0..200)
            .map(|i| {
                let pipeline = pipeline.clone();
                // Every job repeats an id of the first hundred: 200 distinct ids in all.
                let events = vec![encoded(&format!("e{i}")), encoded(&format!("e{}", i % 100))];
                tokio::spawn(async move { pipeline.submit(events, Vec::new()).await })
            })
            .collect();
        let (mut accepted, mut duplicates) = (0, 0);
        for job in jobs {
            let outcome = job.await.unwrap().unwrap();
            assert_eq!(outcome.accepted + outcome.duplicates, 2);
            accepted += outcome.accepted;
            duplicates += outcome.duplicates;
        }
        assert_eq!((accepted, duplicates), (200, 200));
        assert_eq!(store.event_count().unwrap(), 200);
        let commits = pipeline.stats.commits.load(Ordering::Relaxed);
        assert!(
            commits < 100,
            "200 concurrent requests took {commits} commits"
        );

        // The writer stops once the last handle is gone.
        drop(pipeline);
        tokio::task::spawn_blocking(move || writer.join())
            .await
            .unwrap()
            .unwrap();
    }
}
