//! The admin grant listing: every grant with where its limits stand now.

use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;

use crate::domain::entitlement::{expiry, grant_state};
use crate::domain::scope_tree::ScopeTree;
use crate::error::AppError;
use crate::storage::{grants, users, DbConnection};

#[derive(Debug, Serialize, ToSchema)]
pub struct GrantView {
    pub id: i64,
    /// The consent the grant belongs to (Grant Management's `grant_id`).
    pub grant_id: String,
    /// The user's id, or the client's own id for client credentials.
    pub subject: String,
    pub username: Option<String>,
    pub client_id: String,
    pub scope: String,
    pub granted_at: DateTime<Utc>,
    /// From the scope's current `access_duration_days`; null when unlimited.
    pub expires_at: Option<DateTime<Utc>>,
    pub access_count: i64,
    /// Null when the scope has no access limit.
    pub remaining_accesses: Option<u64>,
    /// `active`, `expired` or `exhausted`.
    pub state: &'static str,
}

/// Grants filtered by username and/or client id.
pub fn list(
    connection: &mut DbConnection,
    tree: &ScopeTree,
    username: Option<&str>,
    client_id: Option<&str>,
    now: DateTime<Utc>,
) -> Result<Vec<GrantView>, AppError> {
    let user_id = match username {
        Some(username) => Some(
            users::find_with_password(connection, username)?
                .map(|(user, _)| user.id)
                .ok_or_else(|| AppError::not_found("user_not_found", format!("no user {username:?}")))?,
        ),
        None => None,
    };
    let rows = grants::list(connection, user_id.as_deref(), client_id)?;
    let mut user_ids: Vec<String> = rows.iter().filter_map(|(consent, _)| consent.user_id.clone()).collect();
    user_ids.sort();
    user_ids.dedup();
    let usernames = users::usernames(connection, &user_ids)?;
    Ok(rows
        .into_iter()
        .map(|(consent, grant)| {
            let usage = grant.usage();
            // Deleting a scope deletes its grants: a missing one raced with that and reads as expired.
            let scope = tree.get(&grant.scope_name);
            let max = scope.map_or(0, |scope| u64::from(scope.fields.max_access_count));
            GrantView {
                id: grant.id,
                grant_id: consent.id,
                username: consent.user_id.as_ref().and_then(|id| usernames.get(id).cloned()),
                subject: consent.subject,
                client_id: consent.client_id,
                scope: grant.scope_name,
                granted_at: usage.granted_at,
                expires_at: scope.and_then(|scope| expiry(scope, usage.granted_at)),
                access_count: grant.access_count,
                remaining_accesses: (max > 0).then(|| max.saturating_sub(usage.access_count)),
                state: scope.map_or("expired", |scope| grant_state(scope, usage, now).label()),
            }
        })
        .collect())
}
