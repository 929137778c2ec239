//! Webhooks for administrators: register a receiver, list, delete, read its delivery log.
//! Delivering is `webhook_delivery`'s work.

use chrono::{DateTime, Utc};
use serde_json::json;

use super::events;
use crate::domain::event::{Actor, Event, EventType};
use crate::domain::webhook::WebhookRegistration;
use crate::error::AppError;
use crate::storage::webhooks::{self, StoredDelivery, StoredWebhook};
use crate::storage::{write_transaction, DbConnection};

pub const DEFAULT_DELIVERIES: i64 = 50;
pub const MAX_DELIVERIES: i64 = 500;

/// Checks what an administrator sent: a bad URL, an unknown event type or an unfit secret is a
/// 400 `invalid_request` naming the field.
pub fn registration(url: &str, events: &[String], secret: &str) -> Result<WebhookRegistration, AppError> {
    WebhookRegistration::new(url, events, secret).map_err(AppError::invalid_request)
}

/// Stores the webhook, recorded as `webhook.created`; events recorded from its commit on are
/// delivered to it, on every instance.
pub fn create(
    connection: &mut DbConnection,
    registration: &WebhookRegistration,
    actor: &Actor,
    now: DateTime<Utc>,
) -> Result<StoredWebhook, AppError> {
    write_transaction(connection, |connection| {
        let webhook = webhooks::insert(connection, registration, now)?;
        let detail = json!({"webhook_id": webhook.id, "url": without_query(&webhook.url), "events": webhook.events});
        events::record(connection, Event::new(EventType::WebhookCreated, actor).detail(detail), now)?;
        Ok(webhook)
    })
}

/// The URL as the audit trail keeps it: without its query, which may carry a receiver's token
/// (the secret is never recorded at all).
fn without_query(url: &str) -> String {
    url.split(['?', '#']).next().unwrap_or_default().to_string()
}

pub fn list(connection: &mut DbConnection) -> Result<Vec<StoredWebhook>, AppError> {
    Ok(webhooks::list(connection)?)
}

/// Deletes the webhook and its pending deliveries (nothing more is sent to it), recorded as
/// `webhook.deleted`.
pub fn delete(connection: &mut DbConnection, id: i64, actor: &Actor, now: DateTime<Utc>) -> Result<(), AppError> {
    write_transaction(connection, |connection| {
        if !webhooks::delete(connection, id)? {
            return Err(not_found(id));
        }
        let event = Event::new(EventType::WebhookDeleted, actor).detail(json!({"webhook_id": id}));
        events::record(connection, event, now)
    })
}

/// The webhook's deliveries, newest first, each with its attempts.
pub fn deliveries(connection: &mut DbConnection, id: i64, limit: Option<i64>) -> Result<Vec<StoredDelivery>, AppError> {
    let limit = limit.unwrap_or(DEFAULT_DELIVERIES);
    if !(1..=MAX_DELIVERIES).contains(&limit) {
        return Err(AppError::invalid_request(format!("limit: between 1 and {MAX_DELIVERIES}")));
    }
    if !webhooks::exists(connection, id)? {
        return Err(not_found(id));
    }
    Ok(webhooks::deliveries(connection, id, limit)?)
}

fn not_found(id: i64) -> AppError {
    AppError::not_found("webhook_not_found", format!("no webhook {id}"))
}
