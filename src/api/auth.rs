//! Sessions of API users: log in (the attempt is recorded as an event like any service's
//! login), refresh, log out, and who the caller is.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};

use super::dto::{LoginReply, LoginRequest, MeReply, RefreshRequest, UserSummary};
use super::error::ApiError;
use super::extract::{Caller, JsonBody, LoginAdmitted};
use crate::auth::jwt::Purpose;
use crate::auth::{AuthError, Grant, Principal};
use crate::state::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v1/auth/login", post(login))
        .route("/api/v1/auth/refresh", post(refresh))
        .route("/api/v1/auth/logout", post(logout))
        .route("/api/v1/auth/me", get(me))
}

fn login_reply(grant: Grant) -> Result<Json<LoginReply>, ApiError> {
    let refresh_token = grant
        .refresh_token
        .ok_or_else(|| ApiError::internal(&"API grant without a refresh token"))?;
    Ok(Json(LoginReply {
        access_token: grant.token,
        token_type: "Bearer",
        expires_in: grant.expires_in,
        refresh_token,
        user: UserSummary {
            username: grant.username,
            role: grant.role,
        },
    }))
}

async fn login(
    State(state): State<AppState>,
    LoginAdmitted(client): LoginAdmitted,
    JsonBody(request): JsonBody<LoginRequest>,
) -> Result<Json<LoginReply>, ApiError> {
    let auth = state.auth.clone();
    let username = request.username.clone();
    let result = tokio::task::spawn_blocking(move || {
        auth.login(&request.username, &request.password, Purpose::ApiAccess)
    })
    .await
    .map_err(|e| ApiError::internal(&e))?;
    match &result {
        Ok(_) => state.record_own_login(client, &username, true, "api"),
        Err(AuthError::Invalid) => state.record_own_login(client, &username, false, "api"),
        Err(_) => {}
    }
    match result {
        Ok(grant) => login_reply(grant),
        Err(AuthError::Invalid) => Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "invalid_credentials",
            "invalid user name or password",
        )),
        Err(other) => Err(other.into()),
    }
}

async fn refresh(
    State(state): State<AppState>,
    JsonBody(request): JsonBody<RefreshRequest>,
) -> Result<Json<LoginReply>, ApiError> {
    let auth = state.auth.clone();
    let grant = tokio::task::spawn_blocking(move || auth.refresh(&request.refresh_token))
        .await
        .map_err(|e| ApiError::internal(&e))??;
    login_reply(grant)
}

async fn logout(State(state): State<AppState>, caller: Caller) -> Result<StatusCode, ApiError> {
    match caller.0 {
        Principal::User { session_id, .. } => {
            state.auth.logout(&session_id)?;
            Ok(StatusCode::NO_CONTENT)
        }
        Principal::ApiToken { .. } => Err(ApiError::invalid_request(
            "API tokens have no session; revoke the token instead",
        )),
    }
}

async fn me(caller: Caller) -> Json<MeReply> {
    Json(match caller.0 {
        Principal::User { username, role, .. } => MeReply::User { username, role },
        Principal::ApiToken { id, name, scopes } => MeReply::Token { id, name, scopes },
    })
}
