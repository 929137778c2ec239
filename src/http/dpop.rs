//! The `DPoP` header of a request (RFC 9449 §4): at most one proof, checked for this request's
//! method and URL, its nonce (when `dpop_nonce` is on) and its `jti` spent
//! (`services::dpop::accept`).

use actix_web::{HttpRequest, HttpResponse};
use std::sync::Arc;

use crate::domain::dpop::{Proof, ProofContext, ProofError};
use crate::services::dpop::{self, Refusal};
use crate::state::AppState;

/// The request's DPoP proof, accepted, or None when it carries none. `access_token`: at a
/// resource, the token the proof must name in `ath`. `nonces`: whether the server's nonce
/// setting applies here (the authorization server's endpoints).
pub async fn accepted_proof(
    state: &Arc<AppState>,
    request: &HttpRequest,
    access_token: Option<String>,
    nonces: bool,
) -> Result<Option<Proof>, Refusal> {
    let mut headers = request.headers().get_all("DPoP");
    let Some(header) = headers.next() else {
        return Ok(None);
    };
    if headers.next().is_some() {
        return Err(Refusal::Invalid(ProofError("send one DPoP header, not several".into())));
    }
    let proof = header.to_str().map_err(|_| Refusal::Invalid(ProofError("the DPoP header is not a JWT".into())))?;
    let url = format!("{}{}", state.settings.issuer, request.path());
    let now = state.clock.now();
    let context =
        ProofContext { method: request.method().as_str(), url: &url, access_token: access_token.as_deref(), now };
    let proof = dpop::verify(&state.hasher, proof, &context, nonces && state.settings.dpop_nonce)?;
    let (spending, shared) = (proof.clone(), Arc::clone(state));
    state
        .db
        .write(move |connection| Ok(dpop::spend(connection, &shared.hasher, &spending, now)))
        .await
        .map_err(Refusal::Storage)??;
    Ok(Some(proof))
}

/// Adds the server's current nonce to an answer of the authorization server, when nonces are on
/// (RFC 9449 §8.2: a client may use it in its next proof).
pub fn with_nonce(state: &AppState, mut response: HttpResponse) -> HttpResponse {
    if state.settings.dpop_nonce {
        if let Ok(value) = dpop::current_nonce(&state.hasher, state.clock.now()).parse() {
            response.headers_mut().insert(actix_web::http::header::HeaderName::from_static("dpop-nonce"), value);
        }
    }
    response
}
