//! The demo's payment app (issue 15): "pay PAY-123" as a FAPI 2.0 client would do it.
//!
//! `payments.transfer` is level A, so the FAPI rule applies (`domain::fapi`): the request is
//! pushed (PAR), the client authenticates with `private_key_jwt`, and the token is DPoP-bound.
//! This app does all three for real, in process, through the same operations `/par`, `/token`
//! and a resource server's `/introspect` call:
//! - its assertions are ES256 JWTs checked by `clients::prove_assertion` against the seeded
//!   `payments-app` client's `jwks`, their `jti` spent like any other;
//! - its DPoP proofs are checked and spent by `services::dpop`, for the URL they name;
//! - the bank's payment API checks the token's `cnf.jkt` against the proof's key and its `ath`.
//!
//! The client's private key is fixed (derived from a published phrase), like the demo's client
//! secrets: for the demo only. The DPoP key is the flow's own, derived from the server's secret
//! and the flow id, so the browser never holds it.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use chrono::{DateTime, Duration, Utc};
use p256::ecdsa::signature::Signer;
use p256::ecdsa::{Signature, SigningKey};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use super::code_exchange::{self, ExchangeRequest};
use super::demo_app::{judged, unfit, Unfit};
use crate::domain::dpop::ProofContext;
use crate::domain::jose;
use crate::error::AppError;
use crate::oauth::authorization::AuthorizeParams;
use crate::secrets::{random_token, SecretHasher};
use crate::services::clients::{self, PresentedClient, PublicClients};
use crate::services::tokens::TokenResponse;
use crate::services::{dpop, pushed_requests, OAuthContext};
use crate::storage::DbConnection;

/// The seeded payment client: level A, `private_key_jwt`, PAR and DPoP required.
pub const PAYMENTS_CLIENT: &str = "payments-app";
/// The payment the demo's button pays.
pub const DEMO_PAYMENT: &str = "PAY-123";
/// The parameterised scope a payment consent is for, as `<name>:<payment id>`.
pub const TRANSFER_SCOPE: &str = "payments.transfer";
const CLIENT_KEY_ID: &str = "payments-app-demo-1";
/// The phrase the client's private key is derived from: public, like the demo secrets.
const CLIENT_KEY_PHRASE: &str = "scopegate demo payments-app private key (demo only)";

/// One run of the payment flow, as the app remembers it between the push and the callback.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct PaymentFlow {
    /// Names the flow's DPoP key (see [`flow_key`]) and is the `state`.
    pub id: String,
    pub verifier: String,
    pub payment_id: String,
}

impl PaymentFlow {
    pub fn new(payment_id: &str) -> Self {
        Self { id: random_token(16), verifier: random_token(32), payment_id: payment_id.to_owned() }
    }

    pub fn scope(&self) -> String {
        format!("{TRANSFER_SCOPE}:{}", self.payment_id)
    }
}

pub fn callback_uri(issuer: &str) -> String {
    format!("{issuer}/demo/pay/callback")
}

/// The payment API's URL for one payment, as DPoP proofs name it.
pub fn payment_url(issuer: &str, payment_id: &str) -> String {
    format!("{issuer}/demo/bank/payments/{payment_id}")
}

/// A P-256 key that signs ES256 JWTs.
struct DemoKey(SigningKey);

impl DemoKey {
    /// The key whose scalar is SHA-256 of `seed` (a hash is below the group order but for a
    /// chance of 2^-32; a seed that misses is reported, never used).
    fn from_seed(seed: &[u8]) -> Result<Self, AppError> {
        SigningKey::from_slice(&Sha256::digest(seed))
            .map(Self)
            .map_err(|_| AppError::internal(anyhow::anyhow!("a demo key seed is not a valid P-256 scalar")))
    }

    fn public_jwk(&self) -> Value {
        let point = self.0.verifying_key().to_encoded_point(false);
        let coordinate =
            |bytes: Option<&p256::FieldBytes>| bytes.map(|b| URL_SAFE_NO_PAD.encode(b)).unwrap_or_default();
        json!({"kty": "EC", "crv": "P-256", "x": coordinate(point.x()), "y": coordinate(point.y())})
    }

    fn sign(&self, header: &Value, claims: &Value) -> String {
        let input =
            format!("{}.{}", URL_SAFE_NO_PAD.encode(header.to_string()), URL_SAFE_NO_PAD.encode(claims.to_string()));
        let signature: Signature = self.0.sign(input.as_bytes());
        format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature.to_bytes()))
    }
}

fn client_key() -> Result<DemoKey, AppError> {
    DemoKey::from_seed(CLIENT_KEY_PHRASE.as_bytes())
}

/// The `jwks` the demo seeds the payment client with.
pub fn client_jwks() -> Result<Value, AppError> {
    let mut jwk = client_key()?.public_jwk();
    jwk["kid"] = json!(CLIENT_KEY_ID);
    jwk["alg"] = json!("ES256");
    jwk["use"] = json!("sig");
    Ok(json!({ "keys": [jwk] }))
}

