//! Grant Management's API (SPEC "Banking consents"): a client reads or ends one of the grants
//! its users gave it, by `grant_id`. What a grant still allows is the entitlement rule's answer,
//! as at introspection.

use chrono::{DateTime, SecondsFormat, Utc};
use std::collections::BTreeMap;

use super::introspection::{scope_limits, ScopeLimits};
use super::OAuthContext;
use crate::domain::client::Client;
use crate::domain::entitlement::Rule;
use crate::domain::event::Actor;
use crate::error::AppError;
use crate::storage::grants::{self, ConsentRow};
use crate::storage::holdings::{self, ConsentKey};
use crate::storage::{write_transaction, DbConnection};

/// The scopes a client needs in its token to read, and to end, its grants.
pub const QUERY_SCOPE: &str = "grant_management_query";
pub const REVOKE_SCOPE: &str = "grant_management_revoke";

/// One entry of `scopes`.
#[derive(Debug, serde::Serialize)]
pub struct GrantedScope {
    pub scope: String,
}

/// `GET /grants/{grant_id}`'s answer.
#[derive(Debug, serde::Serialize)]
pub struct GrantView {
    pub scopes: Vec<GrantedScope>,
    pub created_at: String,
    pub updated_at: String,
    pub scope_limits: BTreeMap<String, ScopeLimits>,
}

/// The grant, when it is one of `caller`'s; another client's is as unknown as a missing one.
fn own_grant(connection: &mut DbConnection, caller: &Client, grant_id: &str) -> Result<ConsentRow, AppError> {
    grants::find_consent_row(connection, grant_id)?
        .filter(|consent| consent.client_id == caller.client_id)
        .ok_or_else(|| AppError::not_found("invalid_grant_id", format!("no grant {grant_id:?} of this client")))
}

/// What the grant allows now: its usable scopes (space-separated, in one entry), their limits,
/// and when it was made and last changed.
pub fn query(
    connection: &mut DbConnection,
    context: &OAuthContext<'_>,
    caller: &Client,
    grant_id: &str,
    now: DateTime<Utc>,
) -> Result<GrantView, AppError> {
    let consent = own_grant(connection, caller, grant_id)?;
    let key = ConsentKey::Reading(Some(grant_id));
    let holdings = holdings::load_for(connection, context.clients, &caller.client_id, key)?
        .ok_or_else(|| AppError::not_found("invalid_grant_id", "the grant's client no longer exists"))?;
    let rule = Rule::for_holder(context.tree, &holdings, consent.user_id.is_some(), now, context.limits_timezone);
    let entitlement = rule.evaluate(holdings.grants.keys().map(String::as_str));
    let scopes = if entitlement.is_empty() { vec![] } else { vec![GrantedScope { scope: entitlement.scope() }] };
    Ok(GrantView {
        scopes,
        created_at: consent.created_at.to_rfc3339_opts(SecondsFormat::Secs, true),
        updated_at: consent.updated_at.to_rfc3339_opts(SecondsFormat::Secs, true),
        scope_limits: scope_limits(&entitlement, context.tree),
    })
}

/// Ends the grant with its tokens, refresh tokens and unredeemed codes (`grants::end_grant`).
pub fn revoke(
    connection: &mut DbConnection,
    caller: &Client,
    grant_id: &str,
    now: DateTime<Utc>,
) -> Result<(), AppError> {
    write_transaction(connection, |connection| {
        let consent = own_grant(connection, caller, grant_id)?;
        super::grants::end_grant(connection, &consent, &Actor::Client(caller.client_id.clone()), now)
    })
}
