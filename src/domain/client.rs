//! OAuth clients: third-party apps, resource servers and administrators.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::str::FromStr;

use jsonwebtoken::jwk::JwkSet;

use super::jose;
use super::scope::{GrantType, SecurityLevel, ADMIN_SCOPE};

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

/// `token_endpoint_auth_method` (RFC 7591 §2): how a client proves who it is at `/token`,
/// `/par`, `/introspect` and `/revoke`. A secret may come in the Basic header or the body
/// whichever of the two secret methods is registered (RFC 6749 §2.3.1 allows both).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AuthMethod {
    ClientSecretBasic,
    ClientSecretPost,
    PrivateKeyJwt,
    None,
}

impl AuthMethod {
    pub const ALL: [AuthMethod; 4] = [Self::ClientSecretBasic, Self::ClientSecretPost, Self::PrivateKeyJwt, Self::None];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::ClientSecretBasic => "client_secret_basic",
            Self::ClientSecretPost => "client_secret_post",
            Self::PrivateKeyJwt => "private_key_jwt",
            Self::None => "none",
        }
    }

    /// Whether the client authenticates with a shared secret.
    pub fn uses_secret(self) -> bool {
        matches!(self, Self::ClientSecretBasic | Self::ClientSecretPost)
    }
}

impl FromStr for AuthMethod {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL.into_iter().find(|method| method.as_str() == s).ok_or_else(|| {
            format!(
                "token_endpoint_auth_method must be client_secret_basic, client_secret_post, private_key_jwt or none, not {s:?}"
            )
        })
    }
}

impl std::fmt::Display for AuthMethod {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
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
    pub token_endpoint_auth_method: AuthMethod,
    /// The public keys of a `private_key_jwt` client (RFC 7591 `jwks`).
    #[schema(value_type = Option<Object>)]
    pub jwks: Option<JwkSet>,
    /// `/authorize` accepts this client's requests only through `/par` (RFC 9126 §6).
    pub require_pushed_authorization_requests: bool,
    /// Its access tokens are always DPoP-bound: a token request without a proof is refused
    /// (RFC 9449 §5.2).
    pub dpop_bound_access_tokens: bool,
}

impl Client {
    pub fn allows_grant_type(&self, grant_type: GrantType) -> bool {
        self.grant_types.contains(&grant_type)
    }

    /// Exact string match (RFC 9700 §4.1.3): no prefix, pattern or port leniency.
    pub fn has_redirect_uri(&self, uri: &str) -> bool {
        self.redirect_uris.iter().any(|registered| registered == uri)
    }

    /// Whether what the client presented proves it under its registered method: a matching
    /// secret for a secret client, a checked assertion for a `private_key_jwt` client, nothing
    /// for a public client. A client never falls back to a weaker method than its own. The one
    /// rule every endpoint's authentication applies.
    pub fn accepts(&self, proof: ClientProof) -> bool {
        match (self.token_endpoint_auth_method, proof) {
            (AuthMethod::ClientSecretBasic | AuthMethod::ClientSecretPost, ClientProof::Secret { matches }) => matches,
            (AuthMethod::PrivateKeyJwt, ClientProof::Assertion) => true,
            (AuthMethod::None, ClientProof::Nothing) => true,
            _ => false,
        }
    }

    /// Whether an administrator may assign the scope `name` (of security level `level`) to this
    /// client: the admin scope only to an admin client, and nothing more sensitive than the
    /// client's own level. The one rule the admin API, the CLI and the console's assignment
    /// form all apply.
    pub fn may_hold(&self, name: &str, level: SecurityLevel) -> Result<(), HoldRefusal> {
        if name == ADMIN_SCOPE && !self.admin {
            return Err(HoldRefusal::ReservedForAdmins);
        }
        if !self.security_level.admits(level) {
            return Err(HoldRefusal::TooSensitive { scope: level, client: self.security_level });
        }
        Ok(())
    }
}

