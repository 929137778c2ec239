//! What client assertions (RFC 7523) and DPoP proofs (RFC 9449) share: the signature
//! algorithms we accept from clients, public keys as clients present them, and a signed JWT
//! checked before its claims are read.
//!
//! The header is read by hand first: jsonwebtoken cannot even parse `alg: none`, and a refusal
//! should say what was wrong, not only that parsing failed.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, JwkSet, KeyAlgorithm, PublicKeyUse, ThumbprintHash};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::{Map, Value};

/// The algorithms FAPI 2.0 allows (Security Profile §5.4.1): asymmetric only, never `none`
/// or an HMAC whose key the server would have to share.
pub const ALGORITHMS: [&str; 3] = ["ES256", "PS256", "EdDSA"];

/// Members that only a private (or symmetric) key has: a client never sends us those.
const PRIVATE_MEMBERS: [&str; 7] = ["d", "p", "q", "dp", "dq", "qi", "k"];

/// The smallest RSA modulus we accept, in bytes (FAPI 2.0 §5.4.1: 2048 bits).
const MIN_RSA_MODULUS_BYTES: usize = 256;

/// A compact JWS split into its header (as JSON) and the parts to verify.
pub struct UnverifiedJwt<'a> {
    pub token: &'a str,
    pub header: Map<String, Value>,
    pub algorithm: Algorithm,
}

/// Why a JWT from a client is refused; the message names the check.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct JoseError(pub String);

fn refuse<T>(message: impl Into<String>) -> Result<T, JoseError> {
    Err(JoseError(message.into()))
}

/// Parses the header of a compact JWS and checks its `alg` is one of [`ALGORITHMS`].
pub fn read_header(token: &str) -> Result<UnverifiedJwt<'_>, JoseError> {
    let mut parts = token.split('.');
    let (Some(header), Some(_), Some(_), None) = (parts.next(), parts.next(), parts.next(), parts.next()) else {
        return refuse("not a compact JWS (three base64url parts)");
    };
    let header: Map<String, Value> = URL_SAFE_NO_PAD
        .decode(header)
        .ok()
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .ok_or_else(|| JoseError("the JWS header is not base64url JSON".into()))?;
    let alg = header.get("alg").and_then(Value::as_str).unwrap_or_default();
    if !ALGORITHMS.contains(&alg) {
        return refuse(format!("alg {alg:?} is refused: only ES256, PS256 and EdDSA are accepted"));
    }
    let algorithm = alg.parse::<Algorithm>().map_err(|_| JoseError(format!("alg {alg:?} is unknown")))?;
    Ok(UnverifiedJwt { token, header, algorithm })
}

impl UnverifiedJwt<'_> {
    pub fn typ(&self) -> Option<&str> {
        self.header.get("typ").and_then(Value::as_str)
    }

    pub fn kid(&self) -> Option<&str> {
        self.header.get("kid").and_then(Value::as_str)
    }

    /// Verifies the signature with `key` and returns the claims. Only the signature: the
    /// callers check the claims their RFC names.
    pub fn verify(&self, key: &Jwk) -> Result<Map<String, Value>, JoseError> {
        if !key_fits(key, self.algorithm) {
            return refuse("the key does not fit the JWS's alg");
        }
        let decoding = DecodingKey::from_jwk(key).map_err(|_| JoseError("the key cannot verify signatures".into()))?;
        let mut validation = Validation::new(self.algorithm);
        validation.required_spec_claims.clear();
        validation.validate_exp = false;
        validation.validate_aud = false;
        jsonwebtoken::decode::<Map<String, Value>>(self.token, &decoding, &validation)
            .map(|data| data.claims)
            .map_err(|_| JoseError("the signature does not verify".into()))
    }
}

