//! The detector against crafted sequences: window edges, out-of-order arrival, IPv6, repeated
//! messages, successes after failures, spraying, single-event rules, and bounded memory.

use std::collections::BTreeSet;

use super::*;
use crate::detect::rules::{DEFAULT_RULES, parse};

const SEC: i64 = 1_000_000;
const MIN: i64 = 60 * SEC;

fn detector() -> Detector {
    Detector::new(parse(DEFAULT_RULES).unwrap())
}

fn login(id: &str, at: i64, ip: &str, user: &str, success: bool) -> Event {
    let mut event = Event::sample(id, at);
    event.event_type = if success {
        "LOGIN_SUCCESS"
    } else {
        "LOGIN_FAILED"
    }
    .into();
    event.source_ip = Some(ip.parse().unwrap());
    event.username = Some(user.into());
    event.success = Some(success);
    event
}

/// Every (rule, entity) found while feeding `events` in the given order.
fn found(events: &[Event]) -> BTreeSet<(String, String)> {
    let mut detector = detector();
    events
        .iter()
        .flat_map(|e| detector.observe(e))
        .map(|f| (f.rule, f.entity))
        .collect()
}

fn rules_found(events: &[Event], rule: &str) -> Vec<String> {
    found(events)
        .into_iter()
        .filter(|(r, _)| r == rule)
        .map(|(_, entity)| entity)
        .collect()
}

#[test]
fn brute_force_fires_at_the_fifth_failure_within_ten_minutes_both_ends_included() {
    let burst = |last: i64| -> Vec<Event> {
        (0..4)
            .map(|i| login(&format!("e{i}"), i * MIN, "203.0.113.9", "admin", false))
            .chain([login("e4", last, "203.0.113.9", "admin", false)])
            .collect()
    };
    assert_eq!(
        rules_found(&burst(10 * MIN), "brute-force"),
        ["203.0.113.9"]
    );
    assert!(rules_found(&burst(10 * MIN + 3 * MIN + 1), "brute-force").is_empty());
    // Four alone never fire.
    assert!(rules_found(&burst(10 * MIN)[..4], "brute-force").is_empty());
}

#[test]
fn the_same_attack_is_found_whatever_order_its_lines_arrive_in() {
    let mut events: Vec<Event> = (0..6)
        .map(|i| login(&format!("e{i}"), i * MIN, "2001:db8::66", "root", false))
        .collect();
    let ordered = found(&events);
    assert!(ordered.contains(&("brute-force".into(), "2001:db8::66".into())));
    assert!(ordered.contains(&("root-login-attempts".into(), "2001:db8::66".into())));
    events.reverse();
    assert_eq!(found(&events), ordered);
    events.swap(1, 4);
    assert_eq!(found(&events), ordered);
}

