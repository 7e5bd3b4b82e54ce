//! Every redb table of the appliance, the schema version, and the record encoding.
//!
//! Architecture Invariant: a table's key and value types never change in place; a change of
//! layout is a new table or a new record version plus a migration that bumps
//! [`SCHEMA_VERSION`].

use redb::TableDefinition;
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::StorageError;

/// Version of the table layout this binary writes.
pub const SCHEMA_VERSION: u64 = 1;
/// Key in [`META`] holding the schema version.
pub const SCHEMA_VERSION_KEY: &str = "schema_version";
/// Key in [`META`] holding the next event sequence number.
pub const NEXT_SEQ_KEY: &str = "next_event_seq";

/// Small counters and settings.
pub const META: TableDefinition<&str, u64> = TableDefinition::new("meta");
/// Events by (event time in µs, arrival sequence): time-range scans in either direction.
pub const EVENTS: TableDefinition<(i64, u64), &[u8]> = TableDefinition::new("events");
/// Unique index: `event_id` to the key of its event in [`EVENTS`].
pub const EVENT_IDS: TableDefinition<&str, (i64, u64)> = TableDefinition::new("event_ids");
/// Dashboard and API users by name.
pub const USERS: TableDefinition<&str, &[u8]> = TableDefinition::new("users");
/// API tokens by public id; the secret is stored only as a SHA-256 hash.
pub const API_TOKENS: TableDefinition<&str, &[u8]> = TableDefinition::new("api_tokens");
/// Login sessions (one per login; the refresh-token family) by id.
pub const SESSIONS: TableDefinition<&str, &[u8]> = TableDefinition::new("sessions");
/// Refresh tokens by the SHA-256 hash of the token.
pub const REFRESH_TOKENS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("refresh_tokens");

/// First byte of every record written by this release.
pub const RECORD_V1: u8 = 1;

/// Encodes a record as its version byte followed by postcard.
pub fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    // Sized for a typical event, so that encoding one seldom grows the buffer.
    let mut out = Vec::with_capacity(192);
    out.push(RECORD_V1);
    // Serialising plain structs into a Vec cannot fail.
    postcard::to_io(value, &mut out).expect("postcard encoding into a Vec");
    out
}

/// Decodes a record written by [`encode`].
pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, StorageError> {
    match bytes.split_first() {
        Some((&RECORD_V1, rest)) => {
            postcard::from_bytes(rest).map_err(|e| StorageError::Corrupt(e.to_string()))
        }
        Some((version, _)) => Err(StorageError::Corrupt(format!(
            "unknown record version {version}"
        ))),
        None => Err(StorageError::Corrupt("empty record".into())),
    }
}
