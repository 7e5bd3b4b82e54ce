//! The server-rendered dashboard. Every page works without JavaScript; `static/app.js` adds
//! local times, live updates and the search tail on top.
//!
//! The session is a `__Host-` cookie (`Secure`, `HttpOnly`, `SameSite=Strict`) holding a JWT of the
//! web audience. Every form carries a CSRF token: an HMAC of the session id, or before login of
//! a nonce kept in a short-lived cookie. Errors render as HTML pages, never JSON.
//!
//! Handlers return `Result<Response, Response>`: the error is the finished page to send (a
//! redirect to the login page, a 403 page, an error page), and boxing it would only add noise
//! on paths that are cold by nature.
#![allow(clippy::result_large_err)]

mod admin;
mod alerts;
mod assets;
mod charts;
mod entity;
mod events;
mod login;
mod overview;
mod search;
mod system;

use std::collections::HashMap;

use askama::Template;
use axum::Router;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};

use crate::api::extract::{SESSION_COOKIE, cookie};
use crate::auth::{AuthError, Principal};
use crate::event::format_timestamp;
use crate::state::AppState;
use crate::storage::Role;

/// What a page handler returns: the page, or the response that replaces it.
type Page = Result<Response, Response>;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(overview::page))
        .route("/login", get(login::page).post(login::submit))
        .route("/logout", post(login::logout))
        .route("/events", get(events::page))
        .route("/search", get(search::page))
        .route("/alerts", get(alerts::list))
        .route("/alerts/{id}", get(alerts::detail))
        .route("/alerts/{id}/status", post(alerts::set_status))
        .route("/alerts/{id}/block", post(alerts::block))
        .route("/blocklist", get(alerts::blocklist))
        .route("/allowlist", post(alerts::allow))
        .route("/allowlist/remove", post(alerts::disallow))
        .route("/ip/{ip}", get(entity::address))
        .route("/user/{name}", get(entity::account))
        .route("/system", get(system::page))
        .route("/tokens", get(admin::tokens).post(admin::token_create))
        .route("/tokens/{id}/revoke", post(admin::token_revoke))
        .route("/users", get(admin::users).post(admin::user_create))
        .route("/users/{name}/password", post(admin::user_password))
        .route("/static/{file}", get(assets::serve))
}

/// What the navigation bar shows for a logged-in user.
struct Nav {
    username: String,
    role: Role,
    is_admin: bool,
    /// May change alerts, the blocklist and the allow-list.
    can_triage: bool,
    csrf: String,
    /// The section the page belongs to (marked in the bar).
    active: &'static str,
}

impl Nav {
    fn is(&self, section: &str) -> bool {
        self.active == section
    }
}

/// A logged-in dashboard user.
struct Session {
    username: String,
    role: Role,
    id: String,
}

impl Session {
    fn nav(&self, state: &AppState, active: &'static str) -> Nav {
        Nav {
            username: self.username.clone(),
            role: self.role,
            is_admin: self.role == Role::Admin,
            can_triage: self.can_triage(),
            csrf: state.auth.csrf_token(&self.id),
            active,
        }
    }

    fn can_triage(&self) -> bool {
        matches!(self.role, Role::Admin | Role::Analyst)
    }

    /// Who did something, for notes and logs.
    fn label(&self) -> String {
        format!("user:{}", self.username)
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
        | Err(
            AuthError::Invalid
            | AuthError::Missing
            | AuthError::Forbidden
            | AuthError::Throttled(_),
        ) => Ok(None),
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
        Err(forbidden(
            state,
            &session,
            "This page is for administrators.",
        ))
    }
}

/// An administrator's form post: an admin session and the form's CSRF token.
fn require_admin_form(
    state: &AppState,
    headers: &HeaderMap,
    form: &HashMap<String, String>,
) -> Result<Session, Response> {
    let session = require_admin(state, headers)?;
    check_csrf(state, &session, form)?;
    Ok(session)
}

/// A form post that changes something: a session allowed to triage, and the form's CSRF token.
fn require_triage(
    state: &AppState,
    headers: &HeaderMap,
    form: &HashMap<String, String>,
) -> Result<Session, Response> {
    let session = require_session(state, headers)?;
    check_csrf(state, &session, form)?;
    if session.can_triage() {
        Ok(session)
    } else {
        Err(forbidden(
            state,
            &session,
            "Viewers can look at everything but change nothing. Ask an administrator for the analyst role.",
        ))
    }
}

