//! The detector: every rule, every event, on event time. It keeps a window per rule and key,
//! and says what each event completes: a [`Finding`] is the current state of an attack on one
//! entity (an alert is kept per rule and entity and updated from findings).

use rustc_hash::FxHashMap as HashMap;
use std::borrow::Cow;
use std::sync::Arc;

use super::finding::{Finding, MAX_EVIDENCE, finding};
use super::profile::{Profiles, UserProfile};
use super::rules::{Facts, Field, Rule, RuleKind, Severity};
use super::stuffing::{Accounts, Known, Stuffing};
use super::window::Window;
use crate::event::Event;
use crate::geo::Geo;

/// How far behind the newest event time an event may arrive and still be counted with its
/// neighbours; older state is dropped.
pub const LATENESS_MICROS: i64 = 3_600_000_000;
/// The longest a decision that cannot be taken back waits for late events.
const MAX_SETTLE_MICROS: i64 = 86_400_000_000;
/// Most attempts one event may stand for (`message repeated N times`).
const MAX_ATTEMPTS_PER_EVENT: usize = 1_000;
/// Event time between two reports of the same attack on the same key (unless it grows).
const REPORT_EVERY_MICROS: i64 = 30_000_000;
/// Rules with a window this long or longer report a growing attack when it doubles.
const LONG_WINDOW_MICROS: i64 = 2 * 3_600_000_000;
/// Successes kept per key for `after_failures`.
const SUCCESS_CAP: usize = 64;

/// Entries kept per key: enough to see any threshold crossed (four times over), and a bound
/// on the memory and the work per event however fast one address attacks.
fn cap(rule: &Rule) -> usize {
    (rule.threshold.saturating_mul(4)).max(32)
}

/// Distinct accounts logging in from one address within memory that make it a shared gateway
/// (a NAT, a VPN, a bastion): judged by its accounts, not as one address.
pub const GATEWAY_ACCOUNTS: usize = 10;

/// An address's recent successful logins.
#[derive(Debug, Clone, Default)]
struct Vouch {
    /// Event time of the newest.
    at: i64,
    /// Hashes of the distinct accounts, up to [`GATEWAY_ACCOUNTS`].
    accounts: Vec<u64>,
}

/// Expiry runs once per this many events.
const EXPIRE_EVERY: u64 = 4_096;

/// One counted event: its id, and a hash of the value a `distinct` rule counts.
#[derive(Debug, Clone)]
struct Entry {
    /// Shared by the entries of every rule the event went into.
    event_id: Arc<str>,
    value: u64,
    /// For a campaign: the source address.
    member: Option<Arc<str>>,
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
    /// finding with every event; it is reported again when its count grows (see
    /// [`should_report`]), or else after [`REPORT_EVERY_MICROS`] of event time (a steady
    /// attack, a saturated window).
    reported: HashMap<String, (i64, usize)>,
    /// For campaigns: per entity, the member addresses reported and when (event time).
    members: HashMap<String, HashMap<Arc<str>, i64>>,
    /// Every member address of the rule's campaigns, with the newest time it was seen taking
    /// part (for the risk of one address without a scan of every campaign).
    all_members: HashMap<Arc<str>, i64>,
    /// For `stuffing` rules: suspects waiting, and the hosts' windows.
    stuffing: Stuffing,
}

