//! SPEC "Entitlement: one rule, used everywhere", black-box: each test here reproduces a
//! defect the four former copies of the rule had, over HTTP against the real server.

use crate::browser_flow::{consent_and_get_code, exchange, hidden, location, query_of, setup, Browser, REDIRECT};
use crate::helpers::{fresh_settings, is_postgres, spawn_app, spawn_app_in_the_future, spawn_app_with, TestApp};
use scopegate::config::Settings;
use scopegate::domain::client::ClientRegistration;
use serde_json::{json, Value};

/// An access token of an admin client, issued by `app` (whose clock may run ahead).
async fn admin_token(app: &TestApp) -> String {
    let admin = app.create_client(ClientRegistration { name: "Ops".into(), admin: true, ..Default::default() }, &[]);
    app.access_token(&admin, Some("scopegate:admin")).await["access_token"].as_str().unwrap().to_string()
}

async fn admin_call(
    app: &TestApp,
    method: reqwest::Method,
    path: &str,
    token: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let mut request = app.http.request(method, app.url(path)).bearer_auth(token);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn a_spent_child_takes_its_parent_out_of_the_effective_scope() {
    let app = spawn_app().await;
    app.import_scopes(
        r#"{"scopes": [{"name": "p", "short_description": "Parent", "children": [
            {"name": "p.c", "short_description": "Counted once", "max_access_count": 1},
            {"name": "p.d", "short_description": "Unlimited sibling"}]}]}"#,
    );
    let client = app.machine_client("F", &[]);
    let bank_api = app.resource_server();
    let token = app.access_token(&client, Some("p")).await["access_token"].as_str().unwrap().to_string();

    let first = app.introspect(&bank_api, &token).await;
    assert_eq!(first["scope"], "p p.c p.d", "{first}");
    assert_eq!(first["scope_limits"]["p.c"]["remaining_accesses"], 0, "this access was the last one");

    // `p` would imply the spent `p.c` to a resource server: it must go with it.
    let second = app.introspect(&bank_api, &token).await;
    assert_eq!(second["active"], true, "{second}");
    assert_eq!(second["scope"], "p.d", "{second}");
    assert!(second["scope_limits"].get("p.c").is_none());

    // A new token for `p` gets only what is left of it.
    let renewed = app.access_token(&client, Some("p")).await;
    assert_eq!(renewed["scope"], "p.d", "{renewed}");
}

#[tokio::test]
async fn revoking_an_app_ends_its_pending_codes_tokens_and_refresh_tokens() {
    let (app, client) = setup().await;
    let browser = Browser::new(&app);
    let answer = consent_and_get_code(&browser, &client, "profile accounts", None).await;
    let tokens: Value = exchange(&app, &client, &answer["code"]).await.json().await.unwrap();
    let refresh_token = tokens["refresh_token"].as_str().unwrap().to_string();

    // Consent is remembered: a second authorization mints a code at once. It is not redeemed
    // before the revoke.
    let pending = query_of(&location(&browser.authorize(&client, Some("profile accounts"), &[]).await));
    assert!(pending.contains_key("code"), "{pending:?}");

    let html = browser.get("/account").await.text().await.unwrap();
    let csrf = hidden(&html, "csrf_token");
    let revoked = browser.post(&format!("/account/apps/{}/revoke", client.id), &[("csrf_token", &csrf)]).await;
    assert_eq!(revoked.status(), 303);

    let late = exchange(&app, &client, &pending["code"]).await;
    assert_eq!(late.status(), 400, "a code minted before the revoke is dead");
    assert_eq!(late.json::<Value>().await.unwrap()["error"], "invalid_grant");

    let refresh = app
        .post_form("/token", Some(&client), &[("grant_type", "refresh_token"), ("refresh_token", &refresh_token)])
        .await;
    assert_eq!(refresh.status(), 400);
    assert_eq!(refresh.json::<Value>().await.unwrap()["error"], "invalid_grant");

    let bank_api = app.resource_server();
    assert_eq!(app.introspect(&bank_api, tokens["access_token"].as_str().unwrap()).await, json!({"active": false}));

    // Nothing is left, so nothing is listed; a new authorization asks again.
    assert!(!browser.get("/account").await.text().await.unwrap().contains("Online Bank"));
    let again = browser.authorize(&client, Some("profile accounts"), &[]).await;
    assert_eq!(again.status(), 200, "the consent page, not a redirect to {REDIRECT}");
}

