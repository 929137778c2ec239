//! Webhooks, their subscriptions, and the durable outbox of deliveries (with each attempt).
//!
//! Deliveries are enqueued by [`enqueue`] inside the transaction that records their events
//! (`events::insert`), claimed by the delivery worker with a lease ([`claim_due`]), and closed
//! by [`record_attempt`].

use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Integer, Text, Timestamp};

use super::events::StoredEvent;
use super::schema::{events, webhook_attempts, webhook_deliveries, webhook_subscriptions, webhooks};
use super::{DbConnection, StorageError};
use crate::domain::webhook::{DeliveryState, WebhookRegistration, MAX_PENDING_DELIVERIES};

/// A webhook as the API shows it: never its secret.
#[derive(Debug, Clone, PartialEq, serde::Serialize, utoipa::ToSchema)]
pub struct StoredWebhook {
    pub id: i64,
    pub url: String,
    /// The event types it receives, sorted.
    pub events: Vec<String>,
    pub created_at: DateTime<Utc>,
}

/// One attempt to deliver: the receiver's status, or why there was none.
#[derive(Debug, Clone, PartialEq, serde::Serialize, utoipa::ToSchema)]
pub struct StoredAttempt {
    pub at: DateTime<Utc>,
    pub status: Option<i32>,
    pub error: Option<String>,
}

/// A delivery and its log, newest first in listings.
#[derive(Debug, Clone, PartialEq, serde::Serialize, utoipa::ToSchema)]
pub struct StoredDelivery {
    pub id: i64,
    pub event_id: i64,
    pub event_type: String,
    /// `pending`, `delivered` or `failed`.
    pub state: String,
    pub attempts: i32,
    pub next_attempt_at: Option<DateTime<Utc>>,
    pub last_status: Option<i32>,
    pub last_error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub delivered_at: Option<DateTime<Utc>>,
    /// Every attempt, oldest first.
    pub attempt_log: Vec<StoredAttempt>,
}

/// A delivery the worker claimed: where to send which event, and with which secret. Its
/// `Debug` leaves the secret out, so no log line can carry it.
#[derive(Clone)]
pub struct DueDelivery {
    pub id: i64,
    pub webhook_id: i64,
    pub url: String,
    pub secret: String,
    /// Attempts made before this one.
    pub attempts: i32,
    pub created_at: DateTime<Utc>,
    pub event: StoredEvent,
}

impl std::fmt::Debug for DueDelivery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DueDelivery")
            .field("id", &self.id)
            .field("webhook_id", &self.webhook_id)
            .field("attempts", &self.attempts)
            .field("event_id", &self.event.id)
            .finish_non_exhaustive()
    }
}

/// How an attempt ended, and what follows from it.
#[derive(Debug, Clone)]
pub struct AttemptOutcome {
    pub at: DateTime<Utc>,
    pub status: Option<i32>,
    pub error: Option<String>,
    /// Delivered, tried again at `next_attempt_at`, or given up.
    pub state: DeliveryState,
    pub next_attempt_at: Option<DateTime<Utc>>,
}

pub fn insert(
    connection: &mut DbConnection,
    registration: &WebhookRegistration,
    now: DateTime<Utc>,
) -> Result<StoredWebhook, StorageError> {
    let id: i64 = diesel::insert_into(webhooks::table)
        .values((
            webhooks::url.eq(&registration.url),
            webhooks::secret.eq(&registration.secret),
            webhooks::created_at.eq(now.naive_utc()),
        ))
        .returning(webhooks::id)
        .get_result(connection)?;
    for kind in &registration.events {
        diesel::insert_into(webhook_subscriptions::table)
            .values((webhook_subscriptions::webhook_id.eq(id), webhook_subscriptions::event_type.eq(kind.as_str())))
            .execute(connection)?;
    }
    Ok(StoredWebhook {
        id,
        url: registration.url.clone(),
        events: registration.events.iter().map(|kind| kind.as_str().to_string()).collect(),
        created_at: now,
    })
}

