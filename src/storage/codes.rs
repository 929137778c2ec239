//! The `authorization_codes` table: single-use codes, stored as keyed hashes.

use chrono::{DateTime, Utc};
use diesel::prelude::*;

use super::columns::{NullableUtcTimestamp, UtcTimestamp};
use super::schema::authorization_codes;
use super::DbConnection;
use super::StorageError;
use crate::secrets::TokenHash;

#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable, Insertable)]
#[diesel(table_name = authorization_codes)]
pub struct CodeRow {
    pub code_hash: TokenHash,
    pub client_id: String,
    pub user_id: String,
    pub redirect_uri: String,
    pub scope: String,
    /// oxide-auth's grant extensions (the PKCE challenge), as a JSON object.
    pub extensions: String,
    #[diesel(serialize_as = UtcTimestamp, deserialize_as = UtcTimestamp)]
    pub created_at: DateTime<Utc>,
    #[diesel(serialize_as = UtcTimestamp, deserialize_as = UtcTimestamp)]
    pub expires_at: DateTime<Utc>,
    #[diesel(serialize_as = NullableUtcTimestamp, deserialize_as = NullableUtcTimestamp)]
    pub used_at: Option<DateTime<Utc>>,
    pub family_id: Option<String>,
    /// The consent the code was issued under: revoking it deletes the code.
    pub consent_id: Option<String>,
}

pub fn insert(connection: &mut DbConnection, row: CodeRow) -> Result<(), StorageError> {
    diesel::insert_into(authorization_codes::table).values(row).execute(connection)?;
    Ok(())
}

/// What presenting a code found.
pub enum Redemption {
    /// First use of a live code: it is now spent.
    Redeemed(CodeRow),
    /// The code was used before: a replay. Carries the row so its tokens can be revoked.
    Replayed(CodeRow),
    /// Unknown or expired.
    Invalid,
}

/// Spends a code. The conditional UPDATE makes exactly one of two concurrent redemptions win.
pub fn redeem(
    connection: &mut DbConnection,
    code_hash: &TokenHash,
    now: DateTime<Utc>,
) -> Result<Redemption, StorageError> {
    let spent = diesel::update(
        authorization_codes::table
            .find(code_hash)
            .filter(authorization_codes::used_at.is_null())
            .filter(authorization_codes::expires_at.gt(now.naive_utc())),
    )
    .set(authorization_codes::used_at.eq(now.naive_utc()))
    .execute(connection)?;
    let row = authorization_codes::table.find(code_hash).select(CodeRow::as_select()).first(connection).optional()?;
    Ok(match (spent, row) {
        (1, Some(row)) => Redemption::Redeemed(row),
        (_, Some(row)) if row.used_at.is_some() => Redemption::Replayed(row),
        _ => Redemption::Invalid,
    })
}

/// Links the code to the refresh family its tokens belong to, so a replay can end them.
pub fn set_family(connection: &mut DbConnection, code_hash: &TokenHash, family_id: &str) -> Result<(), StorageError> {
    diesel::update(authorization_codes::table.find(code_hash))
        .set(authorization_codes::family_id.eq(family_id))
        .execute(connection)?;
    Ok(())
}

/// Codes live a minute; a day later even their replay record is of no use.
pub fn prune(connection: &mut DbConnection, expired_before: DateTime<Utc>) -> Result<usize, StorageError> {
    Ok(diesel::delete(
        authorization_codes::table.filter(authorization_codes::expires_at.lt(expired_before.naive_utc())),
    )
    .execute(connection)?)
}
