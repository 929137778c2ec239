//! `POST /token` (RFC 6749 §3.2): parse, authenticate the client, accept a DPoP proof,
//! delegate to `oauth::token_endpoint`, render.

use actix_web::{web, HttpRequest, HttpResponse};

use super::client_auth::authenticated_client;
use super::dpop::{accepted_proof, with_nonce};
use super::form::OAuthForm;
use crate::error::AppError;
use crate::oauth::token_endpoint::{self, TokenParameters};
use crate::services::tokens::TokenResponse;
use crate::state::AppState;

pub async fn token(
    request: HttpRequest,
    form: OAuthForm,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AppError> {
    let grant_type = form.required("grant_type")?.to_string();
    let proof = accepted_proof(&state, &request, None, true).await.map_err(|refusal| refusal.at_token_endpoint())?;
    let owned = |key: &str| form.get(key).map(str::to_string);
    let parameters = TokenParameters {
        grant_type,
        client: authenticated_client(&state, &request, &form).await?,
        code: owned("code"),
        redirect_uri: owned("redirect_uri"),
        code_verifier: owned("code_verifier"),
        refresh_token: owned("refresh_token"),
        scope: owned("scope"),
        dpop_jkt: proof.map(|proof| proof.jkt),
    };
    let response = token_endpoint::respond(&state, parameters).await?;
    Ok(with_nonce(&state, token_response(&response)))
}

/// RFC 6749 §5.1: the token in JSON, never cached.
pub fn token_response(response: &TokenResponse) -> HttpResponse {
    HttpResponse::Ok().insert_header(("Cache-Control", "no-store")).insert_header(("Pragma", "no-cache")).json(response)
}
