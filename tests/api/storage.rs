//! Typed columns on the configured backend: values round-trip in the text forms earlier
//! versions wrote, instants are stored as UTC, and a stored value that does not decode is a
//! storage error (a logged 500), never a panic.

use chrono::{Duration, Utc};
use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use scopegate::domain::client::{ClientRegistration, TokenFormat};
use scopegate::domain::scope::{GrantType, SecurityLevel, Visibility};
use scopegate::storage::schema::{access_tokens, clients, scopes};
use scopegate::storage::{self, StorageError};

use crate::helpers::{TestApp, TestClient};

const LEDGER: &str = r#"{"scopes": [{"name": "ledger", "short_description": "Ledger", "visibility": "private",
    "security_level": "B", "auth_types": ["client_credentials"], "operations": ["GET /ledger", "say \"hi\""]}]}"#;

/// A confidential client of level B holding the private `ledger` scope, with opaque tokens.
async fn app_with_ledger_client() -> (TestApp, TestClient) {
    let app = crate::helpers::spawn_app_without_fapi_levels().await;
    app.import_scopes(LEDGER);
    let client = app.create_client(
        ClientRegistration {
            name: "Ledger reader".into(),
            redirect_uris: vec!["https://app.example/cb".into()],
            security_level: Some(SecurityLevel::B),
            token_format: Some(TokenFormat::Opaque),
            ..Default::default()
        },
        &["ledger"],
    );
    (app, client)
}

#[tokio::test]
async fn typed_columns_read_back_what_they_stored_in_the_text_forms_of_earlier_versions() {
    let (app, client) = app_with_ledger_client().await;
    let client_id = client.id;
    let mut connection = app.state.db.get().unwrap();

    let client = storage::clients::find(&mut connection, &client_id).unwrap().unwrap();
    assert_eq!(client.security_level, SecurityLevel::B);
    assert_eq!(client.token_format, TokenFormat::Opaque);
    assert_eq!(
        client.grant_types,
        [GrantType::AuthorizationCode, GrantType::ClientCredentials, GrantType::RefreshToken]
    );
    assert_eq!(client.redirect_uris, ["https://app.example/cb"]);
    assert!((Utc::now() - client.created_at).abs() < Duration::minutes(1), "created_at read back as UTC");
    let stored: (String, String, String, String) = clients::table
        .find(&client_id)
        .select((clients::security_level, clients::token_format, clients::grant_types, clients::redirect_uris))
        .first(&mut connection)
        .unwrap();
    assert_eq!(
        stored,
        (
            "B".to_string(),
            "opaque".to_string(),
            r#"["authorization_code","client_credentials","refresh_token"]"#.to_string(),
            r#"["https://app.example/cb"]"#.to_string()
        )
    );

    let tree = storage::scopes::load_tree(&mut connection).unwrap();
    let ledger = tree.get("ledger").unwrap();
    assert_eq!(
        (ledger.fields.visibility, ledger.fields.security_level, ledger.fields.auth_types.as_slice()),
        (Visibility::Private, SecurityLevel::B, [GrantType::ClientCredentials].as_slice())
    );
    assert_eq!(ledger.fields.operations, ["GET /ledger", "say \"hi\""]);
    let stored: (String, String, String, String) = scopes::table
        .find("ledger")
        .select((scopes::visibility, scopes::security_level, scopes::auth_types, scopes::operations))
        .first(&mut connection)
        .unwrap();
    assert_eq!(
        stored,
        (
            "private".to_string(),
            "B".to_string(),
            r#"["client_credentials"]"#.to_string(),
            r#"["GET /ledger","say \"hi\""]"#.to_string()
        )
    );
}

#[tokio::test]
async fn an_opaque_token_is_found_by_its_hash_with_its_format_and_utc_lifetime() {
    let (app, client) = app_with_ledger_client().await;
    let before = Utc::now();
    let body = app.access_token(&client, Some("ledger")).await;
    let token = body["access_token"].as_str().unwrap();

    let mut connection = app.state.db.get().unwrap();
    let hash = app.state.hasher.hash(token);
    let row = storage::tokens::find_access_by_hash(&mut connection, &hash).unwrap().unwrap();
    assert_eq!(row.format, TokenFormat::Opaque);
    assert_eq!(row.token_hash.as_ref(), Some(&hash));
    assert_eq!(row.expires_at - row.issued_at, Duration::seconds(app.settings.access_token_lifetime_seconds));
    assert!(row.issued_at >= before - Duration::seconds(1) && row.issued_at <= Utc::now());
    assert!(row.revoked_at.is_none() && row.is_active(Utc::now()));
    // Stored as naive UTC, whatever the server's time zone.
    let stored: chrono::NaiveDateTime =
        access_tokens::table.find(&row.jti).select(access_tokens::expires_at).first(&mut connection).unwrap();
    assert_eq!(stored, row.expires_at.naive_utc());

    storage::tokens::revoke_access_token(&mut connection, &row.jti, Utc::now()).unwrap();
    let revoked = storage::tokens::find_access_by_jti(&mut connection, &row.jti).unwrap().unwrap();
    assert!(revoked.revoked_at.is_some_and(|at| at >= row.issued_at));
    assert!(!revoked.is_active(Utc::now()));
}

