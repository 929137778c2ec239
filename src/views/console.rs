//! The console's pages: one template struct per `templates/console/*.html`, each carrying the
//! [`Frame`] that `console/layout.html` draws (navigation, who is signed in, notice, error).

use askama::Template;
use std::collections::HashMap;

use crate::domain::limits;
use crate::domain::scope::{GrantType, Scope, SecurityLevel};
use crate::domain::scope_tree::ScopeTree;

pub struct Frame {
    pub user_name: String,
    pub csrf_token: String,
    /// Which navigation entry is the current page.
    pub section: &'static str,
    pub notice: Option<String>,
    pub error: Option<String>,
}

/// The values a refused form was sent with, to fill it again.
#[derive(Default)]
pub struct Draft(HashMap<String, Vec<String>>);

impl Draft {
    pub fn from_pairs<'a>(pairs: impl Iterator<Item = (&'a str, &'a str)>) -> Self {
        let mut values: HashMap<String, Vec<String>> = HashMap::new();
        for (key, value) in pairs.filter(|(key, _)| *key != "csrf_token") {
            values.entry(key.to_string()).or_default().push(value.to_string());
        }
        Self(values)
    }

    /// The first value sent under `key`, or "".
    pub fn value(&self, key: &str) -> &str {
        self.0.get(key).and_then(|values| values.first()).map(String::as_str).unwrap_or("")
    }

    pub fn value_or<'a>(&'a self, key: &str, default: &'a str) -> &'a str {
        if self.0.is_empty() {
            default
        } else {
            self.value(key)
        }
    }

    /// Whether `key`'s value (or `default`, for a fresh form) is `value`: a selected option.
    pub fn is(&self, key: &str, value: &str, default: &str) -> bool {
        self.value_or(key, default) == value
    }

    /// Whether `value` was sent under `key` (a ticked box); `default` for a fresh form.
    pub fn has(&self, key: &str, value: &str, default: bool) -> bool {
        if self.0.is_empty() {
            return default;
        }
        self.0.get(key).is_some_and(|values| values.iter().any(|sent| sent == value))
    }
}

/// One scope in the tree, in pre-order, with what it takes to nest `<ul>`s around it.
pub struct TreeRow {
    pub name: String,
    pub alias: String,
    pub short_description: String,
    pub level: &'static str,
    pub visibility: &'static str,
    pub limits: String,
    pub auth_types: String,
    pub depth: usize,
    /// The first child of its parent: a `<ul>` opens before it.
    pub opens_list: bool,
    /// Its children follow: its `<li>` stays open.
    pub has_children: bool,
    /// How many `</ul></li>` follow its own `</li>`.
    pub closes: usize,
}

impl TreeRow {
    /// Rows in pre-order with their depth (0 at the top); a flat list when all depths are 0.
    pub fn nest(scopes: Vec<(&Scope, usize)>) -> Vec<TreeRow> {
        let depths: Vec<usize> = scopes.iter().map(|(_, depth)| *depth).collect();
        scopes
            .into_iter()
            .enumerate()
            .map(|(index, (scope, depth))| {
                let previous = index.checked_sub(1).and_then(|i| depths.get(i)).copied().unwrap_or(0);
                let next = depths.get(index + 1).copied().unwrap_or(0);
                TreeRow {
                    name: scope.name.clone(),
                    alias: scope.fields.alias.clone().unwrap_or_default(),
                    short_description: scope.fields.short_description.clone(),
                    level: scope.fields.security_level.as_str(),
                    visibility: scope.fields.visibility.as_str(),
                    limits: limits::describe(scope).unwrap_or_default(),
                    auth_types: scope.fields.auth_types.iter().map(|t| t.as_str()).collect::<Vec<_>>().join(", "),
                    depth,
                    opens_list: index > 0 && depth > previous,
                    has_children: next > depth,
                    closes: depth.saturating_sub(next),
                }
            })
            .collect()
    }
}

/// The tree in pre-order with depths.
pub fn pre_order(tree: &ScopeTree) -> Vec<(&Scope, usize)> {
    tree.iter().map(|scope| (scope, tree.ancestors(&scope.name).count())).collect()
}

/// A `<select>` entry.
pub struct Choice {
    pub value: String,
    pub label: String,
    pub selected: bool,
}

/// Every scope (indented by depth) and the top level, as a parent picker; `exclude` leaves a
/// subtree out (a scope cannot move under itself).
pub fn parent_choices(tree: &ScopeTree, selected: Option<&str>, exclude: Option<&str>) -> Vec<Choice> {
    let excluded: Vec<String> =
        exclude.map(|name| tree.subtree(name).into_iter().map(|s| s.name.clone()).collect()).unwrap_or_default();
    let mut choices =
        vec![Choice { value: String::new(), label: "Top level (no parent)".into(), selected: selected.is_none() }];
    for (scope, depth) in pre_order(tree) {
        if excluded.contains(&scope.name) {
            continue;
        }
        choices.push(Choice {
            value: scope.name.clone(),
            label: format!("{}{}", "\u{2003}".repeat(depth), scope.name),
            selected: selected == Some(scope.name.as_str()),
        });
    }
    choices
}

