//! The event log: appending batches in one durable transaction with `event_id` de-duplication,
//! point look-ups by `event_id`, and filtered time-range scans, newest first.

use std::net::IpAddr;

use redb::{Durability, ReadableDatabase, ReadableTable, ReadableTableMetadata};

use std::sync::atomic::Ordering;

use super::counts::Tallies;
use super::tables::{self, COMMIT_LOG, EVENT_IDS, EVENTS, META, NEXT_COMMIT_KEY, NEXT_SEQ_KEY};
use super::{StorageError, Store, TemplateRecord};
use crate::event::Event;

/// Most events examined by one query before it returns a page with a cursor to continue, so a
/// filter that matches little cannot hold a read transaction over the whole log.
const MAX_SCANNED_PER_QUERY: usize = 200_000;

/// What happened to one batch (one request) inside a group commit.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AppendOutcome {
    /// Events newly stored.
    pub accepted: usize,
    /// Events whose `event_id` was already stored (or repeated earlier in the same commit).
    pub duplicates: usize,
    /// Positions in the batch of those duplicates, so that only stored events are detected on.
    pub duplicate_positions: Vec<u32>,
    /// Of the events stored, the failures and the successes.
    pub failures: usize,
    pub successes: usize,
}

/// An event ready for the writer: its identity and its encoded record.
///
/// Encoding happens on the request's thread, so the single writer thread only inserts.
#[derive(Debug, Clone)]
pub struct EncodedEvent {
    event_id: String,
    timestamp: i64,
    /// The outcome, for the per-minute counts: none for a failure that tells again an attempt
    /// already counted ([`Event::tells_counted_failure`]).
    success: Option<bool>,
    /// Address (as text), account and host, for the hourly tallies.
    tally_keys: [Option<String>; 3],
    record: Vec<u8>,
}

impl EncodedEvent {
    #[must_use]
    pub fn new(event: &Event) -> Self {
        Self {
            event_id: event.event_id.clone(),
            timestamp: event.timestamp,
            success: event.success.filter(|_| !event.tells_counted_failure()),
            tally_keys: [
                event.source_ip.map(|ip| ip.to_string()),
                event.username.clone(),
                event.host.clone(),
            ],
            record: tables::encode_event(event),
        }
    }

    /// Encodes each of `events`, as one batch.
    #[cfg(test)]
    pub(crate) fn all(events: &[Event]) -> Vec<Self> {
        events.iter().map(Self::new).collect()
    }
}

/// Events of consecutive commits, as [`Store::committed_since`] reads them.
#[derive(Debug, Default)]
pub struct Committed {
    /// The first commit not read.
    pub next_commit: u64,
    pub events: Vec<(EventCursor, Event)>,
}

/// Position in the event log: event time in µs and arrival sequence.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct EventCursor {
    pub timestamp: i64,
    pub seq: u64,
}

/// A filtered time-range query; every field narrows the result.
#[derive(Debug, Clone, Default)]
pub struct EventQuery {
    /// Inclusive lower bound on event time, µs.
    pub from: Option<i64>,
    /// Inclusive upper bound on event time, µs.
    pub to: Option<i64>,
    pub source_ip: Option<IpAddr>,
    pub username: Option<String>,
    pub event_type: Option<String>,
    pub success: Option<bool>,
    /// Continue strictly before this position (from a previous page).
    pub before: Option<EventCursor>,
    /// Most events to return.
    pub limit: usize,
}

impl EventQuery {
    fn matches(&self, event: &Event) -> bool {
        self.source_ip.is_none_or(|ip| Some(ip) == event.source_ip)
            && self
                .username
                .as_deref()
                .is_none_or(|u| Some(u) == event.username.as_deref())
            && self
                .event_type
                .as_deref()
                .is_none_or(|t| t == event.event_type)
            && self.success.is_none_or(|s| Some(s) == event.success)
    }
}

/// One page of query results.
#[derive(Debug, Clone, Default)]
pub struct EventPage {
    pub events: Vec<Event>,
    /// Where the next page starts, if there may be more.
    pub next: Option<EventCursor>,
}

impl Store {
    /// Appends several batches in one durable transaction and reports per batch.
    ///
    /// When this returns `Ok`, every accepted event is on disk. An event whose `event_id` is
    /// already stored is counted as a duplicate and not written again.
    pub fn append_batches(
        &self,
        batches: &[Vec<EncodedEvent>],
    ) -> Result<Vec<AppendOutcome>, StorageError> {
        self.append(batches, &[])
    }

