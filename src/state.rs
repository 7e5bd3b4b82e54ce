//! The handles every request handler shares. Cloning is cheap: every field is a handle.

use std::sync::{Arc, Mutex};
use std::time::Instant;

use crate::admin::{self, AdminError, AdminRequest, AdminResponse};
use crate::alert_writer::AlertWriter;
use crate::auth::Auth;
use crate::config::Settings;
use crate::detect::engine::{Detector, Finding};
use crate::event::Event;
use crate::ingest::listener::ListenerStats;
use crate::ingest::parse::miner::Miner;
use crate::ingest::pipeline::Pipeline;
use crate::storage::{AlertUpdate, MAX_ALERT_EVIDENCE, Store};

#[derive(Debug, Clone)]
pub struct AppState {
    /// The database; reads happen directly on it, event writes go through `pipeline`.
    pub store: Arc<Store>,
    /// Credentials and sessions, with the in-memory API-token registry.
    pub auth: Arc<Auth>,
    /// The group-commit writer. Every clone keeps the writer thread alive; it exits after the
    /// last clone is dropped and its queue is drained, which is how shutdown flushes it.
    pub pipeline: Pipeline,
    /// The template miner of raw-log ingest, loaded from the store at start. Held for the few
    /// microseconds per line that mining takes; the templates a request touched travel with
    /// its events to the writer, which stores both in one transaction.
    pub miner: Arc<Mutex<Miner>>,
    /// Where syslog is received, if it is (`/ready` shows it; with port 0, the real port).
    pub syslog_addr: Option<std::net::SocketAddr>,
    pub syslog_stats: Arc<ListenerStats>,
    /// Detection state: every stored event goes through it once, after its commit.
    pub detector: Arc<Mutex<Detector>>,
    /// The alert writer thread; like `pipeline`, it exits after the last clone is dropped.
    pub alerts: AlertWriter,
    pub settings: Arc<Settings>,
    /// When the server started, for uptime on `/ready`.
    pub started_at: Instant,
}

impl AppState {
    /// Runs an administrative operation against the store and the live token registry, on the
    /// blocking pool because it may hash a password. Used by the API, the pages and the admin
    /// socket alike.
    pub async fn admin(&self, request: AdminRequest) -> Result<AdminResponse, AdminError> {
        let state = self.clone();
        tokio::task::spawn_blocking(move || {
            admin::execute(&state.store, Some(&state.auth.tokens), request)
        })
        .await
        .unwrap_or_else(|e| Err(AdminError::Failed(e.to_string())))
    }
}

impl AppState {
    /// Runs detection on events that have just been committed (skipping the positions the
    /// store reported as duplicates, which were stored before) and records what it finds as
    /// alerts. Failures are logged: the events themselves are stored either way.
    pub async fn detect(&self, events: Vec<Event>, duplicates: Vec<u32>) {
        // A few events are checked right here; a large batch goes to the blocking pool.
        let findings = if events.len() <= 256 {
            observe(&self.detector, &events, &duplicates)
        } else {
            let detector = Arc::clone(&self.detector);
            match tokio::task::spawn_blocking(move || observe(&detector, &events, &duplicates))
                .await
            {
                Ok(findings) => findings,
                Err(e) => {
                    tracing::error!(error = %e, "detection failed");
                    return;
                }
            }
        };
        if findings.is_empty() {
            return;
        }
        if let Err(e) = self.alerts.record(alert_updates(findings)).await {
            tracing::error!(error = ?e, "could not record alerts");
        }
    }
}

/// Feeds `events` to the detector, skipping the duplicate positions (ascending).
pub fn observe(detector: &Mutex<Detector>, events: &[Event], duplicates: &[u32]) -> Vec<Finding> {
    let mut detector = detector
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
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

/// The alert updates of `findings`: one per rule and entity, merging the findings of a batch
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
            // The newest finding's evidence is the newest; earlier ids go first.
            let newest: std::collections::HashSet<&String> = finding.evidence.iter().collect();
            update.evidence.retain(|id| !newest.contains(id));
            update.evidence.extend(finding.evidence);
            let excess = update.evidence.len().saturating_sub(MAX_ALERT_EVIDENCE);
            update.evidence.drain(..excess);
        } else {
            index.insert(key, merged.len());
            merged.push(alert_update(finding));
        }
    }
    merged
}

/// The alert a finding updates or opens.
#[must_use]
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
