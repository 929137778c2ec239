//! Parameterised scopes (issue 15, SPEC "Banking consents"): `<name>:<value>` is validated at
//! every entry point, each value is a grant of its own with its own limits, the consent page
//! shows the value, and tokens, introspection, the account page and Grant Management carry the
//! concrete string. Over real HTTP on both backends.

use crate::browser_flow::{approve, authorize_path, exchange, hidden, location, query_of, Browser, REDIRECT};
use crate::helpers::{spawn_app, TestApp, TestClient};
use reqwest::Method;
use scopegate::domain::client::ClientRegistration;
use serde_json::{json, Value};
use std::collections::HashMap;

/// `payments` (private) > `payments.pay` (parameterised, 2 accesses per value); level C, so
/// the FAPI rule (levels A and B) stays out of this file's way.
const TREE: &str = r#"{"scopes": [
  {"name": "profile", "short_description": "Profile", "user_authorization_required": false},
  {"name": "payments", "alias": "Payments", "short_description": "Payments", "visibility": "private",
   "security_level": "C", "children": [
     {"name": "payments.pay", "alias": "Pay an invoice", "short_description": "Make one payment",
      "visibility": "private", "security_level": "C", "max_access_count": 2, "parameterised": true}
   ]}
]}"#;

fn setup(app: &TestApp) -> TestClient {
    app.import_scopes(TREE);
    app.cli(&["user", "create", "alice", "--password-stdin"], Some("alice-password"));
    app.create_client(
        ClientRegistration {
            name: "Invoice app".into(),
            redirect_uris: vec![REDIRECT.into()],
            security_level: Some("C".parse().unwrap()),
            ..Default::default()
        },
        &["profile", "payments"],
    )
}

/// Signs alice in for `path` and answers the page or redirect that follows.
async fn signed_in(alice: &Browser<'_>, path: &str) -> reqwest::Response {
    let first = alice.get(path).await;
    if first.status() != 303 || !location(&first).starts_with("/login") {
        return first;
    }
    let next = query_of(&format!("http://x{}", location(&first)))["next"].clone();
    let back = location(&alice.login("alice", "alice-password", &next).await);
    alice.get(&back).await
}

/// A new grant (Grant Management `create`) for `scope`, approved as shown: the code's answer.
async fn consent(alice: &Browser<'_>, client: &TestClient, scope: &str) -> (String, HashMap<String, String>) {
    let page = signed_in(alice, &authorize_path(client, Some(scope), &[("grant_management_action", "create")])).await;
    assert_eq!(page.status(), 200, "the consent page");
    let html = page.text().await.unwrap();
    let answer = approve(alice, &html, None).await;
    (html, answer)
}

async fn admin_token(app: &TestApp) -> String {
    let admin = app.create_client(ClientRegistration { name: "Ops".into(), admin: true, ..Default::default() }, &[]);
    app.access_token(&admin, Some("scopegate:admin")).await["access_token"].as_str().unwrap().to_string()
}

