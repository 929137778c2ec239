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
use serde_json::json;
use std::borrow::Cow;
use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use url::Url;

use super::core::FlowCore;
use super::extensions;
use crate::domain::client::Client;
use crate::domain::consent;
use crate::domain::entitlement::{
    authorization_step, AuthorizationFacts, AuthorizationStep, Entitlement, Holdings, Prompt, Rule, WithoutGrant,
};
use crate::domain::event::{Actor, Event, EventType};
use crate::domain::fapi::Presentation;
use crate::domain::grant_management::{self, GrantAction};
use crate::domain::negotiation::{named_scopes, parse_scope_parameter};
use crate::domain::pkce::is_valid_s256_challenge;
use crate::domain::scope::{GrantType, SecurityLevel};
use crate::domain::user::User;
use crate::error::AppError;
use crate::secrets::random_token;
use crate::services::{events, OAuthContext};
use crate::storage::codes::{self, CodeRow};
use crate::storage::grants::{self, ConsentSubject};
use crate::storage::holdings::{self, ConsentKey};
use crate::storage::{clients, DbConnection};

pub use crate::domain::entitlement::Decision;

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

    pub fn get(&self, key: &str) -> Option<&str> {
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

/// The answer to an authorization step.
#[derive(Debug)]
pub enum AuthorizeOutcome {
    /// Unknown client or redirect URI, or a malformed request: never redirect (RFC 9700 §4.1).
    ErrorPage { message: String },
    /// Back to the client, with a code or an error, `state` and `iss`.
    Redirect(String),
    /// The user's decision on the consent page, recorded: back to the client like
    /// [`AuthorizeOutcome::Redirect`], with a code when she granted something, or with
    /// `access_denied`.
    Decided { redirect: String, granted: bool },
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
    core: FlowCore<'a>,
    /// Whose consent is consulted (None: nobody is signed in yet).
    user_id: Option<String>,
    /// Set when the user has decided: negotiation yields this part of the offer.
    decided: Option<BTreeSet<String>>,
    /// The client's holdings and what it may be offered, found at negotiation.
    offer: RefCell<Option<(Holdings, Entitlement)>>,
    /// The consent the code is issued under, set just before oxide-auth mints it.
    consent_id: Option<String>,
    /// Why the request cannot even be redirected (shown on the error page).
    page_refusal: RefCell<Option<String>>,
    pkce: PkceChallenge,
    /// Which of the user's grants with the client the request is about (Grant Management).
    grant: GrantAction,
}

impl AuthorizationEndpoint<'_> {
    fn refuse_page(&self, message: &str) -> RegistrarError {
        *self.page_refusal.borrow_mut() = Some(message.to_string());
        RegistrarError::Unspecified
    }

    fn rule<'h>(&'h self, holdings: &'h Holdings) -> Rule<'h> {
        Rule {
            tree: self.core.context.tree,
            holdings,
            grant_type: GrantType::AuthorizationCode,
            without_grant: WithoutGrant::NotUsable,
            now: self.core.now,
            timezone: self.core.context.limits_timezone,
        }
    }

    fn load_offer(
        &self,
        client: Client,
        requested: Option<&BTreeSet<String>>,
    ) -> Result<Option<(Holdings, Entitlement)>, AppError> {
        // A new grant starts empty: its consent page asks for everything that needs asking.
        let key = match (&self.user_id, &self.grant) {
            (Some(user_id), GrantAction::Default) => ConsentKey::DefaultOf(user_id),
            (Some(_), GrantAction::Merge(id) | GrantAction::Replace(id)) => ConsentKey::Id(Some(id)),
            (Some(_), GrantAction::Create) | (None, _) => ConsentKey::Id(None),
        };
        let holdings = holdings::load(&mut self.core.db(), client, key)?;
        let Ok(named) = named_scopes(self.core.context.tree, &holdings, GrantType::AuthorizationCode, requested) else {
            return Ok(None);
        };
        let offer = self.rule(&holdings).offer(named.iter().map(String::as_str));
        Ok(Some((holdings, offer)))
    }
}

