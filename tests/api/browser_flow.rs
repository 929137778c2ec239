//! The code flow as a browser drives it (cookies, forms, redirects), over real HTTP.

use crate::helpers::{spawn_app, TestApp, TestClient};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use scopegate::domain::client::ClientRegistration;
use sha2::{Digest, Sha256};
use std::collections::HashMap;

pub const TREE: &str = r#"{"scopes": [
  {"name": "profile", "alias": "Your profile", "short_description": "Name", "default_scope": true, "user_authorization_required": false},
  {"name": "accounts", "alias": "Your accounts", "short_description": "Accounts", "security_level": "C", "children": [
    {"name": "accounts.balance", "alias": "Balance", "short_description": "View your balance", "security_level": "C", "access_duration_days": 90},
    {"name": "accounts.transactions", "short_description": "Transactions", "security_level": "C", "max_access_count": 100}
  ]}
]}"#;

pub const REDIRECT: &str = "https://app.example/cb";
pub const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";

pub fn challenge(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

/// A browser: its own cookie jar, redirects followed by hand.
pub struct Browser<'a> {
    pub app: &'a TestApp,
    pub http: reqwest::Client,
}

/// The value of `<input … name="NAME" value="VALUE">` in a page.
pub fn hidden(html: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html.find(&marker).unwrap_or_else(|| panic!("no {name} field in:\n{html}")) + marker.len();
    let end = html[start..].find('"').unwrap() + start;
    html[start..end].replace("&#x2f;", "/").replace("&#x2F;", "/").replace("&#43;", "+").replace("&amp;", "&")
}

pub fn query_of(location: &str) -> HashMap<String, String> {
    let url = url::Url::parse(location).unwrap();
    url.query_pairs().into_owned().collect()
}

impl<'a> Browser<'a> {
    pub fn new(app: &'a TestApp) -> Self {
        let http =
            reqwest::Client::builder().cookie_store(true).redirect(reqwest::redirect::Policy::none()).build().unwrap();
        Self { app, http }
    }

    pub async fn get(&self, path_or_url: &str) -> reqwest::Response {
        let url = if path_or_url.starts_with("http") { path_or_url.to_string() } else { self.app.url(path_or_url) };
        self.http.get(url).send().await.unwrap()
    }

    pub async fn post(&self, path: &str, form: &[(&str, &str)]) -> reqwest::Response {
        self.http.post(self.app.url(path)).form(form).send().await.unwrap()
    }

    pub async fn login(&self, username: &str, password: &str, next: &str) -> reqwest::Response {
        let page = self
            .get(&format!("/login?next={}", url::form_urlencoded::byte_serialize(next.as_bytes()).collect::<String>()))
            .await;
        let html = page.text().await.unwrap();
        let csrf = hidden(&html, "csrf_token");
        self.post("/login", &[("csrf_token", &csrf), ("username", username), ("password", password), ("next", next)])
            .await
    }

    /// `/authorize?…` for the client, signed in as the user; returns the response after login.
    pub async fn authorize(
        &self,
        client: &TestClient,
        scope: Option<&str>,
        extra: &[(&str, &str)],
    ) -> reqwest::Response {
        self.get(&authorize_path(client, scope, extra)).await
    }
}

pub fn authorize_path(client: &TestClient, scope: Option<&str>, extra: &[(&str, &str)]) -> String {
    let mut query = url::form_urlencoded::Serializer::new(String::new());
    query
        .append_pair("response_type", "code")
        .append_pair("client_id", &client.id)
        .append_pair("redirect_uri", REDIRECT)
        .append_pair("state", "xyz")
        .append_pair("code_challenge", &challenge(VERIFIER))
        .append_pair("code_challenge_method", "S256");
    if let Some(scope) = scope {
        query.append_pair("scope", scope);
    }
    for (key, value) in extra {
        query.append_pair(key, value);
    }
    format!("/authorize?{}", query.finish())
}

pub fn location(response: &reqwest::Response) -> String {
    assert_eq!(response.status(), 303, "expected a redirect");
    response.headers().get("location").unwrap().to_str().unwrap().to_string()
}

pub async fn setup() -> (TestApp, TestClient) {
    setup_on(spawn_app().await)
}

