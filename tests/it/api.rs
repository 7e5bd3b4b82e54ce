//! The ingest and read API: the first-start flow, persistence across restarts, duplicates,
//! and every kind of bad input with its status, code and message (and nothing stored changed).

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::common::{Start, TestServer, event};

#[tokio::test]
async fn first_start_ingest_read_back_and_restart() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = TestServer::start(dir.path(), Start::default()).await;
    let token = server.api_token(&["ingest", "read"]).await;

    // One event, an array, and NDJSON.
    let (status, body) = server
        .post_json("/ingest", Some(&token), &event("one"))
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    assert_eq!(
        body,
        json!({"accepted": 1, "duplicates": 0, "rejected": [],
               "risk_score": 0.0, "verdict": "allow", "reasons": []})
    );

    let array = json!([event("two"), event("three"), event("one")]);
    let (status, body) = server.post_json("/ingest", Some(&token), &array).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    assert_eq!(
        body,
        json!({"accepted": 2, "duplicates": 1, "rejected": []})
    );

    let ndjson = format!("{}\n{}\n\n{}\n", event("four"), event("five"), event("two"));
    let (status, body) = server
        .post_raw("/ingest", Some(&token), "application/x-ndjson", ndjson)
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    assert_eq!(
        body,
        json!({"accepted": 2, "duplicates": 1, "rejected": []})
    );

    let (status, body) = server.get("/api/v1/events/three", Some(&token)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["username"], "alice");
    assert_eq!(body["timestamp"], "2024-05-01T12:00:00Z");
    assert_eq!(body["source_ip"], "203.0.113.7");

    let mut before = server.all_event_ids(&token).await;
    before.sort();
    assert_eq!(before, ["five", "four", "one", "three", "two"]);

    // A clean stop, then a restart on the same data directory: everything is still there.
    // The test's client keeps an idle HTTP/2 connection open: it must not hold the shutdown
    // for the whole grace period (15 s).
    let stopping = std::time::Instant::now();
    assert!(server.terminate().success());
    assert!(stopping.elapsed() < std::time::Duration::from_secs(10));
    drop(server);
    let server = TestServer::start(dir.path(), Start::default()).await;
    let mut after = server.all_event_ids(&token).await;
    after.sort();
    assert_eq!(after, before);
    let (status, body) = server
        .post_json("/ingest", Some(&token), &event("one"))
        .await;
    assert_eq!(
        (status, body["duplicates"].clone()),
        (StatusCode::ACCEPTED, json!(1))
    );
}

#[tokio::test]
async fn events_are_filtered_and_paged_newest_first() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path(), Start::default()).await;
    let token = server.api_token(&["ingest", "read"]).await;
    let events: Vec<Value> = (0..30)
        .map(|i| {
            json!({
                "event_id": format!("e{i:02}"),
                "timestamp": format!("2024-05-01T12:00:{i:02}Z"),
                "source_ip": if i % 3 == 0 { "2001:db8::7" } else { "198.51.100.4" },
                "event_type": "LOGIN_ATTEMPT",
                "username": if i % 2 == 0 { "alice" } else { "bob" },
                "success": i % 5 == 0,
            })
        })
        .collect();
    let (status, _) = server
        .post_json("/ingest", Some(&token), &Value::Array(events))
        .await;
    assert_eq!(status, StatusCode::ACCEPTED);

    let ids = |body: &Value| -> Vec<String> {
        body["events"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["event_id"].as_str().unwrap().to_string())
            .collect()
    };
    let (_, body) = server.get("/api/v1/events?limit=3", Some(&token)).await;
    assert_eq!(ids(&body), ["e29", "e28", "e27"]);
    let cursor = body["next_cursor"].as_str().unwrap();
    let (_, body) = server
        .get(
            &format!("/api/v1/events?limit=3&cursor={cursor}"),
            Some(&token),
        )
        .await;
    assert_eq!(ids(&body), ["e26", "e25", "e24"]);

    let path = "/api/v1/events?source_ip=2001:db8::7&username=alice&from=2024-05-01T12:00:05Z&to=2024-05-01T12:00:20Z";
    let (_, body) = server.get(path, Some(&token)).await;
    assert_eq!(ids(&body), ["e18", "e12", "e06"]);
    let (_, body) = server
        .get(
            "/api/v1/events?success=true&event_type=login_attempt",
            Some(&token),
        )
        .await;
    assert_eq!(ids(&body), ["e25", "e20", "e15", "e10", "e05", "e00"]);
    assert!(body.get("next_cursor").is_none());
}

