//! The detector: every rule, every event, on event time. It keeps a window per rule and key,
//! and says what each event completes: a [`Finding`] is the current state of an attack on one
//! entity (an alert is kept per rule and entity and updated from findings).

use std::collections::HashMap;
use std::sync::Arc;

use super::rules::{self, Rule, RuleKind, Severity};
use super::window::Window;
use crate::event::Event;

/// Most event ids a finding carries as evidence (the newest).
pub const MAX_EVIDENCE: usize = 20;
/// How far behind the newest event time an event may arrive and still be counted with its
/// neighbours; older state is dropped.
pub const LATENESS_MICROS: i64 = 3_600_000_000;
/// Most attempts one event may stand for (`message repeated N times`).
const MAX_ATTEMPTS_PER_EVENT: usize = 1_000;
/// Event time between two reports of the same attack on the same key (unless it doubles).
const REPORT_EVERY_MICROS: i64 = 30_000_000;
/// Successes kept per key for `after_failures`.
const SUCCESS_CAP: usize = 64;

/// Entries kept per key: enough to see any threshold crossed (four times over), and a bound
/// on the memory and the work per event however fast one address attacks.
fn cap(rule: &Rule) -> usize {
    (rule.threshold.saturating_mul(4)).max(32)
}

/// Expiry runs once per this many events.
const EXPIRE_EVERY: u64 = 4_096;

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
}

/// One counted event: its id, and a hash of the value a `distinct` rule counts.
#[derive(Debug, Clone)]
struct Entry {
    /// Shared by the entries of every rule the event went into.
    event_id: Arc<str>,
    value: u64,
}

/// Windows of one rule: by key, and for `after_failures` the successes apart.
#[derive(Debug, Default)]
struct RuleState {
    windows: HashMap<String, Window<Entry>>,
    successes: HashMap<String, Window<Entry>>,
    /// For `distinct` rules: how many entries of each value (hash) a key's window holds, so a
    /// key with fewer distinct values than the threshold is passed over at once.
    tallies: HashMap<String, HashMap<u64, u32>>,
    /// The last report per key: (event time, count). An attack in full swing completes a
    /// finding with every event; it is reported again when its count grows, or else only
    /// after [`REPORT_EVERY_MICROS`] of event time (a steady attack, a saturated window).
    reported: HashMap<String, (i64, usize)>,
}

/// Whether a finding of `count` at `at` for `key` is worth reporting; notes it if so.
fn should_report(
    reported: &mut HashMap<String, (i64, usize)>,
    key: &str,
    at: i64,
    count: usize,
) -> bool {
    let due = match reported.get(key) {
        None => true,
        Some(&(last_at, last_count)) => {
            count > last_count || at >= last_at.saturating_add(REPORT_EVERY_MICROS)
        }
    };
    if due {
        reported.insert(key.to_string(), (at, count));
    }
    due
}

/// All rules and their state.
#[derive(Debug)]
pub struct Detector {
    rules: Vec<Rule>,
    state: Vec<RuleState>,
    /// The newest event time seen (µs).
    watermark: i64,
    observed: u64,
}

impl Detector {
    #[must_use]
    pub fn new(rules: Vec<Rule>) -> Self {
        let state = rules.iter().map(|_| RuleState::default()).collect();
        Self {
            rules,
            state,
            watermark: i64::MIN,
            observed: 0,
        }
    }

    #[must_use]
    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    /// How far back in event time state can matter: the longest window plus the lateness.
    #[must_use]
    pub fn memory_micros(&self) -> i64 {
        self.rules
            .iter()
            .map(Rule::window_micros)
            .max()
            .unwrap_or(0)
            .saturating_add(LATENESS_MICROS)
    }

    /// Entries held, over every rule and key (memory is bounded by expiry).
    #[must_use]
    pub fn entries(&self) -> usize {
        self.state
            .iter()
            .flat_map(|s| s.windows.values().chain(s.successes.values()))
            .map(Window::len)
            .sum()
    }

    /// Feeds one event; returns what it completes.
    pub fn observe(&mut self, event: &Event) -> Vec<Finding> {
        self.feed(event, true)
    }

    /// Feeds one event whose findings are already alerts (replay on start): the windows are
    /// updated, nothing is evaluated.
    pub fn absorb(&mut self, event: &Event) {
        let _ = self.feed(event, false);
    }

    fn feed(&mut self, event: &Event, report: bool) -> Vec<Finding> {
        self.watermark = self.watermark.max(event.timestamp);
        self.observed += 1;
        if self.observed.is_multiple_of(EXPIRE_EVERY) {
            self.expire();
        }
        let mut findings = Vec::new();
        let id: Arc<str> = Arc::from(event.event_id.as_str());
        for (rule, state) in self.rules.iter().zip(&mut self.state) {
            if let Some(finding) = evaluate(rule, state, event, &id, report) {
                findings.push(finding);
            }
        }
        findings
    }

    /// Drops state no event can still reach: older than its window plus the lateness allowed.
    pub fn expire(&mut self) {
        for (rule, state) in self.rules.iter().zip(&mut self.state) {
            let before = self
                .watermark
                .saturating_sub(rule.window_micros())
                .saturating_sub(LATENESS_MICROS);
            let tallies = &mut state.tallies;
            state.windows.retain(|key, window| {
                let removed = window.expire(before);
                if let Some(tally) = tallies.get_mut(key) {
                    for entry in &removed {
                        untally(tally, entry.value);
                    }
                }
                !window.is_empty()
            });
            state.tallies.retain(|_, tally| !tally.is_empty());
            state.successes.retain(|_, window| {
                let _ = window.expire(before);
                !window.is_empty()
            });
            state.reported.retain(|_, (at, _)| *at >= before);
        }
    }
}

