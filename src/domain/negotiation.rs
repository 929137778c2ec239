//! Scope negotiation: which scopes a token request obtains, computed from the registry.
//!
//! A client asks for scope names (or none). Parents imply their descendants, and what a client
//! may hold is filtered by its security level, by visibility (private scopes only through an
//! assignment of the scope or an ancestor), and by the grant type's place in `auth_types`.

use std::collections::BTreeSet;

use super::client::Client;
use super::scope::GrantType;
use super::scope_tree::{ClientScopeAccess, ScopeTree};

/// The reserved scope of the admin API: only admin clients may ever obtain it.
pub const ADMIN_SCOPE: &str = "scopegate:admin";

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NegotiationError {
    #[error("no scope was requested and the client has no default scope")]
    NoDefaultScope,
    #[error("scope {0:?} is unknown")]
    UnknownScope(String),
    #[error("scope {0:?} is not available to this client")]
    NotAllowed(String),
}

/// What one client may hold, for one grant type.
#[derive(Debug, Clone)]
pub struct ClientScopes<'a> {
    pub client: &'a Client,
    pub access: ClientScopeAccess,
    pub grant_type: GrantType,
}

impl<'a> ClientScopes<'a> {
    pub fn new(client: &'a Client, assigned: BTreeSet<String>, grant_type: GrantType) -> Self {
        let access = ClientScopeAccess { security_level: client.security_level, assigned };
        Self { client, access, grant_type }
    }

    pub fn may_have(&self, tree: &ScopeTree, name: &str) -> bool {
        (name != ADMIN_SCOPE || self.client.admin) && tree.client_may_have(name, &self.access, self.grant_type)
    }

