//! Unit and property tests of the scope tree.

use super::*;
use proptest::prelude::*;
use std::collections::HashSet;

fn scope(name: &str, parent: Option<&str>, position: u32) -> Scope {
    let mut scope = Scope::new(name, format!("{name} description"));
    scope.parent = parent.map(str::to_owned);
    scope.position = position;
    scope
}

/// accounts (C) > accounts.balance, accounts.transactions; payments (A, private) > payments.transfer; profile
fn bank() -> ScopeTree {
    let mut accounts = scope("accounts", None, 0);
    accounts.fields.security_level = SecurityLevel::C;
    let mut payments = scope("payments", None, 1);
    payments.fields.security_level = SecurityLevel::A;
    payments.fields.visibility = Visibility::Private;
    let mut transfer = scope("payments.transfer", Some("payments"), 0);
    transfer.fields.visibility = Visibility::Private;
    transfer.fields.auth_types = vec![GrantType::AuthorizationCode];
    let mut profile = scope("profile", None, 2);
    profile.fields.default_scope = true;
    profile.fields.alias = Some("Your Profile".to_owned());
    ScopeTree::from_scopes(vec![
        scope("accounts.transactions", Some("accounts"), 1),
        accounts,
        scope("accounts.balance", Some("accounts"), 0),
        payments,
        transfer,
        profile,
    ])
    .unwrap()
}

/// `bank()` with `payments.transfer` parameterised.
fn bank_with_parameterised_transfer() -> ScopeTree {
    let mut tree = bank();
    let patch = ScopePatch { parameterised: Some(true), ..ScopePatch::default() };
    tree.edit("payments.transfer", patch).unwrap();
    tree
}

#[test]
fn a_parameterised_scope_is_defined_by_its_values_and_never_by_its_bare_name() {
    let tree = bank_with_parameterised_transfer();
    let defined = |requested: &str| tree.definition(requested).map(|scope| scope.name.clone());
    assert_eq!(defined("payments.transfer:PAY-123"), Some("payments.transfer".into()));
    assert_eq!(defined("payments.transfer"), None, "the bare name stands for nothing");
    assert_eq!(defined("payments.transfer:"), None);
    assert_eq!(defined("payments.transfer:a b"), None);
    assert_eq!(defined("payments:PAY-123"), None, "payments is not parameterised");
    assert_eq!(defined("accounts"), Some("accounts".into()));
    assert_eq!(defined("nope:1"), None);
}

#[test]
fn a_parent_does_not_imply_a_parameterised_child_and_a_value_implies_nothing_else() {
    let tree = bank_with_parameterised_transfer();
    assert_eq!(tree.expand(["payments"]), ["payments".to_owned()].into());
    assert_eq!(
        tree.expand(["payments", "payments.transfer:PAY-1", "payments.transfer:PAY-2", "payments.transfer"]),
        ["payments", "payments.transfer:PAY-1", "payments.transfer:PAY-2"].map(str::to_owned).into()
    );
    assert_eq!(tree.ancestors("payments.transfer:PAY-1").count(), 0, "no parent implies it, so none is above it");
}

#[test]
fn a_parameterised_value_is_admitted_as_its_definition_is() {
    let tree = bank_with_parameterised_transfer();
    let assigned = |names: &[&str]| ClientScopeAccess {
        security_level: SecurityLevel::A,
        assigned: names.iter().map(|name| name.to_string()).collect(),
    };
    let code = GrantType::AuthorizationCode;
    assert!(tree.client_may_have("payments.transfer:PAY-1", &assigned(&["payments"]), code));
    assert!(!tree.client_may_have("payments.transfer:PAY-1", &assigned(&[]), code), "private");
    assert!(!tree.client_may_have("payments.transfer:PAY-1", &assigned(&["payments"]), GrantType::ClientCredentials));
    assert!(!tree.client_may_have("payments.transfer", &assigned(&["payments"]), code), "the bare name");
}

#[test]
fn a_parameterised_scope_stays_a_leaf_and_is_never_a_default_scope() {
    let mut tree = bank_with_parameterised_transfer();
    let child = scope("payments.transfer.domestic", Some("payments.transfer"), 0);
    assert!(matches!(tree.add(child), Err(ScopeTreeError::InvalidScope { field, .. }) if field == "parent"));
    assert!(matches!(
        tree.move_scope("accounts.balance", Some("payments.transfer"), None),
        Err(ScopeTreeError::InvalidScope { field, .. }) if field == "parent"
    ));
    let with_children = ScopePatch { parameterised: Some(true), ..ScopePatch::default() };
    assert!(matches!(
        tree.edit("accounts", with_children),
        Err(ScopeTreeError::InvalidScope { field, .. }) if field == "parameterised"
    ));
    let default = ScopePatch { default_scope: Some(true), ..ScopePatch::default() };
    assert!(matches!(
        tree.edit("payments.transfer", default),
        Err(ScopeTreeError::InvalidScope { field, .. }) if field == "default_scope"
    ));
    let unchanged = bank_with_parameterised_transfer();
    assert_eq!(tree, unchanged, "refused operations change nothing");
}

