//! One scope of the registry and the small value types its fields use.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// How sensitive a scope is. `A` is the most sensitive, `F` the least.
///
/// The derived order follows the letters, so `A < F`: a client of level `X`
/// may hold a scope of level `L` exactly when `L >= X`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, utoipa::ToSchema)]
pub enum SecurityLevel {
    A,
    B,
    C,
    D,
    E,
    F,
}

impl SecurityLevel {
    pub const ALL: [SecurityLevel; 6] = [Self::A, Self::B, Self::C, Self::D, Self::E, Self::F];

    /// Whether a client of level `self` may hold a scope of level `scope_level`.
    pub fn admits(self, scope_level: SecurityLevel) -> bool {
        scope_level >= self
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::A => "A",
            Self::B => "B",
            Self::C => "C",
            Self::D => "D",
            Self::E => "E",
            Self::F => "F",
        }
    }
}

impl fmt::Display for SecurityLevel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for SecurityLevel {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|level| level.as_str() == s)
            .ok_or_else(|| format!("security level must be one of A, B, C, D, E, F, not {s:?}"))
    }
}

/// Whether any client the security level admits may hold a scope, or only clients it is assigned to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Visibility {
    #[default]
    Public,
    Private,
}

impl Visibility {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Public => "public",
            Self::Private => "private",
        }
    }
}

impl FromStr for Visibility {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "public" => Ok(Self::Public),
            "private" => Ok(Self::Private),
            other => Err(format!("visibility must be public or private, not {other:?}")),
        }
    }
}

/// The OAuth grant types scopegate speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum GrantType {
    AuthorizationCode,
    ClientCredentials,
    RefreshToken,
}

impl GrantType {
    pub const ALL: [GrantType; 3] = [Self::AuthorizationCode, Self::ClientCredentials, Self::RefreshToken];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::AuthorizationCode => "authorization_code",
            Self::ClientCredentials => "client_credentials",
            Self::RefreshToken => "refresh_token",
        }
    }
}

impl fmt::Display for GrantType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for GrantType {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL.into_iter().find(|grant_type| grant_type.as_str() == s).ok_or_else(|| {
            format!("grant type must be authorization_code, client_credentials or refresh_token, not {s:?}")
        })
    }
}

/// A scope name: 1–128 characters of `A-Za-z0-9._:-`.
pub fn validate_scope_name(name: &str) -> Result<(), String> {
    let valid_chars = name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | ':' | '-'));
    if name.is_empty() || name.len() > 128 || !valid_chars {
        return Err(format!("scope name {name:?} must be 1 to 128 characters of A-Z, a-z, 0-9, '.', '_', ':' and '-'"));
    }
    Ok(())
}

/// One node of the registry, as SPEC.md "Scope registry" lists its fields.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Scope {
    pub name: String,
    pub alias: Option<String>,
    pub short_description: String,
    pub description: Option<String>,
    /// The parent's name; `None` at the top level.
    pub parent: Option<String>,
    /// Order among siblings, dense from 0.
    pub position: u32,
    pub visibility: Visibility,
    pub default_scope: bool,
    pub user_authorization_required: bool,
    /// 0 = unlimited.
    pub access_duration_days: u32,
    /// 0 = unlimited.
    pub max_access_count: u32,
    pub security_level: SecurityLevel,
    /// Empty = every grant type.
    pub auth_types: Vec<GrantType>,
    pub operations: Vec<String>,
    /// OBP compatibility: a bank-level scope is assigned with a `bank_id`.
    pub bank_level: bool,
}

impl Scope {
    /// A scope with SPEC's defaults for every field left out.
    pub fn new(name: impl Into<String>, short_description: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            alias: None,
            short_description: short_description.into(),
            description: None,
            parent: None,
            position: 0,
            visibility: Visibility::Public,
            default_scope: false,
            user_authorization_required: true,
            access_duration_days: 0,
            max_access_count: 0,
            security_level: SecurityLevel::F,
            auth_types: Vec::new(),
            operations: Vec::new(),
            bank_level: false,
        }
    }

    /// Whether a token request by `grant_type` may obtain this scope.
    pub fn allows_grant_type(&self, grant_type: GrantType) -> bool {
        self.auth_types.is_empty() || self.auth_types.contains(&grant_type)
    }

    pub fn is_count_limited(&self) -> bool {
        self.max_access_count > 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_client_level_admits_its_own_level_and_every_less_sensitive_one() {
        assert!(SecurityLevel::C.admits(SecurityLevel::C));
        assert!(SecurityLevel::C.admits(SecurityLevel::F));
        assert!(!SecurityLevel::C.admits(SecurityLevel::B));
        assert!(!SecurityLevel::C.admits(SecurityLevel::A));
    }

    #[test]
    fn scope_names_follow_the_spec_alphabet() {
        assert!(validate_scope_name("accounts.balance").is_ok());
        assert!(validate_scope_name("scopegate:admin").is_ok());
        assert!(validate_scope_name("").is_err());
        assert!(validate_scope_name("has space").is_err());
        assert!(validate_scope_name(&"a".repeat(129)).is_err());
        assert!(validate_scope_name(&"a".repeat(128)).is_ok());
    }
}
