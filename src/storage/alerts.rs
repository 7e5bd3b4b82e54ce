//! Alerts: what detection found, one open alert per rule and entity, updated as the attack
//! goes on, and worked by analysts (open → acknowledged → resolved or false positive).

use redb::{ReadableDatabase, ReadableTable, ReadableTableMetadata};
use serde::{Deserialize, Serialize};

use super::counts::Tallies;
use super::tables::{self, ALERT_MEMBERS, ALERTS, META, NEXT_ALERT_ID_KEY, OPEN_ALERTS};
use super::{StorageError, Store};
use crate::detect::profile::UserProfile;

/// Most evidence event ids an alert keeps (the newest).
pub const MAX_ALERT_EVIDENCE: usize = 50;

/// Where an alert is in its work.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertStatus {
    Open,
    Acknowledged,
    Resolved,
    FalsePositive,
}

impl AlertStatus {
    /// Open and acknowledged alerts take new findings; resolved ones are closed.
    #[must_use]
    pub fn is_active(self) -> bool {
        matches!(self, Self::Open | Self::Acknowledged)
    }

    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Open => "open",
            Self::Acknowledged => "acknowledged",
            Self::Resolved => "resolved",
            Self::FalsePositive => "false_positive",
        }
    }

    #[must_use]
    pub fn parse(text: &str) -> Option<Self> {
        [
            Self::Open,
            Self::Acknowledged,
            Self::Resolved,
            Self::FalsePositive,
        ]
        .into_iter()
        .find(|s| s.as_str() == text)
    }
}

/// A change of status, with who made it and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AlertNote {
    pub at: i64,
    pub by: String,
    pub status: AlertStatus,
    pub text: String,
}

/// An alert as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AlertRecord {
    pub id: u64,
    pub rule: String,
    pub title: String,
    pub severity: String,
    pub status: AlertStatus,
    /// `ip`, `user`, `host` or `campaign`.
    pub entity_type: String,
    pub entity: String,
    /// Event time of the first and last evidence (µs).
    pub first_seen: i64,
    pub last_seen: i64,
    /// How many times the rule matched this entity while the alert was open.
    pub count: u64,
    /// The largest count one window held.
    pub peak: u64,
    pub attack: Vec<String>,
    /// Event ids, oldest first, at most [`MAX_ALERT_EVIDENCE`].
    pub evidence: Vec<String>,
    pub notes: Vec<AlertNote>,
    pub created_at: i64,
    pub updated_at: i64,
}

/// What detection reports about one entity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlertUpdate {
    pub rule: String,
    pub title: String,
    pub severity: String,
    pub entity_type: String,
    pub entity: String,
    pub first_seen: i64,
    pub last_seen: i64,
    /// The largest count one window held.
    pub count: u64,
    /// How many findings this update stands for (several are merged per request).
    pub matches: u64,
    pub attack: Vec<String>,
    pub evidence: Vec<String>,
    /// For a campaign: member addresses to add.
    pub members: Vec<String>,
}

/// Filters of an alert listing; newest alert first.
#[derive(Debug, Clone, Default)]
pub struct AlertQuery {
    pub status: Option<AlertStatus>,
    pub severity: Option<String>,
    pub rule: Option<String>,
    pub entity: Option<String>,
    /// Only alerts whose last evidence is at or after this time (µs).
    pub since: Option<i64>,
    /// Only alerts with an id below this (the cursor of the previous page).
    pub before_id: Option<u64>,
    pub limit: usize,
}

fn open_key(rule: &str, entity_type: &str, entity: &str) -> String {
    format!("{rule}\u{0}{entity_type}\u{0}{entity}")
}

/// Adds the `newest` evidence ids after the older ones it does not repeat, keeping the newest
/// [`MAX_ALERT_EVIDENCE`].
pub fn merge_evidence(evidence: &mut Vec<String>, newest: &[String]) {
    let fresh: std::collections::HashSet<&String> = newest.iter().collect();
    evidence.retain(|id| !fresh.contains(id));
    evidence.extend(newest.iter().cloned());
    let excess = evidence.len().saturating_sub(MAX_ALERT_EVIDENCE);
    evidence.drain(..excess);
}

