//! `spawn_app()`: the real server on a random port against a fresh database — a SQLite file
//! in a temporary directory, or a fresh PostgreSQL database when SCOPEGATE_TEST_POSTGRES_URL
//! is set.

use diesel::connection::SimpleConnection;
use diesel::Connection;
use scopegate::config::Settings;
use scopegate::startup::Application;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use tempfile::TempDir;

pub struct TestApp {
    pub address: String,
    /// The running server's shared state (registry cache, database pool).
    pub state: actix_web::web::Data<scopegate::state::AppState>,
    pub http: reqwest::Client,
    pub settings: Settings,
    /// Holds the SQLite file and the keys for the test's lifetime.
    pub dir: TempDir,
}

/// The settings of a fresh, isolated installation: its own database and keys directory.
pub fn fresh_settings() -> (Settings, TempDir) {
    let dir = tempfile::tempdir().expect("temporary directory");
    let database_url = match std::env::var("SCOPEGATE_TEST_POSTGRES_URL") {
        Ok(admin_url) if !admin_url.is_empty() => fresh_postgres_database(&admin_url),
        _ => format!("sqlite://{}", dir.path().join("scopegate.db").display()),
    };
    let settings = Settings {
        database_url,
        bind: "127.0.0.1:0".into(),
        keys_dir: dir.path().join("keys"),
        pool_size: 4,
        ..Settings::default()
    };
    (settings, dir)
}

pub fn is_postgres() -> bool {
    std::env::var("SCOPEGATE_TEST_POSTGRES_URL").is_ok_and(|url| !url.is_empty())
}

/// Creates `sg_test_<random>` on the server of `admin_url` and returns its URL.
fn fresh_postgres_database(admin_url: &str) -> String {
    let name = format!("sg_test_{}", scopegate::secrets::random_token(9).to_lowercase().replace(['-', '_'], "x"));
    let mut admin = diesel::PgConnection::establish(admin_url).expect("connect to the test PostgreSQL server");
    admin.batch_execute(&format!("CREATE DATABASE {name}")).expect("create the test database");
    let (base, _) = admin_url.rsplit_once('/').expect("a PostgreSQL URL with a database name");
    format!("{base}/{name}")
}

pub async fn spawn_app() -> TestApp {
    let (settings, dir) = fresh_settings();
    spawn_app_with(settings, dir).await
}

pub async fn spawn_app_with(settings: Settings, dir: TempDir) -> TestApp {
    let application = Application::build(settings.clone()).expect("build the application");
    let address = format!("http://127.0.0.1:{}", application.port());
    let state = application.state();
    tokio::spawn(application.run_until_stopped());
    let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().expect("an HTTP client");
    TestApp { address, state, http, settings, dir }
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.address, path)
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.http.get(self.url(path)).send().await.expect("GET")
    }

    /// Runs the real `scopegate` binary against this app's database and keys.
    pub fn cli(&self, args: &[&str], stdin: Option<&str>) -> Output {
        run_cli(&self.settings, args, stdin)
    }
}

pub fn scopegate_binary() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_scopegate"))
}

pub fn run_cli(settings: &Settings, args: &[&str], stdin: Option<&str>) -> Output {
    use std::io::Write;
    let mut child = Command::new(scopegate_binary())
        .args(["--database-url", &settings.database_url])
        .arg("--keys-dir")
        .arg(&settings.keys_dir)
        .args(args)
        .env_remove("SCOPEGATE_DATABASE_URL")
        .env("SCOPEGATE_LOG", "warn")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the scopegate binary");
    let mut pipe = child.stdin.take().expect("stdin");
    if let Some(input) = stdin {
        pipe.write_all(input.as_bytes()).expect("write stdin");
    }
    drop(pipe);
    child.wait_with_output().expect("wait for scopegate")
}

/// The JSON a successful CLI command printed.
pub fn cli_json(output: &Output) -> serde_json::Value {
    assert!(
        output.status.success(),
        "scopegate failed: {}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("JSON on stdout")
}
