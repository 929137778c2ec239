//! The `events` table: the audit trail.

use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::prelude::*;

use super::schema::events;
use super::{DbConnection, StorageError};
use crate::domain::event::Event;

/// An event as stored, newest first in listings.
#[derive(Debug, Clone, PartialEq, serde::Serialize, utoipa::ToSchema)]
pub struct StoredEvent {
    pub id: i64,
    pub at: DateTime<Utc>,
    #[serde(rename = "type")]
    pub kind: String,
    pub actor: String,
    pub client_id: Option<String>,
    pub username: Option<String>,
    pub scope: Option<String>,
    #[schema(value_type = Object)]
    pub detail: serde_json::Value,
}

type Row = (i64, NaiveDateTime, String, String, Option<String>, Option<String>, Option<String>, String);

impl From<Row> for StoredEvent {
    fn from((id, at, kind, actor, client_id, username, scope, detail): Row) -> Self {
        // Stored by `record` from a serde_json value, so it parses; a hand-edited row shows as text.
        let detail = serde_json::from_str(&detail).unwrap_or(serde_json::Value::String(detail));
        Self { id, at: at.and_utc(), kind, actor, client_id, username, scope, detail }
    }
}

/// Which events a listing wants; every field narrows it.
#[derive(Debug, Clone, Default)]
pub struct EventFilter {
    pub kind: Option<String>,
    pub username: Option<String>,
    pub client_id: Option<String>,
    pub scope: Option<String>,
    pub since: Option<DateTime<Utc>>,
    /// Only events older than this id (the cursor of the previous page).
    pub before_id: Option<i64>,
    pub limit: i64,
}

#[derive(Insertable)]
#[diesel(table_name = events)]
struct NewEvent<'a> {
    at: NaiveDateTime,
    event_type: &'a str,
    actor: String,
    client_id: Option<&'a str>,
    username: Option<&'a str>,
    scope: Option<&'a str>,
    detail: String,
}

impl<'a> NewEvent<'a> {
    fn of(event: &'a Event, at: DateTime<Utc>) -> Self {
        Self {
            at: at.naive_utc(),
            event_type: event.kind.as_str(),
            actor: event.actor.label(),
            client_id: event.client_id.as_deref(),
            username: event.username.as_deref(),
            scope: event.scope.as_deref(),
            detail: event.detail.to_string(),
        }
    }
}

/// Rows per INSERT for many events at once (a scope import); well under both backends'
/// parameter limits.
const CHUNK: usize = 500;

/// Inserts `events` at `at`, and with each one a pending delivery for every webhook subscribed
/// to its type (`webhooks::enqueue`): the ONE place events are written, always inside the
/// transaction of the change they record, so an event and its deliveries commit or roll back
/// with it.
pub fn insert(connection: &mut DbConnection, events: &[Event], at: DateTime<Utc>) -> Result<(), StorageError> {
    for chunk in events.chunks(CHUNK) {
        let rows: Vec<NewEvent<'_>> = chunk.iter().map(|event| NewEvent::of(event, at)).collect();
        // Multi-row INSERT exists on both backends but not through MultiConnection's generic path.
        let ids: Vec<i64> = match connection {
            DbConnection::Postgresql(pg) => {
                diesel::insert_into(events::table).values(&rows).returning(events::id).get_results(pg)?
            }
            DbConnection::Sqlite(sqlite) => {
                diesel::insert_into(events::table).values(&rows).returning(events::id).get_results(sqlite)?
            }
        };
        super::webhooks::enqueue(connection, &ids, at)?;
    }
    Ok(())
}

/// One event by id, as listings show it (and as a webhook delivers it).
pub fn find(connection: &mut DbConnection, id: i64) -> Result<Option<StoredEvent>, StorageError> {
    let row: Option<Row> = events::table
        .find(id)
        .select((
            events::id,
            events::at,
            events::event_type,
            events::actor,
            events::client_id,
            events::username,
            events::scope,
            events::detail,
        ))
        .first(connection)
        .optional()?;
    Ok(row.map(StoredEvent::from))
}

/// Newest first, at most `filter.limit`.
pub fn list(connection: &mut DbConnection, filter: &EventFilter) -> Result<Vec<StoredEvent>, StorageError> {
    let mut query = events::table
        .select((
            events::id,
            events::at,
            events::event_type,
            events::actor,
            events::client_id,
            events::username,
            events::scope,
            events::detail,
        ))
        .order(events::id.desc())
        .limit(filter.limit)
        .into_boxed();
    if let Some(kind) = &filter.kind {
        query = query.filter(events::event_type.eq(kind.clone()));
    }
    if let Some(username) = &filter.username {
        query = query.filter(events::username.eq(username.clone()));
    }
    if let Some(client_id) = &filter.client_id {
        query = query.filter(events::client_id.eq(client_id.clone()));
    }
    if let Some(scope) = &filter.scope {
        query = query.filter(events::scope.eq(scope.clone()));
    }
    if let Some(since) = filter.since {
        query = query.filter(events::at.ge(since.naive_utc()));
    }
    if let Some(before) = filter.before_id {
        query = query.filter(events::id.lt(before));
    }
    let rows: Vec<Row> = query.load(connection)?;
    Ok(rows.into_iter().map(StoredEvent::from).collect())
}

/// Deletes events older than `before` (the retention period).
pub fn prune(connection: &mut DbConnection, before: DateTime<Utc>) -> Result<usize, StorageError> {
    Ok(diesel::delete(events::table.filter(events::at.lt(before.naive_utc()))).execute(connection)?)
}
