//! Administration over the API (admins only): API tokens (created, listed, revoked one by one)
//! and users, through the same operations as the CLI and the pages.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::{delete, get};
use axum::{Json, Router};

use super::dto::{
    TokenCreateRequest, TokenCreatedDto, TokenDto, TokensDto, UserCreateRequest, UserDto, UsersDto,
};
use super::error::ApiError;
use super::extract::{Caller, JsonBody};
use crate::admin::{AdminRequest, AdminResponse};
use crate::auth::Permission;
use crate::state::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v1/tokens", get(list_tokens).post(create_token))
        .route("/api/v1/tokens/{id}", delete(revoke_token))
        .route("/api/v1/users", get(list_users).post(create_user))
}

fn unexpected(response: &AdminResponse) -> ApiError {
    ApiError::internal(&format!("unexpected admin response {response:?}"))
}

async fn create_token(
    State(state): State<AppState>,
    caller: Caller,
    JsonBody(request): JsonBody<TokenCreateRequest>,
) -> Result<impl IntoResponse, ApiError> {
    let principal = caller.require(Permission::Admin)?;
    let response = state
        .admin(AdminRequest::TokenCreate {
            name: request.name,
            scopes: request.scopes,
            expires_in_days: request.expires_in_days,
            created_by: principal.label(),
        })
        .await?;
    match response {
        AdminResponse::TokenCreated { token, info } => {
            tracing::info!(by = %principal.label(), token_id = %info.id, "API token created");
            Ok((StatusCode::CREATED, Json(TokenCreatedDto { token, info })))
        }
        other => Err(unexpected(&other)),
    }
}

async fn list_tokens(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<impl IntoResponse, ApiError> {
    caller.require(Permission::Admin)?;
    match state.admin(AdminRequest::TokenList).await? {
        AdminResponse::Tokens { tokens } => Ok(Json(TokensDto { tokens })),
        other => Err(unexpected(&other)),
    }
}

async fn revoke_token(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    let principal = caller.require(Permission::Admin)?;
    match state.admin(AdminRequest::TokenRevoke { id }).await? {
        AdminResponse::TokenRevoked { info } => {
            tracing::info!(by = %principal.label(), token_id = %info.id, "API token revoked");
            Ok(Json(TokenDto { info }))
        }
        other => Err(unexpected(&other)),
    }
}

async fn list_users(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<impl IntoResponse, ApiError> {
    caller.require(Permission::Admin)?;
    match state.admin(AdminRequest::UserList).await? {
        AdminResponse::Users { users } => Ok(Json(UsersDto { users })),
        other => Err(unexpected(&other)),
    }
}

async fn create_user(
    State(state): State<AppState>,
    caller: Caller,
    JsonBody(request): JsonBody<UserCreateRequest>,
) -> Result<impl IntoResponse, ApiError> {
    let principal = caller.require(Permission::Admin)?;
    let response = state
        .admin(AdminRequest::UserAdd {
            username: request.username,
            password: request.password,
            role: request.role,
        })
        .await?;
    match response {
        AdminResponse::UserAdded { user } => {
            tracing::info!(by = %principal.label(), user = %user.username, "user created");
            Ok((StatusCode::CREATED, Json(UserDto { user })))
        }
        other => Err(unexpected(&other)),
    }
}
