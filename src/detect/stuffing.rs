//! Credential stuffing of accounts that exist: a botnet tries stolen passwords on the
//! installation's real accounts, each address once to three times, for a day or two. No
//! address comes near a per-address threshold, and the names are not the made-up ones a
//! scanner tries; what gives the campaign away is what it shares with itself and not with
//! normal traffic.
//!
//! A failure is a *suspect* when it names an account that exists (the parser says so, or
//! the name is one slip away from an account that logs in here: `Anna`, `anna12`, `a.nna`,
//! `anan`), from an address never seen logging in (to any account, or to that account in its
//! history). People mistype too, so a suspect waits `grace_secs` of event time (one wait per
//! address at a time): an address that logs in meanwhile was a person and is forgotten. What
//! is left is *confirmed*, per host.
//! A campaign is on when, within the window, at least `threshold` distinct confirmed addresses
//! failed and their number is `above_baseline` times what the host's own traffic shows in such
//! a window (a rate per hour learnt over about a week, to which one hour adds at most
//! `above_baseline` times the rate: a burst does not teach itself as the usual, a level that
//! lasts for weeks does). While it is on, every confirmed address is listed as a member.

use std::collections::VecDeque;
use std::hash::BuildHasher;
use std::sync::Arc;

use rustc_hash::{FxBuildHasher, FxHashMap as HashMap, FxHashSet as HashSet};

use super::finding::{Finding, MAX_EVIDENCE, finding};
use super::profile::Profiles;
use super::rules::{Facts, Rule};
use super::window::Window;

const HOUR: i64 = 3_600_000_000;
/// Weight of one finished hour in the learnt rate: about a week of memory.
const HOURLY_WEIGHT: f64 = 1.0 / 168.0;
/// Addresses waiting at most; beyond it the oldest is judged early.
const MAX_PENDING: usize = 200_000;
/// Confirmed addresses kept per host within the window.
const HOST_CAP: usize = 4_096;
/// Accounts the near-miss index learns at most.
const MAX_ACCOUNTS: usize = 200_000;
/// Names shorter than this (normalised) match an account only exactly.
const MIN_FUZZY_LEN: usize = 4;

/// The accounts seen logging in, for telling a slip of a real name (`Anna`, `anna12`,
/// `a.nna`, `anan`) from a made-up one (`root7820`). Names are lower-cased, stripped of
/// punctuation and of one or two trailing digits; one deletion either side (or both) is a
/// slip.
#[derive(Debug, Default)]
pub struct Accounts {
    names: HashSet<u64>,
    /// Each name and each of its one-letter deletions.
    variants: HashSet<u64>,
}

fn normalise(name: &str) -> String {
    let mut out: String = name
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .map(|c| c.to_ascii_lowercase())
        .collect();
    // One or two digits typed after a name are a slip; a longer number is part of it.
    let kept = out.trim_end_matches(|c: char| c.is_ascii_digit()).len();
    if out.len() - kept <= 2 {
        out.truncate(kept);
    }
    out
}

fn hash(text: &str) -> u64 {
    FxBuildHasher.hash_one(text)
}

/// `text` without its character at `i` (ASCII only, as normalised names are).
fn without(text: &str, i: usize) -> String {
    let mut out = String::with_capacity(text.len());
    out.push_str(&text[..i]);
    out.push_str(&text[i + 1..]);
    out
}

impl Accounts {
    /// Learns an account that logged in.
    pub fn learn(&mut self, user: &str) {
        let name = normalise(user);
        if name.is_empty() || self.names.len() >= MAX_ACCOUNTS || !self.names.insert(hash(&name)) {
            return;
        }
        self.variants.insert(hash(&name));
        if name.len() >= MIN_FUZZY_LEN {
            for i in 0..name.len() {
                self.variants.insert(hash(&without(&name, i)));
            }
        }
    }

    /// Whether `user` is an account seen logging in, or one slip away from one.
    #[must_use]
    pub fn near(&self, user: &str) -> bool {
        let name = normalise(user);
        if name.len() < 2 {
            return false;
        }
        if self.names.contains(&hash(&name)) {
            return true;
        }
        // A deletion of a known name (which was long enough to have them), or a name one of
        // whose deletions is a known name or a deletion of one.
        (name.len() + 1 >= MIN_FUZZY_LEN && self.variants.contains(&hash(&name)))
            || (name.len() >= MIN_FUZZY_LEN
                && (0..name.len()).any(|i| self.variants.contains(&hash(&without(&name, i)))))
    }
}

