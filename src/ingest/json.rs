//! Decoding `POST /ingest` bodies: one JSON event, a JSON array of events, or NDJSON.
//!
//! A body that is not valid JSON is refused whole, with the line and column of the error, and
//! nothing is stored. Inside a valid body each event stands alone: an event with a missing or
//! malformed field is rejected by its index with the field named, and the others go on.
//! Well-formed events take a borrowing fast path; only a failing event is parsed a second time,
//! generically, to say exactly which field is wrong.

use std::borrow::Cow;

use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{Map, Value};

use crate::event::{self, Event, FieldError};

/// Most events one request may carry.
pub const MAX_EVENTS_PER_REQUEST: usize = 100_000;

/// How the body is framed, from its `Content-Type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// `application/json`: one object or an array of objects.
    Json,
    /// `application/x-ndjson`: one object per line.
    Ndjson,
}

/// An event refused on its own, by its position in the body (0-based).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    pub index: usize,
    pub error: String,
}

/// A decoded body.
#[derive(Debug, Clone, Default)]
pub struct Decoded {
    pub events: Vec<Event>,
    pub rejected: Vec<Rejection>,
    /// The body was a single JSON object (not an array or NDJSON).
    pub single: bool,
}

/// Why a whole body was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("invalid JSON at line {line}, column {column}: {message}")]
    Syntax {
        line: usize,
        column: usize,
        message: String,
    },
    #[error("request body is empty")]
    Empty,
    #[error("expected a JSON object or an array of objects")]
    NotObjectOrArray,
    #[error("too many events in one request (at most {MAX_EVENTS_PER_REQUEST})")]
    TooMany,
}

/// The event as sent, borrowing from the body where no unescaping is needed.
#[derive(Deserialize)]
struct WireEvent<'a> {
    #[serde(borrow, default)]
    event_id: Option<Cow<'a, str>>,
    #[serde(borrow)]
    timestamp: Cow<'a, str>,
    #[serde(borrow)]
    source_ip: Cow<'a, str>,
    #[serde(borrow)]
    event_type: Cow<'a, str>,
    #[serde(borrow)]
    username: Cow<'a, str>,
    success: bool,
    #[serde(borrow, default)]
    host: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    service: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    user_agent: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    message: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    details: Option<&'a RawValue>,
}

/// Decodes a body received at `received_at` (µs).
pub fn decode(body: &[u8], format: Format, received_at: i64) -> Result<Decoded, DecodeError> {
    let first = body.iter().find(|b| !b.is_ascii_whitespace());
    let Some(&first) = first else {
        return Err(DecodeError::Empty);
    };
    let mut decoded = Decoded::default();
    match format {
        Format::Json if first == b'[' => {
            // The common case in one pass; any error takes the item-by-item path, which finds
            // out whether the body or an item is at fault.
            if let Ok(items) = serde_json::from_slice::<Vec<WireEvent<'_>>>(body) {
                if items.len() > MAX_EVENTS_PER_REQUEST {
                    return Err(DecodeError::TooMany);
                }
                for (index, wire) in items.into_iter().enumerate() {
                    decoded.push_built(index, build(wire, received_at));
                }
                return Ok(decoded);
            }
            let items: Vec<&RawValue> = serde_json::from_slice(body).map_err(|e| syntax(&e, 0))?;
            if items.len() > MAX_EVENTS_PER_REQUEST {
                return Err(DecodeError::TooMany);
            }
            for (index, raw) in items.into_iter().enumerate() {
                decoded.push(index, raw, received_at);
            }
        }
        Format::Json => {
            let raw: &RawValue = serde_json::from_slice(body).map_err(|e| syntax(&e, 0))?;
            if first != b'{' {
                return Err(DecodeError::NotObjectOrArray);
            }
            decoded.single = true;
            decoded.push(0, raw, received_at);
        }
        Format::Ndjson => {
            let mut index = 0;
            for (line_no, line) in body.split(|&b| b == b'\n').enumerate() {
                if line.iter().all(u8::is_ascii_whitespace) {
                    continue;
                }
                if index == MAX_EVENTS_PER_REQUEST {
                    return Err(DecodeError::TooMany);
                }
                // One pass for a well-formed event; the two-pass path only for errors.
                if let Ok(wire) = serde_json::from_slice::<WireEvent<'_>>(line) {
                    decoded.push_built(index, build(wire, received_at));
                } else {
                    let raw: &RawValue =
                        serde_json::from_slice(line).map_err(|e| syntax(&e, line_no))?;
                    decoded.push(index, raw, received_at);
                }
                index += 1;
            }
        }
    }
    Ok(decoded)
}

impl Decoded {
    fn push(&mut self, index: usize, raw: &RawValue, received_at: i64) {
        self.push_built(index, parse_event(raw, received_at));
    }

    fn push_built(&mut self, index: usize, result: Result<Event, FieldError>) {
        match result {
            Ok(event) => self.events.push(event),
            Err(error) => self.rejected.push(Rejection {
                index,
                error: error.to_string(),
            }),
        }
    }
}