/// Whether a finding of `count` at `at` for `key` of `rule` is worth reporting; notes it if
/// so. A rule whose window spans hours counts on through a whole attack: it reports a growing
/// count when it has doubled, or with the time of a steady attack, not with every event.
fn should_report(
    reported: &mut HashMap<String, (i64, usize)>,
    rule: &Rule,
    key: &str,
    at: i64,
    count: usize,
) -> bool {
    let every_growth = rule.window_micros() < LONG_WINDOW_MICROS;
    let due = match reported.get(key) {
        None => true,
        Some(&(last_at, last_count)) => {
            count > last_count && every_growth
                || count >= last_count.saturating_mul(2)
                || at >= last_at.saturating_add(REPORT_EVERY_MICROS)
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
    /// How far behind the watermark events have been arriving (µs): the most seen, fading
    /// slowly (a bulk import with batches in flight, a sender catching up).
    lag: i64,
    /// Addresses with a recent successful login, by its event time: never campaign members.
    vouched: HashMap<String, Vouch>,
    /// Accounts' login histories, for the history rules.
    profiles: Profiles,
    /// Accounts seen logging in: slips of their names, and stuffing of them.
    accounts: Accounts,
    geo: Option<Arc<Geo>>,
}

impl Detector {
    /// A detector without geolocation (the history rules then see no countries).
    #[must_use]
    pub fn new(rules: Vec<Rule>) -> Self {
        Self::with_geo(rules, None)
    }

    #[must_use]
    pub fn with_geo(rules: Vec<Rule>, geo: Option<Arc<Geo>>) -> Self {
        let state = rules.iter().map(|_| RuleState::default()).collect();
        Self {
            rules,
            state,
            watermark: i64::MIN,
            observed: 0,
            lag: 0,
            vouched: HashMap::default(),
            profiles: Profiles::default(),
            accounts: Accounts::default(),
            geo,
        }
    }

    /// The accounts' histories, to be kept (and loaded back on start).
    pub fn profiles_mut(&mut self) -> &mut Profiles {
        &mut self.profiles
    }

    /// The profile of an account as it stands, for the risk of a login.
    #[must_use]
    pub fn profile(&self, user: &str) -> Option<&UserProfile> {
        self.profiles.get(user)
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
        self.lag = self.lag.max(
            self.watermark
                .saturating_sub(event.timestamp)
                .min(MAX_SETTLE_MICROS),
        );
        self.observed += 1;
        if self.observed.is_multiple_of(EXPIRE_EVERY) {
            self.expire();
            self.lag -= self.lag / 64;
        }
        let mut facts = Facts::of(event);
        let success = event.success == Some(true);
        if success && let Some(ip) = &facts.ip {
            let vouch = self.vouched.entry(ip.clone()).or_insert_with(|| Vouch {
                at: event.timestamp,
                accounts: Vec::new(),
            });
            vouch.at = vouch.at.max(event.timestamp);
            let account = value_hash(event.username.as_deref());
            if vouch.accounts.len() < GATEWAY_ACCOUNTS && !vouch.accounts.contains(&account) {
                vouch.accounts.push(account);
            }
        }
        if let Some(user) = event.username.as_deref() {
            if success {
                self.accounts.learn(user);
            } else if facts.invalid_user {
                facts.slip = self.accounts.near(user);
            }
        }
        // Many accounts log in from it: a gateway, judged by its accounts, not as an address.
        let gateway = facts
            .ip
            .as_ref()
            .and_then(|ip| self.vouched.get(ip))
            .is_some_and(|v| v.accounts.len() >= GATEWAY_ACCOUNTS);
        let mut findings = Vec::new();
        let id: Arc<str> = Arc::from(event.event_id.as_str());
        // Event time before which no more events are expected: a decision that cannot be
        // taken back (listing an address) waits for the lateness allowed, or twice what
        // arrives late of late.
        let settled = self
            .watermark
            .saturating_sub(LATENESS_MICROS.max(self.lag.saturating_mul(2)));
        let logged_in = |ip: &str| self.vouched.contains_key(ip);
        for (rule, state) in self.rules.iter().zip(&mut self.state) {
            if rule.kind.is_behaviour() {
                continue;
            }
            if gateway && rule.key == Field::SourceIp {
                continue;
            }
            if rule.kind == RuleKind::Stuffing {
                let known = Known {
                    accounts: &self.accounts,
                    profiles: &self.profiles,
                    logged_in: &logged_in,
                };
                state.stuffing.observe(rule, &facts, &id, &known);
                findings.extend(state.stuffing.confirm(
                    rule,
                    settled,
                    &logged_in,
                    report,
                    &mut state.all_members,
                ));
                continue;
            }
            let found = if rule.kind == RuleKind::Campaign {
                campaign(rule, state, &facts, &id, report, &self.vouched)
            } else {
                evaluate(rule, state, &facts, &id, report)
            };
            findings.extend(found);
        }
        if success && let Some(user) = event.username.as_deref() {
            let location = match (&self.geo, event.source_ip) {
                (Some(geo), Some(ip)) => Some(geo.locate(ip)),
                _ => None,
            };
            let found = self.profiles.login(
                &self.rules,
                self.geo.as_deref(),
                user,
                &facts,
                location,
                report,
            );
            findings.extend(found);
        }
        findings
    }

    /// The stream has gone quiet (`now`: wall-clock time, µs): whatever could still clear a
    /// waiting address is in, so every wait that ended by `now` (or by the newest event time,
    /// whichever is later) is decided. A finished import is judged to its end this way.
    pub fn settle(&mut self, now: i64) -> Vec<Finding> {
        let settled = now.max(self.watermark);
        let vouched = &self.vouched;
        let mut findings = Vec::new();
        for (rule, state) in self.rules.iter().zip(&mut self.state) {
            if rule.kind == RuleKind::Stuffing && state.stuffing.pending() > 0 {
                findings.extend(state.stuffing.confirm(
                    rule,
                    settled,
                    &|ip| vouched.contains_key(ip),
                    true,
                    &mut state.all_members,
                ));
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
            state.members.retain(|_, members| {
                members.retain(|_, at| *at >= before);
                !members.is_empty()
            });
            state.all_members.retain(|_, at| *at >= before);
            state.stuffing.expire(before);
        }
        let before = self.watermark.saturating_sub(self.memory_micros());
        self.vouched.retain(|_, vouch| vouch.at >= before);
    }
}

fn entry(id: &Arc<str>, value: u64) -> Entry {
    Entry {
        event_id: Arc::clone(id),
        value,
        member: None,
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

/// The window of `key` (made on first use).
fn window_of<'a>(
    windows: &'a mut HashMap<String, Window<Entry>>,
    rule: &Rule,
    key: &str,
) -> &'a mut Window<Entry> {
    if !windows.contains_key(key) {
        windows.insert(
            key.to_string(),
            Window::new(rule.window_micros(), cap(rule)),
        );
    }
    windows
        .get_mut(key)
        .expect("the window was just made if it was missing")
}

/// Counts `value` in the tally of `key`, and forgets an entry the window let go.
fn tally(
    tallies: &mut HashMap<String, HashMap<u64, u32>>,
    key: &str,
    value: u64,
    evicted: Option<&Entry>,
) -> usize {
    if !tallies.contains_key(key) {
        tallies.insert(key.to_string(), HashMap::default());
    }
    let Some(tally) = tallies.get_mut(key) else {
        return 0;
    };
    *tally.entry(value).or_insert(0) += 1;
    if let Some(evicted) = evicted {
        untally(tally, evicted.value);
    }
    tally.len()
}

fn evaluate(
    rule: &Rule,
    state: &mut RuleState,
    facts: &Facts<'_>,
    id: &Arc<str>,
    report: bool,
) -> Option<Finding> {
    let event = facts.event;
    let at = event.timestamp;
    if rule.kind == RuleKind::AfterFailures && rule.is_success(event) {
        let key = rule.key.of(facts)?;
        if !state.successes.contains_key(key.as_ref()) {
            state.successes.insert(
                key.to_string(),
                Window::new(rule.window_micros(), SUCCESS_CAP),
            );
        }
        state
            .successes
            .get_mut(key.as_ref())?
            .insert(at, entry(id, 0));
        return report
            .then(|| failures_before(rule, state, &key, at, Some(&event.event_id)))
            .flatten();
    }
    if !rule.matches(facts) {
        return None;
    }
    let key = rule.key.of(facts)?;
    if rule.kind == RuleKind::Match {
        if !report {
            return None;
        }
        return Some(finding(
            rule,
            key.into_owned(),
            at,
            at,
            1,
            vec![event.event_id.clone()],
        ));
    }
    let value = rule.distinct.and_then(|field| field.of(facts));
    if rule.kind == RuleKind::Distinct && value.is_none() {
        return None;
    }
    let value = value_hash(value.as_deref());
    let window = window_of(&mut state.windows, rule, &key);
    let copies = if rule.kind == RuleKind::Threshold {
        facts.attempts.clamp(1, MAX_ATTEMPTS_PER_EVENT)
    } else {
        1
    };
    let mut distinct = 0;
    for _ in 0..copies {
        let evicted = window.insert(at, entry(id, value));
        if rule.kind == RuleKind::Distinct {
            distinct = tally(&mut state.tallies, &key, value, evicted.as_ref());
        }
    }
    if rule.kind == RuleKind::Distinct && distinct < rule.threshold {
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
            if !should_report(&mut state.reported, rule, &key, at, burst.count) {
                return None;
            }
            let ids = evidence(window, burst.first, burst.last);
            Some(finding(
                rule,
                key.into_owned(),
                burst.first,
                burst.last,
                burst.count,
                ids,
            ))
        }
        RuleKind::AfterFailures => {
            // A late failure may complete the run before a success that arrived first.
            let success = state.successes.get(key.as_ref()).and_then(|successes| {
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
        _ => None,
    }
}

/// A campaign: many addresses sharing a trait within the window. Once `threshold` distinct
/// addresses share it, every address seen with it (now and while it stays active) is reported
/// as a member, except addresses that logged in successfully of late.
fn campaign(
    rule: &Rule,
    state: &mut RuleState,
    facts: &Facts<'_>,
    id: &Arc<str>,
    report: bool,
    vouched: &HashMap<String, Vouch>,
) -> Option<Finding> {
    if !rule.matches(facts) {
        return None;
    }
    let ip = facts.ip.as_deref()?;
    let at = facts.event.timestamp;
    // An event without the key (a JSON event without a host) still belongs to a campaign.
    let entity = rule
        .key
        .of(facts)
        .unwrap_or(Cow::Borrowed("(any)"))
        .into_owned();
    let group = match rule.group_by {
        Some(field) => format!("{entity}\u{0}{}", field.of(facts)?),
        None => entity.clone(),
    };
    let value = value_hash(Some(ip));
    let window = window_of(&mut state.windows, rule, &group);
    let evicted = window.insert(
        at,
        Entry {
            event_id: Arc::clone(id),
            value,
            member: Some(Arc::from(ip)),
        },
    );
    if tally(&mut state.tallies, &group, value, evicted.as_ref()) < rule.threshold || !report {
        return None;
    }
    let burst = window.most_distinct_around(at, |e| e.value);
    if burst.count < rule.threshold {
        return None;
    }
    let recent = at.saturating_sub(rule.window_micros());
    let known = state.members.entry(entity.clone()).or_default();
    let mut members = Vec::new();
    let mut ids = Vec::new();
    for (t, e) in window.between(burst.first, burst.last) {
        let Some(member) = &e.member else { continue };
        if vouched.get(member.as_ref()).is_some_and(|v| v.at >= recent) {
            continue;
        }
        let newest = state.all_members.entry(Arc::clone(member)).or_insert(t);
        *newest = (*newest).max(t);
        if let Some(seen) = known.get_mut(member) {
            *seen = (*seen).max(t);
            continue;
        }
        known.insert(Arc::clone(member), t);
        members.push(member.to_string());
        ids.push(e.event_id.to_string());
    }
    if members.is_empty() {
        if !should_report(&mut state.reported, rule, &entity, at, burst.count) {
            return None;
        }
    } else {
        state.reported.insert(entity.clone(), (at, burst.count));
    }
    let skip = ids.len().saturating_sub(MAX_EVIDENCE);
    let mut found = finding(
        rule,
        entity,
        burst.first,
        burst.last,
        burst.count,
        ids.split_off(skip),
    );
    found.entity_type = "campaign";
    found.members = members;
    Some(found)
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
    use std::hash::BuildHasher;
    rustc_hash::FxBuildHasher.hash_one(value)
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

mod risk;
pub use risk::Risk;

#[cfg(test)]
mod paces;
#[cfg(test)]
pub(crate) mod tests;
