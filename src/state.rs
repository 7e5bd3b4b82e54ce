//! The handles every request handler shares. Cloning is cheap: every field is a handle.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Instant;

use crate::admin::{self, AdminError, AdminRequest, AdminResponse};
use crate::auth::Auth;
use crate::config::Settings;
use crate::event::Event;
use crate::geo::Geo;
use crate::intake::{Input, Intake};
use crate::live::Monitor;
use crate::search::SearchIndex;
use crate::storage::Store;

#[derive(Debug, Clone)]
pub struct AppState {
    /// The database; reads happen directly on it, event writes go through `intake`.
    pub store: Arc<Store>,
    /// Credentials and sessions, with the in-memory API-token registry.
    pub auth: Arc<Auth>,
    /// The one way in for events: read, stored through the group-commit writer, detected on.
    /// Every clone keeps the writer and detection threads alive; they exit after the last
    /// clone is dropped and their queues are drained, which is how shutdown flushes them.
    pub intake: Intake,
    /// Where syslog is received, if it is (`/ready` shows it; with port 0, the real port).
    pub syslog_addr: Option<SocketAddr>,
    /// Counters of the syslog listener, which it updates as lines arrive.
    pub syslog_stats: Arc<ListenerStats>,
    /// The full-text index of the events, kept following the store by the indexer thread.
    pub search: Arc<SearchIndex>,
    /// Address to country, for the pages and the country tallies (detection holds its own
    /// handle).
    pub geo: Option<Arc<Geo>>,
    /// Live updates for the WebSocket, and the measured ingest rate.
    pub monitor: Arc<Monitor>,
    pub settings: Arc<Settings>,
    /// When the server started, for uptime on `/ready`.
    pub started_at: Instant,
}

/// Counters of the syslog listener.
#[derive(Debug, Default)]
pub struct ListenerStats {
    pub received: AtomicU64,
    /// UDP datagrams dropped because the queue was full.
    pub dropped: AtomicU64,
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
    /// Records a login to the appliance itself (`via`: `dashboard` or `api`) as an event,
    /// through the path every event takes: stored, indexed, counted, detected on. The
    /// appliance's login page is a monitored service like any other. Runs in the background;
    /// a failure is logged.
    pub fn record_own_login(
        &self,
        client: IpAddr,
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
        let intake = self.intake.clone();
        tokio::spawn(async move {
            if let Err(e) = intake.take(Input::Events(vec![event])).await {
                tracing::warn!(error = ?e, "could not record a login to the appliance");
            }
        });
    }
}
