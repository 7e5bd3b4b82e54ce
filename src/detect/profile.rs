//! Accounts' own histories: from which countries and addresses, and at which hours of the day,
//! each account logs in successfully. The history rules judge a login against them: a new
//! country, a journey faster than any airliner, an hour the account almost never uses.
//!
//! Histories outlive every window, so they are kept in the store (the detection thread writes
//! the changed ones with the alerts of the same round) and loaded back when an account shows up.

use rustc_hash::{FxHashMap as HashMap, FxHashSet as HashSet};

use serde::{Deserialize, Serialize};

use super::finding::{Finding, finding};
use super::rules::{Facts, Rule, RuleKind};
use crate::geo::{Geo, Location};

/// Countries and addresses remembered per account (the most recent).
const MAX_COUNTRIES: usize = 32;
const MAX_ADDRESSES: usize = 16;
/// Share (per mille) of an account's logins, within an hour either side, below which an hour
/// is unusual for it.
const RARE_PER_MILLE: u64 = 20;

/// One account's successful logins, folded.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserProfile {
    pub logins: u64,
    /// Logins by hour of day (UTC).
    pub hours: [u32; 24],
    /// Countries logged in from, with the newest event time (µs), newest first.
    pub countries: Vec<([u8; 2], i64)>,
    /// Addresses logged in from, newest first.
    pub addresses: Vec<String>,
    /// The newest login placed in a country: event time, country, event id.
    pub last_located: Option<(i64, [u8; 2], String)>,
    /// The newest event time folded in (µs): a replay on start skips what is already here.
    pub through: i64,
}

impl UserProfile {
    /// Logins within an hour either side of `hour`.
    #[must_use]
    pub fn around_hour(&self, hour: usize) -> u64 {
        [23, 0, 1]
            .iter()
            .map(|d| u64::from(self.hours[(hour + d) % 24]))
            .sum()
    }

    #[must_use]
    pub fn knows_country(&self, country: [u8; 2]) -> bool {
        self.countries.iter().any(|(c, _)| *c == country)
    }

    #[must_use]
    pub fn knows_address(&self, ip: &str) -> bool {
        self.addresses.iter().any(|a| a == ip)
    }

    fn fold(&mut self, at: i64, ip: Option<&str>, location: Option<Location>, event_id: &str) {
        self.logins += 1;
        self.hours[hour_of(at)] += 1;
        if let Some(country) = location.and_then(|l| l.country()) {
            self.countries.retain(|(c, _)| *c != country);
            self.countries.insert(0, (country, at));
            self.countries.truncate(MAX_COUNTRIES);
            if self.last_located.as_ref().is_none_or(|(t, _, _)| at >= *t) {
                self.last_located = Some((at, country, event_id.to_string()));
            }
        }
        if let Some(ip) = ip {
            self.addresses.retain(|a| a != ip);
            self.addresses.insert(0, ip.to_string());
            self.addresses.truncate(MAX_ADDRESSES);
        }
        self.through = self.through.max(at);
    }
}

/// Hour of day (UTC) of an event time in µs.
#[must_use]
pub fn hour_of(at: i64) -> usize {
    (at.div_euclid(3_600_000_000).rem_euclid(24)) as usize
}

/// The histories held in memory, and which changed since they were last kept.
#[derive(Debug, Default)]
pub struct Profiles {
    users: HashMap<String, UserProfile>,
    changed: HashSet<String>,
}

impl Profiles {
    #[must_use]
    pub fn get(&self, user: &str) -> Option<&UserProfile> {
        self.users.get(user)
    }

    #[must_use]
    pub fn contains(&self, user: &str) -> bool {
        self.users.contains_key(user)
    }

    #[must_use]
    pub fn len(&self) -> usize {
        self.users.len()
    }

    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.users.is_empty()
    }

    /// A history loaded from the store.
    pub fn load(&mut self, user: String, profile: UserProfile) {
        self.users.entry(user).or_insert(profile);
    }

    /// The histories changed since the last call, to be kept.
    pub fn take_changed(&mut self) -> Vec<(String, UserProfile)> {
        let changed = std::mem::take(&mut self.changed);
        changed
            .into_iter()
            .filter_map(|user| {
                let profile = self.users.get(&user)?.clone();
                Some((user, profile))
            })
            .collect()
    }

    /// Lets go of kept histories until at most `max` are held (they load again when needed).
    pub fn shrink_to(&mut self, max: usize) {
        if self.users.len() <= max {
            return;
        }
        let mut excess = self.users.len() - max;
        let changed = &self.changed;
        self.users.retain(|user, _| {
            if excess > 0 && !changed.contains(user) {
                excess -= 1;
                return false;
            }
            true
        });
    }

    /// Judges a successful login against the account's history, then adds it.
    pub(super) fn login(
        &mut self,
        rules: &[Rule],
        geo: Option<&Geo>,
        user: &str,
        facts: &Facts<'_>,
        location: Option<Location>,
        report: bool,
    ) -> Vec<Finding> {
        let event = facts.event;
        let at = event.timestamp;
        if !self.users.contains_key(user) {
            self.users.insert(user.to_string(), UserProfile::default());
        }
        let Some(profile) = self.users.get_mut(user) else {
            return Vec::new();
        };
        if !report && at <= profile.through {
            return Vec::new();
        }
        let mut findings = Vec::new();
        if report {
            for rule in rules.iter().filter(|r| r.kind.is_behaviour()) {
                if !rule.matches(facts) {
                    continue;
                }
                if let Some(found) = judge(rule, geo, profile, user, facts, location) {
                    findings.push(found);
                }
            }
        }
        profile.fold(at, facts.ip.as_deref(), location, &event.event_id);
        self.changed.insert(user.to_string());
        findings
    }
}

fn judge(
    rule: &Rule,
    geo: Option<&Geo>,
    profile: &UserProfile,
    user: &str,
    facts: &Facts<'_>,
    location: Option<Location>,
) -> Option<Finding> {
    let event = facts.event;
    let at = event.timestamp;
    let seasoned = profile.logins >= u64::from(rule.min_history);
    let country = location.and_then(|l| l.country());
    let one = |evidence: Vec<String>| finding(rule, user.to_string(), at, at, 1, evidence);
    match rule.kind {
        RuleKind::NewCountry => {
            let country = country?;
            (seasoned && !profile.countries.is_empty() && !profile.knows_country(country))
                .then(|| one(vec![event.event_id.clone()]))
        }
        RuleKind::ImpossibleTravel => {
            let country = country?;
            let (then, from, then_id) = profile.last_located.as_ref()?;
            // Between countries the account uses already (a VPN, two offices) nothing is
            // judged: only a journey to somewhere new.
            if !seasoned || *from == country || profile.knows_country(country) {
                return None;
            }
            let km = geo?.min_distance_km(*from, country)?;
            let hours = (at - then).unsigned_abs() as f64 / 3_600_000_000.0;
            let too_fast = km > 0.0 && km > f64::from(rule.speed_kmh) * hours;
            too_fast.then(|| {
                let mut found = one(vec![then_id.clone(), event.event_id.clone()]);
                found.first_seen = (*then).min(at);
                found.last_seen = (*then).max(at);
                found
            })
        }
        RuleKind::UnusualHour => {
            let usual = profile.around_hour(hour_of(at));
            let rare = usual * 1000 < RARE_PER_MILLE * profile.logins;
            let new_source = facts
                .ip
                .as_deref()
                .is_some_and(|ip| !profile.knows_address(ip));
            (seasoned && rare && new_source).then(|| one(vec![event.event_id.clone()]))
        }
        _ => None,
    }
}
