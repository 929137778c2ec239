//! `GET /authorize` and the consent form's submit (RFC 6749 §4.1, RFC 7636, RFC 9207),
//! driven through oxide-auth's `code_grant::authorization` state machine with our registrar,
//! authorizer and PKCE extension. oxide-auth validates the request and mints the redirect;
//! what the user is asked, and what she granted, is decided here.

use chrono::{DateTime, Duration, Utc};
use oxide_auth::code_grant::authorization::{self as flow, Endpoint, Extension, Pending};
use oxide_auth::primitives::authorizer::Authorizer;
use oxide_auth::primitives::grant::{Extensions, Grant};
use oxide_auth::primitives::registrar::{
    BoundClient, ClientUrl, ExactUrl, PreGrant, RegisteredUrl, Registrar, RegistrarError,
};
use oxide_auth::primitives::scope::Scope as OxideScope;
use std::borrow::Cow;
use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use url::Url;

use super::extensions;
use crate::domain::client::Client;
use crate::domain::consent;
use crate::domain::negotiation::{format_scope, parse_scope_parameter, ClientScopes};
use crate::domain::scope::GrantType;
use crate::domain::scope_tree::ScopeTree;
use crate::domain::user::User;
use crate::error::AppError;
use crate::secrets::random_token;
use crate::services::tokens::usage;
use crate::state::AppState;
use crate::storage::codes::{self, CodeRow};
use crate::storage::grants::{self, NewGrant};
use crate::storage::{clients, DbConnection};

/// The authorization request's query parameters. A repeated parameter is refused before
/// anything else (RFC 6749 §3.1), with an error page since nothing is validated yet.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct AuthorizeParams(pub BTreeMap<String, String>);

impl AuthorizeParams {
    pub fn from_query(query: &str) -> Result<Self, String> {
        let mut params = BTreeMap::new();
        for (key, value) in url::form_urlencoded::parse(query.as_bytes()) {
            if params.insert(key.to_string(), value.to_string()).is_some() {
                return Err(format!("The parameter {key:?} appears more than once."));
            }
        }
        Ok(Self(params))
    }

    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(String::as_str).filter(|v| !v.is_empty())
    }

    /// The query string to come back to after signing in, without `prompt=login` (which has
    /// then been honoured).
    pub fn resume_query(&self) -> String {
        let mut query = url::form_urlencoded::Serializer::new(String::new());
        for (key, value) in &self.0 {
            if key == "prompt" && value == "login" {
                continue;
            }
            query.append_pair(key, value);
        }
        query.finish()
    }
}

impl flow::Request for AuthorizeParams {
    fn valid(&self) -> bool {
        true
    }
    fn client_id(&self) -> Option<Cow<'_, str>> {
        self.get("client_id").map(Cow::Borrowed)
    }
    fn scope(&self) -> Option<Cow<'_, str>> {
        self.get("scope").map(Cow::Borrowed)
    }
    fn redirect_uri(&self) -> Option<Cow<'_, str>> {
        self.get("redirect_uri").map(Cow::Borrowed)
    }
    fn state(&self) -> Option<Cow<'_, str>> {
        self.get("state").map(Cow::Borrowed)
    }
    fn response_type(&self) -> Option<Cow<'_, str>> {
        self.get("response_type").map(Cow::Borrowed)
    }
    fn extension(&self, key: &str) -> Option<Cow<'_, str>> {
        self.get(key).map(Cow::Borrowed)
    }
}

/// What the user decided on the consent page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// No decision yet: ask if needed.
    Ask,
    /// Grant exactly these scopes (already computed by `consent::decide`).
    Approve(BTreeSet<String>),
    Deny,
}

/// The answer to an authorization step.
#[derive(Debug)]
pub enum AuthorizeOutcome {
    /// Unknown client or redirect URI, or a malformed request: never redirect (RFC 9700 §4.1).
    ErrorPage { message: String },
    /// Back to the client, with a code or an error, `state` and `iss`.
    Redirect(String),
    /// The user must sign in first.
    Login,
    /// The user must be asked.
    Consent(ConsentScreen),
}

