//! The client-credentials grant (RFC 6749 §4.4), driven through oxide-auth's
//! `code_grant::client_credentials` state machine with our registrar and issuer. Which scopes
//! the client gets is `entitlement::client_credentials`.

use chrono::{DateTime, Utc};
use oxide_auth::code_grant::client_credentials::{self as flow, Endpoint, Extension};
use oxide_auth::primitives::grant::Grant;
use oxide_auth::primitives::issuer::{IssuedToken, Issuer, RefreshedToken, TokenType};
use oxide_auth::primitives::registrar::{BoundClient, ClientUrl, PreGrant, RegisteredUrl, Registrar, RegistrarError};
use oxide_auth::primitives::scope::Scope as OxideScope;
use std::borrow::Cow;
use std::cell::RefCell;
use std::collections::BTreeSet;
use std::sync::Arc;

use super::core::FlowCore;
use crate::domain::client::ClientProof;
use crate::domain::entitlement::{self, Entitlement, Rule, WithoutGrant};
use crate::domain::negotiation::{named_scopes, parse_scope_parameter};
use crate::domain::scope::GrantType;
use crate::domain::scope_tree::ScopeTree;
use crate::domain::token::{token_type, Subject};
use crate::error::AppError;
use crate::services::clients::ProvenClient;
use crate::services::tokens::{self, AccessTokenRequest, TokenResponse};
use crate::services::OAuthContext;
use crate::storage::client_directory::ClientRecord;
use crate::storage::grants::{self, ConsentSubject};
use crate::storage::holdings::{self, ConsentKey};
use crate::storage::tokens::{self as storage_tokens, AccessTokenRow};
use crate::storage::DbConnection;

/// The parsed token request, as oxide-auth's flow reads it.
pub struct ClientCredentialsRequest {
    pub credential: Credential,
    pub scope: Option<String>,
    /// The request's DPoP key (thumbprint), checked and spent: the token is bound to it.
    pub dpop_jkt: Option<String>,
}

/// How the client authenticated.
pub enum Credential {
    Secret {
        client_id: String,
        client_secret: String,
    },
    /// By a `private_key_jwt` assertion, already checked and spent.
    Proven(ProvenClient),
}

impl ClientCredentialsRequest {
    fn client_id(&self) -> &str {
        match &self.credential {
            Credential::Secret { client_id, .. } => client_id,
            Credential::Proven(proven) => proven.client_id(),
        }
    }
}

impl flow::Request for ClientCredentialsRequest {
    fn valid(&self) -> bool {
        true
    }
    /// oxide-auth's flow wants a passphrase; a proven client has none to give, and
    /// [`CredentialsEndpoint::check`] knows it is proven.
    fn authorization(&self) -> Option<(Cow<'_, str>, Cow<'_, [u8]>)> {
        let passphrase: &[u8] = match &self.credential {
            Credential::Secret { client_secret, .. } => client_secret.as_bytes(),
            Credential::Proven(_) => b"",
        };
        Some((Cow::Borrowed(self.client_id()), Cow::Borrowed(passphrase)))
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

/// The registrar and issuer of one request.
struct CredentialsEndpoint<'a> {
    core: FlowCore<'a>,
    /// What the rule granted at negotiation, issued as it stands, and the client's consent as
    /// negotiation found it (None: this issuance creates it).
    entitled: RefCell<Option<(Entitlement, Option<String>)>>,
    /// The authenticated client's cached record (its assignments decide private scopes).
    record: RefCell<Option<Arc<ClientRecord>>>,
    issued: Option<Unrecorded>,
    extension: (),
    /// Set when the client proved itself with a key: `check` then takes no secret.
    proven: Option<&'a ProvenClient>,
    dpop_jkt: Option<&'a str>,
}

/// A client-credentials token made from reads alone, and what must be written before it is
/// handed out: the token row, and on a client's first issuance its consent and grants.
pub struct Unrecorded {
    response: TokenResponse,
    row: AccessTokenRow,
    client_id: String,
    /// The client's consent as the reads found it; None: this issuance creates it.
    found: Option<String>,
    /// The grants this issuance starts.
    starting: BTreeSet<String>,
}

impl Unrecorded {
    /// The token row alone, when the consent and all its grants exist already (the common
    /// case), so that it can be stored through the group commit; None when the consent or a
    /// grant must be written too.
    pub fn into_token_row(self) -> Option<(TokenResponse, AccessTokenRow)> {
        (self.found.is_some() && self.starting.is_empty()).then_some((self.response, self.row))
    }

