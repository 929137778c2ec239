//! `GET` and `DELETE /grants/{grant_id}` (Grant Management for OAuth 2.0 §6): a client reads
//! or ends a grant its users gave it, with an access token of its own (bearer, or DPoP-bound
//! with its proof) that carries `grant_management_query` or `grant_management_revoke`.

use actix_web::{web, HttpRequest, HttpResponse};

use super::dpop::{presented_token, proof_refusal, PresentedToken, DPOP_CHALLENGE};
use crate::domain::client::Client;
use crate::error::AppError;
use crate::services::bearer::{self, BearerDenied};
use crate::services::grant_management::{self, QUERY_SCOPE, REVOKE_SCOPE};
use crate::state::AppState;

pub async fn show(
    request: HttpRequest,
    grant_id: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AppError> {
    let (token, proof_jkt) = presented(&state, &request).await?;
    let grant_id = grant_id.into_inner();
    let view = state
        .oauth_operation(move |connection, context, now| {
            let caller = authorized(
                bearer::client_with_scope(connection, context, &token, proof_jkt.as_deref(), QUERY_SCOPE, now)?,
                QUERY_SCOPE,
            )?;
            grant_management::query(connection, context, &caller, &grant_id, now)
        })
        .await?;
    Ok(HttpResponse::Ok().insert_header(("Cache-Control", "no-store")).json(view))
}

pub async fn revoke(
    request: HttpRequest,
    grant_id: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AppError> {
    let (token, proof_jkt) = presented(&state, &request).await?;
    let grant_id = grant_id.into_inner();
    state
        .oauth_operation(move |connection, context, now| {
            let caller = authorized(
                bearer::client_with_scope(connection, context, &token, proof_jkt.as_deref(), REVOKE_SCOPE, now)?,
                REVOKE_SCOPE,
            )?;
            grant_management::revoke(connection, &caller, &grant_id, now)
        })
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

/// The caller's token and its proof's key; no token reads as an empty one, which is invalid.
async fn presented(state: &web::Data<AppState>, request: &HttpRequest) -> Result<(String, Option<String>), AppError> {
    match presented_token(state, request).await? {
        PresentedToken::Token { token, proof_jkt } => Ok((token, proof_jkt)),
        PresentedToken::Missing => Ok((String::new(), None)),
        PresentedToken::BadProof(why) => Err(proof_refusal(why)),
    }
}

/// RFC 6750 §3.1: no or a bad token is 401 `invalid_token`, a token without the scope 403.
fn authorized(checked: Result<Client, BearerDenied>, scope: &str) -> Result<Client, AppError> {
    match checked {
        Ok(client) => Ok(client),
        Err(BearerDenied::InsufficientScope) => Err(AppError::Forbidden {
            code: "insufficient_scope",
            description: format!("the token must carry {scope}, issued to the grant's client by client credentials"),
        }),
        Err(BearerDenied::BadProof(why)) => Err(proof_refusal(why)),
        Err(BearerDenied::Missing | BearerDenied::Invalid) => Err(AppError::Unauthorized {
            code: "invalid_token",
            description: "a valid bearer token is required".into(),
            challenge: format!(r#"Bearer realm="scopegate", error="invalid_token", scope="{scope}", {DPOP_CHALLENGE}"#),
        }),
    }
}
