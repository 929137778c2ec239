//! Our own fuzz suite (issue 12): random and malformed requests against every route of the
//! real `scopegate serve --demo` process, over raw TCP so that anything HTTP/1.1 can frame can
//! be sent — odd methods, headers and content types, invalid UTF-8, NUL, oversized and deeply
//! nested bodies, percent-encoding tricks. About half carry valid credentials (an admin token,
//! a client's Basic credentials, a signed-in session), so they get past authentication.
//!
//! It fails on any 5xx, any connection closed without an answer, any request left unanswered
//! for 30 s, a panic in the server's log, or a server that stops answering.
//!
//! `SCOPEGATE_FUZZ_REQUESTS` (default 3,000) and `SCOPEGATE_FUZZ_SEED` (default: random, and
//! printed, so a failing run can be replayed). `tests/fuzz` runs 100,000 on both backends.

use crate::helpers::{fresh_settings, scopegate_binary};
use futures_util::StreamExt;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::collections::BTreeMap;
use std::process::{Child, Command, Stdio};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const DEFAULT_REQUESTS: usize = 3_000;
const CONCURRENCY: usize = 8;
const ANSWER_TIMEOUT: Duration = Duration::from_secs(30);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_and_malformed_requests_never_get_a_5xx_a_dropped_connection_or_a_panic() {
    let requests: usize =
        std::env::var("SCOPEGATE_FUZZ_REQUESTS").ok().and_then(|n| n.parse().ok()).unwrap_or(DEFAULT_REQUESTS);
    let seed: u64 = std::env::var("SCOPEGATE_FUZZ_SEED").ok().and_then(|n| n.parse().ok()).unwrap_or_else(rand::random);
    let server = FuzzedServer::start().await;
    let credentials = Credentials::obtain(&server.address).await;
    eprintln!("fuzz: {requests} requests, seed {seed} (SCOPEGATE_FUZZ_SEED={seed} replays this run)");

    let mut generator = StdRng::seed_from_u64(seed);
    let generated: Vec<Vec<u8>> = (0..requests).map(|_| random_request(&mut generator, &credentials)).collect();
    let address = server.address.clone();
    let outcomes: Vec<(Vec<u8>, Result<u16, String>)> = futures_util::stream::iter(generated)
        .map(|request| {
            let address = address.clone();
            async move {
                let outcome = send_raw(&address, &request).await;
                (request, outcome)
            }
        })
        .buffer_unordered(CONCURRENCY)
        .collect()
        .await;

    let mut histogram: BTreeMap<String, usize> = BTreeMap::new();
    let mut failures = Vec::new();
    for (request, outcome) in &outcomes {
        let key = match outcome {
            Ok(status) => status.to_string(),
            Err(_) => "no answer".to_string(),
        };
        *histogram.entry(key).or_default() += 1;
        let failed = match outcome {
            Ok(status) => *status >= 500,
            Err(_) => true,
        };
        if failed && failures.len() < 10 {
            failures.push(format!("{outcome:?} for:\n{}", shorten(request)));
        }
    }
    eprintln!("fuzz: status histogram over {} requests (seed {seed}):", outcomes.len());
    for (status, count) in &histogram {
        eprintln!("  {status:>9}  {count}");
    }
    assert!(failures.is_empty(), "seed {seed}: {} failures, the first:\n{}", failures.len(), failures.join("\n\n"));
    server.assert_healthy().await;
}

