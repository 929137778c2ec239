//! Token revocation (RFC 7009).

use chrono::{DateTime, Utc};
use serde_json::json;

use super::introspection::find_token;
use super::OAuthContext;
use crate::domain::client::Client;
use crate::domain::event::{Actor, Event, EventType};
use crate::error::AppError;
use crate::services::events;
use crate::storage::tokens;
use crate::storage::{write_transaction, DbConnection};

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
    let actor = Actor::Client(caller.client_id.clone());
    if let Some(access) = find_token(connection, context, token)? {
        if access.client_id == caller.client_id && access.revoked_at.is_none() {
            write_transaction(connection, |connection| {
                // A concurrent revocation may have won: then it recorded the event.
                if !tokens::revoke_access_token(connection, &access.jti, now)? {
                    return Ok(());
                }
                let detail = json!({"token_type": "access_token", "jti": access.jti, "subject": access.subject});
                events::record(
                    connection,
                    Event::new(EventType::TokenRevoked, &actor).client(&access.client_id).detail(detail),
                    now,
                )
            })?;
        }
        return Ok(());
    }
    if let Some(refresh) = tokens::find_refresh_token(connection, &context.hasher.hash(token))? {
        if let Some(family) = tokens::find_family(connection, &refresh.family_id)? {
            if family.client_id == caller.client_id && family.revoked_at.is_none() {
                write_transaction(connection, |connection| {
                    if !tokens::revoke_family(connection, &family.id, now)? {
                        return Ok(());
                    }
                    let detail =
                        json!({"token_type": "refresh_token", "family_id": family.id, "subject": family.subject});
                    let event = Event::new(EventType::TokenRevoked, &actor).client(&family.client_id).detail(detail);
                    events::record(connection, event, now)
                })?;
            }
        }
    }
    Ok(())
}