/// A failure waiting out the grace period.
#[derive(Debug)]
struct Suspect {
    at: i64,
    ip: Arc<str>,
    ip_hash: u64,
    host: String,
    event_id: Arc<str>,
}

/// What one host's traffic shows.
#[derive(Debug)]
struct Host {
    /// Confirmed failures: a hash of each one's address.
    window: Window<u64>,
    /// Entries per address in the window.
    tally: HashMap<u64, u32>,
    /// The hour being counted (event time / 1 h), and the addresses confirmed in it.
    hour: i64,
    this_hour: HashSet<u64>,
    /// Learnt confirmed addresses per hour.
    rate: f64,
    /// Members listed, with the newest time each was seen.
    listed: HashMap<Arc<str>, i64>,
    /// Whether a campaign was on at the last confirmation.
    on: bool,
    /// Confirmed while no campaign was on (event time, address, event), to list if one starts.
    waiting: Vec<(i64, Arc<str>, Arc<str>)>,
}

impl Host {
    fn new(rule: &Rule, hour: i64) -> Self {
        Self {
            window: Window::new(rule.window_micros(), HOST_CAP),
            tally: HashMap::default(),
            hour,
            this_hour: HashSet::default(),
            rate: 0.0,
            listed: HashMap::default(),
            on: false,
            waiting: Vec::new(),
        }
    }

    /// Moves the learnt rate on to `hour`. A finished hour counts at most `above_baseline`
    /// times the rate (or the threshold's hourly share, at the start): a campaign of a day or
    /// two hardly moves the rate, a level of traffic that stays for weeks becomes the usual.
    fn roll(&mut self, rule: &Rule, hour: i64) {
        if hour <= self.hour {
            return;
        }
        let share = rule.threshold as f64 * 3600.0 / rule.window_secs.max(1) as f64;
        let ceiling = (self.rate * f64::from(rule.above_baseline)).max(share);
        let count = (self.this_hour.len() as f64).min(ceiling);
        self.rate += HOURLY_WEIGHT * (count - self.rate);
        let quiet = (hour - self.hour - 1).min(24 * 60) as i32;
        self.rate *= (1.0 - HOURLY_WEIGHT).powi(quiet);
        self.this_hour.clear();
        self.hour = hour;
    }

    fn forget(&mut self, ip_hash: u64) {
        if let Some(n) = self.tally.get_mut(&ip_hash) {
            *n -= 1;
            if *n == 0 {
                self.tally.remove(&ip_hash);
            }
        }
    }

    /// Whether the window holds a campaign: enough addresses, well above the host's own rate.
    fn campaign(&self, rule: &Rule) -> bool {
        let addresses = self.tally.len();
        let usual = self.rate * rule.window_secs as f64 / 3600.0;
        addresses >= rule.threshold && addresses as f64 >= f64::from(rule.above_baseline) * usual
    }

    /// After a confirmation at `at` of `ip` (shown by `event_id`): the addresses to list now,
    /// with the event that shows each — those confirmed while no campaign was on (and still
    /// in the window) when one starts, then each new one.
    fn list(
        &mut self,
        rule: &Rule,
        at: i64,
        ip: Arc<str>,
        event_id: Arc<str>,
        members: &mut HashMap<Arc<str>, i64>,
    ) -> Vec<(Arc<str>, Arc<str>)> {
        self.waiting.push((at, ip, event_id));
        self.on = self.campaign(rule);
        if !self.on {
            if self.waiting.len() > 2 * HOST_CAP {
                self.waiting.drain(..HOST_CAP);
            }
            return Vec::new();
        }
        let oldest = self.window.first_at().unwrap_or(at);
        let mut listed = Vec::new();
        for (t, ip, event_id) in std::mem::take(&mut self.waiting) {
            if t < oldest {
                continue;
            }
            let newest = members.entry(Arc::clone(&ip)).or_insert(t);
            *newest = (*newest).max(t);
            if let Some(seen) = self.listed.get_mut(&ip) {
                *seen = (*seen).max(t);
                continue;
            }
            self.listed.insert(Arc::clone(&ip), t);
            listed.push((ip, event_id));
        }
        listed
    }
}

/// The state of one stuffing rule.
#[derive(Debug, Default)]
pub struct Stuffing {
    pending: VecDeque<Suspect>,
    /// Addresses with a suspect waiting: one wait per address (a flood of failures from one
    /// address is one suspect, not thousands).
    pending_ips: HashSet<u64>,
    hosts: HashMap<String, Host>,
}