/// The real binary with the demo seeded, its log captured in a file.
struct FuzzedServer {
    child: Child,
    address: String,
    log: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

impl FuzzedServer {
    async fn start() -> Self {
        let (settings, dir) = fresh_settings();
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let log = dir.path().join("server.log");
        let child = Command::new(scopegate_binary())
            .args(["--database-url", &settings.database_url])
            .arg("--keys-dir")
            .arg(&settings.keys_dir)
            .args(["serve", "--demo", "--bind", &format!("127.0.0.1:{port}")])
            .args(["--issuer", &format!("http://127.0.0.1:{port}")])
            .env("SCOPEGATE_LOG", "warn")
            .env("SCOPEGATE_LOG_FORMAT", "text")
            .env("RUST_BACKTRACE", "1")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        let mut server = Self { child, address: format!("127.0.0.1:{port}"), log, _dir: dir };
        let started = std::time::Instant::now();
        while reqwest::get(format!("http://{}/readyz", server.address)).await.map(|r| r.status() != 200).unwrap_or(true)
        {
            assert!(started.elapsed() < Duration::from_secs(30), "the server did not start: {}", server.log_text());
            assert!(server.child.try_wait().unwrap().is_none(), "the server exited: {}", server.log_text());
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        server
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    async fn assert_healthy(mut self) {
        assert!(self.child.try_wait().unwrap().is_none(), "the server died: {}", self.log_text());
        let ready = reqwest::get(format!("http://{}/readyz", self.address)).await.unwrap();
        assert_eq!(ready.status(), 200, "the server no longer answers /readyz");
        let log = self.log_text();
        assert!(!log.contains("panicked"), "a panic in the server log:\n{log}");
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for FuzzedServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Valid credentials, so a share of the requests gets past authentication.
struct Credentials {
    admin_bearer: String,
    machine_bearer: String,
    /// `Basic …` of the demo's clients: resource server, code-flow client, admin client.
    basics: Vec<String>,
    session_cookie: String,
    csrf_token: String,
    /// The demo's administrator signed in, for the console (`/admin`).
    admin_session_cookie: String,
    admin_csrf_token: String,
}

impl Credentials {
    async fn obtain(address: &str) -> Self {
        let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
        let base = format!("http://{address}");
        let token = |scope: &'static str| {
            let (http, base) = (http.clone(), base.clone());
            async move {
                let answer: serde_json::Value = http
                    .post(format!("{base}/token"))
                    .basic_auth("demo-admin", Some("demo-admin-secret"))
                    .form(&[("grant_type", "client_credentials"), ("scope", scope)])
                    .send()
                    .await
                    .unwrap()
                    .json()
                    .await
                    .unwrap();
                answer["access_token"].as_str().unwrap_or_else(|| panic!("a token: {answer}")).to_string()
            }
        };
        let admin_bearer = format!("Bearer {}", token("scopegate:admin").await);
        let machine_bearer = format!("Bearer {}", token("").await);
        let basic = |id: &str, secret: &str| {
            use base64::Engine;
            format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("{id}:{secret}")))
        };
        let basics = vec![
            basic("bank-api", "bank-api-secret"),
            basic("online-bank", "online-bank-secret"),
            basic("demo-admin", "demo-admin-secret"),
        ];
        let (session_cookie, csrf_token) = sign_in(&http, &base, "alice", "alice-password", "/account").await;
        let (admin_session_cookie, admin_csrf_token) = sign_in(&http, &base, "admin", "admin-password", "/admin").await;
        Self {
            admin_bearer,
            machine_bearer,
            basics,
            session_cookie,
            csrf_token,
            admin_session_cookie,
            admin_csrf_token,
        }
    }
}

/// Signs in as a browser would; the session cookie and the CSRF token of the page `next`.
async fn sign_in(http: &reqwest::Client, base: &str, username: &str, password: &str, next: &str) -> (String, String) {
    let page = http.get(format!("{base}/login")).send().await.unwrap();
    let cookie = session_cookie(&page).expect("a session cookie from the login page");
    let html = page.text().await.unwrap();
    let csrf = between(&html, "name=\"csrf_token\" value=\"", "\"").expect("a CSRF token").to_string();
    let signed_in = http
        .post(format!("{base}/login"))
        .header("cookie", &cookie)
        .form(&[("username", username), ("password", password), ("csrf_token", &csrf), ("next", next)])
        .send()
        .await
        .unwrap();
    assert_eq!(signed_in.status(), 303, "{username} signs in");
    let session_cookie = session_cookie(&signed_in).expect("a session cookie after sign-in");
    let landing = http.get(format!("{base}{next}")).header("cookie", &session_cookie).send().await.unwrap();
    let html = landing.text().await.unwrap();
    let csrf_token = between(&html, "name=\"csrf_token\" value=\"", "\"").unwrap_or(&csrf).to_string();
    (session_cookie, csrf_token)
}

fn session_cookie(response: &reqwest::Response) -> Option<String> {
    response
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|value| value.to_str().ok())
        .find(|value| value.starts_with("scopegate_session="))
        .map(|value| value.split(';').next().unwrap_or_default().to_string())
}

fn between<'a>(text: &'a str, start: &str, end: &str) -> Option<&'a str> {
    let from = text.find(start)? + start.len();
    let to = text[from..].find(end)? + from;
    Some(&text[from..to])
}

