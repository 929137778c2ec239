//! Token introspection (RFC 7662): is the token active, and which of its scopes are still
//! usable. Each answer that reports a count-limited scope counts one access on its grant.

use chrono::{DateTime, SecondsFormat, Utc};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Serialize;
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::RwLock;

use crate::domain::client::Client;
use crate::domain::limits::{self, LimitState};
use crate::domain::negotiation::{format_scope, ClientScopes};
use crate::domain::scope::{GrantType, Visibility};
use crate::domain::token::{looks_like_jwt, AccessTokenClaims, JWT_ACCESS_TOKEN_TYPE};
use crate::error::AppError;
use crate::state::AppState;
use crate::storage::tokens::{self, AccessTokenRow};
use crate::storage::{clients, grants, signing_keys, users, DbConnection};

use super::tokens::usage;

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ScopeLimits {
    pub expires_at: Option<String>,
    pub remaining_accesses: Option<u64>,
}

/// An active token's introspection response.
#[derive(Debug, Clone, Serialize)]
pub struct ActiveToken {
    pub active: bool,
    pub scope: String,
    pub client_id: String,
    pub sub: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    pub exp: i64,
    pub iat: i64,
    pub iss: String,
    pub aud: String,
    pub jti: String,
    pub token_type: &'static str,
    pub scope_limits: BTreeMap<String, ScopeLimits>,
}

/// Public keys by `kid`, filled from the database on a miss so a key registered by another
/// instance (or a rotation) is found without a restart; and the JWTs whose signature already
/// checked out, so a resource server introspecting the same token again costs no ES256
/// verification. The token's stored row is still read every time (revocation, expiry).
#[derive(Default)]
pub struct VerificationKeys {
    keys: RwLock<HashMap<String, DecodingKey>>,
    /// SHA-256 of a verified JWT → its `jti`.
    verified: RwLock<HashMap<[u8; 32], String>>,
}

/// Verified JWTs remembered at most; the map starts afresh when full (tokens live minutes).
const VERIFIED_JWTS: usize = 50_000;

impl VerificationKeys {
    fn verified_jti(&self, token: &str) -> Option<String> {
        let digest: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        self.verified.read().ok()?.get(&digest).cloned()
    }

    fn remember(&self, token: &str, jti: &str) {
        let digest: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        let mut verified = match self.verified.write() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        if verified.len() >= VERIFIED_JWTS {
            verified.clear();
        }
        verified.insert(digest, jti.to_string());
    }

    fn get(&self, connection: &mut DbConnection, kid: &str) -> Result<Option<DecodingKey>, AppError> {
        if let Ok(keys) = self.keys.read() {
            if let Some(key) = keys.get(kid) {
                return Ok(Some(key.clone()));
            }
        }
        let published = signing_keys::all(connection)?;
        let mut keys = match self.keys.write() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        for key in published {
            if let Ok(decoding) = DecodingKey::from_ec_pem(key.public_key_pem.as_bytes()) {
                keys.insert(key.kid, decoding);
            }
        }
        Ok(keys.get(kid).cloned())
    }
}

/// The stored token behind a presented string: a JWT must carry our signature (any
/// published key), our issuer and an `at+jwt` type; an opaque token is found by its hash.
pub fn find_token(
    connection: &mut DbConnection,
    state: &AppState,
    token: &str,
) -> Result<Option<AccessTokenRow>, AppError> {
    if !looks_like_jwt(token) {
        return tokens::find_access_by_hash(connection, &state.hasher.hash(token));
    }
    if let Some(jti) = state.verification_keys.verified_jti(token) {
        return tokens::find_access_by_jti(connection, &jti);
    }
    let Ok(header) = jsonwebtoken::decode_header(token) else {
        return Ok(None);
    };
    if header.alg != Algorithm::ES256 || header.typ.as_deref() != Some(JWT_ACCESS_TOKEN_TYPE) {
        return Ok(None);
    }
    let Some(kid) = header.kid else {
        return Ok(None);
    };
    let Some(key) = state.verification_keys.get(connection, &kid)? else {
        return Ok(None);
    };
    let mut validation = Validation::new(Algorithm::ES256);
    validation.set_issuer(&[&state.settings.issuer]);
    validation.validate_aud = false;
    // Expiry is decided below against our clock (which tests may shift), not jsonwebtoken's.
    validation.validate_exp = false;
    validation.required_spec_claims = ["exp", "iss", "sub"].into_iter().map(String::from).collect();
    match jsonwebtoken::decode::<AccessTokenClaims>(token, &key, &validation) {
        Ok(data) => {
            state.verification_keys.remember(token, &data.claims.jti);
            tokens::find_access_by_jti(connection, &data.claims.jti)
        }
        Err(_) => Ok(None),
    }
}

