//! Token access to scopegate's own APIs (RFC 6750, and RFC 9449 for DPoP-bound tokens): the
//! admin API accepts access tokens issued to an admin client whose admin scope is still usable
//! (`entitlement`).

use chrono::{DateTime, Utc};

use super::introspection::find_token;
use super::OAuthContext;
use crate::domain::client::Client;
use crate::domain::dpop::binding_refusal;
use crate::domain::entitlement::{Dropped, Rule, Standing, ADMIN_SCOPE};
use crate::error::AppError;
use crate::storage::holdings::{self, ConsentKey};
use crate::storage::DbConnection;

/// Why a bearer token does not open the admin API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BearerDenied {
    /// No `Authorization: Bearer` header.
    Missing,
    /// Unknown, malformed, expired or revoked token, or its client is gone.
    Invalid,
    /// A valid token without a usable admin scope, or not issued to an admin client.
    InsufficientScope,
    /// Under the DPoP scheme without a proof for this request, or with a bad one: why.
    BadProof(String),
}

/// The admin client a token opens the admin API to.
pub fn admin_client(
    connection: &mut DbConnection,
    context: &OAuthContext<'_>,
    token: &str,
    proof_jkt: Option<&str>,
    now: DateTime<Utc>,
) -> Result<Result<Client, BearerDenied>, AppError> {
    client_with_scope(connection, context, token, proof_jkt, ADMIN_SCOPE, now)
}

/// The client a token was issued to, for itself (client credentials), when `scope` is usable
/// in it now (`entitlement`): the admin API, and Grant Management's API. `proof_jkt` is the key
/// of the request's DPoP proof (checked with `ath` by the caller), when it came under DPoP.
pub fn client_with_scope(
    connection: &mut DbConnection,
    context: &OAuthContext<'_>,
    token: &str,
    proof_jkt: Option<&str>,
    scope: &str,
    now: DateTime<Utc>,
) -> Result<Result<Client, BearerDenied>, AppError> {
    let Some(row) = find_token(connection, context, token)? else {
        return Ok(Err(BearerDenied::Invalid));
    };
    if !row.is_active(now) || binding_refusal(row.dpop_jkt.as_deref(), proof_jkt).is_some() {
        return Ok(Err(BearerDenied::Invalid));
    }
    let Some(holdings) = holdings::load_for(
        connection,
        context.clients,
        &row.client_id,
        ConsentKey::Reading(row.consent_id.as_deref()),
    )?
    else {
        return Ok(Err(BearerDenied::Invalid));
    };
    if row.user_id.is_some() {
        return Ok(Err(BearerDenied::InsufficientScope));
    }
    let rule = Rule::for_holder(context.tree, &holdings, false, now, context.limits_timezone);
    // `admits` lets only admin clients hold the admin scope. It takes no children now; one
    // left by an older version must not take the admin API away, so the scope is judged by
    // itself, whatever its children.
    let standing = rule.evaluate(row.scope.split(' ')).standing(scope);
    if matches!(standing, Standing::Usable | Standing::Dropped(Dropped::ImpliesDropped)) {
        Ok(Ok(holdings.client))
    } else {
        Ok(Err(BearerDenied::InsufficientScope))
    }
}
