//! The scope registry held in memory: the hierarchy rules of SPEC.md "Scope registry".
//!
//! Every operation validates before it changes anything, so a refused operation leaves the
//! tree exactly as it was.

use crate::domain::scope::{
    split_value, validate_scope_name, validate_scope_value, GrantType, Scope, ScopeFields, SecurityLevel, Visibility,
    ADMIN_SCOPE,
};
use serde::{Deserialize, Deserializer};
use std::collections::{BTreeSet, HashMap};

/// Why the registry refused an operation; `code` gives the admin API error code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScopeTreeError {
    #[error("{message}")]
    InvalidScope { field: String, message: String },
    #[error("scope {0:?} already exists")]
    DuplicateName(String),
    #[error("scope {0:?} does not exist")]
    UnknownScope(String),
    #[error("parent scope {0:?} does not exist")]
    UnknownParent(String),
    #[error("scope {name:?} cannot be renamed: scope names are immutable")]
    NameImmutable { name: String },
    #[error("{0}")]
    InvalidMove(String),
    #[error("Scope cannot be deleted. Clients or grants are referencing this scope or its children.")]
    InUse(String),
}

impl ScopeTreeError {
    pub fn code(&self) -> &'static str {
        match self {
            Self::InvalidScope { .. } | Self::UnknownParent(_) => "invalid_request",
            Self::DuplicateName(_) => "scope_exists",
            Self::UnknownScope(_) => "scope_not_found",
            Self::NameImmutable { .. } => "scope_name_immutable",
            Self::InvalidMove(_) => "invalid_move",
            Self::InUse(_) => "scope_in_use",
        }
    }

    fn invalid(field: &str, message: impl Into<String>) -> Self {
        Self::InvalidScope { field: field.to_owned(), message: message.into() }
    }
}

/// The field rules a scope must meet wherever it comes from (add, edit, load, import), so
/// the admin API, `scope import` and the registry import refuse the same scopes.
pub fn validate_scope(scope: &Scope) -> Result<(), ScopeTreeError> {
    validate_scope_name(&scope.name).map_err(|message| ScopeTreeError::invalid("name", message))?;
    let fields = &scope.fields;
    if fields.short_description.trim().is_empty() {
        return Err(ScopeTreeError::invalid(
            "short_description",
            format!("scope {:?} needs a short_description", scope.name),
        ));
    }
    // SPEC.md "Field bounds": refusing here, rather than clamping where the value is stored,
    // keeps what the API answers equal to what every instance reads back.
    within_bound(scope, "access_duration_days", fields.access_duration_days, ScopeFields::MAX_ACCESS_DURATION_DAYS)?;
    within_bound(scope, "max_access_count", fields.max_access_count, ScopeFields::MAX_ACCESS_COUNT)?;
    within_bound(scope, "max_accesses_per_day", fields.max_accesses_per_day, ScopeFields::MAX_ACCESS_COUNT)?;
    if fields.parameterised && fields.default_scope {
        // A default scope is granted when none is asked for, and then there is no value.
        return Err(ScopeTreeError::invalid(
            "default_scope",
            format!(
                "scope {:?} is parameterised, so it cannot be a default scope: it is only granted with a value",
                scope.name
            ),
        ));
    }
    Ok(())
}

fn within_bound(scope: &Scope, field: &str, value: u32, max: u32) -> Result<(), ScopeTreeError> {
    if value > max {
        return Err(ScopeTreeError::invalid(
            field,
            format!("{field} of scope {:?} must be between 0 and {max}, not {value}", scope.name),
        ));
    }
    Ok(())
}

/// The reserved admin scope keeps what decides who may hold it (see `ADMIN_SCOPE`): private,
/// level F, client credentials only, no limits. Its words may change. An edit or an import
/// that would change the rest could lock every administrator out of the admin API. Trees
/// loaded from storage are not checked, so an older database still loads.
pub fn check_reserved_admin_scope(before: &Scope, after: &Scope) -> Result<(), ScopeTreeError> {
    if after.name != ADMIN_SCOPE {
        return Ok(());
    }
    let (was, is) = (&before.fields, &after.fields);
    let changed = [
        ("visibility", was.visibility != is.visibility),
        ("security_level", was.security_level != is.security_level),
        ("auth_types", was.auth_types != is.auth_types),
        ("access_duration_days", is.access_duration_days != 0),
        ("max_access_count", is.max_access_count != 0),
        ("max_accesses_per_day", is.max_accesses_per_day != 0),
        ("parameterised", is.parameterised),
    ];
    match changed.into_iter().find(|(_, changed)| *changed) {
        None => Ok(()),
        Some((field, _)) => Err(ScopeTreeError::invalid(
            field,
            format!(
                "{field}: the reserved scope {ADMIN_SCOPE} keeps who may hold it; only its descriptions may change"
            ),
        )),
    }
}

