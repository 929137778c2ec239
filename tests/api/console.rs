//! The administration console at `/admin` (SPEC, "Administration"), driven as a browser drives
//! it: forms with their CSRF tokens, redirects, and the JSON API asked afterwards to agree.

use crate::admin::{setup as admin_setup, Admin};
use crate::browser_flow::{approve, exchange, hidden, location, Browser};
use crate::helpers::TestApp;
use reqwest::Method;
use scopegate::domain::client::ClientRegistration;
use serde_json::{json, Value};

const ADMIN_PASSWORD: &str = "admin-password";

/// An app (with the browser flow's tree, its Online Bank client and alice) and an admin user.
async fn console_setup() -> (Admin, crate::helpers::TestClient) {
    let admin = admin_setup().await;
    let app = &admin.app;
    app.import_scopes(
        r#"{"scopes": [{"name": "accounts", "alias": "Your accounts", "short_description": "Accounts", "security_level": "C", "children": [
    {"name": "accounts.balance", "alias": "Balance", "short_description": "View your balance", "security_level": "C", "access_duration_days": 90},
    {"name": "accounts.transactions", "short_description": "Transactions", "security_level": "C", "max_access_count": 100}]}]}"#,
    );
    let client = app.create_client(
        ClientRegistration {
            name: "Online Bank".into(),
            redirect_uris: vec![crate::browser_flow::REDIRECT.into()],
            security_level: Some("C".parse().unwrap()),
            ..Default::default()
        },
        &["profile", "accounts"],
    );
    app.cli(&["user", "create", "alice", "--password-stdin"], Some("alice-password"));
    let created = app.cli(&["user", "create", "root", "--admin", "--password-stdin"], Some(ADMIN_PASSWORD));
    assert!(created.status.success(), "{}", String::from_utf8_lossy(&created.stderr));
    (admin, client)
}

async fn signed_in_admin(app: &TestApp) -> Browser<'_> {
    let browser = Browser::new(app);
    let response = browser.login("root", ADMIN_PASSWORD, "/admin").await;
    assert_eq!(location(&response), "/admin");
    browser
}

/// GETs a console page, asserting 200, and returns the HTML.
async fn page(browser: &Browser<'_>, path: &str) -> String {
    let response = browser.get(path).await;
    let status = response.status();
    let html = response.text().await.unwrap();
    assert_eq!(status, 200, "{path}: {html}");
    html
}

/// Posts a console form with the page's CSRF token; returns (status, location or body).
async fn submit(browser: &Browser<'_>, csrf: &str, path: &str, fields: &[(&str, &str)]) -> (u16, String) {
    let mut form = vec![("csrf_token", csrf)];
    form.extend_from_slice(fields);
    let response = browser.post(path, &form).await;
    let status = response.status().as_u16();
    if status == 303 {
        (status, response.headers()["location"].to_str().unwrap().to_string())
    } else {
        (status, response.text().await.unwrap())
    }
}

/// The text between `<code id="client-secret">` and `</code>`.
fn shown_secret(html: &str) -> String {
    let marker = "id=\"client-secret\">";
    let start = html.find(marker).unwrap_or_else(|| panic!("no secret in {html}")) + marker.len();
    html[start..start + html[start..].find('<').unwrap()].to_string()
}

#[tokio::test]
async fn the_console_needs_a_signed_in_administrator() {
    let (admin, _) = console_setup().await;
    let app = &admin.app;
    let anonymous = Browser::new(app);
    let response = anonymous.get("/admin/scopes").await;
    assert_eq!(location(&response), "/login?next=%2Fadmin%2Fscopes");
    let alice = Browser::new(app);
    alice.login("alice", "alice-password", "/account").await;
    for path in ["/admin", "/admin/scopes", "/admin/clients", "/admin/users", "/admin/grants", "/admin/events"] {
        let response = alice.get(path).await;
        assert_eq!(response.status(), 403, "{path}");
        let html = response.text().await.unwrap();
        assert!(html.contains("administrators"), "{html}");
    }
    let csrf = hidden(&page(&alice, "/account").await, "csrf_token");
    let (status, _) = submit(&alice, &csrf, "/admin/scopes", &[("name", "x"), ("short_description", "X")]).await;
    assert_eq!(status, 403);
    let (_, body) = admin.call(Method::GET, "/admin/v1/scopes/x", None).await;
    assert_eq!(body["error"], "scope_not_found", "a non-admin's form changed nothing");
    let root = signed_in_admin(app).await;
    let html = page(&root, "/admin").await;
    assert!(html.contains("Scopes") && html.contains("Recent events"), "{html}");
}

