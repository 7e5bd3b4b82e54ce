//! The server-rendered dashboard: login, events, API tokens. Works without JavaScript.
//!
//! The session is a `__Host-` cookie (`Secure`, `HttpOnly`, `SameSite=Strict`) holding a JWT of the
//! web audience. Every form carries a CSRF token: an HMAC of the session id, or before login of
//! a nonce kept in a short-lived cookie. Errors render as HTML pages, never JSON.
//!
//! Page helpers return `Result<_, Response>`: the error is the finished page to send, and boxing
//! it would only add noise on paths that are cold by nature.
#![allow(clippy::result_large_err)]

use std::collections::HashMap;
use std::fmt::Write;

use askama::Template;
use axum::Router;
use axum::extract::{Form, Path, Query, State};
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE, SET_COOKIE};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};

use crate::admin::{AdminErrorKind, AdminRequest, AdminResponse, TokenInfo};
use crate::api::dto;
use crate::api::extract::{SESSION_COOKIE, cookie};
use crate::auth::jwt::Purpose;
use crate::auth::{AuthError, Principal};
use crate::event::{self, format_timestamp};
use crate::state::AppState;
use crate::storage::{EventQuery, Role, Scope};

/// Cookie holding the pre-login CSRF nonce.
const LOGIN_COOKIE: &str = "__Host-securify_login";
/// Events per page on the events page.
const PAGE_SIZE: usize = 100;
const STYLESHEET: &str = include_str!("../../static/app.css");

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(home))
        .route("/login", get(login_page).post(login_submit))
        .route("/logout", post(logout))
        .route("/events", get(events_page))
        .route("/tokens", get(tokens_page).post(token_create))
        .route("/tokens/{id}/revoke", post(token_revoke))
        .route("/static/app.css", get(stylesheet))
}

/// What the navigation bar shows for a logged-in user.
struct Nav {
    username: String,
    role: Role,
    is_admin: bool,
    csrf: String,
}

/// A logged-in dashboard user.
struct Session {
    username: String,
    role: Role,
    id: String,
}

impl Session {
    fn nav(&self, state: &AppState) -> Nav {
        Nav {
            username: self.username.clone(),
            role: self.role,
            is_admin: self.role == Role::Admin,
            csrf: state.auth.csrf_token(&self.id),
        }
    }
}

fn session(state: &AppState, headers: &HeaderMap) -> Result<Option<Session>, Response> {
    let Some(value) = cookie(headers, SESSION_COOKIE) else {
        return Ok(None);
    };
    match state.auth.authenticate_session(value) {
        Ok(Principal::User {
            username,
            role,
            session_id,
        }) => Ok(Some(Session {
            username,
            role,
            id: session_id,
        })),
        Ok(Principal::ApiToken { .. })
        | Err(AuthError::Invalid | AuthError::Missing | AuthError::Forbidden) => Ok(None),
        Err(AuthError::Storage(e)) => Err(internal(&e)),
    }
}

/// The session, or a redirect to the login page.
fn require_session(state: &AppState, headers: &HeaderMap) -> Result<Session, Response> {
    session(state, headers)?.ok_or_else(|| Redirect::to("/login").into_response())
}

fn require_admin(state: &AppState, headers: &HeaderMap) -> Result<Session, Response> {
    let session = require_session(state, headers)?;
    if session.role == Role::Admin {
        Ok(session)
    } else {
        Err(error_page(
            StatusCode::FORBIDDEN,
            "Not allowed",
            "This page is for administrators.",
            Some(session.nav(state)),
        ))
    }
}

fn check_csrf(
    state: &AppState,
    session: &Session,
    form: &HashMap<String, String>,
) -> Result<(), Response> {
    let token = form.get("csrf").map_or("", String::as_str);
    if state.auth.check_csrf(&session.id, token) {
        Ok(())
    } else {
        Err(error_page(
            StatusCode::FORBIDDEN,
            "Form expired",
            "The form was missing its security token or it did not match your session. Reload the page and try again.",
            Some(session.nav(state)),
        ))
    }
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage<'a> {
    nav: Option<Nav>,
    title: &'a str,
    message: &'a str,
}

fn render(template: &impl Template) -> Response {
    match template.render() {
        Ok(html) => Html(html).into_response(),
        Err(e) => internal(&e),
    }
}

fn error_page(status: StatusCode, title: &str, message: &str, nav: Option<Nav>) -> Response {
    let mut response = render(&ErrorPage {
        nav,
        title,
        message,
    });
    *response.status_mut() = status;
    response
}

