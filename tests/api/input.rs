//! NUL bytes and invalid UTF-8 anywhere in a request — path, query, form, JSON, Basic
//! credentials — are a 400 `invalid_request` on both backends (issue 12: PostgreSQL answered
//! them with a 500, on unauthenticated endpoints too).

use crate::admin::setup;
use base64::Engine;
use reqwest::Method;

/// Method, path and query, Authorization, Content-Type, body.
type Case<'a> = (Method, &'a str, Option<String>, Option<&'a str>, &'a [u8]);

#[tokio::test]
async fn nul_bytes_and_invalid_utf8_anywhere_are_a_400_never_a_500() {
    let admin = setup().await;
    let app = &admin.app;
    let resource_server = app.resource_server();
    let form = "application/x-www-form-urlencoded";
    let json = "application/json";
    let basic = |id: &str, secret: &str| {
        format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("{id}:{secret}")))
    };
    let rs_basic = basic(&resource_server.id, &resource_server.secret);
    let bearer = format!("Bearer {}", admin.token);
    let cases: Vec<Case> = vec![
        (Method::GET, "/authorize?client_id=%00x&response_type=code", None, None, b""),
        (Method::GET, "/authorize?client_id=%FFx&response_type=code", None, None, b""),
        (Method::GET, "/authorize?client_id=x&state=%C3%28", None, None, b""),
        (Method::POST, "/token", None, Some(form), b"grant_type=client_credentials&client_id=%00x&client_secret=s"),
        (Method::POST, "/token", None, Some(form), b"grant_type=client_credentials&client_id=%C0%AF&client_secret=s"),
        (Method::POST, "/token", Some(basic("x\0y", "s")), Some(form), b"grant_type=client_credentials"),
        (Method::POST, "/token", Some(basic("x%00y", "s")), Some(form), b"grant_type=client_credentials"),
        (Method::POST, "/introspect", Some(rs_basic.clone()), Some(form), b"token=%00"),
        (Method::POST, "/introspect", Some(rs_basic.clone()), Some(form), b"token=abc\xff"),
        (Method::POST, "/revoke", Some(rs_basic.clone()), Some(form), b"token=a%00b"),
        (Method::GET, "/login?next=/account%00", None, None, b""),
        (Method::POST, "/login", None, Some(form), b"username=alice%00&password=x&csrf_token=x"),
        (Method::GET, "/account/apps/%00/revoke", None, None, b""),
        (Method::GET, "/admin/v1/scopes/%00x", Some(bearer.clone()), None, b""),
        (Method::GET, "/admin/v1/clients/%FF", Some(bearer.clone()), None, b""),
        // actix decodes a path twice (re-quoting, then the extractor): this is a NUL by then.
        (Method::DELETE, "/admin/v1/clients/%%30%30", Some(bearer.clone()), None, b""),
        (Method::GET, "/admin/v1/grants?client_id=%00", Some(bearer.clone()), None, b""),
        (
            Method::POST,
            "/admin/v1/scopes",
            Some(bearer.clone()),
            Some(json),
            br#"{"name": "a\u0000b", "short_description": "x"}"#,
        ),
        (
            Method::POST,
            "/admin/v1/users",
            Some(bearer.clone()),
            Some(json),
            br#"{"username": "zed", "password": "pass\u0000word"}"#,
        ),
        (Method::GET, "/obp/v3.0.0/consumers/%00/scopes", Some(bearer.clone()), None, b""),
        (
            Method::POST,
            "/obp/v3.0.0/consumers/c/scopes",
            Some(bearer.clone()),
            Some(json),
            br#"{"bank_id": "", "role_name": "\u0000"}"#,
        ),
    ];
    for (method, target, authorization, content_type, body) in cases {
        let mut request = app.http.request(method.clone(), app.url(target)).body(body.to_vec());
        if let Some(authorization) = &authorization {
            request = request.header("authorization", authorization);
        }
        if let Some(content_type) = content_type {
            request = request.header("content-type", content_type);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let text = response.text().await.unwrap();
        assert_eq!(status, 400, "{method} {target} {:?}: {text}", String::from_utf8_lossy(body));
        assert!(text.contains("invalid_request") || text.contains("OBP-10001"), "{method} {target}: {text}");
    }
    // Escaped backslashes before "u0000" are text, not a NUL: the scope is created.
    let (status, created) = admin
        .call(
            Method::POST,
            "/admin/v1/scopes",
            Some(serde_json::json!({"name": "literal", "short_description": "a\\u0000b"})),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["short_description"], "a\\u0000b");
}
