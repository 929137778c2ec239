//! DPoP proofs (RFC 9449 §4.3): the checks one proof must pass, in the RFC's order. What a
//! proof's `jti` was used for before, and whether its nonce is fresh, need storage and the
//! server's key: the service checks those (`services::dpop`).

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::jose::{self, JoseError};

/// `typ` of a DPoP proof.
pub const PROOF_TYPE: &str = "dpop+jwt";
/// How far a proof's `iat` may be from our clock, either way; also how long its `jti` is kept.
pub const WINDOW_SECONDS: i64 = 60;

/// What the request the proof came with looked like.
pub struct ProofContext<'a> {
    /// The HTTP method, upper case.
    pub method: &'a str,
    /// The URL the request was sent to, as the client addressed it (our issuer + path).
    pub url: &'a str,
    /// At a resource: the access token the proof must be bound to (`ath`).
    pub access_token: Option<&'a str>,
    pub now: DateTime<Utc>,
}

/// A proof that passed every check but the `jti` replay and the nonce.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Proof {
    /// The RFC 7638 thumbprint of the proof's key: what tokens are bound to (`cnf.jkt`).
    pub jkt: String,
    pub jti: String,
    pub nonce: Option<String>,
}

/// Why a proof is refused: `invalid_dpop_proof` with this description.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid DPoP proof: {0}")]
pub struct ProofError(pub String);

impl From<JoseError> for ProofError {
    fn from(error: JoseError) -> Self {
        Self(error.0)
    }
}

fn refuse<T>(message: impl Into<String>) -> Result<T, ProofError> {
    Err(ProofError(message.into()))
}

/// Whether a token bound to `bound` (its `cnf.jkt`, if any) may serve a request whose DPoP
/// proof is by `proven` (when it came under the DPoP scheme), RFC 9449 §7.1: a bound token only
/// with a proof by its key, an unbound one only as a bearer token. Every resource asks this,
/// scopegate's own APIs and the demo bank's; the refusal says why.
pub fn binding_refusal(bound: Option<&str>, proven: Option<&str>) -> Option<&'static str> {
    match (bound, proven) {
        (Some(bound), Some(proven)) if bound == proven => None,
        (None, None) => None,
        (Some(_), Some(_)) => Some("the DPoP proof is by another key than the token's"),
        (Some(_), None) => Some("this token is DPoP-bound: send it as DPoP with a proof by its key"),
        (None, Some(_)) => Some("this token is not DPoP-bound: send it as Bearer"),
    }
}

/// Checks one DPoP proof against the request it came with.
pub fn check(proof: &str, request: &ProofContext<'_>) -> Result<Proof, ProofError> {
    let jwt = jose::read_header(proof)?;
    if jwt.typ() != Some(PROOF_TYPE) {
        return refuse(format!("typ must be {PROOF_TYPE:?}"));
    }
    let Some(key) = jwt.header.get("jwk") else {
        return refuse("the header carries no jwk");
    };
    let key = jose::public_key(key)?;
    let claims = jwt.verify(&key)?;
    let text = |name: &str| claims.get(name).and_then(Value::as_str).filter(|value| !value.is_empty());
    let Some(jti) = text("jti") else {
        return refuse("jti is missing");
    };
    if jti.len() > 256 {
        return refuse("jti is longer than 256 characters");
    }
    if text("htm") != Some(request.method) {
        return refuse(format!("htm must be {:?}", request.method));
    }
    if !text("htu").is_some_and(|htu| same_target(htu, request.url)) {
        return refuse(format!("htu must be {:?}", request.url));
    }
    let Some(iat) = claims.get("iat").and_then(Value::as_i64) else {
        return refuse("iat is missing");
    };
    if (request.now.timestamp() - iat).abs() > WINDOW_SECONDS {
        return refuse(format!("iat is more than {WINDOW_SECONDS} s away from the server's time"));
    }
    if let Some(access_token) = request.access_token {
        match text("ath") {
            Some(ath) if ath == jose::sha256_base64url(access_token) => {}
            Some(_) => return refuse("ath does not match the access token"),
            None => return refuse("ath is missing"),
        }
    }
    Ok(Proof { jkt: jose::thumbprint(&key)?, jti: jti.to_string(), nonce: text("nonce").map(str::to_string) })
}

