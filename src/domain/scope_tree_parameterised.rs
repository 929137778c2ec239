//! The registry's rules for parameterised scopes (SPEC "Banking consents"), which keep each
//! value (`payments.transfer:PAY-123`) unambiguous and a user's consent. Add, edit and import
//! check them for what they change; loading never does, so a tree an older version stored
//! still loads.

use super::{ScopeTree, ScopeTreeError};
use crate::domain::scope::{split_value, validate_scope_value, GrantType, Scope};

impl ScopeTree {
    /// The rules for `scope` as it would stand in this tree:
    /// - a parameterised scope asks the user: each value is a fresh grant with fresh limits, so
    ///   one granted without asking would let a client renew its limits by naming a new value;
    /// - only the code flow grants it (`Scope::allows_grant_type`), so its `auth_types` allow that;
    /// - it stays a leaf: it implies nothing, so a child could never be had through it;
    /// - no scope is named like a value of a parameterised one (`payments.transfer:PAY-1`
    ///   beside a parameterised `payments.transfer` would take that value over).
    pub(super) fn check_parameterised(&self, scope: &Scope, has_children: bool) -> Result<(), ScopeTreeError> {
        if let Some(base) = self.parameterised_base_of(&scope.name).filter(|base| base.name != scope.name) {
            return Err(ScopeTreeError::invalid(
                "name",
                format!(
                    "scope name {:?} is a value of the parameterised scope {:?}, so it cannot name a scope of its own",
                    scope.name, base.name
                ),
            ));
        }
        if !scope.fields.parameterised {
            return Ok(());
        }
        let refused =
            |field: &str, why: &str| Err(ScopeTreeError::invalid(field, format!("scope {:?} {why}", scope.name)));
        if !scope.fields.user_authorization_required {
            return refused(
                "user_authorization_required",
                "is parameterised, so it needs user authorization: each value is a consent of its own",
            );
        }
        if !scope.allows_grant_type(GrantType::AuthorizationCode) {
            return refused(
                "auth_types",
                "is parameterised, so only the code flow grants it: its auth_types must include authorization_code (or be empty)",
            );
        }
        if has_children {
            return refused(
                "parameterised",
                "has children, so it cannot be parameterised: a parameterised scope stays a leaf",
            );
        }
        let is_own_value = |other: &&Scope| {
            split_value(&other.name).is_some_and(|(base, _)| base == scope.name) && is_value_name(&other.name)
        };
        match self.iter().find(is_own_value) {
            Some(value_scope) => refused(
                "parameterised",
                &format!("cannot be parameterised while scope {:?} is named like one of its values", value_scope.name),
            ),
            None => Ok(()),
        }
    }

    /// The parameterised scope `name` would be a value of, if any.
    fn parameterised_base_of(&self, name: &str) -> Option<&Scope> {
        let (base, _) = split_value(name).filter(|_| is_value_name(name))?;
        self.get(base).filter(|base| base.fields.parameterised)
    }

    /// `check_parameterised` for each of `names` as it stands in this tree, and `parent_slot`'s
    /// rule for its parent: for the scopes an import adds or changes, checked against the whole
    /// merged tree.
    pub fn check_parameterised_among<'a>(
        &self,
        names: impl IntoIterator<Item = &'a str>,
    ) -> Result<(), ScopeTreeError> {
        for name in names {
            let Some(slot) = self.slot(name) else { continue };
            let Some(node) = self.nodes.get(slot) else { continue };
            self.check_parameterised(&node.scope, !node.children.is_empty())?;
            // The parent rule of add and move: a parameterised scope takes no children.
            self.parent_slot(node.scope.parent.as_deref())?;
        }
        Ok(())
    }
}

/// Whether `name` reads as `<name>:<value>` with a valid value.
fn is_value_name(name: &str) -> bool {
    split_value(name).is_some_and(|(_, value)| validate_scope_value(value).is_ok())
}