/// An active alert with one more finding.
fn merge(mut alert: AlertRecord, update: &AlertUpdate, now: i64) -> AlertRecord {
    alert.first_seen = alert.first_seen.min(update.first_seen);
    alert.last_seen = alert.last_seen.max(update.last_seen);
    alert.count += update.matches;
    alert.peak = alert.peak.max(update.count);
    merge_evidence(&mut alert.evidence, &update.evidence);
    alert.updated_at = now;
    alert
}

fn new_alert(id: u64, update: &AlertUpdate, now: i64) -> AlertRecord {
    AlertRecord {
        id,
        rule: update.rule.clone(),
        title: update.title.clone(),
        severity: update.severity.clone(),
        status: AlertStatus::Open,
        entity_type: update.entity_type.clone(),
        entity: update.entity.clone(),
        first_seen: update.first_seen,
        last_seen: update.last_seen,
        count: update.matches,
        peak: update.count,
        attack: update.attack.clone(),
        evidence: update.evidence.clone(),
        notes: Vec::new(),
        created_at: now,
        updated_at: now,
    }
}

impl Store {
    /// Records findings: each updates the active alert of its rule and entity, or opens one.
    /// Returns the ids of the alerts touched. One durable transaction.
    pub fn record_findings(
        &self,
        updates: &[AlertUpdate],
        now: i64,
    ) -> Result<Vec<u64>, StorageError> {
        self.record_detection(updates, &[], now)
    }

    /// Records findings and the account histories that changed with them, in one durable
    /// transaction. Returns the ids of the alerts touched.
    pub fn record_detection(
        &self,
        updates: &[AlertUpdate],
        profiles: &[(String, UserProfile)],
        now: i64,
    ) -> Result<Vec<u64>, StorageError> {
        if updates.is_empty() && profiles.is_empty() {
            return Ok(Vec::new());
        }
        let txn = self.db.begin_write()?;
        let mut ids = Vec::with_capacity(updates.len());
        let mut tallies = Tallies::default();
        {
            super::profiles::keep(&txn, profiles)?;
            let mut alerts = txn.open_table(ALERTS)?;
            let mut open = txn.open_table(OPEN_ALERTS)?;
            let mut meta = txn.open_table(META)?;
            let mut members = txn.open_table(ALERT_MEMBERS)?;
            for update in updates {
                let key = open_key(&update.rule, &update.entity_type, &update.entity);
                let existing = match open.get(key.as_str())?.map(|v| v.value()) {
                    Some(id) => alerts
                        .get(id)?
                        .map(|v| tables::decode::<AlertRecord>(v.value()))
                        .transpose()?,
                    None => None,
                };
                let record = if let Some(alert) = existing {
                    merge(alert, update, now)
                } else {
                    let id = meta.get(NEXT_ALERT_ID_KEY)?.map_or(1, |v| v.value());
                    meta.insert(NEXT_ALERT_ID_KEY, id + 1)?;
                    open.insert(key.as_str(), id)?;
                    tallies.add_alert(update.first_seen, &update.severity);
                    new_alert(id, update, now)
                };
                alerts.insert(record.id, tables::encode(&record).as_slice())?;
                for member in &update.members {
                    let key = (record.id, member.as_str());
                    let seen = members.get(key)?.map_or(i64::MIN, |v| v.value());
                    members.insert(key, seen.max(update.last_seen))?;
                }
                ids.push(record.id);
            }
        }
        tallies.write(&txn)?;
        txn.commit()?;
        Ok(ids)
    }

    /// (rule, entity) of every open or acknowledged alert.
    pub fn open_alert_keys(&self) -> Result<Vec<(String, String)>, StorageError> {
        let txn = self.db.begin_read()?;
        let open = txn.open_table(OPEN_ALERTS)?;
        let mut keys = Vec::new();
        for entry in open.iter()? {
            let (key, _) = entry?;
            let mut parts = key.value().splitn(3, '\u{0}');
            if let (Some(rule), Some(_), Some(entity)) = (parts.next(), parts.next(), parts.next())
            {
                keys.push((rule.to_string(), entity.to_string()));
            }
        }
        Ok(keys)
    }

