//! Loads what the entitlement rule needs in one call: the client, its assigned scopes, and
//! the grants of one consent.

use std::collections::BTreeSet;

use super::client_directory::{ClientDirectory, ClientRecord};
use super::{clients, grants, DbConnection, StorageError};
use crate::domain::client::Client;
use crate::domain::entitlement::{HeldGrant, Holdings};

/// Which consent's grants to load.
#[derive(Debug, Clone, Copy)]
pub enum ConsentKey<'a> {
    /// The consent a code or family belongs to, read by a flow that will write under it (on
    /// PostgreSQL this locks it: see `grants::find_consent`); None when it has none (any more).
    Id(Option<&'a str>),
    /// The consent a token belongs to, for a read-only answer (introspection, the admin API's
    /// bearer check): no lock, so a resource server's traffic writes nothing for it, and no
    /// check that the consent exists: a deleted consent's grants are deleted with it.
    Reading(Option<&'a str>),
    /// The subject's default consent with the client, if there is one.
    DefaultOf(&'a str),
}

/// The holdings of `client` under the consent `key` names, its assignments read from the
/// database (flows that already hold the client row; the token paths use [`load_record`]).
pub fn load(connection: &mut DbConnection, client: Client, key: ConsentKey<'_>) -> Result<Holdings, StorageError> {
    let assigned: BTreeSet<String> =
        clients::assignments(connection, &client.client_id)?.into_iter().map(|a| a.scope_name).collect();
    let mut holdings = Holdings::new(client, assigned);
    attach_consent(connection, &mut holdings, key)?;
    Ok(holdings)
}

/// The holdings of a client read through the directory: its assignments come from memory.
pub fn load_record(
    connection: &mut DbConnection,
    record: &ClientRecord,
    key: ConsentKey<'_>,
) -> Result<Holdings, StorageError> {
    let mut holdings = Holdings::new(record.client.clone(), record.assigned.clone());
    attach_consent(connection, &mut holdings, key)?;
    Ok(holdings)
}

/// Finds the consent `key` names and adds its grants.
fn attach_consent(
    connection: &mut DbConnection,
    holdings: &mut Holdings,
    key: ConsentKey<'_>,
) -> Result<(), StorageError> {
    let (consent_id, grants) = match key {
        ConsentKey::DefaultOf(subject) => {
            match grants::default_with_grants(connection, subject, &holdings.client.client_id)? {
                Some((consent_id, grants)) => (Some(consent_id), grants),
                None => (None, Vec::new()),
            }
        }
        ConsentKey::Id(Some(id)) => {
            let found = grants::find_consent(connection, id)?;
            with_grants(connection, found)?
        }
        ConsentKey::Reading(Some(id)) => with_grants(connection, Some(id.to_string()))?,
        ConsentKey::Id(None) | ConsentKey::Reading(None) => (None, Vec::new()),
    };
    for row in grants {
        holdings.grants.insert(row.scope.clone(), HeldGrant { id: row.id, usage: row.usage() });
    }
    holdings.consent_id = consent_id;
    Ok(())
}

fn with_grants(
    connection: &mut DbConnection,
    consent_id: Option<String>,
) -> Result<(Option<String>, Vec<grants::GrantRow>), StorageError> {
    let grants = match &consent_id {
        Some(id) => grants::grants_of(connection, id)?,
        None => Vec::new(),
    };
    Ok((consent_id, grants))
}

/// As [`load_record`], for a client known by id; None when the client no longer exists.
pub fn load_for(
    connection: &mut DbConnection,
    directory: &ClientDirectory,
    client_id: &str,
    key: ConsentKey<'_>,
) -> Result<Option<Holdings>, StorageError> {
    match directory.get(connection, client_id)? {
        Some(record) => Ok(Some(load_record(connection, &record, key)?)),
        None => Ok(None),
    }
}
