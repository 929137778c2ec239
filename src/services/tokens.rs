//! Issuing access tokens: a signed JWT (RFC 9068) or an opaque random token, recorded in the
//! database either way (hashed when opaque) so they can be introspected and revoked.

use chrono::{DateTime, Duration, Utc};
use jsonwebtoken::{Algorithm, Header};
use std::collections::BTreeSet;

use super::OAuthContext;
use crate::domain::client::{Client, TokenFormat};
use crate::domain::fapi::Presentation;
use crate::domain::negotiation::format_scope;
use crate::domain::scope::SecurityLevel;
use crate::domain::token::{token_format, AccessTokenClaims, Confirmation, Subject, JWT_ACCESS_TOKEN_TYPE};
use crate::error::AppError;
use crate::secrets::{random_token, time_ordered_id};
use crate::storage::tokens::{self, AccessTokenRow};
use crate::storage::DbConnection;

/// A token response's content (RFC 6749 §5.1).
#[derive(Debug, Clone, serde::Serialize)]
pub struct TokenResponse {
    pub access_token: String,
    pub token_type: &'static str,
    pub expires_in: i64,
    pub scope: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    /// The user's grant the tokens belong to (Grant Management): code flow and refresh only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub grant_id: Option<String>,
}

pub struct AccessTokenRequest<'a> {
    pub client: &'a Client,
    pub subject: &'a Subject,
    pub scopes: &'a BTreeSet<String>,
    /// The refresh family the token belongs to (code flow), so revoking it ends the token.
    pub family_id: Option<&'a str>,
    /// The consent whose grants decide, at introspection, what the token may still do.
    pub consent_id: Option<&'a str>,
    /// The DPoP key the token is bound to (its thumbprint), if any.
    pub dpop_jkt: Option<&'a str>,
}

/// Issues and records one access token. Returns the token and its lifetime in seconds.
pub fn issue_access_token(
    connection: &mut DbConnection,
    context: &OAuthContext<'_>,
    request: &AccessTokenRequest<'_>,
    now: DateTime<Utc>,
) -> Result<(String, i64), AppError> {
    let minted = mint_access_token(context, request, now)?;
    tokens::insert_access_token(connection, minted.row)?;
    Ok((minted.token, minted.lifetime))
}

/// Whether a token for `scopes` may be issued to `client`, bound to `dpop_jkt` or not: the
/// client's own DPoP requirement (RFC 9449 §5.2) and the FAPI 2.0 rule for what it carries.
/// Every issuance path mints through [`mint_access_token`], which checks it, so none can skip
/// it; a refresh also asks before it spends the refresh token.
pub fn check_binding(
    context: &OAuthContext<'_>,
    client: &Client,
    scopes: &BTreeSet<String>,
    dpop_jkt: Option<&str>,
) -> Result<(), AppError> {
    if client.dpop_bound_access_tokens && dpop_jkt.is_none() {
        return Err(AppError::bad_request(
            "invalid_dpop_proof",
            "this client's access tokens are DPoP-bound (dpop_bound_access_tokens): send a DPoP proof",
        ));
    }
    let levels: Vec<(&str, SecurityLevel)> = scopes
        .iter()
        .filter_map(|name| context.tree.definition(name).map(|scope| (name.as_str(), scope.fields.security_level)))
        .collect();
    let presentation = Presentation {
        pushed: None,
        names_redirect_uri: None,
        client_auth: client.token_endpoint_auth_method,
        dpop_bound: Some(dpop_jkt.is_some()),
    };
    context.fapi.check(&levels, presentation).map_err(|refusal| AppError::invalid_request(refusal.to_string()))
}

/// An access token signed or drawn, and the row that must be stored before it is handed out.
pub struct MintedToken {
    pub token: String,
    pub lifetime: i64,
    pub row: AccessTokenRow,
}

/// Makes one access token without touching the database: the signature (the costly part)
/// is made outside any write transaction, so writers never wait on it.
pub fn mint_access_token(
    context: &OAuthContext<'_>,
    request: &AccessTokenRequest<'_>,
    now: DateTime<Utc>,
) -> Result<MintedToken, AppError> {
    check_binding(context, request.client, request.scopes, request.dpop_jkt)?;
    let lifetime = context.lifetimes.access_token;
    let expires_at = now + Duration::seconds(lifetime);
    let jti = time_ordered_id(now);
    let scope = format_scope(request.scopes);
    let format = token_format(request.client.token_format, context.tree, request.scopes);
    let (token, token_hash) = match format {
        TokenFormat::Jwt => {
            let claims = AccessTokenClaims {
                iss: context.issuer.to_string(),
                sub: request.subject.id().to_string(),
                aud: context.issuer.to_string(),
                client_id: request.client.client_id.clone(),
                scope: scope.clone(),
                exp: expires_at.timestamp(),
                iat: now.timestamp(),
                jti: jti.clone(),
                username: request.subject.username().map(str::to_string),
                cnf: request.dpop_jkt.map(|jkt| Confirmation { jkt: jkt.to_string() }),
            };
            let mut header = Header::new(Algorithm::ES256);
            header.typ = Some(JWT_ACCESS_TOKEN_TYPE.to_string());
            let signing_key = context.signing_key.get();
            header.kid = Some(signing_key.kid.clone());
            let jwt = signing_key
                .sign_jwt(&header, &claims)
                .map_err(|error| AppError::internal(anyhow::anyhow!("cannot sign the access token: {error}")))?;
            (jwt, None)
        }
        TokenFormat::Opaque => {
            let token = random_token(32);
            let hash = context.hasher.hash(&token);
            (token, Some(hash))
        }
    };
    let row = AccessTokenRow {
        jti,
        token_hash,
        format,
        client_id: request.client.client_id.clone(),
        subject: request.subject.id().to_string(),
        user_id: request.subject.user_id().map(str::to_string),
        scope,
        family_id: request.family_id.map(str::to_string),
        consent_id: request.consent_id.map(str::to_string),
        issued_at: now,
        expires_at,
        revoked_at: None,
        dpop_jkt: request.dpop_jkt.map(str::to_string),
    };
    Ok(MintedToken { token, lifetime, row })
}