/// An edit of a scope's own fields. The hierarchy (`parent`, `position`) is changed only by
/// `move_scope`, so a patch naming those keys fails to deserialize.
//
// This repeats `ScopeFields` as options instead of flattening it: a patch must tell a key left
// out (keep the value) from every value, and for `alias` and `description` also from null
// (clear it), which a struct of plain values cannot say. `apply_to` names every field of
// `ScopeFields`, so a field added there does not compile until the patch covers it too.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ScopePatch {
    /// Accepted only when it repeats the current name, so clients may send a whole scope back.
    pub name: Option<String>,
    /// `None`: leave as is; `Some(None)` (JSON null): clear.
    #[serde(default, deserialize_with = "present")]
    pub alias: Option<Option<String>>,
    pub short_description: Option<String>,
    #[serde(default, deserialize_with = "present")]
    pub description: Option<Option<String>>,
    pub visibility: Option<Visibility>,
    pub default_scope: Option<bool>,
    pub user_authorization_required: Option<bool>,
    pub access_duration_days: Option<u32>,
    pub max_access_count: Option<u32>,
    pub max_accesses_per_day: Option<u32>,
    pub security_level: Option<SecurityLevel>,
    pub auth_types: Option<Vec<GrantType>>,
    pub operations: Option<Vec<String>>,
    pub bank_level: Option<bool>,
    pub parameterised: Option<bool>,
}

/// serde calls this only for keys that are present, which tells a JSON null (clear the field)
/// apart from a missing key (keep it).
fn present<'de, T, D>(deserializer: D) -> Result<Option<Option<T>>, D::Error>
where
    T: Deserialize<'de>,
    D: Deserializer<'de>,
{
    Option::<T>::deserialize(deserializer).map(Some)
}

impl ScopePatch {
    /// A patch that sets every field to `fields` (a whole form sent back).
    pub fn replacing_all(fields: ScopeFields) -> Self {
        // No `..` here: see the type's comment.
        let ScopeFields {
            alias,
            short_description,
            description,
            visibility,
            default_scope,
            user_authorization_required,
            access_duration_days,
            max_access_count,
            max_accesses_per_day,
            security_level,
            auth_types,
            operations,
            bank_level,
            parameterised,
        } = fields;
        Self {
            name: None,
            alias: Some(alias),
            short_description: Some(short_description),
            description: Some(description),
            visibility: Some(visibility),
            default_scope: Some(default_scope),
            user_authorization_required: Some(user_authorization_required),
            access_duration_days: Some(access_duration_days),
            max_access_count: Some(max_access_count),
            max_accesses_per_day: Some(max_accesses_per_day),
            security_level: Some(security_level),
            auth_types: Some(auth_types),
            operations: Some(operations),
            bank_level: Some(bank_level),
            parameterised: Some(parameterised),
        }
    }

    fn apply_to(self, scope: &mut Scope) -> Result<(), ScopeTreeError> {
        if self.name.is_some_and(|name| name != scope.name) {
            return Err(ScopeTreeError::NameImmutable { name: scope.name.clone() });
        }
        // No `..` here: see the type's comment.
        let ScopeFields {
            alias,
            short_description,
            description,
            visibility,
            default_scope,
            user_authorization_required,
            access_duration_days,
            max_access_count,
            max_accesses_per_day,
            security_level,
            auth_types,
            operations,
            bank_level,
            parameterised,
        } = &mut scope.fields;
        replace_if_given(alias, self.alias);
        replace_if_given(short_description, self.short_description);
        replace_if_given(description, self.description);
        replace_if_given(visibility, self.visibility);
        replace_if_given(default_scope, self.default_scope);
        replace_if_given(user_authorization_required, self.user_authorization_required);
        replace_if_given(access_duration_days, self.access_duration_days);
        replace_if_given(max_access_count, self.max_access_count);
        replace_if_given(max_accesses_per_day, self.max_accesses_per_day);
        replace_if_given(security_level, self.security_level);
        replace_if_given(auth_types, self.auth_types);
        replace_if_given(operations, self.operations);
        replace_if_given(bank_level, self.bank_level);
        replace_if_given(parameterised, self.parameterised);
        Ok(())
    }
}

