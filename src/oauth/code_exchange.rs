//! `POST /token` for `authorization_code` (with PKCE) and `refresh_token`, driven through
//! oxide-auth's `code_grant::accesstoken` and `code_grant::refresh` state machines with our
//! registrar, authorizer and issuer. Codes are single-use (a replay revokes what the code
//! produced); refresh tokens rotate on every use (reuse revokes the whole family).

use chrono::{DateTime, Duration, Utc};
use oxide_auth::code_grant::accesstoken::{self as code_flow, Authorization};
use oxide_auth::code_grant::error::AccessTokenErrorType;
use oxide_auth::code_grant::refresh::{self as refresh_flow};
use oxide_auth::primitives::authorizer::Authorizer;
use oxide_auth::primitives::grant::{Extensions, Grant};
use oxide_auth::primitives::issuer::{IssuedToken, Issuer, RefreshedToken, TokenType};
use oxide_auth::primitives::registrar::{BoundClient, ClientUrl, PreGrant, Registrar, RegistrarError};
use oxide_auth::primitives::scope::Scope as OxideScope;
use serde_json::json;
use std::borrow::Cow;
use std::cell::RefCell;
use std::collections::BTreeSet;

use super::core::{invalid_grant, is_internal, FlowCore};
use super::extensions;
use crate::domain::client::ClientProof;
use crate::domain::entitlement::{Holdings, Rule, WithoutGrant};
use crate::domain::event::{Actor, Event, EventType};
use crate::domain::negotiation::format_scope;
use crate::domain::pkce::is_valid_code_verifier;
use crate::domain::scope::GrantType;
use crate::domain::token::{token_type, Subject};
use crate::error::AppError;
use crate::secrets::{random_token, TokenHash};
use crate::services::clients::ProvenClient;
use crate::services::tokens::{self, AccessTokenRequest, TokenResponse};
use crate::services::{events, users, OAuthContext};
use crate::storage::codes::{self, Redemption};
use crate::storage::holdings::{self, ConsentKey};
use crate::storage::tokens::{self as token_store, RefreshFamilyRow, RefreshTokenRow};
use crate::storage::{clients, DbConnection};

/// The parameters of a code or refresh exchange, with the client as it presented itself.
pub struct ExchangeRequest {
    pub client_id: String,
    /// None for a public client.
    pub client_secret: Option<String>,
    pub code: Option<String>,
    pub redirect_uri: Option<String>,
    pub code_verifier: Option<String>,
    pub refresh_token: Option<String>,
    pub scope: Option<String>,
    pub grant_type: &'static str,
    /// Set when the client proved itself with a `private_key_jwt` assertion.
    pub proven: Option<ProvenClient>,
    /// The thumbprint of the request's DPoP key, its proof checked and spent.
    pub dpop_jkt: Option<String>,
}

impl code_flow::Request for ExchangeRequest {
    fn valid(&self) -> bool {
        true
    }
    fn code(&self) -> Option<Cow<'_, str>> {
        self.code.as_deref().map(Cow::Borrowed)
    }
    fn authorization(&self) -> Authorization<'_> {
        match &self.client_secret {
            Some(secret) => {
                Authorization::UsernamePassword(Cow::Borrowed(&self.client_id), Cow::Borrowed(secret.as_bytes()))
            }
            None => Authorization::Username(Cow::Borrowed(&self.client_id)),
        }
    }
    fn client_id(&self) -> Option<Cow<'_, str>> {
        None
    }
    fn redirect_uri(&self) -> Option<Cow<'_, str>> {
        self.redirect_uri.as_deref().map(Cow::Borrowed)
    }
    fn grant_type(&self) -> Option<Cow<'_, str>> {
        Some(Cow::Borrowed(self.grant_type))
    }
    fn extension(&self, key: &str) -> Option<Cow<'_, str>> {
        match key {
            "code_verifier" => self.code_verifier.as_deref().map(Cow::Borrowed),
            _ => None,
        }
    }
}

