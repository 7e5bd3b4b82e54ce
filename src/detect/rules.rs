//! Detection rules as data: the TOML format, the built-in defaults (`assets/rules.toml`), and
//! the checks that turn a file into rules the engine can trust.

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
}

/// The event field a rule groups by (or counts distinct values of).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Field {
    SourceIp,
    Username,
    Host,
}

impl Field {
    /// The entity type an alert on this key is about.
    #[must_use]
    pub fn entity_type(self) -> &'static str {
        match self {
            Self::SourceIp => "ip",
            Self::Username => "user",
            Self::Host => "host",
        }
    }

    /// The field's value in `event`, if it has one.
    #[must_use]
    pub fn of(self, event: &Event) -> Option<String> {
        match self {
            Self::SourceIp => event.source_ip.map(|ip| ip.to_string()),
            Self::Username => event.username.clone(),
            Self::Host => event.host.clone(),
        }
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
    /// Only events about an account that does not exist match.
    #[serde(default)]
    pub invalid_user: bool,
    /// Only events whose target (sudo/su account, group joined) is one of these match.
    #[serde(default)]
    pub targets: Vec<String>,
    #[serde(default)]
    pub window_secs: u64,
    #[serde(default)]
    pub threshold: usize,
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
        let windowed = rule.kind != RuleKind::Match;
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

    /// Whether `event` is one this rule counts (a failure, for `after_failures`).
    #[must_use]
    pub fn matches(&self, event: &Event) -> bool {
        self.event_types.contains(&event.event_type)
            && self.success.is_none_or(|s| event.success == Some(s))
            && (self.kind != RuleKind::AfterFailures || event.success == Some(false))
            && (self.usernames.is_empty()
                || event
                    .username
                    .as_ref()
                    .is_some_and(|u| self.usernames.contains(u)))
            && (!self.invalid_user || detail(event, "invalid_user").as_deref() == Some("true"))
            && (self.targets.is_empty()
                || detail(event, "target").is_some_and(|t| self.targets.contains(&t)))
    }

    /// Whether `event` is a success that ends a run of failures, for `after_failures`.
    #[must_use]
    pub fn is_success(&self, event: &Event) -> bool {
        self.kind == RuleKind::AfterFailures
            && event.success == Some(true)
            && self.success_types.contains(&event.event_type)
    }
}

/// A top-level value of an event's `details` object, as text.
fn detail(event: &Event, key: &str) -> Option<String> {
    let details = event.details.as_deref()?;
    // Most events carry no such key; only then is the object parsed.
    if !details.contains(key) {
        return None;
    }
    let value: serde_json::Value = serde_json::from_str(details).ok()?;
    match value.get(key)? {
        serde_json::Value::String(s) => Some(s.clone()),
        other => Some(other.to_string()),
    }
}

/// How many attempts `event` stands for (`message repeated N times` and the like).
#[must_use]
pub fn attempts(event: &Event) -> usize {
    detail(event, "count")
        .and_then(|c| c.parse().ok())
        .unwrap_or(1)
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
        assert!(rule("brute-force").matches(&event));
        assert!(!rule("root-login-attempts").matches(&event));
        event.username = Some("root".into());
        assert!(rule("root-login-attempts").matches(&event));
        event.success = Some(true);
        assert!(!rule("brute-force").matches(&event));
        let mut joined = Event::sample("g", 0);
        joined.event_type = "GROUP_MEMBER_ADDED".into();
        joined.details = Some(r#"{"parser":"accounts","target":"sudo"}"#.into());
        assert!(rule("admin-group-change").matches(&joined));
        joined.details = Some(r#"{"parser":"accounts","target":"video"}"#.into());
        assert!(!rule("admin-group-change").matches(&joined));
        let mut repeated = Event::sample("r", 0);
        repeated.details = Some(r#"{"count":5}"#.into());
        assert_eq!(attempts(&repeated), 5);
        assert_eq!(attempts(&event), 1);
    }
}