/// What the consent page needs.
#[derive(Debug)]
pub struct ConsentScreen {
    pub client: Client,
    /// The negotiated scopes, expanded: what the page offers.
    pub offered: BTreeSet<String>,
    /// Scopes with a grant that lapsed or ran out, and why.
    pub reauthorize: BTreeMap<String, String>,
}

struct AuthorizationEndpoint<'a> {
    connection: RefCell<&'a mut DbConnection>,
    state: &'a AppState,
    tree: &'a ScopeTree,
    now: DateTime<Utc>,
    /// Set when the user has decided: negotiation yields exactly this.
    decided: Option<BTreeSet<String>>,
    client: RefCell<Option<Client>>,
    /// Why the request cannot even be redirected (shown on the error page).
    refusal: RefCell<Option<String>>,
    failure: Option<AppError>,
    pkce: PkceChallenge,
}

impl AuthorizationEndpoint<'_> {
    fn refuse(&self, message: &str) -> RegistrarError {
        *self.refusal.borrow_mut() = Some(message.to_string());
        RegistrarError::Unspecified
    }
}

impl Registrar for AuthorizationEndpoint<'_> {
    fn bound_redirect<'b>(&self, bound: ClientUrl<'b>) -> Result<BoundClient<'b>, RegistrarError> {
        let client = match clients::find(&mut self.connection.borrow_mut(), &bound.client_id) {
            Ok(Some(client)) => client,
            Ok(None) => return Err(self.refuse("The application that sent you here is not known to the bank.")),
            Err(_) => return Err(RegistrarError::PrimitiveError),
        };
        if !client.allows_grant_type(GrantType::AuthorizationCode) {
            return Err(self.refuse("This application may not ask for your consent."));
        }
        // Exact string comparison (RFC 9700 §4.1.3); without a redirect_uri the client must
        // have exactly one registered.
        let uri = match &bound.redirect_uri {
            Some(requested) if client.has_redirect_uri(requested.as_str()) => requested.as_str().to_string(),
            Some(_) => {
                return Err(self.refuse("The address this application wants to send you back to is not registered."))
            }
            None if client.redirect_uris.len() == 1 => client.redirect_uris[0].clone(),
            None => return Err(self.refuse("The application did not say where to send you back to.")),
        };
        let exact = ExactUrl::new(uri).map_err(|_| self.refuse("The registered return address is not a valid URL."))?;
        *self.client.borrow_mut() = Some(client);
        Ok(BoundClient { client_id: bound.client_id, redirect_uri: Cow::Owned(RegisteredUrl::Exact(exact)) })
    }

    fn negotiate(&self, bound: BoundClient<'_>, scope: Option<OxideScope>) -> Result<PreGrant, RegistrarError> {
        let Some(client) = self.client.borrow().clone() else { return Err(RegistrarError::PrimitiveError) };
        let assigned = match clients::assignments(&mut self.connection.borrow_mut(), &client.client_id) {
            Ok(assigned) => assigned.into_iter().map(|a| a.scope_name).collect(),
            Err(_) => return Err(RegistrarError::PrimitiveError),
        };
        let client_scopes = ClientScopes::new(&client, assigned, GrantType::AuthorizationCode);
        let requested = parse_scope_parameter(scope.map(|s| s.to_string()).as_deref());
        let negotiated =
            client_scopes.negotiate(self.tree, requested.as_ref()).map_err(|_| RegistrarError::Unspecified)?;
        let granted = match &self.decided {
            // The user's choice can only narrow what negotiation allows.
            Some(decided) => decided.intersection(&negotiated).cloned().collect(),
            None => negotiated,
        };
        let scope = format_scope(&granted).parse::<OxideScope>().map_err(|_| RegistrarError::Unspecified)?;
        Ok(PreGrant { client_id: bound.client_id.into_owned(), redirect_uri: bound.redirect_uri.into_owned(), scope })
    }

    fn check(&self, _: &str, _: Option<&[u8]>) -> Result<(), RegistrarError> {
        Err(RegistrarError::Unspecified)
    }
}

