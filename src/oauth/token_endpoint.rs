//! `POST /token` as one operation (RFC 6749 §3.2): the grant-type dispatch, what each grant
//! type requires of the request, and the transaction policy. The HTTP handler parses the form
//! and renders the answer; everything between is here.

use chrono::{DateTime, Utc};
use std::sync::Arc;

use super::client_credentials::{self, ClientCredentialsRequest, Credential};
use super::code_exchange::{self, ExchangeRequest};
use crate::domain::scope::GrantType;
use crate::error::AppError;
use crate::services::clients::PresentedClient;
use crate::services::tokens::TokenResponse;
use crate::services::OAuthContext;
use crate::state::AppState;
use crate::storage::tokens::{self as storage_tokens, Recorded};
use crate::storage::{write_transaction, DbConnection};

/// The token request's parameters.
#[derive(Debug, Clone)]
pub struct TokenParameters {
    pub grant_type: String,
    pub client: PresentedClient,
    pub code: Option<String>,
    pub redirect_uri: Option<String>,
    pub code_verifier: Option<String>,
    pub refresh_token: Option<String>,
    pub scope: Option<String>,
    /// The thumbprint of the key of the request's DPoP proof, checked and spent.
    pub dpop_jkt: Option<String>,
}

fn required(value: &Option<String>, name: &str) -> Result<(), AppError> {
    match value {
        Some(_) => Ok(()),
        None => Err(AppError::invalid_request(format!("the {name} parameter is required"))),
    }
}

/// Answers one token request, storing what it issued before the answer, and counts the
/// token issued by its grant type (metrics).
pub async fn respond(state: &Arc<AppState>, parameters: TokenParameters) -> Result<TokenResponse, AppError> {
    // A token is only ever issued for one of the grant types we know.
    let grant_type = parameters.grant_type.parse::<GrantType>().ok();
    let answer = issue(state, parameters).await;
    if let (Ok(_), Some(grant_type)) = (&answer, grant_type) {
        state.metrics.token_issued(grant_type);
    }
    answer
}

/// The token request's answer.
///
/// A client-credentials token is decided on reads and signed outside any transaction; when
/// only its row remains to be written (the client's consent and grants exist), the row goes
/// through the group commit (`storage::writer`). If a revocation deleted the consent in
/// between, the request starts over in one write transaction and meets the revocation.
async fn issue(state: &Arc<AppState>, parameters: TokenParameters) -> Result<TokenResponse, AppError> {
    if parameters.grant_type != "client_credentials" {
        return state
            .oauth_operation(move |connection, context, now| token(connection, context, parameters, now))
            .await;
    }
    validate_scope_syntax(parameters.scope.as_deref())?;
    let request = credentials_request(parameters)?;
    let request = Arc::new(request);
    let reading = Arc::clone(&request);
    let unrecorded = state
        .oauth_read(move |connection, context, now| client_credentials::exchange(connection, context, &reading, now))
        .await?;
    if let Some((response, row)) = unrecorded.into_token_row() {
        match state.db.write(move |connection| storage_tokens::insert_under_consent(connection, row)).await? {
            Recorded::Stored => return Ok(response),
            Recorded::ConsentGone => {}
        }
    }
    // A first issuance (it creates the consent and grants), or a consent revoked meanwhile:
    // decided again and written in one transaction.
    state
        .oauth_operation(move |connection, context, now| {
            client_credentials_in_one_transaction(connection, context, &request, now)
        })
        .await
}

fn credentials_request(parameters: TokenParameters) -> Result<ClientCredentialsRequest, AppError> {
    let credential = match parameters.client {
        PresentedClient::Secret { client_id, client_secret } => Credential::Secret { client_id, client_secret },
        PresentedClient::Proven(proven) => Credential::Proven(proven),
        _ => return Err(AppError::invalid_client("client_credentials requires client authentication")),
    };
    Ok(ClientCredentialsRequest { credential, scope: parameters.scope, dpop_jkt: parameters.dpop_jkt })
}

/// The client-credentials grant decided and written in one write transaction, which a refusal
/// rolls back: for a client's first issuance, which creates its consent and grants.
fn client_credentials_in_one_transaction(
    connection: &mut DbConnection,
    context: &OAuthContext<'_>,
    request: &ClientCredentialsRequest,
    now: DateTime<Utc>,
) -> Result<TokenResponse, AppError> {
    write_transaction(connection, |connection| {
        client_credentials::exchange(connection, context, request, now)?.write(connection, context.tree, now)
    })
}

/// The code and refresh exchanges (client credentials are [`respond`]'s): they commit their
/// refusals too (a replayed code or a reused refresh token revokes what it produced), and roll
/// back only internal failures.
pub fn token(
    connection: &mut DbConnection,
    context: &OAuthContext<'_>,
    parameters: TokenParameters,
    now: DateTime<Utc>,
) -> Result<TokenResponse, AppError> {
    validate_scope_syntax(parameters.scope.as_deref())?;
    let TokenParameters { grant_type, client, code, redirect_uri, code_verifier, refresh_token, scope, dpop_jkt } =
        parameters;
    match grant_type.as_str() {
        "authorization_code" | "refresh_token" => {
            let (client_id, client_secret, proven) = match client {
                PresentedClient::Secret { client_id, client_secret } => (client_id, Some(client_secret), None),
                PresentedClient::Public { client_id } => (client_id, None, None),
                PresentedClient::Proven(proven) => (proven.client_id().to_string(), None, Some(proven)),
                PresentedClient::Assertion { .. } | PresentedClient::None => {
                    return Err(AppError::invalid_client("client authentication is required"))
                }
            };
            let is_refresh = grant_type == "refresh_token";
            if is_refresh {
                required(&refresh_token, "refresh_token")?;
            } else {
                required(&code, "code")?;
                required(&redirect_uri, "redirect_uri")?;
            }
            let request = ExchangeRequest {
                client_id,
                client_secret,
                code,
                redirect_uri,
                code_verifier,
                refresh_token,
                scope,
                grant_type: if is_refresh { "refresh_token" } else { "authorization_code" },
                proven,
                dpop_jkt,
            };
            code_exchange::exchange_in_transaction(connection, context, &request, now)
        }
        other => {
            Err(AppError::bad_request("unsupported_grant_type", format!("grant type {other:?} is not supported here")))
        }
    }
}

/// RFC 6749 §3.3: scope tokens are printable ASCII without space, `"` or `\`.
fn validate_scope_syntax(scope: Option<&str>) -> Result<(), AppError> {
    let valid = scope.is_none_or(|scope| {
        scope.bytes().all(|b| b == b' ' || (b'\x21'..=b'\x7e').contains(&b) && b != b'"' && b != b'\\')
    });
    if valid {
        Ok(())
    } else {
        Err(AppError::bad_request("invalid_scope", "the scope parameter is malformed"))
    }
}
