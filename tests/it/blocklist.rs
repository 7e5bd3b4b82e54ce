//! Campaigns, the blocklist a firewall reads, alerts raised by hand, the risk verdict on a
//! single event, and the detection options (rules file, GeoIP database).

use std::fmt::Write;
use std::process::Command;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::common::{BIN, Start, TestServer};

/// A low-and-slow botnet: six addresses, one attempt each an hour apart, each on a
/// nonexistent account named like the others (`oracle` and digits).
fn botnet_lines() -> String {
    let mut lines = String::new();
    for i in 0..6 {
        let _ = writeln!(
            lines,
            "Mar  2 {:02}:10:00 srv01 sshd[{}]: Failed password for invalid user oracle{} from 45.{i}.7.9 port 5{i}000 ssh2",
            i + 1,
            200 + i,
            100 + i * 37
        );
    }
    lines
}

/// Six failed passwords from one address within a minute.
fn brute_force_lines(ip: &str) -> String {
    let mut lines = String::new();
    for i in 0..6 {
        let _ = writeln!(
            lines,
            "Mar  2 10:00:{:02} srv01 sshd[{}]: Failed password for admin from {ip} port 4000{i} ssh2",
            i * 5,
            300 + i
        );
    }
    lines
}

async fn blocklist_text(server: &TestServer, token: &str) -> (StatusCode, String, String) {
    let reply = server
        .client
        .get(server.url("/api/v1/blocklist"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    let status = reply.status();
    let kind = reply
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    (status, kind, reply.text().await.unwrap())
}

/// The rules of the alerts `/api/v1/alerts{query}` lists.
async fn alert_rules(server: &TestServer, token: &str, query: &str) -> Vec<String> {
    let (status, body) = server
        .get(&format!("/api/v1/alerts{query}"), Some(token))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["rule"].as_str().unwrap().to_string())
        .collect()
}

async fn send_logs(server: &TestServer, token: &str, lines: String) {
    let (status, body) = server
        .post_raw("/api/v1/logs?year=2026", Some(token), "text/plain", lines)
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
}

#[tokio::test]
async fn a_botnet_below_every_per_address_threshold_becomes_a_campaign_on_the_blocklist() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(
        dir.path(),
        Start {
            extra_args: vec!["--blocklist-allow".into(), "45.5.7.0/24,127.0.0.0/8".into()],
            ..Start::default()
        },
    )
    .await;
    let token = server.api_token(&["ingest", "read"]).await;
    send_logs(&server, &token, botnet_lines()).await;
    send_logs(&server, &token, brute_force_lines("81.7.3.4")).await;

    let (status, body) = server
        .get("/api/v1/alerts?rule=distributed-stuffing", Some(&token))
        .await;
    assert_eq!(status, StatusCode::OK);
    let campaigns = body["alerts"].as_array().unwrap();
    assert_eq!(campaigns.len(), 1, "{body}");
    assert_eq!(campaigns[0]["entity_type"], "campaign");
    assert_eq!(campaigns[0]["attack"], json!(["T1110.004", "T1110.003"]));
    let id = campaigns[0]["id"].as_u64().unwrap();
    let (_, detail) = server
        .get(&format!("/api/v1/alerts/{id}"), Some(&token))
        .await;
    assert_eq!(detail["member_count"], 6, "{detail}");
    let members: Vec<&str> = detail["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m.as_str().unwrap())
        .collect();
    assert!(members.contains(&"45.0.7.9") && members.contains(&"45.5.7.9"));
    assert!(!detail["evidence_events"].as_array().unwrap().is_empty());
    // No per-address rule saw any of them.
    let (_, brute) = server
        .get("/api/v1/alerts?entity=45.0.7.9", Some(&token))
        .await;
    assert!(brute["alerts"].as_array().unwrap().is_empty(), "{brute}");

    // The firewall's list: the brute-forcer and the botnet, less the allow-listed network.
    let (status, kind, text) = blocklist_text(&server, &token).await;
    assert_eq!(status, StatusCode::OK);
    assert!(kind.starts_with("text/plain"), "{kind}");
    let listed: Vec<&str> = text.lines().collect();
    assert_eq!(
        listed,
        [
            "45.0.7.9", "45.1.7.9", "45.2.7.9", "45.3.7.9", "45.4.7.9", "81.7.3.4"
        ]
    );
    let (status, body) = server
        .get("/api/v1/blocklist?format=json", Some(&token))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["count"], 6);
    let first = &body["addresses"][0];
    assert_eq!(first["ip"], "45.0.7.9");
    assert_eq!(first["rule"], "distributed-stuffing");
    assert!(first["expires_at"].as_str().unwrap().ends_with('Z'));
    let (status, body) = server
        .get("/api/v1/blocklist?format=xml", Some(&token))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("format")
    );

    // Resolved, the campaign's addresses come off the list; the brute-forcer stays.
    let admin = server.admin_token().await;
    let (status, _) = server
        .put_json(
            &format!("/api/v1/alerts/{id}/status"),
            Some(&admin),
            &json!({"status": "resolved", "note": "blocked upstream"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (_, _, text) = blocklist_text(&server, &token).await;
    assert_eq!(text, "81.7.3.4\n");

    // A firewall that can only fetch a URL puts the token in it, as the Basic password.
    let reply = server
        .client
        .get(server.url("/api/v1/blocklist"))
        .basic_auth("firewall", Some(&token))
        .send()
        .await
        .unwrap();
    assert_eq!(reply.status(), StatusCode::OK);
    assert_eq!(reply.text().await.unwrap(), "81.7.3.4\n");
    let reply = server
        .client
        .get(server.url("/api/v1/blocklist"))
        .basic_auth("firewall", Some("not-a-token"))
        .send()
        .await
        .unwrap();
    assert_eq!(reply.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn a_campaign_goes_on_across_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = TestServer::start(dir.path(), Start::default()).await;
    let token = server.api_token(&["ingest", "read"]).await;
    let lines: Vec<String> = botnet_lines().lines().map(str::to_string).collect();
    send_logs(&server, &token, lines[..3].join("\n")).await;
    server.kill();
    drop(server);
    let server = TestServer::start(dir.path(), Start::default()).await;
    send_logs(&server, &token, lines[3..5].join("\n")).await;
    let (_, body) = server
        .get("/api/v1/alerts?rule=distributed-stuffing", Some(&token))
        .await;
    assert_eq!(body["alerts"].as_array().unwrap().len(), 1, "{body}");
}

#[tokio::test]
async fn analysts_raise_alerts_by_hand_and_bad_ones_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path(), Start::default()).await;
    let admin = server.admin_token().await;
    let reader = server.api_token(&["ingest", "read"]).await;
    let (status, body) = server
        .post_json(
            "/ingest",
            Some(&reader),
            &json!({"event_id": "seen-1", "timestamp": "2026-05-01T12:00:00Z",
                    "source_ip": "81.2.3.4", "event_type": "LOGIN_ATTEMPT",
                    "username": "dave", "success": true}),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let request = json!({
        "title": "Partner reported this address",
        "severity": "high",
        "entity_type": "ip",
        "entity": "81.2.3.4",
        "note": "ticket 4711",
        "evidence": ["seen-1"],
        "block": true,
        "attack": ["T1078"],
    });
    let (status, alert) = server
        .post_json("/api/v1/alerts", Some(&admin), &request)
        .await;
    assert_eq!(status, StatusCode::CREATED, "{alert}");
    assert_eq!(alert["rule"], "manual-block");
    assert_eq!(alert["status"], "open");
    assert_eq!(alert["first_seen"], "2026-05-01T12:00:00Z");
    assert_eq!(alert["notes"][0]["text"], "ticket 4711");
    let (_, _, text) = blocklist_text(&server, &reader).await;
    assert_eq!(text, "81.2.3.4\n");

    // Readers cannot raise alerts.
    let (status, _) = server
        .post_json("/api/v1/alerts", Some(&reader), &request)
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    for (change, expected) in [
        (json!({"severity": "dire"}), "severity"),
        (json!({"entity_type": "planet"}), "entity_type"),
        (json!({"entity": "not-an-ip"}), "entity"),
        (json!({"evidence": ["never-stored"]}), "never-stored"),
        (json!({"entity_type": "user", "entity": "dave"}), "block"),
        (json!({"title": ""}), "title"),
        (json!({"entity": "127.0.0.1", "evidence": []}), "loopback"),
        (
            json!({"entity": "::ffff:127.0.0.1", "evidence": []}),
            "loopback",
        ),
        (json!({"entity": "0.0.0.0", "evidence": []}), "unspecified"),
    ] {
        let mut bad = request.clone();
        for (k, v) in change.as_object().unwrap() {
            bad[k] = v.clone();
        }
        let (status, body) = server.post_json("/api/v1/alerts", Some(&admin), &bad).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{change}: {body}");
        let message = body["error"]["message"].as_str().unwrap();
        assert!(message.contains(expected), "{change}: {message}");
    }
    let (_, body) = server.get("/api/v1/alerts", Some(&admin)).await;
    assert_eq!(
        body["alerts"].as_array().unwrap().len(),
        1,
        "nothing else stored"
    );

    // The allow-list takes no network so wide that it would switch the blocklist off.
    for network in ["0.0.0.0/0", "128.0.0.0/1", "10.0.0.0/7", "::/0", "2000::/3"] {
        let (status, body) = server
            .post_json(
                "/api/v1/allowlist",
                Some(&admin),
                &json!({"network": network}),
            )
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{network}: {body}");
        assert!(
            body["error"]["message"].as_str().unwrap().contains("wider"),
            "{body}"
        );
    }
    let (status, body) = server
        .post_json(
            "/api/v1/allowlist",
            Some(&admin),
            &json!({"network": "10.0.0.0/8"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (_, body) = server.get("/api/v1/allowlist", Some(&admin)).await;
    let stored: Vec<&str> = body["networks"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|n| n["network"].as_str())
        .collect();
    assert!(
        !stored
            .iter()
            .any(|n| n.ends_with("/0") || n.ends_with("/1")),
        "{stored:?}"
    );
    let (_, _, text) = blocklist_text(&server, &reader).await;
    assert_eq!(text, "81.2.3.4\n", "the blocklist is unchanged");
}

#[tokio::test]
async fn a_single_login_gets_a_verdict_from_the_detection_state() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path(), Start::default()).await;
    let token = server.api_token(&["ingest", "read"]).await;
    let attempt = |i: u32| {
        json!({"event_id": format!("v{i}"), "timestamp": format!("2026-05-01T12:00:{:02}Z", i),
               "source_ip": "81.9.9.9", "event_type": "LOGIN_ATTEMPT", "username": "erin",
               "success": false})
    };
    let (status, first) = server.post_json("/ingest", Some(&token), &attempt(0)).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    assert_eq!(first["verdict"], "allow", "{first}");
    assert_eq!(first["risk_score"], 0.0);
    assert_eq!(first["reasons"], json!([]));
    let mut last = Value::Null;
    for i in 1..5 {
        last = server
            .post_json("/ingest", Some(&token), &attempt(i))
            .await
            .1;
    }
    assert_eq!(last["verdict"], "block", "{last}");
    assert!(last["risk_score"].as_f64().unwrap() >= 0.8);
    assert!(last["reasons"][0].as_str().unwrap().contains("Brute force"));
    // A batch carries no verdict.
    let (_, batch) = server
        .post_json("/ingest", Some(&token), &json!([attempt(10), attempt(11)]))
        .await;
    assert!(batch.get("verdict").is_none(), "{batch}");
}

#[tokio::test]
async fn a_rules_file_replaces_the_built_in_rules() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path()).unwrap();
    let rules = dir.path().join("rules.toml");
    std::fs::write(
        &rules,
        r#"[[rule]]
id = "two-strikes"
title = "Two failures"
severity = "low"
kind = "threshold"
key = "source_ip"
event_types = ["LOGIN_FAILED"]
window_secs = 60
threshold = 2
block = true
"#,
    )
    .unwrap();
    let server = TestServer::start(
        dir.path(),
        Start {
            extra_args: vec!["--rules-file".into(), rules.display().to_string()],
            ..Start::default()
        },
    )
    .await;
    let token = server.api_token(&["ingest", "read"]).await;
    let lines: String = brute_force_lines("81.1.1.1")
        .lines()
        .take(2)
        .collect::<Vec<_>>()
        .join("\n");
    send_logs(&server, &token, lines).await;
    assert_eq!(alert_rules(&server, &token, "").await, ["two-strikes"]);
    assert_eq!(blocklist_text(&server, &token).await.2, "81.1.1.1\n");
}

#[test]
fn a_bad_rules_file_or_geoip_database_stops_the_start_with_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let rules = dir.path().join("rules.toml");
    std::fs::write(
        &rules,
        "[[rule]]\nid = \"x\"\ntitle = \"t\"\nseverity = \"low\"\nkind = \"threshold\"\nkey = \"source_ip\"\nevent_types = [\"LOGIN_FAILED\"]\nwindow_secs = 60\nthreshold = 0\n",
    )
    .unwrap();
    let output = Command::new(BIN)
        .args(["check-config", "--rules-file"])
        .arg(&rules)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("rule `x`: threshold must be at least 1"),
        "{stderr}"
    );

    let db = dir.path().join("fake.mmdb");
    std::fs::write(&db, b"not a database at all").unwrap();
    let output = Command::new(BIN)
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir.path().join("data"))
        .arg("--geoip-db")
        .arg(&db)
        .env("SECURIFY_ADMIN_PASSWORD", "a long enough password")
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("not a MaxMind database"), "{stderr}");

    let output = Command::new(BIN)
        .args(["check-config", "--blocklist-allow", "10.0.0.0/8,nonsense"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&output.stderr).contains("`nonsense` is not a network"));
}

