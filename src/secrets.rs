//! Secret material: random tokens, the keyed hash under which secrets and tokens are stored,
//! and argon2id for human passwords.

use anyhow::{bail, Context};
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::Sha256;
use std::io::Write;
use std::path::Path;
use subtle::ConstantTimeEq;

/// `bytes` random bytes from the OS generator, base64url without padding: safe in URLs,
/// form bodies and Basic credentials (which oxide-auth does not URL-decode).
pub fn random_token(bytes: usize) -> String {
    let mut buffer = vec![0u8; bytes];
    rand::rng().fill_bytes(&mut buffer);
    URL_SAFE_NO_PAD.encode(buffer)
}

/// A unique identifier that sorts by creation time: the milliseconds since the epoch in 12 hex
/// digits, then 96 random bits. Access tokens are keyed by it (`jti`): a random key put each
/// issuance on a random leaf of the key's B-tree, so a commit of n tokens wrote n scattered
/// pages (about 8 KB of WAL per token, issue 11's profile); keys that follow the clock append
/// to the same few pages. Not a secret: a JWT carries its `iat` anyway.
pub fn time_ordered_id(now: chrono::DateTime<chrono::Utc>) -> String {
    let millis = u64::try_from(now.timestamp_millis()).unwrap_or(0) & 0xffff_ffff_ffff;
    format!("{millis:012x}{}", random_token(12))
}

/// A client secret: 256 bits.
pub fn new_client_secret() -> String {
    random_token(32)
}

/// The keyed hash of a token, code or client secret: what storage keeps and looks rows up by,
/// instead of the secret itself. Its own type so that a presented token can never be passed
/// where its hash is expected; only [`SecretHasher::hash`] makes one from a secret.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TokenHash(String);

impl TokenHash {
    /// A hash read back from storage. Crate-private: outside storage, hashes come from
    /// [`SecretHasher::hash`] only.
    pub(crate) fn from_stored(hex: String) -> Self {
        Self(hex)
    }

    /// The lowercase hex text, as stored.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

/// HMAC-SHA-256 under a server secret. Client secrets, tokens and codes are random and
/// high-entropy, so a fast keyed hash is right for them (argon2 is for guessable passwords);
/// the key means a stolen database alone cannot confirm a guess.
#[derive(Clone)]
pub struct SecretHasher {
    key: [u8; 32],
}

impl std::fmt::Debug for SecretHasher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretHasher(..)")
    }
}

const SERVER_SECRET_FILE: &str = "server-secret";

impl SecretHasher {
    pub fn new(key: [u8; 32]) -> Self {
        Self { key }
    }

    /// Loads the server secret from the keys directory, creating it (mode 0600) on first start.
    pub fn load_or_create(keys_dir: &Path) -> anyhow::Result<Self> {
        let path = keys_dir.join(SERVER_SECRET_FILE);
        if path.exists() {
            let text = std::fs::read_to_string(&path).with_context(|| format!("cannot read {}", path.display()))?;
            let bytes = hex::decode(text.trim()).with_context(|| format!("{} is not hex", path.display()))?;
            let Ok(key) = <[u8; 32]>::try_from(bytes.as_slice()) else {
                bail!("{} must hold 32 bytes of hex", path.display());
            };
            return Ok(Self::new(key));
        }
        let mut key = [0u8; 32];
        rand::rng().fill_bytes(&mut key);
        write_private_file(&path, hex::encode(key).as_bytes())?;
        Ok(Self::new(key))
    }

    pub fn hash(&self, secret: &str) -> TokenHash {
        TokenHash(hex::encode(self.mac(secret)))
    }

    /// Constant-time comparison of a presented secret with a stored hash.
    pub fn verify(&self, secret: &str, stored_hash: &TokenHash) -> bool {
        let Ok(stored) = hex::decode(stored_hash.as_str()) else {
            return false;
        };
        self.mac(secret).as_slice().ct_eq(stored.as_slice()).into()
    }

    /// A 32-byte key for another purpose, derived from the server secret so that one secret
    /// file serves every instance.
    pub fn derive_key(&self, purpose: &str) -> [u8; 32] {
        let mut key = [0u8; 32];
        key.copy_from_slice(&self.mac(&format!("scopegate key derivation: {purpose}")));
        key
    }

    /// `payload` with a MAC bound to `purpose`, for state that travels through the browser.
    pub fn sign(&self, purpose: &str, payload: &[u8]) -> String {
        let encoded = URL_SAFE_NO_PAD.encode(payload);
        let tag = URL_SAFE_NO_PAD.encode(self.mac(&format!("{purpose}:{encoded}")));
        format!("{encoded}.{tag}")
    }