/// Whether `key` can verify `alg`: a P-256 key for ES256, RSA of 2048 bits or more for
/// PS256, Ed25519 for EdDSA.
pub fn key_fits(key: &Jwk, alg: Algorithm) -> bool {
    match (&key.algorithm, alg) {
        (AlgorithmParameters::EllipticCurve(ec), Algorithm::ES256) => ec.curve == EllipticCurve::P256,
        (AlgorithmParameters::RSA(rsa), Algorithm::PS256) => {
            URL_SAFE_NO_PAD.decode(&rsa.n).is_ok_and(|n| n.len() >= MIN_RSA_MODULUS_BYTES)
        }
        (AlgorithmParameters::OctetKeyPair(okp), Algorithm::EdDSA) => okp.curve == EllipticCurve::Ed25519,
        _ => false,
    }
}

/// A public key as a client presents it (a JWK set member, or a DPoP header's `jwk`):
/// EC P-256, RSA or Ed25519, with no private member.
pub fn public_key(value: &Value) -> Result<Jwk, JoseError> {
    let Some(members) = value.as_object() else {
        return refuse("a key must be a JSON object (JWK)");
    };
    if let Some(member) = PRIVATE_MEMBERS.iter().find(|member| members.contains_key(**member)) {
        return refuse(format!("the key carries the private member {member:?}: send public keys only"));
    }
    let key: Jwk = serde_json::from_value(value.clone()).map_err(|_| JoseError("the key is not a valid JWK".into()))?;
    let usable = [Algorithm::ES256, Algorithm::PS256, Algorithm::EdDSA].into_iter().any(|alg| key_fits(&key, alg));
    if !usable {
        return refuse("the key must be EC P-256, RSA of 2048 bits or more, or Ed25519");
    }
    Ok(key)
}

/// A client's JWK set (`jwks`), checked key by key: at least one, all public, all usable.
pub fn client_key_set(value: &Value) -> Result<JwkSet, JoseError> {
    let Some(keys) = value.get("keys").and_then(Value::as_array) else {
        return refuse("jwks must be a JWK Set: {\"keys\": [...]}");
    };
    if keys.is_empty() {
        return refuse("jwks must hold at least one key");
    }
    let keys = keys.iter().map(public_key).collect::<Result<Vec<_>, _>>()?;
    Ok(JwkSet { keys })
}

/// The key of `set` that verifies a JWS with header `kid` and `alg`: the only key named by
/// `kid` that fits the alg (a set may repeat a `kid` across key types, FAPI 2.0 §5.4.3, so the
/// alg tells them apart); without a `kid`, or when the set names none of its keys, the only
/// key that fits the alg.
pub fn key_for<'s>(set: &'s JwkSet, jwt: &UnverifiedJwt<'_>) -> Option<&'s Jwk> {
    let set_has_kids = set.keys.iter().any(|key| key.common.key_id.is_some());
    let named = |key: &&Jwk| match jwt.kid() {
        Some(kid) if set_has_kids => key.common.key_id.as_deref() == Some(kid),
        _ => true,
    };
    let mut fitting = set.keys.iter().filter(named).filter(|key| signs_with(key, jwt.algorithm));
    match (fitting.next(), fitting.next()) {
        (Some(only), None) => Some(only),
        _ => None,
    }
}

/// Whether `key` may verify a JWS of `alg`: it fits the alg, is not marked for encryption
/// (`use`), and names no other alg (`alg`, RFC 7517 §4.2 and §4.4).
fn signs_with(key: &Jwk, alg: Algorithm) -> bool {
    let for_signing = !matches!(key.common.public_key_use, Some(PublicKeyUse::Encryption | PublicKeyUse::Other(_)));
    let same_alg = key.common.key_algorithm.is_none_or(|named| named == KeyAlgorithm::from(alg));
    key_fits(key, alg) && for_signing && same_alg
}

/// The RFC 7638 SHA-256 thumbprint of a public key, base64url: what `cnf.jkt` and `dpop_jkt`
/// carry.
pub fn thumbprint(key: &Jwk) -> Result<String, JoseError> {
    key.thumbprint(ThumbprintHash::SHA256).map_err(|_| JoseError("the key has no thumbprint".into()))
}

