//! Pushed authorization requests (RFC 9126, issue 14): `/par` checks and stores the request,
//! `/authorize` uses its `request_uri` once, on any instance, within 60 s.

use crate::browser_flow::{approve, authorize_path, exchange, location, query_of, setup, Browser, REDIRECT};
use crate::helpers::{spawn_app_in_the_future, TestApp, TestClient};
use serde_json::Value;

const PREFIX: &str = "urn:ietf:params:oauth:request_uri:";

/// The authorization parameters the browser flow sends, as a `/par` body.
fn pushed_body(client: &TestClient, scope: &str) -> Vec<(String, String)> {
    let path = authorize_path(client, Some(scope), &[]);
    url::form_urlencoded::parse(path.trim_start_matches("/authorize?").as_bytes()).into_owned().collect()
}

async fn push(app: &TestApp, client: Option<&TestClient>, body: &[(String, String)]) -> (u16, Value) {
    let body: Vec<(&str, &str)> = body.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let response = app.post_form("/par", client, &body).await;
    let status = response.status().as_u16();
    assert_eq!(response.headers().get("cache-control").map(|v| v.to_str().unwrap()), Some("no-store"));
    (status, response.json().await.unwrap_or(Value::Null))
}

fn authorize_with(client: &TestClient, request_uri: &str) -> String {
    let query = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("client_id", &client.id)
        .append_pair("request_uri", request_uri)
        .finish();
    format!("/authorize?{query}")
}

#[tokio::test]
async fn a_pushed_request_runs_the_code_flow_once_through_login_and_consent() {
    let (app, client) = setup().await;
    let (status, pushed) = push(&app, Some(&client), &pushed_body(&client, "accounts")).await;
    assert_eq!(status, 201, "{pushed}");
    let request_uri = pushed["request_uri"].as_str().unwrap().to_string();
    assert!(request_uri.starts_with(PREFIX), "{request_uri}");
    assert_eq!(pushed["expires_in"], 60);

    let alice = Browser::new(&app);
    let first = alice.get(&authorize_with(&client, &request_uri)).await;
    let login = location(&first);
    assert!(login.starts_with("/login?next="), "{login}");
    let next = query_of(&format!("http://x{login}"))["next"].clone();
    assert!(!next.contains("code_challenge"), "the pushed parameters stay off the front channel: {next}");
    let back = location(&alice.login("alice", "alice-password", &next).await);
    let consent = alice.get(&back).await;
    assert_eq!(consent.status(), 200, "the request survived the trip through /login");
    let answer = approve(&alice, &consent.text().await.unwrap(), None).await;
    assert_eq!(answer["state"], "xyz");
    let tokens: Value = exchange(&app, &client, &answer["code"]).await.json().await.unwrap();
    assert!(tokens["access_token"].is_string(), "{tokens}");

    let again = alice.get(&authorize_with(&client, &request_uri)).await;
    assert_eq!(again.status(), 400, "used once");
    assert!(again.text().await.unwrap().contains("already used"));
}

#[tokio::test]
async fn par_refuses_what_authorize_would_and_what_it_cannot_trust() {
    let (app, client) = setup().await;
    let with = |changes: &[(&str, &str)]| {
        let mut body = pushed_body(&client, "accounts");
        for (key, value) in changes {
            body.retain(|(k, _)| k != key);
            if !value.is_empty() {
                body.push((key.to_string(), value.to_string()));
            }
        }
        body
    };
    for (changes, status, error) in [
        (vec![("redirect_uri", "https://evil.example/cb")], 400, "invalid_request"),
        (vec![("request_uri", "urn:ietf:params:oauth:request_uri:x")], 400, "invalid_request"),
        (vec![("code_challenge", "")], 400, "invalid_request"),
        (vec![("scope", "no.such.scope")], 400, "invalid_scope"),
        (vec![("client_id", "someone-else")], 400, "invalid_request"),
    ] {
        let (got, body) = push(&app, Some(&client), &with(&changes)).await;
        assert_eq!((got, body["error"].as_str()), (status, Some(error)), "{changes:?}: {body}");
    }
    let wrong = TestClient { id: client.id.clone(), secret: "not-the-secret".into() };
    let (got, body) = push(&app, Some(&wrong), &pushed_body(&client, "accounts")).await;
    assert_eq!((got, body["error"].as_str()), (401, Some("invalid_client")), "{body}");
}