/// Sends one request on its own connection and reads the final status (after any 1xx).
async fn send_raw(address: &str, request: &[u8]) -> Result<u16, String> {
    let exchange = async {
        let stream = TcpStream::connect(address).await.map_err(|error| format!("connect: {error}"))?;
        let (mut reader, mut writer) = stream.into_split();
        let request = request.to_vec();
        // The server may answer (413, 400) before it has read an oversized body, and close:
        // a failed write is not a failure as long as an answer arrives.
        let write = tokio::spawn(async move {
            let _ = writer.write_all(&request).await;
            writer
        });
        // The answer counts once its status line is in: a server that answers without reading
        // a body it does not need may keep the connection until the sender gives up.
        let mut answer = Vec::new();
        let mut buffer = [0u8; 8192];
        let ended = loop {
            match reader.read(&mut buffer).await {
                Ok(0) => break "end of stream".to_string(),
                Ok(read) => answer.extend_from_slice(&buffer[..read]),
                Err(error) => break error.to_string(),
            }
            if let Some(status) = final_status(&answer) {
                write.abort();
                return Ok(status);
            }
        };
        write.abort();
        match final_status(&answer) {
            Some(status) => Ok(status),
            None => Err(format!("no answer ({ended}, {} bytes: {:?})", answer.len(), shorten(&answer))),
        }
    };
    tokio::time::timeout(ANSWER_TIMEOUT, exchange).await.unwrap_or_else(|_| Err("no answer within 30 s".into()))
}

/// The first status of 200 or more among complete lines (a `100 Continue` may come first).
fn final_status(answer: &[u8]) -> Option<u16> {
    let complete = answer.windows(2).rposition(|pair| pair == b"\r\n")?;
    let text = String::from_utf8_lossy(&answer[..complete]);
    text.split("\r\n")
        .filter(|line| line.starts_with("HTTP/1."))
        .filter_map(|line| line.split(' ').nth(1)?.parse::<u16>().ok())
        .find(|status| *status >= 200)
}

fn shorten(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    if text.len() > 600 {
        format!("{}… ({} bytes)", &text[..text.floor_char_boundary(600)], bytes.len())
    } else {
        text.into_owned()
    }
}

// ---- the generator ----

/// A route: its usual method, a path template (`{}` is a path parameter), and what credential
/// and body it usually takes.
struct Route {
    method: &'static str,
    path: &'static str,
    auth: Auth,
    body: Body,
    params: &'static [&'static str],
}

#[derive(Clone, Copy, PartialEq)]
enum Auth {
    None,
    Admin,
    Client,
    Session,
    /// The console: the administrator's session.
    AdminSession,
}

#[derive(Clone, Copy, PartialEq)]
enum Body {
    None,
    Form,
    Json,
}

const OAUTH: &[&str] = &[
    "grant_type",
    "scope",
    "client_id",
    "client_secret",
    "code",
    "redirect_uri",
    "code_verifier",
    "refresh_token",
    "token",
    "token_type_hint",
    "response_type",
    "state",
    "code_challenge",
    "code_challenge_method",
    "prompt",
    "nonce",
    "request_uri",
];
const BROWSER: &[&str] =
    &["csrf_token", "username", "password", "next", "consent_token", "decision", "scope", "client_id", "app"];
const ADMIN: &[&str] = &[
    "name",
    "short_description",
    "alias",
    "parent",
    "position",
    "security_level",
    "visibility",
    "default_scope",
    "user_authorization_required",
    "access_duration_days",
    "allowed_accesses",
    "auth_types",
    "redirect_uris",
    "grant_types",
    "scopes",
    "username",
    "password",
    "admin",
    "display_name",
    "can_introspect",
    "public",
    "bank_id",
    "role_name",
    "q",
    "level",
    "auth_type",
    "client_id",
    "subject",
];

const EVENTS: &[&str] = &["type", "username", "client_id", "scope", "since", "limit", "cursor"];

