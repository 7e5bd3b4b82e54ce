//! Logins, refresh-token rotation and reuse detection, logout, roles, and API tokens that are
//! revoked one by one and stop working at once.

use reqwest::StatusCode;
use serde_json::json;

use crate::common::{ADMIN_PASSWORD, Start, TestServer, event};

#[tokio::test]
async fn login_refresh_rotation_reuse_and_logout() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path(), Start::default()).await;

    let (status, body) = server.login("admin", "wrong password!").await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("invalid_credentials"))
    );
    let (status, unknown) = server.login("nobody", "wrong password!").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        unknown, body,
        "an unknown user must look exactly like a wrong password"
    );
    let (status, body) = server
        .post_json("/api/v1/auth/login", None, &json!({"username": "admin"}))
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_request"))
    );

    let (status, login) = server.login("admin", ADMIN_PASSWORD).await;
    assert_eq!(status, StatusCode::OK, "{login}");
    assert_eq!(login["token_type"], "Bearer");
    assert_eq!(login["expires_in"], 900);
    assert_eq!(login["user"], json!({"username": "admin", "role": "admin"}));
    let access = login["access_token"].as_str().unwrap();
    let (status, me) = server.get("/api/v1/auth/me", Some(access)).await;
    assert_eq!(
        (status, me),
        (
            StatusCode::OK,
            json!({"kind": "user", "username": "admin", "role": "admin"})
        )
    );

    // Rotation: the old refresh token is spent, the new one works.
    let first_refresh = login["refresh_token"].as_str().unwrap();
    let (status, rotated) = server
        .post_json(
            "/api/v1/auth/refresh",
            None,
            &json!({"refresh_token": first_refresh}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{rotated}");
    let second_refresh = rotated["refresh_token"].as_str().unwrap();
    assert_ne!(first_refresh, second_refresh);
    let new_access = rotated["access_token"].as_str().unwrap();
    assert_eq!(
        server.get("/api/v1/auth/me", Some(new_access)).await.0,
        StatusCode::OK
    );

    // Reuse of the spent token revokes the whole family: the new refresh and access die too.
    let (status, _) = server
        .post_json(
            "/api/v1/auth/refresh",
            None,
            &json!({"refresh_token": first_refresh}),
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _) = server
        .post_json(
            "/api/v1/auth/refresh",
            None,
            &json!({"refresh_token": second_refresh}),
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        server.get("/api/v1/auth/me", Some(new_access)).await.0,
        StatusCode::UNAUTHORIZED
    );

    // Logout ends a fresh session at once.
    let access = server.admin_access().await;
    let (status, _) = server
        .post_raw("/api/v1/auth/logout", Some(&access), "application/json", "")
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(
        server.get("/api/v1/auth/me", Some(&access)).await.0,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn tokens_are_scoped_listed_and_revoked_one_by_one() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path(), Start::default()).await;
    let admin = server.admin_access().await;

    let (status, body) = server
        .post_json(
            "/api/v1/tokens",
            Some(&admin),
            &json!({"name": "x", "scopes": []}),
        )
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_request"))
    );
    let (status, body) = server
        .post_json(
            "/api/v1/tokens",
            Some(&admin),
            &json!({"name": "x", "scopes": ["root"]}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    // An expiry beyond ten years would once wrap to a time in the past.
    for days in [0, 3_651, 110_000_000] {
        let (status, body) = server
            .post_json(
                "/api/v1/tokens",
                Some(&admin),
                &json!({"name": "x", "scopes": ["read"], "expires_in_days": days}),
            )
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{days}: {body}");
        assert!(
            body["error"]["message"]
                .as_str()
                .unwrap()
                .contains("1 to 3650"),
            "{body}"
        );
    }
    let (status, body) = server
        .post_json(
            "/api/v1/tokens",
            Some(&admin),
            &json!({"name": "ten-years", "scopes": ["read"], "expires_in_days": 3_650}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let expires = body["info"]["expires_at"].as_str().unwrap();
    assert!(
        expires.starts_with("20") && expires.ends_with('Z'),
        "{body}"
    );

    let (status, one) = server
        .post_json(
            "/api/v1/tokens",
            Some(&admin),
            &json!({"name": "web-01", "scopes": ["ingest"]}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{one}");
    let (_, two) = server
        .post_json(
            "/api/v1/tokens",
            Some(&admin),
            &json!({"name": "web-02", "scopes": ["ingest"]}),
        )
        .await;
    let (token_one, token_two) = (
        one["token"].as_str().unwrap(),
        two["token"].as_str().unwrap(),
    );
    let id_one = one["info"]["id"].as_str().unwrap();

    assert_eq!(
        server
            .post_json("/ingest", Some(token_one), &event("a"))
            .await
            .0,
        StatusCode::ACCEPTED
    );
    assert_eq!(
        server
            .post_json("/ingest", Some(token_two), &event("b"))
            .await
            .0,
        StatusCode::ACCEPTED
    );

    // The listing never shows secrets; tokens cannot list tokens without the admin scope.
    let (status, list) = server.get("/api/v1/tokens", Some(&admin)).await;
    assert_eq!(status, StatusCode::OK);
    let text = list.to_string();
    assert!(text.contains("web-01") && text.contains("web-02"));
    assert!(!text.contains(token_one.splitn(3, '_').nth(2).unwrap()));
    assert_eq!(
        server.get("/api/v1/tokens", Some(token_one)).await.0,
        StatusCode::FORBIDDEN
    );

    let response = server
        .client
        .delete(server.url(&format!("/api/v1/tokens/{id_one}")))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        server
            .post_json("/ingest", Some(token_one), &event("c"))
            .await
            .0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        server
            .post_json("/ingest", Some(token_two), &event("d"))
            .await
            .0,
        StatusCode::ACCEPTED
    );
    let response = server
        .client
        .delete(server.url("/api/v1/tokens/ffffffffffffffff"))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn viewers_read_but_cannot_administer_or_ingest() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path(), Start::default()).await;
    let admin = server.admin_access().await;
    let (status, body) = server
        .post_json(
            "/api/v1/users",
            Some(&admin),
            &json!({"username": "vera", "password": "viewer password 1", "role": "viewer"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (status, body) = server
        .post_json(
            "/api/v1/users",
            Some(&admin),
            &json!({"username": "vera", "password": "viewer password 1", "role": "viewer"}),
        )
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::CONFLICT, Some("conflict"))
    );
    let (status, body) = server
        .post_json(
            "/api/v1/users",
            Some(&admin),
            &json!({"username": "weak", "password": "short", "role": "viewer"}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("at least 12"),
        "{body}"
    );
    // Common passwords and ones built on the user name are refused, whatever their length.
    for (username, password, expected) in [
        ("weak", "Password1234", "too easy to guess"),
        ("weak", "qwertyuiop123", "too easy to guess"),
        ("rosalind", "Rosalind-Franklin-88", "user name"),
    ] {
        let (status, body) = server
            .post_json(
                "/api/v1/users",
                Some(&admin),
                &json!({"username": username, "password": password, "role": "viewer"}),
            )
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{password}: {body}");
        let message = body["error"]["message"].as_str().unwrap();
        assert!(message.contains(expected), "{password}: {message}");
    }
    let (_, users) = server.get("/api/v1/users", Some(&admin)).await;
    assert!(
        !users.to_string().contains("rosalind") && !users.to_string().contains("\"weak\""),
        "{users}"
    );

    let (_, login) = server.login("vera", "viewer password 1").await;
    let viewer = login["access_token"].as_str().unwrap();
    assert_eq!(
        server.get("/api/v1/events", Some(viewer)).await.0,
        StatusCode::OK
    );
    assert_eq!(
        server.get("/api/v1/tokens", Some(viewer)).await.0,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        server
            .post_json("/ingest", Some(viewer), &event("v"))
            .await
            .0,
        StatusCode::FORBIDDEN
    );
    let (status, _) = server
        .post_json(
            "/api/v1/tokens",
            Some(viewer),
            &json!({"name": "mine", "scopes": ["admin"]}),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn a_password_change_ends_the_users_sessions() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path(), Start::default()).await;
    let before = server.admin_access().await;
    assert_eq!(
        server.get("/api/v1/auth/me", Some(&before)).await.0,
        StatusCode::OK
    );

    let (status, _, stderr) = crate::common::cli(
        dir.path(),
        &["user", "passwd", "admin", "--password-stdin"],
        Some("a brand new password\n"),
    );
    assert!(status.success(), "{stderr}");
    assert_eq!(
        server.get("/api/v1/auth/me", Some(&before)).await.0,
        StatusCode::UNAUTHORIZED
    );
    let (status, _) = server.login("admin", ADMIN_PASSWORD).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _) = server.login("admin", "a brand new password").await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn repeated_failures_lock_an_account_quietly_and_flooding_is_throttled() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path(), Start::default()).await;
    let admin = server.admin_token().await;
    let (status, _) = server
        .post_json(
            "/api/v1/users",
            Some(&admin),
            &json!({"username": "vera", "password": "viewer password 1", "role": "viewer"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);

    // Five wrong passwords lock the account: the right one now gets the very same reply.
    let (_, wrong) = server.login("vera", "not her password").await;
    for _ in 0..4 {
        assert_eq!(
            server.login("vera", "not her password").await,
            (StatusCode::UNAUTHORIZED, wrong.clone())
        );
    }
    assert_eq!(
        server.login("vera", "viewer password 1").await,
        (StatusCode::UNAUTHORIZED, wrong.clone())
    );
    // Another account is not affected.
    assert_eq!(
        server.login("admin", ADMIN_PASSWORD).await.0,
        StatusCode::OK
    );

    // Past its allowance (10 at once), the address must wait, and is told how long.
    let mut throttled = None;
    for _ in 0..5 {
        let response = server
            .client
            .post(server.url("/api/v1/auth/login"))
            .json(&json!({"username": "admin", "password": ADMIN_PASSWORD}))
            .send()
            .await
            .unwrap();
        if response.status() == StatusCode::TOO_MANY_REQUESTS {
            throttled = Some(response);
            break;
        }
    }
    let response = throttled.expect("a 429 after ten attempts");
    let wait: u64 = response.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=6).contains(&wait), "{wait}");
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "too_many_attempts");
    // The dashboard's form shares the allowance, and says so on the page.
    let page = crate::web::submit_login(&server, "admin", ADMIN_PASSWORD).await;
    assert_eq!(page.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(page.headers().contains_key("retry-after"));
    assert!(
        page.text()
            .await
            .unwrap()
            .contains("Too many login attempts")
    );
    // Tokens are not logins: the API still answers.
    assert_eq!(
        server.get("/api/v1/auth/me", Some(&admin)).await.0,
        StatusCode::OK
    );
}
