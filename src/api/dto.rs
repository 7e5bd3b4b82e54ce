//! Wire types of the JSON API. Domain and storage types are converted here, never serialised
//! directly, so the API can stay stable while storage evolves.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::detect::engine::Risk;
use crate::event::{Event, format_timestamp};
use crate::storage::{AlertRecord, EventCursor, Role, Scope};

#[derive(Debug, Serialize)]
pub struct EventDto {
    pub event_id: String,
    pub timestamp: String,
    pub received_at: String,
    /// Absent (null) for a log line that names no address.
    pub source_ip: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    pub event_type: String,
    /// Null for a log line that names no user.
    pub username: Option<String>,
    /// Null for an event that is neither a success nor a failure.
    pub success: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub service: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pid: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_agent: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub details: Option<Box<RawValue>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub raw: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub template_id: Option<u32>,
}

impl From<Event> for EventDto {
    fn from(e: Event) -> Self {
        Self {
            timestamp: format_timestamp(e.timestamp),
            received_at: format_timestamp(e.received_at),
            source_ip: e.source_ip.map(|ip| ip.to_string()),
            port: e.port,
            // Stored details were validated as a JSON object on the way in.
            details: e.details.and_then(|d| RawValue::from_string(d).ok()),
            event_id: e.event_id,
            event_type: e.event_type,
            username: e.username,
            success: e.success,
            host: e.host,
            service: e.service,
            pid: e.pid,
            user_agent: e.user_agent,
            // A log line's message is its raw text without the syslog header.
            message: e.message.or_else(|| {
                e.raw
                    .as_deref()
                    .map(|raw| crate::ingest::parse::syslog::split(raw).message.to_string())
            }),
            raw: e.raw,
            template_id: e.template_id,
        }
    }
}

#[derive(Debug, Serialize)]
pub struct EventPageDto {
    pub events: Vec<EventDto>,
    /// Pass as `cursor` to get the next (older) page; absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct RejectedDto {
    pub index: usize,
    pub error: String,
}

#[derive(Debug, Serialize)]
pub struct IngestReply {
    pub accepted: usize,
    pub duplicates: usize,
    pub rejected: Vec<RejectedDto>,
    /// For a single event: `risk_score`, `verdict` and `reasons`.
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    pub risk: Option<Risk>,
}

/// Opaque cursor text for an event position.
#[must_use]
pub fn encode_cursor(cursor: EventCursor) -> String {
    URL_SAFE_NO_PAD.encode(format!("{}:{}", cursor.timestamp, cursor.seq))
}

/// Parses text from [`encode_cursor`].
#[must_use]
pub fn decode_cursor(text: &str) -> Option<EventCursor> {
    let raw = URL_SAFE_NO_PAD.decode(text).ok()?;
    let raw = String::from_utf8(raw).ok()?;
    let (ts, seq) = raw.split_once(':')?;
    Some(EventCursor {
        timestamp: ts.parse().ok()?,
        seq: seq.parse().ok()?,
    })
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    pub username: String,
    pub password: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RefreshRequest {
    pub refresh_token: String,
}

#[derive(Debug, Serialize)]
pub struct UserSummary {
    pub username: String,
    pub role: Role,
}

#[derive(Debug, Serialize)]
pub struct LoginReply {
    pub access_token: String,
    pub token_type: &'static str,
    pub expires_in: u64,
    pub refresh_token: String,
    pub user: UserSummary,
}

#[derive(Debug, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum MeReply {
    User {
        username: String,
        role: Role,
    },
    Token {
        id: String,
        name: String,
        scopes: Vec<Scope>,
    },
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenCreateRequest {
    pub name: String,
    pub scopes: Vec<Scope>,
    #[serde(default)]
    pub expires_in_days: Option<u32>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserCreateRequest {
    pub username: String,
    pub password: String,
    pub role: Role,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_garbage_is_refused() {
        let c = EventCursor {
            timestamp: -5,
            seq: 42,
        };
        assert_eq!(decode_cursor(&encode_cursor(c)), Some(c));
        assert_eq!(decode_cursor("not a cursor"), None);
        assert_eq!(decode_cursor(&URL_SAFE_NO_PAD.encode("1:x")), None);
    }
}

/// An alert on the wire.
#[derive(Debug, Serialize)]
pub struct AlertDto {
    pub id: u64,
    pub rule: String,
    pub title: String,
    pub severity: String,
    pub status: &'static str,
    pub entity_type: String,
    pub entity: String,
    pub first_seen: String,
    pub last_seen: String,
    pub count: u64,
    pub peak: u64,
    pub attack: Vec<String>,
    /// Event ids; `GET /api/v1/alerts/{id}` also returns the events themselves.
    pub evidence: Vec<String>,
    /// For a campaign: its member addresses (`GET /api/v1/alerts/{id}` lists them) and their
    /// number.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub members: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub member_count: Option<usize>,
    pub notes: Vec<AlertNoteDto>,
    pub created_at: String,
    pub updated_at: String,
}

#[derive(Debug, Serialize)]
pub struct AlertNoteDto {
    pub at: String,
    pub by: String,
    pub status: &'static str,
    pub text: String,
}

impl From<AlertRecord> for AlertDto {
    fn from(a: AlertRecord) -> Self {
        Self {
            id: a.id,
            rule: a.rule,
            title: a.title,
            severity: a.severity,
            status: a.status.as_str(),
            entity_type: a.entity_type,
            entity: a.entity,
            first_seen: format_timestamp(a.first_seen),
            last_seen: format_timestamp(a.last_seen),
            count: a.count,
            peak: a.peak,
            attack: a.attack,
            evidence: a.evidence,
            members: None,
            member_count: None,
            notes: a
                .notes
                .into_iter()
                .map(|n| AlertNoteDto {
                    at: format_timestamp(n.at),
                    by: n.by,
                    status: n.status.as_str(),
                    text: n.text,
                })
                .collect(),
            created_at: format_timestamp(a.created_at),
            updated_at: format_timestamp(a.updated_at),
        }
    }
}

/// `POST /api/v1/alerts`: an alert raised by hand.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ManualAlertRequest {
    pub title: String,
    pub severity: String,
    pub entity_type: String,
    pub entity: String,
    #[serde(default)]
    pub note: String,
    /// Ids of stored events that show it.
    #[serde(default)]
    pub evidence: Vec<String>,
    /// For an address: put it on the blocklist while the alert is open.
    #[serde(default)]
    pub block: bool,
    #[serde(default)]
    pub attack: Vec<String>,
}

/// `POST /api/v1/allowlist`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AllowRequest {
    pub network: String,
    #[serde(default)]
    pub note: String,
}

/// `PUT /api/v1/alerts/{id}/status`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertStatusRequest {
    pub status: String,
    #[serde(default)]
    pub note: String,
}