#[tokio::test]
async fn a_shortened_scope_lapses_old_grants_for_introspection_listing_and_delete_alike() {
    // Access tokens that outlive the test's two days, so introspection has a live token to judge.
    let (settings, dir) = fresh_settings();
    let app = spawn_app_with(Settings { access_token_lifetime_seconds: 5 * 86_400, ..settings }, dir).await;
    app.import_scopes(r#"{"scopes": [{"name": "t", "short_description": "Timed", "access_duration_days": 90}]}"#);
    let client = app.machine_client("F", &[]);
    let bank_api = app.resource_server();
    let issued = app.access_token(&client, Some("t")).await["access_token"].as_str().unwrap().to_string();
    let token = admin_token(&app).await;
    let (status, _) = admin_call(
        &app,
        reqwest::Method::PATCH,
        "/admin/v1/scopes/t",
        &token,
        Some(json!({"access_duration_days": 1})),
    )
    .await;
    assert_eq!(status, 200);
    // Still within the one day: the grant holds the scope.
    let (status, body) = admin_call(&app, reqwest::Method::DELETE, "/admin/v1/scopes/t", &token, None).await;
    assert_eq!((status, body["error"].as_str()), (409, Some("scope_in_use")));

    // Two days later, on an instance whose clock runs ahead, on the same database.
    let later = spawn_app_in_the_future(&app.settings, 2 * 86_400).await;
    assert_eq!(later.introspect(&bank_api, &issued).await, json!({"active": false}), "the grant lapsed after a day");
    let token = admin_token(&later).await;
    let path = format!("/admin/v1/grants?client={}", client.id);
    let (_, listing) = admin_call(&later, reqwest::Method::GET, &path, &token, None).await;
    let grant = listing["grants"].as_array().unwrap().iter().find(|g| g["scope"] == "t").cloned().unwrap();
    assert_eq!(grant["state"], "expired", "{grant}");
    let (status, body) = admin_call(&later, reqwest::Method::DELETE, "/admin/v1/scopes/t", &token, None).await;
    assert_eq!(status, 204, "a lapsed grant does not hold the scope: {body}");
}

#[tokio::test]
async fn a_user_token_loses_a_parent_whose_new_child_she_never_consented_to() {
    let (app, client) = setup().await;
    let browser = Browser::new(&app);
    let answer = consent_and_get_code(&browser, &client, "profile accounts", None).await;
    let tokens: Value = exchange(&app, &client, &answer["code"]).await.json().await.unwrap();
    let access = tokens["access_token"].as_str().unwrap();
    app.import_scopes(
        r#"{"scopes": [{"name": "accounts", "short_description": "Accounts", "security_level": "C", "children": [
            {"name": "accounts.loans", "short_description": "Your loans", "security_level": "C"}]}]}"#,
    );
    let bank_api = app.resource_server();
    let introspected = app.introspect(&bank_api, access).await;
    assert_eq!(introspected["scope"], "accounts.balance accounts.transactions profile", "{introspected}");
    // The next authorization asks about the new child.
    let asked = browser.authorize(&client, Some("profile accounts"), &[]).await;
    assert_eq!(asked.status(), 200);
    assert!(asked.text().await.unwrap().contains("Your loans"));
}

