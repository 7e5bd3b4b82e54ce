//! The detector against crafted sequences: window edges, out-of-order arrival, IPv6, repeated
//! messages, successes after failures, spraying, single-event rules, and bounded memory.

use std::collections::BTreeSet;

use super::*;
use crate::detect::rules::{DEFAULT_RULES, parse};

pub(super) const SEC: i64 = 1_000_000;
pub(super) const MIN: i64 = 60 * SEC;

fn detector() -> Detector {
    Detector::new(parse(DEFAULT_RULES).unwrap())
}

/// A login (or a failed one) of `user` from `ip` at `at`.
pub(crate) fn login(id: &str, at: i64, ip: &str, user: &str, success: bool) -> Event {
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
pub(super) fn found(events: &[Event]) -> BTreeSet<(String, String)> {
    let mut detector = detector();
    events
        .iter()
        .flat_map(|e| detector.observe(e))
        .map(|f| (f.rule, f.entity))
        .collect()
}

pub(super) fn rules_found(events: &[Event], rule: &str) -> Vec<String> {
    found(events)
        .into_iter()
        .filter(|(r, _)| r == rule)
        .map(|(_, entity)| entity)
        .collect()
}

#[test]
fn a_slow_source_trying_a_new_name_every_ten_minutes_is_found_within_the_hour() {
    // One try every ten minutes, a new made-up name each time: under every short window.
    let slow: Vec<Event> = (0..6)
        .map(|i| {
            let name = ["kalo", "mitor", "vidre", "sanel", "ombu", "rentor"][i as usize];
            login(&format!("w{i}"), i * 10 * MIN, "198.51.100.60", name, false)
        })
        .collect();
    assert_eq!(rules_found(&slow, "slow-spraying"), ["198.51.100.60"]);
    for short in ["brute-force", "invalid-user-attempts", "password-spraying"] {
        assert!(rules_found(&slow, short).is_empty(), "{short}");
    }
    // Five names in six hours, or six spread over more than six hours, are not enough.
    assert!(rules_found(&slow[..5], "slow-spraying").is_empty());
    let spread: Vec<Event> = (0..6)
        .map(|i| {
            login(
                &format!("x{i}"),
                i * 75 * MIN,
                "198.51.100.61",
                &format!("n{i}"),
                false,
            )
        })
        .collect();
    assert!(rules_found(&spread, "slow-spraying").is_empty());
    // People who mistype their own password twice a day, for a week, from one office.
    let office: Vec<Event> = (0..7i64)
        .flat_map(|day| {
            ["anna", "ben"]
                .into_iter()
                .enumerate()
                .flat_map(move |(k, user)| {
                    let at = day * 24 * 60 * MIN + (9 + 4 * k as i64) * 60 * MIN;
                    [
                        login(&format!("o{day}{k}a"), at, "198.51.100.62", user, false),
                        login(
                            &format!("o{day}{k}b"),
                            at + MIN,
                            "198.51.100.62",
                            user,
                            false,
                        ),
                        login(
                            &format!("o{day}{k}c"),
                            at + 2 * MIN,
                            "198.51.100.62",
                            user,
                            true,
                        ),
                    ]
                })
        })
        .collect();
    assert!(found(&office).is_empty(), "{:?}", found(&office));
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
    // Only each rule's last window plus the lateness allowed remain (about 3 hours of events
    // per rule that counts these failures; 1,200 events are 3 hours).
    let held = detector.entries();
    assert!(held < 6 * 1_200, "{held} entries held");
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

/// A failed login on an account that does not exist.
fn invalid(id: &str, at: i64, ip: &str, user: &str) -> Event {
    let mut event = login(id, at, ip, user, false);
    event.host = Some("srv01".into());
    event.details = Some(r#"{"parser":"sshd","invalid_user":true}"#.into());
    event
}

#[test]
fn a_distributed_campaign_is_found_by_the_accounts_it_tries_and_lists_its_members() {
    // Five addresses, one attempt each, hours apart: below every per-address threshold.
    let events: Vec<Event> = (0..5)
        .map(|i| {
            invalid(
                &format!("b{i}"),
                i * 3 * 60 * MIN,
                &format!("45.{i}.7.9"),
                &format!("oracle{}", 100 + i * 37),
            )
        })
        .collect();
    let mut detector = detector();
    let findings: Vec<Finding> = events.iter().flat_map(|e| detector.observe(e)).collect();
    let campaign: Vec<&Finding> = findings
        .iter()
        .filter(|f| f.rule == "distributed-stuffing")
        .collect();
    assert_eq!(campaign.len(), 1, "{findings:?}");
    assert_eq!(campaign[0].entity_type, "campaign");
    assert_eq!(campaign[0].entity, "srv01");
    let members: BTreeSet<&str> = campaign[0].members.iter().map(String::as_str).collect();
    assert_eq!(
        members,
        BTreeSet::from(["45.0.7.9", "45.1.7.9", "45.2.7.9", "45.3.7.9", "45.4.7.9"])
    );
    assert!(
        !findings.iter().any(|f| f.rule == "brute-force"),
        "no per-address rule sees it"
    );
    // Whatever order the lines come in.
    let mut reversed = events.clone();
    reversed.reverse();
    assert!(rules_found(&reversed, "distributed-stuffing").contains(&"srv01".to_string()));
    // A sixth address later joins the campaign on its own.
    let later = invalid("b5", 16 * 60 * MIN, "45.5.7.9", "oracle9");
    let joined = detector.observe(&later);
    let joined = joined
        .iter()
        .find(|f| f.rule == "distributed-stuffing")
        .unwrap();
    assert_eq!(joined.members, ["45.5.7.9"]);
    // Four addresses are not a campaign; nor are five that try unrelated names.
    assert!(rules_found(&events[..4], "distributed-stuffing").is_empty());
    let unrelated: Vec<Event> = ["oracle1", "zz", "postgres", "x9y", "guest"]
        .iter()
        .enumerate()
        .map(|(i, name)| {
            invalid(
                &format!("u{i}"),
                i as i64 * MIN,
                &format!("45.{i}.8.1"),
                name,
            )
        })
        .collect();
    assert!(rules_found(&unrelated, "distributed-stuffing").is_empty());
}

#[test]
fn an_address_that_logged_in_successfully_is_never_a_campaign_member() {
    let mut events = vec![login("ok", 0, "45.9.9.9", "alice", true)];
    events.extend((0..5).map(|i| {
        let ip = if i == 0 {
            "45.9.9.9".to_string()
        } else {
            format!("46.{i}.1.1")
        };
        invalid(&format!("i{i}"), MIN + i * MIN, &ip, &format!("admin{i}"))
    }));
    let mut detector = detector();
    let members: BTreeSet<String> = events
        .iter()
        .flat_map(|e| detector.observe(e))
        .flat_map(|f| f.members)
        .collect();
    assert!(!members.contains("45.9.9.9"), "{members:?}");
    assert_eq!(members.len(), 4);
}

#[test]
fn a_campaign_from_one_network_counts_public_addresses_only() {
    let from = |prefix: &str| -> Vec<Event> {
        (0..5)
            .map(|i| {
                login(
                    &format!("{prefix}{i}"),
                    i * MIN,
                    &format!("{prefix}.{}", 10 + i),
                    "root2",
                    false,
                )
            })
            .collect()
    };
    assert_eq!(
        rules_found(&from("81.7.3"), "subnet-campaign"),
        ["81.7.3.0/24"]
    );
    assert!(rules_found(&from("10.7.3"), "subnet-campaign").is_empty());
}

/// A detector with the built-in geolocation.
fn located() -> Detector {
    let geo = crate::geo::Geo::built_in().unwrap();
    Detector::with_geo(parse(DEFAULT_RULES).unwrap(), Some(Arc::new(geo)))
}

/// Two public addresses the built-in database places in countries at least 5,000 km apart.
fn far_apart() -> (String, String) {
    let geo = crate::geo::Geo::built_in().unwrap();
    let candidates = [
        "8.8.8.8",
        "193.0.6.139",
        "202.12.29.175",
        "200.3.14.10",
        "196.216.2.1",
    ];
    for a in candidates {
        for b in candidates {
            let (Some(ca), Some(cb)) = (
                geo.locate(a.parse().unwrap()).country(),
                geo.locate(b.parse().unwrap()).country(),
            ) else {
                continue;
            };
            if geo.min_distance_km(ca, cb).is_some_and(|km| km > 5_000.0) {
                return (a.to_string(), b.to_string());
            }
        }
    }
    panic!("no two candidates far apart");
}

#[test]
fn history_rules_new_country_and_impossible_travel() {
    let (home, away) = far_apart();
    let mut detector = located();
    // Twenty logins from home, one a day at nine.
    for day in 0..20 {
        let at = day * 24 * 60 * MIN + 9 * 60 * MIN;
        assert!(
            detector
                .observe(&login(&format!("h{day}"), at, &home, "erin", true))
                .is_empty()
        );
    }
    // An hour after the last one, a login from the other side of the world.
    let at = 19 * 24 * 60 * MIN + 10 * 60 * MIN;
    let found: BTreeSet<String> = detector
        .observe(&login("away", at, &away, "erin", true))
        .into_iter()
        .map(|f| f.rule)
        .collect();
    assert!(found.contains("new-country"), "{found:?}");
    assert!(found.contains("impossible-travel"), "{found:?}");
    // Back home the next day: a known country, nothing.
    let next = at + 24 * 60 * MIN;
    assert!(
        detector
            .observe(&login("back", next, &home, "erin", true))
            .is_empty()
    );
    // A new account is not judged before it has a history.
    let mut fresh = located();
    fresh.observe(&login("f1", 0, &home, "frank", true));
    assert!(
        fresh
            .observe(&login("f2", MIN, &away, "frank", true))
            .is_empty()
    );
}

#[test]
fn a_login_at_an_hour_the_account_never_uses_from_a_new_address() {
    let mut detector = detector();
    for day in 0..25 {
        let at = day * 24 * 60 * MIN + 14 * 60 * MIN;
        detector.observe(&login(&format!("d{day}"), at, "45.1.1.1", "gina", true));
    }
    let three_am = 25 * 24 * 60 * MIN + 3 * 60 * MIN;
    let found = detector.observe(&login("odd", three_am, "45.2.2.2", "gina", true));
    assert!(found.iter().any(|f| f.rule == "unusual-hour"), "{found:?}");
    // From her usual address at an odd hour: her own habit, not an alert.
    let night = three_am + 24 * 60 * MIN - 60 * MIN;
    assert!(
        detector
            .observe(&login("own", night, "45.1.1.1", "gina", true))
            .is_empty()
    );
    // At her usual hour from a new address: nothing.
    let usual = 26 * 24 * 60 * MIN + 14 * 60 * MIN;
    assert!(
        detector
            .observe(&login("new", usual, "45.3.3.3", "gina", true))
            .is_empty()
    );
}

#[test]
fn histories_survive_a_restart_through_what_the_store_keeps() {
    let mut detector = detector();
    for day in 0..25 {
        let at = day * 24 * 60 * MIN + 14 * 60 * MIN;
        detector.observe(&login(&format!("d{day}"), at, "45.1.1.1", "hana", true));
    }
    let kept = detector.profiles_mut().take_changed();
    assert_eq!(kept.len(), 1);
    assert!(detector.profiles_mut().take_changed().is_empty());
    let mut restarted = self::detector();
    for (user, profile) in kept {
        restarted.profiles_mut().load(user, profile);
    }
    // Replayed events already in the history are not counted twice.
    restarted.absorb(&login(
        "d24",
        24 * 24 * 60 * MIN + 14 * 60 * MIN,
        "45.1.1.1",
        "hana",
        true,
    ));
    assert_eq!(restarted.profile("hana").unwrap().logins, 25);
    let three_am = 25 * 24 * 60 * MIN + 3 * 60 * MIN;
    let found = restarted.observe(&login("odd", three_am, "45.2.2.2", "hana", true));
    assert!(found.iter().any(|f| f.rule == "unusual-hour"), "{found:?}");
}

#[test]
fn the_risk_of_a_login_grows_toward_a_block() {
    let mut detector = detector();
    let attempt = |i: i64| login(&format!("r{i}"), i * SEC, "45.6.6.6", "root", false);
    let first = attempt(0);
    let found = detector.observe(&first);
    let risk = detector.risk(&first, &found);
    assert_eq!((risk.verdict, risk.risk_score), ("allow", 0.0));
    let second = attempt(1);
    let found = detector.observe(&second);
    let risk = detector.risk(&second, &found);
    assert!(risk.risk_score > 0.0 && risk.verdict == "allow", "{risk:?}");
    assert!(risk.reasons[0].contains("2 of 5"), "{risk:?}");
    let mut last = None;
    for i in 2..6 {
        let event = attempt(i);
        let found = detector.observe(&event);
        last = Some(detector.risk(&event, &found));
    }
    let risk = last.unwrap();
    assert_eq!(risk.verdict, "block", "{risk:?}");
    assert!(risk.risk_score >= 0.8);
    // Another address is unaffected.
    let other = login("o", 7 * SEC, "45.7.7.7", "bob", true);
    let found = detector.observe(&other);
    assert_eq!(detector.risk(&other, &found).verdict, "allow");
}

#[test]
fn a_campaign_window_includes_both_ends_and_counts_ipv6_networks() {
    const DAY: i64 = 24 * 60 * MIN;
    let spread = |last: i64| -> Vec<Event> {
        (0..4)
            .map(|i| invalid(&format!("w{i}"), i * MIN, &format!("45.{i}.9.9"), "test12"))
            .chain([invalid("w4", last, "45.4.9.9", "test3456")])
            .collect()
    };
    assert_eq!(rules_found(&spread(DAY), "distributed-stuffing"), ["srv01"]);
    // The first address more than a day before the last: four in any day, no campaign.
    assert!(rules_found(&spread(DAY + 1), "distributed-stuffing").is_empty());

    let v6: Vec<Event> = (0..5)
        .map(|i| {
            login(
                &format!("v{i}"),
                i * MIN,
                &format!("2a01:4f8:1:2::{:x}", 0x10 + i),
                "root",
                false,
            )
        })
        .collect();
    assert_eq!(rules_found(&v6, "subnet-campaign"), ["2a01:4f8:1:2::/64"]);
}

#[test]
fn repeated_attempts_on_nonexistent_accounts_from_one_address() {
    let events: Vec<Event> = (0..3)
        .map(|i| {
            invalid(
                &format!("n{i}"),
                i * MIN,
                "2001:470::5",
                &format!("svc{i}x"),
            )
        })
        .collect();
    assert_eq!(
        rules_found(&events, "invalid-user-attempts"),
        ["2001:470::5"]
    );
    assert!(rules_found(&events[..2], "invalid-user-attempts").is_empty());
    // Existing accounts do not count.
    let valid: Vec<Event> = (0..3)
        .map(|i| login(&format!("v{i}"), i * MIN, "2001:470::6", "alice", false))
        .collect();
    assert!(rules_found(&valid, "invalid-user-attempts").is_empty());
}

#[test]
fn a_gateway_many_accounts_log_in_from_is_judged_by_its_accounts_not_as_an_address() {
    let office = "203.0.113.5";
    let mut events: Vec<Event> = (0..GATEWAY_ACCOUNTS as i64)
        .map(|i| {
            login(
                &format!("in{i}"),
                i * SEC,
                office,
                &format!("user{i}"),
                true,
            )
        })
        .collect();
    // Then a busy morning: twelve people mistype, one of them six times.
    for i in 0..12 {
        let at = MIN + i * MIN;
        events.push(login(
            &format!("f{i}"),
            at,
            office,
            &format!("user{i}"),
            false,
        ));
    }
    for i in 0..6 {
        events.push(login(
            &format!("r{i}"),
            20 * MIN + i * SEC,
            office,
            "user3",
            false,
        ));
    }
    events.push(login("back", 21 * MIN, office, "user3", true));
    let found = found(&events);
    assert!(
        found.iter().all(|(_, entity)| entity != office),
        "{found:?}"
    );
    // One account fewer and it is one address trying many accounts.
    let lone: Vec<Event> = events.into_iter().filter(|e| e.event_id != "in0").collect();
    assert!(rules_found(&lone, "password-spraying").contains(&office.to_string()));
}

#[test]
fn slips_of_a_real_name_are_not_attempts_on_nonexistent_accounts() {
    let mut events = vec![login("home", 0, "198.51.100.10", "anna", true)];
    for (i, name) in ["Anna", "anna1", "a.nna"].iter().enumerate() {
        events.push(invalid(
            &format!("s{i}"),
            MIN + i as i64 * SEC,
            "192.0.2.9",
            name,
        ));
    }
    for (i, name) in ["oracle", "test", "guest"].iter().enumerate() {
        events.push(invalid(
            &format!("x{i}"),
            MIN + i as i64 * SEC,
            "192.0.2.66",
            name,
        ));
    }
    assert_eq!(
        rules_found(&events, "invalid-user-attempts"),
        ["192.0.2.66"]
    );
}