/// What a client presented to authenticate ([`Client::accepts`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientProof {
    /// A secret, and whether it matched the stored hash.
    Secret { matches: bool },
    /// A `private_key_jwt` assertion, checked and spent.
    Assertion,
    /// Only a `client_id`.
    Nothing,
}

/// Why a client may not hold a scope ([`Client::may_hold`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HoldRefusal {
    ReservedForAdmins,
    TooSensitive { scope: SecurityLevel, client: SecurityLevel },
}

impl std::fmt::Display for HoldRefusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::ReservedForAdmins => write!(f, "reserved for admin clients"),
            Self::TooSensitive { scope, client } => {
                write!(f, "level {scope} is more sensitive than the client's level {client}")
            }
        }
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
            token_endpoint_auth_method: AuthMethod::ClientSecretBasic,
            jwks: None,
            require_pushed_authorization_requests: false,
            dpop_bound_access_tokens: false,
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
    /// None = `none` for a public client, `client_secret_basic` otherwise.
    pub token_endpoint_auth_method: Option<AuthMethod>,
    /// Required for, and only for, `private_key_jwt` (checked by [`jose::client_key_set`]).
    pub jwks: Option<serde_json::Value>,
    pub require_pushed_authorization_requests: bool,
    pub dpop_bound_access_tokens: bool,
}

impl ClientRegistration {
    /// The method asked for, or the natural one.
    pub fn effective_auth_method(&self) -> AuthMethod {
        match (self.token_endpoint_auth_method, self.public) {
            (Some(method), _) => method,
            (None, true) => AuthMethod::None,
            (None, false) => AuthMethod::ClientSecretBasic,
        }
    }

    /// The checked key set, when the registration carries one.
    pub fn key_set(&self) -> Result<Option<JwkSet>, RegistrationError> {
        self.jwks
            .as_ref()
            .map(|jwks| {
                jose::client_key_set(jwks)
                    .map_err(|error| RegistrationError::Invalid { field: "jwks", message: error.0 })
            })
            .transpose()
    }

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
    pub fn validate(&self) -> Result<(), RegistrationError> {
        let invalid = |field, message: &str| Err(RegistrationError::Invalid { field, message: message.into() });
        let name = self.name.trim();
        if name.is_empty() || name.chars().count() > 200 {
            return invalid("name", "name must be 1 to 200 characters");
        }
        for uri in &self.redirect_uris {
            validate_redirect_uri(uri, self.public).map_err(RegistrationError::InvalidRedirectUri)?;
        }
        let grant_types = self.effective_grant_types();
        if grant_types.is_empty() {
            return invalid("grant_types", "a public client needs a redirect URI for the authorization code flow");
        }
        if grant_types.contains(&GrantType::AuthorizationCode) && self.redirect_uris.is_empty() {
            return invalid("redirect_uris", "the authorization_code grant needs at least one redirect URI");
        }
        if self.public && grant_types.contains(&GrantType::ClientCredentials) {
            return invalid("grant_types", "a public client cannot use client_credentials: it has no secret");
        }
        if self.public && (self.admin || self.can_introspect) {
            return invalid("public", "admin and introspecting clients must be confidential");
        }
        let method = self.effective_auth_method();
        if self.public != (method == AuthMethod::None) {
            return invalid("token_endpoint_auth_method", "a public client uses none; a confidential one must not");
        }
        match (method, &self.jwks) {
            (AuthMethod::PrivateKeyJwt, None) => return invalid("jwks", "private_key_jwt needs the client's jwks"),
            (AuthMethod::PrivateKeyJwt, Some(_)) => {}
            (_, Some(_)) => return invalid("jwks", "jwks is only for private_key_jwt clients"),
            (_, None) => {}
        }
        self.key_set()?;
        Ok(())
    }
}