    /// Writes the consent, the grants the issuance starts and the token row, in the caller's
    /// transaction (which also made the reads this issuance was decided on).
    pub fn write(
        mut self,
        connection: &mut DbConnection,
        tree: &ScopeTree,
        now: DateTime<Utc>,
    ) -> Result<TokenResponse, AppError> {
        let who = ConsentSubject { subject: &self.client_id, user_id: None, client_id: &self.client_id };
        let consent_id = grants::default_consent(connection, who, self.found.as_deref(), now)?;
        grants::add_missing(connection, tree, &consent_id, &self.starting, now)?;
        self.row.consent_id = Some(consent_id);
        storage_tokens::insert_access_token(connection, self.row)?;
        Ok(self.response)
    }
}

/// Client-credentials clients have no redirect URI, but oxide-auth's grant needs a URL.
const NO_REDIRECT: &str = "urn:ietf:params:oauth:grant-type:client_credentials";

/// [`NO_REDIRECT`] parsed once.
fn no_redirect() -> Result<url::Url, url::ParseError> {
    static PARSED: std::sync::OnceLock<Result<url::Url, url::ParseError>> = std::sync::OnceLock::new();
    PARSED.get_or_init(|| url::Url::parse(NO_REDIRECT)).clone()
}

fn authentication_failed() -> AppError {
    AppError::invalid_client("client authentication failed")
}

impl CredentialsEndpoint<'_> {
    /// The rule's answer for this client and request.
    fn entitle(&self, requested: Option<&BTreeSet<String>>) -> Result<(Entitlement, Option<String>), AppError> {
        let record = self.record.borrow().clone().ok_or_else(authentication_failed)?;
        let client_id = &record.client.client_id;
        let holdings = holdings::load_record(&mut self.core.db(), &record, ConsentKey::DefaultOf(client_id))?;
        let tree = self.core.context.tree;
        let named = named_scopes(tree, &holdings, GrantType::ClientCredentials, requested)
            .map_err(|error| AppError::bad_request("invalid_scope", error.to_string()))?;
        let rule = Rule {
            tree,
            holdings: &holdings,
            grant_type: GrantType::ClientCredentials,
            without_grant: WithoutGrant::StartsNow,
            now: self.core.now,
            timezone: self.core.context.limits_timezone,
        };
        let entitled = entitlement::client_credentials(&rule, &named, requested.is_some())
            .map_err(|refusal| AppError::bad_request("invalid_scope", refusal.to_string()))?;
        Ok((entitled, holdings.consent_id))
    }

    /// Mints the token the rule allows; the grants it starts and the row are written later
    /// (see [`Unrecorded`]), so the signature is made outside any write transaction.
    fn mint(&self, entitled: &Entitlement, found: Option<String>) -> Result<Unrecorded, AppError> {
        let client = self.core.client().ok_or_else(authentication_failed)?;
        let subject = Subject::Client { client_id: client.client_id.clone() };
        let scopes = entitled.names();
        let starting: BTreeSet<String> = entitled
            .usable
            .iter()
            .filter(|(_, usable)| usable.grant_id.is_none())
            .map(|(name, _)| name.clone())
            .collect();
        let request = AccessTokenRequest {
            client: &client,
            subject: &subject,
            scopes: &scopes,
            family_id: None,
            consent_id: found.as_deref(),
            dpop_jkt: self.dpop_jkt,
        };
        let minted = tokens::mint_access_token(self.core.context, &request, self.core.now)?;
        let response = TokenResponse {
            access_token: minted.token,
            token_type: token_type(self.dpop_jkt),
            expires_in: minted.lifetime,
            scope: entitled.scope(),
            refresh_token: None,
            grant_id: None,
        };
        Ok(Unrecorded { response, row: minted.row, client_id: client.client_id, found, starting })
    }
}

