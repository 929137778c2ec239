//! The client-credentials grant (RFC 6749 §4.4), driven through oxide-auth's
//! `code_grant::client_credentials` state machine with our registrar and issuer.

use chrono::{DateTime, Utc};
use oxide_auth::code_grant::client_credentials::{self as flow, Endpoint, Extension};
use oxide_auth::primitives::grant::Grant;
use oxide_auth::primitives::issuer::{IssuedToken, Issuer, RefreshedToken, TokenType};
use oxide_auth::primitives::registrar::{BoundClient, ClientUrl, PreGrant, RegisteredUrl, Registrar, RegistrarError};
use oxide_auth::primitives::scope::Scope as OxideScope;
use std::borrow::Cow;
use std::cell::RefCell;
use std::collections::BTreeSet;

use crate::domain::client::Client;
use crate::domain::limits;
use crate::domain::negotiation::{format_scope, parse_scope_parameter, ClientScopes};
use crate::domain::scope::GrantType;
use crate::domain::token::Subject;
use crate::error::AppError;
use crate::services::registry::Snapshot;
use crate::services::tokens::{self, AccessTokenRequest, TokenResponse};
use crate::state::AppState;
use crate::storage::{clients, grants, DbConnection};

/// The parsed token request, as oxide-auth's flow reads it.
pub struct ClientCredentialsRequest {
    pub client_id: String,
    pub client_secret: String,
    pub scope: Option<String>,
}

impl flow::Request for ClientCredentialsRequest {
    fn valid(&self) -> bool {
        true
    }
    fn authorization(&self) -> Option<(Cow<'_, str>, Cow<'_, [u8]>)> {
        Some((Cow::Borrowed(&self.client_id), Cow::Borrowed(self.client_secret.as_bytes())))
    }
    fn scope(&self) -> Option<Cow<'_, str>> {
        self.scope.as_deref().map(Cow::Borrowed)
    }
    fn grant_type(&self) -> Option<Cow<'_, str>> {
        Some(Cow::Borrowed("client_credentials"))
    }
    fn extension(&self, _key: &str) -> Option<Cow<'_, str>> {
        None
    }
}

/// The registrar and issuer of one request, over one database connection.
struct CredentialsEndpoint<'a> {
    connection: RefCell<&'a mut DbConnection>,
    state: &'a AppState,
    snapshot: &'a Snapshot,
    now: DateTime<Utc>,
    client: RefCell<Option<Client>>,
    /// Why a primitive refused, so the answer names the right RFC error rather than
    /// oxide-auth's generic one.
    refusal: RefCell<Option<AppError>>,
    issued: Option<TokenResponse>,
    issue_failure: Option<AppError>,
    extension: (),
}

/// Client-credentials clients have no redirect URI, but oxide-auth's grant needs a URL.
const NO_REDIRECT: &str = "urn:ietf:params:oauth:grant-type:client_credentials";

impl CredentialsEndpoint<'_> {
    fn refuse(&self, error: AppError) -> RegistrarError {
        *self.refusal.borrow_mut() = Some(error);
        RegistrarError::Unspecified
    }

    fn failure(&self, error: AppError) -> RegistrarError {
        *self.refusal.borrow_mut() = Some(error);
        RegistrarError::PrimitiveError
    }

    /// Negotiates with the registry, then drops scopes whose client grant has lapsed or run
    /// out: the client gets those again only after an administrator re-assigns them.
    fn negotiate_scopes(
        &self,
        client: &Client,
        requested: Option<&BTreeSet<String>>,
    ) -> Result<BTreeSet<String>, AppError> {
        let mut connection = self.connection.borrow_mut();
        let assigned =
            clients::assignments(&mut connection, &client.client_id)?.into_iter().map(|a| a.scope_name).collect();
        let client_scopes = ClientScopes::new(client, assigned, GrantType::ClientCredentials);
        let tree = &self.snapshot.tree;
        let negotiated = client_scopes
            .negotiate(tree, requested)
            .map_err(|error| AppError::bad_request("invalid_scope", error.to_string()))?;
        let grants = grants::for_subject_and_client(&mut connection, &client.client_id, &client.client_id)?;
        let mut usable = BTreeSet::new();
        for name in negotiated {
            let grant = grants.iter().find(|g| g.scope_name == name);
            let still_usable = match (tree.get(&name), grant) {
                (Some(scope), Some(grant)) => limits::evaluate(scope, Some(tokens::usage(grant)), self.now).is_usable(),
                // No grant yet: this issuance starts one.
                (Some(_), None) => true,
                (None, _) => false,
            };
            if still_usable {
                usable.insert(name);
            } else if requested.is_some_and(|r| r.contains(&name)) {
                return Err(AppError::bad_request(
                    "invalid_scope",
                    format!(
                        "scope {name:?} has lapsed or run out for this client; an administrator must assign it again"
                    ),
                ));
            }
        }
        if usable.is_empty() {
            return Err(AppError::bad_request("invalid_scope", "no usable scope remains for this request"));
        }
        Ok(usable)
    }
}