#[test]
fn a_repeated_message_counts_as_its_attempts() {
    let mut repeated = login("r", 0, "198.51.100.3", "admin", false);
    repeated.details = Some(r#"{"parser":"sshd","count":5}"#.into());
    assert_eq!(rules_found(&[repeated], "brute-force"), ["198.51.100.3"]);
}

#[test]
fn success_after_failures_in_order_and_when_a_failure_arrives_late() {
    let mut events: Vec<Event> = (0..5)
        .map(|i| login(&format!("f{i}"), i * MIN, "192.0.2.50", "carol", false))
        .collect();
    events.push(login("ok", 6 * MIN, "192.0.2.50", "carol", true));
    let mut detector = detector();
    let findings: Vec<Finding> = events.iter().flat_map(|e| detector.observe(e)).collect();
    let after = findings
        .iter()
        .find(|f| f.rule == "success-after-failures")
        .unwrap();
    assert_eq!((after.count, after.last_seen), (5, 6 * MIN));
    assert_eq!(after.evidence.last().map(String::as_str), Some("ok"));
    assert!(
        findings
            .iter()
            .any(|f| f.rule == "account-success-after-failures" && f.entity == "carol")
    );
    // The success first, then the failures that preceded it in event time.
    events.rotate_right(1);
    assert!(rules_found(&events, "success-after-failures").contains(&"192.0.2.50".to_string()));
    // Four failures are not enough.
    let few: Vec<Event> = events
        .iter()
        .filter(|e| e.event_id != "f0")
        .cloned()
        .collect();
    assert!(rules_found(&few, "success-after-failures").is_empty());
}

#[test]
fn spraying_counts_distinct_accounts_from_one_address() {
    let events: Vec<Event> = (0..10)
        .map(|i| {
            login(
                &format!("s{i}"),
                i * 5 * MIN,
                "203.0.113.77",
                &format!("user{i}"),
                false,
            )
        })
        .collect();
    assert_eq!(rules_found(&events, "password-spraying"), ["203.0.113.77"]);
    let same_account: Vec<Event> = (0..10)
        .map(|i| {
            login(
                &format!("s{i}"),
                i * 5 * MIN,
                "203.0.113.78",
                "alice",
                false,
            )
        })
        .collect();
    assert!(rules_found(&same_account, "password-spraying").is_empty());
}

#[test]
fn single_events_privilege_and_accounts() {
    let mut created = Event::sample("u", 0);
    created.event_type = "USER_CREATED".into();
    created.username = Some("backdoor".into());
    created.source_ip = None;
    let mut joined = Event::sample("g", 1);
    joined.event_type = "GROUP_MEMBER_ADDED".into();
    joined.username = Some("backdoor".into());
    joined.details = Some(r#"{"parser":"accounts","target":"sudo"}"#.into());
    let mut refused = Event::sample("s", 2);
    refused.event_type = "SUDO_FAILED".into();
    refused.username = Some("mallory".into());
    refused.success = Some(false);
    let found = found(&[created, joined, refused]);
    for expected in [
        ("user-created", "backdoor"),
        ("admin-group-change", "backdoor"),
        ("privilege-failure", "mallory"),
    ] {
        assert!(
            found.contains(&(expected.0.into(), expected.1.into())),
            "{expected:?} in {found:?}"
        );
    }
}

#[test]
fn benign_traffic_finds_nothing() {
    // Many users, each logging in with an occasional typo, spread over a day.
    let mut events = Vec::new();
    for u in 0..50 {
        let ip = format!("198.51.100.{u}");
        let user = format!("user{u}");
        for day_minute in (0..1440).step_by(97) {
            let at = (day_minute + u) * MIN;
            if day_minute % 5 == 0 {
                events.push(login(
                    &format!("{u}-{day_minute}-typo"),
                    at,
                    &ip,
                    &user,
                    false,
                ));
            }
            events.push(login(
                &format!("{u}-{day_minute}"),
                at + 5 * SEC,
                &ip,
                &user,
                true,
            ));
        }
    }
    events.sort_by_key(|e| e.timestamp);
    assert_eq!(found(&events), BTreeSet::new());
}

#[test]
fn memory_stays_bounded_over_a_long_stream() {
    let mut detector = detector();
    for i in 0..100_000i64 {
        // A new address every event, for ten days.
        let ip = format!("10.{}.{}.{}", (i >> 16) & 255, (i >> 8) & 255, i & 255);
        detector.observe(&login(&format!("e{i}"), i * 9 * SEC, &ip, "x", false));
    }
    detector.expire();
    // Only the last window plus the lateness allowed (about 2.5 hours of events) remain.
    let held = detector.entries();
    assert!(held < 5 * 1_200, "{held} entries held");
}

#[test]
fn absorbed_events_count_toward_later_findings_but_report_nothing() {
    let mut detector = detector();
    for i in 0..4 {
        detector.absorb(&login(
            &format!("old{i}"),
            i * MIN,
            "192.0.2.77",
            "dave",
            false,
        ));
    }
    let mut fifth = login("new", 5 * MIN, "192.0.2.77", "dave", false);
    let findings = detector.observe(&fifth);
    assert!(
        findings
            .iter()
            .any(|f| f.rule == "brute-force" && f.count == 5)
    );
    fifth.event_id = "again".into();
    let mut quiet = detector;
    quiet.absorb(&fifth);
}
