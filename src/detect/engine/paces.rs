//! Rules judged by a source's pace and by how sshd tells an attempt: scanners, slow brute
//! force, and lines that tell an attempt already counted.

use super::tests::{MIN, SEC, found, login, rules_found};
use crate::event::Event;

#[test]
fn a_line_that_tells_a_counted_attempt_again_counts_for_nothing() {
    let told: Vec<Event> = (0..8)
        .map(|i| {
            let mut event = login(&format!("t{i}"), i * SEC, "203.0.113.40", "root", false);
            event.details = Some(r#"{"count":0}"#.into());
            event
        })
        .collect();
    assert!(found(&told).is_empty());
}

#[test]
fn scanners_are_found_above_a_monitoring_hosts_pace() {
    let probes = |ip: &str, n: i64, every: i64| -> Vec<Event> {
        (0..n)
            .map(|i| {
                let mut event = Event::sample(&format!("{ip}-{i}"), i * every);
                event.event_type = "NO_IDENTIFICATION".into();
                event.source_ip = Some(ip.parse().unwrap());
                (event.username, event.success) = (None, None);
                event
            })
            .collect()
    };
    assert_eq!(
        rules_found(&probes("45.33.12.7", 20, 10 * SEC), "ssh-scanning"),
        ["45.33.12.7"]
    );
    // A TCP check every minute, or any pace from inside, is no scan.
    assert!(found(&probes("45.33.12.8", 60, MIN)).is_empty());
    assert!(found(&probes("10.0.0.9", 60, SEC)).is_empty());
}

#[test]
fn a_steady_source_on_one_account_is_found_within_three_hours() {
    // One try on `anna` every 17 minutes: under every short window, and no new names.
    let slow: Vec<Event> = (0..10)
        .map(|i| login(&format!("s{i}"), i * 17 * MIN, "45.33.12.9", "anna", false))
        .collect();
    assert_eq!(rules_found(&slow, "slow-brute-force"), ["45.33.12.9"]);
    assert!(rules_found(&slow[..9], "slow-brute-force").is_empty());
    // A person who fails seven times in three hours, then gets in, is not listed.
    let mut person: Vec<Event> = (0..7)
        .map(|i| login(&format!("p{i}"), i * 25 * MIN, "45.33.12.10", "anna", false))
        .collect();
    person.push(login("p-ok", 176 * MIN, "45.33.12.10", "anna", true));
    assert!(found(&person).is_empty(), "{:?}", found(&person));
}