/// Sends a bad request and checks status, error code and a fragment of the message.
/// A bad request: credential, content type, body, then the expected status, code and a
/// fragment of the message.
type ErrorCase<'a> = (
    Option<&'a str>,
    &'a str,
    String,
    StatusCode,
    &'a str,
    &'a str,
);

async fn expect_error(
    server: &TestServer,
    token: Option<&str>,
    content_type: &str,
    body: &str,
    status: StatusCode,
    code: &str,
    fragment: &str,
) {
    let (got, reply) = server
        .post_raw("/ingest", token, content_type, body.to_string())
        .await;
    assert_eq!(got, status, "{body} -> {reply}");
    assert_eq!(reply["error"]["code"], code, "{body} -> {reply}");
    let message = reply["error"]["message"].as_str().unwrap();
    assert!(message.contains(fragment), "{body} -> {message}");
}

#[tokio::test]
async fn bad_ingest_input_is_rejected_clearly_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(
        dir.path(),
        Start {
            extra_args: vec!["--max-body-bytes".into(), "4096".into()],
            ..Start::default()
        },
    )
    .await;
    let token = server.api_token(&["ingest", "read"]).await;
    let read_only = server.api_token(&["read"]).await;
    let (status, _) = server
        .post_json(
            "/ingest",
            Some(&token),
            &json!([event("kept-1"), event("kept-2")]),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let json_type = "application/json";

    let ndjson = "application/x-ndjson";
    let (anon, forged, not_jwt) = (event("anon"), event("forged"), event("jwt"));
    let (text, read_only_event) = (event("t"), event("ro"));
    let too_big = Value::Array(vec![event("big"); 40]).to_string();
    let broken_ndjson = format!("{}\nnot json\n", event("nd-1"));
    let cases: [ErrorCase; 10] = [
        (
            Some(&token),
            json_type,
            "{\"event_id\": \"x\",\n \"success\": }".into(),
            StatusCode::BAD_REQUEST,
            "invalid_json",
            "line 2, column 13",
        ),
        (
            Some(&token),
            ndjson,
            broken_ndjson,
            StatusCode::BAD_REQUEST,
            "invalid_json",
            "line 2",
        ),
        (
            Some(&token),
            json_type,
            String::new(),
            StatusCode::BAD_REQUEST,
            "empty_body",
            "empty",
        ),
        (
            Some(&token),
            json_type,
            "\"text\"".into(),
            StatusCode::BAD_REQUEST,
            "invalid_json",
            "object or an array",
        ),
        (
            Some(&token),
            "text/plain",
            text.to_string(),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "application/json",
        ),
        (
            Some(&token),
            json_type,
            too_big,
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            "max_body_bytes",
        ),
        (
            None,
            json_type,
            anon.to_string(),
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "credentials",
        ),
        (
            Some("sfy_0123456789abcdef_forged"),
            json_type,
            forged.to_string(),
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "credentials",
        ),
        (
            Some("not-a-jwt"),
            json_type,
            not_jwt.to_string(),
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "credentials",
        ),
        (
            Some(&read_only),
            json_type,
            read_only_event.to_string(),
            StatusCode::FORBIDDEN,
            "forbidden",
            "do not grant",
        ),
    ];
    for (credential, content_type, body, status, code, fragment) in cases {
        expect_error(
            &server,
            credential,
            content_type,
            &body,
            status,
            code,
            fragment,
        )
        .await;
    }

    // A single bad event is a 400 naming the field; in a batch it is rejected by index.
    let mut bad_ip = event("bad-ip");
    bad_ip["source_ip"] = json!("999.1.1.1");
    expect_error(
        &server,
        Some(&token),
        json_type,
        &bad_ip.to_string(),
        StatusCode::BAD_REQUEST,
        "invalid_event",
        "`source_ip`",
    )
    .await;
    let mut bad_time = event("bad-time");
    bad_time["timestamp"] = json!("2024-13-01 25:00");
    let mut bad_type = event("bad-type");
    bad_type["success"] = json!(1);
    let mut missing = event("missing");
    missing.as_object_mut().unwrap().remove("username");
    let batch = json!([bad_time, event("good-1"), bad_type, missing]);
    let (status, body) = server.post_json("/ingest", Some(&token), &batch).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    assert_eq!(body["accepted"], 1);
    let rejected = body["rejected"].as_array().unwrap();
    let summary: Vec<(u64, &str)> = rejected
        .iter()
        .map(|r| (r["index"].as_u64().unwrap(), r["error"].as_str().unwrap()))
        .collect();
    assert_eq!(summary.len(), 3, "{body}");
    assert_eq!(summary[0].0, 0);
    assert!(summary[0].1.starts_with("field `timestamp`"), "{body}");
    assert_eq!(summary[1].0, 2);
    assert!(summary[1].1.starts_with("field `success`"), "{body}");
    assert_eq!(summary[2].0, 3);
    assert!(
        summary[2].1.starts_with("field `username`: is required"),
        "{body}"
    );

    // Bad read parameters.
    for (path, fragment) in [
        ("/api/v1/events?limit=0", "`limit`"),
        ("/api/v1/events?limit=abc", "`limit`"),
        ("/api/v1/events?from=yesterday", "`from`"),
        ("/api/v1/events?source_ip=nope", "`source_ip`"),
        ("/api/v1/events?success=maybe", "`success`"),
        ("/api/v1/events?cursor=%%%", "`cursor`"),
        (
            "/api/v1/events?from=2024-05-02T00:00:00Z&to=2024-05-01T00:00:00Z",
            "after",
        ),
        ("/api/v1/events?colour=red", "unknown parameter `colour`"),
    ] {
        let (status, body) = server.get(path, Some(&token)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{path} -> {body}");
        assert_eq!(body["error"]["code"], "invalid_parameter", "{path}");
        assert!(
            body["error"]["message"]
                .as_str()
                .unwrap()
                .contains(fragment),
            "{path} -> {body}"
        );
    }
    let (status, body) = server
        .get("/api/v1/events/no-such-event", Some(&token))
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::NOT_FOUND, Some("not_found"))
    );
    let (status, _) = server.get("/api/v1/events", None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    // Nothing but the three good events was stored.
    let mut ids = server.all_event_ids(&token).await;
    ids.sort();
    assert_eq!(ids, ["good-1", "kept-1", "kept-2"]);
}

