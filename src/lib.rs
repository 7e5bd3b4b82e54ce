//! Securify: a security-monitoring appliance in one binary.
//!
//! Crate map (see `ARCHITECTURE.md` for the invariants between these modules), from the edge
//! inwards:
//! - [`cli`]: the command line (`serve`, `token`, `user`, `import`, `explain`, `reindex`,
//!   `check-config`) and exit codes.
//! - [`app`]: builds the server from a validated configuration and runs it until shutdown; every
//!   network entry point (HTTPS, the admin socket, the syslog listener).
//! - [`api`]: the JSON HTTP API, one file per area.
//! - [`web`]: the server-rendered pages.
//! - [`state`]: the handles every request handler shares.
//! - [`live`]: live updates (new alerts, counts) published to the WebSocket.
//! - [`intake`]: the one way in: input read into events, stored, detected on, answered.
//! - [`ingest`]: reading inputs (JSON bodies, raw log lines, file batches) into events, and the
//!   group-commit pipeline.
//! - [`alerting`]: detection run on committed events and alerts recorded; triage of alerts.
//! - [`detect`]: detection on event time (pure logic, no IO).
//! - [`search`]: the tantivy index derived from the event store, and the indexer thread.
//! - [`stats`]: timeline buckets and top lists from the stored counts.
//! - [`storage`]: redb, the source of truth.
//! - [`admin`]: token and user operations shared by the CLI, the admin socket, API and pages.
//! - [`auth`]: passwords, JWTs, API tokens, roles and the request principal.
//! - [`config`]: one configuration struct for CLI, environment and TOML file, validated once.
//! - [`event`]: the normalised login/auth event and its validated field types.
//! - [`geo`]: IP to country, and distances between countries.
//! - [`keys`]: the master key and JWT signing key, generated on first start or supplied.
//! - [`tls`]: the self-signed certificate bootstrap and the rustls configuration.
//! - [`telemetry`]: structured logging.

pub mod admin;
pub mod alerting;
pub mod api;
pub mod app;
pub mod auth;
pub mod cli;
pub mod config;
pub mod detect;
pub mod event;
pub mod geo;
pub mod ingest;
pub mod intake;
pub mod keys;
pub mod live;
pub mod search;
pub mod state;
pub mod stats;
pub mod storage;
pub mod telemetry;
pub mod tls;
pub mod web;

/// Microseconds since the Unix epoch, the time unit of every stored timestamp.
#[must_use]
pub fn now_micros() -> i64 {
    let now = time::OffsetDateTime::now_utc();
    (now.unix_timestamp_nanos() / 1_000) as i64
}
