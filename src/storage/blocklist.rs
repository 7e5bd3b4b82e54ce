//! The blocklist as the alerts make it (the entities and campaign members of active alerts of
//! blocking rules, until their time-to-live lapses), and the allow-list kept in the store.

use redb::{ReadableDatabase, ReadableTable};
use serde::{Deserialize, Serialize};

use super::alerts::AlertRecord;
use super::tables::{self, ALERT_MEMBERS, ALERTS, OPEN_ALERTS};
use super::{StorageError, Store};

/// An address the appliance recommends blocking, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BlockEntry {
    pub ip: String,
    pub alert_id: u64,
    pub rule: String,
    pub reason: String,
    /// When the recommendation lapses unless the attack goes on (µs, wall clock).
    pub expires_at: i64,
}

/// A network kept off the blocklist.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AllowEntry {
    /// CIDR text, as normalised by the caller (`192.0.2.7/32`).
    pub network: String,
    pub note: String,
    pub by: String,
    pub at: i64,
}

impl Store {
    /// The addresses to block now: the entities of active alerts of `blocking` rules and the
    /// members of active campaign alerts of those rules, each until `ttl_micros` after its
    /// alert last changed. Lapsed ones are left out; an address appears once (its newest
    /// reason).
    pub fn blocklist(
        &self,
        blocking: &std::collections::HashSet<String>,
        ttl_micros: i64,
        now: i64,
    ) -> Result<Vec<BlockEntry>, StorageError> {
        let txn = self.db.begin_read()?;
        let open = txn.open_table(OPEN_ALERTS)?;
        let alerts = txn.open_table(ALERTS)?;
        let members = txn.open_table(ALERT_MEMBERS)?;
        let mut found: std::collections::BTreeMap<String, BlockEntry> =
            std::collections::BTreeMap::new();
        for entry in open.iter()? {
            let (_, id) = entry?;
            let Some(value) = alerts.get(id.value())? else {
                continue;
            };
            let alert: AlertRecord = tables::decode(value.value())?;
            let expires_at = alert.updated_at.saturating_add(ttl_micros);
            if !blocking.contains(&alert.rule) || !alert.status.is_active() || expires_at <= now {
                continue;
            }
            let mut add = |ip: String| {
                let newer = found.get(&ip).is_none_or(|e| e.expires_at < expires_at);
                if newer {
                    found.insert(
                        ip.clone(),
                        BlockEntry {
                            ip,
                            alert_id: alert.id,
                            rule: alert.rule.clone(),
                            reason: alert.title.clone(),
                            expires_at,
                        },
                    );
                }
            };
            match alert.entity_type.as_str() {
                "ip" => add(alert.entity.clone()),
                "campaign" => {
                    for member in members.range((alert.id, "")..(alert.id.saturating_add(1), ""))? {
                        add(member?.0.value().1.to_string());
                    }
                }
                _ => {}
            }
        }
        Ok(found.into_values().collect())
    }

    /// The allow-list kept in the store, by network text.
    pub fn allowlist(&self) -> Result<Vec<AllowEntry>, StorageError> {
        let txn = self.db.begin_read()?;
        let table = txn.open_table(tables::ALLOWLIST)?;
        let mut entries = Vec::new();
        for row in table.iter()? {
            entries.push(tables::decode(row?.1.value())?);
        }
        Ok(entries)
    }

    /// Adds (or replaces) an allow-list entry.
    pub fn allow(&self, entry: &AllowEntry) -> Result<(), StorageError> {
        let txn = self.db.begin_write()?;
        txn.open_table(tables::ALLOWLIST)?
            .insert(entry.network.as_str(), tables::encode(entry).as_slice())?;
        txn.commit()?;
        Ok(())
    }

    /// Removes an allow-list entry; whether there was one.
    pub fn disallow(&self, network: &str) -> Result<bool, StorageError> {
        let txn = self.db.begin_write()?;
        let removed = txn
            .open_table(tables::ALLOWLIST)?
            .remove(network)?
            .is_some();
        txn.commit()?;
        Ok(removed)
    }
}
