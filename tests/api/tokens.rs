use crate::helpers::{spawn_app, TestApp, TestClient};
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use scopegate::domain::client::ClientRegistration;

const TREE: &str = r#"{"scopes": [
  {"name": "profile", "short_description": "Profile", "default_scope": true, "user_authorization_required": false},
  {"name": "accounts", "short_description": "Accounts", "security_level": "C", "children": [
    {"name": "accounts.balance", "short_description": "Balance", "security_level": "C", "access_duration_days": 90},
    {"name": "accounts.secret", "short_description": "Too sensitive for C", "security_level": "B"},
    {"name": "accounts.transactions", "short_description": "Transactions", "security_level": "C", "max_access_count": 3}
  ]},
  {"name": "user_only", "short_description": "Only through a user", "auth_types": ["authorization_code"]},
  {"name": "payments", "short_description": "Payments", "visibility": "private", "security_level": "A"}
]}"#;

/// These tests are about the registry's levels and limits; the FAPI 2.0 rule for levels A and B
/// is tested in `fapi.rs`.
async fn app() -> TestApp {
    let app = crate::helpers::spawn_app_without_fapi_levels().await;
    app.import_scopes(TREE);
    app
}

async fn error_of(response: reqwest::Response) -> (u16, serde_json::Value) {
    let status = response.status().as_u16();
    assert_eq!(response.headers().get("cache-control").unwrap(), "no-store");
    (status, response.json().await.unwrap())
}

#[tokio::test]
async fn client_credentials_give_an_rfc9068_jwt_that_verifies_against_the_jwks() {
    let app = app().await;
    let client = app.machine_client("C", &[]);
    let response = app.client_credentials(&client, Some("accounts.balance profile")).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers().get("cache-control").unwrap(), "no-store");
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 600);
    assert_eq!(body["scope"], "accounts.balance profile");
    assert!(body.get("refresh_token").is_none(), "no refresh token for client credentials");
    let token = body["access_token"].as_str().unwrap();

    let header = jsonwebtoken::decode_header(token).unwrap();
    assert_eq!(header.typ.as_deref(), Some("at+jwt"));
    assert_eq!(header.alg, Algorithm::ES256);
    let jwks: JwkSet = app.get("/jwks.json").await.json().await.unwrap();
    let jwk = jwks.find(header.kid.as_deref().unwrap()).expect("the token's kid is published");
    let mut validation = Validation::new(Algorithm::ES256);
    validation.set_audience(&[app.settings.issuer.as_str()]);
    validation.set_issuer(&[app.settings.issuer.as_str()]);
    let claims = jsonwebtoken::decode::<serde_json::Value>(token, &DecodingKey::from_jwk(jwk).unwrap(), &validation)
        .unwrap()
        .claims;
    assert_eq!(claims["sub"], client.id.as_str());
    assert_eq!(claims["client_id"], client.id.as_str());
    assert_eq!(claims["scope"], "accounts.balance profile");
    assert_eq!(claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(), 600);
    assert!(claims["jti"].as_str().unwrap().len() >= 16);
}

#[tokio::test]
async fn client_secret_post_works_too() {
    let app = app().await;
    let client = app.machine_client("F", &[]);
    let response = app
        .post_form(
            "/token",
            None,
            &[("grant_type", "client_credentials"), ("client_id", &client.id), ("client_secret", &client.secret)],
        )
        .await;
    assert_eq!(response.status(), 200);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["scope"], "profile", "no scope parameter gives the default scopes");
}

#[tokio::test]
async fn bad_client_authentication_is_invalid_client_with_a_challenge() {
    let app = app().await;
    let client = app.machine_client("F", &[]);
    let wrong = crate::helpers::TestClient { id: client.id.clone(), secret: "wrong".into() };
    let unknown = crate::helpers::TestClient { id: "c_nobody".into(), secret: client.secret.clone() };
    for who in [&wrong, &unknown] {
        let response = app.client_credentials(who, None).await;
        assert!(response.headers().get("www-authenticate").unwrap().to_str().unwrap().starts_with("Basic"));
        let (status, body) = error_of(response).await;
        assert_eq!((status, body["error"].as_str().unwrap()), (401, "invalid_client"));
    }
    let none = app.post_form("/token", None, &[("grant_type", "client_credentials")]).await;
    let (status, body) = error_of(none).await;
    assert_eq!((status, body["error"].as_str().unwrap()), (401, "invalid_client"));

    let both = app
        .post_form("/token", Some(&client), &[("grant_type", "client_credentials"), ("client_secret", &client.secret)])
        .await;
    let (status, body) = error_of(both).await;
    assert_eq!((status, body["error"].as_str().unwrap()), (400, "invalid_request"));
}

