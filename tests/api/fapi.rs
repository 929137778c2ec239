//! FAPI 2.0 (issue 14): `private_key_jwt` client authentication (RFC 7523), DPoP (RFC 9449),
//! signed introspection (RFC 9701) and the security-level rule, over real HTTP, with every
//! refusal the SPEC names. PAR itself is `par.rs`.

use crate::browser_flow::{approve, location, query_of, Browser, REDIRECT, VERIFIER};
use crate::helpers::{fresh_settings, spawn_app_in_the_future, spawn_app_with, TestApp, TestClient};
use crate::jose::{client_assertion, client_assertion_with, decode_claims, decode_header, hs256_jwt, unsigned_jwt};
use crate::jose::{ClientKey, DpopProof};
use reqwest::Response;
use scopegate::config::Settings;
use scopegate::domain::client::{AuthMethod, ClientRegistration};
use serde_json::{json, Value};

/// Scopes of every sensitivity: `payments.transfer` is level A, so FAPI 2.0 applies to it.
const TREE: &str = r#"{"scopes": [
  {"name": "profile", "short_description": "Name", "default_scope": true, "user_authorization_required": false},
  {"name": "accounts", "alias": "Your accounts", "short_description": "Accounts", "security_level": "C", "children": [
    {"name": "accounts.balance", "alias": "Balance", "short_description": "View your balance", "security_level": "C"}
  ]},
  {"name": "payments", "alias": "Payments", "short_description": "Payments", "security_level": "A", "children": [
    {"name": "payments.transfer", "alias": "Transfer money", "short_description": "Transfer", "security_level": "A"}
  ]}
]}"#;

const ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

async fn fapi_app(settings: Settings, dir: tempfile::TempDir) -> TestApp {
    let app = spawn_app_with(settings, dir).await;
    app.import_scopes(TREE);
    app.cli(&["user", "create", "alice", "--password-stdin"], Some("alice-password"));
    app
}

async fn app() -> TestApp {
    let (settings, dir) = fresh_settings();
    fapi_app(settings, dir).await
}

/// A level-A `private_key_jwt` client of the code flow (with refresh) and client credentials,
/// which may also introspect.
fn key_client(app: &TestApp, key: &ClientKey) -> TestClient {
    let registration = ClientRegistration {
        name: "FAPI app".into(),
        redirect_uris: vec![REDIRECT.into()],
        security_level: Some("A".parse().unwrap()),
        token_endpoint_auth_method: Some(AuthMethod::PrivateKeyJwt),
        jwks: Some(key.jwks()),
        can_introspect: true,
        grant_types: ["authorization_code", "refresh_token", "client_credentials"]
            .iter()
            .map(|grant_type| grant_type.parse().unwrap())
            .collect(),
        ..Default::default()
    };
    app.create_client(registration, &["profile", "accounts", "payments"])
}

/// A form with a `private_key_jwt` assertion for `client_id`, audience our issuer.
fn with_assertion<'a>(
    app: &TestApp,
    key: &ClientKey,
    client_id: &str,
    form: &[(&'a str, &'a str)],
) -> Vec<(String, String)> {
    let assertion = client_assertion(key, client_id, &app.settings.issuer, now());
    with_this_assertion(&assertion, form)
}

fn with_this_assertion(assertion: &str, form: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut body: Vec<(String, String)> = form.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    body.push(("client_assertion_type".into(), ASSERTION_TYPE.into()));
    body.push(("client_assertion".into(), assertion.into()));
    body
}

/// A form POST with an optional DPoP proof.
pub(crate) async fn post(app: &TestApp, path: &str, body: &[(String, String)], dpop: Option<&str>) -> Response {
    let mut request = app.http.post(app.url(path)).form(body);
    if let Some(proof) = dpop {
        request = request.header("DPoP", proof);
    }
    request.send().await.unwrap()
}

pub(crate) async fn json_of(response: Response) -> (u16, Value) {
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

fn proof(app: &TestApp, key: &ClientKey, method: &str, path: &str) -> DpopProof<'static> {
    // The builder borrows the key for its lifetime; tests keep keys alive for the whole test.
    let key: &'static ClientKey = Box::leak(Box::new(key.clone()));
    DpopProof::new(key, method, &format!("{}{path}", app.settings.issuer), now())
}

/// Client credentials for `payments.transfer` with an assertion and a DPoP proof.
async fn fapi_client_credentials(
    app: &TestApp,
    key: &ClientKey,
    client: &TestClient,
    dpop: &ClientKey,
) -> (u16, Value) {
    let body =
        with_assertion(app, key, &client.id, &[("grant_type", "client_credentials"), ("scope", "payments.transfer")]);
    let proof = proof(app, dpop, "POST", "/token").build();
    json_of(post(app, "/token", &body, Some(&proof)).await).await
}

