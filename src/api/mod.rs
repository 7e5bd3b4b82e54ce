//! The JSON HTTP API: routes, handlers, wire types and error mapping.

pub mod dto;
pub mod error;
pub mod extract;
mod handlers;
pub mod monitor;

use axum::Router;
use axum::routing::{delete, get, post, put};

use crate::state::AppState;

/// Every JSON route.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/ingest", post(handlers::ingest))
        .route("/health", get(handlers::health))
        .route("/ready", get(handlers::ready))
        .route("/api/v1/events", get(handlers::list_events))
        .route("/api/v1/search", get(handlers::search))
        .route("/api/v1/stats/timeline", get(handlers::timeline))
        .route("/api/v1/stats/top", get(handlers::top))
        .route("/api/v1/monitor/ws", get(monitor::ws))
        .route("/api/v1/logs", post(handlers::ingest_logs))
        .route("/api/v1/templates", get(handlers::list_templates))
        .route(
            "/api/v1/alerts",
            get(handlers::list_alerts).post(handlers::create_alert),
        )
        .route("/api/v1/blocklist", get(handlers::blocklist))
        .route(
            "/api/v1/allowlist",
            get(handlers::allowlist)
                .post(handlers::allowlist_add)
                .delete(handlers::allowlist_remove),
        )
        .route("/api/v1/alerts/{id}", get(handlers::get_alert))
        .route(
            "/api/v1/alerts/{id}/status",
            put(handlers::set_alert_status),
        )
        .route("/api/v1/events/{event_id}", get(handlers::get_event))
        .route("/api/v1/auth/login", post(handlers::login))
        .route("/api/v1/auth/refresh", post(handlers::refresh))
        .route("/api/v1/auth/logout", post(handlers::logout))
        .route("/api/v1/auth/me", get(handlers::me))
        .route(
            "/api/v1/tokens",
            get(handlers::list_tokens).post(handlers::create_token),
        )
        .route("/api/v1/tokens/{id}", delete(handlers::revoke_token))
        .route(
            "/api/v1/users",
            get(handlers::list_users).post(handlers::create_user),
        )
}