fn internal(cause: &dyn std::fmt::Debug) -> Response {
    tracing::error!(error = ?cause, "internal error rendering a page");
    let page = ErrorPage {
        nav: None,
        title: "Something went wrong",
        message: "The server could not complete this request; its log has the details.",
    };
    let html = page
        .render()
        .unwrap_or_else(|_| "Internal error".to_string());
    (StatusCode::INTERNAL_SERVER_ERROR, Html(html)).into_response()
}

/// The HTML page for an unknown path.
#[must_use]
pub fn not_found() -> Response {
    error_page(
        StatusCode::NOT_FOUND,
        "Not found",
        "There is no page at this address.",
        None,
    )
}

async fn stylesheet() -> impl IntoResponse {
    (
        [
            (CONTENT_TYPE, "text/css; charset=utf-8"),
            (CACHE_CONTROL, "public, max-age=3600"),
        ],
        STYLESHEET,
    )
}

async fn home(State(state): State<AppState>, headers: HeaderMap) -> Response {
    match session(&state, &headers) {
        Ok(Some(_)) => Redirect::to("/events").into_response(),
        Ok(None) => Redirect::to("/login").into_response(),
        Err(response) => response,
    }
}

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

async fn login_page(State(state): State<AppState>, headers: HeaderMap) -> Response {
    match session(&state, &headers) {
        Ok(Some(_)) => Redirect::to("/events").into_response(),
        Ok(None) => login_form(&state, String::new(), None, StatusCode::OK),
        Err(response) => response,
    }
}

