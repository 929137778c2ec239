//! Access tokens: their claims (RFC 9068) and the choice between a JWT and an opaque token.

use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

use super::client::TokenFormat;
use super::scope_tree::ScopeTree;

/// Who a token acts for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Subject {
    /// Client credentials: the client acts for itself.
    Client { client_id: String },
    /// A user's consent through the browser flow.
    User { user_id: String, username: String },
}

impl Subject {
    /// `sub`: the client's id, or the user's stable id.
    pub fn id(&self) -> &str {
        match self {
            Self::Client { client_id } => client_id,
            Self::User { user_id, .. } => user_id,
        }
    }

    pub fn user_id(&self) -> Option<&str> {
        match self {
            Self::Client { .. } => None,
            Self::User { user_id, .. } => Some(user_id),
        }
    }

    pub fn username(&self) -> Option<&str> {
        match self {
            Self::Client { .. } => None,
            Self::User { username, .. } => Some(username),
        }
    }
}

/// The JWT access token's claims (RFC 9068 §2.2).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessTokenClaims {
    pub iss: String,
    pub sub: String,
    pub aud: String,
    pub client_id: String,
    pub scope: String,
    pub exp: i64,
    pub iat: i64,
    pub jti: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// RFC 9449 §6.1: the key a DPoP-bound token is bound to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cnf: Option<Confirmation>,
}

/// `cnf` (RFC 7800) with the JWK SHA-256 thumbprint of a DPoP key (RFC 9449 §6.1).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Confirmation {
    pub jkt: String,
}

/// `token_type` of a token response and of introspection: `DPoP` for a bound token.
pub fn token_type(dpop_jkt: Option<&str>) -> &'static str {
    if dpop_jkt.is_some() {
        "DPoP"
    } else {
        "Bearer"
    }
}

/// `typ` header of a JWT access token (RFC 9068 §2.1).
pub const JWT_ACCESS_TOKEN_TYPE: &str = "at+jwt";

/// A token carrying a count-limited scope is always opaque: a JWT validated locally by a
/// resource server could never be counted.
pub fn token_format(client_format: TokenFormat, tree: &ScopeTree, scopes: &BTreeSet<String>) -> TokenFormat {
    let counted = scopes.iter().any(|name| tree.definition(name).is_some_and(|scope| scope.is_count_limited()));
    if counted {
        TokenFormat::Opaque
    } else {
        client_format
    }
}

/// A JWT has exactly three base64url segments; anything else is treated as opaque.
pub fn looks_like_jwt(token: &str) -> bool {
    let segments: Vec<&str> = token.split('.').collect();
    segments.len() == 3
        && segments
            .iter()
            .all(|s| !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::scope::Scope;

    #[test]
    fn a_count_limited_scope_forces_an_opaque_token() {
        let tree = ScopeTree::from_scopes(vec![
            Scope::new("counted", "c").with_fields(|fields| fields.max_access_count = 5),
            Scope { position: 1, ..Scope::new("timed", "t").with_fields(|fields| fields.access_duration_days = 5) },
        ])
        .unwrap();
        let set = |names: &[&str]| names.iter().map(|s| s.to_string()).collect::<BTreeSet<_>>();
        assert_eq!(token_format(TokenFormat::Jwt, &tree, &set(&["counted"])), TokenFormat::Opaque);
        assert_eq!(token_format(TokenFormat::Jwt, &tree, &set(&["timed"])), TokenFormat::Jwt);
        assert_eq!(token_format(TokenFormat::Opaque, &tree, &set(&["timed"])), TokenFormat::Opaque);
    }

    #[test]
    fn jwts_are_told_from_opaque_tokens_by_shape() {
        assert!(looks_like_jwt("eyJh.eyJi.c2ln"));
        assert!(!looks_like_jwt("abc"));
        assert!(!looks_like_jwt("a.b"));
        assert!(!looks_like_jwt("a..c"));
        assert!(!looks_like_jwt("a.b.c d"));
    }
}
