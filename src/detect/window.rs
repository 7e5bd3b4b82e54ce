//! Event-time windows: what happened to one key (an address, an account) within a sliding span
//! of event time, correct whatever order the events arrive in.
//!
//! Detection runs on event time, never arrival time: a replayed file, an import, a sender
//! whose clock is off or lines that arrive out of order must find the same attacks a live,
//! ordered feed does. So a window keeps its entries sorted by event time, and a question is
//! asked about every span that contains the new event, not only the span that ends at it: a
//! late event can complete a burst whose other events arrived first. Memory is bounded by
//! [`Window::expire`], which the detector calls with a watermark (the newest event time seen,
//! less the span and the lateness it tolerates).

use std::collections::VecDeque;

/// Entries of one key, ordered by event time (µs), then arrival. A ring buffer: in a live feed
/// entries arrive in order and go on the end; a late one is put in its place, which moves at
/// most `cap` entries.
#[derive(Debug, Clone)]
pub struct Window<V> {
    /// Length of the sliding span, in µs.
    span: i64,
    /// Most entries kept: beyond it the oldest goes. Counts then saturate at the cap, which is
    /// set well above any threshold, and a question costs at most this many steps however hot
    /// the key.
    cap: usize,
    entries: VecDeque<(i64, V)>,
}

/// The busiest span found around an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Burst {
    /// Entries in the span.
    pub count: usize,
    /// Event time of its first and last entry.
    pub first: i64,
    pub last: i64,
}

impl<V> Window<V> {
    /// A window over spans of `span` µs (both ends included), keeping at most `cap` entries.
    #[must_use]
    pub fn new(span: i64, cap: usize) -> Self {
        Self {
            span,
            cap: cap.max(1),
            entries: VecDeque::new(),
        }
    }

    /// Adds an entry at event time `at`; beyond the cap the oldest entry goes, and is returned.
    pub fn insert(&mut self, at: i64, value: V) -> Option<V> {
        if self.entries.back().is_none_or(|(last, _)| *last <= at) {
            self.entries.push_back((at, value));
        } else {
            let place = self.entries.partition_point(|(t, _)| *t <= at);
            self.entries.insert(place, (at, value));
        }
        if self.entries.len() > self.cap {
            return self.entries.pop_front().map(|(_, v)| v);
        }
        None
    }

    #[must_use]
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Event time of the oldest entry.
    #[must_use]
    pub fn first_at(&self) -> Option<i64> {
        self.entries.front().map(|(t, _)| *t)
    }

    /// Event time of the newest entry.
    #[must_use]
    pub fn last_at(&self) -> Option<i64> {
        self.entries.back().map(|(t, _)| *t)
    }

    /// Drops entries older than `before` (µs) and returns them.
    pub fn expire(&mut self, before: i64) -> Vec<V> {
        let old = self.entries.partition_point(|(t, _)| *t < before);
        self.entries.drain(..old).map(|(_, v)| v).collect()
    }

    /// The busiest span of the window's length that contains event time `at`.
    #[must_use]
    pub fn busiest_around(&self, at: i64) -> Burst {
        // In order (nothing after `at`), the busiest span is the one that ends at `at`.
        if self.entries.back().is_some_and(|(t, _)| *t <= at) {
            let start = self.position(at.saturating_sub(self.span));
            return Burst {
                count: self.entries.len() - start,
                first: self.entries.get(start).map_or(at, |(t, _)| *t),
                last: at,
            };
        }
        let times: Vec<i64> = self
            .between(at.saturating_sub(self.span), at.saturating_add(self.span))
            .map(|(t, _)| t)
            .collect();
        let mut best = Burst {
            count: 0,
            first: at,
            last: at,
        };
        // Two pointers over the sorted times: for each start, the furthest end within the span;
        // only spans that contain `at` count.
        let mut end = 0;
        for start in 0..times.len() {
            if times[start] > at {
                break;
            }
            end = end.max(start);
            while end + 1 < times.len() && times[end + 1] - times[start] <= self.span {
                end += 1;
            }
            if times[end] >= at && end + 1 - start > best.count {
                best = Burst {
                    count: end + 1 - start,
                    first: times[start],
                    last: times[end],
                };
            }
        }
        best
    }

    /// The span of the window's length that contains event time `at` and holds the most
    /// distinct values of `key`; its count is the number of those values.
    pub fn most_distinct_around<K: std::hash::Hash + Eq>(
        &self,
        at: i64,
        key: impl Fn(&V) -> K,
    ) -> Burst {
        let entries: Vec<(i64, K)> = self
            .between(at.saturating_sub(self.span), at.saturating_add(self.span))
            .map(|(t, v)| (t, key(v)))
            .collect();
        let mut best = Burst {
            count: 0,
            first: at,
            last: at,
        };
        let mut counts: rustc_hash::FxHashMap<&K, usize> = rustc_hash::FxHashMap::default();
        let mut end = 0;
        for start in 0..entries.len() {
            if entries[start].0 > at {
                break;
            }
            while end < entries.len() && entries[end].0 - entries[start].0 <= self.span {
                *counts.entry(&entries[end].1).or_insert(0) += 1;
                end += 1;
            }
            if end > start && entries[end - 1].0 >= at && counts.len() > best.count {
                best = Burst {
                    count: counts.len(),
                    first: entries[start].0,
                    last: entries[end - 1].0,
                };
            }
            if let Some(n) = counts.get_mut(&entries[start].1) {
                *n -= 1;
                if *n == 0 {
                    counts.remove(&entries[start].1);
                }
            }
        }
        best
    }

