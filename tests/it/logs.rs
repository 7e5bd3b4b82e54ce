//! Raw-log ingest over HTTPS: a real sshd log in, events with their rules' fields out,
//! templates kept across a restart, re-sent lines stored once, bad requests refused.

use reqwest::StatusCode;
use serde_json::json;

use crate::common::{Start, TestServer, cli};

const LOGHUB: &str = include_str!("../data/loghub-openssh/OpenSSH_2k.log");

#[tokio::test]
async fn a_real_sshd_log_becomes_events_and_templates_that_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = TestServer::start(dir.path(), Start::default()).await;
    let token = server.api_token(&["ingest", "read"]).await;
    let first_half: String = LOGHUB.lines().take(1000).flat_map(|l| [l, "\n"]).collect();
    let (status, body) = server
        .post_raw(
            "/api/v1/logs?source=auth.log&year=2017",
            Some(&token),
            "text/plain; charset=utf-8",
            first_half.clone(),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    assert_eq!(
        body,
        json!({"lines": 1000, "accepted": 1000, "duplicates": 0, "unparsed": 0})
    );

    // The first line of the file, read back with what the rules made of it.
    let (status, page) = server
        .get(
            "/api/v1/events?event_type=BREAKIN_ATTEMPT&limit=1000",
            Some(&token),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{page}");
    let oldest = page["events"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(oldest["timestamp"], "2017-12-10T06:55:46Z");
    assert_eq!(oldest["source_ip"], "173.234.31.186");
    assert_eq!(oldest["host"], "LabSZ");
    assert_eq!(oldest["service"], "sshd");
    assert_eq!(oldest["pid"], 24200);
    assert_eq!(oldest["username"], serde_json::Value::Null);
    assert_eq!(oldest["success"], serde_json::Value::Null);
    assert!(
        oldest["raw"]
            .as_str()
            .unwrap()
            .ends_with("POSSIBLE BREAK-IN ATTEMPT!")
    );
    assert_eq!(
        oldest["message"],
        "reverse mapping checking getaddrinfo for ns.marryaldkfaczcz.com [173.234.31.186] failed - POSSIBLE BREAK-IN ATTEMPT!"
    );
    assert_eq!(oldest["details"]["parser"], "sshd");
    assert_eq!(oldest["details"]["source"], "auth.log");
    let (_, failed) = server
        .get(
            "/api/v1/events?event_type=LOGIN_FAILED&username=root&limit=1",
            Some(&token),
        )
        .await;
    assert_eq!(failed["events"][0]["success"], false);
    assert!(failed["events"][0]["port"].is_u64());

    let (status, templates) = server.get("/api/v1/templates", Some(&token)).await;
    assert_eq!(status, StatusCode::OK);
    let before = templates["templates"].as_array().unwrap().clone();
    assert!(before.len() >= 20, "{templates}");
    let failed_template = before
        .iter()
        .find(|t| t["template"] == "Failed password for <user> from <ip> port <num> ssh2")
        .unwrap()
        .clone();

    // Restart: the templates keep their ids, and new lines join them.
    assert!(server.terminate().success());
    drop(server);
    let server = TestServer::start(dir.path(), Start::default()).await;
    let second_half: String = LOGHUB.lines().skip(1000).flat_map(|l| [l, "\n"]).collect();
    let (status, body) = server
        .post_raw(
            "/api/v1/logs?source=auth.log&year=2017",
            Some(&token),
            "text/plain",
            second_half,
        )
        .await;
    assert_eq!(
        (status, body["accepted"].clone()),
        (StatusCode::ACCEPTED, json!(1000))
    );
    let (_, templates) = server.get("/api/v1/templates", Some(&token)).await;
    let after = templates["templates"].as_array().unwrap();
    assert_eq!(
        after.len(),
        27,
        "the 27 templates of the loghub ground truth"
    );
    let same = after
        .iter()
        .find(|t| t["id"] == failed_template["id"])
        .unwrap();
    assert_eq!(same["template"], failed_template["template"]);
    assert!(same["count"].as_u64().unwrap() > failed_template["count"].as_u64().unwrap());

    // The same lines again: every one is a duplicate.
    let (status, body) = server
        .post_raw(
            "/api/v1/logs?source=auth.log&year=2017",
            Some(&token),
            "text/plain",
            first_half,
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    assert_eq!(
        (body["accepted"].clone(), body["duplicates"].clone()),
        (json!(0), json!(1000))
    );
    assert_eq!(server.all_event_ids(&token).await.len(), 2000);
}

#[tokio::test]
async fn unknown_lines_are_kept_and_bad_requests_refused() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path(), Start::default()).await;
    let token = server.api_token(&["ingest", "read"]).await;
    let reader = server.api_token(&["read"]).await;
    let (status, body) = server
        .post_raw(
            "/api/v1/logs?host=edge1",
            Some(&token),
            "text/plain",
            "kernel panic \u{1} not syncing\n\u{fffd}\u{fffd}\n",
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    assert_eq!(body["unparsed"], 2);
    let (_, page) = server
        .get("/api/v1/events?event_type=UNPARSED", Some(&token))
        .await;
    assert_eq!(page["events"][0]["host"], "edge1");

    let refused = [
        (
            "/api/v1/logs",
            Some(token.as_str()),
            "application/json",
            "x",
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
        ),
        (
            "/api/v1/logs",
            Some(token.as_str()),
            "text/plain",
            "\n\n",
            StatusCode::BAD_REQUEST,
            "empty_body",
        ),
        (
            "/api/v1/logs?year=12",
            Some(token.as_str()),
            "text/plain",
            "x",
            StatusCode::BAD_REQUEST,
            "invalid_query",
        ),
        (
            "/api/v1/logs?tz=Mars",
            Some(token.as_str()),
            "text/plain",
            "x",
            StatusCode::BAD_REQUEST,
            "invalid_query",
        ),
        (
            "/api/v1/logs?colour=red",
            Some(token.as_str()),
            "text/plain",
            "x",
            StatusCode::BAD_REQUEST,
            "invalid_query",
        ),
        (
            "/api/v1/logs",
            None,
            "text/plain",
            "x",
            StatusCode::UNAUTHORIZED,
            "unauthorized",
        ),
        (
            "/api/v1/logs",
            Some(reader.as_str()),
            "text/plain",
            "x",
            StatusCode::FORBIDDEN,
            "forbidden",
        ),
    ];
    for (path, bearer, content_type, body, status, code) in refused {
        let (got, reply) = server.post_raw(path, bearer, content_type, body).await;
        assert_eq!(
            (got, reply["error"]["code"].as_str()),
            (status, Some(code)),
            "{path} {reply}"
        );
    }
    // Nothing a refused request carried was stored.
    assert_eq!(server.all_event_ids(&token).await.len(), 2);
}

#[tokio::test]
async fn import_goes_through_the_running_server_or_straight_to_a_stopped_store() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("auth.log");
    let lines: Vec<&str> = LOGHUB.lines().collect();
    std::fs::write(&log, lines[..1500].join("\n")).unwrap();
    let mut server = TestServer::start(dir.path(), Start::default()).await;
    let token = server.api_token(&["ingest", "read"]).await;

    // Live server: the batches go through its admin socket and pipeline.
    let log_arg = log.to_str().unwrap();
    let (status, _, stderr) = cli(dir.path(), &["import", "--year", "2017", log_arg], None);
    assert!(status.success(), "{stderr}");
    assert!(
        stderr.contains("1500 lines, 1500 stored, 0 already stored"),
        "{stderr}"
    );
    assert_eq!(server.all_event_ids(&token).await.len(), 1500);
    let (_, page) = server
        .get(
            "/api/v1/events?event_type=BREAKIN_ATTEMPT&limit=1000",
            Some(&token),
        )
        .await;
    let oldest = page["events"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(oldest["timestamp"], "2017-12-10T06:55:46Z");
    assert_eq!(oldest["details"]["source"], "auth.log");

    // The same lines posted live are already there.
    let (_, body) = server
        .post_raw(
            "/api/v1/logs?year=2017",
            Some(&token),
            "text/plain",
            lines[1000..1500].join("\n"),
        )
        .await;
    assert_eq!(body["duplicates"], 500, "{body}");

    // Stopped server: the command opens the store itself; the rest of the file is new, the
    // first part is not stored twice; NDJSON events come in too.
    assert!(server.terminate().success());
    drop(server);
    std::fs::write(&log, lines.join("\n")).unwrap();
    let (status, _, stderr) = cli(dir.path(), &["import", "--year", "2017", log_arg], None);
    assert!(status.success(), "{stderr}");
    assert!(
        stderr.contains("2000 lines, 500 stored, 1500 already stored"),
        "{stderr}"
    );
    let ndjson = "{\"event_id\":\"n1\",\"timestamp\":\"2024-01-01T00:00:00Z\",\"source_ip\":\"192.0.2.1\",\"event_type\":\"LOGIN_ATTEMPT\",\"username\":\"a\",\"success\":true}\n{\"event_id\":\"n2\",\"timestamp\":\"nope\"}\n";
    let (status, _, stderr) = cli(dir.path(), &["import", "-"], Some(ndjson));
    assert!(status.success(), "{stderr}");
    assert!(
        stderr.contains("2 lines, 1 stored, 0 already stored, 0 not understood (kept), 1 refused"),
        "{stderr}"
    );

    let server = TestServer::start(dir.path(), Start::default()).await;
    assert_eq!(server.all_event_ids(&token).await.len(), 2001);
    let (_, templates) = server.get("/api/v1/templates", Some(&token)).await;
    assert_eq!(templates["templates"].as_array().unwrap().len(), 27);

    // A missing file is a clear error.
    let (status, _, stderr) = cli(dir.path(), &["import", "/nonexistent/auth.log"], None);
    assert_eq!(status.code(), Some(1));
    assert!(
        stderr.contains("cannot open /nonexistent/auth.log"),
        "{stderr}"
    );
}

#[tokio::test]
async fn syslog_over_udp_and_tcp_with_both_framings() {
    use std::io::Write;
    let dir = tempfile::tempdir().unwrap();
    let mut server = TestServer::start(
        dir.path(),
        Start {
            extra_args: vec!["--syslog-listen".into(), "127.0.0.1:0".into()],
            ..Start::default()
        },
    )
    .await;
    let token = server.api_token(&["read"]).await;
    let (_, ready) = server.get("/ready", None).await;
    let addr: std::net::SocketAddr = ready["syslog"]["addr"].as_str().unwrap().parse().unwrap();
    assert!(addr.ip().is_loopback());

    let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    udp.send_to(
        b"<38>Mar  2 00:00:03 srv01 sshd[7]: Failed password for root from 203.0.113.9 port 4444 ssh2",
        addr,
    )
    .unwrap();
    let mut tcp = std::net::TcpStream::connect(addr).unwrap();
    tcp.write_all(
        b"<38>Mar  2 00:00:04 srv01 sshd[7]: Invalid user bob from 203.0.113.10 port 1\n",
    )
    .unwrap();
    let framed = b"<38>1 2026-03-02T00:00:05Z srv02 sudo - - - alice : TTY=pts/0 ; PWD=/ ; USER=root ; COMMAND=/bin/id";
    tcp.write_all(format!("{} ", framed.len()).as_bytes())
        .unwrap();
    tcp.write_all(framed).unwrap();
    tcp.write_all(b"a bare line from a device\n").unwrap();
    // An impossible octet count ends this sender's connection, not the listener.
    tcp.write_all(b"99999999 x").unwrap();
    drop(tcp);

    let mut types = Vec::new();
    for _ in 0..100 {
        let (_, page) = server.get("/api/v1/events", Some(&token)).await;
        types = page["events"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| {
                (
                    e["event_type"].as_str().unwrap().to_string(),
                    e["host"].as_str().unwrap().to_string(),
                )
            })
            .collect();
        if types.len() == 4 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    types.sort();
    assert_eq!(
        types,
        [
            ("INVALID_USER".to_string(), "srv01".to_string()),
            ("LOGIN_FAILED".to_string(), "srv01".to_string()),
            ("SUDO_COMMAND".to_string(), "srv02".to_string()),
            ("UNPARSED".to_string(), "127.0.0.1".to_string()),
        ]
    );

    // Lines received just before a stop are stored before the server exits.
    let mut tcp = std::net::TcpStream::connect(addr).unwrap();
    tcp.write_all(b"<38>Mar  2 00:00:09 srv01 sshd[8]: Accepted password for carol from 192.0.2.4 port 22 ssh2\n")
        .unwrap();
    tcp.flush().unwrap();
    std::thread::sleep(std::time::Duration::from_millis(100));
    assert!(server.terminate().success());
    drop(server);
    let server = TestServer::start(dir.path(), Start::default()).await;
    let (_, page) = server
        .get("/api/v1/events?event_type=LOGIN_SUCCESS", Some(&token))
        .await;
    assert_eq!(page["events"][0]["username"], "carol");
    drop(tcp);
}
