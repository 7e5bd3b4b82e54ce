//! How the matches of a query spread over time: a collector over the time column that counts
//! per bucket and per hour of the day, for the address and account pages.

use std::collections::BTreeMap;

use tantivy::Term;
use tantivy::query::{BooleanQuery, Occur, Query, RangeQuery};

use super::query::Find;
use super::{SearchError, SearchIndex};

impl SearchIndex {
    /// How the events matching `find` between `from` and `to` (µs, inclusive) spread over
    /// buckets of `bucket_us` and over the hours of the day (UTC).
    pub fn histogram(
        &self,
        find: &Find<'_>,
        from: Option<i64>,
        to: Option<i64>,
        bucket_us: i64,
    ) -> Result<Histogram, SearchError> {
        let parsed = self.query_of(find)?;
        let bound = |v: Option<i64>| {
            v.map_or(std::ops::Bound::Unbounded, |v| {
                std::ops::Bound::Included(Term::from_field_i64(self.fields.time, v))
            })
        };
        let mut clauses: Vec<(Occur, Box<dyn Query>)> = vec![(Occur::Must, parsed)];
        // A range query needs a bound (tantivy refuses one without).
        if from.is_some() || to.is_some() {
            clauses.push((
                Occur::Must,
                Box::new(RangeQuery::new(bound(from), bound(to))),
            ));
        }
        let query = BooleanQuery::new(clauses);
        let searcher = self.reader.searcher();
        Ok(searcher.search(
            &query,
            &HistogramCollector {
                bucket_us: bucket_us.max(1),
            },
        )?)
    }
}

/// Events per bucket of time and per hour of the day.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Histogram {
    pub total: u64,
    /// Per hour of the day (UTC).
    pub hours: [u64; 24],
    /// Per bucket, by its start (µs).
    pub buckets: BTreeMap<i64, u64>,
}

impl Histogram {
    fn add_run(&mut self, (start, count): (i64, u64)) {
        if count > 0 {
            *self.buckets.entry(start).or_default() += count;
        }
    }

    fn merge(&mut self, other: Self) {
        self.total += other.total;
        for (mine, theirs) in self.hours.iter_mut().zip(other.hours) {
            *mine += theirs;
        }
        for (start, count) in other.buckets {
            *self.buckets.entry(start).or_default() += count;
        }
    }
}

/// Collects a [`Histogram`] from the time column.
struct HistogramCollector {
    bucket_us: i64,
}

struct HistogramSegment {
    times: tantivy::columnar::Column<i64>,
    bucket_us: i64,
    found: Histogram,
    /// The bucket being counted and its count so far: documents arrive in about time order,
    /// so most of them add to the same bucket as the one before (no map lookup each).
    run: (i64, u64),
}

impl tantivy::collector::Collector for HistogramCollector {
    type Fruit = Histogram;
    type Child = HistogramSegment;

    fn for_segment(
        &self,
        _segment: tantivy::SegmentOrdinal,
        reader: &tantivy::SegmentReader,
    ) -> tantivy::Result<HistogramSegment> {
        Ok(HistogramSegment {
            times: reader.fast_fields().i64("time")?,
            bucket_us: self.bucket_us,
            found: Histogram::default(),
            run: (0, 0),
        })
    }

    fn requires_scoring(&self) -> bool {
        false
    }

    fn merge_fruits(&self, fruits: Vec<Histogram>) -> tantivy::Result<Histogram> {
        let mut all = Histogram::default();
        for fruit in fruits {
            all.merge(fruit);
        }
        Ok(all)
    }
}

impl tantivy::collector::SegmentCollector for HistogramSegment {
    type Fruit = Histogram;

    fn collect(&mut self, doc: tantivy::DocId, _score: tantivy::Score) {
        if let Some(time) = self.times.first(doc) {
            self.found.total += 1;
            self.found.hours[time.div_euclid(3_600_000_000).rem_euclid(24) as usize] += 1;
            let bucket = time.div_euclid(self.bucket_us) * self.bucket_us;
            if bucket == self.run.0 {
                self.run.1 += 1;
            } else {
                self.found
                    .add_run(std::mem::replace(&mut self.run, (bucket, 1)));
            }
        }
    }

    fn harvest(mut self) -> Histogram {
        self.found.add_run(self.run);
        self.found
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Event;
    use crate::search::MIN_MEMORY_BYTES;
    use crate::search::query::Exact;
    use crate::storage::Store;

    #[test]
    fn histograms_count_every_match_per_bucket_and_hour() {
        let (dir, store) = Store::temporary();
        let hour = 3_600_000_000;
        let events: Vec<Event> = (0..400i64)
            .map(|i| Event {
                username: Some(if i % 3 == 0 { "bob" } else { "alice" }.to_string()),
                success: Some(i % 4 == 0),
                // Out of time order across commits, and spread over six days.
                ..Event::sample(&format!("e{i}"), ((i * 7919) % 400) * hour / 3 + i)
            })
            .collect();
        for chunk in events.chunks(90) {
            store
                .append_batches(&[crate::storage::EncodedEvent::all(chunk)])
                .unwrap();
        }
        let (search, _) = SearchIndex::open(&dir.path().join("index")).unwrap();
        search.rebuild(&store, MIN_MEMORY_BYTES, |_, _| {}).unwrap();
        let day = 24 * hour;
        let found = search
            .histogram(
                &Find::Exact {
                    field: Exact::Account,
                    value: "alice",
                    outcome: Some("failure"),
                },
                None,
                None,
                day,
            )
            .unwrap();
        let mut expected = Histogram::default();
        for e in events
            .iter()
            .filter(|e| e.username.as_deref() == Some("alice") && e.success == Some(false))
        {
            expected.total += 1;
            expected.hours[(e.timestamp / hour % 24) as usize] += 1;
            *expected.buckets.entry(e.timestamp / day * day).or_default() += 1;
        }
        assert!(expected.buckets.len() > 3);
        assert_eq!(found.total, expected.total);
        assert_eq!(found.hours, expected.hours);
        assert_eq!(found.buckets, expected.buckets);
    }
}