#[tokio::test]
async fn private_key_jwt_authenticates_at_token_introspect_revoke_and_par() {
    let app = app().await;
    let (key, dpop_key) = (ClientKey::generate(), ClientKey::generate());
    let client = key_client(&app, &key);

    let (status, tokens) = fapi_client_credentials(&app, &key, &client, &dpop_key).await;
    assert_eq!(status, 200, "{tokens}");
    assert_eq!(tokens["token_type"], "DPoP");
    assert_eq!(tokens["scope"], "payments.transfer");
    let token = tokens["access_token"].as_str().unwrap();
    assert_eq!(decode_claims(token)["cnf"]["jkt"], dpop_key.thumbprint(), "the JWT names the key (RFC 9449 §6.1)");

    let introspect = with_assertion(&app, &key, &client.id, &[("token", token)]);
    let (status, answer) = json_of(post(&app, "/introspect", &introspect, None).await).await;
    assert_eq!(status, 200);
    assert_eq!(answer["active"], true, "{answer}");
    assert_eq!(answer["token_type"], "DPoP");
    assert_eq!(answer["cnf"]["jkt"], dpop_key.thumbprint());

    let revoke = with_assertion(&app, &key, &client.id, &[("token", token)]);
    assert_eq!(post(&app, "/revoke", &revoke, None).await.status(), 200);
    let again = with_assertion(&app, &key, &client.id, &[("token", token)]);
    let (_, answer) = json_of(post(&app, "/introspect", &again, None).await).await;
    assert_eq!(answer["active"], false, "revoked by the key client");

    let par = with_assertion(&app, &key, &client.id, &pushed_parameters(&client, "payments.transfer"));
    let (status, pushed) = json_of(post(&app, "/par", &par, None).await).await;
    assert_eq!(status, 201, "{pushed}");
}

fn pushed_parameters<'a>(client: &'a TestClient, scope: &'a str) -> Vec<(&'a str, &'a str)> {
    static CHALLENGE: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let challenge = CHALLENGE.get_or_init(|| crate::browser_flow::challenge(VERIFIER));
    vec![
        ("response_type", "code"),
        ("client_id", client.id.as_str()),
        ("redirect_uri", REDIRECT),
        ("state", "xyz"),
        ("code_challenge", challenge.as_str()),
        ("code_challenge_method", "S256"),
        ("scope", scope),
    ]
}

#[tokio::test]
async fn every_bad_client_assertion_is_refused_and_a_replay_also_on_another_instance() {
    let app = app().await;
    let (key, stranger) = (ClientKey::generate(), ClientKey::generate());
    let client = key_client(&app, &key);
    let issuer = app.settings.issuer.clone();
    let form = [("grant_type", "client_credentials"), ("scope", "accounts")];
    let refused = |assertion: String, why: &'static str| {
        let body = with_this_assertion(&assertion, &form);
        let app = &app;
        async move {
            let (status, error) = json_of(post(app, "/token", &body, None).await).await;
            assert_eq!((status, error["error"].as_str()), (401, Some("invalid_client")), "{why}: {error}");
            error["error_description"].as_str().unwrap().to_string()
        }
    };
    let claims = |overrides: Value| {
        let mut claims = json!({"iss": client.id, "sub": client.id, "aud": issuer, "iat": now(), "exp": now() + 60,
            "jti": format!("{}", rand::random::<u64>())});
        for (name, value) in overrides.as_object().unwrap() {
            claims[name] = value.clone();
        }
        claims
    };
    let header = json!({"alg": "ES256", "typ": "JWT", "kid": key.public_jwk()["kid"]});

    let description = refused(client_assertion(&stranger, &client.id, &issuer, now()), "a wrong key").await;
    assert!(description.contains("kid") || description.contains("signature"), "{description}");
    let description = refused(unsigned_jwt(json!({"alg": "none"}), claims(json!({}))), "alg none").await;
    assert!(description.contains("\"none\" is refused"), "{description}");
    let description = refused(hs256_jwt(b"guessable", json!({"alg": "HS256"}), claims(json!({}))), "HS256").await;
    assert!(description.contains("\"HS256\" is refused"), "{description}");
    refused(client_assertion_with(&key, claims(json!({"aud": "https://elsewhere.example"})), header.clone()), "aud")
        .await;
    let far = claims(json!({"exp": now() + 3600}));
    assert!(refused(client_assertion_with(&key, far, header.clone()), "exp too far").await.contains("within 300 s"));
    let stale = claims(json!({"exp": now() - 10}));
    assert!(refused(client_assertion_with(&key, stale, header.clone()), "expired").await.contains("expired"));
    refused(client_assertion_with(&key, claims(json!({"sub": "someone-else"})), header.clone()), "iss != sub").await;

    // The same assertion twice: refused the second time, also by another instance.
    let once = client_assertion(&key, &client.id, &issuer, now());
    let body = with_this_assertion(&once, &form);
    assert_eq!(post(&app, "/token", &body, None).await.status(), 200);
    assert!(refused(once.clone(), "replay").await.contains("jti was used before"));
    let other = spawn_app_in_the_future(&app.settings, 0).await;
    let (status, error) = json_of(post(&other, "/token", &body, None).await).await;
    assert_eq!(status, 401, "a replay to a second instance: {error}");
    assert!(error["error_description"].as_str().unwrap().contains("jti was used before"));

    // A secret next to an assertion, and an assertion for a secret client.
    let mut both = with_assertion(&app, &key, &client.id, &form);
    both.push(("client_secret".into(), "x".into()));
    assert_eq!(post(&app, "/token", &both, None).await.status(), 400, "two methods at once");
    let secret_client = app.machine_client("C", &["accounts"]);
    let forged = client_assertion(&key, &secret_client.id, &issuer, now());
    let description = refused(forged, "not a key client").await;
    assert!(description.contains("not registered for private_key_jwt"), "{description}");
}

