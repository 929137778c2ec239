//! `private_key_jwt` (RFC 7523 §3, RFC 7521 §4.2, FAPI 2.0 §5.3.2.1): a client proves who it
//! is with a JWT signed by a key of its registered JWK set. Whether the `jti` was used before
//! needs storage: the service records it (`services::clients`).

use chrono::{DateTime, Utc};
use jsonwebtoken::jwk::JwkSet;
use serde_json::Value;

use super::jose;

/// `client_assertion_type` for a JWT (RFC 7523 §2.2).
pub const ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
/// The longest an assertion may live, from now (SPEC: `exp` within 5 minutes).
pub const MAX_LIFETIME_SECONDS: i64 = 300;
/// Clock skew we tolerate on `iat` and `nbf`.
const SKEW_SECONDS: i64 = 60;

/// The client id an assertion claims (`iss`), read before anything is verified: it names the
/// key set to verify with.
pub fn claimed_client_id(assertion: &str) -> Option<String> {
    let payload = assertion.split('.').nth(1)?;
    use base64::Engine;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload).ok()?;
    let claims: serde_json::Map<String, Value> = serde_json::from_slice(&bytes).ok()?;
    claims.get("iss").and_then(Value::as_str).map(str::to_string)
}

/// An assertion that passed every check but the replay of its `jti`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedAssertion {
    pub jti: String,
    /// Until when the `jti` must be remembered.
    pub expires_at: DateTime<Utc>,
}

/// The `aud` an assertion may carry.
#[derive(Debug, Clone, Copy)]
pub struct Audience<'a> {
    /// The accepted values, our issuer identifier first.
    pub accepted: &'a [&'a str],
    /// Whether an array holding one of them will do (RFC 7523 §3), or only a string (FAPI 2.0
    /// §5.3.2.1: "only accept its issuer identifier value … as a string").
    pub arrays: bool,
}

impl Audience<'_> {
    fn accepts(&self, aud: Option<&Value>) -> bool {
        match aud {
            Some(Value::String(aud)) => self.accepted.contains(&aud.as_str()),
            Some(Value::Array(auds)) if self.arrays => {
                auds.iter().filter_map(Value::as_str).any(|aud| self.accepted.contains(&aud))
            }
            _ => false,
        }
    }
}

/// Checks `assertion` for the client `client_id` with key set `keys`, for `audience`.
pub fn verify(
    assertion: &str,
    client_id: &str,
    keys: &JwkSet,
    audience: Audience<'_>,
    now: DateTime<Utc>,
) -> Result<VerifiedAssertion, String> {
    let jwt = jose::read_header(assertion).map_err(|error| error.0)?;
    let key = jose::key_for(keys, &jwt).ok_or("no key of the client's jwks matches the assertion's kid and alg")?;
    let claims = jwt.verify(key).map_err(|error| error.0)?;
    let text = |name: &str| claims.get(name).and_then(Value::as_str);
    if text("iss") != Some(client_id) || text("sub") != Some(client_id) {
        return Err("iss and sub must both be the client_id".into());
    }
    if !audience.accepts(claims.get("aud")) {
        let issuer = audience.accepted.first().unwrap_or(&"");
        return Err(if audience.arrays {
            format!("aud must be the issuer identifier {issuer:?}")
        } else {
            format!("aud must be the issuer identifier {issuer:?}, as a string (profile = \"fapi2\")")
        });
    }
    let now_seconds = now.timestamp();
    let Some(exp) = claims.get("exp").and_then(Value::as_i64) else {
        return Err("exp is missing".into());
    };
    if exp <= now_seconds {
        return Err("the assertion has expired".into());
    }
    if exp > now_seconds + MAX_LIFETIME_SECONDS {
        return Err(format!("exp must be within {MAX_LIFETIME_SECONDS} s from now"));
    }
    let not_yet = |name: &str| claims.get(name).and_then(Value::as_i64).is_some_and(|t| t > now_seconds + SKEW_SECONDS);
    if not_yet("iat") || not_yet("nbf") {
        return Err("the assertion is not valid yet (iat or nbf in the future)".into());
    }
    let jti = text("jti").filter(|jti| !jti.is_empty() && jti.len() <= 256).ok_or("jti is missing")?;
    let expires_at = DateTime::from_timestamp(exp, 0).unwrap_or(now);
    Ok(VerifiedAssertion { jti: jti.to_string(), expires_at })
}