#[tokio::test]
async fn malformed_token_requests_get_their_rfc_6749_errors() {
    let app = app().await;
    let client = app.machine_client("F", &[]);
    type Case<'a> = (Vec<(&'a str, &'a str)>, u16, &'a str);
    let cases: Vec<Case> = vec![
        (vec![], 400, "invalid_request"),
        (vec![("grant_type", "password")], 400, "unsupported_grant_type"),
        (vec![("grant_type", "client_credentials"), ("scope", "bad\"scope")], 400, "invalid_scope"),
        (vec![("grant_type", "client_credentials"), ("grant_type", "client_credentials")], 400, "invalid_request"),
    ];
    for (form, status, code) in cases {
        let (got_status, body) = error_of(app.post_form("/token", Some(&client), &form).await).await;
        assert_eq!((got_status, body["error"].as_str().unwrap()), (status, code), "{form:?}: {body}");
        assert!(body["error_description"].is_string());
    }
    let json = app
        .http
        .post(app.url("/token"))
        .json(&serde_json::json!({"grant_type": "client_credentials"}))
        .send()
        .await
        .unwrap();
    let (status, body) = error_of(json).await;
    assert_eq!((status, body["error"].as_str().unwrap()), (400, "invalid_request"));
}

#[tokio::test]
async fn a_client_without_the_grant_type_is_unauthorized_client() {
    let app = app().await;
    let web_app = app.create_client(
        ClientRegistration {
            name: "Web".into(),
            redirect_uris: vec!["https://web.example/cb".into()],
            grant_types: vec!["authorization_code".parse().unwrap()],
            ..Default::default()
        },
        &[],
    );
    let (status, body) = error_of(app.client_credentials(&web_app, None).await).await;
    assert_eq!((status, body["error"].as_str().unwrap()), (400, "unauthorized_client"));
}

#[tokio::test]
async fn scope_negotiation_follows_the_registry() {
    let app = app().await;
    let level_c = app.machine_client("C", &[]);
    // A parent implies all its children, and a level-C client may not have the level-B one:
    // the token carries the children it may have, and not the parent (SPEC "Entitlement").
    let body = app.access_token(&level_c, Some("accounts")).await;
    assert_eq!(body["scope"], "accounts.balance accounts.transactions");

    for (scope, reason) in [
        ("nope", "unknown"),
        ("accounts.secret", "too sensitive"),
        ("payments", "private, not assigned"),
        ("user_only", "not for client credentials"),
        ("scopegate:admin", "reserved"),
    ] {
        let (status, body) = error_of(app.client_credentials(&level_c, Some(scope)).await).await;
        assert_eq!((status, body["error"].as_str().unwrap()), (400, "invalid_scope"), "{scope}: {reason}");
    }

    let level_a = app.machine_client("A", &["payments"]);
    assert_eq!(app.access_token(&level_a, Some("payments")).await["scope"], "payments");

    app.import_scopes(
        r#"{"scopes": [{"name": "profile", "short_description": "Profile", "user_authorization_required": false}]}"#,
    );
    let (status, body) = error_of(app.client_credentials(&level_c, None).await).await;
    assert_eq!((status, body["error"].as_str().unwrap()), (400, "invalid_scope"), "no default scope left");
}

#[tokio::test]
async fn a_count_limited_scope_gives_an_opaque_token_and_so_does_the_opaque_format() {
    let app = app().await;
    let client = app.machine_client("C", &[]);
    let counted = app.access_token(&client, Some("accounts.transactions")).await;
    let token = counted["access_token"].as_str().unwrap();
    assert_eq!(token.matches('.').count(), 0, "opaque, not a JWT: {token}");
    assert!(token.len() >= 43, "256 bits");

    let opaque_client = app.create_client(
        ClientRegistration {
            name: "Opaque".into(),
            token_format: Some("opaque".parse().unwrap()),
            ..Default::default()
        },
        &[],
    );
    let body = app.access_token(&opaque_client, None).await;
    assert_eq!(body["access_token"].as_str().unwrap().matches('.').count(), 0);

    // Stored hashed: the token itself is nowhere in the database.
    use diesel::prelude::*;
    use scopegate::storage::schema::access_tokens;
    let hashes: Vec<Option<String>> =
        access_tokens::table.select(access_tokens::token_hash).load(&mut *app.state.db.get().unwrap()).unwrap();
    assert!(hashes.iter().flatten().all(|hash| hash != token && hash.len() == 64));
}

