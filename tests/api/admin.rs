use crate::helpers::{fresh_settings, spawn_app_with, TestApp, TestClient};
use reqwest::Method;
use scopegate::domain::client::ClientRegistration;
use serde_json::{json, Value};

/// An app with a `profile` scope and an admin client's token; also used by `scopes.rs`.
pub(crate) struct Admin {
    pub(crate) app: TestApp,
    pub(crate) token: String,
    pub(crate) plain_token: String,
}

pub(crate) async fn setup() -> Admin {
    let (settings, dir) = fresh_settings();
    setup_with(settings, dir).await
}

/// As [`setup`], on an app with the given settings.
pub(crate) async fn setup_with(settings: scopegate::config::Settings, dir: tempfile::TempDir) -> Admin {
    let app = spawn_app_with(settings, dir).await;
    app.import_scopes(r#"{"scopes": [{"name": "profile", "short_description": "Profile", "default_scope": true}]}"#);
    let admin = app.create_client(ClientRegistration { name: "Ops".into(), admin: true, ..Default::default() }, &[]);
    let token = app.access_token(&admin, Some("scopegate:admin")).await["access_token"].as_str().unwrap().to_string();
    let plain = app.machine_client("F", &[]);
    let plain_token = app.access_token(&plain, None).await["access_token"].as_str().unwrap().to_string();
    Admin { app, token, plain_token }
}

impl Admin {
    pub(crate) async fn call(&self, method: Method, path: &str, body: Option<Value>) -> (u16, Value) {
        self.call_as(Some(&self.token), method, path, body).await
    }

    pub(crate) async fn call_as(
        &self,
        token: Option<&str>,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut request = self.app.http.request(method, self.app.url(path));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let text = response.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }
}

#[tokio::test]
async fn an_administrators_day() {
    let admin = setup().await;
    // A three-level tree.
    for (name, parent, level) in [
        ("accounts", None, "C"),
        ("accounts.balance", Some("accounts"), "C"),
        ("accounts.balance.history", Some("accounts.balance"), "C"),
        ("cards", None, "C"),
        ("payments", None, "A"),
    ] {
        let (status, body) = admin
            .call(
                Method::POST,
                "/admin/v1/scopes",
                Some(json!({"name": name, "parent": parent, "short_description": name, "security_level": level})),
            )
            .await;
        assert_eq!(status, 201, "{body}");
        assert_eq!(body["name"], name);
    }
    let (status, tree) = admin.call(Method::GET, "/admin/v1/scopes", None).await;
    assert_eq!(status, 200);
    let accounts = tree["scopes"].as_array().unwrap().iter().find(|s| s["name"] == "accounts").unwrap();
    assert_eq!(accounts["children"][0]["children"][0]["name"], "accounts.balance.history");

    // Move a subtree under another parent; its name stays.
    let (status, moved) =
        admin.call(Method::POST, "/admin/v1/scopes/accounts.balance/move", Some(json!({"parent": "cards"}))).await;
    assert_eq!(status, 200, "{moved}");
    assert_eq!(moved["parent"], "cards");
    let (_, cards) = admin.call(Method::GET, "/admin/v1/scopes/cards", None).await;
    assert_eq!(cards["children"], json!(["accounts.balance"]));
    let (status, body) = admin
        .call(Method::POST, "/admin/v1/scopes/cards/move", Some(json!({"parent": "accounts.balance.history"})))
        .await;
    assert_eq!((status, body["error"].as_str()), (400, Some("invalid_move")));

    // A rename is refused; other edits go through.
    let (status, body) = admin.call(Method::PATCH, "/admin/v1/scopes/cards", Some(json!({"name": "cardz"}))).await;
    assert_eq!((status, body["error"].as_str()), (400, Some("scope_name_immutable")));
    let (status, body) = admin
        .call(Method::PATCH, "/admin/v1/scopes/cards", Some(json!({"alias": "Your cards", "max_access_count": 0})))
        .await;
    assert_eq!((status, body["alias"].as_str()), (200, Some("Your cards")));

    // Assign scopes to a client; a scope above its level is refused.
    let (status, client) =
        admin.call(Method::POST, "/admin/v1/clients", Some(json!({"name": "Budget", "security_level": "C"}))).await;
    assert_eq!(status, 201, "{client}");
    let client_id = client["client_id"].as_str().unwrap().to_string();
    let secret = client["client_secret"].as_str().unwrap().to_string();
    let path = format!("/admin/v1/clients/{client_id}/scopes");
    let (status, body) = admin.call(Method::PUT, &path, Some(json!({"scopes": ["payments"]}))).await;
    assert_eq!((status, body["error"].as_str()), (400, Some("security_level_mismatch")));
    let (status, body) = admin.call(Method::PUT, &path, Some(json!({"scopes": ["cards"]}))).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["scopes"], json!([{"scope": "cards", "bank_id": ""}]));

    // A token reflects the change at once.
    let budget = TestClient { id: client_id.clone(), secret };
    let token = admin.app.access_token(&budget, Some("cards")).await;
    assert_eq!(token["scope"], "accounts.balance accounts.balance.history cards");

    // An assigned scope (or a subtree holding one) cannot be deleted.
    let (status, body) = admin.call(Method::DELETE, "/admin/v1/scopes/cards", None).await;
    assert_eq!((status, body["error"].as_str()), (409, Some("scope_in_use")));
    assert_eq!(
        body["error_description"],
        "Scope cannot be deleted. Clients or grants are referencing this scope or its children."
    );

    // Unassign; the client-credentials grant (unexpired, unlimited) still holds it.
    let (status, _) = admin.call(Method::PUT, &path, Some(json!({"scopes": []}))).await;
    assert_eq!(status, 200);
    let (status, _) = admin.call(Method::DELETE, "/admin/v1/scopes/cards", None).await;
    assert_eq!(status, 409, "an unexpired grant still references it");
    let (status, _) = admin.call(Method::DELETE, &format!("/admin/v1/clients/{client_id}"), None).await;
    assert_eq!(status, 204);
    let (status, _) = admin.call(Method::DELETE, "/admin/v1/scopes/cards", None).await;
    assert_eq!(status, 204);
    for gone in ["cards", "accounts.balance", "accounts.balance.history"] {
        let (status, _) = admin.call(Method::GET, &format!("/admin/v1/scopes/{gone}"), None).await;
        assert_eq!(status, 404, "{gone} should be gone with its subtree");
    }
}

