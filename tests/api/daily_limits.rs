//! Per-day access limits (issue 15, Berlin Group `frequencyPerDay`): `max_accesses_per_day`
//! counted exactly under concurrency across server processes, days turning at midnight in
//! `limits_timezone`, and the limit in words on the consent and account pages.

use crate::browser_flow::{location, query_of, Browser};
use crate::helpers::{fresh_settings, spawn_app, spawn_app_in_the_future, spawn_app_with, ServerProcess, TestApp};
use crate::limits::concurrent_introspections;
use chrono::{Duration, TimeZone, Utc};
use chrono_tz::Tz;
use scopegate::domain::client::ClientRegistration;

const DAILY: &str = r#"{"scopes": [
  {"name": "profile", "short_description": "Profile", "default_scope": true, "user_authorization_required": false},
  {"name": "balance", "alias": "Account balance", "short_description": "Balance", "max_accesses_per_day": 4}
]}"#;

async fn daily_token(app: &TestApp, per_day: u32) -> String {
    app.import_scopes(&DAILY.replace("\"max_accesses_per_day\": 4", &format!("\"max_accesses_per_day\": {per_day}")));
    let client = app.machine_client("F", &[]);
    app.access_token(&client, Some("balance profile")).await["access_token"].as_str().unwrap().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn exactly_max_accesses_per_day_of_500_concurrent_introspections_on_two_processes_report_the_scope() {
    let app = spawn_app().await;
    let token = daily_token(&app, 37).await;
    let bank_api = app.resource_server();
    let first = ServerProcess::start(&app.settings).await;
    let second = ServerProcess::start(&app.settings).await;
    let servers = [first.url.clone(), second.url.clone()];
    let reported = concurrent_introspections(&servers, &bank_api, &token, 500, "balance").await;
    assert_eq!(reported, 37, "exactly the day's limit, across two processes on one database");
    let after = app.introspect(&bank_api, &token).await;
    assert_eq!(after["scope"], "profile", "spent for today: {after}");
}

#[tokio::test]
async fn the_day_turns_at_midnight_in_the_limits_timezone() {
    let (mut settings, dir) = fresh_settings();
    let berlin: Tz = "Europe/Berlin".parse().unwrap();
    settings.limits_timezone = berlin;
    // The token must outlive the night.
    settings.access_token_lifetime_seconds = 2 * 24 * 3600;
    let app = spawn_app_with(settings, dir).await;
    let token = daily_token(&app, 2).await;
    let bank_api = app.resource_server();

    let first = app.introspect(&bank_api, &token).await;
    assert_eq!(first["scope_limits"]["balance"]["remaining_accesses_today"], 1, "{first}");
    assert!(first["scope_limits"]["balance"]["remaining_accesses"].is_null(), "no limit on all accesses");
    app.introspect(&bank_api, &token).await;
    let spent = app.introspect(&bank_api, &token).await;
    assert_eq!(spent["scope"], "profile", "two a day: {spent}");

    // A minute past the next midnight in Berlin (not UTC's), on another instance.
    let now = Utc::now();
    let tomorrow = now.with_timezone(&berlin).date_naive() + Duration::days(1);
    let midnight = berlin.from_local_datetime(&tomorrow.and_hms_opt(0, 1, 0).unwrap()).earliest().unwrap();
    let next_day = spawn_app_in_the_future(&app.settings, (midnight.with_timezone(&Utc) - now).num_seconds()).await;
    let fresh = next_day.introspect(&bank_api, &token).await;
    assert_eq!(fresh["scope"], "balance profile", "a new day in Berlin: {fresh}");
    assert_eq!(fresh["scope_limits"]["balance"]["remaining_accesses_today"], 1);
    next_day.introspect(&bank_api, &token).await;
    assert_eq!(next_day.introspect(&bank_api, &token).await["scope"], "profile", "two again on the new day");
}

#[tokio::test]
async fn the_consent_and_account_pages_say_the_daily_limit_in_words() {
    let app = spawn_app().await;
    app.import_scopes(DAILY);
    let client = app.create_client(
        ClientRegistration {
            name: "Budget app".into(),
            redirect_uris: vec![crate::browser_flow::REDIRECT.into()],
            ..Default::default()
        },
        &[],
    );
    app.cli(&["user", "create", "alice", "--password-stdin"], Some("alice-password"));
    let alice = Browser::new(&app);
    let login = location(&alice.authorize(&client, Some("balance"), &[]).await);
    let next = query_of(&format!("http://x{login}"))["next"].clone();
    let back = location(&alice.login("alice", "alice-password", &next).await);
    let consent = alice.get(&back).await.text().await.unwrap();
    assert!(consent.contains("up to 4 accesses a day"), "{consent}");
    let answer = crate::browser_flow::approve(&alice, &consent, None).await;
    assert!(answer.contains_key("code"));
    let account = alice.get("/account").await.text().await.unwrap();
    assert!(account.contains("4 left today"), "{account}");
}
