use crate::browser_flow::Browser;
use crate::helpers::{cli_json, fresh_settings, run_cli, spawn_app_with, TestClient};
use diesel::prelude::*;
use scopegate::secrets::SecretHasher;
use scopegate::services::users;
use scopegate::storage::clients;
use scopegate::storage::Database;

#[tokio::test]
async fn a_user_and_a_client_made_by_the_cli_survive_a_restart_and_wrong_credentials_fail() {
    let (settings, dir) = fresh_settings();
    let user =
        cli_json(&run_cli(&settings, &["user", "create", "carol", "--password-stdin"], Some("carol-password\n")));
    assert_eq!(user["username"], "carol");
    let client = cli_json(&run_cli(
        &settings,
        &[
            "client",
            "create",
            "--name",
            "Budget App",
            "--redirect-uri",
            "https://budget.example/cb",
            "--security-level",
            "C",
        ],
        None,
    ));
    let client_id = client["client_id"].as_str().unwrap().to_string();
    let secret = client["client_secret"].as_str().unwrap().to_string();
    assert!(secret.len() >= 43, "a 256-bit secret");
    assert_eq!(client["security_level"], "C");
    assert_eq!(client["confidential"], true);

    // A server started on the same database sees them: the client gets a token with its
    // secret, and the user signs in with her password.
    let app = spawn_app_with(settings.clone(), dir).await;
    let cli_client = TestClient { id: client_id.clone(), secret: secret.clone() };
    let token = app.client_credentials(&cli_client, Some("scopegate:admin")).await;
    assert_eq!(token.status(), 400, "a non-admin client cannot get the admin scope");
    app.import_scopes(r#"{"scopes": [{"name": "reports", "short_description": "Reports"}]}"#);
    let token: serde_json::Value = app.client_credentials(&cli_client, Some("reports")).await.json().await.unwrap();
    assert_eq!(token["scope"], "reports", "{token}");
    let browser = Browser::new(&app);
    let signed_in = browser.login("carol", "carol-password", "/account").await;
    assert_eq!(signed_in.status(), 303);
    assert_eq!(signed_in.headers().get("location").unwrap(), "/account");
    let refused = Browser::new(&app).login("carol", "carol-passwore", "/account").await;
    assert_eq!(refused.status(), 401);

    let db = Database::connect(&settings.database_url, 1).unwrap();
    let hasher = SecretHasher::load_or_create(&settings.keys_dir).unwrap();
    let mut connection = db.get().unwrap();
    let mut check = |username: &str, password: &str| {
        let stored = scopegate::storage::users::find_with_password(&mut connection, username).unwrap();
        users::check_password(stored, password)
    };
    assert!(check("carol", "carol-password").is_some());
    assert!(check("carol", "carol-passwore").is_none());
    assert!(check("nobody", "carol-password").is_none());
    let mut secret_matches =
        |client_id: &str, secret: &str| match clients::find_with_secret(&mut connection, client_id).unwrap() {
            Some((_, Some(hash))) => hasher.verify(secret, &hash),
            _ => false,
        };
    assert!(secret_matches(&client_id, &secret));
    assert!(!secret_matches(&client_id, "wrong"));
    assert!(!secret_matches("c_unknown", &secret));

    // Neither the password nor the secret is stored in a recoverable form.
    use scopegate::storage::schema::{clients as clients_table, users as users_table};
    let password_hash: String = users_table::table
        .filter(users_table::username.eq("carol"))
        .select(users_table::password_hash)
        .first(&mut connection)
        .unwrap();
    assert!(password_hash.starts_with("$argon2id$"), "{password_hash}");
    assert!(!password_hash.contains("carol-password"));
    let secret_hash: Option<String> =
        clients_table::table.find(&client_id).select(clients_table::secret_hash).first(&mut connection).unwrap();
    let secret_hash = secret_hash.unwrap();
    assert_ne!(secret_hash, secret);
    assert!(!secret_hash.contains(&secret));
    assert_eq!(secret_hash.len(), 64, "an HMAC-SHA-256 in hex");
}

#[tokio::test]
async fn a_duplicate_username_is_refused_with_a_clear_message() {
    let (settings, _dir) = fresh_settings();
    cli_json(&run_cli(&settings, &["user", "create", "dave", "--password-stdin"], Some("dave-password")));
    let again = run_cli(&settings, &["user", "create", "dave", "--password-stdin"], Some("dave-password"));
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("already exists"));
}

