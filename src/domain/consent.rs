//! The consent form: what a submitted form grants, and why a scope is asked about again.
//! Whether the form is shown at all is `entitlement::authorization_step`.

use std::collections::BTreeSet;

use super::entitlement::Dropped;
use super::scope_tree::ScopeTree;

/// Why a scope the user consented to before is asked about again, in words.
pub fn reauthorization_reason(tree: &ScopeTree, name: &str, reason: Dropped) -> Option<String> {
    let scope = tree.definition(name)?;
    match reason {
        Dropped::Lapsed { .. } => Some("Your earlier consent has expired. Please confirm it again.".into()),
        Dropped::Exhausted => Some(format!(
            "All {} accesses of your earlier consent are used. Please confirm it again.",
            scope.fields.max_access_count
        )),
        _ => None,
    }
}

/// What a submitted consent form grants, out of the `offered` scopes (the negotiated, expanded
/// set the page showed):
/// - scopes that need no user authorization are always granted;
/// - a scope that needs authorization is granted when its box is ticked and no offered
///   ancestor needing authorization was unticked (unticking a parent unticks its children);
/// - a granted parent implies its children, so a parent with any refused offered descendant
///   is dropped and its remaining ticked children are granted individually.
pub fn decide(tree: &ScopeTree, offered: &BTreeSet<String>, ticked: &BTreeSet<String>) -> BTreeSet<String> {
    let needs_box = |name: &str| tree.definition(name).is_some_and(|scope| scope.fields.user_authorization_required);
    let approved = |name: &str| -> bool {
        if !needs_box(name) {
            return true;
        }
        ticked.contains(name)
            && tree.ancestors(name).all(|ancestor| {
                !offered.contains(&ancestor.name) || !needs_box(&ancestor.name) || ticked.contains(&ancestor.name)
            })
    };
    let approved: BTreeSet<String> = offered.iter().filter(|name| approved(name)).cloned().collect();
    approved
        .iter()
        .filter(|name| {
            tree.subtree(name)
                .iter()
                .all(|descendant| !offered.contains(&descendant.name) || approved.contains(&descendant.name))
        })
        .cloned()
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::scope::Scope;

    fn tree() -> ScopeTree {
        ScopeTree::from_scopes(vec![
            Scope::new("profile", "P").with_fields(|fields| fields.user_authorization_required = false),
            Scope { position: 1, ..Scope::new("accounts", "A") },
            Scope { parent: Some("accounts".into()), ..Scope::new("accounts.balance", "B") },
            Scope { parent: Some("accounts".into()), position: 1, ..Scope::new("accounts.transactions", "T") },
            Scope {
                parent: Some("accounts".into()),
                position: 2,
                ..Scope::new("accounts.name", "N").with_fields(|fields| fields.user_authorization_required = false)
            },
        ])
        .unwrap()
    }

    fn set(names: &[&str]) -> BTreeSet<String> {
        names.iter().map(|s| s.to_string()).collect()
    }

    fn offered() -> BTreeSet<String> {
        set(&["profile", "accounts", "accounts.balance", "accounts.transactions", "accounts.name"])
    }

    #[test]
    fn everything_ticked_grants_everything() {
        let all = set(&["accounts", "accounts.balance", "accounts.transactions"]);
        assert_eq!(decide(&tree(), &offered(), &all), offered());
    }

    #[test]
    fn unticking_one_child_grants_the_other_children_individually() {
        let ticked = set(&["accounts", "accounts.balance"]);
        assert_eq!(decide(&tree(), &offered(), &ticked), set(&["profile", "accounts.balance", "accounts.name"]));
    }

    #[test]
    fn unticking_a_parent_unticks_its_children_even_when_their_boxes_stayed_ticked() {
        let ticked = set(&["accounts.balance", "accounts.transactions"]);
        assert_eq!(decide(&tree(), &offered(), &ticked), set(&["profile", "accounts.name"]));
    }

    #[test]
    fn scopes_without_a_box_are_always_granted_and_unoffered_ticks_are_ignored() {
        assert_eq!(decide(&tree(), &offered(), &set(&["payments"])), set(&["profile", "accounts.name"]));
    }
}