/// The audience of an assertion: the issuer identifier, the token endpoint's URL or an array
/// holding one (SPEC, RFC 7523) by default; under `profile = "fapi2"` the issuer identifier
/// alone, as a string (FAPI 2.0 §5.3.2.1). Either way an `iat` a few seconds ahead is clock
/// skew, and one two minutes ahead is refused.
#[tokio::test]
async fn an_assertion_names_the_issuer_as_a_string_under_fapi2_and_iat_may_run_a_little_ahead() {
    for profile in ["oauth2", "fapi2"] {
        let (mut settings, dir) = fresh_settings();
        settings.profile = profile.parse().unwrap();
        let app = fapi_app(settings, dir).await;
        let key = ClientKey::generate();
        let client = key_client(&app, &key);
        let issuer = app.settings.issuer.clone();
        let header = json!({"alg": "ES256", "typ": "JWT", "kid": key.public_jwk()["kid"]});
        let introspect_with = |aud: Value, iat: i64| {
            let claims = json!({"iss": client.id, "sub": client.id, "aud": aud, "iat": iat, "exp": now() + 60,
                "jti": format!("{}", rand::random::<u64>())});
            let body =
                with_this_assertion(&client_assertion_with(&key, claims, header.clone()), &[("token", "nothing")]);
            let app = &app;
            async move { json_of(post(app, "/introspect", &body, None).await).await }
        };
        let strict = profile == "fapi2";
        for (aud, accepted) in [
            (json!(issuer), true),
            (json!(format!("{issuer}/token")), !strict),
            (json!([issuer]), !strict),
            (json!(format!("{issuer}/introspect")), !strict),
        ] {
            let (status, answer) = introspect_with(aud.clone(), now()).await;
            assert_eq!(status, if accepted { 200 } else { 401 }, "{profile}, aud {aud}: {answer}");
            if !accepted {
                let description = answer["error_description"].as_str().unwrap();
                assert!(description.contains("as a string"), "{description}");
            }
        }
        assert_eq!(introspect_with(json!(issuer), now() + 5).await.0, 200, "{profile}: 5 s ahead is skew");
        let (status, answer) = introspect_with(json!(issuer), now() + 120).await;
        assert_eq!(status, 401, "{profile}: iat 2 minutes ahead: {answer}");
    }
}

#[tokio::test]
async fn every_bad_dpop_proof_is_refused_and_a_replay_also_on_another_instance() {
    let app = app().await;
    let (key, dpop_key) = (ClientKey::generate(), ClientKey::generate());
    let client = key_client(&app, &key);
    let refused = |proof: String, why: &'static str| {
        let body =
            with_assertion(&app, &key, &client.id, &[("grant_type", "client_credentials"), ("scope", "accounts")]);
        let app = &app;
        async move {
            let (status, error) = json_of(post(app, "/token", &body, Some(&proof)).await).await;
            assert_eq!((status, error["error"].as_str()), (400, Some("invalid_dpop_proof")), "{why}: {error}");
            error["error_description"].as_str().unwrap().to_string()
        }
    };
    let good = || proof(&app, &dpop_key, "POST", "/token");

    let mut bad_typ = good();
    bad_typ.typ = "JWT".into();
    assert!(refused(bad_typ.build(), "typ").await.contains("typ"));
    let claims = json!({"jti": "x1", "htm": "POST", "htu": format!("{}/token", app.settings.issuer), "iat": now()});
    let none = unsigned_jwt(json!({"alg": "none", "typ": "dpop+jwt", "jwk": dpop_key.public_jwk()}), claims.clone());
    assert!(refused(none, "alg none").await.contains("is refused"));
    let symmetric = hs256_jwt(b"k", json!({"alg": "HS256", "typ": "dpop+jwt", "jwk": dpop_key.public_jwk()}), claims);
    assert!(refused(symmetric, "HS256").await.contains("is refused"));
    let mut wrong_method = good();
    wrong_method.htm = "GET".into();
    assert!(refused(wrong_method.build(), "htm").await.contains("htm"));
    let mut wrong_url = good();
    wrong_url.htu = format!("{}/introspect", app.settings.issuer);
    assert!(refused(wrong_url.build(), "htu").await.contains("htu"));
    let mut stale = good();
    stale.iat = now() - 120;
    assert!(refused(stale.build(), "stale iat").await.contains("iat"));
    let mut ahead = good();
    ahead.iat = now() + 120;
    assert!(refused(ahead.build(), "iat two minutes ahead").await.contains("iat"));
    let mut private = dpop_key.public_jwk();
    private["d"] = json!("AAAA");
    let leaked = dpop_key.sign(
        json!({"alg": "ES256", "typ": "dpop+jwt", "jwk": private}),
        json!({"jti": "x2", "htm": "POST", "htu": format!("{}/token", app.settings.issuer), "iat": now()}),
    );
    assert!(refused(leaked, "private key in jwk").await.contains("private member"));

    // One proof twice: refused the second time, and by another instance too.
    let once = good().build();
    let body = with_assertion(&app, &key, &client.id, &[("grant_type", "client_credentials"), ("scope", "accounts")]);
    assert_eq!(post(&app, "/token", &body, Some(&once)).await.status(), 200);
    assert!(refused(once.clone(), "replay").await.contains("jti was used before"));
    let other = spawn_app_in_the_future(&app.settings, 0).await;
    let body = with_assertion(&other, &key, &client.id, &[("grant_type", "client_credentials"), ("scope", "accounts")]);
    let (status, error) = json_of(post(&other, "/token", &body, Some(&once)).await).await;
    assert_eq!((status, error["error"].as_str()), (400, Some("invalid_dpop_proof")), "second instance: {error}");
}