#[tokio::test]
async fn a_console_form_without_its_csrf_token_is_refused() {
    let (admin, _) = console_setup().await;
    let root = signed_in_admin(&admin.app).await;
    let response = root.post("/admin/scopes", &[("name", "forged"), ("short_description", "Forged")]).await;
    assert_eq!(response.status(), 403);
    let response =
        root.post("/admin/scopes", &[("csrf_token", "forged"), ("name", "forged"), ("short_description", "F")]).await;
    assert_eq!(response.status(), 403);
    let (_, body) = admin.call(Method::GET, "/admin/v1/scopes/forged", None).await;
    assert_eq!(body["error"], "scope_not_found");
}

#[tokio::test]
async fn scopes_are_created_edited_moved_and_deleted_through_the_console() {
    let (admin, _) = console_setup().await;
    let root = signed_in_admin(&admin.app).await;
    let csrf = hidden(&page(&root, "/admin/scopes").await, "csrf_token");
    for (name, parent) in [("cards", ""), ("cards.limits", "cards"), ("cards.pin", "cards"), ("loans", "")] {
        let fields = [
            ("name", name),
            ("parent", parent),
            ("short_description", "Card things"),
            ("security_level", "D"),
            ("visibility", "public"),
            ("access_duration_days", "30"),
            ("max_access_count", "0"),
            ("user_authorization_required", "on"),
            ("auth_types", "authorization_code"),
        ];
        let (status, target) = submit(&root, &csrf, "/admin/scopes", &fields).await;
        assert_eq!(status, 303, "{target}");
        assert!(target.starts_with("/admin/scopes"), "{target}");
    }
    let (_, cards) = admin.call(Method::GET, "/admin/v1/scopes/cards.limits", None).await;
    assert_eq!(cards["security_level"], "D");
    assert_eq!(cards["auth_types"], json!(["authorization_code"]));
    assert_eq!(cards["access_duration_days"], 30);

    // A bad field re-renders the form with the message and a 400; nothing is stored.
    let (status, html) =
        submit(&root, &csrf, "/admin/scopes", &[("name", "bad name"), ("short_description", "X")]).await;
    assert_eq!(status, 400);
    assert!(html.contains("bad name") && html.contains("role=\"alert\""), "{html}");

    // Edit: the name is read-only, the fields change.
    let edit_page = page(&root, "/admin/scopes/cards.pin").await;
    assert!(edit_page.contains("readonly"), "{edit_page}");
    let (status, _) = submit(
        &root,
        &csrf,
        "/admin/scopes/cards.pin/edit",
        &[
            ("alias", "Your PIN"),
            ("short_description", "See your PIN"),
            ("security_level", "B"),
            ("visibility", "private"),
        ],
    )
    .await;
    assert_eq!(status, 303);
    let (_, pin) = admin.call(Method::GET, "/admin/v1/scopes/cards.pin", None).await;
    assert_eq!((pin["alias"].as_str(), pin["security_level"].as_str()), (Some("Your PIN"), Some("B")));
    assert_eq!(pin["visibility"], "private");

    // Move the cards subtree under loans, at the top; a cycle is refused with its message.
    let (status, _) = submit(&root, &csrf, "/admin/scopes/cards/move", &[("parent", "loans"), ("position", "0")]).await;
    assert_eq!(status, 303);
    let (_, tree) = admin.call(Method::GET, "/admin/v1/scopes", None).await;
    let loans = tree["scopes"].as_array().unwrap().iter().find(|node| node["name"] == "loans").unwrap();
    assert_eq!(loans["children"][0]["name"], "cards");
    assert_eq!(loans["children"][0]["children"][1]["name"], "cards.pin", "the subtree moved with it");
    let (status, html) = submit(&root, &csrf, "/admin/scopes/loans/move", &[("parent", "cards.pin")]).await;
    assert_eq!(status, 400);
    assert!(html.contains("own"), "{html}");

    // Search by keyword and level.
    let html = page(&root, "/admin/scopes?q=card&security_level=B").await;
    assert!(html.contains("cards.pin") && !html.contains(">cards.limits<"), "{html}");

    // Delete with a confirmation page; the subtree goes.
    let confirm = page(&root, "/admin/scopes/cards/delete").await;
    assert!(confirm.contains("cards.limits") && confirm.contains("cards.pin"), "{confirm}");
    let (status, _) = submit(&root, &csrf, "/admin/scopes/cards/delete", &[]).await;
    assert_eq!(status, 303);
    let (_, body) = admin.call(Method::GET, "/admin/v1/scopes/cards.pin", None).await;
    assert_eq!(body["error"], "scope_not_found");
}