const ROUTES: &[Route] = &[
    Route { method: "GET", path: "/healthz", auth: Auth::None, body: Body::None, params: &[] },
    Route { method: "GET", path: "/readyz", auth: Auth::None, body: Body::None, params: &[] },
    Route { method: "GET", path: "/jwks.json", auth: Auth::None, body: Body::None, params: &[] },
    Route {
        method: "GET",
        path: "/.well-known/oauth-authorization-server",
        auth: Auth::None,
        body: Body::None,
        params: &[],
    },
    Route { method: "POST", path: "/token", auth: Auth::Client, body: Body::Form, params: OAUTH },
    Route { method: "POST", path: "/introspect", auth: Auth::Client, body: Body::Form, params: OAUTH },
    Route { method: "POST", path: "/revoke", auth: Auth::Client, body: Body::Form, params: OAUTH },
    Route { method: "POST", path: "/par", auth: Auth::Client, body: Body::Form, params: OAUTH },
    Route { method: "GET", path: "/grants/{}", auth: Auth::Admin, body: Body::None, params: &[] },
    Route { method: "DELETE", path: "/grants/{}", auth: Auth::Admin, body: Body::None, params: &[] },
    Route { method: "GET", path: "/authorize", auth: Auth::Session, body: Body::None, params: OAUTH },
    Route { method: "POST", path: "/authorize/consent", auth: Auth::Session, body: Body::Form, params: BROWSER },
    Route { method: "GET", path: "/login", auth: Auth::None, body: Body::None, params: BROWSER },
    Route { method: "POST", path: "/login", auth: Auth::Session, body: Body::Form, params: BROWSER },
    Route { method: "POST", path: "/logout", auth: Auth::Session, body: Body::Form, params: BROWSER },
    Route { method: "GET", path: "/account", auth: Auth::Session, body: Body::None, params: BROWSER },
    Route { method: "POST", path: "/account/apps/{}/revoke", auth: Auth::Session, body: Body::Form, params: BROWSER },
    Route { method: "POST", path: "/account/grants/{}/revoke", auth: Auth::Session, body: Body::Form, params: BROWSER },
    Route { method: "GET", path: "/demo", auth: Auth::Session, body: Body::None, params: BROWSER },
    Route { method: "GET", path: "/demo/start", auth: Auth::Session, body: Body::None, params: BROWSER },
    Route { method: "GET", path: "/demo/callback", auth: Auth::Session, body: Body::None, params: OAUTH },
    Route { method: "GET", path: "/demo/bank/balance", auth: Auth::Session, body: Body::None, params: BROWSER },
    Route { method: "GET", path: "/static/scopegate.css", auth: Auth::None, body: Body::None, params: &[] },
    Route { method: "GET", path: "/static/consent.js", auth: Auth::None, body: Body::None, params: &[] },
    Route { method: "GET", path: "/static/console.js", auth: Auth::None, body: Body::None, params: &[] },
    Route { method: "GET", path: "/admin", auth: Auth::AdminSession, body: Body::None, params: CONSOLE },
    Route { method: "GET", path: "/admin/scopes", auth: Auth::AdminSession, body: Body::None, params: CONSOLE },
    Route { method: "POST", path: "/admin/scopes", auth: Auth::AdminSession, body: Body::Form, params: CONSOLE },
    Route { method: "GET", path: "/admin/scopes/{}", auth: Auth::AdminSession, body: Body::None, params: CONSOLE },
    Route {
        method: "POST",
        path: "/admin/scopes/{}/edit",
        auth: Auth::AdminSession,
        body: Body::Form,
        params: CONSOLE,
    },
    Route {
        method: "POST",
        path: "/admin/scopes/{}/move",
        auth: Auth::AdminSession,
        body: Body::Form,
        params: CONSOLE,
    },
    Route {
        method: "GET",
        path: "/admin/scopes/{}/delete",
        auth: Auth::AdminSession,
        body: Body::None,
        params: CONSOLE,
    },
    Route {
        method: "POST",
        path: "/admin/scopes/{}/delete",
        auth: Auth::AdminSession,
        body: Body::Form,
        params: CONSOLE,
    },
    Route { method: "GET", path: "/admin/clients", auth: Auth::AdminSession, body: Body::None, params: CONSOLE },
    Route { method: "POST", path: "/admin/clients", auth: Auth::AdminSession, body: Body::Form, params: CONSOLE },
    Route { method: "GET", path: "/admin/clients/{}", auth: Auth::AdminSession, body: Body::None, params: CONSOLE },
    Route {
        method: "POST",
        path: "/admin/clients/{}/edit",
        auth: Auth::AdminSession,
        body: Body::Form,
        params: CONSOLE,
    },
    Route {
        method: "POST",
        path: "/admin/clients/{}/scopes",
        auth: Auth::AdminSession,
        body: Body::Form,
        params: CONSOLE,
    },
    Route {
        method: "POST",
        path: "/admin/clients/{}/secret",
        auth: Auth::AdminSession,
        body: Body::Form,
        params: CONSOLE,
    },
    Route {
        method: "POST",
        path: "/admin/clients/{}/delete",
        auth: Auth::AdminSession,
        body: Body::Form,
        params: CONSOLE,
    },
    Route { method: "GET", path: "/admin/users", auth: Auth::AdminSession, body: Body::None, params: CONSOLE },
    Route { method: "POST", path: "/admin/users", auth: Auth::AdminSession, body: Body::Form, params: CONSOLE },
    Route {
        method: "POST",
        path: "/admin/users/{}/password",
        auth: Auth::AdminSession,
        body: Body::Form,
        params: CONSOLE,
    },
    Route {
        method: "POST",
        path: "/admin/users/{}/disable",
        auth: Auth::AdminSession,
        body: Body::Form,
        params: CONSOLE,
    },
    Route {
        method: "POST",
        path: "/admin/users/{}/delete",
        auth: Auth::AdminSession,
        body: Body::Form,
        params: CONSOLE,
    },
    Route { method: "GET", path: "/admin/grants", auth: Auth::AdminSession, body: Body::None, params: CONSOLE },
    Route { method: "POST", path: "/admin/grants/revoke", auth: Auth::AdminSession, body: Body::Form, params: CONSOLE },
    Route { method: "GET", path: "/admin/events", auth: Auth::AdminSession, body: Body::None, params: CONSOLE },
    Route { method: "POST", path: "/admin/v1/users/{}/disable", auth: Auth::Admin, body: Body::None, params: ADMIN },
    Route { method: "POST", path: "/admin/v1/clients/{}/secret", auth: Auth::Admin, body: Body::None, params: ADMIN },
    Route { method: "GET", path: "/admin/v1/openapi.json", auth: Auth::Admin, body: Body::None, params: &[] },
    Route { method: "GET", path: "/admin/v1/scopes", auth: Auth::Admin, body: Body::None, params: ADMIN },
    Route { method: "POST", path: "/admin/v1/scopes", auth: Auth::Admin, body: Body::Json, params: ADMIN },
    Route { method: "GET", path: "/admin/v1/scopes/{}", auth: Auth::Admin, body: Body::None, params: ADMIN },
    Route { method: "PATCH", path: "/admin/v1/scopes/{}", auth: Auth::Admin, body: Body::Json, params: ADMIN },
    Route { method: "DELETE", path: "/admin/v1/scopes/{}", auth: Auth::Admin, body: Body::None, params: ADMIN },
    Route { method: "POST", path: "/admin/v1/scopes/{}/move", auth: Auth::Admin, body: Body::Json, params: ADMIN },
    Route { method: "POST", path: "/admin/v1/clients", auth: Auth::Admin, body: Body::Json, params: ADMIN },
    Route { method: "GET", path: "/admin/v1/clients", auth: Auth::Admin, body: Body::None, params: ADMIN },
    Route { method: "GET", path: "/admin/v1/clients/{}", auth: Auth::Admin, body: Body::None, params: ADMIN },
    Route { method: "PATCH", path: "/admin/v1/clients/{}", auth: Auth::Admin, body: Body::Json, params: ADMIN },
    Route { method: "DELETE", path: "/admin/v1/clients/{}", auth: Auth::Admin, body: Body::None, params: ADMIN },
    Route { method: "PUT", path: "/admin/v1/clients/{}/scopes", auth: Auth::Admin, body: Body::Json, params: ADMIN },
    Route { method: "POST", path: "/admin/v1/users", auth: Auth::Admin, body: Body::Json, params: ADMIN },
    Route { method: "GET", path: "/admin/v1/users", auth: Auth::Admin, body: Body::None, params: ADMIN },
    Route { method: "DELETE", path: "/admin/v1/users/{}", auth: Auth::Admin, body: Body::None, params: ADMIN },
    Route { method: "GET", path: "/admin/v1/grants", auth: Auth::Admin, body: Body::None, params: ADMIN },
    Route { method: "GET", path: "/admin/v1/events", auth: Auth::Admin, body: Body::None, params: EVENTS },
    Route {
        method: "GET",
        path: "/obp/v3.0.0/consumers/{}/scopes",
        auth: Auth::Admin,
        body: Body::None,
        params: ADMIN,
    },
    Route {
        method: "POST",
        path: "/obp/v3.0.0/consumers/{}/scopes",
        auth: Auth::Admin,
        body: Body::Json,
        params: ADMIN,
    },
    Route {
        method: "DELETE",
        path: "/obp/v3.0.0/consumers/{}/scope/{}",
        auth: Auth::Admin,
        body: Body::None,
        params: ADMIN,
    },
];