#[tokio::test]
async fn a_resource_server_checks_the_proof_the_ath_and_the_key_of_a_dpop_token() {
    let (mut settings, dir) = fresh_settings();
    settings.demo = true;
    let app = spawn_app_with(settings, dir).await;
    let state = &app.state;
    let mut connection = state.db.get().unwrap();
    scopegate::services::demo::seed(
        &mut connection,
        &state.hasher,
        &state.registry,
        &app.settings.issuer,
        chrono::Utc::now(),
    )
    .unwrap();
    drop(connection);
    let key = ClientKey::generate();
    let dpop_key = ClientKey::generate();
    // The demo seeds its scopes: accounts.balance (level C) is what /demo/bank/balance wants.
    let client = app.create_client(
        ClientRegistration {
            name: "DPoP app".into(),
            security_level: Some("C".parse().unwrap()),
            token_endpoint_auth_method: Some(AuthMethod::PrivateKeyJwt),
            jwks: Some(key.jwks()),
            dpop_bound_access_tokens: true,
            ..Default::default()
        },
        &["accounts"],
    );
    let body =
        with_assertion(&app, &key, &client.id, &[("grant_type", "client_credentials"), ("scope", "accounts.balance")]);
    let (status, error) = json_of(post(&app, "/token", &body, None).await).await;
    assert_eq!(
        (status, error["error"].as_str()),
        (400, Some("invalid_dpop_proof")),
        "dpop_bound_access_tokens: {error}"
    );
    let body =
        with_assertion(&app, &key, &client.id, &[("grant_type", "client_credentials"), ("scope", "accounts.balance")]);
    let (status, tokens) =
        json_of(post(&app, "/token", &body, Some(&proof(&app, &dpop_key, "POST", "/token").build())).await).await;
    assert_eq!(status, 200, "{tokens}");
    let token = tokens["access_token"].as_str().unwrap().to_string();

    let balance = |scheme: &'static str, proof: Option<String>| {
        let app = &app;
        let token = token.clone();
        async move {
            let mut request =
                app.http.get(app.url("/demo/bank/balance")).header("Authorization", format!("{scheme} {token}"));
            if let Some(proof) = proof {
                request = request.header("DPoP", proof);
            }
            let response = request.send().await.unwrap();
            let challenge =
                response.headers().get("www-authenticate").map(|v| v.to_str().unwrap().to_string()).unwrap_or_default();
            let (status, body) = json_of(response).await;
            (status, body, challenge)
        }
    };
    let (status, body, _) =
        balance("DPoP", Some(proof(&app, &dpop_key, "GET", "/demo/bank/balance").ath_for(&token).build())).await;
    assert_eq!(status, 200, "{body}");
    let (status, body, challenge) = balance("Bearer", None).await;
    assert_eq!(status, 401, "a DPoP-bound token is no bearer token: {body}");
    assert!(challenge.starts_with("DPoP "), "{challenge}");
    let (status, body, _) = balance("DPoP", Some(proof(&app, &dpop_key, "GET", "/demo/bank/balance").build())).await;
    assert_eq!((status, body["error"].as_str()), (401, Some("invalid_dpop_proof")), "no ath: {body}");
    assert!(body["error_description"].as_str().unwrap().contains("ath"));
    let other_token = proof(&app, &dpop_key, "GET", "/demo/bank/balance").ath_for("another-token").build();
    let (status, body, _) = balance("DPoP", Some(other_token)).await;
    assert_eq!(status, 401, "ath of another token: {body}");
    let stranger = ClientKey::generate();
    let (status, body, _) =
        balance("DPoP", Some(proof(&app, &stranger, "GET", "/demo/bank/balance").ath_for(&token).build())).await;
    assert_eq!((status, body["error"].as_str()), (401, Some("invalid_token")), "the wrong key: {body}");
    assert!(body["error_description"].as_str().unwrap().contains("another key"));
    let (status, _, _) = balance("DPoP", None).await;
    assert_eq!(status, 401, "DPoP scheme without a proof");
}

/// The whole FAPI 2.0 flow for a level-A scope: PAR with `private_key_jwt` and a DPoP proof
/// (which binds the code), sign-in and consent, the code exchange with both, then refresh.
#[tokio::test]
async fn the_fapi_code_flow_binds_the_code_and_the_tokens_to_the_dpop_key() {
    let app = app().await;
    let (key, dpop_key, thief) = (ClientKey::generate(), ClientKey::generate(), ClientKey::generate());
    let client = key_client(&app, &key);
    let code = fapi_code(&app, &key, &client, &dpop_key).await;

    let exchange = |proof_key: Option<&ClientKey>, code: String| {
        let body = with_assertion(
            &app,
            &key,
            &client.id,
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", REDIRECT),
                ("code_verifier", VERIFIER),
            ],
        );
        let proof = proof_key.map(|k| proof(&app, k, "POST", "/token").build());
        let app = &app;
        async move { json_of(post(app, "/token", &body, proof.as_deref()).await).await }
    };
    let (status, error) = exchange(Some(&thief), code.clone()).await;
    assert_eq!((status, error["error"].as_str()), (400, Some("invalid_dpop_proof")), "another key: {error}");
    let code = fapi_code(&app, &key, &client, &dpop_key).await;
    let (status, tokens) = exchange(Some(&dpop_key), code).await;
    assert_eq!(status, 200, "{tokens}");
    assert_eq!(tokens["token_type"], "DPoP");
    assert!(tokens["scope"].as_str().unwrap().contains("payments.transfer"), "{tokens}");
    assert_eq!(decode_claims(tokens["access_token"].as_str().unwrap())["cnf"]["jkt"], dpop_key.thumbprint());

    let refresh = tokens["refresh_token"].as_str().unwrap();
    let body = with_assertion(&app, &key, &client.id, &[("grant_type", "refresh_token"), ("refresh_token", refresh)]);
    let (status, error) = json_of(post(&app, "/token", &body, None).await).await;
    assert_eq!(status, 400, "a level-A refresh without DPoP: {error}");
    assert!(error["error_description"].as_str().unwrap().contains("DPoP"), "{error}");
    // The refused attempt spent nothing: the same refresh token, now with a proof, rotates.
    let body = with_assertion(&app, &key, &client.id, &[("grant_type", "refresh_token"), ("refresh_token", refresh)]);
    let proof = proof(&app, &dpop_key, "POST", "/token").build();
    let (status, rotated) = json_of(post(&app, "/token", &body, Some(&proof)).await).await;
    assert_eq!(status, 200, "{rotated}");
    assert_eq!(rotated["token_type"], "DPoP");
    assert_ne!(rotated["refresh_token"], tokens["refresh_token"]);
}

