//! Managing users (admins only). Issue 3 "Managing users".

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{Method, StatusCode};

use super::extract::{AuthUser, JsonBody};
use super::{Endpoint, endpoint};
use crate::AppState;
use crate::audit;
use crate::auth::Permission;
use crate::auth::users::{self, NewUser, UserPatch, UserView};
use crate::error::AppError;
use crate::error::ErrorBody;

pub fn endpoints() -> Vec<Endpoint> {
    vec![
        endpoint(Method::GET, "/api/v1/users", list_users),
        endpoint(Method::POST, "/api/v1/users", create_user),
        endpoint(Method::GET, "/api/v1/users/{username}", get_user),
        endpoint(Method::PATCH, "/api/v1/users/{username}", update_user),
    ]
}

/// `GET /api/v1/users`: everyone, by username.
#[utoipa::path(get, path = "/api/v1/users", tag = "users",
    responses((status = 200, description = "Every user", body = UserList)))]
async fn list_users(
    State(state): State<AppState>,
    AuthUser(me): AuthUser,
) -> Result<Json<UserList>, AppError> {
    me.require(Permission::ManageUsers)?;
    let users: Vec<UserView> = state.store.users()?.iter().map(UserView::of).collect();
    Ok(Json(UserList { users }))
}

/// `POST /api/v1/users`: `{username, password, role, display_name, scope?}` → 201.
#[utoipa::path(post, path = "/api/v1/users", tag = "users",
    request_body = NewUser,
    responses(
        (status = 201, description = "Created", body = UserView),
        (status = 409, description = "`user_exists`", body = ErrorBody),
        (status = 422, description = "`request_invalid`", body = ErrorBody),
    ))]
async fn create_user(
    State(state): State<AppState>,
    AuthUser(me): AuthUser,
    body: JsonBody,
) -> Result<(StatusCode, Json<UserView>), AppError> {
    me.require(Permission::ManageUsers)?;
    let new = body.parse::<NewUser>()?.check()?;
    if state.store.user(&new.username)?.is_some() {
        return Err(AppError::UserExists);
    }
    let hash = state.auth.hash_password(&new.password).await?;
    let user = users::create(
        &state.store,
        &new.into_record(hash),
        &me.username,
        me.request_id.clone(),
    )?;
    state.store.wait_durable().await?;
    Ok((StatusCode::CREATED, Json(user)))
}

/// `GET /api/v1/users/{username}`.
#[utoipa::path(get, path = "/api/v1/users/{username}", tag = "users", params(("username" = String, Path, description = "Case-insensitive")),
    responses((status = 200, description = "The user", body = UserView), (status = 404, description = "`user_not_found`", body = ErrorBody)))]
async fn get_user(
    State(state): State<AppState>,
    AuthUser(me): AuthUser,
    Path(username): Path<String>,
) -> Result<Json<UserView>, AppError> {
    me.require(Permission::ManageUsers)?;
    let user = state
        .store
        .user(&username.to_lowercase())?
        .ok_or(AppError::UserNotFound)?;
    Ok(Json(UserView::of(&user)))
}

/// `PATCH /api/v1/users/{username}`: any of `{role, scope, display_name, active, password}`.
/// Changing role, scope, status or password ends that user's sessions at once.
#[utoipa::path(patch, path = "/api/v1/users/{username}", tag = "users", params(("username" = String, Path, description = "Case-insensitive")),
    request_body = UserPatch,
    responses((status = 200, description = "Changed", body = UserView), (status = 404, description = "`user_not_found`", body = ErrorBody)))]
async fn update_user(
    State(state): State<AppState>,
    AuthUser(me): AuthUser,
    Path(username): Path<String>,
    body: JsonBody,
) -> Result<Json<UserView>, AppError> {
    me.require(Permission::ManageUsers)?;
    let username = username.to_lowercase();
    let patch: UserPatch = body.parse()?;
    let hash = match &patch.password {
        Some(password) => {
            users::check_password(&username, password)?;
            Some(state.auth.hash_password(password).await?)
        }
        None => None,
    };
    let event = audit::by(&me, audit::USER_UPDATED, audit::user_target(&username));
    let user = users::update(
        &state.store,
        &username,
        &patch.check(&username, hash)?,
        &event,
    )?;
    state.store.wait_durable().await?;
    Ok(Json(user))
}

/// `GET /api/v1/users`.
#[derive(serde::Serialize, utoipa::ToSchema)]
struct UserList {
    users: Vec<UserView>,
}
