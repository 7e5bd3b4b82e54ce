//! The normalised event every ingest path produces and the store keeps.
//!
//! Field values are checked once, when an event is built from outside input (`ingest`), so the
//! rest of the appliance can rely on them: a timestamp is a valid instant, an IP is an IP, text
//! fields have bounded length and no control characters.

use std::fmt;
use std::net::IpAddr;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// Longest accepted `event_id`, in bytes.
pub const MAX_EVENT_ID_LEN: usize = 128;
/// Longest accepted `username`, `host`, `service` or `event_type`, in bytes.
pub const MAX_NAME_LEN: usize = 256;
/// Longest accepted `user_agent`, in bytes.
pub const MAX_USER_AGENT_LEN: usize = 1024;
/// Longest accepted `message`, in bytes.
pub const MAX_MESSAGE_LEN: usize = 16 * 1024;
/// Longest accepted `details` object, serialised, in bytes.
pub const MAX_DETAILS_LEN: usize = 32 * 1024;

/// A login or authentication event, as stored.
///
/// Events come from the JSON API (which requires `source_ip`, `username` and `success`) or from
/// raw log lines (where a line may carry none of them). The derived serde impls define the
/// on-disk (postcard) encoding only; the wire format lives in `api::dto`. The storage layer
/// prefixes every record with a format version, and reads records of earlier versions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    /// Client-chosen or generated identifier, unique across the store.
    pub event_id: String,
    /// When the event happened, microseconds since the Unix epoch (UTC).
    pub timestamp: i64,
    /// When the appliance received it, microseconds since the Unix epoch (UTC).
    pub received_at: i64,
    pub source_ip: Option<IpAddr>,
    pub port: Option<u16>,
    /// Upper-case kind of event, for example `LOGIN_ATTEMPT`.
    pub event_type: String,
    pub username: Option<String>,
    /// `None` when the event is neither a success nor a failure (a notice, a session ending).
    pub success: Option<bool>,
    pub host: Option<String>,
    /// The service or, for a log line, the program that wrote it (`sshd`).
    pub service: Option<String>,
    pub pid: Option<u32>,
    pub user_agent: Option<String>,
    pub message: Option<String>,
    /// A JSON object, kept as its compact text.
    pub details: Option<String>,
    /// The line as received, for events read from raw logs (whose `message` is then left
    /// empty: it is the line without its syslog header).
    pub raw: Option<String>,
    /// The template the miner placed the line's message in.
    pub template_id: Option<u32>,
}

impl Event {
    /// Whether the event is a failure that stands for no attempt: its details say `"count":
    /// 0`, as a log line does that tells again an attempt an earlier line of its connection
    /// counted (`Failed password` after `Invalid user`). Such a line is kept as the failure it
    /// reports, and counted by no rule, chart or tally.
    #[must_use]
    pub fn tells_counted_failure(&self) -> bool {
        self.success == Some(false)
            && self.details.as_deref().is_some_and(|details| {
                details.match_indices("\"count\":").any(|(at, key)| {
                    let value = details[at + key.len()..].trim_start();
                    value.starts_with('0')
                        && !value[1..].starts_with(|c: char| c.is_ascii_digit() || c == '.')
                })
            })
    }
}

#[cfg(test)]
impl Event {
    /// A failed login of `alice` from 192.0.2.1, for tests to adjust.
    #[must_use]
    pub fn sample(event_id: &str, timestamp: i64) -> Self {
        Self {
            event_id: event_id.into(),
            timestamp,
            received_at: timestamp,
            source_ip: Some(std::net::IpAddr::from([192, 0, 2, 1])),
            port: None,
            event_type: "LOGIN_ATTEMPT".into(),
            username: Some("alice".into()),
            success: Some(false),
            host: None,
            service: None,
            pid: None,
            user_agent: None,
            message: None,
            details: None,
            raw: None,
            template_id: None,
        }
    }
}