    /// Ids of the campaign alerts `address` is a member of (at most `limit`, newest first).
    pub fn alerts_with_member(
        &self,
        address: &str,
        limit: usize,
    ) -> Result<Vec<u64>, StorageError> {
        let txn = self.db.begin_read()?;
        let table = txn.open_table(ALERT_MEMBERS)?;
        let mut ids = Vec::new();
        for row in table.iter()?.rev() {
            let (key, _) = row?;
            let (id, member) = key.value();
            if member == address {
                ids.push(id);
                if ids.len() >= limit {
                    break;
                }
            }
        }
        Ok(ids)
    }

    /// A campaign alert's member addresses (at most `limit`, in address order) and how many
    /// there are.
    pub fn alert_members(
        &self,
        id: u64,
        limit: usize,
    ) -> Result<(Vec<String>, usize), StorageError> {
        let txn = self.db.begin_read()?;
        let table = txn.open_table(ALERT_MEMBERS)?;
        let mut listed = Vec::new();
        let mut total = 0;
        for entry in table.range((id, "")..(id.saturating_add(1), ""))? {
            let (key, _) = entry?;
            if listed.len() < limit {
                listed.push(key.value().1.to_string());
            }
            total += 1;
        }
        Ok((listed, total))
    }

    pub fn alert(&self, id: u64) -> Result<Option<AlertRecord>, StorageError> {
        let txn = self.db.begin_read()?;
        let table = txn.open_table(ALERTS)?;
        table
            .get(id)?
            .map(|v| tables::decode(v.value()))
            .transpose()
    }

    /// Alerts with an id above `id`, oldest first, at most `limit`.
    pub fn alerts_after(&self, id: u64, limit: usize) -> Result<Vec<AlertRecord>, StorageError> {
        let txn = self.db.begin_read()?;
        let table = txn.open_table(ALERTS)?;
        let mut found = Vec::new();
        for entry in table.range(id.saturating_add(1)..)?.take(limit) {
            found.push(tables::decode(entry?.1.value())?);
        }
        Ok(found)
    }

    /// The id of the active alert of `rule` on this entity, if there is one.
    pub fn active_alert_id(
        &self,
        rule: &str,
        entity_type: &str,
        entity: &str,
    ) -> Result<Option<u64>, StorageError> {
        let txn = self.db.begin_read()?;
        let open = txn.open_table(OPEN_ALERTS)?;
        Ok(open
            .get(open_key(rule, entity_type, entity).as_str())?
            .map(|v| v.value()))
    }

    /// The number of active (open or acknowledged) alerts.
    pub fn active_alert_count(&self) -> Result<u64, StorageError> {
        let txn = self.db.begin_read()?;
        Ok(txn.open_table(OPEN_ALERTS)?.len()?)
    }

    /// The id of the newest alert (0 when there is none).
    pub fn newest_alert_id(&self) -> Result<u64, StorageError> {
        let txn = self.db.begin_read()?;
        Ok(txn
            .open_table(ALERTS)?
            .last()?
            .map_or(0, |(k, _)| k.value()))
    }

    /// Alerts matching `query`, newest first.
    pub fn alerts(&self, query: &AlertQuery) -> Result<Vec<AlertRecord>, StorageError> {
        let txn = self.db.begin_read()?;
        let table = txn.open_table(ALERTS)?;
        let upper = query.before_id.unwrap_or(u64::MAX);
        let mut found = Vec::new();
        for entry in table.range(..upper)?.rev() {
            let alert: AlertRecord = tables::decode(entry?.1.value())?;
            let wanted = query.status.is_none_or(|s| s == alert.status)
                && query.severity.as_ref().is_none_or(|s| *s == alert.severity)
                && query.rule.as_ref().is_none_or(|r| *r == alert.rule)
                && query.entity.as_ref().is_none_or(|e| *e == alert.entity)
                && query.since.is_none_or(|t| alert.last_seen >= t);
            if wanted {
                found.push(alert);
                if found.len() >= query.limit {
                    break;
                }
            }
        }
        Ok(found)
    }

