//! Connections and bodies under attack: slow clients, floods of connections from one address,
//! oversized or unwanted bodies, over HTTP/1.1 and HTTP/2. Attackers use other loopback
//! addresses (127.0.0.2 and up) so that the test's own client (127.0.0.1) can check that the
//! server still answers everyone else.

use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use reqwest::{StatusCode, Version};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::common::{Start, TestServer, tls_from};

fn start_with(args: &[&str]) -> Start {
    Start {
        extra_args: args.iter().map(ToString::to_string).collect(),
        ..Start::default()
    }
}

/// Reads what the server sends until it closes the connection or `wait` passes.
async fn read_until_closed(
    reader: &mut (impl tokio::io::AsyncRead + Unpin),
    wait: Duration,
) -> (String, bool) {
    let mut reply = Vec::new();
    let closed = tokio::time::timeout(wait, reader.read_to_end(&mut reply))
        .await
        .is_ok();
    (String::from_utf8_lossy(&reply).into_owned(), closed)
}

#[tokio::test]
async fn trickled_bodies_time_out_and_cannot_crowd_out_other_clients() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(
        dir.path(),
        start_with(&[
            "--request-body-timeout-secs",
            "3",
            "--max-connections-per-address",
            "8",
        ]),
    )
    .await;
    let attacker = Ipv4Addr::new(127, 0, 0, 2);
    let began = Instant::now();
    let mut admitted = Vec::new();
    let mut refused = 0;
    for _ in 0..20 {
        let Ok(tls) = tls_from(&server, attacker).await else {
            refused += 1;
            continue;
        };
        let (mut reader, mut writer) = tokio::io::split(tls);
        // A login body of 1,000 bytes, sent a byte at a time.
        let head = "POST /api/v1/auth/login HTTP/1.1\r\nHost: localhost\r\n\
                    Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{";
        if writer.write_all(head.as_bytes()).await.is_err() {
            refused += 1;
            continue;
        }
        let trickle = tokio::spawn(async move {
            for _ in 0..40 {
                tokio::time::sleep(Duration::from_millis(250)).await;
                if writer.write_all(b" ").await.is_err() {
                    return;
                }
            }
        });
        let reading =
            tokio::spawn(
                async move { read_until_closed(&mut reader, Duration::from_secs(15)).await },
            );
        admitted.push((trickle, reading));
        // The request is being handled before the next connection arrives.
        tokio::time::sleep(Duration::from_millis(80)).await;
    }
    // Everyone else is still served while the attack holds its connections.
    let asked = Instant::now();
    assert_eq!(server.get("/health", None).await.0, StatusCode::OK);
    assert!(asked.elapsed() < Duration::from_secs(2));

    let mut timed_out = 0;
    for (trickle, reading) in admitted {
        let (reply, closed) = reading.await.unwrap();
        trickle.abort();
        if reply.is_empty() {
            // Refused after the handshake (no room): closed without a word.
            assert!(closed);
            refused += 1;
        } else {
            assert!(reply.starts_with("HTTP/1.1 408"), "{reply}");
            assert!(reply.contains("request_timeout"), "{reply}");
            assert!(
                reply.to_ascii_lowercase().contains("connection: close"),
                "{reply}"
            );
            assert!(closed, "a timed-out connection stays open");
            timed_out += 1;
        }
    }
    // Eight places for the address; a connection that had not sent its head yet when the next
    // one came may have been closed for it, which is also right.
    assert!(
        (1..=8).contains(&timed_out),
        "{timed_out} connections were served"
    );
    assert_eq!(timed_out + refused, 20);
    assert!(
        began.elapsed() < Duration::from_secs(10),
        "slow bodies held their connections for {:?}",
        began.elapsed()
    );
    assert_eq!(server.get("/health", None).await.0, StatusCode::OK);
}

