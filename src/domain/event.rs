//! Audit events: who changed what, and who consented to what (SPEC, "Administration"). Each is
//! written in the same transaction as the change it records, so the trail never claims a change
//! that was rolled back nor misses one that was committed.

use serde::Serialize;
use serde_json::Value;

/// Every kind of event the SPEC lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, utoipa::ToSchema)]
pub enum EventType {
    #[serde(rename = "scope.created")]
    ScopeCreated,
    #[serde(rename = "scope.updated")]
    ScopeUpdated,
    #[serde(rename = "scope.moved")]
    ScopeMoved,
    #[serde(rename = "scope.deleted")]
    ScopeDeleted,
    #[serde(rename = "client.created")]
    ClientCreated,
    #[serde(rename = "client.updated")]
    ClientUpdated,
    #[serde(rename = "client.deleted")]
    ClientDeleted,
    #[serde(rename = "client.secret_rotated")]
    ClientSecretRotated,
    #[serde(rename = "client.scopes_assigned")]
    ClientScopesAssigned,
    #[serde(rename = "user.created")]
    UserCreated,
    #[serde(rename = "user.disabled")]
    UserDisabled,
    #[serde(rename = "user.deleted")]
    UserDeleted,
    #[serde(rename = "user.password_reset")]
    UserPasswordReset,
    #[serde(rename = "consent.granted")]
    ConsentGranted,
    #[serde(rename = "consent.denied")]
    ConsentDenied,
    #[serde(rename = "consent.revoked")]
    ConsentRevoked,
    #[serde(rename = "grant.exhausted")]
    GrantExhausted,
    #[serde(rename = "token.revoked")]
    TokenRevoked,
    #[serde(rename = "refresh.reuse_detected")]
    RefreshReuseDetected,
    #[serde(rename = "login.succeeded")]
    LoginSucceeded,
    #[serde(rename = "login.failed")]
    LoginFailed,
    #[serde(rename = "webhook.created")]
    WebhookCreated,
    #[serde(rename = "webhook.deleted")]
    WebhookDeleted,
}

impl EventType {
    pub const ALL: [EventType; 23] = [
        Self::ScopeCreated,
        Self::ScopeUpdated,
        Self::ScopeMoved,
        Self::ScopeDeleted,
        Self::ClientCreated,
        Self::ClientUpdated,
        Self::ClientDeleted,
        Self::ClientSecretRotated,
        Self::ClientScopesAssigned,
        Self::UserCreated,
        Self::UserDisabled,
        Self::UserDeleted,
        Self::UserPasswordReset,
        Self::ConsentGranted,
        Self::ConsentDenied,
        Self::ConsentRevoked,
        Self::GrantExhausted,
        Self::TokenRevoked,
        Self::RefreshReuseDetected,
        Self::LoginSucceeded,
        Self::LoginFailed,
        Self::WebhookCreated,
        Self::WebhookDeleted,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::ScopeCreated => "scope.created",
            Self::ScopeUpdated => "scope.updated",
            Self::ScopeMoved => "scope.moved",
            Self::ScopeDeleted => "scope.deleted",
            Self::ClientCreated => "client.created",
            Self::ClientUpdated => "client.updated",
            Self::ClientDeleted => "client.deleted",
            Self::ClientSecretRotated => "client.secret_rotated",
            Self::ClientScopesAssigned => "client.scopes_assigned",
            Self::UserCreated => "user.created",
            Self::UserDisabled => "user.disabled",
            Self::UserDeleted => "user.deleted",
            Self::UserPasswordReset => "user.password_reset",
            Self::ConsentGranted => "consent.granted",
            Self::ConsentDenied => "consent.denied",
            Self::ConsentRevoked => "consent.revoked",
            Self::GrantExhausted => "grant.exhausted",
            Self::TokenRevoked => "token.revoked",
            Self::RefreshReuseDetected => "refresh.reuse_detected",
            Self::LoginSucceeded => "login.succeeded",
            Self::LoginFailed => "login.failed",
            Self::WebhookCreated => "webhook.created",
            Self::WebhookDeleted => "webhook.deleted",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|kind| kind.as_str() == text)
    }
}

