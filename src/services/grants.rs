//! Grant listings (the admin API's and the account page's): every grant with where its limits
//! stand and what the entitlement rule makes of it now.

use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;

use crate::domain::client::Client;
use crate::domain::entitlement::{expiry, remaining_accesses, HeldGrant, Holdings, Rule, Standing};
use crate::domain::scope_tree::ScopeTree;
use crate::error::AppError;
use crate::storage::grants::{ConsentRow, GrantRow};
use crate::storage::{clients, grants, users, DbConnection};
use std::collections::{BTreeMap, BTreeSet, HashMap};

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
    /// What the entitlement rule makes of the grant now: `active`, `expired`, `exhausted`,
    /// `not_admitted` (the client may no longer hold the scope), `descendant_dropped` (a scope
    /// below it is spent, not admitted or never granted, and a parent implies its children) or
    /// `revoked` (its consent is gone; seen only in a race with the revocation).
    pub state: &'static str,
}

/// A grant with what the entitlement rule makes of it now.
pub struct JudgedGrant {
    pub consent: ConsentRow,
    pub grant: GrantRow,
    pub standing: Standing,
}

/// Judges each grant of `rows` by the rule, consent by consent: a grant reads `active` only
/// when its scope is in the consent's effective scope (so a parent whose child ran out, or a
/// scope the client's level no longer admits, does not).
pub fn judge(
    connection: &mut DbConnection,
    tree: &ScopeTree,
    rows: Vec<(ConsentRow, GrantRow)>,
    now: DateTime<Utc>,
    timezone: chrono_tz::Tz,
) -> Result<Vec<JudgedGrant>, AppError> {
    let mut by_consent: BTreeMap<String, Vec<(ConsentRow, GrantRow)>> = BTreeMap::new();
    for (consent, grant) in rows {
        by_consent.entry(consent.id.clone()).or_default().push((consent, grant));
    }
    let mut clients_seen: HashMap<String, Option<(Client, BTreeSet<String>)>> = HashMap::new();
    let mut judged = Vec::new();
    for (_, rows) in by_consent {
        let Some((first, _)) = rows.first() else { continue };
        let client_id = first.client_id.clone();
        let user = first.user_id.is_some();
        if !clients_seen.contains_key(&client_id) {
            let found = match clients::find(connection, &client_id)? {
                Some(client) => {
                    let assigned =
                        clients::assignments(connection, &client_id)?.into_iter().map(|a| a.scope_name).collect();
                    Some((client, assigned))
                }
                None => None,
            };
            clients_seen.insert(client_id.clone(), found);
        }
        let Some(Some((client, assigned))) = clients_seen.get(&client_id) else { continue };
        let mut holdings = Holdings::new(client.clone(), assigned.clone());
        for (_, grant) in &rows {
            holdings.grants.insert(grant.scope.clone(), HeldGrant { id: grant.id, usage: grant.usage() });
        }
        let entitlement =
            Rule::for_holder(tree, &holdings, user, now, timezone).evaluate(holdings.grants.keys().map(String::as_str));
        for (consent, grant) in rows {
            let standing = entitlement.standing(&grant.scope);
            judged.push(JudgedGrant { consent, grant, standing });
        }
    }
    judged.sort_by_key(|judged| judged.grant.id);
    Ok(judged)
}

/// The grants on record, counted by the database: the console's overview, where judging a
/// million grants one by one to count the active ones would take seconds.
pub fn count(connection: &mut DbConnection) -> Result<i64, AppError> {
    Ok(crate::storage::grants::count(connection)?)
}

/// Grants filtered by username and/or client id.
pub fn list(
    connection: &mut DbConnection,
    tree: &ScopeTree,
    username: Option<&str>,
    client_id: Option<&str>,
    now: DateTime<Utc>,
    timezone: chrono_tz::Tz,
) -> Result<Vec<GrantView>, AppError> {
    let user_id = match username {
        Some(username) => Some(
            users::find_with_password(connection, username)?
                .map(|(user, _)| user.id)
                .ok_or_else(|| AppError::not_found("user_not_found", format!("no user {username:?}")))?,
        ),
        None => None,
    };
    let listed = grants::list(connection, user_id.as_deref(), client_id)?;
    let rows = judge(connection, tree, listed, now, timezone)?;
    let mut user_ids: Vec<String> = rows.iter().filter_map(|judged| judged.consent.user_id.clone()).collect();
    user_ids.sort();
    user_ids.dedup();
    let usernames = users::usernames(connection, &user_ids)?;
    Ok(rows
        .into_iter()
        .map(|JudgedGrant { consent, grant, standing }| {
            let usage = grant.usage();
            // Deleting a scope deletes its grants: a missing one raced with that deletion.
            let scope = tree.definition(&grant.scope);
            GrantView {
                id: grant.id,
                grant_id: consent.id,
                username: consent.user_id.as_ref().and_then(|id| usernames.get(id).cloned()),
                subject: consent.subject,
                client_id: consent.client_id,
                scope: grant.scope,
                granted_at: usage.granted_at,
                expires_at: scope.and_then(|scope| expiry(scope, usage.granted_at)),
                access_count: grant.access_count,
                remaining_accesses: scope.and_then(|scope| remaining_accesses(scope, usage)),
                state: standing.label(),
            }
        })
        .collect())
}

/// Ends one grant (a consent: Grant Management's `grant_id`) with its tokens, refresh tokens and
/// unredeemed codes, and records `consent.revoked` by `actor`, naming the grant. The callers
/// decide whose grant it may be: the user's own on the account page, the client's own at
/// `DELETE /grants/{grant_id}`, anyone's in the console.
pub fn end_grant(
    connection: &mut DbConnection,
    consent: &ConsentRow,
    actor: &crate::domain::event::Actor,
    now: DateTime<Utc>,
) -> Result<(), AppError> {
    use crate::domain::event::{Event, EventType};
    grants::end_consent(connection, &consent.id, now)?;
    let mut event = Event::new(EventType::ConsentRevoked, actor)
        .client(&consent.client_id)
        .detail(serde_json::json!({"grant_id": consent.id}));
    if let Some(user) = consent.user_id.as_deref().map(|id| users::find_by_id(connection, id)).transpose()?.flatten() {
        event = event.user(&user.username);
    }
    super::events::record(connection, event, now)
}

/// An administrator ends any grant by its id; whether there was one.
pub fn end_grant_by_id(
    connection: &mut DbConnection,
    grant_id: &str,
    actor: &crate::domain::event::Actor,
    now: DateTime<Utc>,
) -> Result<bool, AppError> {
    crate::storage::write_transaction(connection, |connection| match grants::find_consent_row(connection, grant_id)? {
        Some(consent) => end_grant(connection, &consent, actor, now).map(|()| true),
        None => Ok(false),
    })
}