fn syntax(err: &serde_json::Error, line_offset: usize) -> DecodeError {
    DecodeError::Syntax {
        line: err.line() + line_offset,
        column: err.column(),
        message: strip_position(&err.to_string()),
    }
}

/// `serde_json` appends " at line L column C"; the position is reported separately.
fn strip_position(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(at) => message[..at].to_string(),
        None => message.to_string(),
    }
}

/// Parses and checks one event.
pub fn parse_event(raw: &RawValue, received_at: i64) -> Result<Event, FieldError> {
    match serde_json::from_str::<WireEvent<'_>>(raw.get()) {
        Ok(wire) => build(wire, received_at),
        Err(err) => Err(explain(raw.get())
            .unwrap_or_else(|| FieldError::new("event", strip_position(&err.to_string())))),
    }
}

fn build(wire: WireEvent<'_>, received_at: i64) -> Result<Event, FieldError> {
    let event_id = match wire.event_id {
        Some(id) => {
            event::check_event_id(&id)?;
            id.into_owned()
        }
        None => event::generate_event_id(),
    };
    let timestamp = event::parse_event_time("timestamp", &wire.timestamp, received_at)?;
    let source_ip = event::parse_ip("source_ip", &wire.source_ip)?;
    let event_type = event::normalise_event_type(&wire.event_type)?;
    event::check_name("username", &wire.username, event::MAX_NAME_LEN)?;
    let details = match wire.details {
        None => None,
        Some(raw) => {
            let text = raw.get().trim();
            if text == "null" {
                None
            } else if !text.starts_with('{') {
                return Err(FieldError::new("details", "expected a JSON object"));
            } else if text.len() > event::MAX_DETAILS_LEN {
                return Err(FieldError::new(
                    "details",
                    format!("longer than {} bytes", event::MAX_DETAILS_LEN),
                ));
            } else {
                Some(text.to_string())
            }
        }
    };
    Ok(Event {
        event_id,
        timestamp,
        received_at,
        source_ip: Some(source_ip),
        port: None,
        event_type,
        username: Some(wire.username.into_owned()),
        success: Some(wire.success),
        host: optional("host", wire.host, event::MAX_NAME_LEN)?,
        service: optional("service", wire.service, event::MAX_NAME_LEN)?,
        pid: None,
        user_agent: optional("user_agent", wire.user_agent, event::MAX_USER_AGENT_LEN)?,
        message: optional("message", wire.message, event::MAX_MESSAGE_LEN)?,
        details,
        raw: None,
        template_id: None,
    })
}

/// Checks an optional text field and takes ownership of it.
fn optional(
    field: &'static str,
    value: Option<Cow<'_, str>>,
    max: usize,
) -> Result<Option<String>, FieldError> {
    match value {
        Some(text) => {
            event::check_text(field, &text, max)?;
            Ok(Some(text.into_owned()))
        }
        None => Ok(None),
    }
}

/// Finds the first field of a failed event that has the wrong shape, to name it.
fn explain(text: &str) -> Option<FieldError> {
    let Ok(value) = serde_json::from_str::<Value>(text) else {
        return None;
    };
    let Value::Object(map) = value else {
        return Some(FieldError::new("event", "expected a JSON object"));
    };
    let required_str = ["timestamp", "source_ip", "event_type", "username"];
    let optional_str = ["event_id", "host", "service", "user_agent", "message"];
    for &field in optional_str.iter().take(1).chain(required_str.iter()) {
        if let Some(err) = check_field(&map, field, Shape::String, field != "event_id") {
            return Some(err);
        }
    }
    if let Some(err) = check_field(&map, "success", Shape::Bool, true) {
        return Some(err);
    }
    for &field in &optional_str[1..] {
        if let Some(err) = check_field(&map, field, Shape::String, false) {
            return Some(err);
        }
    }
    check_field(&map, "details", Shape::Object, false)
}

#[derive(Clone, Copy)]
enum Shape {
    String,
    Bool,
    Object,
}