pub fn setup_on(app: TestApp) -> (TestApp, TestClient) {
    app.import_scopes(TREE);
    let client = app.create_client(
        ClientRegistration {
            name: "Online Bank".into(),
            redirect_uris: vec![REDIRECT.into()],
            security_level: Some("C".parse().unwrap()),
            ..Default::default()
        },
        &["profile", "accounts"],
    );
    app.cli(
        &["user", "create", "alice", "--password-stdin", "--display-name", "Alice Example"],
        Some("alice-password"),
    );
    (app, client)
}

/// Signs in and approves the consent page with the given boxes ticked (None = all as shown).
pub async fn consent_and_get_code(
    browser: &Browser<'_>,
    client: &TestClient,
    scope: &str,
    ticked: Option<&[&str]>,
) -> HashMap<String, String> {
    let first = browser.authorize(client, Some(scope), &[]).await;
    let login_location = location(&first);
    assert!(login_location.starts_with("/login?next="), "{login_location}");
    let next = query_of(&format!("http://x{login_location}"))["next"].clone();
    let after_login = browser.login("alice", "alice-password", &next).await;
    let back = location(&after_login);
    let consent = browser.get(&back).await;
    assert_eq!(consent.status(), 200);
    let html = consent.text().await.unwrap();
    approve(browser, &html, ticked).await
}

pub async fn approve(browser: &Browser<'_>, html: &str, ticked: Option<&[&str]>) -> HashMap<String, String> {
    let csrf = hidden(html, "csrf_token");
    let token = hidden(html, "consent_token");
    let boxes: Vec<String> = html
        .match_indices("name=\"scope\" value=\"")
        .map(|(i, m)| {
            let start = i + m.len();
            html[start..start + html[start..].find('"').unwrap()].to_string()
        })
        .collect();
    let chosen: Vec<String> = match ticked {
        Some(list) => list.iter().map(|s| s.to_string()).collect(),
        None => boxes,
    };
    let mut form: Vec<(&str, &str)> = vec![("csrf_token", &csrf), ("consent_token", &token), ("decision", "allow")];
    for scope in &chosen {
        form.push(("scope", scope));
    }
    let response = browser.post("/authorize/consent", &form).await;
    let target = location(&response);
    assert!(target.starts_with(REDIRECT), "{target}");
    query_of(&target)
}

pub async fn exchange(app: &TestApp, client: &TestClient, code: &str) -> reqwest::Response {
    app.post_form(
        "/token",
        Some(client),
        &[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", REDIRECT),
            ("code_verifier", VERIFIER),
        ],
    )
    .await
}

#[tokio::test]
async fn the_online_bank_story_from_consent_to_introspection() {
    let (app, client) = setup().await;
    let browser = Browser::new(&app);
    let answer = consent_and_get_code(&browser, &client, "profile accounts", None).await;
    assert_eq!(answer["state"], "xyz");
    assert_eq!(answer["iss"], app.settings.issuer, "RFC 9207 iss on the redirect");

    let response = exchange(&app, &client, &answer["code"]).await;
    assert_eq!(response.headers().get("cache-control").unwrap(), "no-store");
    let tokens: serde_json::Value = response.json().await.unwrap();
    assert_eq!(tokens["scope"], "accounts accounts.balance accounts.transactions profile", "{tokens}");
    assert!(tokens["refresh_token"].is_string());
    let access = tokens["access_token"].as_str().unwrap();
    assert_eq!(access.matches('.').count(), 0, "a count-limited scope makes the token opaque");

    let bank_api = app.resource_server();
    let introspected = app.introspect(&bank_api, access).await;
    assert_eq!(introspected["active"], true);
    assert_eq!(introspected["username"], "alice");
    assert!(introspected["sub"].as_str().unwrap().starts_with("u_"));
    assert_eq!(introspected["scope_limits"]["accounts.transactions"]["remaining_accesses"], 99);
}

#[tokio::test]
async fn unticking_a_child_grants_the_other_children_individually() {
    let (app, client) = setup().await;
    let browser = Browser::new(&app);
    let answer = consent_and_get_code(&browser, &client, "accounts", Some(&["accounts", "accounts.balance"])).await;
    let tokens: serde_json::Value = exchange(&app, &client, &answer["code"]).await.json().await.unwrap();
    assert_eq!(tokens["scope"], "accounts.balance", "{tokens}");
    // JWT: nothing count-limited was granted.
    assert_eq!(tokens["access_token"].as_str().unwrap().matches('.').count(), 2);
}

