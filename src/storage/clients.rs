//! The `clients` and `client_scopes` tables.

use chrono::{DateTime, Utc};
use diesel::prelude::*;

use super::columns::{JsonList, TextEnum, UtcTimestamp};
use super::schema::{client_scopes, clients, registry_version, scopes};
use super::DbConnection;
use super::StorageError;
use crate::domain::client::{AuthMethod, Client, TokenFormat};
use crate::domain::scope::{GrantType, SecurityLevel};
use crate::secrets::TokenHash;
use jsonwebtoken::jwk::JwkSet;

#[derive(Queryable, Selectable, Insertable)]
#[diesel(table_name = clients)]
struct ClientRow {
    client_id: String,
    name: String,
    confidential: bool,
    secret_hash: Option<TokenHash>,
    #[diesel(serialize_as = JsonList<String>, deserialize_as = JsonList<String>)]
    redirect_uris: Vec<String>,
    #[diesel(serialize_as = JsonList<GrantType>, deserialize_as = JsonList<GrantType>)]
    grant_types: Vec<GrantType>,
    #[diesel(serialize_as = TextEnum<SecurityLevel>, deserialize_as = TextEnum<SecurityLevel>)]
    security_level: SecurityLevel,
    #[diesel(serialize_as = TextEnum<TokenFormat>, deserialize_as = TextEnum<TokenFormat>)]
    token_format: TokenFormat,
    can_introspect: bool,
    admin: bool,
    #[diesel(serialize_as = UtcTimestamp, deserialize_as = UtcTimestamp)]
    created_at: DateTime<Utc>,
    #[diesel(serialize_as = TextEnum<AuthMethod>, deserialize_as = TextEnum<AuthMethod>)]
    token_endpoint_auth_method: AuthMethod,
    /// The JWK Set as JSON.
    jwks: Option<String>,
    require_pushed_authorization_requests: bool,
    dpop_bound_access_tokens: bool,
}

fn jwks_json(jwks: &Option<JwkSet>) -> Option<String> {
    jwks.as_ref().and_then(|set| serde_json::to_string(set).ok())
}

impl ClientRow {
    fn new(client: &Client, secret_hash: Option<TokenHash>) -> Self {
        Self {
            client_id: client.client_id.clone(),
            name: client.name.clone(),
            confidential: client.confidential,
            secret_hash,
            redirect_uris: client.redirect_uris.clone(),
            grant_types: client.grant_types.clone(),
            security_level: client.security_level,
            token_format: client.token_format,
            can_introspect: client.can_introspect,
            admin: client.admin,
            created_at: client.created_at,
            token_endpoint_auth_method: client.token_endpoint_auth_method,
            jwks: jwks_json(&client.jwks),
            require_pushed_authorization_requests: client.require_pushed_authorization_requests,
            dpop_bound_access_tokens: client.dpop_bound_access_tokens,
        }
    }

    fn into_client(self) -> (Client, Option<TokenHash>) {
        // Written by us after `jose::client_key_set`; a set that no longer parses leaves the
        // client without keys, so it cannot authenticate (closed, not open).
        let jwks = self.jwks.as_deref().and_then(|json| match serde_json::from_str::<JwkSet>(json) {
            Ok(set) => Some(set),
            Err(error) => {
                tracing::error!(client_id = %self.client_id, %error, "a stored jwks does not parse");
                None
            }
        });
        let client = Client {
            client_id: self.client_id,
            name: self.name,
            confidential: self.confidential,
            redirect_uris: self.redirect_uris,
            grant_types: self.grant_types,
            security_level: self.security_level,
            token_format: self.token_format,
            can_introspect: self.can_introspect,
            admin: self.admin,
            created_at: self.created_at,
            token_endpoint_auth_method: self.token_endpoint_auth_method,
            jwks,
            require_pushed_authorization_requests: self.require_pushed_authorization_requests,
            dpop_bound_access_tokens: self.dpop_bound_access_tokens,
        };
        (client, self.secret_hash)
    }
}

pub fn insert(
    connection: &mut DbConnection,
    client: &Client,
    secret_hash: Option<TokenHash>,
) -> Result<(), StorageError> {
    diesel::insert_into(clients::table).values(ClientRow::new(client, secret_hash)).execute(connection)?;
    changed(connection)
}

/// Replaces every field but the id, the creation time and (unless given) the secret.
pub fn update(connection: &mut DbConnection, client: &Client) -> Result<(), StorageError> {
    diesel::update(clients::table.find(&client.client_id))
        .set((
            clients::name.eq(&client.name),
            clients::confidential.eq(client.confidential),
            clients::redirect_uris.eq(JsonList::from(client.redirect_uris.clone())),
            clients::grant_types.eq(JsonList::from(client.grant_types.clone())),
            clients::security_level.eq(TextEnum(client.security_level)),
            clients::token_format.eq(TextEnum(client.token_format)),
            clients::can_introspect.eq(client.can_introspect),
            clients::admin.eq(client.admin),
            clients::token_endpoint_auth_method.eq(TextEnum(client.token_endpoint_auth_method)),
            clients::jwks.eq(jwks_json(&client.jwks)),
            clients::require_pushed_authorization_requests.eq(client.require_pushed_authorization_requests),
            clients::dpop_bound_access_tokens.eq(client.dpop_bound_access_tokens),
        ))
        .execute(connection)?;
    changed(connection)
}

