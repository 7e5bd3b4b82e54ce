//! Administration pages: API tokens and dashboard users (administrators only).

use std::collections::HashMap;

use askama::Template;
use axum::extract::{Form, Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};

use super::{Nav, Session, internal, render_with, require_admin, require_admin_form};
use crate::admin::{AdminErrorKind, AdminRequest, AdminResponse, TokenInfo};
use crate::state::AppState;
use crate::storage::{Role, Scope};

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
#[template(path = "admin/tokens.html")]
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
    let nav = session.nav(state, "tokens");
    render_with(
        status,
        &TokensPage {
            csrf: nav.csrf.clone(),
            nav: Some(nav),
            tokens: tokens.into_iter().rev().map(TokenRow::from).collect(),
            created,
            error,
        },
    )
}

pub async fn tokens(State(state): State<AppState>, headers: HeaderMap) -> Response {
    match require_admin(&state, &headers) {
        Ok(session) => tokens_view(&state, &session, None, None, StatusCode::OK).await,
        Err(response) => response,
    }
}

pub async fn token_create(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let session = match require_admin_form(&state, &headers, &form) {
        Ok(s) => s,
        Err(response) => return response,
    };
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

pub async fn token_revoke(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let session = match require_admin_form(&state, &headers, &form) {
        Ok(s) => s,
        Err(response) => return response,
    };
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

/// One row of the users table.
struct UserRow {
    username: String,
    role: String,
    created_at: String,
    disabled: bool,
}

#[derive(Template)]
#[template(path = "admin/users.html")]
struct UsersPage {
    nav: Option<Nav>,
    csrf: String,
    users: Vec<UserRow>,
    done: Option<String>,
    error: Option<String>,
}

async fn users_view(
    state: &AppState,
    session: &Session,
    done: Option<String>,
    error: Option<String>,
    status: StatusCode,
) -> Response {
    let users = match state.admin(AdminRequest::UserList).await {
        Ok(AdminResponse::Users { users }) => users,
        Ok(other) => return internal(&other),
        Err(e) => return internal(&e),
    };
    let nav = session.nav(state, "users");
    render_with(
        status,
        &UsersPage {
            csrf: nav.csrf.clone(),
            nav: Some(nav),
            users: users
                .into_iter()
                .map(|u| UserRow {
                    username: u.username,
                    role: u.role.to_string(),
                    created_at: u.created_at,
                    disabled: u.disabled,
                })
                .collect(),
            done,
            error,
        },
    )
}

pub async fn users(State(state): State<AppState>, headers: HeaderMap) -> Response {
    match require_admin(&state, &headers) {
        Ok(session) => users_view(&state, &session, None, None, StatusCode::OK).await,
        Err(response) => response,
    }
}

/// Runs a user operation from a form and shows the users page with its outcome.
async fn user_change(
    state: &AppState,
    session: &Session,
    request: AdminRequest,
    success: impl FnOnce(&AdminResponse) -> Option<String>,
) -> Response {
    match state.admin(request).await {
        Ok(response) => match success(&response) {
            Some(done) => {
                tracing::info!(by = %session.username, what = %done, "user changed from the dashboard");
                users_view(state, session, Some(done), None, StatusCode::OK).await
            }
            None => internal(&response),
        },
        Err(e) if e.kind() == AdminErrorKind::Internal => internal(&e),
        Err(e) => {
            let status = if e.kind() == AdminErrorKind::NotFound {
                StatusCode::NOT_FOUND
            } else {
                StatusCode::BAD_REQUEST
            };
            users_view(state, session, None, Some(e.to_string()), status).await
        }
    }
}

pub async fn user_create(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let session = match require_admin_form(&state, &headers, &form) {
        Ok(s) => s,
        Err(response) => return response,
    };
    let field = |name: &str| form.get(name).cloned().unwrap_or_default();
    let role = match field("role").parse::<Role>() {
        Ok(role) => role,
        Err(e) => {
            return users_view(&state, &session, None, Some(e), StatusCode::BAD_REQUEST).await;
        }
    };
    let request = AdminRequest::UserAdd {
        username: field("username").trim().to_string(),
        password: field("password"),
        role,
    };
    user_change(&state, &session, request, |response| match response {
        AdminResponse::UserAdded { user } => {
            Some(format!("User {} added as {}.", user.username, user.role))
        }
        _ => None,
    })
    .await
}

pub async fn user_password(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(username): Path<String>,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let session = match require_admin_form(&state, &headers, &form) {
        Ok(s) => s,
        Err(response) => return response,
    };
    let request = AdminRequest::UserPasswd {
        username,
        password: form.get("password").cloned().unwrap_or_default(),
    };
    user_change(&state, &session, request, |response| match response {
        AdminResponse::PasswordChanged { username } => {
            Some(format!("The password of {username} is changed."))
        }
        _ => None,
    })
    .await
}
