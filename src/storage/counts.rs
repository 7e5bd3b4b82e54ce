//! Counts for charts and top lists, written by the transactions that store what they count.
//!
//! Per minute of event time: stored events, failures and successes (added up by the event
//! commit), and alerts opened per severity (by the transaction that opens them). Per hour of
//! event time and per source address, account and host: events and failures. Both are summed
//! once more in the same transaction, per hour and per day, so that a chart or top list of a
//! month reads hundreds of rows instead of tens of thousands. Countries are not stored: they
//! are the addresses' tallies grouped by the geolocation database when read, so a newer
//! database regroups the past as well.

use std::collections::BTreeMap;

use redb::{ReadableDatabase, ReadableTable, TableDefinition, WriteTransaction};
use rustc_hash::FxHashMap;

use super::tables::{DAILY_TALLIES, HOURLY_COUNTS, HOURLY_TALLIES, MINUTE_COUNTS};
use super::{StorageError, Store};

const MINUTE_US: i64 = 60_000_000;
const HOUR_US: i64 = 3_600_000_000;

type CountTable = TableDefinition<'static, (i64, &'static str), u64>;
type TallyTable = TableDefinition<'static, (u8, i64, &'static str), (u64, u64)>;

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

    /// Adds the counts to the transaction's tables, and their sums per hour and per day.
    pub(super) fn write(self, txn: &WriteTransaction) -> Result<(), StorageError> {
        let mut hours: BTreeMap<(i64, &str), u64> = BTreeMap::new();
        for (&(minute, series), &count) in &self.minutes {
            *hours.entry((minute.div_euclid(60), series)).or_default() += count;
        }
        add_counts(txn, MINUTE_COUNTS, self.minutes)?;
        add_counts(txn, HOURLY_COUNTS, hours)?;
        let mut days: FxHashMap<(u8, i64, &str), (u64, u64)> = FxHashMap::default();
        for (&(code, hour, key), &(events, failures)) in &self.hours {
            let day = days.entry((code, hour.div_euclid(24), key)).or_default();
            day.0 += events;
            day.1 += failures;
        }
        add_tallies(txn, HOURLY_TALLIES, self.hours)?;
        add_tallies(txn, DAILY_TALLIES, days)?;
        Ok(())
    }
}