#[tokio::test]
async fn introspection_reports_the_effective_scope_and_limits_to_resource_servers() {
    let app = app().await;
    // Level B: the client may hold every child of accounts, so it holds accounts itself.
    let client = app.machine_client("B", &[]);
    let bank_api = app.resource_server();
    let token = app.access_token(&client, Some("accounts profile")).await["access_token"].as_str().unwrap().to_string();

    // An unlimited child added after issuance is part of the client's effective scope.
    app.import_scopes(
        r#"{"scopes": [{"name": "accounts", "short_description": "Accounts", "security_level": "C", "children": [
        {"name": "accounts.standing_orders", "short_description": "Standing orders", "security_level": "C"}]}]}"#,
    );
    let body = app.introspect(&bank_api, &token).await;
    assert_eq!(body["active"], true, "{body}");
    assert_eq!(
        body["scope"],
        "accounts accounts.balance accounts.secret accounts.standing_orders accounts.transactions profile",
        "{body}"
    );
    assert_eq!(body["client_id"], client.id.as_str());
    assert_eq!(body["sub"], client.id.as_str());
    assert_eq!(body["iss"], app.settings.issuer.as_str());
    assert_eq!(body["aud"], app.settings.issuer.as_str());
    assert_eq!(body["token_type"], "Bearer");
    assert!(body["jti"].is_string() && body["exp"].is_i64() && body["iat"].is_i64());
    assert!(body.get("username").is_none());
    let limits = &body["scope_limits"];
    assert_eq!(limits["accounts.transactions"]["remaining_accesses"], 2, "this introspection counted one access");
    assert!(limits["accounts.transactions"]["expires_at"].is_null());
    assert!(limits["accounts.balance"]["expires_at"].as_str().unwrap().ends_with('Z'));
    assert!(limits["accounts.balance"]["remaining_accesses"].is_null());
    assert!(limits.get("profile").is_none(), "unlimited scopes have no limits entry");

    // The token's own client may introspect it too.
    assert_eq!(app.introspect(&client, &token).await["active"], true);
}

/// RFC 7662 §2.2, SPEC Part 2: a token the caller may not see is answered exactly as an
/// unknown one, `200 {"active": false}`, so introspection tells no client which strings are
/// someone else's live tokens; and that look counts no access. A caller that fails to
/// authenticate still gets 401.
#[tokio::test]
async fn introspecting_another_clients_token_answers_inactive_like_an_unknown_one() {
    let app = app().await;
    let owner = app.machine_client("C", &[]);
    let stranger = app.machine_client("F", &[]);
    let bank_api = app.resource_server();
    let counted =
        app.access_token(&owner, Some("accounts.transactions")).await["access_token"].as_str().unwrap().to_string();
    let jwt = app.access_token(&owner, Some("profile")).await["access_token"].as_str().unwrap().to_string();
    assert_eq!(jwt.matches('.').count(), 2, "one opaque token and one JWT");

    let unknown = app.introspect(&stranger, "no-such-token").await;
    for token in [&counted, &jwt] {
        let response = app.post_form("/introspect", Some(&stranger), &[("token", token)]).await;
        assert_eq!(response.status(), 200);
        assert_eq!(response.headers().get("cache-control").unwrap(), "no-store");
        let body: serde_json::Value = response.json().await.unwrap();
        assert_eq!(body, serde_json::json!({"active": false}));
        assert_eq!(body, unknown, "indistinguishable from an unknown token");
    }
    let seen = app.introspect(&bank_api, &counted).await;
    assert_eq!(seen["active"], true, "{seen}");
    assert_eq!(
        seen["scope_limits"]["accounts.transactions"]["remaining_accesses"], 2,
        "the stranger's look counted nothing"
    );
    assert_eq!(app.introspect(&owner, &jwt).await["active"], true);

    let impostor = TestClient { id: stranger.id.clone(), secret: "not-the-secret".into() };
    let (status, body) = error_of(app.post_form("/introspect", Some(&impostor), &[("token", &counted)]).await).await;
    assert_eq!((status, body["error"].as_str()), (401, Some("invalid_client")));
    let response = app.post_form("/introspect", None, &[("token", &counted), ("client_id", &stranger.id)]).await;
    assert_eq!(response.status(), 401, "a client_id alone does not authenticate a caller of /introspect");
}