#[tokio::test]
async fn scope_search_filters_by_keyword_level_and_auth_type() {
    let admin = setup().await;
    admin.app.import_scopes(
        r#"{"scopes": [{"name": "accounts", "short_description": "Your accounts", "security_level": "C", "children": [
            {"name": "accounts.balance", "alias": "Balance", "short_description": "View your balance", "security_level": "C",
             "auth_types": ["authorization_code"]}]}]}"#,
    );
    let (status, body) = admin.call(Method::GET, "/admin/v1/scopes?q=BALANCE", None).await;
    assert_eq!(status, 200);
    assert_eq!(body["scopes"].as_array().unwrap().len(), 1);
    assert_eq!(body["scopes"][0]["parent"], "accounts");
    let (_, body) =
        admin.call(Method::GET, "/admin/v1/scopes?security_level=C&auth_type=client_credentials", None).await;
    let names: Vec<&str> = body["scopes"].as_array().unwrap().iter().map(|s| s["name"].as_str().unwrap()).collect();
    assert_eq!(names, vec!["accounts"]);
    let (status, body) = admin.call(Method::GET, "/admin/v1/scopes?security_level=Z", None).await;
    assert_eq!((status, body["error"].as_str()), (400, Some("invalid_request")));
}

#[tokio::test]
async fn validation_errors_name_the_field() {
    let admin = setup().await;
    let cases = [
        (json!({"name": "x"}), "short_description"),
        (json!({"name": "bad name", "short_description": "x"}), "name"),
        (json!({"name": "x", "short_description": "x", "access_duration_days": -1}), "access_duration_days"),
        (json!({"name": "x", "short_description": "x", "security_level": "Q"}), "security_level"),
        (json!({"name": "x", "short_description": "x", "parent": "nope"}), "nope"),
    ];
    for (body, field) in cases {
        let (status, answer) = admin.call(Method::POST, "/admin/v1/scopes", Some(body.clone())).await;
        assert_eq!(status, 400, "{body} -> {answer}");
        assert!(answer["error_description"].as_str().unwrap().contains(field), "{body} -> {answer}");
    }
    let (status, answer) =
        admin.call(Method::POST, "/admin/v1/scopes", Some(json!({"name": "profile", "short_description": "x"}))).await;
    assert_eq!((status, answer["error"].as_str()), (409, Some("scope_exists")));
}