#[tokio::test]
async fn unknown_routes_methods_and_headers_are_handled() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path(), Start::default()).await;

    let (status, body) = server.get("/health", None).await;
    assert_eq!((status, body), (StatusCode::OK, json!({"status": "ok"})));
    let (status, body) = server.get("/ready", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["status"], "ready");

    let (status, body) = server.get("/api/v1/nothing-here", None).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::NOT_FOUND, Some("not_found"))
    );
    let response = server
        .client
        .delete(server.url("/ingest"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
    let response = server
        .client
        .get(server.url("/ingest"))
        .send()
        .await
        .unwrap();
    let headers = response.headers().clone();
    assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "method_not_allowed");
    for (name, value) in [
        ("x-frame-options", "DENY"),
        ("x-content-type-options", "nosniff"),
        ("referrer-policy", "same-origin"),
        (
            "strict-transport-security",
            "max-age=31536000; includeSubDomains",
        ),
    ] {
        assert_eq!(
            headers.get(name).and_then(|v| v.to_str().ok()),
            Some(value),
            "{name}"
        );
    }
    assert!(headers.get("content-security-policy").is_some());
}

#[tokio::test]
async fn clients_that_stall_mid_request_are_disconnected() {
    use std::io::{Read, Write};
    use std::sync::Arc;
    use std::time::{Duration, Instant};

    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, ServerName};

    let dir = tempfile::tempdir().unwrap();
    let start = Start {
        extra_args: vec!["--request-header-timeout-secs".into(), "1".into()],
        ..Start::default()
    };
    let server = TestServer::start(dir.path(), start).await;
    let (addr, cert) = (server.addr, dir.path().join("data/tls/cert.pem"));
    let began = Instant::now();
    tokio::task::spawn_blocking(move || {
        let mut roots = rustls::RootCertStore::empty();
        for der in CertificateDer::pem_file_iter(&cert).unwrap() {
            roots.add(der.unwrap()).unwrap();
        }
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        let name = ServerName::try_from("127.0.0.1").unwrap();
        let connection = rustls::ClientConnection::new(Arc::new(config), name).unwrap();
        let tcp = std::net::TcpStream::connect(addr).unwrap();
        tcp.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        let mut tls = rustls::StreamOwned::new(connection, tcp);
        // The request head never ends: no blank line follows.
        tls.write_all(b"GET /health HTTP/1.1\r\nHost: localhost\r\n")
            .unwrap();
        let mut rest = Vec::new();
        // Returns once the server closes the connection, with or without a reply.
        let _ = tls.read_to_end(&mut rest);
    })
    .await
    .unwrap();
    let held = began.elapsed();
    assert!(
        held >= Duration::from_millis(900),
        "closed before the timeout: {held:?}"
    );
    assert!(
        held < Duration::from_secs(10),
        "a stalled client held its connection for {held:?}"
    );
    assert_eq!(server.get("/health", None).await.0, StatusCode::OK);
}
