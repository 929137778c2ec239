//! Registering clients and authenticating them.

use chrono::{DateTime, Utc};
use serde_json::json;

use super::{events, OAuthContext};
use crate::domain::client::{AuthMethod, Client, ClientProof, ClientRegistration, HoldRefusal};
use crate::domain::client_assertion::{self, Audience};
use crate::domain::event::{changes, Actor, Event, EventType};
use crate::domain::fapi::Profile;
use crate::domain::scope::SecurityLevel;
use crate::error::AppError;
use crate::secrets::{new_client_secret, random_token, SecretHasher};
use crate::storage::client_directory::ClientRecord;
use crate::storage::{clients, used_jtis, write_transaction, DbConnection, StorageError};
use std::sync::Arc;

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
    actor: &Actor,
    now: DateTime<Utc>,
) -> Result<RegisteredClient, AppError> {
    registration.validate()?;
    let token_endpoint_auth_method = registration.effective_auth_method();
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
        token_endpoint_auth_method,
        jwks: registration.key_set()?,
        require_pushed_authorization_requests: registration.require_pushed_authorization_requests,
        dpop_bound_access_tokens: registration.dpop_bound_access_tokens,
    };
    let client_secret =
        token_endpoint_auth_method.uses_secret().then(|| match fixed.as_ref().and_then(|f| f.client_secret) {
            Some(secret) => secret.to_string(),
            None => new_client_secret(),
        });
    let secret_hash = client_secret.as_deref().map(|secret| hasher.hash(secret));
    write_transaction(connection, |connection| {
        clients::insert(connection, &client, secret_hash).map_err(|error| match error {
            StorageError::UniqueViolation => {
                AppError::conflict("client_exists", format!("client {:?} already exists", client.client_id))
            }
            other => other.into(),
        })?;
        let mut scopes = scopes.to_vec();
        // An admin client needs the reserved admin scope to call the admin API.
        if client.admin && !scopes.iter().any(|s| s == ADMIN_SCOPE) {
            scopes.push(ADMIN_SCOPE.to_string());
        }
        assign_scopes(connection, &client, &scopes, now)?;
        let detail = json!({"client": client, "scopes": scopes});
        events::record(
            connection,
            Event::new(EventType::ClientCreated, actor).client(&client.client_id).detail(detail),
            now,
        )
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
        clients::assign(connection, &client.client_id, name, "", now).map_err(|error| already_assigned(error, name))?;
    }
    Ok(())
}

/// An assignment that exists already is the caller's mistake, not ours.
pub fn already_assigned(error: StorageError, scope_name: &str) -> AppError {
    match error {
        StorageError::UniqueViolation => {
            AppError::conflict("scope_already_assigned", format!("scope {scope_name:?} is already assigned"))
        }
        other => other.into(),
    }
}

/// A scope may be assigned when it exists and the client may hold it ([`Client::may_hold`]).
pub fn check_assignable(connection: &mut DbConnection, client: &Client, name: &str) -> Result<(), AppError> {
    let Some((_, level)) = clients::scope_levels(connection, &[name.to_string()])?.first().cloned() else {
        // The least sensitive level: a missing scope is refused as reserved when it is the admin
        // scope and the client no admin, else as missing.
        return Err(client.may_hold(name, SecurityLevel::F).map_or_else(
            |refusal| hold_refused(name, refusal),
            |()| AppError::invalid_request(format!("scope {name:?} does not exist")),
        ));
    };
    client.may_hold(name, level).map_err(|refusal| hold_refused(name, refusal))
}

fn hold_refused(name: &str, refusal: HoldRefusal) -> AppError {
    match refusal {
        HoldRefusal::ReservedForAdmins => {
            AppError::invalid_request(format!("scope {ADMIN_SCOPE} is reserved for admin clients"))
        }
        HoldRefusal::TooSensitive { scope, client } => AppError::bad_request(
            "security_level_mismatch",
            format!("scope {name:?} has security level {scope}, more sensitive than the client's level {client}"),
        ),
    }
}

/// Client authentication: the client when the secret matches its stored keyed hash
/// (compared in constant time). Public clients have no secret and never pass here.
pub fn authenticate(
    connection: &mut DbConnection,
    context: &OAuthContext<'_>,
    client_id: &str,
    client_secret: &str,
) -> Result<Option<Client>, AppError> {
    Ok(authenticate_record(connection, context, client_id, client_secret)?.map(|record| record.client.clone()))
}

