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
    for name in scopes {
        check_assignable(connection, client, name)?;
        clients::assign(connection, &client.client_id, name, "", now)?;
    }
    Ok(())
}

/// A scope may be assigned when it exists, is not more sensitive than the client's level, and
/// is the admin scope only for an admin client.
pub fn check_assignable(connection: &mut DbConnection, client: &Client, name: &str) -> Result<(), AppError> {
    if name == ADMIN_SCOPE && !client.admin {
        return Err(AppError::invalid_request(format!("scope {ADMIN_SCOPE} is reserved for admin clients")));
    }
    let levels = clients::scope_levels(connection, &[name.to_string()])?;
    let Some((_, level)) = levels.first() else {
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

/// Replaces a client's assigned scopes. Every client-credentials grant the client holds for an
/// included scope starts anew: an administrator's assignment renews a lapsed or used-up scope.
pub fn replace_scopes(
    connection: &mut DbConnection,
    tree: &crate::domain::scope_tree::ScopeTree,
    client: &Client,
    scopes: &[String],
    now: DateTime<Utc>,
) -> Result<(), AppError> {
    let mut scopes = scopes.to_vec();
    scopes.sort();
    scopes.dedup();
    clients::unassign_all(connection, &client.client_id)?;
    assign_scopes(connection, client, &scopes, now)?;
    for name in &scopes {
        let expires_at = tree.get(name).and_then(|scope| crate::domain::limits::expiry(scope, now));
        crate::storage::grants::restart_existing(
            connection,
            &client.client_id,
            &client.client_id,
            name,
            now,
            expires_at,
        )?;
    }
    Ok(())
}

/// The fields an administrator may change after registration.
#[derive(Debug, Default, Clone, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ClientPatch {
    pub name: Option<String>,
    pub redirect_uris: Option<Vec<String>>,
    pub grant_types: Option<Vec<crate::domain::scope::GrantType>>,
    pub security_level: Option<SecurityLevel>,
    pub token_format: Option<crate::domain::client::TokenFormat>,
    pub can_introspect: Option<bool>,
    pub admin: Option<bool>,
}

/// Applies a patch after validating the result as a whole; a lower security level that would
/// leave an assigned scope above it is refused.
pub fn update(connection: &mut DbConnection, client: &Client, patch: ClientPatch) -> Result<Client, AppError> {
    let registration = ClientRegistration {
        name: patch.name.unwrap_or_else(|| client.name.clone()),
        public: !client.confidential,
        redirect_uris: patch.redirect_uris.unwrap_or_else(|| client.redirect_uris.clone()),
        grant_types: patch.grant_types.unwrap_or_else(|| client.grant_types.clone()),
        security_level: Some(patch.security_level.unwrap_or(client.security_level)),
        token_format: Some(patch.token_format.unwrap_or(client.token_format)),
        can_introspect: patch.can_introspect.unwrap_or(client.can_introspect),
        admin: patch.admin.unwrap_or(client.admin),
    };
    registration.validate().map_err(|(field, message)| AppError::invalid_request(format!("{field}: {message}")))?;
    let updated = Client {
        name: registration.name.trim().to_string(),
        redirect_uris: registration.redirect_uris.clone(),
        grant_types: registration.effective_grant_types(),
        security_level: registration.security_level.unwrap_or(client.security_level),
        token_format: registration.token_format.unwrap_or(client.token_format),
        can_introspect: registration.can_introspect,
        admin: registration.admin,
        ..client.clone()
    };
    let assigned: Vec<String> =
        clients::assignments(connection, &client.client_id)?.into_iter().map(|a| a.scope_name).collect();
    for (name, level) in clients::scope_levels(connection, &assigned)? {
        let level: SecurityLevel = parse_column("scopes.security_level", &level)?;
        if !updated.security_level.admits(level) {
            return Err(AppError::bad_request(
                "security_level_mismatch",
                format!(
                    "assigned scope {name:?} (level {level}) is more sensitive than level {}",
                    updated.security_level
                ),
            ));
        }
    }
    clients::update(connection, &updated)?;
    Ok(updated)
}