fn check_field(
    map: &Map<String, Value>,
    name: &'static str,
    shape: Shape,
    required: bool,
) -> Option<FieldError> {
    let field = name;
    match (map.get(field), shape) {
        (None | Some(Value::Null), _) if required => Some(FieldError::new(name, "is required")),
        (None | Some(Value::Null), _)
        | (Some(Value::String(_)), Shape::String)
        | (Some(Value::Bool(_)), Shape::Bool)
        | (Some(Value::Object(_)), Shape::Object) => None,
        (Some(other), Shape::String) => Some(FieldError::new(
            name,
            format!("expected a string, got {}", kind(other)),
        )),
        (Some(other), Shape::Bool) => Some(FieldError::new(
            name,
            format!("expected true or false, got {}", kind(other)),
        )),
        (Some(other), Shape::Object) => Some(FieldError::new(
            name,
            format!("expected a JSON object, got {}", kind(other)),
        )),
    }
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"{"event_id":"e1","timestamp":"2023-10-27T10:00:00Z","source_ip":"10.0.0.1","event_type":"login_attempt","username":"admin","success":false}"#;

    /// Accepted event ids and (index, error) of rejected events.
    type Outcome = (Vec<String>, Vec<(usize, String)>);

    /// When the bodies of these tests arrive (µs): 2026-01-01.
    const NOW: i64 = 1_767_225_600_000_000;

    fn check(body: &str, format: Format) -> Result<Outcome, DecodeError> {
        decode(body.as_bytes(), format, NOW).map(|d| {
            (
                d.events.into_iter().map(|e| e.event_id).collect(),
                d.rejected.into_iter().map(|r| (r.index, r.error)).collect(),
            )
        })
    }

    #[test]
    fn single_array_and_ndjson_bodies_decode() {
        let d = decode(GOOD.as_bytes(), Format::Json, NOW).unwrap();
        assert!(d.single);
        assert_eq!(d.events[0].event_type, "LOGIN_ATTEMPT");
        assert_eq!(d.events[0].received_at, NOW);
        let array = format!("[{GOOD},{}]", GOOD.replace("e1", "e2"));
        assert_eq!(check(&array, Format::Json).unwrap().0, ["e1", "e2"]);
        let ndjson = format!("{GOOD}\n\n{}\n", GOOD.replace("e1", "e3"));
        assert_eq!(check(&ndjson, Format::Ndjson).unwrap().0, ["e1", "e3"]);
    }

    #[test]
    fn syntax_errors_point_at_line_and_column() {
        let err = check("[\n{\"a\": }\n]", Format::Json).unwrap_err();
        assert!(
            matches!(
                err,
                DecodeError::Syntax {
                    line: 2,
                    column: 7,
                    ..
                }
            ),
            "{err:?}"
        );
        let ndjson = format!("{GOOD}\n{GOOD}\n{{oops\n");
        let err = check(&ndjson, Format::Ndjson).unwrap_err();
        assert!(
            matches!(err, DecodeError::Syntax { line: 3, .. }),
            "{err:?}"
        );
        assert_eq!(check("  ", Format::Json).unwrap_err(), DecodeError::Empty);
        assert_eq!(
            check("42", Format::Json).unwrap_err(),
            DecodeError::NotObjectOrArray
        );
    }

    #[test]
    fn bad_fields_are_rejected_by_index_and_name() {
        let cases = [
            (
                GOOD.replace("false", "\"no\""),
                "field `success`: expected true or false, got a string",
            ),
            (
                GOOD.replace("10.0.0.1", "10.0.0.300"),
                "field `source_ip`: expected an IPv4 or IPv6 address",
            ),
            (
                GOOD.replace("2023-10-27T10:00:00Z", "27/10/2023"),
                "field `timestamp`: expected an RFC 3339 timestamp",
            ),
            (
                GOOD.replace(r#""username":"admin","#, ""),
                "field `username`: is required",
            ),
            (
                GOOD.replace(r#""success":false"#, r#""success":false,"details":[1]"#),
                "field `details`: expected a JSON object",
            ),
            (
                GOOD.replace(r#""e1""#, "17"),
                "field `event_id`: expected a string, got a number",
            ),
            (
                "\"just a string\"".to_string(),
                "field `event`: expected a JSON object",
            ),
            (
                GOOD.replace("2023-10-27T10:00:00Z", "0000-01-01T00:00:00Z"),
                "field `timestamp`: is before 1970",
            ),
            (
                GOOD.replace("2023-10-27T10:00:00Z", "9999-12-31T23:59:59-23:59"),
                "field `timestamp`: is more than a day after",
            ),
        ];
        for (bad, expected) in cases {
            let body = format!("[{GOOD},{bad}]");
            let (ok, rejected) = check(&body, Format::Json).unwrap();
            assert_eq!(ok, ["e1"], "{bad}");
            assert_eq!(rejected.len(), 1, "{bad}");
            assert_eq!(rejected[0].0, 1);
            assert!(
                rejected[0].1.starts_with(expected),
                "{bad}: {}",
                rejected[0].1
            );
        }
    }

    #[test]
    fn ipv6_escapes_and_missing_ids_are_handled() {
        let body = r#"{"timestamp":"2023-10-27T10:00:00Z","source_ip":"2001:db8::1","event_type":"LOGIN","username":"j\u00fcrgen","success":true,"details":{"mfa":true}}"#;
        let d = decode(body.as_bytes(), Format::Json, NOW).unwrap();
        let e = &d.events[0];
        assert_eq!(e.username.as_deref(), Some("jürgen"));
        assert_eq!(e.source_ip, "2001:db8::1".parse().ok());
        assert_eq!(e.details.as_deref(), Some(r#"{"mfa":true}"#));
        assert_eq!(e.event_id.len(), 36);
    }
}
