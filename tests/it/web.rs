//! The dashboard pages over HTTPS: login with CSRF, session cookie attributes, escaping of
//! hostile event fields, admin-only pages, token creation from a form, logout.

use reqwest::header::{COOKIE, LOCATION, SET_COOKIE};
use reqwest::{Response, StatusCode};
use serde_json::json;

use crate::common::{ADMIN_PASSWORD, Start, TestServer};

/// Cookies set by a response, as `name=value` pairs.
pub fn set_cookies(response: &Response) -> Vec<(String, String, String)> {
    response
        .headers()
        .get_all(SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .filter_map(|v| {
            let (pair, attributes) = v.split_once(';').unwrap_or((v, ""));
            let (name, value) = pair.split_once('=')?;
            Some((name.to_string(), value.to_string(), attributes.to_string()))
        })
        .collect()
}

/// A GET with the session cookie.
pub async fn get_as(server: &TestServer, path: &str, session: &str) -> Response {
    server
        .client
        .get(server.url(path))
        .header(COOKIE, session)
        .send()
        .await
        .unwrap()
}

/// A form POST with the session cookie.
pub async fn post_form_as(
    server: &TestServer,
    path: &str,
    session: &str,
    form: &[(&str, &str)],
) -> Response {
    server
        .client
        .post(server.url(path))
        .header(COOKIE, session)
        .form(form)
        .send()
        .await
        .unwrap()
}

/// The value of the hidden `csrf` field in a page.
pub fn csrf_field(html: &str) -> String {
    let at =
        html.find("name=\"csrf\" value=\"").expect("a csrf field") + "name=\"csrf\" value=\"".len();
    html[at..].split('"').next().unwrap().to_string()
}

/// Fetches the login form and submits it with its nonce cookie and CSRF token.
pub async fn submit_login(server: &TestServer, username: &str, password: &str) -> Response {
    let page = server
        .client
        .get(server.url("/login"))
        .send()
        .await
        .unwrap();
    let nonce = set_cookies(&page)
        .into_iter()
        .find(|(n, ..)| n == "__Host-securify_login")
        .unwrap();
    let csrf = csrf_field(&page.text().await.unwrap());
    server
        .client
        .post(server.url("/login"))
        .header(COOKIE, format!("{}={}", nonce.0, nonce.1))
        .form(&[
            ("username", username),
            ("password", password),
            ("csrf", csrf.as_str()),
        ])
        .send()
        .await
        .unwrap()
}

/// Logs in through the form; returns the session cookie pair for later requests.
pub async fn login(server: &TestServer, username: &str, password: &str) -> String {
    let response = submit_login(server, username, password).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let (name, value, attributes) = set_cookies(&response)
        .into_iter()
        .find(|(n, ..)| n == "__Host-securify_session")
        .unwrap();
    for attribute in ["Secure", "HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(attributes.contains(attribute), "{attributes}");
    }
    format!("{name}={value}")
}

#[tokio::test]
async fn login_pages_escaping_and_logout() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path(), Start::default()).await;

    // Logged out: pages redirect to the login form.
    let response = server
        .client
        .get(server.url("/events"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(response.headers()[LOCATION], "/login");

    // A login POST without its CSRF token is refused, even with the right password.
    let response = server
        .client
        .post(server.url("/login"))
        .form(&[("username", "admin"), ("password", ADMIN_PASSWORD)])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert!(
        set_cookies(&response)
            .iter()
            .all(|(n, ..)| n != "__Host-securify_session")
    );

    // A wrong password re-renders the form with an error.
    let response = submit_login(&server, "admin", "not the password").await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert!(
        response
            .text()
            .await
            .unwrap()
            .contains("Invalid user name or password.")
    );

    // A hostile user name is shown as text.
    let token = server.api_token(&["ingest"]).await;
    let mut hostile = crate::common::event("xss");
    hostile["username"] = json!("<script>alert(1)</script>");
    assert_eq!(
        server.post_json("/ingest", Some(&token), &hostile).await.0,
        StatusCode::ACCEPTED
    );

    let session = login(&server, "admin", ADMIN_PASSWORD).await;
    // The failed and the successful login are events of the appliance's own (its login page
    // is a monitored service).
    let reader = server.api_token(&["read"]).await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let (_, page) = server
            .get("/api/v1/events?username=admin", Some(&reader))
            .await;
        let own: Vec<&serde_json::Value> = page["events"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["service"] == "securify-dashboard" && e["source_ip"] == "127.0.0.1")
            .collect();
        if own.len() == 2 {
            assert_eq!(own[0]["success"], true, "{page}");
            assert_eq!(own[1]["success"], false, "{page}");
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{page}");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let response = get_as(&server, "/events", &session).await;
    assert_eq!(response.status(), StatusCode::OK);
    let csp = response.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(csp.contains("default-src 'self'"));
    let html = response.text().await.unwrap();
    let escaped = [
        "&lt;script&gt;alert(1)&lt;/script&gt;",
        "&#60;script&#62;alert(1)&#60;/script&#62;",
    ];
    assert!(escaped.iter().any(|e| html.contains(e)), "{html}");
    assert!(!html.contains("<script>alert(1)</script>"));
    assert!(
        html.contains("Stored events: 3"),
        "the hostile event and two logins"
    );

    // The same cookie also reads the JSON API, but cannot change anything through it.
    let response = get_as(&server, "/api/v1/auth/me", &session).await;
    assert_eq!(response.status(), StatusCode::OK);
    let response = server
        .client
        .post(server.url("/api/v1/tokens"))
        .header(COOKIE, &session)
        .json(&json!({"name": "csrf", "scopes": ["admin"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);

    // Logout needs the CSRF token, then the cookie is dead.
    let response = post_form_as(&server, "/logout", &session, &[("csrf", "forged")]).await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    let page = get_as(&server, "/events", &session).await;
    let csrf = csrf_field(&page.text().await.unwrap());
    let response = post_form_as(&server, "/logout", &session, &[("csrf", csrf.as_str())]).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let response = get_as(&server, "/events", &session).await;
    assert_eq!(response.headers()[LOCATION], "/login");
}

#[tokio::test]
async fn admins_manage_tokens_from_the_page_and_viewers_cannot() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path(), Start::default()).await;
    let admin = server.admin_token().await;
    let (status, _) = server
        .post_json(
            "/api/v1/users",
            Some(&admin),
            &json!({"username": "vic", "password": "viewer password 2", "role": "viewer"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);

    let session = login(&server, "admin", ADMIN_PASSWORD).await;
    let page = get_as(&server, "/tokens", &session).await;
    assert_eq!(page.status(), StatusCode::OK);
    let csrf = csrf_field(&page.text().await.unwrap());
    let response = post_form_as(
        &server,
        "/tokens",
        &session,
        &[
            ("name", "from the page"),
            ("scope_ingest", "on"),
            ("csrf", csrf.as_str()),
        ],
    )
    .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let html = response.text().await.unwrap();
    let at = html.find("sfy_").expect("the new token is shown once");
    let token: String = html[at..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '-')
        .collect();
    assert_eq!(
        server
            .post_json("/ingest", Some(&token), &crate::common::event("page"))
            .await
            .0,
        StatusCode::ACCEPTED
    );

    let page = get_as(&server, "/tokens", &session).await;
    let html = page.text().await.unwrap();
    assert!(html.contains("from the page"));
    assert!(!html.contains(&token), "the secret must not be shown again");

    let viewer = login(&server, "vic", "viewer password 2").await;
    let response = get_as(&server, "/tokens", &viewer).await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    let response = get_as(&server, "/events", &viewer).await;
    assert_eq!(response.status(), StatusCode::OK);
    let response = get_as(&server, "/no-such-page", &viewer).await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    assert!(
        response
            .text()
            .await
            .unwrap()
            .contains("There is no page at this address.")
    );
}
