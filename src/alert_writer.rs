//! Group commit for alerts: the findings of many concurrent requests go to one writer thread,
//! which records everything queued in one transaction and then answers every request.
//!
//! Without it, every request whose events complete a finding would wait for a durable commit
//! of its own, one after another (redb has one writer at a time): under an attack in full swing
//! that is every request.

use std::sync::Arc;
use std::thread::JoinHandle;

use tokio::sync::{mpsc, oneshot};

use crate::storage::{AlertUpdate, StorageError, Store};

/// Requests that may wait for the writer before senders are held back.
const QUEUE_DEPTH: usize = 1024;

struct Job {
    updates: Vec<AlertUpdate>,
    reply: oneshot::Sender<Result<(), Arc<StorageError>>>,
}

/// The sending side; cheap to clone. The thread stops once every clone is dropped.
#[derive(Clone)]
pub struct AlertWriter {
    tx: mpsc::Sender<Job>,
}

impl std::fmt::Debug for AlertWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AlertWriter").finish_non_exhaustive()
    }
}

impl AlertWriter {
    /// Starts the writer thread.
    pub fn start(store: Arc<Store>) -> std::io::Result<(Self, JoinHandle<()>)> {
        let (tx, rx) = mpsc::channel(QUEUE_DEPTH);
        let handle = std::thread::Builder::new()
            .name("alert-writer".into())
            .spawn(move || write_loop(&store, rx))?;
        Ok((Self { tx }, handle))
    }

    /// Records `updates`; returns once they are durable.
    pub async fn record(&self, updates: Vec<AlertUpdate>) -> Result<(), Arc<StorageError>> {
        let (reply, answer) = oneshot::channel();
        if self.tx.send(Job { updates, reply }).await.is_err() {
            return Ok(());
        }
        answer.await.unwrap_or(Ok(()))
    }
}

fn write_loop(store: &Store, mut rx: mpsc::Receiver<Job>) {
    while let Some(first) = rx.blocking_recv() {
        let mut jobs = vec![first];
        while let Ok(job) = rx.try_recv() {
            jobs.push(job);
        }
        let updates: Vec<AlertUpdate> = jobs
            .iter_mut()
            .flat_map(|job| std::mem::take(&mut job.updates))
            .collect();
        let result = store
            .record_findings(&updates, crate::now_micros())
            .map(|_| ())
            .map_err(Arc::new);
        for job in jobs {
            let _ = job.reply.send(result.clone());
        }
    }
}
