//! Browser sessions end: at logout on the server (a copied cookie stops working), after the
//! idle timeout, and at the absolute lifetime — on every instance sharing the database.

use crate::browser_flow::{hidden, location, setup, setup_on, Browser};
use crate::helpers::{fresh_settings, spawn_app_in_the_future, spawn_app_with, ServerProcess, TestApp};

/// `scopegate_session=VALUE` from a response's `Set-Cookie`, as a thief would copy it.
pub fn session_cookie(response: &reqwest::Response) -> String {
    response
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|value| value.to_str().unwrap())
        .find(|cookie| cookie.starts_with("scopegate_session="))
        .and_then(|cookie| cookie.split(';').next())
        .expect("a session cookie")
        .to_string()
}

/// `GET /account` on `app` with nothing but the copied cookie.
pub async fn account_with(app_url: &str, cookie: &str) -> reqwest::Response {
    let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    http.get(format!("{app_url}/account")).header("cookie", cookie).send().await.unwrap()
}

async fn opens_account(app_url: &str, cookie: &str) -> bool {
    let response = account_with(app_url, cookie).await;
    match response.status().as_u16() {
        200 => true,
        303 => {
            assert!(location(&response).starts_with("/login"), "a refused session is sent to sign in");
            false
        }
        other => panic!("unexpected status {other} for /account"),
    }
}

async fn logout(browser: &Browser<'_>) {
    let html = browser.get("/account").await.text().await.unwrap();
    let csrf = hidden(&html, "csrf_token");
    assert_eq!(location(&browser.post("/logout", &[("csrf_token", &csrf)]).await), "/login");
}

async fn signed_in_copy(browser: &Browser<'_>) -> String {
    let response = browser.login("alice", "alice-password", "/account").await;
    assert_eq!(location(&response), "/account");
    session_cookie(&response)
}

#[tokio::test]
async fn a_cookie_copied_before_logout_no_longer_opens_the_account_page() {
    let (app, _) = setup().await;
    let browser = Browser::new(&app);
    let copy = signed_in_copy(&browser).await;
    assert!(opens_account(&app.address, &copy).await, "the copy works while the session lives");
    logout(&browser).await;
    assert!(!opens_account(&app.address, &copy).await, "logout ended the session on the server");
    assert!(location(&browser.get("/account").await).starts_with("/login"));
}

/// An installation whose sessions last `idle` seconds without a request and `max` in all.
async fn app_with_sessions(idle: i64, max: i64) -> TestApp {
    let (mut settings, dir) = fresh_settings();
    settings.session_idle_seconds = idle;
    settings.session_max_seconds = max;
    setup_on(spawn_app_with(settings, dir).await).0
}

/// Instances of the same installation whose clocks run ahead, for the time to pass without
/// sleeping: `later(n)` is the installation `n` seconds from now.
struct Timeline<'a> {
    app: &'a TestApp,
    instances: Vec<TestApp>,
}

impl<'a> Timeline<'a> {
    fn new(app: &'a TestApp) -> Self {
        Self { app, instances: Vec::new() }
    }

    async fn later(&mut self, seconds: i64) -> String {
        let instance = spawn_app_in_the_future(&self.app.settings, seconds).await;
        let address = instance.address.clone();
        self.instances.push(instance);
        address
    }
}

#[tokio::test]
async fn a_session_ends_after_the_idle_timeout_and_activity_renews_it() {
    let app = app_with_sessions(60, 3600).await;
    let browser = Browser::new(&app);
    let copy = signed_in_copy(&browser).await;
    let mut time = Timeline::new(&app);
    // Requests at +50 s and +100 s keep it alive: each is within a minute of the one before.
    assert!(opens_account(&time.later(50).await, &copy).await);
    assert!(opens_account(&time.later(100).await, &copy).await, "the request at +50 s renewed it");
    // 61 s after the last request it has ended.
    assert!(!opens_account(&time.later(161).await, &copy).await, "idle for 61 s");

    // Another session, left alone: ended 60 s after sign-in. (Each instance takes real time to
    // start, which adds to its offset: the margins leave room for a slow machine.)
    let idle = signed_in_copy(&Browser::new(&app)).await;
    assert!(opens_account(&time.later(40).await, &idle).await);
    assert!(!opens_account(&time.later(120).await, &idle).await);
}

