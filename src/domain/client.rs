//! OAuth clients: third-party apps, resource servers and administrators.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::str::FromStr;

use super::scope::{GrantType, SecurityLevel};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum TokenFormat {
    #[default]
    Jwt,
    Opaque,
}

impl TokenFormat {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Jwt => "jwt",
            Self::Opaque => "opaque",
        }
    }
}

impl FromStr for TokenFormat {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "jwt" => Ok(Self::Jwt),
            "opaque" => Ok(Self::Opaque),
            other => Err(format!("token format must be jwt or opaque, not {other:?}")),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Client {
    pub client_id: String,
    pub name: String,
    /// Confidential clients authenticate with a secret; public ones send only `client_id`.
    pub confidential: bool,
    pub redirect_uris: Vec<String>,
    pub grant_types: Vec<GrantType>,
    pub security_level: SecurityLevel,
    pub token_format: TokenFormat,
    pub can_introspect: bool,
    pub admin: bool,
    pub created_at: DateTime<Utc>,
}

impl Client {
    pub fn allows_grant_type(&self, grant_type: GrantType) -> bool {
        self.grant_types.contains(&grant_type)
    }

    /// Exact string match (RFC 9700 §4.1.3): no prefix, pattern or port leniency.
    pub fn has_redirect_uri(&self, uri: &str) -> bool {
        self.redirect_uris.iter().any(|registered| registered == uri)
    }
}

#[cfg(test)]
impl Client {
    /// A confidential client of every grant type, for the rules' unit tests.
    pub fn for_tests(security_level: SecurityLevel, admin: bool) -> Self {
        Self {
            client_id: "c".into(),
            name: "c".into(),
            confidential: true,
            redirect_uris: vec![],
            grant_types: GrantType::ALL.to_vec(),
            security_level,
            token_format: TokenFormat::Jwt,
            can_introspect: false,
            admin,
            created_at: chrono::DateTime::UNIX_EPOCH,
        }
    }
}

/// What an administrator asks for when registering a client, before validation.
#[derive(Debug, Clone, Default)]
pub struct ClientRegistration {
    pub name: String,
    pub public: bool,
    pub redirect_uris: Vec<String>,
    /// Empty = the defaults of [`ClientRegistration::effective_grant_types`].
    pub grant_types: Vec<GrantType>,
    pub security_level: Option<SecurityLevel>,
    pub token_format: Option<TokenFormat>,
    pub can_introspect: bool,
    pub admin: bool,
}

impl ClientRegistration {
    /// The grant types asked for, or the natural ones: the code flow with refresh when the
    /// client has a redirect URI, client credentials when it can keep a secret.
    pub fn effective_grant_types(&self) -> Vec<GrantType> {
        if !self.grant_types.is_empty() {
            let mut types = self.grant_types.clone();
            types.sort();
            types.dedup();
            return types;
        }
        let mut types = Vec::new();
        if !self.redirect_uris.is_empty() {
            types.extend([GrantType::AuthorizationCode, GrantType::RefreshToken]);
        }
        if !self.public {
            types.push(GrantType::ClientCredentials);
        }
        types.sort();
        types
    }

    /// Checks the registration; the error names the offending field.
    pub fn validate(&self) -> Result<(), (&'static str, String)> {
        let name = self.name.trim();
        if name.is_empty() || name.chars().count() > 200 {
            return Err(("name", "name must be 1 to 200 characters".into()));
        }
        for uri in &self.redirect_uris {
            validate_redirect_uri(uri).map_err(|message| ("redirect_uris", message))?;
        }
        let grant_types = self.effective_grant_types();
        if grant_types.is_empty() {
            return Err(("grant_types", "a public client needs a redirect URI for the authorization code flow".into()));
        }
        if grant_types.contains(&GrantType::AuthorizationCode) && self.redirect_uris.is_empty() {
            return Err(("redirect_uris", "the authorization_code grant needs at least one redirect URI".into()));
        }
        if self.public && grant_types.contains(&GrantType::ClientCredentials) {
            return Err(("grant_types", "a public client cannot use client_credentials: it has no secret".into()));
        }
        if self.public && (self.admin || self.can_introspect) {
            return Err(("public", "admin and introspecting clients must be confidential".into()));
        }
        Ok(())
    }
}

/// RFC 6749 §3.1.2: absolute, no fragment. Plain http is allowed (native apps on loopback,
/// the demo); a production deployment registers https URIs.
pub fn validate_redirect_uri(uri: &str) -> Result<(), String> {
    let Some((scheme, rest)) = uri.split_once("://") else {
        return Err(format!("redirect URI {uri:?} must be an absolute URI"));
    };
    let scheme_ok =
        !scheme.is_empty() && scheme.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
    if !scheme_ok || rest.is_empty() {
        return Err(format!("redirect URI {uri:?} must be an absolute URI"));
    }
    if uri.contains('#') {
        return Err(format!("redirect URI {uri:?} must not contain a fragment"));
    }
    if uri.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(format!("redirect URI {uri:?} must not contain spaces"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn registration() -> ClientRegistration {
        ClientRegistration { name: "Online Bank".into(), ..Default::default() }
    }

    #[test]
    fn a_confidential_client_without_redirects_defaults_to_client_credentials() {
        assert_eq!(registration().effective_grant_types(), vec![GrantType::ClientCredentials]);
        assert!(registration().validate().is_ok());
    }

    #[test]
    fn a_client_with_a_redirect_uri_gets_the_code_flow() {
        let r = ClientRegistration { redirect_uris: vec!["https://app.example/cb".into()], ..registration() };
        assert_eq!(
            r.effective_grant_types(),
            vec![GrantType::AuthorizationCode, GrantType::ClientCredentials, GrantType::RefreshToken]
        );
    }

    #[test]
    fn a_public_client_cannot_use_client_credentials() {
        let r = ClientRegistration { public: true, grant_types: vec![GrantType::ClientCredentials], ..registration() };
        assert_eq!(r.validate().unwrap_err().0, "grant_types");
    }

    #[test]
    fn the_code_flow_needs_a_redirect_uri() {
        let r = ClientRegistration { grant_types: vec![GrantType::AuthorizationCode], ..registration() };
        assert_eq!(r.validate().unwrap_err().0, "redirect_uris");
    }

    #[test]
    fn redirect_uris_are_absolute_without_fragments() {
        assert!(validate_redirect_uri("https://app.example/cb").is_ok());
        assert!(validate_redirect_uri("com.example.app://cb").is_ok());
        assert!(validate_redirect_uri("/cb").is_err());
        assert!(validate_redirect_uri("https://app.example/cb#x").is_err());
    }

    #[test]
    fn redirect_uri_matching_is_exact() {
        let client = Client {
            client_id: "c".into(),
            name: "c".into(),
            confidential: true,
            redirect_uris: vec!["https://app.example/cb".into()],
            grant_types: vec![],
            security_level: SecurityLevel::F,
            token_format: TokenFormat::Jwt,
            can_introspect: false,
            admin: false,
            created_at: Utc::now(),
        };
        assert!(client.has_redirect_uri("https://app.example/cb"));
        assert!(!client.has_redirect_uri("https://app.example/cb/"));
        assert!(!client.has_redirect_uri("https://app.example/cb?x=1"));
    }
}
