//! JWTs as a FAPI client makes them, for the tests: an ES256 key pair, `private_key_jwt`
//! assertions (RFC 7523), DPoP proofs (RFC 9449), and the malformed ones a test must see refused.
//! Signed by hand with p256, so that a test controls every header member.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, Mac};
use p256::ecdsa::signature::Signer;
use p256::ecdsa::{Signature, SigningKey};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

fn random_id() -> String {
    hex::encode(rand::random::<[u8; 16]>())
}

/// An ES256 key pair of a client (or of its DPoP proofs).
#[derive(Clone)]
pub struct ClientKey {
    signing: SigningKey,
    kid: String,
}

impl ClientKey {
    pub fn generate() -> Self {
        let secret = p256::SecretKey::random(&mut p256::elliptic_curve::rand_core::OsRng);
        Self { signing: SigningKey::from(secret), kid: random_id() }
    }

    /// The public key's members alone (what a DPoP header's `jwk` carries).
    fn bare_jwk(&self) -> Value {
        let point = self.signing.verifying_key().to_encoded_point(false);
        json!({"kty": "EC", "crv": "P-256", "x": b64(point.x().unwrap()), "y": b64(point.y().unwrap())})
    }

    /// The public key as a JWK Set member: with `kid`, `alg` and `use`.
    pub fn public_jwk(&self) -> Value {
        let mut jwk = self.bare_jwk();
        jwk["kid"] = json!(self.kid);
        jwk["alg"] = json!("ES256");
        jwk["use"] = json!("sig");
        jwk
    }

    pub fn jwks(&self) -> Value {
        json!({"keys": [self.public_jwk()]})
    }

    /// RFC 7638 SHA-256 thumbprint.
    pub fn thumbprint(&self) -> String {
        thumbprint_of(&self.bare_jwk())
    }

    /// A compact JWS with exactly this header, signed ES256 (r || s).
    pub fn sign(&self, header: Value, claims: Value) -> String {
        let input = format!("{}.{}", b64(header.to_string().as_bytes()), b64(claims.to_string().as_bytes()));
        let signature: Signature = self.signing.sign(input.as_bytes());
        format!("{input}.{}", b64(&signature.to_bytes()))
    }
}

/// RFC 7638 for an EC key: SHA-256 over the required members in order, base64url.
pub fn thumbprint_of(jwk: &Value) -> String {
    assert_eq!(jwk["kty"], "EC", "only EC keys here");
    let canonical = format!(
        r#"{{"crv":"{}","kty":"EC","x":"{}","y":"{}"}}"#,
        jwk["crv"].as_str().unwrap(),
        jwk["x"].as_str().unwrap(),
        jwk["y"].as_str().unwrap()
    );
    b64(&Sha256::digest(canonical.as_bytes()))
}

/// `alg: none` style: a header, the claims, and an empty signature.
pub fn unsigned_jwt(header: Value, claims: Value) -> String {
    format!("{}.{}.", b64(header.to_string().as_bytes()), b64(claims.to_string().as_bytes()))
}

/// An HMAC-SHA256 JWS: what a server must never accept from a client.
pub fn hs256_jwt(secret: &[u8], header: Value, claims: Value) -> String {
    let input = format!("{}.{}", b64(header.to_string().as_bytes()), b64(claims.to_string().as_bytes()));
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).unwrap();
    mac.update(input.as_bytes());
    format!("{input}.{}", b64(&mac.finalize().into_bytes()))
}

/// A sound `private_key_jwt` assertion for `client_id`, living 60 s.
pub fn client_assertion(key: &ClientKey, client_id: &str, audience: &str, now: i64) -> String {
    let claims = json!({"iss": client_id, "sub": client_id, "aud": audience, "iat": now, "exp": now + 60,
        "jti": random_id()});
    key.sign(json!({"alg": "ES256", "typ": "JWT", "kid": key.kid}), claims)
}

/// An assertion with the claims and header a test chose.
pub fn client_assertion_with(key: &ClientKey, claims: Value, header: Value) -> String {
    key.sign(header, claims)
}

/// A DPoP proof being built; the fields are public so a test can spoil any of them.
pub struct DpopProof<'a> {
    pub key: &'a ClientKey,
    pub typ: String,
    pub htm: String,
    pub htu: String,
    pub iat: i64,
    pub jti: String,
    pub ath: Option<String>,
    pub nonce: Option<String>,
}

impl<'a> DpopProof<'a> {
    pub fn new(key: &'a ClientKey, htm: &str, htu: &str, now: i64) -> Self {
        Self {
            key,
            typ: "dpop+jwt".into(),
            htm: htm.into(),
            htu: htu.into(),
            iat: now,
            jti: random_id(),
            ath: None,
            nonce: None,
        }
    }

    /// Binds the proof to an access token (`ath`, RFC 9449 §4.2).
    pub fn ath_for(mut self, access_token: &str) -> Self {
        self.ath = Some(b64(&Sha256::digest(access_token.as_bytes())));
        self
    }

    pub fn build(&self) -> String {
        let mut claims = json!({"jti": self.jti, "htm": self.htm, "htu": self.htu, "iat": self.iat});
        if let Some(ath) = &self.ath {
            claims["ath"] = json!(ath);
        }
        if let Some(nonce) = &self.nonce {
            claims["nonce"] = json!(nonce);
        }
        self.key.sign(json!({"typ": self.typ, "alg": "ES256", "jwk": self.key.bare_jwk()}), claims)
    }
}

fn decode_part(jwt: &str, index: usize) -> Value {
    let part = jwt.split('.').nth(index).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).unwrap()).unwrap()
}

/// A JWT's claims, unverified: for looking at what the server issued.
pub fn decode_claims(jwt: &str) -> Value {
    decode_part(jwt, 1)
}

pub fn decode_header(jwt: &str) -> Value {
    decode_part(jwt, 0)
}

#[test]
fn a_signature_of_client_key_verifies_with_its_jwk() {
    let key = ClientKey::generate();
    let token = key.sign(json!({"alg": "ES256", "typ": "JWT"}), json!({"sub": "x"}));
    let jwk: jsonwebtoken::jwk::Jwk = serde_json::from_value(key.public_jwk()).unwrap();
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::ES256);
    validation.required_spec_claims.clear();
    validation.validate_exp = false;
    let decoded =
        jsonwebtoken::decode::<Value>(&token, &jsonwebtoken::DecodingKey::from_jwk(&jwk).unwrap(), &validation);
    assert_eq!(decoded.unwrap().claims["sub"], "x");
    let ours = jwk.thumbprint(jsonwebtoken::jwk::ThumbprintHash::SHA256).unwrap();
    assert_eq!(ours, key.thumbprint(), "the same RFC 7638 thumbprint as jsonwebtoken's");
}