#[tokio::test]
async fn a_refused_delete_lists_the_clients_and_grants_holding_the_subtree() {
    let (admin, client) = console_setup().await;
    let app = &admin.app;
    let alice = Browser::new(app);
    let first = alice.authorize(&client, Some("accounts.balance"), &[]).await;
    let next = crate::browser_flow::query_of(&format!("http://x{}", location(&first)))["next"].clone();
    let back = location(&alice.login("alice", "alice-password", &next).await);
    let consent = page(&alice, &back).await;
    approve(&alice, &consent, None).await;
    let root = signed_in_admin(app).await;
    let csrf = hidden(&page(&root, "/admin/scopes").await, "csrf_token");
    let (status, html) = submit(&root, &csrf, "/admin/scopes/accounts/delete", &[]).await;
    assert_eq!(status, 409);
    assert!(html.contains("Scope cannot be deleted"), "{html}");
    assert!(html.contains(&client.id), "the assigned client is named: {html}");
    assert!(html.contains("alice") && html.contains("accounts.balance"), "alice's grant is named: {html}");
    let (_, still) = admin.call(Method::GET, "/admin/v1/scopes/accounts", None).await;
    assert_eq!(still["name"], "accounts");
}

#[tokio::test]
async fn a_client_secret_is_shown_once_and_rotating_it_stops_the_old_one() {
    let (admin, _) = console_setup().await;
    let app = &admin.app;
    let root = signed_in_admin(app).await;
    let csrf = hidden(&page(&root, "/admin/clients").await, "csrf_token");
    let (status, html) = submit(
        &root,
        &csrf,
        "/admin/clients",
        &[
            ("name", "Ledger"),
            ("client_type", "confidential"),
            ("grant_types", "client_credentials"),
            ("security_level", "C"),
            ("token_format", "jwt"),
        ],
    )
    .await;
    assert_eq!(status, 200, "{html}");
    let secret = shown_secret(&html);
    let client_id = hidden(&html, "client_id");
    let client = crate::helpers::TestClient { id: client_id.clone(), secret: secret.clone() };
    let detail = page(&root, &format!("/admin/clients/{client_id}")).await;
    assert!(!detail.contains(&secret), "the secret is shown once");

    // Assign scopes from the tree; the level rule refuses an A scope for a C client.
    let (status, _) = submit(
        &root,
        &csrf,
        &format!("/admin/clients/{client_id}/scopes"),
        &[("scope", "accounts.balance"), ("scope", "profile")],
    )
    .await;
    assert_eq!(status, 303);
    let (_, view) = admin.call(Method::GET, &format!("/admin/v1/clients/{client_id}"), None).await;
    let assigned: Vec<&str> = view["scopes"].as_array().unwrap().iter().map(|s| s["scope"].as_str().unwrap()).collect();
    assert_eq!(assigned, ["accounts.balance", "profile"]);
    assert!(detail.contains("level C"), "the level rule is explained: {detail}");
    // The form offers only what the service would accept: not the admin scope to a plain client.
    let admin_box = checkbox(&detail, "scopegate:admin");
    assert!(admin_box.contains(" disabled"), "{admin_box}");
    assert!(detail.contains("reserved for admin clients"), "the reason is given: {detail}");
    assert!(!checkbox(&detail, "profile").contains(" disabled"));
    let (status, refused) = submit(
        &root,
        &csrf,
        &format!("/admin/clients/{client_id}/scopes"),
        &[("scope", "profile"), ("scope", "scopegate:admin")],
    )
    .await;
    assert_eq!(status, 400, "the service refuses it all the same: {refused}");

    assert_eq!(app.client_credentials(&client, Some("profile")).await.status(), 200);
    let (status, html) = submit(&root, &csrf, &format!("/admin/clients/{client_id}/secret"), &[]).await;
    assert_eq!(status, 200, "{html}");
    let rotated = shown_secret(&html);
    assert_ne!(rotated, secret);
    assert_eq!(app.client_credentials(&client, Some("profile")).await.status(), 401, "the old secret stops");
    let renewed = crate::helpers::TestClient { id: client_id.clone(), secret: rotated };
    assert_eq!(app.client_credentials(&renewed, Some("profile")).await.status(), 200);

    // Edit and delete.
    let (status, _) = submit(
        &root,
        &csrf,
        &format!("/admin/clients/{client_id}/edit"),
        &[
            ("name", "Ledger 2"),
            ("grant_types", "client_credentials"),
            ("security_level", "C"),
            ("token_format", "opaque"),
        ],
    )
    .await;
    assert_eq!(status, 303);
    let (_, view) = admin.call(Method::GET, &format!("/admin/v1/clients/{client_id}"), None).await;
    assert_eq!((view["name"].as_str(), view["token_format"].as_str()), (Some("Ledger 2"), Some("opaque")));
    let (status, _) = submit(&root, &csrf, &format!("/admin/clients/{client_id}/delete"), &[]).await;
    assert_eq!(status, 303);
    let (status, _) = admin.call(Method::GET, &format!("/admin/v1/clients/{client_id}"), None).await;
    assert_eq!(status, 404);
}

