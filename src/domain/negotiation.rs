//! Scope negotiation: which scope names a token or authorization request stands for.
//!
//! A client asks for scope names (or none): each named scope must exist and be admitted for the
//! client (`entitlement::admits`). What the names then yield is `entitlement`'s rule.

use std::collections::BTreeSet;

use super::entitlement::{admits, Holdings};
use super::scope::{split_value, validate_scope_value, GrantType};
use super::scope_tree::ScopeTree;

pub use super::entitlement::ADMIN_SCOPE;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NegotiationError {
    #[error("no scope was requested and the client has no default scope")]
    NoDefaultScope,
    #[error("scope {0:?} is unknown")]
    UnknownScope(String),
    #[error("scope {0:?} is not available to this client")]
    NotAllowed(String),
    #[error("scope {0:?} is parameterised: request it with a value, as {0}:<value>")]
    ValueRequired(String),
    #[error("{0}")]
    InvalidValue(String),
    #[error("at most {MAX_VALUES_PER_REQUEST} parameterised scope values may be requested at once")]
    TooManyValues,
}

/// How many `<name>:<value>` strings one request may carry. Each is a consent of its own that
/// the user reads on the consent page, and a grant row; a consent page of hundreds is no
/// consent, and nothing a bank asks for at once (one payment, a few accounts) comes near this.
pub const MAX_VALUES_PER_REQUEST: usize = 10;

/// The scope names a request stands for. `requested = None` means the parameter was absent:
/// the client's default scopes. Every named scope must be known and admitted for the client;
/// what the names then yield (their descendants, minus what is dropped) is
/// `entitlement::Rule::evaluate`.
pub fn named_scopes(
    tree: &ScopeTree,
    holdings: &Holdings,
    grant_type: GrantType,
    requested: Option<&BTreeSet<String>>,
) -> Result<BTreeSet<String>, NegotiationError> {
    let Some(requested) = requested else {
        let defaults: BTreeSet<String> = tree
            .default_scopes()
            .into_iter()
            .map(|scope| scope.name.clone())
            .filter(|name| admits(tree, holdings, grant_type, name))
            .collect();
        if defaults.is_empty() {
            return Err(NegotiationError::NoDefaultScope);
        }
        return Ok(defaults);
    };
    // `definition` answers a plain name with itself, so a parameterised answer means a value.
    let values = requested.iter().filter(|name| tree.definition(name).is_some_and(|scope| scope.fields.parameterised));
    if values.count() > MAX_VALUES_PER_REQUEST {
        return Err(NegotiationError::TooManyValues);
    }
    for name in requested {
        if tree.definition(name).is_none() {
            return Err(unknown(tree, name));
        }
        if !admits(tree, holdings, grant_type, name) {
            return Err(NegotiationError::NotAllowed(name.clone()));
        }
    }
    Ok(requested.clone())
}

/// Why a requested string names no scope, as precisely as can be said: a parameterised
/// scope's bare name, a bad value of one, or no such scope.
fn unknown(tree: &ScopeTree, requested: &str) -> NegotiationError {
    if tree.get(requested).is_some_and(|scope| scope.fields.parameterised) {
        return NegotiationError::ValueRequired(requested.to_owned());
    }
    match split_value(requested) {
        Some((name, value)) if tree.get(name).is_some_and(|scope| scope.fields.parameterised) => {
            NegotiationError::InvalidValue(validate_scope_value(value).err().unwrap_or_default())
        }
        _ => NegotiationError::UnknownScope(requested.to_owned()),
    }
}

/// `scope` parameter syntax (RFC 6749 §3.3): space-delimited, case-sensitive tokens.
/// An empty or whitespace-only value counts as absent.
pub fn parse_scope_parameter(value: Option<&str>) -> Option<BTreeSet<String>> {
    let names: BTreeSet<String> = value?.split(' ').filter(|s| !s.is_empty()).map(str::to_string).collect();
    (!names.is_empty()).then_some(names)
}

