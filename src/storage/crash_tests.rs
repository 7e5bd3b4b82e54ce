//! Acknowledged means durable, checked against injected I/O faults and simulated power loss.
//!
//! [`CrashBackend`] keeps two images of the database: every write lands in the volatile one,
//! and only a successful `sync_data` copies it to the durable one, as a disk cache does. A power
//! loss reopens the database from the durable image. Faults fail the Nth write or the Nth sync.
//! For every fault position the test appends batches until one fails, loses power, reopens, and
//! compares with a model: every batch that was acknowledged is there exactly once, nothing of
//! the failed batch is visible, and the store takes new events again.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex, PoisonError};

use redb::StorageBackend;

use super::{EncodedEvent, EventQuery, Store};
use crate::event::Event;

#[derive(Debug, Default)]
struct Images {
    volatile: Vec<u8>,
    durable: Vec<u8>,
    /// Writes left before one fails; `None` never fails.
    writes_left: Option<usize>,
    /// Syncs left before one fails; `None` never fails.
    syncs_left: Option<usize>,
}

#[derive(Debug, Clone, Default)]
struct CrashBackend(Arc<Mutex<Images>>);

fn injected() -> std::io::Error {
    std::io::Error::other("injected fault")
}

impl CrashBackend {
    fn images(&self) -> std::sync::MutexGuard<'_, Images> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A backend holding only what had been synced, with no faults armed: the disk after a
    /// power loss.
    fn after_power_loss(&self) -> Self {
        let durable = self.images().durable.clone();
        Self(Arc::new(Mutex::new(Images {
            volatile: durable.clone(),
            durable,
            ..Images::default()
        })))
    }

    /// Counts down an armed fault; true when this operation must fail.
    fn trips(counter: &mut Option<usize>) -> bool {
        match counter {
            Some(0) => true,
            Some(n) => {
                *n -= 1;
                false
            }
            None => false,
        }
    }
}

impl StorageBackend for CrashBackend {
    fn len(&self) -> std::io::Result<u64> {
        Ok(self.images().volatile.len() as u64)
    }

    fn read(&self, offset: u64, out: &mut [u8]) -> std::io::Result<()> {
        let images = self.images();
        let start = offset as usize;
        let source = images
            .volatile
            .get(start..start + out.len())
            .ok_or_else(|| std::io::Error::other("read past end"))?;
        out.copy_from_slice(source);
        Ok(())
    }

    fn set_len(&self, len: u64) -> std::io::Result<()> {
        self.images().volatile.resize(len as usize, 0);
        Ok(())
    }

    fn sync_data(&self) -> std::io::Result<()> {
        let mut images = self.images();
        if Self::trips(&mut images.syncs_left) {
            return Err(injected());
        }
        images.durable = images.volatile.clone();
        Ok(())
    }

    fn write(&self, offset: u64, data: &[u8]) -> std::io::Result<()> {
        let mut images = self.images();
        if Self::trips(&mut images.writes_left) {
            return Err(injected());
        }
        let start = offset as usize;
        let end = start + data.len();
        if images.volatile.len() < end {
            images.volatile.resize(end, 0);
        }
        images.volatile[start..end].copy_from_slice(data);
        Ok(())
    }
}

fn event(id: &str, timestamp: i64) -> Event {
    Event::sample(id, timestamp)
}

/// Batch `n`: five events, two of which repeat ids from the previous batch.
fn batch(n: usize) -> Vec<Event> {
    (0..5)
        .map(|k| {
            let id = if k < 2 && n > 0 {
                format!("b{}-e{}", n - 1, k + 3)
            } else {
                format!("b{n}-e{k}")
            };
            event(&id, (n * 10 + k) as i64)
        })
        .collect()
}

fn stored_ids(store: &Store) -> Vec<String> {
    let page = store
        .query_events(&EventQuery {
            limit: 10_000,
            ..EventQuery::default()
        })
        .unwrap();
    page.events.into_iter().map(|e| e.event_id).collect()
}

fn open(backend: CrashBackend) -> Store {
    Store::open_backend(backend, 1 << 20).unwrap()
}