async fn login_submit(
    State(state): State<AppState>,
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
    match result {
        Ok(Ok(grant)) => {
            tracing::info!(user = %grant.username, "dashboard login");
            let mut response = Redirect::to("/events").into_response();
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

async fn logout(
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

/// One row of the events table.
struct EventRow {
    timestamp: String,
    source_ip: String,
    username: String,
    event_type: String,
    /// "success", "failure", or empty for neither.
    outcome: &'static str,
    host: String,
}

#[derive(Template)]
#[template(path = "events.html")]
struct EventsPage {
    nav: Option<Nav>,
    total: u64,
    events: Vec<EventRow>,
    next: Option<String>,
    error: Option<String>,
    filter_username: String,
    filter_source_ip: String,
    filter_success: String,
}

async fn events_page(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(params): Query<HashMap<String, String>>,
) -> Response {
    let session = match require_session(&state, &headers) {
        Ok(s) => s,
        Err(response) => return response,
    };
    let param = |name: &str| {
        params
            .get(name)
            .map(|v| v.trim().to_string())
            .unwrap_or_default()
    };
    let (username, source_ip, success) = (param("username"), param("source_ip"), param("success"));
    let mut query = EventQuery {
        limit: PAGE_SIZE,
        ..EventQuery::default()
    };
    let mut error = None;
    if !username.is_empty() {
        query.username = Some(username.clone());
    }
    if !source_ip.is_empty() {
        match event::parse_ip("source_ip", &source_ip) {
            Ok(ip) => query.source_ip = Some(ip),
            Err(e) => error = Some(format!("Source IP: {}", e.reason)),
        }
    }
    query.success = match success.as_str() {
        "true" => Some(true),
        "false" => Some(false),
        _ => None,
    };
    query.before = params.get("cursor").and_then(|c| dto::decode_cursor(c));
    let store = state.store.clone();
    let run = error.is_none();
    let result = tokio::task::spawn_blocking(move || -> Result<_, crate::storage::StorageError> {
        let page = if run {
            store.query_events(&query)?
        } else {
            crate::storage::EventPage::default()
        };
        Ok((page, store.event_count()?))
    })
    .await;
    let (page, total) = match result {
        Ok(Ok(found)) => found,
        Ok(Err(e)) => return internal(&e),
        Err(e) => return internal(&e),
    };
    let next = page.next.map(|cursor| {
        let mut link = format!("/events?cursor={}", dto::encode_cursor(cursor));
        for (name, value) in [
            ("username", &username),
            ("source_ip", &source_ip),
            ("success", &success),
        ] {
            if !value.is_empty() {
                let _ = write!(link, "&{name}={}", form_encode(value));
            }
        }
        link
    });
    render(&EventsPage {
        nav: Some(session.nav(&state)),
        total,
        events: page
            .events
            .into_iter()
            .map(|e| EventRow {
                timestamp: format_timestamp(e.timestamp),
                source_ip: e.source_ip.map(|ip| ip.to_string()).unwrap_or_default(),
                username: e.username.unwrap_or_default(),
                event_type: e.event_type,
                outcome: match e.success {
                    Some(true) => "success",
                    Some(false) => "failure",
                    None => "",
                },
                host: e.host.unwrap_or_default(),
            })
            .collect(),
        next,
        error,
        filter_username: username,
        filter_source_ip: source_ip,
        filter_success: success,
    })
}

/// Percent-encodes a query value (everything but unreserved characters).
fn form_encode(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// One row of the tokens table.
struct TokenRow {
    id: String,
    name: String,
    scopes: String,
    created_at: String,
    last_used_at: String,
    status: &'static str,
    active: bool,
}

impl From<TokenInfo> for TokenRow {
    fn from(t: TokenInfo) -> Self {
        let status = if t.revoked_at.is_some() {
            "revoked"
        } else {
            "active"
        };
        Self {
            active: t.revoked_at.is_none(),
            status,
            scopes: t
                .scopes
                .iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join(", "),
            last_used_at: t.last_used_at.unwrap_or_else(|| "never".into()),
            id: t.id,
            name: t.name,
            created_at: t.created_at,
        }
    }
}

#[derive(Template)]
#[template(path = "tokens.html")]
struct TokensPage {
    nav: Option<Nav>,
    csrf: String,
    tokens: Vec<TokenRow>,
    created: Option<String>,
    error: Option<String>,
}

async fn tokens_view(
    state: &AppState,
    session: &Session,
    created: Option<String>,
    error: Option<String>,
    status: StatusCode,
) -> Response {
    let tokens = match state.admin(AdminRequest::TokenList).await {
        Ok(AdminResponse::Tokens { tokens }) => tokens,
        Ok(other) => return internal(&other),
        Err(e) => return internal(&e),
    };
    let nav = session.nav(state);
    let mut response = render(&TokensPage {
        csrf: nav.csrf.clone(),
        nav: Some(nav),
        tokens: tokens.into_iter().rev().map(TokenRow::from).collect(),
        created,
        error,
    });
    *response.status_mut() = status;
    response
}

async fn tokens_page(State(state): State<AppState>, headers: HeaderMap) -> Response {
    match require_admin(&state, &headers) {
        Ok(session) => tokens_view(&state, &session, None, None, StatusCode::OK).await,
        Err(response) => response,
    }
}

async fn token_create(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let session = match require_admin(&state, &headers) {
        Ok(s) => s,
        Err(response) => return response,
    };
    if let Err(response) = check_csrf(&state, &session, &form) {
        return response;
    }
    let scopes: Vec<Scope> = [
        ("scope_ingest", Scope::Ingest),
        ("scope_read", Scope::Read),
        ("scope_admin", Scope::Admin),
    ]
    .into_iter()
    .filter(|(field, _)| form.contains_key(*field))
    .map(|(_, scope)| scope)
    .collect();
    let expires = form.get("expires_in_days").map_or("", |v| v.trim());
    let expires_in_days = if expires.is_empty() {
        None
    } else if let Ok(days) = expires.parse::<u32>() {
        Some(days)
    } else {
        let error = Some("Expiry must be a whole number of days.".to_string());
        return tokens_view(&state, &session, None, error, StatusCode::BAD_REQUEST).await;
    };
    let request = AdminRequest::TokenCreate {
        name: form.get("name").cloned().unwrap_or_default(),
        scopes,
        expires_in_days,
        created_by: format!("user:{}", session.username),
    };
    match state.admin(request).await {
        Ok(AdminResponse::TokenCreated { token, info }) => {
            tracing::info!(by = %session.username, token_id = %info.id, "API token created");
            tokens_view(&state, &session, Some(token), None, StatusCode::CREATED).await
        }
        Ok(other) => internal(&other),
        Err(e) if e.kind() == AdminErrorKind::Internal => internal(&e),
        Err(e) => {
            tokens_view(
                &state,
                &session,
                None,
                Some(e.to_string()),
                StatusCode::BAD_REQUEST,
            )
            .await
        }
    }
}

async fn token_revoke(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let session = match require_admin(&state, &headers) {
        Ok(s) => s,
        Err(response) => return response,
    };
    if let Err(response) = check_csrf(&state, &session, &form) {
        return response;
    }
    match state.admin(AdminRequest::TokenRevoke { id }).await {
        Ok(AdminResponse::TokenRevoked { info }) => {
            tracing::info!(by = %session.username, token_id = %info.id, "API token revoked");
            Redirect::to("/tokens").into_response()
        }
        Ok(other) => internal(&other),
        Err(e) if e.kind() == AdminErrorKind::Internal => internal(&e),
        Err(e) => {
            tokens_view(
                &state,
                &session,
                None,
                Some(e.to_string()),
                StatusCode::NOT_FOUND,
            )
            .await
        }
    }
}
