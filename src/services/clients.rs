//! Registering clients and authenticating them.

use chrono::{DateTime, Utc};

use crate::domain::client::{Client, ClientRegistration};
use crate::domain::scope::SecurityLevel;
use crate::error::AppError;
use crate::secrets::{new_client_secret, random_token, SecretHasher};
use crate::storage::{clients, parse_column, write_transaction, DbConnection};

/// A registered client and, for a confidential one, its secret in clear: shown once, never stored.
#[derive(Debug, serde::Serialize)]
pub struct RegisteredClient {
    #[serde(flatten)]
    pub client: Client,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_secret: Option<String>,
}

/// Fixed credentials, for the demo seed only; real clients get server-generated ones.
pub struct FixedCredentials<'a> {
    pub client_id: &'a str,
    pub client_secret: Option<&'a str>,
}

pub fn register(
    connection: &mut DbConnection,
    hasher: &SecretHasher,
    registration: &ClientRegistration,
    scopes: &[String],
    fixed: Option<FixedCredentials<'_>>,
    now: DateTime<Utc>,
) -> Result<RegisteredClient, AppError> {
    registration.validate().map_err(|(field, message)| AppError::invalid_request(format!("{field}: {message}")))?;
    let client = Client {
        client_id: fixed.as_ref().map(|f| f.client_id.to_string()).unwrap_or_else(|| format!("c_{}", random_token(16))),
        name: registration.name.trim().to_string(),
        confidential: !registration.public,
        redirect_uris: registration.redirect_uris.clone(),
        grant_types: registration.effective_grant_types(),
        security_level: registration.security_level.unwrap_or(SecurityLevel::F),
        token_format: registration.token_format.unwrap_or_default(),
        can_introspect: registration.can_introspect,
        admin: registration.admin,
        created_at: now,
    };
    let client_secret = client.confidential.then(|| match fixed.as_ref().and_then(|f| f.client_secret) {
        Some(secret) => secret.to_string(),
        None => new_client_secret(),
    });
    let secret_hash = client_secret.as_deref().map(|secret| hasher.hash(secret));
    write_transaction(connection, |connection| {
        clients::insert(connection, &client, secret_hash)?;
        let mut scopes = scopes.to_vec();
        // An admin client needs the reserved admin scope to call the admin API.
        if client.admin && !scopes.iter().any(|s| s == ADMIN_SCOPE) {
            scopes.push(ADMIN_SCOPE.to_string());
        }
        assign_scopes(connection, &client, &scopes, now)
    })?;
    Ok(RegisteredClient { client, client_secret })
}

/// The reserved scope of the admin API.
pub use crate::domain::negotiation::ADMIN_SCOPE;

/// Assigns scopes after checking that each exists and is not more sensitive than the client.
pub fn assign_scopes(
    connection: &mut DbConnection,
    client: &Client,
    scopes: &[String],
    now: DateTime<Utc>,
) -> Result<(), AppError> {
    let levels = clients::scope_levels(connection, scopes)?;
    for name in scopes {
        if name == ADMIN_SCOPE && !client.admin {
            return Err(AppError::invalid_request(format!("scope {ADMIN_SCOPE} is reserved for admin clients")));
        }
        let Some((_, level)) = levels.iter().find(|(known, _)| known == name) else {
            return Err(AppError::invalid_request(format!("scope {name:?} does not exist")));
        };
        let level: SecurityLevel = parse_column("scopes.security_level", level)?;
        if !client.security_level.admits(level) {
            return Err(AppError::bad_request(
                "security_level_mismatch",
                format!(
                    "scope {name:?} has security level {level}, more sensitive than the client's level {}",
                    client.security_level
                ),
            ));
        }
        clients::assign(connection, &client.client_id, name, "", now)?;
    }
    Ok(())
}

/// Client authentication: the client when the secret matches its stored keyed hash
/// (compared in constant time). Public clients have no secret and never pass here.
pub fn authenticate(
    connection: &mut DbConnection,
    hasher: &SecretHasher,
    client_id: &str,
    client_secret: &str,
) -> Result<Option<Client>, AppError> {
    match clients::find_with_secret(connection, client_id)? {
        Some((client, Some(hash))) if hasher.verify(client_secret, &hash) => Ok(Some(client)),
        Some(_) => Ok(None),
        None => {
            // Spend the same HMAC work for an unknown id as for a known one.
            hasher.verify(client_secret, "00");
            Ok(None)
        }
    }
}