    /// Changes an alert's status with a note; a closed alert no longer takes findings (the
    /// next finding for its rule and entity opens a new one). `None` if there is no such alert.
    pub fn set_alert_status(
        &self,
        id: u64,
        status: AlertStatus,
        note: AlertNote,
    ) -> Result<Option<AlertRecord>, StorageError> {
        let txn = self.db.begin_write()?;
        let updated = {
            let mut alerts = txn.open_table(ALERTS)?;
            let mut open = txn.open_table(OPEN_ALERTS)?;
            let current = alerts
                .get(id)?
                .map(|v| tables::decode::<AlertRecord>(v.value()))
                .transpose()?;
            match current {
                None => None,
                Some(mut alert) => {
                    let key = open_key(&alert.rule, &alert.entity_type, &alert.entity);
                    if status.is_active() {
                        // Reopening: it takes findings again, unless a newer alert already does.
                        if open.get(key.as_str())?.is_none() {
                            open.insert(key.as_str(), id)?;
                        }
                    } else if open.get(key.as_str())?.map(|v| v.value()) == Some(id) {
                        open.remove(key.as_str())?;
                    }
                    alert.status = status;
                    alert.updated_at = note.at;
                    alert.notes.push(note);
                    alerts.insert(id, tables::encode(&alert).as_slice())?;
                    Some(alert)
                }
            }
        };
        txn.commit()?;
        Ok(updated)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn update(rule: &str, entity: &str, first: i64, last: i64, evidence: &[&str]) -> AlertUpdate {
        AlertUpdate {
            rule: rule.into(),
            title: "t".into(),
            severity: "high".into(),
            entity_type: "ip".into(),
            entity: entity.into(),
            first_seen: first,
            last_seen: last,
            count: evidence.len() as u64,
            matches: 1,
            attack: vec!["T1110.001".into()],
            evidence: evidence.iter().map(|e| (*e).to_string()).collect(),
            members: Vec::new(),
        }
    }

    fn note(status: AlertStatus) -> AlertNote {
        AlertNote {
            at: 99,
            by: "analyst".into(),
            status,
            text: "checked".into(),
        }
    }

    #[test]
    fn one_active_alert_per_rule_and_entity_aggregates_repeats() {
        let (_dir, store) = Store::temporary();
        let first = store
            .record_findings(
                &[update("brute-force", "192.0.2.1", 10, 20, &["a", "b"])],
                1,
            )
            .unwrap();
        let again = store
            .record_findings(
                &[
                    update("brute-force", "192.0.2.1", 5, 30, &["b", "c"]),
                    update("brute-force", "192.0.2.2", 7, 8, &["x"]),
                ],
                2,
            )
            .unwrap();
        assert_eq!(again[0], first[0]);
        assert_ne!(again[1], first[0]);
        let alert = store.alert(first[0]).unwrap().unwrap();
        assert_eq!((alert.first_seen, alert.last_seen, alert.count), (5, 30, 2));
        assert_eq!(alert.evidence, ["a", "b", "c"]);
        assert_eq!(alert.status, AlertStatus::Open);

        // Resolved, it takes no more findings: the next one opens a new alert.
        store
            .set_alert_status(first[0], AlertStatus::Resolved, note(AlertStatus::Resolved))
            .unwrap()
            .unwrap();
        let later = store
            .record_findings(&[update("brute-force", "192.0.2.1", 40, 50, &["d"])], 3)
            .unwrap();
        assert_ne!(later[0], first[0]);
        let resolved = store.alert(first[0]).unwrap().unwrap();
        assert_eq!(resolved.notes[0].text, "checked");
        assert_eq!(resolved.count, 2);
        assert_eq!(
            store
                .set_alert_status(999, AlertStatus::Open, note(AlertStatus::Open))
                .unwrap(),
            None
        );

        let open = store
            .alerts(&AlertQuery {
                status: Some(AlertStatus::Open),
                limit: 10,
                ..AlertQuery::default()
            })
            .unwrap();
        let ids: Vec<u64> = open.iter().map(|a| a.id).collect();
        assert_eq!(ids, [later[0], again[1]], "newest first");
        let page = store
            .alerts(&AlertQuery {
                before_id: Some(later[0]),
                limit: 1,
                ..AlertQuery::default()
            })
            .unwrap();
        assert_eq!(page[0].id, again[1]);
    }
}