/// A server without passwords logs no `Failed password`: an attempt is the account a client
/// named and the end of its connection, told over several lines that may arrive in different
/// requests. Users' clients offer the keys they hold before the right one, and sshd logs each
/// refused key: a login, not an attack.
#[tokio::test]
async fn a_server_without_passwords_counts_attempts_by_connection() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path(), Start::default()).await;
    let token = server.api_token(&["ingest", "read"]).await;
    let attacker = "203.0.113.77";
    let user = "198.51.100.44";
    let mut attempts = Vec::new();
    for i in 0..6 {
        let (pid, port) = (500 + i, 40_000 + i);
        attempts.push(format!(
            "Mar  2 10:00:{:02} srv01 sshd[{pid}]: Invalid user admin{i} from {attacker} port {port}",
            i * 5
        ));
        attempts.push(format!(
            "Mar  2 10:00:{:02} srv01 sshd[{pid}]: Received disconnect from {attacker} port {port}:11: Bye Bye [preauth]",
            i * 5 + 1
        ));
        attempts.push(format!(
            "Mar  2 10:00:{:02} srv01 sshd[{pid}]: Disconnected from invalid user admin{i} {attacker} port {port} [preauth]",
            i * 5 + 1
        ));
    }
    let mut logins = String::new();
    for i in 0..8 {
        let (pid, port) = (700 + i, 50_000 + i);
        for key in [
            "ECDSA SHA256:aaaa",
            "RSA SHA256:bbbb",
            "ED25519 SHA256:cccc",
        ] {
            let _ = writeln!(
                logins,
                "Mar  2 10:0{i}:00 srv01 sshd[{pid}]: Failed publickey for anna from {user} port {port} ssh2: {key}"
            );
        }
        let _ = writeln!(
            logins,
            "Mar  2 10:0{i}:01 srv01 sshd[{pid}]: Accepted publickey for anna from {user} port {port} ssh2: ED25519 SHA256:dddd"
        );
    }
    // The connections are cut in the middle between two requests.
    send_logs(&server, &token, attempts[..8].join("\n")).await;
    send_logs(&server, &token, attempts[8..].join("\n")).await;
    send_logs(&server, &token, logins).await;

    let rules = alert_rules(&server, &token, &format!("?entity={attacker}")).await;
    assert!(rules.iter().any(|r| r == "brute-force"), "{rules:?}");
    let (_, body) = server
        .get(&format!("/api/v1/alerts?entity={user}"), Some(&token))
        .await;
    assert!(body["alerts"].as_array().unwrap().is_empty(), "{body}");
    let (_, _, text) = blocklist_text(&server, &token).await;
    assert_eq!(text.lines().collect::<Vec<_>>(), [attacker]);
    // Each attempt is counted on one line; the others say they tell it again.
    let (_, body) = server
        .get(
            &format!("/api/v1/events?source_ip={attacker}&limit=100"),
            Some(&token),
        )
        .await;
    let events = body["events"].as_array().unwrap();
    assert_eq!(events.len(), 18, "{body}");
    let counted = events
        .iter()
        .filter(|e| e["success"] == false && e["details"]["count"].as_u64() != Some(0))
        .count();
    assert_eq!(counted, 6, "{body}");
}