#[tokio::test]
async fn unknown_malformed_and_revoked_tokens_introspect_inactive() {
    let app = app().await;
    let client = app.machine_client("F", &[]);
    let bank_api = app.resource_server();
    for garbage in ["", "x", "a.b.c", "eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.", &"A".repeat(5000)] {
        if garbage.is_empty() {
            let response = app.post_form("/introspect", Some(&bank_api), &[("token", garbage)]).await;
            assert_eq!(response.status(), 400, "a missing token is invalid_request");
            continue;
        }
        assert_eq!(app.introspect(&bank_api, garbage).await, serde_json::json!({"active": false}));
    }
    let token = app.access_token(&client, None).await["access_token"].as_str().unwrap().to_string();
    assert_eq!(app.introspect(&bank_api, &token).await["active"], true);
    // A JWT signed by someone else's key with our claims is not ours.
    let forged = {
        let dir = tempfile::tempdir().unwrap();
        let key = scopegate::keys::generate(dir.path(), chrono::Utc::now()).unwrap();
        let claims = jsonwebtoken::decode_header(&token).unwrap();
        let mut header = jsonwebtoken::Header::new(Algorithm::ES256);
        header.typ = Some("at+jwt".into());
        header.kid = claims.kid;
        let payload = token.split('.').nth(1).unwrap();
        let claims: serde_json::Value = serde_json::from_slice(
            &base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, payload).unwrap(),
        )
        .unwrap();
        key.sign_jwt(&header, &claims).unwrap()
    };
    assert_eq!(app.introspect(&bank_api, &forged).await["active"], false);

    let response = app.post_form("/revoke", Some(&client), &[("token", &token)]).await;
    assert_eq!(response.status(), 200);
    assert_eq!(app.introspect(&bank_api, &token).await, serde_json::json!({"active": false}));
}

#[tokio::test]
async fn revocation_answers_200_but_touches_only_the_callers_own_tokens() {
    let app = app().await;
    let owner = app.machine_client("F", &[]);
    let other = app.machine_client("F", &[]);
    let bank_api = app.resource_server();
    let token = app.access_token(&owner, None).await["access_token"].as_str().unwrap().to_string();

    let response = app.post_form("/revoke", Some(&other), &[("token", &token)]).await;
    assert_eq!(response.status(), 200);
    assert_eq!(app.introspect(&bank_api, &token).await["active"], true, "another client cannot revoke it");
    assert_eq!(app.post_form("/revoke", Some(&owner), &[("token", "no-such-token")]).await.status(), 200);
    let response = app.post_form("/revoke", None, &[("token", &token)]).await;
    assert_eq!(response.status(), 401);
    let response = app.post_form("/revoke", Some(&owner), &[("token", &token), ("token_type_hint", "id_token")]).await;
    assert_eq!(response.status(), 400);
}

#[tokio::test]
async fn a_deleted_clients_tokens_stop_introspecting_active() {
    let app = app().await;
    let client = app.machine_client("F", &[]);
    let bank_api = app.resource_server();
    let token = app.access_token(&client, None).await["access_token"].as_str().unwrap().to_string();
    scopegate::storage::clients::delete(&mut app.state.db.get().unwrap(), &client.id).unwrap();
    assert_eq!(app.introspect(&bank_api, &token).await["active"], false);
}