#[test]
fn a_parameterised_scope_always_asks_the_user_and_never_goes_to_client_credentials() {
    let mut tree = bank_with_parameterised_transfer();
    let without_asking = ScopePatch { user_authorization_required: Some(false), ..ScopePatch::default() };
    assert!(matches!(
        tree.edit("payments.transfer", without_asking),
        Err(ScopeTreeError::InvalidScope { field, .. }) if field == "user_authorization_required"
    ));
    let mut silent = scope("consents.read", None, 0);
    silent.fields.parameterised = true;
    silent.fields.user_authorization_required = false;
    assert!(
        matches!(tree.add(silent), Err(ScopeTreeError::InvalidScope { field, .. }) if field == "user_authorization_required")
    );
    let machines_only = ScopePatch { auth_types: Some(vec![GrantType::ClientCredentials]), ..ScopePatch::default() };
    assert!(matches!(
        tree.edit("payments.transfer", machines_only),
        Err(ScopeTreeError::InvalidScope { field, .. }) if field == "auth_types"
    ));
    let transfer = tree.get("payments.transfer").unwrap();
    assert!(!transfer.allows_grant_type(GrantType::ClientCredentials));
    assert!(transfer.allows_grant_type(GrantType::AuthorizationCode));
    assert!(tree.get("accounts").unwrap().allows_grant_type(GrantType::ClientCredentials), "plain scopes as before");
    assert_eq!(tree, bank_with_parameterised_transfer(), "refused operations change nothing");

    // A tree an older version stored that way still loads (a server must start; migration
    // 000014 mends it), and an import that changes the scope names it.
    let mut stored = bank_with_parameterised_transfer().scopes();
    stored.iter_mut().filter(|scope| scope.fields.parameterised).for_each(|scope| {
        scope.fields.user_authorization_required = false;
    });
    let mut loaded = ScopeTree::from_scopes(stored).unwrap();
    assert!(matches!(
        loaded.check_parameterised_among(["payments.transfer"]),
        Err(ScopeTreeError::InvalidScope { field, .. }) if field == "user_authorization_required"
    ));
    // An edit that does not touch the rule leaves it be; one that turns asking on mends it.
    loaded.edit("payments.transfer", patch(r#"{"short_description": "One transfer"}"#)).unwrap();
    loaded.edit("payments.transfer", patch(r#"{"user_authorization_required": true}"#)).unwrap();
    assert_eq!(loaded.check_parameterised_among(["payments.transfer"]), Ok(()));
}

#[test]
fn no_scope_is_named_like_a_value_of_a_parameterised_one() {
    let mut tree = bank_with_parameterised_transfer();
    let namesake = scope("payments.transfer:PAY-1", Some("payments"), 0);
    assert!(matches!(tree.add(namesake.clone()), Err(ScopeTreeError::InvalidScope { field, .. }) if field == "name"));
    // A name that could not be a value (empty after the colon) is no namesake.
    tree.add(scope("payments.transfer.x:y", None, 0)).unwrap();

    let mut plain = bank();
    // A name that is no value (empty after the colon) first must not hide one that is.
    plain.add(scope("payments.transfer:", Some("payments"), 0)).unwrap();
    plain.add(Scope { position: 9, ..namesake }).unwrap();
    let order: Vec<&str> = plain.iter().map(|scope| scope.name.as_str()).collect();
    let position = |name: &str| order.iter().position(|named| *named == name);
    assert!(position("payments.transfer:") < position("payments.transfer:PAY-1"), "{order:?}");
    let parameterised = ScopePatch { parameterised: Some(true), ..ScopePatch::default() };
    assert!(matches!(
        plain.edit("payments.transfer", parameterised),
        Err(ScopeTreeError::InvalidScope { field, .. }) if field == "parameterised"
    ));
    assert!(!plain.get("payments.transfer").unwrap().fields.parameterised);
}

#[test]
fn an_import_check_finds_a_parameterised_parent_and_a_namesake_among_what_it_changes() {
    let refused_field = |result: Result<(), ScopeTreeError>| match result {
        Err(ScopeTreeError::InvalidScope { field, .. }) => Some(field),
        _ => None,
    };
    assert_eq!(bank_with_parameterised_transfer().check_parameterised_among(["payments.transfer"]), Ok(()));
    let mut parent = bank().scopes();
    parent.iter_mut().filter(|scope| scope.name == "payments").for_each(|scope| scope.fields.parameterised = true);
    let tree = ScopeTree::from_scopes(parent).unwrap();
    assert_eq!(refused_field(tree.check_parameterised_among(["payments"])).as_deref(), Some("parameterised"));
    assert_eq!(refused_field(tree.check_parameterised_among(["payments.transfer"])).as_deref(), Some("parent"));
    let mut namesake = bank_with_parameterised_transfer().scopes();
    namesake.push(scope("payments.transfer:PAY-1", None, 9));
    let tree = ScopeTree::from_scopes(namesake).unwrap();
    assert_eq!(refused_field(tree.check_parameterised_among(["payments.transfer:PAY-1"])).as_deref(), Some("name"));
    assert_eq!(refused_field(tree.check_parameterised_among(["payments.transfer"])).as_deref(), Some("parameterised"));
    assert_eq!(tree.check_parameterised_among(["accounts"]), Ok(()), "what an import leaves alone is not judged");
}

fn names(scopes: Vec<&Scope>) -> Vec<&str> {
    scopes.into_iter().map(|scope| scope.name.as_str()).collect()
}

fn patch(json: &str) -> ScopePatch {
    serde_json::from_str(json).unwrap()
}

/// Checks every structural invariant through the private fields.
fn assert_consistent(tree: &ScopeTree) {
    let walked: Vec<&Scope> = tree.iter().collect();
    assert_eq!(walked.len(), tree.len(), "every scope is reachable from the top level");
    let unique: HashSet<&str> = walked.iter().map(|scope| scope.name.as_str()).collect();
    assert_eq!(unique.len(), tree.len());
    assert_eq!(tree.slots.len(), tree.nodes.len());
    for (slot, node) in tree.nodes.iter().enumerate() {
        assert_eq!(tree.slots[&node.scope.name], slot);
        let parent_name = node.parent.map(|parent| tree.nodes[parent].scope.name.as_str());
        assert_eq!(node.scope.parent.as_deref(), parent_name);
    }
    let lists = std::iter::once((None, &tree.roots))
        .chain(tree.nodes.iter().enumerate().map(|(slot, node)| (Some(slot), &node.children)));
    for (parent, list) in lists {
        for (index, &child) in list.iter().enumerate() {
            assert_eq!(tree.nodes[child].scope.position as usize, index, "positions are dense");
            assert_eq!(tree.nodes[child].parent, parent);
        }
    }
    for scope in &walked {
        let mut depth = 0;
        let mut at = scope.parent.as_deref();
        while let Some(parent) = at {
            depth += 1;
            assert!(depth <= tree.len(), "no cycles");
            at = tree.get(parent).expect("parent exists").parent.as_deref();
        }
    }
}

#[test]
fn loading_orders_siblings_by_position_then_name_and_makes_positions_dense() {
    let tree = ScopeTree::from_scopes(vec![
        scope("c", None, 7),
        scope("b", None, 3),
        scope("a", None, 3),
        scope("c.x", Some("c"), 9),
    ])
    .unwrap();
    assert_eq!(names(tree.roots()), ["a", "b", "c"]);
    assert_eq!(tree.get("c").unwrap().position, 2);
    assert_eq!(tree.get("c.x").unwrap().position, 0);
    assert_consistent(&tree);
}

#[test]
fn loading_refuses_bad_names_duplicates_missing_parents_and_cycles() {
    let bad = ScopeTree::from_scopes(vec![scope("has space", None, 0)]).unwrap_err();
    assert!(matches!(bad, ScopeTreeError::InvalidScope { ref field, .. } if field == "name"));
    let duplicate = ScopeTree::from_scopes(vec![scope("a", None, 0), scope("a", None, 1)]);
    assert_eq!(duplicate, Err(ScopeTreeError::DuplicateName("a".into())));
    let orphan = ScopeTree::from_scopes(vec![scope("a", Some("nowhere"), 0)]);
    assert_eq!(orphan, Err(ScopeTreeError::UnknownParent("nowhere".into())));
    let cycle = ScopeTree::from_scopes(vec![scope("r", None, 0), scope("a", Some("b"), 0), scope("b", Some("a"), 0)])
        .unwrap_err();
    assert!(matches!(cycle, ScopeTreeError::InvalidScope { ref field, .. } if field == "parent"));
    let own_parent = ScopeTree::from_scopes(vec![scope("a", Some("a"), 0)]).unwrap_err();
    assert_eq!(own_parent.code(), "invalid_request");
}

#[test]
fn iteration_is_pre_order_with_siblings_in_position_order() {
    let tree = bank();
    let order: Vec<&str> = tree.iter().map(|scope| scope.name.as_str()).collect();
    assert_eq!(
        order,
        ["accounts", "accounts.balance", "accounts.transactions", "payments", "payments.transfer", "profile"]
    );
    assert_eq!(tree.scopes().len(), 6);
    assert_eq!(names(tree.children("accounts")), ["accounts.balance", "accounts.transactions"]);
    assert!(tree.children("unknown").is_empty());
    assert_eq!(names(tree.subtree("payments")), ["payments", "payments.transfer"]);
    assert_eq!(names(tree.ancestors("payments.transfer").collect()), ["payments"]);
}

#[test]
fn adding_inserts_at_the_clamped_position_and_shifts_later_siblings() {
    let mut tree = bank();
    tree.add(scope("accounts.cards", Some("accounts"), 1)).unwrap();
    tree.add(scope("accounts.loans", Some("accounts"), 99)).unwrap();
    assert_eq!(
        names(tree.children("accounts")),
        ["accounts.balance", "accounts.cards", "accounts.transactions", "accounts.loans"]
    );
    assert_eq!(tree.get("accounts.loans").unwrap().position, 3);
    tree.add(scope("first", None, 0)).unwrap();
    assert_eq!(tree.roots()[0].name, "first");
    assert_consistent(&tree);
}

#[test]
fn adding_refuses_invalid_fields_duplicates_and_unknown_parents() {
    let mut tree = bank();
    let before = tree.clone();
    let no_description = tree.add(Scope::new("x", "  ")).unwrap_err();
    assert!(matches!(no_description, ScopeTreeError::InvalidScope { ref field, .. } if field == "short_description"));
    assert_eq!(tree.add(scope("profile", None, 0)), Err(ScopeTreeError::DuplicateName("profile".into())));
    assert_eq!(tree.add(scope("x", Some("nope"), 0)), Err(ScopeTreeError::UnknownParent("nope".into())));
    assert_eq!(tree.add(scope("bad/name", None, 0)).unwrap_err().code(), "invalid_request");
    assert_eq!(tree, before);
}

fn bounded(field: &str, value: u32) -> Scope {
    let mut scope = scope("bounded", None, 0);
    match field {
        "access_duration_days" => scope.fields.access_duration_days = value,
        _ => scope.fields.max_access_count = value,
    }
    scope
}

fn refused_field(error: &ScopeTreeError) -> Option<&str> {
    match error {
        ScopeTreeError::InvalidScope { field, .. } => Some(field),
        _ => None,
    }
}

#[test]
fn field_bounds_admit_their_limits_and_refuse_one_more_naming_the_field() {
    for (field, max) in [
        ("access_duration_days", ScopeFields::MAX_ACCESS_DURATION_DAYS),
        ("max_access_count", ScopeFields::MAX_ACCESS_COUNT),
    ] {
        assert_eq!(validate_scope(&bounded(field, 0)), Ok(()));
        assert_eq!(validate_scope(&bounded(field, max)), Ok(()));
        for too_big in [max + 1, u32::MAX] {
            let error = validate_scope(&bounded(field, too_big)).unwrap_err();
            assert_eq!(refused_field(&error), Some(field));
            assert_eq!(error.code(), "invalid_request");
            assert!(error.to_string().contains(field), "{error}");
            assert!(error.to_string().contains(&too_big.to_string()), "{error}");
        }
    }
    assert_eq!(ScopeFields::MAX_ACCESS_DURATION_DAYS, 36_500, "SPEC.md Field bounds");
    assert_eq!(i64::from(ScopeFields::MAX_ACCESS_COUNT), i64::from(i32::MAX), "SPEC.md Field bounds");
}

#[test]
fn adding_editing_and_loading_refuse_out_of_bound_fields_and_change_nothing() {
    let mut tree = bank();
    let before = tree.clone();
    let added = tree.add(bounded("access_duration_days", 36_501)).unwrap_err();
    assert_eq!(refused_field(&added), Some("access_duration_days"));
    let edited = tree.edit("profile", patch(r#"{"max_access_count": 3000000000}"#)).unwrap_err();
    assert_eq!(refused_field(&edited), Some("max_access_count"));
    assert_eq!(tree, before, "a refused add or edit leaves the tree unchanged");
    let loaded = ScopeTree::from_scopes(vec![bounded("max_access_count", 2_147_483_648)]).unwrap_err();
    assert_eq!(refused_field(&loaded), Some("max_access_count"));

    let edited = tree.edit("profile", patch(r#"{"max_access_count": 2147483647, "access_duration_days": 36500}"#));
    let fields = &edited.unwrap().fields;
    assert_eq!((fields.max_access_count, fields.access_duration_days), (2_147_483_647, 36_500));
}

#[test]
fn editing_changes_only_the_patched_fields() {
    let mut tree = bank();
    let edited = tree
        .edit(
            "profile",
            patch(r#"{"short_description": "Who you are", "security_level": "B", "auth_types": ["refresh_token"]}"#),
        )
        .unwrap()
        .clone();
    assert_eq!(edited.fields.short_description, "Who you are");
    assert_eq!(edited.fields.security_level, SecurityLevel::B);
    assert_eq!(edited.fields.auth_types, [GrantType::RefreshToken]);
    assert_eq!(edited.fields.alias.as_deref(), Some("Your Profile"), "a missing key keeps the value");
    assert!(edited.fields.default_scope);
}

#[test]
fn an_explicit_null_clears_an_optional_field() {
    let mut tree = bank();
    assert_eq!(patch(r#"{"alias": null}"#).alias, Some(None));
    assert_eq!(patch("{}").alias, None);
    tree.edit("profile", patch(r#"{"alias": null, "description": "longer"}"#)).unwrap();
    assert_eq!(tree.get("profile").unwrap().fields.alias, None);
    assert_eq!(tree.get("profile").unwrap().fields.description.as_deref(), Some("longer"));
}

#[test]
fn renaming_a_scope_is_refused_but_repeating_its_name_is_fine() {
    let mut tree = bank();
    let before = tree.clone();
    let refused = tree.edit("profile", patch(r#"{"name": "me", "short_description": "x"}"#)).unwrap_err();
    assert_eq!(refused, ScopeTreeError::NameImmutable { name: "profile".into() });
    assert_eq!(refused.code(), "scope_name_immutable");
    assert_eq!(tree, before);
    assert!(tree.edit("profile", patch(r#"{"name": "profile"}"#)).is_ok());
}

#[test]
fn a_patch_cannot_move_a_scope_or_blank_its_description() {
    assert!(serde_json::from_str::<ScopePatch>(r#"{"parent": "accounts"}"#).is_err());
    assert!(serde_json::from_str::<ScopePatch>(r#"{"position": 0}"#).is_err());
    let mut tree = bank();
    let before = tree.clone();
    assert!(tree.edit("profile", patch(r#"{"short_description": ""}"#)).is_err());
    assert_eq!(tree.edit("nope", ScopePatch::default()), Err(ScopeTreeError::UnknownScope("nope".into())));
    assert_eq!(tree, before);
}

#[test]
fn moving_a_scope_takes_its_subtree_and_keeps_both_sibling_lists_dense() {
    let mut tree = bank();
    tree.move_scope("payments", Some("accounts"), Some(0)).unwrap();
    assert_eq!(names(tree.roots()), ["accounts", "profile"]);
    assert_eq!(tree.get("profile").unwrap().position, 1);
    assert_eq!(names(tree.children("accounts")), ["payments", "accounts.balance", "accounts.transactions"]);
    assert_eq!(names(tree.ancestors("payments.transfer").collect()), ["payments", "accounts"]);
    tree.move_scope("payments", None, None).unwrap();
    assert_eq!(names(tree.roots()), ["accounts", "profile", "payments"]);
    assert_consistent(&tree);
}

#[test]
fn moving_within_the_same_parent_reorders() {
    let mut tree = bank();
    tree.move_scope("profile", None, Some(0)).unwrap();
    assert_eq!(names(tree.roots()), ["profile", "accounts", "payments"]);
    tree.move_scope("profile", None, Some(1)).unwrap();
    assert_eq!(names(tree.roots()), ["accounts", "profile", "payments"]);
    tree.move_scope("accounts", None, Some(50)).unwrap();
    assert_eq!(names(tree.roots()), ["profile", "payments", "accounts"]);
    assert_consistent(&tree);
}

#[test]
fn moving_a_scope_under_its_descendant_is_refused() {
    let mut tree = bank();
    let before = tree.clone();
    let refused = tree.move_scope("payments", Some("payments.transfer"), None).unwrap_err();
    assert!(matches!(refused, ScopeTreeError::InvalidMove(ref message) if message.contains("own ancestor")));
    assert_eq!(refused.code(), "invalid_move");
    assert!(tree.move_scope("payments", Some("payments"), None).is_err());
    assert_eq!(tree.move_scope("nope", None, None), Err(ScopeTreeError::UnknownScope("nope".into())));
    assert_eq!(tree.move_scope("profile", Some("nope"), None), Err(ScopeTreeError::UnknownParent("nope".into())));
    assert_eq!(tree, before);
}

#[test]
fn deleting_removes_the_whole_subtree_and_closes_the_gap() {
    let mut tree = bank();
    let removed = tree.remove_subtree("accounts", |_| false).unwrap();
    assert_eq!(removed, ["accounts", "accounts.balance", "accounts.transactions"]);
    assert_eq!(names(tree.roots()), ["payments", "profile"]);
    assert_eq!(tree.get("payments").unwrap().position, 0);
    assert_eq!(tree.len(), 3);
    assert_consistent(&tree);
}

#[test]
fn deleting_a_scope_in_use_is_refused() {
    let mut tree = bank();
    let before = tree.clone();
    let refused = tree.remove_subtree("accounts", |name| name == "accounts.balance").unwrap_err();
    assert_eq!(refused, ScopeTreeError::InUse("accounts".into()));
    assert_eq!(refused.code(), "scope_in_use");
    assert_eq!(
        refused.to_string(),
        "Scope cannot be deleted. Clients or grants are referencing this scope or its children."
    );
    assert_eq!(tree, before);
    assert_eq!(tree.remove_subtree("nope", |_| false), Err(ScopeTreeError::UnknownScope("nope".into())));
}

#[test]
fn a_parent_scope_implies_its_descendants_and_unknown_names_are_ignored() {
    let tree = bank();
    let expanded = tree.expand(["accounts", "nope", "profile", "accounts.balance"]);
    let expected: BTreeSet<String> =
        ["accounts", "accounts.balance", "accounts.transactions", "profile"].map(String::from).into();
    assert_eq!(expanded, expected);
}

#[test]
fn search_matches_keywords_case_insensitively_and_filters() {
    let tree = bank();
    let by_keyword = |keyword: &str| ScopeQuery { keyword: Some(keyword.into()), ..ScopeQuery::default() };
    assert_eq!(names(tree.search(&by_keyword("ACCOUNTS.b"))), ["accounts.balance"]);
    assert_eq!(names(tree.search(&by_keyword("your profile"))), ["profile"]);
    assert_eq!(names(tree.search(&by_keyword("transfer DESCRIPTION"))), ["payments.transfer"]);
    let level = ScopeQuery { security_level: Some(SecurityLevel::C), ..ScopeQuery::default() };
    assert_eq!(names(tree.search(&level)), ["accounts"]);
    let grant = ScopeQuery {
        auth_type: Some(GrantType::ClientCredentials),
        keyword: Some("pay".into()),
        ..ScopeQuery::default()
    };
    assert_eq!(names(tree.search(&grant)), ["payments"]);
    assert_eq!(tree.search(&ScopeQuery::default()).len(), tree.len());
}

#[test]
fn default_scopes_are_listed_in_tree_order() {
    assert_eq!(names(bank().default_scopes()), ["profile"]);
}

#[test]
fn a_client_gets_public_scopes_its_level_admits_and_private_ones_assigned_to_it_or_an_ancestor() {
    let tree = bank();
    let level_c = ClientScopeAccess { security_level: SecurityLevel::C, assigned: BTreeSet::new() };
    let code = GrantType::AuthorizationCode;
    assert!(tree.client_may_have("accounts.balance", &level_c, code));
    assert!(!tree.client_may_have("payments", &level_c, code), "level A is above C");
    assert!(!tree.client_may_have("nope", &level_c, code));

    let level_a = ClientScopeAccess { security_level: SecurityLevel::A, assigned: BTreeSet::new() };
    assert!(!tree.client_may_have("payments.transfer", &level_a, code), "private and not assigned");
    let assigned = ClientScopeAccess { assigned: ["payments".to_owned()].into(), ..level_a };
    assert!(tree.client_may_have("payments.transfer", &assigned, code), "assigned through its parent");
    assert!(!tree.client_may_have("payments.transfer", &assigned, GrantType::ClientCredentials));
    assert!(tree.is_assigned_or_below_assigned("payments.transfer", &assigned.assigned));
    assert!(!tree.is_assigned_or_below_assigned("profile", &assigned.assigned));

    let allowed = tree.allowed_for_client(&assigned, GrantType::ClientCredentials);
    let expected: BTreeSet<String> =
        ["accounts", "accounts.balance", "accounts.transactions", "payments", "profile"].map(String::from).into();
    assert_eq!(allowed, expected);
}

// ---- property tests ----

/// A small alphabet so that adds collide; the last name is invalid.
const NAMES: [&str; 9] = ["a", "b", "c", "d", "e", "f", "g", "h", "not valid"];

/// Which scope an operation targets: mostly one that exists, so most operations get past
/// the "unknown scope" check, sometimes any name of the alphabet.
#[derive(Debug, Clone)]
enum Target {
    Existing(proptest::sample::Index),
    Named(usize),
}

impl Target {
    fn resolve(&self, tree: &ScopeTree) -> String {
        match self {
            Self::Existing(index) if !tree.is_empty() => tree.scopes().swap_remove(index.index(tree.len())).name,
            Self::Existing(index) => NAMES[index.index(NAMES.len())].to_owned(),
            Self::Named(index) => NAMES[*index].to_owned(),
        }
    }
}

fn target() -> impl Strategy<Value = Target> {
    prop_oneof![
        4 => any::<proptest::sample::Index>().prop_map(Target::Existing),
        1 => (0..NAMES.len()).prop_map(Target::Named),
    ]
}

fn parent_target() -> impl Strategy<Value = Option<Target>> {
    proptest::option::weighted(0.7, target())
}

#[derive(Debug, Clone)]
enum Op {
    Add { name: usize, parent: Option<Target>, position: u32, level: usize, private: bool, blank: bool },
    Move { target: Target, parent: Option<Target>, position: Option<u32> },
    Edit { target: Target, rename: Option<usize>, alias: Option<Option<String>>, level: Option<usize>, blank: bool },
    Remove { target: Target, in_use: BTreeSet<String> },
}

fn op() -> impl Strategy<Value = Op> {
    let add =
        (0..NAMES.len(), parent_target(), 0..5u32, 0..6usize, any::<bool>(), proptest::bool::weighted(0.05)).prop_map(
            |(name, parent, position, level, private, blank)| Op::Add { name, parent, position, level, private, blank },
        );
    let moving = (target(), parent_target(), proptest::option::of(0..5u32))
        .prop_map(|(target, parent, position)| Op::Move { target, parent, position });
    let edit = (
        target(),
        proptest::option::weighted(0.2, 0..NAMES.len()),
        proptest::option::of(proptest::option::of("[a-z]{1,4}")),
        proptest::option::of(0..6usize),
        proptest::bool::weighted(0.1),
    )
        .prop_map(|(target, rename, alias, level, blank)| Op::Edit { target, rename, alias, level, blank });
    let in_use = proptest::collection::btree_set(proptest::sample::select(NAMES.to_vec()).prop_map(String::from), 0..2);
    let remove = (target(), proptest::option::weighted(0.3, in_use))
        .prop_map(|(target, in_use)| Op::Remove { target, in_use: in_use.unwrap_or_default() });
    prop_oneof![4 => add, 3 => moving, 1 => edit, 1 => remove]
}

fn client_access() -> impl Strategy<Value = (ClientScopeAccess, GrantType)> {
    (0..6usize, proptest::collection::btree_set(0..NAMES.len(), 0..3), 0..3usize).prop_map(
        |(level, assigned, grant)| {
            let assigned = assigned.into_iter().map(|index| NAMES[index].to_owned()).collect();
            (ClientScopeAccess { security_level: SecurityLevel::ALL[level], assigned }, GrantType::ALL[grant])
        },
    )
}

fn sibling_count(tree: &ScopeTree, parent: Option<&str>) -> usize {
    parent.map_or(tree.roots().len(), |parent| tree.children(parent).len())
}

/// Applies `op` and, when it succeeds, checks its effect.
fn apply(tree: &mut ScopeTree, op: &Op) -> Result<(), ScopeTreeError> {
    match op {
        Op::Add { name, parent, position, level, private, blank } => {
            let parent = parent.as_ref().map(|parent| parent.resolve(tree));
            let mut added = scope(NAMES[*name], parent.as_deref(), *position);
            added.fields.security_level = SecurityLevel::ALL[*level];
            added.fields.auth_types = if *private { vec![GrantType::AuthorizationCode] } else { Vec::new() };
            added.fields.visibility = if *private { Visibility::Private } else { Visibility::Public };
            if *blank {
                added.fields.short_description.clear();
            }
            let siblings = sibling_count(tree, parent.as_deref());
            tree.add(added)?;
            let added = tree.get(NAMES[*name]).unwrap();
            assert_eq!(added.parent, parent);
            assert_eq!(added.position as usize, (*position as usize).min(siblings));
        }
        Op::Move { target, parent, position } => {
            let name = target.resolve(tree);
            let parent = parent.as_ref().map(|parent| parent.resolve(tree));
            tree.move_scope(&name, parent.as_deref(), *position)?;
            let moved = tree.get(&name).unwrap();
            assert_eq!(moved.parent, parent);
            let last = sibling_count(tree, parent.as_deref()) - 1;
            assert_eq!(moved.position as usize, position.map_or(last, |p| (p as usize).min(last)));
        }
        Op::Edit { target, rename, alias, level, blank } => {
            let name = target.resolve(tree);
            let patch = ScopePatch {
                name: rename.map(|rename| NAMES[rename].to_owned()),
                alias: alias.clone(),
                security_level: level.map(|level| SecurityLevel::ALL[level]),
                short_description: blank.then(String::new),
                ..ScopePatch::default()
            };
            let edited = tree.edit(&name, patch)?;
            if let Some(alias) = alias {
                assert_eq!(&edited.fields.alias, alias);
            }
        }
        Op::Remove { target, in_use } => {
            let name = target.resolve(tree);
            let before = tree.scopes();
            let removed = tree.remove_subtree(&name, |scope| in_use.contains(scope))?;
            let doomed = BTreeSet::from([name]);
            let expected: Vec<String> = before
                .iter()
                .filter(|scope| brute_force_under(&before, &scope.name, &doomed))
                .map(|scope| scope.name.clone())
                .collect();
            assert_eq!(removed, expected);
            assert_eq!(tree.len(), before.len() - removed.len());
        }
    }
    Ok(())
}

/// True when `name` or a scope above it (by `parent` links in `scopes`) is in `set`.
fn brute_force_under(scopes: &[Scope], name: &str, set: &BTreeSet<String>) -> bool {
    let parents: HashMap<&str, Option<&str>> =
        scopes.iter().map(|scope| (scope.name.as_str(), scope.parent.as_deref())).collect();
    let mut at = Some(name);
    while let Some(current) = at {
        if set.contains(current) {
            return true;
        }
        at = parents.get(current).copied().flatten();
    }
    false
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn random_edits_keep_the_tree_consistent(
        ops in proptest::collection::vec(op(), 1..50),
        asked in proptest::collection::btree_set(proptest::sample::select(NAMES.to_vec()), 0..3),
        (access, grant) in client_access(),
    ) {
        let mut tree = ScopeTree::new();
        for op in &ops {
            let before = tree.clone();
            let before_scopes = tree.scopes();
            if apply(&mut tree, op).is_err() {
                prop_assert_eq!(&tree, &before, "a refused operation changes nothing");
                prop_assert_eq!(tree.scopes(), before_scopes);
            }
            assert_consistent(&tree);
            prop_assert_eq!(ScopeTree::from_scopes(tree.scopes()), Ok(tree.clone()), "saving and loading is lossless");

            let scopes = tree.scopes();
            let asked: BTreeSet<String> = asked.iter().map(|name| (*name).to_owned()).collect();
            let expected: BTreeSet<String> = scopes
                .iter()
                .filter(|scope| brute_force_under(&scopes, &scope.name, &asked))
                .map(|scope| scope.name.clone())
                .collect();
            prop_assert_eq!(tree.expand(asked.iter().map(String::as_str)), expected);

            let mut allowed = BTreeSet::new();
            for name in NAMES {
                let expected = scopes.iter().find(|scope| scope.name == name).is_some_and(|scope| {
                    access.security_level.admits(scope.fields.security_level)
                        && (scope.fields.auth_types.is_empty() || scope.fields.auth_types.contains(&grant))
                        && (scope.fields.visibility == Visibility::Public
                            || brute_force_under(&scopes, name, &access.assigned))
                });
                prop_assert_eq!(tree.client_may_have(name, &access, grant), expected);
                if expected {
                    allowed.insert(name.to_owned());
                }
            }
            prop_assert_eq!(tree.allowed_for_client(&access, grant), allowed);
        }
    }
}

#[test]
fn the_reserved_admin_scope_takes_no_children_by_add_move_or_import() {
    let mut tree = ScopeTree::from_scopes(vec![scope(ADMIN_SCOPE, None, 0), scope("x", None, 1)]).unwrap();
    let before = tree.clone();
    let child = scope("scopegate:admin.more", Some(ADMIN_SCOPE), 0);
    assert!(matches!(tree.add(child), Err(ScopeTreeError::InvalidScope { ref field, .. }) if field == "parent"));
    assert!(tree.move_scope("x", Some(ADMIN_SCOPE), None).is_err());
    assert_eq!(tree, before, "refused operations change nothing");
    let document: Vec<crate::domain::scope_document::ScopeNode> = serde_json::from_str(&format!(
        r#"[{{"name": "{ADMIN_SCOPE}", "short_description": "Admin", "children": [{{"name": "y", "short_description": "Y"}}]}}]"#
    ))
    .unwrap();
    assert!(tree.import(&document).unwrap_err().to_string().contains("takes no children"));
}

#[test]
fn the_reserved_admin_scope_keeps_who_may_hold_it() {
    let mut admin = scope(ADMIN_SCOPE, None, 0);
    admin.fields.visibility = Visibility::Private;
    admin.fields.auth_types = vec![GrantType::ClientCredentials];
    let mut tree = ScopeTree::from_scopes(vec![admin]).unwrap();
    let before = tree.clone();
    for refused in [
        r#"{"auth_types": ["authorization_code"]}"#,
        r#"{"security_level": "A"}"#,
        r#"{"visibility": "public"}"#,
        r#"{"max_access_count": 5}"#,
        r#"{"access_duration_days": 1}"#,
    ] {
        assert!(
            matches!(tree.edit(ADMIN_SCOPE, patch(refused)), Err(ScopeTreeError::InvalidScope { .. })),
            "{refused}"
        );
        assert_eq!(tree, before);
    }
    assert!(tree.edit(ADMIN_SCOPE, patch(r#"{"short_description": "Run the bank's scopegate"}"#)).is_ok());
    let document: Vec<crate::domain::scope_document::ScopeNode> = serde_json::from_str(&format!(
        r#"[{{"name": "{ADMIN_SCOPE}", "short_description": "Admin", "auth_types": ["authorization_code"], "visibility": "private"}}]"#
    ))
    .unwrap();
    assert!(tree.import(&document).unwrap_err().to_string().contains("auth_types"));
}