impl refresh_flow::Request for ExchangeRequest {
    fn valid(&self) -> bool {
        true
    }
    fn refresh_token(&self) -> Option<Cow<'_, str>> {
        self.refresh_token.as_deref().map(Cow::Borrowed)
    }
    fn scope(&self) -> Option<Cow<'_, str>> {
        self.scope.as_deref().filter(|s| !s.trim().is_empty()).map(Cow::Borrowed)
    }
    fn grant_type(&self) -> Option<Cow<'_, str>> {
        Some(Cow::Borrowed(self.grant_type))
    }
    /// Body credentials are passed as if they came in the Basic header: oxide-auth's refresh
    /// flow knows no other way, and RFC 6749 §2.3.1 allows both.
    fn authorization(&self) -> Option<(Cow<'_, str>, Cow<'_, [u8]>)> {
        self.client_secret
            .as_deref()
            .map(|secret| (Cow::Borrowed(self.client_id.as_str()), Cow::Borrowed(secret.as_bytes())))
    }
    fn extension(&self, _: &str) -> Option<Cow<'_, str>> {
        None
    }
}

/// The refresh token being rotated, found by `recover_refresh`.
struct Rotating {
    token_hash: TokenHash,
    family: RefreshFamilyRow,
    holdings: Holdings,
}

/// The code being redeemed, found by `extract`.
struct Redeemed {
    code_hash: TokenHash,
    consent_id: Option<String>,
}

struct ExchangeEndpoint<'a> {
    core: FlowCore<'a>,
    grant_type: GrantType,
    request_client_id: String,
    request_redirect_uri: Option<String>,
    redeemed: Option<Redeemed>,
    rotating: RefCell<Option<Rotating>>,
    issued: Option<TokenResponse>,
    proven: Option<ProvenClient>,
    dpop_jkt: Option<String>,
}

impl ExchangeEndpoint<'_> {
    /// `refresh.reuse_detected`, on the connection that revoked the family.
    fn record_reuse(&self, family: &RefreshFamilyRow) -> Result<(), AppError> {
        let detail = json!({"family_id": family.id, "subject": family.subject});
        let event = Event::new(EventType::RefreshReuseDetected, &Actor::Client(family.client_id.clone()))
            .client(&family.client_id)
            .detail(detail);
        events::record(&mut self.core.db(), event, self.core.now)
    }

    /// What `granted` yields under the consent's grants now (`entitlement`), as the tokens of
    /// this exchange carry it.
    fn entitled(&self, holdings: &Holdings, granted: &OxideScope) -> BTreeSet<String> {
        let rule = Rule {
            tree: self.core.context.tree,
            holdings,
            grant_type: self.grant_type,
            without_grant: WithoutGrant::NotUsable,
            now: self.core.now,
            timezone: self.core.context.limits_timezone,
        };
        rule.evaluate(granted.iter()).names()
    }

    /// Issues the access token (and, where the client may refresh, a new refresh token) of a
    /// family; records the token response.
    fn issue_pair(
        &mut self,
        family: &RefreshFamilyRow,
        scopes: &BTreeSet<String>,
    ) -> Result<(String, Option<String>, i64), AppError> {
        let client = self.core.client().ok_or_else(|| invalid_grant("client missing"))?;
        let context = self.core.context;
        let now = self.core.now;
        let mut connection = self.core.db();
        // A disabled user's refresh tokens and unredeemed codes stop like her access tokens.
        let user = users::active_by_id(&mut connection, &family.subject)?
            .ok_or_else(|| invalid_grant("the user no longer exists or is disabled"))?;
        let subject = Subject::User { user_id: user.id.clone(), username: user.username.clone() };
        let request = AccessTokenRequest {
            client: &client,
            subject: &subject,
            scopes,
            family_id: Some(&family.id),
            consent_id: family.consent_id.as_deref(),
            dpop_jkt: self.dpop_jkt.as_deref(),
        };
        let (access_token, expires_in) = tokens::issue_access_token(&mut connection, context, &request, now)?;
        let refresh_token = if client.allows_grant_type(GrantType::RefreshToken) {
            let token = random_token(32);
            token_store::insert_refresh_token(
                &mut connection,
                RefreshTokenRow {
                    token_hash: context.hasher.hash(&token),
                    family_id: family.id.clone(),
                    scope: format_scope(scopes),
                    issued_at: now,
                    expires_at: now + Duration::seconds(context.lifetimes.refresh_token),
                    used_at: None,
                },
            )?;
            Some(token)
        } else {
            None
        };
        drop(connection);
        self.issued = Some(TokenResponse {
            access_token: access_token.clone(),
            token_type: token_type(self.dpop_jkt.as_deref()),
            expires_in,
            scope: format_scope(scopes),
            refresh_token: refresh_token.clone(),
            grant_id: family.consent_id.clone(),
        });
        Ok((access_token, refresh_token, expires_in))
    }
}