/// What the detector knows that a stuffing rule asks about.
pub struct Known<'a> {
    pub accounts: &'a Accounts,
    pub profiles: &'a Profiles,
    /// Whether an address logged in successfully (to any account) within memory.
    pub logged_in: &'a dyn Fn(&str) -> bool,
}

impl Stuffing {
    /// Notes a failure that may be part of a campaign.
    pub fn observe(&mut self, rule: &Rule, facts: &Facts<'_>, id: &Arc<str>, known: &Known<'_>) {
        if !rule.matches(facts) {
            return;
        }
        let (Some(ip), Some(user)) = (facts.ip.as_deref(), facts.event.username.as_deref()) else {
            return;
        };
        if facts.invalid_user && !known.accounts.near(user) {
            return;
        }
        if (known.logged_in)(ip)
            || known
                .profiles
                .get(user)
                .is_some_and(|p| p.knows_address(ip))
        {
            return;
        }
        let ip_hash = hash(ip);
        if !self.pending_ips.insert(ip_hash) {
            return;
        }
        let host = rule
            .key
            .of(facts)
            .map_or_else(|| "(any)".to_string(), std::borrow::Cow::into_owned);
        self.pending.push_back(Suspect {
            at: facts.event.timestamp,
            ip: Arc::from(ip),
            ip_hash,
            host,
            event_id: Arc::clone(id),
        });
    }

    /// Confirms the suspects whose grace ended by `settled` (the event time before which no
    /// more events are expected), and reports the campaigns they
    /// take part in. `members` holds every address listed, with the newest time it was seen.
    pub fn confirm(
        &mut self,
        rule: &Rule,
        settled: i64,
        logged_in: &dyn Fn(&str) -> bool,
        report: bool,
        members: &mut HashMap<Arc<str>, i64>,
    ) -> Vec<Finding> {
        let grace = (rule.grace_secs as i64).saturating_mul(1_000_000);
        let mut found: Vec<Finding> = Vec::new();
        while let Some(front) = self.pending.front() {
            let due = front.at.saturating_add(grace) <= settled;
            if !due && self.pending.len() <= MAX_PENDING {
                break;
            }
            let Some(Suspect {
                at,
                ip,
                ip_hash,
                host: name,
                event_id,
            }) = self.pending.pop_front()
            else {
                break;
            };
            self.pending_ips.remove(&ip_hash);
            // An address that logged in since was a person who mistyped.
            if logged_in(&ip) {
                continue;
            }
            let host = self.admit(rule, &name, at, ip_hash);
            let listed = host.list(rule, at, ip, event_id, members);
            if !report || listed.is_empty() {
                continue;
            }
            let first = host.window.first_at().unwrap_or(at);
            let count = host.tally.len();
            let index = found
                .iter()
                .position(|f| f.entity == name)
                .unwrap_or_else(|| {
                    let mut new = finding(rule, name, at, at, 0, Vec::new());
                    new.entity_type = "campaign";
                    found.push(new);
                    found.len() - 1
                });
            let update = &mut found[index];
            update.first_seen = first.min(update.first_seen);
            update.last_seen = update.last_seen.max(at);
            update.count = count;
            for (member, event_id) in listed {
                update.members.push(member.to_string());
                update.evidence.push(event_id.to_string());
            }
        }
        for update in &mut found {
            let skip = update.evidence.len().saturating_sub(MAX_EVIDENCE);
            update.evidence = update.evidence.split_off(skip);
        }
        found
    }

    /// Counts a confirmed failure at `at` from an address (its hash) in the window and learnt
    /// rate of host `name`.
    fn admit(&mut self, rule: &Rule, name: &str, at: i64, ip_hash: u64) -> &mut Host {
        let hour = at.div_euclid(HOUR);
        if !self.hosts.contains_key(name) {
            self.hosts.insert(name.to_string(), Host::new(rule, hour));
        }
        let host = self
            .hosts
            .get_mut(name)
            .expect("the host was just added if it was missing");
        host.roll(rule, hour);
        host.this_hour.insert(ip_hash);
        *host.tally.entry(ip_hash).or_insert(0) += 1;
        if let Some(evicted) = host.window.insert(at, ip_hash) {
            host.forget(evicted);
        }
        let before = host
            .window
            .last_at()
            .unwrap_or(at)
            .saturating_sub(rule.window_micros());
        for old in host.window.expire(before) {
            host.forget(old);
        }
        host
    }

    /// Drops what no suspect can still reach: members and hosts older than `before`.
    pub fn expire(&mut self, before: i64) {
        self.hosts.retain(|_, host| {
            host.listed.retain(|_, at| *at >= before);
            host.waiting.retain(|(at, _, _)| *at >= before);
            !host.listed.is_empty() || !host.window.is_empty() || host.rate >= 0.01
        });
    }

