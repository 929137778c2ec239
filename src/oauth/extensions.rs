//! Grant extensions (PKCE) and how they are stored with a code: oxide-auth's `Extensions`
//! is not serializable, so its public and private values travel as JSON.

use oxide_auth::code_grant::extensions::Pkce;
use oxide_auth::primitives::grant::{Extensions, Value};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(Debug, Default, Serialize, Deserialize)]
struct StoredExtensions {
    #[serde(default)]
    public: BTreeMap<String, Option<String>>,
    #[serde(default)]
    private: BTreeMap<String, Option<String>>,
}

pub fn to_json(extensions: &Extensions) -> String {
    let stored = StoredExtensions {
        public: extensions.public().map(|(k, v)| (k.to_string(), v.map(str::to_string))).collect(),
        private: extensions.private().map(|(k, v)| (k.to_string(), v.map(str::to_string))).collect(),
    };
    serde_json::to_string(&stored).unwrap_or_else(|_| "{}".into())
}

pub fn from_json(text: &str) -> Extensions {
    let stored: StoredExtensions = serde_json::from_str(text).unwrap_or_default();
    let mut extensions = Extensions::new();
    for (key, value) in stored.public {
        extensions.set_raw(key, Value::public(value));
    }
    for (key, value) in stored.private {
        extensions.set_raw(key, Value::private(value));
    }
    extensions
}

/// Where the authorization request's `dpop_jkt` (RFC 9449 §10) travels with the code: a private
/// value, never shown to the client.
const DPOP_JKT: &str = "dpop_jkt";

pub fn set_dpop_jkt(extensions: &mut Extensions, jkt: &str) {
    extensions.set_raw(DPOP_JKT.to_string(), Value::private(Some(jkt.to_string())));
}

/// The key the code's tokens must be bound to, when the authorization request named one.
pub fn dpop_jkt(extensions: &Extensions) -> Option<String> {
    extensions.private().find(|(key, _)| *key == DPOP_JKT).and_then(|(_, value)| value.map(str::to_string))
}

/// PKCE as scopegate requires it: a challenge on every authorization request, `S256` only.
pub fn pkce() -> Pkce {
    Pkce::required()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::borrow::Cow;

    #[test]
    fn a_pkce_challenge_survives_storage_and_verifies() {
        let pkce = pkce();
        let verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
        let challenge = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
        let value = pkce.challenge(Some(Cow::Borrowed("S256")), Some(Cow::Borrowed(challenge))).unwrap().unwrap();
        let mut extensions = Extensions::new();
        extensions.set(&pkce, value);
        let restored = from_json(&to_json(&extensions));
        let mut restored = restored;
        let saved = restored.remove(&pkce);
        assert!(pkce.verify(saved.clone(), Some(Cow::Borrowed(verifier))).is_ok());
        assert!(pkce.verify(saved, Some(Cow::Borrowed("wrong-verifier-wrong-verifier-wrong-verifier"))).is_err());
    }

    #[test]
    fn plain_and_missing_challenges_are_refused() {
        let pkce = pkce();
        assert!(pkce.challenge(Some(Cow::Borrowed("plain")), Some(Cow::Borrowed("abc"))).is_err());
        assert!(pkce.challenge(None, Some(Cow::Borrowed("abc"))).is_err());
        assert!(pkce.challenge(Some(Cow::Borrowed("S256")), None).is_err());
    }
}
