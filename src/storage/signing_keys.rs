//! The `signing_keys` table: the public half of every signing key, for the JWKS.

use chrono::{DateTime, Utc};
use diesel::prelude::*;

use super::columns::{NullableUtcTimestamp, UtcTimestamp};
use super::schema::signing_keys;
use super::DbConnection;
use super::StorageError;

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = signing_keys)]
pub struct PublishedKey {
    pub kid: String,
    pub algorithm: String,
    pub public_key_pem: String,
    #[diesel(deserialize_as = UtcTimestamp)]
    pub created_at: DateTime<Utc>,
    #[diesel(deserialize_as = NullableUtcTimestamp)]
    pub retired_at: Option<DateTime<Utc>>,
}

/// Registers a key as current if it is new, retiring every older key from signing (they stay
/// published). Idempotent: registering a known key changes nothing.
pub fn register_current(
    connection: &mut DbConnection,
    kid: &str,
    public_key_pem: &str,
    now: DateTime<Utc>,
) -> Result<bool, StorageError> {
    match insert_current(connection, kid, public_key_pem, now) {
        // Instances sharing the keys directory that start at the same moment register the
        // same key; on PostgreSQL both may find it unknown, and the later insert fails. The
        // winner's transaction did the same retiring, so the key is registered either way.
        Err(StorageError::UniqueViolation) => Ok(false),
        registered => registered,
    }
}

fn insert_current(
    connection: &mut DbConnection,
    kid: &str,
    public_key_pem: &str,
    now: DateTime<Utc>,
) -> Result<bool, StorageError> {
    super::write_transaction(connection, |connection| {
        let known = signing_keys::table.find(kid).count().get_result::<i64>(connection)? > 0;
        if known {
            return Ok(false);
        }
        diesel::update(
            signing_keys::table.filter(signing_keys::retired_at.is_null()).filter(signing_keys::kid.lt(kid)),
        )
        .set(signing_keys::retired_at.eq(now.naive_utc()))
        .execute(connection)?;
        diesel::insert_into(signing_keys::table)
            .values((
                signing_keys::kid.eq(kid),
                signing_keys::algorithm.eq("ES256"),
                signing_keys::public_key_pem.eq(public_key_pem),
                signing_keys::created_at.eq(now.naive_utc()),
            ))
            .execute(connection)?;
        Ok(true)
    })
}

/// Keys still valid for verification: current ones, and retired ones that may still have
/// signed an unexpired token (`retired_after`).
pub fn published(
    connection: &mut DbConnection,
    retired_after: DateTime<Utc>,
) -> Result<Vec<PublishedKey>, StorageError> {
    Ok(signing_keys::table
        .filter(signing_keys::retired_at.is_null().or(signing_keys::retired_at.gt(retired_after.naive_utc())))
        .order(signing_keys::kid.desc())
        .select(PublishedKey::as_select())
        .load(connection)?)
}

/// Every key ever registered: what a signature may be checked against. Whether the token is
/// still valid is decided by its own stored row, not by the key's age.
pub fn all(connection: &mut DbConnection) -> Result<Vec<PublishedKey>, StorageError> {
    Ok(signing_keys::table.select(PublishedKey::as_select()).load(connection)?)
}
