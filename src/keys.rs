//! ES256 signing keys: one PKCS#8 PEM file per key in the keys directory (mode 0600), named by
//! its `kid`. Key ids sort by creation time, so the newest file is the current signing key.
//! The public halves are registered in the database, from which every instance publishes the
//! JWKS; a retired key stays published until the tokens it signed have expired.

use anyhow::{bail, Context};
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{EcdsaKeyPair, ECDSA_P256_SHA256_FIXED_SIGNING};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use chrono::{DateTime, Utc};
use jsonwebtoken::{DecodingKey, Header};
use p256::elliptic_curve::sec1::ToEncodedPoint;
use p256::pkcs8::{DecodePrivateKey, DecodePublicKey, EncodePrivateKey, EncodePublicKey, LineEnding};
use rand::RngCore;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use crate::storage::{signing_keys, DbConnection, StorageError};

/// A private signing key loaded from the keys directory, parsed once: signing with it costs one
/// ECDSA signature and nothing more (jsonwebtoken re-parses its key, and so derives the public
/// key again, on every call).
#[derive(Clone)]
pub struct SigningKey {
    pub kid: String,
    key_pair: Arc<EcdsaKeyPair>,
    pub public_key_pem: String,
}

impl SigningKey {
    /// A compact JWS (RFC 7515 §7.1) of `claims` under `header`, signed ES256 with this key.
    /// jsonwebtoken checks these tokens at introspection; only the signing is ours.
    pub fn sign_jwt<T: serde::Serialize>(&self, header: &Header, claims: &T) -> anyhow::Result<String> {
        let mut jws = URL_SAFE_NO_PAD.encode(serde_json::to_vec(header)?);
        jws.push('.');
        jws.push_str(&URL_SAFE_NO_PAD.encode(serde_json::to_vec(claims)?));
        let signature = self
            .key_pair
            .sign(&SystemRandom::new(), jws.as_bytes())
            .map_err(|_| anyhow::anyhow!("ES256 signing failed with key {}", self.kid))?;
        jws.push('.');
        jws.push_str(&URL_SAFE_NO_PAD.encode(signature.as_ref()));
        Ok(jws)
    }
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey").field("kid", &self.kid).finish_non_exhaustive()
    }
}

const KEY_EXTENSION: &str = "pem";

fn key_path(keys_dir: &Path, kid: &str) -> PathBuf {
    keys_dir.join(format!("{kid}.{KEY_EXTENSION}"))
}

/// `sg-20261122T181500123456Z-1a2b3c4d`: the time, to the microsecond, makes ids sort by age
/// (a key rotated in the same second as the first start still sorts after it); the random
/// tail keeps two keys made in the same microsecond apart.
fn new_kid(now: DateTime<Utc>) -> String {
    let mut tail = [0u8; 4];
    rand::rng().fill_bytes(&mut tail);
    format!("sg-{}-{}", now.format("%Y%m%dT%H%M%S%6fZ"), hex::encode(tail))
}

/// Creates a new ES256 key file and returns it.
pub fn generate(keys_dir: &Path, now: DateTime<Utc>) -> anyhow::Result<SigningKey> {
    let secret = loop {
        let mut bytes = [0u8; 32];
        rand::rng().fill_bytes(&mut bytes);
        // Almost every 32-byte string is a valid P-256 scalar; retry the rare one that is not.
        if let Ok(secret) = p256::SecretKey::from_slice(&bytes) {
            break secret;
        }
    };
    let pem =
        secret.to_pkcs8_pem(LineEnding::LF).map_err(|error| anyhow::anyhow!("cannot encode the new key: {error}"))?;
    let kid = new_kid(now);
    crate::secrets::write_private_file(&key_path(keys_dir, &kid), pem.as_bytes())?;
    load(keys_dir, &kid)
}

fn load(keys_dir: &Path, kid: &str) -> anyhow::Result<SigningKey> {
    let path = key_path(keys_dir, kid);
    let pem = std::fs::read_to_string(&path).with_context(|| format!("cannot read {}", path.display()))?;
    let secret = p256::SecretKey::from_pkcs8_pem(&pem)
        .map_err(|error| anyhow::anyhow!("{} is not a PKCS#8 P-256 key: {error}", path.display()))?;
    let public_key_pem = secret
        .public_key()
        .to_public_key_pem(LineEnding::LF)
        .map_err(|error| anyhow::anyhow!("cannot encode the public key of {kid}: {error}"))?;
    let der = secret.to_pkcs8_der().map_err(|error| anyhow::anyhow!("cannot encode {kid}: {error}"))?;
    let key_pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, der.as_bytes())
        .map_err(|_| anyhow::anyhow!("{} cannot be used for ES256", path.display()))?;
    Ok(SigningKey { kid: kid.to_string(), key_pair: Arc::new(key_pair), public_key_pem })
}

