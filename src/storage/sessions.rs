//! The `sessions` table: signed-in browser sessions, found by the keyed hash of the id the
//! cookie carries.

use chrono::{DateTime, Utc};
use diesel::prelude::*;

use super::columns::UtcTimestamp;
use super::schema::{sessions, users};
use super::users::UserRow;
use super::DbConnection;
use super::StorageError;
use crate::domain::user::User;
use crate::secrets::TokenHash;

#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable, Insertable)]
#[diesel(table_name = sessions)]
pub struct SessionRow {
    pub id_hash: TokenHash,
    pub user_id: String,
    #[diesel(serialize_as = UtcTimestamp, deserialize_as = UtcTimestamp)]
    pub created_at: DateTime<Utc>,
    /// The last request seen, as of the last time it was written (at most once a minute).
    #[diesel(serialize_as = UtcTimestamp, deserialize_as = UtcTimestamp)]
    pub last_seen_at: DateTime<Utc>,
}

pub fn insert(connection: &mut DbConnection, row: SessionRow) -> Result<(), StorageError> {
    diesel::insert_into(sessions::table).values(row).execute(connection)?;
    Ok(())
}

/// The session and its user, in one query.
pub fn find(connection: &mut DbConnection, id_hash: &TokenHash) -> Result<Option<(SessionRow, User)>, StorageError> {
    let found = sessions::table
        .inner_join(users::table)
        .filter(sessions::id_hash.eq(id_hash))
        .select((SessionRow::as_select(), UserRow::as_select()))
        .first::<(SessionRow, UserRow)>(connection)
        .optional()?;
    Ok(found.map(|(session, user)| (session, User::from(user))))
}

/// Records activity. Conditional, so that of two instances touching one session the later
/// time stays.
pub fn touch(connection: &mut DbConnection, id_hash: &TokenHash, now: DateTime<Utc>) -> Result<(), StorageError> {
    diesel::update(sessions::table.find(id_hash).filter(sessions::last_seen_at.lt(now.naive_utc())))
        .set(sessions::last_seen_at.eq(now.naive_utc()))
        .execute(connection)?;
    Ok(())
}

/// Ends the session; whether it existed.
pub fn delete(connection: &mut DbConnection, id_hash: &TokenHash) -> Result<bool, StorageError> {
    Ok(diesel::delete(sessions::table.find(id_hash)).execute(connection)? > 0)
}

/// Deletes the sessions idle since before `idle_before` or started before `started_before`.
pub fn prune(
    connection: &mut DbConnection,
    idle_before: DateTime<Utc>,
    started_before: DateTime<Utc>,
) -> Result<usize, StorageError> {
    Ok(diesel::delete(sessions::table.filter(
        sessions::last_seen_at.lt(idle_before.naive_utc()).or(sessions::created_at.lt(started_before.naive_utc())),
    ))
    .execute(connection)?)
}
