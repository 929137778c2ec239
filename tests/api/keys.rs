use crate::helpers::{cli_json, spawn_app, spawn_app_with};

async fn published_kids(app: &crate::helpers::TestApp) -> Vec<String> {
    let response = app.get("/jwks.json").await;
    assert_eq!(response.status(), 200);
    let body: serde_json::Value = response.json().await.unwrap();
    body["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|key| {
            assert_eq!(key["kty"], "EC");
            assert_eq!(key["crv"], "P-256");
            assert_eq!(key["alg"], "ES256");
            assert!(key.get("d").is_none(), "a private key part was published");
            key["kid"].as_str().unwrap().to_string()
        })
        .collect()
}

#[tokio::test]
async fn the_first_start_creates_a_key_and_publishes_it() {
    let app = spawn_app().await;
    let kids = published_kids(&app).await;
    assert_eq!(kids.len(), 1);
    let key_file = app.settings.keys_dir.join(format!("{}.pem", kids[0]));
    let pem = std::fs::read_to_string(&key_file).unwrap();
    assert!(pem.starts_with("-----BEGIN PRIVATE KEY-----"));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&key_file).unwrap().permissions().mode() & 0o777, 0o600);
    }
}

#[tokio::test]
async fn a_restart_keeps_the_key_and_a_rotation_adds_one_while_the_old_stays_published() {
    let app = spawn_app().await;
    let first = published_kids(&app).await;

    let rotated = cli_json(&app.cli(&["keys", "rotate"], None));
    let new_kid = rotated["kid"].as_str().unwrap().to_string();
    assert_ne!(new_kid, first[0]);

    let settings = app.settings.clone();
    let restarted = spawn_app_with(settings, app.dir).await;
    let kids = published_kids(&restarted).await;
    assert_eq!(kids.len(), 2, "{kids:?}");
    assert!(kids.contains(&first[0]));
    assert!(kids.contains(&new_kid));
}

#[tokio::test]
async fn a_running_server_signs_with_a_rotated_key_within_seconds_and_old_tokens_still_verify() {
    let app = spawn_app().await;
    app.import_scopes(r#"{"scopes": [{"name": "profile", "short_description": "Profile", "default_scope": true}]}"#);
    let client = app.machine_client("F", &[]);
    let bank_api = app.resource_server();
    let old = app.access_token(&client, None).await["access_token"].as_str().unwrap().to_string();
    let old_kid = jsonwebtoken::decode_header(&old).unwrap().kid.unwrap();

    let rotated = cli_json(&app.cli(&["keys", "rotate"], None));
    let new_kid = rotated["kid"].as_str().unwrap().to_string();
    let started = std::time::Instant::now();
    loop {
        let token = app.access_token(&client, None).await["access_token"].as_str().unwrap().to_string();
        if jsonwebtoken::decode_header(&token).unwrap().kid.as_deref() == Some(new_kid.as_str()) {
            assert_eq!(app.introspect(&bank_api, &token).await["active"], true);
            break;
        }
        assert!(started.elapsed() < std::time::Duration::from_secs(3), "still signing with {old_kid}");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(app.introspect(&bank_api, &old).await["active"], true, "a token of the old key still verifies");
    assert!(published_kids(&app).await.contains(&old_kid));
}