/// PAR (with a DPoP proof: the code is bound to its key), sign-in and consent: the code.
async fn fapi_code(app: &TestApp, key: &ClientKey, client: &TestClient, dpop_key: &ClientKey) -> String {
    let body = with_assertion(app, key, &client.id, &pushed_parameters(client, "accounts.balance payments.transfer"));
    let (status, pushed) =
        json_of(post(app, "/par", &body, Some(&proof(app, dpop_key, "POST", "/par").build())).await).await;
    assert_eq!(status, 201, "{pushed}");
    let query = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("client_id", &client.id)
        .append_pair("request_uri", pushed["request_uri"].as_str().unwrap())
        .finish();
    let alice = Browser::new(app);
    let login = location(&alice.get(&format!("/authorize?{query}")).await);
    let next = query_of(&format!("http://x{login}"))["next"].clone();
    let back = location(&alice.login("alice", "alice-password", &next).await);
    let consent = alice.get(&back).await;
    if consent.status() == 303 {
        // Her consent is remembered from an earlier run: the code comes at once.
        let target = location(&consent);
        assert!(target.starts_with(REDIRECT), "{target}");
        return query_of(&target)["code"].clone();
    }
    assert_eq!(consent.status(), 200);
    let answer = approve(&alice, &consent.text().await.unwrap(), None).await;
    answer["code"].clone()
}

/// A public client of the code flow at `level`, with `scopes` assigned.
fn mobile_app(app: &TestApp, level: &str, scopes: &[&str]) -> TestClient {
    let registration = ClientRegistration {
        name: "Mobile app".into(),
        public: true,
        redirect_uris: vec![REDIRECT.into()],
        security_level: Some(level.parse().unwrap()),
        ..Default::default()
    };
    app.create_client(registration, scopes)
}

#[tokio::test]
async fn a_public_clients_refresh_tokens_are_bound_to_its_dpop_key() {
    let app = app().await;
    let dpop_key = ClientKey::generate();
    let client = mobile_app(&app, "C", &["accounts"]);
    let alice = Browser::new(&app);
    let code =
        crate::browser_flow::consent_and_get_code(&alice, &client, "accounts.balance", None).await["code"].clone();
    let form = |extra: &[(&str, &str)]| {
        let mut body = vec![("client_id".to_string(), client.id.clone())];
        body.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        body
    };
    let body = form(&[
        ("grant_type", "authorization_code"),
        ("code", &code),
        ("redirect_uri", REDIRECT),
        ("code_verifier", VERIFIER),
    ]);
    let (status, tokens) =
        json_of(post(&app, "/token", &body, Some(&proof(&app, &dpop_key, "POST", "/token").build())).await).await;
    assert_eq!(status, 200, "{tokens}");
    assert_eq!(tokens["token_type"], "DPoP");
    let refresh = tokens["refresh_token"].as_str().unwrap().to_string();

    let body = form(&[("grant_type", "refresh_token"), ("refresh_token", &refresh)]);
    let (status, error) = json_of(post(&app, "/token", &body, None).await).await;
    assert_eq!((status, error["error"].as_str()), (400, Some("invalid_dpop_proof")), "no proof: {error}");
    let stranger = ClientKey::generate();
    let (status, _) =
        json_of(post(&app, "/token", &body, Some(&proof(&app, &stranger, "POST", "/token").build())).await).await;
    assert_eq!(status, 400, "a proof by another key");
    let (status, rotated) =
        json_of(post(&app, "/token", &body, Some(&proof(&app, &dpop_key, "POST", "/token").build())).await).await;
    assert_eq!(status, 200, "the bound key refreshes: {rotated}");
    assert_eq!(rotated["token_type"], "DPoP");
}