/// Why a registration (or the result of an edit) is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RegistrationError {
    /// A redirect URI outside the policy of [`validate_redirect_uri`]: `invalid_redirect_uri`.
    #[error("redirect_uris: {0}")]
    InvalidRedirectUri(String),
    /// Any other field: `invalid_request`, naming the field.
    #[error("{field}: {message}")]
    Invalid { field: &'static str, message: String },
}

impl RegistrationError {
    pub fn field(&self) -> &'static str {
        match self {
            Self::InvalidRedirectUri(_) => "redirect_uris",
            Self::Invalid { field, .. } => field,
        }
    }
}

/// The redirect-URI registration policy (SPEC Part 2, RFC 9700 §2.1, RFC 8252 §7 and §8.3),
/// for every way a client is registered or edited: an absolute URI, matched exactly later, with
/// - `https`;
/// - `http` only on a loopback host (`127.0.0.1` and the rest of 127/8, `[::1]`, `localhost`),
///   where a native app listens for the answer and no network sees it;
/// - for a public (native) client, a private-use scheme named after a domain it controls,
///   reversed (`com.example.app:/cb`): a scheme without a dot (`myapp:`) is one any app may
///   claim, and `javascript:`, `data:` or `file:` are no place to send a code;
/// - no fragment (RFC 6749 §3.1.2), no user information, no wildcard.
///
/// The checks run on the URI as the `url` crate parses it, which is the URL the browser is
/// sent to; what that parser silently drops or repairs (tabs and newlines, an empty `@`, a
/// missing `//`) is checked on the text as registered.
pub fn validate_redirect_uri(uri: &str, public: bool) -> Result<(), String> {
    if uri.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(format!("redirect URI {uri:?} must not contain spaces or control characters"));
    }
    if uri.contains('*') {
        return Err(format!("redirect URI {uri:?} must not contain a wildcard (*): redirect URIs match exactly"));
    }
    let Ok(url) = url::Url::parse(uri) else {
        return Err(format!("redirect URI {uri:?} must be an absolute URI"));
    };
    // The raw authority, when the URI is written with one (`scheme://authority/...`).
    let authority = uri
        .get(url.scheme().len() + 1..)
        .and_then(|rest| rest.strip_prefix("//"))
        .map(|rest| rest.split(['/', '?', '#']).next().unwrap_or(rest));
    match url.scheme() {
        "https" | "http" if authority.is_none() => {
            return Err(format!("redirect URI {uri:?} must be an absolute URI (scheme://host/path)"))
        }
        "https" => {}
        "http" if is_loopback(&url) => {}
        "http" => {
            return Err(format!(
                "redirect URI {uri:?} must use https; plain http is allowed only for a loopback host \
                 (127.0.0.1, [::1], localhost)"
            ))
        }
        scheme if is_reverse_domain(scheme) => {
            if !public {
                return Err(format!(
                    "redirect URI {uri:?} uses a private-use scheme, which only a public (native) client may register"
                ));
            }
        }
        scheme => {
            return Err(format!(
                "redirect URI {uri:?} has the scheme {scheme:?}: use https, http on a loopback host, or for a \
                 public native app a reverse-domain private-use scheme such as com.example.app:/cb"
            ))
        }
    }
    if !url.username().is_empty() || url.password().is_some() || authority.is_some_and(|a| a.contains('@')) {
        return Err(format!("redirect URI {uri:?} must not contain user information (user@)"));
    }
    if url.fragment().is_some() {
        return Err(format!("redirect URI {uri:?} must not contain a fragment (#)"));
    }
    Ok(())
}

/// Whether a URL's host is a loopback address or `localhost`: where plain http may serve (a
/// native app's redirect, a development issuer).
pub fn is_loopback(url: &url::Url) -> bool {
    match url.host() {
        Some(url::Host::Ipv4(address)) => address.is_loopback(),
        Some(url::Host::Ipv6(address)) => address.is_loopback(),
        Some(url::Host::Domain(name)) => name == "localhost",
        None => false,
    }
}

