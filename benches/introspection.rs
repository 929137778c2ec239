//! Counted introspection throughput: every request introspects a token carrying a
//! count-limited scope, so every answer is a conditional UPDATE committed to the database.
//! The real server runs in this process (release build) and is loaded over loopback HTTP.
//! Run: `cargo bench --bench introspection` (SQLite; set SCOPEGATE_BENCH_POSTGRES_URL to a
//! PostgreSQL server's admin URL to measure PostgreSQL too, in a fresh database).
#![allow(clippy::expect_used)]

use diesel::connection::SimpleConnection;
use diesel::Connection;
use scopegate::config::Settings;
use scopegate::domain::client::ClientRegistration;
use scopegate::domain::event::Actor;
use scopegate::domain::scope_document::ScopeDocument;
use scopegate::services::clients;
use scopegate::startup::Application;
use serde_json::Value;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const CONCURRENCY: usize = 32;
const WARM_UP: Duration = Duration::from_secs(1);
const MEASURE: Duration = Duration::from_secs(5);

async fn measure(label: &str, database_url: String) -> anyhow::Result<()> {
    let keys = tempfile::tempdir()?;
    for scope in ["metered", "open"] {
        load(label, database_url.clone(), keys.path(), scope).await?;
    }
    Ok(())
}

/// Loads one fresh installation with introspections of a token carrying `scope`: `metered`
/// (count-limited: every answer is a write) or `open` (unlimited: reads only, for comparison).
async fn load(
    label: &str,
    database_url: String,
    keys_dir: &std::path::Path,
    scope: &'static str,
) -> anyhow::Result<()> {
    let settings = Settings {
        database_url,
        bind: "127.0.0.1:0".into(),
        keys_dir: keys_dir.to_path_buf(),
        pool_size: 8,
        ..Settings::default()
    };
    let application = Application::build(settings)?;
    let base = format!("http://127.0.0.1:{}", application.port());
    let state = application.state();
    tokio::spawn(application.run_until_stopped());

    let document: ScopeDocument = serde_json::from_str(
        r#"{"scopes": [{"name": "metered", "short_description": "Counted", "max_access_count": 2000000000},
            {"name": "open", "short_description": "Not counted"}]}"#,
    )?;
    let mut connection = state.db.get()?;
    let now = chrono::Utc::now();
    state.registry.import(&mut connection, &document.scopes, &Actor::Cli, now)?;
    let app = clients::register(
        &mut connection,
        &state.hasher,
        &ClientRegistration { name: "App".into(), ..Default::default() },
        &[],
        None,
        &Actor::Cli,
        now,
    )?;
    let bank = clients::register(
        &mut connection,
        &state.hasher,
        &ClientRegistration { name: "Bank API".into(), can_introspect: true, ..Default::default() },
        &[],
        None,
        &Actor::Cli,
        now,
    )?;
    drop(connection);
    let http = reqwest::Client::new();
    let token: Value = http
        .post(format!("{base}/token"))
        .basic_auth(&app.client.client_id, app.client_secret.as_deref())
        .form(&[("grant_type", "client_credentials"), ("scope", scope)])
        .send()
        .await?
        .json()
        .await?;
    let token = token["access_token"].as_str().expect("a token").to_string();

    let counted = Arc::new(AtomicUsize::new(0));
    let measuring = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let deadline = Instant::now() + WARM_UP + MEASURE;
    let workers: Vec<_> = (0..CONCURRENCY)
        .map(|_| {
            let (http, url, token) = (http.clone(), format!("{base}/introspect"), token.clone());
            let (id, secret) = (bank.client.client_id.clone(), bank.client_secret.clone());
            let (counted, measuring) = (counted.clone(), measuring.clone());
            tokio::spawn(async move {
                while Instant::now() < deadline {
                    let response =
                        http.post(&url).basic_auth(&id, secret.as_deref()).form(&[("token", &token)]).send().await;
                    let Ok(response) = response else { continue };
                    let Ok(body) = response.json::<Value>().await else { continue };
                    // Every answer must report the scope: a counted one stays under its limit here.
                    let reported = body["scope"].as_str().is_some_and(|s| s.split(' ').any(|name| name == scope));
                    if !reported {
                        eprintln!("unexpected introspection answer: {body}");
                    } else if measuring.load(Ordering::Relaxed) {
                        counted.fetch_add(1, Ordering::Relaxed);
                    }
                }
            })
        })
        .collect();
    tokio::time::sleep(WARM_UP).await;
    measuring.store(true, Ordering::Relaxed);
    let started = Instant::now();
    for worker in workers {
        worker.await?;
    }
    let elapsed = started.elapsed().as_secs_f64();
    let total = counted.load(Ordering::Relaxed);
    let grants = scopegate::storage::grants::list(&mut *state.db.get()?, None, Some(&app.client.client_id))?;
    let kind = if scope == "metered" { "counted" } else { "uncounted" };
    println!(
        "{label:<10} {:>7.0} {kind} introspections/s ({total} in {elapsed:.1} s, {CONCURRENCY} concurrent clients; stored count {})",
        total as f64 / elapsed,
        grants.first().map(|(_, g)| g.access_count).unwrap_or(0)
    );
    Ok(())
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    measure("SQLite", format!("sqlite://{}", dir.path().join("bench.db").display())).await?;
    if let Ok(admin_url) = std::env::var("SCOPEGATE_BENCH_POSTGRES_URL") {
        let name = format!("sg_bench_{}", std::process::id());
        diesel::PgConnection::establish(&admin_url)?.batch_execute(&format!("CREATE DATABASE {name}"))?;
        let (base, _) = admin_url.rsplit_once('/').expect("a database URL");
        measure("PostgreSQL", format!("{base}/{name}")).await?;
    }
    Ok(())
}
