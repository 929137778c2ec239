//! The scope tree as a nested document: `scope import` / `scope export` and the admin API's
//! `GET /scopes` shape.

use crate::domain::scope::{Scope, ScopeFields, ADMIN_SCOPE};
use crate::domain::scope_tree::{check_reserved_admin_scope, validate_scope, ScopeTree, ScopeTreeError};
use serde::{Deserialize, Serialize};
use std::collections::{HashMap, HashSet};

/// One scope and its children. The hierarchy is the nesting, so there is no `parent` or
/// `position`. Every field is written on output so an export states the whole registry.
// Unknown keys (`parent` among them) are refused; `ScopeFields` says how that holds with the
// flattened fields.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ScopeNode {
    pub name: String,
    #[serde(flatten, deserialize_with = "ScopeFields::deserialize_flattened")]
    pub fields: ScopeFields,
    #[serde(default)]
    #[schema(no_recursion)]
    pub children: Vec<ScopeNode>,
}

/// The document as a whole: `{"scopes": [node, …]}`, what `GET /admin/v1/scopes` returns and
/// `scope import` reads. `ImportError` index paths (`scopes[1]…`) are relative to it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ScopeDocument {
    pub scopes: Vec<ScopeNode>,
}

impl ScopeNode {
    /// The scope's own fields, without children.
    pub fn from_scope(scope: &Scope) -> Self {
        Self { name: scope.name.clone(), fields: scope.fields.clone(), children: Vec::new() }
    }

    pub fn to_scope(&self, parent: Option<&str>, position: u32) -> Scope {
        Scope { name: self.name.clone(), parent: parent.map(str::to_owned), position, fields: self.fields.clone() }
    }
}

/// A refused document, located by `path`: scope names from the top (`accounts > accounts.balance`),
/// or indexes (`scopes[1].children[0]`) when the node's own name is unusable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("at {path}: {message}")]
pub struct ImportError {
    pub path: String,
    pub message: String,
}

impl ImportError {
    pub fn code(&self) -> &'static str {
        "invalid_request"
    }
}

/// Where a document node sits, in both spellings `ImportError` may need.
struct NodePath {
    names: String,
    indexes: String,
}

impl NodePath {
    fn child(parent: Option<&NodePath>, name: &str, index: usize) -> Self {
        match parent {
            None => Self { names: name.to_owned(), indexes: format!("scopes[{index}]") },
            Some(parent) => Self {
                names: format!("{} > {name}", parent.names),
                indexes: format!("{}.children[{index}]", parent.indexes),
            },
        }
    }

    fn error(&self, cause: &ScopeTreeError) -> ImportError {
        let path = match cause {
            ScopeTreeError::InvalidScope { field, .. } if field == "name" => &self.indexes,
            _ => &self.names,
        };
        ImportError { path: path.clone(), message: cause.to_string() }
    }
}

impl ScopeTree {
    /// The whole tree as a document: roots and children in position order.
    pub fn export(&self) -> Vec<ScopeNode> {
        // Built bottom-up from the reversed pre-order (children come before their parent there)
        // so that a deep tree cannot exhaust the stack.
        let mut roots = Vec::new();
        let mut pending: HashMap<&str, Vec<ScopeNode>> = HashMap::new();
        let scopes: Vec<&Scope> = self.iter().collect();
        for scope in scopes.into_iter().rev() {
            let mut node = ScopeNode::from_scope(scope);
            if let Some(mut children) = pending.remove(scope.name.as_str()) {
                children.reverse();
                node.children = children;
            }
            match scope.parent.as_deref() {
                None => roots.push(node),
                Some(parent) => pending.entry(parent).or_default().push(node),
            }
        }
        roots.reverse();
        roots
    }