impl Authorizer for AuthorizationEndpoint<'_> {
    /// Mints a code (256 bits), stored only as its keyed hash, valid `code_lifetime_seconds`.
    fn authorize(&mut self, grant: Grant) -> Result<String, ()> {
        let code = random_token(32);
        let row = CodeRow {
            code_hash: self.state.hasher.hash(&code),
            client_id: grant.client_id,
            user_id: grant.owner_id,
            redirect_uri: grant.redirect_uri.to_string(),
            scope: grant.scope.to_string(),
            extensions: extensions::to_json(&grant.extensions),
            created_at: self.now.naive_utc(),
            expires_at: (self.now + Duration::seconds(self.state.settings.code_lifetime_seconds)).naive_utc(),
            used_at: None,
            family_id: None,
        };
        match codes::insert(self.connection.get_mut(), &row) {
            Ok(()) => Ok(code),
            Err(error) => {
                self.failure = Some(error);
                Err(())
            }
        }
    }

    fn extract(&mut self, _: &str) -> Result<Option<Grant>, ()> {
        Err(())
    }
}

/// PKCE on the authorization request: `S256` required, `plain` and a missing challenge refused.
struct PkceChallenge;

impl Extension for PkceChallenge {
    fn extend(&mut self, request: &dyn flow::Request) -> Result<Extensions, ()> {
        let pkce = extensions::pkce();
        let method = request.extension("code_challenge_method");
        if method.as_deref() != Some("S256") {
            return Err(());
        }
        let value = pkce.challenge(method, request.extension("code_challenge"))?.ok_or(())?;
        let mut extensions = Extensions::new();
        extensions.set(&pkce, value);
        Ok(extensions)
    }
}

impl Endpoint for AuthorizationEndpoint<'_> {
    fn registrar(&self) -> &dyn Registrar {
        self
    }
    fn authorizer(&mut self) -> &mut dyn Authorizer {
        self
    }
    fn extension(&mut self) -> &mut dyn Extension {
        &mut self.pkce
    }
}

/// RFC 9207: every redirect back carries our issuer.
fn with_issuer(mut url: Url, issuer: &str) -> String {
    url.query_pairs_mut().append_pair("iss", issuer);
    url.to_string()
}

fn error_redirect(pending: &Pending, error: &str, issuer: &str) -> String {
    let mut url = pending.pre_grant().redirect_uri.to_url();
    {
        let mut query = url.query_pairs_mut();
        query.append_pair("error", error);
        if let Some(state) = pending.as_solicitation().state() {
            query.append_pair("state", state);
        }
    }
    with_issuer(url, issuer)
}