#[tokio::test]
async fn deny_redirects_with_access_denied() {
    let (app, client) = setup().await;
    let browser = Browser::new(&app);
    let first = browser.authorize(&client, Some("accounts"), &[]).await;
    let next = query_of(&format!("http://x{}", location(&first)))["next"].clone();
    let html =
        browser.get(&location(&browser.login("alice", "alice-password", &next).await)).await.text().await.unwrap();
    let csrf = hidden(&html, "csrf_token");
    let token = hidden(&html, "consent_token");
    let response = browser
        .post("/authorize/consent", &[("csrf_token", &csrf), ("consent_token", &token), ("decision", "deny")])
        .await;
    let answer = query_of(&location(&response));
    assert_eq!(answer["error"], "access_denied");
    assert_eq!(answer["state"], "xyz");
    assert_eq!(answer["iss"], app.settings.issuer);
}

#[tokio::test]
async fn consent_is_remembered_and_prompt_consent_asks_again() {
    let (app, client) = setup().await;
    let browser = Browser::new(&app);
    consent_and_get_code(&browser, &client, "accounts", None).await;
    // Same request again: straight back with a code.
    let again = browser.authorize(&client, Some("accounts"), &[]).await;
    let answer = query_of(&location(&again));
    assert!(answer.contains_key("code"), "{answer:?}");
    // prompt=consent shows the page anyway.
    let forced = browser.authorize(&client, Some("accounts"), &[("prompt", "consent")]).await;
    assert_eq!(forced.status(), 200);
    assert!(forced.text().await.unwrap().contains("consent_token"));
}

#[tokio::test]
async fn scopes_needing_no_authorization_skip_the_consent_page() {
    let (app, client) = setup().await;
    let browser = Browser::new(&app);
    let first = browser.authorize(&client, Some("profile"), &[]).await;
    let next = query_of(&format!("http://x{}", location(&first)))["next"].clone();
    let after = browser.login("alice", "alice-password", &next).await;
    let back = browser.get(&location(&after)).await;
    let answer = query_of(&location(&back));
    assert!(answer.contains_key("code"), "no consent page for profile: {answer:?}");
}

#[tokio::test]
async fn prompt_none_without_a_session_or_consent_errors_to_the_client() {
    let (app, client) = setup().await;
    let browser = Browser::new(&app);
    let response = browser.authorize(&client, Some("accounts"), &[("prompt", "none")]).await;
    assert_eq!(query_of(&location(&response))["error"], "login_required");
    browser.login("alice", "alice-password", "/account").await;
    let response = browser.authorize(&client, Some("accounts"), &[("prompt", "none")]).await;
    let answer = query_of(&location(&response));
    assert_eq!(answer["error"], "consent_required");
    assert_eq!(answer["iss"], app.settings.issuer);
}

#[tokio::test]
async fn bad_clients_and_redirect_uris_get_an_error_page_never_a_redirect() {
    let (app, client) = setup().await;
    let browser = Browser::new(&app);
    let unknown = TestClient { id: "c_unknown".into(), secret: String::new() };
    for path in [
        authorize_path(&unknown, Some("profile"), &[]),
        authorize_path(&client, Some("profile"), &[]).replace("app.example%2Fcb", "evil.example%2Fcb"),
        authorize_path(&client, Some("profile"), &[]).replace("app.example%2Fcb", "app.example%2Fcb%2F"),
    ] {
        let response = browser.get(&path).await;
        assert_eq!(response.status(), 400, "{path}");
        assert!(response.headers().get("location").is_none());
        assert_eq!(response.headers().get("x-frame-options").unwrap(), "DENY");
        assert!(response
            .headers()
            .get("content-security-policy")
            .unwrap()
            .to_str()
            .unwrap()
            .contains("frame-ancestors 'none'"));
        assert!(response.text().await.unwrap().contains("<html"));
    }
}

