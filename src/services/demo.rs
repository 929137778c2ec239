//! The Online Bank demo (SPEC "The demo"): scopes, users and clients, seeded idempotently.

use chrono::{DateTime, Utc};

use crate::domain::client::{AuthMethod, ClientRegistration};
use crate::domain::event::Actor;
use crate::domain::scope::{GrantType, SecurityLevel};
use crate::domain::scope_document::ScopeDocument;
use crate::error::AppError;
use crate::oauth::demo_payments::{self, PAYMENTS_CLIENT};
use crate::secrets::SecretHasher;
use crate::services::clients::{self, FixedCredentials};
use crate::services::registry::Registry;
use crate::services::users;
use crate::storage::{self, DbConnection};

const DEMO_SCOPES: &str = r#"{"scopes": [
  {"name": "profile", "alias": "Your profile", "short_description": "Your name and customer number",
   "default_scope": true, "user_authorization_required": false, "security_level": "F"},
  {"name": "accounts", "alias": "Your accounts", "short_description": "Information about your accounts",
   "security_level": "C", "operations": ["GET /accounts"],
   "children": [
     {"name": "accounts.balance", "alias": "Account balance", "short_description": "View your demand deposit balance",
      "security_level": "C", "access_duration_days": 90, "operations": ["GET /accounts/{id}/balance"]},
     {"name": "accounts.transactions", "alias": "Transactions", "short_description": "View your account transactions",
      "security_level": "C", "max_access_count": 100, "operations": ["GET /accounts/{id}/transactions"]}
   ]},
  {"name": "payments", "alias": "Payments", "short_description": "Make payments from your accounts",
   "visibility": "private", "security_level": "A", "bank_level": true,
   "children": [
     {"name": "payments.transfer", "alias": "Transfer", "short_description": "Make this one transfer from your account",
      "visibility": "private", "security_level": "A", "max_access_count": 1, "access_duration_days": 1,
      "bank_level": true, "parameterised": true, "operations": ["POST /accounts/{id}/transfers"]}
   ]}
]}"#;

/// (username, password, display name, administrator): `admin` signs in to the console.
pub const DEMO_USERS: [(&str, &str, &str, bool); 3] = [
    ("alice", "alice-password", "Alice Example", false),
    ("bob", "bob-password", "Bob Example", false),
    ("admin", "admin-password", "Demo Administrator", true),
];

/// What the demo seed did, for the start-up banner.
#[derive(Debug, Default, serde::Serialize)]
pub struct DemoSeed {
    pub scopes_created: usize,
    pub users_created: Vec<String>,
    pub clients_created: Vec<String>,
}

struct DemoClient {
    id: &'static str,
    /// None for a client that authenticates with its key (`private_key_jwt`).
    secret: Option<&'static str>,
    name: &'static str,
    scopes: &'static [&'static str],
    build: fn(&str) -> Result<ClientRegistration, AppError>,
}

const DEMO_CLIENTS: [DemoClient; 4] = [
    DemoClient {
        id: "online-bank",
        secret: Some("online-bank-secret"),
        name: "Online Bank",
        scopes: &["profile", "accounts"],
        build: |issuer| {
            Ok(ClientRegistration {
                redirect_uris: vec![format!("{issuer}/demo/callback")],
                grant_types: vec![GrantType::AuthorizationCode, GrantType::RefreshToken],
                security_level: Some(SecurityLevel::C),
                ..Default::default()
            })
        },
    },
    // The "pay PAY-123" app: payments are level A, so it meets the FAPI 2.0 rule (PAR,
    // private_key_jwt, DPoP-bound tokens) and asks for one payment at a time.
    DemoClient {
        id: PAYMENTS_CLIENT,
        secret: None,
        name: "Online Bank Payments",
        scopes: &["payments"],
        build: |issuer| {
            Ok(ClientRegistration {
                redirect_uris: vec![demo_payments::callback_uri(issuer)],
                grant_types: vec![GrantType::AuthorizationCode],
                security_level: Some(SecurityLevel::A),
                token_endpoint_auth_method: Some(AuthMethod::PrivateKeyJwt),
                jwks: Some(demo_payments::client_jwks()?),
                require_pushed_authorization_requests: true,
                dpop_bound_access_tokens: true,
                ..Default::default()
            })
        },
    },
    DemoClient {
        id: "bank-api",
        secret: Some("bank-api-secret"),
        name: "Bank API (resource server)",
        scopes: &[],
        build: |_| Ok(ClientRegistration { can_introspect: true, ..Default::default() }),
    },
    DemoClient {
        id: "demo-admin",
        secret: Some("demo-admin-secret"),
        name: "Demo administrator",
        scopes: &[],
        build: |_| Ok(ClientRegistration { admin: true, ..Default::default() }),
    },
];

