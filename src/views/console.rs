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

impl Draft {
    /// A client's current settings, as its settings form shows them.
    pub fn of_client(client: &crate::domain::client::Client) -> Self {
        let redirect_uris = client.redirect_uris.join("\n");
        let jwks = client.jwks.as_ref().and_then(|set| serde_json::to_string_pretty(set).ok()).unwrap_or_default();
        let fields = [
            ("name", client.name.as_str()),
            ("redirect_uris", redirect_uris.as_str()),
            ("security_level", client.security_level.as_str()),
            ("token_format", client.token_format.as_str()),
            ("token_endpoint_auth_method", client.token_endpoint_auth_method.as_str()),
            ("jwks", jwks.as_str()),
        ];
        Self::from_pairs(
            fields
                .into_iter()
                .chain(client.grant_types.iter().map(|t| ("grant_types", t.as_str())))
                .chain(client.can_introspect.then_some(("can_introspect", "on")))
                .chain(client.admin.then_some(("admin", "on")))
                .chain(client.require_pushed_authorization_requests.then_some(("require_par", "on")))
                .chain(client.dpop_bound_access_tokens.then_some(("dpop_bound", "on"))),
        )
    }

    /// A scope's current fields, as its edit form shows them.
    pub fn of_scope(scope: &Scope) -> Self {
        let fields = &scope.fields;
        let texts = [
            ("alias", fields.alias.clone().unwrap_or_default()),
            ("short_description", fields.short_description.clone()),
            ("description", fields.description.clone().unwrap_or_default()),
            ("visibility", fields.visibility.as_str().to_string()),
            ("security_level", fields.security_level.as_str().to_string()),
            ("access_duration_days", fields.access_duration_days.to_string()),
            ("max_access_count", fields.max_access_count.to_string()),
            ("max_accesses_per_day", fields.max_accesses_per_day.to_string()),
            ("operations", fields.operations.join("\n")),
        ];
        Self::from_pairs(
            texts
                .iter()
                .map(|(k, v)| (*k, v.as_str()))
                .chain(fields.default_scope.then_some(("default_scope", "on")))
                .chain(fields.user_authorization_required.then_some(("user_authorization_required", "on")))
                .chain(fields.bank_level.then_some(("bank_level", "on")))
                .chain(fields.parameterised.then_some(("parameterised", "on")))
                .chain(fields.auth_types.iter().map(|t| ("auth_types", t.as_str())))
                .chain([("loaded", "1")]),
        )
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

impl Choice {
    /// Every event type, as the events page's filter.
    pub fn event_types(selected: &str) -> Vec<Choice> {
        crate::domain::event::EventType::ALL
            .iter()
            .map(|kind| Choice {
                value: kind.as_str().to_string(),
                label: kind.as_str().to_string(),
                selected: selected == kind.as_str(),
            })
            .collect()
    }

    /// The entitlement rule's verdicts (`GrantView::state`), as the grants page's filter.
    pub fn grant_states(selected: &str) -> Vec<Choice> {
        ["active", "expired", "exhausted", "not_admitted", "descendant_dropped", "revoked"]
            .iter()
            .map(|name| Choice { value: name.to_string(), label: name.replace('_', " "), selected: selected == *name })
            .collect()
    }
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
    /// Why the client may not hold it, in words; None when it may.
    pub refusal: Option<String>,
    pub input_id: String,
}

impl AssignableScope {
    /// The whole tree for the client's scope form: what it has ticked, what its level rules out.
    pub fn for_client(tree: &ScopeTree, client: &crate::domain::client::Client, assigned: &[String]) -> Vec<Self> {
        pre_order(tree)
            .into_iter()
            .enumerate()
            .map(|(index, (scope, depth))| AssignableScope {
                name: scope.name.clone(),
                label: scope.fields.alias.clone().unwrap_or_default(),
                level: scope.fields.security_level.as_str(),
                depth,
                assigned: assigned.contains(&scope.name),
                refusal: client.may_hold(&scope.name, scope.fields.security_level).err().map(|r| r.to_string()),
                input_id: format!("assign-{index}"),
            })
            .collect()
    }
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
    /// How it authenticates (`token_endpoint_auth_method`).
    pub auth_method: &'static str,
    /// A secret client: the page offers to rotate its secret (a key client has none).
    pub has_secret: bool,
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
    /// The consent it belongs to (Grant Management's `grant_id`).
    pub grant_id: String,
    pub scope: String,
    pub granted_at: String,
    pub expires: String,
    pub remaining: String,
    pub state: &'static str,
}

impl From<crate::services::grants::GrantView> for GrantRow {
    fn from(grant: crate::services::grants::GrantView) -> Self {
        let day = |at: chrono::DateTime<chrono::Utc>| at.format("%-d %b %Y").to_string();
        Self {
            username: grant.username.unwrap_or_else(|| format!("{} (itself)", grant.subject)),
            client_id: grant.client_id,
            grant_id: grant.grant_id,
            scope: grant.scope,
            granted_at: day(grant.granted_at),
            expires: grant.expires_at.map_or_else(|| "No end date".into(), day),
            remaining: grant.remaining_accesses.map_or_else(|| "Unlimited".into(), |n| n.to_string()),
            state: grant.state,
        }
    }
}

#[derive(Template)]
#[template(path = "console/grants.html")]
pub struct GrantsPage {
    pub frame: Frame,
    pub page_title: String,
    pub filter: Draft,
    pub states: Vec<Choice>,
    pub grants: Vec<GrantRow>,
    /// How many matched: more than are shown when the search was wide.
    pub found: usize,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree() -> ScopeTree {
        let mut tree = ScopeTree::new();
        for (name, parent) in [("a", None), ("a.b", Some("a")), ("a.b.c", Some("a.b")), ("a.d", Some("a")), ("e", None)]
        {
            let mut scope = Scope::new(name, name);
            scope.parent = parent.map(str::to_string);
            scope.position = u32::MAX;
            tree.add(scope).unwrap();
        }
        tree
    }

    /// The markup `scopes.html` writes for the rows, reduced to its tags.
    fn markup(rows: &[TreeRow]) -> String {
        let mut html = String::from("<ul>");
        for row in rows {
            if row.opens_list {
                html.push_str("<ul>");
            }
            html.push_str(&format!("<li>{}", row.name));
            if !row.has_children {
                html.push_str("</li>");
            }
            for _ in 0..row.closes {
                html.push_str("</ul></li>");
            }
        }
        html.push_str("</ul>");
        html
    }

    #[test]
    fn the_tree_nests_as_balanced_lists() {
        let rows = TreeRow::nest(pre_order(&tree()));
        assert_eq!(
            markup(&rows),
            "<ul><li>a<ul><li>a.b<ul><li>a.b.c</li></ul></li><li>a.d</li></ul></li><li>e</li></ul>"
        );
    }

    #[test]
    fn search_results_are_a_flat_list() {
        let tree = tree();
        let rows = TreeRow::nest(tree.iter().map(|scope| (scope, 0)).collect());
        assert_eq!(markup(&rows), "<ul><li>a</li><li>a.b</li><li>a.b.c</li><li>a.d</li><li>e</li></ul>");
    }

    #[test]
    fn the_parent_picker_leaves_out_the_moved_subtree() {
        let choices = parent_choices(&tree(), Some("a"), Some("a.b"));
        let values: Vec<&str> = choices.iter().map(|choice| choice.value.as_str()).collect();
        assert_eq!(values, ["", "a", "a.d", "e"]);
        assert!(choices.iter().any(|choice| choice.value == "a" && choice.selected));
    }

    #[test]
    fn a_fresh_form_takes_defaults_and_a_sent_one_keeps_what_was_sent() {
        let fresh = Draft::default();
        assert!(fresh.has("user_authorization_required", "on", true));
        assert!(fresh.is("security_level", "F", "F"));
        let sent = Draft::from_pairs(
            [("csrf_token", "t"), ("name", "x"), ("auth_types", "a"), ("auth_types", "b")].into_iter(),
        );
        assert!(!sent.has("user_authorization_required", "on", true), "an unticked box stays unticked");
        assert!(sent.has("auth_types", "b", false));
        assert_eq!(sent.value("csrf_token"), "", "the token is never echoed");
    }
}
