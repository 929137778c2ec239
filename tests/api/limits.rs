//! Usage limits: access counts exact under concurrency (one and several instances, across a
//! crash) and durations that lapse.

use crate::browser_flow::{self, consent_and_get_code, exchange, hidden, location, query_of, Browser};
use crate::helpers::{spawn_app, spawn_app_in_the_future, ServerProcess, TestApp, TestClient};
use futures_util::future::join_all;
use scopegate::domain::client::ClientRegistration;
use serde_json::Value;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

const METERED: &str = r#"{"scopes": [
  {"name": "profile", "short_description": "Profile", "default_scope": true, "user_authorization_required": false},
  {"name": "metered", "short_description": "Counted", "max_access_count": 5}
]}"#;

async fn metered_token(app: &TestApp, max: u32) -> (TestClient, String) {
    app.import_scopes(&METERED.replace("\"max_access_count\": 5", &format!("\"max_access_count\": {max}")));
    let client = app.machine_client("F", &[]);
    let token = app.access_token(&client, Some("metered profile")).await["access_token"].as_str().unwrap().to_string();
    (client, token)
}

/// Fires `count` introspections at once, round-robin over `servers`; returns how many answers
/// reported `scope`.
pub(crate) async fn concurrent_introspections(
    servers: &[String],
    caller: &TestClient,
    token: &str,
    count: usize,
    scope: &str,
) -> usize {
    let http = reqwest::Client::new();
    let requests = (0..count).map(|i| {
        let url = format!("{}/introspect", servers[i % servers.len()]);
        let http = http.clone();
        let (id, secret, token) = (caller.id.clone(), caller.secret.clone(), token.to_string());
        tokio::spawn(async move {
            let response = http.post(url).basic_auth(id, Some(secret)).form(&[("token", token)]).send().await.unwrap();
            assert_eq!(response.status(), 200);
            response.json::<Value>().await.unwrap()
        })
    });
    let answers = join_all(requests).await;
    answers
        .into_iter()
        .map(|answer| answer.unwrap())
        .filter(|body| body["scope"].as_str().is_some_and(|s| s.split(' ').any(|name| name == scope)))
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn exactly_max_access_count_of_200_concurrent_introspections_report_the_scope() {
    let app = spawn_app().await;
    let (_, token) = metered_token(&app, 5).await;
    let bank_api = app.resource_server();
    let reported =
        concurrent_introspections(std::slice::from_ref(&app.address), &bank_api, &token, 200, "metered").await;
    assert_eq!(reported, 5);
    // The token stays active for its unlimited scope; the exhausted one is gone for good.
    let after = app.introspect(&bank_api, &token).await;
    assert_eq!(after["scope"], "profile");
    assert!(after["scope_limits"].get("metered").is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_server_processes_on_one_database_count_exactly_together() {
    let app = spawn_app().await;
    let (_, token) = metered_token(&app, 37).await;
    let bank_api = app.resource_server();
    let first = ServerProcess::start(&app.settings).await;
    let second = ServerProcess::start(&app.settings).await;
    let servers = [first.url.clone(), second.url.clone()];
    let reported = concurrent_introspections(&servers, &bank_api, &token, 500, "metered").await;
    assert_eq!(reported, 37);
}

#[tokio::test]
async fn a_token_whose_scopes_are_all_used_up_introspects_inactive() {
    let app = spawn_app().await;
    app.import_scopes(METERED);
    let client = app.machine_client("F", &[]);
    let token = app.access_token(&client, Some("metered")).await["access_token"].as_str().unwrap().to_string();
    let bank_api = app.resource_server();
    for remaining in (0..5).rev() {
        let body = app.introspect(&bank_api, &token).await;
        assert_eq!(body["scope_limits"]["metered"]["remaining_accesses"], remaining);
    }
    assert_eq!(app.introspect(&bank_api, &token).await, serde_json::json!({"active": false}));
}

#[tokio::test]
async fn a_used_up_client_credentials_scope_returns_only_after_an_admin_assigns_it_again() {
    let app = spawn_app().await;
    app.import_scopes(
        r#"{"scopes": [{"name": "reports", "short_description": "Reports", "visibility": "private", "max_access_count": 2}]}"#,
    );
    let client = app.machine_client("F", &["reports"]);
    let bank_api = app.resource_server();
    let token = app.access_token(&client, Some("reports")).await["access_token"].as_str().unwrap().to_string();
    app.introspect(&bank_api, &token).await;
    app.introspect(&bank_api, &token).await;
    assert_eq!(app.introspect(&bank_api, &token).await["active"], false);
    let refused = app.client_credentials(&client, Some("reports")).await;
    assert_eq!(refused.status(), 400);
    assert_eq!(refused.json::<Value>().await.unwrap()["error"], "invalid_scope");

    let admin = app.create_client(ClientRegistration { name: "Ops".into(), admin: true, ..Default::default() }, &[]);
    let admin_token =
        app.access_token(&admin, Some("scopegate:admin")).await["access_token"].as_str().unwrap().to_string();
    let renewed = app
        .http
        .put(app.url(&format!("/admin/v1/clients/{}/scopes", client.id)))
        .bearer_auth(admin_token)
        .json(&serde_json::json!({"scopes": ["reports"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(renewed.status(), 200);
    let token = app.access_token(&client, Some("reports")).await["access_token"].as_str().unwrap().to_string();
    assert_eq!(app.introspect(&bank_api, &token).await["scope_limits"]["reports"]["remaining_accesses"], 1);
}

#[tokio::test]
async fn after_its_days_a_scope_is_gone_from_introspection_and_refresh_and_consent_is_asked_again() {
    // Refresh tokens outlive the 90 days here, so refresh itself is what drops the scope.
    let (mut settings, dir) = crate::helpers::fresh_settings();
    settings.refresh_token_lifetime_seconds = 365 * 24 * 3600;
    let (app, client) = browser_flow::setup_on(crate::helpers::spawn_app_with(settings, dir).await);
    let browser = Browser::new(&app);
    let answer = consent_and_get_code(&browser, &client, "profile accounts", None).await;
    let tokens: Value = exchange(&app, &client, &answer["code"]).await.json().await.unwrap();
    let bank_api = app.resource_server();

    // The same installation, 91 days later (accounts.balance allows 90).
    let later = spawn_app_in_the_future(&app.settings, 91 * 24 * 3600).await;
    let refreshed = later
        .post_form(
            "/token",
            Some(&client),
            &[("grant_type", "refresh_token"), ("refresh_token", tokens["refresh_token"].as_str().unwrap())],
        )
        .await;
    assert_eq!(refreshed.status(), 200);
    let refreshed: Value = refreshed.json().await.unwrap();
    let scope = refreshed["scope"].as_str().unwrap();
    assert!(!scope.contains("accounts.balance") && scope.contains("accounts.transactions"), "{scope}");
    let introspected = later.introspect(&bank_api, refreshed["access_token"].as_str().unwrap()).await;
    assert!(!introspected["scope"].as_str().unwrap().contains("accounts.balance"), "{introspected}");

    // The next authorization asks again, saying why.
    let browser_later = Browser::new(&later);
    let first = browser_later.authorize(&client, Some("accounts"), &[]).await;
    let next = query_of(&format!("http://x{}", location(&first)))["next"].clone();
    let after_login = browser_later.login("alice", "alice-password", &next).await;
    let page = browser_later.get(&location(&after_login)).await;
    assert_eq!(page.status(), 200, "the consent page is shown again");
    let html = page.text().await.unwrap();
    assert!(html.contains("expired"), "{html}");
    let _ = hidden(&html, "consent_token");
}

#[tokio::test]
async fn exhaustion_then_a_new_consent_restores_the_scope_with_a_fresh_count() {
    let (app, client) = browser_flow::setup().await;
    app.import_scopes(
        r#"{"scopes": [{"name": "accounts", "short_description": "Accounts", "security_level": "C", "children": [
            {"name": "accounts.transactions", "short_description": "Transactions", "security_level": "C", "max_access_count": 2}]}]}"#,
    );
    let browser = Browser::new(&app);
    let answer = consent_and_get_code(&browser, &client, "accounts.transactions", None).await;
    let tokens: Value = exchange(&app, &client, &answer["code"]).await.json().await.unwrap();
    let access = tokens["access_token"].as_str().unwrap();
    let bank_api = app.resource_server();
    app.introspect(&bank_api, access).await;
    app.introspect(&bank_api, access).await;
    assert_eq!(app.introspect(&bank_api, access).await["active"], false);

    // Refresh with nothing usable left fails.
    let refresh = app
        .post_form(
            "/token",
            Some(&client),
            &[("grant_type", "refresh_token"), ("refresh_token", tokens["refresh_token"].as_str().unwrap())],
        )
        .await;
    assert_eq!(refresh.json::<Value>().await.unwrap()["error"], "invalid_grant");

    // The user is asked again, consents, and the count starts anew.
    let again = browser.authorize(&client, Some("accounts.transactions"), &[]).await;
    assert_eq!(again.status(), 200, "consent page, not a silent code");
    let html = again.text().await.unwrap();
    assert!(html.contains("used"), "the page says the accesses are used up: {html}");
    let answer = browser_flow::approve(&browser, &html, None).await;
    let tokens: Value = exchange(&app, &client, &answer["code"]).await.json().await.unwrap();
    let body = app.introspect(&bank_api, tokens["access_token"].as_str().unwrap()).await;
    assert_eq!(body["scope_limits"]["accounts.transactions"]["remaining_accesses"], 1);
}

#[tokio::test]
async fn refresh_after_exhaustion_carries_only_the_remaining_scopes() {
    let (app, client) = browser_flow::setup().await;
    app.import_scopes(
        r#"{"scopes": [{"name": "accounts", "short_description": "Accounts", "security_level": "C", "children": [
            {"name": "accounts.balance", "short_description": "Balance", "security_level": "C"},
            {"name": "accounts.transactions", "short_description": "Transactions", "security_level": "C", "max_access_count": 1}]}]}"#,
    );
    let browser = Browser::new(&app);
    let answer = consent_and_get_code(&browser, &client, "accounts.balance accounts.transactions", None).await;
    let tokens: Value = exchange(&app, &client, &answer["code"]).await.json().await.unwrap();
    let bank_api = app.resource_server();
    let body = app.introspect(&bank_api, tokens["access_token"].as_str().unwrap()).await;
    assert_eq!(body["scope"], "accounts.balance accounts.transactions");
    let refreshed: Value = app
        .post_form(
            "/token",
            Some(&client),
            &[("grant_type", "refresh_token"), ("refresh_token", tokens["refresh_token"].as_str().unwrap())],
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(refreshed["scope"], "accounts.balance", "{refreshed}");
}