/// The checkbox input of the scope `name` in a client's assignment form.
fn checkbox(html: &str, name: &str) -> String {
    let value = format!("value=\"{name}\"");
    let at = html.find(&value).unwrap_or_else(|| panic!("no checkbox for {name}"));
    let start = html[..at].rfind("<input").unwrap();
    let end = at + html[at..].find('>').unwrap();
    html[start..=end].to_string()
}

/// alice's tokens by the code flow for `accounts`: (access, refresh).
async fn alice_tokens(app: &TestApp, client: &crate::helpers::TestClient) -> (String, String) {
    let alice = Browser::new(app);
    let first = alice.authorize(client, Some("accounts"), &[]).await;
    let next = crate::browser_flow::query_of(&format!("http://x{}", location(&first)))["next"].clone();
    let back = location(&alice.login("alice", "alice-password", &next).await);
    let consent = page(&alice, &back).await;
    let answer = approve(&alice, &consent, None).await;
    let tokens: Value = exchange(app, client, &answer["code"]).await.json().await.unwrap();
    (tokens["access_token"].as_str().unwrap().into(), tokens["refresh_token"].as_str().unwrap().into())
}

#[tokio::test]
async fn a_disabled_user_cannot_sign_in_and_her_tokens_stop() {
    let (admin, client) = console_setup().await;
    let app = &admin.app;
    let (access, refresh) = alice_tokens(app, &client).await;
    let bank_api = app.resource_server();
    assert_eq!(app.introspect(&bank_api, &access).await["active"], true);
    let root = signed_in_admin(app).await;
    let csrf = hidden(&page(&root, "/admin/users").await, "csrf_token");
    let (status, _) = submit(&root, &csrf, "/admin/users/alice/disable", &[]).await;
    assert_eq!(status, 303);

    assert_eq!(app.introspect(&bank_api, &access).await["active"], false);
    let refreshed =
        app.post_form("/token", Some(&client), &[("grant_type", "refresh_token"), ("refresh_token", &refresh)]).await;
    assert_eq!(refreshed.status(), 400);
    let body: Value = refreshed.json().await.unwrap();
    assert_eq!(body["error"], "invalid_grant");
    let retry = Browser::new(app).login("alice", "alice-password", "/account").await;
    assert_eq!(retry.status(), 401);
    assert!(retry.text().await.unwrap().contains("The username or password is incorrect."), "the same answer");

    let (_, users) = admin.call(Method::GET, "/admin/v1/users", None).await;
    let alice = users["users"].as_array().unwrap().iter().find(|u| u["username"] == "alice").unwrap().clone();
    assert_eq!((alice["disabled"].as_bool(), alice["admin"].as_bool()), (Some(true), Some(false)));
    let root_view = users["users"].as_array().unwrap().iter().find(|u| u["username"] == "root").unwrap().clone();
    assert_eq!(root_view["admin"], true);
}

