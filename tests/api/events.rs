//! Audit events (issue 13): every change and decision the SPEC lists is recorded with its actor,
//! in the transaction of the change (a refused change records nothing), and `GET
//! /admin/v1/events` filters and pages them, newest first.

use crate::admin::{setup, Admin};
use crate::browser_flow::{self, consent_and_get_code, exchange, hidden, Browser, REDIRECT};
use reqwest::Method;
use scopegate::domain::client::ClientRegistration;
use serde_json::{json, Value};

async fn events(admin: &Admin, query: &str) -> Vec<Value> {
    let (status, page) = admin.call(Method::GET, &format!("/admin/v1/events?{query}"), None).await;
    assert_eq!(status, 200, "{page}");
    page["events"].as_array().unwrap().clone()
}

fn types(events: &[Value]) -> Vec<&str> {
    events.iter().map(|event| event["type"].as_str().unwrap()).collect()
}

#[tokio::test]
async fn admin_changes_are_recorded_with_the_admin_client_as_actor_and_refused_ones_are_not() {
    let admin = setup().await;
    let admin_actor = {
        let (_, clients) = admin.call(Method::GET, "/admin/v1/clients", None).await;
        let ops = clients["clients"].as_array().unwrap().iter().find(|c| c["name"] == "Ops").unwrap().clone();
        format!("client:{}", ops["client_id"].as_str().unwrap())
    };
    let calls = [
        (
            Method::POST,
            "/admin/v1/scopes",
            Some(json!({"name": "accounts", "short_description": "Accounts", "security_level": "C"})),
        ),
        (
            Method::POST,
            "/admin/v1/scopes",
            Some(json!({"name": "accounts.balance", "short_description": "Balance", "parent": "accounts"})),
        ),
        (Method::PATCH, "/admin/v1/scopes/accounts.balance", Some(json!({"alias": "Balances", "max_access_count": 3}))),
        (Method::POST, "/admin/v1/scopes/accounts.balance/move", Some(json!({"parent": null}))),
    ];
    for (method, path, body) in calls {
        let (status, answer) = admin.call(method.clone(), path, body).await;
        assert!(status < 300, "{method} {path}: {status} {answer}");
    }
    let (status, created) =
        admin.call(Method::POST, "/admin/v1/clients", Some(json!({"name": "Budget app", "security_level": "C"}))).await;
    assert_eq!(status, 201, "{created}");
    let client_id = created["client_id"].as_str().unwrap().to_string();
    let (status, _) = admin
        .call(Method::PUT, &format!("/admin/v1/clients/{client_id}/scopes"), Some(json!({"scopes": ["accounts"]})))
        .await;
    assert_eq!(status, 200);
    let (status, _) =
        admin.call(Method::PATCH, &format!("/admin/v1/clients/{client_id}"), Some(json!({"name": "Budget"}))).await;
    assert_eq!(status, 200);
    // Refused: the scope is assigned (409), the level would drop below an assigned scope (400).
    let (status, _) = admin.call(Method::DELETE, "/admin/v1/scopes/accounts", None).await;
    assert_eq!(status, 409);
    let (status, _) = admin
        .call(Method::PATCH, &format!("/admin/v1/clients/{client_id}"), Some(json!({"security_level": "F"})))
        .await;
    assert_eq!(status, 400);
    let (status, _) = admin.call(Method::DELETE, &format!("/admin/v1/clients/{client_id}"), None).await;
    assert_eq!(status, 204);
    let (status, _) = admin.call(Method::DELETE, "/admin/v1/scopes/accounts", None).await;
    assert_eq!(status, 204);

    let recorded = events(&admin, "limit=50").await;
    let mine: Vec<&Value> = recorded.iter().filter(|event| event["actor"] == admin_actor.as_str()).collect();
    let kinds: Vec<&str> = mine.iter().rev().map(|event| event["type"].as_str().unwrap()).collect();
    assert_eq!(
        kinds,
        [
            "scope.created",
            "scope.created",
            "scope.updated",
            "scope.moved",
            "client.created",
            "client.scopes_assigned",
            "client.updated",
            "client.deleted",
            "scope.deleted"
        ],
        "oldest first here; refused changes left no event"
    );
    let updated = mine.iter().find(|event| event["type"] == "scope.updated").unwrap();
    assert_eq!(updated["scope"], "accounts.balance");
    assert_eq!(updated["detail"]["changed"]["alias"], json!({"from": null, "to": "Balances"}));
    assert_eq!(updated["detail"]["changed"]["max_access_count"], json!({"from": 0, "to": 3}));
    let moved = mine.iter().find(|event| event["type"] == "scope.moved").unwrap();
    assert_eq!(moved["detail"]["from"]["parent"], "accounts");
    assert_eq!(moved["detail"]["to"]["parent"], Value::Null);
    let renamed = mine.iter().find(|event| event["type"] == "client.updated").unwrap();
    assert_eq!(renamed["client_id"], client_id.as_str());
    assert_eq!(renamed["detail"]["changed"]["name"], json!({"from": "Budget app", "to": "Budget"}));
    let deleted = mine.iter().find(|event| event["type"] == "scope.deleted").unwrap();
    assert_eq!(deleted["detail"]["removed"], json!(["accounts"]));
    for event in &mine {
        assert!(event["id"].as_i64().unwrap() > 0 && event["at"].as_str().unwrap().ends_with('Z'), "{event}");
    }
}

