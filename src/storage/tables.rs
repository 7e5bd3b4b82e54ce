//! Every redb table of the appliance, the schema version, and the record encoding.
//!
//! Architecture Invariant: a table's key and value types never change in place; a change of
//! layout is a new table or a new record version plus a migration that bumps
//! [`SCHEMA_VERSION`].

use std::net::IpAddr;

use redb::TableDefinition;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::StorageError;
use crate::event::Event;

/// Version of the table layout this binary writes.
pub const SCHEMA_VERSION: u64 = 2;
/// Key in [`META`] holding the schema version.
pub const SCHEMA_VERSION_KEY: &str = "schema_version";
/// Key in [`META`] holding the next event sequence number.
pub const NEXT_SEQ_KEY: &str = "next_event_seq";
/// Key in [`META`] holding the number of the next event commit ([`COMMIT_LOG`]).
pub const NEXT_COMMIT_KEY: &str = "next_event_commit";

/// Small counters and settings.
pub const META: TableDefinition<&str, u64> = TableDefinition::new("meta");
/// Events by (event time in µs, arrival sequence): time-range scans in either direction.
pub const EVENTS: TableDefinition<(i64, u64), &[u8]> = TableDefinition::new("events");
/// The keys in [`EVENTS`] of the events each commit stored, by commit number: what the search
/// index follows. A row is removed once the index holds its events.
pub const COMMIT_LOG: TableDefinition<u64, &[u8]> = TableDefinition::new("commit_log");
/// Events counted per minute of event time and series (`events`, `failures`, `successes`,
/// and alerts opened per severity, `alerts_high`…):
/// (minute since the epoch, series) to count. Written in the transaction that stores the
/// events (or opens the alerts), so the counts always match what they count.
pub const MINUTE_COUNTS: TableDefinition<(i64, &str), u64> = TableDefinition::new("minute_counts");
/// Events and failures per hour of event time, per address, account or host:
/// (dimension code, hour since the epoch, key) to (events, failures). Written with
/// [`MINUTE_COUNTS`].
pub const HOURLY_TALLIES: TableDefinition<(u8, i64, &str), (u64, u64)> =
    TableDefinition::new("hourly_tallies");
/// [`MINUTE_COUNTS`] summed per hour: (hour since the epoch, series) to count, for charts of
/// long ranges. Written with [`MINUTE_COUNTS`] (added in schema version 2, filled from it).
pub const HOURLY_COUNTS: TableDefinition<(i64, &str), u64> = TableDefinition::new("hourly_counts");
/// [`HOURLY_TALLIES`] summed per day: (dimension code, day since the epoch, key) to (events,
/// failures), for top lists of long ranges. Written with [`HOURLY_TALLIES`] (added in schema
/// version 2, filled from it).
pub const DAILY_TALLIES: TableDefinition<(u8, i64, &str), (u64, u64)> =
    TableDefinition::new("daily_tallies");
/// Unique index: `event_id` to the key of its event in [`EVENTS`].
pub const EVENT_IDS: TableDefinition<&str, (i64, u64)> = TableDefinition::new("event_ids");
/// Dashboard and API users by name.
pub const USERS: TableDefinition<&str, &[u8]> = TableDefinition::new("users");
/// API tokens by public id; the secret is stored only as a SHA-256 hash.
pub const API_TOKENS: TableDefinition<&str, &[u8]> = TableDefinition::new("api_tokens");
/// Login sessions (one per login; the refresh-token family) by id.
pub const SESSIONS: TableDefinition<&str, &[u8]> = TableDefinition::new("sessions");
/// Alerts by id (ids grow: newest last).
pub const ALERTS: TableDefinition<u64, &[u8]> = TableDefinition::new("alerts");
/// The active alert of each rule and entity: `rule NUL entity_type NUL entity` to alert id.
pub const OPEN_ALERTS: TableDefinition<&str, u64> = TableDefinition::new("open_alerts");
/// The member addresses of campaign alerts: (alert id, address) to the newest event time (µs)
/// the address was seen taking part.
pub const ALERT_MEMBERS: TableDefinition<(u64, &str), i64> = TableDefinition::new("alert_members");
/// Accounts' login histories (the history rules' state) by account name.
pub const USER_PROFILES: TableDefinition<&str, &[u8]> = TableDefinition::new("user_profiles");
/// Networks kept off the blocklist, added from the dashboard or the API: the network (CIDR
/// text) to its record (who, when, why).
pub const ALLOWLIST: TableDefinition<&str, &[u8]> = TableDefinition::new("allowlist");
/// Key in [`META`] holding the next alert id.
pub const NEXT_ALERT_ID_KEY: &str = "next_alert_id";
/// Templates of the template miner by id.
pub const TEMPLATES: TableDefinition<u32, &[u8]> = TableDefinition::new("templates");
/// Refresh tokens by the SHA-256 hash of the token.
pub const REFRESH_TOKENS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("refresh_tokens");

