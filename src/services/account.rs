//! The signed-in user's view of the apps she authorized, and withdrawing them.

use chrono::{DateTime, Utc};
use std::collections::BTreeMap;

use crate::domain::limits::{self, GrantStatus};
use crate::domain::scope_tree::ScopeTree;
use crate::error::AppError;
use crate::services::tokens::usage;
use crate::storage::{clients, grants, tokens, DbConnection};

pub struct AuthorizedScope {
    pub name: String,
    pub label: String,
    pub granted_at: DateTime<Utc>,
    pub status: GrantStatus,
}

pub struct AuthorizedApp {
    pub client_id: String,
    pub client_name: String,
    pub scopes: Vec<AuthorizedScope>,
}

pub fn authorized_apps(
    connection: &mut DbConnection,
    tree: &ScopeTree,
    user_id: &str,
    now: DateTime<Utc>,
) -> Result<Vec<AuthorizedApp>, AppError> {
    let mut by_client: BTreeMap<String, Vec<AuthorizedScope>> = BTreeMap::new();
    for grant in grants::list(connection, Some(user_id), None)? {
        let Some(scope) = tree.get(&grant.scope_name) else { continue };
        by_client.entry(grant.client_id.clone()).or_default().push(AuthorizedScope {
            name: scope.name.clone(),
            label: scope.alias.clone().unwrap_or_else(|| scope.name.clone()),
            granted_at: grant.granted_at.and_utc(),
            status: limits::status(scope, usage(&grant), now),
        });
    }
    let mut apps = Vec::new();
    for (client_id, scopes) in by_client {
        let client_name = clients::find(connection, &client_id)?.map(|c| c.name).unwrap_or_else(|| client_id.clone());
        apps.push(AuthorizedApp { client_id, client_name, scopes });
    }
    Ok(apps)
}

/// Ends every grant and token the user gave the client. Returns whether there was any.
pub fn revoke_app(
    connection: &mut DbConnection,
    user_id: &str,
    client_id: &str,
    now: DateTime<Utc>,
) -> Result<bool, AppError> {
    let removed = grants::delete_for_client_subject(connection, client_id, user_id)?;
    tokens::revoke_for_client_subject(connection, client_id, user_id, now)?;
    Ok(removed > 0)
}
