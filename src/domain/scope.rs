//! One scope of the registry and the small value types its fields use.

use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize};
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

/// The reserved scope of the admin API: only admin clients may ever obtain it, and it has no
/// children (a child an admin client could not hold would take the admin scope with it, since
/// a parent implies its children, and lock every administrator out).
pub const ADMIN_SCOPE: &str = "scopegate:admin";

/// A scope name: 1–128 characters of `A-Za-z0-9._:-`.
pub fn validate_scope_name(name: &str) -> Result<(), String> {
    let valid_chars = name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | ':' | '-'));
    if name.is_empty() || name.len() > 128 || !valid_chars {
        return Err(format!("scope name {name:?} must be 1 to 128 characters of A-Z, a-z, 0-9, '.', '_', ':' and '-'"));
    }
    Ok(())
}

/// The value of a parameterised scope (SPEC "Banking consents"): 1–64 characters of
/// `A-Za-z0-9._~-`. It has no `:`, so the last `:` of a requested string ends the name.
pub fn validate_scope_value(value: &str) -> Result<(), String> {
    let valid_chars = value.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '~' | '-'));
    if value.is_empty() || value.len() > 64 || !valid_chars {
        return Err(format!(
            "scope value {value:?} must be 1 to 64 characters of A-Z, a-z, 0-9, '.', '_', '~' and '-'"
        ));
    }
    Ok(())
}

/// A requested scope string split at its last `:` into a name and a value, when it has one
/// that could be a value. Whether the name is a parameterised scope is the tree's to say
/// (`ScopeTree::definition`), since plain names may contain `:` too (`scopegate:admin`).
pub fn split_value(requested: &str) -> Option<(&str, &str)> {
    requested.rsplit_once(':').filter(|(name, _)| !name.is_empty())
}

/// One node of the registry, as SPEC.md "Scope registry" lists its fields.
// Its name and its place in the tree are here; everything else is in `fields`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Scope {
    pub name: String,
    /// The parent's name; `None` at the top level.
    pub parent: Option<String>,
    /// Order among siblings, dense from 0.
    pub position: u32,
    #[serde(flatten)]
    pub fields: ScopeFields,
}

/// A scope's own fields: everything but its name and its place in the tree. Fields left out
/// take SPEC's defaults.
// (The notes below are plain comments because utoipa publishes doc comments in the OpenAPI
// document.)
//
// This is the one list of them: `Scope`, the import/export document's `ScopeNode` and the
// admin API's create body flatten it, so a new field is added here, to `ScopePatch` and to the
// storage row (the compiler points at both), and nowhere else. The serde defaults are SPEC's
// defaults, and `ScopeFields::new` uses the same ones.
//
// Deserialize it only flattened into a shape marked `deny_unknown_fields`, through
// `ScopeFields::deserialize_flattened`:
// - serde refuses unknown keys for such a shape as long as the flattened struct is a plain
//   struct: one that flattens something itself makes serde refuse known keys too
//   (serde-rs/serde#1547), so keep this one free of `flatten`. Marking this struct itself
//   `deny_unknown_fields` would add nothing, since it is only ever handed the keys it knows.
// - serde loses the path of a bad value inside a flattened struct (dtolnay/path-to-error#9);
//   `deserialize_flattened` puts the field's name back into the message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ScopeFields {
    /// Display name on the consent page when set.
    #[serde(default)]
    pub alias: Option<String>,
    /// One line shown on the consent page; required.
    pub short_description: String,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub visibility: Visibility,
    #[serde(default)]
    pub default_scope: bool,
    /// Asking the user is the safe default (SPEC).
    #[serde(default = "asks_the_user")]
    pub user_authorization_required: bool,
    /// 0 = unlimited; else a consent lapses that many days after it was given.
    #[serde(default)]
    #[schema(maximum = 36500)] // MAX_ACCESS_DURATION_DAYS; a unit test keeps them equal.
    pub access_duration_days: u32,
    /// 0 = unlimited; else how many accesses one consent allows.
    #[serde(default)]
    #[schema(maximum = 2147483647)] // MAX_ACCESS_COUNT; a unit test keeps them equal.
    pub max_access_count: u32,
    /// 0 = unlimited; else how many accesses one consent allows per calendar day in
    /// `limits_timezone` (Berlin Group `frequencyPerDay`).
    #[serde(default)]
    #[schema(maximum = 2147483647)] // MAX_ACCESS_COUNT
    pub max_accesses_per_day: u32,
    #[serde(default = "least_sensitive")]
    pub security_level: SecurityLevel,
    /// Empty = every grant type.
    #[serde(default)]
    pub auth_types: Vec<GrantType>,
    #[serde(default)]
    pub operations: Vec<String>,
    /// OBP compatibility: a bank-level scope is assigned with a `bank_id`.
    #[serde(default)]
    pub bank_level: bool,
    /// Requested only with a value, as `<name>:<value>` (`payments.transfer:PAY-123`); each
    /// value is a grant of its own, and a parent does not imply it. Always asks the user, and
    /// never goes to client credentials (`allows_grant_type`).
    #[serde(default)]
    pub parameterised: bool,
}

fn asks_the_user() -> bool {
    true
}

fn least_sensitive() -> SecurityLevel {
    SecurityLevel::F
}

impl ScopeFields {
    /// SPEC.md "Field bounds": 100 years is as long as a consent may be limited to.
    pub const MAX_ACCESS_DURATION_DAYS: u32 = 36_500;
    /// SPEC.md "Field bounds": what a signed 32-bit column holds on both backends.
    pub const MAX_ACCESS_COUNT: u32 = i32::MAX.unsigned_abs();

