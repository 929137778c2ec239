//! The `used_jtis` table: one-time JWT ids (client assertions, DPoP proofs) that any instance
//! has seen, kept until they could no longer be accepted anyway.

use chrono::{DateTime, Utc};
use diesel::prelude::*;

use super::schema::used_jtis;
use super::DbConnection;
use super::StorageError;
use crate::secrets::TokenHash;

/// Records a JWT id; false when it was recorded before (a replay). `ON CONFLICT DO NOTHING`
/// rather than a unique violation: on PostgreSQL a violation would abort the transaction the
/// check may run in.
pub fn record_once(
    connection: &mut DbConnection,
    jti_hash: &TokenHash,
    expires_at: DateTime<Utc>,
) -> Result<bool, StorageError> {
    let row = (used_jtis::jti_hash.eq(jti_hash), used_jtis::expires_at.eq(expires_at.naive_utc()));
    // MultiConnection has no ON CONFLICT: each backend writes it itself.
    let inserted = match connection {
        DbConnection::Sqlite(sqlite) => {
            diesel::insert_into(used_jtis::table).values(row).on_conflict_do_nothing().execute(sqlite)?
        }
        DbConnection::Postgresql(pg) => {
            diesel::insert_into(used_jtis::table).values(row).on_conflict_do_nothing().execute(pg)?
        }
    };
    Ok(inserted == 1)
}

/// Deletes the ids whose JWTs have expired; how many.
pub fn prune(connection: &mut DbConnection, now: DateTime<Utc>) -> Result<usize, StorageError> {
    Ok(diesel::delete(used_jtis::table.filter(used_jtis::expires_at.le(now.naive_utc()))).execute(connection)?)
}
