use crate::helpers::{cli_json, fresh_settings, run_cli, scopegate_binary, spawn_app, spawn_app_with};
use scopegate::domain::scope_document::ScopeDocument;
use scopegate::services::registry::Registry;
use serde_json::json;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const TREE: &str = r#"{"scopes": [
  {"name": "accounts", "short_description": "Accounts", "security_level": "C", "children": [
    {"name": "accounts.balance", "short_description": "Balance", "access_duration_days": 90,
     "children": [{"name": "accounts.balance.history", "short_description": "History", "operations": ["GET /h"]}]},
    {"name": "accounts.transactions", "short_description": "Transactions", "max_access_count": 100}
  ]},
  {"name": "payments", "short_description": "Payments", "visibility": "private", "security_level": "A"}
]}"#;

fn write(dir: &std::path::Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path.to_str().unwrap().to_string()
}

fn export(settings: &scopegate::config::Settings) -> serde_json::Value {
    cli_json(&run_cli(settings, &["scope", "export"], None))
}

#[tokio::test]
async fn import_then_export_round_trips_and_a_second_import_changes_nothing() {
    let (settings, dir) = fresh_settings();
    let file = write(dir.path(), "tree.json", TREE);
    let first = cli_json(&run_cli(&settings, &["scope", "import", &file], None));
    assert_eq!(first["created"], 5);
    let exported = export(&settings);
    let again = cli_json(&run_cli(&settings, &["scope", "import", &file], None));
    assert_eq!((again["created"].as_u64(), again["updated"].as_u64()), (Some(0), Some(0)));
    assert_eq!(export(&settings), exported);

    // The export imports into a fresh installation as the very same registry.
    let (other, other_dir) = fresh_settings();
    let exported_file = write(other_dir.path(), "exported.json", &exported.to_string());
    cli_json(&run_cli(&other, &["scope", "import", &exported_file], None));
    assert_eq!(export(&other), exported);

    assert_eq!(exported["scopes"][0]["name"], "accounts", "documented scopes come first");
    let balance = &exported["scopes"][0]["children"][0];
    assert_eq!(balance["name"], "accounts.balance");
    assert_eq!(balance["access_duration_days"], 90);
    assert_eq!(balance["user_authorization_required"], true, "the default asks the user");
    assert_eq!(balance["children"][0]["operations"][0], "GET /h");
}

#[tokio::test]
async fn a_yaml_document_imports_like_json() {
    let (settings, dir) = fresh_settings();
    let yaml = "scopes:\n  - name: profile\n    short_description: Your profile\n    default_scope: true\n    children:\n      - name: profile.email\n        short_description: Your e-mail address\n";
    let file = write(dir.path(), "tree.yaml", yaml);
    assert_eq!(cli_json(&run_cli(&settings, &["scope", "import", &file], None))["created"], 2);
    let exported = export(&settings);
    let profile = exported["scopes"].as_array().unwrap().iter().find(|s| s["name"] == "profile").unwrap();
    assert_eq!(profile["default_scope"], true);
    assert_eq!(profile["children"][0]["name"], "profile.email");
}

#[tokio::test]
async fn a_malformed_document_is_refused_whole_naming_the_bad_node() {
    let (settings, dir) = fresh_settings();
    cli_json(&run_cli(&settings, &["scope", "import", &write(dir.path(), "tree.json", TREE)], None));
    let before = export(&settings);

    // A valid first scope, then a bad name deep down: nothing of it may land.
    let bad_name = r#"{"scopes": [{"name": "newcomer", "short_description": "New"},
        {"name": "accounts", "short_description": "Accounts", "children": [{"name": "bad name!", "short_description": "x"}]}]}"#;
    let output = run_cli(&settings, &["scope", "import", &write(dir.path(), "bad.json", bad_name)], None);
    assert!(!output.status.success());
    let message = String::from_utf8_lossy(&output.stderr);
    assert!(message.contains("scopes[1].children[0]"), "{message}");
    assert_eq!(export(&settings), before);

    let bad_level = r#"{"scopes": [{"name": "x", "short_description": "x", "children": [{"name": "y", "short_description": "y", "security_level": "Q"}]}]}"#;
    let output = run_cli(&settings, &["scope", "import", &write(dir.path(), "bad2.json", bad_level)], None);
    assert!(!output.status.success());
    let message = String::from_utf8_lossy(&output.stderr);
    // The node's path, then the field within it (serde reports a flattened field's name apart).
    assert!(message.contains("scopes[0].children[0]: security_level: unknown variant `Q`"), "{message}");

    let duplicate =
        r#"{"scopes": [{"name": "dup", "short_description": "a"}, {"name": "dup", "short_description": "b"}]}"#;
    let output = run_cli(&settings, &["scope", "import", &write(dir.path(), "dup.json", duplicate)], None);
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("dup"));
    assert_eq!(export(&settings), before);
}

