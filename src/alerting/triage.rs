//! What people do about alerts, for the API and the pages alike: change an alert's status with
//! a note, raise an alert by hand (optionally blocking its address), keep networks off the
//! blocklist, and the blocklist as it stands (active alerts of blocking rules, less the
//! allow-lists).

use std::collections::HashSet;

use ipnetwork::IpNetwork;

use crate::config::Settings;
use crate::event;
use crate::storage::{
    AlertNote, AlertRecord, AlertStatus, AlertUpdate, AllowEntry, BlockEntry, MAX_ALERT_EVIDENCE,
    StorageError, Store,
};

/// Rule id of alerts raised by hand, and of those that also block their address.
pub const MANUAL_RULE: &str = "manual";
pub const MANUAL_BLOCK_RULE: &str = "manual-block";
/// Longest note on an alert, in characters.
pub const MAX_NOTE_CHARS: usize = 4096;

#[derive(Debug, thiserror::Error)]
pub enum TriageError {
    /// The request is wrong; the message says how, for the person who sent it.
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// An alert raised by hand.
#[derive(Debug, Clone, Default)]
pub struct ManualAlert {
    pub title: String,
    pub severity: String,
    /// `ip`, `user`, `host` or `campaign`.
    pub entity_type: String,
    pub entity: String,
    pub note: String,
    /// Ids of stored events that show it.
    pub evidence: Vec<String>,
    /// For an address: put it on the blocklist while the alert is active.
    pub block: bool,
    pub attack: Vec<String>,
}

/// Checks and stores an alert raised by `by`, with its first note.
pub fn raise(
    store: &Store,
    alert: ManualAlert,
    by: String,
    now: i64,
) -> Result<AlertRecord, TriageError> {
    let bad = |message: String| TriageError::Invalid(message);
    event::check_name("title", &alert.title, 256).map_err(|e| bad(e.to_string()))?;
    check_note(&alert.note)?;
    if !["low", "medium", "high", "critical"].contains(&alert.severity.as_str()) {
        return Err(bad(
            "severity: expected low, medium, high or critical".into()
        ));
    }
    if !["ip", "user", "host", "campaign"].contains(&alert.entity_type.as_str()) {
        return Err(bad(
            "entity_type: expected ip, user, host or campaign".into()
        ));
    }
    event::check_name("entity", &alert.entity, 256).map_err(|e| bad(e.to_string()))?;
    let entity = if alert.entity_type == "ip" {
        event::parse_ip("entity", &alert.entity)
            .map_err(|e| bad(e.to_string()))?
            .to_string()
    } else {
        alert.entity.clone()
    };
    if alert.block && alert.entity_type != "ip" {
        return Err(bad(
            "block: only an alert on an address (entity_type ip) can block".into(),
        ));
    }
    if alert.block
        && let Ok(ip) = entity.parse::<std::net::IpAddr>()
        && let Some(kind) = never_blocked(ip)
    {
        return Err(bad(format!(
            "block: {ip} is {kind} address, which is never put on the blocklist"
        )));
    }
    if alert.evidence.len() > MAX_ALERT_EVIDENCE {
        return Err(bad(format!(
            "evidence: at most {MAX_ALERT_EVIDENCE} event ids"
        )));
    }
    if alert.attack.len() > 16 || alert.attack.iter().any(|a| a.is_empty() || a.len() > 32) {
        return Err(bad("attack: at most 16 technique ids such as T1110".into()));
    }
    let mut times = Vec::new();
    for id in &alert.evidence {
        match store.get_event(id)? {
            Some(event) => times.push(event.timestamp),
            None => return Err(bad(format!("evidence: no stored event `{id}`"))),
        }
    }
    let update = AlertUpdate {
        rule: if alert.block {
            MANUAL_BLOCK_RULE
        } else {
            MANUAL_RULE
        }
        .to_string(),
        title: alert.title,
        severity: alert.severity,
        entity_type: alert.entity_type,
        entity,
        first_seen: times.iter().copied().min().unwrap_or(now),
        last_seen: times.iter().copied().max().unwrap_or(now),
        count: 1,
        matches: 1,
        attack: alert.attack,
        evidence: alert.evidence,
        members: Vec::new(),
    };
    let ids = store.record_findings(&[update], now)?;
    let id = *ids
        .first()
        .ok_or_else(|| bad("the alert was not recorded".into()))?;
    let note = AlertNote {
        at: now,
        by,
        status: AlertStatus::Open,
        text: if alert.note.is_empty() {
            "raised by hand".to_string()
        } else {
            alert.note
        },
    };
    store
        .set_alert_status(id, AlertStatus::Open, note)?
        .ok_or_else(|| bad("the alert was not recorded".into()))
}

fn check_note(note: &str) -> Result<(), TriageError> {
    event::check_text("note", note, MAX_NOTE_CHARS).map_err(|e| TriageError::Invalid(e.to_string()))
}

/// Sets the status of alert `id` with a note by `by`; `None` when there is no such alert.
pub fn set_status(
    store: &Store,
    id: u64,
    status: AlertStatus,
    note: String,
    by: String,
    now: i64,
) -> Result<Option<AlertRecord>, TriageError> {
    check_note(&note)?;
    let note = AlertNote {
        at: now,
        by: by.clone(),
        status,
        text: note,
    };
    let updated = store.set_alert_status(id, status, note)?;
    if updated.is_some() {
        tracing::info!(alert = id, status = status.as_str(), by = %by, "alert status changed");
    }
    Ok(updated)
}

/// A network from its CIDR text, or one address (as a /32 or /128); the host bits are cleared.
pub fn parse_network(text: &str) -> Result<IpNetwork, String> {
    let text = text.trim();
    let network: IpNetwork = if text.contains('/') {
        text.parse()
            .map_err(|_| format!("`{text}` is not an address or a network such as 192.0.2.0/24"))?
    } else {
        event::parse_ip("network", text)
            .map_err(|_| format!("`{text}` is not an address or a network such as 192.0.2.0/24"))?
            .into()
    };
    IpNetwork::new(network.network(), network.prefix()).map_err(|e| e.to_string())
}

/// Why `ip` can never be blocked (the appliance itself, or no single host), if it cannot.
fn never_blocked(ip: std::net::IpAddr) -> Option<&'static str> {
    let ip = match ip {
        std::net::IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, std::net::IpAddr::V4),
        v4 @ std::net::IpAddr::V4(_) => v4,
    };
    if ip.is_loopback() {
        Some("a loopback")
    } else if ip.is_unspecified() {
        Some("the unspecified")
    } else if ip.is_multicast() || ip == std::net::IpAddr::from([255, 255, 255, 255]) {
        Some("a multicast or broadcast")
    } else {
        None
    }
}