    /// [`Store::append_batches`], also writing the templates the events refer to, in the same
    /// transaction.
    pub fn append(
        &self,
        batches: &[Vec<EncodedEvent>],
        templates: &[TemplateRecord],
    ) -> Result<Vec<AppendOutcome>, StorageError> {
        let mut txn = self.db.begin_write()?;
        txn.set_durability(Durability::Immediate)?;
        // Quick repair is left off: it doubles the syncs per commit (two-phase commit) and
        // serialises the allocator state every time, which costs a third of ingest throughput.
        // Durability is the same either way; only the first start after a crash is slower,
        // because redb then walks the file to rebuild its allocator state.
        let mut outcomes = vec![AppendOutcome::default(); batches.len()];
        {
            let mut meta = txn.open_table(META)?;
            let mut events = txn.open_table(EVENTS)?;
            let mut ids = txn.open_table(EVENT_IDS)?;
            let mut log = txn.open_table(COMMIT_LOG)?;
            let first_seq = meta.get(NEXT_SEQ_KEY)?.map_or(0, |v| v.value());
            let commit = meta.get(NEXT_COMMIT_KEY)?.map_or(0, |v| v.value());
            // Every event gets its sequence number up front (a duplicate leaves a gap, which
            // is harmless). The id index is then updated in id order, so the commit sweeps the
            // index once instead of descending it at scattered points; the stable sort keeps
            // the first of several equal ids in arrival order the one that is stored.
            let all: Vec<(usize, usize, &EncodedEvent)> = batches
                .iter()
                .enumerate()
                .flat_map(|(b, batch)| batch.iter().enumerate().map(move |(p, e)| (b, p, e)))
                .collect();
            let mut by_id: Vec<usize> = (0..all.len()).collect();
            by_id.sort_by(|&x, &y| all[x].2.event_id.cmp(&all[y].2.event_id));
            let mut duplicate = vec![false; all.len()];
            for i in by_id {
                let event = all[i].2;
                let key = (event.timestamp, first_seq + i as u64);
                // One traversal for the common case: insert, and only if the id was already
                // there (a duplicate, rare) put the original back.
                let previous = ids.insert(event.event_id.as_str(), key)?.map(|v| v.value());
                if let Some(previous) = previous {
                    ids.insert(event.event_id.as_str(), previous)?;
                    duplicate[i] = true;
                }
            }
            let mut stored = Vec::with_capacity(all.len());
            let mut tallies = Tallies::default();
            for (i, (batch, position, event)) in all.iter().enumerate() {
                if duplicate[i] {
                    outcomes[*batch].duplicates += 1;
                    outcomes[*batch].duplicate_positions.push(*position as u32);
                } else {
                    let key = (event.timestamp, first_seq + i as u64);
                    events.insert(key, event.record.as_slice())?;
                    stored.push(key);
                    tallies.add(event.timestamp, event.success, &event.tally_keys);
                    let outcome = &mut outcomes[*batch];
                    outcome.accepted += 1;
                    match event.success {
                        Some(true) => outcome.successes += 1,
                        Some(false) => outcome.failures += 1,
                        None => {}
                    }
                }
            }
            tallies.write(&txn)?;
            meta.insert(NEXT_SEQ_KEY, first_seq + all.len() as u64)?;
            if !stored.is_empty() {
                log.insert(commit, tables::encode(&stored).as_slice())?;
                meta.insert(NEXT_COMMIT_KEY, commit + 1)?;
            }
            // Rows the search index already holds.
            let indexed = self.indexed_below.load(Ordering::Relaxed);
            if log
                .first()?
                .is_some_and(|(first, _)| first.value() < indexed)
            {
                log.retain_in(..indexed, |_, _| false)?;
            }
        }
        super::templates::upsert(&txn, templates)?;
        txn.commit()?;
        Ok(outcomes)
    }

    /// The event with this `event_id`, if stored.
    pub fn get_event(&self, event_id: &str) -> Result<Option<Event>, StorageError> {
        let txn = self.db.begin_read()?;
        let ids = txn.open_table(EVENT_IDS)?;
        let Some(key) = ids.get(event_id)?.map(|v| v.value()) else {
            return Ok(None);
        };
        let events = txn.open_table(EVENTS)?;
        let Some(bytes) = events.get(key)? else {
            return Err(StorageError::Corrupt(format!(
                "index names a missing event for {event_id}"
            )));
        };
        tables::decode_event(bytes.value()).map(Some)
    }

