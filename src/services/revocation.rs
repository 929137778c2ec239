//! Token revocation (RFC 7009).

use chrono::{DateTime, Utc};

use super::introspection::find_token;
use super::OAuthContext;
use crate::domain::client::Client;
use crate::error::AppError;
use crate::storage::tokens;
use crate::storage::DbConnection;

/// Revokes an access or refresh token of `caller`'s. Unknown tokens, and tokens of other
/// clients, are left alone without saying so (RFC 7009 §2.2: the answer is 200 either way,
/// and it must not tell a client whether someone else's token exists).
/// Revoking a refresh token ends its whole family, access tokens included.
pub fn revoke(
    connection: &mut DbConnection,
    context: &OAuthContext<'_>,
    caller: &Client,
    token: &str,
    token_type_hint: Option<&str>,
    now: DateTime<Utc>,
) -> Result<(), AppError> {
    // Checked once the caller is authenticated, as before any other answer about the token.
    if let Some(hint) = token_type_hint.filter(|hint| !matches!(*hint, "access_token" | "refresh_token")) {
        return Err(AppError::bad_request("unsupported_token_type", format!("unknown token_type_hint {hint:?}")));
    }
    if let Some(access) = find_token(connection, context, token)? {
        if access.client_id == caller.client_id {
            tokens::revoke_access_token(connection, &access.jti, now)?;
        }
        return Ok(());
    }
    if let Some(refresh) = tokens::find_refresh_token(connection, &context.hasher.hash(token))? {
        if let Some(family) = tokens::find_family(connection, &refresh.family_id)? {
            if family.client_id == caller.client_id {
                tokens::revoke_family(connection, &family.id, now)?;
            }
        }
    }
    Ok(())
}
