//! The `access_tokens`, `refresh_tokens` and `refresh_families` tables. Opaque tokens are
//! found by their keyed hash, JWTs by their `jti`; nothing is stored in clear.

use chrono::{DateTime, Utc};
use diesel::prelude::*;

use super::columns::{NullableUtcTimestamp, TextEnum, UtcTimestamp};
use super::schema::{access_tokens, refresh_families, refresh_tokens};
use super::DbConnection;
use super::StorageError;
use crate::domain::client::TokenFormat;
use crate::secrets::TokenHash;

#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable, Insertable)]
#[diesel(table_name = access_tokens)]
pub struct AccessTokenRow {
    pub jti: String,
    /// Opaque tokens only; a JWT is found by its `jti`.
    pub token_hash: Option<TokenHash>,
    #[diesel(serialize_as = TextEnum<TokenFormat>, deserialize_as = TextEnum<TokenFormat>)]
    pub format: TokenFormat,
    pub client_id: String,
    pub subject: String,
    pub user_id: Option<String>,
    /// Space-delimited granted scope names.
    pub scope: String,
    pub family_id: Option<String>,
    #[diesel(serialize_as = UtcTimestamp, deserialize_as = UtcTimestamp)]
    pub issued_at: DateTime<Utc>,
    #[diesel(serialize_as = UtcTimestamp, deserialize_as = UtcTimestamp)]
    pub expires_at: DateTime<Utc>,
    #[diesel(serialize_as = NullableUtcTimestamp, deserialize_as = NullableUtcTimestamp)]
    pub revoked_at: Option<DateTime<Utc>>,
    pub consent_id: Option<String>,
    /// The thumbprint of the key a DPoP-bound token is bound to (`cnf.jkt`).
    pub dpop_jkt: Option<String>,
}

impl AccessTokenRow {
    pub fn is_active(&self, now: DateTime<Utc>) -> bool {
        self.revoked_at.is_none() && self.expires_at > now
    }
}

pub fn insert_access_token(connection: &mut DbConnection, row: AccessTokenRow) -> Result<(), StorageError> {
    diesel::insert_into(access_tokens::table).values(row).execute(connection)?;
    Ok(())
}

/// How storing an issued token fared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recorded {
    Stored,
    /// The token's consent was deleted after the request read it (a revocation racing the
    /// issuance): nothing was stored, and the request must start over to meet the revocation.
    ConsentGone,
}

/// Stores an issued token's row unless its consent has gone. On PostgreSQL the consent is
/// read with a key-share lock (`grants::find_consent`), so a revocation waits for this
/// transaction and then ends the token too.
pub fn insert_under_consent(connection: &mut DbConnection, row: AccessTokenRow) -> Result<Recorded, StorageError> {
    if let Some(consent_id) = &row.consent_id {
        if super::grants::find_consent(connection, consent_id)?.is_none() {
            return Ok(Recorded::ConsentGone);
        }
    }
    insert_access_token(connection, row)?;
    Ok(Recorded::Stored)
}

pub fn find_access_by_jti(connection: &mut DbConnection, jti: &str) -> Result<Option<AccessTokenRow>, StorageError> {
    Ok(access_tokens::table.find(jti).select(AccessTokenRow::as_select()).first(connection).optional()?)
}

pub fn find_access_by_hash(
    connection: &mut DbConnection,
    token_hash: &TokenHash,
) -> Result<Option<AccessTokenRow>, StorageError> {
    Ok(access_tokens::table
        .filter(access_tokens::token_hash.eq(token_hash))
        .select(AccessTokenRow::as_select())
        .first(connection)
        .optional()?)
}

/// Whether this call revoked it (false when it already was).
pub fn revoke_access_token(connection: &mut DbConnection, jti: &str, now: DateTime<Utc>) -> Result<bool, StorageError> {
    let changed = diesel::update(access_tokens::table.find(jti).filter(access_tokens::revoked_at.is_null()))
        .set(access_tokens::revoked_at.eq(now.naive_utc()))
        .execute(connection)?;
    Ok(changed > 0)
}

/// Revokes a whole family: its refresh tokens stop working and its access tokens introspect
/// inactive. Whether this call revoked the family (false when it already was).
pub fn revoke_family(connection: &mut DbConnection, family_id: &str, now: DateTime<Utc>) -> Result<bool, StorageError> {
    let changed =
        diesel::update(refresh_families::table.find(family_id).filter(refresh_families::revoked_at.is_null()))
            .set(refresh_families::revoked_at.eq(now.naive_utc()))
            .execute(connection)?;
    diesel::update(
        access_tokens::table.filter(access_tokens::family_id.eq(family_id)).filter(access_tokens::revoked_at.is_null()),
    )
    .set(access_tokens::revoked_at.eq(now.naive_utc()))
    .execute(connection)?;
    Ok(changed > 0)
}

