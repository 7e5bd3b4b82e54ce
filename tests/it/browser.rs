//! The dashboard in a real browser: headless Chromium driven over `WebDriver` logs in, watches an
//! alert produced by freshly ingested attack lines appear on the overview without a reload,
//! works it, blocks the address, and searches. A screenshot of every page goes to
//! `target/screenshots/`.
//!
//! Needs `chromium` and `chromedriver` (Debian: `apt-get install -y chromium chromium-driver`;
//! `.ci/run` installs them). `CHROMEDRIVER` names another driver binary.

use std::fmt::Write;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use reqwest::StatusCode;
use serde_json::json;

use crate::common::{ADMIN_PASSWORD, Start, TestServer};

/// A chromedriver of our own on a free local port, stopped on drop.
struct Driver {
    child: Child,
    url: String,
}

impl Driver {
    fn start() -> Self {
        let binary = std::env::var("CHROMEDRIVER").unwrap_or_else(|_| "chromedriver".into());
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new(&binary)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot run {binary} ({e}): the browser test needs Chromium and its driver \
                     (apt-get install -y chromium chromium-driver), as .ci/run installs them"
                )
            });
        Self {
            child,
            url: format!("http://127.0.0.1:{port}"),
        }
    }

    async fn session(&self, profile: &std::path::Path) -> Client {
        let mut capabilities = serde_json::Map::new();
        capabilities.insert("acceptInsecureCerts".into(), json!(true));
        capabilities.insert(
            "goog:chromeOptions".into(),
            json!({"args": [
                "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--disable-dev-shm-usage", "--window-size=1280,1000",
                format!("--user-data-dir={}", profile.display()),
            ]}),
        );
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let connector = hyper_util::client::legacy::connect::HttpConnector::new();
            match ClientBuilder::new(connector)
                .capabilities(capabilities.clone())
                .connect(&self.url)
                .await
            {
                Ok(client) => return client,
                Err(e) if Instant::now() < deadline => {
                    let _ = e;
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                Err(e) => panic!("no WebDriver session: {e}"),
            }
        }
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn screenshots() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Saves a screenshot of the whole page as `name.png`.
async fn shoot(browser: &Client, name: &str) {
    let height = browser
        .execute("return document.documentElement.scrollHeight", vec![])
        .await
        .unwrap()
        .as_u64()
        .unwrap_or(1000)
        .clamp(600, 5000);
    browser
        .set_window_size(1280, height as u32 + 100)
        .await
        .unwrap();
    let png = browser.screenshot().await.unwrap();
    std::fs::write(screenshots().join(format!("{name}.png")), png).unwrap();
    browser.set_window_size(1280, 1000).await.unwrap();
}

/// Lines of an SSH brute force from `ip`, stamped within the last minute.
/// `count` failed SSH logins from `ip`, one a second, the last one `ago` before now.
fn attack_lines(ip: &str, count: i64, ago: time::Duration) -> String {
    let now = time::OffsetDateTime::now_utc() - ago;
    let stamp = time::macros::format_description!(
        "[month repr:short] [day padding:space] [hour]:[minute]:[second]"
    );
    let mut lines = String::new();
    for i in 0..count {
        let t = (now - time::Duration::seconds(count - i))
            .format(&stamp)
            .unwrap();
        let user = if i % 2 == 0 {
            "invalid user oracle"
        } else {
            "root"
        };
        let (pid, port) = (500 + i, 40_000 + i);
        writeln!(
            lines,
            "{t} web1 sshd[{pid}]: Failed password for {user} from {ip} port {port} ssh2"
        )
        .unwrap();
        if i % 2 == 0 {
            // The same attempt told again as the connection ends: listed, counted once.
            writeln!(
                lines,
                "{t} web1 sshd[{pid}]: Connection closed by invalid user oracle {ip} port {port} [preauth]"
            )
            .unwrap();
        }
    }
    lines
}

async fn text_of(browser: &Client, css: &str) -> String {
    browser
        .find(Locator::Css(css))
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

#[tokio::test]
async fn an_analyst_watches_an_attack_arrive_works_it_and_searches_in_a_browser() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path(), Start::default()).await;
    let token = server.api_token(&["ingest", "read"]).await;
    let driver = Driver::start();
    let browser = driver.session(&dir.path().join("chromium")).await;
    let base = format!("https://{}", server.addr);

    // Log in.
    browser.goto(&format!("{base}/login")).await.unwrap();
    shoot(&browser, "login").await;
    browser
        .find(Locator::Id("username"))
        .await
        .unwrap()
        .send_keys("admin")
        .await
        .unwrap();
    browser
        .find(Locator::Id("password"))
        .await
        .unwrap()
        .send_keys(ADMIN_PASSWORD)
        .await
        .unwrap();
    browser
        .find(Locator::Css("button[type=submit]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    browser
        .wait()
        .for_element(Locator::Css("[data-kpi=events]"))
        .await
        .unwrap();
    assert_eq!(browser.current_url().await.unwrap().path(), "/");

    // The overview is live; a marker set now shows later that the page was never reloaded.
    browser
        .wait()
        .at_most(Duration::from_secs(15))
        .for_element(Locator::Css("#live-status.on"))
        .await
        .unwrap();
    browser
        .execute("window.notReloaded = true", vec![])
        .await
        .unwrap();
    // A replay of logs three days old is stored while the page is open: the figures of the
    // last 24 hours must not count it.
    let (status, body) = server
        .post_raw(
            "/api/v1/logs",
            Some(&token),
            "text/plain",
            attack_lines("198.51.100.77", 40, time::Duration::days(3)),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let ip = "45.83.64.10";
    let (status, body) = server
        .post_raw(
            "/api/v1/logs",
            Some(&token),
            "text/plain",
            attack_lines(ip, 14, time::Duration::ZERO),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let row = browser
        .wait()
        .at_most(Duration::from_secs(20))
        .for_element(Locator::XPath(&format!(
            "//div[@id='live-alerts']//tr[@data-alert][.//a[text()='{ip}']]"
        )))
        .await
        .unwrap();
    assert!(row.text().await.unwrap().contains(ip));
    let kept = browser
        .execute("return window.notReloaded === true", vec![])
        .await
        .unwrap();
    assert_eq!(kept, json!(true), "the alert arrived without a reload");
    // The counts moved too (14 lines, and this browser's login), without the replayed ones.
    let deadline = Instant::now() + Duration::from_secs(15);
    let events = loop {
        let events = text_of(&browser, "[data-kpi=events]")
            .await
            .parse::<u64>()
            .unwrap();
        if events >= 14 {
            break events;
        }
        assert!(Instant::now() < deadline, "the event count never moved");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert!(
        events < 40,
        "old events counted in the last 24 hours: {events}"
    );
    shoot(&browser, "overview").await;

    // Open the alert, acknowledge it with a note.
    row.find(Locator::Css("td.wrap a"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    browser
        .wait()
        .for_element(Locator::Id("status"))
        .await
        .unwrap();
    assert!(
        text_of(&browser, "h2 + table, .lines").await.contains(ip),
        "evidence lines"
    );
    browser
        .find(Locator::Id("status"))
        .await
        .unwrap()
        .select_by_value("acknowledged")
        .await
        .unwrap();
    browser
        .find(Locator::Id("note"))
        .await
        .unwrap()
        .send_keys("seen from the browser")
        .await
        .unwrap();
    browser
        .find(Locator::XPath("//button[text()='Save status']"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    browser
        .wait()
        .for_element(Locator::XPath(
            "//ol[@class='notes']//p[text()='seen from the browser']",
        ))
        .await
        .unwrap();
    assert!(text_of(&browser, "dl.facts").await.contains("acknowledged"));
    shoot(&browser, "alert").await;

    // Block the address: a new alert records it, and the blocklist serves it.
    browser
        .find(Locator::XPath(&format!("//button[text()='Block {ip}']")))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    browser
        .wait()
        .for_element(Locator::XPath("//p[contains(., 'is blocked by hand')]"))
        .await
        .unwrap();
    let listed = server
        .client
        .get(server.url("/api/v1/blocklist"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(listed.lines().any(|l| l == ip), "{listed}");

    // Search the last 24 hours from the search form.
    browser.goto(&format!("{base}/search")).await.unwrap();
    browser
        .find(Locator::Id("q"))
        .await
        .unwrap()
        .send_keys(&format!("\"invalid user\" AND ip:\"{ip}\""))
        .await
        .unwrap();
    browser
        .find(Locator::Css("select[name=range]"))
        .await
        .unwrap()
        .select_by_value("24h")
        .await
        .unwrap();
    browser
        .find(Locator::XPath("//button[text()='Search']"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    browser
        .wait()
        .for_element(Locator::Css("#hits mark"))
        .await
        .unwrap();
    let hits = browser
        .find_all(Locator::Css("#hits tbody tr[data-event]"))
        .await
        .unwrap();
    assert_eq!(
        hits.len(),
        14,
        "every other attempt names an invalid user, in its Failed line and its connection's end"
    );
    shoot(&browser, "search").await;

    // Every other page, for the record.
    for (path, name) in [
        ("/alerts".to_string(), "alerts"),
        (format!("/ip/{ip}"), "ip"),
        ("/user/root".to_string(), "user"),
        ("/blocklist".to_string(), "blocklist"),
        ("/system".to_string(), "system"),
        ("/events".to_string(), "events"),
        ("/tokens".to_string(), "tokens"),
        ("/users".to_string(), "users"),
    ] {
        browser.goto(&format!("{base}{path}")).await.unwrap();
        browser
            .wait()
            .for_element(Locator::Css("main h1"))
            .await
            .unwrap();
        if name == "events" {
            let page = browser.source().await.unwrap();
            assert!(
                page.contains("(same attempt)"),
                "a told-again failure is marked"
            );
        }
        shoot(&browser, name).await;
    }
    browser.close().await.unwrap();
}
