//! The JSON HTTP API: one file per area, each with its routes and handlers; wire types in
//! [`dto`], the one error-to-response mapping in [`error`], credentials and bodies in
//! [`extract`].

mod admin;
mod alerts;
mod auth;
pub mod dto;
pub mod error;
mod events;
pub mod extract;
mod ingest;
mod live;
mod params;
mod system;

use axum::Router;

use crate::state::AppState;

/// Every JSON route.
/// Whether `path` belongs to the JSON API (its errors are JSON, not pages).
#[must_use]
pub fn is_api_path(path: &str) -> bool {
    path.starts_with("/api/") || path == "/ingest"
}

/// Whether `path` takes bulk data (up to `max_body_bytes`); every other route takes a small
/// body only.
#[must_use]
pub fn takes_bulk_body(path: &str) -> bool {
    ingest::BULK_PATHS.contains(&path)
}

pub fn router() -> Router<AppState> {
    Router::new()
        .merge(ingest::routes())
        .merge(system::routes())
        .merge(events::routes())
        .merge(alerts::routes())
        .merge(live::routes())
        .merge(auth::routes())
        .merge(admin::routes())
}