async fn tokens_for(app: &TestApp, client: &TestClient, answer: &HashMap<String, String>) -> Value {
    let response = exchange(app, client, &answer["code"]).await;
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

#[tokio::test]
async fn each_value_is_its_own_grant_with_its_own_limits_and_the_concrete_string_goes_everywhere() {
    let app = spawn_app().await;
    let client = setup(&app);
    let alice = Browser::new(&app);
    let bank_api = app.resource_server();

    let (page, answer) = consent(&alice, &client, "payments.pay:INV-1").await;
    assert!(page.contains("Pay an invoice \u{2014} INV-1"), "the consent page shows the value:\n{page}");
    assert!(page.contains("value=\"payments.pay:INV-1\""), "its box is the concrete string");
    let first = tokens_for(&app, &client, &answer).await;
    assert_eq!(first["scope"], "payments.pay:INV-1");
    let (_, answer) = consent(&alice, &client, "payments.pay:INV-2").await;
    let second = tokens_for(&app, &client, &answer).await;
    assert_ne!(first["grant_id"], second["grant_id"], "one grant per payment");

    // INV-1's two accesses are its own: spending them leaves INV-2's untouched.
    let token_1 = first["access_token"].as_str().unwrap();
    let token_2 = second["access_token"].as_str().unwrap();
    let introspected = app.introspect(&bank_api, token_1).await;
    assert_eq!(introspected["scope"], "payments.pay:INV-1", "{introspected}");
    assert_eq!(introspected["scope_limits"]["payments.pay:INV-1"]["remaining_accesses"], 1);
    assert_eq!(app.introspect(&bank_api, token_1).await["scope_limits"]["payments.pay:INV-1"]["remaining_accesses"], 0);
    let spent = app.introspect(&bank_api, token_1).await;
    assert_eq!(spent["active"], false, "INV-1 is used up and was the token's only scope: {spent}");
    let other = app.introspect(&bank_api, token_2).await;
    assert_eq!(other["scope"], "payments.pay:INV-2");
    assert_eq!(other["scope_limits"]["payments.pay:INV-2"]["remaining_accesses"], 1, "{other}");

    // The account page and the admin listing name each payment.
    let account = alice.get("/account").await.text().await.unwrap();
    assert!(account.contains("Pay an invoice \u{2014} INV-1") && account.contains("Pay an invoice \u{2014} INV-2"));
    assert!(account.contains("payments.pay:INV-2"), "{account}");
    let listed: Value = app
        .http
        .get(app.url(&format!("/admin/v1/grants?client_id={}", client.id)))
        .bearer_auth(admin_token(&app).await)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let states: HashMap<String, String> = listed["grants"]
        .as_array()
        .unwrap()
        .iter()
        .map(|grant| (grant["scope"].as_str().unwrap().to_string(), grant["state"].as_str().unwrap().to_string()))
        .collect();
    assert_eq!(states.get("payments.pay:INV-1").map(String::as_str), Some("exhausted"), "{listed}");
    assert_eq!(states.get("payments.pay:INV-2").map(String::as_str), Some("active"), "{listed}");
}

#[tokio::test]
async fn the_value_syntax_is_checked_at_authorize_par_and_token_and_the_bare_name_is_refused() {
    let app = spawn_app().await;
    let client = setup(&app);
    let alice = Browser::new(&app);
    let long = format!("payments.pay:{}", "9".repeat(65));
    for (scope, why) in [
        ("payments.pay", "the bare name"),
        ("payments.pay:", "an empty value"),
        ("payments.pay:a=b", "a character outside the alphabet"),
        (long.as_str(), "a value of 65 characters"),
        ("payments:INV-1", "a scope that is not parameterised"),
    ] {
        let answer = signed_in(&alice, &authorize_path(&client, Some(scope), &[])).await;
        let target = location(&answer);
        assert!(target.starts_with(REDIRECT), "{why}: {target}");
        assert_eq!(query_of(&target)["error"], "invalid_scope", "{why} at /authorize");

        let pushed = app
            .post_form(
                "/par",
                Some(&client),
                &[
                    ("response_type", "code"),
                    ("client_id", &client.id),
                    ("redirect_uri", REDIRECT),
                    ("scope", scope),
                    ("code_challenge", &crate::browser_flow::challenge(crate::browser_flow::VERIFIER)),
                    ("code_challenge_method", "S256"),
                ],
            )
            .await;
        assert_eq!(pushed.status(), 400, "{why} at /par");
        assert_eq!(pushed.json::<Value>().await.unwrap()["error"], "invalid_scope", "{why} at /par");
    }
    // 64 characters of the whole alphabet are a value.
    let longest = format!("payments.pay:{}", "aZ0._~-9".repeat(8));
    let page = signed_in(&alice, &authorize_path(&client, Some(&longest), &[])).await;
    assert_eq!(page.status(), 200, "a value of 64 characters reaches the consent page");

    // Client credentials: a machine with the scope assigned gets neither the bare name nor a
    // value (a value is a user's consent), and the parent alone as before.
    let machine = app.create_client(
        ClientRegistration {
            name: "Payment robot".into(),
            security_level: Some("C".parse().unwrap()),
            ..Default::default()
        },
        &["payments"],
    );
    let bare = app.client_credentials(&machine, Some("payments.pay")).await;
    assert_eq!(bare.status(), 400);
    let refusal: Value = bare.json().await.unwrap();
    assert_eq!(refusal["error"], "invalid_scope");
    assert!(refusal["error_description"].as_str().unwrap().contains("payments.pay:<value>"), "{refusal}");
    let value = app.client_credentials(&machine, Some("payments payments.pay:R-7")).await;
    assert_eq!(value.status(), 400);
    let refusal: Value = value.json().await.unwrap();
    assert_eq!(refusal["error"], "invalid_scope", "{refusal}");
    let parent_only = app.access_token(&machine, Some("payments")).await;
    assert_eq!(parent_only["scope"], "payments");
}

#[tokio::test]
async fn the_parameterised_field_goes_through_the_admin_api_and_export_and_keeps_the_scope_a_leaf() {
    let app = spawn_app().await;
    setup(&app);
    let token = admin_token(&app).await;
    let call = |method: Method, path: &str, body: Option<Value>| {
        let mut request = app.http.request(method, app.url(path)).bearer_auth(&token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        async move {
            let response = request.send().await.unwrap();
            (response.status().as_u16(), response.json::<Value>().await.unwrap_or(Value::Null))
        }
    };
    let (status, scope) = call(Method::GET, "/admin/v1/scopes/payments.pay", None).await;
    assert_eq!((status, scope["parameterised"].clone()), (200, json!(true)), "{scope}");
    let (status, created) = call(
        Method::POST,
        "/admin/v1/scopes",
        Some(json!({"name": "consents.read", "short_description": "Read one consent", "parameterised": true})),
    )
    .await;
    assert_eq!((status, created["parameterised"].clone()), (201, json!(true)), "{created}");
    let (status, refused) = call(
        Method::POST,
        "/admin/v1/scopes",
        Some(json!({"name": "payments.pay.domestic", "parent": "payments.pay", "short_description": "Domestic"})),
    )
    .await;
    assert_eq!(status, 400, "a parameterised scope takes no children: {refused}");
    let (status, refused) =
        call(Method::PATCH, "/admin/v1/scopes/consents.read", Some(json!({"default_scope": true}))).await;
    assert_eq!(status, 400, "nor is it a default scope: {refused}");
    let (status, refused) =
        call(Method::PATCH, "/admin/v1/scopes/payments", Some(json!({"parameterised": true}))).await;
    assert_eq!(status, 400, "a scope with children cannot become parameterised: {refused}");

    let exported = app.cli(&["scope", "export"], None);
    let document: Value = serde_json::from_slice(&exported.stdout).unwrap();
    let text = document.to_string();
    assert!(text.contains(r#""name":"payments.pay""#) && text.contains(r#""parameterised":true"#), "{text}");
}

#[tokio::test]
async fn the_consent_page_names_each_value_and_a_parent_does_not_imply_one() {
    let app = spawn_app().await;
    let client = setup(&app);
    let alice = Browser::new(&app);
    let page =
        signed_in(&alice, &authorize_path(&client, Some("payments payments.pay:A-1 payments.pay:B-2"), &[])).await;
    let html = page.text().await.unwrap();
    assert!(html.contains("Pay an invoice \u{2014} A-1") && html.contains("Pay an invoice \u{2014} B-2"), "{html}");
    // Unticking the parent keeps the payments: they are not its children.
    let csrf = hidden(&html, "csrf_token");
    let consent_token = hidden(&html, "consent_token");
    let form = [
        ("csrf_token", csrf.as_str()),
        ("consent_token", consent_token.as_str()),
        ("decision", "allow"),
        ("scope", "payments.pay:B-2"),
    ];
    let answer = query_of(&location(&alice.post("/authorize/consent", &form).await));
    let tokens = tokens_for(&app, &client, &answer).await;
    assert_eq!(tokens["scope"], "payments.pay:B-2", "the parent unticked, the ticked payment alone");
}

/// The demo's "Pay PAY-123": the payment app pushes its request with a `private_key_jwt`
/// assertion, alice consents to that one payment, and the app exchanges the code with a DPoP
/// proof and pays through the bank's payment API, which counts the access: the consent pays
/// once. The bank's API refuses the same token as a bearer token, before it counts anything.
#[tokio::test]
async fn the_demo_pays_pay_123_through_par_private_key_jwt_and_dpop() {
    let (mut settings, dir) = crate::helpers::fresh_settings();
    settings.demo = true;
    let app = crate::helpers::spawn_app_with(settings, dir).await;
    let issuer = app.settings.issuer.clone();
    scopegate::services::demo::seed(
        &mut app.state.db.get().unwrap(),
        &app.state.hasher,
        &app.state.registry,
        &issuer,
        chrono::Utc::now(),
    )
    .unwrap();
    let alice = Browser::new(&app);
    let landing = alice.get("/demo").await.text().await.unwrap();
    assert!(landing.contains("action=\"/demo/pay\"") && landing.contains("Pay PAY-123"), "{landing}");

    let pushed = alice.get("/demo/pay").await;
    let authorize = location(&pushed);
    assert!(authorize.starts_with("/authorize?client_id=payments-app&request_uri=urn"), "{authorize}");
    let page = signed_in(&alice, &authorize).await;
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    assert!(html.contains("Transfer \u{2014} PAY-123"), "the consent page names the payment:\n{html}");
    let csrf = hidden(&html, "csrf_token");
    let consent_token = hidden(&html, "consent_token");
    let form = [
        ("csrf_token", csrf.as_str()),
        ("consent_token", consent_token.as_str()),
        ("decision", "allow"),
        ("scope", "payments.transfer:PAY-123"),
    ];
    let back = location(&alice.post("/authorize/consent", &form).await);
    let callback = back.strip_prefix(&issuer).unwrap_or_else(|| panic!("back to the demo app: {back}"));
    assert!(callback.starts_with("/demo/pay/callback?"), "{callback}");
    let result = alice.get(callback).await.text().await.unwrap();
    let result = result.replace("&quot;", "\"").replace("&#34;", "\"");
    assert!(result.contains("Payment PAY-123 sent"), "{result}");
    assert!(result.contains(r#""token_type": "DPoP""#), "a DPoP-bound token: {result}");
    assert!(result.contains(r#""scope": "payments.transfer:PAY-123""#), "{result}");
    assert!(result.contains(r#""status": "executed""#), "{result}");
    assert!(result.contains(r#""remaining_accesses": 0"#), "the consent pays once: {result}");
    assert!(result.contains(r#""jkt""#), "introspection shows the key binding: {result}");

    // Allow a second payment, then show the bank's APIs the token without a DPoP proof, and
    // with a proof by a thief's key: all refused before the introspection that would count.
    let patch = scopegate::domain::scope_tree::ScopePatch { max_access_count: Some(2), ..Default::default() };
    let cli = scopegate::domain::event::Actor::Cli;
    let connection = &mut app.state.db.get().unwrap();
    app.state.registry.edit(connection, "payments.transfer", patch, &cli, chrono::Utc::now()).unwrap();
    let token = result.split(r#""access_token": ""#).nth(1).and_then(|rest| rest.split('"').next()).unwrap();
    let thief = crate::jose::ClientKey::generate();
    for (method, path) in [
        (Method::POST, "/demo/bank/payments/PAY-123"),
        (Method::POST, "/demo/bank/payments/PAY-999"),
        (Method::GET, "/demo/bank/balance"),
    ] {
        let as_bearer = app.http.request(method.clone(), app.url(path)).bearer_auth(token).send().await.unwrap();
        assert_eq!(as_bearer.status(), 401, "{path}");
        let refusal: Value = as_bearer.json().await.unwrap();
        assert_eq!(refusal["error"], "invalid_token", "{path}: {refusal}");
        // The thief's own key, with a proof that is right in every other way.
        let url = format!("{issuer}{path}");
        let proof = crate::jose::DpopProof::new(&thief, method.as_str(), &url, chrono::Utc::now().timestamp());
        let with_own_key = app
            .http
            .request(method, app.url(path))
            .header("Authorization", format!("DPoP {token}"))
            .header("DPoP", proof.ath_for(token).build())
            .send()
            .await
            .unwrap();
        assert_eq!(with_own_key.status(), 401, "{path} with the thief's key");
        let refusal: Value = with_own_key.json().await.unwrap();
        let description = refusal["error_description"].as_str().unwrap_or_default();
        assert!(refusal["error"] == "invalid_token" && description.contains("another key"), "{path}: {refusal}");
    }
    let account = alice.get("/account").await.text().await.unwrap();
    let row = account.split("payments.transfer:PAY-123</span>").nth(1).and_then(|rest| rest.split("</tr>").next());
    assert!(
        row.is_some_and(|row| row.contains(r#"data-label="Remaining accesses">1 left</td>"#)),
        "the refused calls spent nothing: one of two accesses is left:\n{account}"
    );
    let no_token = app.http.post(app.url("/demo/bank/payments/PAY-123")).send().await.unwrap();
    assert_eq!(no_token.status(), 401);
}

/// The registry keeps each value unambiguous and a held scope's meaning fixed: no scope is
/// named like a value of a parameterised one, a parameterised scope always asks the user, and
/// `parameterised` does not flip while a grant holds the scope, through the admin API and
/// `scope import` alike. An unheld scope flips freely.
#[tokio::test]
async fn the_registry_refuses_namesakes_silent_values_and_flipping_a_held_scope() {
    let app = spawn_app().await;
    let client = setup(&app);
    let token = admin_token(&app).await;
    let call = |method: Method, path: &str, body: Value| {
        let request = app.http.request(method, app.url(path)).bearer_auth(&token).json(&body);
        async move {
            let response = request.send().await.unwrap();
            (response.status().as_u16(), response.json::<Value>().await.unwrap_or(Value::Null))
        }
    };
    let namesake = json!({"name": "payments.pay:INV-9", "parent": "payments", "short_description": "Hijack"});
    let (status, refused) = call(Method::POST, "/admin/v1/scopes", namesake).await;
    assert_eq!(status, 400, "a scope named like a value: {refused}");
    assert!(refused["error_description"].as_str().unwrap_or_default().contains("is a value of"), "{refused}");
    let (status, refused) =
        call(Method::PATCH, "/admin/v1/scopes/payments.pay", json!({"user_authorization_required": false})).await;
    assert_eq!(status, 400, "a value is always the user's consent: {refused}");

    let alice = Browser::new(&app);
    let (_, answer) = consent(&alice, &client, "payments.pay:INV-1").await;
    tokens_for(&app, &client, &answer).await;
    let (status, refused) = call(Method::PATCH, "/admin/v1/scopes/payments.pay", json!({"parameterised": false})).await;
    assert_eq!((status, refused["error"].as_str()), (409, Some("scope_in_use")), "{refused}");
    let flipped = TREE.replace(r#""parameterised": true"#, r#""parameterised": false"#);
    let file = app.dir.path().join("flipped.json");
    std::fs::write(&file, flipped).unwrap();
    let imported = app.cli(&["scope", "import", file.to_str().unwrap()], None);
    let stderr = String::from_utf8_lossy(&imported.stderr);
    assert!(!imported.status.success() && stderr.contains("cannot change parameterised"), "{stderr}");
    let file = app.dir.path().join("namesake.json");
    let with_namesake = TREE.replace(
        r#"{"name": "profile","#,
        r#"{"name": "payments.pay:INV-1", "short_description": "Hijack"}, {"name": "profile","#,
    );
    std::fs::write(&file, with_namesake).unwrap();
    let imported = app.cli(&["scope", "import", file.to_str().unwrap()], None);
    let stderr = String::from_utf8_lossy(&imported.stderr);
    assert!(!imported.status.success() && stderr.contains("is a value of"), "{stderr}");
    let (_, kept) = call(Method::GET, "/admin/v1/scopes/payments.pay", Value::Null).await;
    assert_eq!(kept["parameterised"], true, "every refusal changed nothing: {kept}");

    let unheld = json!({"name": "consents.read", "short_description": "Read one consent", "parameterised": true});
    assert_eq!(call(Method::POST, "/admin/v1/scopes", unheld).await.0, 201);
    let (status, flipped) =
        call(Method::PATCH, "/admin/v1/scopes/consents.read", json!({"parameterised": false})).await;
    assert_eq!((status, flipped["parameterised"].clone()), (200, json!(false)), "{flipped}");
}

/// Every value is a consent of its own, so one request carries at most ten.
#[tokio::test]
async fn a_request_carries_at_most_ten_values() {
    let app = spawn_app().await;
    let client = setup(&app);
    let alice = Browser::new(&app);
    let values = |count: usize| (0..count).map(|n| format!("payments.pay:INV-{n}")).collect::<Vec<_>>().join(" ");
    let page = signed_in(&alice, &authorize_path(&client, Some(&values(10)), &[])).await;
    assert_eq!(page.status(), 200, "ten payments on one consent page");
    let eleven = signed_in(&alice, &authorize_path(&client, Some(&values(11)), &[])).await;
    let answer = query_of(&location(&eleven));
    assert_eq!(answer.get("error").map(String::as_str), Some("invalid_scope"), "{answer:?}");
}