#[tokio::test]
async fn consents_revocations_reuse_and_exhaustion_are_recorded_with_their_actor() {
    let admin = setup().await;
    let app = &admin.app;
    app.import_scopes(&browser_flow::TREE.replace("\"max_access_count\": 100", "\"max_access_count\": 3"));
    let client = app.create_client(
        ClientRegistration {
            name: "Online Bank".into(),
            redirect_uris: vec![REDIRECT.into()],
            security_level: Some("C".parse().unwrap()),
            ..Default::default()
        },
        &["profile", "accounts"],
    );
    app.cli(&["user", "create", "alice", "--password-stdin"], Some("alice-password"));
    // Alice denies once, then approves.
    let browser = Browser::new(app);
    let login = browser.login("alice", "alice-password", "/account").await;
    assert_eq!(login.status(), 303);
    let page = browser.authorize(&client, Some("accounts"), &[]).await;
    let html = page.text().await.unwrap();
    let denied = browser
        .post(
            "/authorize/consent",
            &[
                ("csrf_token", &hidden(&html, "csrf_token")),
                ("consent_token", &hidden(&html, "consent_token")),
                ("decision", "deny"),
            ],
        )
        .await;
    assert_eq!(denied.status(), 303);
    let browser = Browser::new(app);
    let answer = consent_and_get_code(&browser, &client, "accounts", None).await;
    let tokens: Value = exchange(app, &client, &answer["code"]).await.json().await.unwrap();
    // The transactions scope allows 3 accesses: the third introspection takes the last one.
    let bank_api = app.resource_server();
    let access = tokens["access_token"].as_str().unwrap();
    for _ in 0..3 {
        assert_eq!(app.introspect(&bank_api, access).await["active"], true);
    }
    // A refresh, then the spent refresh token again: reuse.
    let refresh = |token: String| {
        let (app, client) = (app, &client);
        async move {
            app.post_form("/token", Some(client), &[("grant_type", "refresh_token"), ("refresh_token", &token)]).await
        }
    };
    let first_refresh = tokens["refresh_token"].as_str().unwrap().to_string();
    assert_eq!(refresh(first_refresh.clone()).await.status(), 200);
    assert_eq!(refresh(first_refresh).await.status(), 400);
    // The client revokes a token of its own; alice withdraws the app.
    let machine = app.machine_client("F", &[]);
    let own = app.access_token(&machine, None).await["access_token"].as_str().unwrap().to_string();
    assert_eq!(app.post_form("/revoke", Some(&machine), &[("token", &own)]).await.status(), 200);
    let html = browser.get("/account").await.text().await.unwrap();
    let revoked = browser
        .post(&format!("/account/apps/{}/revoke", client.id), &[("csrf_token", &hidden(&html, "csrf_token"))])
        .await;
    assert_eq!(revoked.status(), 303);

    // A wrong password, then her account is deleted by the administrator.
    let stranger = Browser::new(app);
    assert_eq!(stranger.login("alice", "not-her-password", "/account").await.status(), 401);
    assert_eq!(admin.call(Method::DELETE, "/admin/v1/users/alice", None).await.0, 204);

    let alice = events(&admin, "username=alice").await;
    assert_eq!(
        types(&alice),
        [
            "user.deleted",
            "login.failed",
            "consent.revoked",
            "grant.exhausted",
            "consent.granted",
            "login.succeeded",
            "consent.denied",
            "login.succeeded",
            "user.created"
        ]
    );
    assert_eq!(alice.last().unwrap()["actor"], "cli");
    assert!(alice[0]["actor"].as_str().unwrap().starts_with("client:"), "the admin client deleted her");
    assert_eq!(alice[1]["actor"], "user:alice");
    assert_eq!(alice[1]["detail"]["ip"], "127.0.0.1");
    assert!(!alice[1].to_string().contains("not-her-password"), "never the password: {}", alice[1]);
    let alice: Vec<Value> = alice.into_iter().filter(|event| !event["client_id"].is_null()).collect();
    assert_eq!(types(&alice), ["consent.revoked", "grant.exhausted", "consent.granted", "consent.denied"]);
    assert!(alice.iter().all(|event| event["client_id"] == client.id.as_str()));
    for event in alice.iter().filter(|event| event["type"].as_str().unwrap().starts_with("consent.")) {
        assert_eq!(event["actor"], "user:alice", "{event}");
    }
    let exhausted = &alice[1];
    assert_eq!(
        (exhausted["actor"].as_str(), exhausted["scope"].as_str()),
        (Some("system"), Some("accounts.transactions"))
    );
    let granted = &alice[2];
    assert!(granted["detail"]["scopes"].as_array().unwrap().contains(&json!("accounts.balance")), "{granted}");

    let reuse = events(&admin, "type=refresh.reuse_detected").await;
    assert_eq!(reuse.len(), 1);
    assert_eq!(reuse[0]["client_id"], client.id.as_str());
    let revocations = events(&admin, &format!("type=token.revoked&client_id={}", machine.id)).await;
    assert_eq!(revocations.len(), 1);
    assert_eq!(revocations[0]["actor"], format!("client:{}", machine.id));
    assert_eq!(revocations[0]["detail"]["token_type"], "access_token");
}