#[tokio::test]
async fn a_request_uri_is_refused_to_another_client_and_after_60_seconds_on_any_instance() {
    let (app, client) = setup().await;
    let (_, pushed) = push(&app, Some(&client), &pushed_body(&client, "accounts")).await;
    let request_uri = pushed["request_uri"].as_str().unwrap();
    let other = app.create_client(
        scopegate::domain::client::ClientRegistration {
            name: "Other".into(),
            redirect_uris: vec![REDIRECT.into()],
            ..Default::default()
        },
        &[],
    );
    let alice = Browser::new(&app);
    let _ = alice.get(&authorize_path(&client, Some("profile"), &[])).await;
    let signed_in = alice.login("alice", "alice-password", "/account").await;
    assert_eq!(location(&signed_in), "/account");
    let refused = alice.get(&authorize_with(&other, request_uri)).await;
    assert_eq!(refused.status(), 400);
    assert!(refused.text().await.unwrap().contains("another client"));
    let refused = alice
        .get(&format!(
            "/authorize?request_uri={}",
            url::form_urlencoded::byte_serialize(request_uri.as_bytes()).collect::<String>()
        ))
        .await;
    assert_eq!(refused.status(), 400, "no client_id");

    // Refused to another client and without a client_id, it was not used up.
    let fresh = alice.get(&authorize_with(&client, request_uri)).await;
    let status = fresh.status();
    assert_eq!(status, 200, "the consent page: {}", fresh.text().await.unwrap());

    // A second instance on the same database, its clock two minutes ahead: expired there.
    let (_, pushed) = push(&app, Some(&client), &pushed_body(&client, "accounts")).await;
    let request_uri = pushed["request_uri"].as_str().unwrap();
    let later = spawn_app_in_the_future(&app.settings, 120).await;
    let browser = Browser::new(&later);
    let _ = browser.login("alice", "alice-password", "/account").await;
    let expired = browser.get(&authorize_with(&client, request_uri)).await;
    assert_eq!(expired.status(), 400, "expired");
    assert!(expired.text().await.unwrap().contains("expired"));
}

#[tokio::test]
async fn metadata_names_the_endpoint_and_the_server_can_require_pushed_requests() {
    let (app, _) = setup().await;
    let metadata: Value = app.get("/.well-known/oauth-authorization-server").await.json().await.unwrap();
    assert_eq!(metadata["pushed_authorization_request_endpoint"], format!("{}/par", app.settings.issuer));
    assert_eq!(metadata["require_pushed_authorization_requests"], false);

    let (mut settings, dir) = crate::helpers::fresh_settings();
    settings.require_pushed_authorization_requests = true;
    let (strict, client) = crate::browser_flow::setup_on(crate::helpers::spawn_app_with(settings, dir).await);
    let metadata: Value = strict.get("/.well-known/oauth-authorization-server").await.json().await.unwrap();
    assert_eq!(metadata["require_pushed_authorization_requests"], true);
    let alice = Browser::new(&strict);
    let plain = alice.get(&authorize_path(&client, Some("accounts"), &[])).await;
    assert_eq!(plain.status(), 400);
    assert!(plain.text().await.unwrap().contains("pushed authorization requests"), "the rule is named");
    let (status, pushed) = push(&strict, Some(&client), &pushed_body(&client, "accounts")).await;
    assert_eq!(status, 201);
    let through_par = alice.get(&authorize_with(&client, pushed["request_uri"].as_str().unwrap())).await;
    assert!(location(&through_par).starts_with("/login"), "a pushed request goes on");
}
