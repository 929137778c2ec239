//! `/admin/v1/webhooks`: receivers of events, and their delivery logs. A webhook's secret is
//! write-only: taken at creation, never answered.

use actix_web::{web, HttpResponse};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::auth::Admin;
use crate::error::AppError;
use crate::http::json::ApiJson;
use crate::services::webhooks;
use crate::state::AppState;
use crate::storage::webhooks::{StoredDelivery, StoredWebhook};

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewWebhook {
    /// `https://…`, or `http://…` for a receiver inside the bank's network.
    pub url: String,
    /// Event types, as in `GET /admin/v1/events` (`token.revoked`, `grant.exhausted`, …).
    pub events: Vec<String>,
    /// Signs each delivery (`Scopegate-Signature`); 16–512 bytes. Never returned.
    pub secret: String,
}

#[derive(Serialize, ToSchema)]
pub struct WebhookList {
    pub webhooks: Vec<StoredWebhook>,
}

#[derive(Serialize, ToSchema)]
pub struct DeliveryList {
    pub deliveries: Vec<StoredDelivery>,
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct DeliveryQuery {
    /// 1–500, default 50.
    pub limit: Option<i64>,
}

#[utoipa::path(post, path = "/admin/v1/webhooks", tag = "webhooks", request_body = NewWebhook,
    responses((status = 201, body = StoredWebhook),
        (status = 400, description = "invalid_request: a bad url, an unknown event type, an unfit secret")),
    security(("bearer" = [])))]
pub async fn create(
    admin: Admin,
    state: web::Data<AppState>,
    body: ApiJson<NewWebhook>,
) -> Result<HttpResponse, AppError> {
    let registration = webhooks::registration(&body.0.url, &body.0.events, &body.0.secret)?;
    let (actor, now) = (admin.actor(), state.clock.now());
    let webhook = state.db.run(move |connection| webhooks::create(connection, &registration, &actor, now)).await?;
    Ok(HttpResponse::Created().insert_header(("Location", format!("/admin/v1/webhooks/{}", webhook.id))).json(webhook))
}

#[utoipa::path(get, path = "/admin/v1/webhooks", tag = "webhooks", responses((status = 200, body = WebhookList)),
    security(("bearer" = [])))]
pub async fn list(_: Admin, state: web::Data<AppState>) -> Result<HttpResponse, AppError> {
    let webhooks = state.db.read(webhooks::list).await?;
    Ok(HttpResponse::Ok().json(WebhookList { webhooks }))
}

#[utoipa::path(delete, path = "/admin/v1/webhooks/{id}", tag = "webhooks",
    responses((status = 204, description = "Deleted, with its pending deliveries"),
        (status = 404, description = "webhook_not_found")),
    security(("bearer" = [])))]
pub async fn delete(admin: Admin, state: web::Data<AppState>, id: web::Path<String>) -> Result<HttpResponse, AppError> {
    let (id, actor, now) = (webhook_id(&id)?, admin.actor(), state.clock.now());
    state.db.run(move |connection| webhooks::delete(connection, id, &actor, now)).await?;
    Ok(HttpResponse::NoContent().finish())
}

#[utoipa::path(get, path = "/admin/v1/webhooks/{id}/deliveries", tag = "webhooks", params(DeliveryQuery),
    responses((status = 200, body = DeliveryList), (status = 404, description = "webhook_not_found")),
    security(("bearer" = [])))]
pub async fn deliveries(
    _: Admin,
    state: web::Data<AppState>,
    id: web::Path<String>,
    query: web::Query<DeliveryQuery>,
) -> Result<HttpResponse, AppError> {
    let (id, limit) = (webhook_id(&id)?, query.limit);
    let deliveries = state.db.read(move |connection| webhooks::deliveries(connection, id, limit)).await?;
    Ok(HttpResponse::Ok().json(DeliveryList { deliveries }))
}

/// Ids are numbers; anything else names no webhook.
fn webhook_id(text: &str) -> Result<i64, AppError> {
    text.parse().map_err(|_| AppError::not_found("webhook_not_found", format!("no webhook {text:?}")))
}
