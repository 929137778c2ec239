//! The signed-in user's view of the apps she authorized, and withdrawing them.

use chrono::{DateTime, Utc};
use std::collections::BTreeMap;

use crate::domain::entitlement::{
    expiry, grant_state, limits_day, remaining_accesses, remaining_accesses_today, GrantState, Standing,
};
use crate::domain::event::{Actor, Event, EventType};
use crate::domain::scope_tree::ScopeTree;
use crate::domain::user::User;
use crate::error::AppError;
use crate::services::events;
use crate::services::grants::{judge, JudgedGrant};
use crate::storage::{clients, grants, DbConnection};

pub struct AuthorizedScope {
    pub name: String,
    pub label: String,
    pub granted_at: DateTime<Utc>,
    /// The grant's own limits.
    pub state: GrantState,
    /// What the entitlement rule makes of it, with the rest of the consent.
    pub standing: Standing,
    pub expires_at: Option<DateTime<Utc>>,
    /// Accesses left, None when the scope counts none (an exhausted grant has 0).
    pub remaining: Option<u64>,
    /// Accesses left today, None when the scope has no daily limit.
    pub remaining_today: Option<u64>,
}

/// One grant the user gave an app (a client may hold several: Grant Management).
pub struct AuthorizedApp {
    pub client_id: String,
    pub client_name: String,
    pub grant_id: String,
    pub scopes: Vec<AuthorizedScope>,
}

pub fn authorized_apps(
    connection: &mut DbConnection,
    tree: &ScopeTree,
    user_id: &str,
    now: DateTime<Utc>,
    timezone: chrono_tz::Tz,
) -> Result<Vec<AuthorizedApp>, AppError> {
    // By client, then by grant: each grant is its own card.
    let mut by_grant: BTreeMap<(String, String), Vec<AuthorizedScope>> = BTreeMap::new();
    let listed = grants::list(connection, Some(user_id), None)?;
    for JudgedGrant { consent, grant, standing } in judge(connection, tree, listed, now, timezone)? {
        let Some(scope) = tree.definition(&grant.scope) else { continue };
        let usage = grant.usage();
        let state = grant_state(scope, usage, now, timezone);
        by_grant.entry((consent.client_id.clone(), consent.id.clone())).or_default().push(AuthorizedScope {
            label: scope.label_for(&grant.scope),
            name: grant.scope.clone(),
            granted_at: usage.granted_at,
            state,
            standing,
            expires_at: expiry(scope, usage.granted_at),
            remaining: remaining_accesses(scope, usage),
            remaining_today: remaining_accesses_today(scope, usage, limits_day(now, timezone)),
        });
    }
    let mut apps = Vec::new();
    for ((client_id, grant_id), scopes) in by_grant {
        let client_name = clients::find(connection, &client_id)?.map(|c| c.name).unwrap_or_else(|| client_id.clone());
        apps.push(AuthorizedApp { client_id, client_name, grant_id, scopes });
    }
    Ok(apps)
}

/// Ends every consent the user gave the client, with its grants, tokens, refresh families and
/// codes not yet redeemed. Returns whether there was any. Records `consent.revoked`, naming
/// the actor: the user herself on the account page, an administrator in the console.
pub fn revoke_app(
    connection: &mut DbConnection,
    user: &User,
    client_id: &str,
    actor: &Actor,
    now: DateTime<Utc>,
) -> Result<bool, AppError> {
    crate::storage::write_transaction(connection, |connection| {
        let ended = grants::end_consents(connection, &user.id, client_id, now)?;
        if ended > 0 {
            let event = Event::new(EventType::ConsentRevoked, actor).client(client_id).user(&user.username);
            events::record(connection, event, now)?;
        }
        Ok(ended > 0)
    })
}

/// Ends one of the user's grants ([`grants::end_consent`]); whether it was hers to end.
pub fn revoke_grant(
    connection: &mut DbConnection,
    user: &User,
    grant_id: &str,
    actor: &Actor,
    now: DateTime<Utc>,
) -> Result<bool, AppError> {
    crate::storage::write_transaction(connection, |connection| {
        let Some(consent) =
            grants::find_consent_row(connection, grant_id)?.filter(|c| c.user_id.as_deref() == Some(&user.id))
        else {
            return Ok(false);
        };
        crate::services::grants::end_grant(connection, &consent, actor, now)?;
        Ok(true)
    })
}

/// An administrator's revocation of what `username` gave `client_id` ([`revoke_app`]);
/// `404 user_not_found` for an unknown user.
pub fn revoke_for_user(
    connection: &mut DbConnection,
    username: &str,
    client_id: &str,
    actor: &Actor,
    now: DateTime<Utc>,
) -> Result<bool, AppError> {
    let user = crate::storage::users::find_with_password(connection, username)?
        .map(|(user, _)| user)
        .ok_or_else(|| AppError::not_found("user_not_found", format!("no user {username:?}")))?;
    revoke_app(connection, &user, client_id, actor, now)
}