impl Registrar for AuthorizationEndpoint<'_> {
    fn bound_redirect<'b>(&self, bound: ClientUrl<'b>) -> Result<BoundClient<'b>, RegistrarError> {
        let client = match clients::find(&mut self.core.db(), &bound.client_id) {
            Ok(Some(client)) => client,
            Ok(None) => return Err(self.refuse_page("The application that sent you here is not known to the bank.")),
            Err(error) => return Err(self.core.refuse_registration(error)),
        };
        if !client.allows_grant_type(GrantType::AuthorizationCode) {
            return Err(self.refuse_page("This application may not ask for your consent."));
        }
        // Exact string comparison (RFC 9700 §4.1.3); without a redirect_uri the client must
        // have exactly one registered.
        let uri = match &bound.redirect_uri {
            Some(requested) if client.has_redirect_uri(requested.as_str()) => requested.as_str().to_string(),
            Some(_) => {
                return Err(
                    self.refuse_page("The address this application wants to send you back to is not registered.")
                )
            }
            None if client.redirect_uris.len() == 1 => client.redirect_uris[0].clone(),
            None => return Err(self.refuse_page("The application did not say where to send you back to.")),
        };
        let exact =
            ExactUrl::new(uri).map_err(|_| self.refuse_page("The registered return address is not a valid URL."))?;
        self.core.set_client(client);
        Ok(BoundClient { client_id: bound.client_id, redirect_uri: Cow::Owned(RegisteredUrl::Exact(exact)) })
    }

    /// The pre-grant is the offer (`Rule::offer`), narrowed to the user's decision when there is
    /// one. An unknown or inadmissible scope, or an empty offer, is oxide-auth's `invalid_scope`.
    fn negotiate(&self, bound: BoundClient<'_>, scope: Option<OxideScope>) -> Result<PreGrant, RegistrarError> {
        let Some(client) = self.core.client() else {
            return Err(self
                .core
                .refuse_registration(AppError::internal(anyhow::anyhow!("negotiating before binding"))));
        };
        let requested = parse_scope_parameter(scope.map(|s| s.to_string()).as_deref());
        let (holdings, offer) = match self.load_offer(client, requested.as_ref()) {
            Ok(Some(found)) if !found.1.is_empty() => found,
            Ok(_) => return Err(RegistrarError::Unspecified),
            Err(error) => return Err(self.core.refuse_registration(error)),
        };
        let offered = offer.names();
        let granted = match &self.decided {
            // The user's choice can only narrow the offer. Choosing none of it is a refusal,
            // which the step answers with access_denied: keep the offer so the flow gets there.
            Some(decided) if decided.iter().any(|name| offered.contains(name)) => {
                decided.intersection(&offered).cloned().collect()
            }
            _ => offered,
        };
        *self.offer.borrow_mut() = Some((holdings, offer));
        let scope = crate::domain::negotiation::format_scope(&granted)
            .parse::<OxideScope>()
            .map_err(|_| RegistrarError::Unspecified)?;
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
        let now = self.core.now;
        let row = CodeRow {
            code_hash: self.core.context.hasher.hash(&code),
            client_id: grant.client_id,
            user_id: grant.owner_id,
            redirect_uri: grant.redirect_uri.to_string(),
            scope: grant.scope.to_string(),
            extensions: extensions::to_json(&grant.extensions),
            created_at: now,
            expires_at: now + Duration::seconds(self.core.context.lifetimes.code),
            used_at: None,
            family_id: None,
            consent_id: self.consent_id.clone(),
        };
        match codes::insert(&mut self.core.db(), row) {
            Ok(()) => Ok(code),
            Err(error) => self.core.fail(error),
        }
    }

    fn extract(&mut self, _: &str) -> Result<Option<Grant>, ()> {
        Err(())
    }
}