const METHODS: &[&str] = &["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS", "TRACE", "FUZZ", "CONNECT"];

/// Path parameters: real names and tricks. Never the principals whose credentials the run
/// uses (the admin client, alice, the code-flow client) so that "about half with valid
/// credentials" stays true to the end, nor the demo's resource server: without it
/// `/demo/bank/balance` honestly answers 503.
const PATH_VALUES: &[&str] = &[
    "profile",
    "accounts",
    "accounts.balance",
    "payments.transfer",
    "bob",
    "c_missing",
    "1",
    "",
    "%00",
    "a%00b",
    "%FF",
    "%C3%28",
    "%C0%AF",
    "%2e%2e",
    "..%2F..%2Fetc%2Fpasswd",
    "%252e%252e%252f",
    "%2F%2Fevil.example",
    "%E2%80%AE",
    "Z%C3%BCrich",
    "%F0%9F%98%80",
    "scopegate%3Aadmin",
    "a;b=c",
    "%20",
    "+",
    "%",
    "%G1",
    "%%30%30",
];

/// The console's form and query fields.
const CONSOLE: &[&str] = &[
    "csrf_token",
    "name",
    "parent",
    "position",
    "short_description",
    "security_level",
    "visibility",
    "access_duration_days",
    "max_access_count",
    "user_authorization_required",
    "auth_types",
    "operations",
    "client_type",
    "redirect_uris",
    "grant_types",
    "token_format",
    "scope",
    "username",
    "password",
    "admin",
    "user",
    "client",
    "state",
    "type",
    "cursor",
    "limit",
    "q",
    "notice",
];