/// RFC 9449 §4.3 (9): `htu` matches the request's URI without its query and fragment, after
/// the normalisation of RFC 3986 §6.2.2 and §6.2.3 (case of scheme and host, default ports,
/// dot segments), which the URL parser applies.
fn same_target(htu: &str, url: &str) -> bool {
    let without_query = |text: &str| {
        url::Url::parse(text).ok().map(|mut url| {
            url.set_query(None);
            url.set_fragment(None);
            url
        })
    };
    matches!((without_query(htu), without_query(url)), (Some(a), Some(b)) if a == b)
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_lc_rs::rand::SystemRandom;
    use aws_lc_rs::signature::{Ed25519KeyPair, KeyPair, RsaKeyPair, RSA_PSS_SHA256};
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine;
    use serde_json::json;

    const URL: &str = "https://as.example/token";

    fn now() -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000, 0).unwrap()
    }

    /// A proof for POST /token, its signing input signed by `sign`.
    fn proof(alg: &str, jwk: Value, sign: impl Fn(&[u8]) -> Vec<u8>) -> String {
        let header = json!({"typ": PROOF_TYPE, "alg": alg, "jwk": jwk});
        let claims = json!({"jti": "j1", "htm": "POST", "htu": URL, "iat": now().timestamp()});
        let input =
            format!("{}.{}", URL_SAFE_NO_PAD.encode(header.to_string()), URL_SAFE_NO_PAD.encode(claims.to_string()));
        format!("{input}.{}", URL_SAFE_NO_PAD.encode(sign(input.as_bytes())))
    }

    fn request() -> ProofContext<'static> {
        ProofContext { method: "POST", url: URL, access_token: None, now: now() }
    }

    #[test]
    fn eddsa_and_ps256_proofs_are_accepted_as_well_as_es256() {
        let ed = Ed25519KeyPair::generate().unwrap();
        let jwk = json!({"kty": "OKP", "crv": "Ed25519", "x": URL_SAFE_NO_PAD.encode(ed.public_key().as_ref())});
        let checked = check(&proof("EdDSA", jwk, |input| ed.sign(input).as_ref().to_vec()), &request()).unwrap();
        assert_eq!(checked.jti, "j1");

        let rsa = RsaKeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048).unwrap();
        let components = aws_lc_rs::rsa::PublicKeyComponents::<Vec<u8>>::from(rsa.public_key());
        let jwk = json!({"kty": "RSA", "n": URL_SAFE_NO_PAD.encode(&components.n), "e": URL_SAFE_NO_PAD.encode(&components.e)});
        let sign = |input: &[u8]| {
            let mut signature = vec![0; rsa.public_modulus_len()];
            rsa.sign(&RSA_PSS_SHA256, &SystemRandom::new(), input, &mut signature).unwrap();
            signature
        };
        assert!(check(&proof("PS256", jwk.clone(), sign), &request()).is_ok());
        // The same RSA key claiming RS256 (PKCS#1 v1.5) is refused by name.
        assert!(check(&proof("RS256", jwk, sign), &request()).unwrap_err().0.contains("is refused"));
    }

    #[test]
    fn htu_ignores_query_fragment_case_and_default_port() {
        assert!(same_target("https://AS.example.com:443/token?x=1#f", "https://as.example.com/token"));
        assert!(same_target("http://127.0.0.1:8080/a/../token", "http://127.0.0.1:8080/token"));
        assert!(!same_target("https://as.example.com/token/", "https://as.example.com/token"));
        assert!(!same_target("https://other.example.com/token", "https://as.example.com/token"));
        assert!(!same_target("/token", "https://as.example.com/token"));
    }
}
