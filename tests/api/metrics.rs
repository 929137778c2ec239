//! Prometheus metrics (SPEC "Administration": Metrics), through the real `scopegate serve`
//! binary: with `metrics_bind` set, `/metrics` on that address alone shows what the server did;
//! without it nothing more listens.

use crate::browser_flow::{self, consent_and_get_code, exchange, hidden, location, query_of, Browser, REDIRECT};
use crate::helpers::{fresh_settings, spawn_app_with, ServerProcess, TestApp};
use std::collections::{BTreeMap, BTreeSet};

/// One sample of Prometheus text: its name, labels and value.
#[derive(Debug)]
struct Sample {
    name: String,
    labels: BTreeMap<String, String>,
    value: f64,
}

/// Parses Prometheus text (format 0.0.4): `name{label="value",…} number` lines, comments skipped.
fn parse(text: &str) -> Vec<Sample> {
    text.lines()
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .map(|line| {
            let (series, value) = line.rsplit_once(' ').unwrap_or_else(|| panic!("no value in {line:?}"));
            let value: f64 = value.parse().unwrap_or_else(|_| panic!("bad value in {line:?}"));
            let Some((name, labels)) = series.split_once('{') else {
                return Sample { name: series.to_string(), labels: BTreeMap::new(), value };
            };
            let labels = labels.strip_suffix('}').unwrap_or_else(|| panic!("unclosed labels in {line:?}"));
            Sample { name: name.to_string(), labels: parse_labels(labels), value }
        })
        .collect()
}

/// `a="x",b="y\"z"` → {a: x, b: y"z}.
fn parse_labels(text: &str) -> BTreeMap<String, String> {
    let mut labels = BTreeMap::new();
    let mut rest = text;
    while !rest.is_empty() {
        let (key, after) = rest.split_once("=\"").unwrap_or_else(|| panic!("bad labels {text:?}"));
        let mut value = String::new();
        let mut chars = after.char_indices();
        let end = loop {
            match chars.next() {
                Some((_, '\\')) => match chars.next() {
                    Some((_, 'n')) => value.push('\n'),
                    Some((_, other)) => value.push(other),
                    None => panic!("bad escape in {text:?}"),
                },
                Some((at, '"')) => break at,
                Some((_, other)) => value.push(other),
                None => panic!("unclosed value in {text:?}"),
            }
        };
        labels.insert(key.to_string(), value);
        rest = after[end + 1..].strip_prefix(',').unwrap_or(&after[end + 1..]);
    }
    labels
}

struct Scrape(Vec<Sample>);

impl Scrape {
    /// The value of the one sample with exactly these labels.
    fn value(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        let wanted: BTreeMap<String, String> = labels.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        let found: Vec<&Sample> = self.0.iter().filter(|s| s.name == name && s.labels == wanted).collect();
        assert_eq!(found.len(), 1, "one {name}{wanted:?} expected, found {found:?} in\n{:#?}", self.names());
        found[0].value
    }

    fn names(&self) -> BTreeSet<String> {
        self.0.iter().map(|sample| format!("{}{:?}", sample.name, sample.labels)).collect()
    }