    /// The entries from `from` to `to` (µs, both included), oldest first.
    #[must_use = "the entries are returned, not visited"]
    pub fn between(&self, from: i64, to: i64) -> impl DoubleEndedIterator<Item = (i64, &V)> {
        let start = self.position(from);
        let end = self.entries.partition_point(|(t, _)| *t <= to).max(start);
        self.entries.range(start..end).map(|(t, v)| (*t, v))
    }

    /// Index of the first entry at or after `at`.
    fn position(&self, at: i64) -> usize {
        self.entries.partition_point(|(t, _)| *t < at)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: i64 = 60_000_000;

    fn window(times: &[i64]) -> Window<()> {
        let mut window = Window::new(10 * MIN, usize::MAX);
        for &t in times {
            window.insert(t, ());
        }
        window
    }

    #[test]
    fn a_span_includes_both_ends() {
        let w = window(&[0, 10 * MIN]);
        assert_eq!(w.busiest_around(10 * MIN).count, 2);
        let w = window(&[0, 10 * MIN + 1]);
        assert_eq!(w.busiest_around(10 * MIN + 1).count, 1);
    }

    #[test]
    fn a_late_event_completes_a_burst_that_arrived_first() {
        // Four failures at minutes 1-4 arrived; the one from minute 0 arrives last.
        let w = window(&[MIN, 2 * MIN, 3 * MIN, 4 * MIN, 0]);
        assert_eq!(
            w.busiest_around(0),
            Burst {
                count: 5,
                first: 0,
                last: 4 * MIN
            }
        );
        // An event after the burst sees the span that ends at it.
        let w = window(&[0, MIN, 2 * MIN, 13 * MIN]);
        assert_eq!(w.busiest_around(13 * MIN).count, 1);
        assert_eq!(w.busiest_around(2 * MIN).count, 3);
    }

    #[test]
    fn the_order_of_arrival_does_not_change_the_answer() {
        let times: Vec<i64> = (0..40).map(|i| (i * 37 % 23) * MIN / 2).collect();
        let ordered = {
            let mut sorted = times.clone();
            sorted.sort_unstable();
            window(&sorted)
        };
        let shuffled = window(&times);
        for &t in &times {
            assert_eq!(ordered.busiest_around(t), shuffled.busiest_around(t));
        }
    }

    #[test]
    fn expiry_bounds_memory_and_keeps_recent_entries() {
        let mut w = window(&(0..1000).map(|i| i * MIN).collect::<Vec<_>>());
        assert_eq!(w.expire(990 * MIN).len(), 990);
        assert_eq!(w.len(), 10);
        assert_eq!(
            w.between(0, i64::MAX).next().map(|(t, ())| t),
            Some(990 * MIN)
        );
        let _ = w.expire(i64::MAX);
        assert!(w.is_empty());
    }

    #[test]
    fn busiest_span_matches_a_brute_force_count() {
        // A small linear congruential generator: deterministic, no dependency.
        let mut state = 0x2545_f491_4f6c_dd1d_u64;
        let mut next = |below: i64| {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1);
            ((state >> 33) % below as u64) as i64
        };
        for _ in 0..200 {
            let times: Vec<i64> = (0..=next(30)).map(|_| next(40) * MIN).collect();
            let w = window(&times);
            for &at in &times {
                let brute = times
                    .iter()
                    .filter(|&&start| start <= at && at - start <= 10 * MIN)
                    .map(|&start| {
                        times
                            .iter()
                            .filter(|&&t| t >= start && t - start <= 10 * MIN)
                            .count()
                    })
                    .max()
                    .unwrap_or(0);
                assert_eq!(w.busiest_around(at).count, brute, "{times:?} at {at}");
            }
        }
    }

    #[test]
    fn distinct_values_are_counted_in_the_best_span() {
        let mut w = Window::new(10 * MIN, usize::MAX);
        for (t, user) in [
            (0, "a"),
            (MIN, "a"),
            (2 * MIN, "b"),
            (11 * MIN, "c"),
            (12 * MIN, "d"),
        ] {
            w.insert(t, user);
        }
        // Around minute 2: {a, b} in 0..10, or {b, c, d} in 2..12.
        assert_eq!(w.most_distinct_around(2 * MIN, |u| *u).count, 3);
        assert_eq!(w.most_distinct_around(0, |u| *u).count, 2);
        assert_eq!(w.most_distinct_around(12 * MIN, |u| *u).count, 3);
    }

    #[test]
    fn a_capped_window_keeps_the_newest_entries() {
        let mut w = Window::new(10 * MIN, 3);
        for t in 0..10 {
            w.insert(t * SEC_FOR_TESTS, ());
        }
        assert_eq!(w.len(), 3);
        assert_eq!(w.busiest_around(9 * SEC_FOR_TESTS).count, 3);
    }

    const SEC_FOR_TESTS: i64 = 1_000_000;

    #[test]
    fn equal_times_are_separate_entries() {
        let w = window(&[5, 5, 5]);
        assert_eq!(w.busiest_around(5).count, 3);
        assert_eq!(w.between(5, 5).count(), 3);
    }
}