/// base64url(SHA-256(value)): DPoP's `ath`.
pub fn sha256_base64url(value: &str) -> String {
    use sha2::Digest;
    URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(value.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn header_of(header: Value) -> String {
        format!("{}.e30.c2ln", URL_SAFE_NO_PAD.encode(header.to_string()))
    }

    #[test]
    fn none_and_symmetric_algorithms_are_refused_by_name() {
        for alg in ["none", "HS256", "RS256", ""] {
            let error = read_header(&header_of(json!({"alg": alg}))).err().unwrap();
            assert!(error.0.contains("is refused"), "{alg}: {error}");
        }
        assert!(read_header(&header_of(json!({"alg": "ES256"}))).is_ok());
        assert!(read_header("a.b").is_err());
        assert!(read_header("%%%.b.c").is_err());
    }

    #[test]
    fn private_and_symmetric_keys_are_refused() {
        let ec = json!({"kty": "EC", "crv": "P-256",
            "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU", "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"});
        assert!(public_key(&ec).is_ok());
        let mut private = ec.clone();
        private["d"] = json!("jpsQnnGQmL-YBIffH1136cspYG6-0iY7X1fCE9-E9LI");
        assert!(public_key(&private).unwrap_err().0.contains("\"d\""));
        assert!(public_key(&json!({"kty": "oct", "k": "c2VjcmV0"})).is_err());
        let short_rsa = json!({"kty": "RSA", "n": URL_SAFE_NO_PAD.encode([7u8; 128]), "e": "AQAB"});
        assert!(public_key(&short_rsa).is_err(), "1024-bit RSA");
        assert!(client_key_set(&json!({"keys": []})).is_err());
        assert!(client_key_set(&json!([ec])).is_err());
    }

    #[test]
    fn a_repeated_kid_is_told_apart_by_the_alg_and_an_ambiguous_one_verifies_nothing() {
        let ec = json!({"kty": "EC", "crv": "P-256", "kid": "k",
            "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU", "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"});
        let rsa = json!({"kty": "RSA", "kid": "k", "n": URL_SAFE_NO_PAD.encode([7u8; 256]), "e": "AQAB"});
        let set: JwkSet = serde_json::from_value(json!({"keys": [rsa, ec]})).unwrap();
        let es256 = header_of(json!({"alg": "ES256", "kid": "k"}));
        let for_es256 = key_for(&set, &read_header(&es256).unwrap()).map(|key| &key.algorithm);
        assert!(matches!(for_es256, Some(AlgorithmParameters::EllipticCurve(_))), "the EC key, after the RSA one");
        let ps256 = header_of(json!({"alg": "PS256", "kid": "k"}));
        assert!(matches!(key_for(&set, &read_header(&ps256).unwrap()).unwrap().algorithm, AlgorithmParameters::RSA(_)));
        let other = header_of(json!({"alg": "ES256", "kid": "other"}));
        assert!(key_for(&set, &read_header(&other).unwrap()).is_none(), "a kid the set does not name");
        let mut for_encryption = ec.clone();
        for_encryption["use"] = json!("enc");
        let mut other_alg = ec.clone();
        other_alg["alg"] = json!("ES384");
        for (unfit, why) in [(for_encryption, "an encryption key"), (other_alg, "a key of another alg")] {
            let alone: JwkSet = serde_json::from_value(json!({"keys": [unfit]})).unwrap();
            assert!(key_for(&alone, &read_header(&es256).unwrap()).is_none(), "{why}");
        }
        let mut named = ec.clone();
        named["alg"] = json!("ES256");
        named["use"] = json!("sig");
        let set: JwkSet = serde_json::from_value(json!({"keys": [named]})).unwrap();
        assert!(key_for(&set, &read_header(&es256).unwrap()).is_some(), "use sig, alg ES256");
        let twins: JwkSet = serde_json::from_value(json!({"keys": [ec, ec]})).unwrap();
        assert!(key_for(&twins, &read_header(&es256).unwrap()).is_none(), "two fitting keys of one kid");
    }

    #[test]
    fn the_thumbprint_follows_rfc_7638() {
        // RFC 7638 §3.1's example key is RSA; its thumbprint is given there.
        let key: Jwk = serde_json::from_value(json!({"kty": "RSA", "e": "AQAB", "alg": "RS256", "kid": "2011-04-29",
            "n": "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw"}))
            .unwrap();
        assert_eq!(thumbprint(&key).unwrap(), "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs");
    }
}
