//! What a rule found: the [`Finding`] the detector and the history rules report, one per
//! rule and entity, which becomes or updates an alert.

use super::rules::{Rule, Severity};

/// Most event ids a finding carries as evidence (the newest).
pub const MAX_EVIDENCE: usize = 20;

/// What a rule found about one entity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub rule: String,
    pub title: String,
    pub severity: Severity,
    pub attack: Vec<String>,
    /// `ip`, `user` or `host`.
    pub entity_type: &'static str,
    pub entity: String,
    /// Event time of the first and last event behind the finding (µs).
    pub first_seen: i64,
    pub last_seen: i64,
    /// Attempts (or distinct values) counted.
    pub count: usize,
    /// Ids of the events behind it, oldest first, at most [`MAX_EVIDENCE`].
    pub evidence: Vec<String>,
    /// For a campaign: the addresses newly found taking part.
    pub members: Vec<String>,
}

/// The finding of `rule` about `entity`: events between `first` and `last` (µs).
pub(super) fn finding(
    rule: &Rule,
    entity: String,
    first: i64,
    last: i64,
    count: usize,
    evidence: Vec<String>,
) -> Finding {
    Finding {
        rule: rule.id.clone(),
        title: rule.title.clone(),
        severity: rule.severity,
        attack: rule.attack.clone(),
        entity_type: rule.key.entity_type(),
        entity,
        first_seen: first,
        last_seen: last,
        count,
        evidence,
        members: Vec::new(),
    }
}