#[tokio::test]
async fn moving_and_deleting_through_the_registry_are_stored() {
    let app = spawn_app().await;
    let file = write(app.dir.path(), "tree.json", TREE);
    cli_json(&app.cli(&["scope", "import", &file], None));
    let mut connection = app.state.db.get().unwrap();
    let registry = Registry::load(&mut connection).unwrap();

    registry
        .change(&mut connection, |tree, _| Ok(tree.move_scope("accounts.balance", Some("payments"), Some(0))?))
        .unwrap();
    let cycle = registry
        .change(&mut connection, |tree, _| Ok(tree.move_scope("payments", Some("accounts.balance.history"), None)?));
    assert_eq!(cycle.unwrap_err().code(), "invalid_move");

    let removed = registry
        .delete_subtree(&mut connection, "accounts.balance", &scopegate::domain::event::Actor::Cli, chrono::Utc::now())
        .unwrap();
    assert_eq!(removed.len(), 2);
    let stored = Registry::load(&mut connection).unwrap().snapshot().tree.clone();
    assert!(!stored.contains("accounts.balance") && !stored.contains("accounts.balance.history"));
    assert!(stored.contains("accounts.transactions"));
    assert_eq!(stored, registry.snapshot().tree);
}

#[tokio::test]
async fn deleting_a_scope_assigned_to_a_client_is_refused_and_changes_nothing() {
    let app = spawn_app().await;
    cli_json(&app.cli(&["scope", "import", &write(app.dir.path(), "tree.json", TREE)], None));
    cli_json(&app.cli(
        &["client", "create", "--name", "Budget", "--security-level", "C", "--scope", "accounts.balance.history"],
        None,
    ));
    let mut connection = app.state.db.get().unwrap();
    let registry = Registry::load(&mut connection).unwrap();
    let before = registry.snapshot().tree.clone();
    let error = registry
        .delete_subtree(&mut connection, "accounts", &scopegate::domain::event::Actor::Cli, chrono::Utc::now())
        .unwrap_err();
    assert_eq!(error.code(), "scope_in_use");
    assert_eq!(
        error.to_string(),
        "Scope cannot be deleted. Clients or grants are referencing this scope or its children."
    );
    assert_eq!(Registry::load(&mut connection).unwrap().snapshot().tree, before);
    // An unassigned sibling subtree may go.
    assert_eq!(
        registry
            .delete_subtree(&mut connection, "payments", &scopegate::domain::event::Actor::Cli, chrono::Utc::now())
            .unwrap(),
        vec!["payments"]
    );
}