    /// The payload of a value made by [`SecretHasher::sign`] for the same purpose, if intact.
    pub fn verify_signed(&self, purpose: &str, signed: &str) -> Option<Vec<u8>> {
        let (encoded, tag) = signed.split_once('.')?;
        let tag = URL_SAFE_NO_PAD.decode(tag).ok()?;
        let expected = self.mac(&format!("{purpose}:{encoded}"));
        if !bool::from(expected.as_slice().ct_eq(tag.as_slice())) {
            return None;
        }
        URL_SAFE_NO_PAD.decode(encoded).ok()
    }

    fn mac(&self, secret: &str) -> Vec<u8> {
        // HMAC zero-pads a short key to the hash's 64-byte block; padding it ourselves gives
        // the same MAC through the infallible fixed-size constructor.
        let mut block = [0u8; 64];
        block[..32].copy_from_slice(&self.key);
        let mut mac = <Hmac<Sha256> as hmac::digest::KeyInit>::new(&block.into());
        mac.update(secret.as_bytes());
        mac.finalize().into_bytes().to_vec()
    }
}

/// argon2id with the crate defaults: m = 19 MiB, t = 2, p = 1, OWASP's recommended minimum.
pub fn hash_password(password: &str) -> anyhow::Result<String> {
    let mut salt_bytes = [0u8; 16];
    rand::rng().fill_bytes(&mut salt_bytes);
    let salt = SaltString::encode_b64(&salt_bytes).map_err(|error| anyhow::anyhow!("salt: {error}"))?;
    let hash = Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map_err(|error| anyhow::anyhow!("argon2: {error}"))?;
    Ok(hash.to_string())
}

pub fn verify_password(password: &str, stored_hash: &str) -> bool {
    PasswordHash::new(stored_hash)
        .map(|parsed| Argon2::default().verify_password(password.as_bytes(), &parsed).is_ok())
        .unwrap_or(false)
}

/// A private key file: writable by its owner only.
pub fn write_private_file(path: &Path, contents: &[u8]) -> anyhow::Result<()> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).with_context(|| format!("cannot create {}", parent.display()))?;
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path).with_context(|| format!("cannot create {}", path.display()))?;
    file.write_all(contents)?;
    file.sync_all()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_ordered_ids_sort_by_their_time_and_never_repeat() {
        let earlier = chrono::DateTime::from_timestamp_millis(1_795_000_000_000).unwrap();
        let later = earlier + chrono::Duration::milliseconds(1);
        let first = time_ordered_id(earlier);
        assert!(first < time_ordered_id(later));
        assert!(time_ordered_id(later) < time_ordered_id(later + chrono::Duration::days(4000)));
        assert_eq!(first.len(), 12 + 16, "12 hex digits of milliseconds, 96 random bits in base64url");
        assert!(first.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
        let same_moment: std::collections::HashSet<String> = (0..1000).map(|_| time_ordered_id(earlier)).collect();
        assert_eq!(same_moment.len(), 1000);
    }

    #[test]
    fn a_keyed_hash_verifies_only_the_right_secret_under_the_right_key() {
        let hasher = SecretHasher::new([7; 32]);
        let stored = hasher.hash("s3cret");
        assert!(hasher.verify("s3cret", &stored));
        assert!(!hasher.verify("s3cret!", &stored));
        assert!(!SecretHasher::new([8; 32]).verify("s3cret", &stored));
        assert!(!hasher.verify("s3cret", &TokenHash::from_stored("not hex".into())));
        assert_eq!(stored.as_str().len(), 64, "HMAC-SHA-256 in hex");
    }

    #[test]
    fn signed_values_verify_only_intact_and_for_their_purpose() {
        let hasher = SecretHasher::new([3; 32]);
        let signed = hasher.sign("consent", b"{\"u\":\"alice\"}");
        assert_eq!(hasher.verify_signed("consent", &signed).unwrap(), b"{\"u\":\"alice\"}");
        assert!(hasher.verify_signed("other", &signed).is_none());
        let tampered = signed.replacen('e', "f", 1);
        assert!(hasher.verify_signed("consent", &tampered).is_none());
        assert_ne!(hasher.derive_key("a"), hasher.derive_key("b"));
    }

    #[test]
    fn client_secrets_carry_256_bits_in_url_safe_characters() {
        let secret = new_client_secret();
        assert_eq!(URL_SAFE_NO_PAD.decode(&secret).unwrap().len(), 32);
        assert!(secret.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'));
        assert_ne!(secret, new_client_secret());
    }

    #[test]
    fn passwords_hash_with_argon2id_and_verify() {
        let hash = hash_password("correct horse").unwrap();
        assert!(hash.starts_with("$argon2id$"));
        assert!(verify_password("correct horse", &hash));
        assert!(!verify_password("wrong horse", &hash));
        assert!(!verify_password("correct horse", "garbage"));
    }
}
