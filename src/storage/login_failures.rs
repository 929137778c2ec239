//! The `login_failures` table: failed sign-in attempts, counted by the sign-in throttle per
//! username and per client address.

use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::connection::SimpleConnection;
use diesel::dsl::{count_star, max};
use diesel::prelude::*;
use sha2::{Digest, Sha256};

use super::schema::login_failures;
use super::DbConnection;
use super::StorageError;
use crate::domain::sign_in_throttle::RecentFailures;

/// An arbitrary constant naming the sign-in throttle's PostgreSQL advisory locks (the first
/// key of the two-key form); the second key is a hash of the username or address.
const THROTTLE_LOCK_CLASS: i32 = 0x5c09_7e01;

/// The failures for `username` and those from `address` at or after `since`.
pub fn recent(
    connection: &mut DbConnection,
    username: &str,
    address: &str,
    since: DateTime<Utc>,
) -> Result<(RecentFailures, RecentFailures), StorageError> {
    let since = since.naive_utc();
    let by_username: (i64, Option<NaiveDateTime>) = login_failures::table
        .filter(login_failures::username.eq(username))
        .filter(login_failures::failed_at.ge(since))
        .select((count_star(), max(login_failures::failed_at)))
        .first(connection)?;
    let by_address: (i64, Option<NaiveDateTime>) = login_failures::table
        .filter(login_failures::address.eq(address))
        .filter(login_failures::failed_at.ge(since))
        .select((count_star(), max(login_failures::failed_at)))
        .first(connection)?;
    let recent = |(count, latest): (i64, Option<NaiveDateTime>)| RecentFailures {
        count,
        latest: latest.map(|latest| latest.and_utc()),
    };
    Ok((recent(by_username), recent(by_address)))
}

pub fn record(
    connection: &mut DbConnection,
    username: &str,
    address: &str,
    at: DateTime<Utc>,
) -> Result<(), StorageError> {
    diesel::insert_into(login_failures::table)
        .values((
            login_failures::username.eq(username),
            login_failures::address.eq(address),
            login_failures::failed_at.eq(at.naive_utc()),
        ))
        .execute(connection)?;
    Ok(())
}

/// Forgets the failures of `username` from `address` (after a sign-in from there succeeded).
pub fn forget(connection: &mut DbConnection, username: &str, address: &str) -> Result<usize, StorageError> {
    Ok(diesel::delete(
        login_failures::table.filter(login_failures::username.eq(username)).filter(login_failures::address.eq(address)),
    )
    .execute(connection)?)
}

/// Within the current transaction, waits until no other transaction checks or records an
/// attempt for this username or address (PostgreSQL advisory locks, released at commit). On
/// SQLite there is nothing to do: its writes run one at a time anyway. Without it, concurrent
/// attempts on several connections would all read the same count and all be let through.
pub fn serialize_attempts(connection: &mut DbConnection, username: &str, address: &str) -> Result<(), StorageError> {
    let DbConnection::Postgresql(pg) = connection else {
        return Ok(());
    };
    let mut keys = [lock_key("username", username), lock_key("address", address)];
    // Always in the same order, so two transactions never wait for each other's second lock.
    keys.sort_unstable();
    pg.batch_execute(&format!(
        "SELECT pg_advisory_xact_lock({THROTTLE_LOCK_CLASS}, {}); SELECT pg_advisory_xact_lock({THROTTLE_LOCK_CLASS}, {});",
        keys[0], keys[1]
    ))?;
    Ok(())
}

/// A stable 32-bit key for a username or address. Two values sharing a key only wait for
/// each other.
fn lock_key(kind: &str, value: &str) -> i32 {
    let digest = Sha256::new().chain_update(kind).chain_update([0]).chain_update(value).finalize();
    i32::from_be_bytes([digest[0], digest[1], digest[2], digest[3]])
}

/// Failures older than `before` no longer count: they go.
pub fn prune(connection: &mut DbConnection, before: DateTime<Utc>) -> Result<usize, StorageError> {
    Ok(diesel::delete(login_failures::table.filter(login_failures::failed_at.lt(before.naive_utc())))
        .execute(connection)?)
}