/// Seeds what is missing and leaves what exists alone, so seeding twice changes nothing.
pub fn seed(
    connection: &mut DbConnection,
    hasher: &SecretHasher,
    registry: &Registry,
    issuer: &str,
    now: DateTime<Utc>,
) -> Result<DemoSeed, AppError> {
    let mut report = DemoSeed::default();
    let document: ScopeDocument = serde_json::from_str(DEMO_SCOPES).map_err(AppError::internal)?;
    let missing: Vec<_> =
        document.scopes.into_iter().filter(|node| !registry.snapshot().tree.contains(&node.name)).collect();
    report.scopes_created = registry.import(connection, &missing, &Actor::System, now)?.created;

    for (username, password, display_name, admin) in DEMO_USERS {
        if storage::users::find_with_password(connection, username)?.is_none() {
            let new_user = users::NewUser { username, password, display_name: Some(display_name), admin };
            users::create(connection, new_user, &Actor::System, now)?;
            report.users_created.push(username.to_string());
        }
    }
    for demo in &DEMO_CLIENTS {
        if storage::clients::find(connection, demo.id)?.is_none() {
            let registration = ClientRegistration { name: demo.name.to_string(), ..(demo.build)(issuer)? };
            let scopes: Vec<String> = demo.scopes.iter().map(|s| s.to_string()).collect();
            let fixed = FixedCredentials { client_id: demo.id, client_secret: demo.secret };
            clients::register(connection, hasher, &registration, &scopes, Some(fixed), &Actor::System, now)?;
            report.clients_created.push(demo.id.to_string());
        }
    }
    Ok(report)
}

/// What `serve --demo` prints: where to start, and the demo-only credentials.
pub fn banner(issuer: &str, seed: &DemoSeed) -> String {
    let mut lines = vec![
        format!("scopegate demo: the Online Bank story is seeded at {issuer}"),
        format!("  START HERE: open {issuer}/demo and press \"Show my balance\" (sign in as alice / alice-password)"),
        format!("  then press \"Pay PAY-123\": a one-payment consent through PAR, private_key_jwt and DPoP (FAPI 2.0)"),
        format!("  your authorized apps: {issuer}/account    admin API: {issuer}/admin/v1/openapi.json"),
        format!("  administration console: {issuer}/admin (sign in as admin / admin-password)"),
        format!(
            "  seeded now: {} scopes, users [{}], clients [{}] (existing demo data is left as it is)",
            seed.scopes_created,
            seed.users_created.join(", "),
            seed.clients_created.join(", ")
        ),
        "  DEMO CREDENTIALS, FOR THE DEMO ONLY — never use them in production:".to_string(),
    ];
    for (username, password, _, admin) in DEMO_USERS {
        let role = if admin { "administrator (console)" } else { "" };
        lines.push(format!("    user   {username:<12} password {password:<20} {role}").trim_end().to_string());
    }
    for demo in &DEMO_CLIENTS {
        match demo.secret {
            Some(secret) => lines.push(format!("    client {:<12} secret   {:<20} {}", demo.id, secret, demo.name)),
            None => lines.push(format!("    client {:<12} key      {:<20} {}", demo.id, "(built in)", demo.name)),
        }
    }
    lines.push(format!("  server metadata: {issuer}/jwks.json, health: {issuer}/healthz"));
    lines.join("\n")
}
