//! Wire types of the JSON API. Domain and storage types are converted here, never serialised
//! directly, so the API can stay stable while storage evolves.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::admin::{TokenInfo, UserInfo};
use crate::detect::engine::Risk;
use crate::event::{Event, format_timestamp};
use crate::stats::Bucket;
use crate::storage::{AlertRecord, AllowEntry, BlockEntry, EventCursor, Role, Scope, Tally};

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

/// `POST /api/v1/logs`.
#[derive(Debug, Serialize)]
pub struct LogsReply {
    pub lines: usize,
    pub accepted: usize,
    pub duplicates: usize,
    pub unparsed: usize,
}

/// A page of `GET /api/v1/alerts`.
#[derive(Debug, Serialize)]
pub struct AlertPageDto {
    pub alerts: Vec<AlertDto>,
    /// Pass as `cursor` for the next (older) page; null on the last page.
    pub next_cursor: Option<String>,
}

/// `GET /api/v1/alerts/{id}`: the alert with its evidence events.
#[derive(Debug, Serialize)]
pub struct AlertDetailDto {
    #[serde(flatten)]
    pub alert: AlertDto,
    pub evidence_events: Vec<EventDto>,
}

/// An address on the blocklist (`GET /api/v1/blocklist?format=json`).
#[derive(Debug, Serialize)]
pub struct BlockDto {
    pub ip: String,
    pub reason: String,
    pub rule: String,
    pub alert_id: u64,
    pub expires_at: String,
}

impl From<BlockEntry> for BlockDto {
    fn from(e: BlockEntry) -> Self {
        Self {
            expires_at: format_timestamp(e.expires_at),
            ip: e.ip,
            reason: e.reason,
            rule: e.rule,
            alert_id: e.alert_id,
        }
    }
}

#[derive(Debug, Serialize)]
pub struct BlocklistDto {
    pub generated_at: String,
    pub count: usize,
    pub addresses: Vec<BlockDto>,
}

/// A network kept off the blocklist; `by` is `config` (and `at` null) for the configuration's.
#[derive(Debug, Serialize)]
pub struct AllowDto {
    pub network: String,
    pub note: String,
    pub by: String,
    pub at: Option<String>,
}

impl From<AllowEntry> for AllowDto {
    fn from(e: AllowEntry) -> Self {
        Self {
            network: e.network,
            note: e.note,
            by: e.by,
            at: Some(format_timestamp(e.at)),
        }
    }
}

#[derive(Debug, Serialize)]
pub struct AllowlistDto {
    pub networks: Vec<AllowDto>,
}

/// A template of the miner (`GET /api/v1/templates`).
#[derive(Debug, Serialize)]
pub struct TemplateDto {
    pub id: u32,
    pub template: String,
    pub count: u64,
}

#[derive(Debug, Serialize)]
pub struct TemplatesDto {
    pub templates: Vec<TemplateDto>,
}

/// Alerts opened in a bucket, by severity.
#[derive(Debug, Serialize)]
pub struct SeverityCounts {
    pub low: u64,
    pub medium: u64,
    pub high: u64,
    pub critical: u64,
}

/// A bucket of `GET /api/v1/stats/timeline`.
#[derive(Debug, Serialize)]
pub struct BucketDto {
    pub start: String,
    pub events: u64,
    pub failures: u64,
    pub successes: u64,
    pub alerts: SeverityCounts,
}

impl From<Bucket> for BucketDto {
    fn from(b: Bucket) -> Self {
        let [low, medium, high, critical] = b.alerts;
        Self {
            start: format_timestamp(b.start),
            events: b.events,
            failures: b.failures,
            successes: b.successes,
            alerts: SeverityCounts {
                low,
                medium,
                high,
                critical,
            },
        }
    }
}

#[derive(Debug, Serialize)]
pub struct TimelineDto {
    pub step_minutes: i64,
    pub buckets: Vec<BucketDto>,
}

/// An entry of `GET /api/v1/stats/top`.
#[derive(Debug, Serialize)]
pub struct TallyDto {
    pub key: String,
    pub events: u64,
    pub failures: u64,
}

impl From<Tally> for TallyDto {
    fn from(t: Tally) -> Self {
        Self {
            key: t.key,
            events: t.events,
            failures: t.failures,
        }
    }
}

#[derive(Debug, Serialize)]
pub struct TopDto {
    pub items: Vec<TallyDto>,
}

/// `GET /health`.
#[derive(Debug, Serialize)]
pub struct HealthDto {
    pub status: &'static str,
}

/// `GET /ready` when the store answers.
#[derive(Debug, Serialize)]
pub struct ReadyDto {
    pub status: &'static str,
    pub events: u64,
    pub commits: u64,
    /// Null when syslog is not received.
    pub syslog: Option<SyslogDto>,
    pub index: IndexDto,
    pub uptime_secs: u64,
}

#[derive(Debug, Serialize)]
pub struct SyslogDto {
    pub addr: String,
    pub received: u64,
    pub dropped: u64,
}

#[derive(Debug, Serialize)]
pub struct IndexDto {
    pub documents: u64,
    pub rebuilding: bool,
    /// Store commits whose events are not searchable yet.
    pub lag_commits: u64,
}

/// `POST /api/v1/tokens`: the secret, shown once, and the token's listing.
#[derive(Debug, Serialize)]
pub struct TokenCreatedDto {
    pub token: String,
    pub info: TokenInfo,
}

#[derive(Debug, Serialize)]
pub struct TokenDto {
    pub info: TokenInfo,
}

#[derive(Debug, Serialize)]
pub struct TokensDto {
    pub tokens: Vec<TokenInfo>,
}

#[derive(Debug, Serialize)]
pub struct UserDto {
    pub user: UserInfo,
}

#[derive(Debug, Serialize)]
pub struct UsersDto {
    pub users: Vec<UserInfo>,
}

/// The messages of `GET /api/v1/monitor/ws`.
#[derive(Debug, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum LiveMessage {
    /// First on every connection.
    Hello {
        stored_total: u64,
        rate_per_sec: u64,
    },
    /// An alert opened.
    Alert { alert: Box<AlertDto> },
    /// Events stored since the last `counts`.
    Counts {
        at: String,
        stored_total: u64,
        events: u64,
        failures: u64,
        successes: u64,
        rate_per_sec: u64,
        active_alerts: u64,
    },
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
