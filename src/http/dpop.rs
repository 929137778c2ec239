//! The `DPoP` header of a request (RFC 9449 §4): at most one proof, checked for this request's
//! method and URL, its nonce (when `dpop_nonce` is on) and its `jti` spent
//! (`services::dpop::accept`).

use actix_web::http::header::AUTHORIZATION;
use actix_web::{HttpRequest, HttpResponse};
use std::sync::Arc;

use crate::error::AppError;

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

/// The algorithms we take in proofs, as a resource's DPoP challenge names them (RFC 9449 §7.1).
pub const DPOP_CHALLENGE: &str = r#"DPoP algs="ES256 PS256 EdDSA""#;

/// 401 `invalid_dpop_proof` (RFC 9449 §7.1) for a token under the DPoP scheme whose proof fails.
pub fn proof_refusal(why: String) -> AppError {
    AppError::Unauthorized {
        code: "invalid_dpop_proof",
        description: why,
        challenge: format!("{DPOP_CHALLENGE}, error=\"invalid_dpop_proof\""),
    }
}

/// The access token a request to a protected resource carries (RFC 6750 §2.1, RFC 9449 §7.1).
pub enum PresentedToken {
    /// No `Authorization: Bearer …` or `Authorization: DPoP …` header.
    Missing,
    /// The token, with the thumbprint of its proof's key when it came under the DPoP scheme
    /// (the proof checked for this request and this token, `ath` included, and spent). Whether
    /// the token is bound to that key is the resource's to compare.
    Token { token: String, proof_jkt: Option<String> },
    /// Under the DPoP scheme without a proof, or with a bad one: why.
    BadProof(String),
}

/// The request's access token, every resource's one reading of it: the demo bank's APIs, the
/// admin API and Grant Management's API.
pub async fn presented_token(state: &Arc<AppState>, request: &HttpRequest) -> Result<PresentedToken, AppError> {
    let Some((token, dpop)) = authorization(request) else {
        return Ok(PresentedToken::Missing);
    };
    if !dpop {
        return Ok(PresentedToken::Token { token, proof_jkt: None });
    }
    Ok(match accepted_proof(state, request, Some(token.clone()), false).await {
        Ok(Some(proof)) => PresentedToken::Token { token, proof_jkt: Some(proof.jkt) },
        Ok(None) => PresentedToken::BadProof("a DPoP proof is required with a DPoP token".into()),
        Err(Refusal::Invalid(error)) => PresentedToken::BadProof(error.to_string()),
        Err(refusal) => return Err(refusal.at_token_endpoint()),
    })
}

/// The access token and whether it came under the DPoP scheme.
fn authorization(request: &HttpRequest) -> Option<(String, bool)> {
    let value = request.headers().get(AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    let token = token.trim();
    if token.is_empty() {
        return None;
    }
    let dpop = scheme.eq_ignore_ascii_case("dpop");
    (dpop || scheme.eq_ignore_ascii_case("bearer")).then(|| (token.to_string(), dpop))
}