/// As [`authenticate`], with the client's cached record (its assignments too).
pub fn authenticate_record(
    connection: &mut DbConnection,
    context: &OAuthContext<'_>,
    client_id: &str,
    client_secret: &str,
) -> Result<Option<Arc<ClientRecord>>, AppError> {
    let hasher = context.hasher;
    match context.clients.get(connection, client_id)? {
        Some(record) => {
            let matches = record.secret_hash.as_ref().is_some_and(|hash| hasher.verify(client_secret, hash));
            Ok(record.client.accepts(ClientProof::Secret { matches }).then_some(record))
        }
        None => {
            // Spend the same HMAC work for an unknown id as for a known one.
            std::hint::black_box(hasher.hash(client_secret));
            Ok(None)
        }
    }
}

/// How the client presented itself (RFC 6749 §2.3.1, RFC 7523 §2.2), already parsed from the
/// header or body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PresentedClient {
    /// A client id and secret, from the Basic header or the body.
    Secret {
        client_id: String,
        client_secret: String,
    },
    /// A `private_key_jwt` assertion, not yet checked; `endpoint` is the path it was sent to
    /// (an accepted `aud`). [`prove_assertion`] turns it into [`PresentedClient::Proven`].
    Assertion {
        client_id: Option<String>,
        assertion: String,
        endpoint: String,
    },
    /// A client whose assertion was checked and spent.
    Proven(ProvenClient),
    /// Only a `client_id` in the body: a public client.
    Public {
        client_id: String,
    },
    None,
}

impl PresentedClient {
    /// How the client authenticated, for the FAPI rule: an unchecked assertion counts as none.
    pub fn auth_method(&self, registered: AuthMethod) -> AuthMethod {
        match self {
            Self::Secret { .. } if registered.uses_secret() => registered,
            Self::Secret { .. } => AuthMethod::ClientSecretBasic,
            Self::Proven(_) => AuthMethod::PrivateKeyJwt,
            Self::Assertion { .. } | Self::Public { .. } | Self::None => AuthMethod::None,
        }
    }
}

/// A client that proved itself with a `private_key_jwt` assertion whose `jti` is now spent.
/// Only [`prove_assertion`] makes one, so holding one is the proof.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProvenClient {
    client_id: String,
}

impl ProvenClient {
    pub fn client_id(&self) -> &str {
        &self.client_id
    }
}

/// Checks a `private_key_jwt` assertion against the client's registered keys (RFC 7523 §3)
/// and records its `jti` in the database, so that it is refused on every instance next time.
/// Every failure is `invalid_client`, naming the check.
pub fn prove_assertion(
    connection: &mut DbConnection,
    context: &OAuthContext<'_>,
    presented: PresentedClient,
    now: DateTime<Utc>,
) -> Result<PresentedClient, AppError> {
    let PresentedClient::Assertion { client_id, assertion, endpoint } = presented else {
        return Ok(presented);
    };
    let refused = |why: &str| AppError::invalid_client(format!("client assertion refused: {why}"));
    let claimed = client_assertion::claimed_client_id(&assertion).ok_or_else(|| refused("iss is missing"))?;
    if client_id.as_deref().is_some_and(|id| id != claimed) {
        return Err(refused("client_id differs from the assertion's iss"));
    }
    let record = context.clients.get(connection, &claimed)?.ok_or_else(|| refused("unknown client"))?;
    let client = &record.client;
    let keys = match (&client.jwks, client.token_endpoint_auth_method) {
        (Some(keys), AuthMethod::PrivateKeyJwt) => keys,
        _ => return Err(refused("this client is not registered for private_key_jwt")),
    };
    let token_endpoint = format!("{}/token", context.issuer);
    let this_endpoint = format!("{}{endpoint}", context.issuer);
    // SPEC accepts the issuer identifier, the token endpoint's URL (and the endpoint's own), as
    // RFC 7523 does, in a string or an array; FAPI 2.0 §5.3.2.1 the issuer identifier alone, as
    // a string, which `profile = "fapi2"` holds every client to.
    let lenient = [context.issuer, token_endpoint.as_str(), this_endpoint.as_str()];
    let audience = match context.fapi.profile {
        Profile::Fapi2 => Audience { accepted: &lenient[..1], arrays: false },
        Profile::Oauth2 => Audience { accepted: &lenient, arrays: true },
    };
    let verified = client_assertion::verify(&assertion, &claimed, keys, audience, now).map_err(|why| refused(&why))?;
    let jti_hash = context.hasher.hash(&format!("assertion:{claimed}:{}", verified.jti));
    if !used_jtis::record_once(connection, &jti_hash, verified.expires_at)? {
        return Err(refused("its jti was used before"));
    }
    Ok(PresentedClient::Proven(ProvenClient { client_id: claimed }))
}

/// Whether an endpoint takes a public client's `client_id` alone as who is calling.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PublicClients {
    /// `/introspect`: only a client proven by its secret or key.
    Refused,
    /// `/revoke` (RFC 7009 §2.1): a public client has no secret to prove, and what it can do
    /// here — end its own tokens — anyone holding those tokens may do anyway.
    Identified,
}