fn forbidden(state: &AppState, session: &Session, message: &str) -> Response {
    error_page(
        StatusCode::FORBIDDEN,
        "Not allowed",
        message,
        Some(session.nav(state, "")),
    )
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
            Some(session.nav(state, "")),
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

/// [`render`] with another status than 200.
fn render_with(status: StatusCode, template: &impl Template) -> Response {
    let mut response = render(template);
    if response.status() == StatusCode::OK {
        *response.status_mut() = status;
    }
    response
}

fn error_page(status: StatusCode, title: &str, message: &str, nav: Option<Nav>) -> Response {
    render_with(
        status,
        &ErrorPage {
            nav,
            title,
            message,
        },
    )
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

/// An error page without navigation, for answers made before a handler runs.
#[must_use]
pub fn plain_error(status: StatusCode, title: &str, message: &str) -> Response {
    error_page(status, title, message, None)
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

/// Runs store work on the blocking pool; a failure becomes the error page.
async fn blocking<T, E>(work: impl FnOnce() -> Result<T, E> + Send + 'static) -> Result<T, Response>
where
    T: Send + 'static,
    E: std::fmt::Debug + Send + 'static,
{
    match tokio::task::spawn_blocking(work).await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(e)) => Err(internal(&e)),
        Err(e) => Err(internal(&e)),
    }
}

/// Percent-encodes a query value (everything but unreserved characters).
fn form_encode(value: &str) -> String {
    use std::fmt::Write;
    value.bytes().fold(String::new(), |mut out, b| {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char);
            }
            _ => {
                let _ = write!(out, "%{b:02X}");
            }
        }
        out
    })
}

/// A trimmed query parameter, empty when absent.
fn param(params: &HashMap<String, String>, name: &str) -> String {
    params
        .get(name)
        .map(|v| v.trim().to_string())
        .unwrap_or_default()
}

/// An instant for the templates: RFC 3339 in UTC (the script shows it in the browser's zone
/// and keeps UTC for the tooltip).
fn when(micros: i64) -> String {
    format_timestamp(micros)
}

/// A time range of the pages' range selector.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Range {
    name: &'static str,
    label: &'static str,
    micros: i64,
    /// Bucket of the charts, in minutes.
    step_minutes: i64,
}

const HOUR: i64 = 3_600_000_000;

const RANGES: [Range; 4] = [
    Range {
        name: "1h",
        label: "Last hour",
        micros: HOUR,
        step_minutes: 1,
    },
    Range {
        name: "24h",
        label: "Last 24 hours",
        micros: 24 * HOUR,
        step_minutes: 30,
    },
    Range {
        name: "7d",
        label: "Last 7 days",
        micros: 7 * 24 * HOUR,
        step_minutes: 360,
    },
    Range {
        name: "30d",
        label: "Last 30 days",
        micros: 30 * 24 * HOUR,
        step_minutes: 1440,
    },
];

impl Range {
    /// The range named by the `range` parameter; 24 hours by default.
    fn from_param(params: &HashMap<String, String>) -> Self {
        let name = params.get("range").map_or("24h", String::as_str);
        RANGES
            .into_iter()
            .find(|r| r.name == name)
            .unwrap_or(RANGES[1])
    }
}

/// Severity names, most severe first.
const SEVERITIES: [&str; 4] = ["critical", "high", "medium", "low"];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_values_are_percent_encoded() {
        assert_eq!(form_encode("a b&c=d/é"), "a%20b%26c%3Dd%2F%C3%A9");
        assert_eq!(form_encode("Az09-_.~"), "Az09-_.~");
    }

    #[test]
    fn unknown_ranges_fall_back_to_a_day() {
        let params = |v: &str| HashMap::from([("range".to_string(), v.to_string())]);
        assert_eq!(Range::from_param(&params("7d")).name, "7d");
        assert_eq!(Range::from_param(&params("9y")).name, "24h");
        assert_eq!(Range::from_param(&HashMap::new()).name, "24h");
    }
}