#[tokio::test]
async fn pkce_is_required_and_plain_is_refused() {
    let (app, client) = setup().await;
    let browser = Browser::new(&app);
    for (what, path) in [
        (
            "no challenge",
            authorize_path(&client, Some("profile"), &[])
                .replace(&format!("&code_challenge={}&code_challenge_method=S256", challenge(VERIFIER)), ""),
        ),
        (
            "plain",
            authorize_path(&client, Some("profile"), &[])
                .replace("code_challenge_method=S256", "code_challenge_method=plain"),
        ),
        ("method missing", authorize_path(&client, Some("profile"), &[]).replace("&code_challenge_method=S256", "")),
    ] {
        let response = browser.get(&path).await;
        let answer = query_of(&location(&response));
        assert_eq!(answer["error"], "invalid_request", "{what}");
        assert_eq!(answer["state"], "xyz");
        assert_eq!(answer["iss"], app.settings.issuer);
    }
    let response = browser.get(&authorize_path(&client, Some("nope"), &[])).await;
    assert_eq!(query_of(&location(&response))["error"], "invalid_scope");
}

#[tokio::test]
async fn codes_are_single_use_and_a_replay_revokes_what_they_issued() {
    let (app, client) = setup().await;
    let browser = Browser::new(&app);
    let answer = consent_and_get_code(&browser, &client, "accounts.balance", None).await;
    let tokens: serde_json::Value = exchange(&app, &client, &answer["code"]).await.json().await.unwrap();
    let access = tokens["access_token"].as_str().unwrap();
    let bank_api = app.resource_server();
    assert_eq!(app.introspect(&bank_api, access).await["active"], true);

    let replay = exchange(&app, &client, &answer["code"]).await;
    assert_eq!(replay.status(), 400);
    let body: serde_json::Value = replay.json().await.unwrap();
    assert_eq!(body["error"], "invalid_grant");
    assert_eq!(app.introspect(&bank_api, access).await["active"], false, "the replay revoked the first token");
    let refresh = app
        .post_form(
            "/token",
            Some(&client),
            &[("grant_type", "refresh_token"), ("refresh_token", tokens["refresh_token"].as_str().unwrap())],
        )
        .await;
    assert_eq!(refresh.status(), 400, "and its refresh token");
}

#[tokio::test]
async fn a_wrong_verifier_or_redirect_uri_is_invalid_grant() {
    let (app, client) = setup().await;
    let browser = Browser::new(&app);
    let answer = consent_and_get_code(&browser, &client, "accounts.balance", None).await;
    let wrong = app
        .post_form(
            "/token",
            Some(&client),
            &[
                ("grant_type", "authorization_code"),
                ("code", &answer["code"]),
                ("redirect_uri", REDIRECT),
                ("code_verifier", "x".repeat(43).as_str()),
            ],
        )
        .await;
    assert_eq!(wrong.status(), 400);
    assert_eq!(wrong.json::<serde_json::Value>().await.unwrap()["error"], "invalid_grant");

    let answer = {
        let again = browser.authorize(&client, Some("accounts.balance"), &[]).await;
        query_of(&location(&again))
    };
    let wrong_uri = app
        .post_form(
            "/token",
            Some(&client),
            &[
                ("grant_type", "authorization_code"),
                ("code", &answer["code"]),
                ("redirect_uri", "https://app.example/other"),
                ("code_verifier", VERIFIER),
            ],
        )
        .await;
    assert_eq!(wrong_uri.json::<serde_json::Value>().await.unwrap()["error"], "invalid_grant");
}

#[tokio::test]
async fn refresh_tokens_rotate_narrow_and_reuse_revokes_the_family() {
    let (app, client) = setup().await;
    let browser = Browser::new(&app);
    let answer = consent_and_get_code(&browser, &client, "accounts", Some(&["accounts", "accounts.balance"])).await;
    let first: serde_json::Value = exchange(&app, &client, &answer["code"]).await.json().await.unwrap();
    let refresh = |token: String, scope: Option<&'static str>| {
        let app = &app;
        let client = &client;
        async move {
            let mut form = vec![("grant_type", "refresh_token".to_string()), ("refresh_token", token)];
            if let Some(scope) = scope {
                form.push(("scope", scope.to_string()));
            }
            let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
            app.post_form("/token", Some(client), &form).await
        }
    };
    // client_secret_post works on refresh too.
    let second = app
        .post_form(
            "/token",
            None,
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", first["refresh_token"].as_str().unwrap()),
                ("client_id", &client.id),
                ("client_secret", &client.secret),
            ],
        )
        .await;
    assert_eq!(second.status(), 200);
    let second: serde_json::Value = second.json().await.unwrap();
    assert_ne!(second["refresh_token"], first["refresh_token"], "rotated");
    assert_eq!(second["scope"], "accounts.balance");

    let widen = refresh(second["refresh_token"].as_str().unwrap().to_string(), Some("accounts")).await;
    assert_eq!(widen.json::<serde_json::Value>().await.unwrap()["error"], "invalid_scope", "refresh never widens");

    let bank_api = app.resource_server();
    let latest_access = second["access_token"].as_str().unwrap().to_string();
    assert_eq!(app.introspect(&bank_api, &latest_access).await["active"], true);
    // Presenting the spent first refresh token: the whole family is revoked.
    let reuse = refresh(first["refresh_token"].as_str().unwrap().to_string(), None).await;
    assert_eq!(reuse.json::<serde_json::Value>().await.unwrap()["error"], "invalid_grant");
    assert_eq!(app.introspect(&bank_api, &latest_access).await["active"], false);
}