/// Sends `GET /health` on a kept-alive HTTP/1.1 connection and reads the whole reply.
async fn health_on(
    tls: &mut tokio_rustls::client::TlsStream<tokio::net::TcpStream>,
) -> std::io::Result<String> {
    tls.write_all(b"GET /health HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .await?;
    let mut reply = Vec::new();
    let mut buf = [0u8; 4096];
    while !String::from_utf8_lossy(&reply).contains("\"ok\"}") {
        let n = tokio::time::timeout(Duration::from_secs(5), tls.read(&mut buf))
            .await
            .map_err(std::io::Error::other)??;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        reply.extend_from_slice(&buf[..n]);
    }
    Ok(String::from_utf8_lossy(&reply).into_owned())
}

#[tokio::test]
async fn the_longest_idle_connection_makes_room_for_a_new_one() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(
        dir.path(),
        start_with(&["--max-connections-per-address", "3"]),
    )
    .await;
    let source = Ipv4Addr::new(127, 0, 0, 3);
    let mut open = Vec::new();
    for _ in 0..3 {
        let mut tls = tls_from(&server, source).await.unwrap();
        assert!(
            health_on(&mut tls)
                .await
                .unwrap()
                .starts_with("HTTP/1.1 200")
        );
        open.push(tls);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // A fourth from the same address is served; the first, idle the longest, is closed.
    let mut fourth = tls_from(&server, source).await.unwrap();
    assert!(
        health_on(&mut fourth)
            .await
            .unwrap()
            .starts_with("HTTP/1.1 200")
    );
    let (_, closed) = read_until_closed(&mut open[0], Duration::from_secs(5)).await;
    assert!(closed, "the longest idle connection was not closed");
    for tls in &mut open[1..] {
        assert!(health_on(tls).await.unwrap().starts_with("HTTP/1.1 200"));
    }
    // Other addresses have their own allowance.
    assert_eq!(server.get("/health", None).await.0, StatusCode::OK);
}

#[tokio::test]
async fn early_answers_reach_http2_and_http1_clients() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path(), start_with(&["--max-body-bytes", "1048576"])).await;
    let token = server.api_token(&["ingest"]).await;
    let cases: [(&str, Option<&str>, usize, StatusCode, &str); 4] = [
        (
            "/ingest",
            Some("revoked-or-wrong"),
            512 * 1024,
            StatusCode::UNAUTHORIZED,
            "unauthorized",
        ),
        (
            "/ingest",
            Some(&token),
            2 * 1024 * 1024,
            StatusCode::PAYLOAD_TOO_LARGE,
            "max_body_bytes",
        ),
        (
            "/api/v1/auth/login",
            None,
            100 * 1024,
            StatusCode::PAYLOAD_TOO_LARGE,
            "65536",
        ),
        (
            "/api/v1/logs",
            Some("revoked-or-wrong"),
            900 * 1024,
            StatusCode::UNAUTHORIZED,
            "unauthorized",
        ),
    ];
    for (path, bearer, size, status, fragment) in cases {
        let body = vec![b'a'; size];
        let mut request = server
            .client
            .post(server.url(path))
            .header("content-type", "application/json")
            .body(body.clone());
        if let Some(bearer) = bearer {
            request = request.bearer_auth(bearer);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.version(), Version::HTTP_2);
        assert_eq!(response.status(), status, "{path}");
        let text = response.text().await.unwrap();
        assert!(text.contains(fragment), "{path}: {text}");

        // curl reports a stream reset after an early answer as an error of its own (92);
        // the body is read first, so it shows the answer, on both protocols.
        let file = dir.path().join("body");
        std::fs::write(&file, &body).unwrap();
        for protocol in ["--http2", "--http1.1"] {
            let mut curl = std::process::Command::new("curl");
            curl.args(["-s", protocol, "--cacert"])
                .arg(dir.path().join("data/tls/cert.pem"))
                .args([
                    "-o",
                    "/dev/null",
                    "-w",
                    "%{http_code} %{http_version}",
                    "-X",
                    "POST",
                ])
                .args(["-H", "content-type: application/json", "--data-binary"])
                .arg(format!("@{}", file.display()))
                .arg(format!("https://localhost:{}{path}", server.addr.port()))
                .args([
                    "--resolve",
                    &format!("localhost:{}:127.0.0.1", server.addr.port()),
                ]);
            if let Some(bearer) = bearer {
                curl.args(["-H", &format!("authorization: Bearer {bearer}")]);
            }
            let out = curl
                .output()
                .expect("curl is needed by this test (.ci/run installs it)");
            let shown = String::from_utf8_lossy(&out.stdout).into_owned();
            assert!(
                out.status.success() && shown.starts_with(status.as_str()),
                "curl {protocol} {path}: {shown} ({:?})",
                out.status
            );
        }
    }
}

