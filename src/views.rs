//! The HTML pages: one askama template struct per `templates/*.html`. Askama escapes every
//! value (the templates never use `|safe`).

use askama::Template;

#[derive(Template)]
#[template(path = "login.html")]
pub struct LoginPage {
    pub page_title: String,
    pub csrf_token: String,
    pub next: String,
    pub username: String,
    pub error: Option<String>,
}

/// One scope on the consent page; the tree is flattened in pre-order with its depth.
#[derive(Debug, Clone)]
pub struct ConsentRow {
    pub name: String,
    pub label: String,
    pub description: String,
    pub limits: Option<String>,
    pub needs_authorization: bool,
    pub reauthorize: Option<String>,
    pub depth: usize,
    pub parent: Option<String>,
    pub input_id: String,
}

#[derive(Template)]
#[template(path = "consent.html")]
pub struct ConsentPage {
    pub page_title: String,
    pub client_name: String,
    pub user_name: String,
    pub scopes: Vec<ConsentRow>,
    pub csrf_token: String,
    pub consent_token: String,
    pub logout_csrf: String,
}

pub struct AccountScope {
    pub name: String,
    pub label: String,
    pub granted_at: String,
    pub expires: String,
    pub remaining: String,
    /// The state's CSS class.
    pub state: String,
    /// The state in words.
    pub state_words: String,
}

pub struct AccountApp {
    pub client_id: String,
    pub client_name: String,
    pub revoke_action: String,
    pub scopes: Vec<AccountScope>,
}

fn date(time: chrono::DateTime<chrono::Utc>) -> String {
    time.format("%-d %b %Y").to_string()
}

impl From<crate::services::account::AuthorizedApp> for AccountApp {
    fn from(app: crate::services::account::AuthorizedApp) -> Self {
        use crate::domain::entitlement::{Dropped, GrantState, Standing};
        let scopes = app
            .scopes
            .into_iter()
            .map(|scope| AccountScope {
                name: scope.name,
                label: scope.label,
                granted_at: date(scope.granted_at),
                expires: match (scope.state, scope.expires_at) {
                    (GrantState::Lapsed { at }, _) => format!("Expired {}", date(at)),
                    (_, Some(at)) => date(at),
                    (_, None) => "No end date".into(),
                },
                remaining: match (scope.remaining, scope.remaining_today) {
                    (Some(0), _) => "None left".into(),
                    (Some(n), Some(today)) => format!("{n} left, {today} today"),
                    (Some(n), None) => format!("{n} left"),
                    (None, Some(today)) => format!("{today} left today"),
                    (None, None) => "Unlimited".into(),
                },
                state: scope.standing.label().to_string(),
                state_words: match scope.standing {
                    Standing::Usable => "Active",
                    Standing::Dropped(Dropped::Lapsed { .. }) => "Expired",
                    Standing::Dropped(Dropped::Exhausted) => "Used up",
                    Standing::Dropped(Dropped::ExhaustedToday) => "Used up for today",
                    Standing::Dropped(Dropped::ImpliesDropped) => "Limited: part of it is no longer available",
                    Standing::Dropped(Dropped::NotAdmitted) => "No longer available to this app",
                    Standing::Dropped(Dropped::NotGranted | Dropped::Unknown) => "Revoked",
                }
                .to_string(),
            })
            .collect();
        let revoke_action = format!(
            "/account/grants/{}/revoke",
            url::form_urlencoded::byte_serialize(app.grant_id.as_bytes()).collect::<String>()
        );
        Self { client_id: app.client_id, client_name: app.client_name, revoke_action, scopes }
    }
}

#[derive(Template)]
#[template(path = "account.html")]
pub struct AccountPage {
    pub page_title: String,
    pub user_name: String,
    pub csrf_token: String,
    pub apps: Vec<AccountApp>,
    pub notice: Option<String>,
}

#[derive(Template)]
#[template(path = "error.html")]
pub struct ErrorPage {
    pub page_title: String,
    pub heading: String,
    pub message: String,
}

#[derive(Template)]
#[template(path = "demo.html")]
pub struct DemoPage {
    pub page_title: String,
    pub issuer: String,
    /// The payment the "pay" button pays.
    pub payment_id: String,
}

#[derive(Template)]
#[template(path = "demo_payment.html")]
pub struct DemoPaymentPage {
    pub page_title: String,
    pub payment_id: String,
    pub error: Option<String>,
    pub token_response: String,
    pub introspection: String,
    /// The payment API's answer.
    pub payment: String,
    pub executed: bool,
}

#[derive(Template)]
#[template(path = "demo_result.html")]
pub struct DemoResultPage {
    pub page_title: String,
    pub error: Option<String>,
    pub token_response: String,
    pub introspection: String,
    pub balance: String,
    pub balance_ok: bool,
}

pub mod console;