async fn wait_until(what: &str, mut condition: impl FnMut() -> bool) -> Duration {
    let started = Instant::now();
    while !condition() {
        assert!(started.elapsed() < Duration::from_secs(2), "{what} not seen within 2 s");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    started.elapsed()
}

#[tokio::test]
async fn a_change_on_one_instance_reaches_another_within_two_seconds() {
    let first = spawn_app().await;
    let settings = first.settings.clone();
    let (_, spare_dir) = fresh_settings();
    let second = spawn_app_with(settings.clone(), spare_dir).await;

    // Through one instance's registry: at once there, within 2 s on the other.
    let mut connection = first.state.db.get().unwrap();
    first
        .state
        .registry
        .change(&mut connection, |tree, _| Ok(tree.add(scopegate::domain::scope::Scope::new("fresh", "Fresh"))?))
        .unwrap();
    assert!(first.state.registry.snapshot().tree.contains("fresh"));
    wait_until("the other instance's reload", || second.state.registry.snapshot().tree.contains("fresh")).await;

    // Through the CLI against the same database: both servers pick it up.
    cli_json(&first.cli(&["scope", "import", &write(first.dir.path(), "tree.json", TREE)], None));
    wait_until("the CLI's import", || {
        first.state.registry.snapshot().tree.contains("payments")
            && second.state.registry.snapshot().tree.contains("payments")
    })
    .await;
}

/// Starts `scopegate serve --demo` on a free port, waits for its banner, and stops it.
fn serve_demo_once(settings: &scopegate::config::Settings) -> String {
    let mut child = Command::new(scopegate_binary())
        .args(["--database-url", &settings.database_url])
        .arg("--keys-dir")
        .arg(&settings.keys_dir)
        .args(["serve", "--demo", "--bind", "127.0.0.1:0"])
        .env("SCOPEGATE_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut banner = String::new();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    for line in lines.by_ref() {
        let line = line.unwrap();
        banner.push_str(&line);
        banner.push('\n');
        if line.contains("health:") {
            break;
        }
    }
    child.kill().unwrap();
    child.wait().unwrap();
    banner
}

#[tokio::test]
async fn serve_demo_twice_leaves_exactly_one_copy_of_the_demo_data() {
    let (settings, _dir) = fresh_settings();
    let first = serve_demo_once(&settings);
    assert!(first.contains("6 scopes"), "{first}");
    assert!(first.contains("FOR THE DEMO ONLY"), "{first}");
    let exported = export(&settings);
    let second = serve_demo_once(&settings);
    assert!(second.contains("0 scopes, users [], clients []"), "{second}");
    assert_eq!(export(&settings), exported);

    let document: ScopeDocument = serde_json::from_value(exported).unwrap();
    let names: Vec<String> = document.scopes.iter().map(|s| s.name.clone()).collect();
    assert_eq!(names, vec!["profile", "accounts", "payments", "scopegate:admin"]);
    let db = scopegate::storage::Database::connect(&settings.database_url, 1).unwrap();
    let mut connection = db.get().unwrap();
    let users = scopegate::storage::users::list(&mut connection).unwrap();
    let users: Vec<(&str, bool)> = users.iter().map(|u| (u.username.as_str(), u.admin)).collect();
    assert_eq!(users, [("admin", true), ("alice", false), ("bob", false)], "alice, bob and the console's admin");
    let clients = scopegate::storage::clients::list(&mut connection).unwrap();
    let mut ids: Vec<_> = clients.iter().map(|c| c.client_id.as_str()).collect();
    ids.sort();
    assert_eq!(ids, vec!["bank-api", "demo-admin", "online-bank", "payments-app"]);
    let assigned = scopegate::storage::clients::assignments(&mut connection, "online-bank").unwrap();
    assert_eq!(assigned.iter().map(|a| a.scope_name.as_str()).collect::<Vec<_>>(), vec!["profile", "accounts"]);
}

/// `GET /admin/v1/scopes/{name}` on `app` with the admin's token.
async fn get_scope(app: &crate::helpers::TestApp, token: &str, name: &str) -> serde_json::Value {
    let response = app.http.get(app.url(&format!("/admin/v1/scopes/{name}"))).bearer_auth(token).send().await.unwrap();
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

fn names_the_field(body: &serde_json::Value, field: &str) -> bool {
    body["error"] == "invalid_request" && body["error_description"].as_str().is_some_and(|text| text.contains(field))
}

#[tokio::test]
async fn field_bounds_are_refused_naming_the_field_on_create_edit_and_import() {
    let admin = crate::admin::setup().await;
    let (status, body) = admin
        .call(reqwest::Method::PATCH, "/admin/v1/scopes/profile", Some(json!({"max_access_count": 3_000_000_000u64})))
        .await;
    assert_eq!(status, 400, "{body}");
    assert!(names_the_field(&body, "max_access_count"), "{body}");
    let new_scope = json!({"name": "statements", "short_description": "Statements", "access_duration_days": 36501});
    let (status, body) = admin.call(reqwest::Method::POST, "/admin/v1/scopes", Some(new_scope)).await;
    assert_eq!(status, 400, "{body}");
    assert!(names_the_field(&body, "access_duration_days"), "{body}");
    // Beyond what the JSON type holds at all: still a 400 naming the field, never a 500.
    let huge = json!({"name": "statements", "short_description": "Statements", "max_access_count": 5_000_000_000u64});
    let (status, body) = admin.call(reqwest::Method::POST, "/admin/v1/scopes", Some(huge)).await;
    assert_eq!(status, 400, "{body}");
    assert!(names_the_field(&body, "max_access_count"), "{body}");

    // Nothing of the refused requests landed, in the cache or the database.
    let stored = export(&admin.app.settings);
    assert_eq!(stored["scopes"].as_array().unwrap().len(), 2, "profile and the admin scope only: {stored}");
    assert_eq!(get_scope(&admin.app, &admin.token, "profile").await["max_access_count"], 0);

    // `scope import` through the CLI and through the registry refuse the same document.
    let document = r#"{"scopes": [{"name": "accounts", "short_description": "Accounts",
        "children": [{"name": "accounts.balance", "short_description": "Balance", "access_duration_days": 36501}]}]}"#;
    let output = admin.app.cli(&["scope", "import", &write(admin.app.dir.path(), "too_long.json", document)], None);
    assert!(!output.status.success());
    let message = String::from_utf8_lossy(&output.stderr);
    assert!(message.contains("accounts > accounts.balance") && message.contains("access_duration_days"), "{message}");
    let parsed: ScopeDocument = serde_json::from_str(document).unwrap();
    let mut connection = admin.app.state.db.get().unwrap();
    let error = admin
        .app
        .state
        .registry
        .import(&mut connection, &parsed.scopes, &scopegate::domain::event::Actor::Cli, chrono::Utc::now())
        .unwrap_err();
    assert_eq!(actix_web::ResponseError::status_code(&error), 400);
    assert!(error.to_string().contains("access_duration_days"), "{error}");
    assert!(!admin.app.state.registry.snapshot().tree.contains("accounts"));
}