fn entry(id: &Arc<str>, value: u64) -> Entry {
    Entry {
        event_id: Arc::clone(id),
        value,
    }
}

fn finding(
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
    }
}

/// The newest [`MAX_EVIDENCE`] distinct event ids between two times, oldest first.
fn evidence(window: &Window<Entry>, first: i64, last: i64) -> Vec<String> {
    let mut ids: Vec<String> = Vec::with_capacity(MAX_EVIDENCE);
    for (_, entry) in window.between(first, last).rev() {
        if ids.len() == MAX_EVIDENCE {
            break;
        }
        // Copies of one event (a repeated message) sit next to each other.
        if ids.last().map(String::as_str) != Some(&*entry.event_id) {
            ids.push(entry.event_id.to_string());
        }
    }
    ids.reverse();
    ids
}

fn evaluate(
    rule: &Rule,
    state: &mut RuleState,
    event: &Event,
    id: &Arc<str>,
    report: bool,
) -> Option<Finding> {
    let at = event.timestamp;
    if rule.kind == RuleKind::AfterFailures && rule.is_success(event) {
        let key = rule.key.of(event)?;
        state
            .successes
            .entry(key.clone())
            .or_insert_with(|| Window::new(rule.window_micros(), SUCCESS_CAP))
            .insert(at, entry(id, 0));
        return report
            .then(|| failures_before(rule, state, &key, at, Some(&event.event_id)))
            .flatten();
    }
    if !rule.matches(event) {
        return None;
    }
    let key = rule.key.of(event)?;
    if rule.kind == RuleKind::Match {
        if !report {
            return None;
        }
        return Some(finding(rule, key, at, at, 1, vec![event.event_id.clone()]));
    }
    let value = rule.distinct.and_then(|field| field.of(event));
    if rule.kind == RuleKind::Distinct && value.is_none() {
        return None;
    }
    let value = value_hash(value.as_deref());
    let window = state
        .windows
        .entry(key.clone())
        .or_insert_with(|| Window::new(rule.window_micros(), cap(rule)));
    let copies = if rule.kind == RuleKind::Threshold {
        rules::attempts(event).clamp(1, MAX_ATTEMPTS_PER_EVENT)
    } else {
        1
    };
    for _ in 0..copies {
        let evicted = window.insert(at, entry(id, value));
        if rule.kind == RuleKind::Distinct {
            let tally = state.tallies.entry(key.clone()).or_default();
            *tally.entry(value).or_insert(0) += 1;
            if let Some(evicted) = evicted {
                untally(tally, evicted.value);
            }
        }
    }
    if rule.kind == RuleKind::Distinct
        && state.tallies.get(&key).map_or(0, HashMap::len) < rule.threshold
    {
        return None;
    }
    if !report {
        return None;
    }
    // Fewer entries than the threshold in the whole window: nothing can be complete.
    if rule.kind != RuleKind::AfterFailures && window.len() < rule.threshold {
        return None;
    }
    match rule.kind {
        RuleKind::Threshold | RuleKind::Distinct => {
            let burst = if rule.kind == RuleKind::Threshold {
                window.busiest_around(at)
            } else {
                window.most_distinct_around(at, |e| e.value)
            };
            if burst.count < rule.threshold {
                return None;
            }
            if !should_report(&mut state.reported, &key, at, burst.count) {
                return None;
            }
            let ids = evidence(window, burst.first, burst.last);
            Some(finding(
                rule,
                key,
                burst.first,
                burst.last,
                burst.count,
                ids,
            ))
        }
        RuleKind::AfterFailures => {
            // A late failure may complete the run before a success that arrived first.
            let success = state.successes.get(&key).and_then(|successes| {
                successes
                    .between(
                        at.saturating_add(1),
                        at.saturating_add(rule.window_micros()),
                    )
                    .next()
                    .map(|(t, e)| (t, e.event_id.to_string()))
            })?;
            failures_before(rule, state, &key, success.0, Some(&success.1))
        }
        RuleKind::Match => None,
    }
}

fn untally(tally: &mut HashMap<u64, u32>, value: u64) {
    if let Some(n) = tally.get_mut(&value) {
        *n -= 1;
        if *n == 0 {
            tally.remove(&value);
        }
    }
}

/// A value's hash, for counting distinct values without copying them.
fn value_hash(value: Option<&str>) -> u64 {
    use std::hash::{BuildHasher, BuildHasherDefault, DefaultHasher};
    BuildHasherDefault::<DefaultHasher>::default().hash_one(value)
}

/// For `after_failures`: the failures of `key` in the window before a success at `success`.
fn failures_before(
    rule: &Rule,
    state: &RuleState,
    key: &str,
    success: i64,
    success_id: Option<&String>,
) -> Option<Finding> {
    let window = state.windows.get(key)?;
    let from = success.saturating_sub(rule.window_micros());
    let failures: Vec<(i64, &Entry)> = window.between(from, success.saturating_sub(1)).collect();
    if failures.len() < rule.threshold {
        return None;
    }
    let first = failures.first().map_or(success, |(t, _)| *t);
    let mut ids = evidence(window, first, success.saturating_sub(1));
    ids.extend(success_id.cloned());
    let skip = ids.len().saturating_sub(MAX_EVIDENCE);
    Some(finding(
        rule,
        key.to_string(),
        first,
        success,
        failures.len(),
        ids.split_off(skip),
    ))
}

#[cfg(test)]
mod tests;