    /// The events of the commits numbered `from` and on, whole commits until at least
    /// `max_events` are read, with their keys: what the search index follows.
    pub fn committed_since(&self, from: u64, max_events: usize) -> Result<Committed, StorageError> {
        let txn = self.db.begin_read()?;
        let log = txn.open_table(COMMIT_LOG)?;
        let events = txn.open_table(EVENTS)?;
        let mut committed = Committed {
            next_commit: from,
            events: Vec::new(),
        };
        for row in log.range(from..)? {
            let (commit, keys) = row?;
            let keys: Vec<(i64, u64)> = tables::decode(keys.value())?;
            for (timestamp, seq) in keys {
                // A key without its event: removed since (retention); nothing to index.
                if let Some(bytes) = events.get((timestamp, seq))? {
                    let event = tables::decode_event(bytes.value())?;
                    committed
                        .events
                        .push((EventCursor { timestamp, seq }, event));
                }
            }
            committed.next_commit = commit.value() + 1;
            if committed.events.len() >= max_events {
                break;
            }
        }
        Ok(committed)
    }

    /// The number the next event commit will get.
    pub fn next_commit(&self) -> Result<u64, StorageError> {
        let txn = self.db.begin_read()?;
        let meta = txn.open_table(META)?;
        Ok(meta.get(NEXT_COMMIT_KEY)?.map_or(0, |v| v.value()))
    }

    /// Records that the search index holds every commit below `commit`; their log rows go
    /// with the next event commit.
    pub fn set_indexed_below(&self, commit: u64) {
        self.indexed_below.fetch_max(commit, Ordering::Relaxed);
    }

    /// Commits below this number are in the search index (0 until the index says so).
    #[must_use]
    pub fn indexed_below(&self) -> u64 {
        self.indexed_below.load(Ordering::Relaxed)
    }

    /// Every stored event in key order, from one snapshot, for rebuilding the search index;
    /// `each` gets the event count first (for progress) and may stop the walk with an error.
    /// Returns the number of the first commit the snapshot does not hold.
    pub fn walk_events<E: From<StorageError>>(
        &self,
        mut total: impl FnMut(u64),
        mut each: impl FnMut(EventCursor, Event) -> Result<(), E>,
    ) -> Result<u64, E> {
        let txn = self.db.begin_read().map_err(StorageError::from)?;
        let meta = txn.open_table(META).map_err(StorageError::from)?;
        let next_commit = meta
            .get(NEXT_COMMIT_KEY)
            .map_err(StorageError::from)?
            .map_or(0, |v| v.value());
        let events = txn.open_table(EVENTS).map_err(StorageError::from)?;
        total(events.len().map_err(StorageError::from)?);
        for row in events.iter().map_err(StorageError::from)? {
            let (key, bytes) = row.map_err(StorageError::from)?;
            let (timestamp, seq) = key.value();
            let event = tables::decode_event(bytes.value())?;
            each(EventCursor { timestamp, seq }, event)?;
        }
        Ok(next_commit)
    }

    /// The events at these keys, in the same order; a key whose event is gone is skipped.
    pub fn events_at(&self, keys: &[EventCursor]) -> Result<Vec<Event>, StorageError> {
        let txn = self.db.begin_read()?;
        let events = txn.open_table(EVENTS)?;
        let mut found = Vec::with_capacity(keys.len());
        for key in keys {
            if let Some(bytes) = events.get((key.timestamp, key.seq))? {
                found.push(tables::decode_event(bytes.value())?);
            }
        }
        Ok(found)
    }

    /// Event time of the newest stored event.
    pub fn newest_event_time(&self) -> Result<Option<i64>, StorageError> {
        let txn = self.db.begin_read()?;
        let table = txn.open_table(EVENTS)?;
        Ok(table.last()?.map(|(key, _)| key.value().0))
    }

    /// The newest `limit` events at or after `from` (µs), oldest first: what detection replays
    /// on start.
    pub fn recent_events(&self, from: i64, limit: usize) -> Result<Vec<Event>, StorageError> {
        let txn = self.db.begin_read()?;
        let table = txn.open_table(EVENTS)?;
        let mut events = Vec::new();
        for entry in table.range((from, 0)..)?.rev().take(limit) {
            events.push(tables::decode_event(entry?.1.value())?);
        }
        events.reverse();
        Ok(events)
    }

