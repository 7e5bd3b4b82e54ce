//! The indexer thread: follows the store's commit log from the index's checkpoint, adds the
//! events of each commit, and commits the index at most once a second with the next commit to
//! read as its payload. With no usable checkpoint it first rebuilds the index from the store.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::{SearchError, SearchIndex};
use crate::storage::Store;

/// Events read from the store per round of the indexer.
const ROUND_EVENTS: usize = 5_000;
/// Longest time indexed events wait for an index commit (they are searchable after it).
const COMMIT_EVERY: Duration = Duration::from_secs(1);
/// How often the indexer looks for new commits when it has caught up.
const POLL: Duration = Duration::from_millis(100);
/// The indexer thread's handle: wakes it, and stops it (committing what it holds).
#[derive(Debug, Clone)]
pub struct Indexer {
    stop: Arc<(Mutex<bool>, Condvar)>,
}

impl Indexer {
    /// Starts following `store` into `search`: first a rebuild when the index has no usable
    /// checkpoint, then every new commit.
    pub fn start(
        search: Arc<SearchIndex>,
        store: Arc<Store>,
        checkpoint: Option<u64>,
        memory_bytes: usize,
    ) -> std::io::Result<(Self, JoinHandle<()>)> {
        let stop = Arc::new((Mutex::new(false), Condvar::new()));
        let indexer = Self {
            stop: Arc::clone(&stop),
        };
        if checkpoint.is_none() {
            search.rebuilding.store(true, Ordering::Relaxed);
        }
        let thread = std::thread::Builder::new()
            .name("indexer".into())
            .spawn(move || {
                if let Err(e) = follow(&search, &store, checkpoint, memory_bytes, &stop) {
                    tracing::error!(error = %e, "the search indexer stopped");
                }
            })?;
        Ok((indexer, thread))
    }

    /// Asks the thread to commit what it holds and end.
    pub fn stop(&self) {
        let (lock, wake) = &*self.stop;
        *lock.lock().unwrap_or_else(PoisonError::into_inner) = true;
        wake.notify_all();
    }
}

fn follow(
    search: &SearchIndex,
    store: &Store,
    checkpoint: Option<u64>,
    memory_bytes: usize,
    stop: &(Mutex<bool>, Condvar),
) -> Result<(), SearchError> {
    let mut next = if let Some(next) = checkpoint {
        next
    } else {
        tracing::info!("building the search index from the event store");
        let started = Instant::now();
        let next = search.rebuild(store, memory_bytes, |done, total| {
            tracing::info!(done, total, "indexing stored events");
        })?;
        tracing::info!(
            documents = search.document_count(),
            seconds = started.elapsed().as_secs_f64(),
            "search index built"
        );
        next
    };
    store.set_indexed_below(next);
    let mut writer = search.writer(memory_bytes)?;
    // The checkpoint of the last index commit, and since when documents have waited for one.
    let mut committed_next = next;
    let mut waiting_since = Instant::now();
    loop {
        let stopping = *stop.0.lock().unwrap_or_else(PoisonError::into_inner);
        let committed = store.committed_since(next, ROUND_EVENTS)?;
        let read = committed.next_commit != next;
        if read && next == committed_next {
            waiting_since = Instant::now();
        }
        for (key, event) in &committed.events {
            writer.add_document(search.document(*key, event))?;
        }
        next = committed.next_commit;
        if next != committed_next && (stopping || waiting_since.elapsed() >= COMMIT_EVERY) {
            search.commit(&mut writer, store, next)?;
            committed_next = next;
        }
        if stopping && !read {
            return Ok(());
        }
        if !read {
            let guard = stop.0.lock().unwrap_or_else(PoisonError::into_inner);
            if !*guard {
                let _ = stop.1.wait_timeout(guard, POLL);
            }
        }
    }
}