#[tokio::test]
async fn the_metadata_document_describes_the_server() {
    let app = app().await;
    let body: serde_json::Value = app.get("/.well-known/oauth-authorization-server").await.json().await.unwrap();
    let issuer = app.settings.issuer.as_str();
    assert_eq!(body["issuer"], issuer);
    assert_eq!(body["token_endpoint"], format!("{issuer}/token"));
    assert_eq!(body["jwks_uri"], format!("{issuer}/jwks.json"));
    assert_eq!(body["introspection_endpoint"], format!("{issuer}/introspect"));
    assert_eq!(body["revocation_endpoint"], format!("{issuer}/revoke"));
    assert_eq!(body["code_challenge_methods_supported"], serde_json::json!(["S256"]));
    assert_eq!(body["authorization_response_iss_parameter_supported"], true);
    let scopes: Vec<&str> = body["scopes_supported"].as_array().unwrap().iter().map(|s| s.as_str().unwrap()).collect();
    assert!(scopes.contains(&"accounts.balance"));
    assert!(!scopes.contains(&"payments"), "private scopes are not advertised");
    assert!(!scopes.contains(&"scopegate:admin"));
    assert!(body["grant_types_supported"].as_array().unwrap().contains(&serde_json::json!("client_credentials")));
    assert_eq!(
        body["introspection_endpoint_auth_methods_supported"],
        serde_json::json!(["client_secret_basic", "client_secret_post", "private_key_jwt"])
    );
}

#[tokio::test]
async fn expired_tokens_are_pruned_from_the_revocation_list_only_after_they_expired() {
    let app = app().await;
    let client = app.machine_client("F", &[]);
    let token = app.access_token(&client, None).await["access_token"].as_str().unwrap().to_string();
    app.post_form("/revoke", Some(&client), &[("token", &token)]).await;
    let mut connection = app.state.db.get().unwrap();
    let now = chrono::Utc::now();
    let pruned =
        scopegate::services::housekeeping::prune(&mut connection, now, app.settings.session_lifetimes(), 365).unwrap();
    assert_eq!(pruned.access_tokens, 0, "a revoked but unexpired token stays on the list");
    let later = now + chrono::Duration::seconds(600) + chrono::Duration::hours(1) + chrono::Duration::seconds(1);
    let pruned =
        scopegate::services::housekeeping::prune(&mut connection, later, app.settings.session_lifetimes(), 365)
            .unwrap();
    assert_eq!(pruned.access_tokens, 1);
}

/// kill -9 during client-credentials load (issue 11: issued tokens are stored by a group
/// commit): every token the server handed out is stored and introspects active after a
/// restart — none was answered before its commit.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_crash_loses_no_issued_token() {
    use std::sync::{Arc, Mutex};
    let app = spawn_app().await;
    app.import_scopes(r#"{"scopes": [{"name": "accounts", "short_description": "Accounts"}]}"#);
    let client = app.machine_client("F", &[]);
    let bank_api = app.resource_server();
    let mut server = crate::helpers::ServerProcess::start(&app.settings).await;
    let issued = Arc::new(Mutex::new(Vec::<String>::new()));
    let http = reqwest::Client::new();
    let workers: Vec<_> = (0..16)
        .map(|_| {
            let (http, url, issued) = (http.clone(), format!("{}/token", server.url), issued.clone());
            let (id, secret) = (client.id.clone(), client.secret.clone());
            tokio::spawn(async move {
                for _ in 0..500 {
                    let form = [("grant_type", "client_credentials"), ("scope", "accounts")];
                    let Ok(response) = http.post(&url).basic_auth(&id, Some(&secret)).form(&form).send().await else {
                        return;
                    };
                    let Ok(body) = response.json::<serde_json::Value>().await else { return };
                    if let Some(token) = body["access_token"].as_str() {
                        issued.lock().unwrap().push(token.to_string());
                    }
                }
            })
        })
        .collect();
    let started = std::time::Instant::now();
    while issued.lock().unwrap().len() < 300 {
        assert!(started.elapsed() < std::time::Duration::from_secs(30), "the load issued too few tokens");
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    server.kill_hard();
    futures_util::future::join_all(workers).await;
    let issued = issued.lock().unwrap().clone();
    eprintln!("{} tokens answered before the kill", issued.len());

    let restarted = crate::helpers::ServerProcess::start(&app.settings).await;
    let lost: Vec<_> = futures_util::future::join_all(issued.iter().map(|token| {
        let (http, url) = (http.clone(), format!("{}/introspect", restarted.url));
        let (id, secret) = (bank_api.id.clone(), bank_api.secret.clone());
        async move {
            let body: serde_json::Value = http
                .post(url)
                .basic_auth(id, Some(secret))
                .form(&[("token", token)])
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            body["active"] != true
        }
    }))
    .await
    .into_iter()
    .filter(|lost| *lost)
    .collect();
    assert!(lost.is_empty(), "{} of {} answered tokens were not stored", lost.len(), issued.len());
}
