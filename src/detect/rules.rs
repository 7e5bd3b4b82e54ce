//! Detection rules as data: the TOML format, the built-in defaults (`assets/rules.toml`), and
//! the checks that turn a file into rules the engine can trust.

use std::borrow::Cow;
use std::net::IpAddr;

use serde::Deserialize;

use crate::event::Event;

/// The rules built into the binary.
pub const DEFAULT_RULES: &str = include_str!("../../assets/rules.toml");

/// How bad a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Low,
    Medium,
    High,
    Critical,
}

impl Severity {
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Low => "low",
            Self::Medium => "medium",
            Self::High => "high",
            Self::Critical => "critical",
        }
    }
}

/// What a rule looks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RuleKind {
    /// At least `threshold` matching events for one key within the window.
    Threshold,
    /// At least `threshold` distinct values of a field for one key within the window.
    Distinct,
    /// A success for a key that had at least `threshold` failures within the window before it.
    AfterFailures,
    /// Every matching event.
    Match,
    /// At least `threshold` distinct source addresses, for one key, sharing a trait
    /// (`group_by`): many addresses each below any per-address threshold.
    Campaign,
    /// Credential stuffing of accounts that exist: at least `threshold` distinct addresses,
    /// never seen logging in, failing on real accounts (or slips of their names) within the
    /// window, `above_baseline` times the host's usual number, each confirmed after
    /// `grace_secs` without a login (see `detect::stuffing`).
    Stuffing,
    /// A success from a country the account never logged in from (after `min_history`
    /// successes).
    NewCountry,
    /// Two successes of one account from countries too far apart for the time between them
    /// (faster than `speed_kmh`).
    ImpossibleTravel,
    /// A success at an hour of day (UTC) the account's own history (at least `min_history`
    /// successes) shows almost never.
    UnusualHour,
}

impl RuleKind {
    /// Whether the rule judges an account against its own history.
    #[must_use]
    pub fn is_behaviour(self) -> bool {
        matches!(
            self,
            Self::NewCountry | Self::ImpossibleTravel | Self::UnusualHour
        )
    }
}

/// The event field a rule groups by (or counts distinct values of).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Field {
    SourceIp,
    Username,
    Host,
    /// The source address's network: /24 for IPv4, /64 for IPv6.
    Subnet,
    /// The account name with every run of digits as `#` (`oracle1234` → `oracle#`): the
    /// pattern a list of tried accounts shares.
    AccountShape,
}

impl Field {
    /// The entity type an alert on this key is about.
    #[must_use]
    pub fn entity_type(self) -> &'static str {
        match self {
            Self::SourceIp => "ip",
            Self::Username | Self::AccountShape => "user",
            Self::Host => "host",
            Self::Subnet => "subnet",
        }
    }

    /// The field's value in an event, if it has one.
    #[must_use]
    pub fn of<'a>(self, facts: &'a Facts<'_>) -> Option<Cow<'a, str>> {
        match self {
            Self::SourceIp => facts.ip.as_deref().map(Cow::Borrowed),
            Self::Username => facts.event.username.as_deref().map(Cow::Borrowed),
            Self::Host => facts.event.host.as_deref().map(Cow::Borrowed),
            Self::Subnet => facts.event.source_ip.map(|ip| Cow::Owned(subnet(ip))),
            Self::AccountShape => facts
                .event
                .username
                .as_deref()
                .map(|u| Cow::Owned(account_shape(u))),
        }
    }
}

/// The network of an address: /24 for IPv4, /64 for IPv6.
#[must_use]
pub fn subnet(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, c, _] = v4.octets();
            format!("{a}.{b}.{c}.0/24")
        }
        IpAddr::V6(v6) => {
            let s = v6.segments();
            let network = std::net::Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0);
            format!("{network}/64")
        }
    }
}

/// An account name with every run of digits as `#`, lower-cased.
#[must_use]
pub fn account_shape(name: &str) -> String {
    let mut shape = String::with_capacity(name.len());
    for c in name.chars() {
        if c.is_ascii_digit() {
            if !shape.ends_with('#') {
                shape.push('#');
            }
        } else {
            shape.extend(c.to_lowercase());
        }
    }
    shape
}