/// One step of the authorization flow for `user` (None = not signed in).
pub fn authorize(
    connection: &mut DbConnection,
    state: &AppState,
    params: &AuthorizeParams,
    user: Option<&User>,
    decision: Decision,
    now: DateTime<Utc>,
) -> Result<AuthorizeOutcome, AppError> {
    let snapshot = state.registry.snapshot();
    let issuer = state.settings.issuer.as_str();
    let decided = match &decision {
        Decision::Approve(scopes) => Some(scopes.clone()),
        _ => None,
    };
    let mut endpoint = AuthorizationEndpoint {
        connection: RefCell::new(connection),
        state,
        tree: &snapshot.tree,
        now,
        decided,
        client: RefCell::new(None),
        refusal: RefCell::new(None),
        failure: None,
        pkce: PkceChallenge,
    };
    let pending = match flow::authorization_code(&mut endpoint, params) {
        Ok(pending) => pending,
        Err(flow::Error::Redirect(error_url)) => {
            return Ok(AuthorizeOutcome::Redirect(with_issuer(error_url.into(), issuer)))
        }
        Err(flow::Error::Ignore) => {
            let message = endpoint.refusal.take().unwrap_or_else(|| "The request is incomplete.".into());
            return Ok(AuthorizeOutcome::ErrorPage { message });
        }
        Err(flow::Error::PrimitiveError) => {
            return Err(endpoint
                .failure
                .take()
                .unwrap_or_else(|| AppError::internal(anyhow::anyhow!("authorization failed"))))
        }
    };
    let prompt = params.get("prompt");
    if prompt.is_some_and(|p| !matches!(p, "none" | "login" | "consent")) {
        return Ok(AuthorizeOutcome::Redirect(error_redirect(&pending, "invalid_request", issuer)));
    }
    let Some(user) = user else {
        return Ok(if prompt == Some("none") {
            AuthorizeOutcome::Redirect(error_redirect(&pending, "login_required", issuer))
        } else {
            AuthorizeOutcome::Login
        });
    };
    if prompt == Some("login") && matches!(decision, Decision::Ask) {
        return Ok(AuthorizeOutcome::Login);
    }
    let Some(client) = endpoint.client.borrow().clone() else {
        return Err(AppError::internal(anyhow::anyhow!("bound client missing")));
    };
    let offered: BTreeSet<String> = pending.pre_grant().scope.iter().map(str::to_string).collect();
    let tree = &snapshot.tree;
    match decision {
        Decision::Deny => return Ok(AuthorizeOutcome::Redirect(error_redirect(&pending, "access_denied", issuer))),
        Decision::Approve(_) if offered.is_empty() => {
            return Ok(AuthorizeOutcome::Redirect(error_redirect(&pending, "access_denied", issuer)))
        }
        Decision::Approve(_) => {
            record_consent(endpoint.connection.get_mut(), tree, user, &client, &offered, true, now)?;
        }
        Decision::Ask => {
            let held = grants::for_subject_and_client(endpoint.connection.get_mut(), &user.id, &client.client_id)?;
            let grant_of = |name: &str| held.iter().find(|g| g.scope_name == name).map(usage);
            let asking: Vec<&String> =
                offered.iter().filter(|name| consent::needs_consent(tree, name, grant_of(name), now)).collect();
            if !asking.is_empty() || prompt == Some("consent") {
                if prompt == Some("none") {
                    return Ok(AuthorizeOutcome::Redirect(error_redirect(&pending, "consent_required", issuer)));
                }
                let reauthorize = offered
                    .iter()
                    .filter_map(|name| {
                        consent::reauthorization_reason(tree, name, grant_of(name), now).map(|why| (name.clone(), why))
                    })
                    .collect();
                return Ok(AuthorizeOutcome::Consent(ConsentScreen { client, offered, reauthorize }));
            }
            // Remembered consent (or nothing needs asking): grants for new no-authorization scopes.
            record_consent(endpoint.connection.get_mut(), tree, user, &client, &offered, false, now)?;
        }
    }
    match pending.authorize(&mut endpoint, Cow::Borrowed(&user.id)) {
        Ok(url) => Ok(AuthorizeOutcome::Redirect(with_issuer(url, issuer))),
        Err(_) => {
            Err(endpoint.failure.take().unwrap_or_else(|| AppError::internal(anyhow::anyhow!("cannot issue a code"))))
        }
    }
}

/// Records the user's consent. A fresh decision (`restart`) starts each scope's days and
/// count anew; otherwise only missing grants are added.
fn record_consent(
    connection: &mut DbConnection,
    tree: &ScopeTree,
    user: &User,
    client: &Client,
    scopes: &BTreeSet<String>,
    restart: bool,
    now: DateTime<Utc>,
) -> Result<(), AppError> {
    for name in scopes {
        let Some(scope) = tree.get(name) else { continue };
        let grant = NewGrant {
            subject: &user.id,
            user_id: Some(&user.id),
            client_id: &client.client_id,
            scope_name: name,
            granted_at: now,
            expires_at: crate::domain::limits::expiry(scope, now),
        };
        if restart && scope.user_authorization_required {
            grants::restart(connection, &grant)?;
        } else {
            grants::insert_if_missing(connection, &grant)?;
        }
    }
    Ok(())
}