    /// A new tree with every node of `document` upserted; `self` is not changed.
    ///
    /// A documented scope takes all of the document's fields, its parent from the nesting and
    /// its position from its index among its document siblings. A scope the document leaves
    /// out keeps its fields and its parent, and among its siblings it comes after all the
    /// documented ones, in its previous relative order. That makes importing the same
    /// document twice a no-op, and `import(export())` the identity.
    ///
    /// No document can create a cycle, so none is refused for it: a documented scope's parent
    /// is its enclosing document node, so documented scopes form a forest rooted at the top
    /// level, and an undocumented scope's old parent chain (acyclic) leads up to a documented
    /// scope or the top level. If the document moves an existing scope under one of its old
    /// descendants, the document wins and the undocumented rest of the subtree follows the
    /// scopes they hang from.
    pub fn import(&self, document: &[ScopeNode]) -> Result<ScopeTree, ImportError> {
        let documented = flatten(document)?;
        for scope in documented.iter().filter(|scope| scope.name == ADMIN_SCOPE) {
            if let Some(current) = self.get(ADMIN_SCOPE) {
                check_reserved_admin_scope(current, scope)
                    .map_err(|cause| ImportError { path: "scopes".to_owned(), message: cause.to_string() })?;
            }
        }
        let mut documented_children: HashMap<Option<&str>, u32> = HashMap::new();
        for scope in &documented {
            *documented_children.entry(scope.parent.as_deref()).or_default() += 1;
        }
        let names: HashSet<&str> = documented.iter().map(|scope| scope.name.as_str()).collect();

        let mut merged: Vec<Scope> = Vec::with_capacity(documented.len() + self.len());
        for scope in self.iter().filter(|scope| !names.contains(scope.name.as_str())) {
            let mut kept = scope.clone();
            let first_free = documented_children.get(&scope.parent.as_deref()).copied().unwrap_or(0);
            kept.position = first_free.saturating_add(scope.position);
            merged.push(kept);
        }
        merged.extend(documented.iter().cloned());
        let whole = |cause: ScopeTreeError| ImportError { path: "scopes".to_owned(), message: cause.to_string() };
        // Unreachable after `flatten` (see above); mapped rather than unwrapped all the same.
        let tree = ScopeTree::from_scopes(merged).map_err(whole)?;
        // Whether a parameterised scope has children or a namesake value depends on the whole
        // merged tree, so the scopes the document adds or changes are checked against it; the
        // rest stay as they were, even a tree an older version stored.
        let changed = documented.iter().filter(|scope| {
            self.get(&scope.name).is_none_or(|before| before.fields != scope.fields || before.parent != scope.parent)
        });
        tree.check_parameterised_among(changed.map(|scope| scope.name.as_str())).map_err(whole)?;
        Ok(tree)
    }
}