/// Why one field of an incoming event was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    pub field: &'static str,
    pub reason: String,
}

impl FieldError {
    pub fn new(field: &'static str, reason: impl Into<String>) -> Self {
        Self {
            field,
            reason: reason.into(),
        }
    }
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "field `{}`: {}", self.field, self.reason)
    }
}

impl std::error::Error for FieldError {}

/// Parses an RFC 3339 timestamp into microseconds since the epoch.
pub fn parse_timestamp(field: &'static str, text: &str) -> Result<i64, FieldError> {
    let parsed = OffsetDateTime::parse(text, &Rfc3339).map_err(|_| {
        FieldError::new(
            field,
            "expected an RFC 3339 timestamp such as 2024-05-01T12:00:00Z",
        )
    })?;
    Ok((parsed.unix_timestamp_nanos() / 1_000) as i64)
}

/// How far ahead of the receiving clock an event's time may be (clock skew), in µs.
pub const MAX_CLOCK_SKEW_MICROS: i64 = 86_400_000_000;

/// Whether `micros` is a plausible time for an event received at `received_at`: from 1970 to
/// [`MAX_CLOCK_SKEW_MICROS`] after its arrival.
#[must_use]
pub fn is_plausible_time(micros: i64, received_at: i64) -> bool {
    (0..=received_at.saturating_add(MAX_CLOCK_SKEW_MICROS)).contains(&micros)
}

/// Parses the time of an event received at `received_at` (µs): RFC 3339, from 1970 to one day
/// after `received_at`. Times outside that are refused: nothing happened before the epoch
/// that this appliance watches, and an event from the future is a wrong clock or a forgery.
pub fn parse_event_time(
    field: &'static str,
    text: &str,
    received_at: i64,
) -> Result<i64, FieldError> {
    let micros = parse_timestamp(field, text)?;
    if micros < 0 {
        return Err(FieldError::new(field, "is before 1970-01-01T00:00:00Z"));
    }
    if !is_plausible_time(micros, received_at) {
        return Err(FieldError::new(
            field,
            "is more than a day after the time it was received (check the sender's clock)",
        ));
    }
    Ok(micros)
}

/// Formats microseconds since the epoch as RFC 3339 in UTC, with microsecond precision when needed.
#[must_use]
pub fn format_timestamp(micros: i64) -> String {
    let nanos = i128::from(micros) * 1_000;
    match OffsetDateTime::from_unix_timestamp_nanos(nanos) {
        Ok(t) => t.format(&Rfc3339).unwrap_or_else(|_| micros.to_string()),
        Err(_) => micros.to_string(),
    }
}

/// Parses an IPv4 or IPv6 address.
pub fn parse_ip(field: &'static str, text: &str) -> Result<IpAddr, FieldError> {
    text.parse::<IpAddr>()
        .map_err(|_| FieldError::new(field, "expected an IPv4 or IPv6 address"))
}

/// Checks a free-text field: bounded length and no control characters other than tab.
pub fn check_text(field: &'static str, text: &str, max: usize) -> Result<(), FieldError> {
    if text.len() > max {
        return Err(FieldError::new(field, format!("longer than {max} bytes")));
    }
    if text.chars().any(|c| c.is_control() && c != '\t') {
        return Err(FieldError::new(field, "contains control characters"));
    }
    Ok(())
}

/// Checks a name-like field: non-empty, bounded, no control characters.
pub fn check_name(field: &'static str, text: &str, max: usize) -> Result<(), FieldError> {
    if text.is_empty() {
        return Err(FieldError::new(field, "must not be empty"));
    }
    check_text(field, text, max)
}

/// Checks an `event_type`: letters, digits, `_`, `.`, `:` and `-`; stored upper-case.
pub fn normalise_event_type(text: &str) -> Result<String, FieldError> {
    check_name("event_type", text, MAX_NAME_LEN)?;
    if !text
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | ':' | '-'))
    {
        return Err(FieldError::new(
            "event_type",
            "may contain only letters, digits, '_', '.', ':' and '-'",
        ));
    }
    Ok(text.to_ascii_uppercase())
}