impl Registrar for CredentialsEndpoint<'_> {
    fn bound_redirect<'b>(&self, bound: ClientUrl<'b>) -> Result<BoundClient<'b>, RegistrarError> {
        let Some(client) = self.client.borrow().clone() else {
            return Err(self.refuse(AppError::invalid_client("client authentication failed")));
        };
        if client.client_id != bound.client_id {
            return Err(self.refuse(AppError::invalid_client("client authentication failed")));
        }
        if !client.allows_grant_type(GrantType::ClientCredentials) {
            return Err(self.refuse(AppError::bad_request(
                "unauthorized_client",
                "this client may not use the client_credentials grant",
            )));
        }
        let url = url::Url::parse(NO_REDIRECT).map_err(|e| self.failure(AppError::internal(e)))?;
        Ok(BoundClient { client_id: bound.client_id, redirect_uri: Cow::Owned(RegisteredUrl::Semantic(url)) })
    }

    fn negotiate(&self, bound: BoundClient<'_>, scope: Option<OxideScope>) -> Result<PreGrant, RegistrarError> {
        let Some(client) = self.client.borrow().clone() else {
            return Err(self.refuse(AppError::invalid_client("client authentication failed")));
        };
        let requested = parse_scope_parameter(scope.map(|s| s.to_string()).as_deref());
        let scopes = self.negotiate_scopes(&client, requested.as_ref()).map_err(|error| self.refuse(error))?;
        let scope = format_scope(&scopes).parse::<OxideScope>().map_err(|_| {
            self.failure(AppError::internal(anyhow::anyhow!("a registry scope name is not a valid OAuth scope")))
        })?;
        Ok(PreGrant { client_id: bound.client_id.into_owned(), redirect_uri: bound.redirect_uri.into_owned(), scope })
    }

    fn check(&self, client_id: &str, passphrase: Option<&[u8]>) -> Result<(), RegistrarError> {
        let Some(secret) = passphrase.and_then(|p| std::str::from_utf8(p).ok()) else {
            return Err(self.refuse(AppError::invalid_client("client authentication failed")));
        };
        let authenticated = crate::services::clients::authenticate(
            &mut self.connection.borrow_mut(),
            &self.state.hasher,
            client_id,
            secret,
        );
        match authenticated {
            Ok(Some(client)) => {
                *self.client.borrow_mut() = Some(client);
                Ok(())
            }
            Ok(None) => Err(self.refuse(AppError::invalid_client("client authentication failed"))),
            Err(error) => Err(self.failure(error)),
        }
    }
}

impl Issuer for CredentialsEndpoint<'_> {
    fn issue(&mut self, grant: Grant) -> Result<IssuedToken, ()> {
        let Some(client) = self.client.borrow().clone() else {
            return Err(());
        };
        let scopes: BTreeSet<String> = grant.scope.iter().map(str::to_string).collect();
        let subject = Subject::Client { client_id: client.client_id.clone() };
        let connection: &mut DbConnection = self.connection.get_mut();
        let issued =
            tokens::record_grants(connection, &self.snapshot.tree, &subject, &client.client_id, &scopes, self.now)
                .and_then(|()| {
                    let request =
                        AccessTokenRequest { client: &client, subject: &subject, scopes: &scopes, family_id: None };
                    tokens::issue_access_token(connection, self.state, &self.snapshot.tree, &request, self.now)
                });
        match issued {
            Ok((token, expires_in)) => {
                self.issued = Some(TokenResponse {
                    access_token: token.clone(),
                    token_type: "Bearer",
                    expires_in,
                    scope: format_scope(&scopes),
                    refresh_token: None,
                });
                Ok(IssuedToken {
                    token,
                    refresh: None,
                    until: self.now + chrono::Duration::seconds(expires_in),
                    token_type: TokenType::Bearer,
                })
            }
            Err(error) => {
                self.issue_failure = Some(error);
                Err(())
            }
        }
    }

    // Client credentials never refresh and never recover tokens through oxide-auth.
    fn refresh(&mut self, _: &str, _: Grant) -> Result<RefreshedToken, ()> {
        Err(())
    }
    fn recover_token(&self, _: &str) -> Result<Option<Grant>, ()> {
        Ok(None)
    }
    fn recover_refresh(&self, _: &str) -> Result<Option<Grant>, ()> {
        Ok(None)
    }
}

impl Endpoint for CredentialsEndpoint<'_> {
    fn registrar(&self) -> &dyn Registrar {
        self
    }
    fn issuer(&mut self) -> &mut dyn Issuer {
        self
    }
    fn extension(&mut self) -> &mut dyn Extension {
        &mut self.extension
    }
}

/// Runs the grant and returns the token response, or the RFC 6749 §5.2 error.
pub fn exchange(
    connection: &mut DbConnection,
    state: &AppState,
    request: &ClientCredentialsRequest,
    now: DateTime<Utc>,
) -> Result<TokenResponse, AppError> {
    let snapshot = state.registry.snapshot();
    let mut endpoint = CredentialsEndpoint {
        connection: RefCell::new(connection),
        state,
        snapshot: &snapshot,
        now,
        client: RefCell::new(None),
        refusal: RefCell::new(None),
        issued: None,
        issue_failure: None,
        extension: (),
    };
    let pending = flow::client_credentials(&mut endpoint, request);
    let outcome = pending.and_then(|pending| {
        let owner = endpoint.client.borrow().as_ref().map(|c| c.client_id.clone()).unwrap_or_default();
        pending.issue(&mut endpoint, owner, false)
    });
    match (outcome, endpoint.issued.take()) {
        (Ok(_), Some(response)) => Ok(response),
        (_, _) => Err(endpoint.issue_failure.take().or_else(|| endpoint.refusal.take()).unwrap_or_else(|| {
            AppError::internal(anyhow::anyhow!("the client credentials flow failed without a reason"))
        })),
    }
}
