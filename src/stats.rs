//! The numbers behind the charts and top lists, for the API and the pages alike: buckets of
//! the per-minute counts, and the hourly tallies ranked (countries grouped from the
//! addresses' tallies with the geolocation database).

use rustc_hash::FxHashMap;

use crate::geo::Geo;
use crate::storage::{Dimension, StorageError, Store, Tally, ranked};

const MINUTE_US: i64 = 60_000_000;
/// Most buckets one timeline has.
pub const MAX_BUCKETS: i64 = 10_080;

/// One bucket of a timeline.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Bucket {
    /// Start, µs since the epoch.
    pub start: i64,
    pub events: u64,
    pub failures: u64,
    pub successes: u64,
    /// Alerts opened, by severity: low, medium, high, critical.
    pub alerts: [u64; 4],
}

/// Why a timeline cannot be made.
#[derive(Debug, thiserror::Error)]
pub enum TimelineError {
    #[error("`from` is after `to`")]
    Reversed,
    #[error("more than {MAX_BUCKETS} buckets: narrow `from`/`to` or raise `step_minutes`")]
    TooManyBuckets,
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// Buckets of `step_minutes` from the one holding `from` to the one holding `to` (µs), each
/// with the sums of its minutes; buckets without events are there with zeros.
pub fn timeline(
    store: &Store,
    from: i64,
    to: i64,
    step_minutes: i64,
) -> Result<Vec<Bucket>, TimelineError> {
    if from > to {
        return Err(TimelineError::Reversed);
    }
    let step = step_minutes.clamp(1, MAX_BUCKETS);
    let first = from.div_euclid(MINUTE_US).div_euclid(step) * step;
    let last = to.div_euclid(MINUTE_US).div_euclid(step) * step;
    let count = (last - first) / step + 1;
    if count > MAX_BUCKETS {
        return Err(TimelineError::TooManyBuckets);
    }
    let mut buckets: Vec<Bucket> = (0..count)
        .map(|i| Bucket {
            start: (first + i * step) * MINUTE_US,
            ..Bucket::default()
        })
        .collect();
    // Buckets of whole hours are summed from the hourly counts.
    let counts = if step % 60 == 0 {
        store.hourly_counts(from, to)?
    } else {
        store.minute_counts(from, to)?
    };
    for ((minute, series), n) in counts.0 {
        let Some(bucket) = buckets.get_mut(((minute - first) / step) as usize) else {
            continue;
        };
        match series {
            "events" => bucket.events += n,
            "failures" => bucket.failures += n,
            "successes" => bucket.successes += n,
            "alerts_low" => bucket.alerts[0] += n,
            "alerts_medium" => bucket.alerts[1] += n,
            "alerts_high" => bucket.alerts[2] += n,
            "alerts_critical" => bucket.alerts[3] += n,
            _ => {}
        }
    }
    Ok(buckets)
}

/// What a top list ranks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ranked {
    Stored(Dimension),
    /// Countries of the source addresses (`internal` and `unknown` included).
    Country,
}

impl Ranked {
    #[must_use]
    pub fn parse(text: &str) -> Option<Self> {
        if text == "country" {
            Some(Self::Country)
        } else {
            Dimension::parse(text).map(Self::Stored)
        }
    }
}

/// The top `limit` of `ranked` over the hours holding `from` to `to`, most failures first.
pub fn top(
    store: &Store,
    geo: Option<&Geo>,
    ranked: Ranked,
    from: i64,
    to: i64,
    limit: usize,
) -> Result<Vec<Tally>, StorageError> {
    let mut tallies = match ranked {
        Ranked::Stored(dimension) => store.tallies(dimension, from, to)?,
        Ranked::Country => by_country(geo, &store.tallies(Dimension::Address, from, to)?),
    };
    tallies.truncate(limit);
    Ok(tallies)
}

/// Address tallies summed per country, ranked.
#[must_use]
pub fn by_country(geo: Option<&Geo>, addresses: &[Tally]) -> Vec<Tally> {
    let mut sums: FxHashMap<String, (u64, u64)> = FxHashMap::default();
    for tally in addresses {
        let country = match (geo, tally.key.parse()) {
            (Some(geo), Ok(ip)) => geo.locate(ip).as_str().to_string(),
            _ => "unknown".to_string(),
        };
        let sum = sums.entry(country).or_default();
        sum.0 += tally.events;
        sum.1 += tally.failures;
    }
    ranked(sums)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn countries_sum_their_addresses() {
        let geo = Geo::built_in().unwrap();
        let tally = |key: &str, events, failures| Tally {
            key: key.into(),
            events,
            failures,
        };
        let grouped = by_country(
            Some(&geo),
            &[
                tally("10.0.0.1", 5, 1),
                tally("8.8.8.8", 3, 3),
                tally("192.168.1.1", 2, 2),
                tally("8.8.4.4", 1, 1),
                tally("not an address", 1, 1),
            ],
        );
        assert_eq!(
            grouped,
            [
                tally("US", 4, 4),
                tally("internal", 7, 3),
                tally("unknown", 1, 1)
            ]
        );
    }
}