#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable, Insertable)]
#[diesel(table_name = refresh_families)]
pub struct RefreshFamilyRow {
    pub id: String,
    pub client_id: String,
    pub subject: String,
    pub user_id: Option<String>,
    pub scope: String,
    #[diesel(serialize_as = UtcTimestamp, deserialize_as = UtcTimestamp)]
    pub created_at: DateTime<Utc>,
    #[diesel(serialize_as = NullableUtcTimestamp, deserialize_as = NullableUtcTimestamp)]
    pub revoked_at: Option<DateTime<Utc>>,
    pub consent_id: Option<String>,
    /// A public client's refresh tokens are bound to this key (RFC 9449 §5): each refresh
    /// needs a proof by it.
    pub dpop_jkt: Option<String>,
}

pub fn insert_family(connection: &mut DbConnection, row: RefreshFamilyRow) -> Result<(), StorageError> {
    diesel::insert_into(refresh_families::table).values(row).execute(connection)?;
    Ok(())
}

pub fn find_family(connection: &mut DbConnection, id: &str) -> Result<Option<RefreshFamilyRow>, StorageError> {
    Ok(refresh_families::table.find(id).select(RefreshFamilyRow::as_select()).first(connection).optional()?)
}

/// The family a refresh token rotates in. On PostgreSQL the read locks the family row until
/// the rotation's transaction ends, so a concurrent `revoke_family` (a reuse elsewhere, an
/// RFC 7009 revoke) waits for the rotation and then revokes the pair it issued too, and a
/// rotation that comes after it reads the family revoked. The lock is the one `revoke_family`'s
/// update takes itself (`FOR NO KEY UPDATE`), so two reuses of one token queue rather than
/// deadlock upgrading a shared lock; token inserts' foreign-key checks pass it. SQLite write
/// transactions run one at a time.
pub fn find_family_for_rotation(
    connection: &mut DbConnection,
    id: &str,
) -> Result<Option<RefreshFamilyRow>, StorageError> {
    let family = refresh_families::table.find(id);
    Ok(match connection {
        DbConnection::Postgresql(pg) => {
            family.select(RefreshFamilyRow::as_select()).for_no_key_update().first(pg).optional()?
        }
        DbConnection::Sqlite(sqlite) => family.select(RefreshFamilyRow::as_select()).first(sqlite).optional()?,
    })
}

#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable, Insertable)]
#[diesel(table_name = refresh_tokens)]
pub struct RefreshTokenRow {
    pub token_hash: TokenHash,
    pub family_id: String,
    pub scope: String,
    #[diesel(serialize_as = UtcTimestamp, deserialize_as = UtcTimestamp)]
    pub issued_at: DateTime<Utc>,
    #[diesel(serialize_as = UtcTimestamp, deserialize_as = UtcTimestamp)]
    pub expires_at: DateTime<Utc>,
    #[diesel(serialize_as = NullableUtcTimestamp, deserialize_as = NullableUtcTimestamp)]
    pub used_at: Option<DateTime<Utc>>,
}

pub fn insert_refresh_token(connection: &mut DbConnection, row: RefreshTokenRow) -> Result<(), StorageError> {
    diesel::insert_into(refresh_tokens::table).values(row).execute(connection)?;
    Ok(())
}

pub fn find_refresh_token(
    connection: &mut DbConnection,
    token_hash: &TokenHash,
) -> Result<Option<RefreshTokenRow>, StorageError> {
    Ok(refresh_tokens::table.find(token_hash).select(RefreshTokenRow::as_select()).first(connection).optional()?)
}

/// Marks a refresh token spent. Conditional, so of two concurrent uses exactly one wins;
/// returns whether this call did.
pub fn spend_refresh_token(
    connection: &mut DbConnection,
    token_hash: &TokenHash,
    now: DateTime<Utc>,
) -> Result<bool, StorageError> {
    Ok(diesel::update(refresh_tokens::table.find(token_hash).filter(refresh_tokens::used_at.is_null()))
        .set(refresh_tokens::used_at.eq(now.naive_utc()))
        .execute(connection)?
        == 1)
}

/// Deletes access tokens that expired more than `grace` ago: the revocation list only needs
/// tokens that could still be presented.
pub fn prune_expired(connection: &mut DbConnection, before: DateTime<Utc>) -> Result<usize, StorageError> {
    Ok(diesel::delete(access_tokens::table.filter(access_tokens::expires_at.lt(before.naive_utc())))
        .execute(connection)?)
}

/// Deletes refresh tokens that expired before `before`, then the families left with no
/// refresh token (their access tokens go with them: they expired long before).
pub fn prune_refresh(connection: &mut DbConnection, before: DateTime<Utc>) -> Result<(usize, usize), StorageError> {
    let tokens = diesel::delete(refresh_tokens::table.filter(refresh_tokens::expires_at.lt(before.naive_utc())))
        .execute(connection)?;
    let live_families = refresh_tokens::table.select(refresh_tokens::family_id);
    let families = diesel::delete(
        refresh_families::table
            .filter(refresh_families::created_at.lt(before.naive_utc()))
            .filter(refresh_families::id.ne_all(live_families)),
    )
    .execute(connection)?;
    Ok((tokens, families))
}
