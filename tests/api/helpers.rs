//! `spawn_app()`: the real server on a random port against a fresh database — a SQLite file
//! in a temporary directory, or a fresh PostgreSQL database when SCOPEGATE_TEST_POSTGRES_URL
//! is set.

use diesel::connection::SimpleConnection;
use diesel::Connection;
use scopegate::config::Settings;
use scopegate::domain::event::Actor;
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
pub fn fresh_postgres_database(admin_url: &str) -> String {
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

/// An app where no security level follows FAPI 2.0 (`fapi_security_levels = []`): for tests of
/// other rules that use level A and B scopes with secret clients. The FAPI rule itself is
/// tested in `fapi.rs`.
pub async fn spawn_app_without_fapi_levels() -> TestApp {
    let (mut settings, dir) = fresh_settings();
    settings.fapi_security_levels.clear();
    spawn_app_with(settings, dir).await
}

pub async fn spawn_app_with(settings: Settings, dir: TempDir) -> TestApp {
    if std::env::var("SCOPEGATE_TEST_LOG").is_ok() {
        scopegate::cli::init_tracing();
    }
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
    run_cli_with_env(settings, args, stdin, &[])
}

/// As [`run_cli`], with more `SCOPEGATE_*` variables set for the command.
pub fn run_cli_with_env(settings: &Settings, args: &[&str], stdin: Option<&str>, env: &[(&str, &str)]) -> Output {
    use std::io::Write;
    let mut child = Command::new(scopegate_binary())
        .args(["--database-url", &settings.database_url])
        .arg("--keys-dir")
        .arg(&settings.keys_dir)
        .args(args)
        .env_remove("SCOPEGATE_DATABASE_URL")
        .env("SCOPEGATE_LOG", "warn")
        .envs(env.iter().copied())
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

/// A registered test client's credentials.
pub struct TestClient {
    pub id: String,
    pub secret: String,
}

impl TestApp {
    /// Imports a scope document (the `GET /admin/v1/scopes` shape) through the app's registry.
    pub fn import_scopes(&self, document: &str) {
        let document: scopegate::domain::scope_document::ScopeDocument = serde_json::from_str(document).unwrap();
        self.state
            .registry
            .import(&mut self.state.db.get().unwrap(), &document.scopes, &Actor::Cli, chrono::Utc::now())
            .unwrap();
    }

    pub fn create_client(
        &self,
        registration: scopegate::domain::client::ClientRegistration,
        scopes: &[&str],
    ) -> TestClient {
        let scopes: Vec<String> = scopes.iter().map(|s| s.to_string()).collect();
        let registered = scopegate::services::clients::register(
            &mut self.state.db.get().unwrap(),
            &self.state.hasher,
            &registration,
            &scopes,
            None,
            &Actor::Cli,
            chrono::Utc::now(),
        )
        .unwrap();
        TestClient { id: registered.client.client_id, secret: registered.client_secret.unwrap_or_default() }
    }

    /// A confidential client that may use client credentials at the given level.
    pub fn machine_client(&self, level: &str, scopes: &[&str]) -> TestClient {
        self.create_client(
            scopegate::domain::client::ClientRegistration {
                name: "Machine".into(),
                security_level: Some(level.parse().unwrap()),
                ..Default::default()
            },
            scopes,
        )
    }

    pub fn resource_server(&self) -> TestClient {
        self.create_client(
            scopegate::domain::client::ClientRegistration {
                name: "Resource server".into(),
                can_introspect: true,
                ..Default::default()
            },
            &[],
        )
    }

    pub async fn post_form(&self, path: &str, auth: Option<&TestClient>, form: &[(&str, &str)]) -> reqwest::Response {
        let mut request = self.http.post(self.url(path)).form(form);
        if let Some(client) = auth {
            request = request.basic_auth(&client.id, Some(&client.secret));
        }
        request.send().await.expect("POST")
    }

    /// Client credentials with Basic auth; returns the response.
    pub async fn client_credentials(&self, client: &TestClient, scope: Option<&str>) -> reqwest::Response {
        let mut form = vec![("grant_type", "client_credentials")];
        if let Some(scope) = scope {
            form.push(("scope", scope));
        }
        self.post_form("/token", Some(client), &form).await
    }

    /// An access token by client credentials, asserting success.
    pub async fn access_token(&self, client: &TestClient, scope: Option<&str>) -> serde_json::Value {
        let response = self.client_credentials(client, scope).await;
        let status = response.status();
        let body: serde_json::Value = response.json().await.unwrap();
        assert_eq!(status, 200, "{body}");
        body
    }

    pub async fn introspect(&self, caller: &TestClient, token: &str) -> serde_json::Value {
        let response = self.post_form("/introspect", Some(caller), &[("token", token)]).await;
        assert_eq!(response.status(), 200);
        response.json().await.unwrap()
    }
}

/// Another instance on the same database and keys whose clock runs `seconds` ahead.
pub async fn spawn_app_in_the_future(settings: &Settings, seconds: i64) -> TestApp {
    let (_, dir) = fresh_settings();
    let state = scopegate::state::AppState::prepare_with_clock(
        settings.clone(),
        scopegate::domain::clock::Clock::ahead_by(seconds),
    )
    .expect("prepare the state");
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let application = Application::with_state(state, listener).expect("build the application");
    let address = format!("http://127.0.0.1:{}", application.port());
    let state = application.state();
    tokio::spawn(application.run_until_stopped());
    let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().expect("an HTTP client");
    TestApp { address, state, http, settings: settings.clone(), dir }
}

/// The real `scopegate serve` binary as a separate process on this app's database and keys.
pub struct ServerProcess {
    pub child: std::process::Child,
    pub url: String,
}

impl ServerProcess {
    pub async fn start(settings: &Settings) -> Self {
        Self::start_with_env(settings, &[]).await
    }

    /// As [`ServerProcess::start`], with more `SCOPEGATE_*` variables set for the server.
    pub async fn start_with_env(settings: &Settings, env: &[(&str, &str)]) -> Self {
        Self::start_serving(settings, &[], env).await
    }

    /// As [`ServerProcess::start_with_env`], with more flags for `serve` (such as `--demo`).
    pub async fn start_serving(settings: &Settings, serve_flags: &[&str], env: &[(&str, &str)]) -> Self {
        Self::spawn(settings, serve_flags, env, Stdio::inherit()).await
    }

    /// As [`ServerProcess::start_with_env`], writing the server's log (stderr) to `log`.
    pub async fn start_logging_to(settings: &Settings, env: &[(&str, &str)], log: &std::path::Path) -> Self {
        let file = std::fs::File::create(log).expect("create the server's log file");
        Self::spawn(settings, &[], env, Stdio::from(file)).await
    }

    async fn spawn(settings: &Settings, serve_flags: &[&str], env: &[(&str, &str)], stderr: Stdio) -> Self {
        let port = {
            let probe = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
            probe.local_addr().expect("address").port()
        };
        let url = format!("http://127.0.0.1:{port}");
        let child = Command::new(scopegate_binary())
            .args(["--database-url", &settings.database_url])
            .arg("--keys-dir")
            .arg(&settings.keys_dir)
            .args(["serve", "--bind", &format!("127.0.0.1:{port}"), "--issuer", &settings.issuer])
            .args(serve_flags)
            .env("SCOPEGATE_LOG", "error")
            .env("SCOPEGATE_POOL_SIZE", "8")
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .expect("start scopegate serve");
        let mut server = Self { child, url };
        let started = std::time::Instant::now();
        while reqwest::get(format!("{}/readyz", server.url)).await.map(|r| r.status() != 200).unwrap_or(true) {
            assert!(started.elapsed() < std::time::Duration::from_secs(30), "the server process did not start");
            if let Ok(Some(status)) = server.child.try_wait() {
                panic!("the server process exited at start: {status}");
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        server
    }

    /// SIGKILL: no graceful shutdown, as in a crash.
    pub fn kill_hard(&mut self) {
        self.child.kill().expect("kill -9 the server");
        self.child.wait().expect("reap the server");
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