#[tokio::test]
async fn throttled_and_oversized_logins_are_answered_before_their_body_is_read() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path(), Start::default()).await;
    let client_from = |last: u8| {
        let pem = std::fs::read(dir.path().join("data/tls/cert.pem")).unwrap();
        reqwest::Client::builder()
            .tls_certs_only([reqwest::Certificate::from_pem(&pem).unwrap()])
            .local_address(std::net::IpAddr::from([127, 0, 0, last]))
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap()
    };
    let client = client_from(4);
    let login = server.url("/api/v1/auth/login");
    for _ in 0..10 {
        let response = client
            .post(&login)
            .json(&serde_json::json!({"username": "admin", "password": "not the password"}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    }
    // The allowance is spent: the next body is not even parsed.
    let response = client
        .post(&login)
        .header("content-type", "application/json")
        .body("{{{ not json")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(response.headers().contains_key("retry-after"));
    // The dashboard's form shares the allowance.
    let response = client
        .post(server.url("/login"))
        .form(&[("username", "admin"), ("password", "x"), ("csrf", "x")])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(
        response
            .text()
            .await
            .unwrap()
            .contains("Too many login attempts")
    );

    // Sixty anonymous logins of 4 MiB at once: refused by their length, memory stays flat.
    let before = rss_kib(server.pid());
    let flood = client_from(5);
    let body = bytes::Bytes::from(vec![b'{'; 4 * 1024 * 1024]);
    let sends = (0..60).map(|_| {
        flood
            .post(&login)
            .header("content-type", "application/json")
            .body(body.clone())
            .send()
    });
    for response in futures_util::future::join_all(sends).await {
        assert_eq!(response.unwrap().status(), StatusCode::PAYLOAD_TOO_LARGE);
    }
    let grown = rss_kib(server.pid()).saturating_sub(before);
    assert!(grown < 64 * 1024, "RSS grew by {grown} KiB");
}

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap()
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

#[tokio::test]
async fn replies_to_unreadable_requests_carry_the_security_headers() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path(), Start::default()).await;
    let long_header = format!(
        "GET /health HTTP/1.1\r\nHost: localhost\r\nX-Big: {}\r\n\r\n",
        "a".repeat(66 * 1024)
    );
    let long_uri = format!(
        "GET /health?{} HTTP/1.1\r\nHost: localhost\r\n\r\n",
        "a".repeat(66 * 1024)
    );
    let cases = [
        (
            "GET /health HTTP/1.1\r\nHost: localhost\r\nBad Header\r\n\r\n".to_string(),
            "400",
        ),
        ("BR@KEN / HTTP/1.1\r\n\r\n".to_string(), "400"),
        (long_header, "431"),
        // Longer than any head may be, so 431 (and no longer the 414 of a long URI).
        (long_uri, "431"),
    ];
    for (request, status) in cases {
        let mut tls = tls_from(&server, Ipv4Addr::LOCALHOST).await.unwrap();
        // The server may answer and close before a long head is all written.
        let _ = tls.write_all(request.as_bytes()).await;
        let (reply, closed) = read_until_closed(&mut tls, Duration::from_secs(10)).await;
        assert!(closed);
        assert!(reply.starts_with(&format!("HTTP/1.1 {status}")), "{reply}");
        let head = reply.to_ascii_lowercase();
        for name in [
            "content-security-policy:",
            "strict-transport-security:",
            "x-frame-options: deny",
            "x-content-type-options: nosniff",
            "cache-control: no-store",
        ] {
            assert!(head.contains(name), "{status} without {name}: {reply}");
        }
    }
}

#[tokio::test]
async fn state_changes_sent_by_other_sites_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path(), Start::default()).await;
    let token = server.api_token(&["ingest", "read"]).await;
    let own = format!("https://{}", server.addr);
    let send = |headers: Vec<(&'static str, String)>| {
        let mut request = server
            .client
            .post(server.url("/ingest"))
            .bearer_auth(&token)
            .json(&crate::common::event(&format!("origin-{}", headers.len())));
        for (name, value) in headers {
            request = request.header(name, value);
        }
        request.send()
    };
    for headers in [
        vec![("origin", "https://evil.example".to_string())],
        vec![("origin", "null".to_string())],
        vec![("sec-fetch-site", "cross-site".to_string())],
        vec![
            ("sec-fetch-site", "same-site".to_string()),
            ("origin", own.clone()),
        ],
    ] {
        let shown = format!("{headers:?}");
        let response = send(headers).await.unwrap();
        assert_eq!(response.status(), StatusCode::FORBIDDEN, "{shown}");
        let body: serde_json::Value = response.json().await.unwrap();
        assert_eq!(body["error"]["code"], "cross_origin", "{shown}");
    }
    // The server's own pages, and clients that send neither header, pass.
    for headers in [
        vec![("origin", own.clone())],
        vec![
            ("sec-fetch-site", "same-origin".to_string()),
            ("origin", "null".to_string()),
        ],
        vec![],
    ] {
        let shown = format!("{headers:?}");
        let response = send(headers).await.unwrap();
        assert_eq!(response.status(), StatusCode::ACCEPTED, "{shown}");
    }
    // A form posted from another site gets a page saying why; reads are not affected.
    let response = server
        .client
        .post(server.url("/login"))
        .header("origin", "https://evil.example")
        .form(&[("username", "admin"), ("password", "x"), ("csrf", "x")])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert!(
        response
            .text()
            .await
            .unwrap()
            .contains("Origin is not this server")
    );
    let response = server
        .client
        .get(server.url("/health"))
        .header("origin", "https://evil.example")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let (_, events) = server.get("/api/v1/events", Some(&token)).await;
    assert_eq!(events["events"].as_array().unwrap().len(), 3, "{events}");
}