/// A revocation in progress holds its transaction open on its own connection while a refresh
/// arrives (PostgreSQL): the refresh waits, then is refused cleanly (not a 500 from a consent
/// that vanished under it), and nothing it could have issued stays live.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_refresh_racing_a_revocation_waits_and_is_refused() {
    let (app, client) = setup().await;
    let browser = Browser::new(&app);
    let answer = consent_and_get_code(&browser, &client, "profile accounts", None).await;
    let tokens: Value = exchange(&app, &client, &answer["code"]).await.json().await.unwrap();
    let refresh_token = tokens["refresh_token"].as_str().unwrap().to_string();
    let bank_api = app.resource_server();
    let user_id =
        app.introspect(&bank_api, tokens["access_token"].as_str().unwrap()).await["sub"].as_str().unwrap().to_string();

    let refresh = {
        let (http, url, id, secret) = (app.http.clone(), app.url("/token"), client.id.clone(), client.secret.clone());
        move || {
            let (http, url, id, secret, refresh_token) =
                (http.clone(), url.clone(), id.clone(), secret.clone(), refresh_token.clone());
            tokio::spawn(async move {
                let form = [("grant_type", "refresh_token"), ("refresh_token", refresh_token.as_str())];
                http.post(url).basic_auth(id, Some(secret)).form(&form).send().await.unwrap()
            })
        }
    };
    let revoke = {
        let (database_url, client_id) = (app.settings.database_url.clone(), client.id.clone());
        move |locked: std::sync::mpsc::Sender<()>, commit: std::sync::mpsc::Receiver<()>| {
            let database = scopegate::storage::Database::connect(&database_url, 1).unwrap();
            let mut connection = database.get().unwrap();
            scopegate::storage::write_transaction(&mut connection, |connection| {
                scopegate::storage::grants::end_consents(connection, &user_id, &client_id, chrono::Utc::now())?;
                locked.send(()).unwrap();
                commit.recv().unwrap();
                Ok::<_, scopegate::storage::StorageError>(())
            })
            .unwrap();
        }
    };
    let (locked_tx, locked_rx) = std::sync::mpsc::channel();
    let (commit_tx, commit_rx) = std::sync::mpsc::channel::<()>();
    let revocation = std::thread::spawn(move || revoke(locked_tx, commit_rx));
    locked_rx.recv().unwrap();
    let refresh = if is_postgres() {
        // The refresh arrives while the revocation holds its transaction open: it waits for it.
        let refresh = refresh();
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        assert!(!refresh.is_finished(), "the refresh waits for the revocation to commit");
        commit_tx.send(()).unwrap();
        tokio::task::spawn_blocking(move || revocation.join().unwrap()).await.unwrap();
        refresh
    } else {
        // SQLite runs write transactions one at a time, so the race cannot happen; holding the
        // process-wide write gate here would stall every other test's server. The refresh comes
        // right after the revocation instead.
        commit_tx.send(()).unwrap();
        tokio::task::spawn_blocking(move || revocation.join().unwrap()).await.unwrap();
        refresh()
    };
    let response = refresh.await.unwrap();
    let status = response.status();
    let body: Value = response.json().await.unwrap();
    assert_eq!((status.as_u16(), body["error"].as_str()), (400, Some("invalid_grant")), "{body}");
    assert_eq!(app.introspect(&bank_api, tokens["access_token"].as_str().unwrap()).await, json!({"active": false}));
}