/// What the rules ask of an event, worked out once per event.
#[derive(Debug)]
pub struct Facts<'a> {
    pub event: &'a Event,
    /// The source address as text.
    pub ip: Option<String>,
    /// The account does not exist.
    pub invalid_user: bool,
    /// The account does not exist, but its name is a slip of one that logs in here (set by
    /// the detector, which knows the accounts): a person mistyping, not a list of names.
    pub slip: bool,
    /// The sudo/su account or the group joined.
    pub target: Option<String>,
    /// Attempts the event stands for (`message repeated N times`; 0 for a line that tells
    /// again an attempt its connection counted already).
    pub attempts: usize,
}

impl<'a> Facts<'a> {
    #[must_use]
    pub fn of(event: &'a Event) -> Self {
        let mut facts = Self {
            event,
            ip: event.source_ip.map(|ip| ip.to_string()),
            invalid_user: false,
            slip: false,
            target: None,
            attempts: 1,
        };
        let Some(details) = event.details.as_deref() else {
            return facts;
        };
        // A line that tells again an attempt already counted counts for no rule: nothing
        // else in its details matters.
        if event.tells_counted_failure() {
            facts.attempts = 0;
            return facts;
        }
        // Most events carry none of these; only then is the object parsed.
        if !["invalid_user", "target", "count"]
            .iter()
            .any(|k| details.contains(k))
        {
            return facts;
        }
        let Ok(serde_json::Value::Object(map)) = serde_json::from_str(details) else {
            return facts;
        };
        facts.invalid_user = map.get("invalid_user") == Some(&serde_json::Value::Bool(true));
        facts.target = map.get("target").map(|t| match t {
            serde_json::Value::String(s) => s.clone(),
            other => other.to_string(),
        });
        facts.attempts = map
            .get("count")
            .and_then(|c| {
                c.as_u64()
                    .or_else(|| c.as_str().and_then(|s| s.parse().ok()))
            })
            .map_or(1, |c| c as usize);
        facts
    }

    /// Whether the source address is private or reserved.
    #[must_use]
    pub fn is_internal(&self) -> bool {
        self.event.source_ip.is_none_or(crate::geo::is_internal)
    }
}

/// One rule, as written in the file.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    pub id: String,
    pub title: String,
    pub severity: Severity,
    /// MITRE ATT&CK technique ids.
    #[serde(default)]
    pub attack: Vec<String>,
    pub kind: RuleKind,
    pub key: Field,
    /// For `distinct`: the field whose distinct values are counted.
    pub distinct: Option<Field>,
    /// For `campaign`: the trait the addresses share (unset: the key alone).
    pub group_by: Option<Field>,
    /// Event types that match (the failures, for `after_failures`).
    pub event_types: Vec<String>,
    /// For `after_failures`: event types that count as a success when `success` is true.
    #[serde(default)]
    pub success_types: Vec<String>,
    /// Only events with this outcome match; unset: any.
    pub success: Option<bool>,
    /// Only these accounts match; empty: any.
    #[serde(default)]
    pub usernames: Vec<String>,
    /// Only events about an account that does not exist match (for a rule on one address, not
    /// slips of the name of an account that logs in here: a person mistyping).
    #[serde(default)]
    pub invalid_user: bool,
    /// Only events whose target (sudo/su account, group joined) is one of these match.
    #[serde(default)]
    pub targets: Vec<String>,
    /// Only events from public addresses match (not private or reserved ones).
    #[serde(default)]
    pub external: bool,
    /// The addresses behind an alert of this rule go on the blocklist.
    #[serde(default)]
    pub block: bool,
    #[serde(default)]
    pub window_secs: u64,
    #[serde(default)]
    pub threshold: usize,
    /// For the history rules: successes an account needs before it is judged.
    #[serde(default = "default_min_history")]
    pub min_history: u32,
    /// For `impossible_travel`: the fastest credible journey, km/h.
    #[serde(default = "default_speed")]
    pub speed_kmh: u32,
    /// For `stuffing`: event time a failing address has to log in before it is counted.
    #[serde(default)]
    pub grace_secs: u64,
    /// For `stuffing`: how many times the host's usual number of such addresses a window
    /// must hold.
    #[serde(default = "default_above_baseline")]
    pub above_baseline: u32,
}

