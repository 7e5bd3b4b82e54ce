//! The handles every request handler shares. Cloning is cheap: every field is a handle.

use std::sync::{Arc, Mutex};
use std::time::Instant;

use crate::admin::{self, AdminError, AdminRequest, AdminResponse};
use crate::auth::Auth;
use crate::config::Settings;
use crate::detect::engine::Risk;
use crate::detection::Detection;
use crate::event::Event;
use crate::ingest::listener::ListenerStats;
use crate::ingest::parse::miner::Miner;
use crate::ingest::pipeline::Pipeline;
use crate::storage::Store;

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
    /// The detection thread: every stored event goes through it once, after its commit. Like
    /// `pipeline`, the thread exits after the last clone is dropped.
    pub detection: Detection,
    /// The full-text index of the events, kept following the store by the indexer thread.
    pub search: Arc<crate::search::SearchIndex>,
    /// Address to country, for the pages and the country tallies (detection holds its own
    /// handle).
    pub geo: Option<Arc<crate::geo::Geo>>,
    /// Live updates for the WebSocket, and the measured ingest rate.
    pub monitor: Arc<crate::api::monitor::Monitor>,
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
    /// store reported as duplicates, which were stored before); returns once their alerts are
    /// stored. A failure is logged: the events themselves are stored either way.
    pub async fn detect(&self, events: Vec<Event>, duplicates: Vec<u32>) {
        let _ = self.detect_with_risk(events, duplicates, false).await;
    }

    /// As [`AppState::detect`], with the risk of each event when `risk` is asked for (none
    /// when detection failed).
    pub async fn detect_with_risk(
        &self,
        events: Vec<Event>,
        duplicates: Vec<u32>,
        risk: bool,
    ) -> Vec<Risk> {
        match self.detection.detect(events, duplicates, risk).await {
            Ok(risks) => risks,
            Err(e) => {
                tracing::error!(error = ?e, "could not record alerts");
                Vec::new()
            }
        }
    }
}

impl AppState {
    /// Records a login to the appliance itself (`via`: `dashboard` or `api`) as an event,
    /// through the path every event takes: stored, indexed, counted, detected on. The
    /// appliance's login page is a monitored service like any other. Runs in the background;
    /// a failure is logged.
    pub fn record_own_login(
        &self,
        client: std::net::IpAddr,
        username: &str,
        success: bool,
        via: &'static str,
    ) {
        let now = crate::now_micros();
        let username = crate::event::check_name("username", username, 256)
            .is_ok()
            .then(|| username.to_string());
        let event = Event {
            event_id: crate::event::generate_event_id(),
            timestamp: now,
            received_at: now,
            source_ip: Some(client),
            port: None,
            event_type: "LOGIN_ATTEMPT".into(),
            username,
            success: Some(success),
            host: None,
            service: Some(format!("securify-{via}")),
            pid: None,
            user_agent: None,
            message: Some(format!(
                "{} login to the appliance's {via}",
                if success { "successful" } else { "failed" }
            )),
            details: None,
            raw: None,
            template_id: None,
        };
        let state = self.clone();
        tokio::spawn(async move {
            let encoded = vec![crate::storage::EncodedEvent::new(&event)];
            match state.pipeline.submit(encoded).await {
                Ok(outcome) => state.detect(vec![event], outcome.duplicate_positions).await,
                Err(e) => tracing::warn!(error = ?e, "could not record a login to the appliance"),
            }
        });
    }
}