#[tokio::test]
async fn the_security_level_rule_names_what_is_missing_at_each_step() {
    let app = app().await;
    let key = ClientKey::generate();
    let key_client = key_client(&app, &key);
    let secret_client = app.create_client(
        ClientRegistration {
            name: "Secret app".into(),
            redirect_uris: vec![REDIRECT.into()],
            security_level: Some("A".parse().unwrap()),
            ..Default::default()
        },
        &["accounts", "payments"],
    );

    // Straight to /authorize: the client is sent back with the rule.
    let alice = Browser::new(&app);
    let front = alice.authorize(&key_client, Some("payments.transfer"), &[]).await;
    let back = query_of(&location(&front));
    assert_eq!(back["error"], "invalid_request");
    assert!(
        back["error_description"].contains("security level A") && back["error_description"].contains("PAR"),
        "{back:?}"
    );
    // Level C alone needs none of it.
    assert!(location(&alice.authorize(&secret_client, Some("accounts"), &[]).await).starts_with("/login"));

    // Pushed, but by a secret client.
    let body: Vec<(&str, &str)> = pushed_parameters(&secret_client, "payments.transfer");
    let (status, error) = json_of(app.post_form("/par", Some(&secret_client), &body).await).await;
    assert_eq!(status, 400, "{error}");
    assert!(error["error_description"].as_str().unwrap().contains("private_key_jwt"), "{error}");
    let (status, error) = json_of(app.client_credentials(&secret_client, Some("payments.transfer")).await).await;
    assert_eq!(status, 400);
    assert!(error["error_description"].as_str().unwrap().contains("private_key_jwt"), "{error}");
    // Pushed by a public client (client_id alone): no private_key_jwt either.
    let public_client = mobile_app(&app, "A", &["accounts", "payments"]);
    let body: Vec<(String, String)> = pushed_parameters(&public_client, "payments.transfer")
        .into_iter()
        .map(|(name, value)| (name.to_string(), value.to_string()))
        .collect();
    let (status, error) = json_of(post(&app, "/par", &body, None).await).await;
    assert_eq!(status, 400, "{error}");
    assert!(error["error_description"].as_str().unwrap().contains("private_key_jwt"), "public: {error}");
    // Pushed by the key client without its redirect_uri (FAPI 2.0 §5.3.2.2), though it has one.
    let unnamed: Vec<(&str, &str)> = pushed_parameters(&key_client, "payments.transfer")
        .into_iter()
        .filter(|(name, _)| *name != "redirect_uri")
        .collect();
    let body = with_assertion(&app, &key, &key_client.id, &unnamed);
    let (status, error) = json_of(post(&app, "/par", &body, None).await).await;
    assert_eq!(status, 400, "{error}");
    assert!(error["error_description"].as_str().unwrap().contains("redirect_uri"), "unnamed: {error}");

    // A key client without DPoP.
    let body = with_assertion(
        &app,
        &key,
        &key_client.id,
        &[("grant_type", "client_credentials"), ("scope", "payments.transfer")],
    );
    let (status, error) = json_of(post(&app, "/token", &body, None).await).await;
    assert_eq!(status, 400);
    assert!(error["error_description"].as_str().unwrap().contains("DPoP-bound"), "{error}");

    // profile = "fapi2": level C too.
    let (mut settings, dir) = fresh_settings();
    settings.profile = "fapi2".parse().unwrap();
    let strict = fapi_app(settings, dir).await;
    let plain = strict.machine_client("C", &["accounts"]);
    let (status, error) = json_of(strict.client_credentials(&plain, Some("accounts")).await).await;
    assert_eq!(status, 400);
    assert!(error["error_description"].as_str().unwrap().contains("profile = \"fapi2\""), "{error}");
    // Its metadata says so: PAR for every request, private_key_jwt alone at the token endpoint.
    let metadata: Value = strict.get("/.well-known/oauth-authorization-server").await.json().await.unwrap();
    assert_eq!(metadata["require_pushed_authorization_requests"], true, "{metadata}");
    assert_eq!(metadata["token_endpoint_auth_methods_supported"], json!(["private_key_jwt"]), "{metadata}");
}

#[tokio::test]
async fn a_client_can_require_pushed_requests_for_itself() {
    let app = app().await;
    let client = app.create_client(
        ClientRegistration {
            name: "PAR only".into(),
            redirect_uris: vec![REDIRECT.into()],
            security_level: Some("C".parse().unwrap()),
            require_pushed_authorization_requests: true,
            ..Default::default()
        },
        &["accounts"],
    );
    let alice = Browser::new(&app);
    let back = query_of(&location(&alice.authorize(&client, Some("accounts"), &[]).await));
    assert!(back["error_description"].contains("require_pushed_authorization_requests"), "{back:?}");
    let (status, pushed) =
        json_of(app.post_form("/par", Some(&client), &pushed_parameters(&client, "accounts")).await).await;
    assert_eq!(status, 201, "{pushed}");
}

#[tokio::test]
async fn server_nonces_are_asked_for_and_then_accepted() {
    let (mut settings, dir) = fresh_settings();
    settings.dpop_nonce = true;
    let app = fapi_app(settings, dir).await;
    let (key, dpop_key) = (ClientKey::generate(), ClientKey::generate());
    let client = key_client(&app, &key);
    let body = with_assertion(&app, &key, &client.id, &[("grant_type", "client_credentials"), ("scope", "accounts")]);
    let response = post(&app, "/token", &body, Some(&proof(&app, &dpop_key, "POST", "/token").build())).await;
    let nonce = response.headers().get("dpop-nonce").map(|v| v.to_str().unwrap().to_string());
    let (status, error) = json_of(response).await;
    assert_eq!((status, error["error"].as_str()), (400, Some("use_dpop_nonce")), "{error}");
    let nonce = nonce.expect("a DPoP-Nonce header");
    let mut with_nonce = proof(&app, &dpop_key, "POST", "/token");
    with_nonce.nonce = Some(nonce);
    let body = with_assertion(&app, &key, &client.id, &[("grant_type", "client_credentials"), ("scope", "accounts")]);
    let (status, tokens) = json_of(post(&app, "/token", &body, Some(&with_nonce.build())).await).await;
    assert_eq!(status, 200, "{tokens}");
    let mut forged = proof(&app, &dpop_key, "POST", "/token");
    forged.nonce = Some("made-up".into());
    let body = with_assertion(&app, &key, &client.id, &[("grant_type", "client_credentials"), ("scope", "accounts")]);
    let (_, error) = json_of(post(&app, "/token", &body, Some(&forged.build())).await).await;
    assert_eq!(error["error"], "use_dpop_nonce", "a nonce we did not make");
}