#[tokio::test]
async fn the_account_page_lists_apps_and_revoking_ends_their_tokens() {
    let (app, client) = setup().await;
    let browser = Browser::new(&app);
    let answer = consent_and_get_code(&browser, &client, "profile accounts", None).await;
    let tokens: serde_json::Value = exchange(&app, &client, &answer["code"]).await.json().await.unwrap();
    let page = browser.get("/account").await;
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    assert!(html.contains("Online Bank") && html.contains("Balance") && html.contains("100 left"), "{html}");
    let csrf = hidden(&html, "csrf_token");
    let forged = browser.post(&format!("/account/apps/{}/revoke", client.id), &[("csrf_token", "forged")]).await;
    assert_eq!(forged.status(), 403);
    let revoked = browser.post(&format!("/account/apps/{}/revoke", client.id), &[("csrf_token", &csrf)]).await;
    assert_eq!(revoked.status(), 303);
    let bank_api = app.resource_server();
    assert_eq!(app.introspect(&bank_api, tokens["access_token"].as_str().unwrap()).await["active"], false);
    let html = browser.get("/account?revoked=1").await.text().await.unwrap();
    assert!(!html.contains("Balance"));
}

#[tokio::test]
async fn login_uses_one_message_for_unknown_users_and_wrong_passwords_and_needs_csrf() {
    let (app, _) = setup().await;
    let browser = Browser::new(&app);
    let wrong = browser.login("alice", "wrong-password", "/account").await;
    assert_eq!(wrong.status(), 401);
    let wrong_html = wrong.text().await.unwrap();
    let unknown = browser.login("mallory", "whatever-password", "/account").await;
    let unknown_html = unknown.text().await.unwrap();
    assert!(wrong_html.contains("The username or password is incorrect."));
    assert!(unknown_html.contains("The username or password is incorrect."));
    let no_csrf = browser.post("/login", &[("username", "alice"), ("password", "alice-password")]).await;
    assert_eq!(no_csrf.status(), 403);
    let ok = browser.login("alice", "alice-password", "//evil.example/").await;
    assert_eq!(location(&ok), "/account", "next never leaves the site");
    let cookie = ok
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .find(|c| c.starts_with("scopegate_session="))
        .unwrap();
    assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax"), "{cookie}");
    assert!(!cookie.contains("Secure"), "http issuer: no Secure flag");
}

#[tokio::test]
async fn prompt_login_asks_for_the_password_again_and_logout_ends_the_session() {
    let (app, client) = setup().await;
    let browser = Browser::new(&app);
    consent_and_get_code(&browser, &client, "accounts.balance", None).await;
    // Signed in with consent on record: a plain request comes straight back with a code.
    assert!(query_of(&location(&browser.authorize(&client, Some("accounts.balance"), &[]).await)).contains_key("code"));
    // prompt=login sends her to the sign-in page even so, and back without the prompt.
    let forced = location(&browser.authorize(&client, Some("accounts.balance"), &[("prompt", "login")]).await);
    assert!(forced.starts_with("/login?next="), "{forced}");
    let next = query_of(&format!("http://x{forced}"))["next"].clone();
    assert!(!next.contains("prompt"), "{next}");
    let back = location(&browser.login("alice", "alice-password", &next).await);
    assert!(query_of(&location(&browser.get(&back).await)).contains_key("code"));

    // Sign out (CSRF-protected): the next request needs a sign-in again.
    let account = browser.get("/account").await.text().await.unwrap();
    let csrf = hidden(&account, "csrf_token");
    assert_eq!(browser.post("/logout", &[("csrf_token", "forged")]).await.status(), 403);
    assert_eq!(location(&browser.post("/logout", &[("csrf_token", &csrf)]).await), "/login");
    assert!(location(&browser.get("/account").await).starts_with("/login"));
    assert!(location(&browser.authorize(&client, Some("accounts.balance"), &[]).await).starts_with("/login"));
}

