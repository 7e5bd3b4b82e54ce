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
