//! The `pushed_requests` table (RFC 9126): authorization parameters a client pushed to `/par`,
//! found by the keyed hash of the `request_uri`'s random part, used once.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use std::collections::BTreeMap;

use super::columns::UtcTimestamp;
use super::schema::pushed_requests;
use super::DbConnection;
use super::StorageError;
use crate::secrets::TokenHash;

#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable, Insertable)]
#[diesel(table_name = pushed_requests)]
pub struct PushedRow {
    pub handle_hash: TokenHash,
    pub client_id: String,
    /// The parameters as a JSON object of strings.
    pub parameters: String,
    #[diesel(serialize_as = UtcTimestamp, deserialize_as = UtcTimestamp)]
    pub expires_at: DateTime<Utc>,
}

/// A pushed request as `/authorize` reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushedRequest {
    pub client_id: String,
    pub parameters: BTreeMap<String, String>,
}

pub fn insert(connection: &mut DbConnection, row: PushedRow) -> Result<(), StorageError> {
    diesel::insert_into(pushed_requests::table).values(row).execute(connection)?;
    Ok(())
}

/// The request if it exists, is `client_id`'s, and is unused and unexpired at `now`; it stays
/// usable.
pub fn peek(
    connection: &mut DbConnection,
    handle_hash: &TokenHash,
    client_id: &str,
    now: DateTime<Utc>,
) -> Result<Option<PushedRequest>, StorageError> {
    let found = pushed_requests::table
        .filter(pushed_requests::handle_hash.eq(handle_hash))
        .filter(pushed_requests::client_id.eq(client_id))
        .filter(pushed_requests::used_at.is_null())
        .filter(pushed_requests::expires_at.gt(now.naive_utc()))
        .select((pushed_requests::client_id, pushed_requests::parameters))
        .first::<(String, String)>(connection)
        .optional()?;
    found.map(decode).transpose()
}

/// Marks the request used and returns it, if it is `client_id`'s and was unused and unexpired
/// at `now`: one conditional UPDATE, so of two uses at once (on any instances) exactly one gets
/// it, and another client's attempt uses nothing up.
pub fn consume(
    connection: &mut DbConnection,
    handle_hash: &TokenHash,
    client_id: &str,
    now: DateTime<Utc>,
) -> Result<Option<PushedRequest>, StorageError> {
    let target = pushed_requests::table
        .filter(pushed_requests::handle_hash.eq(handle_hash))
        .filter(pushed_requests::client_id.eq(client_id))
        .filter(pushed_requests::used_at.is_null())
        .filter(pushed_requests::expires_at.gt(now.naive_utc()));
    let taken = diesel::update(target).set(pushed_requests::used_at.eq(now.naive_utc())).execute(connection)?;
    if taken == 0 {
        return Ok(None);
    }
    let found = pushed_requests::table
        .find(handle_hash)
        .select((pushed_requests::client_id, pushed_requests::parameters))
        .first::<(String, String)>(connection)?;
    decode(found).map(Some)
}

fn decode((client_id, parameters): (String, String)) -> Result<PushedRequest, StorageError> {
    let parameters = serde_json::from_str(&parameters).map_err(|error| StorageError::CorruptColumn {
        column: "pushed_requests.parameters",
        detail: error.to_string(),
    })?;
    Ok(PushedRequest { client_id, parameters })
}

/// Deletes the requests that expired before `before`, used or not.
pub fn prune(connection: &mut DbConnection, before: DateTime<Utc>) -> Result<usize, StorageError> {
    Ok(diesel::delete(pushed_requests::table.filter(pushed_requests::expires_at.lt(before.naive_utc())))
        .execute(connection)?)
}
