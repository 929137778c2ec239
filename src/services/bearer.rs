//! Bearer-token access to scopegate's own APIs (RFC 6750): the admin API accepts access
//! tokens issued to an admin client and carrying the reserved admin scope.

use chrono::{DateTime, Utc};

use crate::domain::client::Client;
use crate::domain::negotiation::ADMIN_SCOPE;
use crate::error::AppError;
use crate::state::AppState;
use crate::storage::{clients, DbConnection};

use super::introspection::find_token;

/// Why a bearer token does not open the admin API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BearerDenied {
    /// No `Authorization: Bearer` header.
    Missing,
    /// Unknown, malformed, expired or revoked token, or its client is gone.
    Invalid,
    /// A valid token without the admin scope, or not issued to an admin client.
    InsufficientScope,
}

pub fn admin_client(
    connection: &mut DbConnection,
    state: &AppState,
    token: &str,
    now: DateTime<Utc>,
) -> Result<Result<Client, BearerDenied>, AppError> {
    let Some(row) = find_token(connection, state, token)? else {
        return Ok(Err(BearerDenied::Invalid));
    };
    if !row.is_active(now) {
        return Ok(Err(BearerDenied::Invalid));
    }
    let Some(client) = clients::find(connection, &row.client_id)? else {
        return Ok(Err(BearerDenied::Invalid));
    };
    let carries_admin_scope = row.scope.split(' ').any(|scope| scope == ADMIN_SCOPE);
    if client.admin && carries_admin_scope && row.user_id.is_none() {
        Ok(Ok(client))
    } else {
        Ok(Err(BearerDenied::InsufficientScope))
    }
}
