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
