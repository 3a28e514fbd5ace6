//! Managing users (admins only). Issue 3 "Managing users".

use axum::Json;
use axum::extract::State;
use axum::http::{Method, StatusCode};

use super::extract::{AuthUser, JsonBody, Path};
use super::{Endpoint, endpoint};
use crate::AppState;
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
    let users = users::list(&state.store, &me)?;
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
    let new: NewUser = body.parse()?;
    let user = users::create(&state.store, &state.auth, new, &me).await?;
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
    Ok(Json(users::get(&state.store, &username, &me)?))
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
    let patch: UserPatch = body.parse()?;
    let user = users::update(&state.store, &state.auth, &username, patch, &me).await?;
    Ok(Json(user))
}

/// `GET /api/v1/users`.
#[derive(serde::Serialize, utoipa::ToSchema)]
struct UserList {
    users: Vec<UserView>,
}