#[tokio::test]
async fn unknown_keys_in_a_create_body_are_refused_beside_the_scope_fields() {
    let admin = crate::admin::setup().await;
    for unknown in ["colour", "children"] {
        let body = json!({"name": "statements", "short_description": "Statements", unknown: []});
        let (status, answer) = admin.call(reqwest::Method::POST, "/admin/v1/scopes", Some(body)).await;
        assert_eq!(status, 400, "{answer}");
        assert!(names_the_field(&answer, &format!("unknown field `{unknown}`")), "{answer}");
    }
    let (status, answer) = admin
        .call(
            reqwest::Method::POST,
            "/admin/v1/scopes",
            Some(json!({"name": "statements", "short_description": "Statements", "security_level": "Q"})),
        )
        .await;
    assert_eq!(status, 400, "{answer}");
    assert!(names_the_field(&answer, "security_level"), "{answer}");
    let (status, answer) = admin
        .call(
            reqwest::Method::POST,
            "/admin/v1/scopes",
            Some(json!({"name": "statements", "short_description": "Statements", "parent": "profile", "position": 0,
                "alias": "Your statements", "visibility": "private", "auth_types": ["authorization_code"]})),
        )
        .await;
    assert_eq!(status, 201, "{answer}");
    assert_eq!((answer["parent"].as_str(), answer["alias"].as_str()), (Some("profile"), Some("Your statements")));
    assert_eq!((answer["visibility"].as_str(), answer["security_level"].as_str()), (Some("private"), Some("F")));
}

#[tokio::test]
async fn the_largest_allowed_limits_are_stored_as_answered_and_read_back_by_a_fresh_registry() {
    let admin = crate::admin::setup().await;
    let limits = json!({"access_duration_days": 36500, "max_access_count": 2_147_483_647});
    let mut body = json!({"name": "statements", "short_description": "Statements"});
    body.as_object_mut().unwrap().extend(limits.as_object().unwrap().clone());
    let (status, created) = admin.call(reqwest::Method::POST, "/admin/v1/scopes", Some(body)).await;
    assert_eq!(status, 201, "{created}");
    let (status, edited) = admin.call(reqwest::Method::PATCH, "/admin/v1/scopes/profile", Some(limits.clone())).await;
    assert_eq!(status, 200, "{edited}");
    for answered in [&created, &edited] {
        assert_eq!(
            (&answered["access_duration_days"], &answered["max_access_count"]),
            (&limits["access_duration_days"], &limits["max_access_count"])
        );
    }

    // A new process reading the database: `scope export`.
    let exported = export(&admin.app.settings);
    for name in ["statements", "profile"] {
        let node = exported["scopes"].as_array().unwrap().iter().find(|node| node["name"] == name).unwrap();
        assert_eq!(node["access_duration_days"], 36500, "{node}");
        assert_eq!(node["max_access_count"], 2_147_483_647, "{node}");
    }
    // A new server instance on the same database answers exactly what the first one did.
    let (_, other_dir) = fresh_settings();
    let other = spawn_app_with(admin.app.settings.clone(), other_dir).await;
    assert_eq!(get_scope(&other, &admin.token, "statements").await, created);
    assert_eq!(get_scope(&other, &admin.token, "profile").await, edited);
    // And the registry loaded afresh holds the same tree as the cache that answered.
    let mut connection = admin.app.state.db.get().unwrap();
    assert_eq!(Registry::load(&mut connection).unwrap().snapshot().tree, admin.app.state.registry.snapshot().tree);
}