/// The widest networks an analyst may allow-list (wider ones belong in `blocklist_allow`).
const WIDEST_ALLOWED_V4: u8 = 8;
const WIDEST_ALLOWED_V6: u8 = 32;

/// Adds a network to the allow-list kept in the store. Networks wider than a /8 (IPv6: /32)
/// are refused: one entry would switch the blocklist off for much of the Internet.
pub fn allow(
    store: &Store,
    network: &str,
    note: &str,
    by: String,
    now: i64,
) -> Result<AllowEntry, TriageError> {
    let network = parse_network(network).map_err(TriageError::Invalid)?;
    let widest = if network.is_ipv4() {
        WIDEST_ALLOWED_V4
    } else {
        WIDEST_ALLOWED_V6
    };
    if network.prefix() < widest {
        return Err(TriageError::Invalid(format!(
            "network: {network} is wider than a /{widest}, the widest the allow-list takes; \
             wider networks belong in blocklist_allow of the configuration"
        )));
    }
    event::check_text("note", note, 1024).map_err(|e| TriageError::Invalid(e.to_string()))?;
    let entry = AllowEntry {
        network: network.to_string(),
        note: note.trim().to_string(),
        by,
        at: now,
    };
    store.allow(&entry)?;
    Ok(entry)
}

/// The blocklist as it stands, and what the allow-lists keep off it.
#[derive(Debug, Clone, Default)]
pub struct Blocklist {
    /// Addresses to block now.
    pub blocked: Vec<BlockEntry>,
    /// Addresses blocking rules named that an allow-list keeps off.
    pub spared: Vec<BlockEntry>,
    /// The allow-list kept in the store (the configuration's `blocklist_allow` is in the
    /// settings).
    pub allowlist: Vec<AllowEntry>,
}

/// Every rule that blocks: those of the configuration marked `block`, and blocking by hand.
fn blocking_rules(settings: &Settings) -> HashSet<String> {
    let mut rules: HashSet<String> = settings
        .rules
        .iter()
        .filter(|r| r.block)
        .map(|r| r.id.clone())
        .collect();
    rules.insert(MANUAL_BLOCK_RULE.to_string());
    rules
}

/// The blocklist at `now` (µs, wall clock).
pub fn blocklist(store: &Store, settings: &Settings, now: i64) -> Result<Blocklist, StorageError> {
    let ttl = i64::try_from(settings.blocklist_ttl.as_micros()).unwrap_or(i64::MAX);
    let entries = store.blocklist(&blocking_rules(settings), ttl, now)?;
    let allowlist = store.allowlist()?;
    let stored: Vec<IpNetwork> = allowlist
        .iter()
        .filter_map(|e| e.network.parse().ok())
        .collect();
    let (spared, blocked) = entries.into_iter().partition(|e| {
        e.ip.parse::<std::net::IpAddr>().is_ok_and(|ip| {
            settings
                .blocklist_allow
                .iter()
                .chain(&stored)
                .any(|n| n.contains(ip))
        })
    });
    Ok(Blocklist {
        blocked,
        spared,
        allowlist,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn networks_are_read_from_addresses_and_cidrs() {
        assert_eq!(
            parse_network("192.0.2.7").unwrap().to_string(),
            "192.0.2.7/32"
        );
        assert_eq!(
            parse_network(" 192.0.2.77/24 ").unwrap().to_string(),
            "192.0.2.0/24"
        );
        assert_eq!(
            parse_network("2001:db8::1").unwrap().to_string(),
            "2001:db8::1/128"
        );
        for bad in ["", "192.0.2.0/33", "example.com", "10.0.0.0/8/8", "1.2.3"] {
            let err = parse_network(bad).unwrap_err();
            assert!(
                err.contains("not an address") || err.contains("prefix"),
                "{bad}: {err}"
            );
        }
    }
}
