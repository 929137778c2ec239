use crate::helpers::{is_postgres, spawn_app, ServerProcess};
use diesel::connection::SimpleConnection;
use diesel::Connection;

#[tokio::test]
async fn healthz_answers_ok() {
    let app = spawn_app().await;
    let response = app.get("/healthz").await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.json::<serde_json::Value>().await.unwrap()["status"], "ok");
}

#[tokio::test]
async fn readyz_answers_ready_while_the_database_is_reachable() {
    let app = spawn_app().await;
    let response = app.get("/readyz").await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.json::<serde_json::Value>().await.unwrap()["status"], "ready");
}

#[tokio::test]
async fn an_unknown_route_is_a_json_404() {
    let app = spawn_app().await;
    let response = app.get("/no/such/thing").await;
    assert_eq!(response.status(), 404);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["error"], "not_found");
    assert!(body["error_description"].as_str().unwrap().contains("/no/such/thing"));
}

/// Readiness follows the database: with every pooled connection taken (both backends), and
/// on PostgreSQL with the database dropped under the running server, `/readyz` answers 503
/// while `/healthz` still answers.
#[tokio::test]
async fn readyz_is_503_while_the_database_cannot_answer() {
    let app = spawn_app().await;
    assert_eq!(app.get("/readyz").await.status(), 200);
    let held: Vec<_> = (0..app.settings.pool_size).map(|_| app.state.db.get().unwrap()).collect();
    let response = app.get("/readyz").await;
    assert_eq!(response.status(), 503, "no connection could be had within the pool's timeout");
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["error"], "temporarily_unavailable");
    assert_eq!(app.get("/healthz").await.status(), 200);
    drop(held);
    assert_eq!(app.get("/readyz").await.status(), 200, "ready again once connections are free");

    if is_postgres() {
        let admin_url = std::env::var("SCOPEGATE_TEST_POSTGRES_URL").unwrap();
        let name = app.settings.database_url.rsplit('/').next().unwrap().to_string();
        let mut admin = diesel::PgConnection::establish(&admin_url).unwrap();
        admin.batch_execute(&format!("DROP DATABASE {name} WITH (FORCE)")).unwrap();
        let response = app.get("/readyz").await;
        assert_eq!(response.status(), 503, "the database is gone");
        assert_eq!(response.json::<serde_json::Value>().await.unwrap()["error"], "temporarily_unavailable");
    }
}

/// SPEC Part 2: `Strict-Transport-Security` on every answer when the issuer is https (browsers
/// then never try plain http to it again), and not on a plain-http development server.
#[tokio::test]
async fn hsts_is_sent_when_the_issuer_is_https_and_only_then() {
    let plain = spawn_app().await;
    assert!(plain.get("/healthz").await.headers().get("strict-transport-security").is_none());
    let (settings, dir) = crate::helpers::fresh_settings();
    let secure = scopegate::config::Settings { issuer: "https://bank.example".into(), ..settings };
    let secure = crate::helpers::spawn_app_with(secure, dir).await;
    for path in ["/healthz", "/login", "/.well-known/oauth-authorization-server"] {
        let response = secure.get(path).await;
        let hsts = response.headers().get("strict-transport-security").map(|v| v.to_str().unwrap().to_string());
        assert_eq!(hsts.as_deref(), Some("max-age=31536000; includeSubDomains"), "{path}");
    }
}

/// SPEC Part 2: `/demo` and its protected resource exist only under `serve --demo`. Without
/// the flag they are the JSON 404 of any unknown route, on a database the demo was seeded in.
#[tokio::test]
async fn demo_routes_exist_only_under_serve_demo() {
    let (settings, _dir) = crate::helpers::fresh_settings();
    let paths = ["/demo", "/demo/start", "/demo/callback?code=x&state=y", "/demo/bank/balance"];
    let demo = ServerProcess::start_serving(&settings, &["--demo"], &[]).await;
    let get = |server: &ServerProcess, path: &str| reqwest::get(format!("{}{path}", server.url));
    let landing = get(&demo, "/demo").await.unwrap();
    assert_eq!(landing.status(), 200);
    assert!(landing.text().await.unwrap().contains("/demo/start"));
    assert_eq!(get(&demo, "/demo/bank/balance").await.unwrap().status(), 401, "the resource wants a token");
    drop(demo);

    let plain = ServerProcess::start(&settings).await;
    for path in paths {
        let response = get(&plain, path).await.unwrap();
        assert_eq!(response.status(), 404, "{path}");
        assert_eq!(response.json::<serde_json::Value>().await.unwrap()["error"], "not_found", "{path}");
    }
}

/// FAPI 2.0 §5.2.3 (and RFC 9700 §4.16's spirit): no endpoint opens itself to other origins.
/// A browser page elsewhere gets no CORS grant from the authorization, token, PAR or admin
/// endpoints, nor from a preflight.
#[tokio::test]
async fn no_endpoint_answers_cross_origin_requests_with_cors_headers() {
    let app = spawn_app().await;
    let origin = "https://evil.example";
    for (method, path) in [
        (reqwest::Method::GET, "/authorize?response_type=code&client_id=x"),
        (reqwest::Method::POST, "/token"),
        (reqwest::Method::POST, "/par"),
        (reqwest::Method::POST, "/introspect"),
        (reqwest::Method::GET, "/.well-known/oauth-authorization-server"),
        (reqwest::Method::GET, "/admin/v1/scopes"),
        (reqwest::Method::OPTIONS, "/token"),
        (reqwest::Method::OPTIONS, "/authorize"),
    ] {
        let response = app
            .http
            .request(method.clone(), app.url(path))
            .header("Origin", origin)
            .header("Access-Control-Request-Method", "POST")
            .send()
            .await
            .unwrap();
        assert!(response.status().as_u16() < 500, "{method} {path}: {}", response.status());
        let cors: Vec<_> =
            response.headers().keys().filter(|name| name.as_str().starts_with("access-control-")).collect();
        assert!(cors.is_empty(), "{method} {path} answered {}: {cors:?}", response.status());
    }
}