/// `com.example.app`: two or more dot-separated labels of letters, digits and hyphens.
fn is_reverse_domain(scheme: &str) -> bool {
    let labels: Vec<&str> = scheme.split('.').collect();
    labels.len() >= 2
        && labels.iter().all(|label| !label.is_empty() && label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_client_may_hold_what_its_level_admits_and_the_admin_scope_only_as_an_admin() {
        let plain = Client::for_tests(SecurityLevel::C, false);
        let admin = Client::for_tests(SecurityLevel::C, true);
        assert_eq!(plain.may_hold("accounts", SecurityLevel::C), Ok(()));
        assert_eq!(plain.may_hold("accounts", SecurityLevel::F), Ok(()));
        assert_eq!(
            plain.may_hold("payments", SecurityLevel::A),
            Err(HoldRefusal::TooSensitive { scope: SecurityLevel::A, client: SecurityLevel::C })
        );
        assert_eq!(plain.may_hold(ADMIN_SCOPE, SecurityLevel::F), Err(HoldRefusal::ReservedForAdmins));
        assert_eq!(admin.may_hold(ADMIN_SCOPE, SecurityLevel::F), Ok(()));
    }

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
        assert_eq!(r.validate().unwrap_err().field(), "grant_types");
    }

    #[test]
    fn the_code_flow_needs_a_redirect_uri() {
        let r = ClientRegistration { grant_types: vec![GrantType::AuthorizationCode], ..registration() };
        assert_eq!(r.validate().unwrap_err().field(), "redirect_uris");
    }

    #[test]
    fn the_redirect_uri_policy_accepts_https_loopback_http_and_native_schemes_for_public_clients() {
        // (uri, accepted for a confidential client, accepted for a public client)
        let table = [
            ("https://app.example/cb", true, true),
            ("https://app.example:8443/cb?tenant=1", true, true),
            ("https://app.example", true, true),
            ("http://127.0.0.1:8400/cb", true, true),
            ("http://127.0.0.2/cb", true, true),
            ("http://[::1]:8400/cb", true, true),
            ("http://localhost:3000/cb", true, true),
            ("com.example.app:/oauth2redirect", false, true),
            ("com.example.app://cb", false, true),
            ("com.example-bank.mobile:/cb", false, true),
            // plain http elsewhere
            ("http://app.example/cb", false, false),
            ("http://10.0.0.1/cb", false, false),
            ("http://localhost.evil.example/cb", false, false),
            ("http://127.0.0.1.nip.io/cb", false, false),
            // fragments, user information, wildcards
            ("https://app.example/cb#done", false, false),
            ("https://app.example/cb#", false, false),
            ("com.example.app:/cb#x", false, false),
            ("https://user@app.example/cb", false, false),
            ("https://user:pw@app.example/cb", false, false),
            ("https://@app.example/cb", false, false),
            ("https://app.example@evil.example/cb", false, false),
            ("https://*.app.example/cb", false, false),
            ("https://app.example/*", false, false),
            // schemes that are no place for a code
            ("javascript:alert(document.cookie)", false, false),
            ("data:text/html,<script>alert(1)</script>", false, false),
            ("file:///etc/passwd", false, false),
            ("vbscript:msgbox", false, false),
            ("ftp://app.example/cb", false, false),
            ("myapp:/cb", false, false),
            ("com.:/cb", false, false),
            (".com.example:/cb", false, false),
            ("com..example:/cb", false, false),
            // not absolute, or what a lenient parser would quietly repair
            ("/cb", false, false),
            ("app.example/cb", false, false),
            ("https:app.example/cb", false, false),
            ("https:/app.example/cb", false, false),
            ("https://app.example/c b", false, false),
            ("https://app.example/c\tb", false, false),
            (" https://app.example/cb", false, false),
            ("https://app.example/cb\n", false, false),
            ("", false, false),
        ];
        for (uri, confidential, public) in table {
            assert_eq!(validate_redirect_uri(uri, false).is_ok(), confidential, "{uri:?} for a confidential client");
            assert_eq!(validate_redirect_uri(uri, true).is_ok(), public, "{uri:?} for a public client");
        }
    }

    #[test]
    fn a_registration_with_a_refused_redirect_uri_names_the_policy() {
        let r = ClientRegistration { redirect_uris: vec!["http://app.example/cb".into()], ..registration() };
        let error = r.validate().unwrap_err();
        assert!(matches!(error, RegistrationError::InvalidRedirectUri(_)), "{error:?}");
        assert!(error.to_string().contains("must use https"), "{error}");
        let native = ClientRegistration { redirect_uris: vec!["com.example.app:/cb".into()], ..registration() };
        assert!(native.validate().unwrap_err().to_string().contains("public"));
        assert!(ClientRegistration { public: true, ..native }.validate().is_ok());
    }

    #[test]
    fn the_auth_method_must_fit_the_client_and_its_keys() {
        let ec = serde_json::json!({"keys": [{"kty": "EC", "crv": "P-256",
            "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU", "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"}]});
        let keyed = ClientRegistration {
            token_endpoint_auth_method: Some(AuthMethod::PrivateKeyJwt),
            jwks: Some(ec.clone()),
            ..registration()
        };
        assert!(keyed.validate().is_ok());
        let without_keys = ClientRegistration { jwks: None, ..keyed.clone() };
        assert_eq!(without_keys.validate().unwrap_err().field(), "jwks");
        let keys_with_a_secret = ClientRegistration { token_endpoint_auth_method: None, ..keyed.clone() };
        assert_eq!(keys_with_a_secret.validate().unwrap_err().field(), "jwks");
        let public_with_keys =
            ClientRegistration { public: true, redirect_uris: vec!["https://app.example/cb".into()], ..keyed.clone() };
        assert_eq!(public_with_keys.validate().unwrap_err().field(), "token_endpoint_auth_method");
        let private_key = serde_json::json!({"keys": [{"kty": "EC", "crv": "P-256", "d": "x",
            "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU", "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"}]});
        let leaked = ClientRegistration { jwks: Some(private_key), ..keyed };
        assert!(leaked.validate().unwrap_err().to_string().contains("private member"));
        assert_eq!(ClientRegistration { public: true, ..registration() }.effective_auth_method(), AuthMethod::None);
    }

    #[test]
    fn a_client_proves_itself_only_by_its_registered_method() {
        let with = |method| Client { token_endpoint_auth_method: method, ..Client::for_tests(SecurityLevel::F, false) };
        let (secret, key, public) =
            (with(AuthMethod::ClientSecretPost), with(AuthMethod::PrivateKeyJwt), with(AuthMethod::None));
        assert!(secret.accepts(ClientProof::Secret { matches: true }));
        assert!(!secret.accepts(ClientProof::Secret { matches: false }));
        assert!(!secret.accepts(ClientProof::Nothing) && !secret.accepts(ClientProof::Assertion));
        assert!(key.accepts(ClientProof::Assertion));
        assert!(!key.accepts(ClientProof::Secret { matches: true }), "a key client never falls back to a secret");
        assert!(public.accepts(ClientProof::Nothing) && !public.accepts(ClientProof::Assertion));
    }

    #[test]
    fn redirect_uri_matching_is_exact() {
        let client = Client {
            redirect_uris: vec!["https://app.example/cb".into()],
            ..Client::for_tests(SecurityLevel::F, false)
        };
        assert!(client.has_redirect_uri("https://app.example/cb"));
        assert!(!client.has_redirect_uri("https://app.example/cb/"));
        assert!(!client.has_redirect_uri("https://app.example/cb?x=1"));
    }
}