fn default_above_baseline() -> u32 {
    4
}

fn default_min_history() -> u32 {
    5
}

fn default_speed() -> u32 {
    1000
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleFile {
    rule: Vec<Rule>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RuleError {
    #[error("invalid rules file: {0}")]
    Syntax(String),
    #[error("rule `{id}`: {problem}")]
    Invalid { id: String, problem: String },
}

fn invalid(rule: &Rule, problem: &str) -> RuleError {
    RuleError::Invalid {
        id: rule.id.clone(),
        problem: problem.to_string(),
    }
}

/// Parses and checks a rules file.
pub fn parse(text: &str) -> Result<Vec<Rule>, RuleError> {
    let file: RuleFile = toml::from_str(text).map_err(|e| RuleError::Syntax(e.to_string()))?;
    let mut seen = std::collections::HashSet::new();
    for rule in &file.rule {
        if rule.id.is_empty()
            || !rule
                .id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        {
            return Err(invalid(rule, "id must be letters, digits and dashes"));
        }
        if !seen.insert(rule.id.clone()) {
            return Err(invalid(rule, "id used twice"));
        }
        if rule.event_types.is_empty() {
            return Err(invalid(rule, "event_types is empty"));
        }
        let windowed = rule.kind != RuleKind::Match && !rule.kind.is_behaviour();
        if windowed && (rule.window_secs == 0 || rule.window_secs > 30 * 86_400) {
            return Err(invalid(rule, "window_secs must be 1 to 2592000 (30 days)"));
        }
        if windowed && rule.threshold == 0 {
            return Err(invalid(rule, "threshold must be at least 1"));
        }
        if (rule.kind == RuleKind::Distinct) != rule.distinct.is_some() {
            return Err(invalid(
                rule,
                "`distinct` is required by, and only by, kind = \"distinct\"",
            ));
        }
        if rule.group_by.is_some() && rule.kind != RuleKind::Campaign {
            return Err(invalid(rule, "`group_by` is only for kind = \"campaign\""));
        }
        if rule.kind.is_behaviour() && rule.key != Field::Username {
            return Err(invalid(rule, "history rules need key = \"username\""));
        }
        if rule.kind == RuleKind::ImpossibleTravel && rule.speed_kmh == 0 {
            return Err(invalid(rule, "speed_kmh must be at least 1"));
        }
        if rule.kind == RuleKind::Stuffing && (rule.grace_secs > 86_400 || rule.above_baseline == 0)
        {
            return Err(invalid(
                rule,
                "kind = \"stuffing\" needs grace_secs of 0 to 86400 and above_baseline of at least 1",
            ));
        }
        if rule.kind == RuleKind::AfterFailures && rule.success_types.is_empty() {
            return Err(invalid(
                rule,
                "kind = \"after_failures\" needs success_types",
            ));
        }
    }
    Ok(file.rule)
}

impl Rule {
    /// The window in µs.
    #[must_use]
    pub fn window_micros(&self) -> i64 {
        (self.window_secs as i64).saturating_mul(1_000_000)
    }

    /// Whether an event is one this rule counts (a failure, for `after_failures`). An event
    /// that stands for no attempt (`count` 0: a log line telling again an attempt that an
    /// earlier line of its connection counted) counts for no rule.
    #[must_use]
    pub fn matches(&self, facts: &Facts<'_>) -> bool {
        let event = facts.event;
        facts.attempts > 0
            && self.event_types.contains(&event.event_type)
            && self.success.is_none_or(|s| event.success == Some(s))
            && (self.kind != RuleKind::AfterFailures || event.success == Some(false))
            && (self.usernames.is_empty()
                || event
                    .username
                    .as_ref()
                    .is_some_and(|u| self.usernames.contains(u)))
            && (!self.invalid_user
                || facts.invalid_user && (self.kind == RuleKind::Campaign || !facts.slip))
            && (!self.external || !facts.is_internal())
            && (self.targets.is_empty()
                || facts
                    .target
                    .as_ref()
                    .is_some_and(|t| self.targets.contains(t)))
    }

    /// Whether `event` is a success that ends a run of failures, for `after_failures`.
    #[must_use]
    pub fn is_success(&self, event: &Event) -> bool {
        self.kind == RuleKind::AfterFailures
            && event.success == Some(true)
            && self.success_types.contains(&event.event_type)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_built_in_rules_are_valid() {
        let rules = parse(DEFAULT_RULES).unwrap();
        assert!(rules.len() >= 8);
        let brute = rules.iter().find(|r| r.id == "brute-force").unwrap();
        assert_eq!((brute.window_secs, brute.threshold), (600, 5));
        assert_eq!(brute.attack, ["T1110.001"]);
    }

    #[test]
    fn bad_rules_are_refused_with_the_rule_named() {
        let base = r#"[[rule]]
id = "x"
title = "t"
severity = "low"
kind = "threshold"
key = "source_ip"
event_types = ["LOGIN_FAILED"]
window_secs = 60
threshold = 3
"#;
        assert!(parse(base).is_ok());
        for (change, expected) in [
            (
                ("threshold = 3", "threshold = 0"),
                "threshold must be at least 1",
            ),
            (
                ("window_secs = 60", "window_secs = 0"),
                "window_secs must be",
            ),
            (
                ("event_types = [\"LOGIN_FAILED\"]", "event_types = []"),
                "event_types is empty",
            ),
            (
                ("kind = \"threshold\"", "kind = \"distinct\""),
                "`distinct` is required",
            ),
            (("id = \"x\"", "id = \"a b\""), "letters, digits and dashes"),
        ] {
            let text = base.replace(change.0, change.1);
            let err = parse(&text).unwrap_err().to_string();
            assert!(err.contains(expected), "{err}");
        }
        let err = parse(&base.replace("severity = \"low\"", "severity = \"dire\"")).unwrap_err();
        assert!(matches!(err, RuleError::Syntax(_)), "{err}");
        let err = parse(&format!("{base}{base}")).unwrap_err().to_string();
        assert!(err.contains("id used twice"), "{err}");
        let err =
            parse(&base.replace("threshold = 3", "threshold = 3\ncolour = \"red\"")).unwrap_err();
        assert!(matches!(err, RuleError::Syntax(_)), "{err}");
    }

    #[test]
    fn matching_looks_at_type_outcome_account_and_details() {
        let rules = parse(DEFAULT_RULES).unwrap();
        let rule = |id: &str| rules.iter().find(|r| r.id == id).unwrap().clone();
        let mut event = Event::sample("e", 0);
        event.event_type = "LOGIN_FAILED".into();
        assert!(rule("brute-force").matches(&Facts::of(&event)));
        assert!(!rule("root-login-attempts").matches(&Facts::of(&event)));
        event.username = Some("root".into());
        assert!(rule("root-login-attempts").matches(&Facts::of(&event)));
        event.success = Some(true);
        assert!(!rule("brute-force").matches(&Facts::of(&event)));
        let mut joined = Event::sample("g", 0);
        joined.event_type = "GROUP_MEMBER_ADDED".into();
        joined.details = Some(r#"{"parser":"accounts","target":"sudo"}"#.into());
        assert!(rule("admin-group-change").matches(&Facts::of(&joined)));
        joined.details = Some(r#"{"parser":"accounts","target":"video"}"#.into());
        assert!(!rule("admin-group-change").matches(&Facts::of(&joined)));
        let mut repeated = Event::sample("r", 0);
        repeated.details = Some(r#"{"count":5,"invalid_user":true}"#.into());
        let facts = Facts::of(&repeated);
        assert_eq!((facts.attempts, facts.invalid_user), (5, true));
        assert_eq!(Facts::of(&event).attempts, 1);
    }

    #[test]
    fn traits_campaigns_group_by() {
        assert_eq!(account_shape("Oracle1234"), "oracle#");
        assert_eq!(account_shape("a1b22"), "a#b#");
        assert_eq!(account_shape("admin"), "admin");
        assert_eq!(subnet("198.51.100.77".parse().unwrap()), "198.51.100.0/24");
        assert_eq!(
            subnet("2001:db8:1:2:3::9".parse().unwrap()),
            "2001:db8:1:2::/64"
        );
    }
}