/// First byte of every record but events, and of events written by the first release.
pub const RECORD_V1: u8 = 1;
/// First byte of event records of this release: address, user and outcome optional; port,
/// pid, the raw line and the template added.
pub const EVENT_RECORD_V2: u8 = 2;

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

/// Encodes an event record ([`EVENT_RECORD_V2`]).
#[must_use]
pub fn encode_event(event: &Event) -> Vec<u8> {
    let mut out = Vec::with_capacity(192);
    out.push(EVENT_RECORD_V2);
    postcard::to_io(event, &mut out).expect("postcard encoding into a Vec");
    out
}

/// Decodes an event record of any release.
pub fn decode_event(bytes: &[u8]) -> Result<Event, StorageError> {
    let corrupt = |e: postcard::Error| StorageError::Corrupt(e.to_string());
    match bytes.split_first() {
        Some((&EVENT_RECORD_V2, rest)) => postcard::from_bytes(rest).map_err(corrupt),
        Some((&RECORD_V1, rest)) => postcard::from_bytes::<EventV1>(rest)
            .map(Event::from)
            .map_err(corrupt),
        Some((version, _)) => Err(StorageError::Corrupt(format!(
            "unknown event record version {version}"
        ))),
        None => Err(StorageError::Corrupt("empty record".into())),
    }
}

/// An event as the first release stored it ([`RECORD_V1`]); read, never written.
#[derive(Deserialize)]
struct EventV1 {
    event_id: String,
    timestamp: i64,
    received_at: i64,
    source_ip: IpAddr,
    event_type: String,
    username: String,
    success: bool,
    host: Option<String>,
    service: Option<String>,
    user_agent: Option<String>,
    message: Option<String>,
    details: Option<String>,
}

impl From<EventV1> for Event {
    fn from(v1: EventV1) -> Self {
        Self {
            event_id: v1.event_id,
            timestamp: v1.timestamp,
            received_at: v1.received_at,
            source_ip: Some(v1.source_ip),
            port: None,
            event_type: v1.event_type,
            username: Some(v1.username),
            success: Some(v1.success),
            host: v1.host,
            service: v1.service,
            pid: None,
            user_agent: v1.user_agent,
            message: v1.message,
            details: v1.details,
            raw: None,
            template_id: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An event record exactly as the first release wrote it.
    const V1_RECORD: &str = "010876312d6576656e748080f28183898506c084af828389850600c00002070d4c4f47494e5f415454454d505405616c69636500000103776562000001077b226b223a317d";

    #[test]
    fn event_records_of_the_first_release_still_read() {
        let bytes: Vec<u8> = (0..V1_RECORD.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&V1_RECORD[i..i + 2], 16).unwrap())
            .collect();
        let event = decode_event(&bytes).unwrap();
        assert_eq!(event.event_id, "v1-event");
        assert_eq!(event.source_ip, Some(IpAddr::from([192, 0, 2, 7])));
        assert_eq!(event.username.as_deref(), Some("alice"));
        assert_eq!(event.success, Some(false));
        assert_eq!(event.service.as_deref(), Some("web"));
        assert_eq!(event.timestamp, 1_700_000_000_000_000);
        assert_eq!(event.details.as_deref(), Some(r#"{"k":1}"#));
        assert_eq!(
            (event.port, event.raw, event.template_id),
            (None, None, None)
        );
    }

    #[test]
    fn events_round_trip_in_the_current_version() {
        let mut event = Event::sample("now", 5);
        event.source_ip = None;
        event.username = None;
        event.success = None;
        event.raw = Some("Mar  2 00:00:00 h sshd[1]: x".into());
        event.template_id = Some(3);
        assert_eq!(decode_event(&encode_event(&event)).unwrap(), event);
        assert!(decode_event(&[9, 0]).is_err());
    }
}