/// Runs batches until a fault; returns the ids acknowledged and the ids of the failed batch.
fn run_until_fault(store: &Store) -> (BTreeSet<String>, Vec<String>) {
    let mut acknowledged = BTreeSet::new();
    for n in 0..40 {
        let events = batch(n);
        let encoded = EncodedEvent::all(&events);
        let ids = events.into_iter().map(|e| e.event_id);
        if store.append_batches(&[encoded]).is_ok() {
            acknowledged.extend(ids);
        } else {
            let failed = ids.filter(|id| !acknowledged.contains(id)).collect();
            return (acknowledged, failed);
        }
    }
    (acknowledged, Vec::new())
}

fn check_after_power_loss(
    backend: &CrashBackend,
    acknowledged: &BTreeSet<String>,
    failed: &[String],
    what: &str,
) {
    let store = open(backend.after_power_loss());
    let ids = stored_ids(&store);
    let unique: BTreeSet<String> = ids.iter().cloned().collect();
    assert_eq!(unique.len(), ids.len(), "{what}: an event is stored twice");
    for id in acknowledged {
        assert!(
            unique.contains(id),
            "{what}: acknowledged event {id} was lost"
        );
    }
    for id in failed {
        assert!(
            !unique.contains(id),
            "{what}: event {id} of the failed commit is visible"
        );
    }
    assert_eq!(
        unique.len(),
        acknowledged.len(),
        "{what}: unexpected events"
    );
    // The store works again, and still refuses the acknowledged ids as duplicates.
    let retry: Vec<EncodedEvent> = acknowledged
        .iter()
        .take(3)
        .map(|id| EncodedEvent::new(&event(id, 0)))
        .collect();
    let outcome = store.append_batches(std::slice::from_ref(&retry)).unwrap();
    assert_eq!(outcome[0].duplicates, retry.len(), "{what}");
    let fresh = EncodedEvent::new(&event("after-recovery", 1));
    assert_eq!(
        store.append_batches(&[vec![fresh]]).unwrap()[0].accepted,
        1,
        "{what}"
    );
}

#[test]
fn acknowledged_batches_survive_write_faults_and_power_loss() {
    // Measure how many writes a fault-free run makes, then fail each of them in turn.
    let probe = CrashBackend::default();
    let store = open(probe.clone());
    let before = probe.images().volatile.len();
    let (all, _) = run_until_fault(&store);
    assert_eq!(
        all.len(),
        40 * 3 + 2,
        "a fault-free run stores every distinct id"
    );
    drop(store);
    assert!(before > 0);

    let mut faults = 0;
    for fail_at in (0..400).step_by(7) {
        let backend = CrashBackend::default();
        let store = open(backend.clone());
        backend.images().writes_left = Some(fail_at);
        let (acknowledged, failed) = run_until_fault(&store);
        drop(store);
        if failed.is_empty() {
            continue;
        }
        faults += 1;
        check_after_power_loss(
            &backend,
            &acknowledged,
            &failed,
            &format!("write fault at {fail_at}"),
        );
    }
    assert!(
        faults > 20,
        "too few fault positions were exercised: {faults}"
    );
}

#[test]
fn acknowledged_batches_survive_sync_faults_and_power_loss() {
    for fail_at in 0..40 {
        let backend = CrashBackend::default();
        let store = open(backend.clone());
        backend.images().syncs_left = Some(fail_at);
        let (acknowledged, failed) = run_until_fault(&store);
        drop(store);
        assert!(!failed.is_empty(), "sync fault {fail_at} never fired");
        check_after_power_loss(
            &backend,
            &acknowledged,
            &failed,
            &format!("sync fault at {fail_at}"),
        );
    }
}

#[test]
fn power_loss_without_faults_keeps_every_commit() {
    let backend = CrashBackend::default();
    let store = open(backend.clone());
    let (acknowledged, failed) = run_until_fault(&store);
    assert!(failed.is_empty());
    // No clean close: the power goes while the database is still open.
    let lost_power = backend.after_power_loss();
    drop(store);
    let store = open(lost_power);
    assert_eq!(
        stored_ids(&store).into_iter().collect::<BTreeSet<_>>(),
        acknowledged
    );
}
