//! SPEC "Entitlement: one rule, used everywhere", black-box: each test here reproduces a
//! defect the four former copies of the rule had, over HTTP against the real server.

use crate::browser_flow::{consent_and_get_code, exchange, hidden, location, query_of, setup, Browser, REDIRECT};
use crate::helpers::{fresh_settings, spawn_app, spawn_app_in_the_future, spawn_app_with, TestApp};
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