/// Every webhook, oldest first.
pub fn list(connection: &mut DbConnection) -> Result<Vec<StoredWebhook>, StorageError> {
    let rows: Vec<(i64, String, NaiveDateTime)> = webhooks::table
        .select((webhooks::id, webhooks::url, webhooks::created_at))
        .order(webhooks::id)
        .load(connection)?;
    let subscriptions: Vec<(i64, String)> = webhook_subscriptions::table
        .select((webhook_subscriptions::webhook_id, webhook_subscriptions::event_type))
        .order((webhook_subscriptions::webhook_id, webhook_subscriptions::event_type))
        .load(connection)?;
    Ok(rows
        .into_iter()
        .map(|(id, url, created_at)| StoredWebhook {
            id,
            url,
            events: subscriptions.iter().filter(|(of, _)| *of == id).map(|(_, kind)| kind.clone()).collect(),
            created_at: created_at.and_utc(),
        })
        .collect())
}

pub fn exists(connection: &mut DbConnection, id: i64) -> Result<bool, StorageError> {
    Ok(webhooks::table.find(id).select(webhooks::id).first::<i64>(connection).optional()?.is_some())
}

/// Deletes a webhook with its subscriptions and deliveries; `false` if there was none.
pub fn delete(connection: &mut DbConnection, id: i64) -> Result<bool, StorageError> {
    Ok(diesel::delete(webhooks::table.find(id)).execute(connection)? > 0)
}

/// One pending delivery per subscribed webhook for each of the events `event_ids` (just
/// inserted, in the caller's transaction): an event and its deliveries commit together. With
/// no webhook subscribed it is one indexed lookup in an empty (or small) table, so every
/// instance sees a webhook the moment it is committed, with no cache to keep in step. A
/// webhook with [`MAX_PENDING_DELIVERIES`] pending gets none.
pub fn enqueue(connection: &mut DbConnection, event_ids: &[i64], now: DateTime<Utc>) -> Result<usize, StorageError> {
    // By id range: `eq_any` binds an array on PostgreSQL, which MultiConnection's generic path
    // does not carry. The ids of one insert are contiguous; a range that also spans another
    // transaction's events only checks a few more webhooks, as the insert below is by id.
    let subscribers: Vec<i64> = webhook_subscriptions::table
        .inner_join(events::table.on(events::event_type.eq(webhook_subscriptions::event_type)))
        .filter(events::id.ge(event_ids.iter().copied().min().unwrap_or(0)))
        .filter(events::id.le(event_ids.iter().copied().max().unwrap_or(-1)))
        .select(webhook_subscriptions::webhook_id)
        .distinct()
        .load(connection)?;
    let mut full = Vec::new();
    for webhook in subscribers.iter().copied() {
        if pending_at_cap(connection, webhook)? {
            tracing::warn!(
                webhook,
                cap = MAX_PENDING_DELIVERIES,
                "a webhook's outbox is full: new events are not queued for it"
            );
            full.push(webhook);
        }
    }
    if subscribers.len() == full.len() {
        return Ok(0);
    }
    insert_deliveries(connection, event_ids, &full, now)
}

/// Whether the webhook has [`MAX_PENDING_DELIVERIES`] pending: whether a row exists that
/// far into its pending ones (an index range, not a count of them all).
fn pending_at_cap(connection: &mut DbConnection, webhook: i64) -> Result<bool, StorageError> {
    Ok(webhook_deliveries::table
        .filter(webhook_deliveries::webhook_id.eq(webhook))
        .filter(webhook_deliveries::state.eq(DeliveryState::Pending.as_str()))
        .select(webhook_deliveries::id)
        .offset(MAX_PENDING_DELIVERIES - 1)
        .first::<i64>(connection)
        .optional()?
        .is_some())
}

