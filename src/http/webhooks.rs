//! Webhooks (admins): register receivers of the changes of submissions, see and retry their
//! deliveries. The sender itself is `webhooks::send`.

use axum::Json;
use axum::extract::State;
use axum::http::{Method, StatusCode};
use uuid::Uuid;

use super::extract::{AuthUser, JsonBody, Path};
use super::shapes::Items;
use super::{Endpoint, blocking, endpoint};
use crate::AppState;
use crate::auth::Permission;
use crate::error::{AppError, ErrorBody};
use crate::webhooks::{self, DeliveryView, NewWebhook, WebhookPatch, WebhookView};

pub fn endpoints() -> Vec<Endpoint> {
    vec![
        endpoint(Method::POST, "/api/v1/webhooks", create),
        endpoint(Method::GET, "/api/v1/webhooks", list),
        endpoint(Method::GET, "/api/v1/webhooks/{id}", get),
        endpoint(Method::PATCH, "/api/v1/webhooks/{id}", update),
        endpoint(Method::DELETE, "/api/v1/webhooks/{id}", delete),
        endpoint(Method::GET, "/api/v1/webhooks/{id}/deliveries", deliveries),
        endpoint(
            Method::POST,
            "/api/v1/webhooks/{id}/deliveries/{delivery}/redeliver",
            redeliver,
        ),
    ]
}

/// A webhook id in a path: anything else names no webhook.
fn parse_id(id: &str) -> Result<Uuid, AppError> {
    Uuid::try_parse(id).map_err(|_| AppError::WebhookNotFound)
}

/// `POST /api/v1/webhooks`: a receiver of the changes committed from now on.
#[utoipa::path(post, path = "/api/v1/webhooks", tag = "changes",
    request_body = NewWebhook,
    responses(
        (status = 201, description = "Registered; the secret is never shown again", body = WebhookView),
        (status = 422, description = "`request_invalid`: an address that may not receive webhooks, unknown events or forms, a secret shorter than 32 bytes", body = ErrorBody),
    ))]
async fn create(
    State(state): State<AppState>,
    AuthUser(me): AuthUser,
    body: JsonBody,
) -> Result<(StatusCode, Json<WebhookView>), AppError> {
    me.require(Permission::ManageWebhooks)?;
    let new: NewWebhook = body.parse()?;
    let created = webhooks::create(&state.store, &state.forms, &state.webhooks, new, &me).await?;
    Ok((StatusCode::CREATED, Json(created)))
}

/// `GET /api/v1/webhooks`: every webhook.
#[utoipa::path(get, path = "/api/v1/webhooks", tag = "changes",
    responses((status = 200, description = "Every webhook (never a secret)", body = Items<WebhookView>)))]
async fn list(
    State(state): State<AppState>,
    AuthUser(me): AuthUser,
) -> Result<Json<Items<WebhookView>>, AppError> {
    let store = state.store.clone();
    Ok(Json(Items::new(
        blocking(move || webhooks::list(&store, &me)).await??,
    )))
}

/// `GET /api/v1/webhooks/{id}`.
#[utoipa::path(get, path = "/api/v1/webhooks/{id}", tag = "changes",
    params(("id" = String, Path, description = "Webhook id")),
    responses(
        (status = 200, description = "The webhook, with `active`, `paused_reason` and where its deliveries are", body = WebhookView),
        (status = 404, description = "`webhook_not_found`", body = ErrorBody),
    ))]
async fn get(
    State(state): State<AppState>,
    AuthUser(me): AuthUser,
    Path(id): Path<String>,
) -> Result<Json<WebhookView>, AppError> {
    Ok(Json(webhooks::get(&state.store, parse_id(&id)?, &me)?))
}

/// `PATCH /api/v1/webhooks/{id}`: url, events, forms, secret; `{"active": true}` resumes a
/// paused webhook, which then sends its backlog in order.
#[utoipa::path(patch, path = "/api/v1/webhooks/{id}", tag = "changes",
    params(("id" = String, Path, description = "Webhook id")),
    request_body = WebhookPatch,
    responses(
        (status = 200, description = "Changed", body = WebhookView),
        (status = 404, description = "`webhook_not_found`", body = ErrorBody),
        (status = 422, description = "`request_invalid`", body = ErrorBody),
    ))]
async fn update(
    State(state): State<AppState>,
    AuthUser(me): AuthUser,
    Path(id): Path<String>,
    body: JsonBody,
) -> Result<Json<WebhookView>, AppError> {
    me.require(Permission::ManageWebhooks)?;
    let id = parse_id(&id)?;
    let patch: WebhookPatch = body.parse()?;
    let changed =
        webhooks::update(&state.store, &state.forms, &state.webhooks, id, patch, &me).await?;
    Ok(Json(changed))
}

/// `DELETE /api/v1/webhooks/{id}`: no more deliveries; its records go too.
#[utoipa::path(delete, path = "/api/v1/webhooks/{id}", tag = "changes",
    params(("id" = String, Path, description = "Webhook id")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 404, description = "`webhook_not_found`", body = ErrorBody),
    ))]
async fn delete(
    State(state): State<AppState>,
    AuthUser(me): AuthUser,
    Path(id): Path<String>,
) -> Result<StatusCode, AppError> {
    webhooks::delete(&state.store, parse_id(&id)?, &me).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /api/v1/webhooks/{id}/deliveries`: the latest deliveries with their attempts.
#[utoipa::path(get, path = "/api/v1/webhooks/{id}/deliveries", tag = "changes",
    params(("id" = String, Path, description = "Webhook id")),
    responses(
        (status = 200, description = "Newest first, at most 200: each delivery's state (`pending`, `delivered`, `failed`) and attempts (status, latency, error)", body = Items<DeliveryView>),
        (status = 404, description = "`webhook_not_found`", body = ErrorBody),
    ))]
async fn deliveries(
    State(state): State<AppState>,
    AuthUser(me): AuthUser,
    Path(id): Path<String>,
) -> Result<Json<Items<DeliveryView>>, AppError> {
    let id = parse_id(&id)?;
    let store = state.store.clone();
    Ok(Json(Items::new(
        blocking(move || webhooks::deliveries(&store, id, &me)).await??,
    )))
}

/// `POST /api/v1/webhooks/{id}/deliveries/{delivery}/redeliver`: sends that change again now.
#[utoipa::path(post, path = "/api/v1/webhooks/{id}/deliveries/{delivery}/redeliver", tag = "changes",
    params(("id" = String, Path, description = "Webhook id"), ("delivery" = String, Path, description = "A `delivery_id`")),
    responses(
        (status = 200, description = "The delivery with the new attempt", body = DeliveryView),
        (status = 404, description = "`webhook_not_found` or `delivery_not_found`", body = ErrorBody),
    ))]
async fn redeliver(
    State(state): State<AppState>,
    AuthUser(me): AuthUser,
    Path((id, delivery)): Path<(String, String)>,
) -> Result<Json<DeliveryView>, AppError> {
    let id = parse_id(&id)?;
    let done = webhooks::send::redeliver(&state.store, &state.webhooks, id, &delivery, &me).await?;
    Ok(Json(done))
}