/// What alice held before she was disabled is worth nothing after: a code not yet redeemed, her
/// browser session, and a consent page she had open.
#[tokio::test]
async fn a_code_a_session_and_an_open_consent_page_from_before_the_disable_are_refused_after_it() {
    let (admin, client) = console_setup().await;
    let app = &admin.app;
    let alice = Browser::new(app);
    let first = alice.authorize(&client, Some("accounts.balance"), &[]).await;
    let next = crate::browser_flow::query_of(&format!("http://x{}", location(&first)))["next"].clone();
    let back = location(&alice.login("alice", "alice-password", &next).await);
    let granted = approve(&alice, &page(&alice, &back).await, None).await;
    // A wider request: its consent page stays open while the administrator acts.
    let open = alice.authorize(&client, Some("accounts"), &[]).await;
    assert_eq!(open.status(), 200, "a consent page");
    let open = open.text().await.unwrap();
    assert_eq!(alice.get("/account").await.status(), 200, "signed in");

    let (status, body) = admin.call(Method::POST, "/admin/v1/users/alice/disable", None).await;
    assert!(status == 200 || status == 204, "{status} {body}");

    let redeemed = exchange(app, &client, &granted["code"]).await;
    assert_eq!(redeemed.status(), 400);
    assert_eq!(redeemed.json::<Value>().await.unwrap()["error"], "invalid_grant");
    let account = alice.get("/account").await;
    assert!(location(&account).starts_with("/login"), "the session ended with the disable");
    let again = alice.authorize(&client, Some("accounts.balance"), &[]).await;
    assert!(location(&again).starts_with("/login"), "no code without signing in again");
    let form = [
        ("csrf_token", hidden(&open, "csrf_token")),
        ("consent_token", hidden(&open, "consent_token")),
        ("decision", "allow".to_string()),
        ("scope", "accounts".to_string()),
    ];
    let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let approved = alice.post("/authorize/consent", &form).await;
    let status = approved.status().as_u16();
    let target = approved.headers().get("location").map(|l| l.to_str().unwrap().to_string()).unwrap_or_default();
    assert!(!target.contains("code="), "no code from a consent page opened before the disable: {status} {target}");
    assert!(status == 303 && target.starts_with("/login") || status >= 400, "{status} {target}");
}

#[tokio::test]
async fn the_admin_api_creates_administrators_and_disables_users() {
    let (admin, _) = console_setup().await;
    let (status, body) = admin
        .call(
            Method::POST,
            "/admin/v1/users",
            Some(json!({"username": "ops", "password": "ops-password-1", "admin": true})),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!((body["admin"].as_bool(), body["disabled"].as_bool()), (Some(true), Some(false)));
    let ops = signed_in_browser(&admin.app, "ops", "ops-password-1").await;
    assert_eq!(ops.get("/admin").await.status(), 200);
    let (status, _) = admin.call(Method::POST, "/admin/v1/users/ops/disable", None).await;
    assert_eq!(status, 204);
    assert_eq!(location(&ops.get("/admin").await), "/login?next=%2Fadmin", "her session ended");
    let (status, _) = admin.call(Method::POST, "/admin/v1/users/nobody/disable", None).await;
    assert_eq!(status, 404);
    let (_, events) = admin.call(Method::GET, "/admin/v1/events?type=user.disabled", None).await;
    assert_eq!(events["events"][0]["username"], "ops");
}

/// The JSON API does what the console's password and revoke buttons do, through the same services.
#[tokio::test]
async fn the_admin_api_resets_a_password_and_revokes_a_grant() {
    let (admin, client) = console_setup().await;
    let app = &admin.app;
    let (access, _) = alice_tokens(app, &client).await;
    let bank_api = app.resource_server();
    assert_eq!(app.introspect(&bank_api, &access).await["active"], true);

    let path = "/admin/v1/users/alice/password";
    let (status, body) = admin.call(Method::POST, path, Some(json!({"password": "a-new-password-2"}))).await;
    assert_eq!(status, 204, "{body}");
    assert_eq!(Browser::new(app).login("alice", "alice-password", "/account").await.status(), 401, "the old one");
    assert_eq!(location(&Browser::new(app).login("alice", "a-new-password-2", "/account").await), "/account");
    let (status, body) = admin.call(Method::POST, path, Some(json!({"password": "short"}))).await;
    assert_eq!((status, body["error"].as_str()), (400, Some("invalid_request")), "{body}");
    let (status, _) =
        admin.call(Method::POST, "/admin/v1/users/nobody/password", Some(json!({"password": "long-enough-1"}))).await;
    assert_eq!(status, 404);
    let (status, _) = admin.call_as(None, Method::POST, path, Some(json!({"password": "long-enough-1"}))).await;
    assert_eq!(status, 401);
    let (_, events) = admin.call(Method::GET, "/admin/v1/events?type=user.password_reset", None).await;
    assert_eq!(events["events"].as_array().unwrap().len(), 1, "the refused ones are not recorded: {events}");
    assert!(!events.to_string().contains("a-new-password-2"));

    let revoke = format!("/admin/v1/users/alice/grants/{}", client.id);
    let (status, body) = admin.call(Method::DELETE, &revoke, None).await;
    assert_eq!(status, 204, "{body}");
    assert_eq!(app.introspect(&bank_api, &access).await["active"], false, "her tokens for it ended");
    let (status, body) = admin.call(Method::DELETE, &revoke, None).await;
    assert_eq!((status, body["error"].as_str()), (404, Some("grant_not_found")), "nothing left: {body}");
    let (status, body) =
        admin.call(Method::DELETE, &format!("/admin/v1/users/nobody/grants/{}", client.id), None).await;
    assert_eq!((status, body["error"].as_str()), (404, Some("user_not_found")), "{body}");
    let (_, events) = admin.call(Method::GET, "/admin/v1/events?type=consent.revoked", None).await;
    assert_eq!(events["events"][0]["username"], "alice", "{events}");
}

async fn signed_in_browser<'a>(app: &'a TestApp, username: &str, password: &str) -> Browser<'a> {
    let browser = Browser::new(app);
    let response = browser.login(username, password, "/admin").await;
    assert_eq!(response.status(), 303);
    browser
}