pub fn format_scope(names: &BTreeSet<String>) -> String {
    names.iter().map(String::as_str).collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::client::Client;
    use crate::domain::scope::{GrantType, Scope, SecurityLevel, Visibility};

    fn tree() -> ScopeTree {
        let mut scopes = vec![
            Scope::new("profile", "Profile").with_fields(|fields| {
                fields.default_scope = true;
                fields.user_authorization_required = false;
            }),
            Scope::new("accounts", "Accounts").with_fields(|fields| fields.security_level = SecurityLevel::C),
            Scope {
                parent: Some("accounts".into()),
                ..Scope::new("accounts.balance", "B").with_fields(|fields| fields.security_level = SecurityLevel::C)
            },
            Scope {
                parent: Some("accounts".into()),
                position: 1,
                ..Scope::new("accounts.secret", "S").with_fields(|fields| fields.security_level = SecurityLevel::B)
            },
            Scope {
                parent: Some("accounts".into()),
                position: 2,
                ..Scope::new("accounts.user_only", "U")
                    .with_fields(|fields| fields.auth_types = vec![GrantType::AuthorizationCode])
            },
            Scope::new("payments", "P").with_fields(|fields| {
                fields.visibility = Visibility::Private;
                fields.security_level = SecurityLevel::A;
            }),
            Scope {
                parent: Some("payments".into()),
                ..Scope::new("payments.transfer", "T").with_fields(|fields| fields.security_level = SecurityLevel::A)
            },
            Scope::new(ADMIN_SCOPE, "Admin").with_fields(|fields| {
                fields.visibility = Visibility::Private;
                fields.user_authorization_required = false;
            }),
        ];
        for (index, scope) in scopes.iter_mut().enumerate() {
            if scope.parent.is_none() {
                scope.position = index as u32;
            }
        }
        ScopeTree::from_scopes(scopes).unwrap()
    }

    fn client(level: SecurityLevel, admin: bool) -> Client {
        Client::for_tests(level, admin)
    }

    fn set(names: &[&str]) -> BTreeSet<String> {
        names.iter().map(|s| s.to_string()).collect()
    }

    fn holdings(level: SecurityLevel, admin: bool, assigned: &[&str]) -> Holdings {
        Holdings::new(client(level, admin), set(assigned))
    }

    const CC: GrantType = GrantType::ClientCredentials;

    #[test]
    fn no_scope_parameter_gives_the_default_scopes() {
        assert_eq!(
            named_scopes(&tree(), &holdings(SecurityLevel::C, false, &[]), CC, None).unwrap(),
            set(&["profile"])
        );
    }

    #[test]
    fn no_default_scope_available_is_an_error() {
        let tree = ScopeTree::from_scopes(vec![Scope::new("x", "x")]).unwrap();
        let holdings = holdings(SecurityLevel::C, false, &[]);
        assert_eq!(named_scopes(&tree, &holdings, CC, None), Err(NegotiationError::NoDefaultScope));
    }

    #[test]
    fn unknown_and_disallowed_scopes_are_refused_by_name() {
        let holdings = holdings(SecurityLevel::C, false, &[]);
        let named = |names: &[&str]| named_scopes(&tree(), &holdings, CC, Some(&set(names)));
        assert_eq!(named(&["nope"]), Err(NegotiationError::UnknownScope("nope".into())));
        assert_eq!(named(&["accounts.secret"]), Err(NegotiationError::NotAllowed("accounts.secret".into())));
        assert_eq!(named(&["payments"]), Err(NegotiationError::NotAllowed("payments".into())));
        assert_eq!(named(&["accounts"]), Ok(set(&["accounts"])), "what a name yields is the rule's business");
    }

    #[test]
    fn a_private_scope_comes_through_an_assigned_ancestor() {
        let holdings = holdings(SecurityLevel::A, false, &["payments"]);
        let requested = set(&["payments.transfer"]);
        assert_eq!(named_scopes(&tree(), &holdings, CC, Some(&requested)).unwrap(), requested);
    }

    #[test]
    fn only_admin_clients_obtain_the_admin_scope_even_when_assigned() {
        let admin_scope = set(&[ADMIN_SCOPE]);
        let plain = holdings(SecurityLevel::F, false, &[ADMIN_SCOPE]);
        assert!(named_scopes(&tree(), &plain, CC, Some(&admin_scope)).is_err());
        let admin = holdings(SecurityLevel::F, true, &[ADMIN_SCOPE]);
        assert_eq!(named_scopes(&tree(), &admin, CC, Some(&admin_scope)).unwrap(), admin_scope);
    }

    #[test]
    fn a_parameterised_scope_is_named_with_a_valid_value_and_never_bare() {
        let mut tree = tree();
        tree.add(Scope {
            parent: Some("payments".into()),
            position: 1,
            ..Scope::new("payments.pay", "Pay").with_fields(|fields| {
                fields.security_level = SecurityLevel::A;
                fields.visibility = Visibility::Private;
                fields.parameterised = true;
            })
        })
        .unwrap();
        let holdings = holdings(SecurityLevel::A, false, &["payments"]);
        let named = |names: &[&str]| named_scopes(&tree, &holdings, GrantType::AuthorizationCode, Some(&set(names)));
        assert_eq!(named(&["payments.pay:PAY-123"]), Ok(set(&["payments.pay:PAY-123"])));
        assert_eq!(
            named_scopes(&tree, &holdings, CC, Some(&set(&["payments.pay:PAY-123"]))),
            Err(NegotiationError::NotAllowed("payments.pay:PAY-123".into())),
            "a value is a user's consent: never through client credentials"
        );
        assert_eq!(named(&["payments.pay"]), Err(NegotiationError::ValueRequired("payments.pay".into())));
        assert!(matches!(named(&["payments.pay:"]), Err(NegotiationError::InvalidValue(_))));
        let too_long = format!("payments.pay:{}", "9".repeat(65));
        assert!(
            matches!(named(&[too_long.as_str()]), Err(NegotiationError::InvalidValue(message)) if message.contains("1 to 64"))
        );
        assert!(matches!(named(&["payments.pay:a=b"]), Err(NegotiationError::InvalidValue(_))));
        let values = |count: usize| (0..count).map(|n| format!("payments.pay:P-{n}")).collect::<Vec<_>>();
        let ten = values(MAX_VALUES_PER_REQUEST);
        assert!(named(&ten.iter().map(String::as_str).collect::<Vec<_>>()).is_ok(), "ten values at once");
        let eleven = values(MAX_VALUES_PER_REQUEST + 1);
        assert_eq!(named(&eleven.iter().map(String::as_str).collect::<Vec<_>>()), Err(NegotiationError::TooManyValues));
        assert_eq!(named(&["accounts:PAY-1"]), Err(NegotiationError::UnknownScope("accounts:PAY-1".into())));
        // Through an assignment of its parent, like any private scope's child; not without.
        let unassigned = super::Holdings::new(client(SecurityLevel::A, false), set(&[]));
        assert_eq!(
            named_scopes(&tree, &unassigned, CC, Some(&set(&["payments.pay:X"]))),
            Err(NegotiationError::NotAllowed("payments.pay:X".into()))
        );
    }

    #[test]
    fn the_scope_parameter_is_space_delimited_and_empty_means_absent() {
        assert_eq!(parse_scope_parameter(Some("a  b a")), Some(set(&["a", "b"])));
        assert_eq!(parse_scope_parameter(Some("  ")), None);
        assert_eq!(parse_scope_parameter(None), None);
        assert_eq!(format_scope(&set(&["b", "a"])), "a b");
    }
}