/// kill -9 during counted introspections: every answer that reported the scope is in the
/// stored count; the count exceeds the answers only by requests in flight; never the limit.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_crash_loses_no_counted_access_and_never_exceeds_the_limit() {
    let app = spawn_app().await;
    let max = 400;
    let (client, token) = metered_token(&app, max).await;
    let bank_api = app.resource_server();
    let mut server = ServerProcess::start(&app.settings).await;
    let answered = Arc::new(AtomicUsize::new(0));
    let failed = Arc::new(AtomicUsize::new(0));
    let http = reqwest::Client::new();
    let workers: Vec<_> = (0..16)
        .map(|_| {
            let (http, url, answered, failed) =
                (http.clone(), format!("{}/introspect", server.url), answered.clone(), failed.clone());
            let (id, secret, token) = (bank_api.id.clone(), bank_api.secret.clone(), token.clone());
            tokio::spawn(async move {
                for _ in 0..200 {
                    let sent = http.post(&url).basic_auth(&id, Some(&secret)).form(&[("token", &token)]).send().await;
                    match sent {
                        Ok(response) => match response.json::<Value>().await {
                            Ok(body) if body["scope"].as_str().is_some_and(|s| s.contains("metered")) => {
                                answered.fetch_add(1, Ordering::SeqCst);
                            }
                            Ok(_) => {}
                            Err(_) => {
                                failed.fetch_add(1, Ordering::SeqCst);
                                return;
                            }
                        },
                        Err(_) => {
                            failed.fetch_add(1, Ordering::SeqCst);
                            return;
                        }
                    }
                }
            })
        })
        .collect();
    // Let the load run, then crash the server mid-flight.
    while answered.load(Ordering::SeqCst) < 150 {
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    server.kill_hard();
    join_all(workers).await;
    let answered = answered.load(Ordering::SeqCst);
    let in_flight = failed.load(Ordering::SeqCst);

    // Restart on the same database and read the stored count.
    let restarted = ServerProcess::start(&app.settings).await;
    let grants = scopegate::storage::grants::list(&mut app.state.db.get().unwrap(), None, Some(&client.id)).unwrap();
    let stored = grants.iter().find(|(_, g)| g.scope_name == "metered").unwrap().1.access_count as usize;
    eprintln!("answered {answered}, in flight at the kill {in_flight}, stored {stored}");
    assert!(answered >= 150);
    assert!(stored >= answered, "a counted answer was lost: stored {stored} < answered {answered}");
    assert!(stored <= answered + in_flight, "stored {stored} > answered {answered} + in flight {in_flight}");
    assert!(stored <= max as usize);
    // The restarted server goes on counting from the stored value up to the limit exactly.
    let rest =
        concurrent_introspections(std::slice::from_ref(&restarted.url), &bank_api, &token, max as usize, "metered")
            .await;
    assert_eq!(stored + rest, max as usize);
}