/// Checks an `event_id`: 1 to 128 bytes of printable text without spaces.
pub fn check_event_id(text: &str) -> Result<(), FieldError> {
    check_name("event_id", text, MAX_EVENT_ID_LEN)?;
    if text.chars().any(char::is_whitespace) {
        return Err(FieldError::new("event_id", "must not contain whitespace"));
    }
    Ok(())
}

/// A fresh event identifier in UUID version 7 form: 48 bits of Unix milliseconds, then random.
///
/// Time-ordered ids keep inserts into the `event_id` index local (new ids land next to each
/// other), where random ids would touch a different index page for every event.
#[must_use]
pub fn generate_event_id() -> String {
    let mut bytes = crate::keys::random_bytes::<16>();
    let millis = (crate::now_micros() / 1_000).max(0) as u64;
    bytes[..6].copy_from_slice(&millis.to_be_bytes()[2..]);
    bytes[6] = (bytes[6] & 0x0f) | 0x70;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    let hex = crate::keys::hex(&bytes);
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_round_trip_in_utc() {
        let micros = parse_timestamp("timestamp", "2023-10-27T12:00:00.123456+02:00").unwrap();
        assert_eq!(format_timestamp(micros), "2023-10-27T10:00:00.123456Z");
        assert!(parse_timestamp("timestamp", "2023-10-27 10:00").is_err());
        assert!(parse_timestamp("timestamp", "yesterday").is_err());
        let now = parse_timestamp("now", "2026-12-03T08:00:00Z").unwrap();
        for (text, ok) in [
            ("2026-12-03T08:00:00Z", true),
            ("1970-01-01T00:00:00Z", true),
            ("2026-12-04T07:59:59Z", true),
            ("0000-01-01T00:00:00Z", false),
            ("1969-12-31T23:59:59Z", false),
            ("9999-12-31T23:59:59-23:59", false),
            ("2026-12-04T08:00:01Z", false),
        ] {
            assert_eq!(
                parse_event_time("timestamp", text, now).is_ok(),
                ok,
                "{text}"
            );
        }
    }

    #[test]
    fn event_types_are_normalised_and_checked() {
        assert_eq!(
            normalise_event_type("login_attempt").unwrap(),
            "LOGIN_ATTEMPT"
        );
        assert!(normalise_event_type("").is_err());
        assert!(normalise_event_type("LOGIN ATTEMPT").is_err());
    }

    #[test]
    fn text_rejects_control_characters_and_long_values() {
        assert!(check_text("message", "tab\tis fine", 100).is_ok());
        assert!(check_text("message", "bell\u{7}", 100).is_err());
        assert!(check_text("message", &"x".repeat(101), 100).is_err());
    }

    #[test]
    fn generated_ids_are_time_ordered_uuids() {
        let a = generate_event_id();
        std::thread::sleep(std::time::Duration::from_millis(2));
        let b = generate_event_id();
        assert_eq!(a.len(), 36);
        assert_eq!(&a[14..15], "7");
        assert!(a < b, "{a} !< {b}");
    }

    #[test]
    fn a_failure_told_again_is_known_by_its_count() {
        let mut event = Event::sample("e1", 0);
        assert!(!event.tells_counted_failure());
        for (details, told) in [
            (r#"{"count":0,"invalid_user":true}"#, true),
            (r#"{"count": 0}"#, true),
            (r#"{"count":0.5}"#, false),
            (r#"{"count":3}"#, false),
            (r#"{"counter":0}"#, false),
            (r#"{"invalid_user":true}"#, false),
        ] {
            event.details = Some(details.into());
            assert_eq!(event.tells_counted_failure(), told, "{details}");
        }
        event.details = Some(r#"{"count":0}"#.into());
        event.success = None;
        assert!(!event.tells_counted_failure());
    }
}
