//! Live updates: one task looks at the store and the writer's counters once a second and
//! publishes new alerts and event counts to a bounded broadcast channel, which every live
//! connection (`GET /api/v1/monitor/ws`) forwards. A connection that falls behind by more than
//! the channel holds is dropped by its forwarder: memory never grows with a slow reader. The
//! same task measures the ingest rate the system page shows.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::{broadcast, watch};

use crate::ingest::pipeline::PipelineStats;
use crate::storage::{AlertRecord, Store};

/// Messages a connection may fall behind by before it is dropped.
const BACKLOG: usize = 256;
/// How often the store is looked at.
const TICK: Duration = Duration::from_secs(1);
/// Alerts published per tick at most (a burst beyond that follows on the next ticks).
const ALERTS_PER_TICK: usize = 100;
/// The ingest rate is averaged over this many ticks.
const RATE_TICKS: usize = 10;

/// The publishing side, shared by every request.
#[derive(Debug)]
pub struct Monitor {
    tx: broadcast::Sender<Arc<Update>>,
    /// Events stored per second, averaged over the last [`RATE_TICKS`] seconds.
    rate: AtomicU64,
}

impl Default for Monitor {
    fn default() -> Self {
        Self {
            tx: broadcast::channel(BACKLOG).0,
            rate: AtomicU64::new(0),
        }
    }
}

impl Monitor {
    /// Events stored per second, over the last ten seconds.
    #[must_use]
    pub fn rate(&self) -> u64 {
        self.rate.load(Ordering::Relaxed)
    }

    /// Connections listening now.
    #[must_use]
    pub fn listeners(&self) -> usize {
        self.tx.receiver_count()
    }

    /// A new listener: it receives what is published from now on.
    #[must_use]
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<Update>> {
        self.tx.subscribe()
    }

    fn publish(&self, update: Update) {
        // Nobody listening is not an error.
        let _ = self.tx.send(Arc::new(update));
    }
}

/// What is published.
#[derive(Debug)]
pub enum Update {
    /// An alert opened since the last tick.
    Alert(AlertRecord),
    /// Events stored since the last tick (of event time `at`, µs, the wall clock).
    Counts {
        at: i64,
        stored_total: u64,
        events: u64,
        failures: u64,
        successes: u64,
        rate_per_sec: u64,
        active_alerts: u64,
    },
}

/// Publishes until `stop` turns true.
pub async fn run(
    store: Arc<Store>,
    pipeline: Arc<PipelineStats>,
    monitor: Arc<Monitor>,
    mut stop: watch::Receiver<bool>,
) {
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let counters = || {
        [&pipeline.stored, &pipeline.failures, &pipeline.successes]
            .map(|c| c.load(Ordering::Relaxed))
    };
    let mut last = counters();
    let mut samples: VecDeque<(Instant, u64)> = VecDeque::with_capacity(RATE_TICKS + 1);
    let mut newest_alert = None;
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.changed() => return,
        }
        let now = counters();
        samples.push_back((Instant::now(), now[0]));
        if samples.len() > RATE_TICKS {
            samples.pop_front();
        }
        if let (Some(first), Some(latest)) = (samples.front(), samples.back()) {
            let seconds = latest.0.duration_since(first.0).as_secs_f64();
            if seconds > 0.0 {
                let rate = (latest.1 - first.1) as f64 / seconds;
                monitor.rate.store(rate.round() as u64, Ordering::Relaxed);
            }
        }
        let listening = monitor.listeners() > 0;
        let store = Arc::clone(&store);
        let since = newest_alert;
        let read = tokio::task::spawn_blocking(move || {
            let newest = store.newest_alert_id()?;
            let alerts = match since {
                Some(id) if listening => store.alerts_after(id, ALERTS_PER_TICK)?,
                _ => Vec::new(),
            };
            let active = if listening {
                store.active_alert_count()?
            } else {
                0
            };
            Ok::<_, crate::storage::StorageError>((newest, alerts, active))
        })
        .await;
        let (newest, alerts, active) = match read {
            Ok(Ok(read)) => read,
            Ok(Err(e)) => {
                tracing::warn!(error = ?e, "monitor could not read the store");
                continue;
            }
            Err(e) => {
                tracing::warn!(error = ?e, "monitor read failed");
                continue;
            }
        };
        if !listening {
            newest_alert = Some(newest);
            last = now;
            continue;
        }
        newest_alert = Some(
            alerts
                .last()
                .map_or(newest.max(since.unwrap_or(0)), |a| a.id),
        );
        for alert in alerts {
            monitor.publish(Update::Alert(alert));
        }
        monitor.publish(Update::Counts {
            at: crate::now_micros(),
            stored_total: now[0],
            events: now[0] - last[0],
            failures: now[1] - last[1],
            successes: now[2] - last[2],
            rate_per_sec: monitor.rate(),
            active_alerts: active,
        });
        last = now;
    }
}
