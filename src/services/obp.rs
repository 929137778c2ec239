//! Open Bank Project compatibility: OBP's consumer-scope operations (a consumer is a client, a
//! role name a scope), with OBP's rules on bank-level and system-level roles. The HTTP layer
//! words the refusals in OBP's messages.

use chrono::{DateTime, Utc};
use serde_json::json;

use super::clients as client_service;
use super::events;
use crate::domain::event::{Actor, Event, EventType};
use crate::domain::scope_tree::ScopeTree;
use crate::error::AppError;
use crate::storage::{clients, write_transaction, DbConnection};

/// One assignment in OBP's shape.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ObpScope {
    pub scope_id: String,
    pub role_name: String,
    pub bank_id: String,
}

impl From<clients::ScopeAssignment> for ObpScope {
    fn from(assignment: clients::ScopeAssignment) -> Self {
        Self { scope_id: assignment.id.to_string(), role_name: assignment.scope_name, bank_id: assignment.bank_id }
    }
}

/// Why an OBP operation was refused.
#[derive(Debug)]
pub enum ObpRefusal {
    ConsumerNotFound,
    UnknownRole(String),
    /// A bank-level role needs a `bank_id`.
    BankRoleWithoutBank,
    /// A system-level role must have an empty `bank_id`.
    SystemRoleWithBank,
    AlreadyAssigned,
    ScopeNotFound,
    /// Any other refusal (security level, admin scope) or failure, as scopegate words it.
    Other(AppError),
}

impl From<AppError> for ObpRefusal {
    fn from(error: AppError) -> Self {
        Self::Other(error)
    }
}

impl From<crate::storage::StorageError> for ObpRefusal {
    fn from(error: crate::storage::StorageError) -> Self {
        Self::Other(error.into())
    }
}

impl From<diesel::result::Error> for ObpRefusal {
    fn from(error: diesel::result::Error) -> Self {
        Self::Other(error.into())
    }
}

fn consumer(connection: &mut DbConnection, consumer_id: &str) -> Result<crate::domain::client::Client, ObpRefusal> {
    clients::find(connection, consumer_id)?.ok_or(ObpRefusal::ConsumerNotFound)
}

pub fn add_scope(
    connection: &mut DbConnection,
    tree: &ScopeTree,
    consumer_id: &str,
    role_name: &str,
    bank_id: &str,
    actor: &Actor,
    now: DateTime<Utc>,
) -> Result<ObpScope, ObpRefusal> {
    let scope = tree.get(role_name).ok_or_else(|| ObpRefusal::UnknownRole(role_name.to_string()))?;
    if scope.fields.bank_level && bank_id.is_empty() {
        return Err(ObpRefusal::BankRoleWithoutBank);
    }
    if !scope.fields.bank_level && !bank_id.is_empty() {
        return Err(ObpRefusal::SystemRoleWithBank);
    }
    write_transaction(connection, |connection| {
        let client = consumer(connection, consumer_id)?;
        let existing = clients::assignments(connection, &client.client_id)?;
        if existing.iter().any(|a| a.scope_name == role_name && a.bank_id == bank_id) {
            return Err(ObpRefusal::AlreadyAssigned);
        }
        client_service::check_assignable(connection, &client, role_name)?;
        let assignment = match clients::assign(connection, &client.client_id, role_name, bank_id, now) {
            Ok(assignment) => assignment,
            Err(crate::storage::StorageError::UniqueViolation) => return Err(ObpRefusal::AlreadyAssigned),
            Err(error) => return Err(error.into()),
        };
        let detail = json!({"added": role_name, "bank_id": bank_id, "via": "obp"});
        let event =
            Event::new(EventType::ClientScopesAssigned, actor).client(consumer_id).scope(role_name).detail(detail);
        events::record(connection, event, now)?;
        Ok(ObpScope::from(assignment))
    })
}

pub fn list_scopes(connection: &mut DbConnection, consumer_id: &str) -> Result<Vec<ObpScope>, ObpRefusal> {
    consumer(connection, consumer_id)?;
    Ok(clients::assignments(connection, consumer_id)?.into_iter().map(ObpScope::from).collect())
}

pub fn delete_scope(
    connection: &mut DbConnection,
    consumer_id: &str,
    scope_id: &str,
    actor: &Actor,
    now: DateTime<Utc>,
) -> Result<(), ObpRefusal> {
    let scope_id: i64 = scope_id.parse().map_err(|_| ObpRefusal::ScopeNotFound)?;
    write_transaction(connection, |connection| {
        consumer(connection, consumer_id)?;
        if !clients::unassign(connection, consumer_id, scope_id)? {
            return Err(ObpRefusal::ScopeNotFound);
        }
        let detail = json!({"removed_assignment": scope_id, "via": "obp"});
        let event = Event::new(EventType::ClientScopesAssigned, actor).client(consumer_id).detail(detail);
        events::record(connection, event, now)?;
        Ok(())
    })
}