#[tokio::test]
async fn users_are_created_given_new_passwords_and_deleted_in_the_console() {
    let (admin, _) = console_setup().await;
    let app = &admin.app;
    let root = signed_in_admin(app).await;
    let csrf = hidden(&page(&root, "/admin/users").await, "csrf_token");
    let (status, _) =
        submit(&root, &csrf, "/admin/users", &[("username", "carol"), ("password", "carol-password"), ("admin", "on")])
            .await;
    assert_eq!(status, 303);
    let (status, html) = submit(&root, &csrf, "/admin/users", &[("username", "dave"), ("password", "short")]).await;
    assert_eq!(status, 400);
    assert!(html.contains("at least 8 characters"), "{html}");
    let (status, _) = submit(&root, &csrf, "/admin/users/carol/password", &[("password", "carol-new-password")]).await;
    assert_eq!(status, 303);
    assert_eq!(Browser::new(app).login("carol", "carol-password", "/admin").await.status(), 401);
    signed_in_browser(app, "carol", "carol-new-password").await;
    let (status, _) = submit(&root, &csrf, "/admin/users/carol/delete", &[]).await;
    assert_eq!(status, 303);
    let (_, users) = admin.call(Method::GET, "/admin/v1/users", None).await;
    assert!(users["users"].as_array().unwrap().iter().all(|u| u["username"] != "carol"));
}

#[tokio::test]
async fn an_administrator_finds_alices_grant_and_revokes_it() {
    let (admin, client) = console_setup().await;
    let app = &admin.app;
    let (access, _) = alice_tokens(app, &client).await;
    let root = signed_in_admin(app).await;
    let html = page(&root, "/admin/grants?user=alice&scope=accounts.balance&state=active").await;
    assert!(html.contains("accounts.balance") && !html.contains(">accounts.transactions<"), "{html}");
    let csrf = hidden(&html, "csrf_token");
    let (status, target) =
        submit(&root, &csrf, "/admin/grants/revoke", &[("user", "alice"), ("client", &client.id)]).await;
    assert_eq!(status, 303);
    assert!(target.starts_with("/admin/grants"), "{target}");
    let bank_api = app.resource_server();
    assert_eq!(app.introspect(&bank_api, &access).await["active"], false);
    let (_, grants) = admin.call(Method::GET, "/admin/v1/grants?user=alice", None).await;
    assert_eq!(grants["grants"], json!([]));
    let (_, events) = admin.call(Method::GET, "/admin/v1/events?type=consent.revoked", None).await;
    assert_eq!(events["events"][0]["actor"], "user:root");
    assert_eq!(events["events"][0]["username"], "alice");
}

