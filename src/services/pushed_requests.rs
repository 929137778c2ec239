//! Pushed authorization requests (RFC 9126): a client sends the `/authorize` parameters to
//! `/par` over its authenticated back channel and gets a `request_uri` that `/authorize` then
//! uses once, within 60 seconds.
//!
//! Around oxide-auth, not inside it: `/par` checks the parameters by running the same
//! authorization flow `/authorize` runs, without a user (so it stops at "sign in first" when
//! the request is sound, or names what is wrong), and `/authorize` turns a `request_uri` back
//! into the parameters before running that flow.

use chrono::{DateTime, Duration, Utc};
use std::collections::BTreeMap;

use super::OAuthContext;
use crate::domain::client::Client;
use crate::domain::dpop::Proof;
use crate::error::AppError;
use crate::oauth::authorization::{self, AuthorizeOutcome, AuthorizeParams, Channel, Decision};
use crate::secrets::{random_token, SecretHasher};
use crate::storage::pushed_requests::{self, PushedRequest, PushedRow};
use crate::storage::{DbConnection, StorageError};

pub const REQUEST_URI_PREFIX: &str = "urn:ietf:params:oauth:request_uri:";
/// How long a pushed request stays usable (RFC 9126 §2.2 suggests a short time; FAPI 2.0 asks
/// for under 600 s).
pub const LIFETIME_SECONDS: i64 = 60;

/// The answer of `/par`.
#[derive(Debug, serde::Serialize)]
pub struct Pushed {
    pub request_uri: String,
    pub expires_in: i64,
}

/// The authorization parameters of a `/par` body, without the client's credentials.
pub fn parameters_of<'a>(body: impl Iterator<Item = (&'a str, &'a str)>) -> AuthorizeParams {
    const CREDENTIALS: [&str; 3] = ["client_secret", "client_assertion", "client_assertion_type"];
    let parameters: BTreeMap<String, String> = body
        .filter(|(key, _)| !CREDENTIALS.contains(key))
        .map(|(key, value)| (key.to_string(), value.to_string()))
        .collect();
    AuthorizeParams(parameters)
}

/// RFC 9449 §10.1: a DPoP proof sent to `/par` binds the code to its key, as `dpop_jkt` would;
/// when both are sent they must name the same key.
pub fn bind_to_proof(parameters: &mut AuthorizeParams, proof: Option<&Proof>) -> Result<(), AppError> {
    let Some(proof) = proof else {
        return Ok(());
    };
    match parameters.get("dpop_jkt") {
        Some(jkt) if jkt != proof.jkt => {
            Err(AppError::bad_request("invalid_dpop_proof", "dpop_jkt names another key than the DPoP proof's"))
        }
        _ => {
            parameters.0.insert("dpop_jkt".into(), proof.jkt.clone());
            Ok(())
        }
    }
}

/// Checks what `caller` pushed as `/authorize` would, without a user: what it would refuse is
/// refused here, as a 400 with the error `/authorize` would have redirected with.
pub fn check(
    connection: &mut DbConnection,
    context: &OAuthContext<'_>,
    caller: &Client,
    parameters: &mut AuthorizeParams,
    now: DateTime<Utc>,
) -> Result<(), AppError> {
    if parameters.get("request_uri").is_some() {
        return Err(AppError::invalid_request("a pushed request cannot itself carry a request_uri"));
    }
    match parameters.get("client_id") {
        Some(client_id) if client_id != caller.client_id => {
            return Err(AppError::invalid_request("client_id differs from the authenticated client"));
        }
        Some(_) => {}
        None => {
            parameters.0.insert("client_id".into(), caller.client_id.clone());
        }
    }
    match authorization::authorize(connection, context, parameters, Channel::Pushed, None, Decision::Ask, now)? {
        AuthorizeOutcome::ErrorPage { message } => Err(AppError::invalid_request(message)),
        AuthorizeOutcome::Redirect(url) => Err(redirected_error(&url)),
        AuthorizeOutcome::Login | AuthorizeOutcome::Consent(_) | AuthorizeOutcome::Decided { .. } => Ok(()),
    }
}

/// The error `/authorize` would have sent back to the client, as `/par`'s 400.
fn redirected_error(url: &str) -> AppError {
    let query: BTreeMap<String, String> =
        url::Url::parse(url).map(|url| url.query_pairs().into_owned().collect()).unwrap_or_default();
    const KNOWN: [&str; 5] =
        ["invalid_scope", "unauthorized_client", "unsupported_response_type", "access_denied", "login_required"];
    let error = query.get("error").and_then(|error| KNOWN.into_iter().find(|known| known == error));
    let description = query.get("error_description").cloned().unwrap_or_else(|| "the request was refused".into());
    AppError::bad_request(error.unwrap_or("invalid_request"), description)
}

/// Stores the checked parameters under a new `request_uri` (only its keyed hash at rest).
pub fn store(
    connection: &mut DbConnection,
    hasher: &SecretHasher,
    client_id: &str,
    parameters: &AuthorizeParams,
    now: DateTime<Utc>,
) -> Result<Pushed, StorageError> {
    let handle = random_token(32);
    let row = PushedRow {
        handle_hash: hasher.hash(&handle),
        client_id: client_id.to_string(),
        // A map of strings always serialises.
        parameters: serde_json::to_string(&parameters.0).unwrap_or_default(),
        expires_at: now + Duration::seconds(LIFETIME_SECONDS),
    };
    pushed_requests::insert(connection, row)?;
    Ok(Pushed { request_uri: format!("{REQUEST_URI_PREFIX}{handle}"), expires_in: LIFETIME_SECONDS })
}

/// How `/authorize` takes a pushed request: `Peek` while the user has yet to sign in (the
/// request must survive the round trip through `/login`), `Use` once it goes on to a consent
/// page or a redirect, which carry the parameters from there on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Taking {
    Peek,
    Use,
}

/// The pushed parameters the `/authorize` query names, or why there are none. Parameters on
/// the query other than `client_id` and `request_uri` are ignored (RFC 9126 §4): only what
/// the client pushed over its authenticated channel counts.
pub fn resolve(
    connection: &mut DbConnection,
    context: &OAuthContext<'_>,
    query: &AuthorizeParams,
    taking: Taking,
    now: DateTime<Utc>,
) -> Result<Result<AuthorizeParams, &'static str>, StorageError> {
    let Some(handle) = query.get("request_uri").and_then(|uri| uri.strip_prefix(REQUEST_URI_PREFIX)) else {
        return Ok(Err("The request_uri is not one this server issued."));
    };
    let (hash, client_id) = (context.hasher.hash(handle), query.get("client_id").unwrap_or_default());
    let found = match taking {
        Taking::Peek => pushed_requests::peek(connection, &hash, client_id, now)?,
        Taking::Use => pushed_requests::consume(connection, &hash, client_id, now)?,
    };
    Ok(match found {
        Some(PushedRequest { mut parameters, .. }) => {
            // Kept with the parameters, through the consent page too: the request came pushed.
            parameters.insert("request_uri".into(), query.get("request_uri").unwrap_or_default().to_string());
            Ok(AuthorizeParams(parameters))
        }
        None => Err(
            "The request_uri is unknown, expired, already used or another client's. Please start again from the app.",
        ),
    })
}