/// The INSERT … SELECT of [`enqueue`], leaving out the webhooks in `full`.
fn insert_deliveries(
    connection: &mut DbConnection,
    event_ids: &[i64],
    full: &[i64],
    now: DateTime<Utc>,
) -> Result<usize, StorageError> {
    let now = now.naive_utc();
    // The same INSERT … SELECT on each backend; `eq_any` binds an array on PostgreSQL, which
    // MultiConnection's generic path does not carry.
    macro_rules! insert_deliveries {
        ($connection:expr, $events:expr) => {
            diesel::insert_into(webhook_deliveries::table)
                .values(
                    events::table
                        .inner_join(
                            webhook_subscriptions::table.on(webhook_subscriptions::event_type.eq(events::event_type)),
                        )
                        .filter($events)
                        .filter(diesel::dsl::not(webhook_subscriptions::webhook_id.eq_any(full)))
                        .select((
                            webhook_subscriptions::webhook_id,
                            events::id,
                            DeliveryState::Pending.as_str().into_sql::<Text>(),
                            0.into_sql::<Integer>(),
                            now.into_sql::<Timestamp>(),
                            now.into_sql::<Timestamp>(),
                        )),
                )
                .into_columns((
                    webhook_deliveries::webhook_id,
                    webhook_deliveries::event_id,
                    webhook_deliveries::state,
                    webhook_deliveries::attempts,
                    webhook_deliveries::next_attempt_at,
                    webhook_deliveries::created_at,
                ))
                .execute($connection)
        };
    }
    let inserted = match (event_ids, connection) {
        ([], _) => 0,
        // The hot paths (a sign-in, a limit running out) record one event: one cached statement.
        ([id], DbConnection::Postgresql(pg)) => insert_deliveries!(pg, events::id.eq(*id))?,
        ([id], DbConnection::Sqlite(sqlite)) => insert_deliveries!(sqlite, events::id.eq(*id))?,
        (ids, DbConnection::Postgresql(pg)) => insert_deliveries!(pg, events::id.eq_any(ids))?,
        (ids, DbConnection::Sqlite(sqlite)) => insert_deliveries!(sqlite, events::id.eq_any(ids))?,
    };
    Ok(inserted)
}

/// Whether a pending delivery is due: a read, so that an idle poll takes no write lock.
pub fn any_due(connection: &mut DbConnection, now: DateTime<Utc>) -> Result<bool, StorageError> {
    Ok(webhook_deliveries::table
        .filter(webhook_deliveries::state.eq(DeliveryState::Pending.as_str()))
        .filter(webhook_deliveries::next_attempt_at.le(now.naive_utc()))
        .select(webhook_deliveries::id)
        .first::<i64>(connection)
        .optional()?
        .is_some())
}

#[derive(QueryableByName)]
struct Claimed {
    #[diesel(sql_type = BigInt)]
    id: i64,
}

/// Claims up to `limit` due deliveries for this worker: their `next_attempt_at` moves to
/// `lease_until`, so no other worker takes them until then, and if this one dies before it
/// records the attempt, they fall due again when the lease runs out (at-least-once). Call it in
/// a short transaction of its own. On PostgreSQL, `FOR UPDATE SKIP LOCKED` lets instances
/// claiming at the same moment take different rows instead of waiting for each other; SQLite
/// has one writer at a time anyway.
pub fn claim_due(
    connection: &mut DbConnection,
    now: DateTime<Utc>,
    lease_until: DateTime<Utc>,
    limit: i64,
) -> Result<Vec<DueDelivery>, StorageError> {
    const CLAIM: &str = "UPDATE webhook_deliveries SET next_attempt_at = $1 WHERE id IN (\
        SELECT id FROM webhook_deliveries WHERE state = 'pending' AND next_attempt_at <= $2 \
        ORDER BY next_attempt_at LIMIT $3";
    let claimed: Vec<Claimed> = match connection {
        DbConnection::Postgresql(pg) => diesel::sql_query(format!("{CLAIM} FOR UPDATE SKIP LOCKED) RETURNING id"))
            .bind::<Timestamp, _>(lease_until.naive_utc())
            .bind::<Timestamp, _>(now.naive_utc())
            .bind::<BigInt, _>(limit)
            .load(pg)?,
        DbConnection::Sqlite(sqlite) => diesel::sql_query(format!("{}) RETURNING id", CLAIM.replace('$', "?")))
            .bind::<Timestamp, _>(lease_until.naive_utc())
            .bind::<Timestamp, _>(now.naive_utc())
            .bind::<BigInt, _>(limit)
            .load(sqlite)?,
    };
    let mut due = Vec::with_capacity(claimed.len());
    for Claimed { id } in claimed {
        let row: Option<(i64, String, String, i32, NaiveDateTime, i64)> = webhook_deliveries::table
            .inner_join(webhooks::table)
            .filter(webhook_deliveries::id.eq(id))
            .select((
                webhook_deliveries::webhook_id,
                webhooks::url,
                webhooks::secret,
                webhook_deliveries::attempts,
                webhook_deliveries::created_at,
                webhook_deliveries::event_id,
            ))
            .first(connection)
            .optional()?;
        let Some((webhook_id, url, secret, attempts, created_at, event_id)) = row else { continue };
        let Some(event) = super::events::find(connection, event_id)? else { continue };
        due.push(DueDelivery { id, webhook_id, url, secret, attempts, created_at: created_at.and_utc(), event });
    }
    Ok(due)
}