#[tokio::test]
async fn a_users_jwt_names_her_subject_and_username() {
    let (app, client) = setup().await;
    let browser = Browser::new(&app);
    let answer = consent_and_get_code(&browser, &client, "accounts.balance", None).await;
    let tokens: serde_json::Value = exchange(&app, &client, &answer["code"]).await.json().await.unwrap();
    let jwt = tokens["access_token"].as_str().unwrap();
    let payload = jwt.split('.').nth(1).unwrap();
    let claims: serde_json::Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap();
    assert_eq!(claims["username"], "alice");
    assert!(claims["sub"].as_str().unwrap().starts_with("u_"));
    assert_eq!(claims["client_id"], client.id.as_str());
    let introspected = app.introspect(&app.resource_server(), jwt).await;
    assert_eq!(introspected["sub"], claims["sub"]);
    assert_eq!(introspected["username"], "alice");
}

#[tokio::test]
async fn a_public_client_exchanges_its_code_with_pkce_alone() {
    let (app, _) = setup().await;
    let mobile = app.create_client(
        ClientRegistration {
            name: "Mobile".into(),
            public: true,
            redirect_uris: vec![REDIRECT.into()],
            ..Default::default()
        },
        &[],
    );
    let browser = Browser::new(&app);
    browser.login("alice", "alice-password", "/account").await;
    // profile needs no consent: straight back with a code.
    let answer = query_of(&location(&browser.authorize(&mobile, Some("profile"), &[]).await));
    let response = app
        .post_form(
            "/token",
            None,
            &[
                ("grant_type", "authorization_code"),
                ("code", &answer["code"]),
                ("redirect_uri", REDIRECT),
                ("code_verifier", VERIFIER),
                ("client_id", &mobile.id),
            ],
        )
        .await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.json::<serde_json::Value>().await.unwrap()["scope"], "profile");
}

#[tokio::test]
async fn spent_refresh_tokens_and_their_families_are_pruned_only_after_they_expired() {
    let (app, client) = setup().await;
    let browser = Browser::new(&app);
    let answer = consent_and_get_code(&browser, &client, "accounts.balance", None).await;
    let tokens: serde_json::Value = exchange(&app, &client, &answer["code"]).await.json().await.unwrap();
    assert!(tokens["refresh_token"].is_string());
    let mut connection = app.state.db.get().unwrap();
    let now = chrono::Utc::now();
    let pruned =
        scopegate::services::housekeeping::prune(&mut connection, now, app.settings.session_lifetimes(), 365).unwrap();
    assert_eq!((pruned.refresh_tokens, pruned.refresh_families), (0, 0), "nothing live is pruned");
    let later = now + chrono::Duration::days(32);
    let pruned =
        scopegate::services::housekeeping::prune(&mut connection, later, app.settings.session_lifetimes(), 365)
            .unwrap();
    assert_eq!((pruned.refresh_tokens, pruned.refresh_families, pruned.codes), (1, 1, 1));
}

/// SPEC Part 2: `next` after sign-in is a same-origin path only. A tab or newline after the
/// slash (browsers strip them, so `/\t/evil.example` goes to evil.example) or any other control
/// character or whitespace sends the customer to `/account`, and never makes a 5xx.
#[tokio::test]
async fn next_with_control_characters_or_whitespace_never_leaves_the_site() {
    let (app, _) = setup().await;
    for next in
        ["/\t/evil.example/phish", "/\n", "/\r\nSet-Cookie: x=1", "/ /evil.example", "/\u{1}x", "\\\\evil.example"]
    {
        let browser = Browser::new(&app);
        let page = browser
            .get(&format!("/login?next={}", url::form_urlencoded::byte_serialize(next.as_bytes()).collect::<String>()))
            .await;
        assert!(page.status().is_success(), "{next:?}: {}", page.status());
        let signed_in = browser.login("alice", "alice-password", next).await;
        assert_eq!(signed_in.status(), 303, "{next:?}");
        assert_eq!(location(&signed_in), "/account", "{next:?}");
    }
    // A NUL is refused before `next` is even read: NUL anywhere in a request is a 400.
    let browser = Browser::new(&app);
    assert_eq!(browser.get("/login?next=/%00x").await.status(), 400);
    // An ordinary local path still works.
    let browser = Browser::new(&app);
    assert_eq!(location(&browser.login("alice", "alice-password", "/account?tab=grants").await), "/account?tab=grants");
}