/// The flow's DPoP key: derived from the server's secret and the flow id, so the app needs no
/// store and the browser, which carries the flow id, cannot sign with it.
fn flow_key(hasher: &SecretHasher, flow: &PaymentFlow) -> Result<DemoKey, AppError> {
    DemoKey::from_seed(hasher.hash(&format!("demo-payments-dpop:{}", flow.id)).as_str().as_bytes())
}

/// A `private_key_jwt` assertion (RFC 7523 §3) for one request.
fn assertion(issuer: &str, now: DateTime<Utc>) -> Result<String, AppError> {
    let header = json!({"alg": "ES256", "typ": "JWT", "kid": CLIENT_KEY_ID});
    let claims = json!({
        "iss": PAYMENTS_CLIENT,
        "sub": PAYMENTS_CLIENT,
        "aud": issuer,
        "jti": random_token(16),
        "iat": now.timestamp(),
        "exp": (now + Duration::seconds(60)).timestamp(),
    });
    Ok(client_key()?.sign(&header, &claims))
}

/// The app proves itself at `endpoint` (`/par` or `/token`) as a FAPI client does.
fn proven_client(
    connection: &mut DbConnection,
    context: &OAuthContext<'_>,
    endpoint: &str,
    now: DateTime<Utc>,
) -> Result<PresentedClient, AppError> {
    let presented = PresentedClient::Assertion {
        client_id: Some(PAYMENTS_CLIENT.into()),
        assertion: assertion(context.issuer, now)?,
        endpoint: endpoint.into(),
    };
    clients::prove_assertion(connection, context, presented, now)
}

/// A DPoP proof (RFC 9449 §4.2) by the flow's key for `method url`, checked and spent as the
/// endpoint at `url` would: its key's thumbprint. It carries the server's current nonce, so it
/// passes whether `dpop_nonce` is on or off.
fn proven_dpop_key(
    connection: &mut DbConnection,
    context: &OAuthContext<'_>,
    flow: &PaymentFlow,
    method: &str,
    url: &str,
    access_token: Option<&str>,
    now: DateTime<Utc>,
) -> Result<String, AppError> {
    let key = flow_key(context.hasher, flow)?;
    let header = json!({"typ": "dpop+jwt", "alg": "ES256", "jwk": key.public_jwk()});
    let mut claims = json!({
        "jti": random_token(16),
        "htm": method,
        "htu": url,
        "iat": now.timestamp(),
        "nonce": dpop::current_nonce(context.hasher, now),
    });
    if let Some(token) = access_token {
        claims["ath"] = json!(jose::sha256_base64url(token));
    }
    let request = ProofContext { method, url, access_token, now };
    let proof = dpop::verify(context.hasher, &key.sign(&header, &claims), &request, true)
        .and_then(|proof| dpop::spend(connection, context.hasher, &proof, now).map(|()| proof))
        .map_err(|refusal| refusal.at_token_endpoint())?;
    Ok(proof.jkt)
}

/// Pushes the payment's authorization request (RFC 9126) and answers where to send the
/// customer: `/authorize` with the `request_uri`.
pub fn push(
    connection: &mut DbConnection,
    context: &OAuthContext<'_>,
    flow: &PaymentFlow,
    now: DateTime<Utc>,
) -> Result<String, AppError> {
    let presented = proven_client(connection, context, "/par", now)?;
    let caller = clients::authenticate_presented(connection, context, &presented, PublicClients::Refused)?;
    let dpop_jkt = jose::public_key(&flow_key(context.hasher, flow)?.public_jwk())
        .and_then(|key| jose::thumbprint(&key))
        .map_err(|error| AppError::internal(anyhow::anyhow!("the demo's DPoP key has no thumbprint: {}", error.0)))?;
    let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(flow.verifier.as_bytes()));
    let pairs = [
        ("response_type", "code".to_owned()),
        ("client_id", PAYMENTS_CLIENT.to_owned()),
        ("redirect_uri", callback_uri(context.issuer)),
        ("scope", flow.scope()),
        ("state", flow.id.clone()),
        ("code_challenge", challenge),
        ("code_challenge_method", "S256".to_owned()),
        ("dpop_jkt", dpop_jkt),
    ];
    let mut parameters = AuthorizeParams(pairs.into_iter().map(|(key, value)| (key.to_owned(), value)).collect());
    pushed_requests::check(connection, context, &caller, &mut parameters, now)?;
    let pushed = pushed_requests::store(connection, context.hasher, &caller.client_id, &parameters, now)?;
    let query = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("client_id", PAYMENTS_CLIENT)
        .append_pair("request_uri", &pushed.request_uri)
        .finish();
    Ok(format!("/authorize?{query}"))
}

/// What the payment app shows after the customer came back.
pub struct PaymentResult {
    pub tokens: TokenResponse,
    /// What the bank's payment API learned by introspection (which counted the payment).
    pub introspection: Value,
    pub payment: PaymentAnswer,
}

