//! Full-text search over HTTPS: the index follows what is stored, answers the query language
//! with pages that neither repeat nor skip, refuses bad queries with the position of the error,
//! and after a SIGKILL or the loss of its directory holds every stored event exactly once.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::Value;

use crate::common::{Start, TestServer, cli};

const LOGHUB: &str = include_str!("../data/loghub-openssh/OpenSSH_2k.log");

/// Waits until the index has every stored event in it, and returns `/ready`'s index part.
pub async fn caught_up(server: &TestServer) -> Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (_, ready) = server.get("/ready", None).await;
        let index = ready["index"].clone();
        if index["lag_commits"] == 0
            && index["rebuilding"] == false
            && index["documents"] == ready["events"]
        {
            return index;
        }
        assert!(Instant::now() < deadline, "index never caught up: {ready}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn search(server: &TestServer, token: &str, query: &str) -> (StatusCode, Value) {
    let response = server
        .client
        .get(server.url("/api/v1/search"))
        .bearer_auth(token)
        .query(&[("q", query), ("limit", "1000")])
        .send()
        .await
        .unwrap();
    let status = response.status();
    (status, response.json().await.unwrap())
}

fn count(page: &Value) -> usize {
    page["events"].as_array().unwrap().len()
}

async fn post_loghub(server: &TestServer, token: &str) {
    let (status, body) = server
        .post_raw(
            "/api/v1/logs?year=2017",
            Some(token),
            "text/plain",
            LOGHUB.to_string(),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
}

#[tokio::test]
async fn stored_lines_are_searchable_by_words_phrases_fields_and_time() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path(), Start::default()).await;
    let token = server.api_token(&["ingest", "read"]).await;
    post_loghub(&server, &token).await;
    let index = caught_up(&server).await;
    assert_eq!(index["documents"], 2000);

    // The truth, counted on the file itself.
    let lines = |pred: &dyn Fn(&str) -> bool| LOGHUB.lines().filter(|l| pred(l)).count();
    let (status, page) = search(&server, &token, r#""invalid user""#).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert_eq!(
        count(&page),
        lines(&|l| l.to_lowercase().contains("invalid user"))
    );
    let (_, page) = search(
        &server,
        &token,
        r#""invalid user" AND ip:"187.141.143.180""#,
    )
    .await;
    // A line that names no client (`input_userauth_request: invalid user X [preauth]`) has
    // the address of its connection: the lines of the same sshd process.
    let process = |l: &str| {
        l.split(": ")
            .next()
            .and_then(|head| head.rsplit(' ').next())
            .map(str::to_string)
    };
    let processes: std::collections::HashSet<String> = LOGHUB
        .lines()
        .filter(|l| l.contains("187.141.143.180"))
        .filter_map(process)
        .collect();
    let expected = lines(&|l| {
        l.to_lowercase().contains("invalid user")
            && (l.contains("187.141.143.180")
                || l.contains("input_userauth_request")
                    && process(l).is_some_and(|p| processes.contains(&p)))
    });
    assert!(expected > lines(&|l| l.contains("invalid user") && l.contains("187.141.143.180")));
    assert_eq!(count(&page), expected);
    for event in page["events"].as_array().unwrap() {
        assert_eq!(event["source_ip"], "187.141.143.180");
    }
    // Newest first.
    let times: Vec<&str> = page["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["timestamp"].as_str().unwrap())
        .collect();
    assert!(times.windows(2).all(|w| w[0] >= w[1]), "{times:?}");
    let (_, page) = search(&server, &token, "type:LOGIN_FAILED AND user:root").await;
    assert!(count(&page) > 0);
    for event in page["events"].as_array().unwrap() {
        assert_eq!(event["event_type"], "LOGIN_FAILED");
        assert_eq!(event["username"], "root");
    }

    // Types, hosts and outcomes ignore case; a query of only NOT terms means all but those.
    let (_, upper) = search(&server, &token, "type:LOGIN_FAILED AND host:LabSZ").await;
    let (_, lower) = search(&server, &token, "type:login_failed AND host:labsz").await;
    assert!(count(&upper) > 0);
    assert_eq!(upper, lower);
    let root = r#"user:root AND ip:"183.62.140.253""#;
    let (_, all) = search(&server, &token, root).await;
    let (_, root_failed) = search(&server, &token, &format!("{root} AND failed")).await;
    let (_, root_other) = search(&server, &token, &format!("{root} AND NOT failed")).await;
    assert!(count(&root_failed) > 0 && count(&root_other) > 0);
    assert!(count(&all) < 1000);
    assert_eq!(count(&root_failed) + count(&root_other), count(&all));
    let (status, not_failed) = search(&server, &token, "-failed").await;
    assert_eq!(status, StatusCode::OK, "{not_failed}");
    assert!(count(&not_failed) > 0);
    for event in not_failed["events"].as_array().unwrap() {
        assert!(
            !event["raw"]
                .as_str()
                .unwrap()
                .to_lowercase()
                .contains("failed")
        );
    }

    // A time range: the file's first day only.
    let response = server
        .client
        .get(server.url("/api/v1/search"))
        .bearer_auth(&token)
        .query(&[
            ("q", "outcome:failure"),
            ("from", "2017-12-10T00:00:00Z"),
            ("to", "2017-12-10T23:59:59Z"),
            ("limit", "1000"),
        ])
        .send()
        .await
        .unwrap();
    let page: Value = response.json().await.unwrap();
    assert!(count(&page) > 0);
    for event in page["events"].as_array().unwrap() {
        assert!(
            event["timestamp"]
                .as_str()
                .unwrap()
                .starts_with("2017-12-10")
        );
        assert_eq!(event["success"], false);
    }

    // Pages of 7 walk every hit once, in order.
    let (_, whole) = search(&server, &token, "failed").await;
    let whole_ids: Vec<Value> = whole["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["event_id"].clone())
        .collect();
    let mut walked = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut query = vec![("q", "failed".to_string()), ("limit", "7".to_string())];
        if let Some(c) = &cursor {
            query.push(("cursor", c.clone()));
        }
        let response = server
            .client
            .get(server.url("/api/v1/search"))
            .bearer_auth(&token)
            .query(&query)
            .send()
            .await
            .unwrap();
        let page: Value = response.json().await.unwrap();
        walked.extend(
            page["events"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| e["event_id"].clone()),
        );
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_string()),
            None => break,
        }
    }
    assert_eq!(walked, whole_ids);
}