#[tokio::test]
async fn a_used_up_grant_still_holds_its_scope_until_it_lapses() {
    let app = spawn_app().await;
    app.import_scopes(r#"{"scopes": [{"name": "q", "short_description": "Quota", "max_access_count": 1}]}"#);
    let client = app.machine_client("F", &[]);
    let bank_api = app.resource_server();
    let token = app.access_token(&client, Some("q")).await["access_token"].as_str().unwrap().to_string();
    app.introspect(&bank_api, &token).await;
    assert_eq!(app.introspect(&bank_api, &token).await, json!({"active": false}), "used up");
    let admin = admin_token(&app).await;
    let (status, body) = admin_call(&app, reqwest::Method::DELETE, "/admin/v1/scopes/q", &admin, None).await;
    assert_eq!((status, body["error"].as_str()), (409, Some("scope_in_use")), "an unexpired grant holds it");
}

#[tokio::test]
async fn a_spent_child_takes_its_parent_out_of_a_users_introspection_and_refresh() {
    let (app, client) = setup().await;
    app.import_scopes(
        r#"{"scopes": [{"name": "accounts", "short_description": "Accounts", "security_level": "C", "children": [
            {"name": "accounts.transactions", "short_description": "Transactions", "security_level": "C", "max_access_count": 1}]}]}"#,
    );
    let browser = Browser::new(&app);
    let answer = consent_and_get_code(&browser, &client, "profile accounts", None).await;
    let tokens: Value = exchange(&app, &client, &answer["code"]).await.json().await.unwrap();
    assert_eq!(tokens["scope"], "accounts accounts.balance accounts.transactions profile");
    let bank_api = app.resource_server();
    let access = tokens["access_token"].as_str().unwrap();
    assert_eq!(
        app.introspect(&bank_api, access).await["scope_limits"]["accounts.transactions"]["remaining_accesses"],
        0
    );
    assert_eq!(app.introspect(&bank_api, access).await["scope"], "accounts.balance profile");
    let refresh_token = tokens["refresh_token"].as_str().unwrap();
    let refreshed: Value = app
        .post_form("/token", Some(&client), &[("grant_type", "refresh_token"), ("refresh_token", refresh_token)])
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(refreshed["scope"], "accounts.balance profile", "{refreshed}");

    // The listings say the same: the parent is held back by its spent child.
    let admin = admin_token(&app).await;
    let path = format!("/admin/v1/grants?client={}", client.id);
    let (_, listing) = admin_call(&app, reqwest::Method::GET, &path, &admin, None).await;
    let state_of = |scope: &str| {
        listing["grants"].as_array().unwrap().iter().find(|g| g["scope"] == scope).unwrap()["state"].clone()
    };
    assert_eq!(state_of("accounts"), "descendant_dropped", "{listing}");
    assert_eq!(state_of("accounts.transactions"), "exhausted");
    assert_eq!(state_of("accounts.balance"), "active");
    let page = browser.get("/account").await.text().await.unwrap();
    assert!(page.contains("Limited: part of it is no longer available") && page.contains("Used up"), "{page}");
}

#[tokio::test]
async fn a_spent_default_scope_is_left_out_of_a_request_that_names_none() {
    let app = spawn_app().await;
    app.import_scopes(
        r#"{"scopes": [
            {"name": "profile", "short_description": "Profile", "default_scope": true},
            {"name": "quota", "short_description": "Quota", "default_scope": true, "max_access_count": 1}]}"#,
    );
    let client = app.machine_client("F", &[]);
    let bank_api = app.resource_server();
    let first = app.access_token(&client, None).await;
    assert_eq!(first["scope"], "profile quota");
    app.introspect(&bank_api, first["access_token"].as_str().unwrap()).await;
    assert_eq!(app.access_token(&client, None).await["scope"], "profile", "the spent default is left out");
    let named = app.client_credentials(&client, Some("quota")).await;
    assert_eq!(named.status(), 400, "asked for by name, the spent scope is refused");
}

#[tokio::test]
async fn a_client_cannot_restart_a_spent_scope_by_sending_the_user_through_authorize() {
    let (app, client) = setup().await;
    // `profile` needs no authorization, and allows one access.
    app.import_scopes(
        r#"{"scopes": [{"name": "profile", "short_description": "Name", "default_scope": true,
            "user_authorization_required": false, "max_access_count": 1}]}"#,
    );
    let browser = Browser::new(&app);
    let answer = consent_and_get_code(&browser, &client, "profile accounts", None).await;
    let tokens: Value = exchange(&app, &client, &answer["code"]).await.json().await.unwrap();
    let access = tokens["access_token"].as_str().unwrap();
    let bank_api = app.resource_server();
    app.introspect(&bank_api, access).await;
    assert!(!app.introspect(&bank_api, access).await["scope"].as_str().unwrap().contains("profile"), "used up");

    // The client sends her browser back without asking her: no page, and no new count.
    let silent =
        query_of(&location(&browser.authorize(&client, Some("profile accounts"), &[("prompt", "none")]).await));
    assert_eq!(silent.get("error").map(String::as_str), Some("consent_required"), "{silent:?}");
    assert!(!app.introspect(&bank_api, access).await["scope"].as_str().unwrap().contains("profile"));
    // Without prompt=none she is asked, and says why.
    let page = browser.authorize(&client, Some("profile accounts"), &[]).await;
    assert_eq!(page.status(), 200);
    assert!(page.text().await.unwrap().contains("accesses of your earlier consent are used"));
}
