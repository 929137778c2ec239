//! Webhooks (issue 13): each subscribed event is POSTed to a real local HTTP receiver with a
//! `Scopegate-Signature` the receiver checks; deliveries wait in a durable outbox while the
//! receiver is down (refusing connections, then answering 500) and arrive when it is back, even
//! across a hard kill of the server; the admin routes keep the secret to themselves.

use crate::admin::{setup, setup_with, Admin};
use crate::helpers::{cli_json, fresh_settings, run_cli, ServerProcess};
use hmac::{Hmac, Mac};
use reqwest::Method;
use serde_json::{json, Value};
use sha2::Sha256;
use std::sync::atomic::{AtomicU16, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const SECRET: &str = "whsec-0123456789abcdef";

/// One request the receiver got.
#[derive(Clone, Debug)]
struct Received {
    signature: String,
    content_type: String,
    body: Vec<u8>,
}

impl Received {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap()
    }
}

/// A real HTTP server on a loopback port that records every request and answers `status`.
struct Receiver {
    url: String,
    received: Arc<Mutex<Vec<Received>>>,
    status: Arc<AtomicU16>,
    /// How long it holds each request before answering, in milliseconds.
    delay_ms: Arc<AtomicU64>,
    server: actix_web::dev::ServerHandle,
}

/// A loopback port nothing listens on (yet): connections to it are refused.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

impl Receiver {
    async fn start(port: u16, status: u16) -> Self {
        let received: Arc<Mutex<Vec<Received>>> = Arc::default();
        let answer = Arc::new(AtomicU16::new(status));
        let delay_ms = Arc::new(AtomicU64::new(0));
        let (log, reply, hold) = (received.clone(), answer.clone(), delay_ms.clone());
        let listener = std::net::TcpListener::bind(("127.0.0.1", port)).unwrap();
        let server = actix_web::HttpServer::new(move || {
            let (log, reply, hold) = (log.clone(), reply.clone(), hold.clone());
            actix_web::App::new().default_service(actix_web::web::to(
                move |request: actix_web::HttpRequest, body: actix_web::web::Bytes| {
                    let (log, reply, hold) = (log.clone(), reply.clone(), hold.clone());
                    async move {
                        let header = |name: &str| {
                            request.headers().get(name).and_then(|v| v.to_str().ok()).unwrap_or("").to_string()
                        };
                        log.lock().unwrap().push(Received {
                            signature: header("scopegate-signature"),
                            content_type: header("content-type"),
                            body: body.to_vec(),
                        });
                        tokio::time::sleep(Duration::from_millis(hold.load(Ordering::SeqCst))).await;
                        let status = actix_web::http::StatusCode::from_u16(reply.load(Ordering::SeqCst)).unwrap();
                        actix_web::HttpResponse::build(status).finish()
                    }
                },
            ))
        })
        .workers(1)
        .disable_signals()
        .listen(listener)
        .unwrap()
        .run();
        let handle = server.handle();
        tokio::spawn(server);
        let url = format!("http://127.0.0.1:{port}/hooks/scopegate");
        Self { url, received, status: answer, delay_ms, server: handle }
    }

    fn received(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }

    /// Waits until `count` requests arrived, for at most `limit`.
    async fn wait_for(&self, count: usize, limit: Duration) -> Vec<Received> {
        let started = Instant::now();
        loop {
            let received = self.received();
            if received.len() >= count {
                return received;
            }
            assert!(started.elapsed() < limit, "{} of {count} requests after {limit:?}", received.len());
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// Checks a `Scopegate-Signature: t=…,v1=…` as a receiver would: recomputes
/// HMAC-SHA-256(secret, "<t>.<body>") and compares. Returns `t`.
fn verify(signature: &str, body: &[u8], secret: &str) -> Result<i64, String> {
    let (t, v1) = match signature.split(',').collect::<Vec<_>>().as_slice() {
        [t, v1] => (t.strip_prefix("t=").ok_or("no t=")?, v1.strip_prefix("v1=").ok_or("no v1=")?),
        _ => return Err(format!("malformed signature {signature:?}")),
    };
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(format!("{t}.").as_bytes());
    mac.update(body);
    mac.verify_slice(&hex::decode(v1).map_err(|e| e.to_string())?).map_err(|_| "signature mismatch".to_string())?;
    t.parse().map_err(|_| format!("t={t} is not a number"))
}

async fn create_webhook(admin: &Admin, url: &str, events: &[&str]) -> i64 {
    let (status, body) = admin
        .call(Method::POST, "/admin/v1/webhooks", Some(json!({"url": url, "events": events, "secret": SECRET})))
        .await;
    assert_eq!(status, 201, "{body}");
    body["id"].as_i64().unwrap()
}

async fn deliveries(admin: &Admin, webhook: i64) -> Vec<Value> {
    let (status, body) = admin.call(Method::GET, &format!("/admin/v1/webhooks/{webhook}/deliveries"), None).await;
    assert_eq!(status, 200, "{body}");
    body["deliveries"].as_array().unwrap().clone()
}

async fn create_scope(admin: &Admin, name: &str) {
    let (status, body) =
        admin.call(Method::POST, "/admin/v1/scopes", Some(json!({"name": name, "short_description": name}))).await;
    assert_eq!(status, 201, "{body}");
}

#[tokio::test]
async fn subscribed_events_are_delivered_once_with_a_signature_the_receiver_verifies() {
    let admin = setup().await;
    let receiver = Receiver::start(free_port(), 200).await;
    let webhook = create_webhook(&admin, &receiver.url, &["scope.created", "scope.deleted"]).await;

    create_scope(&admin, "cards").await; // scope.created: subscribed
    let (status, _) = admin.call(Method::PATCH, "/admin/v1/scopes/cards", Some(json!({"alias": "Cards"}))).await;
    assert_eq!(status, 200); // scope.updated: not subscribed
    let (status, _) = admin.call(Method::DELETE, "/admin/v1/scopes/cards", None).await;
    assert_eq!(status, 204); // scope.deleted: subscribed

    let started = Instant::now();
    let received = receiver.wait_for(2, Duration::from_secs(15)).await;
    println!("both deliveries arrived within {:?} of the last change", started.elapsed());
    // Give a duplicate or an unsubscribed event time to show up: there must be none.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(receiver.received().len(), 2, "each subscribed event once, nothing else");

    let (_, page) = admin.call(Method::GET, "/admin/v1/events?limit=50", None).await;
    let events = page["events"].as_array().unwrap();
    let mut types = Vec::new();
    for request in &received {
        assert_eq!(request.content_type, "application/json");
        let t = verify(&request.signature, &request.body, SECRET).unwrap();
        assert!((chrono::Utc::now().timestamp() - t).abs() < 60, "t={t} is now");
        assert_eq!(
            verify(&request.signature, &request.body, "whsec-a-different-secret"),
            Err("signature mismatch".into()),
            "a wrong secret does not verify"
        );
        let mut tampered = request.body.clone();
        tampered.extend_from_slice(b" ");
        assert!(verify(&request.signature, &tampered, SECRET).is_err(), "a changed body does not verify");
        // The body is the event exactly as GET /admin/v1/events shows it.
        let body = request.json();
        let listed = events.iter().find(|event| event["id"] == body["id"]).expect("a listed event");
        assert_eq!(&body, listed);
        assert_eq!(body["scope"], "cards");
        types.push(body["type"].as_str().unwrap().to_string());
    }
    types.sort();
    assert_eq!(types, ["scope.created", "scope.deleted"]);

    let log = deliveries(&admin, webhook).await;
    assert_eq!(log.len(), 2, "{log:?}");
    for delivery in &log {
        assert_eq!(delivery["state"], "delivered", "{delivery}");
        assert_eq!((delivery["attempts"].as_i64(), delivery["last_status"].as_i64()), (Some(1), Some(200)));
        assert!(delivery["delivered_at"].is_string());
        assert_eq!(delivery["attempt_log"].as_array().unwrap().len(), 1);
    }
    receiver.server.stop(false).await;
}

#[tokio::test]
async fn deliveries_queued_while_the_receiver_is_down_arrive_with_backoff_once_it_is_back() {
    let (mut settings, dir) = fresh_settings();
    settings.webhook_retry_base_seconds = 1;
    let admin = setup_with(settings, dir).await;
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}/hooks/scopegate");
    let webhook = create_webhook(&admin, &url, &["scope.created"]).await;
    let enqueued = Instant::now();
    create_scope(&admin, "loans").await;

    // Nothing listens: connections are refused, and each attempt is logged.
    let attempts_at_least = |n: i64| {
        let admin = &admin;
        async move {
            let started = Instant::now();
            loop {
                let log = deliveries(admin, webhook).await;
                if log.len() == 1 && log[0]["attempts"].as_i64().unwrap() >= n {
                    return log[0].clone();
                }
                assert!(started.elapsed() < Duration::from_secs(30), "fewer than {n} attempts: {log:?}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    };
    let refused = attempts_at_least(2).await;
    assert_eq!(refused["state"], "pending");
    assert_eq!(refused["last_status"], Value::Null);
    let error = refused["last_error"].as_str().unwrap();
    assert!(error.contains("refused") || error.contains("connect"), "{error}");
    assert!(!error.contains(&port.to_string()), "the error names no URL: {error}");

    // Up, but failing: 500 is not a delivery either.
    let receiver = Receiver::start(port, 500).await;
    let failing = attempts_at_least(3).await;
    assert_eq!((failing["state"].as_str(), failing["last_status"].as_i64()), (Some("pending"), Some(500)));
    assert_eq!(receiver.received().len(), 1, "the 500 was answered to one attempt");

    // Healthy again: the next attempt delivers.
    receiver.status.store(200, Ordering::SeqCst);
    let received = receiver.wait_for(2, Duration::from_secs(30)).await;
    let delivered_after = enqueued.elapsed();
    let event = received[1].json();
    assert_eq!((event["type"].as_str(), event["scope"].as_str()), (Some("scope.created"), Some("loans")));
    verify(&received[1].signature, &received[1].body, SECRET).unwrap();
    assert_eq!(received[0].body, received[1].body, "the same event each time");

    let mut log = deliveries(&admin, webhook).await;
    let started = Instant::now();
    while log[0]["state"] == "pending" && started.elapsed() < Duration::from_secs(5) {
        tokio::time::sleep(Duration::from_millis(50)).await;
        log = deliveries(&admin, webhook).await;
    }
    let delivery = &log[0];
    assert_eq!(delivery["state"], "delivered", "{delivery}");
    assert_eq!(delivery["last_status"], 200);
    let attempts = delivery["attempt_log"].as_array().unwrap();
    assert_eq!(delivery["attempts"].as_u64(), Some(attempts.len() as u64));
    let statuses: Vec<Option<i64>> = attempts.iter().map(|attempt| attempt["status"].as_i64()).collect();
    assert_eq!(statuses.last(), Some(&Some(200)));
    assert_eq!(statuses[statuses.len() - 2], Some(500));
    assert!(statuses[..statuses.len() - 2].iter().all(Option::is_none), "refused first: {statuses:?}");
    assert!(attempts[..attempts.len() - 1].iter().all(|attempt| attempt["error"].is_string()));

    // The timeline: each wait at least twice the one before (1 s, 2 s, 4 s …).
    let created = chrono::DateTime::parse_from_rfc3339(delivery["created_at"].as_str().unwrap()).unwrap();
    let times: Vec<_> = attempts
        .iter()
        .map(|attempt| chrono::DateTime::parse_from_rfc3339(attempt["at"].as_str().unwrap()).unwrap())
        .collect();
    println!("retry timeline (base 1 s), delivered {delivered_after:?} after the event:");
    for (n, (attempt, at)) in attempts.iter().zip(&times).enumerate() {
        println!(
            "  attempt {}: +{:.2} s  status {}  {}",
            n + 1,
            (*at - created).num_milliseconds() as f64 / 1000.0,
            attempt["status"],
            attempt["error"].as_str().unwrap_or("")
        );
    }
    for (n, pair) in times.windows(2).enumerate() {
        let gap = (pair[1] - pair[0]).num_milliseconds();
        let backoff = 1000 << n;
        assert!(gap >= backoff - 50, "attempt {} came {gap} ms after the one before, not {backoff}", n + 2);
        assert!(gap < backoff + 2500, "attempt {} came {gap} ms after the one before", n + 2);
    }
    receiver.server.stop(false).await;
}

/// The outbox survives a crash: deliveries enqueued (by the CLI, in its own process) while the
/// receiver is down are still pending after a `kill -9` of the server, and the restarted server
/// delivers them.
#[tokio::test]
async fn pending_deliveries_survive_a_hard_kill_and_arrive_after_the_restart() {
    let (settings, _dir) = fresh_settings();
    let env = [("SCOPEGATE_WEBHOOK_RETRY_BASE_SECONDS", "1")];
    let mut server = ServerProcess::start_with_env(&settings, &env).await;
    let ops = cli_json(&run_cli(&settings, &["client", "create", "--name", "Ops", "--admin"], None));
    let http = reqwest::Client::new();
    let token: Value = http
        .post(format!("{}/token", server.url))
        .basic_auth(ops["client_id"].as_str().unwrap(), ops["client_secret"].as_str())
        .form(&[("grant_type", "client_credentials"), ("scope", "scopegate:admin")])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = token["access_token"].as_str().unwrap().to_string();
    let call = |base: String, method: Method, path: &str, body: Option<Value>| {
        let mut request = http.request(method, format!("{base}{path}")).bearer_auth(&token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        async move {
            let response = request.send().await.unwrap();
            (response.status().as_u16(), response.json::<Value>().await.unwrap_or(Value::Null))
        }
    };

    let port = free_port();
    let url = format!("http://127.0.0.1:{port}/hooks");
    let (status, created) = call(
        server.url.clone(),
        Method::POST,
        "/admin/v1/webhooks",
        Some(json!({"url": url, "events": ["user.created"], "secret": SECRET})),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    let deliveries_path = format!("/admin/v1/webhooks/{}/deliveries", created["id"]);
    for name in ["carol", "dave"] {
        let output = run_cli(&settings, &["user", "create", name, "--password-stdin"], Some("a-long-password-1"));
        assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    }
    // The server has tried (and failed) at least once: the deliveries are in its outbox.
    let started = Instant::now();
    loop {
        let (_, log) = call(server.url.clone(), Method::GET, &deliveries_path, None).await;
        let log = log["deliveries"].as_array().unwrap().clone();
        if log.len() == 2 && log.iter().all(|d| d["attempts"].as_i64() >= Some(1)) {
            assert!(log.iter().all(|d| d["state"] == "pending"), "{log:?}");
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(20), "{log:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    server.kill_hard();

    let receiver = Receiver::start(port, 200).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(receiver.received().is_empty(), "nobody delivers while the server is down");
    let restarted = ServerProcess::start_with_env(&settings, &env).await;
    let received = receiver.wait_for(2, Duration::from_secs(30)).await;
    let mut users: Vec<String> = received
        .iter()
        .map(|request| {
            verify(&request.signature, &request.body, SECRET).unwrap();
            let event = request.json();
            assert_eq!((event["type"].as_str(), event["actor"].as_str()), (Some("user.created"), Some("cli")));
            event["username"].as_str().unwrap().to_string()
        })
        .collect();
    users.sort();
    assert_eq!(users, ["carol", "dave"]);
    let started = Instant::now();
    loop {
        let (_, log) = call(restarted.url.clone(), Method::GET, &deliveries_path, None).await;
        let log = log["deliveries"].as_array().unwrap().clone();
        if log.iter().all(|d| d["state"] == "delivered") {
            assert_eq!(log.len(), 2);
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(10), "{log:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    receiver.server.stop(false).await;
}

#[tokio::test]
async fn webhooks_are_created_listed_and_deleted_by_admins_only_and_never_show_their_secret() {
    let admin = setup().await;
    let body = json!({"url": "https://hooks.bank.example/in", "events": ["token.revoked", "grant.exhausted"], "secret": SECRET});

    for token in [None, Some("garbage"), Some(admin.plain_token.as_str())] {
        let expected = if token.is_some_and(|t| t == admin.plain_token) { 403 } else { 401 };
        for (method, path) in [
            (Method::POST, "/admin/v1/webhooks"),
            (Method::GET, "/admin/v1/webhooks"),
            (Method::DELETE, "/admin/v1/webhooks/1"),
            (Method::GET, "/admin/v1/webhooks/1/deliveries"),
        ] {
            let (status, _) = admin.call_as(token, method.clone(), path, Some(body.clone())).await;
            assert_eq!(status, expected, "{method} {path} with {token:?}");
        }
    }

    let (status, created) = admin.call(Method::POST, "/admin/v1/webhooks", Some(body.clone())).await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["url"], "https://hooks.bank.example/in");
    assert_eq!(created["events"], json!(["grant.exhausted", "token.revoked"]));
    assert!(created.get("secret").is_none() && !created.to_string().contains(SECRET), "{created}");
    let id = created["id"].as_i64().unwrap();
    let plain = json!({"url": "http://10.20.30.40:8080/scopegate", "events": ["login.failed"], "secret": SECRET});
    let (status, second) = admin.call(Method::POST, "/admin/v1/webhooks", Some(plain)).await;
    assert_eq!(status, 201, "http is allowed inside the bank's network: {second}");

    let (status, listed) = admin.call(Method::GET, "/admin/v1/webhooks", None).await;
    assert_eq!(status, 200);
    assert!(!listed.to_string().contains(SECRET), "{listed}");
    let urls: Vec<&str> = listed["webhooks"].as_array().unwrap().iter().map(|w| w["url"].as_str().unwrap()).collect();
    assert_eq!(urls, ["https://hooks.bank.example/in", "http://10.20.30.40:8080/scopegate"]);
    assert_eq!(deliveries(&admin, id).await, Vec::<Value>::new());

    for (bad, field) in [
        (json!({"url": "ftp://hooks.bank.example/in", "events": ["token.revoked"], "secret": SECRET}), "url"),
        (json!({"url": "not a url", "events": ["token.revoked"], "secret": SECRET}), "url"),
        (json!({"url": "https://u:p@hooks.bank.example/", "events": ["token.revoked"], "secret": SECRET}), "url"),
        (json!({"url": "https://hooks.bank.example/in", "events": ["token.stolen"], "secret": SECRET}), "events"),
        (json!({"url": "https://hooks.bank.example/in", "events": [], "secret": SECRET}), "events"),
        (json!({"url": "https://hooks.bank.example/in", "events": ["token.revoked"], "secret": "short"}), "secret"),
        (json!({"url": "https://hooks.bank.example/in", "events": ["token.revoked"]}), "secret"),
    ] {
        let (status, answer) = admin.call(Method::POST, "/admin/v1/webhooks", Some(bad.clone())).await;
        assert_eq!((status, answer["error"].as_str()), (400, Some("invalid_request")), "{bad}: {answer}");
        let description = answer["error_description"].as_str().unwrap();
        assert!(description.contains(field), "{bad}: {description}");
        assert!(!description.contains(SECRET), "{description}");
    }
    let (_, listed) = admin.call(Method::GET, "/admin/v1/webhooks", None).await;
    assert_eq!(listed["webhooks"].as_array().unwrap().len(), 2, "refused ones were not stored");

    let (status, _) = admin.call(Method::DELETE, &format!("/admin/v1/webhooks/{id}"), None).await;
    assert_eq!(status, 204);
    let (status, answer) = admin.call(Method::DELETE, &format!("/admin/v1/webhooks/{id}"), None).await;
    assert_eq!((status, answer["error"].as_str()), (404, Some("webhook_not_found")));
    let (status, _) = admin.call(Method::GET, &format!("/admin/v1/webhooks/{id}/deliveries"), None).await;
    assert_eq!(status, 404);
    let (status, _) = admin.call(Method::GET, "/admin/v1/webhooks/abc/deliveries", None).await;
    assert_eq!(status, 404);
    let (_, listed) = admin.call(Method::GET, "/admin/v1/webhooks", None).await;
    let ids: Vec<i64> = listed["webhooks"].as_array().unwrap().iter().map(|w| w["id"].as_i64().unwrap()).collect();
    assert_eq!(ids, [second["id"].as_i64().unwrap()]);

    // Each change is in the audit trail, with the admin client as actor and never the secret.
    let (_, page) = admin.call(Method::GET, "/admin/v1/events?type=webhook.created", None).await;
    let created_events = page["events"].as_array().unwrap();
    assert_eq!(created_events.len(), 2, "{page}");
    assert!(!page.to_string().contains(SECRET), "{page}");
    let first = created_events.iter().find(|e| e["detail"]["webhook_id"] == id).unwrap();
    assert_eq!(first["detail"]["url"], "https://hooks.bank.example/in");
    assert!(first["actor"].as_str().unwrap().starts_with("client:"), "the admin client: {first}");
    let (_, page) = admin.call(Method::GET, "/admin/v1/events?type=webhook.deleted", None).await;
    let deleted: Vec<&Value> = page["events"].as_array().unwrap().iter().collect();
    assert_eq!(deleted.len(), 1, "the refused second delete records nothing: {page}");
    assert_eq!(deleted[0]["detail"]["webhook_id"], id);
}

/// A deleted webhook gets nothing more, and a change that rolls back enqueues nothing.
#[tokio::test]
async fn a_deleted_webhook_and_a_refused_change_send_nothing() {
    let admin = setup().await;
    let receiver = Receiver::start(free_port(), 200).await;
    let kept = create_webhook(&admin, &receiver.url, &["scope.created", "scope.deleted"]).await;
    let gone = create_webhook(&admin, &receiver.url, &["scope.created"]).await;
    let (status, _) = admin.call(Method::DELETE, &format!("/admin/v1/webhooks/{gone}"), None).await;
    assert_eq!(status, 204);

    create_scope(&admin, "vault").await;
    // Refused (a duplicate name): its transaction, event and deliveries roll back together.
    let (status, _) = admin
        .call(Method::POST, "/admin/v1/scopes", Some(json!({"name": "vault", "short_description": "again"})))
        .await;
    assert_eq!(status, 409);

    let received = receiver.wait_for(1, Duration::from_secs(15)).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(receiver.received().len(), 1, "one webhook, one event: {:?}", received);
    assert_eq!(received[0].json()["type"], "scope.created");
    assert_eq!(deliveries(&admin, kept).await.len(), 1);
    receiver.server.stop(false).await;
}

#[tokio::test]
async fn a_receiver_that_takes_its_time_does_not_hold_up_deliveries_to_others() {
    let (mut settings, dir) = fresh_settings();
    settings.webhook_timeout_seconds = 30;
    let admin = setup_with(settings, dir).await;
    let slow = Receiver::start(free_port(), 200).await;
    slow.delay_ms.store(20_000, Ordering::SeqCst);
    let fast = Receiver::start(free_port(), 200).await;
    create_webhook(&admin, &slow.url, &["scope.created"]).await;
    create_webhook(&admin, &fast.url, &["scope.deleted"]).await;

    create_scope(&admin, "slowpoke").await;
    slow.wait_for(1, Duration::from_secs(15)).await; // in flight: it holds the request 20 s
    let started = Instant::now();
    let (status, _) = admin.call(Method::DELETE, "/admin/v1/scopes/slowpoke", None).await;
    assert_eq!(status, 204);
    // Before, the worker waited for its whole claim (the slow delivery) before claiming more.
    let received = fast.wait_for(1, Duration::from_secs(8)).await;
    println!("the fast receiver got its event {:?} after it happened, the slow one still holding", started.elapsed());
    assert_eq!(received[0].json()["type"], "scope.deleted");
    fast.server.stop(false).await;
    slow.server.stop(false).await;
}

#[tokio::test]
async fn a_delivery_in_flight_when_the_server_dies_is_sent_again_once_its_lease_runs_out() {
    let (settings, _dir) = fresh_settings();
    // The lease on a delivery is the timeout plus 10 s: 12 s here.
    let env = [("SCOPEGATE_WEBHOOK_TIMEOUT_SECONDS", "2")];
    let mut server = ServerProcess::start_with_env(&settings, &env).await;
    let (http, token) = process_admin_token(&settings, &server.url).await;
    let receiver = Receiver::start(free_port(), 200).await;
    receiver.delay_ms.store(60_000, Ordering::SeqCst);
    let created: Value = http
        .post(format!("{}/admin/v1/webhooks", server.url))
        .bearer_auth(&token)
        .json(&json!({"url": receiver.url, "events": ["user.created"], "secret": SECRET}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let output = run_cli(&settings, &["user", "create", "erin", "--password-stdin"], Some("a-long-password-1"));
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));

    // The delivery is claimed and its POST is in flight (the receiver holds it): kill now.
    receiver.wait_for(1, Duration::from_secs(20)).await;
    let claimed = Instant::now();
    server.kill_hard();
    receiver.delay_ms.store(0, Ordering::SeqCst);
    let restarted = ServerProcess::start_with_env(&settings, &env).await;
    let received = receiver.wait_for(2, Duration::from_secs(45)).await;
    let resent_after = claimed.elapsed();
    println!("sent again {resent_after:?} after the kill; the lease is 12 s from the claim");
    assert!(resent_after >= Duration::from_secs(9), "not before the lease ran out: {resent_after:?}");
    assert_eq!(received[0].json()["id"], received[1].json()["id"], "the same event, again");
    let path = format!("{}/admin/v1/webhooks/{}/deliveries", restarted.url, created["id"]);
    let started = Instant::now();
    loop {
        let log: Value = http.get(&path).bearer_auth(&token).send().await.unwrap().json().await.unwrap();
        if log["deliveries"][0]["state"] == "delivered" {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(10), "{log}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    receiver.server.stop(false).await;
}

/// An admin client made by the CLI, and its token from the server process at `url`.
async fn process_admin_token(settings: &scopegate::config::Settings, url: &str) -> (reqwest::Client, String) {
    let ops = cli_json(&run_cli(settings, &["client", "create", "--name", "Ops", "--admin"], None));
    let http = reqwest::Client::new();
    let token: Value = http
        .post(format!("{url}/token"))
        .basic_auth(ops["client_id"].as_str().unwrap(), ops["client_secret"].as_str())
        .form(&[("grant_type", "client_credentials"), ("scope", "scopegate:admin")])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    (http, token["access_token"].as_str().unwrap().to_string())
}

/// Anyone can cause `login.failed` events: a webhook whose receiver is down stops collecting
/// deliveries at `MAX_PENDING_DELIVERIES` pending, while the events stay in the audit trail and
/// a webhook with room still gets them.
#[tokio::test]
async fn a_webhook_with_a_full_outbox_gets_no_more_deliveries_and_the_events_are_kept() {
    use diesel::connection::SimpleConnection;
    use scopegate::domain::event::{Actor, Event, EventType};
    use scopegate::domain::webhook::MAX_PENDING_DELIVERIES;
    let admin = setup().await;
    // Nothing listens: deliveries stay pending.
    let down = format!("http://127.0.0.1:{}/hooks", free_port());
    let flooded = create_webhook(&admin, &down, &["login.failed"]).await;
    let roomy = create_webhook(&admin, &down, &["login.failed"]).await;
    let failed = |n: usize| {
        (0..n).map(|i| Event::new(EventType::LoginFailed, &Actor::System).user(format!("guess{i}"))).collect::<Vec<_>>()
    };
    let mut connection = admin.app.state.db.get().unwrap();
    scopegate::storage::events::insert(&mut connection, &failed(1), chrono::Utc::now()).unwrap();
    // The flooded webhook's outbox fills up to the cap (due in a day, so the worker leaves them).
    connection
        .batch_execute(&format!(
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {more}) \
             INSERT INTO webhook_deliveries (webhook_id, event_id, state, attempts, next_attempt_at, created_at) \
             SELECT {flooded}, (SELECT MAX(id) FROM events), 'pending', 0, {tomorrow}, {tomorrow} FROM n",
            more = MAX_PENDING_DELIVERIES - 1,
            tomorrow = "CURRENT_TIMESTAMP + INTERVAL '1 day'",
        ))
        .or_else(|_| {
            // SQLite spells the date arithmetic its own way.
            connection.batch_execute(&format!(
                "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {more}) \
                 INSERT INTO webhook_deliveries (webhook_id, event_id, state, attempts, next_attempt_at, created_at) \
                 SELECT {flooded}, (SELECT MAX(id) FROM events), 'pending', 0, datetime('now', '+1 day'), \
                 datetime('now', '+1 day') FROM n",
                more = MAX_PENDING_DELIVERIES - 1,
            ))
        })
        .unwrap();
    scopegate::storage::events::insert(&mut connection, &failed(3), chrono::Utc::now()).unwrap();
    drop(connection);

    let (flooded_log, roomy_log) = (deliveries_count(&admin, flooded).await, deliveries_count(&admin, roomy).await);
    assert_eq!(flooded_log, MAX_PENDING_DELIVERIES, "no more for the full outbox");
    assert_eq!(roomy_log, 4, "the webhook with room gets every event");
    let (_, page) = admin.call(Method::GET, "/admin/v1/events?type=login.failed&limit=10", None).await;
    assert_eq!(page["events"].as_array().unwrap().len(), 4, "the audit trail keeps them all: {page}");
}

async fn deliveries_count(admin: &Admin, webhook: i64) -> i64 {
    let mut connection = admin.app.state.db.get().unwrap();
    use diesel::prelude::*;
    use scopegate::storage::schema::webhook_deliveries;
    webhook_deliveries::table
        .filter(webhook_deliveries::webhook_id.eq(webhook))
        .count()
        .get_result(&mut *connection)
        .unwrap()
}