#[tokio::test]
async fn events_page_newest_first_with_a_cursor_and_bad_queries_are_a_400() {
    let admin = setup().await;
    for n in 0..7 {
        let body = json!({"name": format!("s{n}"), "short_description": "S"});
        assert_eq!(admin.call(Method::POST, "/admin/v1/scopes", Some(body)).await.0, 201);
    }
    let mut seen = Vec::new();
    let mut query = "type=scope.created&limit=3".to_string();
    loop {
        let (status, page) = admin.call(Method::GET, &format!("/admin/v1/events?{query}"), None).await;
        assert_eq!(status, 200);
        let names: Vec<String> =
            page["events"].as_array().unwrap().iter().map(|e| e["scope"].as_str().unwrap().to_string()).collect();
        assert!(names.len() <= 3);
        seen.extend(names);
        match page["next_cursor"].as_str() {
            Some(cursor) => query = format!("type=scope.created&limit=3&cursor={cursor}"),
            None => break,
        }
    }
    // `profile` came from the setup's import.
    assert_eq!(seen, ["s6", "s5", "s4", "s3", "s2", "s1", "s0", "profile"]);
    let (_, one) = admin.call(Method::GET, "/admin/v1/events?scope=s3", None).await;
    assert_eq!(one["events"].as_array().unwrap().len(), 1);
    let (_, none) = admin.call(Method::GET, "/admin/v1/events?since=2999-01-01T00:00:00Z", None).await;
    assert_eq!(none["events"], json!([]));
    for bad in ["type=scope.renamed", "limit=0", "limit=501", "cursor=abc", "since=yesterday", "colour=red"] {
        let (status, answer) = admin.call(Method::GET, &format!("/admin/v1/events?{bad}"), None).await;
        assert_eq!(status, 400, "{bad}: {answer}");
        assert_eq!(answer["error"], "invalid_request");
    }
}

#[tokio::test]
async fn events_older_than_the_retention_period_are_pruned() {
    let admin = setup().await;
    assert_eq!(
        admin.call(Method::POST, "/admin/v1/scopes", Some(json!({"name": "x", "short_description": "X"}))).await.0,
        201
    );
    let mut connection = admin.app.state.db.get().unwrap();
    let now = chrono::Utc::now();
    let kept = scopegate::services::housekeeping::prune(
        &mut connection,
        now + chrono::Duration::days(364),
        admin.app.settings.session_lifetimes(),
        365,
    )
    .unwrap();
    assert_eq!(kept.events, 0);
    let pruned = scopegate::services::housekeeping::prune(
        &mut connection,
        now + chrono::Duration::days(366),
        admin.app.settings.session_lifetimes(),
        365,
    )
    .unwrap();
    assert!(pruned.events >= 2, "the import's and the create's events: {pruned:?}");
    let left = scopegate::services::events::list(&mut connection, Default::default()).unwrap();
    assert!(left.events.is_empty(), "{:?}", left.events);
}

/// Text that cannot be a username — a password typed into the wrong box, or a newline meant to
/// forge a record — is not kept in the audit trail.
#[tokio::test]
async fn a_failed_sign_in_with_what_cannot_be_a_username_keeps_no_trace_of_the_text() {
    let admin = setup().await;
    let typed = "zz ip=6.6.6.6\n2026-11-23T00:00:00Z  WARN login.failed username=admin";
    let browser = Browser::new(&admin.app);
    assert_eq!(browser.login(typed, "whatever-password", "/account").await.status(), 401);
    let failed = events(&admin, "type=login.failed").await;
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0]["username"], Value::Null);
    assert_eq!(failed[0]["actor"], "user:(not a username)");
    assert!(!failed[0].to_string().contains("6.6.6.6"), "{}", failed[0]);
}