/// The bank's payment API's answer.
#[derive(Debug, PartialEq)]
pub enum PaymentAnswer {
    /// Executed; the consent's accesses left after it.
    Executed(Value),
    /// The token is not active (401).
    Inactive,
    /// Not DPoP-bound, or the proof is by another key (401).
    WrongBinding(&'static str),
    /// The token is active without this payment's scope (403).
    MissingScope(String),
}

/// Exchanges the code with an assertion and a DPoP proof, then pays through the bank's API.
pub fn complete(
    connection: &mut DbConnection,
    context: &OAuthContext<'_>,
    flow: &PaymentFlow,
    code: String,
    now: DateTime<Utc>,
) -> Result<PaymentResult, AppError> {
    let PresentedClient::Proven(proven) = proven_client(connection, context, "/token", now)? else {
        return Err(AppError::internal(anyhow::anyhow!("the demo's assertion was not proven")));
    };
    let token_url = format!("{}/token", context.issuer);
    let dpop_jkt = proven_dpop_key(connection, context, flow, "POST", &token_url, None, now)?;
    let request = ExchangeRequest {
        client_id: PAYMENTS_CLIENT.into(),
        client_secret: None,
        code: Some(code),
        redirect_uri: Some(callback_uri(context.issuer)),
        code_verifier: Some(flow.verifier.clone()),
        refresh_token: None,
        scope: None,
        grant_type: "authorization_code",
        proven: Some(proven),
        dpop_jkt: Some(dpop_jkt),
    };
    let tokens = code_exchange::exchange_in_transaction(connection, context, &request, now)?;
    let url = payment_url(context.issuer, &flow.payment_id);
    let proof_jkt = proven_dpop_key(connection, context, flow, "POST", &url, Some(&tokens.access_token), now)?;
    let (introspection, payment) =
        pay(connection, context, &tokens.access_token, Some(&proof_jkt), &flow.payment_id, now)?;
    Ok(PaymentResult { tokens, introspection, payment })
}

/// `POST /demo/bank/payments/{payment_id}`, as the bank's payment API answers it: the token
/// must be active, DPoP-bound to the proof's key (checked with `ath` by the caller), and hold
/// this payment's scope. Its introspection counts the access, so a payment consent of one
/// access pays once. Answers what introspection said (null when refused before introspecting),
/// and the payment.
pub fn pay(
    connection: &mut DbConnection,
    context: &OAuthContext<'_>,
    token: &str,
    proof_jkt: Option<&str>,
    payment_id: &str,
    now: DateTime<Utc>,
) -> Result<(Value, PaymentAnswer), AppError> {
    let scope = format!("{TRANSFER_SCOPE}:{payment_id}");
    let (introspected, refused) = judged(connection, context, token, now, PaymentAnswer::Inactive, |bound, scopes| {
        refusal(bound, proof_jkt, scopes, &scope)
    })?;
    let answer = refused.unwrap_or_else(|| executed(&introspected, payment_id, &scope));
    Ok((introspected, answer))
}

const DPOP_ONLY: &str = "payments take a DPoP-bound token with a proof by its key";

/// Why a token bound to `bound` with `scopes` may not make the payment of `scope`: payments
/// take DPoP-bound tokens only, then the binding rule and the scope (`demo_app::unfit`).
fn refusal(bound: Option<&str>, proof_jkt: Option<&str>, scopes: &str, scope: &str) -> Option<PaymentAnswer> {
    if bound.is_none() || proof_jkt.is_none() {
        return Some(PaymentAnswer::WrongBinding(DPOP_ONLY));
    }
    unfit(bound, proof_jkt, scopes, scope).map(|unfit| match unfit {
        Unfit::Binding(why) => PaymentAnswer::WrongBinding(why),
        Unfit::MissingScope => PaymentAnswer::MissingScope(scope.to_owned()),
    })
}

/// The executed payment, as the bank reports it after the introspection that counted it.
fn executed(introspected: &Value, payment_id: &str, scope: &str) -> PaymentAnswer {
    PaymentAnswer::Executed(json!({
        "payment_id": payment_id,
        "status": "executed",
        "from": "DE89 3704 0044 0532 0130 00",
        "owner": introspected["username"],
        "scope": scope,
        "scope_limits": introspected["scope_limits"][scope],
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_payment_takes_a_bound_token_with_its_key_and_this_payments_scope() {
        let scope = "payments.transfer:PAY-123";
        assert_eq!(refusal(Some("k"), Some("k"), "accounts payments.transfer:PAY-123", scope), None);
        let refused = |bound, proven, scopes| refusal(bound, proven, scopes, scope);
        assert_eq!(refused(None, Some("k"), scope), Some(PaymentAnswer::WrongBinding(DPOP_ONLY)), "unbound");
        assert_eq!(refused(Some("k"), None, scope), Some(PaymentAnswer::WrongBinding(DPOP_ONLY)), "no proof");
        assert!(
            matches!(refused(Some("k"), Some("thief"), scope), Some(PaymentAnswer::WrongBinding(why)) if why.contains("another key"))
        );
        assert_eq!(
            refused(Some("k"), Some("k"), "payments.transfer:PAY-999"),
            Some(PaymentAnswer::MissingScope(scope.into())),
            "another payment's token"
        );
    }
}
