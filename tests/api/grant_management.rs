//! Grant Management (issue 15, SPEC "Banking consents"): several grants per user and client,
//! `create` / `merge` / `replace` at authorization, `grant_id` in the token response, and
//! `GET` / `DELETE /grants/{grant_id}` for the client, over real HTTP on both backends.

use crate::browser_flow::{approve, authorize_path, exchange, location, query_of, setup, Browser, REDIRECT};
use crate::fapi::{json_of, post};
use crate::helpers::{TestApp, TestClient};
use crate::jose::{ClientKey, DpopProof};
use serde_json::Value;
use std::collections::HashMap;

/// The two scopes of the Grant Management API, as a bank would add them to its registry.
const API_SCOPES: &str = r#"{"scopes": [
  {"name": "grant_management_query", "short_description": "Read the grants users gave you", "auth_types": ["client_credentials"]},
  {"name": "grant_management_revoke", "short_description": "End the grants users gave you", "auth_types": ["client_credentials"]}
]}"#;

/// Runs /authorize for `scope` with `extra` parameters as alice, through sign-in and the consent
/// page when they come; the answer's query (code or error).
async fn authorize(
    alice: &Browser<'_>,
    client: &TestClient,
    scope: &str,
    extra: &[(&str, &str)],
) -> HashMap<String, String> {
    authorize_as(alice, ("alice", "alice-password"), client, scope, extra).await
}

async fn authorize_as(
    alice: &Browser<'_>,
    (username, password): (&str, &str),
    client: &TestClient,
    scope: &str,
    extra: &[(&str, &str)],
) -> HashMap<String, String> {
    let mut response = alice.get(&authorize_path(client, Some(scope), extra)).await;
    for _ in 0..4 {
        if response.status() == 200 {
            return approve(alice, &response.text().await.unwrap(), None).await;
        }
        let target = location(&response);
        if target.starts_with(REDIRECT) {
            return query_of(&target);
        }
        response = if target.starts_with("/login") {
            let next = query_of(&format!("http://x{target}"))["next"].clone();
            alice.login(username, password, &next).await
        } else {
            alice.get(&target).await
        };
    }
    panic!("the flow went round in circles")
}

