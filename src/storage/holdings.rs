//! Loads what the entitlement rule needs in one call: the client, its assigned scopes, and
//! the grants of one consent.

use std::collections::BTreeSet;

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

/// Whether to read the client's assigned scopes: they admit only private scopes, so a caller
/// that knows none is in play (`entitlement::assignments_matter`) skips the query.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Assignments {
    Load,
    Skip,
}

/// The holdings of `client` under the consent `key` names.
pub fn load(connection: &mut DbConnection, client: Client, key: ConsentKey<'_>) -> Result<Holdings, StorageError> {
    load_with(connection, client, key, Assignments::Load)
}

/// As [`load`], reading the assigned scopes only when asked to.
pub fn load_with(
    connection: &mut DbConnection,
    client: Client,
    key: ConsentKey<'_>,
    assignments: Assignments,
) -> Result<Holdings, StorageError> {
    let assigned: BTreeSet<String> = match assignments {
        Assignments::Load => {
            clients::assignments(connection, &client.client_id)?.into_iter().map(|a| a.scope_name).collect()
        }
        Assignments::Skip => BTreeSet::new(),
    };
    let consent_id = match key {
        ConsentKey::Id(Some(id)) => grants::find_consent(connection, id)?,
        ConsentKey::Reading(Some(id)) => Some(id.to_string()),
        ConsentKey::Id(None) | ConsentKey::Reading(None) => None,
        ConsentKey::DefaultOf(subject) => grants::find_default(connection, subject, &client.client_id)?,
    };
    let mut holdings = Holdings::new(client, assigned);
    if let Some(consent_id) = &consent_id {
        for row in grants::grants_of(connection, consent_id)? {
            holdings.grants.insert(row.scope_name.clone(), HeldGrant { id: row.id, usage: row.usage() });
        }
    }
    holdings.consent_id = consent_id;
    Ok(holdings)
}

/// As [`load_with`], for a client known by id; None when the client no longer exists.
pub fn load_for(
    connection: &mut DbConnection,
    client_id: &str,
    key: ConsentKey<'_>,
    assignments: Assignments,
) -> Result<Option<Holdings>, StorageError> {
    match clients::find(connection, client_id)? {
        Some(client) => Ok(Some(load_with(connection, client, key, assignments)?)),
        None => Ok(None),
    }
}