#[tokio::test]
async fn a_corrupt_stored_value_is_a_storage_error_and_a_500_never_a_panic() {
    let (app, client) = app_with_ledger_client().await;
    let mut connection = app.state.db.get().unwrap();

    // Client ids are base64url: safe in a literal.
    connection
        .batch_execute(&format!("UPDATE clients SET security_level = 'Z' WHERE client_id = '{}'", client.id))
        .unwrap();
    match storage::clients::find(&mut connection, &client.id) {
        Err(StorageError::CorruptColumn { column: "security level", detail }) => {
            assert!(detail.contains("\"Z\"") && detail.contains("security_level"), "{detail}");
        }
        other => panic!("expected a corrupt security level, got {other:?}"),
    }
    drop(connection);
    let response = app.client_credentials(&client, Some("ledger")).await;
    assert_eq!(response.status(), 500);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["error"], "server_error");
    assert!(!body.to_string().contains("security"), "internals stay in the log: {body}");

    let mut connection = app.state.db.get().unwrap();
    connection
        .batch_execute(&format!(
            "UPDATE clients SET security_level = 'B', grant_types = 'client_credentials' WHERE client_id = '{}'",
            client.id
        ))
        .unwrap();
    assert!(matches!(
        storage::clients::find(&mut connection, &client.id),
        Err(StorageError::CorruptColumn { column: "list", .. })
    ));

    connection.batch_execute("UPDATE scopes SET visibility = 'secret' WHERE name = 'ledger'").unwrap();
    assert!(matches!(
        storage::scopes::load_tree(&mut connection),
        Err(StorageError::CorruptColumn { column: "visibility", .. })
    ));
}

/// The client-credentials fast path stores a token decided on reads through the group commit
/// (issue 11). If a revocation deleted the client's consent in between, the row is not stored
/// and the request starts over: `insert_under_consent` says so, and the next token request
/// issues under a new consent.
#[tokio::test]
async fn a_token_row_whose_consent_was_revoked_meanwhile_is_not_stored() {
    let (app, client) = app_with_ledger_client().await;
    let token = app.access_token(&client, Some("ledger")).await;
    let mut connection = app.state.db.get().unwrap();
    let row =
        access_tokens::table.select(storage::tokens::AccessTokenRow::as_select()).first(&mut *connection).unwrap();
    let consent_id = row.consent_id.clone().unwrap();
    // What a revocation does to the consent (its grants go with it).
    diesel::delete(storage::schema::consents::table.find(&consent_id)).execute(&mut *connection).unwrap();
    let late = storage::tokens::AccessTokenRow { jti: "late-arrival".into(), token_hash: None, ..row };
    let fate = app.state.db.write(move |connection| storage::tokens::insert_under_consent(connection, late)).await;
    assert_eq!(fate.unwrap(), storage::tokens::Recorded::ConsentGone);
    let stored: i64 = access_tokens::table
        .filter(access_tokens::jti.eq("late-arrival"))
        .count()
        .get_result(&mut *connection)
        .unwrap();
    assert_eq!(stored, 0);
    // The next request finds no consent and issues under a new one, in one write transaction.
    let again = app.access_token(&client, Some("ledger")).await;
    assert_eq!(again["scope"], "ledger");
    assert_ne!(again["access_token"], token["access_token"]);
    let consents: Vec<Option<String>> =
        access_tokens::table.select(access_tokens::consent_id).load(&mut *connection).unwrap();
    assert!(consents.iter().flatten().any(|id| *id != consent_id), "{consents:?}");
}

/// Migration 000014: a parameterised scope the previous version stored without asking the user
/// (it did not refuse one) asks from the first start of this one, and the registry loads.
#[tokio::test]
async fn migration_14_makes_a_stored_parameterised_scope_ask_the_user() {
    let app = crate::helpers::spawn_app().await;
    app.import_scopes(
        r#"{"scopes": [{"name": "consents.read", "short_description": "Read one consent", "parameterised": true},
            {"name": "profile", "short_description": "Profile", "user_authorization_required": false}]}"#,
    );
    let connection = &mut app.state.db.get().unwrap();
    // As the previous version could leave it: asking turned off, and 000014 not yet applied.
    connection
        .batch_execute(
            "UPDATE scopes SET user_authorization_required = FALSE WHERE name = 'consents.read';
             DELETE FROM __diesel_schema_migrations WHERE version = (SELECT max(version) FROM __diesel_schema_migrations);",
        )
        .unwrap();
    let version = || {
        use scopegate::storage::schema::registry_version;
        registry_version::table.filter(registry_version::id.eq(1)).select(registry_version::version)
    };
    let before: i64 = version().first(connection).unwrap();
    assert_eq!(storage::run_migrations(connection).unwrap(), 1);
    let after: i64 = version().first(connection).unwrap();
    assert_eq!(after, before + 1, "running instances reload the registry");
    let asks: Vec<(String, bool)> = scopes::table
        .select((scopes::name, scopes::user_authorization_required))
        .order(scopes::name)
        .load(connection)
        .unwrap();
    let expected = [("consents.read", true), ("profile", false), ("scopegate:admin", false)];
    assert_eq!(asks, expected.map(|(name, asks)| (name.to_string(), asks)), "plain scopes untouched");
    let tree = storage::scopes::load_tree(connection).unwrap();
    assert!(tree.get("consents.read").is_some_and(|scope| scope.fields.user_authorization_required));
}