    /// Number of stored events.
    pub fn event_count(&self) -> Result<u64, StorageError> {
        let txn = self.db.begin_read()?;
        Ok(txn.open_table(EVENTS)?.len()?)
    }

    /// Events matching `query`, newest first.
    pub fn query_events(&self, query: &EventQuery) -> Result<EventPage, StorageError> {
        let lower = (query.from.unwrap_or(i64::MIN), 0u64);
        let mut upper = (query.to.unwrap_or(i64::MAX), u64::MAX);
        if let Some(before) = query.before {
            // `before` is exclusive; step back one position to make an inclusive bound.
            let stepped = match before.seq.checked_sub(1) {
                Some(seq) => Some((before.timestamp, seq)),
                None => before.timestamp.checked_sub(1).map(|t| (t, u64::MAX)),
            };
            match stepped {
                Some(bound) if bound < upper => upper = bound,
                Some(_) => {}
                None => return Ok(EventPage::default()),
            }
        }
        if lower > upper || query.limit == 0 {
            return Ok(EventPage::default());
        }
        let txn = self.db.begin_read()?;
        let table = txn.open_table(EVENTS)?;
        let mut page = EventPage::default();
        let mut scanned = 0usize;
        for entry in table.range(lower..=upper)?.rev() {
            let (key, value) = entry?;
            let (timestamp, seq) = key.value();
            scanned += 1;
            let event: Event = tables::decode_event(value.value())?;
            if query.matches(&event) {
                page.events.push(event);
                if page.events.len() == query.limit {
                    page.next = Some(EventCursor { timestamp, seq });
                    break;
                }
            }
            if scanned >= MAX_SCANNED_PER_QUERY {
                page.next = Some(EventCursor { timestamp, seq });
                break;
            }
        }
        Ok(page)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(id: &str, ts: i64, user: &str) -> Event {
        Event {
            username: Some(user.into()),
            ..Event::sample(id, ts)
        }
    }

    #[test]
    fn duplicates_are_counted_within_and_across_commits() {
        let (_dir, store) = Store::temporary();
        let out = store
            .append_batches(&[
                EncodedEvent::all(&[event("a", 1, "u"), event("a", 2, "u")]),
                EncodedEvent::all(&[event("b", 3, "u")]),
            ])
            .unwrap();
        assert_eq!(
            out[0],
            AppendOutcome {
                accepted: 1,
                duplicates: 1,
                duplicate_positions: vec![1],
                failures: 1,
                successes: 0,
            }
        );
        assert_eq!(
            out[1],
            AppendOutcome {
                accepted: 1,
                duplicates: 0,
                duplicate_positions: vec![],
                failures: 1,
                successes: 0,
            }
        );
        let out = store
            .append_batches(&[EncodedEvent::all(&[event("b", 9, "u")])])
            .unwrap();
        assert_eq!(out[0].duplicates, 1);
        assert_eq!(store.event_count().unwrap(), 2);
        assert_eq!(store.get_event("a").unwrap().unwrap().timestamp, 1);
    }

    #[test]
    fn pages_walk_newest_first_without_gaps_or_repeats() {
        let (_dir, store) = Store::temporary();
        // Several events share a timestamp so the cursor must use the sequence too.
        let batch: Vec<Event> = (0..25)
            .map(|i| {
                event(
                    &format!("e{i}"),
                    i / 3,
                    if i % 2 == 0 { "even" } else { "odd" },
                )
            })
            .collect();
        store.append_batches(&[EncodedEvent::all(&batch)]).unwrap();
        let mut seen = Vec::new();
        let mut query = EventQuery {
            limit: 4,
            ..EventQuery::default()
        };
        loop {
            let page = store.query_events(&query).unwrap();
            seen.extend(page.events.iter().map(|e| e.event_id.clone()));
            match page.next {
                Some(cursor) => query.before = Some(cursor),
                None => break,
            }
        }
        let expected: Vec<String> = (0..25).rev().map(|i| format!("e{i}")).collect();
        assert_eq!(seen, expected);

        let evens = store
            .query_events(&EventQuery {
                username: Some("even".into()),
                from: Some(3),
                to: Some(5),
                limit: 100,
                ..EventQuery::default()
            })
            .unwrap();
        let ids: Vec<&str> = evens.events.iter().map(|e| e.event_id.as_str()).collect();
        assert_eq!(ids, ["e16", "e14", "e12", "e10"]);
    }
}

/// The store against a plain in-memory model, under random appends (with repeated ids) and
/// random queries (filters, time bounds, page sizes), paging every query to its end.
#[cfg(test)]
mod model_tests {
    use std::collections::BTreeMap;