impl Registrar for CredentialsEndpoint<'_> {
    fn bound_redirect<'b>(&self, bound: ClientUrl<'b>) -> Result<BoundClient<'b>, RegistrarError> {
        let Some(client) = self.core.client().filter(|client| client.client_id == bound.client_id) else {
            return Err(self.core.refuse_registration(authentication_failed()));
        };
        if !client.allows_grant_type(GrantType::ClientCredentials) {
            return Err(self.core.refuse_registration(AppError::bad_request(
                "unauthorized_client",
                "this client may not use the client_credentials grant",
            )));
        }
        let url = no_redirect().map_err(|e| self.core.refuse_registration(AppError::internal(e)))?;
        Ok(BoundClient { client_id: bound.client_id, redirect_uri: Cow::Owned(RegisteredUrl::Semantic(url)) })
    }

    fn negotiate(&self, bound: BoundClient<'_>, scope: Option<OxideScope>) -> Result<PreGrant, RegistrarError> {
        let requested = parse_scope_parameter(scope.map(|s| s.to_string()).as_deref());
        let (entitled, consent_id) =
            self.entitle(requested.as_ref()).map_err(|error| self.core.refuse_registration(error))?;
        let scope = entitled.scope().parse::<OxideScope>().map_err(|_| {
            self.core.refuse_registration(AppError::internal(anyhow::anyhow!(
                "a registry scope name is not a valid OAuth scope"
            )))
        })?;
        *self.entitled.borrow_mut() = Some((entitled, consent_id));
        Ok(PreGrant { client_id: bound.client_id.into_owned(), redirect_uri: bound.redirect_uri.into_owned(), scope })
    }

    fn check(&self, client_id: &str, passphrase: Option<&[u8]>) -> Result<(), RegistrarError> {
        let authenticated = match self.proven {
            Some(proven) if proven.client_id() == client_id => {
                let found = self.core.context.clients.get(&mut self.core.db(), client_id).map_err(AppError::from);
                found.map(|record| record.filter(|record| record.client.accepts(ClientProof::Assertion)))
            }
            Some(_) => Ok(None),
            None => {
                let Some(secret) = passphrase.and_then(|p| std::str::from_utf8(p).ok()) else {
                    return Err(self.core.refuse_registration(authentication_failed()));
                };
                crate::services::clients::authenticate_record(&mut self.core.db(), self.core.context, client_id, secret)
            }
        };
        match authenticated {
            Ok(Some(record)) => {
                self.core.set_client(record.client.clone());
                *self.record.borrow_mut() = Some(record);
                Ok(())
            }
            Ok(None) => Err(self.core.refuse_registration(authentication_failed())),
            Err(error) => Err(self.core.refuse_registration(error)),
        }
    }
}

impl Issuer for CredentialsEndpoint<'_> {
    fn issue(&mut self, _: Grant) -> Result<IssuedToken, ()> {
        let Some((entitled, consent_id)) = self.entitled.get_mut().take() else {
            return self.core.fail(AppError::internal(anyhow::anyhow!("issuing before negotiating")));
        };
        match self.mint(&entitled, consent_id) {
            Ok(unrecorded) => {
                let token = unrecorded.response.access_token.clone();
                let until = self.core.now + chrono::Duration::seconds(unrecorded.response.expires_in);
                self.issued = Some(unrecorded);
                Ok(IssuedToken { token, refresh: None, until, token_type: TokenType::Bearer })
            }
            Err(error) => self.core.fail(error),
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

/// Runs the grant on reads alone and returns the token with what remains to be written, or the
/// RFC 6749 §5.2 error. Nothing is handed out before [`Unrecorded`] is written.
pub fn exchange(
    connection: &mut DbConnection,
    context: &OAuthContext<'_>,
    request: &ClientCredentialsRequest,
    now: DateTime<Utc>,
) -> Result<Unrecorded, AppError> {
    let mut endpoint = CredentialsEndpoint {
        core: FlowCore::new(connection, context, now),
        entitled: RefCell::new(None),
        record: RefCell::new(None),
        issued: None,
        extension: (),
        proven: match &request.credential {
            Credential::Proven(proven) => Some(proven),
            Credential::Secret { .. } => None,
        },
        dpop_jkt: request.dpop_jkt.as_deref(),
    };
    let pending = flow::client_credentials(&mut endpoint, request);
    let outcome = pending.and_then(|pending| {
        let owner = endpoint.core.client().map(|c| c.client_id).unwrap_or_default();
        pending.issue(&mut endpoint, owner, false)
    });
    // oxide-auth's own refusals (a malformed request) carry no reason of ours.
    let oxide_reason = outcome.err().map(|_| AppError::invalid_request("the token request was refused"));
    let issued = endpoint.issued.take();
    endpoint.core.finish(issued, oxide_reason, "client credentials")
}
