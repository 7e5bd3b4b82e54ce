//! Every dashboard page for every role: what each may see and change, forms refused without
//! their CSRF token, hostile values shown as text, and the live stream of alerts.

use std::fmt::Write;

use futures_util::StreamExt;
use reqwest::StatusCode;
use reqwest::header::LOCATION;
use serde_json::{Value, json};

use crate::common::{ADMIN_PASSWORD, Start, TestServer};
use crate::web::{csrf_field, get_as, login, post_form_as};

const LOGHUB: &str = include_str!("../data/loghub-openssh/OpenSSH_2k.log");
/// A user name a hostile client would send.
const HOSTILE: &str = "<script>alert(1)</script>";

/// Pages every logged-in user may read.
const READABLE: [&str; 9] = [
    "/",
    "/?range=30d&until=2017-12-11T00:00:00Z",
    "/alerts",
    "/alerts?status=open&severity=high",
    "/search?q=%22invalid+user%22&range=all",
    "/events",
    "/blocklist",
    "/system",
    "/ip/173.234.31.186",
];

/// A server holding the loghub sample (with its alerts), one event of a hostile user name, and
/// a viewer and an analyst besides the admin.
async fn populated(dir: &std::path::Path) -> (TestServer, String) {
    let server = TestServer::start(dir, Start::default()).await;
    let admin = server.admin_token().await;
    for (name, role) in [("vic", "viewer"), ("ann", "analyst")] {
        let (status, body) = server
            .post_json(
                "/api/v1/users",
                Some(&admin),
                &json!({"username": name, "password": "a long password 1", "role": role}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }
    let token = server.api_token(&["ingest", "read"]).await;
    let (status, body) = server
        .post_raw(
            "/api/v1/logs?year=2017",
            Some(&token),
            "text/plain",
            LOGHUB.to_string(),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let (status, body) = server
        .post_json(
            "/ingest",
            Some(&token),
            &json!({"event_id": "hostile", "timestamp": "2017-12-10T12:00:00Z",
                    "source_ip": "198.51.100.9", "event_type": "LOGIN_ATTEMPT",
                    "username": HOSTILE, "success": false}),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    crate::search::caught_up(&server).await;
    (server, token)
}

/// The first alert on an address, as the API lists it.
async fn an_address_alert(server: &TestServer, token: &str) -> Value {
    let (_, page) = server.get("/api/v1/alerts?limit=500", Some(token)).await;
    page["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["entity_type"] == "ip")
        .cloned()
        .expect("an alert on an address")
}

async fn body(response: reqwest::Response) -> String {
    response.text().await.unwrap()
}

#[tokio::test]
async fn every_page_for_every_role_and_none_logged_out() {
    let dir = tempfile::tempdir().unwrap();
    let (server, token) = populated(dir.path()).await;
    let alert = an_address_alert(&server, &token).await;
    let alert_page = format!("/alerts/{}", alert["id"]);
    let user_page = "/user/root".to_string();
    let mut pages: Vec<String> = READABLE.iter().map(ToString::to_string).collect();
    pages.extend([alert_page.clone(), user_page]);

    for path in pages
        .iter()
        .map(String::as_str)
        .chain(["/tokens", "/users"])
    {
        let response = server.client.get(server.url(path)).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::SEE_OTHER, "{path}");
        assert_eq!(response.headers()[LOCATION], "/login", "{path}");
    }

    for (user, password) in [
        ("vic", "a long password 1"),
        ("ann", "a long password 1"),
        ("admin", ADMIN_PASSWORD),
    ] {
        let session = login(&server, user, password).await;
        for path in &pages {
            let response = get_as(&server, path, &session).await;
            assert_eq!(response.status(), StatusCode::OK, "{user} {path}");
            let html = body(response).await;
            assert!(html.contains("</html>"), "{user} {path}");
            assert!(
                html.contains(&format!("{user} <span")),
                "{user} {path}: the bar names the user"
            );
        }
        for path in ["/tokens", "/users"] {
            let expected = if user == "admin" {
                StatusCode::OK
            } else {
                StatusCode::FORBIDDEN
            };
            let response = get_as(&server, path, &session).await;
            assert_eq!(response.status(), expected, "{user} {path}");
        }
        // Only those who may change alerts get the forms to.
        let html = body(get_as(&server, &alert_page, &session).await).await;
        assert_eq!(
            html.contains("Save status"),
            user != "vic",
            "{user} sees the status form"
        );
    }

    // Pages about things that are not there say so.
    let session = login(&server, "vic", "a long password 1").await;
    for (path, status) in [
        ("/alerts/999999", StatusCode::NOT_FOUND),
        ("/alerts/x", StatusCode::NOT_FOUND),
        ("/ip/not-an-address", StatusCode::NOT_FOUND),
        ("/alerts?severity=urgent", StatusCode::BAD_REQUEST),
        ("/search?q=%22open", StatusCode::BAD_REQUEST),
        ("/static/nothing.js", StatusCode::NOT_FOUND),
    ] {
        let response = get_as(&server, path, &session).await;
        assert_eq!(response.status(), status, "{path}");
    }
    let html = body(get_as(&server, "/search?q=user:root+%22open", &session).await).await;
    assert!(html.contains("phrase is not closed"), "{html}");
    assert!(
        html.contains("user:root <mark class=\"caret\">"),
        "the caret marks the spot"
    );

    // The assets are served with their types, and the pages work without them.
    for (path, kind) in [
        ("/static/app.css", "text/css"),
        ("/static/app.js", "text/javascript"),
    ] {
        let response = server.client.get(server.url(path)).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        assert!(
            response.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with(kind)
        );
    }
}

#[tokio::test]
async fn hostile_values_render_as_text_and_searches_highlight() {
    let dir = tempfile::tempdir().unwrap();
    let (server, _token) = populated(dir.path()).await;
    let session = login(&server, "admin", ADMIN_PASSWORD).await;
    let user_page = format!("/user/{}", urlencode(HOSTILE));
    let events_page = format!("/events?username={}", urlencode(HOSTILE));
    for path in [
        events_page.as_str(),
        "/search?q=ip:%22198.51.100.9%22&range=all",
        user_page.as_str(),
        "/ip/198.51.100.9",
    ] {
        let response = get_as(&server, path, &session).await;
        assert_eq!(response.status(), StatusCode::OK, "{path}");
        let html = body(response).await;
        assert!(!html.contains(HOSTILE), "{path} carries the raw markup");
        assert!(
            html.contains("&lt;script&gt;") || html.contains("&#60;script&#62;"),
            "{path} shows the name as text"
        );
    }
    // Words and phrases of the query are marked in the lines.
    let html = body(
        get_as(
            &server,
            "/search?q=%22invalid+user%22+webmaster&range=all",
            &session,
        )
        .await,
    )
    .await;
    assert!(
        html.contains("<mark>Invalid</mark> <mark>user</mark> <mark>webmaster</mark>"),
        "{html}"
    );
}

fn urlencode(text: &str) -> String {
    text.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// The alert's status and notes, from the API.
async fn alert_state(server: &TestServer, token: &str, id: &Value) -> (String, usize) {
    let (_, alert) = server
        .get(&format!("/api/v1/alerts/{id}"), Some(token))
        .await;
    (
        alert["status"].as_str().unwrap().to_string(),
        alert["notes"].as_array().unwrap().len(),
    )
}

async fn blocklist(server: &TestServer, token: &str) -> String {
    let response = server
        .client
        .get(server.url("/api/v1/blocklist"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    body(response).await
}

#[tokio::test]
async fn analysts_work_alerts_from_the_pages_and_viewers_and_forged_forms_cannot() {
    let dir = tempfile::tempdir().unwrap();
    let (server, token) = populated(dir.path()).await;
    let alert = an_address_alert(&server, &token).await;
    let id = &alert["id"];
    let ip = alert["entity"].as_str().unwrap().to_string();
    let page = format!("/alerts/{id}");
    let before = alert_state(&server, &token, id).await;

    // A viewer with a valid form token is refused, and nothing changes.
    let viewer = login(&server, "vic", "a long password 1").await;
    let csrf = csrf_field(&body(get_as(&server, &page, &viewer).await).await);
    let response = post_form_as(
        &server,
        &format!("{page}/status"),
        &viewer,
        &[("csrf", &csrf), ("status", "resolved"), ("note", "no")],
    )
    .await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    for path in [format!("{page}/block"), "/allowlist".to_string()] {
        let response = post_form_as(
            &server,
            &path,
            &viewer,
            &[("csrf", &csrf), ("network", &ip)],
        )
        .await;
        assert_eq!(response.status(), StatusCode::FORBIDDEN, "{path}");
    }
    assert_eq!(alert_state(&server, &token, id).await, before);

    // An analyst's form without (or with a wrong) CSRF token is refused too.
    let analyst = login(&server, "ann", "a long password 1").await;
    for form in [
        vec![("status", "acknowledged")],
        vec![("status", "acknowledged"), ("csrf", csrf.as_str())],
    ] {
        let response = post_form_as(&server, &format!("{page}/status"), &analyst, &form).await;
        assert_eq!(response.status(), StatusCode::FORBIDDEN);
        assert!(body(response).await.contains("Form expired"));
    }
    assert_eq!(alert_state(&server, &token, id).await, before);

    // With it: acknowledged with a note.
    let csrf = csrf_field(&body(get_as(&server, &page, &analyst).await).await);
    let response = post_form_as(
        &server,
        &format!("{page}/status"),
        &analyst,
        &[
            ("csrf", &csrf),
            ("status", "acknowledged"),
            ("note", "looking into it"),
        ],
    )
    .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let (status, notes) = alert_state(&server, &token, id).await;
    assert_eq!((status.as_str(), notes), ("acknowledged", before.1 + 1));
    let html = body(get_as(&server, &page, &analyst).await).await;
    assert!(html.contains("looking into it") && html.contains("user:ann"));
    // A bad status is refused with the reason on the page.
    let response = post_form_as(
        &server,
        &format!("{page}/status"),
        &analyst,
        &[("csrf", &csrf), ("status", "gone")],
    )
    .await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert!(body(response).await.contains("Unknown status"));

    // Block the address by hand: it is on the blocklist; allow-list it: it is off; remove
    // that: on again.
    let response = post_form_as(
        &server,
        &format!("{page}/block"),
        &analyst,
        &[("csrf", &csrf)],
    )
    .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let manual = response.headers()[LOCATION].to_str().unwrap().to_string();
    assert_ne!(manual, page, "a new alert records the block");
    assert!(blocklist(&server, &token).await.lines().any(|l| l == ip));
    let html = body(get_as(&server, &page, &analyst).await).await;
    assert!(html.contains("is blocked by hand"), "{html}");
    let response = post_form_as(
        &server,
        "/allowlist",
        &analyst,
        &[("csrf", &csrf), ("network", &ip), ("note", "our scanner")],
    )
    .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert!(!blocklist(&server, &token).await.contains(&ip));
    let html = body(get_as(&server, "/blocklist", &analyst).await).await;
    assert!(html.contains("our scanner") && html.contains("Kept off by the allow-list"));
    for bad in ["", "10.0.0.0/99", "example.com"] {
        let response = post_form_as(
            &server,
            "/allowlist",
            &analyst,
            &[("csrf", &csrf), ("network", bad)],
        )
        .await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{bad}");
    }
    let network = format!("{ip}/32");
    let response = post_form_as(
        &server,
        "/allowlist/remove",
        &analyst,
        &[("csrf", &csrf), ("network", &network)],
    )
    .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert!(blocklist(&server, &token).await.lines().any(|l| l == ip));
    let (status, allowed) = server.get("/api/v1/allowlist", Some(&token)).await;
    assert_eq!(status, StatusCode::OK);
    let added: Vec<&Value> = allowed["networks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|n| n["by"] != "config")
        .collect();
    assert!(added.is_empty(), "{allowed}");
}

#[tokio::test]
async fn the_monitor_streams_new_alerts_and_counts_and_refuses_strangers() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path(), Start::default()).await;
    let token = server.api_token(&["ingest", "read"]).await;
    let ingest_only = server.api_token(&["ingest"]).await;

    // Without credentials, with too few, or from another site's page: no stream.
    for (bearer, origin) in [
        (None, None),
        (Some(ingest_only.as_str()), None),
        (Some(token.as_str()), Some("https://evil.example")),
    ] {
        let error = crate::common::websocket(&server, "/api/v1/monitor/ws", bearer, origin)
            .await
            .unwrap_err();
        assert!(error.contains("401") || error.contains("403"), "{error}");
    }

    let mut stream = crate::common::websocket(&server, "/api/v1/monitor/ws", Some(&token), None)
        .await
        .unwrap();
    let hello = next_json(&mut stream).await;
    assert_eq!(hello["type"], "hello");

    // A brute force arrives: its alert and the counts come down the stream.
    let now = time::OffsetDateTime::now_utc();
    let stamp = time::macros::format_description!(
        "[month repr:short] [day padding:space] [hour]:[minute]:[second]"
    );
    let mut lines = String::new();
    for i in 0..12 {
        let t = (now - time::Duration::seconds(60 - i))
            .format(&stamp)
            .unwrap();
        let (pid, port) = (100 + i, 40_000 + i);
        writeln!(
            lines,
            "{t} web1 sshd[{pid}]: Failed password for root from 45.83.64.10 port {port} ssh2"
        )
        .unwrap();
    }
    let (status, body) = server
        .post_raw("/api/v1/logs", Some(&token), "text/plain", lines)
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let (mut alert, mut counted) = (None, 0);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while (alert.is_none() || counted < 12) && std::time::Instant::now() < deadline {
        let message = next_json(&mut stream).await;
        match message["type"].as_str() {
            Some("alert") => alert = Some(message["alert"].clone()),
            Some("counts") => counted += message["events"].as_u64().unwrap(),
            other => panic!("unexpected message {other:?}"),
        }
    }
    let alert = alert.expect("an alert within seconds");
    assert_eq!(alert["entity"], "45.83.64.10");
    assert_eq!(counted, 12);
}

async fn next_json(stream: &mut crate::common::WebSocket) -> Value {
    let message = tokio::time::timeout(std::time::Duration::from_secs(20), stream.next())
        .await
        .expect("a message in time")
        .expect("the stream is open")
        .expect("a good frame");
    serde_json::from_str(message.to_text().unwrap()).unwrap()
}
