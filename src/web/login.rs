//! Logging in and out of the dashboard.

use std::collections::HashMap;

use askama::Template;
use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, Form, FromRequestParts, State};
use axum::http::HeaderValue;
use axum::http::header::{RETRY_AFTER, SET_COOKIE};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};

use super::{Nav, check_csrf, internal, render, require_session, session};
use crate::api::extract::{SESSION_COOKIE, cookie};
use crate::auth::AuthError;
use crate::auth::jwt::Purpose;
use crate::state::AppState;

/// Cookie holding the pre-login CSRF nonce.
const LOGIN_COOKIE: &str = "__Host-securify_login";

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage {
    nav: Option<Nav>,
    csrf: String,
    username: String,
    error: Option<String>,
}

fn session_cookie(value: &str, max_age: u64) -> String {
    format!(
        "{SESSION_COOKIE}={value}; Path=/; Secure; HttpOnly; SameSite=Strict; Max-Age={max_age}"
    )
}

fn login_form(
    state: &AppState,
    username: String,
    error: Option<String>,
    status: StatusCode,
) -> Response {
    let nonce = crate::keys::random_token::<18>();
    let page = LoginPage {
        nav: None,
        csrf: state.auth.csrf_token(&format!("login:{nonce}")),
        username,
        error,
    };
    let mut response = render(&page);
    *response.status_mut() = status;
    let cookie =
        format!("{LOGIN_COOKIE}={nonce}; Path=/; Secure; HttpOnly; SameSite=Strict; Max-Age=3600");
    if let Ok(value) = cookie.parse() {
        response.headers_mut().append(SET_COOKIE, value);
    }
    response
}

pub async fn page(State(state): State<AppState>, headers: HeaderMap) -> Response {
    match session(&state, &headers) {
        Ok(Some(_)) => Redirect::to("/").into_response(),
        Ok(None) => login_form(&state, String::new(), None, StatusCode::OK),
        Err(response) => response,
    }
}

/// A login its client's address may try now. A throttled client is answered before its body
/// is read.
pub struct Admitted(IpAddr);

impl FromRequestParts<AppState> for Admitted {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        let ConnectInfo(peer) = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .copied()
            .ok_or_else(|| internal(&"request without a client address"))?;
        match state.auth.admit(peer.ip()) {
            Ok(()) => Ok(Self(peer.ip())),
            Err(AuthError::Throttled(wait)) => {
                tracing::info!(client = %peer.ip(), "dashboard login throttled");
                let seconds = wait.as_secs().max(1);
                let mut response = login_form(
                    state,
                    String::new(),
                    Some(format!(
                        "Too many login attempts from your address. Try again in {seconds} seconds."
                    )),
                    StatusCode::TOO_MANY_REQUESTS,
                );
                response
                    .headers_mut()
                    .insert(RETRY_AFTER, HeaderValue::from(seconds));
                Err(response)
            }
            Err(e) => Err(internal(&e)),
        }
    }
}

pub async fn submit(
    State(state): State<AppState>,
    Admitted(client): Admitted,
    headers: HeaderMap,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let field = |name: &str| form.get(name).cloned().unwrap_or_default();
    let (username, password) = (field("username"), field("password"));
    let nonce = cookie(&headers, LOGIN_COOKIE).unwrap_or("");
    if nonce.is_empty()
        || !state
            .auth
            .check_csrf(&format!("login:{nonce}"), &field("csrf"))
    {
        let error = Some("The login form expired. Please try again.".to_string());
        return login_form(&state, username, error, StatusCode::FORBIDDEN);
    }
    let auth = state.auth.clone();
    let name = username.clone();
    let result =
        tokio::task::spawn_blocking(move || auth.login(&name, &password, Purpose::WebSession))
            .await;
    match &result {
        Ok(Ok(_)) => state.record_own_login(client, &username, true, "dashboard"),
        Ok(Err(AuthError::Invalid)) => {
            state.record_own_login(client, &username, false, "dashboard");
        }
        _ => {}
    }
    match result {
        Ok(Ok(grant)) => {
            tracing::info!(user = %grant.username, "dashboard login");
            let mut response = Redirect::to("/").into_response();
            let headers = response.headers_mut();
            for cookie in [
                session_cookie(&grant.token, grant.expires_in),
                format!("{LOGIN_COOKIE}=; Path=/; Secure; HttpOnly; SameSite=Strict; Max-Age=0"),
            ] {
                if let Ok(value) = cookie.parse() {
                    headers.append(SET_COOKIE, value);
                }
            }
            response
        }
        Ok(Err(AuthError::Storage(e))) => internal(&e),
        Ok(Err(_)) => {
            tracing::info!(user = %username, "dashboard login failed");
            login_form(
                &state,
                username,
                Some("Invalid user name or password.".into()),
                StatusCode::UNAUTHORIZED,
            )
        }
        Err(e) => internal(&e),
    }
}

pub async fn logout(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let session = match require_session(&state, &headers) {
        Ok(s) => s,
        Err(response) => return response,
    };
    if let Err(response) = check_csrf(&state, &session, &form) {
        return response;
    }
    if let Err(e) = state.auth.logout(&session.id) {
        return internal(&e);
    }
    let mut response = Redirect::to("/login").into_response();
    if let Ok(value) = session_cookie("", 0).parse() {
        response.headers_mut().append(SET_COOKIE, value);
    }
    response
}