#[tokio::test]
async fn no_activity_extends_a_session_past_its_absolute_lifetime() {
    let app = app_with_sessions(120, 300).await;
    let browser = Browser::new(&app);
    let copy = signed_in_copy(&browser).await;
    let mut time = Timeline::new(&app);
    // Each request comes well within the idle timeout of the one before; the last well within
    // the lifetime (the instances' start-up time adds to their offsets on a slow machine).
    for seconds in [100, 200, 270] {
        assert!(opens_account(&time.later(seconds).await, &copy).await, "active at +{seconds} s");
    }
    assert!(!opens_account(&time.later(320).await, &copy).await, "past the 300 s lifetime though active");
}

#[tokio::test]
async fn a_session_logged_out_on_one_instance_is_refused_on_another() {
    let (app, _) = setup().await;
    let other = ServerProcess::start(&app.settings).await;
    let browser = Browser::new(&app);
    let copy = signed_in_copy(&browser).await;
    assert!(opens_account(&other.url, &copy).await, "a session works on every instance");
    logout(&browser).await;
    assert!(!opens_account(&other.url, &copy).await, "and ends on every instance");
}

#[tokio::test]
async fn signing_in_again_ends_the_session_the_browser_held() {
    let (app, _) = setup().await;
    let browser = Browser::new(&app);
    let first = signed_in_copy(&browser).await;
    let second = signed_in_copy(&browser).await;
    assert!(!opens_account(&app.address, &first).await);
    assert!(opens_account(&app.address, &second).await);
}

#[tokio::test]
async fn ended_sessions_are_pruned() {
    let app = app_with_sessions(60, 3600).await;
    signed_in_copy(&Browser::new(&app)).await;
    let lifetimes = app.settings.session_lifetimes();
    let mut connection = app.state.db.get().unwrap();
    let now = chrono::Utc::now();
    let prune =
        |connection: &mut _, at| scopegate::services::housekeeping::prune(connection, at, lifetimes, 365).unwrap();
    assert_eq!(prune(&mut connection, now).sessions, 0, "a live session stays");
    assert_eq!(prune(&mut connection, now + chrono::Duration::seconds(61)).sessions, 1, "an idle one goes");
}

/// The session cookie keeps its flags: HttpOnly, SameSite=Lax, and Secure when the issuer is
/// https (a guard: the cookie's contents changed, not its flags).
#[tokio::test]
async fn the_session_cookie_is_secure_when_the_issuer_is_https() {
    let (settings, dir) = fresh_settings();
    let settings = scopegate::config::Settings { issuer: "https://bank.example".into(), ..settings };
    let (app, _) = setup_on(spawn_app_with(settings, dir).await);
    // The server speaks plain http here, so a cookie jar would withhold the Secure cookie:
    // carry it by hand.
    let form = app.get("/login").await;
    let cookie = session_cookie(&form);
    let csrf = hidden(&form.text().await.unwrap(), "csrf_token");
    let signed_in = app
        .http
        .post(app.url("/login"))
        .header("cookie", &cookie)
        .form(&[
            ("csrf_token", csrf.as_str()),
            ("username", "alice"),
            ("password", "alice-password"),
            ("next", "/account"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(location(&signed_in), "/account");
    let set_cookie = signed_in
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|value| value.to_str().unwrap().to_string())
        .find(|value| value.starts_with("scopegate_session="))
        .unwrap();
    for flag in ["HttpOnly", "SameSite=Lax", "Secure"] {
        assert!(set_cookie.contains(flag), "{flag} in {set_cookie}");
    }
    assert!(opens_account(&app.address, &session_cookie(&signed_in)).await);
}