#[tokio::test]
async fn bad_queries_are_refused_with_the_position_of_the_error() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path(), Start::default()).await;
    let token = server.api_token(&["ingest", "read"]).await;
    post_loghub(&server, &token).await;
    caught_up(&server).await;
    for (query, position, says) in [
        (r#"failed "invalid user"#, 7, "phrase is not closed"),
        ("(failed OR invalid", 0, "'(' is not closed"),
        ("failed AND bogus:x", 11, "unknown field 'bogus'"),
        ("ip:2001:db8::1", 3, "must be quoted"),
        ("failed AND", 7, "needs something after it"),
        ("failed AND user:*", 11, "would match any value"),
        ("(type:*)", 1, "would match any value"),
    ] {
        let (status, body) = search(&server, &token, query).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{query}: {body}");
        assert_eq!(body["error"]["code"], "invalid_query");
        let message = body["error"]["message"].as_str().unwrap();
        assert!(
            message.contains(&format!("at character {position} ")) && message.contains(says),
            "{query}: {message}"
        );
    }
    let (status, body) = server
        .get("/api/v1/search?q=failed&limit=0", Some(&token))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let (status, body) = server
        .get("/api/v1/search?q=failed&cursor=xyz", Some(&token))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let (status, _) = server.get("/api/v1/search?q=failed", None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    // Queries that would exhaust a thread's stack or the server's time are refused, and the
    // server stays up: nesting, length, words.
    let nested = |depth: usize| format!("{}failed{}", "(".repeat(depth), ")".repeat(depth));
    for (query, says) in [
        (nested(600), "longer than"),
        (nested(17), "nest deeper"),
        (vec!["failed"; 65].join(" "), "more than 64 words"),
    ] {
        let (status, body) = search(&server, &token, &query).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        assert!(
            body["error"]["message"].as_str().unwrap().contains(says),
            "{body}"
        );
    }
    let (status, page) = search(&server, &token, &nested(16)).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert!(count(&page) > 0);
    // Nothing stored was touched by the refusals.
    let (_, ready) = server.get("/ready", None).await;
    assert_eq!(ready["events"], 2000);
    let (_, page) = search(&server, &token, "").await;
    assert_eq!(count(&page), 1000);
}

#[tokio::test]
async fn the_index_holds_every_event_once_after_a_sigkill_and_after_its_loss() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = TestServer::start(dir.path(), Start::default()).await;
    let token = server.api_token(&["ingest", "read"]).await;
    let lines: Vec<&str> = LOGHUB.lines().collect();
    // Several commits, the last ones killed before the index may have committed them.
    for chunk in lines.chunks(250) {
        let body: String = chunk.iter().flat_map(|l| [*l, "\n"]).collect();
        let (status, _) = server
            .post_raw("/api/v1/logs?year=2017", Some(&token), "text/plain", body)
            .await;
        assert_eq!(status, StatusCode::ACCEPTED);
    }
    server.kill();

    let mut server = TestServer::start(dir.path(), Start::default()).await;
    let index = caught_up(&server).await;
    assert_eq!(index["documents"], 2000);
    let (_, page) = search(&server, &token, "").await;
    assert_eq!(count(&page), 1000);
    let (_, ready) = server.get("/ready", None).await;
    assert_eq!(ready["events"], 2000);
    assert_eq!(server.terminate().code(), Some(0));

    // The index directory lost: rebuilt from the store on start.
    std::fs::remove_dir_all(server.data_dir().join("index")).unwrap();
    let server = TestServer::start(dir.path(), Start::default()).await;
    let index = caught_up(&server).await;
    assert_eq!(index["documents"], 2000);
    let (_, page) = search(&server, &token, r#""POSSIBLE BREAK-IN ATTEMPT""#).await;
    let expected = LOGHUB
        .lines()
        .filter(|l| l.contains("POSSIBLE BREAK-IN ATTEMPT"))
        .count();
    assert_eq!(count(&page), expected);
}

#[tokio::test]
async fn reindex_rebuilds_a_stopped_data_directory_and_refuses_a_running_one() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = TestServer::start(dir.path(), Start::default()).await;
    let token = server.api_token(&["ingest", "read"]).await;
    post_loghub(&server, &token).await;
    caught_up(&server).await;
    let (status, _, stderr) = cli(dir.path(), &["reindex"], None);
    assert_eq!(status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("stop it first"), "{stderr}");
    let (_, before) = search(&server, &token, r#""invalid user""#).await;
    assert_eq!(server.terminate().code(), Some(0));

    let (status, _, stderr) = cli(dir.path(), &["reindex"], None);
    assert_eq!(status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("indexed 2000 events"), "{stderr}");
    let server = TestServer::start(dir.path(), Start::default()).await;
    let index = caught_up(&server).await;
    assert_eq!(index["documents"], 2000);
    let (_, after) = search(&server, &token, r#""invalid user""#).await;
    assert_eq!(after, before);

    let empty = tempfile::tempdir().unwrap();
    let (status, _, stderr) = cli(empty.path(), &["reindex"], None);
    assert_eq!(status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("no database"), "{stderr}");
}

/// Counts events matching the query string of `GET /api/v1/events`, following every page.
async fn count_events(server: &TestServer, token: &str, filter: &str) -> u64 {
    count_events_where(server, token, filter, |_| true).await
}

async fn count_events_where(
    server: &TestServer,
    token: &str,
    filter: &str,
    keep: impl Fn(&Value) -> bool,
) -> u64 {
    let mut total = 0;
    let mut cursor = String::new();
    loop {
        let path = format!("/api/v1/events?limit=1000&{filter}{cursor}");
        let (status, page) = server.get(&path, Some(token)).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        total += page["events"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| keep(e))
            .count() as u64;
        match page["next_cursor"].as_str() {
            Some(next) => cursor = format!("&cursor={next}"),
            None => return total,
        }
    }
}

#[tokio::test]
async fn the_timeline_counts_what_is_stored_and_nothing_twice() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path(), Start::default()).await;
    let token = server.api_token(&["ingest", "read"]).await;
    post_loghub(&server, &token).await;
    // Sent again: all duplicates, counted nowhere.
    post_loghub(&server, &token).await;
    let day = "from=2017-12-10T00:00:00Z&to=2017-12-10T23:59:59Z";
    let (status, timeline) = server
        .get(
            &format!("/api/v1/stats/timeline?{day}&step_minutes=60"),
            Some(&token),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{timeline}");
    let buckets = timeline["buckets"].as_array().unwrap();
    assert_eq!(buckets.len(), 24);
    assert_eq!(buckets[0]["start"], "2017-12-10T00:00:00Z");
    let sum = |series: &str| {
        buckets
            .iter()
            .map(|b| b[series].as_u64().unwrap())
            .sum::<u64>()
    };
    assert_eq!(sum("events"), count_events(&server, &token, day).await);
    // Failures are attempts: a line that tells again an attempt its connection counted
    // (`"count": 0`) is listed as the failure it reports, and counted once.
    let failed_lines = count_events(&server, &token, &format!("{day}&success=false")).await;
    let attempts = count_events_where(&server, &token, &format!("{day}&success=false"), |e| {
        e["details"]["count"].as_u64() != Some(0)
    })
    .await;
    assert!(attempts < failed_lines);
    assert_eq!(sum("failures"), attempts);
    assert_eq!(
        sum("successes"),
        count_events(&server, &token, &format!("{day}&success=true")).await
    );
    assert!(sum("events") > 0 && sum("failures") > 0);

    // Alerts opened, by severity, at the time of their first finding: the whole month.
    let (status, month) = server
        .get(
            "/api/v1/stats/timeline?from=2017-12-01T00:00:00Z&to=2017-12-31T23:59:59Z&step_minutes=1440",
            Some(&token),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{month}");
    let (_, page) = server.get("/api/v1/alerts?limit=500", Some(&token)).await;
    assert!(page["next_cursor"].is_null(), "{page}");
    let alerts = page["alerts"].as_array().unwrap();
    assert!(!alerts.is_empty());
    for severity in ["low", "medium", "high", "critical"] {
        let charted: u64 = month["buckets"]
            .as_array()
            .unwrap()
            .iter()
            .map(|b| b["alerts"][severity].as_u64().unwrap())
            .sum();
        let listed = alerts.iter().filter(|a| a["severity"] == severity).count() as u64;
        assert_eq!(charted, listed, "{severity}");
    }

    // Top lists: the busiest address and account of the day, as the events list counts them.
    let top = |by: &'static str| {
        let (server, token) = (&server, &token);
        async move {
            let path = format!("/api/v1/stats/top?by={by}&{day}&limit=3");
            let (status, body) = server.get(&path, Some(token)).await;
            assert_eq!(status, StatusCode::OK, "{body}");
            body["items"].as_array().unwrap().clone()
        }
    };
    let addresses = top("ip").await;
    assert_eq!(addresses.len(), 3);
    let first = &addresses[0];
    let ip = first["key"].as_str().unwrap();
    let attempt = |e: &Value| e["details"]["count"].as_u64() != Some(0);
    assert_eq!(
        first["failures"].as_u64().unwrap(),
        count_events_where(
            &server,
            &token,
            &format!("{day}&source_ip={ip}&success=false"),
            attempt
        )
        .await
    );
    assert_eq!(
        first["events"].as_u64().unwrap(),
        count_events(&server, &token, &format!("{day}&source_ip={ip}")).await
    );
    assert!(addresses[0]["failures"].as_u64() >= addresses[1]["failures"].as_u64());
    let accounts = top("user").await;
    let user = accounts[0]["key"].as_str().unwrap();
    assert_eq!(
        accounts[0]["failures"].as_u64().unwrap(),
        count_events_where(
            &server,
            &token,
            &format!("{day}&username={user}&success=false"),
            attempt
        )
        .await
    );
    // Countries sum their addresses: every event with an address is in one.
    let countries = top("country").await;
    assert!(!countries.is_empty());
    let hosts = top("host").await;
    assert_eq!(hosts[0]["key"], "LabSZ", "{hosts:?}");

    for (query, says) in [
        ("step_minutes=0", "step_minutes"),
        (
            "from=2017-01-01T00:00:00Z&to=2018-01-01T00:00:00Z",
            "buckets",
        ),
        ("from=2018-01-01T00:00:00Z&to=2017-01-01T00:00:00Z", "after"),
        ("bogus=1", "unknown parameter"),
    ] {
        let (status, body) = server
            .get(&format!("/api/v1/stats/timeline?{query}"), Some(&token))
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{query}: {body}");
        assert!(
            body["error"]["message"].as_str().unwrap().contains(says),
            "{body}"
        );
    }
    for (query, says) in [
        ("", "`by` is required"),
        ("by=planet", "`by`"),
        ("by=ip&limit=0", "limit"),
        (
            "by=ip&from=2018-01-01T00:00:00Z&to=2017-01-01T00:00:00Z",
            "after",
        ),
    ] {
        let (status, body) = server
            .get(&format!("/api/v1/stats/top?{query}"), Some(&token))
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{query}: {body}");
        assert!(
            body["error"]["message"].as_str().unwrap().contains(says),
            "{body}"
        );
    }
}