    fn label_values(&self, name: &str, label: &str) -> BTreeSet<String> {
        self.0.iter().filter(|s| s.name == name).filter_map(|s| s.labels.get(label).cloned()).collect()
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn port_of(url: &str) -> u16 {
    url.rsplit(':').next().unwrap().parse().unwrap()
}

async fn scrape(metrics_port: u16) -> Scrape {
    let response = reqwest::get(format!("http://127.0.0.1:{metrics_port}/metrics")).await.unwrap();
    assert_eq!(response.status(), 200);
    let content_type = response.headers().get("content-type").unwrap().to_str().unwrap().to_string();
    assert_eq!(content_type, "text/plain; version=0.0.4");
    Scrape(parse(&response.text().await.unwrap()))
}

/// The main listener has no `/metrics`: it is the JSON 404 of any unknown path.
async fn assert_no_metrics_on(url: &str) {
    let response = reqwest::get(format!("{url}/metrics")).await.unwrap();
    assert_eq!(response.status(), 404);
    assert_eq!(response.json::<serde_json::Value>().await.unwrap()["error"], "not_found");
}

/// The TCP ports a process listens on (Linux: its socket descriptors, found in /proc/net).
fn listening_ports(pid: u32) -> BTreeSet<u16> {
    let sockets: BTreeSet<String> = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .filter_map(|entry| std::fs::read_link(entry.ok()?.path()).ok())
        .filter_map(|target| {
            let target = target.to_string_lossy().into_owned();
            Some(target.strip_prefix("socket:[")?.strip_suffix(']')?.to_string())
        })
        .collect();
    let mut ports = BTreeSet::new();
    for table in ["tcp", "tcp6"] {
        let Ok(text) = std::fs::read_to_string(format!("/proc/{pid}/net/{table}")) else { continue };
        for line in text.lines().skip(1) {
            let fields: Vec<&str> = line.split_whitespace().collect();
            // sl, local_address, rem_address, st (0A: LISTEN), …, inode (the tenth field).
            if fields.len() > 9 && fields[3] == "0A" && sockets.contains(fields[9]) {
                let port = fields[1].rsplit(':').next().unwrap();
                ports.insert(u16::from_str_radix(port, 16).unwrap());
            }
        }
    }
    ports
}

/// Two tokens by client credentials, an introspection that counts an access and one that finds
/// it used up, an uncounted one and one of an unknown token, a consent granted (its code
/// exchanged, the refresh token used) and one denied, a refused token request and two 404s:
/// the scrape shows each with its labels and count.
#[tokio::test]
async fn metrics_count_requests_tokens_introspections_consents_and_exhaustions() {
    let (settings, dir) = fresh_settings();
    let (app, client) = browser_flow::setup_on(spawn_app_with(settings, dir).await);
    app.import_scopes(r#"{"scopes": [{"name": "metered", "short_description": "Counted", "max_access_count": 1}]}"#);
    let machine = app.machine_client("F", &[]);
    let bank_api = app.resource_server();
    let metrics_port = free_port();
    let metrics_bind = format!("127.0.0.1:{metrics_port}");
    let server = ServerProcess::start_with_env(&app.settings, &[("SCOPEGATE_METRICS_BIND", &metrics_bind)]).await;
    // From here on every request goes to the server process.
    let app = TestApp { address: server.url.clone(), ..app };

    let metered = app.access_token(&machine, Some("metered")).await["access_token"].as_str().unwrap().to_string();
    let unlimited = app.access_token(&machine, Some("profile")).await["access_token"].as_str().unwrap().to_string();
    let first = app.introspect(&bank_api, &metered).await;
    assert_eq!(first["active"], true, "{first}");
    assert_eq!(first["scope_limits"]["metered"]["remaining_accesses"], 0, "{first}");
    let spent = app.introspect(&bank_api, &metered).await;
    assert_eq!(spent["active"], false, "the only scope ran out: {spent}");
    // Seen spent again: the grant ran out once, on the first introspection, and counts once.
    assert_eq!(app.introspect(&bank_api, &metered).await["active"], false);
    assert_eq!(app.introspect(&bank_api, &unlimited).await["active"], true);
    assert_eq!(app.introspect(&bank_api, "no-such-token").await["active"], false);

    let browser = Browser::new(&app);
    let granted = consent_and_get_code(&browser, &client, "profile accounts", None).await;
    let exchanged = exchange(&app, &client, &granted["code"]).await;
    assert_eq!(exchanged.status(), 200);
    let refresh_token =
        exchanged.json::<serde_json::Value>().await.unwrap()["refresh_token"].as_str().unwrap().to_string();
    let refreshed = app
        .post_form("/token", Some(&client), &[("grant_type", "refresh_token"), ("refresh_token", &refresh_token)])
        .await;
    assert_eq!(refreshed.status(), 200);
    let unauthenticated = app.post_form("/token", None, &[("grant_type", "client_credentials")]).await;
    assert_eq!(unauthenticated.status(), 401, "no token for a request that fails");
    let page = browser.authorize(&client, Some("profile accounts"), &[("prompt", "consent")]).await;
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    let (csrf, consent_token) = (hidden(&html, "csrf_token"), hidden(&html, "consent_token"));
    let denied = browser
        .post("/authorize/consent", &[("csrf_token", &csrf), ("consent_token", &consent_token), ("decision", "deny")])
        .await;
    let target = location(&denied);
    assert!(target.starts_with(REDIRECT), "{target}");
    assert_eq!(query_of(&target)["error"], "access_denied");

    assert_eq!(app.get("/no/such/thing").await.status(), 404);
    assert_no_metrics_on(&server.url).await;

    let scrape = scrape(metrics_port).await;
    let tokens = |grant_type| scrape.value("scopegate_tokens_issued_total", &[("grant_type", grant_type)]);
    assert_eq!(tokens("client_credentials"), 2.0);
    assert_eq!(tokens("authorization_code"), 1.0);
    assert_eq!(tokens("refresh_token"), 1.0);
    let introspections =
        |counted, active| scrape.value("scopegate_introspections_total", &[("counted", counted), ("active", active)]);
    assert_eq!(introspections("true", "true"), 1.0, "the first look at the metered token counted an access");
    assert_eq!(introspections("false", "false"), 3.0, "the used-up token twice and the unknown one");
    assert_eq!(introspections("false", "true"), 1.0, "the unlimited token");
    assert_eq!(introspections("true", "false"), 0.0);
    assert_eq!(
        scrape.value("scopegate_limit_exhaustions_total", &[("limit", "accesses")]),
        1.0,
        "once, when the last access was taken, not at each sighting"
    );
    assert_eq!(scrape.value("scopegate_consents_total", &[("decision", "granted")]), 1.0);
    assert_eq!(scrape.value("scopegate_consents_total", &[("decision", "denied")]), 1.0);

    let requests = |route, method, status| {
        scrape.value("scopegate_http_requests_total", &[("route", route), ("method", method), ("status", status)])
    };
    assert_eq!(requests("/token", "POST", "200"), 4.0, "two client-credentials tokens, a code exchange, a refresh");
    assert_eq!(requests("/token", "POST", "401"), 1.0);
    assert_eq!(requests("/introspect", "POST", "200"), 5.0);
    assert_eq!(requests("/authorize/consent", "POST", "303"), 2.0);
    assert_eq!(requests("unmatched", "GET", "404"), 2.0, "/no/such/thing and the main listener's /metrics");
    let routes = scrape.label_values("scopegate_http_requests_total", "route");
    assert!(routes.iter().all(|route| route == "unmatched" || route.starts_with('/')), "{routes:?}");
    assert!(!routes.iter().any(|route| route.contains("such") || route.contains("metrics")), "raw paths: {routes:?}");

    let duration = |suffix: &str, extra: &[(&str, &str)]| {
        let mut labels = vec![("route", "/token"), ("method", "POST")];
        labels.extend_from_slice(extra);
        scrape.value(&format!("scopegate_http_request_duration_seconds{suffix}"), &labels)
    };
    assert_eq!(duration("_count", &[]), 5.0, "every /token request, whatever its status");
    assert_eq!(duration("_bucket", &[("le", "+Inf")]), 5.0);
    assert!(duration("_bucket", &[("le", "0.0005")]) <= duration("_bucket", &[("le", "10")]));
    assert!(duration("_sum", &[]) > 0.0);

    assert_eq!(scrape.value("scopegate_db_pool_max_connections", &[]), 8.0, "SCOPEGATE_POOL_SIZE of the process");
    let idle = scrape.value("scopegate_db_pool_connections", &[("state", "idle")]);
    let in_use = scrape.value("scopegate_db_pool_connections", &[("state", "in_use")]);
    assert!((1.0..=8.0).contains(&(idle + in_use)), "idle {idle}, in use {in_use}");
}

/// `serve --metrics-bind` opens exactly one more listener, which serves `/metrics` and nothing
/// else; without the setting the process listens on its main address alone, and neither
/// listener's `/metrics` exists there.
#[tokio::test]
async fn metrics_listen_only_on_metrics_bind_and_nothing_listens_without_it() {
    let (settings, _dir) = fresh_settings();
    let metrics_port = free_port();
    let metrics_bind = format!("127.0.0.1:{metrics_port}");
    let with = ServerProcess::start_serving(&settings, &["--metrics-bind", &metrics_bind], &[]).await;
    assert_eq!(listening_ports(with.child.id()), BTreeSet::from([port_of(&with.url), metrics_port]));
    let scrape = scrape(metrics_port).await;
    assert_eq!(scrape.value("scopegate_tokens_issued_total", &[("grant_type", "client_credentials")]), 0.0);
    assert!(
        scrape.value("scopegate_http_requests_total", &[("route", "/readyz"), ("method", "GET"), ("status", "200")])
            >= 1.0
    );
    let other = reqwest::get(format!("http://127.0.0.1:{metrics_port}/healthz")).await.unwrap();
    assert_eq!(other.status(), 404, "the metrics listener serves /metrics only");
    assert_no_metrics_on(&with.url).await;
    drop(with);

    let without = ServerProcess::start_serving(&settings, &[], &[]).await;
    assert_eq!(listening_ports(without.child.id()), BTreeSet::from([port_of(&without.url)]));
    assert_no_metrics_on(&without.url).await;
}