fn replace_if_given<T>(field: &mut T, patched: Option<T>) {
    if let Some(value) = patched {
        *field = value;
    }
}

/// The admin search: every given criterion must match.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ScopeQuery {
    /// Case-insensitive substring of name, alias, short_description or description.
    pub keyword: Option<String>,
    pub security_level: Option<SecurityLevel>,
    pub auth_type: Option<GrantType>,
}

/// What the registry needs to know about a client to decide which scopes it may hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientScopeAccess {
    pub security_level: SecurityLevel,
    pub assigned: BTreeSet<String>,
}

#[derive(Debug, Clone)]
struct Node {
    scope: Scope,
    /// The parent's slot, mirroring `scope.parent`.
    parent: Option<usize>,
    /// Slots in position order; `scope.position` of each equals its index here.
    children: Vec<usize>,
}

/// The scope hierarchy. Nodes live in a slab and point at each other by slot, so walks and
/// ancestor climbs never hash; names are hashed only to find where a walk starts.
#[derive(Debug, Clone, Default)]
pub struct ScopeTree {
    nodes: Vec<Node>,
    slots: HashMap<String, usize>,
    roots: Vec<usize>,
}

/// Slot numbers depend on the history of edits, so two trees are equal when they hold the
/// same scopes in the same places, which the pre-order of full scopes captures.
impl PartialEq for ScopeTree {
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len() && self.iter().eq(other.iter())
    }
}

impl Eq for ScopeTree {}

/// Pre-order walk: parents before children, siblings in position order.
pub struct PreOrder<'a> {
    tree: &'a ScopeTree,
    stack: Vec<usize>,
}

impl<'a> Iterator for PreOrder<'a> {
    type Item = &'a Scope;

    fn next(&mut self) -> Option<&'a Scope> {
        let tree = self.tree;
        while let Some(slot) = self.stack.pop() {
            if let Some(node) = tree.nodes.get(slot) {
                self.stack.extend(node.children.iter().rev());
                return Some(&node.scope);
            }
        }
        None
    }
}

fn to_position(index: usize) -> u32 {
    u32::try_from(index).unwrap_or(u32::MAX)
}

fn clamp_index(position: u32, len: usize) -> usize {
    usize::try_from(position).map_or(len, |position| position.min(len))
}

impl ScopeTree {
    pub fn new() -> Self {
        Self::default()
    }

    /// Builds a tree from stored rows. Positions are only an ordering hint here: siblings are
    /// sorted by (position, name) and renumbered 0..n, so gaps or ties left by older data heal.
    pub fn from_scopes(scopes: Vec<Scope>) -> Result<Self, ScopeTreeError> {
        let mut tree = Self {
            nodes: Vec::with_capacity(scopes.len()),
            slots: HashMap::with_capacity(scopes.len()),
            roots: Vec::new(),
        };
        for scope in scopes {
            validate_scope(&scope)?;
            if tree.slots.contains_key(&scope.name) {
                return Err(ScopeTreeError::DuplicateName(scope.name));
            }
            tree.slots.insert(scope.name.clone(), tree.nodes.len());
            tree.nodes.push(Node { scope, parent: None, children: Vec::new() });
        }

        for slot in 0..tree.nodes.len() {
            let Some(parent_name) = tree.nodes.get(slot).and_then(|node| node.scope.parent.as_ref()) else {
                tree.roots.push(slot);
                continue;
            };
            let Some(parent) = tree.slot(parent_name) else {
                return Err(ScopeTreeError::UnknownParent(parent_name.clone()));
            };
            if let Some(node) = tree.nodes.get_mut(slot) {
                node.parent = Some(parent);
            }
            if let Some(node) = tree.nodes.get_mut(parent) {
                node.children.push(slot);
            }
        }

        for parent in std::iter::once(None).chain((0..tree.nodes.len()).map(Some)) {
            tree.change_siblings(parent, |list, nodes| {
                let key = |slot: &usize| nodes.get(*slot).map(|node| (node.scope.position, &node.scope.name));
                list.sort_by(|a, b| key(a).cmp(&key(b)));
                0
            });
        }

        // Scopes on a parent cycle are unreachable from the top level, so a walk finds them.
        let mut reachable = vec![false; tree.nodes.len()];
        for slot in tree.walk(tree.roots.clone()) {
            if let Some(seen) = reachable.get_mut(slot) {
                *seen = true;
            }
        }
        if let Some(stranded) = reachable.iter().position(|seen| !seen) {
            let name = tree.nodes.get(stranded).map_or("", |node| node.scope.name.as_str());
            return Err(ScopeTreeError::invalid(
                "parent",
                format!("scope {name:?} is its own ancestor: its parent links form a cycle"),
            ));
        }
        Ok(tree)
    }