impl std::fmt::Display for EventType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Who caused an event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Actor {
    /// An admin client through the admin or OBP API.
    AdminClient(String),
    /// A person signed in at `/login`: an administrator in the console, or an end user.
    User(String),
    /// A client acting for itself (revoking its own token, presenting a refresh token).
    Client(String),
    /// The `scopegate` command line.
    Cli,
    /// The server on its own (the demo seed, a limit running out).
    System,
}

impl Actor {
    /// As stored and shown: `client:ops-console`, `user:alice`, `cli`, `system`.
    pub fn label(&self) -> String {
        match self {
            Self::AdminClient(id) | Self::Client(id) => format!("client:{id}"),
            Self::User(username) => format!("user:{username}"),
            Self::Cli => "cli".into(),
            Self::System => "system".into(),
        }
    }
}

/// One event, before it is stored.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    pub kind: EventType,
    pub actor: Actor,
    pub client_id: Option<String>,
    pub username: Option<String>,
    pub scope: Option<String>,
    /// What else a reader needs: the fields changed, the scopes granted, the reason.
    pub detail: Value,
}

impl Event {
    pub fn new(kind: EventType, actor: &Actor) -> Self {
        Self { kind, actor: actor.clone(), client_id: None, username: None, scope: None, detail: Value::Null }
    }

    pub fn client(mut self, client_id: impl Into<String>) -> Self {
        self.client_id = Some(client_id.into());
        self
    }

    pub fn user(mut self, username: impl Into<String>) -> Self {
        self.username = Some(username.into());
        self
    }

    pub fn scope(mut self, scope: impl Into<String>) -> Self {
        self.scope = Some(scope.into());
        self
    }

    pub fn detail(mut self, detail: Value) -> Self {
        self.detail = detail;
        self
    }
}

/// The keys whose values differ between two JSON objects, each as `{"from": …, "to": …}`: the
/// detail of an `…updated` event.
pub fn changes(before: &Value, after: &Value) -> Value {
    let empty = serde_json::Map::new();
    let (before, after) = (before.as_object().unwrap_or(&empty), after.as_object().unwrap_or(&empty));
    let mut changed = serde_json::Map::new();
    for key in before.keys().chain(after.keys()) {
        let (from, to) = (before.get(key).unwrap_or(&Value::Null), after.get(key).unwrap_or(&Value::Null));
        if from != to && !changed.contains_key(key) {
            changed.insert(key.clone(), serde_json::json!({"from": from, "to": to}));
        }
    }
    Value::Object(changed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_type_reads_back_from_its_name_and_serializes_to_it() {
        for kind in EventType::ALL {
            assert_eq!(EventType::parse(kind.as_str()), Some(kind));
            assert_eq!(serde_json::to_value(kind).unwrap(), Value::String(kind.as_str().into()));
        }
        assert_eq!(EventType::parse("scope.renamed"), None);
    }

    #[test]
    fn changes_name_each_differing_key_once_with_both_values() {
        let before = serde_json::json!({"alias": "A", "days": 0, "gone": true});
        let after = serde_json::json!({"alias": "B", "days": 0, "new": 1});
        assert_eq!(
            changes(&before, &after),
            serde_json::json!({
                "alias": {"from": "A", "to": "B"},
                "gone": {"from": true, "to": null},
                "new": {"from": null, "to": 1},
            })
        );
    }

    #[test]
    fn actors_are_labelled_by_kind() {
        assert_eq!(Actor::AdminClient("ops".into()).label(), "client:ops");
        assert_eq!(Actor::User("alice".into()).label(), "user:alice");
        assert_eq!(Actor::Cli.label(), "cli");
    }
}