#[tokio::test]
async fn the_events_page_shows_the_consoles_actions_with_the_administrator_as_actor() {
    let (admin, _) = console_setup().await;
    let root = signed_in_admin(&admin.app).await;
    let csrf = hidden(&page(&root, "/admin/scopes").await, "csrf_token");
    for index in 0..3 {
        let name = format!("audit{index}");
        submit(&root, &csrf, "/admin/scopes", &[("name", &name), ("short_description", "Audited")]).await;
    }
    let html = page(&root, "/admin/events?type=scope.created&limit=2").await;
    assert!(html.contains("audit2") && html.contains("audit1") && !html.contains("audit0"), "{html}");
    assert!(html.contains("user:root"), "{html}");
    let older_marker = "href=\"/admin/events?";
    let start = html.find(older_marker).expect("an older link") + "href=\"".len();
    let older = html[start..start + html[start..].find('"').unwrap()].replace("&amp;", "&").replace("&#38;", "&");
    let html = page(&root, &older).await;
    assert!(html.contains("audit0") && !html.contains("audit2"), "{older}: {html}");
    let (_, events) = admin.call(Method::GET, "/admin/v1/events?type=scope.created", None).await;
    assert!(events["events"].as_array().unwrap().iter().all(|e| e["actor"] == "user:root" || e["scope"] != "audit0"));
}

#[tokio::test]
async fn the_admin_api_rotates_a_client_secret_and_only_the_new_one_works() {
    let (admin, _) = console_setup().await;
    let app = &admin.app;
    let machine = app.machine_client("F", &["profile"]);
    assert_eq!(app.client_credentials(&machine, None).await.status(), 200);
    let (status, body) = admin.call(Method::POST, &format!("/admin/v1/clients/{}/secret", machine.id), None).await;
    assert_eq!(status, 200, "{body}");
    let rotated = crate::helpers::TestClient {
        id: machine.id.clone(),
        secret: body["client_secret"].as_str().unwrap().to_string(),
    };
    assert_ne!(rotated.secret, machine.secret);
    assert_eq!(app.client_credentials(&machine, None).await.status(), 401);
    assert_eq!(app.client_credentials(&rotated, None).await.status(), 200);
    let (_, events) = admin.call(Method::GET, "/admin/v1/events?type=client.secret_rotated", None).await;
    assert_eq!(events["events"][0]["client_id"], machine.id.as_str());
    assert!(!events["events"][0].to_string().contains(&rotated.secret), "the secret is never recorded");
    let (status, body) = admin.call(Method::POST, "/admin/v1/clients/c_missing/secret", None).await;
    assert_eq!((status, body["error"].as_str()), (404, Some("client_not_found")));
}

