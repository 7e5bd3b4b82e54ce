//! Detection end to end: log lines and JSON events in, alerts out, worked by analysts; the same
//! file imported or fed live gives the same alerts; re-sent lines add nothing.

use std::collections::BTreeSet;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::common::{Start, TestServer, cli};

const LOGHUB: &str = include_str!("../data/loghub-openssh/OpenSSH_2k.log");

/// Six failed passwords from one address within a minute: a brute force.
fn brute_force_lines() -> String {
    use std::fmt::Write;
    let mut lines = String::new();
    for i in 0..6 {
        let _ = writeln!(
            lines,
            "Mar  2 10:00:{:02} srv01 sshd[{}]: Failed password for admin from 203.0.113.9 port {} ssh2",
            i * 10,
            100 + i,
            40000 + i
        );
    }
    lines
}

async fn alerts(server: &TestServer, token: &str, query: &str) -> Vec<Value> {
    let (status, body) = server
        .get(&format!("/api/v1/alerts{query}"), Some(token))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["alerts"].as_array().unwrap().clone()
}

#[tokio::test]
async fn a_brute_force_becomes_an_alert_that_analysts_work() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path(), Start::default()).await;
    let token = server.api_token(&["ingest", "read"]).await;
    let (status, body) = server
        .post_raw(
            "/api/v1/logs?year=2026",
            Some(&token),
            "text/plain",
            brute_force_lines(),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");

    let found = alerts(&server, &token, "?rule=brute-force").await;
    assert_eq!(found.len(), 1, "{found:?}");
    let alert = &found[0];
    assert_eq!(alert["entity_type"], "ip");
    assert_eq!(alert["entity"], "203.0.113.9");
    assert_eq!(alert["severity"], "high");
    assert_eq!(alert["status"], "open");
    assert_eq!(alert["attack"], json!(["T1110.001"]));
    assert_eq!(alert["first_seen"], "2026-03-02T10:00:00Z");
    assert_eq!(alert["last_seen"], "2026-03-02T10:00:50Z");
    assert_eq!(alert["peak"], 6);
    let id = alert["id"].as_u64().unwrap();

    // The alert with its evidence events.
    let (status, detail) = server
        .get(&format!("/api/v1/alerts/{id}"), Some(&token))
        .await;
    assert_eq!(status, StatusCode::OK);
    let evidence = detail["evidence_events"].as_array().unwrap();
    assert_eq!(evidence.len(), 6);
    assert!(evidence.iter().all(|e| e["source_ip"] == "203.0.113.9"));

    // Sending the same lines again changes nothing.
    let count = alert["count"].clone();
    server
        .post_raw(
            "/api/v1/logs?year=2026",
            Some(&token),
            "text/plain",
            brute_force_lines(),
        )
        .await;
    let again = alerts(&server, &token, "?rule=brute-force").await;
    assert_eq!((again.len(), again[0]["count"].clone()), (1, count));

    // Working it: an admin acknowledges with a note; a reader or viewer cannot.
    let admin = server.admin_access().await;
    let path = format!("/api/v1/alerts/{id}/status");
    let (status, body) = server
        .put_json(
            &path,
            Some(&admin),
            &json!({"status": "acknowledged", "note": "blocked at the edge"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["status"], "acknowledged");
    assert_eq!(body["notes"][0]["by"], "user:admin");
    assert_eq!(body["notes"][0]["text"], "blocked at the edge");
    let (status, _) = server
        .put_json(&path, Some(&token), &json!({"status": "resolved"}))
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    for (body, code) in [
        (json!({"status": "done"}), "invalid_request"),
        (
            json!({"status": "resolved", "colour": 1}),
            "invalid_request",
        ),
    ] {
        let (status, reply) = server.put_json(&path, Some(&admin), &body).await;
        assert_eq!(
            (status, reply["error"]["code"].as_str()),
            (StatusCode::BAD_REQUEST, Some(code)),
            "{reply}"
        );
    }
    let (status, _) = server
        .put_json(
            "/api/v1/alerts/999/status",
            Some(&admin),
            &json!({"status": "resolved"}),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = server.get("/api/v1/alerts/nope", Some(&token)).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, body) = server
        .get("/api/v1/alerts?status=closed", Some(&token))
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_query"))
    );
    assert_eq!(
        alerts(&server, &token, "?status=acknowledged").await.len(),
        1
    );
    assert!(
        alerts(&server, &token, "?status=open&rule=brute-force")
            .await
            .is_empty()
    );
}

#[tokio::test]
async fn json_events_from_a_login_backend_are_detected_too() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path(), Start::default()).await;
    let token = server.api_token(&["ingest", "read"]).await;
    let attempt = |i: u32, success: bool| {
        json!({
            "event_id": format!("web-{i}"),
            "timestamp": format!("2026-05-01T12:00:{:02}Z", i * 5),
            "source_ip": "2001:db8::bad",
            "event_type": "LOGIN_ATTEMPT",
            "username": "carol",
            "success": success,
        })
    };
    let events: Vec<Value> = (0..5)
        .map(|i| attempt(i, false))
        .chain([attempt(5, true)])
        .collect();
    let (status, body) = server
        .post_json("/ingest", Some(&token), &json!(events))
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let rules: BTreeSet<(String, String)> = alerts(&server, &token, "")
        .await
        .iter()
        .map(|a| {
            (
                a["rule"].as_str().unwrap().into(),
                a["entity"].as_str().unwrap().into(),
            )
        })
        .collect();
    for expected in [
        ("brute-force", "2001:db8::bad"),
        ("success-after-failures", "2001:db8::bad"),
        ("account-success-after-failures", "carol"),
    ] {
        assert!(
            rules.contains(&(expected.0.into(), expected.1.into())),
            "{expected:?} in {rules:?}"
        );
    }
}