#[tokio::test]
async fn introspection_is_signed_for_a_caller_that_asks() {
    let app = app().await;
    let machine = app.machine_client("C", &["accounts"]);
    let token = app.access_token(&machine, Some("accounts")).await["access_token"].as_str().unwrap().to_string();
    let bank = app.resource_server();
    let response = app
        .http
        .post(app.url("/introspect"))
        .basic_auth(&bank.id, Some(&bank.secret))
        .header("Accept", "application/token-introspection+jwt")
        .form(&[("token", token.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "application/token-introspection+jwt");
    let jwt = response.text().await.unwrap();
    let header = decode_header(&jwt);
    assert_eq!(header["typ"], "token-introspection+jwt");
    let jwks: Value = app.get("/jwks.json").await.json().await.unwrap();
    let key = jwks["keys"].as_array().unwrap().iter().find(|k| k["kid"] == header["kid"]).expect("the signing key");
    let key: jsonwebtoken::jwk::Jwk = serde_json::from_value(key.clone()).unwrap();
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::ES256);
    validation.set_audience(&[&bank.id]);
    validation.set_issuer(&[&app.settings.issuer]);
    validation.required_spec_claims.clear();
    validation.validate_exp = false;
    let verified =
        jsonwebtoken::decode::<Value>(&jwt, &jsonwebtoken::DecodingKey::from_jwk(&key).unwrap(), &validation).unwrap();
    assert_eq!(verified.claims["token_introspection"]["active"], true);
    assert_eq!(verified.claims["token_introspection"]["client_id"], machine.id);
    let plain = app.introspect(&bank, &token).await;
    assert_eq!(plain["active"], true, "without the Accept header: plain JSON");
}

#[tokio::test]
async fn metadata_lists_the_fapi_methods_and_algorithms() {
    let app = app().await;
    let metadata: Value = app.get("/.well-known/oauth-authorization-server").await.json().await.unwrap();
    assert!(metadata["token_endpoint_auth_methods_supported"].as_array().unwrap().contains(&json!("private_key_jwt")));
    assert_eq!(metadata["token_endpoint_auth_signing_alg_values_supported"], json!(["ES256", "PS256", "EdDSA"]));
    assert_eq!(metadata["dpop_signing_alg_values_supported"], json!(["ES256", "PS256", "EdDSA"]));
    assert_eq!(metadata["introspection_signing_alg_values_supported"], json!(["ES256"]));
    assert_eq!(metadata["pushed_authorization_request_endpoint"], format!("{}/par", app.settings.issuer));
}

#[tokio::test]
async fn key_clients_are_registered_by_the_cli_and_the_admin_api_with_their_keys_checked() {
    let app = app().await;
    let key = ClientKey::generate();
    let jwks_file = app.settings.keys_dir.with_file_name("client-jwks.json");
    std::fs::write(&jwks_file, key.jwks().to_string()).unwrap();
    let output = app.cli(
        &[
            "client",
            "create",
            "--name",
            "CLI key app",
            "--auth-method",
            "private_key_jwt",
            "--jwks-file",
            jwks_file.to_str().unwrap(),
            "--require-par",
            "--dpop-bound",
            "--security-level",
            "C",
        ],
        None,
    );
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let created = crate::helpers::cli_json(&output);
    assert_eq!(created["token_endpoint_auth_method"], "private_key_jwt");
    assert!(created.get("client_secret").is_none(), "a key client gets no secret: {created}");
    assert_eq!(created["require_pushed_authorization_requests"], true);
    assert_eq!(created["dpop_bound_access_tokens"], true);
    assert_eq!(created["jwks"]["keys"][0]["x"], key.public_jwk()["x"]);

    let admin = app.create_client(ClientRegistration { name: "Ops".into(), admin: true, ..Default::default() }, &[]);
    let token = app.access_token(&admin, Some("scopegate:admin")).await["access_token"].as_str().unwrap().to_string();
    let create = |body: Value| {
        let (app, token) = (&app, token.clone());
        async move {
            let response =
                app.http.post(app.url("/admin/v1/clients")).bearer_auth(token).json(&body).send().await.unwrap();
            json_of(response).await
        }
    };
    let (status, view) = create(json!({"name": "API key app", "token_endpoint_auth_method": "private_key_jwt",
        "jwks": key.jwks()}))
    .await;
    assert_eq!(status, 201, "{view}");
    assert_eq!(view["token_endpoint_auth_method"], "private_key_jwt");
    // A key client never gets a secret to fall back to.
    let rotate = format!("/admin/v1/clients/{}/secret", view["client_id"].as_str().unwrap());
    let response = app.http.post(app.url(&rotate)).bearer_auth(&token).send().await.unwrap();
    let (status, error) = json_of(response).await;
    assert_eq!(status, 400, "{error}");
    assert!(error["error_description"].as_str().unwrap().contains("private_key_jwt client has no secret"), "{error}");
    let mut private = key.public_jwk();
    private["d"] = json!("AAAA");
    let (status, error) =
        create(json!({"name": "Leaky", "token_endpoint_auth_method": "private_key_jwt", "jwks": {"keys": [private]}}))
            .await;
    assert_eq!(status, 400);
    assert!(error["error_description"].as_str().unwrap().contains("jwks"), "{error}");
    let (status, _) = create(json!({"name": "No keys", "token_endpoint_auth_method": "private_key_jwt"})).await;
    assert_eq!(status, 400);
    let (status, _) = create(json!({"name": "Odd", "token_endpoint_auth_method": "tls_client_auth"})).await;
    assert_eq!(status, 400, "mTLS methods are not offered");
}

#[tokio::test]
async fn dpop_jkt_at_authorize_binds_the_code_and_a_bound_admin_token_needs_its_proof() {
    let (app, client) = crate::browser_flow::setup().await;
    let (dpop_key, thief) = (ClientKey::generate(), ClientKey::generate());
    let jkt = dpop_key.thumbprint();
    let alice = Browser::new(&app);
    let code_for = |extra: Vec<(&'static str, String)>| {
        let (alice, client) = (&alice, &client);
        async move {
            let extra: Vec<(&str, &str)> = extra.iter().map(|(k, v)| (*k, v.as_str())).collect();
            let first = alice.get(&crate::browser_flow::authorize_path(client, Some("accounts"), &extra)).await;
            let mut target = location(&first);
            if target.starts_with("/login") {
                let next = query_of(&format!("http://x{target}"))["next"].clone();
                let back = location(&alice.login("alice", "alice-password", &next).await);
                let consent = alice.get(&back).await;
                return approve(alice, &consent.text().await.unwrap(), None).await;
            }
            if !target.starts_with(REDIRECT) {
                target = location(&alice.get(&target).await);
            }
            query_of(&target)
        }
    };
    let exchange = |code: String, proof_key: Option<&ClientKey>| {
        let body = vec![
            ("grant_type".to_string(), "authorization_code".to_string()),
            ("code".into(), code),
            ("redirect_uri".into(), REDIRECT.into()),
            ("code_verifier".into(), VERIFIER.into()),
            ("client_id".into(), client.id.clone()),
            ("client_secret".into(), client.secret.clone()),
        ];
        let proof = proof_key.map(|key| proof(&app, key, "POST", "/token").build());
        let app = &app;
        async move { json_of(post(app, "/token", &body, proof.as_deref()).await).await }
    };
    let bound = vec![("dpop_jkt", jkt.clone())];
    let (status, error) = exchange(code_for(bound.clone()).await["code"].clone(), Some(&thief)).await;
    assert_eq!((status, error["error"].as_str()), (400, Some("invalid_dpop_proof")), "another key: {error}");
    let (status, error) = exchange(code_for(bound.clone()).await["code"].clone(), None).await;
    assert_eq!((status, error["error"].as_str()), (400, Some("invalid_dpop_proof")), "no proof: {error}");
    let (status, tokens) = exchange(code_for(bound).await["code"].clone(), Some(&dpop_key)).await;
    assert_eq!(status, 200, "{tokens}");
    // accounts.transactions is count-limited, so the token is opaque: introspection shows the key.
    let introspected = app.introspect(&client, tokens["access_token"].as_str().unwrap()).await;
    assert_eq!(introspected["cnf"]["jkt"], jkt.as_str(), "{introspected}");
    let malformed = code_for(vec![("dpop_jkt", "not-a-thumbprint".to_string())]).await;
    assert_eq!(malformed["error"], "invalid_request", "{malformed:?}");

    // A DPoP-bound admin token does not open the admin API as a bearer token.
    let admin = app.create_client(ClientRegistration { name: "Ops".into(), admin: true, ..Default::default() }, &[]);
    let body =
        vec![("grant_type".to_string(), "client_credentials".to_string()), ("scope".into(), "scopegate:admin".into())];
    let response = app
        .http
        .post(app.url("/token"))
        .basic_auth(&admin.id, Some(&admin.secret))
        .header("DPoP", proof(&app, &dpop_key, "POST", "/token").build())
        .form(&body)
        .send()
        .await
        .unwrap();
    let (status, tokens) = json_of(response).await;
    assert_eq!((status, tokens["token_type"].as_str()), (200, Some("DPoP")), "{tokens}");
    let token = tokens["access_token"].as_str().unwrap();
    let scopes = app.http.get(app.url("/admin/v1/scopes")).bearer_auth(token);
    assert_eq!(scopes.send().await.unwrap().status(), 401);

    // Under the DPoP scheme it opens the admin API with a proof by its key (an admin client may
    // be DPoP-bound, and under profile = "fapi2" every client is), never with another key's,
    // one for another URL, or none.
    let as_dpop = |proof: Option<String>| {
        let mut request = app.http.get(app.url("/admin/v1/scopes")).header("Authorization", format!("DPoP {token}"));
        if let Some(proof) = proof {
            request = request.header("DPoP", proof);
        }
        async move {
            let response = request.send().await.unwrap();
            (response.status().as_u16(), response.json::<Value>().await.unwrap_or(Value::Null))
        }
    };
    let good = proof(&app, &dpop_key, "GET", "/admin/v1/scopes").ath_for(token).build();
    let (status, listed) = as_dpop(Some(good.clone())).await;
    assert_eq!(status, 200, "{listed}");
    let (status, replayed) = as_dpop(Some(good)).await;
    assert_eq!((status, replayed["error"].as_str()), (401, Some("invalid_dpop_proof")), "a replayed proof: {replayed}");
    for (why, refused_proof) in [
        ("another key", Some(proof(&app, &thief, "GET", "/admin/v1/scopes").ath_for(token).build())),
        ("another URL", Some(proof(&app, &dpop_key, "GET", "/admin/v1/clients").ath_for(token).build())),
        ("no ath", Some(proof(&app, &dpop_key, "GET", "/admin/v1/scopes").build())),
        ("no proof", None),
    ] {
        let (status, error) = as_dpop(refused_proof).await;
        assert_eq!(status, 401, "{why}: {error}");
    }
}