/// Parameter values, already percent-encoded as they go on the wire.
const VALUES: &[&str] = &[
    "",
    "a",
    "%00",
    "x%00y",
    "%FF",
    "%C3%28",
    "%C0%AF",
    "%ED%A0%80",
    "%F4%90%80%80",
    "%E2%80%AE",
    "%0D%0ASet-Cookie%3A+x%3Dy",
    "%3Cscript%3Ealert(1)%3C%2Fscript%3E",
    "%27+OR+1%3D1+--",
    "null",
    "-1",
    "0",
    "99999999999999999999",
    "1e309",
    "NaN",
    "profile",
    "profile+accounts",
    "accounts.balance+payments.transfer",
    "scopegate%3Aadmin",
    "client_credentials",
    "authorization_code",
    "refresh_token",
    "password",
    "code",
    "token",
    "S256",
    "plain",
    "none",
    "consent",
    "login",
    "online-bank",
    "bank-api",
    "demo-admin",
    "alice",
    "alice-password",
    "http%3A%2F%2Fevil.example%2Fcb",
    "javascript%3Aalert(1)",
    "%2F%2Fevil.example",
    "%2F%09%2Fevil.example",
    "%2Faccount",
    "%5C%5Cevil.example",
    "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
    "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk",
    "%25%32%65",
    "%",
    "%%",
    "%zz",
    "Z%C3%BCrich",
    "%F0%9F%98%80",
];