#[tokio::test]
async fn client_create_refuses_bad_flags_naming_the_problem() {
    let (settings, _dir) = fresh_settings();
    let bad_level = run_cli(&settings, &["client", "create", "--name", "x", "--security-level", "Z"], None);
    assert!(!bad_level.status.success());
    assert!(String::from_utf8_lossy(&bad_level.stderr).contains("security level"));

    let public_cc = run_cli(
        &settings,
        &["client", "create", "--name", "x", "--public", "--grant-type", "client_credentials"],
        None,
    );
    assert!(!public_cc.status.success());
    assert!(String::from_utf8_lossy(&public_cc.stderr).contains("grant_types"));

    let unknown_scope = run_cli(&settings, &["client", "create", "--name", "x", "--scope", "no.such.scope"], None);
    assert!(!unknown_scope.status.success());
    assert!(String::from_utf8_lossy(&unknown_scope.stderr).contains("no.such.scope"));
}

/// SPEC Part 2: the CLI applies the same redirect-URI policy as the admin API: a refused URI
/// is a non-zero exit with a message naming it and the rule, and no client is stored.
#[tokio::test]
async fn the_cli_refuses_a_redirect_uri_outside_the_policy_and_stores_nothing() {
    let (settings, _dir) = fresh_settings();
    for (uri, public, rule) in [
        ("http://budget.example/cb", false, "must use https"),
        ("https://budget.example/cb#x", false, "fragment"),
        ("https://budget.example/*", false, "wildcard"),
        ("com.example.budget:/cb", false, "public"),
        ("javascript:alert(1)", true, "scheme"),
    ] {
        let mut args = vec!["client", "create", "--name", "Budget", "--redirect-uri", uri];
        if public {
            args.push("--public");
        }
        let output = run_cli(&settings, &args, None);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "{uri} was accepted");
        assert!(stderr.contains(uri) && stderr.contains(rule), "{uri}: {stderr}");
        assert!(output.stdout.is_empty(), "{uri}");
    }
    let db = Database::connect(&settings.database_url, 1).unwrap();
    assert!(clients::list(&mut db.get().unwrap()).unwrap().is_empty());
    let loopback = cli_json(&run_cli(
        &settings,
        &["client", "create", "--name", "Budget", "--redirect-uri", "http://127.0.0.1:8400/cb"],
        None,
    ));
    assert_eq!(loopback["redirect_uris"], serde_json::json!(["http://127.0.0.1:8400/cb"]));
}

#[tokio::test]
async fn a_public_client_gets_no_secret_and_an_admin_client_gets_the_admin_scope() {
    let (settings, _dir) = fresh_settings();
    let public = cli_json(&run_cli(
        &settings,
        &["client", "create", "--name", "Mobile", "--public", "--redirect-uri", "com.example.app://cb"],
        None,
    ));
    assert!(public.get("client_secret").is_none());
    assert_eq!(public["confidential"], false);

    let admin = cli_json(&run_cli(&settings, &["client", "create", "--name", "Ops", "--admin"], None));
    let db = Database::connect(&settings.database_url, 1).unwrap();
    let assigned =
        scopegate::storage::clients::assignments(&mut db.get().unwrap(), admin["client_id"].as_str().unwrap()).unwrap();
    assert_eq!(assigned.iter().map(|a| a.scope_name.as_str()).collect::<Vec<_>>(), vec!["scopegate:admin"]);
}

#[tokio::test]
async fn an_unknown_config_key_is_an_error_naming_it() {
    let (settings, dir) = fresh_settings();
    let config = dir.path().join("scopegate.toml");
    std::fs::write(&config, "bind = \"127.0.0.1:0\"\nlisten_port = 8080\n").unwrap();
    let output = run_cli(&settings, &["--config", config.to_str().unwrap(), "migrate"], None);
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("listen_port"));
}

#[tokio::test]
async fn migrate_is_idempotent() {
    let (settings, _dir) = fresh_settings();
    let first = cli_json(&run_cli(&settings, &["migrate"], None));
    // The initial schema, consents grouping grants, the scope field bounds, the clients counter,
    // sessions and failed sign-ins, the access tokens' partial indexes, the audit events,
    // administrators and disabled users, the webhooks with their delivery outbox, pushed
    // authorization requests, the FAPI 2.0 client fields with the one-time JWT ids, the
    // per-day access counts, and the parameterised scopes with one grant per value.
    assert_eq!(first["migrations_applied"], 15);
    let second = cli_json(&run_cli(&settings, &["migrate"], None));
    assert_eq!(second["migrations_applied"], 0);
}
