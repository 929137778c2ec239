//! Grant Management for OAuth 2.0 (OpenID FAPI WG; SPEC "Banking consents"): what an
//! authorization request asks of the user's grants with the client. A grant is a consent row
//! (its id is the `grant_id`); a user may hold several with one client, one of them the default
//! that requests without `grant_management_action` merge into, as before.

use std::collections::BTreeSet;

/// `grant_management_action` with its `grant_id`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GrantAction {
    /// No action: the user's default grant with the client, as without Grant Management.
    Default,
    /// A new grant, beside any others (two payment consents).
    Create,
    /// Adds what is granted now to the grant; what it held stays.
    Merge(String),
    /// The grant holds what is granted now and nothing else.
    Replace(String),
}

/// The actions the metadata lists (`grant_management_actions_supported`).
pub const ACTIONS: [&str; 3] = ["create", "merge", "replace"];

/// Reads the two parameters; the error is the `error_description` of an `invalid_request`.
pub fn requested(action: Option<&str>, grant_id: Option<&str>) -> Result<GrantAction, String> {
    match (action, grant_id) {
        (None, None) => Ok(GrantAction::Default),
        (None, Some(_)) => Err("grant_id needs a grant_management_action (merge or replace)".into()),
        (Some("create"), None) => Ok(GrantAction::Create),
        (Some("create"), Some(_)) => Err("grant_management_action=create takes no grant_id".into()),
        (Some("merge" | "replace"), None) => Err("grant_management_action=merge or replace needs a grant_id".into()),
        (Some("merge"), Some(id)) => Ok(GrantAction::Merge(id.to_string())),
        (Some("replace"), Some(id)) => Ok(GrantAction::Replace(id.to_string())),
        (Some(other), _) => Err(format!("grant_management_action must be create, merge or replace, not {other:?}")),
    }
}

impl GrantAction {
    /// The existing grant the request names, if it names one.
    pub fn grant_id(&self) -> Option<&str> {
        match self {
            Self::Merge(id) | Self::Replace(id) => Some(id),
            Self::Default | Self::Create => None,
        }
    }

    /// Which of the grant's current scopes must go once `granted` is given under this action:
    /// a replace drops what it does not repeat; every other action keeps everything.
    pub fn dropped<'a>(&self, held: &'a BTreeSet<String>, granted: &BTreeSet<String>) -> BTreeSet<&'a String> {
        match self {
            Self::Replace(_) => held.iter().filter(|name| !granted.contains(*name)).collect(),
            Self::Default | Self::Create | Self::Merge(_) => BTreeSet::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_action_and_grant_id_must_go_together() {
        assert_eq!(requested(None, None), Ok(GrantAction::Default));
        assert_eq!(requested(Some("create"), None), Ok(GrantAction::Create));
        assert_eq!(requested(Some("merge"), Some("g1")), Ok(GrantAction::Merge("g1".into())));
        assert_eq!(requested(Some("replace"), Some("g1")), Ok(GrantAction::Replace("g1".into())));
        assert!(requested(Some("create"), Some("g1")).is_err());
        assert!(requested(Some("merge"), None).is_err());
        assert!(requested(None, Some("g1")).is_err());
        assert!(requested(Some("update"), Some("g1")).unwrap_err().contains("\"update\""));
    }

    #[test]
    fn replace_drops_what_it_does_not_repeat_and_merge_keeps_it() {
        let held: BTreeSet<String> = ["accounts.balance", "payments.transfer"].map(String::from).into();
        let granted: BTreeSet<String> = ["accounts.balance"].map(String::from).into();
        let replace = GrantAction::Replace("g".into());
        assert_eq!(replace.dropped(&held, &granted), [&"payments.transfer".to_string()].into());
        assert!(GrantAction::Merge("g".into()).dropped(&held, &granted).is_empty());
    }
}