async fn tokens(app: &TestApp, client: &TestClient, answer: &HashMap<String, String>) -> Value {
    let response = exchange(app, client, &answer["code"]).await;
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

async fn grant_api(app: &TestApp, method: reqwest::Method, grant_id: &str, token: Option<&str>) -> (u16, Value) {
    let mut request = app.http.request(method, app.url(&format!("/grants/{grant_id}")));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

fn scopes_of(view: &Value) -> Vec<String> {
    let mut scopes: Vec<String> =
        view["scopes"][0]["scope"].as_str().unwrap_or_default().split(' ').map(str::to_string).collect();
    scopes.sort();
    scopes
}

#[tokio::test]
async fn a_user_holds_several_grants_and_merge_and_replace_change_only_the_one_named() {
    let (app, client) = setup().await;
    app.import_scopes(API_SCOPES);
    let alice = Browser::new(&app);

    // The default grant, as without Grant Management; then a second one beside it.
    let first = tokens(&app, &client, &authorize(&alice, &client, "accounts.balance", &[]).await).await;
    let default_grant = first["grant_id"].as_str().expect("grant_id in the token response").to_string();
    let created = authorize(&alice, &client, "accounts.transactions", &[("grant_management_action", "create")]).await;
    let second = tokens(&app, &client, &created).await;
    let new_grant = second["grant_id"].as_str().unwrap().to_string();
    assert_ne!(new_grant, default_grant, "create makes a new grant");
    assert_eq!(second["scope"], "accounts.transactions");

    let query = app.access_token(&client, Some("grant_management_query grant_management_revoke")).await;
    let query = query["access_token"].as_str().unwrap().to_string();
    let (status, view) = grant_api(&app, reqwest::Method::GET, &new_grant, Some(&query)).await;
    assert_eq!(status, 200, "{view}");
    assert_eq!(scopes_of(&view), ["accounts.transactions"]);
    assert!(view["scope_limits"]["accounts.transactions"]["remaining_accesses"].is_u64(), "{view}");
    assert!(view["created_at"].is_string() && view["updated_at"].is_string());

    // Merge adds to the named grant and keeps what it held; the default grant is untouched.
    let merge = [("grant_management_action", "merge"), ("grant_id", new_grant.as_str())];
    let merged = tokens(&app, &client, &authorize(&alice, &client, "accounts.balance", &merge).await).await;
    assert_eq!(merged["grant_id"], new_grant.as_str());
    let (_, view) = grant_api(&app, reqwest::Method::GET, &new_grant, Some(&query)).await;
    assert_eq!(scopes_of(&view), ["accounts.balance", "accounts.transactions"]);
    let (_, default_view) = grant_api(&app, reqwest::Method::GET, &default_grant, Some(&query)).await;
    assert_eq!(scopes_of(&default_view), ["accounts.balance"]);

    // Replace keeps only what it repeats.
    let replace = [("grant_management_action", "replace"), ("grant_id", new_grant.as_str())];
    authorize(&alice, &client, "accounts.balance", &replace).await;
    let (_, view) = grant_api(&app, reqwest::Method::GET, &new_grant, Some(&query)).await;
    assert_eq!(scopes_of(&view), ["accounts.balance"], "{view}");
    let bank = app.resource_server();
    let old_token = second["access_token"].as_str().unwrap();
    assert_eq!(app.introspect(&bank, old_token).await["active"], false, "the replaced scope's token is spent");

    // The account page shows one card per grant.
    let account = alice.get("/account").await.text().await.unwrap();
    assert!(account.contains(&format!("/account/grants/{default_grant}/revoke")), "{account}");
    assert!(account.contains(&format!("/account/grants/{new_grant}/revoke")));
}

#[tokio::test]
async fn the_grant_api_answers_only_the_grants_client_with_the_right_scope_and_delete_ends_the_grant() {
    let (app, client) = setup().await;
    app.import_scopes(API_SCOPES);
    let alice = Browser::new(&app);
    let first = tokens(&app, &client, &authorize(&alice, &client, "accounts.balance", &[]).await).await;
    let grant = first["grant_id"].as_str().unwrap().to_string();
    let created = authorize(&alice, &client, "accounts.transactions", &[("grant_management_action", "create")]).await;
    let other = tokens(&app, &client, &created).await;

    let token = |scope: &'static str| {
        let (app, client) = (&app, &client);
        async move { app.access_token(client, Some(scope)).await["access_token"].as_str().unwrap().to_string() }
    };
    let (query, revoke) = (token("grant_management_query").await, token("grant_management_revoke").await);
    assert_eq!(grant_api(&app, reqwest::Method::GET, &grant, None).await.0, 401);
    assert_eq!(grant_api(&app, reqwest::Method::GET, &grant, Some("not-a-token")).await.0, 401);
    let (status, error) = grant_api(&app, reqwest::Method::GET, &grant, Some(&revoke)).await;
    assert_eq!((status, error["error"].as_str()), (403, Some("insufficient_scope")), "{error}");
    assert_eq!(grant_api(&app, reqwest::Method::DELETE, &grant, Some(&query)).await.0, 403);
    assert_eq!(grant_api(&app, reqwest::Method::GET, "g_unknown", Some(&query)).await.0, 404);
    // A DPoP-bound token (a proof at /token binds it) reads the grant with a proof by its key,
    // and never as a bearer token.
    let key = ClientKey::generate();
    let at = |method: &str, path: &str| {
        DpopProof::new(&key, method, &format!("{}{path}", app.settings.issuer), chrono::Utc::now().timestamp())
    };
    let form = [
        ("grant_type", "client_credentials"),
        ("scope", "grant_management_query"),
        ("client_id", client.id.as_str()),
        ("client_secret", client.secret.as_str()),
    ]
    .map(|(name, value)| (name.to_string(), value.to_string()));
    let (_, bound) = json_of(post(&app, "/token", &form, Some(&at("POST", "/token").build())).await).await;
    assert_eq!(bound["token_type"], "DPoP", "{bound}");
    let bound = bound["access_token"].as_str().unwrap();
    let path = format!("/grants/{grant}");
    let with_proof = app
        .http
        .get(app.url(&path))
        .header("Authorization", format!("DPoP {bound}"))
        .header("DPoP", at("GET", &path).ath_for(bound).build())
        .send()
        .await
        .unwrap();
    assert_eq!(with_proof.status(), 200);
    assert_eq!(grant_api(&app, reqwest::Method::GET, &grant, Some(bound)).await.0, 401, "as a bearer token");
    let stranger = app.machine_client("F", &[]);
    let stranger_token = app.access_token(&stranger, Some("grant_management_query")).await;
    let (status, _) = grant_api(&app, reqwest::Method::GET, &grant, stranger_token["access_token"].as_str()).await;
    assert_eq!(status, 404, "another client's grant is as unknown as a missing one");
    let metadata: Value = app.get("/.well-known/oauth-authorization-server").await.json().await.unwrap();
    assert_eq!(metadata["grant_management_endpoint"], format!("{}/grants", app.settings.issuer));
    assert_eq!(metadata["grant_management_actions_supported"], serde_json::json!(["create", "merge", "replace"]));
    assert_eq!(metadata["grant_management_action_required"], false);

    // DELETE ends this grant's tokens and refresh tokens, and only this grant's.
    let (status, _) = grant_api(&app, reqwest::Method::DELETE, &grant, Some(&revoke)).await;
    assert_eq!(status, 204);
    let bank = app.resource_server();
    assert_eq!(app.introspect(&bank, first["access_token"].as_str().unwrap()).await["active"], false);
    assert_eq!(app.introspect(&bank, other["access_token"].as_str().unwrap()).await["active"], true);
    let refresh = app
        .post_form(
            "/token",
            Some(&client),
            &[("grant_type", "refresh_token"), ("refresh_token", first["refresh_token"].as_str().unwrap())],
        )
        .await;
    assert_eq!(refresh.status(), 400);
    assert_eq!(grant_api(&app, reqwest::Method::GET, &grant, Some(&query)).await.0, 404);
    let events: Value = {
        let admin = app.create_client(
            scopegate::domain::client::ClientRegistration { name: "Ops".into(), admin: true, ..Default::default() },
            &[],
        );
        let admin_token =
            app.access_token(&admin, Some("scopegate:admin")).await["access_token"].as_str().unwrap().to_string();
        let response = app
            .http
            .get(app.url("/admin/v1/events?type=consent.revoked"))
            .bearer_auth(admin_token)
            .send()
            .await
            .unwrap();
        response.json().await.unwrap()
    };
    assert!(events.to_string().contains(&grant), "consent.revoked names the grant: {events}");
}

#[tokio::test]
async fn malformed_grant_requests_and_someone_elses_grant_id_are_refused() {
    let (app, client) = setup().await;
    let alice = Browser::new(&app);
    let first = tokens(&app, &client, &authorize(&alice, &client, "accounts.balance", &[]).await).await;
    let grant = first["grant_id"].as_str().unwrap().to_string();

    let answer = authorize(&alice, &client, "accounts.balance", &[("grant_management_action", "merge")]).await;
    assert_eq!(answer["error"], "invalid_request", "{answer:?}");
    let answer =
        authorize(&alice, &client, "accounts.balance", &[("grant_management_action", "update"), ("grant_id", &grant)])
            .await;
    assert_eq!(answer["error"], "invalid_request");
    let answer = authorize(
        &alice,
        &client,
        "accounts.balance",
        &[("grant_management_action", "merge"), ("grant_id", "g_nobody")],
    )
    .await;
    assert_eq!(answer["error"], "invalid_grant_id", "{answer:?}");

    // bob may not name alice's grant.
    app.cli(&["user", "create", "bob", "--password-stdin"], Some("bob-password"));
    let bob = Browser::new(&app);
    let merge = [("grant_management_action", "merge"), ("grant_id", grant.as_str())];
    let answer = authorize_as(&bob, ("bob", "bob-password"), &client, "accounts.balance", &merge).await;
    assert_eq!(answer["error"], "invalid_grant_id", "{answer:?}");
}

/// The Grant Management parameters travel through PAR like any other.
#[tokio::test]
async fn a_pushed_request_creates_a_grant_too() {
    let (app, client) = setup().await;
    let alice = Browser::new(&app);
    let first = tokens(&app, &client, &authorize(&alice, &client, "accounts.balance", &[]).await).await;
    let path = authorize_path(&client, Some("accounts.balance"), &[("grant_management_action", "create")]);
    let body: Vec<(String, String)> =
        url::form_urlencoded::parse(path.trim_start_matches("/authorize?").as_bytes()).into_owned().collect();
    let body: Vec<(&str, &str)> = body.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let pushed: Value = app.post_form("/par", Some(&client), &body).await.json().await.unwrap();
    let query = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("client_id", &client.id)
        .append_pair("request_uri", pushed["request_uri"].as_str().unwrap())
        .finish();
    let consent = alice.get(&format!("/authorize?{query}")).await;
    assert_eq!(consent.status(), 200, "a new grant asks afresh, though the default one holds the scope");
    let answer = approve(&alice, &consent.text().await.unwrap(), None).await;
    let second = tokens(&app, &client, &answer).await;
    assert_ne!(second["grant_id"], first["grant_id"]);
}