    /// The fields of a scope with SPEC's defaults (the serde defaults above) for all but the
    /// short description.
    pub fn new(short_description: impl Into<String>) -> Self {
        Self {
            alias: None,
            short_description: short_description.into(),
            description: None,
            visibility: Visibility::default(),
            default_scope: false,
            user_authorization_required: asks_the_user(),
            access_duration_days: 0,
            max_access_count: 0,
            max_accesses_per_day: 0,
            security_level: least_sensitive(),
            auth_types: Vec::new(),
            operations: Vec::new(),
            bank_level: false,
            parameterised: false,
        }
    }

    /// For `#[serde(flatten, deserialize_with = "ScopeFields::deserialize_flattened")]`: the
    /// derived deserializer, with the name of the field a bad value came in prefixed to the
    /// error, since serde's flatten drops that path.
    pub fn deserialize_flattened<'de, D>(deserializer: D) -> Result<Self, D::Error>
    where
        D: Deserializer<'de>,
    {
        serde_path_to_error::deserialize(deserializer).map_err(|error| {
            if error.path().iter().next().is_none() {
                // Not about one value (a missing required field): serde's message says which.
                return error.into_inner();
            }
            let path = error.path().to_string();
            D::Error::custom(format!("{path}: {}", error.into_inner()))
        })
    }
}

impl Scope {
    /// A top-level scope with SPEC's defaults for every field left out.
    pub fn new(name: impl Into<String>, short_description: impl Into<String>) -> Self {
        Self { name: name.into(), parent: None, position: 0, fields: ScopeFields::new(short_description) }
    }

    /// The scope with some of its fields changed, for building test trees in one expression.
    #[cfg(test)]
    pub(crate) fn with_fields(mut self, change: impl FnOnce(&mut ScopeFields)) -> Self {
        change(&mut self.fields);
        self
    }

    /// Whether a token request by `grant_type` may obtain this scope. A parameterised scope's
    /// value is something a user consents to, so client credentials (no user, and a fresh
    /// grant for every value the client names) never obtain one.
    pub fn allows_grant_type(&self, grant_type: GrantType) -> bool {
        if self.fields.parameterised && grant_type == GrantType::ClientCredentials {
            return false;
        }
        self.fields.auth_types.is_empty() || self.fields.auth_types.contains(&grant_type)
    }

    /// What the consent and account pages call the scope as `requested`: its alias (or name),
    /// and for a parameterised scope the value too ("Transfer money — PAY-123").
    pub fn label_for(&self, requested: &str) -> String {
        let label = self.fields.alias.as_deref().unwrap_or(&self.name);
        match split_value(requested).filter(|_| self.fields.parameterised) {
            Some((_, value)) => format!("{label} \u{2014} {value}"),
            None => label.to_owned(),
        }
    }

    /// Whether introspection counts its accesses: a limit on all of them or on each day's.
    pub fn is_count_limited(&self) -> bool {
        self.fields.max_access_count > 0 || self.fields.max_accesses_per_day > 0
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
    fn new_fields_take_the_same_defaults_as_fields_left_out_of_a_document() {
        let read: ScopeFields = serde_json::from_str(r#"{"short_description": "Profile"}"#).unwrap();
        assert_eq!(read, ScopeFields::new("Profile"));
        assert!(read.user_authorization_required, "asking the user is the safe default");
        assert_eq!((read.visibility, read.security_level), (Visibility::Public, SecurityLevel::F));
        assert_eq!(Scope::new("profile", "Profile").fields, read);
    }

    #[test]
    fn a_scope_serializes_its_fields_flat_beside_its_place_in_the_tree() {
        let json = serde_json::to_value(Scope::new("profile", "Profile")).unwrap();
        let expected = serde_json::json!({
            "name": "profile",
            "parent": null,
            "position": 0,
            "alias": null,
            "short_description": "Profile",
            "description": null,
            "visibility": "public",
            "default_scope": false,
            "user_authorization_required": true,
            "access_duration_days": 0,
            "max_access_count": 0,
            "max_accesses_per_day": 0,
            "security_level": "F",
            "auth_types": [],
            "operations": [],
            "bank_level": false,
            "parameterised": false
        });
        assert_eq!(json, expected);
    }

    #[test]
    fn the_openapi_schema_states_the_field_bounds() {
        let schema = serde_json::to_value(<ScopeFields as utoipa::PartialSchema>::schema()).unwrap();
        let maximum = |field: &str| schema["properties"][field]["maximum"].as_f64();
        assert_eq!(maximum("access_duration_days"), Some(f64::from(ScopeFields::MAX_ACCESS_DURATION_DAYS)));
        assert_eq!(maximum("max_access_count"), Some(f64::from(ScopeFields::MAX_ACCESS_COUNT)));
        assert_eq!(schema["required"], serde_json::json!(["short_description"]));
    }

    #[test]
    fn scope_values_follow_the_spec_alphabet() {
        assert!(validate_scope_value("PAY-123").is_ok());
        assert!(validate_scope_value("a.b_c~d-e").is_ok());
        assert!(validate_scope_value(&"9".repeat(64)).is_ok());
        assert!(validate_scope_value(&"9".repeat(65)).is_err());
        assert!(validate_scope_value("").is_err());
        assert!(validate_scope_value("PAY 1").is_err());
        assert!(validate_scope_value("a:b").is_err());
        assert!(validate_scope_value("é").is_err());
        assert_eq!(split_value("payments.transfer:PAY-1"), Some(("payments.transfer", "PAY-1")));
        assert_eq!(split_value("a:b:c"), Some(("a:b", "c")));
        assert_eq!(split_value(":x"), None);
        assert_eq!(split_value("plain"), None);
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