impl Registrar for ExchangeEndpoint<'_> {
    fn bound_redirect<'b>(&self, _: ClientUrl<'b>) -> Result<BoundClient<'b>, RegistrarError> {
        Err(RegistrarError::Unspecified)
    }
    fn negotiate(&self, _: BoundClient<'_>, _: Option<OxideScope>) -> Result<PreGrant, RegistrarError> {
        Err(RegistrarError::Unspecified)
    }

    /// Each client proves itself by its registered method ([`Client::accepts`]): a secret, a
    /// key (checked before the flow), or nothing for a public client (PKCE protects its codes).
    /// Either way the client must be allowed this grant type.
    fn check(&self, client_id: &str, passphrase: Option<&[u8]>) -> Result<(), RegistrarError> {
        let found = clients::find_with_secret(&mut self.core.db(), client_id);
        let (client, secret_hash) = match found {
            Ok(Some(found)) => found,
            Ok(None) => {
                return Err(self.core.refuse_registration(AppError::invalid_client("client authentication failed")))
            }
            Err(error) => return Err(self.core.refuse_registration(error)),
        };
        let proof = match passphrase {
            Some(secret) => ClientProof::Secret {
                matches: secret_hash.as_ref().is_some_and(|hash| {
                    std::str::from_utf8(secret).is_ok_and(|secret| self.core.context.hasher.verify(secret, hash))
                }),
            },
            None if self.proven.as_ref().is_some_and(|proven| proven.client_id() == client_id) => {
                ClientProof::Assertion
            }
            None => ClientProof::Nothing,
        };
        let authenticated = client.accepts(proof);
        if !authenticated || client_id != self.request_client_id {
            return Err(self.core.refuse_registration(AppError::invalid_client("client authentication failed")));
        }
        if !client.allows_grant_type(self.grant_type) {
            return Err(self.core.refuse_registration(AppError::bad_request(
                "unauthorized_client",
                "this client may not use this grant type",
            )));
        }
        self.core.set_client(client);
        Ok(())
    }
}

