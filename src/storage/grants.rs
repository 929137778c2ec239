//! The `grants` table: one consent per (subject, client, scope), with the start of its
//! duration and its access count.

use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::prelude::*;

use super::schema::grants;
use super::{is_unique_violation, DbConnection};
use crate::error::AppError;

#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable)]
#[diesel(table_name = grants)]
pub struct GrantRow {
    pub id: i64,
    pub subject: String,
    pub user_id: Option<String>,
    pub client_id: String,
    pub scope_name: String,
    pub granted_at: NaiveDateTime,
    pub expires_at: Option<NaiveDateTime>,
    pub access_count: i64,
}

/// A new consent to one scope.
pub struct NewGrant<'a> {
    pub subject: &'a str,
    pub user_id: Option<&'a str>,
    pub client_id: &'a str,
    pub scope_name: &'a str,
    pub granted_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
}

/// Records the grant unless one exists for (subject, client, scope). Runs in a savepoint so a
/// concurrent insert of the same grant on PostgreSQL does not abort the caller's transaction.
pub fn insert_if_missing(connection: &mut DbConnection, grant: &NewGrant<'_>) -> Result<bool, AppError> {
    let inserted = connection.transaction(|connection| {
        diesel::insert_into(grants::table)
            .values((
                grants::subject.eq(grant.subject),
                grants::user_id.eq(grant.user_id),
                grants::client_id.eq(grant.client_id),
                grants::scope_name.eq(grant.scope_name),
                grants::granted_at.eq(grant.granted_at.naive_utc()),
                grants::expires_at.eq(grant.expires_at.map(|t| t.naive_utc())),
                grants::access_count.eq(0i64),
            ))
            .execute(connection)
    });
    match inserted {
        Ok(_) => Ok(true),
        Err(error) if is_unique_violation(&error) => Ok(false),
        Err(error) => Err(error.into()),
    }
}

/// Starts the grant anew, or records it: a fresh consent restarts the duration and the count.
pub fn restart(connection: &mut DbConnection, grant: &NewGrant<'_>) -> Result<(), AppError> {
    let updated = diesel::update(
        grants::table
            .filter(grants::subject.eq(grant.subject))
            .filter(grants::client_id.eq(grant.client_id))
            .filter(grants::scope_name.eq(grant.scope_name)),
    )
    .set((
        grants::granted_at.eq(grant.granted_at.naive_utc()),
        grants::expires_at.eq(grant.expires_at.map(|t| t.naive_utc())),
        grants::access_count.eq(0i64),
    ))
    .execute(connection)?;
    if updated == 0 {
        insert_if_missing(connection, grant)?;
    }
    Ok(())
}

/// Restarts an existing grant only (an admin's re-assignment); a scope never issued yet gets
/// its grant at first issuance.
pub fn restart_existing(
    connection: &mut DbConnection,
    subject: &str,
    client_id: &str,
    scope_name: &str,
    now: DateTime<Utc>,
    expires_at: Option<DateTime<Utc>>,
) -> Result<usize, AppError> {
    Ok(diesel::update(
        grants::table
            .filter(grants::subject.eq(subject))
            .filter(grants::client_id.eq(client_id))
            .filter(grants::scope_name.eq(scope_name)),
    )
    .set((
        grants::granted_at.eq(now.naive_utc()),
        grants::expires_at.eq(expires_at.map(|t| t.naive_utc())),
        grants::access_count.eq(0i64),
    ))
    .execute(connection)?)
}

pub fn for_subject_and_client(
    connection: &mut DbConnection,
    subject: &str,
    client_id: &str,
) -> Result<Vec<GrantRow>, AppError> {
    Ok(grants::table
        .filter(grants::subject.eq(subject))
        .filter(grants::client_id.eq(client_id))
        .select(GrantRow::as_select())
        .load(connection)?)
}

/// Counts one access against a grant if it has any left: a single conditional UPDATE, so
/// under any concurrency, on either backend and from any number of instances, at most `max`
/// calls succeed. Returns the new count, or None when the grant was already exhausted.
pub fn count_access(connection: &mut DbConnection, grant_id: i64, max: i64) -> Result<Option<i64>, AppError> {
    let _gate = super::SqliteWriteGate::for_connection(connection);
    Ok(diesel::update(grants::table.find(grant_id).filter(grants::access_count.lt(max)))
        .set(grants::access_count.eq(grants::access_count + 1))
        .returning(grants::access_count)
        .get_result(connection)
        .optional()?)
}

/// Grants filtered by user and/or client, for the admin listing and the account page.
pub fn list(
    connection: &mut DbConnection,
    user_id: Option<&str>,
    client_id: Option<&str>,
) -> Result<Vec<GrantRow>, AppError> {
    let mut query = grants::table.select(GrantRow::as_select()).order(grants::id.asc()).into_boxed();
    if let Some(user_id) = user_id {
        query = query.filter(grants::user_id.eq(user_id));
    }
    if let Some(client_id) = client_id {
        query = query.filter(grants::client_id.eq(client_id));
    }
    Ok(query.load(connection)?)
}

pub fn delete_for_client_subject(
    connection: &mut DbConnection,
    client_id: &str,
    subject: &str,
) -> Result<usize, AppError> {
    Ok(diesel::delete(grants::table.filter(grants::client_id.eq(client_id)).filter(grants::subject.eq(subject)))
        .execute(connection)?)
}