/// Who may see a token's details: a resource server, or the client the token was issued to.
pub fn may_introspect(caller: &Client, token_client_id: &str) -> bool {
    caller.can_introspect || caller.client_id == token_client_id
}

/// Introspects `token` for `caller`. `Ok(None)` means inactive (unknown, expired, revoked,
/// malformed, or every scope used up); `Err` with 401 when the caller may not see it.
pub fn introspect(
    connection: &mut DbConnection,
    state: &AppState,
    caller: &Client,
    token: &str,
    now: DateTime<Utc>,
) -> Result<Option<ActiveToken>, AppError> {
    let Some(row) = find_token(connection, state, token)? else {
        return Ok(None);
    };
    if !may_introspect(caller, &row.client_id) {
        return Err(AppError::invalid_client("this client may introspect only its own tokens"));
    }
    if !row.is_active(now) {
        return Ok(None);
    }
    let Some(client) = clients::find(connection, &row.client_id)? else {
        return Ok(None);
    };
    let username = match &row.user_id {
        Some(user_id) => match users::find_by_id(connection, user_id)? {
            Some(user) => Some(user.username),
            None => return Ok(None),
        },
        None => None,
    };
    let snapshot = state.registry.snapshot();
    let tree = &snapshot.tree;
    // Assignments matter only for private scopes: skip the query when none is in play.
    let expanded = tree.expand(row.scope.split(' ').filter(|s| !s.is_empty()));
    let any_private = expanded.iter().any(|name| tree.get(name).is_some_and(|s| s.visibility == Visibility::Private));
    let assigned: BTreeSet<String> = if any_private {
        clients::assignments(connection, &client.client_id)?.into_iter().map(|a| a.scope_name).collect()
    } else {
        BTreeSet::new()
    };
    let grant_type = if row.user_id.is_some() { GrantType::AuthorizationCode } else { GrantType::ClientCredentials };
    let client_scopes = ClientScopes::new(&client, assigned, grant_type);
    // The granted scopes plus their current descendants (expanded once, above), kept where the
    // client may still hold them.
    let effective: BTreeSet<String> = expanded.into_iter().filter(|name| client_scopes.may_have(tree, name)).collect();

    let grants = grants::for_subject_and_client(connection, &row.subject, &row.client_id)?;
    let mut active_scopes = BTreeSet::new();
    let mut scope_limits = BTreeMap::new();
    for name in effective {
        let Some(scope) = tree.get(&name) else { continue };
        let grant = grants.iter().find(|g| g.scope_name == name);
        let LimitState::Usable { expires_at, remaining } = limits::evaluate(scope, grant.map(usage), now) else {
            continue;
        };
        let remaining = match (remaining, grant) {
            // Count this access; the conditional update decides under concurrency.
            (Some(_), Some(grant)) => {
                match grants::count_access(connection, grant.id, i64::from(scope.max_access_count))? {
                    Some(count) => {
                        Some(u64::from(scope.max_access_count).saturating_sub(u64::try_from(count).unwrap_or(0)))
                    }
                    None => continue,
                }
            }
            (remaining, _) => remaining,
        };
        if limits::has_limits(scope) {
            scope_limits.insert(
                name.clone(),
                ScopeLimits {
                    expires_at: expires_at.map(|t| t.to_rfc3339_opts(SecondsFormat::Secs, true)),
                    remaining_accesses: remaining,
                },
            );
        }
        active_scopes.insert(name);
    }
    if active_scopes.is_empty() {
        return Ok(None);
    }
    Ok(Some(ActiveToken {
        active: true,
        scope: format_scope(&active_scopes),
        client_id: row.client_id,
        sub: row.subject,
        username,
        exp: row.expires_at.and_utc().timestamp(),
        iat: row.issued_at.and_utc().timestamp(),
        iss: state.settings.issuer.clone(),
        aud: state.settings.issuer.clone(),
        jti: row.jti,
        token_type: "Bearer",
        scope_limits,
    }))
}