impl Authorizer for ExchangeEndpoint<'_> {
    fn authorize(&mut self, _: Grant) -> Result<String, ()> {
        Err(())
    }

    /// Spends the code. A second use finds it spent: everything issued from it is revoked.
    fn extract(&mut self, code: &str) -> Result<Option<Grant>, ()> {
        let code_hash = self.core.context.hasher.hash(code);
        let redemption = codes::redeem(&mut self.core.db(), &code_hash, self.core.now);
        let row = match redemption {
            Ok(Redemption::Redeemed(row)) => row,
            Ok(Redemption::Replayed(row)) => {
                if let Some(family_id) = &row.family_id {
                    if let Err(error) = token_store::revoke_family(&mut self.core.db(), family_id, self.core.now) {
                        return self.core.fail(error);
                    }
                }
                tracing::warn!(client_id = %row.client_id, "authorization code replayed; its tokens are revoked");
                self.core.refuse(invalid_grant(
                    "the authorization code was already used; tokens issued from it are revoked",
                ));
                return Ok(None);
            }
            Ok(Redemption::Invalid) => {
                // Unknown, expired, or deleted by the revocation of its consent.
                self.core.refuse(invalid_grant("the authorization code is unknown, expired or revoked"));
                return Ok(None);
            }
            Err(error) => return self.core.fail(error),
        };
        // Exact string match with the authorization request's redirect_uri (RFC 6749 §4.1.3).
        if self.request_redirect_uri.as_deref() != Some(row.redirect_uri.as_str())
            || row.client_id != self.request_client_id
        {
            self.core.refuse(invalid_grant("the code was issued to another client or redirect_uri"));
            return Ok(None);
        }
        let (Ok(redirect_uri), Ok(scope)) = (url::Url::parse(&row.redirect_uri), row.scope.parse::<OxideScope>())
        else {
            return self.core.fail(AppError::internal(anyhow::anyhow!("a stored code is malformed")));
        };
        let extensions = extensions::from_json(&row.extensions);
        let dpop_jkt = extensions::dpop_jkt(&extensions);
        if dpop_jkt.is_some() && dpop_jkt != self.dpop_jkt {
            // RFC 9449 §10: the code is bound to the key named at authorization. The code is
            // spent: a thief without the key gets nothing, and neither does a second try.
            self.core.refuse(AppError::bad_request(
                "invalid_dpop_proof",
                "the authorization request named dpop_jkt: the token request needs a DPoP proof by that key",
            ));
            return Ok(None);
        }
        self.redeemed = Some(Redeemed { code_hash, consent_id: row.consent_id });
        Ok(Some(Grant {
            owner_id: row.user_id,
            client_id: row.client_id,
            scope,
            redirect_uri,
            // oxide-auth compares this with the system time; our clock (which tests may shift)
            // already decided the code is live, so give it the code's lifetime from now.
            until: Utc::now() + Duration::seconds(self.core.context.lifetimes.code),
            extensions,
        }))
    }
}

/// PKCE on the token request: the verifier must be well formed and match the stored
/// challenge; either failure is `invalid_grant` (RFC 7636 §4.6), and the code is spent.
struct PkceVerifier<'r>(&'r RefCell<Option<AppError>>);

impl code_flow::Extension for PkceVerifier<'_> {
    fn extend(&mut self, request: &dyn code_flow::Request, mut data: Extensions) -> Result<Extensions, ()> {
        let verifier = request.extension("code_verifier");
        if verifier.as_deref().is_some_and(|verifier| !is_valid_code_verifier(verifier)) {
            self.0.borrow_mut().get_or_insert(invalid_grant(
                "code_verifier must be 43 to 128 characters of A-Z a-z 0-9 - . _ ~ (RFC 7636 §4.1)",
            ));
            return Err(());
        }
        let pkce = extensions::pkce();
        let saved = data.remove(&pkce);
        if pkce.verify(saved, verifier).is_err() {
            self.0.borrow_mut().get_or_insert(invalid_grant("PKCE verification failed (code_verifier)"));
            return Err(());
        }
        Ok(Extensions::new())
    }
}