/// PKCE on the authorization request: `S256` required, `plain` and a missing or malformed
/// challenge refused. oxide-auth runs this once the redirect URI is bound, and answers a
/// refusal with an `invalid_request` redirect (RFC 6749 §4.1.2.1, RFC 7636 §4.4.1).
struct PkceChallenge;

impl Extension for PkceChallenge {
    fn extend(&mut self, request: &dyn flow::Request) -> Result<Extensions, ()> {
        let pkce = extensions::pkce();
        let method = request.extension("code_challenge_method");
        let challenge = request.extension("code_challenge");
        if method.as_deref() != Some("S256") || !challenge.as_deref().is_some_and(is_valid_s256_challenge) {
            return Err(());
        }
        let value = pkce.challenge(method, challenge)?.ok_or(())?;
        let mut extensions = Extensions::new();
        extensions.set(&pkce, value);
        // RFC 9449 §10: the code's tokens must be bound to this key. A thumbprint is the
        // base64url of a SHA-256: 43 characters.
        if let Some(jkt) = request.extension("dpop_jkt") {
            let well_formed =
                jkt.len() == 43 && jkt.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
            if !well_formed {
                return Err(());
            }
            extensions::set_dpop_jkt(&mut extensions, &jkt);
        }
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
    described_error_redirect(pending, error, None, issuer)
}

fn described_error_redirect(pending: &Pending, error: &str, description: Option<&str>, issuer: &str) -> String {
    let mut url = pending.pre_grant().redirect_uri.to_url();
    {
        let mut query = url.query_pairs_mut();
        query.append_pair("error", error);
        if let Some(description) = description {
            query.append_pair("error_description", description);
        }
        if let Some(state) = pending.as_solicitation().state() {
            query.append_pair("state", state);
        }
    }
    with_issuer(url, issuer)
}

/// How the authorization request reached us: straight from the browser, or pushed to `/par`
/// by the client first (RFC 9126).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Channel {
    Front,
    Pushed,
}

/// Whether a request on `channel` may ask `client` for `offered`: the server's and the
/// client's "require PAR" (RFC 9126 §5, §6), then the FAPI 2.0 rule (`domain::fapi`), which
/// looks at the channel and how the client authenticates. The reason names the rule.
fn channel_rule(
    context: &OAuthContext<'_>,
    client: &Client,
    offered: &BTreeSet<String>,
    channel: Channel,
    names_redirect_uri: bool,
) -> Result<(), String> {
    let pushed = channel == Channel::Pushed;
    if !pushed && client.require_pushed_authorization_requests {
        return Err("this client's requests must come through PAR (require_pushed_authorization_requests)".into());
    }
    let levels: Vec<(&str, SecurityLevel)> = offered
        .iter()
        .filter_map(|name| context.tree.definition(name).map(|scope| (name.as_str(), scope.fields.security_level)))
        .collect();
    let presentation = Presentation {
        pushed: Some(pushed),
        names_redirect_uri: Some(names_redirect_uri),
        client_auth: client.token_endpoint_auth_method,
        dpop_bound: None,
    };
    context.fapi.check(&levels, presentation).map_err(|refusal| refusal.to_string())
}

/// The Grant Management request, or the error (code, description) to send the client back
/// with: a malformed pair of parameters, or a `grant_id` that is not one of this signed-in
/// user's grants with this client (`invalid_grant_id`).
fn requested_grant(
    connection: &mut DbConnection,
    params: &AuthorizeParams,
    user: Option<&User>,
) -> Result<Result<GrantAction, (&'static str, String)>, AppError> {
    let grant = match grant_management::requested(params.get("grant_management_action"), params.get("grant_id")) {
        Ok(grant) => grant,
        Err(reason) => return Ok(Err(("invalid_request", reason))),
    };
    let (Some(id), Some(user)) = (grant.grant_id(), user) else {
        return Ok(Ok(grant));
    };
    let owned = grants::find_consent_row(connection, id)?.is_some_and(|consent| {
        consent.user_id.as_deref() == Some(user.id.as_str())
            && Some(consent.client_id.as_str()) == params.get("client_id")
    });
    Ok(if owned { Ok(grant) } else { Err(("invalid_grant_id", format!("no grant {id:?} of yours with this client"))) })
}