fn add_counts<'k>(
    txn: &WriteTransaction,
    table: CountTable,
    rows: impl IntoIterator<Item = ((i64, &'k str), u64)>,
) -> Result<(), StorageError> {
    let mut rows = rows.into_iter().peekable();
    if rows.peek().is_some() {
        let mut table = txn.open_table(table)?;
        for (key, count) in rows {
            let before = table.get(key)?.map_or(0, |v| v.value());
            table.insert(key, before + count)?;
        }
    }
    Ok(())
}

fn add_tallies<'k>(
    txn: &WriteTransaction,
    table: TallyTable,
    rows: impl IntoIterator<Item = ((u8, i64, &'k str), (u64, u64))>,
) -> Result<(), StorageError> {
    let mut rows = rows.into_iter().peekable();
    if rows.peek().is_some() {
        let mut table = txn.open_table(table)?;
        for (key, (events, failures)) in rows {
            let (e, f) = table.get(key)?.map_or((0, 0), |v| v.value());
            table.insert(key, (e + events, f + failures))?;
        }
    }
    Ok(())
}

/// Fills the hourly counts and daily tallies from the finer tables (schema version 1 had only
/// those).
pub(super) fn roll_up(txn: &WriteTransaction) -> Result<(), StorageError> {
    let mut hours: BTreeMap<(i64, String), u64> = BTreeMap::new();
    for row in txn.open_table(MINUTE_COUNTS)?.iter()? {
        let (key, count) = row?;
        let (minute, series) = key.value();
        *hours
            .entry((minute.div_euclid(60), series.to_string()))
            .or_default() += count.value();
    }
    add_counts(
        txn,
        HOURLY_COUNTS,
        hours.iter().map(|((h, s), n)| ((*h, s.as_str()), *n)),
    )?;
    let mut days: BTreeMap<(u8, i64, String), (u64, u64)> = BTreeMap::new();
    for row in txn.open_table(HOURLY_TALLIES)?.iter()? {
        let (key, value) = row?;
        let (code, hour, name) = key.value();
        let (events, failures) = value.value();
        let day = days
            .entry((code, hour.div_euclid(24), name.to_string()))
            .or_default();
        day.0 += events;
        day.1 += failures;
    }
    add_tallies(
        txn,
        DAILY_TALLIES,
        days.iter().map(|((c, d, k), v)| ((*c, *d, k.as_str()), *v)),
    )
}

/// Splits the units from `first` to `last` (inclusive) into the whole larger units of `per`
/// small ones inside them, and the small units before and after those: (small units before,
/// large units, small units after), each an inclusive range that may be empty.
fn split(first: i64, last: i64, per: i64) -> [(i64, i64); 3] {
    let large_first = first.div_euclid(per) + i64::from(first.rem_euclid(per) != 0);
    let large_end = (last + 1).div_euclid(per);
    if large_first >= large_end {
        return [(first, last), (1, 0), (1, 0)];
    }
    [
        (first, large_first * per - 1),
        (large_first, large_end - 1),
        (large_end * per, last),
    ]
}

impl Store {
    /// The per-minute counts of the minutes from `from` to `to` (µs of event time, both
    /// inclusive); minutes without events are absent.
    pub fn minute_counts(&self, from: i64, to: i64) -> Result<MinuteCounts, StorageError> {
        let txn = self.db.begin_read()?;
        let mut counts = MinuteCounts::default();
        let minutes = txn.open_table(MINUTE_COUNTS)?;
        read_counts(
            &minutes,
            from.div_euclid(MINUTE_US),
            to.div_euclid(MINUTE_US),
            1,
            &mut counts,
        )?;
        Ok(counts)
    }

    /// As [`Store::minute_counts`], but each whole hour inside the range is one row keyed by its
    /// first minute: for charts whose buckets are whole hours.
    pub fn hourly_counts(&self, from: i64, to: i64) -> Result<MinuteCounts, StorageError> {
        let txn = self.db.begin_read()?;
        let mut counts = MinuteCounts::default();
        let minutes = txn.open_table(MINUTE_COUNTS)?;
        let hours = txn.open_table(HOURLY_COUNTS)?;
        let [before, whole, after] =
            split(from.div_euclid(MINUTE_US), to.div_euclid(MINUTE_US), 60);
        read_counts(&minutes, before.0, before.1, 1, &mut counts)?;
        read_counts(&hours, whole.0, whole.1, 60, &mut counts)?;
        read_counts(&minutes, after.0, after.1, 1, &mut counts)?;
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
        let hourly = txn.open_table(HOURLY_TALLIES)?;
        let daily = txn.open_table(DAILY_TALLIES)?;
        let code = dimension.code();
        let [before, days, after] = split(from.div_euclid(HOUR_US), to.div_euclid(HOUR_US), 24);
        let mut sums: FxHashMap<String, (u64, u64)> = FxHashMap::default();
        sum_tallies(&hourly, code, before, &mut sums)?;
        sum_tallies(&daily, code, days, &mut sums)?;
        sum_tallies(&hourly, code, after, &mut sums)?;
        Ok(ranked(sums))
    }
}

/// Adds the rows of `table` from unit `first` to `last` to `counts`, keyed by minute (a unit
/// is `minutes` long).
fn read_counts(
    table: &impl ReadableTable<(i64, &'static str), u64>,
    first: i64,
    last: i64,
    minutes: i64,
    counts: &mut MinuteCounts,
) -> Result<(), StorageError> {
    if first > last {
        return Ok(());
    }
    for row in table.range((first, "")..=(last, "~"))? {
        let (key, count) = row?;
        let (unit, series) = key.value();
        if let Some(name) = SERIES.iter().find(|s| **s == series) {
            *counts.0.entry((unit * minutes, name)).or_default() += count.value();
        }
    }
    Ok(())
}

/// Adds the tallies of `dimension` in the units from `span.0` to `span.1` to `sums`.
fn sum_tallies(
    table: &impl ReadableTable<(u8, i64, &'static str), (u64, u64)>,
    code: u8,
    (first, last): (i64, i64),
    sums: &mut FxHashMap<String, (u64, u64)>,
) -> Result<(), StorageError> {
    if first > last {
        return Ok(());
    }
    for row in table.range((code, first, "")..(code, last.saturating_add(1), ""))? {
        let (key, value) = row?;
        let (events, failures) = value.value();
        let name = key.value().2;
        let sum = if let Some(sum) = sums.get_mut(name) {
            sum
        } else {
            sums.entry(name.to_string()).or_default()
        };
        sum.0 += events;
        sum.1 += failures;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Event;
    use crate::storage::EncodedEvent;

    fn with(id: &str, ts: i64, success: Option<bool>) -> Event {
        Event {
            success,
            ..Event::sample(id, ts)
        }
    }

    #[test]
    fn minute_counts_match_the_stored_events_and_skip_duplicates() {
        let (_dir, store) = Store::temporary();
        let minute = MINUTE_US;
        let first = vec![
            with("a", 0, Some(false)),
            with("b", minute - 1, Some(false)),
            with("c", minute, Some(true)),
            with("d", 3 * minute + 5, None),
            // Before 1970: the minute is floored, not truncated towards zero.
            with("e", -1, Some(true)),
        ];
        store.append_batches(&[EncodedEvent::all(&first)]).unwrap();
        // A second commit: one new event in a counted minute, one duplicate (not counted).
        let second = vec![with("f", 10, Some(false)), with("a", 0, Some(false))];
        let outcome = store.append_batches(&[EncodedEvent::all(&second)]).unwrap();
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
        let (_dir, store) = Store::temporary();
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
        store.append_batches(&[EncodedEvent::all(&events)]).unwrap();
        // A duplicate is not counted again.
        let again = vec![from("a", 0, "192.0.2.1", Some("root"), Some(false))];
        store.append_batches(&[EncodedEvent::all(&again)]).unwrap();
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

    #[test]
    fn ranges_split_into_whole_larger_units_and_edges() {
        assert_eq!(split(0, 59, 60), [(0, -1), (0, 0), (60, 59)]);
        assert_eq!(split(30, 200, 60), [(30, 59), (1, 2), (180, 200)]);
        assert_eq!(split(30, 100, 60), [(30, 100), (1, 0), (1, 0)]);
        assert_eq!(split(-90, -1, 60), [(-90, -61), (-1, -1), (0, -1)]);
        assert_eq!(split(5, 5, 24), [(5, 5), (1, 0), (1, 0)]);
    }

    /// Events over four days at irregular times, from a few addresses and accounts.
    fn spread_events(store: &Store) -> Vec<Event> {
        let mut events = Vec::new();
        let mut t = -3 * HOUR_US - 17 * MINUTE_US;
        for i in 0..600u32 {
            t += i64::from(i % 7 + 1) * 9 * MINUTE_US + i64::from(i % 13) * 1_000_000;
            events.push(Event {
                source_ip: Some(std::net::IpAddr::from([192, 0, 2, (i % 5) as u8])),
                username: Some(format!("user{}", i % 3)),
                host: Some(format!("host{}", i % 2)),
                success: [Some(false), Some(true), None][(i % 3) as usize],
                ..Event::sample(&format!("e{i}"), t)
            });
        }
        for chunk in events.chunks(70) {
            store.append_batches(&[EncodedEvent::all(chunk)]).unwrap();
        }
        events
    }

    #[test]
    fn hourly_and_daily_sums_read_like_the_finer_rows() {
        let (_dir, store) = Store::temporary();
        let events = spread_events(&store);
        let end = events.last().unwrap().timestamp;
        for (from, to) in [
            (-5 * HOUR_US, end),
            (-3 * HOUR_US + 7 * MINUTE_US + 5, end - 10 * MINUTE_US),
            (HOUR_US + 1, 2 * HOUR_US - 1),
            (20 * HOUR_US - 30 * MINUTE_US, 50 * HOUR_US + 30 * MINUTE_US),
            (end, end),
        ] {
            // Per hour: what the minutes of each hour add up to, inside the range.
            let mut by_hour: BTreeMap<(i64, &str), u64> = BTreeMap::new();
            for ((minute, series), n) in store.minute_counts(from, to).unwrap().0 {
                *by_hour
                    .entry((minute.div_euclid(60) * 60, series))
                    .or_default() += n;
            }
            let mut hourly: BTreeMap<(i64, &str), u64> = BTreeMap::new();
            for ((minute, series), n) in store.hourly_counts(from, to).unwrap().0 {
                *hourly
                    .entry((minute.div_euclid(60) * 60, series))
                    .or_default() += n;
            }
            assert_eq!(hourly, by_hour, "{from}..{to}");
            // The tallies of the hours holding `from` to `to`, counted from the events.
            let hours = from.div_euclid(HOUR_US)..=to.div_euclid(HOUR_US);
            let inside: Vec<&Event> = events
                .iter()
                .filter(|e| hours.contains(&e.timestamp.div_euclid(HOUR_US)))
                .collect();
            let mut expected: FxHashMap<String, (u64, u64)> = FxHashMap::default();
            for e in &inside {
                let sum = expected.entry(e.username.clone().unwrap()).or_default();
                sum.0 += 1;
                sum.1 += u64::from(e.success == Some(false));
            }
            assert_eq!(
                store.tallies(Dimension::Account, from, to).unwrap(),
                ranked(expected),
                "{from}..{to}"
            );
        }
    }

    #[test]
    fn a_version_1_database_gets_its_sums_once() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db.redb");
        let end = 100 * HOUR_US + 30 * MINUTE_US;
        let (days, hours) = {
            let store = Store::open(&path, 1 << 20).unwrap();
            spread_events(&store);
            let read = |s: &Store| {
                (
                    s.tallies(Dimension::Address, -10 * HOUR_US, end).unwrap(),
                    s.hourly_counts(-10 * HOUR_US, end).unwrap(),
                )
            };
            let before = read(&store);
            // As a version 1 file: no sums.
            let txn = store.db.begin_write().unwrap();
            txn.delete_table(DAILY_TALLIES).unwrap();
            txn.delete_table(HOURLY_COUNTS).unwrap();
            txn.open_table(DAILY_TALLIES).unwrap();
            txn.open_table(HOURLY_COUNTS).unwrap();
            txn.open_table(super::super::tables::META)
                .unwrap()
                .insert(super::super::tables::SCHEMA_VERSION_KEY, 1)
                .unwrap();
            txn.commit().unwrap();
            assert_ne!(read(&store), before);
            before
        };
        let store = Store::open(&path, 1 << 20).unwrap();
        assert_eq!(store.schema_version().unwrap(), 2);
        assert_eq!(
            store
                .tallies(Dimension::Address, -10 * HOUR_US, end)
                .unwrap(),
            days
        );
        assert_eq!(store.hourly_counts(-10 * HOUR_US, end).unwrap(), hours);
    }
}
