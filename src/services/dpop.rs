//! Accepting a DPoP proof (RFC 9449): the domain's checks (`domain::dpop`), then what needs the
//! server: its nonce, when `dpop_nonce` is on (§8), and the proof's `jti`, recorded in the
//! database so that a replay to any instance within the window is refused (§11.1).

use chrono::{DateTime, Duration, Utc};

use crate::domain::dpop::{self, Proof, ProofContext, ProofError};
use crate::error::AppError;
use crate::secrets::SecretHasher;
use crate::storage::{used_jtis, DbConnection, StorageError};

const NONCE_PURPOSE: &str = "dpop nonce";
/// A nonce is good in the window it was made in and the next one: 5 to 10 minutes.
const NONCE_WINDOW_SECONDS: i64 = 300;

/// The server's current nonce: its time window, signed with the server secret, so that every
/// instance makes and accepts the same nonces without storing them.
pub fn current_nonce(hasher: &SecretHasher, now: DateTime<Utc>) -> String {
    let window = now.timestamp().div_euclid(NONCE_WINDOW_SECONDS);
    hasher.sign(NONCE_PURPOSE, window.to_string().as_bytes())
}

fn nonce_is_fresh(hasher: &SecretHasher, nonce: &str, now: DateTime<Utc>) -> bool {
    let window = now.timestamp().div_euclid(NONCE_WINDOW_SECONDS);
    hasher
        .verify_signed(NONCE_PURPOSE, nonce)
        .and_then(|payload| String::from_utf8(payload).ok())
        .and_then(|text| text.parse::<i64>().ok())
        .is_some_and(|made| made == window || made == window - 1)
}

/// Why a proof is not accepted.
#[derive(Debug)]
pub enum Refusal {
    Invalid(ProofError),
    /// The server wants its nonce in the proof: answer `use_dpop_nonce` with this one.
    UseNonce(String),
    Storage(StorageError),
}

impl From<StorageError> for Refusal {
    fn from(error: StorageError) -> Self {
        Self::Storage(error)
    }
}

impl Refusal {
    /// The error at the authorization server's endpoints (RFC 9449 §5, §8).
    pub fn at_token_endpoint(self) -> AppError {
        match self {
            Self::Invalid(error) => AppError::bad_request("invalid_dpop_proof", error.to_string()),
            Self::UseNonce(nonce) => AppError::UseDpopNonce { nonce },
            Self::Storage(error) => error.into(),
        }
    }
}

/// Checks `proof` for the request in `request`, then its nonce (when `require_nonce`). The
/// proof is accepted once [`spend`] has recorded its `jti`.
pub fn verify(
    hasher: &SecretHasher,
    proof: &str,
    request: &ProofContext<'_>,
    require_nonce: bool,
) -> Result<Proof, Refusal> {
    let proof = dpop::check(proof, request).map_err(Refusal::Invalid)?;
    if require_nonce && !proof.nonce.as_deref().is_some_and(|nonce| nonce_is_fresh(hasher, nonce, request.now)) {
        return Err(Refusal::UseNonce(current_nonce(hasher, request.now)));
    }
    Ok(proof)
}

/// Records the proof's `jti` (keyed by its key's thumbprint too, so two clients' ids never
/// collide) for as long as its `iat` could pass; a proof seen before is refused.
pub fn spend(
    connection: &mut DbConnection,
    hasher: &SecretHasher,
    proof: &Proof,
    now: DateTime<Utc>,
) -> Result<(), Refusal> {
    let jti_hash = hasher.hash(&format!("dpop:{}:{}", proof.jkt, proof.jti));
    let keep_until = now + Duration::seconds(2 * dpop::WINDOW_SECONDS);
    if !used_jtis::record_once(connection, &jti_hash, keep_until)? {
        return Err(Refusal::Invalid(ProofError("this proof's jti was used before".into())));
    }
    Ok(())
}
