//! Counts for charts and top lists, written by the transactions that store what they count.
//!
//! Per minute of event time: stored events, failures and successes (added up by the event
//! commit), and alerts opened per severity (by the transaction that opens them). Per hour of
//! event time and per source address, account and host: events and failures. Countries are not
//! stored: they are the addresses' tallies grouped by the geolocation database when read, so a
//! newer database regroups the past as well.

use std::collections::BTreeMap;

use redb::{ReadableDatabase, ReadableTable, WriteTransaction};
use rustc_hash::FxHashMap;

use super::tables::{HOURLY_TALLIES, MINUTE_COUNTS};
use super::{StorageError, Store};

const MINUTE_US: i64 = 60_000_000;
const HOUR_US: i64 = 3_600_000_000;

/// Events per minute of event time and series, as [`Store::minute_counts`] reads them back.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct MinuteCounts(pub BTreeMap<(i64, &'static str), u64>);

/// The series counted per minute: stored events by outcome, and alerts opened by severity
/// (at the event time of their first finding).
pub const SERIES: [&str; 7] = [
    "events",
    "failures",
    "successes",
    "alerts_low",
    "alerts_medium",
    "alerts_high",
    "alerts_critical",
];

/// The series of alerts of `severity`, if it is one.
#[must_use]
pub fn alert_series(severity: &str) -> Option<&'static str> {
    SERIES
        .iter()
        .find(|s| s.strip_prefix("alerts_") == Some(severity))
        .copied()
}

/// What events are tallied by per hour.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Dimension {
    /// The source address, as text.
    Address,
    /// The account name.
    Account,
    /// The host that logged the event.
    Host,
}

impl Dimension {
    pub const ALL: [Self; 3] = [Self::Address, Self::Account, Self::Host];

    fn code(self) -> u8 {
        match self {
            Self::Address => 0,
            Self::Account => 1,
            Self::Host => 2,
        }
    }

    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Address => "ip",
            Self::Account => "user",
            Self::Host => "host",
        }
    }

    #[must_use]
    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|d| d.as_str() == text)
    }
}

/// Events and failures of one address, account, host or country over a span of time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tally {
    pub key: String,
    pub events: u64,
    pub failures: u64,
}

/// Orders tallies most failures first, then most events, then by key.
pub fn rank(tallies: &mut [Tally]) {
    tallies.sort_unstable_by(|a, b| {
        (b.failures, b.events)
            .cmp(&(a.failures, a.events))
            .then_with(|| a.key.cmp(&b.key))
    });
}

/// Per-key sums of (events, failures) as ranked tallies.
#[must_use]
pub fn ranked(sums: impl IntoIterator<Item = (String, (u64, u64))>) -> Vec<Tally> {
    let mut tallies: Vec<Tally> = sums
        .into_iter()
        .map(|(key, (events, failures))| Tally {
            key,
            events,
            failures,
        })
        .collect();
    rank(&mut tallies);
    tallies
}