fn pick<'a, T: ?Sized>(rng: &mut StdRng, items: &'a [&'a T]) -> &'a T {
    items[rng.random_range(0..items.len())]
}

fn random_value(rng: &mut StdRng, credentials: &Credentials) -> String {
    match rng.random_range(0..20) {
        0 => "A".repeat(rng.random_range(100..6000)),
        1 => credentials.admin_bearer.trim_start_matches("Bearer ").to_string(),
        2 => credentials.machine_bearer.trim_start_matches("Bearer ").to_string(),
        3 => credentials.csrf_token.clone(),
        4 => (0..rng.random_range(1..40)).map(|_| format!("%{:02X}", rng.random::<u8>())).collect(),
        _ => pick(rng, VALUES).to_string(),
    }
}

fn random_query(rng: &mut StdRng, route: &Route, credentials: &Credentials) -> String {
    let count = rng.random_range(0..8);
    let mut pairs = Vec::new();
    for _ in 0..count {
        let key = if route.params.is_empty() || rng.random_range(0..6) == 0 {
            pick(rng, &["x", "%00", "a[]", "a%5B0%5D", "", "=", "&", "client_id"]).to_string()
        } else {
            pick(rng, route.params).to_string()
        };
        pairs.push(match rng.random_range(0..10) {
            0 => key,
            _ => format!("{key}={}", random_value(rng, credentials)),
        });
    }
    pairs.join("&")
}

fn random_json_value(rng: &mut StdRng, credentials: &Credentials, depth: u32) -> serde_json::Value {
    use serde_json::Value;
    match rng.random_range(0..if depth > 2 { 6 } else { 9 }) {
        0 => Value::Null,
        1 => Value::Bool(rng.random()),
        2 => serde_json::json!(rng.random_range(-5i64..100)),
        3 => serde_json::json!([i64::MAX, i64::MIN, 0, -1, 4_294_967_296][rng.random_range(0..5)]),
        4 => serde_json::json!(rng.random::<f64>() * 1e10),
        5 => {
            let raw = random_value(rng, credentials);
            let decoded: Vec<u8> = percent_encoding::percent_decode_str(&raw).collect();
            Value::String(String::from_utf8_lossy(&decoded).into_owned())
        }
        6 => {
            Value::Array((0..rng.random_range(0..4)).map(|_| random_json_value(rng, credentials, depth + 1)).collect())
        }
        _ => random_json_object(rng, credentials, depth + 1),
    }
}

fn random_json_object(rng: &mut StdRng, credentials: &Credentials, depth: u32) -> serde_json::Value {
    let mut object = serde_json::Map::new();
    for _ in 0..rng.random_range(0..6) {
        object.insert(pick(rng, ADMIN).to_string(), random_json_value(rng, credentials, depth));
    }
    serde_json::Value::Object(object)
}

fn random_body(rng: &mut StdRng, route: &Route, credentials: &Credentials) -> (Option<&'static str>, Vec<u8>) {
    const FORM: &str = "application/x-www-form-urlencoded";
    const JSON: &str = "application/json";
    let kind = match rng.random_range(0..10) {
        0..=5 => route.body,
        6 => Body::Form,
        7 => Body::Json,
        _ => Body::None,
    };
    let content_type = match rng.random_range(0..12) {
        0 => Some("text/plain"),
        1 => Some("multipart/form-data; boundary=x"),
        2 => Some("application/json; charset=latin1"),
        3 => Some("application/x-www-form-urlencoded; charset=UTF-8"),
        4 => None,
        5 => Some(";;;"),
        _ => match kind {
            Body::Form => Some(FORM),
            Body::Json => Some(JSON),
            Body::None => None,
        },
    };
    let body = match rng.random_range(0..40) {
        0 => vec![b'a'; rng.random_range(60_000..1_200_000)],
        1 => format!("{}1{}", "[".repeat(100_000), "]".repeat(100_000)).into_bytes(),
        2 => format!("{}{}", "{\"a\":".repeat(5_000), "}".repeat(4_999)).into_bytes(),
        3 => (0..rng.random_range(1..3000)).map(|_| rng.random::<u8>()).collect(),
        4 => br#"{"name": "a\u0000b", "short_description": "\ud800"}"#.to_vec(),
        5 => b"{\"name\": \"\xff\xfe\"}".to_vec(),
        _ => match kind {
            Body::None => Vec::new(),
            Body::Form => {
                let mut form = random_query(rng, route, credentials);
                if rng.random_range(0..2) == 0 {
                    match route.auth {
                        Auth::Session => form.push_str(&format!("&csrf_token={}", credentials.csrf_token)),
                        Auth::AdminSession => form.push_str(&format!("&csrf_token={}", credentials.admin_csrf_token)),
                        _ => {}
                    }
                }
                form.into_bytes()
            }
            Body::Json => {
                let mut text = random_json_object(rng, credentials, 0).to_string();
                if rng.random_range(0..8) == 0 {
                    let cut = text.floor_char_boundary(rng.random_range(0..text.len().max(1)));
                    text.truncate(cut);
                }
                text.into_bytes()
            }
        },
    };
    (content_type, body)
}

fn random_authorization(rng: &mut StdRng, route: &Route, credentials: &Credentials) -> Option<String> {
    // About half the requests carry the credential their route expects.
    if rng.random_range(0..2) == 0 {
        return match route.auth {
            Auth::Admin => Some(credentials.admin_bearer.clone()),
            Auth::Client => Some(credentials.basics[rng.random_range(0..credentials.basics.len())].clone()),
            Auth::Session | Auth::AdminSession | Auth::None => None,
        };
    }
    Some(match rng.random_range(0..10) {
        0 => return None,
        1 => credentials.machine_bearer.clone(),
        2 => "Bearer garbage".into(),
        3 => "Basic !!!".into(),
        4 => "Basic YQBiOmM=".into(), // "a\0b:c"
        5 => "Basic JTAwOnM=".into(), // "%00:s"
        6 => "Digest username=x".into(),
        7 => "Bearer ".into(),
        8 => format!("Bearer {}", "A".repeat(5000)),
        _ => credentials.admin_bearer.replace('.', "x"),
    })
}

fn random_path(rng: &mut StdRng, route: &Route) -> String {
    let mut path = route.path.to_string();
    while path.contains("{}") {
        path = path.replacen("{}", pick(rng, PATH_VALUES), 1);
    }
    match rng.random_range(0..16) {
        0 => format!("{path}/"),
        1 => path.replacen('/', "//", 1),
        2 => path.to_uppercase(),
        3 => format!("{path}%00"),
        4 => format!("{path}/%2e%2e/%2e%2e/"),
        5 => format!("/{}", "a/".repeat(rng.random_range(1..2000))),
        6 => format!("/{}", pick(rng, PATH_VALUES)),
        7 => path.replace('/', "%2F"),
        _ => path,
    }
}

fn random_request(rng: &mut StdRng, credentials: &Credentials) -> Vec<u8> {
    let route = &ROUTES[rng.random_range(0..ROUTES.len())];
    let method = if rng.random_range(0..5) == 0 { pick(rng, METHODS) } else { route.method };
    let mut target = random_path(rng, route);
    let query = random_query(rng, route, credentials);
    if !query.is_empty() && (route.body == Body::None || rng.random_range(0..4) == 0) {
        target = format!("{target}?{query}");
    }
    let (content_type, body) = random_body(rng, route, credentials);
    let mut head = format!("{method} {target} HTTP/1.1\r\nHost: fuzz.example\r\nConnection: close\r\n");
    if let Some(authorization) = random_authorization(rng, route, credentials) {
        head.push_str(&format!("Authorization: {authorization}\r\n"));
    }
    // Never the real session on /logout, which would end it for the rest of the run.
    if route.auth == Auth::Session && route.path != "/logout" && rng.random_range(0..3) != 0 {
        head.push_str(&format!("Cookie: {}\r\n", credentials.session_cookie));
    } else if route.auth == Auth::AdminSession && rng.random_range(0..3) != 0 {
        head.push_str(&format!("Cookie: {}\r\n", credentials.admin_session_cookie));
    } else if rng.random_range(0..10) == 0 {
        head.push_str("Cookie: scopegate_session=forged%00value; other=1\r\n");
    }
    if let Some(content_type) = content_type {
        head.push_str(&format!("Content-Type: {content_type}\r\n"));
    }
    match rng.random_range(0..12) {
        0 => head.push_str("Accept: */*\r\nAccept-Encoding: gzip, br\r\n"),
        1 => head.push_str("X-Forwarded-For: 203.0.113.7, 10.0.0.1\r\n"),
        2 => head.push_str("Origin: https://evil.example\r\nReferer: https://evil.example/\r\n"),
        3 => head.push_str("Expect: 100-continue\r\n"),
        4 => head.push_str(&format!("X-Large: {}\r\n", "x".repeat(8000))),
        _ => {}
    }
    let mut request = if rng.random_range(0..10) == 0 && !body.is_empty() {
        // The same body, chunked.
        head.push_str("Transfer-Encoding: chunked\r\n\r\n");
        let mut request = head.into_bytes();
        for chunk in body.chunks(rng.random_range(1..4096)) {
            request.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
            request.extend_from_slice(chunk);
            request.extend_from_slice(b"\r\n");
        }
        request.extend_from_slice(b"0\r\n\r\n");
        return request;
    } else {
        head.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
        head.into_bytes()
    };
    request.extend_from_slice(&body);
    request
}