    /// The named scopes plus their current descendants, keeping only what the client may hold.
    pub fn effective<'n>(&self, tree: &ScopeTree, names: impl IntoIterator<Item = &'n str>) -> BTreeSet<String> {
        tree.expand(names).into_iter().filter(|name| self.may_have(tree, name)).collect()
    }

    /// The scopes a request obtains. `requested = None` means the parameter was absent: the
    /// client gets its default scopes. Every named scope must be known and allowed; their
    /// descendants are added where allowed and silently left out where not.
    pub fn negotiate(
        &self,
        tree: &ScopeTree,
        requested: Option<&BTreeSet<String>>,
    ) -> Result<BTreeSet<String>, NegotiationError> {
        let named: Vec<&str> = match requested {
            None => {
                let defaults: Vec<&str> = tree
                    .default_scopes()
                    .into_iter()
                    .map(|scope| scope.name.as_str())
                    .filter(|name| self.may_have(tree, name))
                    .collect();
                if defaults.is_empty() {
                    return Err(NegotiationError::NoDefaultScope);
                }
                defaults
            }
            Some(requested) => {
                for name in requested {
                    if !tree.contains(name) {
                        return Err(NegotiationError::UnknownScope(name.clone()));
                    }
                    if !self.may_have(tree, name) {
                        return Err(NegotiationError::NotAllowed(name.clone()));
                    }
                }
                requested.iter().map(String::as_str).collect()
            }
        };
        Ok(self.effective(tree, named))
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
    use crate::domain::client::TokenFormat;
    use crate::domain::scope::{Scope, SecurityLevel, Visibility};

    fn tree() -> ScopeTree {
        let mut scopes = vec![
            Scope { default_scope: true, user_authorization_required: false, ..Scope::new("profile", "Profile") },
            Scope { security_level: SecurityLevel::C, ..Scope::new("accounts", "Accounts") },
            Scope {
                parent: Some("accounts".into()),
                security_level: SecurityLevel::C,
                ..Scope::new("accounts.balance", "B")
            },
            Scope {
                parent: Some("accounts".into()),
                security_level: SecurityLevel::B,
                position: 1,
                ..Scope::new("accounts.secret", "S")
            },
            Scope {
                parent: Some("accounts".into()),
                auth_types: vec![GrantType::AuthorizationCode],
                position: 2,
                ..Scope::new("accounts.user_only", "U")
            },
            Scope { visibility: Visibility::Private, security_level: SecurityLevel::A, ..Scope::new("payments", "P") },
            Scope {
                parent: Some("payments".into()),
                security_level: SecurityLevel::A,
                ..Scope::new("payments.transfer", "T")
            },
            Scope {
                visibility: Visibility::Private,
                user_authorization_required: false,
                ..Scope::new(ADMIN_SCOPE, "Admin")
            },
        ];
        for (index, scope) in scopes.iter_mut().enumerate() {
            if scope.parent.is_none() {
                scope.position = index as u32;
            }
        }
        ScopeTree::from_scopes(scopes).unwrap()
    }

    fn client(level: SecurityLevel, admin: bool) -> Client {
        Client {
            client_id: "c".into(),
            name: "c".into(),
            confidential: true,
            redirect_uris: vec![],
            grant_types: vec![GrantType::ClientCredentials],
            security_level: level,
            token_format: TokenFormat::Jwt,
            can_introspect: false,
            admin,
            created_at: chrono::Utc::now(),
        }
    }

    fn set(names: &[&str]) -> BTreeSet<String> {
        names.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn no_scope_parameter_gives_the_default_scopes() {
        let c = client(SecurityLevel::C, false);
        let scopes = ClientScopes::new(&c, BTreeSet::new(), GrantType::ClientCredentials);
        assert_eq!(scopes.negotiate(&tree(), None).unwrap(), set(&["profile"]));
    }

    #[test]
    fn no_default_scope_available_is_an_error() {
        let tree = ScopeTree::from_scopes(vec![Scope::new("x", "x")]).unwrap();
        let c = client(SecurityLevel::C, false);
        let scopes = ClientScopes::new(&c, BTreeSet::new(), GrantType::ClientCredentials);
        assert_eq!(scopes.negotiate(&tree, None), Err(NegotiationError::NoDefaultScope));
    }

    #[test]
    fn a_parent_implies_the_children_the_client_may_have() {
        let c = client(SecurityLevel::C, false);
        let scopes = ClientScopes::new(&c, BTreeSet::new(), GrantType::ClientCredentials);
        // accounts.secret is level B (too sensitive for C); accounts.user_only is not for this grant type.
        assert_eq!(
            scopes.negotiate(&tree(), Some(&set(&["accounts"]))).unwrap(),
            set(&["accounts", "accounts.balance"])
        );
        let user = ClientScopes::new(&c, BTreeSet::new(), GrantType::AuthorizationCode);
        assert_eq!(
            user.negotiate(&tree(), Some(&set(&["accounts"]))).unwrap(),
            set(&["accounts", "accounts.balance", "accounts.user_only"])
        );
    }

    #[test]
    fn unknown_and_disallowed_scopes_are_refused_by_name() {
        let c = client(SecurityLevel::C, false);
        let scopes = ClientScopes::new(&c, BTreeSet::new(), GrantType::ClientCredentials);
        assert_eq!(
            scopes.negotiate(&tree(), Some(&set(&["nope"]))),
            Err(NegotiationError::UnknownScope("nope".into()))
        );
        assert_eq!(
            scopes.negotiate(&tree(), Some(&set(&["accounts.secret"]))),
            Err(NegotiationError::NotAllowed("accounts.secret".into()))
        );
        assert_eq!(
            scopes.negotiate(&tree(), Some(&set(&["payments"]))),
            Err(NegotiationError::NotAllowed("payments".into()))
        );
    }

    #[test]
    fn a_private_scope_comes_through_an_assigned_ancestor() {
        let c = client(SecurityLevel::A, false);
        let scopes = ClientScopes::new(&c, set(&["payments"]), GrantType::ClientCredentials);
        assert_eq!(scopes.negotiate(&tree(), Some(&set(&["payments.transfer"]))).unwrap(), set(&["payments.transfer"]));
    }

    #[test]
    fn only_admin_clients_obtain_the_admin_scope_even_when_assigned() {
        let plain = client(SecurityLevel::F, false);
        let scopes = ClientScopes::new(&plain, set(&[ADMIN_SCOPE]), GrantType::ClientCredentials);
        assert!(scopes.negotiate(&tree(), Some(&set(&[ADMIN_SCOPE]))).is_err());
        let admin = client(SecurityLevel::F, true);
        let scopes = ClientScopes::new(&admin, set(&[ADMIN_SCOPE]), GrantType::ClientCredentials);
        assert_eq!(scopes.negotiate(&tree(), Some(&set(&[ADMIN_SCOPE]))).unwrap(), set(&[ADMIN_SCOPE]));
    }

    #[test]
    fn the_scope_parameter_is_space_delimited_and_empty_means_absent() {
        assert_eq!(parse_scope_parameter(Some("a  b a")), Some(set(&["a", "b"])));
        assert_eq!(parse_scope_parameter(Some("  ")), None);
        assert_eq!(parse_scope_parameter(None), None);
        assert_eq!(format_scope(&set(&["b", "a"])), "a b");
    }
}