/// FAPI 2.0 client fields (issue 14) from the console: a `private_key_jwt` client with its keys,
/// no secret shown or rotatable, and the settings form keeping every field on a save.
#[tokio::test]
async fn a_key_client_is_registered_and_edited_in_the_console() {
    let (admin, _) = console_setup().await;
    let app = &admin.app;
    let root = signed_in_admin(app).await;
    let csrf = hidden(&page(&root, "/admin/clients").await, "csrf_token");
    let key = crate::jose::ClientKey::generate();
    let jwks = key.jwks().to_string();
    let (status, html) = submit(
        &root,
        &csrf,
        "/admin/clients",
        &[
            ("name", "Payments"),
            ("client_type", "confidential"),
            ("grant_types", "client_credentials"),
            ("security_level", "A"),
            ("token_format", "jwt"),
            ("token_endpoint_auth_method", "private_key_jwt"),
            ("jwks", &jwks),
            ("require_par", "on"),
            ("dpop_bound", "on"),
        ],
    )
    .await;
    assert_eq!(status, 200, "{html}");
    assert!(!html.contains("id=\"client-secret\""), "a key client has no secret to show");
    assert!(!html.contains("Rotate secret"), "nor one to rotate");
    assert!(html.contains("(private_key_jwt)"), "the page says how it authenticates");
    let marker = "Client ID <code>";
    let start = html.find(marker).unwrap() + marker.len();
    let client_id = html[start..start + html[start..].find('<').unwrap()].to_string();
    let (_, view) = admin.call(Method::GET, &format!("/admin/v1/clients/{client_id}"), None).await;
    assert_eq!(view["token_endpoint_auth_method"], "private_key_jwt");
    assert_eq!(
        (view["require_pushed_authorization_requests"].as_bool(), view["dpop_bound_access_tokens"].as_bool()),
        (Some(true), Some(true))
    );

    // Saving the settings form as shown changes nothing.
    let detail = page(&root, &format!("/admin/clients/{client_id}")).await;
    assert!(detail.contains("<option value=\"private_key_jwt\" selected>"), "the method is shown");
    let (status, _) = submit(
        &root,
        &csrf,
        &format!("/admin/clients/{client_id}/edit"),
        &[
            ("name", "Payments"),
            ("grant_types", "client_credentials"),
            ("security_level", "A"),
            ("token_format", "jwt"),
            ("token_endpoint_auth_method", "private_key_jwt"),
            ("jwks", &hidden_textarea(&detail, "jwks")),
            ("require_par", "on"),
            ("dpop_bound", "on"),
        ],
    )
    .await;
    assert_eq!(status, 303);
    let (_, after) = admin.call(Method::GET, &format!("/admin/v1/clients/{client_id}"), None).await;
    assert_eq!(after["jwks"], view["jwks"], "the keys survive the round trip through the form");
    assert_eq!(after["dpop_bound_access_tokens"], true);
}

/// The text of a textarea named `name` (HTML-unescaped, as a browser would send it).
fn hidden_textarea(html: &str, name: &str) -> String {
    let start = html.find(&format!("name=\"{name}\"")).unwrap();
    let open = start + html[start..].find('>').unwrap() + 1;
    let text = &html[open..open + html[open..].find("</textarea>").unwrap()];
    text.replace("&quot;", "\"")
        .replace("&#x22;", "\"")
        .replace("&#34;", "\"")
        .replace("&amp;", "&")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
}

/// The console lists and revokes per grant (Grant Management): alice's second grant with the
/// same client is ended alone.
#[tokio::test]
async fn the_console_revokes_one_grant_and_leaves_the_users_other_grant_with_the_client() {
    let (admin, client) = console_setup().await;
    let app = &admin.app;
    let (access, _) = alice_tokens(app, &client).await;
    let (_, grants) = admin.call(Method::GET, "/admin/v1/grants?user=alice", None).await;
    let default_grant = grants["grants"][0]["grant_id"].as_str().unwrap().to_string();
    // A second grant: the same consent, created anew.
    let mut connection = app.state.db.get().unwrap();
    let user = scopegate::storage::users::find_with_password(&mut connection, "alice").unwrap().unwrap().0;
    let who = scopegate::storage::grants::ConsentSubject {
        subject: &user.id,
        user_id: Some(&user.id),
        client_id: &client.id,
    };
    let second = scopegate::storage::grants::create_consent(&mut connection, who, chrono::Utc::now()).unwrap();
    let scopes: std::collections::BTreeSet<String> = ["accounts.transactions".to_string()].into();
    let tree = &app.state.registry.snapshot().tree;
    scopegate::storage::grants::start(&mut connection, tree, &second, &scopes, chrono::Utc::now()).unwrap();
    drop(connection);

    let root = signed_in_admin(app).await;
    let html = page(&root, "/admin/grants?user=alice").await;
    assert!(html.contains(&default_grant) && html.contains(&second), "one row per grant: {html}");
    let csrf = hidden(&html, "csrf_token");
    let (status, _) = submit(&root, &csrf, "/admin/grants/revoke", &[("user", "alice"), ("grant", &second)]).await;
    assert_eq!(status, 303);
    let (_, left) = admin.call(Method::GET, "/admin/v1/grants?user=alice", None).await;
    let left: Vec<&str> = left["grants"].as_array().unwrap().iter().map(|g| g["grant_id"].as_str().unwrap()).collect();
    assert!(!left.is_empty() && left.iter().all(|id| *id == default_grant), "only the second grant went: {left:?}");
    let bank_api = app.resource_server();
    assert_eq!(app.introspect(&bank_api, &access).await["active"], true, "the default grant's token still works");
}
