//! Securify: a security-monitoring appliance in one binary.
//!
//! Crate map (see `ARCHITECTURE.md` for the invariants between these modules):
//! - [`cli`]: the command line (`serve`, `token`, `user`, `check-config`) and exit codes.
//! - [`config`]: one configuration struct for CLI, environment and TOML file, validated once.
//! - [`app`]: builds the server from a validated configuration and runs it until shutdown.
//! - [`state`]: the handles every request handler shares.
//! - [`detection`]: the detection thread: detection on committed events, alerts recorded.
//! - [`detect`]: detection on event time (pure logic, no IO).
//! - [`event`]: the normalised login/auth event and its validated field types.
//! - [`storage`]: redb, the source of truth: events, users, tokens, sessions.
//! - [`ingest`]: decoding request bodies into events, the group-commit pipeline, and raw log
//!   lines (syslog framing, auth-message rules, the template miner).
//! - [`search`]: the tantivy index derived from the event store, and the indexer thread.
//! - [`explain`]: `securify explain`, what the appliance makes of each line of a log.
//! - [`import`]: `securify import`, an old log file through the server or on a stopped store.
//! - [`auth`]: passwords, JWTs, API tokens, roles and the request principal.
//! - [`keys`]: the master key and JWT signing key, generated on first start or supplied.
//! - [`tls`]: the self-signed certificate bootstrap and the rustls configuration.
//! - [`admin`]: administrative operations shared by the CLI and the local admin socket.
//! - [`api`]: the JSON HTTP API.
//! - [`web`]: the server-rendered pages.
//! - [`telemetry`]: structured logging.

pub mod admin;
pub mod api;
pub mod app;
pub mod auth;
pub mod cli;
pub mod config;
pub mod detect;
pub mod detection;
pub mod event;
pub mod explain;
pub mod geo;
pub mod import;
pub mod ingest;
pub mod keys;
pub mod search;
pub mod state;
pub mod stats;
pub mod storage;
pub mod telemetry;
pub mod tls;
pub mod triage;
pub mod web;

/// Microseconds since the Unix epoch, the time unit of every stored timestamp.
#[must_use]
pub fn now_micros() -> i64 {
    let now = time::OffsetDateTime::now_utc();
    (now.unix_timestamp_nanos() / 1_000) as i64
}