    fn slot(&self, name: &str) -> Option<usize> {
        self.slots.get(name).copied()
    }

    fn scope_at(&self, slot: usize) -> Option<&Scope> {
        self.nodes.get(slot).map(|node| &node.scope)
    }

    /// Slots in pre-order from `start` (given in walking order).
    fn walk(&self, mut start: Vec<usize>) -> impl Iterator<Item = usize> + '_ {
        start.reverse();
        std::iter::from_fn(move || {
            let slot = start.pop()?;
            if let Some(node) = self.nodes.get(slot) {
                start.extend(node.children.iter().rev());
            }
            Some(slot)
        })
    }

    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    pub fn get(&self, name: &str) -> Option<&Scope> {
        self.slot(name).and_then(|slot| self.scope_at(slot))
    }

    pub fn contains(&self, name: &str) -> bool {
        self.slots.contains_key(name)
    }

    /// The scope a requested string stands for, the one lookup of every grant-side path:
    /// - a plain scope by its name;
    /// - a parameterised scope's definition for `<name>:<value>` with a valid value.
    ///
    /// The bare name of a parameterised scope stands for nothing: it cannot be requested,
    /// granted or held. A name in the tree wins over a split, since plain names may contain
    /// `:` (`scopegate:admin`).
    pub fn definition(&self, requested: &str) -> Option<&Scope> {
        match self.get(requested) {
            Some(scope) => (!scope.fields.parameterised).then_some(scope),
            None => {
                let (name, value) = split_value(requested)?;
                validate_scope_value(value).ok()?;
                self.get(name).filter(|scope| scope.fields.parameterised)
            }
        }
    }

    pub fn roots(&self) -> Vec<&Scope> {
        self.roots.iter().filter_map(|&slot| self.scope_at(slot)).collect()
    }

    pub fn children(&self, name: &str) -> Vec<&Scope> {
        self.slot(name)
            .and_then(|slot| self.nodes.get(slot))
            .map_or_else(Vec::new, |node| node.children.iter().filter_map(|&child| self.scope_at(child)).collect())
    }

    /// The parent, grandparent, … of `name`, nearest first.
    pub fn ancestors<'a>(&'a self, name: &str) -> impl Iterator<Item = &'a Scope> + use<'a> {
        let parent_slot = |slot: usize| self.nodes.get(slot).and_then(|node| node.parent);
        let first = self.slot(name).and_then(parent_slot);
        std::iter::successors(first, move |&slot| parent_slot(slot)).filter_map(|slot| self.scope_at(slot))
    }

    pub fn iter(&self) -> PreOrder<'_> {
        PreOrder { tree: self, stack: self.roots.iter().rev().copied().collect() }
    }

    /// Every scope in pre-order, ready to be saved.
    pub fn scopes(&self) -> Vec<Scope> {
        self.iter().cloned().collect()
    }

    /// The scope and all its descendants, pre-order; empty when the scope is unknown.
    pub fn subtree(&self, name: &str) -> Vec<&Scope> {
        PreOrder { tree: self, stack: self.slot(name).into_iter().collect() }.collect()
    }

    fn siblings(&self, parent: Option<usize>) -> Option<&Vec<usize>> {
        match parent {
            None => Some(&self.roots),
            Some(parent) => self.nodes.get(parent).map(|node| &node.children),
        }
    }

    /// Edits the sibling list under `parent`, then renumbers from the index `change` returns.
    /// The list is taken out while it changes so that `change` may read the other nodes.
    fn change_siblings(&mut self, parent: Option<usize>, change: impl FnOnce(&mut Vec<usize>, &[Node]) -> usize) {
        let mut list = match parent {
            None => std::mem::take(&mut self.roots),
            Some(parent) => match self.nodes.get_mut(parent) {
                Some(node) => std::mem::take(&mut node.children),
                None => return,
            },
        };
        let from = change(&mut list, &self.nodes);
        for (index, &slot) in list.iter().enumerate().skip(from) {
            if let Some(node) = self.nodes.get_mut(slot) {
                node.scope.position = to_position(index);
            }
        }
        match parent {
            None => self.roots = list,
            Some(parent) => {
                if let Some(node) = self.nodes.get_mut(parent) {
                    node.children = list;
                }
            }
        }
    }

    /// Takes `slot` out of its sibling list; returns where it was.
    fn detach(list: &mut Vec<usize>, slot: usize, position: u32) -> usize {
        let at = clamp_index(position, list.len());
        let index = if list.get(at) == Some(&slot) {
            at
        } else {
            list.iter().position(|&sibling| sibling == slot).unwrap_or(list.len())
        };
        if index < list.len() {
            list.remove(index);
        }
        index
    }

    /// The slot of a new parent, for an add or a move. The reserved admin scope takes no
    /// children (see `ADMIN_SCOPE`); trees loaded from storage are not checked for it, so an
    /// older database still loads.
    fn parent_slot(&self, parent: Option<&str>) -> Result<Option<usize>, ScopeTreeError> {
        if parent == Some(ADMIN_SCOPE) {
            return Err(ScopeTreeError::invalid(
                "parent",
                format!("the reserved scope {ADMIN_SCOPE} takes no children"),
            ));
        }
        // A parameterised scope is granted per value and implies nothing, so a child under it
        // could never be had through it: it stays a leaf.
        if let Some(parent) = parent.filter(|name| self.get(name).is_some_and(|scope| scope.fields.parameterised)) {
            return Err(ScopeTreeError::invalid(
                "parent",
                format!("scope {parent:?} is parameterised and takes no children"),
            ));
        }
        parent.map(|name| self.slot(name).ok_or_else(|| ScopeTreeError::UnknownParent(name.to_owned()))).transpose()
    }

    /// Adds a scope among its parent's children at `scope.position` (clamped), shifting later
    /// siblings down.
    pub fn add(&mut self, mut scope: Scope) -> Result<(), ScopeTreeError> {
        validate_scope(&scope)?;
        if self.contains(&scope.name) {
            return Err(ScopeTreeError::DuplicateName(scope.name));
        }
        self.check_parameterised(&scope, false)?;
        let parent = self.parent_slot(scope.parent.as_deref())?;
        let index = clamp_index(scope.position, self.siblings(parent).map_or(0, Vec::len));
        scope.position = to_position(index);
        let slot = self.nodes.len();
        self.slots.insert(scope.name.clone(), slot);
        self.nodes.push(Node { scope, parent, children: Vec::new() });
        self.change_siblings(parent, |list, _| {
            list.insert(index, slot);
            index
        });
        Ok(())
    }

    pub fn edit(&mut self, name: &str, patch: ScopePatch) -> Result<&Scope, ScopeTreeError> {
        let slot = self.slot(name).ok_or_else(|| ScopeTreeError::UnknownScope(name.to_owned()))?;
        let node = self.nodes.get(slot).ok_or_else(|| ScopeTreeError::UnknownScope(name.to_owned()))?;
        let mut edited = node.scope.clone();
        patch.apply_to(&mut edited)?;
        validate_scope(&edited)?;
        // Names never change, so an edit meets the parameterised rules anew only where it
        // touches them: a scope becoming parameterised, or one that stops asking the user or
        // changes its grant types. Any other edit leaves a tree an older version stored as it was.
        let (was, is) = (&node.scope.fields, &edited.fields);
        let stops_asking = was.user_authorization_required && !is.user_authorization_required;
        if is.parameterised && (!was.parameterised || stops_asking || was.auth_types != is.auth_types) {
            self.check_parameterised(&edited, !node.children.is_empty())?;
        }
        check_reserved_admin_scope(&node.scope, &edited)?;
        let node = self.nodes.get_mut(slot).ok_or_else(|| ScopeTreeError::UnknownScope(name.to_owned()))?;
        node.scope = edited;
        Ok(&node.scope)
    }

    /// Whether `name` is `ancestor` or lies below it.
    fn is_within(&self, name: &str, ancestor: &str) -> bool {
        name == ancestor || self.ancestors(name).any(|above| above.name == ancestor)
    }

    /// Moves a scope (with its subtree) under `new_parent` at `position`, or last when `None`.
    pub fn move_scope(
        &mut self,
        name: &str,
        new_parent: Option<&str>,
        position: Option<u32>,
    ) -> Result<(), ScopeTreeError> {
        let unknown = || ScopeTreeError::UnknownScope(name.to_owned());
        let slot = self.slot(name).ok_or_else(unknown)?;
        let node = self.nodes.get(slot).ok_or_else(unknown)?;
        let (old_parent, old_position) = (node.parent, node.scope.position);
        let parent = self.parent_slot(new_parent)?;
        if let Some(parent_name) = new_parent.filter(|&parent| self.is_within(parent, name)) {
            return Err(ScopeTreeError::InvalidMove(format!(
                "scope {name:?} cannot be moved under {parent_name:?}: a scope cannot become its own ancestor"
            )));
        }

        self.change_siblings(old_parent, |list, _| Self::detach(list, slot, old_position));
        let sibling_count = self.siblings(parent).map_or(0, Vec::len);
        let index = position.map_or(sibling_count, |position| clamp_index(position, sibling_count));
        if let Some(node) = self.nodes.get_mut(slot) {
            node.parent = parent;
            node.scope.parent = new_parent.map(str::to_owned);
        }
        self.change_siblings(parent, |list, _| {
            list.insert(index, slot);
            index
        });
        Ok(())
    }

    /// Deletes the scope and its whole subtree, unless `in_use` holds for any of them.
    /// Returns the removed names in pre-order.
    pub fn remove_subtree(&mut self, name: &str, in_use: impl Fn(&str) -> bool) -> Result<Vec<String>, ScopeTreeError> {
        let unknown = || ScopeTreeError::UnknownScope(name.to_owned());
        let slot = self.slot(name).ok_or_else(unknown)?;
        let node = self.nodes.get(slot).ok_or_else(unknown)?;
        let (parent, position) = (node.parent, node.scope.position);
        let mut doomed: Vec<usize> = self.walk(vec![slot]).collect();
        let names: Vec<String> =
            doomed.iter().filter_map(|&doomed| self.scope_at(doomed)).map(|scope| scope.name.clone()).collect();
        if names.iter().any(|name| in_use(name)) {
            return Err(ScopeTreeError::InUse(name.to_owned()));
        }

        self.change_siblings(parent, |list, _| Self::detach(list, slot, position));
        // Highest slot first: whichever node `swap_remove` moves down is then never doomed.
        doomed.sort_unstable_by(|a, b| b.cmp(a));
        for doomed in doomed {
            self.remove_slot(doomed);
        }
        Ok(names)
    }

    /// Drops a detached node whose children are gone too, moving the last node into its slot.
    fn remove_slot(&mut self, slot: usize) {
        if slot >= self.nodes.len() {
            return;
        }
        let removed = self.nodes.swap_remove(slot);
        self.slots.remove(&removed.scope.name);
        let moved_from = self.nodes.len();
        let Some(moved) = self.nodes.get(slot) else {
            return;
        };
        let (moved_parent, moved_children) = (moved.parent, moved.children.clone());
        self.slots.insert(moved.scope.name.clone(), slot);
        let siblings = match moved_parent {
            None => Some(&mut self.roots),
            Some(parent) => self.nodes.get_mut(parent).map(|parent| &mut parent.children),
        };
        // Sibling lists of survivors hold survivors only (the doomed subtree was detached
        // first), so the moved node's old slot appears exactly once there.
        if let Some(entry) = siblings.into_iter().flatten().find(|entry| **entry == moved_from) {
            *entry = slot;
        }
        for child in moved_children {
            if let Some(node) = self.nodes.get_mut(child) {
                node.parent = Some(slot);
            }
        }
    }

    /// The named scopes and all their descendants: holding a scope means holding its subtree.
    /// A parameterised scope is implied by no parent; its concrete strings (`<name>:<value>`)
    /// stand for themselves alone. Unknown names, and bare parameterised ones, are left out.
    pub fn expand<'a>(&self, names: impl IntoIterator<Item = &'a str>) -> BTreeSet<String> {
        let mut visited = vec![false; self.nodes.len()];
        let mut expanded: Vec<&str> = Vec::new();
        let mut stack: Vec<usize> = Vec::new();
        let mut concrete: Vec<&str> = Vec::new();
        for name in names {
            let Some(slot) = self.slot(name) else {
                if self.definition(name).is_some() {
                    concrete.push(name);
                }
                continue;
            };
            stack.push(slot);
            while let Some(slot) = stack.pop() {
                // A visited scope came with its whole subtree already.
                match visited.get_mut(slot) {
                    Some(seen) if !*seen => *seen = true,
                    _ => continue,
                }
                if let Some(node) = self.nodes.get(slot).filter(|node| !node.scope.fields.parameterised) {
                    expanded.push(&node.scope.name);
                    stack.extend(&node.children);
                }
            }
        }
        expanded.extend(concrete);
        // Sorted input lets the set be built in one pass instead of by repeated inserts.
        expanded.sort_unstable();
        expanded.into_iter().map(str::to_owned).collect()
    }

    pub fn search(&self, query: &ScopeQuery) -> Vec<&Scope> {
        let keyword = query.keyword.as_deref().map(str::to_lowercase);
        self.iter()
            .filter(|scope| query.security_level.is_none_or(|level| scope.fields.security_level == level))
            .filter(|scope| query.auth_type.is_none_or(|grant| scope.allows_grant_type(grant)))
            .filter(|scope| keyword.as_deref().is_none_or(|keyword| matches_keyword(scope, keyword)))
            .collect()
    }

    pub fn default_scopes(&self) -> Vec<&Scope> {
        self.iter().filter(|scope| scope.fields.default_scope).collect()
    }

    /// Whether the scope itself or one of its ancestors is assigned (false for unknown scopes).
    pub fn is_assigned_or_below_assigned(&self, scope_name: &str, assigned: &BTreeSet<String>) -> bool {
        self.contains(scope_name)
            && (assigned.contains(scope_name)
                || self.ancestors(scope_name).any(|ancestor| assigned.contains(&ancestor.name)))
    }

    /// SPEC's client filter: level admitted, grant type allowed, and public or assigned.
    /// A parameterised scope's value is admitted as its definition is.
    pub fn client_may_have(&self, scope_name: &str, access: &ClientScopeAccess, grant_type: GrantType) -> bool {
        self.definition(scope_name).is_some_and(|scope| {
            access.security_level.admits(scope.fields.security_level)
                && scope.allows_grant_type(grant_type)
                && (scope.fields.visibility == Visibility::Public
                    || self.is_assigned_or_below_assigned(&scope.name, &access.assigned))
        })
    }

    /// Every scope `client_may_have` accepts (bare parameterised names are not scopes one can
    /// have), found in one walk that carries "an ancestor is
    /// assigned" down instead of climbing from every scope.
    pub fn allowed_for_client(&self, access: &ClientScopeAccess, grant_type: GrantType) -> BTreeSet<String> {
        let mut allowed = BTreeSet::new();
        let mut stack: Vec<(usize, bool)> = self.roots.iter().map(|&slot| (slot, false)).collect();
        while let Some((slot, ancestor_assigned)) = stack.pop() {
            let Some(node) = self.nodes.get(slot) else {
                continue;
            };
            let scope = &node.scope;
            let assigned = ancestor_assigned || access.assigned.contains(&scope.name);
            if !scope.fields.parameterised
                && access.security_level.admits(scope.fields.security_level)
                && scope.allows_grant_type(grant_type)
                && (scope.fields.visibility == Visibility::Public || assigned)
            {
                allowed.insert(scope.name.clone());
            }
            stack.extend(node.children.iter().map(|&child| (child, assigned)));
        }
        allowed
    }
}

fn matches_keyword(scope: &Scope, lowercase_keyword: &str) -> bool {
    let matches = |text: &str| text.to_lowercase().contains(lowercase_keyword);
    matches(&scope.name)
        || scope.fields.alias.as_deref().is_some_and(matches)
        || matches(&scope.fields.short_description)
        || scope.fields.description.as_deref().is_some_and(matches)
}

#[path = "scope_tree_parameterised.rs"]
mod parameterised;

#[cfg(test)]
#[path = "scope_tree_tests.rs"]
mod tests;