impl Issuer for ExchangeEndpoint<'_> {
    /// The code flow's tokens: a new refresh family, its access token and first refresh token,
    /// carrying what the consent behind the code still allows.
    fn issue(&mut self, grant: Grant) -> Result<IssuedToken, ()> {
        let Some(redeemed) = self.redeemed.take() else {
            return self.core.fail(AppError::internal(anyhow::anyhow!("issuing without a redeemed code")));
        };
        let Some(client) = self.core.client() else {
            return self.core.fail(AppError::internal(anyhow::anyhow!("issuing without a client")));
        };
        let confidential = client.confidential;
        let loaded = holdings::load(&mut self.core.db(), client, ConsentKey::Id(redeemed.consent_id.as_deref()));
        let holdings = match loaded {
            Ok(holdings) => holdings,
            Err(error) => return self.core.fail(error),
        };
        let scopes = self.entitled(&holdings, &grant.scope);
        if scopes.is_empty() {
            return self.core.fail(invalid_grant("the consent behind this code was revoked or has run out"));
        }
        let family = RefreshFamilyRow {
            id: random_token(16),
            client_id: grant.client_id.clone(),
            subject: grant.owner_id.clone(),
            user_id: Some(grant.owner_id.clone()),
            scope: format_scope(&scopes),
            created_at: self.core.now,
            revoked_at: None,
            consent_id: redeemed.consent_id,
            // RFC 9449 §5: a public client's refresh tokens are bound to its DPoP key; a
            // confidential client's are bound to its authentication instead.
            dpop_jkt: if confidential { None } else { self.dpop_jkt.clone() },
        };
        let stored = {
            let mut connection = self.core.db();
            token_store::insert_family(&mut connection, family.clone())
                .and_then(|()| codes::set_family(&mut connection, &redeemed.code_hash, &family.id))
        };
        if let Err(error) = stored {
            return self.core.fail(error);
        }
        match self.issue_pair(&family, &scopes) {
            Ok((token, refresh, expires_in)) => Ok(IssuedToken {
                token,
                refresh,
                until: self.core.now + Duration::seconds(expires_in),
                token_type: TokenType::Bearer,
            }),
            Err(error) => self.core.fail(error),
        }
    }

    /// Rotation: the presented refresh token is spent (exactly once, even under concurrency)
    /// and a new pair is issued in the same family with the (possibly narrowed) scope.
    fn refresh(&mut self, _: &str, grant: Grant) -> Result<RefreshedToken, ()> {
        let Some(rotating) = self.rotating.get_mut().take() else {
            return self.core.fail(AppError::internal(anyhow::anyhow!("refreshing without a recovered token")));
        };
        let now = self.core.now;
        // A refusal of the binding must not spend the refresh token: the client may retry
        // with a proof.
        let scopes = self.entitled(&rotating.holdings, &grant.scope);
        let Some(client) = self.core.client() else {
            return self.core.fail(AppError::internal(anyhow::anyhow!("refreshing without a client")));
        };
        if let Err(error) = tokens::check_binding(self.core.context, &client, &scopes, self.dpop_jkt.as_deref()) {
            return self.core.fail(error);
        }
        match token_store::spend_refresh_token(&mut self.core.db(), &rotating.token_hash, now) {
            Ok(true) => {}
            Ok(false) => {
                // Lost a race with another use of the same token: that is reuse too.
                if let Err(error) = token_store::revoke_family(&mut self.core.db(), &rotating.family.id, now) {
                    return self.core.fail(error);
                }
                if let Err(error) = self.record_reuse(&rotating.family) {
                    return self.core.fail(error);
                }
                return self.core.fail(invalid_grant("the refresh token was already used; the grant is revoked"));
            }
            Err(error) => return self.core.fail(error),
        }
        match self.issue_pair(&rotating.family, &scopes) {
            Ok((token, refresh, expires_in)) => Ok(RefreshedToken {
                token,
                refresh,
                until: now + Duration::seconds(expires_in),
                token_type: TokenType::Bearer,
            }),
            Err(error) => self.core.fail(error),
        }
    }

    fn recover_token(&self, _: &str) -> Result<Option<Grant>, ()> {
        Ok(None)
    }

    /// Finds a live refresh token. A spent one means reuse: the whole family is revoked and
    /// the answer is `invalid_grant`. The grant offered for rotation is what the family's
    /// consent still allows (`entitlement`); with nothing left the refresh fails.
    fn recover_refresh(&self, token: &str) -> Result<Option<Grant>, ()> {
        let token_hash = self.core.context.hasher.hash(token);
        let now = self.core.now;
        let found = {
            let mut connection = self.core.db();
            token_store::find_refresh_token(&mut connection, &token_hash).and_then(|row| match row {
                Some(row) => Ok(token_store::find_family(&mut connection, &row.family_id)?.map(|family| (row, family))),
                None => Ok(None),
            })
        };
        let (row, family) = match found {
            Ok(Some(found)) => found,
            Ok(None) => {
                self.core.refuse(invalid_grant("the refresh token is unknown"));
                return Ok(None);
            }
            Err(error) => return self.core.fail(error),
        };
        if family.client_id != self.request_client_id {
            self.core.refuse(invalid_grant("the refresh token was issued to another client"));
            return Ok(None);
        }
        // Locks in the order every flow takes them, consent then family, so a revocation
        // (which takes the consent first) and this rotation queue instead of deadlocking.
        let loaded = holdings::load_for(
            &mut self.core.db(),
            self.core.context.clients,
            &family.client_id,
            ConsentKey::Id(family.consent_id.as_deref()),
        );
        let holdings = match loaded {
            Ok(Some(holdings)) => holdings,
            Ok(None) => {
                self.core.refuse(invalid_grant("the client no longer exists"));
                return Ok(None);
            }
            Err(error) => return self.core.fail(error),
        };
        let family = match token_store::find_family_for_rotation(&mut self.core.db(), &family.id) {
            Ok(Some(family)) => family,
            Ok(None) => {
                self.core.refuse(invalid_grant("the refresh token is unknown"));
                return Ok(None);
            }
            Err(error) => return self.core.fail(error),
        };
        if row.used_at.is_some() {
            if let Err(error) = token_store::revoke_family(&mut self.core.db(), &family.id, now) {
                return self.core.fail(error);
            }
            if let Err(error) = self.record_reuse(&family) {
                return self.core.fail(error);
            }
            tracing::warn!(client_id = %family.client_id, "refresh token reused; the whole grant is revoked");
            self.core.refuse(invalid_grant("the refresh token was already used; every token of this grant is revoked"));
            return Ok(None);
        }
        if family.revoked_at.is_some() || row.expires_at <= now {
            self.core.refuse(invalid_grant("the refresh token is expired or revoked"));
            return Ok(None);
        }
        if family.dpop_jkt.is_some() && family.dpop_jkt != self.dpop_jkt {
            self.core.refuse(AppError::bad_request(
                "invalid_dpop_proof",
                "this refresh token is bound to a DPoP key: send a proof by that key",
            ));
            return Ok(None);
        }
        let Ok(granted) = row.scope.parse::<OxideScope>() else {
            return self.core.fail(AppError::internal(anyhow::anyhow!("a stored refresh token scope is malformed")));
        };
        let usable = self.entitled(&holdings, &granted);
        if usable.is_empty() {
            self.core.refuse(invalid_grant("no scope of this grant is still usable; the user must consent again"));
            return Ok(None);
        }
        let (Ok(scope), Ok(redirect_uri)) = (
            format_scope(&usable).parse::<OxideScope>(),
            url::Url::parse("urn:ietf:params:oauth:grant-type:refresh_token"),
        ) else {
            return self.core.fail(AppError::internal(anyhow::anyhow!("cannot build the refresh grant")));
        };
        *self.rotating.borrow_mut() = Some(Rotating { token_hash, family: family.clone(), holdings });
        Ok(Some(Grant {
            owner_id: family.subject,
            client_id: family.client_id,
            scope,
            redirect_uri,
            until: Utc::now() + (row.expires_at - now),
            extensions: Extensions::new(),
        }))
    }
}