#[tokio::test]
async fn users_and_grants_are_managed_over_the_api() {
    let admin = setup().await;
    let (status, user) = admin
        .call(Method::POST, "/admin/v1/users", Some(json!({"username": "erin", "password": "erin-password"})))
        .await;
    assert_eq!(status, 201, "{user}");
    assert!(user.get("password").is_none() && user.get("password_hash").is_none());
    let (status, _) = admin
        .call(Method::POST, "/admin/v1/users", Some(json!({"username": "erin", "password": "erin-password"})))
        .await;
    assert_eq!(status, 409);
    let (_, users) = admin.call(Method::GET, "/admin/v1/users", None).await;
    assert_eq!(users["users"].as_array().unwrap().len(), 1);

    let machine = admin.app.machine_client("F", &[]);
    admin.app.access_token(&machine, None).await;
    let (status, grants) = admin.call(Method::GET, &format!("/admin/v1/grants?client={}", machine.id), None).await;
    assert_eq!(status, 200);
    let grant = &grants["grants"][0];
    assert_eq!(grant["scope"], "profile");
    assert_eq!(grant["subject"], machine.id.as_str());
    assert_eq!(grant["access_count"], 0);
    assert!(grant["remaining_accesses"].is_null() && grant["expires_at"].is_null());
    assert_eq!(grant["state"], "active");
    let (status, _) = admin.call(Method::GET, "/admin/v1/grants?user=nobody", None).await;
    assert_eq!(status, 404);

    let (status, _) = admin.call(Method::DELETE, "/admin/v1/users/erin", None).await;
    assert_eq!(status, 204);
    let (status, _) = admin.call(Method::DELETE, "/admin/v1/users/erin", None).await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn clients_are_listed_edited_and_deleted_and_their_tokens_end_with_them() {
    let admin = setup().await;
    let (_, created) = admin
        .call(
            Method::POST,
            "/admin/v1/clients",
            Some(json!({"name": "App", "redirect_uris": ["https://app.example/cb"]})),
        )
        .await;
    let id = created["client_id"].as_str().unwrap().to_string();
    let (status, edited) = admin
        .call(
            Method::PATCH,
            &format!("/admin/v1/clients/{id}"),
            Some(json!({"token_format": "opaque", "redirect_uris": ["https://app.example/cb2"]})),
        )
        .await;
    assert_eq!(status, 200, "{edited}");
    assert_eq!(edited["token_format"], "opaque");
    assert_eq!(edited["redirect_uris"], json!(["https://app.example/cb2"]));
    assert!(edited.get("client_secret").is_none(), "the secret is shown only at creation");
    let (status, body) = admin
        .call(Method::PATCH, &format!("/admin/v1/clients/{id}"), Some(json!({"redirect_uris": ["not a uri"]})))
        .await;
    assert_eq!((status, body["error"].as_str()), (400, Some("invalid_redirect_uri")));
    let (_, list) = admin.call(Method::GET, "/admin/v1/clients", None).await;
    assert!(list["clients"].as_array().unwrap().iter().any(|c| c["client_id"] == id.as_str()));

    let secret = created["client_secret"].as_str().unwrap().to_string();
    let client = TestClient { id: id.clone(), secret };
    let token = admin.app.access_token(&client, None).await["access_token"].as_str().unwrap().to_string();
    let bank_api = admin.app.resource_server();
    assert_eq!(admin.app.introspect(&bank_api, &token).await["active"], true);
    let (status, _) = admin.call(Method::DELETE, &format!("/admin/v1/clients/{id}"), None).await;
    assert_eq!(status, 204);
    assert_eq!(admin.app.introspect(&bank_api, &token).await["active"], false);
    let (status, _) = admin.call(Method::GET, &format!("/admin/v1/clients/{id}"), None).await;
    assert_eq!(status, 404);
}

/// SPEC Part 2: a redirect URI is `https`, `http` only on a loopback host, a reverse-domain
/// private-use scheme only for a public client, and has no fragment, user information or
/// wildcard; anything else is `400 invalid_redirect_uri`, on create and on edit, and stores
/// nothing.
#[tokio::test]
async fn redirect_uris_outside_the_registration_policy_are_refused_on_create_and_edit() {
    let admin = setup().await;
    let new_client = |public: bool, uris: &[&str]| json!({"name": "App", "public": public, "redirect_uris": uris});
    for (public, uri) in [
        (false, "http://app.example/cb"),
        (false, "https://app.example/cb#done"),
        (false, "https://user:pw@app.example/cb"),
        (false, "https://*.app.example/cb"),
        (false, "https://app.example/*"),
        (false, "com.example.app:/cb"),
        (true, "myapp:/cb"),
        (true, "javascript:alert(1)"),
        (true, "data:text/html,hi"),
        (true, "file:///etc/passwd"),
        (false, "/cb"),
    ] {
        let (status, body) = admin.call(Method::POST, "/admin/v1/clients", Some(new_client(public, &[uri]))).await;
        assert_eq!((status, body["error"].as_str()), (400, Some("invalid_redirect_uri")), "{uri}: {body}");
        assert!(body["error_description"].as_str().unwrap().contains(uri), "{body}");
    }
    let (_, list) = admin.call(Method::GET, "/admin/v1/clients", None).await;
    assert!(list["clients"].as_array().unwrap().iter().all(|c| c["name"] != "App"), "nothing was stored: {list}");

    for (public, uri) in [
        (false, "https://app.example/cb"),
        (false, "http://127.0.0.1:8400/cb"),
        (false, "http://[::1]:8400/cb"),
        (false, "http://localhost:3000/cb"),
        (true, "com.example.app:/oauth2redirect"),
    ] {
        let (status, body) = admin.call(Method::POST, "/admin/v1/clients", Some(new_client(public, &[uri]))).await;
        assert_eq!(status, 201, "{uri}: {body}");
    }

    let (_, created) =
        admin.call(Method::POST, "/admin/v1/clients", Some(new_client(false, &["https://app.example/cb"]))).await;
    let path = format!("/admin/v1/clients/{}", created["client_id"].as_str().unwrap());
    let (status, body) = admin
        .call(Method::PATCH, &path, Some(json!({"redirect_uris": ["https://app.example/cb", "http://app.example/cb"]})))
        .await;
    assert_eq!((status, body["error"].as_str()), (400, Some("invalid_redirect_uri")), "{body}");
    let (_, unchanged) = admin.call(Method::GET, &path, None).await;
    assert_eq!(unchanged["redirect_uris"], json!(["https://app.example/cb"]));
}

fn every_route() -> Vec<(Method, &'static str, Option<Value>)> {
    vec![
        (Method::GET, "/admin/v1/openapi.json", None),
        (Method::GET, "/admin/v1/scopes", None),
        (Method::POST, "/admin/v1/scopes", Some(json!({"name": "new.scope", "short_description": "x"}))),
        (Method::GET, "/admin/v1/scopes/profile", None),
        (Method::PATCH, "/admin/v1/scopes/profile", Some(json!({"alias": "Profile"}))),
        (Method::POST, "/admin/v1/scopes/profile/move", Some(json!({"parent": null, "position": 0}))),
        (Method::DELETE, "/admin/v1/scopes/new.scope", None),
        (Method::POST, "/admin/v1/clients", Some(json!({"name": "x"}))),
        (Method::GET, "/admin/v1/clients", None),
        (Method::GET, "/admin/v1/clients/c_missing", None),
        (Method::PATCH, "/admin/v1/clients/c_missing", Some(json!({"name": "y"}))),
        (Method::PUT, "/admin/v1/clients/c_missing/scopes", Some(json!({"scopes": []}))),
        (Method::DELETE, "/admin/v1/clients/c_missing", None),
        (Method::POST, "/admin/v1/users", Some(json!({"username": "zed", "password": "zed-password"}))),
        (Method::GET, "/admin/v1/users", None),
        (Method::DELETE, "/admin/v1/users/zed", None),
        (Method::GET, "/admin/v1/grants", None),
        (Method::GET, "/obp/v3.0.0/consumers/c_missing/scopes", None),
        (Method::POST, "/obp/v3.0.0/consumers/c_missing/scopes", Some(json!({"bank_id": "", "role_name": "profile"}))),
        (Method::DELETE, "/obp/v3.0.0/consumers/c_missing/scope/1", None),
    ]
}

#[tokio::test]
async fn every_route_needs_an_admin_token() {
    let admin = setup().await;
    let key = crate::jose::ClientKey::generate();
    for (method, path, body) in every_route() {
        let (status, answer) = admin.call_as(None, method.clone(), path, body.clone()).await;
        assert_eq!(status, 401, "{method} {path} without a token: {answer}");
        let (status, _) = admin.call_as(Some("not-a-token"), method.clone(), path, body.clone()).await;
        assert_eq!(status, 401, "{method} {path} with a bad token");
        let (status, answer) = admin.call_as(Some(&admin.plain_token), method.clone(), path, body.clone()).await;
        assert_eq!(status, 403, "{method} {path} with a non-admin token: {answer}");
        // The admin token under the DPoP scheme: without a proof, and (it is not bound) with one.
        let as_dpop = |proof: Option<String>| {
            let mut request = admin
                .app
                .http
                .request(method.clone(), admin.app.url(path))
                .header("Authorization", format!("DPoP {}", admin.token));
            if let Some(proof) = proof {
                request = request.header("DPoP", proof);
            }
            async move { request.send().await.unwrap() }
        };
        let without_proof = as_dpop(None).await;
        assert_eq!(without_proof.status(), 401, "{method} {path} as DPoP without a proof");
        let url = format!("{}{path}", admin.app.settings.issuer);
        let proof = crate::jose::DpopProof::new(&key, method.as_str(), &url, chrono::Utc::now().timestamp());
        let unbound = as_dpop(Some(proof.ath_for(&admin.token).build())).await;
        assert_eq!(unbound.status(), 401, "{method} {path}: a bearer token is no DPoP token");
        if path.starts_with("/admin") {
            let refusal: Value = unbound.json().await.unwrap();
            assert_eq!(refusal["error"], "invalid_token", "{method} {path}: the proof was good, the token unbound");
        }
        let (status, answer) = admin.call(method.clone(), path, body).await;
        assert!(status < 400 || status == 404, "{method} {path} with the admin token: {status} {answer}");
    }
    let response = admin.app.http.get(admin.app.url("/admin/v1/scopes")).send().await.unwrap();
    assert!(response.headers().get("www-authenticate").unwrap().to_str().unwrap().starts_with("Bearer"));
}

#[tokio::test]
async fn a_malformed_json_body_on_every_write_route_is_a_400() {
    let admin = setup().await;
    for (method, path, body) in every_route() {
        if body.is_none() || path.starts_with("/obp") {
            continue;
        }
        for malformed in ["{", "[]", "null", "{\"name\": 5}", "not json"] {
            let response = admin
                .app
                .http
                .request(method.clone(), admin.app.url(path))
                .bearer_auth(&admin.token)
                .header("content-type", "application/json")
                .body(malformed)
                .send()
                .await
                .unwrap();
            let status = response.status().as_u16();
            let answer: Value = response.json().await.unwrap();
            assert_eq!(status, 400, "{method} {path} with {malformed}: {answer}");
            assert_eq!(answer["error"], "invalid_request");
        }
    }
}

#[tokio::test]
async fn the_openapi_document_describes_every_admin_route() {
    let admin = setup().await;
    let (status, document) = admin.call(Method::GET, "/admin/v1/openapi.json", None).await;
    assert_eq!(status, 200);
    assert!(document["openapi"].as_str().unwrap().starts_with("3."));
    let paths = document["paths"].as_object().unwrap();
    for path in [
        "/admin/v1/scopes",
        "/admin/v1/scopes/{name}",
        "/admin/v1/scopes/{name}/move",
        "/admin/v1/clients",
        "/admin/v1/clients/{client_id}",
        "/admin/v1/clients/{client_id}/scopes",
        "/admin/v1/users",
        "/admin/v1/users/{username}",
        "/admin/v1/grants",
    ] {
        assert!(paths.contains_key(path), "{path} missing from the OpenAPI document");
    }
    assert!(document["components"]["schemas"]["ScopeNode"].is_object());
}

#[tokio::test]
async fn obp_consumer_scope_routes_answer_in_obps_shapes() {
    let admin = setup().await;
    admin.app.import_scopes(
        r#"{"scopes": [{"name": "CanGetAccounts", "short_description": "System role"},
            {"name": "CanCreateTransfer", "short_description": "Bank role", "bank_level": true}]}"#,
    );
    let consumer = admin.app.machine_client("F", &[]);
    let base = format!("/obp/v3.0.0/consumers/{}", consumer.id);

    let (status, created) = admin
        .call(Method::POST, &format!("{base}/scopes"), Some(json!({"bank_id": "", "role_name": "CanGetAccounts"})))
        .await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["role_name"], "CanGetAccounts");
    assert_eq!(created["bank_id"], "");
    let scope_id = created["scope_id"].as_str().unwrap().to_string();
    let (status, bank) = admin
        .call(
            Method::POST,
            &format!("{base}/scopes"),
            Some(json!({"bank_id": "gh.29.uk", "role_name": "CanCreateTransfer"})),
        )
        .await;
    assert_eq!((status, bank["bank_id"].as_str()), (201, Some("gh.29.uk")));

    let (status, list) = admin.call(Method::GET, &format!("{base}/scopes"), None).await;
    assert_eq!(status, 200);
    assert_eq!(list["list"].as_array().unwrap().len(), 2);

    let obp_error = |expected_status: u16, code: &'static str| {
        move |(status, body): (u16, Value)| {
            assert_eq!(status, expected_status, "{body}");
            assert_eq!(body["code"], expected_status);
            assert!(body["message"].as_str().unwrap().starts_with(code), "{body}");
        }
    };
    obp_error(400, "OBP-30216")(
        admin
            .call(Method::POST, &format!("{base}/scopes"), Some(json!({"bank_id": "", "role_name": "CanGetAccounts"})))
            .await,
    );
    obp_error(400, "OBP-30205")(
        admin
            .call(
                Method::POST,
                &format!("{base}/scopes"),
                Some(json!({"bank_id": "", "role_name": "CanCreateTransfer"})),
            )
            .await,
    );
    obp_error(400, "OBP-30206")(
        admin
            .call(
                Method::POST,
                &format!("{base}/scopes"),
                Some(json!({"bank_id": "b1", "role_name": "CanGetAccounts"})),
            )
            .await,
    );
    obp_error(400, "OBP-10007")(
        admin
            .call(Method::POST, &format!("{base}/scopes"), Some(json!({"bank_id": "", "role_name": "NoSuchRole"})))
            .await,
    );
    obp_error(400, "OBP-10001")(admin.call(Method::POST, &format!("{base}/scopes"), Some(json!({"role": 1}))).await);
    obp_error(404, "OBP-20024")(admin.call(Method::GET, "/obp/v3.0.0/consumers/c_nobody/scopes", None).await);
    obp_error(401, "OBP-20001")(admin.call_as(None, Method::GET, &format!("{base}/scopes"), None).await);
    obp_error(403, "OBP-20050")(
        admin.call_as(Some(&admin.plain_token), Method::GET, &format!("{base}/scopes"), None).await,
    );
    obp_error(404, "OBP-30212")(admin.call(Method::DELETE, &format!("{base}/scope/999999"), None).await);

    let (status, _) = admin.call(Method::DELETE, &format!("{base}/scope/{scope_id}"), None).await;
    assert_eq!(status, 200);
    let (_, list) = admin.call(Method::GET, &format!("{base}/scopes"), None).await;
    assert_eq!(list["list"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn an_admin_change_reaches_the_token_path_of_another_instance_within_two_seconds() {
    let admin = setup().await;
    let (_, other_dir) = crate::helpers::fresh_settings();
    let other = crate::helpers::spawn_app_with(admin.app.settings.clone(), other_dir).await;
    let client = admin.app.machine_client("F", &[]);
    let (status, _) = admin
        .call(Method::POST, "/admin/v1/scopes", Some(json!({"name": "fresh", "short_description": "Fresh"})))
        .await;
    assert_eq!(status, 201);
    // At once on this instance.
    assert_eq!(admin.app.access_token(&client, Some("fresh")).await["scope"], "fresh");
    // Within 2 s on the other.
    let started = std::time::Instant::now();
    loop {
        let response = other.client_credentials(&client, Some("fresh")).await;
        if response.status() == 200 {
            break;
        }
        assert!(started.elapsed() < std::time::Duration::from_secs(2), "not seen by the other instance within 2 s");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn an_unknown_scope_is_404_scope_not_found_and_an_unknown_parent_is_400() {
    let admin = setup().await;
    for (method, path, body) in [
        (Method::GET, "/admin/v1/scopes/nope", None),
        (Method::PATCH, "/admin/v1/scopes/nope", Some(json!({"alias": "x"}))),
        (Method::POST, "/admin/v1/scopes/nope/move", Some(json!({"parent": null}))),
        (Method::DELETE, "/admin/v1/scopes/nope", None),
    ] {
        let (status, body) = admin.call(method.clone(), path, body).await;
        assert_eq!((status, body["error"].as_str()), (404, Some("scope_not_found")), "{method} {path}");
    }
    let orphan = json!({"name": "child", "short_description": "C", "parent": "nope"});
    let (status, body) = admin.call(Method::POST, "/admin/v1/scopes", Some(orphan)).await;
    assert_eq!((status, body["error"].as_str()), (400, Some("invalid_request")), "{body}");
}

#[tokio::test]
async fn the_reserved_admin_scope_takes_no_children_so_administrators_cannot_lock_themselves_out() {
    let admin = setup().await;
    let child = json!({"name": "scopegate:admin.more", "short_description": "More", "parent": "scopegate:admin", "security_level": "A"});
    let (status, body) = admin.call(Method::POST, "/admin/v1/scopes", Some(child)).await;
    assert_eq!((status, body["error"].as_str()), (400, Some("invalid_request")), "{body}");
    assert!(body["error_description"].as_str().unwrap().contains("takes no children"), "{body}");
    let moved = json!({"parent": "scopegate:admin"});
    let (status, body) = admin.call(Method::POST, "/admin/v1/scopes/profile/move", Some(moved)).await;
    assert_eq!(status, 400, "{body}");
    assert!(body["error_description"].as_str().unwrap().contains("takes no children"), "{body}");
    // Nor can an edit take it from the admin clients.
    let (status, body) = admin
        .call(Method::PATCH, "/admin/v1/scopes/scopegate:admin", Some(json!({"auth_types": ["authorization_code"]})))
        .await;
    assert_eq!(status, 400, "{body}");
    assert!(body["error_description"].as_str().unwrap().contains("auth_types"), "{body}");
    let (status, _) = admin.call(Method::GET, "/admin/v1/scopes", None).await;
    assert_eq!(status, 200, "the admin token still works");
}

/// Clients are served from memory on the token paths (issue 11). A change made through one
/// instance reaches another server process — which shares no memory with this test, so only
/// the database counter and its poll can tell it — within two seconds: a removed assignment,
/// then a deleted client.
#[tokio::test]
async fn a_client_change_reaches_the_token_path_of_another_server_process_within_two_seconds() {
    let admin = setup().await;
    let vault = json!({"name": "vault", "short_description": "Vault", "visibility": "private"});
    let (status, body) = admin.call(Method::POST, "/admin/v1/scopes", Some(vault)).await;
    assert_eq!(status, 201, "{body}");
    let client = admin.app.machine_client("F", &["vault"]);
    let other = crate::helpers::ServerProcess::start(&admin.app.settings).await;
    let http = reqwest::Client::new();
    let token_at_other = || {
        http.post(format!("{}/token", other.url))
            .basic_auth(&client.id, Some(&client.secret))
            .form(&[("grant_type", "client_credentials"), ("scope", "vault")])
            .send()
    };
    // The other process reads the client (and its assignment) once and keeps it.
    let first = token_at_other().await.unwrap();
    assert_eq!(first.status(), 200);
    assert_eq!(first.json::<serde_json::Value>().await.unwrap()["scope"], "vault");

    let (status, body) =
        admin.call(Method::PUT, &format!("/admin/v1/clients/{}/scopes", client.id), Some(json!({"scopes": []}))).await;
    assert_eq!(status, 200, "{body}");
    let until = |expected: u16| async move {
        let started = std::time::Instant::now();
        loop {
            let status = token_at_other().await.unwrap().status().as_u16();
            if status == expected {
                return started.elapsed();
            }
            assert!(started.elapsed() < std::time::Duration::from_secs(2), "still {status}, not {expected}, after 2 s");
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    };
    // A private scope no longer assigned is refused (invalid_scope).
    eprintln!("unassignment seen after {:?}", until(400).await);

    let (status, _) = admin.call(Method::DELETE, &format!("/admin/v1/clients/{}", client.id), None).await;
    assert_eq!(status, 204);
    eprintln!("deletion seen after {:?}", until(401).await);
}

/// The bearer token is checked before the body is read: a caller without a valid token gets
/// a 401, never a 400 whose parser detail tells it about the route (issue 12).
#[tokio::test]
async fn a_malformed_body_without_a_valid_token_is_a_401_not_a_parser_message() {
    let admin = setup().await;
    for (method, path, body) in every_route() {
        if body.is_none() {
            continue;
        }
        for token in [None, Some("garbage"), Some(admin.plain_token.as_str())] {
            let mut request = admin.app.http.request(method.clone(), admin.app.url(path));
            if let Some(token) = token {
                request = request.bearer_auth(token);
            }
            let response = request.header("content-type", "application/json").body("{not json").send().await.unwrap();
            let status = response.status().as_u16();
            let text = response.text().await.unwrap();
            let expected = if token == Some(admin.plain_token.as_str()) { 403 } else { 401 };
            assert_eq!(status, expected, "{method} {path} with token {token:?} and a malformed body: {text}");
            assert!(!text.contains("malformed") && !text.contains("JSON"), "{method} {path}: {text}");
        }
    }
}