/// The document's scopes in pre-order with parent and position set, each validated, or the
/// first bad node. Uses an explicit stack so a deeply nested document cannot overflow.
fn flatten(document: &[ScopeNode]) -> Result<Vec<Scope>, ImportError> {
    let mut scopes = Vec::new();
    let mut first_seen: HashMap<&str, String> = HashMap::new();
    let mut stack: Vec<(&ScopeNode, Option<&str>, usize, NodePath)> = document
        .iter()
        .enumerate()
        .rev()
        .map(|(index, node)| (node, None, index, NodePath::child(None, &node.name, index)))
        .collect();
    while let Some((node, parent, index, path)) = stack.pop() {
        let scope = node.to_scope(parent, u32::try_from(index).unwrap_or(u32::MAX));
        validate_scope(&scope).map_err(|cause| path.error(&cause))?;
        if parent == Some(ADMIN_SCOPE) {
            let message = format!("the reserved scope {ADMIN_SCOPE} takes no children");
            return Err(ImportError { path: path.names, message });
        }
        if let Some(first) = first_seen.insert(&node.name, path.names.clone()) {
            let message = format!("scope {:?} appears more than once in the document (first at {first})", node.name);
            return Err(ImportError { path: path.names, message });
        }
        scopes.push(scope);
        for (child_index, child) in node.children.iter().enumerate().rev() {
            let child_path = NodePath::child(Some(&path), &child.name, child_index);
            stack.push((child, Some(&node.name), child_index, child_path));
        }
    }
    Ok(scopes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::scope::{GrantType, SecurityLevel, Visibility};
    use proptest::prelude::*;

    fn scope(name: &str, parent: Option<&str>, position: u32) -> Scope {
        let mut scope = Scope::new(name, format!("{name} description"));
        scope.parent = parent.map(str::to_owned);
        scope.position = position;
        scope
    }

    fn bank() -> ScopeTree {
        let mut payments = scope("payments", None, 1);
        payments.fields.visibility = Visibility::Private;
        payments.fields.security_level = SecurityLevel::A;
        ScopeTree::from_scopes(vec![
            scope("accounts", None, 0),
            scope("accounts.balance", Some("accounts"), 0),
            scope("accounts.transactions", Some("accounts"), 1),
            payments,
            scope("payments.transfer", Some("payments"), 0),
            scope("profile", None, 2),
        ])
        .unwrap()
    }

    fn document(json: &str) -> Vec<ScopeNode> {
        serde_json::from_str(json).unwrap()
    }

    fn names(scopes: Vec<&Scope>) -> Vec<&str> {
        scopes.into_iter().map(|scope| scope.name.as_str()).collect()
    }

    #[test]
    fn an_import_checks_the_parameterised_rules_for_what_it_changes_only() {
        // As an older version could store it: a parameterised scope that does not ask the user.
        let mut scopes = bank().scopes();
        for transfer in scopes.iter_mut().filter(|scope| scope.name == "payments.transfer") {
            transfer.fields.parameterised = true;
            transfer.fields.user_authorization_required = false;
        }
        let stored = ScopeTree::from_scopes(scopes).unwrap();
        assert_eq!(stored.import(&stored.export()).unwrap(), stored, "unchanged, it imports as it is");

        let mut changed = stored.export();
        changed[1].children[0].fields.short_description = "Make one transfer".into();
        let refused = stored.import(&changed).unwrap_err();
        assert!(refused.message.contains("needs user authorization"), "{refused:?}");

        // A documented parent made parameterised keeps its undocumented child: refused.
        let parent = document(r#"[{"name": "payments", "short_description": "Payments", "parameterised": true}]"#);
        let refused = bank().import(&parent).unwrap_err();
        assert!(refused.message.contains("has children"), "{refused:?}");
    }

    #[test]
    fn export_nests_children_in_position_order() {
        let exported = bank().export();
        let roots: Vec<&str> = exported.iter().map(|node| node.name.as_str()).collect();
        assert_eq!(roots, ["accounts", "payments", "profile"]);
        let children: Vec<&str> = exported[0].children.iter().map(|node| node.name.as_str()).collect();
        assert_eq!(children, ["accounts.balance", "accounts.transactions"]);
        assert_eq!(exported[1].children[0].name, "payments.transfer");
    }

    #[test]
    fn the_document_wraps_the_roots_in_a_scopes_key() {
        let tree = bank();
        let json = serde_json::to_string(&ScopeDocument { scopes: tree.export() }).unwrap();
        assert!(json.starts_with(r#"{"scopes":[{"name":"accounts""#));
        let read: ScopeDocument = serde_json::from_str(&json).unwrap();
        assert_eq!(tree.import(&read.scopes).unwrap(), tree);
        assert!(serde_json::from_str::<ScopeDocument>(r#"{"scopes": [], "extra": 1}"#).is_err());
    }

    #[test]
    fn export_writes_every_field_explicitly() {
        let json =
            serde_json::to_value(ScopeTree::from_scopes(vec![scope("profile", None, 0)]).unwrap().export()).unwrap();
        let expected = serde_json::json!([{
            "name": "profile",
            "alias": null,
            "short_description": "profile description",
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
            "parameterised": false,
            "children": []
        }]);
        assert_eq!(json, expected);
    }

    #[test]
    fn fields_left_out_of_a_document_take_the_spec_defaults() {
        let nodes = document(r#"[{"name": "profile", "short_description": "Your profile"}]"#);
        assert_eq!(nodes[0].to_scope(None, 0), Scope::new("profile", "Your profile"));
        assert!(nodes[0].fields.user_authorization_required, "asking the user is the safe default");
    }

    #[test]
    fn a_document_needs_names_and_short_descriptions_and_knows_its_fields() {
        assert!(serde_json::from_str::<Vec<ScopeNode>>(r#"[{"short_description": "x"}]"#).is_err());
        assert!(serde_json::from_str::<Vec<ScopeNode>>(r#"[{"name": "x"}]"#).is_err());
        let parent = r#"[{"name": "x", "short_description": "x", "parent": null}]"#;
        assert!(serde_json::from_str::<Vec<ScopeNode>>(parent).is_err());
        let spelled = r#"[{"name": "x", "short_description": "x", "visibility": "Private"}]"#;
        assert!(serde_json::from_str::<Vec<ScopeNode>>(spelled).is_err());
        let full = r#"[{"name": "x", "short_description": "x", "visibility": "private", "security_level": "B",
            "auth_types": ["client_credentials"], "operations": ["GET /x"], "bank_level": true}]"#;
        let node = &document(full)[0];
        assert_eq!((node.fields.visibility, node.fields.security_level), (Visibility::Private, SecurityLevel::B));
        assert_eq!(node.fields.auth_types, [GrantType::ClientCredentials]);
    }

    #[test]
    fn unknown_keys_are_refused_beside_the_flattened_fields() {
        let misspelt = r#"[{"name": "x", "short_description": "x", "max_acces_count": 3}]"#;
        let error = serde_json::from_str::<Vec<ScopeNode>>(misspelt).unwrap_err().to_string();
        assert!(error.contains("unknown field `max_acces_count`"), "{error}");
        let nested = r#"[{"name": "x", "short_description": "x", "children": [{"name": "y", "short_description": "y", "position": 0}]}]"#;
        assert!(serde_json::from_str::<Vec<ScopeNode>>(nested).is_err());
        let yaml = "- name: x\n  short_description: x\n  colour: blue\n";
        assert!(serde_yaml_ng::from_str::<Vec<ScopeNode>>(yaml).is_err());
    }

    #[test]
    fn a_bad_value_among_the_flattened_fields_names_its_field() {
        let negative = r#"[{"name": "x", "short_description": "x", "max_access_count": -1}]"#;
        let error = serde_json::from_str::<Vec<ScopeNode>>(negative).unwrap_err().to_string();
        assert!(error.starts_with("max_access_count: invalid value: integer `-1`"), "{error}");
        let grant = r#"[{"name": "x", "short_description": "x", "auth_types": ["client_credentials", "implicit"]}]"#;
        let error = serde_json::from_str::<Vec<ScopeNode>>(grant).unwrap_err().to_string();
        assert!(error.starts_with("auth_types[1]: unknown variant `implicit`"), "{error}");
        let error = serde_json::from_str::<Vec<ScopeNode>>(r#"[{"name": "x"}]"#).unwrap_err().to_string();
        assert!(error.starts_with("missing field `short_description`"), "{error}");
    }

    #[test]
    fn importing_refuses_a_field_out_of_bounds_and_names_node_and_field() {
        let tree = bank();
        let error = tree
            .import(&document(
                r#"[{"name": "accounts", "short_description": "a",
                     "children": [{"name": "accounts.balance", "short_description": "b", "access_duration_days": 36501}]}]"#,
            ))
            .unwrap_err();
        assert_eq!(error.path, "accounts > accounts.balance");
        assert!(error.message.contains("access_duration_days"), "{}", error.message);
        let error = tree
            .import(&document(r#"[{"name": "profile", "short_description": "p", "max_access_count": 2147483648}]"#))
            .unwrap_err();
        assert!(error.message.contains("max_access_count"), "{}", error.message);
        let limits = r#"[{"name": "profile", "short_description": "p", "max_access_count": 2147483647, "access_duration_days": 36500}]"#;
        let imported = tree.import(&document(limits)).unwrap();
        let profile = &imported.get("profile").unwrap().fields;
        assert_eq!((profile.max_access_count, profile.access_duration_days), (2_147_483_647, 36_500));
    }

    #[test]
    fn importing_creates_missing_scopes_and_overwrites_existing_ones() {
        let tree = bank();
        let imported = tree
            .import(&document(
                r#"[{"name": "accounts", "short_description": "Accounts", "security_level": "C",
                     "children": [{"name": "accounts.cards", "short_description": "Cards"}]}]"#,
            ))
            .unwrap();
        let accounts = imported.get("accounts").unwrap();
        assert_eq!(
            (accounts.fields.short_description.as_str(), accounts.fields.security_level),
            ("Accounts", SecurityLevel::C)
        );
        assert_eq!(imported.get("accounts.cards").unwrap().parent.as_deref(), Some("accounts"));
        assert_eq!(imported.len(), tree.len() + 1);
        assert_eq!(tree, bank(), "the tree imported into is untouched");
    }

    #[test]
    fn importing_replaces_every_field_with_the_document_value() {
        let mut tree = bank();
        tree.edit("profile", serde_json::from_str(r#"{"alias": "Me", "default_scope": true}"#).unwrap()).unwrap();
        let imported = tree.import(&document(r#"[{"name": "profile", "short_description": "Profile"}]"#)).unwrap();
        let profile = imported.get("profile").unwrap();
        assert_eq!(profile.fields.alias, None, "an absent field takes its default, not the old value");
        assert!(!profile.fields.default_scope);
    }

    #[test]
    fn importing_places_documented_scopes_first_and_keeps_the_rest_after_them_in_order() {
        let imported = bank()
            .import(&document(
                r#"[{"name": "profile", "short_description": "p"},
                    {"name": "accounts", "short_description": "a",
                     "children": [{"name": "accounts.transactions", "short_description": "t"}]}]"#,
            ))
            .unwrap();
        assert_eq!(names(imported.roots()), ["profile", "accounts", "payments"]);
        assert_eq!(names(imported.children("accounts")), ["accounts.transactions", "accounts.balance"]);
        assert_eq!(imported.get("accounts.balance").unwrap().position, 1);
    }

    #[test]
    fn importing_moves_an_existing_scope_to_its_document_parent() {
        let imported = bank()
            .import(&document(
                r#"[{"name": "payments", "short_description": "p",
                     "children": [{"name": "accounts", "short_description": "a"}]}]"#,
            ))
            .unwrap();
        assert_eq!(names(imported.roots()), ["payments", "profile"]);
        assert_eq!(names(imported.children("payments")), ["accounts", "payments.transfer"]);
        assert_eq!(names(imported.children("accounts")), ["accounts.balance", "accounts.transactions"]);
    }

    #[test]
    fn a_document_putting_a_scope_under_its_old_descendant_is_applied_without_a_cycle() {
        // The document wins; the undocumented rest keeps following its old parent.
        let imported = bank()
            .import(&document(
                r#"[{"name": "payments.transfer", "short_description": "t",
                     "children": [{"name": "payments", "short_description": "p"}]}]"#,
            ))
            .unwrap();
        assert_eq!(names(imported.roots()), ["payments.transfer", "accounts", "profile"]);
        assert_eq!(names(imported.children("payments.transfer")), ["payments"]);
        assert!(imported.children("payments").is_empty());
    }

    #[test]
    fn a_bad_name_is_located_by_index() {
        let error = bank()
            .import(&document(
                r#"[{"name": "profile", "short_description": "p"},
                    {"name": "accounts", "short_description": "a",
                     "children": [{"name": "bad name", "short_description": "x"}]}]"#,
            ))
            .unwrap_err();
        assert_eq!(error.path, "scopes[1].children[0]");
        assert!(error.to_string().starts_with("at scopes[1].children[0]: scope name"));
        assert_eq!(error.code(), "invalid_request");
    }

    #[test]
    fn a_missing_short_description_is_located_by_names() {
        let error = bank()
            .import(&document(
                r#"[{"name": "accounts", "short_description": "a",
                     "children": [{"name": "accounts.balance", "short_description": " "}]}]"#,
            ))
            .unwrap_err();
        assert_eq!(error.path, "accounts > accounts.balance");
    }

    #[test]
    fn duplicate_names_in_a_document_are_refused() {
        let error = bank()
            .import(&document(
                r#"[{"name": "a", "short_description": "a"},
                    {"name": "b", "short_description": "b", "children": [{"name": "a", "short_description": "again"}]}]"#,
            ))
            .unwrap_err();
        assert_eq!(error.path, "b > a");
        assert!(error.message.contains("first at a"), "{}", error.message);
    }

    #[test]
    fn importing_an_export_or_the_same_document_twice_changes_nothing() {
        let tree = bank();
        assert_eq!(tree.import(&tree.export()).unwrap(), tree);
        let document = document(
            r#"[{"name": "profile", "short_description": "p", "children": [{"name": "accounts", "short_description": "a"}]}]"#,
        );
        let once = tree.import(&document).unwrap();
        assert_eq!(once.import(&document).unwrap(), once);
        assert_eq!(tree.import(&[]).unwrap(), tree);
    }

    /// A random forest over names `s0..`: each scope hangs under an earlier one or at the top.
    fn random_tree(max: usize) -> impl Strategy<Value = ScopeTree> {
        let node = (
            proptest::option::weighted(0.7, any::<proptest::sample::Index>()),
            0..4u32,
            0..6usize,
            any::<bool>(),
            proptest::option::of("[a-z ]{0,6}"),
            proptest::collection::vec(0..3usize, 0..3),
        );
        proptest::collection::vec(node, 0..max).prop_map(|nodes| {
            let scopes = nodes
                .into_iter()
                .enumerate()
                .map(|(index, (parent, position, level, private, alias, grants))| {
                    let parent = parent.filter(|_| index > 0).map(|parent| format!("s{}", parent.index(index)));
                    let mut scope = scope(&format!("s{index}"), parent.as_deref(), position);
                    scope.fields.security_level = SecurityLevel::ALL[level];
                    scope.fields.visibility = if private { Visibility::Private } else { Visibility::Public };
                    scope.fields.default_scope = private;
                    scope.fields.alias = alias;
                    scope.fields.auth_types = grants.into_iter().map(|grant| GrantType::ALL[grant]).collect();
                    scope
                })
                .collect();
            ScopeTree::from_scopes(scopes).unwrap()
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(96))]

        #[test]
        fn importing_an_export_gives_the_same_tree(tree in random_tree(24)) {
            let exported = tree.export();
            prop_assert_eq!(tree.import(&exported).unwrap(), tree.clone());
            prop_assert_eq!(ScopeTree::new().import(&exported).unwrap(), tree.clone());
            let json = serde_json::to_string(&exported).unwrap();
            prop_assert_eq!(serde_json::from_str::<Vec<ScopeNode>>(&json).unwrap(), exported);
        }

        #[test]
        fn importing_twice_is_importing_once(existing in random_tree(16), source in random_tree(16)) {
            // Both trees use the names s0, s1, …, so the document overlaps the existing tree
            // with different parents and orders.
            let document = source.export();
            let once = existing.import(&document).unwrap();
            prop_assert_eq!(once.import(&document).unwrap(), once.clone());
            prop_assert_eq!(once.len(), existing.len().max(source.len()));
            for scope in source.iter() {
                prop_assert_eq!(once.get(&scope.name), Some(scope), "the document's scopes are applied exactly");
            }
            prop_assert_eq!(once.import(&once.export()).unwrap(), once);
        }
    }
}