/// Replaces a confidential client's secret hash; whether it exists.
pub fn set_secret_hash(connection: &mut DbConnection, client_id: &str, hash: TokenHash) -> Result<bool, StorageError> {
    let updated = diesel::update(clients::table.find(client_id).filter(clients::confidential.eq(true)))
        .set(clients::secret_hash.eq(Some(hash)))
        .execute(connection)?
        > 0;
    changed(connection)?;
    Ok(updated)
}

/// The client and its stored secret hash (None for public clients).
pub fn find_with_secret(
    connection: &mut DbConnection,
    client_id: &str,
) -> Result<Option<(Client, Option<TokenHash>)>, StorageError> {
    Ok(clients::table
        .find(client_id)
        .select(ClientRow::as_select())
        .first(connection)
        .optional()?
        .map(ClientRow::into_client))
}

pub fn find(connection: &mut DbConnection, client_id: &str) -> Result<Option<Client>, StorageError> {
    Ok(find_with_secret(connection, client_id)?.map(|(client, _)| client))
}

pub fn list(connection: &mut DbConnection) -> Result<Vec<Client>, StorageError> {
    Ok(clients::table
        .order(clients::created_at.asc())
        .select(ClientRow::as_select())
        .load(connection)?
        .into_iter()
        .map(|row| row.into_client().0)
        .collect())
}

pub fn count(connection: &mut DbConnection) -> Result<i64, StorageError> {
    Ok(clients::table.count().get_result(connection)?)
}

/// Deletes the client; its assignments, grants, codes and tokens go with it.
pub fn delete(connection: &mut DbConnection, client_id: &str) -> Result<bool, StorageError> {
    let deleted = diesel::delete(clients::table.find(client_id)).execute(connection)? > 0;
    changed(connection)?;
    Ok(deleted)
}

/// The `registry_version` row counting client changes (row 1 counts registry changes).
const CLIENTS_VERSION: i32 = 2;

/// The stored count of client changes (see `client_directory`).
pub fn version(connection: &mut DbConnection) -> Result<i64, StorageError> {
    Ok(registry_version::table.find(CLIENTS_VERSION).select(registry_version::version).first(connection)?)
}

/// Records that a client or its assignments changed, in the caller's transaction, so every
/// instance's client cache is emptied (`client_directory`). Every write in this file ends here.
fn changed(connection: &mut DbConnection) -> Result<(), StorageError> {
    diesel::update(registry_version::table.find(CLIENTS_VERSION))
        .set(registry_version::version.eq(registry_version::version + 1))
        .execute(connection)?;
    super::client_directory::note_local_change();
    Ok(())
}

/// One scope assigned to a client, optionally for one bank (OBP compatibility).
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable)]
#[diesel(table_name = client_scopes)]
pub struct ScopeAssignment {
    pub id: i64,
    pub client_id: String,
    pub scope_name: String,
    pub bank_id: String,
    #[diesel(deserialize_as = UtcTimestamp)]
    pub assigned_at: DateTime<Utc>,
}

pub fn assignments(connection: &mut DbConnection, client_id: &str) -> Result<Vec<ScopeAssignment>, StorageError> {
    Ok(client_scopes::table
        .filter(client_scopes::client_id.eq(client_id))
        .order(client_scopes::id.asc())
        .select(ScopeAssignment::as_select())
        .load(connection)?)
}

pub fn assign(
    connection: &mut DbConnection,
    client_id: &str,
    scope_name: &str,
    bank_id: &str,
    now: DateTime<Utc>,
) -> Result<ScopeAssignment, StorageError> {
    diesel::insert_into(client_scopes::table)
        .values((
            client_scopes::client_id.eq(client_id),
            client_scopes::scope_name.eq(scope_name),
            client_scopes::bank_id.eq(bank_id),
            client_scopes::assigned_at.eq(now.naive_utc()),
        ))
        .execute(connection)?;
    changed(connection)?;
    // MultiConnection cannot return a Selectable struct, so read the row back by its key.
    Ok(client_scopes::table
        .filter(client_scopes::client_id.eq(client_id))
        .filter(client_scopes::scope_name.eq(scope_name))
        .filter(client_scopes::bank_id.eq(bank_id))
        .select(ScopeAssignment::as_select())
        .first(connection)?)
}

pub fn unassign(connection: &mut DbConnection, client_id: &str, assignment_id: i64) -> Result<bool, StorageError> {
    let deleted = diesel::delete(
        client_scopes::table.filter(client_scopes::client_id.eq(client_id)).filter(client_scopes::id.eq(assignment_id)),
    )
    .execute(connection)?;
    changed(connection)?;
    Ok(deleted > 0)
}

pub fn unassign_all(connection: &mut DbConnection, client_id: &str) -> Result<usize, StorageError> {
    let deleted =
        diesel::delete(client_scopes::table.filter(client_scopes::client_id.eq(client_id))).execute(connection)?;
    changed(connection)?;
    Ok(deleted)
}

/// Which of `names` exist in the registry table, with their security level.
pub fn scope_levels(
    connection: &mut DbConnection,
    names: &[String],
) -> Result<Vec<(String, SecurityLevel)>, StorageError> {
    Ok(scopes::table
        .filter(scopes::name.eq_any(names))
        .select((scopes::name, scopes::security_level))
        .load::<(String, TextEnum<SecurityLevel>)>(connection)?
        .into_iter()
        .map(|(name, level)| (name, level.0))
        .collect())
}