struct CodeEndpoint<'e, 'a> {
    inner: &'e mut ExchangeEndpoint<'a>,
    pkce: PkceVerifier<'e>,
}

impl code_flow::Endpoint for CodeEndpoint<'_, '_> {
    fn registrar(&self) -> &dyn Registrar {
        self.inner
    }
    fn authorizer(&mut self) -> &mut dyn Authorizer {
        self.inner
    }
    fn issuer(&mut self) -> &mut dyn Issuer {
        self.inner
    }
    fn extension(&mut self) -> &mut dyn code_flow::Extension {
        &mut self.pkce
    }
}

impl refresh_flow::Endpoint for ExchangeEndpoint<'_> {
    fn registrar(&self) -> &dyn Registrar {
        self
    }
    fn issuer(&mut self) -> &mut dyn Issuer {
        self
    }
}

fn oxide_error(kind: AccessTokenErrorType) -> AppError {
    let code = match kind {
        AccessTokenErrorType::InvalidRequest => "invalid_request",
        AccessTokenErrorType::InvalidClient => return AppError::invalid_client("client authentication failed"),
        // oxide-auth says invalid_request for an unknown or replayed code: RFC 6749 says invalid_grant.
        AccessTokenErrorType::InvalidGrant => "invalid_grant",
        AccessTokenErrorType::UnauthorizedClient => "unauthorized_client",
        AccessTokenErrorType::UnsupportedGrantType => "unsupported_grant_type",
        AccessTokenErrorType::InvalidScope => "invalid_scope",
    };
    AppError::bad_request(code, "the token request was refused")
}

