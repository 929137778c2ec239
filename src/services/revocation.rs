//! Token revocation (RFC 7009).

use chrono::{DateTime, Utc};

use crate::domain::client::Client;
use crate::error::AppError;
use crate::state::AppState;
use crate::storage::tokens;
use crate::storage::DbConnection;

use super::introspection::find_token;

/// Revokes an access or refresh token of `caller`'s. Unknown tokens, and tokens of other
/// clients, are left alone without saying so (RFC 7009 §2.2: the answer is 200 either way,
/// and it must not tell a client whether someone else's token exists).
/// Revoking a refresh token ends its whole family, access tokens included.
pub fn revoke(
    connection: &mut DbConnection,
    state: &AppState,
    caller: &Client,
    token: &str,
    now: DateTime<Utc>,
) -> Result<(), AppError> {
    if let Some(access) = find_token(connection, state, token)? {
        if access.client_id == caller.client_id {
            tokens::revoke_access_token(connection, &access.jti, now)?;
        }
        return Ok(());
    }
    if let Some(refresh) = tokens::find_refresh_token(connection, &state.hasher.hash(token))? {
        if let Some(family) = tokens::find_family(connection, &refresh.family_id)? {
            if family.client_id == caller.client_id {
                tokens::revoke_family(connection, &family.id, now)?;
            }
        }
    }
    Ok(())
}
