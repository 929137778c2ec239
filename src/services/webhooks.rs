//! Webhooks for administrators: register a receiver, list, delete, read its delivery log.
//! Delivering is `webhook_delivery`'s work.

use chrono::{DateTime, Utc};

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

/// Stores the webhook; events recorded from its commit on are delivered to it, on every
/// instance.
pub fn create(
    connection: &mut DbConnection,
    registration: &WebhookRegistration,
    now: DateTime<Utc>,
) -> Result<StoredWebhook, AppError> {
    write_transaction(connection, |connection| Ok(webhooks::insert(connection, registration, now)?))
}

pub fn list(connection: &mut DbConnection) -> Result<Vec<StoredWebhook>, AppError> {
    Ok(webhooks::list(connection)?)
}

/// Deletes the webhook and its pending deliveries: nothing more is sent to it.
pub fn delete(connection: &mut DbConnection, id: i64) -> Result<(), AppError> {
    if !write_transaction(connection, |connection| webhooks::delete(connection, id))? {
        return Err(not_found(id));
    }
    Ok(())
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