/// One step of the authorization flow for `user` (None = not signed in). What happens next is
/// `entitlement::authorization_step`; this drives oxide-auth around it and records what the
/// step decided.
pub fn authorize(
    connection: &mut DbConnection,
    context: &OAuthContext<'_>,
    params: &AuthorizeParams,
    channel: Channel,
    user: Option<&User>,
    decision: Decision,
    now: DateTime<Utc>,
) -> Result<AuthorizeOutcome, AppError> {
    let issuer = context.issuer;
    let from_the_page = !matches!(decision, Decision::Ask);
    // Checked before the flow reads any grant: a grant_id that is not this user's with this
    // client must not even be looked at. Refused once the redirect URI is known (below).
    let grant = requested_grant(connection, params, user)?;
    let mut endpoint = AuthorizationEndpoint {
        core: FlowCore::new(connection, context, now),
        user_id: user.map(|user| user.id.clone()),
        decided: match &decision {
            Decision::Approve(scopes) => Some(scopes.clone()),
            _ => None,
        },
        offer: RefCell::new(None),
        consent_id: None,
        page_refusal: RefCell::new(None),
        pkce: PkceChallenge,
        grant: grant.clone().unwrap_or(GrantAction::Create),
    };
    let pending = match flow::authorization_code(&mut endpoint, params) {
        Ok(pending) => pending,
        Err(flow::Error::Redirect(error_url)) => {
            return Ok(AuthorizeOutcome::Redirect(with_issuer(error_url.into(), issuer)))
        }
        Err(flow::Error::Ignore) => {
            let message = endpoint.page_refusal.take().unwrap_or_else(|| "The request is incomplete.".into());
            return Ok(AuthorizeOutcome::ErrorPage { message });
        }
        Err(flow::Error::PrimitiveError) => return Err(endpoint.core.into_failure("authorization")),
    };
    let Ok(prompt) = Prompt::parse(params.get("prompt")) else {
        return Ok(AuthorizeOutcome::Redirect(error_redirect(&pending, "invalid_request", issuer)));
    };
    let (Some(client), Some((holdings, offered))) = (endpoint.core.client(), endpoint.offer.take()) else {
        return Err(AppError::internal(anyhow::anyhow!("the authorization flow lost its client or offer")));
    };
    if let Err((error, reason)) = &grant {
        return Ok(AuthorizeOutcome::Redirect(described_error_redirect(&pending, error, Some(reason), issuer)));
    }
    if let Err(reason) = channel_rule(context, &client, &offered.names(), channel, params.get("redirect_uri").is_some())
    {
        return Ok(AuthorizeOutcome::Redirect(described_error_redirect(
            &pending,
            "invalid_request",
            Some(&reason),
            issuer,
        )));
    }
    let held = endpoint.rule(&holdings).evaluate(offered.usable.keys().map(String::as_str));
    let facts = AuthorizationFacts { prompt, signed_in: user.is_some(), offered: &offered, held: &held };
    let (user, granted, start) = match authorization_step(context.tree, facts, &decision) {
        AuthorizationStep::SignIn => return Ok(AuthorizeOutcome::Login),
        AuthorizationStep::Refuse(error) => {
            let redirect = error_redirect(&pending, error, issuer);
            // Her Deny, or an Allow with nothing chosen (`authorization_step`).
            if from_the_page && error == "access_denied" {
                if let Some(user) = user {
                    let event = Event::new(EventType::ConsentDenied, &Actor::User(user.username.clone()))
                        .client(&client.client_id)
                        .user(&user.username)
                        .detail(json!({"offered": offered.names()}));
                    events::record(&mut endpoint.core.db(), event, now)?;
                }
                return Ok(AuthorizeOutcome::Decided { redirect, granted: false });
            }
            return Ok(AuthorizeOutcome::Redirect(redirect));
        }
        AuthorizationStep::Ask { reauthorize } => {
            let reauthorize = reauthorize
                .into_iter()
                .filter_map(|(name, reason)| {
                    consent::reauthorization_reason(context.tree, &name, reason).map(|why| (name, why))
                })
                .collect();
            return Ok(AuthorizeOutcome::Consent(ConsentScreen { client, offered: offered.names(), reauthorize }));
        }
        AuthorizationStep::Issue { scopes, start } => {
            // oxide-auth mints the code for its pre-grant, which negotiation built from the same
            // offer and decision: anything else is a bug, not a code to hand out.
            let pre_grant: BTreeSet<String> = pending.pre_grant().scope.iter().map(str::to_string).collect();
            if pre_grant != scopes {
                return Err(AppError::internal(anyhow::anyhow!(
                    "the code's scope {pre_grant:?} is not the step's {scopes:?}"
                )));
            }
            match user {
                Some(user) => (user, scopes, start),
                None => return Ok(AuthorizeOutcome::Login),
            }
        }
    };
    let who = ConsentSubject { subject: &user.id, user_id: Some(&user.id), client_id: &client.client_id };
    let mut connection = endpoint.core.db();
    let consent_id = match &endpoint.grant {
        GrantAction::Default => grants::default_consent(&mut connection, who, holdings.consent_id.as_deref(), now)?,
        GrantAction::Create => grants::create_consent(&mut connection, who, now)?,
        GrantAction::Merge(id) | GrantAction::Replace(id) => {
            let held: BTreeSet<String> = holdings.grants.keys().cloned().collect();
            grants::remove_grants(&mut connection, id, &endpoint.grant.dropped(&held, &granted))?;
            grants::touch_consent(&mut connection, id, now)?;
            id.clone()
        }
    };
    match decision {
        // Her decision restarts what she was asked about.
        Decision::Approve(_) => {
            grants::start(&mut connection, context.tree, &consent_id, &start, now)?;
            let event = Event::new(EventType::ConsentGranted, &Actor::User(user.username.clone()))
                .client(&client.client_id)
                .user(&user.username)
                .detail(json!({"scopes": start, "offered": offered.names(), "grant_id": consent_id}));
            events::record(&mut connection, event, now)?;
        }
        // A skipped page only adds what was never granted (`authorization_step`).
        Decision::Ask | Decision::Deny => grants::add_missing(&mut connection, context.tree, &consent_id, &start, now)?,
    }
    drop(connection);
    endpoint.consent_id = Some(consent_id);
    match pending.authorize(&mut endpoint, Cow::Borrowed(&user.id)) {
        Ok(url) if from_the_page => Ok(AuthorizeOutcome::Decided { redirect: with_issuer(url, issuer), granted: true }),
        Ok(url) => Ok(AuthorizeOutcome::Redirect(with_issuer(url, issuer))),
        Err(_) => Err(endpoint.core.into_failure("authorization")),
    }
}

/// [`authorize`] in one write transaction: the consent it records and the code it mints land
/// together or not at all.
pub fn authorize_in_transaction(
    connection: &mut DbConnection,
    context: &OAuthContext<'_>,
    params: &AuthorizeParams,
    channel: Channel,
    user: Option<&User>,
    decision: Decision,
    now: DateTime<Utc>,
) -> Result<AuthorizeOutcome, AppError> {
    crate::storage::write_transaction(connection, |connection| {
        authorize(connection, context, params, channel, user, decision, now)
    })
}
