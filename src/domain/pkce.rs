//! The syntax of PKCE's two values (RFC 7636 §4.1, §4.2; SPEC Part 2). Whether a verifier
//! matches its challenge is oxide-auth's `Pkce::verify`; what may be presented at all is here.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;

/// RFC 7636 §4.1: `code-verifier = 43*128unreserved`, unreserved being `A-Z a-z 0-9 - . _ ~`.
/// A shorter verifier carries too little entropy to stand in for a client secret.
pub fn is_valid_code_verifier(verifier: &str) -> bool {
    (43..=128).contains(&verifier.len())
        && verifier.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'))
}

/// An `S256` challenge (the only method scopegate accepts): BASE64URL(SHA256(verifier))
/// without padding, i.e. 43 base64url characters that decode to the 32 bytes of a SHA-256.
/// Anything else could never match a verifier, so it is refused at `/authorize` rather than
/// minting a code no client can redeem.
pub fn is_valid_s256_challenge(challenge: &str) -> bool {
    challenge.len() == 43 && URL_SAFE_NO_PAD.decode(challenge).is_ok_and(|digest| digest.len() == 32)
}

#[cfg(test)]
mod tests {
    use super::*;
    use sha2::{Digest, Sha256};

    #[test]
    fn verifiers_are_43_to_128_unreserved_characters() {
        let rfc_example = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
        assert!(is_valid_code_verifier(rfc_example));
        assert!(is_valid_code_verifier(&"a".repeat(43)));
        assert!(is_valid_code_verifier(&"~._-Az09".repeat(16)), "128 characters, every kind");
        for (what, verifier) in [
            ("42 characters", "a".repeat(42)),
            ("129 characters", "a".repeat(129)),
            ("empty", String::new()),
            ("a plus", format!("{}+", "a".repeat(42))),
            ("a slash", format!("{}/", "a".repeat(42))),
            ("padding", format!("{}=", "a".repeat(42))),
            ("a space", format!("{} ", "a".repeat(42))),
            ("a percent sign", format!("{}%7E", "a".repeat(42))),
            ("non-ASCII", format!("{}é", "a".repeat(42))),
        ] {
            assert!(!is_valid_code_verifier(&verifier), "{what}: {verifier:?}");
        }
    }

    #[test]
    fn challenges_are_43_base64url_characters_of_a_sha256() {
        assert!(is_valid_s256_challenge("E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"), "RFC 7636 appendix B");
        let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(b"any verifier at all"));
        assert!(is_valid_s256_challenge(&challenge));
        for (what, challenge) in [
            ("42 characters", "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-c".to_string()),
            ("44 characters", "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cMA".to_string()),
            ("padded", "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-c=".to_string()),
            ("standard base64", "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw+cM".to_string()),
            // 43 characters carry 258 bits; a 32-byte digest leaves the last two at zero.
            ("bits beyond 32 bytes", "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cN".to_string()),
            ("empty", String::new()),
        ] {
            assert!(!is_valid_s256_challenge(&challenge), "{what}: {challenge:?}");
        }
    }
}