/// What one commit adds to the count tables, summed in memory first so that each minute and
/// series, and each hour and key, is one row update however many events it counts.
#[derive(Debug, Default)]
pub(super) struct Tallies<'a> {
    minutes: BTreeMap<(i64, &'static str), u64>,
    hours: FxHashMap<(u8, i64, &'a str), (u64, u64)>,
}

impl<'a> Tallies<'a> {
    /// Counts one stored event.
    pub(super) fn add(
        &mut self,
        timestamp: i64,
        success: Option<bool>,
        keys: &'a [Option<String>; 3],
    ) {
        let minute = timestamp.div_euclid(MINUTE_US);
        *self.minutes.entry((minute, "events")).or_default() += 1;
        match success {
            Some(false) => *self.minutes.entry((minute, "failures")).or_default() += 1,
            Some(true) => *self.minutes.entry((minute, "successes")).or_default() += 1,
            None => {}
        }
        let hour = timestamp.div_euclid(HOUR_US);
        let failure = u64::from(success == Some(false));
        for (dimension, key) in Dimension::ALL.into_iter().zip(keys) {
            if let Some(key) = key {
                let row = self
                    .hours
                    .entry((dimension.code(), hour, key.as_str()))
                    .or_default();
                row.0 += 1;
                row.1 += failure;
            }
        }
    }

    /// Adds one alert opened at `first_seen` (µs) with `severity`.
    pub(super) fn add_alert(&mut self, first_seen: i64, severity: &str) {
        if let Some(series) = alert_series(severity) {
            *self
                .minutes
                .entry((first_seen.div_euclid(MINUTE_US), series))
                .or_default() += 1;
        }
    }

    /// Adds the counts to the transaction's tables.
    pub(super) fn write(self, txn: &WriteTransaction) -> Result<(), StorageError> {
        if !self.minutes.is_empty() {
            let mut table = txn.open_table(MINUTE_COUNTS)?;
            for (key, count) in self.minutes {
                let before = table.get(key)?.map_or(0, |v| v.value());
                table.insert(key, before + count)?;
            }
        }
        if !self.hours.is_empty() {
            let mut table = txn.open_table(HOURLY_TALLIES)?;
            for (key, (events, failures)) in self.hours {
                let (e, f) = table.get(key)?.map_or((0, 0), |v| v.value());
                table.insert(key, (e + events, f + failures))?;
            }
        }
        Ok(())
    }
}

impl Store {
    /// The per-minute counts of the minutes from `from` to `to` (µs of event time, both
    /// inclusive); minutes without events are absent.
    pub fn minute_counts(&self, from: i64, to: i64) -> Result<MinuteCounts, StorageError> {
        let txn = self.db.begin_read()?;
        let table = txn.open_table(MINUTE_COUNTS)?;
        let (first, last) = (from.div_euclid(MINUTE_US), to.div_euclid(MINUTE_US));
        let mut counts = MinuteCounts::default();
        for row in table.range((first, "")..=(last, "~"))? {
            let (key, count) = row?;
            let (minute, series) = key.value();
            if let Some(name) = SERIES.iter().find(|s| **s == series) {
                counts.0.insert((minute, name), count.value());
            }
        }
        Ok(counts)
    }

    /// Events and failures per address, account or host in the hours from the one holding
    /// `from` to the one holding `to` (µs of event time), most failures first.
    pub fn tallies(
        &self,
        dimension: Dimension,
        from: i64,
        to: i64,
    ) -> Result<Vec<Tally>, StorageError> {
        let txn = self.db.begin_read()?;
        let table = txn.open_table(HOURLY_TALLIES)?;
        let code = dimension.code();
        let (first, last) = (from.div_euclid(HOUR_US), to.div_euclid(HOUR_US));
        let mut sums: FxHashMap<String, (u64, u64)> = FxHashMap::default();
        if first <= last {
            for row in table.range((code, first, "")..(code, last.saturating_add(1), ""))? {
                let (key, value) = row?;
                let (events, failures) = value.value();
                let sum = sums.entry(key.value().2.to_string()).or_default();
                sum.0 += events;
                sum.1 += failures;
            }
        }
        Ok(ranked(sums))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Event;
    use crate::storage::EncodedEvent;

    fn store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("db.redb"), 1 << 20).unwrap();
        (dir, store)
    }

    fn encode(events: Vec<Event>) -> Vec<EncodedEvent> {
        events.iter().map(EncodedEvent::new).collect()
    }

    fn with(id: &str, ts: i64, success: Option<bool>) -> Event {
        Event {
            success,
            ..Event::sample(id, ts)
        }
    }

    #[test]
    fn minute_counts_match_the_stored_events_and_skip_duplicates() {
        let (_dir, store) = store();
        let minute = MINUTE_US;
        let first = vec![
            with("a", 0, Some(false)),
            with("b", minute - 1, Some(false)),
            with("c", minute, Some(true)),
            with("d", 3 * minute + 5, None),
            // Before 1970: the minute is floored, not truncated towards zero.
            with("e", -1, Some(true)),
        ];
        store.append_batches(&[encode(first)]).unwrap();
        // A second commit: one new event in a counted minute, one duplicate (not counted).
        let second = vec![with("f", 10, Some(false)), with("a", 0, Some(false))];
        let outcome = store.append_batches(&[encode(second)]).unwrap();
        assert_eq!(outcome[0].duplicates, 1);
        let counts = store.minute_counts(-minute, 10 * minute).unwrap();
        let expected: BTreeMap<(i64, &str), u64> = [
            ((-1, "events"), 1),
            ((-1, "successes"), 1),
            ((0, "events"), 3),
            ((0, "failures"), 3),
            ((1, "events"), 1),
            ((1, "successes"), 1),
            ((3, "events"), 1),
        ]
        .into_iter()
        .collect();
        assert_eq!(counts.0, expected);
        // A narrower range reads only its minutes.
        let one = store.minute_counts(minute, minute + 59_999_999).unwrap();
        assert_eq!(one.0.len(), 2);
    }

    #[test]
    fn hourly_tallies_sum_the_hours_asked_for_and_skip_duplicates() {
        let (_dir, store) = store();
        let from = |id: &str, ts: i64, ip: &str, user: Option<&str>, success: Option<bool>| Event {
            source_ip: Some(ip.parse().unwrap()),
            username: user.map(str::to_string),
            host: Some("web1".into()),
            ..with(id, ts, success)
        };
        let events = vec![
            from("a", 0, "192.0.2.1", Some("root"), Some(false)),
            from("b", HOUR_US - 1, "192.0.2.1", Some("admin"), Some(false)),
            from("c", HOUR_US, "192.0.2.1", Some("root"), Some(false)),
            from("d", HOUR_US + 5, "192.0.2.2", Some("alice"), Some(true)),
            from("e", 2 * HOUR_US, "192.0.2.2", None, None),
        ];
        store.append_batches(&[encode(events)]).unwrap();
        // A duplicate is not counted again.
        let again = vec![from("a", 0, "192.0.2.1", Some("root"), Some(false))];
        store.append_batches(&[encode(again)]).unwrap();
        let tally = |key: &str, events, failures| Tally {
            key: key.into(),
            events,
            failures,
        };
        let all = 3 * HOUR_US;
        assert_eq!(
            store.tallies(Dimension::Address, 0, all).unwrap(),
            [tally("192.0.2.1", 3, 3), tally("192.0.2.2", 2, 0)]
        );
        assert_eq!(
            store.tallies(Dimension::Account, 0, all).unwrap(),
            [
                tally("root", 2, 2),
                tally("admin", 1, 1),
                tally("alice", 1, 0)
            ]
        );
        assert_eq!(
            store.tallies(Dimension::Host, 0, all).unwrap(),
            [tally("web1", 5, 3)]
        );
        // The second hour only (a bound inside an hour takes the whole hour).
        assert_eq!(
            store
                .tallies(Dimension::Address, HOUR_US + 10, 2 * HOUR_US - 1)
                .unwrap(),
            [tally("192.0.2.1", 1, 1), tally("192.0.2.2", 1, 0)]
        );
        assert!(
            store
                .tallies(Dimension::Address, all, 0)
                .unwrap()
                .is_empty()
        );
    }
}
