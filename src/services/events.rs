//! Audit events: recording them inside the caller's transaction, listing them page by page,
//! and forgetting them after the retention period.

use chrono::{DateTime, Duration, Utc};

use crate::domain::event::{Event, EventType};
use crate::error::AppError;
use crate::storage::events::{self, EventFilter, StoredEvent};
use crate::storage::DbConnection;

pub const DEFAULT_PAGE: i64 = 50;
pub const MAX_PAGE: i64 = 500;

/// Records one event on `connection`. Call it inside the transaction of the change it records:
/// if the change rolls back, so does its event.
pub fn record(connection: &mut DbConnection, event: Event, now: DateTime<Utc>) -> Result<(), AppError> {
    record_all(connection, vec![event], now)
}

/// As [`record`], for many at once (one INSERT per few hundred).
pub fn record_all(connection: &mut DbConnection, events: Vec<Event>, now: DateTime<Utc>) -> Result<(), AppError> {
    events::insert(connection, &events, now)?;
    Ok(())
}

/// `GET /admin/v1/events` and the console's events page ask in these terms.
#[derive(Debug, Clone, Default, serde::Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct EventQuery {
    /// One event type, e.g. `consent.granted`.
    #[serde(rename = "type")]
    pub kind: Option<String>,
    pub username: Option<String>,
    pub client_id: Option<String>,
    pub scope: Option<String>,
    /// RFC 3339; only events at or after it.
    pub since: Option<String>,
    /// 1–500, default 50.
    pub limit: Option<i64>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// One page, newest first; `next_cursor` is absent on the last page.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct EventPage {
    pub events: Vec<StoredEvent>,
    pub next_cursor: Option<String>,
}

pub fn list(connection: &mut DbConnection, query: EventQuery) -> Result<EventPage, AppError> {
    let kind = match query.kind.filter(|kind| !kind.is_empty()) {
        Some(kind) if EventType::parse(&kind).is_none() => {
            return Err(AppError::invalid_request(format!("type: unknown event type {kind:?}")));
        }
        kind => kind,
    };
    let since = match query.since.filter(|since| !since.is_empty()) {
        Some(since) => Some(
            DateTime::parse_from_rfc3339(&since)
                .map_err(|_| AppError::invalid_request(format!("since: {since:?} is not an RFC 3339 time")))?
                .with_timezone(&Utc),
        ),
        None => None,
    };
    let limit = query.limit.unwrap_or(DEFAULT_PAGE);
    if !(1..=MAX_PAGE).contains(&limit) {
        return Err(AppError::invalid_request(format!("limit: between 1 and {MAX_PAGE}")));
    }
    let before_id = match query.cursor.filter(|cursor| !cursor.is_empty()) {
        Some(cursor) => Some(
            cursor
                .parse::<i64>()
                .ok()
                .filter(|id| *id > 0)
                .ok_or_else(|| AppError::invalid_request("cursor: not a cursor this server gave out"))?,
        ),
        None => None,
    };
    let filter = EventFilter {
        kind,
        username: query.username.filter(|value| !value.is_empty()),
        client_id: query.client_id.filter(|value| !value.is_empty()),
        scope: query.scope.filter(|value| !value.is_empty()),
        since,
        before_id,
        // One more than asked tells whether another page follows.
        limit: limit + 1,
    };
    let mut events = events::list(connection, &filter)?;
    let next_cursor = if events.len() as i64 > limit {
        events.truncate(limit as usize);
        events.last().map(|event| event.id.to_string())
    } else {
        None
    };
    Ok(EventPage { events, next_cursor })
}

/// Deletes events older than `retention_days`.
pub fn prune(connection: &mut DbConnection, now: DateTime<Utc>, retention_days: i64) -> Result<usize, AppError> {
    Ok(events::prune(connection, now - Duration::days(retention_days))?)
}