pub const LEVELS: [SecurityLevel; 6] = SecurityLevel::ALL;
pub const GRANT_TYPES: [GrantType; 3] = GrantType::ALL;

#[derive(Template)]
#[template(path = "console/overview.html")]
pub struct OverviewPage {
    pub frame: Frame,
    pub page_title: String,
    pub counts: Vec<(&'static str, i64, &'static str)>,
    pub events: Vec<EventRow>,
}

pub struct EventRow {
    pub at: String,
    pub kind: String,
    pub actor: String,
    pub client_id: String,
    pub username: String,
    pub scope: String,
    pub detail: String,
    /// The detail's top-level keys, as the disclosure's label.
    pub summary: String,
}

impl From<crate::storage::events::StoredEvent> for EventRow {
    fn from(event: crate::storage::events::StoredEvent) -> Self {
        Self {
            at: event.at.format("%Y-%m-%d %H:%M:%S UTC").to_string(),
            kind: event.kind,
            actor: event.actor,
            client_id: event.client_id.unwrap_or_default(),
            username: event.username.unwrap_or_default(),
            scope: event.scope.unwrap_or_default(),
            summary: match &event.detail {
                serde_json::Value::Object(fields) if fields.len() <= 3 => {
                    fields.keys().cloned().collect::<Vec<_>>().join(", ")
                }
                serde_json::Value::Object(fields) => format!("{} fields", fields.len()),
                _ => "detail".into(),
            },
            detail: if event.detail.is_null() { String::new() } else { event.detail.to_string() },
        }
    }
}

#[derive(Template)]
#[template(path = "console/events.html")]
pub struct EventsPage {
    pub frame: Frame,
    pub page_title: String,
    pub kinds: Vec<Choice>,
    pub filter: Draft,
    pub events: Vec<EventRow>,
    pub older: Option<String>,
}

#[derive(Template)]
#[template(path = "console/scopes.html")]
pub struct ScopesPage {
    pub frame: Frame,
    pub page_title: String,
    pub searching: bool,
    pub search: Draft,
    pub rows: Vec<TreeRow>,
    pub parents: Vec<Choice>,
    pub draft: Draft,
}

#[derive(Template)]
#[template(path = "console/scope.html")]
pub struct ScopePage {
    pub frame: Frame,
    pub page_title: String,
    pub name: String,
    pub path: String,
    pub draft: Draft,
    pub parents: Vec<Choice>,
    pub position: u32,
    pub children: Vec<String>,
}

#[derive(Template)]
#[template(path = "console/confirm.html")]
pub struct ConfirmPage {
    pub frame: Frame,
    pub page_title: String,
    pub heading: String,
    pub message: String,
    pub items: Vec<String>,
    pub action: String,
    pub button: String,
    pub back: String,
}

#[derive(Template)]
#[template(path = "console/scope_in_use.html")]
pub struct ScopeInUsePage {
    pub frame: Frame,
    pub page_title: String,
    pub name: String,
    pub path: String,
    /// (client id, scope)
    pub clients: Vec<(String, String)>,
    /// (holder, client id, scope)
    pub grants: Vec<(String, String, String)>,
}

pub struct ClientRow {
    pub client_id: String,
    pub path: String,
    pub name: String,
    pub kind: &'static str,
    pub level: &'static str,
    pub scopes: String,
}

#[derive(Template)]
#[template(path = "console/clients.html")]
pub struct ClientsPage {
    pub frame: Frame,
    pub page_title: String,
    pub clients: Vec<ClientRow>,
    pub draft: Draft,
}

/// A scope offered to a client: ticked when assigned, unavailable above the client's level.
pub struct AssignableScope {
    pub name: String,
    pub label: String,
    pub level: &'static str,
    pub depth: usize,
    pub assigned: bool,
    pub admitted: bool,
    pub input_id: String,
}

#[derive(Template)]
#[template(path = "console/client.html")]
pub struct ClientPage {
    pub frame: Frame,
    pub page_title: String,
    pub client_id: String,
    pub path: String,
    pub name: String,
    pub confidential: bool,
    pub level: &'static str,
    pub admitted_levels: String,
    pub refused_levels: String,
    pub draft: Draft,
    pub scopes: Vec<AssignableScope>,
    /// Shown once, right after creation or rotation.
    pub secret: Option<String>,
    pub created: String,
}

pub struct UserRow {
    pub username: String,
    pub path: String,
    pub display_name: String,
    pub admin: bool,
    pub disabled: bool,
    pub created: String,
    pub index: usize,
}

#[derive(Template)]
#[template(path = "console/users.html")]
pub struct UsersPage {
    pub frame: Frame,
    pub page_title: String,
    pub users: Vec<UserRow>,
    pub draft: Draft,
}

pub struct GrantRow {
    pub username: String,
    pub client_id: String,
    pub scope: String,
    pub granted_at: String,
    pub expires: String,
    pub remaining: String,
    pub state: &'static str,
}

#[derive(Template)]
#[template(path = "console/grants.html")]
pub struct GrantsPage {
    pub frame: Frame,
    pub page_title: String,
    pub filter: Draft,
    pub states: Vec<Choice>,
    pub grants: Vec<GrantRow>,
}