/// `/authorize` for `client` with `challenge` as the PKCE challenge (S256).
fn authorize_path_with_challenge(client: &TestClient, challenge_value: &str) -> String {
    let encoded: String = url::form_urlencoded::byte_serialize(challenge_value.as_bytes()).collect();
    authorize_path(client, Some("profile"), &[])
        .replace(&format!("code_challenge={}", challenge(VERIFIER)), &format!("code_challenge={encoded}"))
}

/// A code for `profile` (no consent needed) under the challenge of `verifier`, redeemed with
/// that verifier: the status and body of the token response.
async fn redeem_with_verifier(browser: &Browser<'_>, client: &TestClient, verifier: &str) -> (u16, serde_json::Value) {
    let answer = query_of(&location(&browser.get(&authorize_path_with_challenge(client, &challenge(verifier))).await));
    let form = [
        ("grant_type", "authorization_code"),
        ("code", answer["code"].as_str()),
        ("redirect_uri", REDIRECT),
        ("code_verifier", verifier),
    ];
    let response = browser.app.post_form("/token", Some(client), &form).await;
    (response.status().as_u16(), response.json().await.unwrap())
}

/// SPEC Part 2, RFC 7636 §4.1–4.2: a `code_challenge` is 43 base64url characters, a
/// `code_verifier` 43 to 128 unreserved ones. A malformed challenge is an `invalid_request`
/// redirect (the redirect URI is known good by then, RFC 6749 §4.1.2.1); a malformed
/// verifier is `invalid_grant` (RFC 7636 §4.6) even when its hash matches the challenge.
#[tokio::test]
async fn pkce_values_of_the_wrong_length_or_alphabet_are_refused() {
    let (app, client) = setup().await;
    let browser = Browser::new(&app);
    browser.login("alice", "alice-password", "/account").await;
    let good = challenge(VERIFIER);
    for (what, bad) in [
        ("42 characters", good[..42].to_string()),
        ("44 characters", format!("{good}A")),
        ("standard base64", good.replace('-', "+")),
        ("padded", format!("{}=", &good[..42])),
        ("more bits than a SHA-256", format!("{}N", &good[..42])),
    ] {
        let response = browser.get(&authorize_path_with_challenge(&client, &bad)).await;
        let answer = query_of(&location(&response));
        assert_eq!(answer["error"], "invalid_request", "{what}: {bad}");
        assert_eq!(answer["state"], "xyz");
        assert_eq!(answer["iss"], app.settings.issuer);
        assert!(!answer.contains_key("code"), "{what}");
    }

    for (what, verifier) in [
        ("42 characters", "a".repeat(42)),
        ("129 characters", "a".repeat(129)),
        ("a character outside the unreserved set", format!("{}+", "a".repeat(42))),
        ("a space", format!("{} ", "a".repeat(42))),
    ] {
        let (status, body) = redeem_with_verifier(&browser, &client, &verifier).await;
        assert_eq!((status, body["error"].as_str()), (400, Some("invalid_grant")), "{what}: {body}");
    }
    for verifier in ["~._-".repeat(32), "a".repeat(43)] {
        let (status, body) = redeem_with_verifier(&browser, &client, &verifier).await;
        assert_eq!(status, 200, "the bounds themselves are fine: {body}");
    }
}

/// A public client's tokens by the code flow for `profile`: (access token, refresh token).
async fn public_client_tokens(browser: &Browser<'_>, client: &TestClient) -> (String, String) {
    let answer = query_of(&location(&browser.authorize(client, Some("profile"), &[]).await));
    let form = [
        ("grant_type", "authorization_code"),
        ("code", answer["code"].as_str()),
        ("redirect_uri", REDIRECT),
        ("code_verifier", VERIFIER),
        ("client_id", client.id.as_str()),
    ];
    let response = browser.app.post_form("/token", None, &form).await;
    assert_eq!(response.status(), 200);
    let tokens: serde_json::Value = response.json().await.unwrap();
    let field = |name: &str| tokens[name].as_str().unwrap().to_string();
    (field("access_token"), field("refresh_token"))
}