    /// Suspects waiting out their grace.
    #[must_use]
    pub fn pending(&self) -> usize {
        self.pending.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::engine::Detector;
    use crate::detect::rules::{DEFAULT_RULES, RuleKind, parse};
    use crate::event::Event;

    const MIN: i64 = 60_000_000;

    fn login(id: &str, at: i64, ip: &str, user: &str, success: bool) -> Event {
        let mut event = crate::detect::engine::tests::login(id, at, ip, user, success);
        event.host = Some("gw01".into());
        event
    }

    fn unknown_name(mut event: Event) -> Event {
        event.details = Some(r#"{"invalid_user":true}"#.into());
        event
    }

    const USERS: [&str; 6] = ["anna", "bernd", "carla3", "dario", "elif", "farid"];

    /// The accounts log in from home first, then `feed` runs, then quiet traffic moves event
    /// time on past every grace period. Returns the members listed.
    fn members(feed: impl FnOnce(&mut dyn FnMut(Event))) -> Vec<String> {
        let mut detector = Detector::new(parse(DEFAULT_RULES).unwrap());
        let mut listed = Vec::new();
        let mut observe = |event: Event| {
            for found in detector.observe(&event) {
                if found.rule == "account-stuffing" {
                    assert_eq!(found.entity, "gw01");
                    listed.extend(found.members);
                }
            }
        };
        for (i, user) in USERS.iter().enumerate() {
            observe(login(
                &format!("h{i}"),
                0,
                &format!("198.51.100.{}", 10 + i),
                user,
                true,
            ));
        }
        feed(&mut observe);
        for k in 0..40 {
            observe(login(
                &format!("q{k}"),
                12 * 60 * MIN + k * 5 * MIN,
                "198.51.100.10",
                "anna",
                true,
            ));
        }
        listed.sort();
        listed
    }

    #[test]
    fn slips_of_real_names_are_near_and_made_up_names_are_not() {
        let mut accounts = Accounts::default();
        for user in ["anna", "carla3", "jonas", "mo"] {
            accounts.learn(user);
        }
        for near in [
            "anna", "Anna", "anna12", "a.nna", "anan", "ana", "annna", "carla", "CARLA77", "jnoas",
            "mo", "Mo1",
        ] {
            assert!(accounts.near(near), "{near}");
        }
        for far in [
            "admin",
            "oracle",
            "test",
            "an",
            "m",
            "",
            "moe",
            "annabelle",
            "ubuntu",
        ] {
            assert!(!accounts.near(far), "{far}");
        }
    }

    #[test]
    fn many_new_addresses_failing_once_on_real_accounts_are_listed_after_the_grace() {
        let listed = members(|observe| {
            for i in 0..30 {
                let at = 60 * MIN + i * 4 * MIN;
                let ip = format!("203.0.113.{}", 100 + i);
                let user = USERS[i as usize % USERS.len()];
                // Every fifth one tries a slip of the name, which does not exist here.
                let event = if i % 5 == 0 {
                    unknown_name(login(&format!("s{i}"), at, &ip, &format!("{user}7"), false))
                } else {
                    login(&format!("s{i}"), at, &ip, user, false)
                };
                observe(event);
            }
        });
        let expected: Vec<String> = (0..30).map(|i| format!("203.0.113.{}", 100 + i)).collect();
        let mut expected = expected;
        expected.sort();
        assert_eq!(listed, expected);
    }

    #[test]
    fn people_who_mistype_and_then_log_in_and_owners_at_home_are_never_listed() {
        let listed = members(|observe| {
            for i in 0..30 {
                let at = 60 * MIN + i * 4 * MIN;
                let user = USERS[i as usize % USERS.len()];
                observe(login(
                    &format!("s{i}"),
                    at,
                    &format!("203.0.113.{}", 100 + i),
                    user,
                    false,
                ));
            }
            // From a new address: two slips, then in within twenty minutes.
            observe(login("m1", 90 * MIN, "192.0.2.50", "dario", false));
            observe(login("m2", 91 * MIN, "192.0.2.50", "dario", false));
            observe(login("m3", 110 * MIN, "192.0.2.50", "dario", true));
            // The owner at home, giving up after a slip.
            observe(login("o1", 95 * MIN, "198.51.100.13", "dario", false));
            // A made-up name from a fresh address is not stuffing of a real account.
            observe(unknown_name(login(
                "u1",
                96 * MIN,
                "192.0.2.77",
                "oracle",
                false,
            )));
        });
        assert_eq!(listed.len(), 30);
        for benign in ["192.0.2.50", "198.51.100.13", "192.0.2.77"] {
            assert!(!listed.contains(&benign.to_string()), "{benign}");
        }
    }

    #[test]
    fn a_login_that_arrives_late_still_clears_the_address_when_lines_come_late_as_a_rule() {
        let listed = members(|observe| {
            // Two senders, the second 25 minutes behind the first all along.
            let mut late = Vec::new();
            for i in 0..40 {
                let at = 60 * MIN + i * 3 * MIN;
                let user = USERS[i as usize % USERS.len()];
                let event = login(
                    &format!("s{i}"),
                    at,
                    &format!("203.0.113.{}", 100 + i),
                    user,
                    false,
                );
                late.push(login(&format!("k{i}"), at, "198.51.100.10", "anna", true));
                if i == 10 {
                    observe(login("m1", at, "192.0.2.50", "elif", false));
                    late.push(login("m2", at + 12 * MIN, "192.0.2.50", "elif", true));
                }
                observe(event);
                while late.first().is_some_and(|e| e.timestamp + 25 * MIN <= at) {
                    observe(late.remove(0));
                }
            }
            for event in late {
                observe(event);
            }
        });
        assert_eq!(listed.len(), 40);
        assert!(!listed.contains(&"192.0.2.50".to_string()));
    }

    #[test]
    fn a_flood_from_one_address_waits_once() {
        let rules = parse(DEFAULT_RULES).unwrap();
        let rule = rules.iter().find(|r| r.kind == RuleKind::Stuffing).unwrap();
        let (accounts, profiles) = (Accounts::default(), Profiles::default());
        let known = Known {
            accounts: &accounts,
            profiles: &profiles,
            logged_in: &|_| false,
        };
        let mut stuffing = Stuffing::default();
        for i in 0..1_000 {
            let event = login(
                &format!("f{i}"),
                i * 1_000_000,
                "203.0.113.9",
                "anna",
                false,
            );
            let id: Arc<str> = Arc::from(event.event_id.as_str());
            stuffing.observe(rule, &Facts::of(&event), &id, &known);
        }
        let event = login("g", 0, "203.0.113.10", "anna", false);
        stuffing.observe(rule, &Facts::of(&event), &Arc::from("g"), &known);
        assert_eq!(stuffing.pending(), 2);
    }

    #[test]
    fn a_few_failures_are_no_campaign() {
        let listed = members(|observe| {
            for i in 0..9 {
                let user = USERS[i as usize % USERS.len()];
                observe(login(
                    &format!("s{i}"),
                    60 * MIN + i * 20 * MIN,
                    &format!("203.0.113.{i}"),
                    user,
                    false,
                ));
            }
        });
        assert!(listed.is_empty(), "{listed:?}");
    }

    #[test]
    fn a_level_that_lasts_for_weeks_becomes_the_usual_and_a_burst_above_it_does_not() {
        let rules = parse(DEFAULT_RULES).unwrap();
        let mut detector = Detector::new(rules);
        detector.observe(&login("h", 0, "198.51.100.10", "anna", true));
        let mut listed_on_day = vec![0usize; 30];
        let mut n = 0u32;
        let mut fail = |detector: &mut Detector, at: i64| {
            n += 1;
            let ip = format!("10.{}.{}.{}", n >> 16, (n >> 8) & 255, n & 255);
            let members: usize = detector
                .observe(&login(&format!("b{n}"), at, &ip, "anna", false))
                .iter()
                .filter(|f| f.rule == "account-stuffing")
                .map(|f| f.members.len())
                .sum();
            members
        };
        // Three new addresses an hour, every hour, for four weeks.
        for hour in 0..28 * 24 {
            for k in 0..3 {
                let at = hour * 60 * MIN + k * 20 * MIN + MIN;
                listed_on_day[(hour / 24) as usize] += fail(&mut detector, at);
            }
        }
        assert!(listed_on_day[0] > 0, "at first it is a campaign");
        assert_eq!(
            listed_on_day[27], 0,
            "after weeks it is the usual: {listed_on_day:?}"
        );
        // Then sixty addresses in an hour.
        let start = 28 * 24 * 60 * MIN;
        let mut burst = 0;
        for k in 0..60 {
            burst += fail(&mut detector, start + k * MIN);
        }
        for k in 0..12 {
            burst += fail(&mut detector, start + 60 * MIN + k * 20 * MIN);
        }
        assert!(burst >= 50, "{burst}");
    }
}