    use super::*;

    /// A small deterministic generator (xorshift64*), so a failure replays exactly.
    struct Rng(u64);

    impl Rng {
        fn below(&mut self, n: u64) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) % n
        }
    }

    fn random_event(rng: &mut Rng) -> Event {
        let id = format!("id{}", rng.below(400));
        Event {
            // Log lines may name no address, no user and no outcome: filters must skip those.
            source_ip: ["192.0.2.1", "2001:db8::1", "198.51.100.7", "-"][rng.below(4) as usize]
                .parse()
                .ok(),
            event_type: ["LOGIN_ATTEMPT", "SUDO"][rng.below(2) as usize].into(),
            username: [Some("alice"), Some("bob"), Some("carol"), None][rng.below(4) as usize]
                .map(str::to_string),
            success: [Some(true), Some(false), None][rng.below(3) as usize],
            ..Event::sample(&id, rng.below(50) as i64 - 10)
        }
    }

    #[test]
    fn queries_match_a_model_under_random_appends() {
        let (_dir, store) = Store::temporary();
        let mut rng = Rng(0x5EC0_21F1);
        // The model: the first event stored for each id, ordered like the store's keys.
        let mut by_id: BTreeMap<String, (i64, u64, Event)> = BTreeMap::new();
        let mut arrival = 0u64;
        for round in 0..60 {
            let batches: Vec<Vec<Event>> = (0..=rng.below(3))
                .map(|_| (0..rng.below(12)).map(|_| random_event(&mut rng)).collect())
                .collect();
            let encoded: Vec<Vec<EncodedEvent>> =
                batches.iter().map(|b| EncodedEvent::all(b)).collect();
            let outcomes = store.append_batches(&encoded).unwrap();
            for (batch, outcome) in batches.iter().zip(&outcomes) {
                let mut expected = AppendOutcome::default();
                for (position, event) in batch.iter().enumerate() {
                    arrival += 1;
                    if by_id.contains_key(&event.event_id) {
                        expected.duplicates += 1;
                        expected.duplicate_positions.push(position as u32);
                    } else {
                        by_id.insert(
                            event.event_id.clone(),
                            (event.timestamp, arrival, event.clone()),
                        );
                        expected.accepted += 1;
                        match event.success {
                            Some(true) => expected.successes += 1,
                            Some(false) => expected.failures += 1,
                            None => {}
                        }
                    }
                }
                assert_eq!(*outcome, expected, "round {round}");
            }

            for _ in 0..4 {
                let query = EventQuery {
                    from: (rng.below(3) == 0).then(|| rng.below(40) as i64 - 15),
                    to: (rng.below(3) == 0).then(|| rng.below(40) as i64),
                    username: (rng.below(3) == 0)
                        .then(|| ["alice", "bob", "zed"][rng.below(3) as usize].to_string()),
                    success: (rng.below(3) == 0).then(|| rng.below(2) == 0),
                    limit: 1 + rng.below(7) as usize,
                    ..EventQuery::default()
                };
                let mut expected: Vec<&(i64, u64, Event)> = by_id
                    .values()
                    .filter(|(ts, _, e)| {
                        query.from.is_none_or(|f| *ts >= f)
                            && query.to.is_none_or(|t| *ts <= t)
                            && query.matches(e)
                    })
                    .collect();
                // Newest first: by event time, then by arrival.
                expected.sort_by_key(|e| std::cmp::Reverse((e.0, e.1)));
                let expected: Vec<&str> = expected
                    .iter()
                    .map(|(_, _, e)| e.event_id.as_str())
                    .collect();

                let mut got = Vec::new();
                let mut page_query = query.clone();
                loop {
                    let page = store.query_events(&page_query).unwrap();
                    assert!(page.events.len() <= query.limit);
                    got.extend(page.events.into_iter().map(|e| e.event_id));
                    match page.next {
                        Some(cursor) => page_query.before = Some(cursor),
                        None => break,
                    }
                }
                assert_eq!(got, expected, "round {round}, query {query:?}");
            }
        }
        assert_eq!(store.event_count().unwrap(), by_id.len() as u64);
    }
}