/// The id of the newest key in the directory, without loading any.
pub fn newest_kid(keys_dir: &Path) -> anyhow::Result<Option<String>> {
    let mut newest: Option<String> = None;
    for entry in std::fs::read_dir(keys_dir).with_context(|| format!("cannot list {}", keys_dir.display()))? {
        let path = entry?.path();
        if path.extension().and_then(|e| e.to_str()) == Some(KEY_EXTENSION) {
            if let Some(stem) = path.file_stem().and_then(|s| s.to_str()) {
                if newest.as_deref().is_none_or(|known| stem > known) {
                    newest = Some(stem.to_string());
                }
            }
        }
    }
    Ok(newest)
}

/// The key new tokens are signed with. `scopegate keys rotate` writes a newer key file; a
/// running server picks it up at its next check, so rotation needs no restart.
pub struct CurrentSigningKey {
    key: std::sync::RwLock<std::sync::Arc<SigningKey>>,
}

impl CurrentSigningKey {
    pub fn new(key: SigningKey) -> Self {
        Self { key: std::sync::RwLock::new(std::sync::Arc::new(key)) }
    }

    pub fn get(&self) -> std::sync::Arc<SigningKey> {
        match self.key.read() {
            Ok(guard) => guard.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Switches to the newest key in the directory if it is newer than the current one.
    /// Returns the new key's id when it switched.
    pub fn reload_if_newer(&self, keys_dir: &Path) -> anyhow::Result<Option<String>> {
        let Some(newest) = newest_kid(keys_dir)? else { return Ok(None) };
        if newest <= self.get().kid {
            return Ok(None);
        }
        let key = load(keys_dir, &newest)?;
        let mut guard = match self.key.write() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        *guard = std::sync::Arc::new(key);
        Ok(Some(newest))
    }
}

/// Every key in the directory, oldest first.
pub fn load_all(keys_dir: &Path) -> anyhow::Result<Vec<SigningKey>> {
    if !keys_dir.exists() {
        return Ok(Vec::new());
    }
    let mut kids = Vec::new();
    for entry in std::fs::read_dir(keys_dir).with_context(|| format!("cannot list {}", keys_dir.display()))? {
        let path = entry?.path();
        if path.extension().and_then(|e| e.to_str()) == Some(KEY_EXTENSION) {
            if let Some(stem) = path.file_stem().and_then(|s| s.to_str()) {
                kids.push(stem.to_string());
            }
        }
    }
    kids.sort();
    kids.iter().map(|kid| load(keys_dir, kid)).collect()
}

/// The keys in the directory, creating the first one when there is none.
pub fn load_or_create(keys_dir: &Path, now: DateTime<Utc>) -> anyhow::Result<Vec<SigningKey>> {
    let keys = load_all(keys_dir)?;
    if !keys.is_empty() {
        return Ok(keys);
    }
    tracing::info!(dir = %keys_dir.display(), "no signing key found; creating an ES256 key");
    Ok(vec![generate(keys_dir, now)?])
}

/// The public JWK (RFC 7517/7518) of an ES256 public key in SPKI PEM.
pub fn public_jwk(kid: &str, public_key_pem: &str) -> anyhow::Result<Value> {
    let public_key = p256::PublicKey::from_public_key_pem(public_key_pem)
        .map_err(|error| anyhow::anyhow!("stored public key {kid} is invalid: {error}"))?;
    let point = public_key.to_encoded_point(false);
    let (Some(x), Some(y)) = (point.x(), point.y()) else {
        bail!("stored public key {kid} is the identity point");
    };
    Ok(json!({
        "kty": "EC",
        "crv": "P-256",
        "x": URL_SAFE_NO_PAD.encode(x),
        "y": URL_SAFE_NO_PAD.encode(y),
        "kid": kid,
        "use": "sig",
        "alg": "ES256",
    }))
}

/// The JWK Set (RFC 7517) of every key that may have signed a still-valid token, read from the
/// database so every instance publishes the keys of all.
pub fn published_jwks(
    connection: &mut DbConnection,
    retired_after: DateTime<Utc>,
) -> Result<Value, crate::error::AppError> {
    let published = signing_keys::published(connection, retired_after)?;
    let keys =
        published.iter().map(|key| public_jwk(&key.kid, &key.public_key_pem)).collect::<anyhow::Result<Vec<_>>>()?;
    Ok(json!({ "keys": keys }))
}

/// Public keys by `kid`, filled from the database on a miss so a key registered by another
/// instance (or a rotation) is found without a restart; and the JWTs whose signature already
/// checked out, so a resource server introspecting the same token again costs no ES256
/// verification. The token's stored row is still read every time (revocation, expiry).
#[derive(Default)]
pub struct VerificationKeys {
    keys: RwLock<HashMap<String, DecodingKey>>,
    /// SHA-256 of a verified JWT → its `jti`.
    verified: RwLock<HashMap<[u8; 32], String>>,
}

/// Verified JWTs remembered at most; the map starts afresh when full (tokens live minutes).
const VERIFIED_JWTS: usize = 50_000;

impl VerificationKeys {
    pub fn verified_jti(&self, token: &str) -> Option<String> {
        let digest: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        self.verified.read().ok()?.get(&digest).cloned()
    }

    pub fn remember(&self, token: &str, jti: &str) {
        let digest: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        let mut verified = match self.verified.write() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        if verified.len() >= VERIFIED_JWTS {
            verified.clear();
        }
        verified.insert(digest, jti.to_string());
    }

    /// The key with this id, reading the published keys again on a miss.
    pub fn get(&self, connection: &mut DbConnection, kid: &str) -> Result<Option<DecodingKey>, StorageError> {
        if let Ok(keys) = self.keys.read() {
            if let Some(key) = keys.get(kid) {
                return Ok(Some(key.clone()));
            }
        }
        let published = signing_keys::all(connection)?;
        let mut keys = match self.keys.write() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        for key in published {
            if let Ok(decoding) = DecodingKey::from_ec_pem(key.public_key_pem.as_bytes()) {
                keys.insert(key.kid, decoding);
            }
        }
        Ok(keys.get(kid).cloned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_start_creates_one_private_key_and_later_starts_reuse_it() {
        let dir = tempfile::tempdir().unwrap();
        let first = load_or_create(dir.path(), Utc::now()).unwrap();
        let again = load_or_create(dir.path(), Utc::now()).unwrap();
        assert_eq!(first.len(), 1);
        assert_eq!(again.len(), 1);
        assert_eq!(first[0].kid, again[0].kid);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(key_path(dir.path(), &first[0].kid)).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    #[test]
    fn a_newer_key_sorts_last() {
        let dir = tempfile::tempdir().unwrap();
        let old = generate(dir.path(), Utc::now() - chrono::Duration::days(1)).unwrap();
        let new = generate(dir.path(), Utc::now()).unwrap();
        let kids: Vec<_> = load_all(dir.path()).unwrap().into_iter().map(|k| k.kid).collect();
        assert_eq!(kids, vec![old.kid, new.kid]);
    }

    #[test]
    fn the_current_key_follows_a_rotation() {
        let dir = tempfile::tempdir().unwrap();
        let first = generate(dir.path(), Utc::now() - chrono::Duration::days(1)).unwrap();
        let current = CurrentSigningKey::new(first.clone());
        assert_eq!(current.reload_if_newer(dir.path()).unwrap(), None);
        let second = generate(dir.path(), Utc::now()).unwrap();
        assert_eq!(current.reload_if_newer(dir.path()).unwrap(), Some(second.kid.clone()));
        assert_eq!(current.get().kid, second.kid);
        assert_eq!(newest_kid(dir.path()).unwrap(), Some(second.kid));
    }

    #[test]
    fn a_signed_jwt_verifies_with_the_published_public_key() {
        let dir = tempfile::tempdir().unwrap();
        let key = generate(dir.path(), Utc::now()).unwrap();
        let mut header = Header::new(jsonwebtoken::Algorithm::ES256);
        header.kid = Some(key.kid.clone());
        let claims = json!({"sub": "alice", "exp": 4_000_000_000_i64});
        let token = key.sign_jwt(&header, &claims).unwrap();
        let decoding = DecodingKey::from_ec_pem(key.public_key_pem.as_bytes()).unwrap();
        let validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::ES256);
        let decoded = jsonwebtoken::decode::<Value>(&token, &decoding, &validation).unwrap();
        assert_eq!(decoded.claims["sub"], "alice");
        assert_eq!(decoded.header.kid, Some(key.kid.clone()));
        let other = generate(dir.path(), Utc::now()).unwrap();
        let wrong = DecodingKey::from_ec_pem(other.public_key_pem.as_bytes()).unwrap();
        assert!(jsonwebtoken::decode::<Value>(&token, &wrong, &validation).is_err(), "another key must not verify it");
    }

    #[test]
    fn a_public_jwk_has_the_p256_coordinates() {
        let dir = tempfile::tempdir().unwrap();
        let key = generate(dir.path(), Utc::now()).unwrap();
        let jwk = public_jwk(&key.kid, &key.public_key_pem).unwrap();
        assert_eq!(jwk["kty"], "EC");
        assert_eq!(jwk["kid"], key.kid.as_str());
        assert_eq!(URL_SAFE_NO_PAD.decode(jwk["x"].as_str().unwrap()).unwrap().len(), 32);
        assert_eq!(URL_SAFE_NO_PAD.decode(jwk["y"].as_str().unwrap()).unwrap().len(), 32);
    }
}