/// Runs the exchange; returns the token response or the RFC 6749 §5.2 error.
pub fn exchange(
    connection: &mut DbConnection,
    context: &OAuthContext<'_>,
    request: &ExchangeRequest,
    now: DateTime<Utc>,
) -> Result<TokenResponse, AppError> {
    let grant_type =
        if request.grant_type == "refresh_token" { GrantType::RefreshToken } else { GrantType::AuthorizationCode };
    let mut endpoint = ExchangeEndpoint {
        core: FlowCore::new(connection, context, now),
        grant_type,
        request_client_id: request.client_id.clone(),
        request_redirect_uri: request.redirect_uri.clone(),
        redeemed: None,
        rotating: RefCell::new(None),
        issued: None,
        proven: request.proven.clone(),
        dpop_jkt: request.dpop_jkt.clone(),
    };
    let pkce_refusal = RefCell::new(None);
    let oxide_kind = match grant_type {
        GrantType::RefreshToken => {
            refresh_flow::refresh(&mut endpoint, request).err().map(|mut error| match &mut error {
                refresh_flow::Error::Invalid(description) => Some(description.description().kind()),
                refresh_flow::Error::Unauthorized(..) => Some(AccessTokenErrorType::InvalidClient),
                refresh_flow::Error::Primitive => None,
            })
        }
        _ => {
            let mut code_endpoint = CodeEndpoint { inner: &mut endpoint, pkce: PkceVerifier(&pkce_refusal) };
            code_flow::access_token(&mut code_endpoint, request).err().map(|mut error| match &mut error {
                code_flow::Error::Invalid(description) => Some(description.description().kind()),
                code_flow::Error::Unauthorized(..) => Some(AccessTokenErrorType::InvalidClient),
                code_flow::Error::Primitive(_) => None,
            })
        }
    };
    if let Some(pkce) = pkce_refusal.take() {
        endpoint.core.refuse(pkce);
    }
    // `oxide_kind` is None on success, Some(None) for a primitive's failure (whose reason the
    // core holds), Some(Some(kind)) for oxide-auth's own refusal.
    let issued = if oxide_kind.is_none() { endpoint.issued.take() } else { None };
    endpoint.core.finish(issued, oxide_kind.flatten().map(oxide_error), "token exchange")
}

/// [`exchange`] in one write transaction. A refused exchange may still have written what must
/// stay — a replayed code or a reused refresh token revokes its family — so refusals commit
/// and only internal failures roll back.
pub fn exchange_in_transaction(
    connection: &mut DbConnection,
    context: &OAuthContext<'_>,
    request: &ExchangeRequest,
    now: DateTime<Utc>,
) -> Result<TokenResponse, AppError> {
    crate::storage::write_transaction(connection, |connection| match exchange(connection, context, request, now) {
        Err(error) if is_internal(&error) => Err(error),
        answer => Ok(answer),
    })?
}