/// Every (rule, entity) alerted on.
async fn alert_set(server: &TestServer, token: &str) -> BTreeSet<(String, String)> {
    alerts(server, token, "?limit=500")
        .await
        .iter()
        .map(|a| {
            (
                a["rule"].as_str().unwrap().into(),
                a["entity"].as_str().unwrap().into(),
            )
        })
        .collect()
}

#[tokio::test]
async fn importing_a_file_and_feeding_it_live_give_the_same_alerts() {
    let lines: Vec<&str> = LOGHUB.lines().collect();
    // Live, in chunks, in order.
    let live_dir = tempfile::tempdir().unwrap();
    let live = TestServer::start(live_dir.path(), Start::default()).await;
    let live_token = live.api_token(&["ingest", "read"]).await;
    for chunk in lines.chunks(300) {
        let (status, _) = live
            .post_raw(
                "/api/v1/logs?year=2017",
                Some(&live_token),
                "text/plain",
                chunk.join("\n"),
            )
            .await;
        assert_eq!(status, StatusCode::ACCEPTED);
    }
    let live_alerts = alert_set(&live, &live_token).await;
    assert!(
        live_alerts.iter().any(|(rule, _)| rule == "brute-force"),
        "{live_alerts:?}"
    );

    // Imported, on a stopped data directory, from a file.
    let import_dir = tempfile::tempdir().unwrap();
    let mut server = TestServer::start(import_dir.path(), Start::default()).await;
    let token = server.api_token(&["read"]).await;
    assert!(server.terminate().success());
    drop(server);
    let file = import_dir.path().join("auth.log");
    std::fs::write(&file, LOGHUB).unwrap();
    let (status, _, stderr) = cli(
        import_dir.path(),
        &["import", "--year", "2017", file.to_str().unwrap()],
        None,
    );
    assert!(status.success(), "{stderr}");
    let server = TestServer::start(import_dir.path(), Start::default()).await;
    assert_eq!(alert_set(&server, &token).await, live_alerts);
}

#[tokio::test]
async fn a_restart_forgets_no_ongoing_attack() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = TestServer::start(dir.path(), Start::default()).await;
    let token = server.api_token(&["ingest", "read"]).await;
    let lines: Vec<String> = brute_force_lines().lines().map(str::to_string).collect();
    server
        .post_raw(
            "/api/v1/logs?year=2026",
            Some(&token),
            "text/plain",
            lines[..3].join("\n"),
        )
        .await;
    assert!(
        alerts(&server, &token, "?rule=brute-force")
            .await
            .is_empty()
    );
    server.kill();
    drop(server);
    let server = TestServer::start(dir.path(), Start::default()).await;
    server
        .post_raw(
            "/api/v1/logs?year=2026",
            Some(&token),
            "text/plain",
            lines[3..5].join("\n"),
        )
        .await;
    let found = alerts(&server, &token, "?rule=brute-force").await;
    assert_eq!(
        found.len(),
        1,
        "three failures before the crash and two after are five"
    );
    assert_eq!(found[0]["first_seen"], "2026-03-02T10:00:00Z");
}