/// `/revoke` with only `client_id` in the form, as a public client sends it.
async fn revoke_as_public(app: &TestApp, client_id: &str, token: &str) -> reqwest::Response {
    app.post_form("/revoke", None, &[("token", token), ("client_id", client_id)]).await
}

/// RFC 7009 §2.1, SPEC Part 2: a public client revokes its own tokens at `/revoke` with its
/// `client_id` alone. Another client's token is left alone with a 200 (§2.2), and a
/// confidential client must still prove itself.
#[tokio::test]
async fn a_public_client_revokes_its_own_tokens_with_its_client_id_alone() {
    let (app, confidential) = setup().await;
    let public_client = |name: &str| {
        let registration = ClientRegistration {
            name: name.into(),
            public: true,
            redirect_uris: vec![REDIRECT.into()],
            ..Default::default()
        };
        app.create_client(registration, &[])
    };
    let (mobile, other_app) = (public_client("Mobile"), public_client("Other app"));
    let browser = Browser::new(&app);
    browser.login("alice", "alice-password", "/account").await;
    let bank_api = app.resource_server();
    let (access, _) = public_client_tokens(&browser, &mobile).await;

    let response = revoke_as_public(&app, &other_app.id, &access).await;
    assert_eq!(response.status(), 200, "another client's token: 200 and nothing happens");
    assert_eq!(app.introspect(&bank_api, &access).await["active"], true);
    for stranger in [confidential.id.as_str(), "c_unknown"] {
        let response = revoke_as_public(&app, stranger, &access).await;
        assert_eq!(response.status(), 401, "{stranger}: a confidential or unknown client must authenticate");
        assert_eq!(response.json::<serde_json::Value>().await.unwrap()["error"], "invalid_client");
    }
    assert_eq!(app.introspect(&bank_api, &access).await["active"], true);

    assert_eq!(revoke_as_public(&app, &mobile.id, &access).await.status(), 200);
    assert_eq!(app.introspect(&bank_api, &access).await, serde_json::json!({"active": false}));

    // A refresh token takes its family with it.
    let (access, refresh) = public_client_tokens(&browser, &mobile).await;
    assert_eq!(revoke_as_public(&app, &mobile.id, &refresh).await.status(), 200);
    assert_eq!(app.introspect(&bank_api, &access).await["active"], false);
    let form =
        [("grant_type", "refresh_token"), ("refresh_token", refresh.as_str()), ("client_id", mobile.id.as_str())];
    let refreshed = app.post_form("/token", None, &form).await;
    assert_eq!(refreshed.status(), 400);
    assert_eq!(refreshed.json::<serde_json::Value>().await.unwrap()["error"], "invalid_grant");
}

/// FAPI 2.0 §5.3.2.1 and §5.3.2.2, which hold whatever the profile: a code lives
/// `code_lifetime_seconds` (60 by default) on every instance, and `code` is the only response
/// type served.
#[tokio::test]
async fn a_code_expires_after_a_minute_and_code_is_the_only_response_type() {
    let (app, client) = setup().await;
    let alice = Browser::new(&app);
    let code = consent_and_get_code(&alice, &client, "accounts.balance", None).await["code"].clone();
    let a_minute_later = crate::helpers::spawn_app_in_the_future(&app.settings, 61).await;
    let response = exchange(&a_minute_later, &client, &code).await;
    assert_eq!(response.status(), 400);
    let error: serde_json::Value = response.json().await.unwrap();
    assert_eq!(error["error"], "invalid_grant", "{error}");

    for response_type in ["token", "code token", "id_token"] {
        let path = authorize_path(&client, Some("accounts.balance"), &[])
            .replace("response_type=code", &format!("response_type={}", response_type.replace(' ', "%20")));
        assert!(path.contains(&format!("response_type={}", response_type.replace(' ', "%20"))), "{path}");
        let answer = alice.get(&path).await;
        let target = location(&answer);
        assert!(target.starts_with(REDIRECT), "{response_type}: {target}");
        assert_eq!(query_of(&target)["error"], "unsupported_response_type", "{response_type}");
    }
}