/// The calling client: a confidential one proven by its secret or its key, or, where the
/// endpoint admits them, a public one by its `client_id`. Anything else is `invalid_client`
/// (401), including a confidential client's `client_id` without its secret.
pub fn authenticate_presented(
    connection: &mut DbConnection,
    context: &OAuthContext<'_>,
    presented: &PresentedClient,
    public_clients: PublicClients,
) -> Result<Client, AppError> {
    match presented {
        PresentedClient::Secret { client_id, client_secret } => {
            authenticate(connection, context, client_id, client_secret)?
                .ok_or_else(|| AppError::invalid_client("client authentication failed"))
        }
        PresentedClient::Proven(proven) => match context.clients.get(connection, proven.client_id())? {
            Some(record) if record.client.accepts(ClientProof::Assertion) => Ok(record.client.clone()),
            _ => Err(AppError::invalid_client("client authentication failed")),
        },
        PresentedClient::Assertion { .. } => {
            Err(AppError::internal(anyhow::anyhow!("a client assertion reached authentication unchecked")))
        }
        PresentedClient::Public { client_id } if public_clients == PublicClients::Identified => {
            match context.clients.get(connection, client_id)? {
                Some(record) if record.client.accepts(ClientProof::Nothing) => Ok(record.client.clone()),
                _ => Err(AppError::invalid_client("client authentication failed")),
            }
        }
        PresentedClient::Public { .. } => Err(AppError::invalid_client("this endpoint requires client authentication")),
        PresentedClient::None => Err(AppError::invalid_client("client authentication is required")),
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
    // The renewal covers the included scopes' subtrees: a parent's assignment is what lets the
    // client hold its children, and a spent child would otherwise keep the parent out.
    let renewed = tree.expand(scopes.iter().map(String::as_str));
    if let Some(consent_id) = crate::storage::grants::find_default(connection, &client.client_id, &client.client_id)? {
        crate::storage::grants::restart_existing(connection, &consent_id, &renewed, now)?;
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
    /// Only between the two secret methods: a key client stays one, a secret client too.
    pub token_endpoint_auth_method: Option<AuthMethod>,
    /// A `private_key_jwt` client's new key set (key rotation).
    #[schema(value_type = Option<Object>)]
    pub jwks: Option<serde_json::Value>,
    pub require_pushed_authorization_requests: Option<bool>,
    pub dpop_bound_access_tokens: Option<bool>,
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
        token_endpoint_auth_method: Some(patch.token_endpoint_auth_method.unwrap_or(client.token_endpoint_auth_method)),
        jwks: match patch.jwks {
            Some(jwks) => Some(jwks),
            None => client.jwks.as_ref().map(|set| serde_json::to_value(set).unwrap_or_default()),
        },
        require_pushed_authorization_requests: patch
            .require_pushed_authorization_requests
            .unwrap_or(client.require_pushed_authorization_requests),
        dpop_bound_access_tokens: patch.dpop_bound_access_tokens.unwrap_or(client.dpop_bound_access_tokens),
    };
    registration.validate()?;
    let method = registration.effective_auth_method();
    if method.uses_secret() != client.token_endpoint_auth_method.uses_secret() {
        return Err(AppError::invalid_request(
            "token_endpoint_auth_method: a client cannot switch between a secret and a key; register a new one",
        ));
    }
    let updated = Client {
        name: registration.name.trim().to_string(),
        redirect_uris: registration.redirect_uris.clone(),
        grant_types: registration.effective_grant_types(),
        security_level: registration.security_level.unwrap_or(client.security_level),
        token_format: registration.token_format.unwrap_or(client.token_format),
        can_introspect: registration.can_introspect,
        admin: registration.admin,
        token_endpoint_auth_method: method,
        jwks: registration.key_set()?,
        require_pushed_authorization_requests: registration.require_pushed_authorization_requests,
        dpop_bound_access_tokens: registration.dpop_bound_access_tokens,
        ..client.clone()
    };
    let assigned: Vec<String> =
        clients::assignments(connection, &client.client_id)?.into_iter().map(|a| a.scope_name).collect();
    for (name, level) in clients::scope_levels(connection, &assigned)? {
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

/// One scope assigned to a client, as the admin API shows it.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct AssignedScope {
    pub scope: String,
    /// Empty unless assigned for one bank (OBP).
    pub bank_id: String,
}

/// A client as the admin API shows it: its fields, its assigned scopes, and once, its secret.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct ClientView {
    #[serde(flatten)]
    pub client: Client,
    pub scopes: Vec<AssignedScope>,
    /// Present only in the answer to a create: shown once, never stored.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_secret: Option<String>,
}

fn view(connection: &mut DbConnection, client: Client, client_secret: Option<String>) -> Result<ClientView, AppError> {
    let scopes = clients::assignments(connection, &client.client_id)?
        .into_iter()
        .map(|a| AssignedScope { scope: a.scope_name, bank_id: a.bank_id })
        .collect();
    Ok(ClientView { client, scopes, client_secret })
}

/// The client, or `404 client_not_found`.
pub fn find(connection: &mut DbConnection, client_id: &str) -> Result<Client, AppError> {
    clients::find(connection, client_id)?
        .ok_or_else(|| AppError::not_found("client_not_found", format!("client {client_id:?} does not exist")))
}

/// Registers a client and shows it with its secret, once.
pub fn create(
    connection: &mut DbConnection,
    hasher: &SecretHasher,
    registration: &ClientRegistration,
    scopes: &[String],
    actor: &Actor,
    now: DateTime<Utc>,
) -> Result<ClientView, AppError> {
    let registered = register(connection, hasher, registration, scopes, None, actor, now)?;
    view(connection, registered.client, registered.client_secret)
}

pub fn list_views(connection: &mut DbConnection) -> Result<Vec<ClientView>, AppError> {
    let all = clients::list(connection)?;
    all.into_iter().map(|client| view(connection, client, None)).collect()
}

pub fn view_of(connection: &mut DbConnection, client_id: &str) -> Result<ClientView, AppError> {
    let client = find(connection, client_id)?;
    view(connection, client, None)
}

/// Applies an admin's patch in one transaction (`client.updated` with what changed).
pub fn edit(
    connection: &mut DbConnection,
    client_id: &str,
    patch: ClientPatch,
    actor: &Actor,
    now: DateTime<Utc>,
) -> Result<ClientView, AppError> {
    write_transaction(connection, |connection| {
        let client = find(connection, client_id)?;
        let updated = update(connection, &client, patch)?;
        let changed = changes(&to_json(&client), &to_json(&updated));
        if changed.as_object().is_some_and(|changed| !changed.is_empty()) {
            let event =
                Event::new(EventType::ClientUpdated, actor).client(client_id).detail(json!({"changed": changed}));
            events::record(connection, event, now)?;
        }
        view(connection, updated, None)
    })
}

fn to_json(client: &Client) -> serde_json::Value {
    serde_json::to_value(client).unwrap_or_default()
}

/// Replaces the assigned scopes in one transaction (renewing the client's grants of them).
pub fn assign(
    connection: &mut DbConnection,
    tree: &crate::domain::scope_tree::ScopeTree,
    client_id: &str,
    scopes: &[String],
    actor: &Actor,
    now: DateTime<Utc>,
) -> Result<ClientView, AppError> {
    write_transaction(connection, |connection| {
        let client = find(connection, client_id)?;
        replace_scopes(connection, tree, &client, scopes, now)?;
        let view = view(connection, client, None)?;
        let assigned: Vec<&str> = view.scopes.iter().map(|assigned| assigned.scope.as_str()).collect();
        let event =
            Event::new(EventType::ClientScopesAssigned, actor).client(client_id).detail(json!({"scopes": assigned}));
        events::record(connection, event, now)?;
        Ok(view)
    })
}

/// Deletes the client; its assignments, consents, codes and tokens go with it.
pub fn delete(
    connection: &mut DbConnection,
    client_id: &str,
    actor: &Actor,
    now: DateTime<Utc>,
) -> Result<(), AppError> {
    write_transaction(connection, |connection| {
        if !clients::delete(connection, client_id)? {
            return Err(AppError::not_found("client_not_found", "no such client"));
        }
        events::record(connection, Event::new(EventType::ClientDeleted, actor).client(client_id), now)
    })
}

/// A new secret for a confidential client (`client.secret_rotated`): the old one stops at once
/// on this instance and within `registry_poll_millis` on the others (the stored hash changes
/// and the client directory's counter moves in the same transaction). Returns the new secret,
/// shown once. A public client has no secret: `400 invalid_request`.
pub fn rotate_secret(
    connection: &mut DbConnection,
    hasher: &SecretHasher,
    client_id: &str,
    actor: &Actor,
    now: DateTime<Utc>,
) -> Result<String, AppError> {
    let secret = new_client_secret();
    let hash = hasher.hash(&secret);
    write_transaction(connection, |connection| {
        let client = find(connection, client_id)?;
        if !client.token_endpoint_auth_method.uses_secret() {
            return Err(AppError::invalid_request(format!(
                "a {} client has no secret to rotate",
                client.token_endpoint_auth_method
            )));
        }
        clients::set_secret_hash(connection, client_id, hash)?;
        events::record(connection, Event::new(EventType::ClientSecretRotated, actor).client(client_id), now)
    })?;
    Ok(secret)
}

pub fn count(connection: &mut DbConnection) -> Result<i64, AppError> {
    Ok(clients::count(connection)?)
}