/// Logs an attempt and moves the delivery on. Only a pending delivery changes: a late answer
/// for one another worker already delivered (after a lease ran out) leaves it delivered.
/// `false` if the delivery is gone (its webhook was deleted meanwhile) or no longer pending.
pub fn record_attempt(
    connection: &mut DbConnection,
    delivery_id: i64,
    outcome: &AttemptOutcome,
) -> Result<bool, StorageError> {
    let delivered_at = (outcome.state == DeliveryState::Delivered).then(|| outcome.at.naive_utc());
    // A delivered or failed row keeps the time of its last attempt as `next_attempt_at`.
    let next = outcome.next_attempt_at.unwrap_or(outcome.at).naive_utc();
    let updated = diesel::update(
        webhook_deliveries::table
            .filter(webhook_deliveries::id.eq(delivery_id))
            .filter(webhook_deliveries::state.eq(DeliveryState::Pending.as_str())),
    )
    .set((
        webhook_deliveries::state.eq(outcome.state.as_str()),
        webhook_deliveries::attempts.eq(webhook_deliveries::attempts + 1),
        webhook_deliveries::next_attempt_at.eq(next),
        webhook_deliveries::last_status.eq(outcome.status),
        webhook_deliveries::last_error.eq(outcome.error.as_deref()),
        webhook_deliveries::delivered_at.eq(delivered_at),
    ))
    .execute(connection)?;
    if updated == 0 {
        return Ok(false);
    }
    diesel::insert_into(webhook_attempts::table)
        .values((
            webhook_attempts::delivery_id.eq(delivery_id),
            webhook_attempts::attempted_at.eq(outcome.at.naive_utc()),
            webhook_attempts::status.eq(outcome.status),
            webhook_attempts::error.eq(outcome.error.as_deref()),
        ))
        .execute(connection)?;
    Ok(true)
}

type DeliveryRow =
    (i64, i64, String, String, i32, NaiveDateTime, Option<i32>, Option<String>, NaiveDateTime, Option<NaiveDateTime>);

/// A webhook's deliveries, newest first, at most `limit`, each with its attempts.
pub fn deliveries(
    connection: &mut DbConnection,
    webhook_id: i64,
    limit: i64,
) -> Result<Vec<StoredDelivery>, StorageError> {
    let rows: Vec<DeliveryRow> = webhook_deliveries::table
        .inner_join(events::table)
        .filter(webhook_deliveries::webhook_id.eq(webhook_id))
        .order(webhook_deliveries::id.desc())
        .limit(limit)
        .select((
            webhook_deliveries::id,
            webhook_deliveries::event_id,
            events::event_type,
            webhook_deliveries::state,
            webhook_deliveries::attempts,
            webhook_deliveries::next_attempt_at,
            webhook_deliveries::last_status,
            webhook_deliveries::last_error,
            webhook_deliveries::created_at,
            webhook_deliveries::delivered_at,
        ))
        .load(connection)?;
    let mut deliveries = Vec::with_capacity(rows.len());
    for (id, event_id, event_type, state, attempts, next, last_status, last_error, created_at, delivered_at) in rows {
        let attempt_log: Vec<(NaiveDateTime, Option<i32>, Option<String>)> = webhook_attempts::table
            .filter(webhook_attempts::delivery_id.eq(id))
            .order(webhook_attempts::id)
            .select((webhook_attempts::attempted_at, webhook_attempts::status, webhook_attempts::error))
            .load(connection)?;
        let pending = DeliveryState::parse(&state) == Some(DeliveryState::Pending);
        deliveries.push(StoredDelivery {
            id,
            event_id,
            event_type,
            state,
            attempts,
            next_attempt_at: pending.then(|| next.and_utc()),
            last_status,
            last_error,
            created_at: created_at.and_utc(),
            delivered_at: delivered_at.map(|at| at.and_utc()),
            attempt_log: attempt_log
                .into_iter()
                .map(|(at, status, error)| StoredAttempt { at: at.and_utc(), status, error })
                .collect(),
        });
    }
    Ok(deliveries)
}
